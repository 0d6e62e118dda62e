"""The README's main demo, on the real shipped SmolLM2 model through llama.cpp."""

from __future__ import annotations

import pytest
from rich.console import Console

from agent_budget import Budget
from agent_budget.demos.basic import BUDGET, calculator, lookup, run


@pytest.mark.local_model
def test_demo_runs_end_to_end_on_the_embedded_model_within_budget() -> None:
    console = Console(record=True, width=100)
    result = run(console=console)
    spent = result["spent"]
    budget = Budget.from_dict(BUDGET)
    assert result["answer"] is not None
    assert spent.model_calls >= 1 and spent.input_tokens > 0  # real usage was counted
    assert budget.usd is not None and spent.usd <= budget.usd
    for tool, limit in budget.tool_calls.items():
        assert spent.tool_calls.get(tool, 0) <= limit
    text = console.export_text()
    assert "spend" in text and "USD spent" in text


def test_demo_tools_are_real() -> None:
    assert "3.10 EUR" in lookup.invoke({"topic": "tram 28"})
    assert calculator.invoke({"expression": "3 * 3.10 + 2 * 1.30"}) == "11.90"
    assert calculator.invoke({"expression": "__import__('os')"}).startswith("error")
