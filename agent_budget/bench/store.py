"""The sweep's results file (SQLite): one row per finished run unit, written as it finishes.

A unit is only written once its result is complete, in one transaction, so a sweep killed at
any instant (SIGKILL included) leaves every finished unit on disk and no half-written one;
resuming runs exactly the units that have no final row. The file also remembers which sweep
it belongs to (a fingerprint of configurations, budgets, seeds and tasks) and the sweep's id
in the ledger, so a resumed sweep keeps its global cap account.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from pathlib import Path
from typing import Any

from agent_budget.bench.errors import SweepMismatch

FINAL = ("ok", "error", "exhausted")
"""Statuses a resumed sweep does not run again. ``capped`` (cut by the global cap) and
``refused`` (not started: the cap was reached) are run again when the sweep resumes."""


class ResultStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(path, timeout=30, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS results (key TEXT PRIMARY KEY, status TEXT NOT NULL, "
            "data TEXT NOT NULL, finished REAL NOT NULL)"
        )

    def close(self) -> None:
        self._conn.close()

    def meta(self, key: str) -> str | None:
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _set_meta(self, key: str, value: str) -> None:
        self._conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def claim(self, name: str, fingerprint: str, *, fresh: bool = False) -> str:
        """Bind the file to this sweep; returns the sweep id. A file holding another sweep's
        results is refused (`SweepMismatch`) unless ``fresh``, which empties it."""
        held = self.meta("fingerprint")
        if held is not None and held != fingerprint and not fresh:
            raise SweepMismatch(
                f"{self.path} holds results of another sweep ({self.meta('name')!r}, "
                f"fingerprint {held}; this one is {fingerprint}): its configurations, budgets, "
                "seeds or tasks changed. Use another --out directory, or --fresh to discard "
                "the old results."
            )
        if fresh or held is None:
            self._conn.execute("DELETE FROM results")
            self._set_meta("fingerprint", fingerprint)
            self._set_meta("name", name)
            self._set_meta("sweep_id", uuid.uuid4().hex[:12])
        return str(self.meta("sweep_id"))

    def write(self, result: dict[str, Any]) -> None:
        self._conn.execute(
            "INSERT OR REPLACE INTO results VALUES (?, ?, ?, ?)",
            (result["key"], result["status"], json.dumps(result, sort_keys=True), time.time()),
        )

    def done_keys(self) -> set[str]:
        marks = ",".join("?" * len(FINAL))
        rows = self._conn.execute(f"SELECT key FROM results WHERE status IN ({marks})", FINAL)
        return {str(r[0]) for r in rows}

    def results(self) -> list[dict[str, Any]]:
        rows = self._conn.execute("SELECT data FROM results ORDER BY key").fetchall()
        return [json.loads(r[0]) for r in rows]
