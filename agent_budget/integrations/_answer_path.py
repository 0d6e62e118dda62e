"""The graph's own way to its answer, which a run that had to stop still takes.

Many graphs write their answer in a node of their own at the end: the structured-output
tutorial's ``respond`` formats the agent's answer into ``final_response``, agentic RAG's
``generate_answer`` answers from the retrieved documents, a pipeline's ``polish`` or the
research assistant's ``finalize_report`` writes the report. These *answer nodes* (a plain
edge to END and no conditional way out; found once, at wrap time) are where the user's
output comes from, so a run that stops before reaching them goes through them anyway:

- the node where the run stopped is noted (a refused model call, a tool step refused, a
  sub-agent that stopped);
- ``budget_finalize`` writes what the stopped part would have written (the model's last
  answer, the pipeline keys not reached) and then sends the run on to the answer nodes
  reachable from there, instead of to END;
- those nodes run once, as in the bare graph. The run's one call past call-count limits
  (the final pass) goes to them when one of them calls a chat model: it is their output
  the user reads; ``budget_finalize``'s own call is then an ordinary one.

Nodes still scheduled when the run stopped do nothing (`answer_steps` returns None for
them): only an answer node, in a step after ``budget_finalize``, runs.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Generator, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from langgraph.config import get_config
from langgraph.constants import END, START

from agent_budget.errors import BudgetExceeded
from agent_budget.integrations._discover import find_chat_model
from agent_budget.integrations._state import with_spend
from agent_budget.integrations.callbacks import FINAL_PASS
from agent_budget.run import OWNER, BudgetRun


@dataclass(frozen=True)
class AnswerPath:
    """A graph's answer nodes and what each node can lead to."""

    nodes: frozenset[str] = frozenset()
    with_model: frozenset[str] = frozenset()  # answer nodes that call a chat model
    reach: Mapping[str, frozenset[str]] = field(default_factory=dict)

    @classmethod
    def of(cls, builder: Any, tool_nodes: set[str]) -> AnswerPath:
        specs = builder.nodes
        every = frozenset(specs)
        succ: dict[str, set[str]] = {n: set() for n in specs}
        to_end: set[str] = set()
        for start, end in builder.edges:
            if start in succ:
                succ[start].add(end)
                if end == END:
                    to_end.add(start)
        for starts, end in builder.waiting_edges:
            for start in starts:
                if start in succ:
                    succ[start].add(end)
        for source, branches in builder.branches.items():
            for branch in branches.values():
                if source in succ:
                    succ[source] |= set(branch.ends.values()) if branch.ends else every
        for name, spec in specs.items():
            if spec.ends:  # the destinations of a node that routes with Command
                succ[name] |= set(spec.ends)
            elif not succ[name]:  # routes with Command, destinations undeclared
                succ[name] |= every
        nodes = frozenset(n for n in to_end if n not in tool_nodes and n not in builder.branches)
        with_model = frozenset(n for n in nodes if find_chat_model([specs[n].runnable]))
        reach = {n: _reachable(n, succ) for n in specs}
        return cls(nodes, with_model, reach)

    def ahead(self, stopped: Iterable[str]) -> list[str]:
        """The answer nodes reachable from where the run stopped, not stopped themselves
        (a refused answer node already ran once more as the answer)."""
        stopped = set(stopped)
        reachable: set[str] = set()
        for node in stopped:
            reachable |= self.reach.get(node, frozenset())
        return sorted((reachable & self.nodes) - stopped)


def _reachable(start: str, succ: Mapping[str, set[str]]) -> frozenset[str]:
    seen: set[str] = set()
    todo = list(succ.get(start, ()))
    while todo:
        node = todo.pop()
        if node in seen or node in (END, START):
            continue
        seen.add(node)
        todo.extend(succ.get(node, ()))
    return frozenset(seen)


# --- per run --------------------------------------------------------------------------------


@dataclass
class _Turn:
    stopped: set[str] = field(default_factory=set)  # nodes where the run stopped
    nodes: frozenset[str] = frozenset()  # answer nodes sent for by budget_finalize
    step: int = -1  # budget_finalize's step: they run in a later one
    done: set[str] = field(default_factory=set)
    ticket: list[bool] = field(default_factory=list)  # the final pass, shared by them
    text: str | None = None  # budget_finalize's answer, for a key an answer node must read
    fillable: frozenset[str] = frozenset()  # the str output keys it may go into
    lock: threading.Lock = field(default_factory=threading.Lock)


_TURNS: weakref.WeakKeyDictionary[BudgetRun, _Turn] = weakref.WeakKeyDictionary()
_TURNS_LOCK = threading.Lock()


def _turn(run: BudgetRun) -> _Turn:
    turn = _TURNS.get(run)
    if turn is None:
        with _TURNS_LOCK:
            turn = _TURNS.setdefault(run, _Turn())
    return turn


def _meta() -> dict[str, Any]:
    try:
        return get_config().get("metadata") or {}
    except RuntimeError:  # outside a graph run
        return {}


def note_stop(run: BudgetRun, node: str | None = None) -> None:
    """Note the node (default: the running one) where the run stopped."""
    node = node or _meta().get("langgraph_node")
    if node:
        turn = _turn(run)
        with turn.lock:
            turn.stopped.add(node)


def send_ahead(run: BudgetRun, path: AnswerPath | None, also_stopped: Iterable[str]) -> list[str]:
    """Called by ``budget_finalize``: the answer nodes the run goes on to, now allowed to
    run once in a later step (with the final pass when one calls a model)."""
    if path is None or not path.nodes:
        return []
    turn = _turn(run)
    with turn.lock:
        ahead = path.ahead([*turn.stopped, *also_stopped])
        turn.nodes = frozenset(ahead)
        turn.step = int(_meta().get("langgraph_step") or 0)
        turn.ticket = [True] if set(ahead) & path.with_model else []
    return ahead


def remember_answer(run: BudgetRun, text: str | None, fillable: Iterable[str]) -> None:
    """budget_finalize's answer text: an answer node that reads a key the stopped run never
    wrote (a writer refused while its sibling ran) gets it there."""
    turn = _turn(run)
    turn.text, turn.fillable = text, frozenset(fillable)


def _my_turn(run: BudgetRun) -> _Turn | None:
    turn = _TURNS.get(run)
    if turn is None or not turn.nodes:
        return None
    meta = _meta()
    node, step = meta.get("langgraph_node"), meta.get("langgraph_step")
    if node not in turn.nodes or step is None or step <= turn.step:
        return None
    with turn.lock:
        if node in turn.done:
            return None
        turn.done.add(node)
    return turn


def answer_steps(
    run: BudgetRun, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Generator[tuple[tuple[Any, ...], dict[str, Any]], Any, Any]:
    """What a node does once the run has stopped: nothing, unless it is an answer node
    ``budget_finalize`` sent the run on to; that one runs as in the bare graph. A call it
    cannot pay for leaves its keys with what ``budget_finalize`` wrote. Free of sync or
    async, like the guard (`nodes._guard_steps`) that delegates to it: it yields each call
    of the node's function to make and is sent its result or thrown its error."""
    turn = _my_turn(run)
    if turn is None:
        return None
    seq, filled = run.tracker.seq, dict[str, str]()
    owner, final = OWNER.set(run), FINAL_PASS.set(turn.ticket)
    try:
        while True:
            try:
                out = yield args, kwargs
                break
            except KeyError as exc:
                args, filled = _fill(turn, exc, args, filled)
    except BudgetExceeded:
        return filled or None
    finally:
        FINAL_PASS.reset(final)
        OWNER.reset(owner)
    return with_spend(run, _with_filled(out, filled), seq)


def _fill(
    turn: _Turn, exc: KeyError, args: tuple[Any, ...], filled: dict[str, str]
) -> tuple[tuple[Any, ...], dict[str, str]]:
    """The node's input with the key it missed holding the final answer's text, if that
    key is one the answer may go into; else the node's KeyError stands."""
    key = exc.args[0] if exc.args else None
    state = args[0] if args else None
    if (
        turn.text is None
        or key not in turn.fillable
        or key in filled
        or not isinstance(state, dict)
        or key in state
    ):
        raise exc
    filled = {**filled, key: turn.text}
    return ({**state, key: turn.text}, *args[1:]), filled


def _with_filled(out: Any, filled: dict[str, str]) -> Any:
    if not filled:
        return out
    if isinstance(out, dict):
        return {**filled, **out}
    return out if out is not None else filled
