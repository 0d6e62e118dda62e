"""Plain data for spend: what one call costs (`Charge`), totals (`Spend`), regimes, and
how USD is shown. No locks, no LangChain: the tracker, the ledger and reports share it."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from enum import StrEnum
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from agent_budget.snapshot import SpendState

ZERO = Decimal(0)


class Regime(StrEnum):
    """How much of the tightest limit is left (the BATS budget regimes)."""

    HIGH = "HIGH"  # >= 70 % left
    MEDIUM = "MEDIUM"  # 30-70 %
    LOW = "LOW"  # 10-30 %
    CRITICAL = "CRITICAL"  # < 10 %

    @classmethod
    def of(cls, fraction_left: float | Fraction) -> Regime:
        # An exact Fraction is compared with exact thresholds: in floats, $0.10 left of
        # $1.00 is 0.0999... and would read CRITICAL instead of LOW.
        exact = isinstance(fraction_left, Fraction)
        for regime, floor in ((cls.HIGH, "0.7"), (cls.MEDIUM, "0.3"), (cls.LOW, "0.1")):
            if fraction_left >= (Fraction(floor) if exact else float(floor)):
                return regime
        return cls.CRITICAL


@dataclass(frozen=True)
class Charge:
    """What one call costs (or may cost, when it is a reservation's worst case)."""

    kind: Literal["model", "tool"]
    name: str
    usd: Decimal = ZERO
    input_tokens: int = 0
    output_tokens: int = 0
    key: str | None = None  # idempotency key: tool_call_id, model run id, ...
    meta: dict[str, Any] = field(default_factory=dict, compare=False)
    price_source: str | None = None


LOCAL_CALL = "local_call"
"""`Charge.meta` key marking a call to an on-device model made as a protocol's local work."""


def is_local_call(charge: Charge) -> bool:
    """Whether ``charge`` is local work (counted in ``local_calls``, not ``model_calls``)."""
    return charge.kind == "model" and bool(charge.meta.get(LOCAL_CALL))


@dataclass
class Spend:
    """Totals of committed (or held) charges. Exact: USD is a Decimal."""

    usd: Decimal = ZERO
    input_tokens: int = 0
    output_tokens: int = 0
    model_calls: int = 0
    tool_calls: dict[str, int] = field(default_factory=dict)
    unpriced: dict[str, int] = field(default_factory=dict)
    """Calls to models with no known price, by model (allowed only with strict_prices off)."""
    local_calls: int = 0
    """Calls to an on-device model made as local work of a cloud protocol (a MinionS job):
    counted here, apart from ``model_calls``, so they never use up a limit on cloud calls.
    Their tokens and USD (when the local model is priced) count like any call's."""

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @property
    def total_tool_calls(self) -> int:
        return sum(self.tool_calls.values())

    def add(self, charge: Charge, sign: int = 1) -> None:
        self.usd += charge.usd * sign
        self.input_tokens += charge.input_tokens * sign
        self.output_tokens += charge.output_tokens * sign
        if charge.kind == "model":
            if charge.meta and charge.meta.get(LOCAL_CALL):  # is_local_call, inlined: hot
                self.local_calls += sign
            else:
                self.model_calls += sign
            if charge.meta.get("unpriced"):
                self.unpriced[charge.name] = self.unpriced.get(charge.name, 0) + sign
        else:
            self.tool_calls[charge.name] = self.tool_calls.get(charge.name, 0) + sign

    def copy(self) -> Spend:
        # Spelled out: `dataclasses.replace` walks the fields on every call, and a copy is
        # taken on every step (the budget message, the snapshot).
        return Spend(
            self.usd,
            self.input_tokens,
            self.output_tokens,
            self.model_calls,
            dict(self.tool_calls),
            dict(self.unpriced),
            self.local_calls,
        )

    def to_dict(self) -> SpendState:
        out: SpendState = {
            "usd": str(self.usd),
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "model_calls": self.model_calls,
            "tool_calls": dict(self.tool_calls),
        }
        if self.unpriced:
            out["unpriced"] = dict(self.unpriced)
        if self.local_calls:
            out["local_calls"] = self.local_calls
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Spend:
        return cls(
            usd=Decimal(str(data.get("usd", "0"))),
            input_tokens=int(data.get("input_tokens", 0)),
            output_tokens=int(data.get("output_tokens", 0)),
            model_calls=int(data.get("model_calls", 0)),
            tool_calls={k: int(v) for k, v in (data.get("tool_calls") or {}).items()},
            unpriced={k: int(v) for k, v in (data.get("unpriced") or {}).items()},
            local_calls=int(data.get("local_calls", 0)),
        )

    def __sub__(self, other: Spend) -> Spend:
        out = self.copy()
        out.usd -= other.usd
        out.input_tokens -= other.input_tokens
        out.output_tokens -= other.output_tokens
        out.model_calls -= other.model_calls
        out.local_calls -= other.local_calls
        for name, n in other.tool_calls.items():
            out.tool_calls[name] = out.tool_calls.get(name, 0) - n
        for name, n in other.unpriced.items():
            out.unpriced[name] = out.unpriced.get(name, 0) - n
        return out

    def __add__(self, other: Spend) -> Spend:
        out = self.copy()
        out.usd += other.usd
        out.input_tokens += other.input_tokens
        out.output_tokens += other.output_tokens
        out.model_calls += other.model_calls
        out.local_calls += other.local_calls
        for name, n in other.tool_calls.items():
            out.tool_calls[name] = out.tool_calls.get(name, 0) + n
        for name, n in other.unpriced.items():
            out.unpriced[name] = out.unpriced.get(name, 0) + n
        return out


def usd_exact(value: Decimal) -> str:
    """USD in an error: 4 decimals, or every digit when 4 would hide why a call was refused
    ("asked for 0.0001, 0.0001 left" for $0.000105 against $0.000100)."""
    shown = usd_text(value)
    return shown if Decimal(shown) == value else f"{value.normalize():f}"


def json_safe(value: Any) -> Any:
    """A top-up as plain JSON (Decimals as strings, which `Budget` parses back exactly)."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    return value


def usd_text(value: Decimal) -> str:
    """USD for people and models: 4 decimals, more only when needed to not show 0."""
    if value == 0:
        return "0.0000"
    q = value.quantize(Decimal("0.0001"), rounding=ROUND_DOWN)
    if q == 0:
        return f"{value.normalize():f}"
    return f"{q:f}"
