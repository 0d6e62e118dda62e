"""`Ledger`: durable spend records and the shared limits checked against them.

One row per charge. A paid call first inserts a ``held`` row (its worst case), in the same
transaction that checks every shared limit it falls under, so the check and the hold are
atomic across processes and hosts; the call's end turns the row into ``ok``/``error`` with
the real cost, or deletes it if the call was not made. A worker that dies in between
leaves a held row that stops counting when it expires (and is then marked ``expired``), so
a crash neither loses track of money in flight nor holds a budget forever.

Backends (`SQLiteLedger`, `PostgresLedger`) provide transactions and locking; the logic and
the SQL (`agent_budget.ledger.sql`) are shared.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol

from agent_budget.errors import InvalidBudget
from agent_budget.ledger import sql as q
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
from agent_budget.ledger.timeutil import US, iso, now_us, parse_moment
from agent_budget.tracker import Charge

__all__ = [
    "DEFAULT_TTL", "NANOS", "ChargeContext", "Headroom", "Ledger", "LimitHeadroom",
    "ScopedLimit", "Used", "from_nanos", "limit_params", "refusal", "to_nanos", "want_params",
]  # fmt: skip

DEFAULT_TTL = 900.0
"""Seconds a reservation counts against shared limits without being settled (a crashed
worker's); a call running longer than this may let its user overspend by its own cost."""


ENV_TTL = "AGENT_BUDGET_LEDGER_TTL"
"""Seconds before an unsettled reservation (a crashed worker's) stops counting."""


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


class Ledger:
    """Spend records in SQLite or PostgreSQL. Open one with `Ledger.open` (a file path or a
    ``postgresql://`` URL); it is safe to share between threads of a process."""

    location: str
    sql: q.Statements
    held_hint = ""
    """How the backend names the holds-only index in a FROM clause (SQLite: INDEXED BY)."""

    def __init__(self, *, reservation_ttl: float = DEFAULT_TTL) -> None:
        if reservation_ttl <= 0:
            raise InvalidBudget(f"reservation_ttl must be > 0 seconds, got {reservation_ttl}")
        self.reservation_ttl = reservation_ttl
        self.worker = f"{socket.gethostname()}:{os.getpid()}"
        self._lock = threading.RLock()

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

    # --- what a backend provides ----------------------------------------------------------

    def _transaction(self, lock_keys: Sequence[str] = ()) -> AbstractContextManager[Execute]:
        """A write transaction holding the locks that serialise ``lock_keys`` across
        processes; committed on exit, rolled back on error."""
        raise NotImplementedError

    def _autocommit(self, *, write: bool = False) -> AbstractContextManager[Execute]:
        """Single statements, each its own transaction (``write``: it changes rows)."""
        raise NotImplementedError

    def _reserve(self, row: dict[str, Any], charge: Charge, limits: Sequence[ScopedLimit],
                 now: int) -> int:  # fmt: skip
        """Insert the hold if it fits every limit, atomically; raise `BudgetExceeded`."""
        raise NotImplementedError

    def _commit(self, handle: int, values: dict[str, Any], row: dict[str, Any]) -> None:
        """Settle the held row ``handle``; insert ``row`` if it is gone (pruned)."""
        raise NotImplementedError

    def _lock_tables(self, run: Execute) -> None:
        """Keep other writers out of a many-row change (before it locks any totals row)."""
        raise NotImplementedError

    def _insert_many(self, run: Execute, rows: Sequence[Sequence[Any]]) -> None:
        raise NotImplementedError

    def _after_bulk(self, run: Execute) -> None:
        """After rows were written with explicit ids or in bulk (sequences, statistics)."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

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
        if not limits:
            with self._autocommit(write=True) as run:
                return int(run(self.sql["insert"], row).fetchone()[0])
        check_limits(limits)
        named = {f"c_{c}": v for c, v in zip(q.COLUMNS, row, strict=True)}
        return self._reserve(named, charge, limits, now)

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
        self, handle: int, actual: Charge, ctx: ChargeContext, *, now: int | None = None
    ) -> None:
        """Turn a held row into the charge's real cost (outcome from ``actual.meta``)."""
        now = now_us() if now is None else now
        outcome = "error" if actual.meta.get("outcome") == "error" else "ok"
        values = {
            "outcome": outcome, "name": actual.name, "input_tokens": actual.input_tokens,
            "output_tokens": actual.output_tokens, "usd_nanos": to_nanos(actual.usd),
            "settled_ts": now, "price_source": actual.price_source, "id": handle,
        }  # fmt: skip
        row = self._row(actual, ctx, outcome, now, settled=now)
        self._commit(handle, values, {f"c_{c}": v for c, v in zip(q.COLUMNS, row, strict=True)})

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
        with self._transaction() as run:
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

    # --- reading --------------------------------------------------------------------------

    def spend(
        self,
        by: str | Sequence[str] | None = None,
        *,
        since: str | datetime | date | float | None = None,
        until: str | datetime | date | float | None = None,
        user: str | None = None,
        tenant: str | None = None,
        run: str | None = None,
        thread: str | None = None,
        kind: str | None = None,
    ) -> list[dict[str, Any]]:
        """Committed spend grouped ``by`` one or more of user, tenant, run, thread, model,
        tool, name, kind, node, outcome, day, hour (None: one total row), as plain dicts:
        the group keys plus ``usd`` (exact Decimal), ``calls``, ``input_tokens``,
        ``output_tokens``, ``errors``, ``refused`` and ``held_usd`` (live reservations).
        ``since`` / ``until`` take "7d", "2025-01-31", an ISO time, a datetime or epoch
        seconds. Sorted by ``usd``, largest first (by time for ``day`` / ``hour``)."""
        keys = [by] if isinstance(by, str) else list(by or [])
        for key in keys:
            if key not in q.GROUPS:
                raise ValueError(f"by={key!r}: group by one of {', '.join(q.GROUPS)}")
        now = now_us()
        start = parse_moment(since, now, what="since")
        end = parse_moment(until, now, what="until") if until is not None else now + 1
        where: list[str] = []
        params: list[Any] = [now, start, end]
        for key in keys:
            extra = q.GROUPS[key][1]
            if extra and extra not in where:
                where.append(extra)
        for column, value in (
            ("user_id", user), ("tenant_id", tenant), ("run_id", run), ("thread_id", thread),
            ("kind", kind),
        ):  # fmt: skip
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        with self._autocommit() as execute:
            rows = execute(self.sql.fmt(q.spend_query(keys, where)), params).fetchall()
        out = []
        for row in rows:
            item: dict[str, Any] = {}
            for i, key in enumerate(keys):
                value = row[i]
                if key in {"day", "hour"} and value is not None:
                    step = 86400 if key == "day" else 3600
                    text = iso(int(value) * step * US) or ""
                    value = text[:10] if key == "day" else text[:13] + ":00Z"
                item[key] = value
            usd, calls, inp, outp, errors, refused, held = (int(v or 0) for v in row[len(keys) :])
            item.update(
                usd=from_nanos(usd), calls=calls, input_tokens=inp, output_tokens=outp,
                errors=errors, refused=refused, held_usd=from_nanos(held),
            )  # fmt: skip
            out.append(item)
        if not any(k in {"day", "hour"} for k in keys):
            out.sort(key=lambda r: r["usd"], reverse=True)
        return out

    def total(
        self,
        *,
        since: str | datetime | date | float | None = None,
        until: str | datetime | date | float | None = None,
        user: str | None = None,
        tenant: str | None = None,
        run: str | None = None,
        thread: str | None = None,
        kind: str | None = None,
    ) -> dict[str, Any]:
        """One total, as a dict (`spend` groups and so returns a list): e.g.
        ``ledger.total(user="alice", since="1d")["usd"]``."""
        rows = self.spend(
            since=since, until=until, user=user, tenant=tenant, run=run, thread=thread, kind=kind
        )
        return rows[0]

    def rows(
        self,
        *,
        since: str | datetime | date | float | None = None,
        until: str | datetime | date | float | None = None,
        page: int = 5000,
    ) -> Iterator[dict[str, Any]]:
        """Every row in time order, as plain dicts (times ISO 8601 UTC, ``usd`` exact).
        Streams: read ``page`` rows at a time (keyset pagination, each page its own short
        query), so memory stays flat on a ledger of millions of rows."""
        now = now_us()
        start = parse_moment(since, now, what="since")
        end = parse_moment(until, now, what="until") if until is not None else now + 1
        last_ts, last_id = start - 1, 0
        names = ("id", *q.COLUMNS)
        while True:
            with self._autocommit() as run:
                fetched = run(self.sql["rows_page"], (end, last_ts, last_ts, last_id, page))
                batch = fetched.fetchall()
            for r in batch:
                rec = dict(zip(names, r, strict=True))
                for k in ("ts", "settled_ts", "expires_ts"):
                    rec[k] = iso(rec[k])
                rec["usd"] = from_nanos(rec.pop("usd_nanos"))
                reserved = rec.pop("reserved_nanos")
                rec["reserved_usd"] = None if reserved is None else from_nanos(reserved)
                yield rec
            if len(batch) < page:
                return
            last_ts, last_id = int(batch[-1][1]), int(batch[-1][0])

    def count(self) -> int:
        with self._autocommit() as run:
            return int(run(self.sql["count"], ()).fetchone()[0])

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
