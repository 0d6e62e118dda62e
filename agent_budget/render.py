"""Rich renderings of budgets and spend for the CLI (no logic of their own)."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from agent_budget.budget import Budget


def budget_table(budget: Budget, title: str | None = None) -> Table:
    """Every limit that is set, its unit, and the settings that shape a run."""
    # Names come from the user's file: plain Text, so "[b]" in a tool name is not markup.
    table = Table(title=None if title is None else Text(title), show_lines=False)
    table.add_column("limit")
    table.add_column("value", justify="right")
    table.add_column("unit")
    rows: list[tuple[str, str, str]] = []
    if budget.usd is not None:
        rows.append(("usd", f"{budget.usd}", "USD"))
    for name in ("input", "output", "total"):
        value = getattr(budget.tokens, name)
        if value is not None:
            rows.append((f"tokens.{name}", f"{value:,}", "tokens"))
    for tool, n in budget.tool_calls.items():
        rows.append((f"tool_calls.{tool}", str(n), "calls"))
    if budget.total_tool_calls is not None:
        rows.append(("total_tool_calls", str(budget.total_tool_calls), "calls"))
    if budget.model_calls is not None:
        rows.append(("model_calls", str(budget.model_calls), "calls"))
    if budget.seconds is not None:
        rows.append(("seconds", f"{budget.seconds:g}", "s wall clock"))
    for tool, price in budget.prices.items():
        rows.append((f"prices.{tool}", f"{price}", "USD per call"))
    for model, p in budget.model_prices.items():
        more = [f"{len(p.tiers)} tier{'s' if len(p.tiers) > 1 else ''}"] if p.tiers else []
        more += [
            k for k in ("cached_input", "cache_write", "reasoning") if getattr(p, k) is not None
        ]
        unit = "USD per 1M tokens in / out" + (f" (+ {', '.join(more)})" if more else "")
        rows.append((f"model_prices.{model}", f"{p.input} / {p.output}", unit))
    if budget.free_models:
        rows.append(("free_models", ", ".join(budget.free_models), "priced at $0 on purpose"))
    if budget.price_map is not None:
        rows.append(("price_map", budget.price_map, "pinned LiteLLM price map"))
    if budget.reserve_usd:
        rows.append(("reserve_usd", f"{budget.reserve_usd}", "USD held for the final answer"))
    rows.append(("on_exhausted", budget.on_exhausted, ""))
    rows.append(("scope", budget.scope, ""))
    if not any(r[2] in {"USD", "tokens", "calls", "s wall clock"} for r in rows):
        rows.insert(0, ("(no limits)", "-", "this budget only records spend"))
    for row in rows:
        table.add_row(*(Text(cell) for cell in row))
    return table


def spend_tree(tree: Any) -> Tree:
    """A `nesting.SpendTree` as a rich tree: each budget's total, and its own share."""
    from agent_budget.spend import usd_text

    def label(node: Any) -> str:
        runs = f" x{node.instances}" if node.instances > 1 else ""
        own = f", own ${usd_text(node.own.usd)}" if node.children else ""
        calls = node.spent.model_calls + node.spent.total_tool_calls
        local = f", {node.spent.local_calls} local" if node.spent.local_calls else ""
        return f"{node.name}{runs}: ${usd_text(node.spent.usd)}{own} ({calls} calls{local})"

    def add(branch: Tree, node: Any) -> None:
        for child in node.children:
            add(branch.add(label(child)), child)

    root = Tree(label(tree))
    add(root, tree)
    return root
