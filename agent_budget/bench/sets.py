"""The project's own task sets, and a user's JSONL file.

- ``questions``: the router benchmark's known-answer questions (short facts and arithmetic),
  scored by "the answer contains one of the accepted answers".
- ``planner``: planning problems (PLANNING_FORMAT.md files, or generated ones) for an agent
  built around `planner_node` (`agent_budget.bench.agents.planner_agent`), the swept budget
  being the planning budget; passed when the goal is reached, or, for a problem no plan
  solves, when the agent says so without paying for a call. Events (``ban_tool``,
  ``cost_change``, ``invalidate``, ``tools_change``) are played as the tools' signals, and
  the optimum of a problem with events is what the replanning exact planner pays; tool
  failures are drawn from each run's seed.
- ``jsonl``: ``{"input": ..., "expected": ..., "id": ...}`` per line, scored by ``exact``,
  ``contains``, ``regex`` or ``judge`` (an LLM judge whose cost is counted apart).

- ``travel``: generated travel scenarios, static and with each event kind
  (`agent_budget.agents.travel.bench`), for the travel agent's planner.
- ``search``: the offline web-search questions (`agent_budget.agents.search.bench`), for
  the BATS research agent and its ReAct baselines.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from agent_budget.bench.errors import InvalidSweep
from agent_budget.bench.tasks import (
    Judge,
    Score,
    Scorer,
    Task,
    TaskSet,
    contains,
    exact,
    regex_scorer,
    register_task_set,
)

QUESTIONS: list[tuple[str, list[str]]] = [
    ("What is the capital of France?", ["paris"]),
    ("What is the capital of Japan?", ["tokyo"]),
    ("What is the capital of Italy?", ["rome"]),
    ("What is the capital of Germany?", ["berlin"]),
    ("What is the capital of Spain?", ["madrid"]),
    ("What color is the sky on a clear day?", ["blue"]),
    ("What color is grass?", ["green"]),
    ("How many legs does a spider have?", ["8", "eight"]),
    ("How many days are in a week?", ["7", "seven"]),
    ("What is 2 + 2?", ["4", "four"]),
    ("What is 10 - 3?", ["7", "seven"]),
    ("What is 6 * 7?", ["42"]),
    ("What is 12 * 12?", ["144"]),
    ("What is 15 + 27?", ["42"]),
    ("Which planet is known as the Red Planet?", ["mars"]),
    ("What is the largest ocean on Earth?", ["pacific"]),
    ("What gas do plants absorb from the air?", ["carbon dioxide", "co2"]),
    ("What is the freezing point of water in Celsius?", ["0", "zero"]),
    ("Who wrote Romeo and Juliet?", ["shakespeare"]),
    ("What is the opposite of hot?", ["cold"]),
    ("How many continents are there?", ["7", "seven"]),
    ("What animal is known as the king of the jungle?", ["lion"]),
    ("Calculate step by step: what is 23 * 17 + 4?", ["395"]),
    ("Explain why, and compute: a train travels 60 km/h for 2.5 hours. How many km?", ["150"]),
]
"""Known-answer questions (shared with benchmarks/router.py): accepted answers, lower case."""


def questions(limit: int | None = None, offset: int = 0) -> TaskSet:
    """The router's known-answer questions (``limit`` of them from ``offset``)."""
    chosen = QUESTIONS[offset : None if limit is None else offset + limit]
    tasks = [Task(f"q{offset + i:02d}", q, list(a)) for i, (q, a) in enumerate(chosen)]
    return TaskSet("questions", tasks, contains)


# --- planner problems -------------------------------------------------------------------------


class PlannerTasks(TaskSet):
    """Planning problems; the graph input carries the problem, the answer is the execution
    JSON that `planner_node` puts on its summary message."""

    def graph_input(self, task: Task) -> dict[str, Any]:
        problem = task.input
        held = dict.fromkeys(problem["start"], "given")
        for event in problem.get("events") or ():  # a preference changed before the first call
            if event["type"] == "invalidate" and int(event["after_step"]) == 0:
                for t in event.get("types") or ():
                    held.pop(t, None)
                held.update(dict.fromkeys(event.get("add_start") or (), "given"))
        return {
            "messages": [("user", f"Reach {problem['goal']} from {', '.join(problem['start'])}")],
            "held": held,
            "goal": problem["goal"],
        }

    def answer(self, state: Any) -> str:
        from agent_budget.integrations.planner import PLAN_METADATA

        for msg in reversed(state.get("messages", [])):
            meta = getattr(msg, "response_metadata", None) or {}
            if PLAN_METADATA in meta:
                return json.dumps(meta[PLAN_METADATA], sort_keys=True)
        return ""


def score_plan(task: Task, answer: str, judge: Judge | None = None) -> Score:
    """Passed when the goal is reached (``value``: optimal cost / paid, 1.0 when optimal);
    for a problem no plan solves, when the agent says so without paying for a call."""
    try:
        run = json.loads(answer) if answer else {}
    except json.JSONDecodeError:
        return Score(False, 0.0, "no plan in the answer")
    optimal = task.expected
    paid = float(run.get("paid") or 0)
    if optimal is None:
        ok = not run.get("goal_reached") and not run.get("executed")
        return Score(ok, float(ok), "unsolvable: " + ("declared" if ok else "not declared"))
    if not run.get("goal_reached"):
        return Score(False, 0.0, f"goal not reached ({run.get('status')}: {run.get('reason')})")
    value = min(1.0, float(optimal) / paid) if paid else 1.0
    return Score(True, value, f"paid {paid}, optimal {optimal}")


def planner(
    paths: Sequence[str] = (),
    generate: Mapping[str, Any] | None = None,
) -> TaskSet:
    """Planning problems from ``paths`` (files or directories of ``*.json``) and/or
    ``generate: {tools: [8, 16], seeds: [0, 1], failure_rate: 0.0}`` (generated problems).
    The sweep's budget is the planning budget: a problem's own ``budget`` is set aside.
    Each task's expected value is the optimal cost (exact planner), None when no plan
    reaches the goal at any price."""
    from agent_budget.planners import InvalidProblem, Problem, load_problem
    from agent_budget.planners.generate import generate_problem

    problems: list[tuple[str, Problem]] = []
    for raw in paths:
        path = Path(raw)
        files = sorted(path.glob("*.json")) if path.is_dir() else [path]
        if not files:
            raise InvalidSweep(f"tasks.paths: {path} holds no *.json problem")
        for file in files:
            if not file.is_file():
                raise InvalidSweep(f"tasks.paths: {file}: no such problem file")
            try:
                problems.append((file.stem, load_problem(file)))
            except InvalidProblem as exc:
                raise InvalidSweep(f"tasks.paths: {exc}") from None
    gen = dict(generate or {})
    if gen:
        sizes = gen.pop("tools", [8])
        seeds = gen.pop("seeds", [0])
        rate = float(gen.pop("failure_rate", 0.0))
        if gen:
            raise InvalidSweep(f"tasks.generate: unknown keys {sorted(gen)}")
        for n in sizes if isinstance(sizes, list) else [sizes]:
            for s in seeds if isinstance(seeds, list) else [seeds]:
                try:
                    made = generate_problem(int(n), seed=int(s), failure_rate=rate)
                except ValueError as exc:
                    raise InvalidSweep(f"tasks.generate: {exc}") from None
                problems.append((f"gen{int(n)}-s{int(s)}", made))
    if not problems:
        raise InvalidSweep("tasks: the planner set needs paths: [...] or generate: {...}")
    tasks = []
    for name, problem in problems:
        problem = problem.model_copy(update={"budget": None, "max_steps": None})
        optimal = _optimal(problem, name)
        tasks.append(Task(name, json.loads(problem.to_json()), optimal))
    return PlannerTasks("planner", tasks, score_plan)


def _optimal(problem: Any, name: str) -> str | None:
    """What the exact planner pays: for a problem with events, replanning after each as the
    agent must (`execute`), else its cheapest plan. None when no plan reaches the goal."""
    from agent_budget.planners import EventPastPlanEnd, PlannerGaveUp, execute, plan

    failures = any(t.failure_rate for t in problem.tools)
    try:
        if problem.events and not failures:  # failure draws differ per run: no fixed optimum
            run = execute(problem, "exact")
            return str(run.paid) if run.goal_reached else None
        best = plan(problem, "exact")
    except EventPastPlanEnd as exc:
        raise InvalidSweep(f"tasks: problem {name!r}: {exc}") from None
    except PlannerGaveUp:
        return None
    return str(best.cost) if best.ok else None


# --- a user's JSONL file ----------------------------------------------------------------------

SCORERS = ("exact", "contains", "regex", "judge")


def jsonl(
    path: str,
    scorer: str = "exact",
    pattern: str | None = None,
    judge: Mapping[str, Any] | None = None,
    limit: int | None = None,
) -> TaskSet:
    """Tasks from a JSONL file, one ``{"input": ..., "expected": ..., "id": ...}`` per line
    (``id`` optional: the line number). ``scorer`` is exact | contains | regex (``pattern``,
    default each task's expected) | judge (``judge: {model: ..., budget_usd: ...}``)."""
    file = Path(path)
    if not file.is_file():
        raise InvalidSweep(f"tasks.path: {file}: no such task file")
    if scorer not in SCORERS:
        raise InvalidSweep(f"tasks.scorer: {scorer!r} is not one of {', '.join(SCORERS)}")
    tasks = []
    for n, line in enumerate(file.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InvalidSweep(
                f"{file}:{n}: not valid JSON ({exc.msg}, column {exc.colno})"
            ) from None
        if not isinstance(row, dict) or "input" not in row:
            raise InvalidSweep(f'{file}:{n}: expected an object with "input" (and "expected")')
        unknown = set(row) - {"id", "input", "expected", "meta"}
        if unknown:
            raise InvalidSweep(f"{file}:{n}: unknown keys {sorted(unknown)}")
        if scorer != "judge" and "expected" not in row:
            raise InvalidSweep(f'{file}:{n}: no "expected" answer for scorer {scorer!r}')
        tasks.append(
            Task(str(row.get("id", n)), row["input"], row.get("expected"), row.get("meta") or {})
        )
    if limit is not None:
        tasks = tasks[:limit]
    chosen: Scorer
    if scorer == "exact":
        chosen = exact
    elif scorer == "contains":
        chosen = contains
    elif scorer == "regex":
        chosen = regex_scorer(pattern)
        if pattern is None:
            for t in tasks:
                regex_scorer(str(t.expected))  # a bad expression fails now, not mid-sweep
    else:
        from agent_budget.bench.judge import judge_scorer

        chosen = judge_scorer()
    if scorer == "judge" and not (judge or {}).get("model"):
        raise InvalidSweep("tasks.judge: name the judge's model, e.g. judge: {model: ...}")
    return TaskSet(file.stem, tasks, chosen, judge=judge if scorer == "judge" else None)


register_task_set("questions", questions, "the router's known-answer questions (contains)")
register_task_set("planner", planner, "planning problems for planner_node (goal reached)")
register_task_set(
    "travel",
    "agent_budget.agents.travel.bench:travel_tasks",
    "travel scenarios (static and each event kind) for the travel agent (goal reached)",
)
register_task_set(
    "search",
    "agent_budget.agents.search.bench:search_tasks",
    "offline web-search questions for the BATS agent and its baselines (answer named)",
)
register_task_set("jsonl", jsonl, "a JSONL file: exact | contains | regex | judge")
register_task_set(
    "long_document",
    "agent_budget.bench.long_document:long_document_tasks",
    "long-document questions (needles, CPython docs) for the delegation modes (contains)",
)
