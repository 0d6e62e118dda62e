"""Bad input and failing models: recorded, no crash, nothing spent past the budget.

The remote is a scripted OpenAI-compatible endpoint on 127.0.0.1 (real HTTP through
LiteLLM); the local model is the shipped SmolLM2 on tiny documents, so each case costs one
short local job.
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from conftest_delegation import DECISION, DOC, Scripted, cloud_price, delegation_local_model

from agent_budget import Budget, BudgetTracker
from agent_budget.delegation import MinionS, delegate
from agent_budget.models import resolve

PLAN = json.dumps(
    {
        "tasks": [{"task": "Find the access code", "advice": "a number", "keywords": ["code"]}],
        "chunking": {"by": "paragraphs", "size": 2000, "overlap": 0},
    }
)


def remote(server: Scripted, **kwargs: object) -> object:
    return resolve(
        "openai/scripted", api_base=server.base, price=cloud_price(), max_retries=0, **kwargs
    )


def test_empty_document_spends_nothing(scripted: Scripted) -> None:
    tracker = BudgetTracker(Budget(usd=1))
    for doc in ("", "   \n\n "):
        result = delegate(
            "What is the code?",
            [doc],
            local=delegation_local_model(),
            remote=remote(scripted),
            mode="minions",
            tracker=tracker,
        )
        assert result.stop_reason == "empty_input"
        assert result.errors == ["empty document"]
        assert result.answer is None and result.calls == []
    assert scripted.bodies == []
    assert tracker.spent.usd == 0


def test_unknown_mode_is_an_error() -> None:
    with pytest.raises(ValueError, match="delegate mode 'fast'"):
        delegate("q", ["d"], remote=None, mode="fast")  # type: ignore[arg-type]


@pytest.mark.local_model
def test_invalid_plan_is_sent_back_once_then_reported(scripted: Scripted) -> None:
    scripted.script = ["not a plan", json.dumps({"tasks": []}), DECISION]
    tracker = BudgetTracker(Budget(usd=1))
    ms = MinionS(
        local=delegation_local_model(),
        remote=remote(scripted),
        max_rounds=1,
        max_jobs=1,
        local_max_tokens=48,
    )
    result = ms.run("What is the access code for the north vault?", [DOC], tracker)
    assert len(scripted.bodies) == 3  # plan, plan sent back with its error, synthesis
    sent_back = scripted.bodies[1]["messages"][-1]["content"]
    assert "That plan is invalid" in sent_back and "plan:" in sent_back
    assert any("sent back" in e for e in result.errors)
    assert any("using the default plan" in e for e in result.errors)
    assert result.rounds[0].plan is not None
    assert result.rounds[0].plan["tasks"][0]["task"] == result.question
    assert len(result.rounds[0].jobs) == 1
    assert result.answer == "7391"  # the (scripted) remote's synthesis
    nodes = [c.node for c in result.calls]
    assert nodes == ["round-1/plan", "round-1/plan-retry", "round-1/job-1", "round-1/synthesize"]
    assert tracker.spent.usd <= Decimal(1)


@pytest.mark.local_model
def test_local_output_that_is_not_json_is_recorded(scripted: Scripted) -> None:
    from agent_budget.models.local import LocalChatModel

    base = delegation_local_model()
    # Three tokens cannot hold the JSON object the grammar starts: the reply is cut off.
    tiny = LocalChatModel(model_path=base.model_path, n_ctx=4096, n_threads=1)
    scripted.script = [PLAN, DECISION]
    tracker = BudgetTracker(Budget(usd=1))
    ms = MinionS(local=tiny, remote=remote(scripted), max_rounds=1, max_jobs=1, local_max_tokens=3)
    result = ms.run("What is the access code for the north vault?", [DOC], tracker)
    job = result.rounds[0].jobs[0]
    assert job.answer is None
    assert job.error is not None and "not JSON" in job.error
    local_calls = [c for c in result.calls if c.role == "local"]
    assert [c.outcome for c in local_calls] == ["invalid"]
    assert local_calls[0].output_tokens <= 3
    assert result.answer == "7391"  # the remote still synthesizes from what there is
    assert "no job produced output" not in scripted.bodies[-1]["messages"][-1]["content"]


@pytest.mark.local_model
def test_remote_timeout_mid_round_returns_best_so_far(scripted: Scripted) -> None:
    scripted.script = [PLAN, "hang"]
    scripted.hang_seconds = 3.0
    budget = Budget(usd=Decimal("0.01"))
    tracker = BudgetTracker(budget)
    ms = MinionS(
        local=delegation_local_model(),
        remote=remote(scripted, timeout=1.0),
        max_rounds=3,
        max_jobs=1,
        local_max_tokens=48,
    )
    result = ms.run("What is the access code for the north vault?", [DOC], tracker)
    assert result.cut_short and result.stop_reason == "remote_error"
    assert len(result.rounds) == 1
    assert any("synthesis call failed" in e for e in result.errors)
    synth = [c for c in result.calls if c.node == "round-1/synthesize"]
    assert len(synth) == 1 and synth[0].outcome == "error" and "Timeout" in (synth[0].error or "")
    assert synth[0].input_tokens > 0  # a timed-out request may have been billed: charged
    assert tracker.held.usd == 0  # nothing left reserved
    assert tracker.spent.usd <= budget.usd
    assert tracker.spent.usd == sum(c.usd for c in result.calls)
