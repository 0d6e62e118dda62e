"""`agent-budget report`: spend per user / model / tool / run / day, from the ledger."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from agent_budget.cli._common import (
    LedgerOption,
    choice,
    console,
    err_console,
    ledger_or_exit,
    print_error,
)


def report(
    since: Annotated[str, typer.Option(help="'7d', '12h', '2025-01-31', or 'all'")] = "7d",
    by: Annotated[
        str, typer.Option(help="user|tenant|model|tool|run|thread|node|kind|day|hour")
    ] = "user",
    fmt: Annotated[str, typer.Option("--format", help="table|json|csv")] = "table",
    plot: Annotated[Path | None, typer.Option(help="Also write a PNG of spend over time")] = None,
    until: Annotated[str | None, typer.Option(help="End of the window (default: now)")] = None,
    ledger: LedgerOption = None,
) -> None:
    """Spend per user / model / tool / run / day, from the ledger."""
    from agent_budget.ledger import report as rep

    choice(by, rep.BY_CHOICES, "--by")
    choice(fmt, ("table", "json", "csv"), "--format")
    led = ledger_or_exit(ledger)
    start = None if since == "all" else since
    try:
        led.expire()
        rows = led.spend(by=by, since=start, until=until)
        if plot is not None:
            written = rep.write_plot(led, by, plot, since=start, until=until)
            err_console.print(f"wrote {written}")
    except ValueError as exc:
        print_error(exc)
        raise typer.Exit(2) from None
    if fmt == "json":
        typer.echo(rep.to_json(rows, ledger=led.location, by=by, since=start, until=until))
    elif fmt == "csv":
        typer.echo(rep.to_csv(rows), nl=False)
    else:
        title = f"Spend by {by}, {rep.describe_since(start)} ({led.location})"
        console.print(rep.spend_table(rows, by, title))
