"""A budget's limits as one table: each limit a row (name, label, used, held, allowed), and
the four questions every integration asks of them, answered in one place:

- `LimitTable.check`: does this charge fit every limit? (else `BudgetExceeded` naming it)
- `LimitTable.remaining`: what is left of each limit;
- `LimitTable.fraction_left`: how much of the tightest global limit is left (the regime);
- `LimitTable.first_spent`: the first global limit used up, i.e. why the run must stop.

The rules are built once per budget (a top-up builds a new table), so a check is a walk
over a short list of prepared rules, not over the budget's fields.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import TYPE_CHECKING, Literal

from agent_budget.errors import BudgetExceeded
from agent_budget.spend import ZERO, Charge, Spend, is_local_call, usd_exact, usd_text
from agent_budget.stopping import StopReason

if TYPE_CHECKING:
    from agent_budget.budget import Budget

Number = Decimal | int | float
Group = Literal["usd", "tokens", "tool", "calls", "seconds"]


@dataclass(frozen=True, slots=True)
class Limit:
    """One limit as it stands: ``allowed`` minus ``used`` (committed) minus ``held``
    (reserved by calls in flight) is what a new call may take."""

    name: str
    """Its name in errors and settings: ``usd``, ``tokens.input``, ``tool_calls.search``..."""
    label: str
    """Its name in the budget message: ``USD``, ``Model Call``, a tool's label."""
    allowed: Number
    used: Number
    held: Number = 0
    scope: str | None = None
    """Whose limit it is when not this budget's own: ``parent 'A'``, ``user 'alice' (1d)``."""

    @property
    def remaining(self) -> Number:
        """What is left after committed spend (never below zero)."""
        return _left(self.allowed, self.used, 0)

    @property
    def free(self) -> Number:
        """What a new call may take now: committed and held spend both count."""
        return _left(self.allowed, self.used, self.held)

    @property
    def fraction_left(self) -> Fraction:
        allowed = Fraction(self.allowed)
        return max(Fraction(0), Fraction(self.remaining) / allowed) if allowed > 0 else Fraction(0)


def _left(allowed: Number, used: Number, held: Number) -> Number:
    if isinstance(allowed, Decimal):
        return max(allowed - Decimal(used) - Decimal(held), ZERO)
    if isinstance(allowed, float) or isinstance(used, float):
        return max(float(allowed) - float(used) - float(held), 0.0)
    return max(int(allowed) - int(used) - int(held), 0)


@dataclass(frozen=True, slots=True)
class _Rule:
    name: str
    label: str
    group: Group
    allowed: int
    used: Callable[[Spend], int]
    want: Callable[[Charge], int]
    stops_run: bool  # used up, the run must stop (a global limit; a per-tool one does not)
    final_exempt: bool  # the final answer is not held to it (call counts)
    noun: str = ""  # "model call" in "model call budget spent (3 of 3)"


def _counts_as_model_call(c: Charge) -> int:
    # An on-device model's call made as a protocol's local work (a MinionS job) is free of
    # the model-call limit, which a user sets to bound cloud round trips; it is still
    # counted, in Spend.local_calls.
    return 1 if c.kind == "model" and not is_local_call(c) else 0


def _is_tool(name: str) -> Callable[[Charge], int]:
    return lambda c: 1 if c.kind == "tool" and c.name == name else 0


def _tool_used(name: str) -> Callable[[Spend], int]:
    return lambda s: s.tool_calls.get(name, 0)


_ORDER = {"total_tool_calls": 1, "model_calls": 2, "tokens.input": 3, "tokens.output": 4}


def _shown_order(rule: _Rule) -> int:
    return 0 if rule.group == "tool" else _ORDER.get(rule.name, 5)


class LimitTable:
    """The limits of one `Budget` (its own: a user / tenant scope's limits live in the
    ledger, see `local_limits`)."""

    __slots__ = ("budget", "rate", "reserve_usd", "rules", "seconds", "shown", "usd")

    def __init__(self, budget: Budget) -> None:
        self.budget = budget
        self.usd = budget.usd
        self.reserve_usd = budget.reserve_usd
        self.seconds = budget.seconds
        self.rate = budget.guards.usd_per_minute
        t = budget.tokens
        rules: list[_Rule] = []
        if t.input is not None:
            rules.append(
                _Rule("tokens.input", "Input Token", "tokens", t.input,
                      lambda s: s.input_tokens, lambda c: c.input_tokens, True, False,
                      "input token")
            )  # fmt: skip
        if t.output is not None:
            rules.append(
                _Rule("tokens.output", "Output Token", "tokens", t.output,
                      lambda s: s.output_tokens, lambda c: c.output_tokens, True, False,
                      "output token")
            )  # fmt: skip
        if t.total is not None:
            rules.append(
                _Rule("tokens.total", "Token", "tokens", t.total,
                      lambda s: s.total_tokens, lambda c: c.input_tokens + c.output_tokens,
                      True, False, "token")
            )  # fmt: skip
        for tool, n in budget.tool_calls.items():
            rules.append(
                _Rule(f"tool_calls.{tool}", budget.tool_labels.get(tool, tool), "tool", n,
                      _tool_used(tool), _is_tool(tool),
                      False, False)
            )  # fmt: skip
        if budget.total_tool_calls is not None:
            rules.append(
                _Rule("total_tool_calls", "Tool Call", "calls", budget.total_tool_calls,
                      lambda s: s.total_tool_calls, lambda c: 1 if c.kind == "tool" else 0,
                      False, False)
            )  # fmt: skip
        if budget.model_calls is not None:
            rules.append(
                _Rule("model_calls", "Model Call", "calls", budget.model_calls,
                      lambda s: s.model_calls, _counts_as_model_call,
                      True, True, "model call")
            )  # fmt: skip
        self.rules = tuple(rules)
        # The count limits in the budget message's order (per-tool first), sorted once.
        self.shown = tuple(sorted(rules, key=_shown_order))

    # --- may this call be paid for ------------------------------------------------------

    def check(
        self,
        c: Charge,
        spent: Spend,
        held: Spend,
        *,
        final: bool = False,
        elapsed: float = 0.0,
        recent_usd: Callable[[], Decimal] | None = None,
    ) -> None:
        """Raise `BudgetExceeded` naming the first limit ``c`` does not fit. ``final``
        marks the final answer: it may use ``reserve_usd`` and is not stopped by the call
        counts or the clock (money and tokens stay hard)."""
        if self.usd is not None:
            allowed = self.usd if final else self.usd - self.reserve_usd
            left = allowed - spent.usd - held.usd
            if c.usd > left:
                raise BudgetExceeded(
                    "usd",
                    usd_exact(c.usd),
                    usd_exact(max(left, ZERO)),
                    usd_exact(spent.usd),
                    usd_exact(allowed),
                    detail=f"A {c.kind} call to {c.name!r} could cost up to ${usd_text(c.usd)}.",
                )
        deferred: list[_Rule] = []
        for rule in self.rules:
            want = rule.want(c)
            if not want:
                continue
            if rule.final_exempt:
                deferred.append(rule)  # checked after the spend-rate guard, as before
                continue
            self._fit(rule, want, spent, held)
        if self.rate is not None and c.usd:
            recent = (recent_usd() if recent_usd else ZERO) + held.usd
            if recent + c.usd > self.rate:
                raise BudgetExceeded(
                    "guards.usd_per_minute",
                    usd_exact(c.usd),
                    usd_exact(max(self.rate - recent, ZERO)),
                    usd_exact(recent),
                    usd_exact(self.rate),
                    detail="The spend rate cap holds: slow down or raise it.",
                )
        if final:
            return
        for rule in deferred:
            self._fit(rule, rule.want(c), spent, held)
        if self.seconds is not None and elapsed >= self.seconds:
            raise BudgetExceeded("seconds", "another call", 0, round(elapsed, 1), self.seconds)

    @staticmethod
    def _fit(rule: _Rule, want: int, spent: Spend, held: Spend) -> None:
        used = rule.used(spent) + rule.used(held)
        if used + want > rule.allowed:
            if rule.group == "tokens":
                left = max(rule.allowed - used, 0)
                raise BudgetExceeded(rule.name, want, left, rule.used(spent), rule.allowed)
            raise BudgetExceeded(rule.name, want, rule.allowed - used, used, rule.allowed)

    # --- what is left -------------------------------------------------------------------

    def rows(self, spent: Spend, held: Spend | None = None, elapsed: float = 0.0) -> list[Limit]:
        """Every limit that is set, as `Limit` rows (the budget message's order)."""
        out: list[Limit] = []
        for rule in self.rules:
            out.append(
                Limit(rule.name, rule.label, rule.allowed, rule.used(spent),
                      rule.used(held) if held is not None else 0)
            )  # fmt: skip
        if self.usd is not None:
            out.append(Limit("usd", "USD", self.usd, spent.usd, held.usd if held else ZERO))
        if self.seconds is not None:
            out.append(Limit("seconds", "Seconds", self.seconds, elapsed))
        return out

    def remaining(self, spent: Spend, elapsed: float = 0.0) -> dict[str, Number]:
        """What is left of each limit that is set (committed spend only; may be negative
        for a limit a final answer went past)."""
        out: dict[str, Number] = {}
        if self.usd is not None:
            out["usd"] = self.usd - spent.usd
        for rule in self.rules:
            if rule.group != "tool":
                out[rule.name] = rule.allowed - rule.used(spent)
        for rule in self.rules:
            if rule.group == "tool":
                out[rule.name] = rule.allowed - rule.used(spent)
        if self.seconds is not None:
            out["seconds"] = max(self.seconds - elapsed, 0.0)
        return out

    def fraction_left(self, spent: Spend, elapsed: float = 0.0) -> Fraction:
        """Fraction left of the tightest global limit, exact (per-tool limits count only
        when no global limit is set, as their sum): 1 when nothing is limited."""
        pairs: list[tuple[Fraction, Fraction]] = []
        if self.usd is not None:
            pairs.append((Fraction(self.usd), Fraction(spent.usd)))
        tools: list[_Rule] = []
        for rule in self.rules:
            if rule.group == "tool":
                tools.append(rule)
            else:
                pairs.append((Fraction(rule.allowed), Fraction(rule.used(spent))))
        if self.seconds is not None:
            pairs.append((Fraction(self.seconds), Fraction(elapsed)))
        if not pairs and tools:
            total = sum(int(r.allowed) for r in tools)
            used = sum(min(int(r.used(spent)), int(r.allowed)) for r in tools)
            pairs.append((Fraction(total), Fraction(used)))
        zero = Fraction(0)
        fractions = [max(zero, (lim - used) / lim) if lim > 0 else zero for lim, used in pairs]
        return min(fractions, default=Fraction(1))

    def first_spent(self, spent: Spend, elapsed: float = 0.0) -> StopReason | None:
        """The first global limit used up (why the run must stop), or None."""
        if self.usd is not None and spent.usd >= self.usd - self.reserve_usd:
            text = f"USD budget spent (${usd_text(spent.usd)} of ${usd_text(self.usd)})"
            return StopReason("usd", text)
        for rule in self.rules:
            if rule.stops_run:
                used = rule.used(spent)
                if used >= rule.allowed:
                    text = f"{rule.noun} budget spent ({used} of {rule.allowed})"
                    return StopReason(rule.name, text)
        if self.seconds is not None and elapsed >= self.seconds:
            text = f"time budget spent ({elapsed:.1f}s of {self.seconds:g}s)"
            return StopReason("seconds", text)
        return None


def local_limits(budget: Budget) -> Budget:
    """The limits a tracker enforces itself. A user / tenant / global budget's own limits
    are shared by many runs and kept in the ledger, which enforces them (a `SharedBudget`);
    checking them against one thread's spend as well would be wrong across windows."""
    from agent_budget.budget import SHARED_SCOPES

    if budget.scope not in SHARED_SCOPES:
        return budget
    return budget.model_copy(
        update={
            "usd": None,
            "tokens": budget.tokens.model_copy(update={"total": None}),
            "model_calls": None,
            "total_tool_calls": None,
        }
    )
