"""The BATS agent end to end on the embedded SmolLM2 model and the offline index: every
part real (model, index, tools, with_budget, ledger). The 135M model's answers are not
judged here; the mechanics are: the budget holds and is shown after every call, the plan
and the verifier run and are recorded."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, ToolMessage

from agent_budget import BudgetTracker
from agent_budget.agents.search import build_bats_agent, research_budget
from agent_budget.ledger import Ledger

pytestmark = pytest.mark.local_model

QUESTION = "What is the default maximum width of wrapped lines in textwrap's TextWrapper?"


@pytest.fixture(scope="module")
def tools(tmp_path_factory: pytest.TempPathFactory) -> list[Any]:
    from agent_budget.tools.search import offline_backend, offline_fetcher, search_tools

    engine = offline_backend(tmp_path_factory.mktemp("index") / "docs.sqlite", progress=False)
    return search_tools(engine, offline_fetcher(backend=engine), k=3, max_page_chars=800)


def test_bats_agent_on_the_embedded_model(tools: list[Any], tmp_path: Path) -> None:
    from agent_budget.models import resolve

    model = resolve("local:smollm2-135m", max_tokens=48, temperature=0, n_ctx=2048)
    db = tmp_path / "spend.db"
    # A step limit and one verifier round keep this to a handful of calls on a busy CI box.
    budget = research_budget(2, 1, "0.05", steps=5, ledger=str(db))
    tracker = BudgetTracker(budget)
    agent = build_bats_agent(model, tools, budget, max_rounds=1)
    state = agent.invoke(
        {"messages": [("user", QUESTION)]},
        {"configurable": {"budget_tracker": tracker}, "recursion_limit": 40},
    )

    assert tracker.spent.tool_calls.get("web_search", 0) <= 2
    assert tracker.spent.tool_calls.get("fetch_page", 0) <= 1
    results = [m for m in state["messages"] if isinstance(m, ToolMessage)]
    assert results, "the plan searches at least once"
    for m in results:  # the budget message after every call, the one real one
        shown = re.findall(r"<budget>(.*?)</budget>", str(m.content))
        assert len(shown) == 1 and "Query Budget Used" in shown[0]
    research = state["research"]
    assert research["plans"][0]["queries"][0] == QUESTION  # the anchor search
    assert "textwrap" in str(results[0].content)  # it found the right document
    assert all(
        v["decision"] in ("SUCCESS", "CONTINUE", "PIVOT") for v in research.get("verdicts", [])
    )
    assert tracker.spent.model_calls <= 5 + 1  # the step limit, and one final answer past it
    final = state["messages"][-1]
    assert isinstance(final, AIMessage) and str(final.content).strip()
    paid = [r for r in Ledger.open(db).rows() if r["kind"] == "tool" and r["outcome"] == "ok"]
    assert len(paid) == sum(tracker.spent.tool_calls.values())
