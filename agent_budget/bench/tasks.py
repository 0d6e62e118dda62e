"""Task sets: what a sweep asks the agent (inputs) and how an answer is judged (a scorer).

A `TaskSet` is a named list of `Task`s plus three hooks: the graph input for a task, the answer
read back from the graph's final state, and the score of that answer. Sets are found by name
in one registry (`register_task_set`), which the project's own sets fill at import and a
package can extend through the ``agent_budget.task_sets`` entry-point group:

    [project.entry-points."agent_budget.task_sets"]
    travel = "my_pkg.bench:travel_tasks"      # a callable(**params) -> TaskSet

Scorers are plain callables ``(task, answer, judge) -> Score``; `exact`, `contains` and `regex`
are here, the LLM judge (whose own cost is counted apart) in `agent_budget.bench.judge`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from agent_budget.bench.errors import InvalidSweep

ENTRY_POINT_GROUP = "agent_budget.task_sets"
UNPAID_KEY = "agent_budget"
"""response_metadata key with_budget marks its unpaid final note with ({"final": "unpaid"})."""


@dataclass(frozen=True)
class Task:
    """One input of a task set. ``input`` is a user message (str) or a whole graph input
    (a mapping); ``expected`` is whatever the set's scorer compares the answer with.
    ``budget``: this task's own `Budget` fields (its tool ``prices``, its ``usd``...), merged
    onto the sweep point's budget for every run of the task (`config.budget_for`): tasks that
    each come with their own prices or money, such as generated travel scenarios."""

    id: str
    input: Any
    expected: Any = None
    meta: Mapping[str, Any] = field(default_factory=dict)
    budget: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Score:
    """How one answer did. ``passed`` is what accuracy and cost-of-pass count; ``value`` is a
    finer grade in [0, 1] when the scorer has one; ``judge_usd`` is what judging cost."""

    passed: bool
    value: float = 0.0
    detail: str = ""
    judge_usd: str = "0"


class Judge(Protocol):
    """What a scorer gets to call a model with: the run's judge, budgeted and on the ledger
    under its own run id (so its cost is counted apart from the agent's)."""

    def ask(self, prompt: str) -> str: ...


Scorer = Callable[[Task, str, "Judge | None"], Score]


def _norm(text: Any) -> str:
    return " ".join(str(text).strip().lower().split())


def _expected_list(task: Task) -> list[str]:
    exp = task.expected
    if exp is None:
        raise InvalidSweep(f"task {task.id!r}: no 'expected' answer to score against")
    return [str(e) for e in exp] if isinstance(exp, list | tuple) else [str(exp)]


def exact(task: Task, answer: str, judge: Judge | None = None) -> Score:
    """Passed when the answer equals (one of) the expected answer(s), ignoring case and
    surrounding / repeated whitespace."""
    ok = _norm(answer) in {_norm(e) for e in _expected_list(task)}
    return Score(ok, float(ok))


def contains(task: Task, answer: str, judge: Judge | None = None) -> Score:
    """Passed when the answer contains (one of) the expected answer(s), ignoring case."""
    text = _norm(answer)
    ok = any(_norm(e) in text for e in _expected_list(task))
    return Score(ok, float(ok))


def regex_scorer(pattern: str | None = None) -> Scorer:
    """Passed when the answer matches ``pattern`` (default: the task's ``expected``, read as a
    regular expression), searched anywhere, case-insensitive."""
    fixed = _compile(pattern, "scorer pattern") if pattern is not None else None

    def score(task: Task, answer: str, judge: Judge | None = None) -> Score:
        rx = fixed or _compile(str(task.expected), f"task {task.id!r} expected")
        ok = rx.search(str(answer)) is not None
        return Score(ok, float(ok))

    return score


def _compile(pattern: str, where: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern, re.IGNORECASE)
    except re.error as exc:
        raise InvalidSweep(f"{where}: not a valid regular expression {pattern!r}: {exc}") from None


class TaskSet:
    """A named list of tasks with its scorer. Subclass to change how inputs are given to the
    graph (`graph_input`) or answers read back (`answer`)."""

    name: str = "tasks"

    def __init__(
        self,
        name: str,
        tasks: Sequence[Task],
        scorer: Scorer = contains,
        *,
        judge: Mapping[str, Any] | None = None,
    ) -> None:
        self.name = name
        self.judge = None if judge is None else dict(judge)
        """The judge model's settings (``model``, ``price``, ``budget_usd``...) when the
        scorer asks a model; None when it does not."""
        self._tasks = list(tasks)
        ids = [t.id for t in self._tasks]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise InvalidSweep(f"task set {name!r}: task ids repeat: {', '.join(dupes[:5])}")
        if not self._tasks:
            raise InvalidSweep(f"task set {name!r} has no tasks")
        self.scorer = scorer

    @property
    def tasks(self) -> list[Task]:
        return list(self._tasks)

    def task(self, task_id: str) -> Task:
        for t in self._tasks:
            if t.id == task_id:
                return t
        raise KeyError(task_id)

    def graph_input(self, task: Task) -> dict[str, Any]:
        """A string input is the user's message; a mapping is the graph input as it is."""
        if isinstance(task.input, Mapping):
            return dict(task.input)
        return {"messages": [("user", str(task.input))]}

    def answer(self, state: Any) -> str:
        """The text of the last AI message of the final state; empty if there is none, or
        if it is the budget's "I have to stop" note (no model was paid to answer: its text
        quotes amounts, which a `contains` scorer could otherwise take for an answer)."""
        messages = state.get("messages", []) if isinstance(state, Mapping) else []
        for msg in reversed(messages):
            if getattr(msg, "type", None) == "ai" and not getattr(msg, "tool_calls", None):
                mark = (getattr(msg, "response_metadata", None) or {}).get(UNPAID_KEY)
                if isinstance(mark, Mapping) and mark.get("final") == "unpaid":
                    return ""
                return _text(msg.content)
        return ""

    def score(self, task: Task, answer: str, judge: Judge | None = None) -> Score:
        return self.scorer(task, answer, judge)

    def fingerprint(self) -> str:
        """Changes when a task's id, input, expected answer or own budget does (resume
        refuses then)."""
        h = hashlib.sha256(self.name.encode())
        for t in self._tasks:
            # A task without a budget of its own hashes as before budgets existed.
            row = [t.id, t.input, t.expected, *([dict(t.budget)] if t.budget else [])]
            h.update(json.dumps(row, default=str, sort_keys=bool(t.budget)).encode())
        return h.hexdigest()[:16]


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            part.get("text", "") if isinstance(part, Mapping) else str(part) for part in content
        )
    return str(content)


# --- the registry -----------------------------------------------------------------------------

TaskSetFactory = Callable[..., TaskSet]


@dataclass(frozen=True)
class _Entry:
    factory: TaskSetFactory | str  # a dotted path is imported on first use
    description: str


_REGISTRY: dict[str, _Entry] = {}


def register_task_set(name: str, factory: TaskSetFactory | str, description: str = "") -> None:
    """Make a task set available to sweeps as ``tasks: {set: NAME, ...params}``.
    ``factory(**params)`` returns the `TaskSet`; it may be a ``"module:function"`` path,
    imported only when a sweep uses it. This is where the travel, web-search and
    long-document (Minions) demos plug in their sets."""
    if not re.fullmatch(r"[a-z][a-z0-9_.-]*", name):
        raise ValueError(f"task set name {name!r}: use lower-case letters, digits, _ . -")
    _REGISTRY[name] = _Entry(factory, description)


def task_set_names() -> dict[str, str]:
    """Registered task sets (built-in and from entry points) with their descriptions."""
    _load_builtins()
    return {name: entry.description for name, entry in sorted(_REGISTRY.items())}


def load_task_set(spec: str | Mapping[str, Any]) -> TaskSet:
    """A task set from a sweep's ``tasks:`` value: a registered name, a ``.jsonl`` path, or
    ``{set: NAME, ...params}``; NAME may also be a ``module:function`` path. Errors name the
    set and what is wrong with it.

    Pool and Ray workers are separate processes: a set registered by a call at run time is
    known there only if the registering module is imported there too. Entry points and
    ``module:function`` names work everywhere."""
    _load_builtins()
    if isinstance(spec, str):
        params: dict[str, Any] = (
            {"set": "jsonl", "path": spec} if spec.endswith(".jsonl") else {"set": spec}
        )
    elif isinstance(spec, Mapping):
        params = dict(spec)
    else:
        raise InvalidSweep(f"tasks: expected a name, a .jsonl path or a mapping, got {spec!r}")
    name = params.pop("set", None)
    if not isinstance(name, str):
        raise InvalidSweep(f"tasks: say which set, e.g. tasks: {{set: questions}} (got {spec!r})")
    entry = _REGISTRY.get(name)
    if entry is None and ":" in name:  # a factory named by its import path
        entry = _Entry(name, "")
    if entry is None:
        import difflib

        close = difflib.get_close_matches(name, list(_REGISTRY), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise InvalidSweep(
            f"tasks: no task set named {name!r}{hint} (known: {', '.join(sorted(_REGISTRY))})"
        )
    factory = entry.factory
    if isinstance(factory, str):
        from agent_budget.bench.config import import_object

        factory = import_object(factory, f"task set {name!r}")
    try:
        made = factory(**params)
    except InvalidSweep:
        raise
    except TypeError as exc:
        raise InvalidSweep(f"tasks: set {name!r} does not take these parameters: {exc}") from None
    if not isinstance(made, TaskSet):
        raise InvalidSweep(f"tasks: set {name!r} returned {type(made).__name__}, not a TaskSet")
    return made


_loaded_builtins = False


def _load_builtins() -> None:
    global _loaded_builtins
    if _loaded_builtins:
        return
    _loaded_builtins = True
    from importlib.metadata import entry_points

    import agent_budget.bench.sets  # noqa: F401  # registers the project's own sets

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name not in _REGISTRY:
            _REGISTRY[ep.name] = _Entry(ep.value, f"from {ep.dist.name if ep.dist else '?'}")
