"""Travel planning: the planner agent vs ReAct vs ReAct + budget message, same model, same
tools, on generated scenarios (static and with each event kind).

Per agent and event kind: exact match of the executed path with the optimum (the replanning
exact planner on the same scenario), paid / optimal, goal reached, budget overruns, tokens.
Writes benchmarks/results/travel.json and travel.png (one panel per metric, a bar per agent
and event kind).

    python benchmarks/travel.py                          # 24 scenarios per kind, embedded model
    python benchmarks/travel.py --model openai/gpt-4.1-mini
    python benchmarks/travel.py --agents react,react_budget --per-kind 2 --out react.json
    python benchmarks/travel.py --merge travel.json react.json   # one report from both
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from decimal import Decimal
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

RESULTS = Path(__file__).parent / "results"
KINDS = ("static", "ban_tool", "cost_change", "preference_change", "tools_change")
AGENTS = ("planner", "react", "react_budget")


def scenarios(
    per_kind: int, seed0: int = 1000, kinds: tuple[str, ...] = KINDS
) -> list[tuple[str, Any]]:
    from agent_budget.tools.travel import generate_scenario

    out = []
    for kind in kinds:
        for i in range(per_kind):
            seed = seed0 + KINDS.index(kind) * 1000 + i
            event = None if kind == "static" else kind
            out.append((kind, generate_scenario(seed, event=event, depth=(0, 3), composites=2)))
    return out


def run_one(agent: str, scenario: Any, model: Any, react_steps: int) -> dict[str, Any]:
    from agent_budget import BudgetTracker
    from agent_budget.tools.travel import TravelWorld
    from agent_budget.tools.travel.agent import build_travel_agent, plan_json
    from agent_budget.tools.travel.baselines import build_react
    from agent_budget.tools.travel.generate import optimal_run

    best = optimal_run(scenario)
    world = TravelWorld(scenario)
    started = time.monotonic()
    error = None
    if agent == "planner":
        graph = build_travel_agent(world, model, language="plan-only")
        tracker = BudgetTracker(graph.budget)
    else:
        graph, budget = build_react(
            world, model, show_budget=agent == "react_budget", max_steps=react_steps
        )
        tracker = BudgetTracker(budget)
    config = {"configurable": {"budget_tracker": tracker}, "recursion_limit": 4 * react_steps + 8}
    state: dict[str, Any] = {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            state = graph.invoke({"messages": [("user", scenario.request)]}, config)
    except Exception as exc:  # a baseline that derails (recursion limit, bad tool call)
        error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''}"
    path = [c.tool for c in world.calls]
    goal = any(c.tool == "assemble_trip" and c.ok for c in world.calls)
    if agent == "planner" and state:
        goal = plan_json(state)["goal_reached"]
    paid = world.paid()
    optimal = Decimal(best.paid)
    return {
        "agent": agent,
        "scenario": scenario.name,
        "goal_reached": goal,
        "exact_match": goal and path == [c.tool for c in best.executed],
        "paid": float(paid),
        "optimal": float(optimal),
        "paid_over_optimal": float(paid / optimal) if goal and optimal else None,
        "budget": float(scenario.budget or 0),
        "overrun": scenario.budget is not None and paid > scenario.budget,
        "calls": len(path),
        "tokens": tracker.spent.input_tokens + tracker.spent.output_tokens,
        "model_calls": tracker.spent.model_calls,
        "seconds": round(time.monotonic() - started, 2),
        "error": error,
    }


def summarize(rows: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for agent in AGENTS:
        for kind in (*KINDS, "events"):
            sel = [
                r
                for r in rows
                if r["agent"] == agent
                and (r["kind"] == kind or (kind == "events" and r["kind"] != "static"))
            ]
            if not sel:
                continue
            ratios = [r["paid_over_optimal"] for r in sel if r["paid_over_optimal"] is not None]
            out.setdefault(agent, {})[kind] = {
                "n": len(sel),
                "exact_match": sum(r["exact_match"] for r in sel) / len(sel),
                "goal_reached": sum(r["goal_reached"] for r in sel) / len(sel),
                "paid_over_optimal": sum(ratios) / len(ratios) if ratios else None,
                "overruns": sum(r["overrun"] for r in sel),
                "tokens": sum(r["tokens"] for r in sel) / len(sel),
            }
    return out


def plot(summary: dict[str, Any], path: Path, model: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = [
        ("exact_match", "exact match with the optimum"),
        ("goal_reached", "goal reached"),
        ("paid_over_optimal", "paid / optimal (goal reached)"),
        ("tokens", "tokens per scenario"),
    ]
    fig, axes = plt.subplots(1, len(metrics), figsize=(15, 3.8))
    agents = [a for a in AGENTS if a in summary]
    width = 0.8 / max(1, len(agents))
    for ax, (key, title) in zip(axes, metrics, strict=True):
        for j, agent in enumerate(agents):
            xs, ys = [], []
            for i, kind in enumerate(KINDS):
                cell = summary[agent].get(kind)
                if cell and cell[key] is not None:
                    xs.append(i + j * width)
                    ys.append(cell[key])
            ax.bar(xs, ys, width=width, label=agent)
        ax.set_xticks([i + width * (len(agents) - 1) / 2 for i in range(len(KINDS))])
        ax.set_xticklabels([k.replace("_", "\n") for k in KINDS], fontsize=7)
        ax.set_title(title, fontsize=9)
    axes[0].legend(fontsize=7)
    fig.suptitle(f"Travel planning on {model}: per agent and event kind", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def report(rows: list[dict[str, Any]], model: str, out: Path, console: Console) -> None:
    summary = summarize(rows)
    table = Table(title=f"travel planning ({model})")
    for col in ("agent", "kind", "n", "exact", "goal", "paid/opt", "overruns", "tokens"):
        table.add_column(col, justify="right" if col not in ("agent", "kind") else "left")
    for agent, kinds in summary.items():
        for kind, c in kinds.items():
            ratio = "-" if c["paid_over_optimal"] is None else f"{c['paid_over_optimal']:.3f}"
            table.add_row(
                agent, kind, str(c["n"]), f"{c['exact_match']:.0%}", f"{c['goal_reached']:.0%}",
                ratio, str(c["overruns"]), f"{c['tokens']:.0f}",
            )  # fmt: skip
    console.print(table)
    data = {"model": model, "summary": summary, "runs": rows}
    out.write_text(json.dumps(data, indent=1) + "\n")
    png = out.with_suffix(".png")
    plot(summary, png, model)
    console.print(f"wrote {out} and {png}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="local:smollm2-135m")
    parser.add_argument("--per-kind", type=int, default=24, help="scenarios per event kind")
    parser.add_argument("--agents", default=",".join(AGENTS))
    parser.add_argument("--kinds", default=",".join(KINDS), help="static and/or event kinds")
    parser.add_argument(
        "--react-steps", type=int, default=6, help="model calls a ReAct run may make"
    )
    parser.add_argument("--out", type=Path, default=RESULTS / "travel.json")
    parser.add_argument("--merge", type=Path, nargs="*", help="only merge these result files")
    args = parser.parse_args()
    console = Console()
    if args.merge:
        rows: list[dict[str, Any]] = []
        model = ""
        for f in args.merge:
            data = json.loads(f.read_text())
            rows += [r for r in data["runs"] if r not in rows]
            model = data["model"]
        report(rows, model, args.out, console)
        return
    from agent_budget.models import resolve

    agents = [a for a in args.agents.split(",") if a]
    local: dict[str, Any] = {"n_ctx": 4096} if args.model.startswith("local:") else {}
    model = resolve(args.model, max_tokens=160, temperature=0, **local)
    made = scenarios(args.per_kind, kinds=tuple(k for k in args.kinds.split(",") if k))
    rows = []
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with Progress(console=console) as progress:
        task = progress.add_task("scenarios", total=len(made) * len(agents))
        for kind, scenario in made:
            for agent in agents:  # interleaved: the same load for every agent
                row = run_one(agent, scenario, model, args.react_steps)
                row["kind"] = kind
                rows.append(row)
                progress.advance(task)
            partial = {"model": args.model, "summary": summarize(rows), "runs": rows}
            args.out.with_suffix(".partial.json").write_text(json.dumps(partial) + "\n")
    report(rows, args.model, args.out, console)


if __name__ == "__main__":
    main()
