"""Web search under a budget: BATS vs ReAct + budget message vs ReAct, same model, same tools,
over Query budgets 1, 2, 5, 10, 20, 50 (the URL budget equal to the Query budget).

Runs through the evaluation harness (`agent_budget.bench`): the ``search`` task set, one
sweep point per Query budget, three configurations:

- ``bats``: plan by budget, tool loop with the budget message, verifier (SUCCESS / CONTINUE /
  PIVOT) - `agent_budget.agents.search`;
- ``react+budget``: a ReAct loop with the budget message after every call;
- ``react``: the same loop, the budget enforced but never shown (``message_template: ""``).

All three share a step limit (model calls) so no run loops forever. Cost is unified: tokens
priced (the on-device model charged as if it cost what gpt-4o-mini does, $0.15 / $0.60 per
million tokens) plus $0.005 a search and $0.001 a page read. Writes
benchmarks/results/search/ (the harness's runs / summary files) and
benchmarks/results/search.json + search.png (accuracy vs mean cost, accuracy vs Query budget).

    python benchmarks/search.py                            # offline index, embedded model
    python benchmarks/search.py --limit 4 --budgets 1,5    # a smaller run
    python benchmarks/search.py --model openai/gpt-4.1-mini --backend tavily --price 0.4,1.6
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

RESULTS = Path(__file__).parent / "results"
BUDGETS = (1, 2, 5, 10, 20, 50)
CONFIGS = ("bats", "react+budget", "react")
AGENT = "agent_budget.agents.search.bench"
TOOL_PRICES = {"web_search": 0.005, "fetch_page": 0.001}  # as agents.search.budgeting
SETTINGS = ("steps", "rounds", "usd", "k", "page_chars", "max_tokens", "n_ctx", "threads")


def sweep_spec(args: argparse.Namespace) -> dict[str, Any]:
    from agent_budget.agents.search.bench import research_config_budget

    local = args.model.startswith("local:")
    model_options: dict[str, Any] = {"max_tokens": args.max_tokens, "temperature": 0}
    if local:
        model_options.update(n_ctx=args.n_ctx, n_threads=args.threads)
    tools = {"backend": args.backend, "k": args.k, "max_page_chars": args.page_chars}
    base = research_config_budget(steps=args.steps)
    common = {"model": args.model, "price": args.price, "model_options": model_options}
    configs = [
        {**common, "name": "bats", "agent": f"{AGENT}:bats_agent", "budget": base,
         "options": {**tools, "max_rounds": args.rounds}},
        {**common, "name": "react+budget", "agent": f"{AGENT}:react_agent", "budget": base,
         "options": tools},
        {**common, "name": "react", "agent": f"{AGENT}:react_agent",
         "budget": {**base, "message_template": ""}, "options": tools},
    ]  # fmt: skip
    budgets = [
        {"label": f"q={q}", "tool_calls": {"web_search": q, "fetch_page": q}, "usd": args.usd}
        for q in args.budgets
    ]
    return {
        "name": "search",
        "tasks": {"set": "search", "limit": args.limit, "offset": args.offset},
        "budgets": budgets,
        "configs": [c for c in configs if c["name"] in args.configs],
        "workers": args.workers,
        "global_cap_usd": args.cap,
    }


def curves(results: list[dict[str, Any]], budgets: list[int]) -> dict[str, list[dict[str, Any]]]:
    """Per configuration, per Query budget: accuracy, mean unified cost, mean searches."""
    out: dict[str, list[dict[str, Any]]] = {}
    for config in CONFIGS:
        rows = []
        for q in budgets:
            runs = [r for r in results if r["config"] == config and r["budget"] == f"q={q}"]
            if not runs:
                continue
            n = len(runs)
            rows.append(
                {
                    "queries": q,
                    "runs": n,
                    "accuracy": sum(bool(r["passed"]) for r in runs) / n,
                    "mean_usd": float(sum(Decimal(r["usd"]) for r in runs) / n),
                    "mean_searches": sum(r["tool_calls"].get("web_search", 0) for r in runs) / n,
                    "mean_pages": sum(r["tool_calls"].get("fetch_page", 0) for r in runs) / n,
                    "mean_model_calls": sum(r["model_calls"] for r in runs) / n,
                    "errors": sum(r["status"] == "error" for r in runs),
                    "overruns": sum(len(r["overruns"]) for r in runs),
                }
            )
        if rows:
            out[config] = rows
    return out


def fisher_p(a: int, n: int, b: int, m: int) -> float:
    """Two-sided Fisher exact p-value of ``a`` passes in ``n`` runs vs ``b`` in ``m``: how
    often a split at least this uneven comes from the same pass rate by chance."""
    from math import comb

    passes, total = a + b, n + m

    def prob(x: int) -> float:
        return comb(n, x) * comb(m, passes - x) / comb(total, passes)

    seen = prob(a)
    xs = range(max(0, passes - m), min(n, passes) + 1)
    return min(1.0, sum(prob(x) for x in xs if prob(x) <= seen * (1 + 1e-9)))


def chance(bats: dict[str, Any], react: dict[str, Any]) -> str:
    """BATS's cell against ReAct's, in passes, with the chance of a split that uneven."""
    a, n = round(bats["accuracy"] * bats["runs"]), bats["runs"]
    b, m = round(react["accuracy"] * react["runs"]), react["runs"]
    return (
        f"BATS {a}/{n} at Query budget {bats['queries']} vs ReAct {b}/{m} at "
        f"{react['queries']}: Fisher exact p = {fisher_p(a, n, b, m):.2f}"
    )


def finding(found: dict[str, list[dict[str, Any]]]) -> str:
    """The paper's claim checked on these numbers: does BATS at a small Query budget match
    ReAct's best accuracy at a larger one, at lower cost?"""
    bats, react = found.get("bats"), found.get("react")
    if not bats or not react:
        return "not measured (both bats and react are needed)"
    best = max(react, key=lambda r: (r["accuracy"], -r["mean_usd"]))
    if best["accuracy"] == 0 and max(r["accuracy"] for r in bats) == 0:
        return (
            "not testable on this run: every configuration answered 0% at every budget "
            f"(BATS spent ${min(r['mean_usd'] for r in bats):.5f}-"
            f"${max(r['mean_usd'] for r in bats):.5f}/question, ReAct "
            f"${min(r['mean_usd'] for r in react):.5f}-${max(r['mean_usd'] for r in react):.5f})"
        )
    if best["accuracy"] == 0:  # "matching" 0% says nothing: report what BATS reached
        top = max(bats, key=lambda r: (r["accuracy"], -r["mean_usd"]))
        same = next((r for r in react if r["queries"] == top["queries"]), best)
        p = fisher_p(round(top["accuracy"] * top["runs"]), top["runs"], 0, same["runs"])
        return (
            f"not testable: ReAct answered 0% at every budget; BATS's best is "
            f"{top['accuracy']:.0%} at Query budget {top['queries']} for "
            f"${top['mean_usd']:.5f}/question ({chance(top, same)}"
            + ("; not distinguishable from chance)" if p >= 0.05 else ")")
        )
    matches = [r for r in bats if r["accuracy"] >= best["accuracy"]]
    if not matches:
        top = max(r["accuracy"] for r in bats)
        return (
            f"not reproduced: BATS's best accuracy {top:.0%} stays below ReAct's best "
            f"{best['accuracy']:.0%} (at Query budget {best['queries']})"
        )
    small = min(matches, key=lambda r: (r["queries"], r["mean_usd"]))
    cheaper = small["mean_usd"] < best["mean_usd"]
    return (
        f"BATS reaches {small['accuracy']:.0%} at Query budget {small['queries']} for "
        f"${small['mean_usd']:.5f}/question; ReAct's best is {best['accuracy']:.0%} at Query "
        f"budget {best['queries']} for ${best['mean_usd']:.5f}/question: "
        + ("reproduced (as good, smaller budget, cheaper)" if cheaper and small["queries"] <=
           best["queries"] else "matched in accuracy but not cheaper or not at a smaller budget")
        + f" ({chance(small, best)})"
    )  # fmt: skip


def plot(found: dict[str, list[dict[str, Any]]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.6))
    # Agents that score the same overlap: tell them apart by marker and line style.
    styles = dict(zip(CONFIGS, ({"marker": "o", "linestyle": "-"},
                                {"marker": "s", "linestyle": "--", "markersize": 8},
                                {"marker": "^", "linestyle": ":"}), strict=True))  # fmt: skip
    for config, rows in found.items():
        xs = [r["mean_usd"] for r in rows]
        ys = [r["accuracy"] for r in rows]
        style = styles.get(config, {"marker": "o"})
        left.plot(xs, ys, label=config, **style)
        for r in rows:
            left.annotate(str(r["queries"]), (r["mean_usd"], r["accuracy"]), fontsize=7,
                          textcoords="offset points", xytext=(3, 3))  # fmt: skip
        right.plot([r["queries"] for r in rows], ys, label=config, **style)
    left.set_xscale("log")
    left.set_xlabel("mean unified cost per question (USD, log; labels: Query budget)")
    left.set_ylabel("accuracy")
    right.set_xscale("log")
    right.set_xlabel("Query budget (= URL budget)")
    right.set_ylabel("accuracy")
    for ax in (left, right):
        ax.set_ylim(-0.05, 1.05)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(textwrap.fill(title, 150), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="local:smollm2-135m")
    p.add_argument("--backend", default="offline", help="offline | ddgs | tavily | searxng")
    p.add_argument("--price", default="0.15,0.60", help="USD per million tokens in,out")
    p.add_argument("--budgets", default=",".join(map(str, BUDGETS)))
    p.add_argument("--configs", default=",".join(CONFIGS))
    p.add_argument("--limit", type=int, default=12, help="questions")
    p.add_argument("--offset", type=int, default=0)
    p.add_argument("--steps", type=int, default=6, help="model calls per run at most")
    p.add_argument("--rounds", type=int, default=2, help="BATS verifier rounds at most")
    p.add_argument("--usd", default="0.50", help="USD budget per question")
    p.add_argument("--cap", default="5", help="what the whole sweep may spend (USD)")
    p.add_argument("--k", type=int, default=3, help="hits per search")
    p.add_argument("--page-chars", type=int, default=1200)
    p.add_argument("--max-tokens", type=int, default=64)
    p.add_argument("--n-ctx", type=int, default=2048)
    p.add_argument("--threads", type=int, default=1, help="llama.cpp threads per worker")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--out", type=Path, default=RESULTS / "search")
    p.add_argument("--fresh", action="store_true", help="start over instead of resuming")
    p.add_argument(
        "--merge",
        default="",
        help="DIR,DIR,...: report the runs of sweeps already run (e.g. budgets split over "
        "two runs to keep each under the shared lock's time) as one, writing --out's JSON/PNG",
    )
    p.add_argument(
        "--stored",
        action="store_true",
        help="report the runs already stored in --out (a sweep stopped part way) without "
        "running any; cells with fewer runs than the others are then marked in the JSON",
    )
    args = p.parse_args(argv)
    console = Console()
    try:
        args.budgets = [int(x) for x in args.budgets.split(",") if x.strip()]
        args.price = [float(x) for x in args.price.split(",")]
        args.configs = [c.strip() for c in args.configs.split(",") if c.strip()]
        if len(args.price) != 2 or not args.budgets or min(args.budgets) < 1:
            raise ValueError("--price needs two numbers and --budgets positive integers")
        unknown = set(args.configs) - set(CONFIGS)
        if unknown:
            raise ValueError(f"unknown configs {sorted(unknown)}; use {', '.join(CONFIGS)}")
    except ValueError as exc:
        console.print(f"[red]{exc}[/red]")
        return 2

    if args.stored:
        from agent_budget.bench.runner import RESULTS_FILE
        from agent_budget.bench.store import ResultStore

        stored = ResultStore(args.out / RESULTS_FILE).results()
        report(args, stored, float("nan"), console, merged=[f"{args.out} (stored, partial)"])
        return 0
    if args.merge:
        dirs = args.merge.split(",")
        results: list[dict[str, Any]] = []
        for d in dirs:
            results += json.loads((Path(d) / "runs.json").read_text())
        parts = [json.loads(Path(d).with_suffix(".json").read_text()) for d in dirs]
        # The curve is one experiment only if every part ran it the same way: record the
        # parts' settings (not this command's defaults), and refuse parts that differ.
        ran = {json.dumps([p["model"], p["backend"], p["settings"]], sort_keys=True) for p in parts}
        if len(ran) > 1:
            console.print(f"[red]the parts ran with different settings: {sorted(ran)}[/red]")
            return 2
        args.model, args.backend = parts[0]["model"], parts[0]["backend"]
        for key, value in parts[0]["settings"].items():
            setattr(args, key, value)
        seconds = sum(p["seconds"] for p in parts)
        report(args, results, seconds, console, merged=dirs)
        return 0

    from agent_budget.bench import load_sweep, run_sweep, write_outputs
    from agent_budget.bench.errors import InvalidSweep

    try:
        spec = load_sweep(sweep_spec(args))
    except InvalidSweep as exc:
        console.print(f"[red]{exc}[/red]")
        return 2
    from agent_budget.agents.search.bench import tools_for

    tools_for(args.backend, args.k, args.page_chars)  # build the offline index once, up front
    started = time.monotonic()
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), TextColumn("{task.fields[last]}"), console=console,
    ) as bar:  # fmt: skip
        task = bar.add_task("search sweep", total=None, last="")

        def on_start(total: int, pending: int, spent: Decimal) -> None:
            bar.update(task, total=total, completed=total - pending)

        def on_result(r: dict[str, Any], spent: Decimal) -> None:
            mark = "pass" if r["passed"] else r["status"] if r["status"] != "ok" else "fail"
            last = f"{r['config']} {r['budget']} {r['task']}: {mark}, ${spent:.4f} so far"
            bar.update(task, advance=1, last=last)

        done = run_sweep(spec, args.out, fresh=args.fresh, on_start=on_start, on_result=on_result)
    seconds = time.monotonic() - started
    write_outputs(args.out, done.spec, done.results)
    report(args, done.results, seconds, console)
    return 0


def report(
    args: argparse.Namespace,
    results: list[dict[str, Any]],
    seconds: float,
    console: Console,
    merged: list[str] | None = None,
) -> None:
    """The curves, the finding, the JSON and the PNG of ``results``."""
    import os

    budgets = sorted({int(r["budget"].split("=")[1]) for r in results})
    found = curves(results, budgets)
    said = finding(found)
    # Merged parts may each have run other questions than --limit says: count the runs'.
    questions = len({r.get("task_id", r.get("task")) for r in results}) or args.limit
    data = {
        "model": args.model,
        "backend": args.backend,
        "questions": questions,
        "query_budgets": budgets,
        "url_budget": "equal to the Query budget",
        "prices": {"model_per_million_tokens": args.price, **TOOL_PRICES},
        "settings": {k: getattr(args, k) for k in SETTINGS},
        "curves": found,
        "finding": said,
        "seconds": round(seconds, 1),
        "load_average": os.getloadavg(),
        "runs": len(results),
        "overruns": sum(len(r["overruns"]) for r in results),
        "merged_from": merged,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    stem = args.out.parent / args.out.name
    stem.with_suffix(".json").write_text(json.dumps(data, indent=2) + "\n")
    title = f"{args.model}, {args.backend} index, {questions} questions: {said}"
    plot(found, stem.with_suffix(".png"), title)
    table = Table(title=f"search sweep ({len(results)} runs, {seconds:.0f} s)")
    for col in ("config", "Query budget", "accuracy", "mean USD", "searches", "pages", "calls"):
        table.add_column(col, justify="right" if col != "config" else "left")
    for config, rows in found.items():
        for r in rows:
            table.add_row(config, str(r["queries"]), f"{r['accuracy']:.0%}",
                          f"{r['mean_usd']:.5f}", f"{r['mean_searches']:.1f}",
                          f"{r['mean_pages']:.1f}", f"{r['mean_model_calls']:.1f}")  # fmt: skip
    console.print(table)
    console.print(f"Finding: {said}")
    console.print(f"[dim]{stem.with_suffix('.json')}, {stem.with_suffix('.png')}[/dim]")


if __name__ == "__main__":
    sys.exit(main())
