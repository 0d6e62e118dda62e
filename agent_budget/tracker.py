"""`BudgetTracker`: the live budget of one run or thread. reserve -> commit | release.

Every paid call reserves its worst-case cost before it is made and is refused if that does
not fit. Reservations are held under a lock, so parallel tool calls (threads or asyncio
tasks) can never together pass a limit: that is what makes the cap hard. The committed
spend is a plain `Spend` that graph state and the ledger can store.

Over 400 lines on purpose: it is one class, the lock-protected state of one budget
(reserve / commit, refusals, warnings, nesting, top-ups); the limits themselves are in
`agent_budget.limits`, the snapshot format in `agent_budget.snapshot`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from decimal import Decimal
from fractions import Fraction
from typing import Any, Protocol

from agent_budget.budget import Budget
from agent_budget.errors import AgentBudgetError, BudgetExceeded
from agent_budget.limits import Limit, LimitTable, local_limits
from agent_budget.message import budget_message, escape_budget_tags
from agent_budget.pricing import PriceBook, TokenUsage
from agent_budget.snapshot import BudgetSnapshot
from agent_budget.spend import ZERO, Charge, Regime, Spend, json_safe
from agent_budget.stopping import StopReason

log = logging.getLogger("agent_budget")
MAX_KEYS = 4096

__all__ = [
    "ZERO",
    "BudgetTracker",
    "Charge",
    "Regime",
    "Reservation",
    "SharedBudget",
    "Spend",
    "escape_budget_tags",
]


class SharedBudget(Protocol):
    """A budget kept outside this process (the ledger: per user, per day, per tenant).
    A tracker reserves on it after its own limits pass; it must be atomic on its own."""

    def reserve(self, charge: Charge) -> Any:
        """Hold ``charge`` or raise `BudgetExceeded`; returns a handle for commit/release."""
        ...

    def commit(self, handle: Any, actual: Charge) -> None: ...

    def release(self, handle: Any) -> None: ...


class Reservation:
    """A worst-case cost held against the budget until the call's real cost is known."""

    __slots__ = ("_done", "charge", "duplicate", "final", "handles", "tracker")

    def __init__(
        self, tracker: BudgetTracker, charge: Charge, final: bool, handles: list[Any]
    ) -> None:
        self.tracker = tracker
        self.charge = charge
        self.final = final
        self.handles = handles
        self._done = False
        self.duplicate = False  # committed under a key that was already paid for

    def commit(self, actual: Charge | None = None) -> Charge:
        """Record what the call really cost (default: the reserved worst case)."""
        return self.tracker._settle(self, actual or self.charge)

    def release(self) -> None:
        """The call was not made (or cost nothing): give the reservation back."""
        self.tracker._settle(self, None)

    @property
    def settled(self) -> bool:
        return self._done

    def __enter__(self) -> Reservation:
        return self

    def __exit__(self, *exc: object) -> None:
        if not self._done:
            self.release()


Listener = Callable[["BudgetTracker", Charge, str], None]
WarningListener = Callable[["BudgetTracker", float, str], None]
"""Called as ``listener(tracker, charge, outcome)`` with outcome ``"ok"`` (committed),
``"error"`` (committed: a call that failed but was made) or ``"refused"`` (not made)."""


class BudgetTracker:
    """Live spend against one `Budget`. Thread-safe; usable from sync and async code."""

    def __init__(
        self,
        budget: Budget,
        *,
        spent: Spend | None = None,
        prices: PriceBook | None = None,
        clock: Callable[[], float] = time.monotonic,
        shared: list[SharedBudget] | None = None,
    ) -> None:
        self._budget = budget
        self.limits = local_limits(budget)
        self.table = LimitTable(self.limits)
        self.prices = prices or PriceBook(budget)
        self.spent = spent or Spend()
        self.held = Spend()
        self.seq = 0  # commits so far; with `epoch`, orders the snapshots a graph writes
        self.epoch = 0  # bumped when a run-scoped budget starts over on the same thread
        self.topups: list[dict[str, Any]] = []
        # Idempotency keys of committed charges: a node LangGraph runs again (RetryPolicy,
        # resume) does not pay twice for a call already on the books. Ordered, bounded.
        self._keys: dict[str, None] = {}
        self._tool_keys: deque[str] = deque(maxlen=64)
        self._clock = clock
        self._started = clock()
        self._lock = threading.Lock()
        self._listeners: list[Listener] = []
        self.shared: list[SharedBudget] = list(shared or [])
        self.name = budget.name
        self.parent: BudgetTracker | None = None
        self.children: list[BudgetTracker] = []
        self.restored_children: dict[str, Any] = {}  # sub-budget spend of earlier runs
        self.by_node: dict[str, Spend] = {}
        self.warned: list[float] = []  # warn_at thresholds already fired
        self.events: list[dict[str, Any]] = []  # downgrades, guards: what changed and why
        self._warn_listeners: dict[str, WarningListener] = {}
        self._recent: deque[tuple[float, Decimal]] = deque()  # commits in the last minute

    @property
    def budget(self) -> Budget:
        return self._budget

    @budget.setter
    def budget(self, budget: Budget) -> None:
        self._budget = budget
        self.limits = local_limits(budget)
        self.table = LimitTable(self.limits)

    # --- prices -------------------------------------------------------------------------

    def tool_charge(self, name: str, *, key: str | None = None, **meta: Any) -> Charge:
        return Charge("tool", name, self.prices.tool_price(name), key=key, meta=meta)

    def model_charge(
        self,
        model: str | None,
        input_tokens: int,
        output_tokens: int,
        *,
        key: str | None = None,
        cached_input_tokens: int = 0,
        usage: TokenUsage | None = None,
        **meta: Any,
    ) -> Charge:
        """What a call that used these tokens costs; ``usage`` (cache reads and writes,
        reasoning, audio) wins over the plain counts when given."""
        price = self.prices.model_price(model)
        if usage is None:
            usd = price.cost(input_tokens, output_tokens, cached_input_tokens)
        else:
            usd = price.cost_of(usage)
            input_tokens, output_tokens = usage.input_tokens, usage.output_tokens
        if price.unpriced:
            meta = {**meta, "unpriced": True}
        return Charge(
            "model", model or "", usd, input_tokens, output_tokens, key, meta, price.price_source
        )

    def model_worst_case(
        self,
        model: str | None,
        prompt_tokens: int,
        max_output_tokens: int | None,
        *,
        key: str | None = None,
        service_tier: str | None = None,
        **meta: Any,
    ) -> Charge:
        """The most a call can cost: its prompt and output cap, at the tier its prompt is
        billed at (a 300k-token prompt to a model priced higher above 200k is held at the
        higher price) and at the ``service_tier`` it asks for (OpenAI's ``priority``)."""
        out = (
            self._budget.default_max_output_tokens
            if max_output_tokens is None
            else max_output_tokens
        )
        price = self.prices.model_price(model)
        if price.unpriced:
            meta = {**meta, "unpriced": True}
        usd = price.worst_case(prompt_tokens, out, service_tier)
        return Charge("model", model or "", usd, prompt_tokens, out, key, meta, price.price_source)

    # --- reserve / commit ---------------------------------------------------------------

    def reserve(self, charge: Charge, *, final: bool = False) -> Reservation:
        """Hold ``charge`` against every limit, or raise `BudgetExceeded` naming the first
        limit it does not fit. ``final`` marks the final answer: it may use ``reserve_usd``
        and is not stopped by the call-count and time limits (money and tokens stay hard)."""
        try:
            with self._lock:
                self._check(charge, final)
                self.held.add(charge)
        except BudgetExceeded:
            self._notify(charge, "refused")
            raise
        if not self.shared:  # the usual case, on every call: no parent, no ledger
            return Reservation(self, charge, final, [])
        try:
            handles = self._reserve_shared(charge)
        except BaseException as exc:
            with self._lock:
                self.held.add(charge, -1)
            if isinstance(exc, BudgetExceeded):
                self._notify(charge, "refused")
            raise
        return Reservation(self, charge, final, handles)

    def _reserve_shared(self, charge: Charge) -> list[Any]:
        """Reserve on every shared budget, or on none (what was taken is given back)."""
        handles: list[Any] = []
        try:
            for shared in self.shared:
                handles.append(shared.reserve(charge))
        except BaseException:
            for shared, handle in zip(self.shared, handles, strict=False):
                shared.release(handle)
            raise
        return handles

    def reserve_all(self, charges: list[Charge]) -> list[Reservation]:
        """Hold several calls at once, all or none: a plan's calls are paid for before the
        first one runs, so a plan the budget cannot finish is refused before it starts."""
        held: list[Charge] = []
        try:
            with self._lock:
                for charge in charges:
                    self._check(charge, False)
                    self.held.add(charge)
                    held.append(charge)
        except BudgetExceeded:
            with self._lock:
                for charge in held:
                    self.held.add(charge, -1)
            raise
        reservations: list[Reservation] = []
        try:
            for charge in charges:
                handles = self._reserve_shared(charge)
                reservations.append(Reservation(self, charge, False, handles))
        except BaseException:
            for res in reservations:
                res.release()
            with self._lock:
                for charge in charges[len(reservations) :]:
                    self.held.add(charge, -1)
            raise
        return reservations

    def try_reserve(self, charge: Charge, *, final: bool = False) -> Reservation | None:
        try:
            return self.reserve(charge, final=final)
        except BudgetExceeded:
            return None

    def fits(self, charge: Charge, *, final: bool = False) -> bool:
        """Whether ``charge`` would be reserved now: this tracker's limits, and those of
        the shared budgets that can tell without reserving (parents can; a ledger cannot)."""
        with self._lock:
            try:
                self._check(charge, final)
            except BudgetExceeded:
                return False
        return all(getattr(s, "fits", lambda c: True)(charge) for s in self.shared)

    def _settle(self, res: Reservation, actual: Charge | None) -> Charge:
        with self._lock:
            if res._done:
                raise AgentBudgetError("this reservation was already committed or released")
            res._done = True
            self.held.add(res.charge, -1)
            if actual is not None and actual.key is not None and actual.key in self._keys:
                actual = None  # already paid for under this key
                res.duplicate = True
            if actual is not None:
                self.spent.add(actual)
                self.seq += 1
                node = actual.meta.get("node")
                if node:
                    per_node = self.by_node.get(node)
                    if per_node is None:
                        per_node = self.by_node[node] = Spend()
                    per_node.add(actual)
                if self._budget.guards.usd_per_minute is not None and actual.usd:
                    self._recent.append((self._clock(), actual.usd))
                if actual.key is not None:
                    self._remember(actual.key, actual.kind == "tool")
        errors: list[BaseException] = []
        for shared, handle in zip(self.shared, res.handles, strict=True):
            try:  # settle every shared budget even if one fails, then report the failure
                if actual is None:
                    shared.release(handle)
                else:
                    shared.commit(handle, actual)
            except BaseException as exc:
                errors.append(exc)
        if errors:
            raise errors[0]
        if actual is None:
            return res.charge
        if self._listeners:
            self._notify(actual, actual.meta.get("outcome", "ok"))
        if self._budget.warn_at:
            self._fire_warnings()
        return actual

    # --- soft limits --------------------------------------------------------------------

    def add_warning_listener(self, listener: WarningListener, *, key: str | None = None) -> None:
        """Call ``listener(tracker, threshold, text)`` once for each ``warn_at`` crossed. A
        listener added under a ``key`` replaces the one before it (a run reusing a tracker
        takes over its run-level listener instead of stacking another)."""
        self._warn_listeners[key or str(id(listener))] = listener

    def _fire_warnings(self) -> None:
        used = 1 - self.fraction_left()
        with self._lock:
            crossed = [t for t in self.budget.warn_at if used >= t and t not in self.warned]
            self.warned.extend(crossed)
        for threshold in crossed:
            text = f"{threshold:.0%} of the budget used: {self.message()}"
            log.warning("%s%s", f"[{self.name}] " if self.name else "", text)
            for listener in list(self._warn_listeners.values()):
                listener(self, threshold, text)

    def record_event(self, kind: str, **details: Any) -> dict[str, Any]:
        """Note a change of course (a downgrade, a tripped guard) with its reason; kept in
        the snapshot, so a thread's state shows it, and logged."""
        event = {"type": kind, **json_safe(details)}
        with self._lock:
            self.events.append(event)
        log.info("budget event %s", event)
        return event

    def _recent_usd(self) -> Decimal:
        horizon = self._clock() - 60.0
        while self._recent and self._recent[0][0] < horizon:
            self._recent.popleft()
        return sum((usd for _, usd in self._recent), ZERO)

    # --- nesting ------------------------------------------------------------------------

    def child(
        self, name: str, budget: Budget | None = None, *, reuse: bool = False, **limits: Any
    ) -> BudgetTracker:
        """A tracker for a sub-agent or node: it spends from its own limits and from this
        tracker's (and every ancestor's) at once, so a call must fit all of them. With
        ``reuse``, a child of that name this tracker already has is returned instead (a
        sub-agent called several times in a run spends from one allowance). Children are
        told apart by name only: two ``Send`` children of one name share one allowance."""
        from agent_budget.nesting import ParentLink, check_child

        if reuse:
            with self._lock:
                for kid in self.children:
                    if kid.name == name:
                        return kid
        if budget is None:
            budget = self.budget.child(name, **limits)
        else:
            check_child(self.budget, budget, name)
        kid = BudgetTracker(budget, clock=self._clock, shared=[ParentLink(self, name)])
        kid.name, kid.parent = name, self
        with self._lock:
            self.children.append(kid)
        return kid

    def tree(self) -> Any:
        """Spend as a tree of sub-budgets (`nesting.SpendTree`); totals are exact sums."""
        from agent_budget.nesting import spend_tree

        return spend_tree(self)

    def _notify(self, charge: Charge, outcome: str) -> None:
        for listener in list(self._listeners):
            listener(self, charge, outcome)

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(tracker, charge, outcome)`` after each commit and refusal."""
        self._listeners.append(listener)

    def _check(self, c: Charge, final: bool) -> None:
        self.table.check(
            c,
            self.spent,
            self.held,
            final=final,
            elapsed=self.elapsed() if self.table.seconds is not None else 0.0,
            recent_usd=self._recent_usd,
        )

    # --- what is left -------------------------------------------------------------------

    def elapsed(self) -> float:
        return self._clock() - self._started

    def restart_clock(self) -> None:
        self._started = self._clock()

    def spent_now(self) -> Spend:
        """A consistent copy of the committed spend (parallel calls may be committing)."""
        with self._lock:
            return self.spent.copy()

    def remaining_usd(self) -> Decimal | None:
        return None if self.limits.usd is None else self.limits.usd - self.spent.usd

    def remaining(self) -> dict[str, Any]:
        """What is left of each limit that is set (committed spend only)."""
        return dict(self.table.remaining(self.spent, self.elapsed()))

    def limit_rows(self) -> list[Limit]:
        """This budget's limits as `Limit` rows (used, held, allowed)."""
        with self._lock:
            spent, held = self.spent.copy(), self.held.copy()
        return self.table.rows(spent, held, self.elapsed())

    def fraction_left(self) -> float:
        """Fraction left of the tightest global limit (per-tool limits count only when no
        global limit is set, as their sum): 1.0 when nothing is limited."""
        return float(self._fraction_left())

    def _fraction_left(self) -> Fraction:
        return self.table.fraction_left(self.spent, self.elapsed())

    def regime(self) -> Regime:
        return Regime.of(self._fraction_left())

    def exhausted(self) -> str | None:
        """Why the run must stop spending (a global limit is used up), or None."""
        spent = self.first_spent()
        return None if spent is None else spent.text

    def first_spent(self) -> StopReason | None:
        """The first global limit used up, as the reason the run must stop, or None."""
        return self.table.first_spent(self.spent, self.elapsed())

    # --- the message the model sees -----------------------------------------------------

    def message(self) -> str:
        """The budget in the BATS format, e.g. ``<budget>Query Budget Used: 3, ...</budget>``."""
        return budget_message(self)

    # --- top-ups and persistence --------------------------------------------------------

    def top_up(self, **extra: Any) -> None:
        """Raise limits (after an interrupt, say). Recorded, so a resumed thread keeps it."""
        with self._lock:
            self.budget = self.budget.topped_up(**extra)
            self.prices.budget = self.budget
            self.topups.append(json_safe(extra))
            self.seq += 1

    def adopt(self, charge: Charge) -> None:
        """Put a charge committed by an earlier run of this budget on these books, once
        (by key): a tracker restored from a checkpoint older than the call it replays."""
        with self._lock:
            if charge.key is None or charge.key in self._keys:
                return
            self.spent.add(charge)
            self.seq += 1
            self._remember(charge.key, charge.kind == "tool")

    def _remember(self, key: str, tool: bool = True) -> None:
        self._keys[key] = None
        if tool:
            self._tool_keys.append(key)
        if len(self._keys) > MAX_KEYS:
            del self._keys[next(iter(self._keys))]

    def recent_keys(self) -> list[str]:
        """The keys of the last tool calls committed: a snapshot keeps them, so a call
        replayed after a resume is not put on the restored books twice."""
        return list(self._tool_keys)

    def committed(self, key: str) -> bool:
        """Whether a charge with this idempotency key is already on the books."""
        return key in self._keys

    def snapshot(self) -> BudgetSnapshot:
        """Plain, JSON-safe state for graph state / checkpoints."""
        from agent_budget.snapshot import take

        return take(self)

    @classmethod
    def restore(
        cls,
        budget: Budget,
        state: BudgetSnapshot | None,
        *,
        fresh: bool = False,
        **kwargs: Any,
    ) -> BudgetTracker:
        """A tracker continuing the spend recorded by `snapshot` (top-ups re-applied).
        ``fresh`` starts the spend over (a new run of a run-scoped budget) while keeping the
        snapshots in order (a later epoch)."""
        from agent_budget.snapshot import restore_into

        tracker = cls(budget, **kwargs)
        if state:
            restore_into(tracker, state, fresh=fresh)
        return tracker
