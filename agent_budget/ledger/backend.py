"""What a ledger backend is: a connection, transactions that hold cross-process locks,
single statements, and the upkeep hooks bulk writes need. `SQLiteLedger` and
`PostgresLedger` fill in the differences; what they share (migrating the schema, settling a
hold, turning driver errors into `LedgerUnavailable`) is written here once. `Ledger` builds
its recording API on top."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

from agent_budget.errors import LedgerUnavailable
from agent_budget.ledger import sql as q
from agent_budget.ledger.context import Cursor, Execute
from agent_budget.ledger.limits import ScopedLimit
from agent_budget.tracker import Charge

Kept = tuple[str, str, int, str]
"""A result to keep with an ok commit: run id, call key, time (µs), serialised body."""


class LedgerBackend:
    location: str
    sql: q.Statements
    _lock: threading.RLock
    _pid: int
    _conn: Any

    # --- what a backend provides ----------------------------------------------------------

    def _transaction(self, lock_keys: Sequence[str] = ()) -> AbstractContextManager[Execute]:
        """A write transaction holding the locks that serialise ``lock_keys`` across
        processes; committed on exit, rolled back on error."""
        raise NotImplementedError

    @contextmanager
    def _autocommit(self, *, write: bool = False) -> Iterator[Execute]:
        """Single statements, each its own transaction (``write``: it changes rows)."""
        with self._lock:
            self._ready()
            try:
                with self._writer() if write else nullcontext():
                    yield self._run
            except self._driver_error as exc:
                raise self._unavailable(exc) from None

    def _ready(self) -> None:
        """Before any statement: the connection is this process's and usable."""
        self._check_process()

    def _writer(self) -> AbstractContextManager[None]:
        """Held around a write outside `_transaction` (SQLite: the writers' queue)."""
        return nullcontext()

    _driver_error: type[Exception] = Exception
    """The driver's base exception, turned into `LedgerUnavailable` by `_unavailable`."""

    def _unavailable(self, exc: Exception) -> LedgerUnavailable:
        return LedgerUnavailable(f"ledger {self.location}: {exc}".strip())

    def _reserve(self, row: dict[str, Any], charge: Charge, limits: Sequence[ScopedLimit],
                 now: int) -> int:  # fmt: skip
        """Insert the hold if it fits every limit, atomically; raise `BudgetExceeded`."""
        raise NotImplementedError

    def _create_namespace(self, run: Execute) -> None:
        """Before the tables: where they live (PostgreSQL: the schema)."""

    def _after_migrate(self, run: Execute) -> None:
        """After the tables exist: server-side code (PostgreSQL: the reserve function)."""

    _integrity_error: type[Exception] = Exception
    """The driver's exception for a broken CHECK / NOT NULL (a migration that cannot apply)."""

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

    # --- what the backends share ----------------------------------------------------------

    def _run(self, sql: str, params: Any) -> Cursor:
        return self._conn.execute(sql, params)

    def _check_process(self) -> None:
        if os.getpid() != self._pid:
            raise LedgerUnavailable(
                f"this ledger connection was opened in process {self._pid}; open one in each "
                "worker process (agent_budget.ledger.open_ledger does)"
            )

    def _migrate(self, lock_key: str = "migrate") -> None:
        """Create the schema, or bring an older one up to `sql.SCHEMA_VERSION` in place, in
        one transaction; refuse a newer one."""
        with self._transaction([lock_key]) as run:
            self._create_namespace(run)
            run(f"CREATE TABLE IF NOT EXISTS {self.sql.meta} (key TEXT PRIMARY KEY, value TEXT)",
                ())  # fmt: skip
            run(self.sql["init_version"], ("0",))
            version = int(run(self.sql["get_version"], ()).fetchone()[0])
            if version > q.SCHEMA_VERSION:
                raise LedgerUnavailable(
                    f"ledger {self.location} has schema version {version}, newer than this "
                    f"agent-budget understands ({q.SCHEMA_VERSION}); upgrade agent-budget"
                )
            if version < q.SCHEMA_VERSION:
                from agent_budget.ledger import maintenance

                try:
                    maintenance.create(self, run, from_version=version)
                except self._integrity_error as exc:
                    raise LedgerUnavailable(
                        f"ledger {self.location}: a version-{version} row breaks a rule of "
                        f"schema version {q.SCHEMA_VERSION} ({str(exc).strip()}); nothing was "
                        "changed"
                    ) from None
                run(self.sql["set_version"], (str(q.SCHEMA_VERSION),))
            self._after_migrate(run)

    def _commit(
        self, handle: int, values: dict[str, Any], row: dict[str, Any], kept: Kept | None
    ) -> None:
        """Settle the held row ``handle``: one statement; insert ``row`` if it is gone.
        ``kept`` (run id, call key, time, body): a result to keep, in the same transaction."""
        if kept is None:
            with self._autocommit(write=True) as run:
                if run(self.sql["commit"], values).rowcount == 0:
                    # The held row was pruned meanwhile (rare): the money still counts.
                    run(self.sql["insert"], tuple(row.values()))
            return
        with self._transaction() as run:
            if run(self.sql["commit"], values).rowcount == 0:
                handle = int(run(self.sql["insert"], tuple(row.values())).fetchone()[0])
            run_id, key, ts, body = kept
            run(self.sql["keep_result"], (run_id, key, handle, ts, body))
