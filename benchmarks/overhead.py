"""Per-step overhead of with_budget(): a tool loop with a 1 ms fake model, bare vs budgeted.

Both graphs run in the same process, interleaved (bare, budgeted, bare, ...), and the
median of the repeats is compared, so the ratio is meaningful on a noisy shared machine
while absolute times are not. Run lengths of 50 and 500 steps show whether the per-step
overhead grows with the length of the run (it must not).

    python benchmarks/overhead.py [--repeats 5] [--model-ms 1.0]
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
import warnings
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


def build(
    steps: int,
    delay_s: float,
    budgeted: bool,
    empty_node: bool = False,
    checkpointer: bool = False,
) -> tuple[Any, Any]:
    from langgraph.prebuilt import create_react_agent

    from agent_budget import Budget, with_budget

    model = SleepyFake(max_tool_turns=steps, delay_s=delay_s)
    saver = None
    if checkpointer:
        from langgraph.checkpoint.memory import InMemorySaver

        saver = InMemorySaver()
    graph = create_react_agent(model, [search], checkpointer=saver)
    if empty_node:  # LangGraph's own cost of one more node after the tools: the floor
        from langgraph.graph import StateGraph

        builder: StateGraph[Any, Any, Any, Any] = graph.builder
        builder.compiled = False  # a fresh graph of our own: rebuilding it is fine
        builder.edges.discard(("tools", "agent"))
        builder.add_node("empty", lambda state: {})
        builder.add_edge("tools", "empty")
        builder.add_edge("empty", "agent")
        graph = builder.compile(checkpointer=saver)
    if budgeted:
        budget = Budget(
            usd=1000,
            tool_calls={"search": steps + 1},
            prices={"search": "0.001"},
            model_prices={FAKE_MODEL: FAKE_PRICE},
        )
        graph = with_budget(graph, budget)
    return graph, model


def time_run(
    steps: int, delay_s: float, budgeted: bool, empty_node: bool = False, checkpointer: bool = False
) -> float:
    graph, _model = build(steps, delay_s, budgeted, empty_node, checkpointer)
    gc.collect()  # start each timed run from the same heap state
    start = time.perf_counter()
    config = {"recursion_limit": 10 * steps + 20, "configurable": {"thread_id": "bench"}}
    out = graph.invoke({"messages": [("user", "go")]}, config)
    elapsed = time.perf_counter() - start
    tools_run = sum(1 for m in out["messages"] if m.type == "tool")
    assert tools_run == steps, f"expected {steps} tool steps, got {tools_run}"
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--model-ms", type=float, default=1.0)
    ap.add_argument("--steps", type=int, nargs="+", default=[50, 500])
    args = ap.parse_args()
    console = Console()
    delay = args.model_ms / 1000
    time_run(10, delay, True)  # warm imports and caches for both paths
    time_run(10, delay, False)
    rows = []
    with Progress(console=console) as progress:
        task = progress.add_task("bare vs budgeted", total=len(args.steps) * args.repeats * 3)
        cases = [(steps, False) for steps in args.steps] + [(args.steps[0], True)]
        progress.update(task, total=len(cases) * args.repeats * 3)
        for steps, saver in cases:
            bare, empty, wrapped = [], [], []
            for _ in range(args.repeats):  # interleaved, so drift hits all three alike
                bare.append(time_run(steps, delay, False, checkpointer=saver))
                empty.append(time_run(steps, delay, False, empty_node=True, checkpointer=saver))
                wrapped.append(time_run(steps, delay, True, checkpointer=saver))
                progress.advance(task, 3)
            b, e, w = (statistics.median(x) for x in (bare, empty, wrapped))
            spread = statistics.quantiles([x / b for x in wrapped], n=4) if len(wrapped) > 3 else []
            rows.append(
                {
                    "steps": steps,
                    "checkpointer": "InMemorySaver" if saver else None,
                    "model_ms": args.model_ms,
                    "bare_s": b,
                    "empty_node_s": e,
                    "budgeted_s": w,
                    "ratio": w / b,
                    "ratio_iqr": [round(q, 3) for q in spread[::2]] if spread else None,
                    "empty_node_ratio": e / b,
                    "overhead_us_per_step": (w - b) / steps * 1e6,
                    "bare_us_per_step": b / steps * 1e6,
                }
            )
    table = Table(
        title=f"with_budget overhead ({args.model_ms} ms model, median of {args.repeats})"
    )
    cols = (
        "steps",
        "bare µs/step",
        "+empty node",
        "with_budget µs/step",
        "overhead µs/step",
        "ratio",
    )
    for col in cols:
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(
            f"{r['steps']}" + (" + saver" if r["checkpointer"] else ""),
            f"{r['bare_us_per_step']:.0f}",
            f"x{r['empty_node_ratio']:.3f}",
            f"{r['budgeted_s'] / r['steps'] * 1e6:.0f}",
            f"{r['overhead_us_per_step']:.0f}",
            f"{r['ratio']:.3f}",
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

    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    x = list(range(len(rows)))
    bars = (
        ("bare graph", "bare_s", -0.27),
        ("bare + one empty node", "empty_node_s", 0.0),
        ("with_budget", "budgeted_s", 0.27),
    )
    for label, field, dx in bars:
        ax.bar([i + dx for i in x], [r[field] / r["steps"] * 1e6 for r in rows], 0.27, label=label)
    for i, r in zip(x, rows, strict=True):
        top = r["budgeted_s"] / r["steps"] * 1e6
        ax.text(i + 0.27, top, f"x{r['ratio']:.2f}", ha="center", va="bottom")
        ax.text(
            i,
            r["empty_node_s"] / r["steps"] * 1e6,
            f"x{r['empty_node_ratio']:.2f}",
            ha="center",
            va="bottom",
        )
    ax.set_xticks(
        x, [f"{r['steps']} steps" + ("\n+ checkpointer" if r["checkpointer"] else "") for r in rows]
    )
    ax.set_ylabel("µs per step (median)")
    ax.set_title(f"Per-step time, {rows[0]['model_ms']} ms model (one run, interleaved)")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
