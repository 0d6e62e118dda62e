"""`agent-budget check`: validate a budget file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from agent_budget.cli._common import console, print_error


def check(
    path: Annotated[Path, typer.Argument(help="A budget file: .yaml, .toml or .json")],
) -> None:
    """Validate a budget file and print its limits as a table."""
    from agent_budget.budget import Budget
    from agent_budget.errors import InvalidBudget
    from agent_budget.render import budget_table

    try:
        budget = Budget.from_file(path)
    except InvalidBudget as exc:
        print_error(exc)
        raise typer.Exit(2) from None
    console.print(budget_table(budget, title=str(path)))
