"""Ledger upkeep that touches many rows at once: creating and migrating the schema,
bulk loads, pruning, and checking (or rebuilding) the running totals against the rows.

Many-row writes do not go through the per-row triggers: they lock the tables, drop the
triggers, apply one aggregated change to the totals and create the triggers again, all in
one transaction, so other writers wait (they never see a half-applied change) and a million
rows cost one GROUP BY instead of a million trigger runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from agent_budget.ledger import schema as s
from agent_budget.ledger.timeutil import iso

if TYPE_CHECKING:
    from agent_budget.ledger.backend import LedgerBackend as Ledger
    from agent_budget.ledger.context import Execute


def create(ledger: Ledger, run: Execute, *, from_version: int) -> None:
    """The current schema in an empty database (``from_version`` 0), in place of a
    version-1 ``charges`` table (its rows copied with their ids), or in place of version 2's
    totals (which had no slots); the totals are rebuilt from the rows in every case but 3.
    Version 3 only lacks the ``results`` table (every version before it too)."""
    n = ledger.sql.names
    for ddl in s.create_result_tables(n):
        run(ddl, ())
    if from_version == 3:
        return
    if from_version == 2:
        for ddl in s.drop_triggers(n):
            run(ddl, ())
        run(f"DROP TABLE {n.totals}", ())
        run(s.create_tables(n)[1], ())
    else:
        if from_version == 1:
            run(f"ALTER TABLE {n.charges} RENAME TO charges_v1", ())
        for ddl in s.create_tables(n):
            run(ddl, ())
        if from_version == 1:
            old = n.table("charges_v1")
            cols = ", ".join(s.V1_COLUMNS)
            run(f"INSERT INTO {n.charges} (id, {cols}) SELECT id, {cols} FROM {old}", ())
            run(f"DROP TABLE {old}", ())
        for ddl in s.create_indexes(n):
            run(ddl, ())
    ledger._after_bulk(run)
    run(s.rebuild_totals(n), ())
    for ddl in s.triggers(n):
        run(ddl, ())


def bulk_insert(ledger: Ledger, rows: Iterable[Sequence[Any]], *, batch: int) -> int:
    n = ledger.sql.names
    done = 0
    chunk: list[Sequence[Any]] = []

    def flush() -> None:
        nonlocal done
        with ledger._transaction() as run:
            ledger._lock_tables(run)
            before = int(run(f"SELECT COALESCE(MAX(id), 0) FROM {n.charges}", ()).fetchone()[0])
            for ddl in s.drop_triggers(n):
                run(ddl, ())
            ledger._insert_many(run, chunk)
            ledger._after_bulk(run)
            run(ledger.sql.fmt(s.rebuild_totals(n, "r.id > ?")), (before,))
            for ddl in s.triggers(n):
                run(ddl, ())
        done += len(chunk)
        chunk.clear()

    for row in rows:
        if len(row) != len(s.COLUMNS):
            raise ValueError(f"a row has {len(row)} values; expected {len(s.COLUMNS)}: {s.COLUMNS}")
        chunk.append(row)
        if len(chunk) >= batch:
            flush()
    if chunk:
        flush()
    return done


def prune(ledger: Ledger, cutoff: int, now: int) -> int:
    n = ledger.sql.names
    doomed = "r.ts < ? AND NOT (r.outcome = 'held' AND r.expires_ts > ?)"
    with ledger._transaction() as run:
        ledger._lock_tables(run)
        run(ledger.sql.fmt(s.rebuild_totals(n, doomed, sign=-1)), (cutoff, now))
        for ddl in s.drop_triggers(n):
            run(ddl, ())
        removed = int(run(ledger.sql["prune"], (cutoff, now)).rowcount)
        run(ledger.sql["prune_results"], (cutoff,))
        for ddl in s.triggers(n):
            run(ddl, ())
        _drop_empty(ledger, run)
    return removed


def _drop_empty(ledger: Ledger, run: Execute) -> None:
    empty = " AND ".join(f"{c} = 0" for c in s.TOTAL_COLUMNS)
    run(f"DELETE FROM {ledger.sql.totals} WHERE {empty}", ())


def rebuild(ledger: Ledger) -> None:
    """Throw the totals away and add them up again from the rows."""
    with ledger._transaction() as run:
        ledger._lock_tables(run)
        run(ledger.sql["clear_totals"], ())
        run(s.rebuild_totals(ledger.sql.names), ())


def verify(ledger: Ledger, *, repair: bool = False) -> list[dict[str, Any]]:
    n = ledger.sql.names
    with ledger._autocommit() as run:
        expected = _by_bucket(run(s.expected_totals(n), ()).fetchall())
        stored = _by_bucket(run(s.stored_totals(n), ()).fetchall())
    zero = (0,) * len(s.TOTAL_COLUMNS)
    diffs = []
    for key in sorted(set(expected) | set(stored), key=lambda k: (k[0], k[1], k[2], k[3])):
        want, have = expected.get(key, zero), stored.get(key, zero)
        for column, w, h in zip(s.TOTAL_COLUMNS, want, have, strict=True):
            if w != h:
                scope, name, span, bucket = key
                diffs.append(
                    {
                        "scope": scope,
                        "key": name,
                        "span_s": int(span) // 10**6,
                        "bucket": iso(int(bucket)) if span else "all time",
                        "column": column,
                        "totals": h,
                        "rows": w,
                    }
                )
    if diffs and repair:
        rebuild(ledger)
    return diffs


def _by_bucket(rows: list[Any]) -> dict[tuple[Any, ...], tuple[int, ...]]:
    return {(r[0], r[1], int(r[2]), int(r[3])): tuple(int(v) for v in r[4:]) for r in rows}
