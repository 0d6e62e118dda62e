"""`attach_ledger(tracker, config)`: the one call an integration makes per run to put the
run's charges on the ledger and hold it to the shared limits of its user / tenant / everyone.

Cheap when no ledger is configured: it returns None without importing a database driver.
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from agent_budget.budget import SHARED_SCOPES, Budget, SharedLimit
from agent_budget.errors import BudgetExceeded, InvalidBudget, LedgerUnavailable
from agent_budget.limits import Limit
from agent_budget.once import RESULT, KeepResult
from agent_budget.tracker import BudgetTracker, Charge

if TYPE_CHECKING:
    from agent_budget.ledger.base import ChargeContext, Headroom, Ledger, ScopedLimit, Used
    from agent_budget.ledger.results import Kept

ENV_LEDGER = "AGENT_BUDGET_LEDGER"
"""Where the ledger is when the budget does not say: a SQLite path or a postgresql:// URL."""

log = logging.getLogger("agent_budget.ledger")

_open: dict[tuple[int, str, float | None], Ledger] = {}
_open_lock = threading.Lock()


def ledger_location(budget: Budget | None = None) -> str | None:
    """The configured ledger: ``budget.ledger``, else ``$AGENT_BUDGET_LEDGER``, else None."""
    if budget is not None and budget.ledger:
        return budget.ledger
    return os.environ.get(ENV_LEDGER) or None


def open_ledger(
    location: str | os.PathLike[str], *, reservation_ttl: float | None = None
) -> Ledger:
    """The ledger at ``location``, opened once per process and reused by every run."""
    from agent_budget.ledger.base import Ledger, ttl_from_env

    if reservation_ttl is None:
        reservation_ttl = ttl_from_env()
    key = (os.getpid(), os.fspath(location), reservation_ttl)
    with _open_lock:
        ledger = _open.get(key)
        if ledger is None:
            kwargs = {} if reservation_ttl is None else {"reservation_ttl": reservation_ttl}
            ledger = _open[key] = Ledger.open(location, **kwargs)
        return ledger


def shared_limits(budget: Budget) -> list[SharedLimit]:
    """The budget's shared limits: its own limits when its scope is user / tenant / global,
    plus ``budget.shared``."""
    out = list(budget.shared)
    if budget.scope in SHARED_SCOPES:
        out.insert(
            0,
            SharedLimit(
                scope=budget.scope,  # type: ignore[arg-type]
                window=budget.window,
                usd=budget.usd,
                total_tokens=budget.tokens.total,
                model_calls=budget.model_calls,
                total_tool_calls=budget.total_tool_calls,
            ),
        )
    return out


def context_from_config(
    config: Mapping[str, Any] | None, run_id: str | None = None
) -> ChargeContext:
    """Run / thread / user / tenant of a LangChain or LangGraph run config: each from
    ``config["configurable"]``, else ``config["metadata"]`` (a fresh run id if none).
    ``run_id``, when given, is the budget run's id: the prefix of its calls' keys."""
    from agent_budget.ledger.base import ChargeContext

    conf = config or {}
    configurable = conf.get("configurable") or {}
    metadata = conf.get("metadata") or {}

    def pick(name: str) -> str | None:
        value = configurable.get(name)
        if value is None:
            value = metadata.get(name)
        return None if value is None else str(value)

    run = run_id or conf.get("run_id") or pick("run_id") or uuid.uuid4().hex
    return ChargeContext(
        run_id=str(run),
        thread_id=pick("thread_id"),
        user_id=pick("user_id"),
        tenant_id=pick("tenant_id"),
    )


def bind_limits(limits: list[SharedLimit], ctx: ChargeContext) -> list[ScopedLimit]:
    from agent_budget.ledger.base import ScopedLimit, to_nanos

    out = []
    for lim in limits:
        key = {"user": ctx.user_id, "tenant": ctx.tenant_id, "global": None}[lim.scope]
        if lim.scope != "global" and key is None:
            raise InvalidBudget(
                f"a {lim.scope}-scoped budget needs the run's {lim.scope}: pass "
                f"config={{'configurable': {{'{lim.scope}_id': ...}}}} (or metadata) when "
                "invoking; without it the run could not be held to that budget"
            )
        out.append(
            ScopedLimit(
                scope=lim.scope,
                key=key,
                window=lim.window,
                usd_nanos=None if lim.usd is None else to_nanos(lim.usd, up=False),
                total_tokens=lim.total_tokens,
                model_calls=lim.model_calls,
                total_tool_calls=lim.total_tool_calls,
            )
        )
    return out


def usage(ledger: Ledger, limit: ScopedLimit) -> Used:
    """What counts against a shared limit now (committed and held), read without
    reserving. The one place integrations read shared usage: it can move to a cheaper
    read (running totals) without touching them."""
    return ledger.used(limit)


class LedgerBudget:
    """One run's view of the ledger: a `SharedBudget` (each reservation is a held row,
    checked against the shared limits atomically) and a tracker listener (each refusal,
    whichever limit refused it, is a row too)."""

    def __init__(self, ledger: Ledger, ctx: ChargeContext, limits: list[ScopedLimit]) -> None:
        self.ledger = ledger
        self.ctx = ctx
        self.limits = limits
        self._refused = threading.local()

    # SharedBudget
    def reserve(self, charge: Charge) -> int:
        try:
            return self.ledger.reserve(charge, self.ctx, self.limits)
        except BudgetExceeded as exc:
            self._refused.limit = exc.limit
            raise

    def commit(self, handle: int, actual: Charge) -> None:
        self.ledger.commit(handle, actual, self.ctx, keep=actual.meta.get(RESULT))

    # kept results (`agent_budget.ledger.results`): a run replays its finished calls
    def kept_keys(self, run_id: str) -> frozenset[str]:
        from agent_budget.ledger.results import kept_keys

        return kept_keys(self.ledger, run_id)

    def kept_result(self, run_id: str, key: str) -> Kept | None:
        from agent_budget.ledger.results import kept_result

        return kept_result(self.ledger, run_id, key)

    def keep(self, run_id: str, out: Any) -> KeepResult | None:
        """``out`` ready to keep with its commit, or None if it cannot be kept."""
        from agent_budget.ledger.results import encode

        body = encode(out)
        return None if body is None else KeepResult(run_id, body)

    def release(self, handle: int) -> None:
        self.ledger.release(handle)

    # tracker listener
    def on_charge(self, tracker: BudgetTracker, charge: Charge, outcome: str) -> None:
        if outcome != "refused":
            return  # commits are written by `commit`, as the held row they settle
        local = "run budget" if tracker.budget.scope == "run" else "thread budget"
        detail = getattr(self._refused, "limit", None) or local
        self._refused.limit = None
        try:
            self.ledger.record(charge, self.ctx, "refused", detail=detail)
        except LedgerUnavailable as exc:
            # The call is refused either way; the next reserve will fail loudly.
            log.warning(
                "could not record a refused %s call to %r: %s", charge.kind, charge.name, exc
            )

    def fits(self, charge: Charge) -> bool:
        """Whether ``charge`` fits every shared limit now, read without reserving (so
        retries and the final answer are sized against the ledger too). A ledger that
        cannot be read says yes: the reservation that follows fails loudly instead."""
        try:
            return self.ledger.headroom(self.limits).fits(charge)
        except LedgerUnavailable:
            return True

    def headroom(self) -> Headroom:
        """What is left of this run's shared limits now (read-only)."""
        return self.ledger.headroom(self.limits)

    def limit_rows(self) -> list[Limit]:
        """The shared limits as `Limit` rows labelled with whose they are, read without
        reserving anything (the budget message shows the tightest)."""
        from agent_budget.ledger.base import from_nanos

        rows: list[Limit] = []
        for h in self.ledger.headroom(self.limits).limits:  # one read for all of them
            lim, used = h.limit, h.used
            who = "everyone" if lim.scope == "global" else f"{lim.scope} {lim.key!r}"
            scope = f"{who}, {lim.window or 'all time'}"
            if lim.usd_nanos is not None:
                allowed = from_nanos(lim.usd_nanos)
                rows.append(Limit("usd", "USD", allowed, from_nanos(used.usd_nanos), scope=scope))
            for name, label, limit, have in (
                ("tokens.total", "Token", lim.total_tokens, used.tokens),
                ("model_calls", "Model Call", lim.model_calls, used.model_calls),
                ("total_tool_calls", "Tool Call", lim.total_tool_calls, used.tool_calls),
            ):
                if limit is not None:
                    rows.append(Limit(name, label, limit, have, scope=scope))
        return rows

    def remaining(self) -> list[dict[str, Any]]:
        """What is left of each shared limit now, as plain dicts (for a node or a UI)."""
        from agent_budget.ledger.base import from_nanos

        out = []
        for h in self.ledger.headroom(self.limits).limits:
            lim, used = h.limit, h.used
            item: dict[str, Any] = {"scope": lim.scope, "key": lim.key, "window": lim.window}
            if lim.usd_nanos is not None:
                item["usd_limit"] = from_nanos(lim.usd_nanos)
                item["usd_used"] = from_nanos(used.usd_nanos)
                item["usd_left"] = h.usd
            for name, value in (
                ("total_tokens", h.tokens),
                ("model_calls", h.model_calls),
                ("total_tool_calls", h.tool_calls),
            ):
                if value is not None:
                    item[f"{name}_left"] = value
            out.append(item)
        return out


def attach_ledger(
    tracker: BudgetTracker, config: Mapping[str, Any] | None = None, *, run_id: str | None = None
) -> LedgerBudget | None:
    """Record every charge of ``tracker``'s run in the configured ledger and hold the run to
    its shared limits (user / tenant / global scopes). ``config`` is the run's LangChain /
    LangGraph config (user, tenant, thread and run ids come from it). Returns None, having
    done nothing, when no ledger is configured and no limit needs one.

    Raises `LedgerUnavailable` if the ledger cannot be opened (the run must not start
    unrecorded) and `InvalidBudget` if a user / tenant limit has no user / tenant id.
    Calling it again for the same tracker returns the first binding."""
    for existing in tracker.shared:
        if isinstance(existing, LedgerBudget):
            return existing
    budget = tracker.budget
    location = ledger_location(budget)
    specs = shared_limits(budget)
    if location is None:
        if specs:
            scopes = ", ".join(sorted({s.scope for s in specs}))
            raise LedgerUnavailable(
                f"the budget has {scopes}-scoped limits, which are kept in the spend ledger, "
                f"and no ledger is configured: set Budget(ledger='spend.db' or "
                f"'postgresql://...') or {ENV_LEDGER}"
            )
        return None
    ctx = context_from_config(config, run_id)
    limits = bind_limits(specs, ctx)
    binding = LedgerBudget(open_ledger(location), ctx, limits)
    tracker.shared.append(binding)
    tracker.add_listener(binding.on_charge)
    return binding
