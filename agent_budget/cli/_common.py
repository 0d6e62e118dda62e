"""What the commands share: the consoles, error output, the ledger option, the model probe."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console

console = Console()
err_console = Console(stderr=True)


def print_error(message: object) -> None:
    """An error on stderr, verbatim: a message quoting user input must not be read as markup."""
    err_console.print(str(message), style="red", markup=False, highlight=False, soft_wrap=True)


LedgerOption = Annotated[
    str | None,
    typer.Option(
        "--ledger",
        envvar="AGENT_BUDGET_LEDGER",
        help="SQLite file or postgresql:// URL (default: $AGENT_BUDGET_LEDGER)",
        show_default=False,
    ),
]


def ledger_or_exit(location: str | None) -> Any:
    from agent_budget.errors import LedgerUnavailable
    from agent_budget.ledger.report import open_for_reading

    if not location:
        err_console.print(
            "[red]no ledger: pass --ledger PATH_OR_URL or set AGENT_BUDGET_LEDGER[/red]"
        )
        raise typer.Exit(2)
    try:
        return open_for_reading(location)
    except LedgerUnavailable as exc:
        print_error(exc)
        raise typer.Exit(1) from None


def choice(value: str, choices: tuple[str, ...], flag: str) -> str:
    if value not in choices:
        err_console.print(f"[red]{flag} {value!r}: use one of {', '.join(choices)}[/red]")
        raise typer.Exit(2)
    return value


def probe_or_exit(model: str) -> None:
    """Run the on-device model once in a child process: a bad build ends with a clear message,
    not with "Illegal instruction" from this process."""
    from agent_budget.models.selfcheck import probe

    result = probe(model)
    if not result.ok:
        print_error(result.message)
        raise typer.Exit(1)
