"""Every statement the ledger runs, for both backends, in one place.

Written once with ``?`` placeholders and a ``{charges}`` table token; `render` turns them
into the SQL of one dialect (``%s`` placeholders and a schema-qualified table for
PostgreSQL). Money is ``usd_nanos``: integer billionths of a dollar, so sums are exact in
both databases. Times are integer microseconds since the Unix epoch (UTC).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Dialect = Literal["sqlite", "postgres"]

SCHEMA_VERSION = 1
"""The schema this code writes. A ledger with a newer version is refused, not guessed at."""

COLUMNS = (
    "ts",
    "settled_ts",
    "expires_ts",
    "outcome",
    "run_id",
    "thread_id",
    "user_id",
    "tenant_id",
    "node",
    "kind",
    "name",
    "input_tokens",
    "output_tokens",
    "usd_nanos",
    "reserved_nanos",
    "attempt",
    "call_key",
    "worker",
    "detail",
)
"""The columns of a charge row, in insert order (``id`` is generated)."""

OUTCOMES = ("held", "ok", "error", "refused", "expired")
"""A row's state: ``held`` (reserved, call in flight), ``ok`` / ``error`` (committed: the
call was made), ``refused`` (not made), ``expired`` (held by a worker that never settled it,
typically because it crashed; it no longer counts against any budget)."""

# A row counts against a budget while it is committed or a live (unexpired) reservation.
_COUNTS = "(outcome IN ('ok', 'error') OR (outcome = 'held' AND expires_ts > ?))"

_USED = (
    "SELECT COALESCE(SUM(usd_nanos), 0), COALESCE(SUM(input_tokens + output_tokens), 0), "
    "COALESCE(SUM(CASE WHEN kind = 'model' THEN 1 ELSE 0 END), 0), "
    "COALESCE(SUM(CASE WHEN kind = 'tool' THEN 1 ELSE 0 END), 0) "
    "FROM {charges} WHERE "
)

_STATEMENTS = {
    "insert": (
        f"INSERT INTO {{charges}} ({', '.join(COLUMNS)}) "
        f"VALUES ({', '.join('?' for _ in COLUMNS)}) RETURNING id"
    ),
    "commit": (
        "UPDATE {charges} SET outcome = ?, name = ?, input_tokens = ?, output_tokens = ?, "
        "usd_nanos = ?, settled_ts = ?, expires_ts = NULL WHERE id = ? "
        "AND outcome IN ('held', 'expired')"
    ),
    "release": "DELETE FROM {charges} WHERE id = ? AND outcome IN ('held', 'expired')",
    "expire": (
        "UPDATE {charges} SET outcome = 'expired', settled_ts = ? "
        "WHERE outcome = 'held' AND expires_ts <= ?"
    ),
    "used_user": _USED + "user_id = ? AND ts >= ? AND " + _COUNTS,
    "used_tenant": _USED + "tenant_id = ? AND ts >= ? AND " + _COUNTS,
    "used_global": _USED + "ts >= ? AND " + _COUNTS,
    "prune": ("DELETE FROM {charges} WHERE ts < ? AND NOT (outcome = 'held' AND expires_ts > ?)"),
    "rows": (
        f"SELECT id, {', '.join(COLUMNS)} FROM {{charges}} WHERE ts >= ? AND ts < ? ORDER BY ts, id"
    ),
    "count": "SELECT COUNT(*) FROM {charges}",
    "get_version": "SELECT value FROM {meta} WHERE key = 'schema_version'",
    "set_version": "UPDATE {meta} SET value = ? WHERE key = 'schema_version'",
    "init_version": (
        "INSERT INTO {meta} (key, value) VALUES ('schema_version', ?) ON CONFLICT (key) DO NOTHING"
    ),
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


# PostgreSQL DDL by schema version (SQLite's is built with sqlite-utils in sqlite.py).
POSTGRES_MIGRATIONS: dict[int, list[str]] = {
    1: [
        """CREATE TABLE {charges} (
            id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            ts BIGINT NOT NULL,
            settled_ts BIGINT,
            expires_ts BIGINT,
            outcome TEXT NOT NULL CHECK (outcome IN ('held','ok','error','refused','expired')),
            run_id TEXT, thread_id TEXT, user_id TEXT, tenant_id TEXT, node TEXT,
            kind TEXT NOT NULL CHECK (kind IN ('model', 'tool')),
            name TEXT NOT NULL,
            input_tokens BIGINT NOT NULL DEFAULT 0,
            output_tokens BIGINT NOT NULL DEFAULT 0,
            usd_nanos BIGINT NOT NULL,
            reserved_nanos BIGINT,
            attempt INTEGER, call_key TEXT, worker TEXT, detail TEXT
        )""",
        "CREATE INDEX ON {charges} (user_id, ts)",
        "CREATE INDEX ON {charges} (tenant_id, ts)",
        "CREATE INDEX ON {charges} (ts)",
        "CREATE INDEX ON {charges} (expires_ts) WHERE outcome = 'held'",
    ],
}


@dataclass(frozen=True)
class Statements:
    """The statements of one dialect, with table names filled in."""

    dialect: Dialect
    charges: str
    meta: str

    def __getitem__(self, name: str) -> str:
        return self.fmt(_STATEMENTS[name])

    def fmt(self, sql: str) -> str:
        sql = sql.replace("{charges}", self.charges).replace("{meta}", self.meta)
        return sql.replace("?", "%s") if self.dialect == "postgres" else sql


def render(dialect: Dialect, schema: str | None = None) -> Statements:
    prefix = f'"{schema}".' if schema else ""
    return Statements(dialect, f"{prefix}charges", f"{prefix}ledger_meta")
