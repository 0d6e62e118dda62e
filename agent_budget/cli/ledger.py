"""`agent-budget ledger`: export, prune and verify the spend ledger's records."""

from __future__ import annotations

import sys
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

ledger_app = typer.Typer(
    help="The spend ledger: export, prune and verify its records.", no_args_is_help=True
)


@ledger_app.command("export")
def ledger_export(
    fmt: Annotated[str, typer.Option("--format", help="csv|json")] = "csv",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File (default: stdout)")
    ] = None,
    since: Annotated[str | None, typer.Option(help="'7d', '2025-01-31', ...")] = None,
    until: Annotated[str | None, typer.Option()] = None,
    ledger: LedgerOption = None,
) -> None:
    """Every ledger row (charges, refusals, reservations) as CSV or JSON, streamed."""
    from agent_budget.ledger.report import write_export

    choice(fmt, ("csv", "json"), "--format")
    led = ledger_or_exit(ledger)
    try:
        if output is None:
            write_export(led, fmt, sys.stdout, since=since, until=until)
        else:
            with output.open("w", encoding="utf-8", newline="") as fh:
                n = write_export(led, fmt, fh, since=since, until=until)
            err_console.print(f"wrote {n} rows to {output}")
    except ValueError as exc:
        print_error(exc)
        raise typer.Exit(2) from None


@ledger_app.command("verify")
def ledger_verify(
    repair: Annotated[
        bool, typer.Option("--repair", help="Rebuild the running totals from the rows")
    ] = False,
    ledger: LedgerOption = None,
) -> None:
    """Check the running totals (what shared limits read) against the rows they sum."""
    from rich.table import Table

    led = ledger_or_exit(ledger)
    led.expire()
    diffs = led.verify(repair=repair)
    if not diffs:
        console.print(f"[green]ok[/green]: the totals of {led.location} match its rows")
        return
    table = Table(title=f"{len(diffs)} totals differ from the rows", title_justify="left")
    for col in ("scope", "key", "span_s", "bucket", "column", "totals", "rows"):
        table.add_column(col, justify="right" if col in ("totals", "rows") else "left")
    for d in diffs[:30]:
        table.add_row(*(str(d[c]) for c in ("scope", "key", "span_s", "bucket", "column",
                                            "totals", "rows")))  # fmt: skip
    console.print(table)
    if repair:
        console.print("[green]repaired[/green]: the totals were rebuilt from the rows")
        return
    console.print("run `agent-budget ledger verify --repair` to rebuild them from the rows")
    raise typer.Exit(1)


@ledger_app.command("prune")
def ledger_prune(
    before: Annotated[str, typer.Option(help="Delete rows older than this: '2025-01-31', '90d'")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation")] = False,
    ledger: LedgerOption = None,
) -> None:
    """Delete ledger rows recorded before a date (live reservations are kept)."""
    led = ledger_or_exit(ledger)
    if not yes and not typer.confirm(
        f"Delete every row of {led.location} recorded before {before}?"
    ):
        raise typer.Exit(1)
    try:
        removed = led.prune(before)
    except ValueError as exc:
        print_error(exc)
        raise typer.Exit(2) from None
    console.print(f"deleted {removed} rows recorded before {before} from {led.location}")
