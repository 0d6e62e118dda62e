"""Many workers, one shared budget: the cap holds across processes, every refusal is on
record, and a worker killed between reserve and commit neither loses nor double-counts."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from decimal import Decimal

import ledger_workers
import pytest

from agent_budget.budget import Budget
from agent_budget.errors import BudgetExceeded
from agent_budget.ledger import Ledger, attach_ledger
from agent_budget.tracker import BudgetTracker

WORKERS = 8


def test_eight_workers_never_pass_a_shared_one_dollar_budget(location: str) -> None:
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Manager().Barrier(WORKERS)  # every worker has its ledger open before any spends
    with ctx.Pool(WORKERS) as pool:
        jobs = [
            pool.apply_async(ledger_workers.spend_until_refused, (location, "1.00", start))
            for _ in range(WORKERS)
        ]
        results = [job.get(timeout=120) for job in jobs]

    committed = sum(ok for ok, _ in results)
    refused = sum(r for _, r in results)
    with Ledger.open(location) as ledger:
        total = ledger.spend(user=ledger_workers.SHARED_USER)[0]
        by_outcome = {r["outcome"]: r for r in ledger.spend(by="outcome")}
        rows = list(ledger.rows())
    assert total["usd"] <= Decimal("1.00")
    assert total["usd"] == Decimal("1.00")  # nothing crashed, so the whole dollar was spent
    assert committed == total["calls"] == 100
    assert sum(Decimal(r["usd"]) for r in rows if r["outcome"] == "ok") == Decimal("1.00")
    assert refused == total["refused"] == by_outcome["refused"]["refused"] == WORKERS * 3
    assert not [r for r in rows if r["outcome"] == "held"]
    assert len({r["worker"] for r in rows}) == WORKERS  # all of them were in the race


def test_a_worker_killed_between_reserve_and_commit(
    location: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENT_BUDGET_LEDGER_TTL", "1.5")
    ctx = multiprocessing.get_context("spawn")
    reserved = ctx.Manager().Event()
    worker = ctx.Process(target=ledger_workers.reserve_and_hang, args=(location, reserved))
    worker.start()
    assert reserved.wait(60), "the worker never reserved"
    os.kill(worker.pid, signal.SIGKILL)  # type: ignore[arg-type]
    worker.join(10)
    assert worker.exitcode == -signal.SIGKILL

    # "Restart": a new process-level view of the same ledger and budget.
    budget = Budget(
        ledger=location, prices={"call": "0.03"}, shared=[{"scope": "user", "usd": "0.05"}]
    )
    ledger = Ledger.open(location, reservation_ttl=1.5)
    tracker = BudgetTracker(budget)
    binding = attach_ledger(tracker, {"configurable": {"user_id": ledger_workers.SHARED_USER}})
    assert binding is not None
    # The dead worker's $0.03 is still in flight: another $0.03 does not fit the $0.05.
    with pytest.raises(BudgetExceeded, match=r"user\.usd"):
        tracker.reserve(tracker.tool_charge("call"))
    held = [r for r in ledger.rows() if r["outcome"] == "held"]
    assert len(held) == 1 and held[0]["worker"].endswith(f":{worker.pid}")

    deadline = time.monotonic() + 10
    while True:  # the reservation expires after its TTL and stops counting
        try:
            tracker.reserve(tracker.tool_charge("call")).commit()
            break
        except BudgetExceeded:
            assert time.monotonic() < deadline, "the dead worker's reservation never expired"
            time.sleep(0.2)
    assert ledger.expire() == 1
    outcomes = [r["outcome"] for r in ledger.rows()]
    assert outcomes.count("expired") == 1 and outcomes.count("ok") == 1
    assert set(outcomes) == {"expired", "ok", "refused"}  # every refusal while it was held
    total = ledger.spend()[0]
    assert total["usd"] == Decimal("0.03") and total["calls"] == 1 and total["held_usd"] == 0
    ledger.close()
