"""Reading the ledger: committed spend grouped any way (`spend`, `total`), every row streamed
in time order (`rows`), and a row count. Aggregates run in SQL; nothing loads the history
into memory. A mixin of `Ledger`, which provides ``_autocommit`` and ``sql``."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import date, datetime
from typing import Any, TypedDict, Unpack

from agent_budget.ledger import sql as q
from agent_budget.ledger.context import Execute
from agent_budget.ledger.limits import from_nanos
from agent_budget.ledger.timeutil import US, iso, now_us, parse_moment

Moment = str | datetime | date | float | None


class Filters(TypedDict, total=False):
    """Which rows `LedgerReads.spend` and `total` count: a time range (``since`` / ``until``
    take "7d", "2025-01-31", an ISO time, a datetime or epoch seconds) and exact matches."""

    since: Moment
    until: Moment
    user: str | None
    tenant: str | None
    run: str | None
    thread: str | None
    kind: str | None


_FILTER_COLUMNS = {"user": "user_id", "tenant": "tenant_id", "run": "run_id",
                   "thread": "thread_id", "kind": "kind"}  # fmt: skip


class LedgerReads:
    sql: q.Statements

    def _autocommit(self, *, write: bool = False) -> AbstractContextManager[Execute]:
        raise NotImplementedError

    # --- reading --------------------------------------------------------------------------

    def spend(
        self, by: str | Sequence[str] | None = None, **filters: Unpack[Filters]
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
        since, until = filters.get("since"), filters.get("until")
        start = parse_moment(since, now, what="since")
        end = parse_moment(until, now, what="until") if until is not None else now + 1
        where: list[str] = []
        params: list[Any] = [now, start, end]
        for key in keys:
            extra = q.GROUPS[key][1]
            if extra and extra not in where:
                where.append(extra)
        unknown = set(filters) - set(Filters.__annotations__)
        if unknown:
            raise TypeError(f"unknown filter(s): {', '.join(sorted(unknown))}")
        for name, column in _FILTER_COLUMNS.items():
            value = filters.get(name)
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

    def total(self, **filters: Unpack[Filters]) -> dict[str, Any]:
        """One total, as a dict (`spend` groups and so returns a list): e.g.
        ``ledger.total(user="alice", since="1d")["usd"]``."""
        return self.spend(**filters)[0]

    def rows(
        self,
        *,
        since: Moment = None,
        until: Moment = None,
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
