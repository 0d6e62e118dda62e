"""MinionS on a >= 50k-token document with planted facts, on the shipped local model, with a
real `python -m llama_cpp.server` on 127.0.0.1 as the remote, billed at a named cloud price.

The machine is small and shared, so the local work is bounded: small chunks, one job a
round, short replies. What is asserted is what the protocol guarantees (what the remote
sees, what is spent, how many rounds), not what a 135M model understands.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from conftest_delegation import CLOUD_PRICE, cloud_price, delegation_local_model

from agent_budget import Budget, BudgetTracker
from agent_budget.delegation import MinionS, delegate
from agent_budget.delegation.corpus import NEEDLES, needle_document
from agent_budget.delegation.schema import ChunkPlan
from agent_budget.ledger import Ledger, attach_ledger
from agent_budget.models import resolve

pytestmark = pytest.mark.local_model

QUESTION = NEEDLES[0].question.question


def stand_in_remote(base: str) -> Any:
    return resolve("openai/smollm2", api_base=base, price=cloud_price(), timeout=600)


def protocol(remote: Any, **kw: Any) -> MinionS:
    options: dict[str, Any] = {
        "max_rounds": 2,
        "max_jobs": 1,
        "max_chunk": 1500,
        "chunking": ChunkPlan(by="paragraphs", size=1500, overlap=100),
        "local_max_tokens": 64,
        "remote_max_tokens": 200,
        "max_outputs": 4,
        "remote_json": "json_object",
    }
    options.update(kw)
    return MinionS(local=delegation_local_model(), remote=remote, **options)


def test_remote_sees_under_a_tenth_of_a_50k_token_document(
    llama_server: str, tmp_path: Any
) -> None:
    local = delegation_local_model()
    document = needle_document(52_000)
    doc_tokens = local.loaded.count_tokens(document)
    assert doc_tokens >= 50_000
    ledger_path = str(tmp_path / "spend.db")
    parent = BudgetTracker(Budget(usd=Decimal("0.05"), name="agent", ledger=ledger_path))
    attach_ledger(parent)
    result = delegate(
        QUESTION,
        [document],
        local=local,
        remote=stand_in_remote(llama_server),
        mode="minions",
        tracker=parent,
        minions=protocol(stand_in_remote(llama_server)),
    )
    assert result.protocol == "minions" and result.rounds
    remote_calls = [c for c in result.calls if c.role == "remote" and c.outcome != "refused"]
    assert remote_calls and all(c.input_tokens > 0 for c in remote_calls)
    # The server's own token counts: the remote read a small fraction of the document.
    assert result.remote_input_tokens <= 0.10 * doc_tokens, (result.remote_input_tokens, doc_tokens)
    local_calls = [c for c in result.calls if c.role == "local"]
    assert local_calls and all(c.seconds > 0 for c in local_calls)
    assert result.local_tokens > 0
    # The planted fact's paragraph is what the job read (ranked by the question's words).
    assert any(
        "7391" in j.chunk or j.chunk.startswith("doc0-chunk") for r in result.rounds for j in r.jobs
    )
    # Money: nothing past the budget, nothing left held, the parent paid exactly the calls.
    assert parent.spent.usd <= Decimal("0.05")
    assert parent.held.usd == 0
    assert parent.spent.usd == sum(c.usd for c in result.calls) > 0
    assert result.remote_usd > 0  # billed at the cloud price, never silently $0
    # Every call is in the ledger under the protocol, round and job.
    rows = list(Ledger.open(ledger_path).rows())
    nodes = {r["node"] for r in rows if r.get("node")}
    assert "minions/round-1/plan" in nodes
    assert "minions/round-1/job-1" in nodes
    assert "minions/round-1/synthesize" in nodes
    tree = parent.tree()
    assert [c.name for c in tree.children] == ["minions"]
    assert tree.children[0].spent.usd == parent.spent.usd
    assert CLOUD_PRICE  # the price the stand-in is billed at


def test_one_round_budget_runs_exactly_one_round(llama_server: str) -> None:
    local = delegation_local_model()
    document = needle_document(12_000, seed=1)
    remote = stand_in_remote(llama_server)
    ms = protocol(remote, max_rounds=3, min_rounds=2)
    probe = BudgetTracker(Budget())
    one_round = ms.first_round_usd(probe, QUESTION)
    budget = Budget(usd=one_round)  # pays round 1's worst case; round 2's is larger
    tracker = BudgetTracker(budget)
    result = ms.run(QUESTION, [document], tracker)
    assert len(result.rounds) == 1
    assert result.cut_short and result.stop_reason == "budget"
    assert any("round 2 not started" in e for e in result.errors)
    assert tracker.spent.usd <= budget.usd
    assert tracker.held.usd == 0
    assert {c.node.split("/")[0] for c in result.calls if c.outcome != "refused"} == {"round-1"}
    assert local is ms.local
