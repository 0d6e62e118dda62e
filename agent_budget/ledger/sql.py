"""Every statement the ledger runs, for both backends, in one place.

Written once with ``?`` (or ``:name``) placeholders and ``{charges}`` / ``{totals}`` /
``{meta}`` tokens; `Statements` turns them into one dialect (``%s`` / ``%(name)s`` and
schema-qualified tables for PostgreSQL). Money is ``usd_nanos``: integer billionths of a
dollar, so sums are exact in both databases. Times are integer microseconds since the Unix
epoch (UTC). The tables themselves are in `agent_budget.ledger.schema`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from agent_budget.errors import InvalidBudget
from agent_budget.ledger.schema import (
    COLUMNS,
    DAY,
    FOREVER,
    HOUR,
    MINUTE,
    SCHEMA_VERSION,
    Names,
)
from agent_budget.ledger.timeutil import window_start

__all__ = ["COLUMNS", "GROUPS", "OUTCOMES", "SCHEMA_VERSION", "Statements", "render"]

Dialect = Literal["sqlite", "postgres"]

OUTCOMES = ("held", "ok", "error", "refused", "expired")
"""A row's state: ``held`` (reserved, call in flight), ``ok`` / ``error`` (committed: the
call was made), ``refused`` (not made), ``expired`` (held by a worker that never settled it,
typically because it crashed; it no longer counts against any budget)."""

_STATEMENTS = {
    "insert": (
        f"INSERT INTO {{charges}} ({', '.join(COLUMNS)}) "
        f"VALUES ({', '.join('?' for _ in COLUMNS)}) RETURNING id"
    ),
    "commit": (
        "UPDATE {charges} SET outcome = :outcome, name = :name, input_tokens = :input_tokens, "
        "output_tokens = :output_tokens, usd_nanos = :usd_nanos, settled_ts = :settled_ts, "
        "expires_ts = NULL, price_source = COALESCE(CAST(:price_source AS TEXT), price_source) "
        "WHERE id = :id AND outcome IN ('held', 'expired')"
    ),
    "release": "DELETE FROM {charges} WHERE id = ? AND outcome IN ('held', 'expired')",
    "expire": (
        "UPDATE {charges} SET outcome = 'expired', settled_ts = ? "
        "WHERE outcome = 'held' AND expires_ts <= ?"
    ),
    "any_expired": "SELECT 1 FROM {charges} WHERE outcome = 'held' AND expires_ts <= ? LIMIT 1",
    "prune": "DELETE FROM {charges} WHERE ts < ? AND NOT (outcome = 'held' AND expires_ts > ?)",
    "rows_page": (
        f"SELECT id, {', '.join(COLUMNS)} FROM {{charges}} "
        "WHERE ts < ? AND (ts > ? OR (ts = ? AND id > ?)) ORDER BY ts, id LIMIT ?"
    ),
    "first_ts": "SELECT MIN(ts) FROM {charges} WHERE ts >= ? AND ts < ?",
    "count": "SELECT COUNT(*) FROM {charges}",
    "get_version": "SELECT value FROM {meta} WHERE key = 'schema_version'",
    "set_version": "UPDATE {meta} SET value = ? WHERE key = 'schema_version'",
    "init_version": (
        "INSERT INTO {meta} (key, value) VALUES ('schema_version', ?) ON CONFLICT (key) DO NOTHING"
    ),
    "clear_totals": "DELETE FROM {totals}",
    # Kept results (`agent_budget.ledger.results`): written with an ok commit, read on a replay.
    "keep_result": (
        "INSERT INTO {results} (run_id, call_key, charge_id, ts, body) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (run_id, call_key) DO NOTHING"
    ),
    "kept_keys": "SELECT call_key FROM {results} WHERE run_id = ?",
    "kept_result": (
        "SELECT r.body, c.kind, c.name, c.usd_nanos, c.input_tokens, c.output_tokens, "
        "c.price_source, c.attempt, c.node FROM {results} AS r JOIN {charges} AS c "
        "ON c.id = r.charge_id WHERE r.run_id = ? AND r.call_key = ? AND c.outcome = 'ok' "
        "AND c.call_key = r.call_key"
    ),
    "any_old_results": "SELECT 1 FROM {results} WHERE ts < ? LIMIT 1",
    "prune_results": "DELETE FROM {results} WHERE ts < ?",
}

# Grouping keys of `Ledger.spend`: name -> (SQL expression, extra WHERE clause).
GROUPS: dict[str, tuple[str, str | None]] = {
    "user": ("user_id", None),
    "tenant": ("tenant_id", None),
    "run": ("run_id", None),
    "thread": ("thread_id", None),
    "node": ("node", None),
    "kind": ("kind", None),
    "name": ("name", None),
    "model": ("name", "kind = 'model'"),
    "tool": ("name", "kind = 'tool'"),
    "outcome": ("outcome", None),
    "price_source": ("price_source", None),
    "day": ("ts / 86400000000", None),  # integer division in both dialects: days since epoch
    "hour": ("ts / 3600000000", None),
}


def spend_query(keys: list[str], extra_where: list[str]) -> str:
    """The aggregate behind `Ledger.spend`: committed money, calls and tokens, plus refusals
    and live reservations, per group. Parameters: now, since, until, then ``extra_where``'s."""
    exprs = [GROUPS[k][0] for k in keys]
    select = [f"{e} AS k{i}" for i, e in enumerate(exprs)]
    committed = "outcome IN ('ok', 'error')"
    live_held = "(outcome = 'held' AND expires_ts > ?)"
    select += [
        f"SUM(CASE WHEN {committed} THEN usd_nanos ELSE 0 END)",
        f"SUM(CASE WHEN {committed} THEN 1 ELSE 0 END)",
        f"SUM(CASE WHEN {committed} THEN input_tokens ELSE 0 END)",
        f"SUM(CASE WHEN {committed} THEN output_tokens ELSE 0 END)",
        "SUM(CASE WHEN outcome = 'error' THEN 1 ELSE 0 END)",
        "SUM(CASE WHEN outcome = 'refused' THEN 1 ELSE 0 END)",
        f"SUM(CASE WHEN {live_held} THEN usd_nanos ELSE 0 END)",
    ]
    where = ["ts >= ?", "ts < ?", *extra_where]
    sql = f"SELECT {', '.join(select)} FROM {{charges}} WHERE {' AND '.join(where)}"
    if exprs:
        group = ", ".join(f"k{i}" for i in range(len(exprs)))
        sql += f" GROUP BY {group} ORDER BY {group}"
    return sql


# --- windows over the buckets ------------------------------------------------------------

Ranges = tuple[int, tuple[tuple[int, int, int], ...]]
_NOTHING = (-1, 0, 0)  # a range that matches no bucket (keeps every check the same shape)


def bucket_ranges(window: str | None, now: int, *, field: str = "window") -> Ranges:
    """The buckets a window reads at ``now``: ``(counted_from, ((span, lo, hi), x3))``.

    A rolling window ``W`` counts every bucket from the minute its oldest edge
    (``now - W``) falls in: minute buckets up to the next whole hour, hour buckets up to
    the next day, day buckets from then on (the future included, as rows dated ahead count
    too). So it reads at most 59 + 23 + days(W) + 1 buckets whatever the history, and counts
    the part of that oldest minute before the edge too: at most one minute's spend early.
    Calendar windows start at a midnight and are exact; all time is one bucket."""
    if window is None:
        return 0, ((0, 0, 1), _NOTHING, _NOTHING)
    try:
        start = window_start(window, now)
    except ValueError:
        raise InvalidBudget(
            f"{field}={window!r} is not a ledger window; write a rolling one ('30m', '24h', "
            "'7d') or 'calendar-day' / 'calendar-week' / 'calendar-month'"
        ) from None
    if window.startswith("calendar-"):
        return start, ((DAY, start, FOREVER), _NOTHING, _NOTHING)
    length = now - start
    if length < MINUTE or length % MINUTE:
        raise InvalidBudget(
            f"{field}={window!r}: the ledger keeps shared-limit totals per minute, so a rolling "
            "window must be a whole number of minutes (at least '1m'); write e.g. "
            f"'{max(1, -(-length // MINUTE))}m'"
        )
    edge = start - start % MINUTE
    hour = -(-edge // HOUR) * HOUR
    day = -(-hour // DAY) * DAY
    return edge, ((MINUTE, edge, hour), (HOUR, hour, day), (DAY, day, FOREVER))


_KEY_COLUMN = {"user": "user_id", "tenant": "tenant_id", "global": "''"}


@lru_cache(maxsize=64)
def check_query(scopes: tuple[str, ...], held_hint: str = "") -> str:
    """What counts against each limit now (committed + held in its buckets, minus holds
    that have expired but are not swept yet), one row per limit, with the limit beside it.
    Named parameters per limit ``i``: ``k{i}`` (key), ``s{i}_{j}`` / ``lo{i}_{j}`` /
    ``hi{i}_{j}`` (three bucket ranges), ``from{i}``, ``lu{i}`` ``lt{i}`` ``lm{i}``
    ``lc{i}`` (the limit, NULL for none); and ``now``."""
    parts = []
    for i, scope in enumerate(scopes):
        ranges = " UNION ALL ".join(
            f"SELECT usd_nanos + held_usd_nanos AS u, tokens + held_tokens AS t, "
            f"model_calls + held_model_calls AS m, tool_calls + held_tool_calls AS c "
            f"FROM {{totals}} WHERE scope = '{scope}' AND key = :k{i} AND span = :s{i}_{j} "
            f"AND bucket >= :lo{i}_{j} AND bucket < :hi{i}_{j}"
            for j in range(3)
        )
        stale = (
            "SELECT COALESCE(SUM(usd_nanos), 0) AS u, "
            "COALESCE(SUM(input_tokens + output_tokens), 0) AS t, "
            "COALESCE(SUM(CASE WHEN kind = 'model' THEN 1 ELSE 0 END), 0) AS m, "
            "COALESCE(SUM(CASE WHEN kind = 'tool' THEN 1 ELSE 0 END), 0) AS c "
            f"FROM {{charges}}{held_hint} WHERE outcome = 'held' AND expires_ts <= :now "
            f"AND ts >= :from{i} AND {_KEY_COLUMN[scope]} = :k{i}"
        )
        parts.append(
            f"SELECT {i} AS i, CAST(:lu{i} AS BIGINT) AS lu, CAST(:lt{i} AS BIGINT) AS lt, "
            f"CAST(:lm{i} AS BIGINT) AS lm, CAST(:lc{i} AS BIGINT) AS lc, "
            "b.u - d.u AS uu, b.t - d.t AS ut, b.m - d.m AS um, b.c - d.c AS uc FROM "
            "(SELECT COALESCE(SUM(u), 0) AS u, COALESCE(SUM(t), 0) AS t, "
            f"COALESCE(SUM(m), 0) AS m, COALESCE(SUM(c), 0) AS c FROM ({ranges}) AS r) AS b, "
            f"({stale}) AS d"
        )
    return " UNION ALL ".join(parts)


REFUSED = (
    "(lu IS NOT NULL AND uu + :wu > lu) OR (lt IS NOT NULL AND :wt > 0 AND ut + :wt > lt) "
    "OR (lm IS NOT NULL AND :wm > 0 AND um + :wm > lm) "
    "OR (lc IS NOT NULL AND :wc > 0 AND uc + :wc > lc)"
)
"""Whether a charge wanting ``:wu`` nanos, ``:wt`` tokens, ``:wm`` model and ``:wc`` tool
calls does not fit a row of `check_query` (the same test `Ledger._refusal` words)."""


@lru_cache(maxsize=64)
def reserve_query(scopes: tuple[str, ...], held_hint: str = "") -> str:
    """A hold inserted only if it fits every limit, in one statement (SQLite: a statement
    that writes takes the write lock before it reads, so the check and the insert are one
    atomic step). Returns the new id, or no row when some limit refuses."""
    values = ", ".join(f":c_{c}" for c in COLUMNS)
    return (
        f"INSERT INTO {{charges}} ({', '.join(COLUMNS)}) SELECT {values} WHERE NOT EXISTS "
        f"(SELECT 1 FROM ({check_query(scopes, held_hint)}) AS chk WHERE {REFUSED}) RETURNING id"
    )


_NAMED = re.compile(r"(?<!:):([a-z][a-z0-9_]*)")


@dataclass(frozen=True)
class Statements:
    """The statements of one dialect, with table names filled in."""

    dialect: Dialect
    names: Names

    @property
    def charges(self) -> str:
        return self.names.charges

    @property
    def totals(self) -> str:
        return self.names.totals

    @property
    def meta(self) -> str:
        return self.names.meta

    @property
    def results(self) -> str:
        return self.names.results

    def __getitem__(self, name: str) -> str:
        return self.fmt(_STATEMENTS[name])

    def fmt(self, sql: str) -> str:
        sql = self.names.fmt(sql)
        if self.dialect == "postgres":
            sql = _NAMED.sub(r"%(\1)s", sql.replace("?", "%s"))
        return sql


def render(dialect: Dialect, schema: str | None = None) -> Statements:
    return Statements(dialect, Names(dialect, schema))
