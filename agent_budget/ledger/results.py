"""Finished tool results kept in the ledger, so that a node LangGraph runs again in another
process replays them instead of running and paying for them again (`agent_budget.once`).

LangGraph keeps none of an interrupted task's writes: where one task runs a whole step
(a ``ToolNode`` inside ``.with_fallbacks``), the calls of the step that finished before
the interrupt live only in the process's memory. With a ledger, every paid tool call's
result is written in the same transaction as its ``ok`` commit (a task cannot tell it will
be interrupted), in the ``results`` table under the run's id and the call's key
(`agent_budget.once.call_key`), pointing at its charge row. A run that meets a key it has
not seen in memory reads it back from there: committed ``ok`` and a kept result -> the
result, not run, not charged again.

What is kept: a LangChain message (a ``ToolMessage``), as ``message_to_dict`` gives it in
JSON (2.7x faster than ``dumpd`` on a 1 KB result, and read back as messages only). Not
kept (the call runs and is charged again on such a replay, as before): any other result (a
``Command``), a message whose artifact JSON cannot hold, and one over `MAX_BYTES`. Kept
results are deleted after `KEEP_SECONDS` (a resume later than that runs the call again)
and with the charges `Ledger.prune` deletes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agent_budget.ledger.limits import from_nanos
from agent_budget.tracker import Charge

if TYPE_CHECKING:
    from agent_budget.ledger.base import Ledger

MAX_BYTES = 256 * 1024
"""The largest result kept (serialised, UTF-8): a bigger one runs again on a replay."""

KEEP_SECONDS = 7 * 86400.0
"""How long a kept result stays (a run resumed later runs its finished calls again)."""


def encode(out: Any) -> str | None:
    """``out`` as text to keep, or None when it cannot be kept (see the module doc)."""
    try:
        from langchain_core.messages import BaseMessage, message_to_dict
    except ImportError:  # no LangChain: nothing of ours produces a result worth keeping
        return None
    if not isinstance(out, BaseMessage):
        return None
    try:
        text = json.dumps(message_to_dict(out), separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError):  # an artifact JSON cannot hold
        return None
    return text if len(text.encode()) <= MAX_BYTES else None


def decode(text: str) -> Any:
    """A kept result back as the message it was; raises ValueError if it cannot be."""
    from langchain_core.messages import messages_from_dict

    try:
        return messages_from_dict([json.loads(text)])[0]
    except Exception as exc:  # a result written by another LangChain, say
        raise ValueError(f"a kept result cannot be read back: {exc}") from exc


@dataclass(frozen=True, slots=True)
class Kept:
    """A finished call's result read back from the ledger, with what it was charged."""

    out: Any
    charge: Charge


def kept_keys(ledger: Ledger, run_id: str) -> frozenset[str]:
    """The keys of the calls of ``run_id`` whose results are kept (one indexed read)."""
    with ledger._autocommit() as run:
        return frozenset(str(r[0]) for r in run(ledger.sql["kept_keys"], (run_id,)).fetchall())


def kept_result(ledger: Ledger, run_id: str, key: str) -> Kept | None:
    """The kept result of ``key`` if its charge is committed ``ok``; None otherwise (or if
    it cannot be read back: the call then runs again, as without a ledger)."""
    with ledger._autocommit() as run:
        row = run(ledger.sql["kept_result"], (run_id, key)).fetchone()
    if row is None:
        return None
    body, kind, name, nanos, tin, tout, source, attempt, node = row
    try:
        out = decode(str(body))
    except ValueError:
        return None
    meta: dict[str, Any] = {"replayed": True}
    if attempt is not None:
        meta["attempt"] = int(attempt)
    if node is not None:
        meta["node"] = str(node)
    charge = Charge(kind, name, from_nanos(int(nanos)), int(tin), int(tout), key, meta, source)
    return Kept(out, charge)


def prune_kept(ledger: Ledger, before: int) -> int:
    """Delete results kept since before ``before`` (microseconds); returns how many. The
    common case, nothing that old, reads one index entry and writes nothing."""
    with ledger._autocommit() as run:
        if run(ledger.sql["any_old_results"], (before,)).fetchone() is None:
            return 0
    with ledger._autocommit(write=True) as run:
        return int(run(ledger.sql["prune_results"], (before,)).rowcount)
