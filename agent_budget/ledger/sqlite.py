"""The SQLite ledger: one file, WAL mode, ``BEGIN IMMEDIATE`` around every limit check.

``BEGIN IMMEDIATE`` takes the database's single write lock before the check reads anything,
so two processes can never both see the last dollar free. WAL lets readers (reports) run
while workers write. ``synchronous=NORMAL`` keeps every commit across a process crash; a
power loss may drop the last few commits (use ``synchronous="FULL"`` to keep those too).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, Literal

import sqlite_utils

from agent_budget.errors import LedgerUnavailable
from agent_budget.ledger import sql as q
from agent_budget.ledger.base import DEFAULT_TTL, Execute, Ledger


def _v1(db: sqlite_utils.Database) -> None:
    db["charges"].create(  # type: ignore[union-attr]
        {
            "id": int, "ts": int, "settled_ts": int, "expires_ts": int, "outcome": str,
            "run_id": str, "thread_id": str, "user_id": str, "tenant_id": str, "node": str,
            "kind": str, "name": str, "input_tokens": int, "output_tokens": int,
            "usd_nanos": int, "reserved_nanos": int, "attempt": int, "call_key": str,
            "worker": str, "detail": str,
        },
        pk="id",
        not_null={"ts", "outcome", "kind", "name", "input_tokens", "output_tokens", "usd_nanos"},
        defaults={"input_tokens": 0, "output_tokens": 0},
    )  # fmt: skip
    table = db["charges"]
    table.create_index(["user_id", "ts"])  # type: ignore[union-attr]
    table.create_index(["tenant_id", "ts"])  # type: ignore[union-attr]
    table.create_index(["ts"])  # type: ignore[union-attr]
    table.create_index(["outcome", "expires_ts"])  # type: ignore[union-attr]


MIGRATIONS: dict[int, Callable[[sqlite_utils.Database], None]] = {1: _v1}


class SQLiteLedger(Ledger):
    """A ledger in one SQLite file (created with its directory if missing)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        reservation_ttl: float = DEFAULT_TTL,
        busy_timeout: float = 10.0,
        synchronous: Literal["NORMAL", "FULL"] = "NORMAL",
    ) -> None:
        super().__init__(reservation_ttl=reservation_ttl)
        self.path = Path(path).expanduser()
        self.location = str(self.path)
        self.busy_timeout = busy_timeout
        self.sql = q.render("sqlite")
        self._pid = os.getpid()
        self._prepare_path()
        try:
            self._conn = sqlite3.connect(
                self.location, timeout=busy_timeout, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise self._unavailable(exc) from None
        try:
            self._db = sqlite_utils.Database(self._conn)
            self._db.enable_wal()
            self._conn.execute(f"PRAGMA synchronous={synchronous}")
            self._migrate()
        except sqlite3.Error as exc:
            self._conn.close()
            raise self._unavailable(exc) from None
        except BaseException:
            self._conn.close()
            raise

    def _prepare_path(self) -> None:
        p = self.path
        if p.is_dir():
            raise LedgerUnavailable(
                f"ledger {p} is a directory; give a file path such as {p}/spend.db"
            )
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise LedgerUnavailable(
                f"cannot create the ledger's directory {p.parent}: {exc.strerror or exc}. "
                "Point Budget(ledger=) or AGENT_BUDGET_LEDGER at a writable location."
            ) from None
        if p.exists() and not os.access(p, os.W_OK):
            raise LedgerUnavailable(self._read_only_message("the file is read-only"))

    def _read_only_message(self, why: str) -> str:
        return (
            f"ledger {self.path} cannot be written ({why}). The ledger needs write access "
            "to the file and its directory (SQLite keeps -wal/-shm files next to it); a run "
            "does not spend while its ledger cannot record."
        )

    def _unavailable(self, exc: sqlite3.Error) -> LedgerUnavailable:
        msg = str(exc).lower()
        if "not a database" in msg or "malformed" in msg or "disk image" in msg:
            return LedgerUnavailable(
                f"ledger {self.path} is not a usable SQLite database ({exc}): the file is "
                "corrupt or something else. Move it aside (a new ledger is created in its "
                "place) or point Budget(ledger=) / AGENT_BUDGET_LEDGER elsewhere."
            )
        if "locked" in msg or "busy" in msg:
            return LedgerUnavailable(
                f"ledger {self.path} is locked: another process has held its write lock for "
                f"more than {self.busy_timeout:g}s ({exc}). Find it with `fuser {self.path}`; "
                "the run does not spend until the ledger can record."
            )
        if "readonly" in msg or "read-only" in msg or "unable to open" in msg:
            return LedgerUnavailable(self._read_only_message(str(exc)))
        return LedgerUnavailable(f"ledger {self.path}: {exc}")

    def _migrate(self) -> None:
        db = self._db
        with self._transaction(()) as run:
            if not db["ledger_meta"].exists():
                db["ledger_meta"].create({"key": str, "value": str}, pk="key")  # type: ignore[union-attr]
                run(self.sql["init_version"], ("0",))
            row = run(self.sql["get_version"], ()).fetchone()
            version = int(row[0]) if row else 0
            if version > q.SCHEMA_VERSION:
                raise LedgerUnavailable(
                    f"ledger {self.path} has schema version {version}, newer than this "
                    f"agent-budget understands ({q.SCHEMA_VERSION}); upgrade agent-budget"
                )
            for v in range(version + 1, q.SCHEMA_VERSION + 1):
                MIGRATIONS[v](db)
                run(self.sql["set_version"], (str(v),))

    def _check_process(self) -> None:
        if os.getpid() != self._pid:
            raise LedgerUnavailable(
                f"this ledger connection was opened in process {self._pid}; open one in each "
                "worker process (agent_budget.ledger.open_ledger does)"
            )

    @contextmanager
    def _transaction(self, lock_keys: Sequence[str]) -> Iterator[Execute]:
        # One database-wide write lock serialises every reserve, whatever the keys.
        self._check_process()
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    yield self._run
                    self._conn.execute("COMMIT")
                except BaseException:
                    if self._conn.in_transaction:
                        with suppress(sqlite3.Error):
                            self._conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise self._unavailable(exc) from None

    @contextmanager
    def _autocommit(self) -> Iterator[Execute]:
        self._check_process()
        with self._lock:
            try:
                yield self._run
            except sqlite3.Error as exc:
                raise self._unavailable(exc) from None

    def _run(self, sql: str, params: Sequence[Any]) -> Any:
        return self._conn.execute(sql, params)

    def close(self) -> None:
        with self._lock:
            self._conn.close()
