"""Benchmark the offline search index: build time and size, cached open vs build, query
latency, and retrieval quality on the offline question set; optionally check the question
set against other Python interpreters' corpora.

    python benchmarks/search_index.py                          # this interpreter
    python benchmarks/search_index.py --python python3.12 --python python3.13

Writes benchmarks/results/search_index.json and search_index.png (recall@k). Absolute times
on a shared machine are noise; ratios (cached open / build) and the recall numbers are the
result. The load average is recorded next to the times.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from agent_budget.tools.search import OfflineBackend, ensure_index
from agent_budget.tools.search.questions import load_questions, normalize

RESULTS = Path(__file__).parent / "results"
CORPUS = Path(__file__).parents[1] / "agent_budget" / "tools" / "search" / "corpus.py"
KS = (1, 3, 5, 10)


def build_times(runs: int) -> list[dict[str, Any]]:
    out = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "index.sqlite"
            start = time.perf_counter()
            info = ensure_index(path, progress=False)
            built = time.perf_counter() - start
            start = time.perf_counter()
            again = ensure_index(path, progress=False)
            reopened = time.perf_counter() - start
            assert info.built_now and not again.built_now
            out.append(
                {
                    "build_s": built,
                    "cached_open_s": reopened,
                    "documents": info.documents,
                    "text_mb": info.text_bytes / 1e6,
                    "file_mb": info.file_bytes / 1e6,
                    "load_avg": os.getloadavg()[0],
                }
            )
    return out


def retrieval(backend: OfflineBackend) -> dict[str, Any]:
    questions = load_questions()
    ranks: dict[str, list[int | None]] = {"one-hop": [], "two-hop-any": [], "two-hop-both": []}
    latencies = []
    for q in questions:
        start = time.perf_counter()
        urls = [h.url for h in backend.search(q.question, max(KS))]
        latencies.append(time.perf_counter() - start)
        pos = [urls.index(s) + 1 if s in urls else None for s in dict.fromkeys(q.sources)]
        if q.hops == 1:
            ranks["one-hop"].append(pos[0])
        else:
            found = [p for p in pos if p is not None]
            ranks["two-hop-any"].append(min(found) if found else None)
            ranks["two-hop-both"].append(max(found) if len(found) == len(pos) else None)
    recall = {
        name: {str(k): sum(1 for r in rs if r is not None and r <= k) / len(rs) for k in KS}
        for name, rs in ranks.items()
    }
    return {
        "questions": len(questions),
        "recall_at_k": recall,
        "query_ms_median": 1000 * statistics.median(latencies),
        "query_ms_p95": 1000 * sorted(latencies)[int(0.95 * len(latencies)) - 1],
    }


def check_python(python: str) -> dict[str, Any]:
    """The question set against another interpreter's corpus (corpus.py is stdlib-only)."""
    with tempfile.TemporaryDirectory() as tmp:
        dump = Path(tmp) / "corpus.json"
        proc = subprocess.run(
            [python, str(CORPUS), "--dump", str(dump)], capture_output=True, text=True, check=True
        )
        docs = json.loads(dump.read_text())
        version = subprocess.run(
            [python, "-c", "import sys; print(sys.version.split()[0])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    failures = []
    for q in load_questions():
        bodies = [docs.get(u) for u in q.sources]
        if any(b is None for b in bodies):
            failures.append(f"{q.id}: source missing")
            continue
        if not any(normalize(a) in normalize(bodies[-1]) for a in q.answers):  # type: ignore[arg-type]
            failures.append(f"{q.id}: answer not in source")
        if q.bridge and normalize(q.bridge) not in normalize(bodies[0]):  # type: ignore[arg-type]
            failures.append(f"{q.id}: bridge not in first source")
    return {"python": version, "corpus": proc.stdout.strip(), "failures": failures}


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name, by_k in result["retrieval"]["recall_at_k"].items():
        ax.plot(list(KS), [by_k[str(k)] for k in KS], marker="o", label=name)
    ax.set_xlabel("k (results per query)")
    ax.set_ylabel("recall@k (question text as the query)")
    ax.set_ylim(0, 1.05)
    ax.set_xticks(list(KS))
    ax.set_title(f"Offline BM25 index, {result['retrieval']['questions']} questions")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=2, help="index builds to time")
    parser.add_argument("--python", action="append", default=[], help="other interpreter")
    args = parser.parse_args()

    builds = build_times(args.runs)
    info = ensure_index(progress=False)
    result: dict[str, Any] = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "builds": builds,
        "build_s_median": statistics.median(b["build_s"] for b in builds),
        "cached_open_over_build": statistics.median(
            b["cached_open_s"] / b["build_s"] for b in builds
        ),
        "retrieval": retrieval(OfflineBackend(info.path, progress=False)),
        "other_pythons": [check_python(p) for p in args.python],
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "search_index.json").write_text(json.dumps(result, indent=2) + "\n")
    try:
        plot(result, RESULTS / "search_index.png")
    except ImportError:
        print("matplotlib not installed: no PNG", file=sys.stderr)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
