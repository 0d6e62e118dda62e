"""What every part of the ledger shares: who a charge is for (`ChargeContext`), how long an
unsettled reservation counts, and the one-statement `Execute` callable a backend hands out."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from agent_budget.errors import InvalidBudget

DEFAULT_TTL = 900.0
"""Seconds a reservation counts against shared limits without being settled (a crashed
worker's); a call running longer than this may let its user overspend by its own cost."""

ENV_TTL = "AGENT_BUDGET_LEDGER_TTL"
"""Seconds before an unsettled reservation (a crashed worker's) stops counting."""

SWEEP_EVERY = 60.0
"""At most this often (and at least once per reservation TTL) a process that reserves marks
the holds past their expiry ``expired``, so no manual command is needed to clean up after a
crashed worker. (Expired holds stop counting at their expiry whether marked or not.)"""


def ttl_from_env() -> float | None:
    raw = os.environ.get(ENV_TTL)
    if not raw:
        return None
    try:
        return float(raw)
    except ValueError:
        raise InvalidBudget(f"{ENV_TTL}={raw!r}: expected a number of seconds") from None


@dataclass(frozen=True)
class ChargeContext:
    """Who a charge is for: taken from the run config by `attach_ledger`."""

    run_id: str | None = None
    thread_id: str | None = None
    user_id: str | None = None
    tenant_id: str | None = None


class Cursor(Protocol):
    rowcount: int

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


Execute = Callable[[str, Any], Cursor]
