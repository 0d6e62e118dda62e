"""The offline search backend: SQLite FTS5 (BM25) over the interpreter's own docs.

The index is built on first use (a progress bar on stderr; a few seconds) and cached under
``$AGENT_BUDGET_CACHE_DIR`` (else ``$XDG_CACHE_HOME/agent-budget``, else
``~/.cache/agent-budget``) in ``search/``, one file per corpus fingerprint (Python version +
every source file's size + the extraction version), so a new interpreter or a changed
standard library gets its own index. A file that is stale, half written or corrupt is
rebuilt.

Concurrency: a build writes a temporary file next to the index and renames it into place
(atomic on POSIX and Windows), so a reader sees the old file or the new one, never a half
one. An advisory lock keeps two processes from doing the same build twice; without it
(or if it is not available) both build and the last rename wins, which is still correct.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import sqlite3
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from agent_budget.tools.search.base import SearchHit, SearchToolError, check_k, check_query
from agent_budget.tools.search.corpus import _C_MODULES as C_MODULES
from agent_budget.tools.search.corpus import (
    Document,
    c_module_documents,
    fingerprint,
    module_documents,
    pydoc_topics,
    source_files,
)

SCHEMA = """
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE docs(id INTEGER PRIMARY KEY, url TEXT NOT NULL UNIQUE, title TEXT NOT NULL,
                  body TEXT NOT NULL);
CREATE VIRTUAL TABLE docs_fts USING fts5(title, body, content='docs', content_rowid='id',
                                         tokenize='porter unicode61');
"""
TITLE_WEIGHT = 8.0
"""BM25 weight of a title match against a body match: a query naming a function or a topic
should find that function's own page before pages that mention it."""

_WORD = re.compile(r"\w+", re.UNICODE)
_STOP_WORDS = (
    "a an and are as at be by can do does for from has have how i in into is it its "
    "of on or that the this to was what when where which who why will with you your"
)
_STOP = frozenset(_STOP_WORDS.split())
MAX_TERMS = 32


def cache_dir() -> Path:
    base = os.environ.get("AGENT_BUDGET_CACHE_DIR")
    if base:
        return Path(base) / "search"
    xdg = os.environ.get("XDG_CACHE_HOME")
    root = Path(xdg) if xdg else Path.home() / ".cache"
    return root / "agent-budget" / "search"


def default_index_path(fp: str | None = None) -> Path:
    v = sys.version_info
    return cache_dir() / f"pydocs-py{v.major}{v.minor}-{fp or fingerprint()}.sqlite"


@dataclass(frozen=True)
class IndexInfo:
    path: Path
    fingerprint: str
    documents: int
    text_bytes: int
    file_bytes: int
    build_seconds: float
    built_now: bool


def _read_only_uri(path: Path) -> str:
    # as_uri() percent-encodes: a cache under "/home/Jane Doe" or with "#" stays one path.
    return path.resolve().as_uri() + "?mode=ro"


def read_meta(path: Path) -> dict[str, str] | None:
    """The index's meta table, or None when the file is missing, half written or corrupt."""
    if not path.is_file():
        return None
    try:
        with contextlib.closing(sqlite3.connect(_read_only_uri(path), uri=True)) as conn:
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
            # A cheap probe of the FTS table: a corrupt file fails here, not mid-run.
            conn.execute("SELECT rowid FROM docs_fts WHERE docs_fts MATCH 'python' LIMIT 1")
    except sqlite3.Error:
        return None
    return meta if meta.get("complete") == "1" else None


def ensure_index(
    path: Path | None = None, *, progress: bool = True, fp: str | None = None
) -> IndexInfo:
    """The path of an up-to-date index, building it when missing, stale or corrupt."""
    fp = fp or fingerprint()
    default = path is None
    path = Path(path) if path is not None else default_index_path(fp)
    meta = read_meta(path)
    built_now = False
    if meta is None or meta.get("fingerprint") != fp:
        path.parent.mkdir(parents=True, exist_ok=True)
        with _build_lock(path):
            meta = read_meta(path)  # another process may have built it while we waited
            if meta is None or meta.get("fingerprint") != fp:
                meta = build_index(path, fp, progress=progress)
                built_now = True
                if default:
                    _prune_older(path)
    return IndexInfo(
        path=path,
        fingerprint=fp,
        documents=int(meta["documents"]),
        text_bytes=int(meta["text_bytes"]),
        file_bytes=path.stat().st_size,
        build_seconds=float(meta["build_seconds"]),
        built_now=built_now,
    )


def _prune_older(current: Path) -> None:
    """Drop this Python version's indexes of an older corpus (a patch release, a changed
    stdlib): each is several MB and nothing will read it again."""
    v = sys.version_info
    for old in current.parent.glob(f"pydocs-py{v.major}{v.minor}-*.sqlite*"):
        if old != current and not old.name.startswith(current.name):
            with contextlib.suppress(OSError):
                old.unlink()


@contextlib.contextmanager
def _build_lock(path: Path) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # Windows: no advisory lock; the atomic rename keeps it correct
        yield
        return
    with open(path.with_name(path.name + ".lock"), "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def build_index(path: Path, fp: str, *, progress: bool = True) -> dict[str, str]:
    """Build the index into a temporary file and rename it over ``path``."""
    started = time.perf_counter()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        conn = sqlite3.connect(tmp)
        try:
            conn.execute("PRAGMA journal_mode=OFF")
            conn.execute("PRAGMA synchronous=OFF")
            conn.executescript(SCHEMA)
            count, size = _fill(conn, progress)
            conn.execute("INSERT INTO docs_fts(docs_fts) VALUES('rebuild')")
            conn.execute("INSERT INTO docs_fts(docs_fts) VALUES('optimize')")
            meta = {
                "fingerprint": fp,
                "python": sys.version.split()[0],
                "documents": str(count),
                "text_bytes": str(size),
                "build_seconds": f"{time.perf_counter() - started:.3f}",
                "complete": "1",
            }
            conn.executemany("INSERT INTO meta VALUES (?, ?)", meta.items())
            conn.commit()
        finally:
            conn.close()
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return meta


def _fill(conn: sqlite3.Connection, progress: bool) -> tuple[int, int]:
    files = source_files()
    steps: list[tuple[str, Iterator[Document]]] = [("pydoc topics", pydoc_topics())]
    steps += [(module, module_documents(module, p)) for module, p in files]
    steps += [(name, c_module_documents(name)) for name in C_MODULES]
    seen: set[str] = set()
    count = size = 0

    def add(docs: Iterator[Document]) -> None:
        nonlocal count, size
        for d in docs:
            if d.url in seen:
                continue
            seen.add(d.url)
            conn.execute(
                "INSERT INTO docs(url, title, body) VALUES (?, ?, ?)", (d.url, d.title, d.body)
            )
            count += 1
            size += len(d.body.encode())

    if not progress:
        for _, docs in steps:
            add(docs)
        return count, size
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    if not console.is_terminal:  # a log, not a screen: one line before and one after
        console.print(f"Indexing Python docs for offline search ({len(steps)} sources)...")
        for _, docs in steps:
            add(docs)
        console.print(f"Indexed {count} documents ({size / 1e6:.1f} MB of text).")
        return count, size
    with Progress(
        TextColumn("Indexing Python docs for offline search"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[what]}"),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("index", total=len(steps), what="")
        for what, docs in steps:
            bar.update(task, what=what)
            add(docs)
            bar.advance(task)
    return count, size


def fts_query(query: str) -> str:
    """An FTS5 MATCH expression for free text: its words OR-ed (BM25 ranks documents with
    more and rarer words first), stop words dropped, every word quoted so that no word is
    read as FTS5 syntax (AND, NEAR, column filters, ``*``)."""
    words = [w.lower() for w in _WORD.findall(query)]
    kept = [w for w in words if w not in _STOP] or words
    unique = list(dict.fromkeys(kept))[:MAX_TERMS]
    if not unique:
        raise SearchToolError(
            f"the query {query!r} has no words to search for: use a few keywords."
        )
    return " OR ".join('"' + w.replace('"', '""') + '"' for w in unique)


class OfflineBackend:
    """BM25 search over the offline index. Thread-safe: each call opens its own read-only
    connection (a few tens of microseconds), so sync and async callers never share one."""

    name = "offline"
    scheme = "offline"  # its documents' URLs: offline://...

    def __init__(self, index_path: Path | None = None, *, progress: bool = True) -> None:
        self.info = ensure_index(index_path, progress=progress)
        self.path = self.info.path

    def _connect(self) -> sqlite3.Connection:
        try:
            return sqlite3.connect(_read_only_uri(self.path), uri=True)
        except sqlite3.Error as exc:
            raise SearchToolError(
                f"the offline index {self.path} cannot be opened ({exc}); delete it to rebuild."
            ) from exc

    def search(self, query: str, k: int = 5) -> list[SearchHit]:
        match = fts_query(check_query(query))
        k = check_k(k)
        sql = (
            "SELECT d.url, d.title, snippet(docs_fts, 1, '', '', ' ... ', 32), "
            f"bm25(docs_fts, {TITLE_WEIGHT}, 1.0) AS rank "
            "FROM docs_fts JOIN docs d ON d.id = docs_fts.rowid "
            "WHERE docs_fts MATCH ? ORDER BY rank LIMIT ?"
        )
        try:
            with contextlib.closing(self._connect()) as conn:
                rows = conn.execute(sql, (match, k)).fetchall()
        except sqlite3.Error as exc:
            raise SearchToolError(
                f"offline search failed ({exc}); delete {self.path} to rebuild the index."
            ) from exc
        return [
            SearchHit(title, url, " ".join(snip.split()), -rank) for url, title, snip, rank in rows
        ]

    async def asearch(self, query: str, k: int = 5) -> list[SearchHit]:
        return await asyncio.to_thread(self.search, query, k)

    def document(self, url: str) -> Document | None:
        """The whole document at an offline URL, or None if the index has no such URL."""
        with contextlib.closing(self._connect()) as conn:
            row = conn.execute("SELECT url, title, body FROM docs WHERE url = ?", (url,)).fetchone()
        return None if row is None else Document(*row)
