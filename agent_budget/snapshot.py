"""The budget's state as plain, JSON-safe data: what graph state and checkpoints hold.

`BudgetSnapshot` is the value of the ``agent_budget`` key of a budgeted graph's state; the
newest one wins (`latest`), ordered by ``(epoch, seq)`` so parallel writes of one step and
writes replayed on resume can land in any order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, NotRequired, TypedDict

if TYPE_CHECKING:
    from agent_budget.tracker import BudgetTracker

STATE_VERSION = 1
MAX_EVENTS = 100

Outcome = Literal["ok", "error", "refused"]
"""- ``ok``: the call was made and committed;
- ``error``: the call was made and failed (still billed, still committed);
- ``refused``: the budget did not let it be made."""


class SpendState(TypedDict):
    usd: str  # exact decimal
    input_tokens: int
    output_tokens: int
    model_calls: int
    tool_calls: dict[str, int]
    unpriced: NotRequired[dict[str, int]]
    local_calls: NotRequired[int]


class ChildState(TypedDict):
    """A sub-budget's spend in a snapshot (``instances``: how many runs it had)."""

    spent: SpendState
    instances: int
    children: dict[str, ChildState]


class BudgetEvent(TypedDict, total=False):
    type: str  # "downgrade", "guard", ...
    reason: str
    to: str
    model: str | None


class BudgetSnapshot(TypedDict):
    v: int
    epoch: int  # a run-scoped budget starting over on the same thread bumps it
    seq: int  # commits (and top-ups) so far: orders snapshots of one epoch
    spent: SpendState
    topups: list[dict[str, object]]
    warned: list[float]
    events: list[dict[str, object]]
    children: dict[str, ChildState]
    run: NotRequired[str]  # the budget run id: the prefix of every idempotency key
    keys: NotRequired[list[str]]  # the last tool calls committed (exactly-once on resume)
    stopped_at: NotRequired[str]  # the node that found the run must stop: a top-up goes on there


def order(snapshot: BudgetSnapshot) -> tuple[int, int]:
    return int(snapshot.get("epoch", 0)), int(snapshot.get("seq", 0))


def latest(old: BudgetSnapshot | None, new: BudgetSnapshot | None) -> BudgetSnapshot | None:
    """The newer of two snapshots (the reducer of the state key)."""
    if new is None:
        return old
    if old is None:
        return new
    return new if order(new) >= order(old) else old


def take(tracker: BudgetTracker) -> BudgetSnapshot:
    """A tracker's state now (consistent: taken under its lock)."""
    from agent_budget.nesting import children_state

    with tracker._lock:
        snap = BudgetSnapshot(
            v=STATE_VERSION,
            epoch=tracker.epoch,
            seq=tracker.seq,
            spent=tracker.spent.to_dict(),
            topups=[dict(t) for t in tracker.topups],
            warned=list(tracker.warned),
            events=list(tracker.events[-MAX_EVENTS:]),
            children={},
        )
    keys = tracker.recent_keys()
    if keys:
        snap["keys"] = keys
    if tracker.children or tracker.restored_children:
        snap["children"] = children_state(tracker)
    return snap


def restore_into(tracker: BudgetTracker, state: BudgetSnapshot, *, fresh: bool) -> None:
    from agent_budget.spend import Spend

    if fresh:
        tracker.epoch = int(state.get("epoch", 0)) + 1
        return
    tracker.spent = Spend.from_dict(dict(state.get("spent") or {}))
    for extra in state.get("topups") or []:
        tracker.budget = tracker.budget.topped_up(**extra)
        tracker.topups.append(dict(extra))
    tracker.prices.budget = tracker.budget
    tracker.seq = int(state.get("seq", 0))
    tracker.epoch = int(state.get("epoch", 0))
    tracker.warned = [float(t) for t in state.get("warned") or []]
    tracker.events = list(state.get("events") or [])
    tracker.restored_children = dict(state.get("children") or {})
    for key in state.get("keys") or ():
        tracker._remember(key)
