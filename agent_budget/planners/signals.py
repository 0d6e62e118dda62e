"""How a tool tells a planner that the world changed: the signal key of its return value and
the exceptions it raises when its provider refuses a call.

Plain data, below `integrations/`: tools (``tools/travel``) signal with these, and
`agent_budget.integrations.planner.planner_node` (which re-exports them) applies the events.
A tool returns ``{SIGNAL_KEY: EVENT or [EVENT, ...], "result": VALUE}`` (the call was made,
so it is paid) or raises a `ToolSignal` (it was not made, so it is not paid); EVENT is one of
the planning format's event types (PLANNING_FORMAT.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from agent_budget.errors import AgentBudgetError

SIGNAL_KEY = "agent_budget_signal"


class ToolSignal(AgentBudgetError):
    """Raised by a tool whose provider refused the call: not paid; the events then apply."""

    def __init__(self, *events: Mapping[str, Any], reason: str = "") -> None:
        self.events = [dict(event) for event in events]
        super().__init__(reason or ", ".join(str(e.get("type")) for e in self.events))


class ToolBanned(ToolSignal):
    """The tool (or ``tool``) can no longer be called."""

    def __init__(self, reason: str = "banned", *, tool: str | None = None) -> None:
        super().__init__({"type": "ban_tool", **({"tool": tool} if tool else {})}, reason=reason)


class PriceChanged(ToolSignal):
    """The tool (or ``tool``) now costs ``cost`` per call; this call was not made."""

    def __init__(self, cost: Decimal | float | str, *, tool: str | None = None) -> None:
        event = {"type": "cost_change", "cost": cost, **({"tool": tool} if tool else {})}
        super().__init__(event, reason=f"price changed to {cost}")


__all__ = ["SIGNAL_KEY", "PriceChanged", "ToolBanned", "ToolSignal"]
