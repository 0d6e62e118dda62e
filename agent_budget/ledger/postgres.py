"""The PostgreSQL ledger: the same rows and SQL, for workers on several hosts.

A reserve takes a transaction-scoped advisory lock per shared limit it checks (user, tenant,
global; always in the same order, so two reserves cannot deadlock), then sums and inserts.
Under READ COMMITTED every statement sees what was committed before it started, and a lock
is released only after its holder's commit is visible, so the check-then-insert is atomic
per limit while different users never wait for each other.

Selected by a ``postgresql://user@host:5432/db`` URL; ``?schema=name`` (default
``agent_budget``) keeps the tables in their own schema.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg

from agent_budget.errors import InvalidBudget, LedgerUnavailable
from agent_budget.ledger import sql as q
from agent_budget.ledger.base import DEFAULT_TTL, Execute, Ledger

DEFAULT_SCHEMA = "agent_budget"
_SCHEMA_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def redact(url: str) -> str:
    """The URL with its password hidden, for error messages and reports."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


def split_schema(url: str) -> tuple[str, str | None]:
    """Take our ``schema`` query parameter out of a URL (libpq would reject it)."""
    parts = urlsplit(url)
    params = parse_qsl(parts.query, keep_blank_values=True)
    schema = next((v for k, v in params if k == "schema"), None)
    rest = urlencode([(k, v) for k, v in params if k != "schema"])
    return urlunsplit(parts._replace(query=rest)), schema


def _lock_id(text: str) -> int:
    return int.from_bytes(
        hashlib.blake2b(text.encode(), digest_size=8).digest(), "big", signed=True
    )


class PostgresLedger(Ledger):
    """A ledger in a PostgreSQL database (psycopg 3)."""

    def __init__(
        self,
        url: str,
        *,
        reservation_ttl: float = DEFAULT_TTL,
        schema: str | None = None,
        connect_timeout: float = 5.0,
    ) -> None:
        super().__init__(reservation_ttl=reservation_ttl)
        self._conninfo, from_url = split_schema(url)
        self.schema = schema or from_url or DEFAULT_SCHEMA
        if not _SCHEMA_RE.match(self.schema):
            raise InvalidBudget(
                f"ledger schema {self.schema!r}: use letters, digits and underscores "
                "(at most 63, not starting with a digit)"
            )
        self.location = redact(url)
        self.connect_timeout = connect_timeout
        self.sql = q.render("postgres", self.schema)
        self._pid = os.getpid()
        self._conn = self._connect()
        self._migrate()

    def _connect(self) -> psycopg.Connection[Any]:
        try:
            return psycopg.connect(
                self._conninfo,
                autocommit=True,
                connect_timeout=max(1, round(self.connect_timeout)),
                application_name="agent-budget",
            )
        except psycopg.Error as exc:
            reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
            raise LedgerUnavailable(
                f"cannot reach the ledger database {self.location}: {reason}. Check that the "
                "server is running and the URL's user, host, port and database; a run does "
                "not spend while its ledger cannot record."
            ) from None

    def _unavailable(self, exc: psycopg.Error) -> LedgerUnavailable:
        return LedgerUnavailable(f"ledger database {self.location}: {exc}".strip())

    def _migrate(self) -> None:
        with self._transaction([f"migrate:{self.schema}"]) as run:
            run(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"', ())
            run(
                f"CREATE TABLE IF NOT EXISTS {self.sql.meta} (key TEXT PRIMARY KEY, value TEXT)", ()
            )
            run(self.sql["init_version"], ("0",))
            version = int(run(self.sql["get_version"], ()).fetchone()[0])
            if version > q.SCHEMA_VERSION:
                raise LedgerUnavailable(
                    f"ledger {self.location} (schema {self.schema}) has schema version "
                    f"{version}, newer than this agent-budget understands "
                    f"({q.SCHEMA_VERSION}); upgrade agent-budget"
                )
            for v in range(version + 1, q.SCHEMA_VERSION + 1):
                for ddl in q.POSTGRES_MIGRATIONS[v]:
                    run(self.sql.fmt(ddl), ())
                run(self.sql["set_version"], (str(v),))

    def _usable(self) -> psycopg.Connection[Any]:
        if os.getpid() != self._pid:
            raise LedgerUnavailable(
                f"this ledger connection was opened in process {self._pid}; open one in each "
                "worker process (agent_budget.ledger.open_ledger does)"
            )
        if self._conn.closed or self._conn.broken:
            self._conn = self._connect()  # the server restarted or the network blinked
        return self._conn

    @contextmanager
    def _transaction(self, lock_keys: Sequence[str]) -> Iterator[Execute]:
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

    @contextmanager
    def _autocommit(self) -> Iterator[Execute]:
        with self._lock:
            self._usable()
            try:
                yield self._run
            except psycopg.Error as exc:
                raise self._unavailable(exc) from None

    def _run(self, sql: str, params: Sequence[Any]) -> Any:
        return self._conn.execute(sql, params)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def drop(self) -> None:
        """Delete this ledger's schema and every row in it (used by tests)."""
        with self._autocommit() as run:
            run(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE', ())
