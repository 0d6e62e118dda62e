"""Planners on generated problems of growing size: CATS vs exact A*.

Part 1 (deterministic tools): for each size, several generated problems are planned by
  - exact:      A* with a time limit (it gives up rather than run out of memory),
  - mcts:       CATS without certification (the tree search alone),
  - cats:       CATS as shipped (MCTS, then a bounded exact search that proves or improves).
Reported: share of problems exact solves, optimality rate and cost ratio of mcts / cats vs
exact where exact finished, cats vs an admissible lower bound where it did not, and median
time per plan (ratios between methods are meaningful here; absolute times are noise).

Part 2 (tools that fail): each problem is executed many times with seeded failure draws;
mean paid cost of replanning exact (failure-blind) vs cats (expected-cost aware), plus exact
with objective="expected" as a reference for where cats' advantage comes from.

    python benchmarks/planner.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from agent_budget.planners import Limits, PlannerGaveUp, cats_plan, exact_plan, execute
from agent_budget.planners.generate import generate_problem
from agent_budget.planners.space import Space

RESULTS = Path(__file__).parent / "results"
console = Console(width=150)


def timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, float]:
    began = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - began


def plan_one(n: int, seed: int, exact_limit: float, cats_limit: float, sims: int) -> dict[str, Any]:
    p = generate_problem(n, seed=seed)
    space = Space(p)
    lower = space.h_nominal(space.start)
    row: dict[str, Any] = {
        "size": n,
        "seed": seed,
        "relevant_tools": len(space.tools),
        "lower_bound": None if lower is None else float(space.to_money(lower)),
    }
    try:
        ex, t = timed(exact_plan, p, limits=Limits(time_limit=exact_limit))
        row.update(exact_cost=float(ex.cost), exact_s=t, exact_steps=len(ex.steps))
    except PlannerGaveUp as exc:
        row.update(exact_cost=None, exact_s=exc.seconds, exact_expanded=exc.expanded)
    mcts, t = timed(cats_plan, p, simulations=sims, certify=False, time_limit=cats_limit)
    row.update(mcts_cost=float(mcts.cost), mcts_s=t)
    full, t = timed(cats_plan, p, simulations=sims, time_limit=cats_limit)
    row.update(cats_cost=float(full.cost), cats_s=t, cats_proven=full.proven_optimal)
    return row


def summarize_sizes(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for n in sorted({r["size"] for r in rows}):
        group = [r for r in rows if r["size"] == n]
        solved = [r for r in group if r["exact_cost"] is not None]

        def rate(key: str, rs: list[dict[str, Any]] = solved) -> float | None:
            if not rs:
                return None
            return sum(abs(r[key] - r["exact_cost"]) < 1e-9 for r in rs) / len(rs)

        def ratio(key: str, ref: str, rs: list[dict[str, Any]]) -> float | None:
            vals = [r[key] / r[ref] for r in rs if r.get(ref)]
            return statistics.mean(vals) if vals else None

        unsolved = [r for r in group if r["exact_cost"] is None]
        out.append(
            {
                "size": n,
                "problems": len(group),
                "relevant_tools": statistics.median(r["relevant_tools"] for r in group),
                "exact_solved": len(solved) / len(group),
                "exact_median_s": statistics.median(r["exact_s"] for r in group),
                "mcts_median_s": statistics.median(r["mcts_s"] for r in group),
                "cats_median_s": statistics.median(r["cats_s"] for r in group),
                "mcts_optimal_rate": rate("mcts_cost"),
                "cats_optimal_rate": rate("cats_cost"),
                "mcts_cost_ratio": ratio("mcts_cost", "exact_cost", solved),
                "cats_cost_ratio": ratio("cats_cost", "exact_cost", solved),
                "cats_vs_lower_bound_unsolved": ratio("cats_cost", "lower_bound", unsolved),
                "cats_proven_rate": sum(r["cats_proven"] for r in group) / len(group),
            }
        )
    return out


def failure_one(n: int, seed: int, runs: int, rate: float, sims: int) -> dict[str, Any]:
    p = generate_problem(n, seed=seed, failure_rate=rate)
    paid: dict[str, list[float]] = {"exact": [], "cats": [], "exact_expected": []}
    for run in range(runs):
        for label, method, options in (
            ("exact", "exact", {}),
            ("cats", "cats", {"simulations": sims}),
            ("exact_expected", "exact", {"objective": "expected"}),
        ):
            result = execute(p, method, seed=run, **options)
            assert result.goal_reached, (n, seed, run, label)
            paid[label].append(float(result.paid))
    means = {k: statistics.mean(v) for k, v in paid.items()}
    # Noise-free view: a failed call leaves the state unchanged, so replanning repeats the same
    # plan; its expected paid cost is the sum of cost / (1 - failure_rate) over its calls.
    analytic = {
        "exact_expected_paid": float(exact_plan(p).expected_cost or 0),
        "cats_expected_paid": float(cats_plan(p, simulations=sims).expected_cost or 0),
    }
    return {
        "size": n,
        "seed": seed,
        "runs": runs,
        **{f"{k}_mean_paid": v for k, v in means.items()},
        **analytic,
    }


def summarize_failures(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for n in sorted({r["size"] for r in rows}):
        group = [r for r in rows if r["size"] == n]
        exact = statistics.mean(r["exact_mean_paid"] for r in group)
        cats = statistics.mean(r["cats_mean_paid"] for r in group)
        ref = statistics.mean(r["exact_expected_mean_paid"] for r in group)
        out.append(
            {
                "size": n,
                "problems": len(group),
                "exact_replanning_mean_paid": exact,
                "cats_mean_paid": cats,
                "exact_expected_objective_mean_paid": ref,
                "cats_over_exact": cats / exact,
                "exact_analytic_expected_paid": statistics.mean(
                    r["exact_expected_paid"] for r in group
                ),
                "cats_analytic_expected_paid": statistics.mean(
                    r["cats_expected_paid"] for r in group
                ),
                "problems_where_cats_plan_cheaper_in_expectation": sum(
                    r["cats_expected_paid"] < r["exact_expected_paid"] - 1e-9 for r in group
                ),
                "problems_where_cats_plan_dearer_in_expectation": sum(
                    r["cats_expected_paid"] > r["exact_expected_paid"] + 1e-9 for r in group
                ),
                "problems_where_cats_cheaper": sum(
                    r["cats_mean_paid"] < r["exact_mean_paid"] - 1e-9 for r in group
                ),
                "problems_where_cats_dearer": sum(
                    r["cats_mean_paid"] > r["exact_mean_paid"] + 1e-9 for r in group
                ),
            }
        )
    return out


def plot(sizes: list[dict[str, Any]], failures: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(11, 8))
    xs = [s["size"] for s in sizes]
    ax = axes[0][0]
    for key, label in (("exact", "exact A*"), ("mcts", "CATS (MCTS only)"), ("cats", "CATS")):
        ax.plot(xs, [s[f"{key}_median_s"] for s in sizes], marker="o", label=label)
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="tools",
        ylabel="median seconds per plan",
        title="time per plan (exact capped by its time limit)",
    )
    ax.legend()
    ax = axes[0][1]
    ax.plot(xs, [s["exact_solved"] for s in sizes], marker="o", label="exact finishes")
    ax.plot(xs, [s["mcts_optimal_rate"] for s in sizes], marker="s", label="MCTS only optimal")
    ax.plot(xs, [s["cats_optimal_rate"] for s in sizes], marker="^", label="CATS optimal")
    ax.set(
        xscale="log",
        xlabel="tools",
        ylabel="share of problems",
        ylim=(-0.05, 1.05),
        title="optimality (where exact finished)",
    )
    ax.legend()
    ax = axes[1][0]
    ax.plot(xs, [s["mcts_cost_ratio"] for s in sizes], marker="s", label="MCTS only / exact")
    ax.plot(xs, [s["cats_cost_ratio"] for s in sizes], marker="^", label="CATS / exact")
    ax.plot(
        xs,
        [s["cats_vs_lower_bound_unsolved"] for s in sizes],
        marker="x",
        label="CATS / lower bound (exact gave up)",
    )
    ax.set(xscale="log", xlabel="tools", ylabel="cost ratio", title="plan cost ratio")
    ax.legend()
    ax = axes[1][1]
    fx = [f["size"] for f in failures]
    width = 0.27
    pos = list(range(len(fx)))
    for k, (key, label) in enumerate(
        (
            ("exact_replanning_mean_paid", "exact, replanning"),
            ("cats_mean_paid", "CATS"),
            ("exact_expected_objective_mean_paid", "exact, expected cost"),
        )
    ):
        ax.bar([p + (k - 1) * width for p in pos], [f[key] for f in failures], width, label=label)
    ax.set_xticks(pos, [str(x) for x in fx])
    ax.set(xlabel="tools", ylabel="mean paid cost", title="paid cost when tools fail")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer sizes and runs (a smoke test)")
    ap.add_argument("--exact-limit", type=float, default=4.0, help="exact's time limit (s)")
    args = ap.parse_args()
    sizes = [10, 20, 40, 80, 160, 240, 320, 400]
    per_size, sims, runs = 4, 300, 100
    fail_sizes, fail_problems = [10, 20, 40], 6
    if args.quick:
        sizes, per_size, runs, fail_sizes, fail_problems = [10, 40, 160], 2, 8, [10, 20], 2
    cats_limit = 3.0
    jobs = len(sizes) * per_size + len(fail_sizes) * fail_problems
    rows: list[dict[str, Any]] = []
    frows: list[dict[str, Any]] = []
    began = time.perf_counter()
    with Progress(console=console) as progress:
        task = progress.add_task("planning", total=jobs)
        for n in sizes:
            for seed in range(per_size):
                progress.update(task, description=f"plan: {n} tools, seed {seed}")
                rows.append(plan_one(n, seed, args.exact_limit, cats_limit, sims))
                progress.advance(task)
        for n in fail_sizes:
            for seed in range(fail_problems):
                progress.update(task, description=f"execute with failures: {n} tools, seed {seed}")
                frows.append(failure_one(n, seed, runs, 0.6, 150))
                progress.advance(task)
    by_size = summarize_sizes(rows)
    by_failure = summarize_failures(frows)
    practical = [s["size"] for s in by_size if s["exact_solved"] < 0.5]
    result = {
        "settings": {
            "sizes": sizes,
            "problems_per_size": per_size,
            "exact_time_limit_s": args.exact_limit,
            "cats_simulations": sims,
            "cats_time_limit_s": cats_limit,
            "failure_rate_max": 0.6,
            "failure_runs_per_problem": runs,
            "seconds": time.perf_counter() - began,
        },
        "exact_impractical_from_size": practical[0] if practical else None,
        "by_size": by_size,
        "failures": by_failure,
        "rows": rows,
        "failure_rows": frows,
    }
    RESULTS.mkdir(exist_ok=True)
    name = "planner_quick" if args.quick else "planner"
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2, default=_num) + "\n")
    plot(by_size, by_failure, RESULTS / f"{name}.png")
    show(by_size, by_failure, result)


def _num(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(type(value).__name__)


def _f(value: float | None, fmt: str = ".3f") -> str:
    return "-" if value is None else format(value, fmt)


def show(
    sizes: list[dict[str, Any]], failures: list[dict[str, Any]], result: dict[str, Any]
) -> None:
    table = Table(title="CATS vs exact on generated problems")
    for col in (
        "tools",
        "exact solves",
        "exact s",
        "mcts s",
        "cats s",
        "mcts optimal",
        "cats optimal",
        "mcts/exact",
        "cats/exact",
        "cats/lower bound",
    ):
        table.add_column(col, justify="right")
    for s in sizes:
        table.add_row(
            str(s["size"]),
            _f(s["exact_solved"], ".0%"),
            _f(s["exact_median_s"]),
            _f(s["mcts_median_s"]),
            _f(s["cats_median_s"]),
            _f(s["mcts_optimal_rate"], ".0%"),
            _f(s["cats_optimal_rate"], ".0%"),
            _f(s["mcts_cost_ratio"]),
            _f(s["cats_cost_ratio"]),
            _f(s["cats_vs_lower_bound_unsolved"]),
        )
    console.print(table)
    ftable = Table(title="Mean paid cost when tools fail (execution with replanning)")
    for col in (
        "tools",
        "exact (replanning)",
        "cats",
        "exact (expected objective)",
        "cats/exact",
        "cats cheaper",
        "cats dearer",
        "expected paid, exact plan",
        "expected paid, cats plan",
        "cats plan cheaper/dearer (expected)",
    ):
        ftable.add_column(col, justify="right")
    for f in failures:
        ftable.add_row(
            str(f["size"]),
            _f(f["exact_replanning_mean_paid"], ".2f"),
            _f(f["cats_mean_paid"], ".2f"),
            _f(f["exact_expected_objective_mean_paid"], ".2f"),
            _f(f["cats_over_exact"]),
            f"{f['problems_where_cats_cheaper']}/{f['problems']}",
            f"{f['problems_where_cats_dearer']}/{f['problems']}",
            _f(f["exact_analytic_expected_paid"], ".2f"),
            _f(f["cats_analytic_expected_paid"], ".2f"),
            f"{f['problems_where_cats_plan_cheaper_in_expectation']}"
            f"/{f['problems_where_cats_plan_dearer_in_expectation']}",
        )
    console.print(ftable)
    console.print(
        f"exact impractical (solves < half within {result['settings']['exact_time_limit_s']}s) "
        f"from {result['exact_impractical_from_size']} tools; "
        f"run took {result['settings']['seconds']:.0f}s"
    )


if __name__ == "__main__":
    main()
