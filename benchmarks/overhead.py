"""Per-step cost of a budget: a tool loop with a 1 ms fake model, bare vs budgeted.

Cases, all on one machine in one run, interleaved (bare, each budgeted kind, bare, ...):

- ``bare``: `langchain.agents.create_agent`, no budget (the baseline of every ratio);
- ``with_budget``: `with_budget(create_agent(...))`;
- ``BudgetMiddleware``: `create_agent(..., middleware=[BudgetMiddleware(budget)])`;
- ``LangChain limits``: LangChain's own `ToolCallLimitMiddleware` +
  `ModelCallLimitMiddleware`, which only count (no money, no reservations);
- ``bare react`` / ``with_budget react``: the same with `create_react_agent`, LangGraph's
  prebuilt agent most `with_budget` users wrap (its ratio is against ``bare react``).

The median of the repeats is compared, so the ratios mean something on a noisy shared
machine while absolute times do not. 50 and 500 steps show whether the cost per step
grows with the run (it must not).

    python benchmarks/overhead.py [--repeats 5] [--model-ms 1.0] [--steps 50 500]
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from langchain_core.tools import tool
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
warnings.filterwarnings("ignore")

from fakes import FAKE_MODEL, FAKE_PRICE, ToolCallingFake  # noqa: E402

RESULTS = Path(__file__).parent / "results"


class SleepyFake(ToolCallingFake):
    delay_s: float = 0.001

    def _generate(self, messages: Any, stop: Any = None, run_manager: Any = None, **kw: Any) -> Any:
        time.sleep(self.delay_s)
        return super()._generate(messages, stop, run_manager, **kw)


@tool
def search(query: str) -> str:
    """Search (instant)."""
    return "ok"


def _budget(steps: int) -> Any:
    from agent_budget import Budget

    return Budget(
        usd=1000,
        tool_calls={"search": steps + 1},
        prices={"search": "0.001"},
        model_prices={FAKE_MODEL: FAKE_PRICE},
    )


def build(kind: str, steps: int, delay_s: float) -> Any:
    from langchain.agents import create_agent

    from agent_budget import BudgetMiddleware, with_budget

    model = SleepyFake(max_tool_turns=steps, delay_s=delay_s)
    if kind == "bare":
        return create_agent(model, [search])
    if kind == "with_budget":
        return with_budget(create_agent(model, [search]), _budget(steps))
    if kind == "BudgetMiddleware":
        return create_agent(model, [search], middleware=[BudgetMiddleware(_budget(steps))])
    if kind == "LangChain limits":
        from langchain.agents.middleware import ModelCallLimitMiddleware, ToolCallLimitMiddleware

        limits = [
            ToolCallLimitMiddleware(tool_name="search", run_limit=steps + 1),
            ModelCallLimitMiddleware(run_limit=steps + 2),
        ]
        return create_agent(model, [search], middleware=limits)
    from langgraph.prebuilt import create_react_agent

    graph = create_react_agent(model, [search])
    return graph if kind == "bare react" else with_budget(graph, _budget(steps))


KINDS = [
    "bare",
    "with_budget",
    "BudgetMiddleware",
    "LangChain limits",
    "bare react",
    "with_budget react",
]
BASELINE = {"with_budget react": "bare react", "bare react": "bare react"}


def time_run(kind: str, steps: int, delay_s: float) -> float:
    graph = build(kind, steps, delay_s)
    gc.collect()  # start each timed run from the same heap state
    start = time.perf_counter()
    out = graph.invoke({"messages": [("user", "go")]}, {"recursion_limit": 10 * steps + 20})
    elapsed = time.perf_counter() - start
    tools_run = sum(1 for m in out["messages"] if m.type == "tool")
    assert tools_run == steps, f"{kind}: expected {steps} tool steps, got {tools_run}"
    return elapsed


def measure(
    steps_list: list[int], repeats: int, delay: float, advance: Callable[[], None]
) -> list[dict[str, Any]]:
    rows = []
    for steps in steps_list:
        times: dict[str, list[float]] = {k: [] for k in KINDS}
        for _ in range(repeats):  # interleaved, so drift hits every kind alike
            for kind in KINDS:
                times[kind].append(time_run(kind, steps, delay))
                advance()
        medians = {k: statistics.median(v) for k, v in times.items()}
        for kind in KINDS:
            base = BASELINE.get(kind, "bare")
            # The ratio of each repeat to the baseline of the same repeat: its spread
            # shows how much of a difference is noise.
            per = [t / b for t, b in zip(times[kind], times[base], strict=True)]
            q = statistics.quantiles(per, n=4) if len(per) > 3 else [min(per), max(per)]
            rows.append(
                {
                    "steps": steps,
                    "kind": kind,
                    "baseline": base,
                    "model_ms": delay * 1000,
                    "median_s": medians[kind],
                    "us_per_step": medians[kind] / steps * 1e6,
                    "ratio": medians[kind] / medians[base],
                    "ratio_iqr": [round(q[0], 3), round(q[-1], 3)],
                }
            )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--model-ms", type=float, default=1.0)
    ap.add_argument("--steps", type=int, nargs="+", default=[50, 500])
    args = ap.parse_args()
    console = Console()
    delay = args.model_ms / 1000
    for kind in KINDS:  # warm imports and caches for every path
        time_run(kind, 10, delay)
    with Progress(console=console) as progress:
        task = progress.add_task("overhead", total=len(args.steps) * args.repeats * len(KINDS))
        rows = measure(args.steps, args.repeats, delay, lambda: progress.advance(task))
    table = Table(title=f"Per-step cost ({args.model_ms} ms model, median of {args.repeats})")
    for col in ("steps", "agent", "µs/step", "ratio vs bare", "IQR of ratio"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(
            str(r["steps"]),
            r["kind"],
            f"{r['us_per_step']:.0f}",
            f"x{r['ratio']:.3f}" + (" (vs bare react)" if r["baseline"] != "bare" else ""),
            f"{r['ratio_iqr'][0]:.2f}-{r['ratio_iqr'][1]:.2f}",
        )
    console.print(table)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "overhead.json").write_text(json.dumps(rows, indent=2))
    plot(rows, RESULTS / "overhead.png")
    console.print(f"wrote {RESULTS / 'overhead.json'} and overhead.png")


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [k for k in KINDS if k not in ("bare", "bare react")]
    steps = sorted({r["steps"] for r in rows})
    fig, ax = plt.subplots(figsize=(7.5, 4.0))
    width = 0.8 / len(shown)
    for i, kind in enumerate(shown):
        xs = [j + (i - (len(shown) - 1) / 2) * width for j in range(len(steps))]
        ys = [
            next(r["ratio"] for r in rows if r["kind"] == kind and r["steps"] == s) for s in steps
        ]
        bars = ax.bar(xs, ys, width, label=kind)
        for bar, y in zip(bars, ys, strict=True):
            ax.text(
                bar.get_x() + bar.get_width() / 2,
                y,
                f"{y:.2f}",
                ha="center",
                va="bottom",
                fontsize=7,
            )
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.axhline(1.05, color="red", linewidth=0.8, linestyle="--", label="goal: x1.05")
    ax.set_xticks(range(len(steps)), [f"{s} steps" for s in steps])
    ax.set_ylabel("time per run / bare agent (median)")
    ax.set_ylim(0.9, max(1.3, max(r["ratio"] for r in rows) + 0.05))
    ax.set_title(
        f"Per-step cost of a budget, {rows[0]['model_ms']:g} ms model (one run, interleaved)"
    )
    ax.legend(loc="upper left", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
