"""Per-step overhead of a 3-level nested budget against a flat one, in the same run.

The same budgeted ReAct graph (1 ms fake model, instant tool) runs with a flat tracker and
with a tracker that is the grandchild of two others, so every call reserves and commits on
three budgets. Runs are interleaved and the median compared.

    python benchmarks/nested.py [--repeats 7] [--steps 50]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress

sys.path.insert(0, str(Path(__file__).resolve().parent))
warnings.filterwarnings("ignore")

from overhead import RESULTS, build  # noqa: E402

from agent_budget import BudgetTracker  # noqa: E402


def run_once(steps: int, delay_s: float, levels: int) -> tuple[float, BudgetTracker]:
    graph, _model = build(steps, delay_s, budgeted=True)
    tracker = BudgetTracker(graph.budget)
    root = tracker
    for level in range(1, levels):
        tracker = tracker.child(f"level{level}", graph.budget)
    config = {"recursion_limit": 10 * steps + 20, "configurable": {"budget_tracker": tracker}}
    start = time.perf_counter()
    graph.invoke({"messages": [("user", "go")]}, config)
    elapsed = time.perf_counter() - start
    assert root.spent.usd == tracker.spent.usd, "every level must see every charge"
    assert tracker.spent.tool_calls.get("search") == steps
    return elapsed, root


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--model-ms", type=float, default=1.0)
    args = ap.parse_args()
    console = Console()
    delay = args.model_ms / 1000
    run_once(10, delay, 3)
    flat: list[float] = []
    nested: list[float] = []
    with Progress(console=console) as progress:
        task = progress.add_task("flat vs 3-level nested", total=args.repeats * 2)
        for _ in range(args.repeats):
            flat.append(run_once(args.steps, delay, 1)[0])
            progress.advance(task)
            nested.append(run_once(args.steps, delay, 3)[0])
            progress.advance(task)
    f, n = statistics.median(flat), statistics.median(nested)
    result: dict[str, Any] = {
        "steps": args.steps,
        "model_ms": args.model_ms,
        "flat_us_per_step": f / args.steps * 1e6,
        "nested3_us_per_step": n / args.steps * 1e6,
        "ratio": n / f,
        "goal": "within 10% (ratio <= 1.10)",
    }
    console.print(
        f"flat {result['flat_us_per_step']:.0f} µs/step, 3-level nested "
        f"{result['nested3_us_per_step']:.0f} µs/step: ratio {result['ratio']:.3f} "
        f"({'meets' if result['ratio'] <= 1.10 else 'misses'} the 10% goal)"
    )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "nested.json").write_text(json.dumps(result, indent=2))
    console.print(f"wrote {RESULTS / 'nested.json'}")


if __name__ == "__main__":
    main()
