"""benchmarks/search.py's reporting: the chance figure in its finding, and merging parts of
a sweep into one curve only when they ran the same experiment."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ("bats", "react+budget", "react")


@pytest.fixture(scope="module")
def bench() -> Any:
    spec = importlib.util.spec_from_file_location("search_bench", ROOT / "benchmarks/search.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("a", "n", "b", "m", "p"),
    [(1, 2, 0, 2, 1.0), (2, 2, 0, 2, 1 / 3), (5, 5, 0, 5, 2 / 252), (6, 12, 0, 12, 0.01373)],
)
def test_fisher_exact_p(bench: Any, a: int, n: int, b: int, m: int, p: float) -> None:
    assert bench.fisher_p(a, n, b, m) == pytest.approx(p, abs=1e-4)


def run(config: str, q: int, task: str, passed: bool) -> dict[str, Any]:
    return {
        "config": config, "budget": f"q={q}", "task": task, "passed": passed, "usd": "0.01",
        "tool_calls": {"web_search": 1}, "model_calls": 2, "status": "ok", "overruns": [],
    }  # fmt: skip


def part(tmp: Path, name: str, q: int, settings: dict[str, Any]) -> str:
    runs = [run(c, q, t, c == "bats" and t == "t1") for c in CONFIGS for t in ("t1", "t2")]
    (tmp / name).mkdir()
    (tmp / name / "runs.json").write_text(json.dumps(runs))
    meta = {"model": "local:m", "backend": "offline", "settings": settings, "seconds": 10.0}
    (tmp / f"{name}.json").write_text(json.dumps(meta))
    return str(tmp / name)


def test_merge_records_the_parts_settings_and_says_it_is_chance(bench: Any, tmp_path: Path) -> None:
    ran = {"steps": 4, "rounds": 1, "usd": "0.50", "k": 2, "page_chars": 600,
           "max_tokens": 48, "n_ctx": 2048, "threads": 1}  # fmt: skip
    dirs = [part(tmp_path, f"q{q}", q, ran) for q in (1, 5)]
    out = tmp_path / "merged"
    assert bench.main(["--merge", ",".join(dirs), "--out", str(out)]) == 0
    data = json.loads(out.with_suffix(".json").read_text())
    assert data["settings"] == ran  # not this command's defaults (steps 6, k 3, ...)
    assert data["model"] == "local:m" and data["seconds"] == 20.0 and data["runs"] == 12
    assert "Fisher exact p = 1.00; not distinguishable from chance" in data["finding"]


def test_merge_refuses_parts_run_differently(bench: Any, tmp_path: Path) -> None:
    base = {"steps": 4, "k": 2}
    dirs = [part(tmp_path, "a", 1, base), part(tmp_path, "b", 5, {**base, "k": 3})]
    out = tmp_path / "merged"
    assert bench.main(["--merge", ",".join(dirs), "--out", str(out)]) == 2
    assert not out.with_suffix(".json").exists()
