"""Per-step cost of a budget: a tool loop with a 1 ms fake model, bare vs budgeted.

Cases, all on one machine in one run, interleaved (bare, each budgeted kind, bare, ...):

- ``bare``: `langchain.agents.create_agent`, no budget (the baseline of every ratio);
- ``with_budget``: `with_budget(create_agent(...))`;
- ``BudgetMiddleware``: `create_agent(..., middleware=[BudgetMiddleware(budget)])`;
- ``LangChain limits``: LangChain's own `ToolCallLimitMiddleware` +
  `ModelCallLimitMiddleware`, which only count (no money, no reservations);
- ``bare react`` / ``with_budget react``: the same with `create_react_agent`, LangGraph's
  prebuilt agent most `with_budget` users wrap (its ratio is against ``bare react``);
- two floors, what any budget needs before it does any work of its own:
  ``floor: no-op handler`` is the bare agent run with one callback handler that does
  nothing (`with_budget` must see every model call wherever it is made, and LangChain
  copies each handler into every child run's callback manager); ``floor: no-op
  middleware`` is the bare agent with a middleware of `BudgetMiddleware`'s shape doing
  nothing: ``before_agent`` (a graph node: every node's channels cost LangGraph work on
  every step, run or not), the private spend key, and a
  ``wrap_model_call`` / ``wrap_tool_call`` that only call the handler (LangChain traces
  each wrap with LangSmith's ``traceable``, which inspects the wrapper's signature on
  every call, unless the hook carries its own ``__signature__``, as ours do).

Three measures per run: wall time, and the process's CPU time plus the model's nominal
sleep (``steps x model_ms``): the second is what the run would take on an idle machine,
and is far less disturbed by other processes on a shared one (wall-time ratios there
swing by x0.5-x2 between repeats); and the number of Python function calls, counted once
per kind: deterministic, a proxy for added CPU work that no other process disturbs. The
median over repeats of the per-repeat ratio is
reported, with its interquartile range. 50 and 500 steps show whether the cost per step
grows with the run (it must not).

    python benchmarks/overhead.py [--repeats 5] [--model-ms 1.0] [--steps 50 500]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import threading
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
    if kind == "floor: no-op handler":
        from langchain_core.callbacks import BaseCallbackHandler

        class NoOp(BaseCallbackHandler):  # sees model and tool events only, as ours does
            run_inline = True
            ignore_chain = ignore_retriever = ignore_retry = ignore_custom_event = True

            def on_chat_model_start(self, *args: Any, **kwargs: Any) -> None:
                # Without it LangChain falls back to on_llm_start and renders the whole
                # history as text on every call: a cost no budget handler has.
                return None

        return create_agent(model, [search]).with_config(callbacks=[NoOp()])
    if kind == "floor: no-op middleware":
        from langchain.agents.middleware import AgentMiddleware

        from agent_budget.integrations._presigned import presign_hooks
        from agent_budget.integrations.langchain import BudgetState

        class PassThrough(AgentMiddleware):  # type: ignore[type-arg]
            """BudgetMiddleware's shape doing nothing: its hooks, its private state key."""

            state_schema = BudgetState

            def __init__(self) -> None:
                super().__init__()
                presign_hooks(self)  # as BudgetMiddleware does: the cheapest hook

            def before_agent(self, state: Any, runtime: Any) -> Any:
                return None

            def wrap_model_call(self, request: Any, handler: Any) -> Any:
                return handler(request)

            def wrap_tool_call(self, request: Any, handler: Any) -> Any:
                return handler(request)

        return create_agent(model, [search], middleware=[PassThrough()])
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
    "floor: no-op handler",
    "floor: no-op middleware",
]
BASELINE = {"with_budget react": "bare react", "bare react": "bare react"}


def time_run(kind: str, steps: int, delay_s: float) -> tuple[float, float]:
    """(wall seconds, CPU seconds + the model's nominal sleep) of one run."""
    graph = build(kind, steps, delay_s)
    gc.collect()  # start each timed run from the same heap state
    start, cpu = time.perf_counter(), time.process_time()
    out = graph.invoke({"messages": [("user", "go")]}, {"recursion_limit": 10 * steps + 20})
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    tools_run = sum(1 for m in out["messages"] if m.type == "tool")
    assert tools_run == steps, f"{kind}: expected {steps} tool steps, got {tools_run}"
    return elapsed, cpu + (steps + 1) * delay_s


def python_calls(kind: str, steps: int) -> int:
    """Python function calls of one run, in every thread: deterministic, so its ratio is
    the same on a busy machine as on an idle one (a proxy for the CPU a run adds)."""
    graph = build(kind, steps, 0.0)
    count = [0]

    def profile(frame: Any, event: str, arg: Any) -> None:
        if event == "call":
            count[0] += 1

    sys.setprofile(profile)
    threading.setprofile(profile)
    try:
        graph.invoke({"messages": [("user", "go")]}, {"recursion_limit": 10 * steps + 20})
    finally:
        sys.setprofile(None)
        threading.setprofile(None)  # type: ignore[arg-type]
    return count[0]


def measure(
    steps_list: list[int], repeats: int, delay: float, advance: Callable[[], None]
) -> list[dict[str, Any]]:
    rows = []
    for steps in steps_list:
        wall: dict[str, list[float]] = {k: [] for k in KINDS}
        cpu: dict[str, list[float]] = {k: [] for k in KINDS}
        for _ in range(repeats):  # interleaved, so drift hits every kind alike
            for kind in KINDS:
                w, c = time_run(kind, steps, delay)
                wall[kind].append(w)
                cpu[kind].append(c)
                advance()
        calls = {kind: python_calls(kind, steps) for kind in KINDS}
        for kind in KINDS:
            base = BASELINE.get(kind, "bare")
            # The ratio of each repeat to the baseline of the same repeat: its spread
            # shows how much of a difference is noise.
            per_cpu = [t / b for t, b in zip(cpu[kind], cpu[base], strict=True)]
            per_wall = [t / b for t, b in zip(wall[kind], wall[base], strict=True)]
            rows.append(
                {
                    "steps": steps,
                    "kind": kind,
                    "baseline": base,
                    "model_ms": delay * 1000,
                    "us_per_step": statistics.median(cpu[kind]) / steps * 1e6,
                    "ratio": statistics.median(per_cpu),
                    "ratio_iqr": _iqr(per_cpu),
                    "wall_us_per_step": statistics.median(wall[kind]) / steps * 1e6,
                    "wall_ratio": statistics.median(per_wall),
                    "wall_ratio_iqr": _iqr(per_wall),
                    "python_calls_per_step": calls[kind] / steps,
                    "python_calls_ratio": calls[kind] / calls[base],
                }
            )
    return rows


def _iqr(values: list[float]) -> list[float]:
    q = statistics.quantiles(values, n=4) if len(values) > 3 else [min(values), max(values)]
    return [round(q[0], 3), round(q[-1], 3)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--model-ms", type=float, default=1.0)
    ap.add_argument("--steps", type=int, nargs="+", default=[50, 500])
    args = ap.parse_args()
    console = Console(width=150)
    delay = args.model_ms / 1000
    for kind in KINDS:  # warm imports and caches for every path
        time_run(kind, 10, delay)
    with Progress(console=console) as progress:
        task = progress.add_task("overhead", total=len(args.steps) * args.repeats * len(KINDS))
        rows = measure(args.steps, args.repeats, delay, lambda: progress.advance(task))
    title = f"Per-step cost ({args.model_ms} ms model, median of {args.repeats}; µs/step and "
    table = Table(title=title + "ratio: CPU + model time)")
    cols = ("steps", "agent", "µs/step", "ratio", "IQR", "wall ratio", "wall IQR", "py calls")
    for col in cols:
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(
            str(r["steps"]),
            r["kind"] + (" (vs bare react)" if r["baseline"] != "bare" else ""),
            f"{r['us_per_step']:.0f}",
            f"x{r['ratio']:.3f}",
            f"{r['ratio_iqr'][0]:.2f}-{r['ratio_iqr'][1]:.2f}",
            f"x{r['wall_ratio']:.3f}",
            f"{r['wall_ratio_iqr'][0]:.2f}-{r['wall_ratio_iqr'][1]:.2f}",
            f"x{r['python_calls_ratio']:.3f}",
        )
    console.print(table)
    RESULTS.mkdir(exist_ok=True)
    meta = {"load_average_at_end": os.getloadavg(), "repeats": args.repeats}
    (RESULTS / "overhead.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    plot(rows, RESULTS / "overhead.png")
    console.print(f"wrote {RESULTS / 'overhead.json'} and overhead.png")
    console.print(f"load average at the end: {os.getloadavg()}")


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
        got = [next(r for r in rows if r["kind"] == kind and r["steps"] == s) for s in steps]
        err = [[y - r["ratio_iqr"][0] for y, r in zip(ys, got, strict=True)],
               [r["ratio_iqr"][1] - y for y, r in zip(ys, got, strict=True)]]  # fmt: skip
        bars = ax.bar(xs, ys, width, label=kind, yerr=err, capsize=2)
        ax.scatter(xs, [r["python_calls_ratio"] for r in got], marker="x", color="black",
                   zorder=3, label="Python calls ratio" if i == 0 else None)  # fmt: skip
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
    ax.set_ylabel("CPU + model time / bare agent (median)")
    ax.set_ylim(0.9, max(1.3, max(r["ratio"] for r in rows) + 0.05))
    ax.set_title(
        f"Per-step cost of a budget, {rows[0]['model_ms']:g} ms model (one run, interleaved)"
    )
    ax.legend(loc="upper left", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
