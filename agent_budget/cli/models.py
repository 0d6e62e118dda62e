"""`agent-budget models`: on-device and cloud models: list, check, price, ask."""

from __future__ import annotations

from typing import Annotated

import typer

from agent_budget.cli._common import console, err_console, print_error, probe_or_exit
from agent_budget.cli.prices import prices_show

models_app = typer.Typer(help="On-device and cloud models: list, price, ask.", no_args_is_help=True)


@models_app.command("list")
def models_list() -> None:
    """The on-device models agent-budget knows by name, and whether they are installed."""
    from rich.table import Table

    from agent_budget.models.catalog import available

    table = Table(title="on-device models")
    for col in ("name", "model", "GGUF"):
        table.add_column(col)
    for name, description, path in available():
        table.add_row(name, description, path or "[red]not installed[/red]")
    console.print(table)


@models_app.command("check")
def models_check(
    model: Annotated[str, typer.Argument(help="The on-device model to probe")] = (
        "local:smollm2-135m"
    ),
) -> None:
    """Is the installed llama.cpp build portable, and does the on-device model run here?"""
    from agent_budget.models.portability import check_installed_llama

    report = check_installed_llama()
    console.print(report.render(), markup=False, highlight=False)
    probe_or_exit(model)
    console.print(f"{model} runs on this machine.")
    if report.verdict == "not-portable":
        raise typer.Exit(1)


@models_app.command("price")
def models_price(
    model: Annotated[str, typer.Argument(help="local:smollm2-135m, openai/gpt-4.1-mini, ...")],
) -> None:
    """The price the budget tracker will charge for a model (same as `prices show`)."""
    prices_show(model, None)


@models_app.command("ask")
def models_ask(
    model: Annotated[str, typer.Argument(help="A model name, e.g. local:smollm2-135m")],
    prompt: Annotated[str, typer.Argument(help="What to ask")],
    max_tokens: Annotated[int, typer.Option(help="Output cap")] = 128,
    price: Annotated[
        str | None, typer.Option(help="USD per million input,output tokens, e.g. 0.15,0.60")
    ] = None,
    api_base: Annotated[str | None, typer.Option(help="OpenAI-compatible server URL")] = None,
) -> None:
    """Ask one question and print the reply with its tokens and cost."""
    from agent_budget.errors import AgentBudgetError
    from agent_budget.models import model_price, resolve
    from agent_budget.prices.usage import TokenUsage

    try:
        given = tuple(price.split(",")) if price else None
        chat = resolve(model, price=given, api_base=api_base, max_tokens=max_tokens)
        reply = chat.invoke(prompt)
        usage = reply.usage_metadata or {"input_tokens": 0, "output_tokens": 0}
        name = reply.response_metadata.get("model_name", model)
        cost = model_price(name).cost_of(TokenUsage.from_usage_metadata(usage))
    except (AgentBudgetError, ValueError) as exc:
        print_error(exc)
        raise typer.Exit(2) from None
    console.print(str(reply.content), markup=False, highlight=False)
    err_console.print(
        f"[dim]{name}: {usage['input_tokens']} in + {usage['output_tokens']} out tokens, "
        f"${cost:f}[/dim]"
    )
