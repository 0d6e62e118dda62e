"""Many workers, one shared budget: the cap holds across processes, every refusal is on
record, and a worker killed between reserve and commit neither loses nor double-counts."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from collections.abc import Iterator
from decimal import Decimal

import ledger_workers
import pytest

from agent_budget.budget import Budget
from agent_budget.errors import BudgetExceeded
from agent_budget.ledger import Ledger, attach_ledger
from agent_budget.ledger.timeutil import US, now_us
from agent_budget.tracker import BudgetTracker

WORKERS = 8


HISTORY = 100_000


def seed_history(location: str, rows: int) -> Decimal:
    """``rows`` committed $0.001 charges of the shared user over the last 23 hours (inside
    the workers' 1-day window), written in bulk; returns their sum."""
    now = now_us()
    span = 23 * 3600 * US

    def gen() -> Iterator[tuple[object, ...]]:
        for i in range(rows):
            ts = now - 60 * US - (i * span) // rows
            yield (ts, ts, None, "ok", f"old{i % 97}", None, ledger_workers.SHARED_USER,
                   "acme", None, "tool", "call", 0, 0, 1_000_000, None, 1, None, "seed",
                   None, None)  # fmt: skip

    with Ledger.open(location) as ledger:
        assert ledger.bulk_insert(gen()) == rows
    return Decimal(rows) / 1000


@pytest.mark.parametrize(
    ("scope", "history"),
    [("user", 0), ("user", HISTORY), ("global", 0)],
    ids=["user-empty", "user-100k-rows", "global-8-users"],
)
def test_eight_workers_never_pass_a_shared_one_dollar_budget(
    location: str, scope: str, history: int
) -> None:
    seeded = seed_history(location, history) if history else Decimal(0)
    limit = str(seeded + Decimal("1.00"))
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Manager().Barrier(WORKERS)  # every worker has its ledger open before any spends
    with ctx.Pool(WORKERS) as pool:
        jobs = [
            pool.apply_async(ledger_workers.spend_until_refused, (location, limit, start, 3, scope))
            for _ in range(WORKERS)
        ]
        results = [job.get(timeout=120) for job in jobs]

    committed = sum(ok for ok, _ in results)
    refused = sum(r for _, r in results)
    with Ledger.open(location) as ledger:
        total = ledger.spend(user=ledger_workers.SHARED_USER if scope == "user" else None)[0]
        by_outcome = {r["outcome"]: r for r in ledger.spend(by="outcome")}
        rows = [r for r in ledger.rows() if r["worker"] != "seed"]
        assert ledger.verify() == []  # the totals the workers read agree with the rows
        if scope == "global" and location.startswith("postgresql"):
            sql = "SELECT COUNT(DISTINCT slot) FROM {totals} WHERE scope = 'global'"
            with ledger._autocommit() as run:
                assert run(ledger.sql.fmt(sql), ()).fetchone()[0] > 1  # the key was sharded
    assert total["usd"] <= Decimal(limit)
    assert total["usd"] == Decimal(limit)  # nothing crashed, so the whole dollar was spent
    assert committed == total["calls"] - history == 100
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
    assert ledger.verify() == []  # the dead worker's hold is in the totals, as in the rows
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
    # No manual command: the reservation that got through also marked the dead hold expired.
    assert ledger.expire() == 0
    assert ledger.verify() == []  # expired: out of the totals exactly as it is out of the rows
    outcomes = [r["outcome"] for r in ledger.rows()]
    assert outcomes.count("expired") == 1 and outcomes.count("ok") == 1
    assert set(outcomes) == {"expired", "ok", "refused"}  # every refusal while it was held
    total = ledger.spend()[0]
    assert total["usd"] == Decimal("0.03") and total["calls"] == 1 and total["held_usd"] == 0
    ledger.close()
