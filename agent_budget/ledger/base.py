"""`Ledger`: durable spend records and the shared limits checked against them.

One row per charge. A paid call first inserts a ``held`` row (its worst case), in the same
transaction that checks every shared limit it falls under, so the check and the hold are
atomic across processes and hosts; the call's end turns the row into ``ok``/``error`` with
the real cost, or deletes it if the call was not made. A worker that dies in between
leaves a held row that stops counting the microsecond it expires (every check leaves
expired holds out, marked or not); the next reservation of any process after that (at most
`context.SWEEP_EVERY` later) marks it ``expired``, so a crash neither loses track of money in
flight nor holds a budget forever, and needs no manual command to clean up.

Backends (`SQLiteLedger`, `PostgresLedger`) provide transactions and locking; the logic and
the SQL (`agent_budget.ledger.sql`) are shared.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

from agent_budget.errors import InvalidBudget, LedgerUnavailable
from agent_budget.ledger import sql as q
from agent_budget.ledger.backend import LedgerBackend
from agent_budget.ledger.context import (
    DEFAULT_TTL,
    SWEEP_EVERY,
    ChargeContext,
    Cursor,
    Execute,
    ttl_from_env,
)
from agent_budget.ledger.limits import (
    NANOS,
    Headroom,
    LimitHeadroom,
    ScopedLimit,
    Used,
    check_limits,
    from_nanos,
    limit_params,
    refusal,
    to_nanos,
    want_params,
)
from agent_budget.ledger.reading import LedgerReads
from agent_budget.ledger.results import KEEP_SECONDS
from agent_budget.ledger.timeutil import US, now_us, parse_moment
from agent_budget.once import KeepResult
from agent_budget.tracker import Charge

__all__ = [
    "DEFAULT_TTL", "NANOS", "ChargeContext", "Cursor", "Execute", "Headroom", "Ledger",
    "LimitHeadroom", "ScopedLimit", "Used", "from_nanos", "limit_params", "refusal",
    "to_nanos", "ttl_from_env", "want_params",
]  # fmt: skip

log = logging.getLogger("agent_budget.ledger")


class Ledger(LedgerBackend, LedgerReads):
    """Spend records in SQLite or PostgreSQL. Open one with `Ledger.open` (a file path or a
    ``postgresql://`` URL); it is safe to share between threads of a process."""

    location: str
    sql: q.Statements
    held_hint = ""
    """How the backend names the holds-only index in a FROM clause (SQLite: INDEXED BY)."""

    sweep_every: float | None = SWEEP_EVERY
    """Seconds between sweeps of expired holds by this process's reservations (None: never;
    `expire` still works)."""

    keep_results: float | None = KEEP_SECONDS
    """Seconds a kept tool result stays (`agent_budget.ledger.results`); the same sweep
    deletes older ones. None: never deleted by the sweep (`Ledger.prune` still does)."""

    def __init__(self, *, reservation_ttl: float = DEFAULT_TTL) -> None:
        if reservation_ttl <= 0:
            raise InvalidBudget(f"reservation_ttl must be > 0 seconds, got {reservation_ttl}")
        self.reservation_ttl = reservation_ttl
        self.worker = f"{socket.gethostname()}:{os.getpid()}"
        self._lock = threading.RLock()
        self._pid = os.getpid()
        self._next_sweep = 0  # the first reservation of a process sweeps

    @staticmethod
    def open(location: str | os.PathLike[str], **kwargs: Any) -> Ledger:
        """A ledger at a SQLite path (``spend.db``, ``sqlite:///abs/path.db``) or a
        ``postgresql://user@host:5432/db[?schema=name]`` URL; created and migrated as needed.
        Raises `LedgerUnavailable` with the reason when it cannot be opened for writing.
        Without ``reservation_ttl=``, ``AGENT_BUDGET_LEDGER_TTL`` (seconds) sets it."""
        if kwargs.get("reservation_ttl") is None:
            kwargs.pop("reservation_ttl", None)
            ttl = ttl_from_env()
            if ttl is not None:
                kwargs["reservation_ttl"] = ttl
        text = os.fspath(location)
        if text.startswith(("postgresql://", "postgres://")):
            from agent_budget.ledger.postgres import PostgresLedger

            return PostgresLedger(text, **kwargs)
        from agent_budget.ledger.sqlite import SQLiteLedger

        return SQLiteLedger(text.removeprefix("sqlite://"), **kwargs)

    def schema_version(self) -> int:
        with self._autocommit() as run:
            row = run(self.sql["get_version"], ()).fetchone()
        return int(row[0]) if row else 0

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- recording ------------------------------------------------------------------------

    def reserve(
        self,
        charge: Charge,
        ctx: ChargeContext,
        limits: Sequence[ScopedLimit] = (),
        *,
        now: int | None = None,
    ) -> int:
        """Hold ``charge`` (a ``held`` row) if it fits every limit; return the row id.
        Raises `BudgetExceeded` naming the first limit it does not fit, or
        `LedgerUnavailable` when the ledger cannot record it. One statement on SQLite, one
        function call on PostgreSQL; the check reads running totals, never the history."""
        now = now_us() if now is None else now
        row = self._row(charge, ctx, "held", now, expires=now + int(self.reservation_ttl * US))
        if limits:
            check_limits(limits)
            named = {f"c_{c}": v for c, v in zip(q.COLUMNS, row, strict=True)}
            handle = self._reserve(named, charge, limits, now)
        else:
            with self._autocommit(write=True) as run:
                handle = int(run(self.sql["insert"], row).fetchone()[0])
        self._sweep_if_due(now)
        return handle

    def _sweep_if_due(self, now: int) -> None:
        """Mark expired holds now and then (`SWEEP_EVERY`), from the reservation path, so a
        crashed worker's hold is cleaned up without a manual command. Never fails the call."""
        if self.sweep_every is None or now < self._next_sweep:
            return
        self._next_sweep = now + int(min(self.reservation_ttl, self.sweep_every) * US)
        try:
            swept = self.expire(now=now)
            if self.keep_results is not None:
                from agent_budget.ledger.results import prune_kept

                prune_kept(self, now - int(self.keep_results * US))
        except LedgerUnavailable as exc:
            log.warning("could not mark expired reservations: %s", exc)
            return
        if swept:
            log.info("marked %d reservation(s) past their expiry as expired", swept)

    def _refuse_or_none(self, rows: list[Any], charge: Charge, limits: Sequence[ScopedLimit]
                        ) -> None:  # fmt: skip
        """Raise the refusal of the first limit ``charge`` does not fit, given rows of
        `sql.check_query` (i, lu, lt, lm, lc, used...)."""
        for r in sorted(rows, key=lambda r: int(r[0])):
            used = Used(*(int(v) for v in r[5:9]))
            exc = refusal(limits[int(r[0])], used, charge)
            if exc is not None:
                raise exc

    def commit(
        self,
        handle: int,
        actual: Charge,
        ctx: ChargeContext,
        *,
        now: int | None = None,
        keep: KeepResult | None = None,
    ) -> None:
        """Turn a held row into the charge's real cost (outcome from ``actual.meta``).
        ``keep``: the call's result, kept in the same transaction when the outcome is ``ok``
        (`agent_budget.ledger.results`)."""
        now = now_us() if now is None else now
        outcome = "error" if actual.meta.get("outcome") == "error" else "ok"
        values = {
            "outcome": outcome, "name": actual.name, "input_tokens": actual.input_tokens,
            "output_tokens": actual.output_tokens, "usd_nanos": to_nanos(actual.usd),
            "settled_ts": now, "price_source": actual.price_source, "id": handle,
        }  # fmt: skip
        row = self._row(actual, ctx, outcome, now, settled=now)
        kept = None
        if keep is not None and outcome == "ok" and actual.key is not None:
            kept = (keep.run_id, actual.key, now, keep.body)
        self._commit(
            handle, values, {f"c_{c}": v for c, v in zip(q.COLUMNS, row, strict=True)}, kept
        )

    def release(self, handle: int) -> None:
        """The call was not made: the held row goes away."""
        with self._autocommit(write=True) as run:
            run(self.sql["release"], (handle,))

    def record(
        self,
        charge: Charge,
        ctx: ChargeContext,
        outcome: str = "ok",
        *,
        detail: str | None = None,
        now: int | None = None,
    ) -> int:
        """Write one settled row (``ok``, ``error`` or ``refused``) without a reservation."""
        if outcome not in {"ok", "error", "refused"}:
            raise ValueError(f"outcome must be ok, error or refused, not {outcome!r}")
        now = now_us() if now is None else now
        with self._autocommit(write=True) as run:
            row = self._row(charge, ctx, outcome, now, settled=now, detail=detail)
            return int(run(self.sql["insert"], row).fetchone()[0])

    def expire(self, *, now: int | None = None) -> int:
        """Mark reservations past their expiry ``expired``; returns how many. (They stopped
        counting at their expiry already; this makes the rows and totals say so.)"""
        now = now_us() if now is None else now
        with self._autocommit() as run:  # the common case, nothing due, reads one index entry
            if run(self.sql["any_expired"], (now,)).fetchone() is None:
                return 0
        with self._transaction() as run:
            self._lock_tables(run)  # many rows' triggers: lock first, so no one deadlocks
            return int(run(self.sql["expire"], (now, now)).rowcount)

    def used(self, limit: ScopedLimit, *, now: int | None = None) -> Used:
        """What counts against ``limit`` now: committed charges and live reservations."""
        return self.headroom([limit], now=now).limits[0].used

    def headroom(
        self,
        limits: Sequence[Any],
        ctx: ChargeContext | None = None,
        *,
        now: int | None = None,
    ) -> Headroom:
        """What is left of each shared limit now, read-only (no reservation, no lock): one
        statement over the running totals. ``limits`` are `ScopedLimit`s, or
        `agent_budget.budget.SharedLimit`s bound to ``ctx``'s user / tenant."""
        now = now_us() if now is None else now
        bound = self._bind(limits, ctx)
        if not bound:
            return Headroom(())
        check_limits(bound)
        params = limit_params(bound, now)
        sql = self.sql.fmt(q.check_query(tuple(lim.scope for lim in bound), self.held_hint))
        with self._autocommit() as run:
            rows = sorted(run(sql, params).fetchall(), key=lambda r: int(r[0]))
        out = []
        for lim, r in zip(bound, rows, strict=True):
            used = Used(*(int(v) for v in r[5:9]))

            def left(limit: int | None, have: int) -> int | None:
                return None if limit is None else max(limit - have, 0)

            usd_left = left(lim.usd_nanos, used.usd_nanos)
            out.append(
                LimitHeadroom(
                    lim,
                    used,
                    None if usd_left is None else from_nanos(usd_left),
                    left(lim.total_tokens, used.tokens),
                    left(lim.model_calls, used.model_calls),
                    left(lim.total_tool_calls, used.tool_calls),
                )
            )
        return Headroom(tuple(out))

    @staticmethod
    def _bind(limits: Sequence[Any], ctx: ChargeContext | None) -> list[ScopedLimit]:
        if all(isinstance(lim, ScopedLimit) for lim in limits):
            return list(limits)
        from agent_budget.ledger.attach import bind_limits

        scoped = [lim for lim in limits if isinstance(lim, ScopedLimit)]
        specs = [lim for lim in limits if not isinstance(lim, ScopedLimit)]
        return scoped + bind_limits(specs, ctx or ChargeContext())

    def _row(
        self,
        c: Charge,
        ctx: ChargeContext,
        outcome: str,
        ts: int,
        *,
        expires: int | None = None,
        settled: int | None = None,
        detail: str | None = None,
    ) -> tuple[Any, ...]:
        meta = c.meta
        attempt = meta.get("attempt")
        node = meta.get("node")
        nanos = to_nanos(c.usd)
        return (
            ts, settled, expires, outcome,
            ctx.run_id, ctx.thread_id, ctx.user_id, ctx.tenant_id,
            None if node is None else str(node),
            c.kind, c.name, c.input_tokens, c.output_tokens,
            nanos, nanos if outcome == "held" else None,
            None if attempt is None else int(attempt),
            c.key, self.worker, detail, c.price_source,
        )  # fmt: skip

    def prune(self, before: str | datetime | date | float) -> int:
        """Delete rows older than ``before`` (live reservations are kept); returns how many.
        Their totals go with them, so a limit over all time counts what is left."""
        now = now_us()
        cutoff = parse_moment(before, now, what="before")
        from agent_budget.ledger import maintenance

        return maintenance.prune(self, cutoff, now)

    # --- upkeep ---------------------------------------------------------------------------

    def verify(self, *, repair: bool = False) -> list[dict[str, Any]]:
        """Compare the running totals with the rows they summarise; returns the buckets that
        differ (empty: they agree). ``repair=True`` rebuilds the totals from the rows."""
        from agent_budget.ledger import maintenance

        return maintenance.verify(self, repair=repair)

    def bulk_insert(self, rows: Iterable[Sequence[Any]], *, batch: int = 50_000) -> int:
        """Append settled rows fast (values in `agent_budget.ledger.schema.COLUMNS` order):
        for seeding and restoring. Totals are added in one pass at the end of each batch."""
        from agent_budget.ledger import maintenance

        return maintenance.bulk_insert(self, rows, batch=batch)
