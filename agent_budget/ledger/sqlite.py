"""The SQLite ledger: one file, WAL mode, one write lock.

A reservation is one ``INSERT ... SELECT ... WHERE <it fits>`` statement: a statement that
writes takes the database's write lock before it reads, so two processes can never both
see the last dollar free, and the check reads a few running-total buckets, not the history.
Writers queue on an ``flock`` of ``<file>-lock`` before they ask SQLite for its lock: the
kernel wakes the next waiter the moment the lock is free, where SQLite's own busy handler
sleeps and polls (which capped 8 processes at a fraction of one's rate). WAL lets readers
(reports) run while workers write. ``synchronous=NORMAL`` keeps every commit across a
process crash; a power loss may drop the last few commits (``synchronous="FULL"`` keeps
those too).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, Literal

import sqlite_utils

from agent_budget.errors import LedgerUnavailable
from agent_budget.ledger import sql as q
from agent_budget.ledger.base import (
    DEFAULT_TTL,
    Execute,
    Ledger,
    ScopedLimit,
    limit_params,
    want_params,
)
from agent_budget.tracker import Charge

try:
    import fcntl
except ImportError:  # Windows: SQLite's busy handler alone
    fcntl = None  # type: ignore[assignment]


class SQLiteLedger(Ledger):
    """A ledger in one SQLite file (created with its directory if missing)."""

    held_hint = " INDEXED BY charges_held"  # the planner would rather scan a user's history
    _integrity_error = sqlite3.IntegrityError
    _driver_error = sqlite3.Error

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
        self._prepare_path()
        self._flock = self._open_lock_file()
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
            # A reservation reads the table it inserts into, so SQLite stages its SELECT in
            # a temporary table: keep that in memory, not in a fresh temp file per call.
            self._conn.execute("PRAGMA temp_store = MEMORY")
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

    def _open_lock_file(self) -> int | None:
        if fcntl is None:
            return None
        try:
            return os.open(f"{self.path}-lock", os.O_RDWR | os.O_CREAT, 0o666)
        except OSError:
            return None  # a read-only directory: SQLite's own lock still serialises writers

    def _read_only_message(self, why: str) -> str:
        return (
            f"ledger {self.path} cannot be written ({why}). The ledger needs write access "
            "to the file and its directory (SQLite keeps -wal/-shm files next to it); a run "
            "does not spend while its ledger cannot record."
        )

    def _unavailable(self, exc: Exception) -> LedgerUnavailable:
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

    @contextmanager
    def _writer(self) -> Iterator[None]:
        """Queue for the write lock in the kernel (see the module docstring)."""
        if self._flock is None:
            yield
            return
        fcntl.flock(self._flock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._flock, fcntl.LOCK_UN)

    @contextmanager
    def _transaction(self, lock_keys: Sequence[str] = ()) -> Iterator[Execute]:
        # One database-wide write lock serialises every writer, whatever the keys.
        self._check_process()
        with self._lock, self._writer():
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

    def _reserve(
        self, row: dict[str, Any], charge: Charge, limits: Sequence[ScopedLimit], now: int
    ) -> int:
        scopes = tuple(lim.scope for lim in limits)
        params = {**row, **limit_params(limits, now), **want_params(charge)}
        with self._autocommit(write=True) as run:
            got = run(self.sql.fmt(q.reserve_query(scopes, self.held_hint)), params).fetchone()
        if got is not None:
            return int(got[0])
        # Refused (the rare path): say which limit, from what counted at that moment.
        with self._transaction() as run:
            check = self.sql.fmt(q.check_query(scopes, self.held_hint))
            self._refuse_or_none(run(check, params).fetchall(), charge, limits)
            return int(run(self.sql.fmt(q.reserve_query(scopes, self.held_hint)), params
                           ).fetchone()[0])  # fmt: skip

    def _lock_tables(self, run: Execute) -> None:
        pass  # BEGIN IMMEDIATE already keeps every other writer out

    def _after_bulk(self, run: Execute) -> None:
        pass

    def _insert_many(self, run: Execute, rows: Sequence[Sequence[Any]]) -> None:
        insert = self.sql["insert"].removesuffix(" RETURNING id")
        self._conn.executemany(insert, rows)

    def close(self) -> None:
        with self._lock:
            self._conn.close()
            if self._flock is not None:
                with suppress(OSError):
                    os.close(self._flock)
                self._flock = None
