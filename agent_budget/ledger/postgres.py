"""The PostgreSQL ledger: the same rows, tables and SQL, for workers on several hosts.

A reservation is one call of the server-side function ``reserve`` (one round trip, one
transaction): it takes a transaction-scoped advisory lock per shared limit it checks (user,
tenant, global; always in the same order, so two reserves cannot deadlock), reads each
limit's running-total buckets, and inserts the hold, whose trigger updates the totals.
Inside a function each statement takes a fresh snapshot, so the reads after the lock see
every commit made before it was granted: the check-then-insert is atomic per limit while
different users never wait for each other's locks. A commit is one call of ``settle``.

Selected by a ``postgresql://user@host:5432/db`` URL; ``?schema=name`` (default
``agent_budget``) keeps the tables in their own schema.

Durability: every reserve and commit waits for its WAL flush (``synchronous_commit=on``,
the server's default), so a charge the ledger acknowledged survives a crash of the database
server: a ledger that records every cent must not lose the last second of them. A URL with
``?synchronous_commit=off`` (or ``synchronous_commit="off"``) opts out: a commit then returns
once it is visible to every other session (so the limits still hold exactly) without waiting
for the flush, and a server crash may lose the last ~0.6 s of charges (three
``wal_writer_delay``s; totals and rows never disagree). Since a user's reservations queue on
that user's lock, which is held until the flush, one user's reservation rate is bounded by
the disk's flush time; other users' flushes are shared (group commit). The benchmark
measures both side by side (README, "Durability").

Totals are sharded per session (`agent_budget.ledger.schema.SLOTS`), so workers of different
users, or a commit and a reservation of the same user, do not queue on one totals row.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg

from agent_budget.errors import InvalidBudget, LedgerUnavailable
from agent_budget.ledger import schema as sch
from agent_budget.ledger import sql as q
from agent_budget.ledger.backend import Kept
from agent_budget.ledger.base import DEFAULT_TTL, Execute, Ledger, ScopedLimit, limit_params
from agent_budget.tracker import Charge

DEFAULT_SCHEMA = "agent_budget"
_SCHEMA_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def redact(url: str) -> str:
    """The URL with its password hidden, for error messages and reports."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


def split_schema(url: str) -> tuple[str, str | None]:
    """Take our ``schema`` query parameter out of a URL (libpq would reject it)."""
    rest, ours = split_params(url)
    return rest, ours.get("schema")


def split_params(url: str) -> tuple[str, dict[str, str]]:
    """Take our query parameters (``schema``, ``synchronous_commit``) out of a URL."""
    parts = urlsplit(url)
    params = parse_qsl(parts.query, keep_blank_values=True)
    ours = {k: v for k, v in params if k in _OURS}
    rest = urlencode([(k, v) for k, v in params if k not in _OURS])
    return urlunsplit(parts._replace(query=rest)), ours


_OURS = ("schema", "synchronous_commit")


def _lock_id(text: str) -> int:
    return int.from_bytes(
        hashlib.blake2b(text.encode(), digest_size=8).digest(), "big", signed=True
    )


class PostgresLedger(Ledger):
    """A ledger in a PostgreSQL database (psycopg 3)."""

    _integrity_error = psycopg.errors.IntegrityError
    _driver_error = psycopg.Error

    def __init__(
        self,
        url: str,
        *,
        reservation_ttl: float = DEFAULT_TTL,
        schema: str | None = None,
        connect_timeout: float = 5.0,
        synchronous_commit: str | None = None,
    ) -> None:
        super().__init__(reservation_ttl=reservation_ttl)
        self._conninfo, ours = split_params(url)
        self.schema = schema or ours.get("schema") or DEFAULT_SCHEMA
        self.synchronous_commit = synchronous_commit or ours.get("synchronous_commit", "on")
        if self.synchronous_commit not in ("on", "off"):
            raise InvalidBudget(
                f"ledger synchronous_commit={self.synchronous_commit!r}: use on or off"
            )
        if not _SCHEMA_RE.match(self.schema):
            raise InvalidBudget(
                f"ledger schema {self.schema!r}: use letters, digits and underscores "
                "(at most 63, not starting with a digit)"
            )
        self.location = redact(url)
        self.connect_timeout = connect_timeout
        self.sql = q.render("postgres", self.schema)
        self._conn = self._connect()
        self._migrate(f"migrate:{self.schema}")

    def _connect(self) -> psycopg.Connection[Any]:
        try:
            conn = psycopg.connect(
                self._conninfo,
                autocommit=True,
                connect_timeout=max(1, round(self.connect_timeout)),
                application_name="agent-budget",
            )
            conn.execute(f"SET synchronous_commit = {self.synchronous_commit}")
            return conn
        except psycopg.Error as exc:
            reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
            raise LedgerUnavailable(
                f"cannot reach the ledger database {self.location}: {reason}. Check that the "
                "server is running and the URL's user, host, port and database; a run does "
                "not spend while its ledger cannot record."
            ) from None

    def _unavailable(self, exc: Exception) -> LedgerUnavailable:
        return LedgerUnavailable(f"ledger database {self.location}: {exc}".strip())

    def _ready(self) -> None:
        self._usable()

    def _create_namespace(self, run: Execute) -> None:
        run(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"', ())

    def _after_migrate(self, run: Execute) -> None:
        # Code, not data: (re)defined on every open. Schema 3's settle had two arguments
        # fewer: a different function to PostgreSQL, so it is dropped, not replaced.
        old = ", ".join(_SETTLE_TYPES)
        run(f'DROP FUNCTION IF EXISTS "{self.schema}".settle({old})', ())
        run(reserve_function(self.sql.names), ())
        run(settle_function(self.sql.names), ())

    def _usable(self) -> psycopg.Connection[Any]:
        self._check_process()
        if self._conn.closed or self._conn.broken:
            self._conn = self._connect()  # the server restarted or the network blinked
        return self._conn

    @contextmanager
    def _transaction(self, lock_keys: Sequence[str] = ()) -> Iterator[Execute]:
        with self._lock:
            conn = self._usable()
            try:
                with conn.transaction():
                    for key in lock_keys:
                        conn.execute(
                            "SELECT pg_advisory_xact_lock(%s)", (_lock_id(f"{self.schema}:{key}"),)
                        )
                    yield self._run
            except psycopg.Error as exc:
                raise self._unavailable(exc) from None

    def _reserve(
        self, row: dict[str, Any], charge: Charge, limits: Sequence[ScopedLimit], now: int
    ) -> int:
        p = limit_params(limits, now)
        n = len(limits)
        args = [row[f"c_{c}"] for c in sch.COLUMNS] + [
            [lim.scope for lim in limits],
            [p[f"k{i}"] for i in range(n)],
            [p[f"{x}{i}_{j}"] for i in range(n) for j in range(3) for x in ("s", "lo", "hi")],
            [p[f"from{i}"] for i in range(n)],
            [p[f"{x}{i}"] for i in range(n) for x in ("lu", "lt", "lm", "lc")],
            sorted({_lock_id(f"{self.schema}:{lim.lock_key}") for lim in limits}),
            now,
        ]
        with self._autocommit(write=True) as run:
            got = run(self._reserve_call, args).fetchone()
        if got[0] is not None:
            return int(got[0])
        refused = [(got[1], None, None, None, None, *got[2:])]
        self._refuse_or_none(refused, charge, limits)
        raise AssertionError(f"the ledger refused {charge} but no limit says why: {got}")

    @functools.cached_property
    def _reserve_call(self) -> str:
        casts = [sch.COLUMN_TYPES[c] for c in sch.COLUMNS]
        casts += ["TEXT[]", "TEXT[]", "BIGINT[]", "BIGINT[]", "BIGINT[]", "BIGINT[]", "BIGINT"]
        args = ", ".join(f"%s::{t}" for t in casts)
        return f'SELECT * FROM "{self.schema}".reserve({args})'

    @functools.cached_property
    def _settle_call(self) -> str:
        args = ", ".join(f"%s::{t}" for t in (*_SETTLE_TYPES, "TEXT", "TEXT"))
        return f'SELECT "{self.schema}".settle({args})'

    def _commit(
        self, handle: int, values: dict[str, Any], row: dict[str, Any], kept: Kept | None
    ) -> None:
        # A kept result rides in the same call (and transaction): two more arguments.
        keep = [None, None] if kept is None else [kept[0], kept[3]]
        args = [values[k] for k in _SETTLE_VALUES] + list(row.values()) + keep
        with self._autocommit(write=True) as run:
            run(self._settle_call, args)

    def _lock_tables(self, run: Execute) -> None:
        # Other writers wait here, before this transaction holds any totals row they need.
        run(f"LOCK TABLE {self.sql.charges}, {self.sql.totals} IN SHARE ROW EXCLUSIVE MODE", ())

    def _after_bulk(self, run: Execute) -> None:
        run(f"ANALYZE {self.sql.charges}, {self.sql.totals}", ())
        run(
            f"SELECT setval(pg_get_serial_sequence('{self.sql.charges}', 'id'), "
            f"COALESCE(MAX(id), 0) + 1, false) FROM {self.sql.charges}",
            (),
        )

    def _insert_many(self, run: Execute, rows: Sequence[Sequence[Any]]) -> None:
        cols = ", ".join(sch.COLUMNS)
        with self._conn.cursor().copy(f"COPY {self.sql.charges} ({cols}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def drop(self) -> None:
        """Delete this ledger's schema and every row in it (used by tests)."""
        with self._autocommit() as run:
            run(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE', ())


_SETTLE_VALUES = ("id", "outcome", "name", "input_tokens", "output_tokens", "usd_nanos",
                  "settled_ts", "price_source")  # fmt: skip
_SETTLE_TYPES = ("BIGINT", "TEXT", "TEXT", "BIGINT", "BIGINT", "BIGINT", "BIGINT", "TEXT",
                 *(sch.COLUMN_TYPES[c] for c in sch.COLUMNS))  # fmt: skip
"""settle's arguments before the kept result's two (run id, body)."""

# The functions' statements are index lookups by design. A fresh ledger's tables are tiny
# when a session first plans them, and the plan it caches (a sequential scan) would stay
# until autovacuum analyzes the table, scanning every row of a fast-growing table per call
# (measured: 5,483 sequential scans reading 7.5M rows over 3,000 reserve+commits, 0 index
# scans). ``enable_seqscan = off`` makes each cached plan the index one from the start.
_PLAN = "SET enable_seqscan = off"


def settle_function(n: sch.Names) -> str:
    """``settle``: a commit in one call; the held row becomes the real cost, or (if it was
    pruned meanwhile, rare) the charge is inserted, so the money still counts. With a
    ``p_keep_body``, the call's result is kept too (`agent_budget.ledger.results`)."""
    row = ",\n".join(f"r_{c} {sch.COLUMN_TYPES[c]}" for c in sch.COLUMNS)
    return f"""CREATE OR REPLACE FUNCTION "{n.schema}".settle(
    p_id BIGINT, p_outcome TEXT, p_name TEXT, p_input_tokens BIGINT, p_output_tokens BIGINT,
    p_usd_nanos BIGINT, p_settled_ts BIGINT, p_price_source TEXT,
    {row},
    p_keep_run TEXT, p_keep_body TEXT
) RETURNS VOID LANGUAGE plpgsql {_PLAN} AS $body$
DECLARE v_id BIGINT := p_id;
BEGIN
    UPDATE {n.charges} SET outcome = p_outcome, name = p_name, input_tokens = p_input_tokens,
           output_tokens = p_output_tokens, usd_nanos = p_usd_nanos, settled_ts = p_settled_ts,
           expires_ts = NULL, price_source = COALESCE(p_price_source, price_source)
     WHERE id = p_id AND outcome IN ('held', 'expired');
    IF NOT FOUND THEN
        INSERT INTO {n.charges} ({", ".join(sch.COLUMNS)})
        VALUES ({", ".join(f"r_{c}" for c in sch.COLUMNS)}) RETURNING id INTO v_id;
    END IF;
    IF p_keep_body IS NOT NULL THEN
        INSERT INTO {n.results} (run_id, call_key, charge_id, ts, body)
        VALUES (p_keep_run, r_call_key, v_id, p_settled_ts, p_keep_body)
        ON CONFLICT (run_id, call_key) DO NOTHING;
    END IF;
END $body$"""


def reserve_function(n: sch.Names) -> str:
    """``reserve``: lock, check every limit against its buckets, insert the hold (whose
    trigger updates the totals); returns (id, -1, 0...) or (NULL, refusing limit, used...)."""
    params = ",\n".join(f"p_{c} {sch.COLUMN_TYPES[c]}" for c in sch.COLUMNS)
    values = ", ".join(f"p_{c}" for c in sch.COLUMNS)
    # One index range per span (an OR of the three would scan all of a key's buckets).
    ranges = " UNION ALL ".join(
        f"SELECT t.usd_nanos + t.held_usd_nanos AS u, t.tokens + t.held_tokens AS tk, "
        f"t.model_calls + t.held_model_calls AS m, t.tool_calls + t.held_tool_calls AS c "
        f"FROM {n.totals} AS t WHERE t.scope = p_scopes[i] AND t.key = p_keys[i] "
        f"AND t.span = p_ranges[j + {3 * k + 1}] AND t.bucket >= p_ranges[j + {3 * k + 2}] "
        f"AND t.bucket < p_ranges[j + {3 * k + 3}]"
        for k in range(3)
    )
    return f"""CREATE OR REPLACE FUNCTION "{n.schema}".reserve(
    {params},
    p_scopes TEXT[], p_keys TEXT[], p_ranges BIGINT[], p_from BIGINT[], p_limits BIGINT[],
    p_locks BIGINT[], p_now BIGINT
) RETURNS TABLE (o_id BIGINT, o_refused INTEGER, o_u BIGINT, o_t BIGINT, o_m BIGINT,
                 o_c BIGINT)
LANGUAGE plpgsql {_PLAN} AS $body$
DECLARE
    i INTEGER; j INTEGER; new_id BIGINT;
    b_u BIGINT; b_t BIGINT; b_m BIGINT; b_c BIGINT;
    d_u BIGINT; d_t BIGINT; d_m BIGINT; d_c BIGINT;
    lu BIGINT; lt BIGINT; lm BIGINT; lc BIGINT;
    w_t BIGINT := p_input_tokens + p_output_tokens;
    w_m BIGINT := CASE WHEN p_kind = 'model' THEN 1 ELSE 0 END;
    w_c BIGINT := CASE WHEN p_kind = 'tool' THEN 1 ELSE 0 END;
BEGIN
    PERFORM pg_advisory_xact_lock(l) FROM unnest(p_locks) AS l ORDER BY l;
    FOR i IN 1 .. coalesce(array_length(p_scopes, 1), 0) LOOP
        j := 9 * (i - 1);
        SELECT COALESCE(SUM(r.u), 0), COALESCE(SUM(r.tk), 0), COALESCE(SUM(r.m), 0),
               COALESCE(SUM(r.c), 0)
          INTO b_u, b_t, b_m, b_c
          FROM ({ranges}) AS r;
        -- holds past their expiry stop counting even before anyone marks them expired
        SELECT COALESCE(SUM(c.usd_nanos), 0), COALESCE(SUM(c.input_tokens + c.output_tokens), 0),
               COALESCE(SUM(CASE WHEN c.kind = 'model' THEN 1 ELSE 0 END), 0),
               COALESCE(SUM(CASE WHEN c.kind = 'tool' THEN 1 ELSE 0 END), 0)
          INTO d_u, d_t, d_m, d_c
          FROM {n.charges} AS c
         WHERE c.outcome = 'held' AND c.expires_ts <= p_now AND c.ts >= p_from[i]
           AND (CASE p_scopes[i] WHEN 'user' THEN c.user_id WHEN 'tenant' THEN c.tenant_id
                ELSE '' END) = p_keys[i];
        b_u := b_u - d_u; b_t := b_t - d_t; b_m := b_m - d_m; b_c := b_c - d_c;
        lu := p_limits[4 * i - 3]; lt := p_limits[4 * i - 2];
        lm := p_limits[4 * i - 1]; lc := p_limits[4 * i];
        IF (lu IS NOT NULL AND b_u + p_usd_nanos > lu)
           OR (lt IS NOT NULL AND w_t > 0 AND b_t + w_t > lt)
           OR (lm IS NOT NULL AND w_m > 0 AND b_m + w_m > lm)
           OR (lc IS NOT NULL AND w_c > 0 AND b_c + w_c > lc) THEN
            RETURN QUERY SELECT NULL::BIGINT, i - 1, b_u, b_t, b_m, b_c;
            RETURN;
        END IF;
    END LOOP;
    INSERT INTO {n.charges} ({", ".join(sch.COLUMNS)}) VALUES ({values})
        RETURNING id INTO new_id;
    RETURN QUERY SELECT new_id, -1, 0::BIGINT, 0::BIGINT, 0::BIGINT, 0::BIGINT;
END $body$"""
