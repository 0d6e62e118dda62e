"""The `agent-budget` command. Thin: each command parses its flags and calls the library.

One module per command or command group (`check`, `demo`, `plan`, `report`, `ledger`,
`models`, `spend`, `prices`; `bench` lives with the harness in `agent_budget.bench.cli`);
this module only puts them together in their order on ``--help``.

Heavy modules (litellm, llama_cpp, matplotlib, langchain integrations) are imported inside the
commands that need them, so `agent-budget --help` stays fast.
"""

from __future__ import annotations

import typer

from agent_budget.bench.cli import bench_app  # light: imports on use
from agent_budget.cli import check, demo, ledger, models, plan, prices, report, spend
from agent_budget.cli._common import console, err_console, print_error

__all__ = ["app", "console", "err_console", "main", "print_error"]

app = typer.Typer(
    name="agent-budget",
    help="Budgets for LangGraph / LangChain agents: see, cap and plan what an agent spends.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def _root() -> None:
    """Budgets for LangGraph / LangChain agents: see, cap and plan what an agent spends."""


app.command()(check.check)
app.command()(demo.demo)
app.command()(plan.plan)
app.add_typer(ledger.ledger_app, name="ledger")
app.command()(report.report)
app.add_typer(models.models_app, name="models")
app.command()(spend.spend)
app.add_typer(bench_app, name="bench")
app.add_typer(prices.prices_app, name="prices")


def main() -> None:
    app()
