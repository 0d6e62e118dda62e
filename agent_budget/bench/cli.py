"""``agent-budget bench``: sweep, compare, tasks. Thin: flags in, library out.

Imported by ``agent_budget.cli`` at start-up, so it imports nothing heavy at module level.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

bench_app = typer.Typer(
    help="Evaluate agents over budgets: sweeps, cost-of-pass, Pareto plots.",
    no_args_is_help=True,
)
console = Console()
err_console = Console(stderr=True)


def _error(message: object, code: int) -> typer.Exit:
    err_console.print(str(message), style="red", markup=False, highlight=False, soft_wrap=True)
    return typer.Exit(code)


@bench_app.command("sweep")
def sweep(
    config: Annotated[Path, typer.Argument(help="The sweep's YAML file")],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Output directory (resumed if it exists)")
    ],
    workers: Annotated[
        int | None, typer.Option(help="Units run at once (default: the sweep's workers)")
    ] = None,
    ray: Annotated[bool, typer.Option("--ray", help="Run the units on Ray")] = False,
    ray_address: Annotated[
        str | None, typer.Option("--ray-address", help="A Ray cluster (implies --ray)")
    ] = None,
    inline: Annotated[bool, typer.Option("--inline", help="Run in this process")] = False,
    fresh: Annotated[
        bool, typer.Option("--fresh", help="Discard earlier results in --out and start over")
    ] = False,
    plots: Annotated[bool, typer.Option("--plots/--no-plots", help="Write the PNGs")] = True,
) -> None:
    """Run a sweep (or resume it: finished units are kept, the rest run), then write
    runs.json/.csv, summary.json/.md and the plots into --out."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from agent_budget.bench.config import load_sweep
    from agent_budget.bench.errors import InvalidSweep
    from agent_budget.bench.report import cell_table, write_outputs
    from agent_budget.bench.runner import run_sweep
    from agent_budget.errors import AgentBudgetError

    backend = "ray" if (ray or ray_address) else "inline" if inline else "pool"
    try:
        spec = load_sweep(config)
    except InvalidSweep as exc:
        raise _error(exc, 2) from None
    cap = spec.global_cap_usd
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[spent]}"),
        TextColumn("[dim]{task.fields[last]}"),
        TimeElapsedColumn(),
        console=err_console,
    )
    bar: dict[str, Any] = {}

    def spent_text(usd: Decimal) -> str:
        return f"spent ${usd}" + ("" if cap is None else f" of ${cap}")

    def on_start(total: int, pending: int, spent: Decimal) -> None:
        done = total - pending
        if done:
            err_console.print(f"resuming: {done} of {total} units already done")
        bar["id"] = progress.add_task(
            spec.name, total=total, completed=done, spent=spent_text(spent), last=""
        )

    def on_result(result: dict[str, Any], spent: Decimal) -> None:
        mark = "pass" if result["passed"] else result["status"]
        progress.update(
            bar["id"], advance=1, spent=spent_text(spent), last=f"{result['key']}: {mark}"
        )

    try:
        with progress:
            done = run_sweep(
                spec, out, backend=backend, workers=workers, ray_address=ray_address,
                fresh=fresh, on_start=on_start, on_result=on_result,
            )  # fmt: skip
    except InvalidSweep as exc:
        raise _error(exc, 2) from None
    except AgentBudgetError as exc:
        raise _error(exc, 1) from None
    summary = write_outputs(
        done.out, spec, done.results, plots=plots, ledger=done.ledger,
        spent_in_ledger_usd=str(done.spent_usd),
    )  # fmt: skip
    console.print(cell_table(summary))
    written = "summary.md, summary.json, runs.json, runs.csv"
    if plots:
        written += ", cost_accuracy.png, accuracy_budget.png"
    err_console.print(
        f"wrote {written} in {done.out}; ledger {done.ledger} "
        f"(agent-budget report --by run --since all --ledger {done.ledger})"
    )
    if summary["totals"]["overruns"]:
        raise _error(f"{summary['totals']['overruns']} budget overruns: this is a bug", 3)


@bench_app.command("compare")
def compare(
    a: Annotated[Path, typer.Argument(help="A sweep's output directory (or its summary.json)")],
    b: Annotated[Path, typer.Argument(help="Another sweep's output directory")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead")] = False,
) -> None:
    """What changed between two sweeps: accuracy, mean cost, cost-of-pass, frontier."""
    import json

    from agent_budget.bench.report import compare as diff
    from agent_budget.bench.report import compare_table, load_summary

    try:
        left, right = load_summary(a), load_summary(b)
    except (FileNotFoundError, ValueError) as exc:
        raise _error(exc, 2) from None
    rows = diff(left, right)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
    else:
        console.print(compare_table(rows, str(a), str(b)))


@bench_app.command("tasks")
def tasks() -> None:
    """The task sets a sweep can name (built in, and registered by installed packages)."""
    from agent_budget.bench.tasks import task_set_names

    for name, description in task_set_names().items():
        console.print(f"[bold]{name}[/bold]  {description}")
