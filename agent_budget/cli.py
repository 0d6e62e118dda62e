"""The `agent-budget` command. Thin: each command parses its flags and calls the library.

Heavy modules (litellm, llama_cpp, matplotlib, langchain integrations) are imported inside the
commands that need them, so `agent-budget --help` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

app = typer.Typer(
    name="agent-budget",
    help="Budgets for LangGraph / LangChain agents: see, cap and plan what an agent spends.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console()
err_console = Console(stderr=True)


@app.callback()
def _root() -> None:
    """Budgets for LangGraph / LangChain agents: see, cap and plan what an agent spends."""


@app.command()
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
        err_console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    console.print(budget_table(budget, title=str(path)))


@app.command()
def demo(
    name: Annotated[str, typer.Argument(help="Which demo: basic")] = "basic",
    model: Annotated[
        str, typer.Option("--model", help="Model to run: local:smollm2-135m, openai/gpt-4.1-mini, ...")
    ] = "local:smollm2-135m",
) -> None:
    """Run a budgeted agent end to end (offline on the embedded on-device model by default)."""
    if name != "basic":
        err_console.print(f"[red]unknown demo {name!r}; available: basic[/red]")
        raise typer.Exit(2)
    from agent_budget.demos.basic import run
    from agent_budget.errors import AgentBudgetError

    try:
        run(model_spec=model, console=console)
    except AgentBudgetError as exc:
        err_console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None


def main() -> None:
    app()


if __name__ == "__main__":
    main()
