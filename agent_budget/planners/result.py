"""What planners and the executor return, serialisable to exactly the JSON of PLANNING_FORMAT.md."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

PlanStatus = Literal["ok", "infeasible"]
ExecutionStatus = Literal["ok", "infeasible", "unreachable"]


def money_json(amount: Decimal | None) -> float | None:
    """A JSON number for an exact amount. The float's shortest repr keeps the decimal text
    (Decimal("8.12") -> 8.12) for any amount with up to 15 significant digits."""
    return None if amount is None else float(amount)


@dataclass(frozen=True)
class PlanResult:
    """A plan (`status="ok"`), or why there is none (`status="infeasible"` and `reason`)."""

    status: PlanStatus
    steps: tuple[str, ...] = ()
    cost: Decimal | None = None
    reason: str | None = None
    method: str = "exact"
    expected_cost: Decimal | None = None
    """Expected paid cost when tools can fail (a failed call is paid and retried)."""
    proven_optimal: bool = False
    """True when a complete search showed no cheaper plan exists (exact, or cats certified)."""
    stats: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "status": self.status,
            "steps": list(self.steps),
            "cost": money_json(self.cost),
        }
        if self.reason is not None:
            out["reason"] = self.reason
        return out


@dataclass(frozen=True)
class Call:
    """One executed call: paid for whether or not it produced its output."""

    tool: str
    cost: Decimal
    ok: bool

    def to_dict(self) -> dict[str, Any]:
        return {"tool": self.tool, "cost": money_json(self.cost), "ok": self.ok}


@dataclass(frozen=True)
class ExecutionResult:
    """A plan run against the problem's simulated environment, with its events."""

    status: ExecutionStatus
    steps: tuple[str, ...]
    """The first plan, made before anything was executed."""
    cost: Decimal | None
    executed: tuple[Call, ...]
    paid: Decimal
    replans: int
    goal_reached: bool
    reason: str | None = None
    warnings: tuple[str, ...] = ()
    plans: tuple[PlanResult, ...] = field(default=(), compare=False)
    """Every plan made, the first one included (for inspection; not in the JSON)."""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "status": self.status,
            "steps": list(self.steps),
            "cost": money_json(self.cost),
        }
        if self.reason is not None:
            out["reason"] = self.reason
        out["executed"] = [call.to_dict() for call in self.executed]
        out["paid"] = money_json(self.paid)
        out["replans"] = self.replans
        out["goal_reached"] = self.goal_reached
        return out
