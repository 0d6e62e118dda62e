"""Local work is free of the model-call limit, and still counted.

A user who sets ``model_calls`` bounds cloud round trips; a MinionS round reads a document
in many local jobs, which would otherwise use that limit up before the remote could
synthesize. Local calls count in ``Spend.local_calls`` (and their tokens as tokens), show in
the budget message, survive a snapshot, and reach the parent budget.
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from conftest_delegation import DECISION, DOC, Scripted, cloud_price, delegation_local_model
from rich.console import Console

from agent_budget import Budget, BudgetTracker
from agent_budget.delegation import MinionS, delegate
from agent_budget.delegation.calls import marks
from agent_budget.errors import BudgetExceeded
from agent_budget.message import budget_message
from agent_budget.models import resolve
from agent_budget.render import spend_tree
from agent_budget.spend import Spend

PLAN = json.dumps(
    {
        "tasks": [{"task": "Find the access code", "advice": "a number", "keywords": ["code"]}],
        "chunking": {"by": "paragraphs", "size": 60, "overlap": 0},  # one job a paragraph
    }
)


def test_local_charges_skip_the_model_call_limit_only() -> None:
    free = {"local:smollm2-135m": {"input": "0", "output": "0"}}
    tracker = BudgetTracker(Budget(model_calls=1, tokens={"input": 1000}, model_prices=free))
    local = tracker.model_charge("local:smollm2-135m", 300, 20, **marks("local", "round-1/job-1"))
    for _ in range(3):
        tracker.reserve(local).commit(local)
    assert (tracker.spent.model_calls, tracker.spent.local_calls) == (0, 3)
    assert tracker.spent.input_tokens == 900  # tokens still count, locally read or not
    cloud = tracker.model_charge("openai/gpt-4.1-mini", 10, 10, **marks("remote", "round-1/plan"))
    tracker.reserve(cloud).commit(cloud)
    with pytest.raises(BudgetExceeded) as exc:
        tracker.reserve(cloud)  # the one cloud call the limit allows is spent
    assert exc.value.limit == "model_calls"
    with pytest.raises(BudgetExceeded) as exc:
        tracker.reserve(local)  # and a local call is still held to the token limit
    assert exc.value.limit == "tokens.input"
    spend = Spend.from_dict(tracker.spent.to_dict())
    assert (spend.model_calls, spend.local_calls) == (1, 3)
    assert "Local Model Calls: 3" in budget_message(tracker)
    console = Console(record=True, width=120)
    console.print(spend_tree(tracker.tree()))
    assert "(1 calls, 3 local)" in console.export_text()


@pytest.mark.local_model
def test_a_round_of_local_jobs_fits_a_two_call_budget(scripted: Scripted) -> None:
    scripted.script = [PLAN, DECISION]
    remote = resolve("openai/scripted", api_base=scripted.base, price=cloud_price(), max_retries=0)
    # The user prices the on-device model (electricity, a shared GPU): local jobs cost USD.
    priced = {"local:smollm2-135m": {"input": "0.05", "output": "0.05"}}
    parent = BudgetTracker(Budget(usd=Decimal(1), model_calls=2, name="agent", model_prices=priced))
    ms = MinionS(
        local=delegation_local_model(), remote=remote, max_rounds=1, max_jobs=3, local_max_tokens=64
    )
    result = delegate(
        "What is the access code for the north vault?",
        [DOC],
        local=ms.local,
        remote=remote,
        mode="minions",
        tracker=parent,
        minions=ms,
    )
    jobs = result.rounds[0].jobs
    local = [c for c in result.calls if c.role == "local"]
    # Every job ran (none refused by the call limit); what a 135M model wrote is its own.
    assert len(jobs) == 3 and [c.outcome for c in local if c.outcome == "refused"] == []
    assert result.stop_reason == "answered" and not result.cut_short
    assert result.answer == "7391"
    # Two cloud calls (plan, synthesis) against the limit of 2; three local jobs beside it.
    assert (parent.spent.model_calls, parent.spent.local_calls) == (2, 3)
    child = parent.tree().children[0]
    assert (child.spent.model_calls, child.spent.local_calls) == (2, 3)
    local_in = sum(c.input_tokens for c in local)
    assert local_in > 0 and parent.spent.input_tokens >= local_in
    assert all(c.usd > 0 and c.seconds > 0 for c in local)
    assert parent.spent.usd == sum(c.usd for c in result.calls)
