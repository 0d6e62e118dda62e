"""The search demo's entry points reject bad input before a model loads; the budget's BATS
names, the hidden message of the plain ReAct baseline, the plan's allowance by regime, and
the ``search`` task set of the harness."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from agent_budget import BudgetTracker
from agent_budget.agents.search import allowance, research_budget
from agent_budget.cli import app
from agent_budget.spend import Charge

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def no_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loading or probing a model fails the test: bad input must stop before either."""

    def refuse(*_: Any, **__: Any) -> Any:
        raise AssertionError("a model was loaded for bad input")

    monkeypatch.setattr("agent_budget.cli.demo.probe_or_exit", refuse)
    monkeypatch.setattr("agent_budget.models.resolve", refuse)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["   "], "empty"),
        (["q", "--backend", "bing"], "unknown backend"),
        (["q", "--queries", "0"], "--queries"),
        (["q", "--urls", "-1"], "--urls"),
        (["q", "--usd", "lots"], "--usd"),
        (["q", "--usd", "0"], "--usd"),
    ],
)
def test_demo_search_bad_input_exits_2_before_a_model_loads(
    args: list[str], message: str, no_model: None
) -> None:
    out = runner.invoke(app, ["demo", "search", *args])
    assert out.exit_code == 2, out.output
    assert message in out.output and "Traceback" not in out.output


def test_demo_search_backend_without_its_key_exits_2(
    no_model: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TAVILY_API_KEY", raising=False)
    out = runner.invoke(app, ["demo", "search", "q", "--backend", "tavily"])
    assert out.exit_code == 2, out.output
    assert "tavily" in out.output.lower() and "Traceback" not in out.output


def test_other_demos_take_no_question(no_model: None) -> None:
    out = runner.invoke(app, ["demo", "travel", "what?"])
    assert out.exit_code == 2 and "takes no question" in out.output


def test_example_rejects_an_empty_question() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "web_search.py"), ""],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 2 and "empty" in done.stderr


# --- the budget in BATS terms -------------------------------------------------------------


def test_research_budget_speaks_of_query_and_url_budgets() -> None:
    t = BudgetTracker(research_budget(5, 2, "0.10"))
    t.reserve(Charge("tool", "web_search", t.prices.tool_price("web_search"))).commit()
    assert t.message() == (
        "<budget>Query Budget Used: 1, Query Budget Remaining: 4, URL Budget Used: 0, "
        "URL Budget Remaining: 2, USD Used: 0.0050, USD Remaining: 0.0950</budget>"
    )


def test_a_hidden_budget_still_holds_but_says_nothing() -> None:
    from agent_budget.errors import BudgetExceeded

    t = BudgetTracker(research_budget(1, 1, show=False))
    assert t.message() == ""
    t.reserve(Charge("tool", "web_search")).commit()
    with pytest.raises(BudgetExceeded):
        t.reserve(Charge("tool", "web_search"))


@pytest.mark.parametrize(
    ("remaining", "regime", "expected"),
    [
        ({"tool_calls.web_search": 10, "tool_calls.fetch_page": 10}, "HIGH", (3, 2, "breadth")),
        ({"tool_calls.web_search": 1, "tool_calls.fetch_page": 1}, "HIGH", (1, 1, "depth")),
        ({"tool_calls.web_search": 5, "tool_calls.fetch_page": 5}, "MEDIUM", (2, 1, "breadth")),
        ({"tool_calls.web_search": 2, "tool_calls.fetch_page": 2}, "LOW", (1, 1, "depth")),
        ({"tool_calls.web_search": 3, "tool_calls.fetch_page": 3}, "CRITICAL", (0, 0, "answer")),
        ({"tool_calls.web_search": 0, "tool_calls.fetch_page": 2}, "MEDIUM", (0, 1, "depth")),
        ({"tool_calls.web_search": 4, "usd": "0.004"}, "HIGH", (0, 2, "depth")),
        ({"tool_calls.web_search": 4, "usd": "0.0005"}, "HIGH", (0, 0, "answer")),
        ({}, "HIGH", (3, 2, "breadth")),  # no limits: the regime's caps
    ],
)
def test_allowance_by_regime(
    remaining: dict[str, Any], regime: str, expected: tuple[int, int, str]
) -> None:
    a = allowance(remaining, regime)
    assert (a.queries, a.urls, a.mode) == expected
    assert regime in a.describe()


# --- the harness's search task set ----------------------------------------------------------


def test_search_task_set_is_registered_and_scores_by_the_accepted_answers() -> None:
    from agent_budget.bench import load_task_set, task_set_names

    assert "search" in task_set_names()
    tasks = load_task_set({"set": "search", "limit": 3})
    assert len(tasks.tasks) == 3
    first = tasks.tasks[0]
    assert first.input and first.expected
    assert tasks.score(first, f"It is {first.expected[0]}.").passed
    assert not tasks.score(first, "I do not know.").passed
