"""The ledger's tables, written once for both backends.

`TABLES` is the whole schema: the same columns and CHECK constraints in SQLite and
PostgreSQL; only the id column's type and SQLite's ``WITHOUT ROWID`` differ, through two
tokens. The running totals are kept by triggers generated here for both dialects, so every
write (reserve, commit, release, record, expire, prune, even a hand-written UPDATE) moves the
totals in the same transaction as the row.

Totals are per (scope, key, span, bucket, slot): scope ``user`` / ``tenant`` / ``global``
(key ``''``), span the bucket width in microseconds (one minute, hour, day; ``0`` for one
all-time bucket), bucket its start. Each counts committed (``ok`` / ``error``) and held
rows apart; ``refused`` and ``expired`` rows count nowhere.

``slot`` shards a bucket between writers. On PostgreSQL every charge of every user adds to
the same ``global`` (and tenant) buckets, and a commit, which takes no limit lock, adds to
the same user buckets a reservation holding that user's lock is writing: one row each, so
every writer queued on its row lock. Each database session writes the slot of its backend
(``mod(pg_backend_pid(), SLOTS)``), so concurrent writers touch different rows; a check sums a
bucket's slots (one index range, as before: at most `SLOTS` times the rows). The limit
check stays atomic because it is the per-key advisory lock, not the totals row, that
orders reservations. SQLite has one writer at a time, so it always writes slot 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from agent_budget.ledger.timeutil import US

SCHEMA_VERSION = 4
"""The schema this code writes. A ledger with a newer version is refused, not guessed at.
4: the ``results`` table (finished tool results kept for a replay in another process)."""

MINUTE, HOUR, DAY = 60 * US, 3600 * US, 86400 * US
SPANS = (MINUTE, HOUR, DAY, 0)
"""Bucket widths kept for every key; 0 is the single all-time bucket."""
SLOTS = 8
"""PostgreSQL sessions spread their totals over this many rows per bucket (see above)."""
FOREVER = 2**62
"""An upper bound on any timestamp: "up to and including the future"."""

COLUMNS = (
    "ts", "settled_ts", "expires_ts", "outcome",
    "run_id", "thread_id", "user_id", "tenant_id", "node",
    "kind", "name", "input_tokens", "output_tokens",
    "usd_nanos", "reserved_nanos", "attempt", "call_key", "worker", "detail",
    "price_source",
)  # fmt: skip
"""The columns of a charge row, in insert order (``id`` is generated)."""
V1_COLUMNS = COLUMNS[:-1]
COLUMN_TYPES = {
    c: "TEXT" for c in COLUMNS
} | {c: "BIGINT" for c in ("ts", "settled_ts", "expires_ts", "input_tokens", "output_tokens",
                          "usd_nanos", "reserved_nanos")} | {"attempt": "INTEGER"}  # fmt: skip

VALUES = ("usd_nanos", "tokens", "model_calls", "tool_calls")
TOTAL_COLUMNS = (*VALUES, *(f"held_{v}" for v in VALUES))

TABLES = (
    """CREATE TABLE {charges} (
        id {id},
        ts BIGINT NOT NULL CHECK (ts >= 0),
        settled_ts BIGINT,
        expires_ts BIGINT,
        outcome TEXT NOT NULL CHECK (outcome IN ('held', 'ok', 'error', 'refused', 'expired')),
        run_id TEXT, thread_id TEXT, user_id TEXT, tenant_id TEXT, node TEXT,
        kind TEXT NOT NULL CHECK (kind IN ('model', 'tool')),
        name TEXT NOT NULL,
        input_tokens BIGINT NOT NULL DEFAULT 0 CHECK (input_tokens >= 0),
        output_tokens BIGINT NOT NULL DEFAULT 0 CHECK (output_tokens >= 0),
        usd_nanos BIGINT NOT NULL CHECK (usd_nanos >= 0),
        reserved_nanos BIGINT CHECK (reserved_nanos >= 0),
        attempt INTEGER CHECK (attempt >= 0),
        call_key TEXT, worker TEXT, detail TEXT,
        price_source TEXT,
        CHECK (outcome <> 'held' OR expires_ts IS NOT NULL)
    )""",
    # No ">= 0" checks on the totals: an upsert's proposed row carries a negative change
    # (a commit below its hold, a release) and both databases check it before merging.
    """CREATE TABLE {totals} (
        scope TEXT NOT NULL CHECK (scope IN ('user', 'tenant', 'global')),
        key TEXT NOT NULL,
        span BIGINT NOT NULL CHECK (span IN (0, 60000000, 3600000000, 86400000000)),
        bucket BIGINT NOT NULL CHECK (bucket >= 0),
        usd_nanos BIGINT NOT NULL DEFAULT 0,
        tokens BIGINT NOT NULL DEFAULT 0,
        model_calls BIGINT NOT NULL DEFAULT 0,
        tool_calls BIGINT NOT NULL DEFAULT 0,
        held_usd_nanos BIGINT NOT NULL DEFAULT 0,
        held_tokens BIGINT NOT NULL DEFAULT 0,
        held_model_calls BIGINT NOT NULL DEFAULT 0,
        held_tool_calls BIGINT NOT NULL DEFAULT 0,
        slot INTEGER NOT NULL DEFAULT 0 CHECK (slot >= 0),
        PRIMARY KEY (scope, key, span, bucket, slot)
    ){without_rowid}{totals_storage}""",
)
RESULT_TABLES = (
    # Results of finished paid tool calls, by the call's key, so a node run again in another
    # process (a resume) replays them instead of paying again (`agent_budget.ledger.results`).
    # A table of its own: bodies can be large, and reports scan the charges.
    """CREATE TABLE {results} (
        run_id TEXT NOT NULL,
        call_key TEXT NOT NULL,
        charge_id BIGINT NOT NULL,
        ts BIGINT NOT NULL,
        body TEXT NOT NULL,
        PRIMARY KEY (run_id, call_key)
    )""",
    "CREATE INDEX {prefix}results_by_ts ON {results} (ts)",
)
INDEXES = (
    "CREATE INDEX {prefix}charges_by_user ON {charges} (user_id, ts)",
    "CREATE INDEX {prefix}charges_by_tenant ON {charges} (tenant_id, ts)",
    "CREATE INDEX {prefix}charges_by_ts ON {charges} (ts)",
    # Holds only: the expiry sweep and the "expired but not yet swept" correction.
    "CREATE INDEX {prefix}charges_held ON {charges} (expires_ts) WHERE outcome = 'held'",
)
DIALECT_TOKENS = {
    "sqlite": {"id": "INTEGER PRIMARY KEY", "without_rowid": " WITHOUT ROWID",
               "totals_storage": "", "slot": "0"},
    # Totals rows are updated all the time: room on each page keeps the updates HOT (no
    # index writes, old versions pruned in place).
    "postgres": {"id": "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
                 "without_rowid": "", "totals_storage": " WITH (fillfactor = 50)",
                 "slot": f"mod(pg_backend_pid(), {SLOTS})"},
}  # fmt: skip
CONFLICT = "ON CONFLICT (scope, key, span, bucket, slot)"

_SCOPES = "(SELECT 'global' AS scope UNION ALL SELECT 'tenant' UNION ALL SELECT 'user')"
_SPANS = "(" + " UNION ALL ".join(f"SELECT {s} AS span" for s in SPANS) + ")"


def _apply(totals: str, parts: Sequence[str], extra: str = "") -> str:
    """Add the union of ``parts`` to the totals, in key order (concurrent writers lock the
    same rows in the same order, so they queue instead of deadlocking)."""
    sums = ", ".join(f"SUM({c})" for c in TOTAL_COLUMNS)
    update = ", ".join(f"{c} = totals.{c} + excluded.{c}" for c in TOTAL_COLUMNS)
    union = " UNION ALL ".join(parts)
    return (
        f"INSERT INTO {totals} (scope, key, span, bucket, {', '.join(TOTAL_COLUMNS)}) "
        f"SELECT scope, key, span, bucket, {sums} FROM ({union}) AS d WHERE true{extra} "
        "GROUP BY scope, key, span, bucket ORDER BY scope, key, span, bucket "
        f"{CONFLICT} DO UPDATE SET {update}"
    )


@dataclass(frozen=True)
class Names:
    """Table names of one ledger (schema-qualified in PostgreSQL)."""

    dialect: str
    schema: str | None = None

    def table(self, name: str) -> str:
        return f'"{self.schema}".{name}' if self.schema else name

    @property
    def charges(self) -> str:
        return self.table("charges")

    @property
    def totals(self) -> str:
        return self.table("totals")

    @property
    def meta(self) -> str:
        return self.table("ledger_meta")

    @property
    def results(self) -> str:
        return self.table("results")

    def fmt(self, sql: str) -> str:
        tokens = {"charges": self.charges, "totals": self.totals, "meta": self.meta,
                  "results": self.results, "prefix": ""}  # fmt: skip
        tokens |= DIALECT_TOKENS[self.dialect]
        for name, value in tokens.items():
            sql = sql.replace("{" + name + "}", value)
        return sql


def create_tables(n: Names) -> list[str]:
    return [n.fmt(ddl) for ddl in TABLES]


def create_result_tables(n: Names) -> list[str]:
    return [n.fmt(ddl) for ddl in RESULT_TABLES]


def create_indexes(n: Names) -> list[str]:
    return [n.fmt(ddl) for ddl in INDEXES]


def _from_rows(n: Names, where: str, sign: int) -> str:
    """The totals of the rows matching ``where`` (alias ``r``), times ``sign``: summed per
    (user, tenant, minute) first, so a million rows explode into scopes x spans only as
    many times as they have distinct minutes."""
    parts = []
    for cond, prefix in (("r.outcome IN ('ok', 'error')", ""), ("r.outcome = 'held'", "held_")):
        parts += [
            f"SUM(CASE WHEN {cond} THEN r.usd_nanos ELSE 0 END) AS {prefix}usd_nanos",
            f"SUM(CASE WHEN {cond} THEN r.input_tokens + r.output_tokens ELSE 0 END) "
            f"AS {prefix}tokens",
            f"SUM(CASE WHEN {cond} AND r.kind = 'model' THEN 1 ELSE 0 END) AS {prefix}model_calls",
            f"SUM(CASE WHEN {cond} AND r.kind = 'tool' THEN 1 ELSE 0 END) AS {prefix}tool_calls",
        ]
    base = (
        f"SELECT r.user_id AS user_id, r.tenant_id AS tenant_id, "
        f"r.ts / {MINUTE} * {MINUTE} AS ts, {', '.join(parts)} FROM {n.charges} AS r "
        f"WHERE r.outcome IN ('held', 'ok', 'error') AND ({where}) "
        f"GROUP BY r.user_id, r.tenant_id, r.ts / {MINUTE}"
    )
    key = "CASE s.scope WHEN 'user' THEN b.user_id WHEN 'tenant' THEN b.tenant_id ELSE '' END"
    values = ", ".join(f"{sign} * b.{c} AS {c}" for c in TOTAL_COLUMNS)
    return (
        f"SELECT s.scope AS scope, {key} AS key, l.span AS span, "
        f"COALESCE(b.ts / NULLIF(l.span, 0) * l.span, 0) AS bucket, {values} "
        f"FROM ({base}) AS b CROSS JOIN {_SCOPES} AS s CROSS JOIN {_SPANS} AS l "
        f"WHERE {key} IS NOT NULL"
    )


def rebuild_totals(n: Names, where: str = "true", sign: int = 1) -> str:
    """Add the totals of every row matching ``where`` (over alias ``r``) times ``sign``."""
    return _apply(n.totals, [_from_rows(n, where, sign)])


def _nonzero_by_bucket(source: str) -> str:
    sums = ", ".join(f"SUM({c})" for c in TOTAL_COLUMNS)
    nonzero = " OR ".join(f"SUM({c}) <> 0" for c in TOTAL_COLUMNS)
    return (
        f"SELECT scope, key, span, bucket, {sums} FROM {source} "
        f"GROUP BY scope, key, span, bucket HAVING {nonzero}"
    )


def expected_totals(n: Names) -> str:
    """The totals the rows say there should be (for `Ledger.verify`), non-zero ones only."""
    return _nonzero_by_bucket(f"({_from_rows(n, 'true', 1)}) AS d")


def stored_totals(n: Names) -> str:
    """The totals as stored, their slots summed, non-zero ones only."""
    return _nonzero_by_bucket(n.totals)


def _upsert(n: Names, user: str, tenant: str, ts: str, deltas: list[str], guard: str) -> str:
    """Add ``deltas`` (one per `TOTAL_COLUMNS`) to the 12 buckets of a row of ``user`` /
    ``tenant`` at ``ts``, in this session's slot: the keys listed in sort order, so concurrent
    writers of one slot lock the same rows in the same order (they queue instead of
    deadlocking); no join, sort or grouping."""
    totals, slot = n.totals, DIALECT_TOKENS[n.dialect]["slot"]
    keys = []
    for scope, key in (("global", "''"), ("tenant", tenant), ("user", user)):
        for span in sorted(SPANS):
            bucket = f"{ts} / {span} * {span}" if span else "0"
            keys.append(
                f"SELECT '{scope}' AS scope, {key} AS key, "
                f"CAST({span} AS BIGINT) AS span, CAST({bucket} AS BIGINT) AS bucket"
            )
    values = ", ".join(f"{d} AS {c}" for d, c in zip(deltas, TOTAL_COLUMNS, strict=True))
    update = ", ".join(f"{c} = totals.{c} + excluded.{c}" for c in TOTAL_COLUMNS)
    return (
        f"INSERT INTO {totals} (scope, key, span, bucket, slot, {', '.join(TOTAL_COLUMNS)}) "
        f"SELECT v.scope, v.key, v.span, v.bucket, {slot}, {values} "
        f"FROM ({' UNION ALL '.join(keys)}) AS v WHERE v.key IS NOT NULL AND {guard} "
        f"{CONFLICT} DO UPDATE SET {update}"
    )


def _parts(r: str, sign: str) -> list[str]:
    """What row ``r`` (NEW / OLD) adds to each total, times ``sign``."""
    tokens, model, tool = (
        f"{r}.input_tokens + {r}.output_tokens",
        f"CASE WHEN {r}.kind = 'model' THEN 1 ELSE 0 END",
        f"CASE WHEN {r}.kind = 'tool' THEN 1 ELSE 0 END",
    )
    c = f"CASE WHEN {r}.outcome IN ('ok', 'error') THEN {sign} ELSE 0 END"
    h = f"CASE WHEN {r}.outcome = 'held' THEN {sign} ELSE 0 END"
    return [f"{f} * ({v})" for f in (c, h) for v in (f"{r}.usd_nanos", tokens, model, tool)]


def _sum(*rows: list[str]) -> list[str]:
    return [" + ".join(f"({x})" for x in xs) for xs in zip(*rows, strict=True)]


COUNTED = "('held', 'ok', 'error')"
_SAME_BUCKETS = (
    "OLD.user_id {same} NEW.user_id AND OLD.tenant_id {same} NEW.tenant_id "
    f"AND OLD.ts / {MINUTE} = NEW.ts / {MINUTE}"
)
"""The row stays in the same buckets (null-safe ``=`` is ``IS`` in SQLite)."""


def triggers(n: Names) -> list[str]:
    """The triggers that keep the totals (dropped and created again by bulk loads). A row's
    change is eight deltas and one 12-row upsert; an update that keeps the row in the same
    buckets (a commit, an expiry) is one upsert of the difference."""
    old, new = _parts("OLD", "-1"), _parts("NEW", "1")
    same_buckets = _SAME_BUCKETS.format(
        same="IS" if n.dialect == "sqlite" else "IS NOT DISTINCT FROM"
    )
    if n.dialect == "sqlite":
        t = n
        ins = _upsert(t, "NEW.user_id", "NEW.tenant_id", "NEW.ts", new, "true")
        dele = _upsert(t, "OLD.user_id", "OLD.tenant_id", "OLD.ts", old, "true")
        same = _upsert(t, "NEW.user_id", "NEW.tenant_id", "NEW.ts", _sum(old, new), "true")
        moved_old = _upsert(t, "OLD.user_id", "OLD.tenant_id", "OLD.ts", old,
                            f"OLD.outcome IN {COUNTED}")  # fmt: skip
        moved_new = _upsert(t, "NEW.user_id", "NEW.tenant_id", "NEW.ts", new,
                            f"NEW.outcome IN {COUNTED}")  # fmt: skip
        either = f"(OLD.outcome IN {COUNTED} OR NEW.outcome IN {COUNTED})"
        return [
            f"CREATE TRIGGER charges_totals_insert AFTER INSERT ON charges "
            f"WHEN NEW.outcome IN {COUNTED} BEGIN {ins}; END",
            f"CREATE TRIGGER charges_totals_delete AFTER DELETE ON charges "
            f"WHEN OLD.outcome IN {COUNTED} BEGIN {dele}; END",
            f"CREATE TRIGGER charges_totals_update AFTER UPDATE ON charges "
            f"WHEN {either} AND {same_buckets} BEGIN {same}; END",
            f"CREATE TRIGGER charges_totals_move AFTER UPDATE ON charges "
            f"WHEN {either} AND NOT ({same_buckets}) BEGIN {moved_old}; {moved_new}; END",
        ]
    fn = f'"{n.schema}".charges_totals'
    upsert = _upsert(n, "v_user", "v_tenant", "v_ts", [f"d_{c}" for c in TOTAL_COLUMNS], "true")
    declare = " ".join(f"d_{c} BIGINT;" for c in TOTAL_COLUMNS)

    def up(r: str, deltas: list[str]) -> str:
        # Deltas into variables first: the one upsert statement (planned once) reads them.
        sets = " ".join(f"d_{c} := {d};" for c, d in zip(TOTAL_COLUMNS, deltas, strict=True))
        return f"v_user := {r}.user_id; v_tenant := {r}.tenant_id; v_ts := {r}.ts; {sets} {upsert}"

    return [
        f"""CREATE OR REPLACE FUNCTION {fn}() RETURNS trigger LANGUAGE plpgsql AS $body$
        DECLARE v_user TEXT; v_tenant TEXT; v_ts BIGINT; {declare}
        BEGIN
            IF TG_OP = 'INSERT' THEN
                IF NEW.outcome IN {COUNTED} THEN {up("NEW", new)}; END IF;
            ELSIF TG_OP = 'DELETE' THEN
                IF OLD.outcome IN {COUNTED} THEN {up("OLD", old)}; END IF;
            ELSIF OLD.outcome IN {COUNTED} OR NEW.outcome IN {COUNTED} THEN
                IF {same_buckets} THEN
                    {up("NEW", _sum(old, new))};
                ELSE
                    IF OLD.outcome IN {COUNTED} THEN {up("OLD", old)}; END IF;
                    IF NEW.outcome IN {COUNTED} THEN {up("NEW", new)}; END IF;
                END IF;
            END IF;
            RETURN NULL;
        END $body$""",
        f"CREATE TRIGGER charges_totals AFTER INSERT OR UPDATE OR DELETE ON {n.charges} "
        f"FOR EACH ROW EXECUTE FUNCTION {fn}()",
    ]


def drop_triggers(n: Names) -> list[str]:
    if n.dialect == "sqlite":
        return [
            f"DROP TRIGGER IF EXISTS charges_totals_{op}"
            for op in ("insert", "delete", "update", "move")
        ]
    return [f"DROP TRIGGER IF EXISTS charges_totals ON {n.charges}"]
