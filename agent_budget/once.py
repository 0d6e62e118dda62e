"""Exactly-once for paid calls when LangGraph runs a node again.

LangGraph re-runs a node from its start on resume after an interrupt and on a
`RetryPolicy` retry. Each paid call has an idempotency key that is the same in every run
of that node (`call_key`), and a process-wide table of calls by key (`FLIGHTS`):

- the first to claim a key runs the call and publishes its result (or error);
- a later claim of a key still running waits for that result: an async retry whose
  sibling calls are still running (``asyncio.gather`` does not cancel them) reuses them;
- a later claim of a key that finished gets the finished result, so the call's body
  neither runs nor is paid for twice.

Across processes the checkpoint carries the finished calls: the budget condition runs each
call of a multi-call step as a task of its own (``Send``), and LangGraph keeps a finished
task's writes when a sibling task is interrupted or fails (tested in a new process with
`SqliteSaver`). Where one task runs a whole step (a ``ToolNode`` inside ``.with_fallbacks``
or a sequence, run as written), LangGraph keeps none of the task's writes when it is
interrupted: with a ledger, each finished call's result is kept in it with its ``ok``
commit (`KeepResult`, `agent_budget.ledger.results`), and a run that meets a key missing
from this table reads it back from there, so a resume in a new process replays it too.
Without a ledger, or for a result that cannot be kept (too big, not serialisable), such a
resume runs and charges the call again.

Key format (documented, stable): ``<run_id>:<tool_call_id>#<attempt>`` for a tool call and
``<run_id>:model:<langchain run id>`` for a model call, where ``run_id`` is the budget
run's id: the same across the invocations that resume one interrupted run, and the
``run_id`` column of every ledger row the run writes (so rows join to their keys).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Protocol, cast

from agent_budget.errors import LedgerUnavailable

MAX_FLIGHTS = 4096

RESULT = "agent_budget.keep"
"""`Charge.meta` key of an ok commit whose result a ledger keeps (a `KeepResult`)."""


@dataclass(frozen=True, slots=True)
class KeepResult:
    """A finished call's result, serialised, for the ledger to keep with its commit."""

    run_id: str
    body: str


class ResultStore(Protocol):
    """Where finished results outlive the process: a ledger binding
    (`agent_budget.ledger.LedgerBudget`)."""

    def kept_keys(self, run_id: str) -> frozenset[str]: ...

    def kept_result(self, run_id: str, key: str) -> Any: ...  # .out, .charge; or None

    def keep(self, run_id: str, out: Any) -> KeepResult | None: ...


def result_store(shared: Iterable[object]) -> ResultStore | None:
    """The ledger binding among a tracker's shared budgets, or its parent's (a child run's
    charges reach the ledger through its parent), if any."""
    for budget in shared:
        if hasattr(budget, "kept_keys"):
            return cast(ResultStore, budget)
        parent = getattr(budget, "parent", None)  # a `nesting.ParentLink`
        store = result_store(getattr(parent, "shared", ()))
        if store is not None:
            return store
    return None


class KeptResults:
    """One run's finished results in the ledger: what to keep with an ok commit, and what
    an earlier process of the run kept. The ledger is found on first use (False: not yet);
    the run's kept keys are read once, on the first miss of `FLIGHTS` (a fresh run reads
    one empty index range), and a result only for a key among them: a normal call never
    reads the ledger for it."""

    __slots__ = ("_keys", "_store", "_tracker", "run_id")

    def __init__(self, run_id: str, tracker: Any) -> None:
        self.run_id = run_id
        self._tracker = tracker  # its `shared` list gets the ledger when one is attached
        self._store: ResultStore | bool | None = False
        self._keys: frozenset[str] | None = None

    def _ledger(self) -> ResultStore | None:
        if self._store is False:
            self._store = result_store(self._tracker.shared)
        return cast(ResultStore | None, self._store)

    def keep(self, out: Any) -> KeepResult | None:
        """``out`` for the ledger to keep with its commit (None: no ledger, or a result
        that cannot be kept)."""
        store = self._ledger()
        return None if store is None else store.keep(self.run_id, out)

    def kept(self, key: str) -> Any:
        """The result (``.out``, ``.charge``) of a call an earlier process of this run
        finished, or None: not kept, or the ledger cannot be read (the call then runs, and
        its reservation says what is wrong)."""
        store = self._ledger()
        if store is None:
            return None
        try:
            if self._keys is None:
                self._keys = store.kept_keys(self.run_id)
            return store.kept_result(self.run_id, key) if key in self._keys else None
        except LedgerUnavailable:
            return None


def call_key(run_id: str, call_id: str, attempt: int) -> str:
    return f"{run_id}:{call_id}#{attempt}"


def model_key(run_id: str, lc_run_id: object) -> str:
    return f"{run_id}:model:{lc_run_id}"


class Flight:
    """One paid call under its key: running until `Flights.land`, `fail` or `drop` settles
    it. A `Future` is made only for a run of the node that meets the call again (rare):
    making one per call was a measurable share of a budgeted step."""

    __slots__ = ("_fut", "_outcome")

    def __init__(self) -> None:
        self._fut: Future[Any] | None = None
        self._outcome: tuple[str, Any] | None = None  # ("ok" | "error" | "dropped", value)


class Flights:
    """Calls by idempotency key: running or finished."""

    def __init__(self, size: int = MAX_FLIGHTS) -> None:
        self._lock = threading.Lock()
        self._flights: OrderedDict[str, Flight] = OrderedDict()
        self._size = size

    def claim(self, key: str) -> tuple[bool, Flight]:
        """(True, flight) if the caller is first and must run the call and then `land` or
        `drop` it; (False, flight) if another run of it is running or finished (wait on
        `future`)."""
        with self._lock:
            flight = self._flights.get(key)
            if flight is not None:
                self._flights.move_to_end(key)
                return False, flight
            flight = self._flights[key] = Flight()
            while len(self._flights) > self._size:
                oldest, old = next(iter(self._flights.items()))
                if old._outcome is None:
                    break  # never forget a call still running
                del self._flights[oldest]
            return True, flight

    def future(self, flight: Flight) -> Future[Any]:
        """The flight's outcome, to wait on: its result, its error, or cancelled (it did
        not complete: the waiter makes the call itself)."""
        with self._lock:
            if flight._fut is None:
                flight._fut = Future()
                if flight._outcome is not None:
                    _settle(flight._fut, flight._outcome)
            return flight._fut

    def land(self, key: str, flight: Flight, result: Any) -> None:
        self._settle(flight, ("ok", result))

    def fail(self, key: str, flight: Flight, exc: BaseException) -> None:
        """The call raised and was charged: a waiter gets the same error; a later run
        of the node tries again under the next attempt's key."""
        self._settle(flight, ("error", exc))

    def drop(self, key: str, flight: Flight, exc: BaseException | None = None) -> None:
        """The call did not complete (an interrupt, a refusal, a cancellation): forget it,
        so the next run of the node makes it again."""
        with self._lock:
            if self._flights.get(key) is flight:
                del self._flights[key]
        self._settle(flight, ("dropped", None) if exc is None else ("error", exc))

    def _settle(self, flight: Flight, outcome: tuple[str, Any]) -> None:
        with self._lock:
            if flight._outcome is not None:
                return
            flight._outcome = outcome
            fut = flight._fut
        if fut is not None:
            _settle(fut, outcome)


def _settle(fut: Future[Any], outcome: tuple[str, Any]) -> None:
    kind, value = outcome
    if fut.done():
        return
    if kind == "ok":
        fut.set_result(value)
    elif kind == "error":
        fut.set_exception(value)
    else:
        fut.cancel()


FLIGHTS = Flights()
