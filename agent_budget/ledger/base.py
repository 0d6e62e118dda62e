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
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any, Protocol

from agent_budget.errors import BudgetExceeded, InvalidBudget
from agent_budget.ledger import sql as q
from agent_budget.ledger.timeutil import US, iso, now_us, parse_moment, window_start
from agent_budget.tracker import Charge

NANOS = 10**9
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


def to_nanos(usd: Decimal, *, up: bool = True) -> int:
    """USD as integer billionths. Costs round up, so the ledger never under-counts."""
    scaled = Decimal(usd) * NANOS
    return int(scaled.to_integral_value(rounding=ROUND_CEILING if up else ROUND_FLOOR))


def from_nanos(nanos: int | Decimal) -> Decimal:
    """Exact USD from billionths, with trailing zeros trimmed (at least two decimals)."""
    value = Decimal(int(nanos)).scaleb(-9).normalize()
    return value.quantize(Decimal("0.01")) if value.as_tuple().exponent > -2 else value  # type: ignore[operator]


@dataclass(frozen=True)
class ChargeContext:
    """Who a charge is for: taken from the run config by `attach_ledger`."""

    run_id: str | None = None
    thread_id: str | None = None
    user_id: str | None = None
    tenant_id: str | None = None


@dataclass(frozen=True)
class ScopedLimit:
    """A `SharedLimit` bound to one user / tenant (or to everyone, ``key=None``)."""

    scope: str
    key: str | None
    window: str | None
    usd_nanos: int | None = None
    total_tokens: int | None = None
    model_calls: int | None = None
    total_tool_calls: int | None = None

    @property
    def lock_key(self) -> str:
        return f"{self.scope}:{self.key or ''}"

    def describe(self) -> str:
        who = "everyone" if self.scope == "global" else f"{self.scope} {self.key!r}"
        return f"{who} ({'all time' if self.window is None else self.window})"


@dataclass(frozen=True)
class Used:
    """What counts against a scoped limit right now (committed + live reservations)."""

    usd_nanos: int
    tokens: int
    model_calls: int
    tool_calls: int


class Cursor(Protocol):
    rowcount: int

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


Execute = Callable[[str, Sequence[Any]], Cursor]


class Ledger:
    """Spend records in SQLite or PostgreSQL. Open one with `Ledger.open` (a file path or a
    ``postgresql://`` URL); it is safe to share between threads of a process."""

    location: str
    sql: q.Statements

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

    def _transaction(self, lock_keys: Sequence[str]) -> AbstractContextManager[Execute]:
        """A write transaction holding the locks that serialise ``lock_keys`` across
        processes; committed on exit, rolled back on error."""
        raise NotImplementedError

    def _autocommit(self) -> AbstractContextManager[Execute]:
        """Single statements, each its own transaction."""
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
        `LedgerUnavailable` when the ledger cannot record it."""
        now = now_us() if now is None else now
        row = self._row(charge, ctx, "held", now, expires=now + int(self.reservation_ttl * US))
        if not limits:
            with self._autocommit() as run:
                return int(run(self.sql["insert"], row).fetchone()[0])
        with self._transaction(sorted({lim.lock_key for lim in limits})) as run:
            for lim in limits:
                self._check(run, lim, charge, now)
            return int(run(self.sql["insert"], row).fetchone()[0])

    def commit(
        self, handle: int, actual: Charge, ctx: ChargeContext, *, now: int | None = None
    ) -> None:
        """Turn a held row into the charge's real cost (outcome from ``actual.meta``)."""
        now = now_us() if now is None else now
        outcome = "error" if actual.meta.get("outcome") == "error" else "ok"
        with self._autocommit() as run:
            cur = run(
                self.sql["commit"],
                (
                    outcome,
                    actual.name,
                    actual.input_tokens,
                    actual.output_tokens,
                    to_nanos(actual.usd),
                    now,
                    handle,
                ),
            )
            if cur.rowcount == 0:  # the held row was pruned meanwhile: the money still counts
                run(self.sql["insert"], self._row(actual, ctx, outcome, now, settled=now))

    def release(self, handle: int) -> None:
        """The call was not made: the held row goes away."""
        with self._autocommit() as run:
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
        with self._autocommit() as run:
            row = self._row(charge, ctx, outcome, now, settled=now, detail=detail)
            return int(run(self.sql["insert"], row).fetchone()[0])

    def expire(self, *, now: int | None = None) -> int:
        """Mark reservations past their expiry ``expired``; returns how many."""
        now = now_us() if now is None else now
        with self._autocommit() as run:
            return int(run(self.sql["expire"], (now, now)).rowcount)

    def used(self, limit: ScopedLimit, *, now: int | None = None) -> Used:
        """What counts against ``limit`` now: committed charges and live reservations."""
        now = now_us() if now is None else now
        with self._autocommit() as run:
            return self._used(run, limit, now)

    def _used(self, run: Execute, lim: ScopedLimit, now: int) -> Used:
        since = window_start(lim.window, now)
        if lim.scope == "global":
            params: tuple[Any, ...] = (since, now)
        else:
            params = (lim.key, since, now)
        row = run(self.sql[f"used_{lim.scope}"], params).fetchone()
        return Used(*(int(v) for v in row))

    def _check(self, run: Execute, lim: ScopedLimit, c: Charge, now: int) -> None:
        used = self._used(run, lim, now)
        want = to_nanos(c.usd)
        who = lim.describe()
        if lim.usd_nanos is not None and used.usd_nanos + want > lim.usd_nanos:
            raise BudgetExceeded(
                f"{lim.scope}.usd",
                from_nanos(want),
                from_nanos(max(lim.usd_nanos - used.usd_nanos, 0)),
                from_nanos(used.usd_nanos),
                from_nanos(lim.usd_nanos),
                detail=(
                    f"The limit is shared by all runs of {who}. Wait for the window to move "
                    "on, or raise the shared limit."
                ),
            )
        tokens = c.input_tokens + c.output_tokens
        for name, limit, have, want_n in (
            ("total_tokens", lim.total_tokens, used.tokens, tokens),
            ("model_calls", lim.model_calls, used.model_calls, int(c.kind == "model")),
            ("total_tool_calls", lim.total_tool_calls, used.tool_calls, int(c.kind == "tool")),
        ):
            if limit is not None and want_n and have + want_n > limit:
                raise BudgetExceeded(
                    f"{lim.scope}.{name}",
                    want_n,
                    max(limit - have, 0),
                    have,
                    limit,
                    detail=f"The limit is shared by all runs of {who}.",
                )

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
            c.key, self.worker, detail,
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
    ) -> Iterator[dict[str, Any]]:
        """Every row in time order, as plain dicts (times ISO 8601 UTC, ``usd`` exact)."""
        now = now_us()
        start = parse_moment(since, now, what="since")
        end = parse_moment(until, now, what="until") if until is not None else now + 1
        with self._autocommit() as run:
            fetched = run(self.sql["rows"], (start, end)).fetchall()
        for r in fetched:
            rec = dict(zip(("id", *q.COLUMNS), r, strict=True))
            for k in ("ts", "settled_ts", "expires_ts"):
                rec[k] = iso(rec[k])
            rec["usd"] = from_nanos(rec.pop("usd_nanos"))
            reserved = rec.pop("reserved_nanos")
            rec["reserved_usd"] = None if reserved is None else from_nanos(reserved)
            yield rec

    def count(self) -> int:
        with self._autocommit() as run:
            return int(run(self.sql["count"], ()).fetchone()[0])

    def prune(self, before: str | datetime | date | float) -> int:
        """Delete rows older than ``before`` (live reservations are kept); returns how many."""
        now = now_us()
        cutoff = parse_moment(before, now, what="before")
        with self._autocommit() as run:
            return int(run(self.sql["prune"], (cutoff, now)).rowcount)
