"""The offline corpus: text that ships with the Python interpreter, no download.

Two sources, each document with a stable address (the offline URL scheme):

- ``offline://pydoc/topics/<topic>``: CPython's ``pydoc_data.topics`` (the language
  reference and library chapters behind ``help('assert')``, ``help('FORMATTING')`` ...).
- ``offline://stdlib/<module>``: a standard-library module's docstring;
  ``offline://stdlib/<module>#<name>``: one public top-level function, or one public class
  with the docstrings of its public methods.

Docstrings are read from the source files with `ast`, never by importing them: importing
``antigravity`` opens a browser, ``this`` prints, GUI modules open windows, and importing
the whole standard library takes far longer than parsing it. The few C modules with no
source (``math``, ``itertools`` ...) come from a fixed list of modules that are safe to
import. Tests, GUI, IDLE and private (``_name``) modules are left out.

This module needs only the standard library, so the corpus can be checked under any
interpreter (``python3.13 -m agent_budget.tools.search.corpus``).
"""

from __future__ import annotations

import ast
import hashlib
import importlib
import os
import sys
import sysconfig
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

CORPUS_VERSION = 2
"""Bump when the extraction below changes, so cached indexes are rebuilt."""

PYDOC_PREFIX = "offline://pydoc/topics/"
STDLIB_PREFIX = "offline://stdlib/"

_SKIP_DIRS = frozenset(
    {
        "site-packages",
        "dist-packages",
        "test",
        "tests",
        "idle_test",
        "idlelib",
        "tkinter",
        "turtledemo",
        "lib2to3",
        "ensurepip",
        "lib-dynload",
        "__pycache__",
        "__phello__",
    }
)
_SKIP_MODULES = frozenset({"antigravity", "this", "turtle", "__main__", "__hello__"})
# C modules with no source file: documented only by their compiled docstrings. Importing
# these has no side effects; any that this build lacks is skipped.
_C_MODULES = ("builtins", "math", "cmath", "itertools", "time", "sys", "gc", "binascii", "zlib")


@dataclass(frozen=True)
class Document:
    url: str
    title: str
    body: str


def stdlib_dir() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def source_files(root: Path | None = None) -> list[tuple[str, Path]]:
    """(module name, path) of every public standard-library source file, sorted."""
    root = root or stdlib_dir()
    found: list[tuple[str, Path]] = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel = Path(dirpath).relative_to(root)
        # A directory is a package only with __init__.py; config-3.x and the like are not.
        keep = []
        for d in dirnames:
            if d in _SKIP_DIRS or d.startswith(("_", ".", "config-")):
                continue
            if (Path(dirpath) / d / "__init__.py").exists():
                keep.append(d)
        dirnames[:] = sorted(keep)
        for name in sorted(filenames):
            if not name.endswith(".py"):
                continue
            stem = name[:-3]
            if stem == "__init__":
                parts = rel.parts
            elif stem.startswith("_") or "-" in stem:
                continue
            else:
                parts = (*rel.parts, stem)
            if not parts or parts[0] in _SKIP_MODULES:
                continue
            if parts[0] == "encodings" and len(parts) > 1:
                continue  # one generated codec table per file: noise, not documentation
            found.append((".".join(parts), Path(dirpath) / name))
    return sorted(found)


def fingerprint(root: Path | None = None) -> str:
    """What the corpus is made of: this interpreter's version, the extraction version and
    every source file's name and size. A changed standard library changes it."""
    h = hashlib.sha256()
    h.update(f"{CORPUS_VERSION}|{sys.version}|{sys.implementation.name}".encode())
    for module, path in source_files(root):
        h.update(f"{module}:{path.stat().st_size};".encode())
    try:
        from pydoc_data import topics as topics_module

        h.update(str(Path(topics_module.__file__ or "").stat().st_size).encode())
    except (ImportError, OSError):
        h.update(b"no-pydoc-topics")
    return h.hexdigest()[:16]


def iter_documents(root: Path | None = None) -> Iterator[Document]:
    """Every document of the corpus, pydoc topics first."""
    yield from pydoc_topics()
    for module, path in source_files(root):
        yield from module_documents(module, path)
    for name in _C_MODULES:
        yield from c_module_documents(name)


def pydoc_topics() -> Iterator[Document]:
    try:
        from pydoc_data.topics import topics
    except ImportError:  # a distribution that strips pydoc_data: the docstrings remain
        return
    for key in sorted(topics):
        text = topics[key].strip()
        first = next((line.strip() for line in text.splitlines() if line.strip()), key)
        yield Document(f"{PYDOC_PREFIX}{key}", f"{first} (pydoc topic {key})", text)


def module_documents(module: str, path: Path) -> Iterator[Document]:
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except (SyntaxError, ValueError, OSError, UnicodeDecodeError):
        return  # a file this interpreter cannot parse (e.g. a template) is not a document
    doc = ast.get_docstring(tree)
    if doc:
        first = doc.strip().splitlines()[0]
        yield Document(f"{STDLIB_PREFIX}{module}", f"{module}: {first}", f"{module}\n\n{doc}")
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and _public(node.name):
            fdoc = ast.get_docstring(node)
            if fdoc:
                sig = f"{module}.{node.name}({_args(node)})"
                yield Document(f"{STDLIB_PREFIX}{module}#{node.name}", sig, f"{sig}\n\n{fdoc}")
        elif isinstance(node, ast.ClassDef) and _public(node.name):
            body = _class_body(module, node)
            if body:
                yield Document(
                    f"{STDLIB_PREFIX}{module}#{node.name}", f"class {module}.{node.name}", body
                )


def _class_body(module: str, node: ast.ClassDef) -> str:
    bases = ", ".join(ast.unparse(b) for b in node.bases)
    head = f"class {module}.{node.name}({bases})"
    parts = []
    cdoc = ast.get_docstring(node)
    if cdoc:
        parts.append(cdoc)
    for item in node.body:
        if not isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        if not (_public(item.name) or item.name == "__init__"):
            continue
        mdoc = ast.get_docstring(item)
        if mdoc:
            parts.append(f"{node.name}.{item.name}({_args(item)})\n    {_indent(mdoc)}")
    if not parts:
        return ""
    return head + "\n\n" + "\n\n".join(parts)


def c_module_documents(name: str) -> Iterator[Document]:
    try:
        mod = importlib.import_module(name)
    except ImportError:
        return
    if mod.__doc__:
        first = mod.__doc__.strip().splitlines()[0]
        yield Document(f"{STDLIB_PREFIX}{name}", f"{name}: {first}", f"{name}\n\n{mod.__doc__}")
    for attr in sorted(vars(mod)):
        # sys keeps the interpreter's own hooks as __excepthook__ etc.: read those, so a
        # hook replaced at run time (pytest replaces unraisablehook) does not change the corpus.
        obj = getattr(mod, attr, None)
        if attr.endswith("hook"):
            obj = getattr(mod, f"__{attr}__", obj)
        doc = getattr(obj, "__doc__", None)
        if not _public(attr) or not callable(obj) or not isinstance(doc, str) or not doc.strip():
            continue
        if getattr(obj, "__module__", name) not in (name, None):
            continue  # re-exported from elsewhere
        body = doc.strip()
        if isinstance(obj, type):
            methods = [
                f"{attr}.{m}\n    {_indent(d.strip())}"
                for m, v in sorted(vars(obj).items())
                if _public(m) and isinstance(d := getattr(v, "__doc__", None), str) and d.strip()
            ]
            body = "\n\n".join([body, *methods])
            title = f"class {name}.{attr}"
        else:
            title = f"{name}.{attr}"
        yield Document(f"{STDLIB_PREFIX}{name}#{attr}", title, f"{title}\n\n{body}")


def _public(name: str) -> bool:
    return not name.startswith("_")


def _args(node: ast.FunctionDef | ast.AsyncFunctionDef) -> str:
    try:
        return ast.unparse(node.args)
    except Exception:  # pragma: no cover - unparse handles every valid tree
        return "..."


def _indent(text: str) -> str:
    return text.replace("\n", "\n    ")


if __name__ == "__main__":  # the corpus under any interpreter: python3.13 corpus.py [--dump F]
    import json

    docs = list(iter_documents())
    size = sum(len(d.body) for d in docs)
    print(f"{len(docs)} documents, {size / 1e6:.1f} MB of text, fingerprint {fingerprint()}")
    if sys.argv[1:2] == ["--dump"]:
        Path(sys.argv[2]).write_text(json.dumps({d.url: d.body for d in docs}))
