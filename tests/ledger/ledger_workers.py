"""Worker processes for the multi-process and crash tests (spawned: a fresh interpreter,
as a real worker would be)."""

from __future__ import annotations

import os
import time
from typing import Any

SHARED_USER = "shared-user"


def spend_until_refused(
    location: str, limit: str, start: Any, refusals_to_stop: int = 3, scope: str = "user"
) -> tuple[int, int]:
    """Spend $0.01 calls as fast as possible against one shared budget: the shared user's
    (``scope="user"``), or everyone's with each worker a user of its own (``"global"``: the
    limit's totals are written by every worker, in different slots on PostgreSQL); return
    (committed, refused) as this worker saw them."""
    from agent_budget.budget import Budget
    from agent_budget.errors import BudgetExceeded
    from agent_budget.ledger import attach_ledger
    from agent_budget.tracker import BudgetTracker

    budget = Budget(
        ledger=location,
        prices={"call": "0.01"},
        shared=[{"scope": scope, "window": "1d", "usd": limit}],
    )
    tracker = BudgetTracker(budget)
    user = SHARED_USER if scope == "user" else f"user-{os.getpid()}"
    attach_ledger(tracker, {"configurable": {"user_id": user, "thread_id": f"w{os.getpid()}"}})
    start.wait()
    ok = refused = 0
    while refused < refusals_to_stop:
        try:
            res = tracker.reserve(tracker.tool_charge("call"))
        except BudgetExceeded:
            refused += 1
            continue
        res.commit()
        ok += 1
    return ok, refused


def reserve_and_hang(location: str, reserved: Any) -> None:
    """Reserve $0.03 for the shared user, say so, and wait to be killed before committing."""
    from agent_budget.budget import Budget
    from agent_budget.ledger import attach_ledger
    from agent_budget.tracker import BudgetTracker

    budget = Budget(
        ledger=location, prices={"call": "0.03"}, shared=[{"scope": "user", "usd": "0.05"}]
    )
    tracker = BudgetTracker(budget)
    attach_ledger(tracker, {"configurable": {"user_id": SHARED_USER}})
    tracker.reserve(tracker.tool_charge("call"))
    reserved.set()
    time.sleep(120)
