"""Travel planning: the planner agent vs ReAct vs ReAct + budget message, same model, same
tools, same generated scenarios (static and with each event kind), run through the
evaluation harness (`agent_budget.bench`: resumable store, progress, ledger, metrics).

Per agent and event kind: exact match of the executed path with the optimum (the replanning
exact planner on the same scenario), paid / optimal, goal reached, budget overruns (paid over
the scenario's budget), tokens. Writes benchmarks/results/travel.json, travel.png (one
panel per metric, a bar per agent and event kind) and travel_<agent>.png (one agent's bars).
Sweeps are stored under ``--store/<model>/<sweep>`` (``planner``; ``baselines``: both ReAct
agents, run scenario by scenario, the event kinds in turns): a run that is stopped (Ctrl-C,
a time limit) resumes where it stopped when the same command is run again, and a stopped
baseline sweep has both agents on the same scenarios.

    python benchmarks/travel.py                          # 25 scenarios per kind, embedded model
    python benchmarks/travel.py --model openai/gpt-4.1-mini
    python benchmarks/travel.py --agents react --per-kind 25     # resumable: run it in parts
    python benchmarks/travel.py --react-per-kind 2       # the baselines on a stated sample
    python benchmarks/travel.py --report-only            # the report from what is stored
"""

from __future__ import annotations

import argparse
import json
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from agent_budget.bench import load_sweep
from agent_budget.bench.report import summarize as harness_summary

RESULTS = Path(__file__).parent / "results"
KINDS = ("static", "ban_tool", "cost_change", "preference_change", "tools_change")
AGENTS = ("planner", "react", "react_budget")
FACTORY = "agent_budget.agents.travel.bench"


def config_of(agent: str, model: str, react_steps: int, n_threads: int) -> dict[str, Any]:
    """One agent's configuration. Each task brings its scenario's USD and tool prices
    (`Task.budget`); plain ReAct takes only the prices (it is charged, never held to the
    money) and sees a blank budget message."""
    options: dict[str, Any] = {"max_tokens": 160, "temperature": 0}
    if model.startswith("local:"):
        options.update(n_ctx=4096, n_threads=n_threads)
    config: dict[str, Any] = {"name": agent, "model": model, "model_options": options}
    if agent == "planner":
        config["agent"] = f"{FACTORY}:planner_agent"
    else:
        config["agent"] = f"{FACTORY}:react_agent"
        config["budget"] = {"model_calls": react_steps, "on_exhausted": "finalize"}
        if agent == "react":
            config["task_budget"] = ["prices"]
            config["budget"]["message_template"] = " "
    return config


def sweep_spec(
    agents: Sequence[str], model: str, per_kind: int, react_steps: int, n_threads: int
) -> dict[str, Any]:
    """One sweep over the ``travel`` task set, the kinds in turns. Agents in one sweep run
    task by task (``order: task``): a sweep stopped early has every agent on the same
    scenarios, and the second ReAct baseline starts from the first one's saved prompt prefix
    (the same system prompt and tool list), not from 2,500 tokens to evaluate."""
    return {
        "name": "travel-" + "-".join(agents),
        "tasks": {"set": "travel", "per_kind": per_kind, "interleave": True},
        "budgets": [{"label": "scenario"}],
        "workers": 1,
        "order": "task",
        "configs": [config_of(a, model, react_steps, n_threads) for a in agents],
    }


def sweeps(chosen: Sequence[str], args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """Store name -> sweep: the planner alone, the chosen baselines together."""
    react_n = args.react_per_kind or args.per_kind
    base = [a for a in AGENTS if a != "planner" and a in chosen]
    out: dict[str, dict[str, Any]] = {}
    if "planner" in chosen:
        spec = sweep_spec(["planner"], args.model, args.per_kind, args.react_steps, args.n_threads)
        out["planner"] = spec
    if base:
        spec = sweep_spec(base, args.model, react_n, args.react_steps, args.n_threads)
        out["baselines" if len(base) > 1 else base[0]] = spec
    return out


def rows_of(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The harness's result rows as the benchmark's rows (facts from the scorer's detail)."""
    rows = []
    for r in results:
        try:
            facts = json.loads(r["detail"]) if r["detail"] else {}
        except json.JSONDecodeError:
            facts = {}
        rows.append(
            {
                "agent": r["config"],
                "kind": r["task"].rsplit("-", 1)[0],
                "scenario": r["task"],
                "status": r["status"],
                "goal_reached": bool(r["passed"]),
                "exact_match": bool(facts.get("exact")),
                "paid": facts.get("paid"),
                "optimal": facts.get("optimal"),
                "paid_over_optimal": (facts["paid"] / facts["optimal"])
                if r["passed"] and facts.get("optimal")
                else None,
                "overrun": bool(facts.get("overrun")) or bool(r["overruns"]),
                "calls": facts.get("calls", 0),
                "tokens": r["input_tokens"] + r["output_tokens"],
                "model_calls": r["model_calls"],
                "usd": r["usd"],
                "seconds": r["seconds"],
                "error": r["error"],
            }
        )
    return rows


def summarize(rows: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for agent in AGENTS:
        for kind in (*KINDS, "events", "all"):
            sel = [
                r
                for r in rows
                if r["agent"] == agent
                and (
                    kind == "all"
                    or r["kind"] == kind
                    or (kind == "events" and r["kind"] != "static")
                )
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
                "tool_calls": sum(r["calls"] for r in sel) / len(sel),
                "errors": sum(r["status"] == "error" for r in sel),
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
    runs = ", ".join(f"{a} {summary[a]['all']['n']}" for a in agents)
    fig.suptitle(f"Travel planning on {model}, by event kind (scenarios run: {runs})", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def report(
    rows: list[dict[str, Any]], harness: dict[str, Any], model: str, meta: dict[str, Any],
    out: Path, console: Console,
) -> None:  # fmt: skip
    summary = summarize(rows)
    table = Table(title=f"travel planning ({model})")
    cols = ("agent", "kind", "n", "exact", "goal", "paid/opt", "overruns", "tokens", "calls")
    for col in cols:
        table.add_column(col, justify="right" if col not in ("agent", "kind") else "left")
    for agent, kinds in summary.items():
        for kind, c in kinds.items():
            ratio = "-" if c["paid_over_optimal"] is None else f"{c['paid_over_optimal']:.3f}"
            table.add_row(
                agent, kind, str(c["n"]), f"{c['exact_match']:.0%}", f"{c['goal_reached']:.0%}",
                ratio, str(c["overruns"]), f"{c['tokens']:.0f}", f"{c['tool_calls']:.1f}",
            )  # fmt: skip
    console.print(table)
    data = {"model": model, **meta, "summary": summary, "harness": harness, "runs": rows}
    out.write_text(json.dumps(data, indent=1) + "\n")
    png = out.with_suffix(".png")
    plot(summary, png, model)
    for agent in summary:  # one figure per agent too, its bars per event kind
        plot({agent: summary[agent]}, out.with_name(f"{out.stem}_{agent}.png"), model)
    console.print(f"wrote {out}, {png} and {out.stem}_<agent>.png")


def stored(store: Path) -> list[dict[str, Any]]:
    """The results kept in one agent's store (none when it never ran)."""
    from agent_budget.bench.store import ResultStore

    if not (store / "results.db").exists():
        return []
    kept = ResultStore(store / "results.db")
    try:
        return kept.results()
    finally:
        kept.close()


def run_agent(name: str, spec: dict[str, Any], store: Path, console: Console, fresh: bool) -> None:
    """Run (or resume) one sweep with a progress bar."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from agent_budget.bench import run_sweep

    progress = Progress(
        TextColumn(f"[bold]{name}[/bold]"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), TextColumn("{task.fields[last]}"), console=console,
    )  # fmt: skip
    bar = progress.add_task(name, total=None, last="")

    def on_start(total: int, pending: int, spent: Any) -> None:
        progress.update(bar, total=total, completed=total - pending)

    def on_result(result: dict[str, Any], spent: Any) -> None:
        mark = "pass" if result["passed"] else result["status"]
        last = f"{result['config']} {result['task']}: {mark} ({result['seconds']:.0f}s)"
        progress.update(bar, advance=1, last=last)

    with progress:
        run_sweep(
            spec, store, backend="inline", fresh=fresh, on_start=on_start, on_result=on_result
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--model", default="local:smollm2-135m")
    parser.add_argument("--per-kind", type=int, default=25, help="scenarios per event kind")
    parser.add_argument("--agents", default=",".join(AGENTS))
    parser.add_argument(
        "--react-per-kind",
        type=int,
        help="scenarios per kind for the ReAct baselines (default: --per-kind); the first "
        "ones of each kind, the same scenarios the planner agent runs",
    )
    parser.add_argument(
        "--react-steps", type=int, default=6, help="model calls a ReAct run may make"
    )
    parser.add_argument("--n-threads", type=int, default=1, help="llama.cpp threads (local)")
    parser.add_argument(
        "--store",
        type=Path,
        default=RESULTS / "travel_sweep",
        help="where the resumable sweeps live (SQLite files, not committed)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS / "travel.json")
    parser.add_argument("--fresh", action="store_true", help="start the sweeps over")
    parser.add_argument("--report-only", action="store_true", help="report what is stored")
    args = parser.parse_args()
    console = Console()
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", args.model)
    started = time.monotonic()
    chosen = [a for a in args.agents.split(",") if a]
    for agent in chosen:
        if agent not in AGENTS:
            parser.error(f"--agents: {agent!r} is not one of {', '.join(AGENTS)}")
    react_n = args.react_per_kind or args.per_kind
    if not args.report_only:
        for name, spec in sweeps(chosen, args).items():
            run_agent(name, spec, args.store / slug / name, console, args.fresh)
    # The report covers every sweep stored for this model, whichever ran this time.
    rows: list[dict[str, Any]] = []
    harness: dict[str, Any] = {}
    every = sweeps(AGENTS, args)
    for alone in ("react", "react_budget"):  # a baseline run on its own (--agents react)
        every[alone] = sweeps([alone], args)[alone]
    for name, spec in every.items():
        found = stored(args.store / slug / name)
        if found:
            rows += rows_of(found)
            cells = harness_summary(load_sweep(spec), found)
            harness[name] = {"cells": cells["cells"], "totals": cells["totals"]}
    meta = {
        "per_kind": args.per_kind,
        "react_per_kind": react_n,
        "react_steps": args.react_steps,
        "n_threads": args.n_threads,
        "seconds_this_call": round(time.monotonic() - started, 1),
    }
    report(rows, harness, args.model, meta, args.out, console)


if __name__ == "__main__":
    main()
