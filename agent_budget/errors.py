"""One exception hierarchy. Each message says what was asked, what was left, what to do."""

from __future__ import annotations

from decimal import Decimal
from typing import Any


class AgentBudgetError(Exception):
    """Base class of every error agent-budget raises on purpose."""


class InvalidBudget(AgentBudgetError, ValueError):
    """A budget (or its config file) has a bad value. The message names the field."""


class UnknownPrice(AgentBudgetError, LookupError):
    """A model or tool has no known price and no fallback was configured."""

    def __init__(self, name: str, kind: str = "model", hint: str | None = None) -> None:
        self.name = name
        self.kind = kind
        msg = f"no price known for {kind} {name!r}; agent-budget never assumes $0. " + (
            hint
            or (
                f"Register one (Budget(model_prices={{{name!r}: {{'input': 0.15, "
                "'output': 0.60}}) in USD per million tokens) or set "
                "Budget(price_fallback=...)."
                if kind == "model"
                else f"Add it to Budget(prices={{{name!r}: 0.001}}) (USD per call)."
            )
        )
        super().__init__(msg)


class BudgetExceeded(AgentBudgetError):
    """A call does not fit what is left of a limit (raised before the call is made)."""

    def __init__(
        self,
        limit: str,
        requested: Decimal | int | float | str,
        remaining: Decimal | int | float | str,
        used: Decimal | int | float | str | None = None,
        allowed: Decimal | int | float | str | None = None,
        detail: str | None = None,
    ) -> None:
        self.limit = limit
        self.requested = requested
        self.remaining = remaining
        self.used = used
        self.allowed = allowed
        parts = [f"budget exceeded on {limit}: asked for {_fmt(requested)}"]
        parts.append(f"{_fmt(remaining)} left")
        if used is not None and allowed is not None:
            parts.append(f"{_fmt(used)} of {_fmt(allowed)} used")
        msg = ", ".join(parts) + "."
        msg += " " + (detail or "Raise the limit, top up the budget, or answer with what you have.")
        super().__init__(msg)

    def as_dict(self) -> dict[str, Any]:
        return {
            "limit": self.limit,
            "requested": str(self.requested),
            "remaining": str(self.remaining),
            "used": None if self.used is None else str(self.used),
            "allowed": None if self.allowed is None else str(self.allowed),
        }


class GraphNotSupported(AgentBudgetError, TypeError):
    """with_budget() was given something it cannot wrap (the message says what it needs)."""


class LedgerUnavailable(AgentBudgetError):
    """The spend ledger cannot record a charge, so the run refuses to spend."""


def _fmt(value: Decimal | int | float | str) -> str:
    if isinstance(value, Decimal):
        return f"{value.normalize():f}" if value == value.to_integral() else f"{value:f}"
    return str(value)
