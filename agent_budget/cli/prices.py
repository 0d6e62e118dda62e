"""`agent-budget prices`: what calls cost, model prices and where they come from."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from agent_budget.cli._common import console, print_error

prices_app = typer.Typer(help="What calls cost: model prices and where they come from.")


@prices_app.command("show")
def prices_show(
    model: Annotated[str, typer.Argument(help="gpt-4o-mini, openai/gpt-4.1-mini, local:...")],
    budget_file: Annotated[
        Path | None,
        typer.Option(
            "--budget", help="A budget file whose model_prices / price_map / aliases apply"
        ),
    ] = None,
) -> None:
    """A model's whole price (input, output, cache read/write, reasoning, tiers above a
    prompt size, per-query prices) and where each number comes from."""
    from decimal import Decimal

    from rich.table import Table

    from agent_budget.budget import Budget
    from agent_budget.errors import AgentBudgetError, UnknownPrice
    from agent_budget.models import model_price
    from agent_budget.prices.report import price_rows

    unknown: UnknownPrice | None = None
    try:
        budget = Budget.from_file(budget_file) if budget_file else Budget()
        try:
            price = model_price(model, budget)
        except UnknownPrice as exc:  # show what the map has (a $0 stub) and why it is refused
            unknown = exc
            price = model_price(model, budget.model_copy(update={"strict_prices": False}))
        rows = price_rows(price)
    except AgentBudgetError as exc:
        print_error(exc)
        raise typer.Exit(2) from None
    if unknown is not None:
        print_error(unknown)
        if price.entry is None:
            raise typer.Exit(2)

    def per_m(value: Decimal) -> str:
        return f"${(value * 1_000_000).normalize():f}"

    cached = price.cached_input_per_token
    note = f" ({price.note})" if price.note else ""
    entry = f", entry {price.entry.name!r}" if price.entry is not None else ""
    console.print(
        f"{price.model}: {per_m(price.input_per_token)} in"
        + ("" if cached is None else f" ({per_m(cached)} cached)")
        + f" / {per_m(price.output_per_token)} out per million tokens  [{price.source}]"
        + f"\nsource: {price.price_source}{entry}{note}",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    table = Table(show_header=True, header_style="bold")
    for col in ("price", "USD", "unit", "source"):
        table.add_column(col, overflow="fold")
    for row in rows:
        table.add_row(row.what, row.usd, row.unit, row.source)
    if rows:
        console.print(table)
    if unknown is not None:
        raise typer.Exit(2)


@prices_app.command("check")
def prices_check(
    budget_file: Annotated[
        Path | None, typer.Option("--budget", help="A budget file: its models and prices")
    ] = None,
    ledger: Annotated[
        str | None, typer.Option("--ledger", help="A ledger (SQLite file or postgresql:// URL)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead")] = False,
) -> None:
    """List the models a budget file or a ledger used whose price is unknown or $0 (LiteLLM
    placeholder entries included). Exit 1 if there is one."""
    import dataclasses
    import json

    from rich.table import Table

    from agent_budget.budget import Budget
    from agent_budget.errors import AgentBudgetError
    from agent_budget.prices.report import (
        check_models,
        models_in_budget,
        models_in_ledger,
        problems,
    )

    if budget_file is None and ledger is None:
        print_error("give --budget FILE, --ledger LOCATION, or both")
        raise typer.Exit(2)
    try:
        budget = Budget.from_file(budget_file) if budget_file else Budget()
        models = models_in_budget(budget) if budget_file else {}
        if ledger:
            models.update(models_in_ledger(ledger))
        checks = check_models(budget, models)
    except AgentBudgetError as exc:
        print_error(exc)
        raise typer.Exit(2) from None
    bad = problems(checks)
    if as_json:
        console.print_json(json.dumps([dataclasses.asdict(c) for c in checks]))
    else:
        table = Table(title=f"{len(checks)} models, {len(bad)} without a real price")
        for col in ("model", "status", "source", "detail", "used in"):
            table.add_column(col, overflow="fold")
        style = {"zero": "red", "unknown": "red", "fallback": "yellow", "free": "cyan"}
        for c in checks:
            status = f"[{style[c.status]}]{c.status}[/]" if c.status in style else c.status
            table.add_row(c.model, status, c.source, c.detail, c.where)
        console.print(table)
    if bad:
        raise typer.Exit(1)


@prices_app.command("pin")
def prices_pin(
    out: Annotated[Path, typer.Argument(help="The price map file to write (JSON)")],
    models: Annotated[
        list[str] | None, typer.Option("--model", help="Only these models (repeatable)")
    ] = None,
) -> None:
    """Write the installed LiteLLM's price map (or some of its entries) to a file a budget
    can pin with `price_map:`, so later LiteLLM upgrades do not change what runs cost."""
    import json

    from agent_budget.prices.litellm_map import bundled_entry, import_litellm, litellm_version

    entries: dict[str, object] = {}
    if models:
        for name in models:
            entry = bundled_entry(name)
            if entry is None or entry.is_zero:
                print_error(f"LiteLLM {litellm_version()} has no real price for {name!r}")
                raise typer.Exit(2)
            entries[entry.name] = dict(entry.info)
    else:
        entries = dict(import_litellm().model_cost)
    out.write_text(json.dumps(entries, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    console.print(
        f"wrote {len(entries)} entries of LiteLLM {litellm_version()}'s price map to {out}",
        markup=False,
        highlight=False,
    )
