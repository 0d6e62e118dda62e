"""Task sets: the JSONL adapter and its scorers, the project's sets, the registration point."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from bench_specs import ROOT, planner_sweep

from agent_budget.bench import (
    InvalidSweep,
    Task,
    TaskSet,
    load_task_set,
    register_task_set,
    run_sweep,
)
from agent_budget.bench.report import comparable
from agent_budget.bench.sets import QUESTIONS
from agent_budget.bench.tasks import contains, exact, regex_scorer


def write_jsonl(path: Path, rows: list[object]) -> Path:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return path


def test_scorers() -> None:
    t = Task("t", "Capital of France?", ["Paris", "paris, france"])
    assert exact(t, "  PARIS ").passed and not exact(t, "Paris is the capital").passed
    assert contains(t, "It is Paris.").passed and not contains(t, "Lyon").passed
    r = Task("r", "6*7?", r"\b42\b")
    assert regex_scorer()(r, "the answer is 42.", None).passed
    assert not regex_scorer()(r, "420", None).passed
    assert regex_scorer(r"^\d+$")(r, "17", None).passed
    with pytest.raises(InvalidSweep, match="not a valid regular expression"):
        regex_scorer("(unclosed")


def test_jsonl_task_file(tmp_path: Path) -> None:
    file = write_jsonl(tmp_path / "qa.jsonl", [
        {"input": "2+2?", "expected": "4", "id": "sum"},
        "",
        {"input": {"messages": [["user", "hi"]]}, "expected": ["hello", "hi"]},
    ])  # fmt: skip
    ts = load_task_set(str(file))
    assert [t.id for t in ts.tasks] == ["sum", "3"]  # id defaults to the line number
    assert ts.graph_input(ts.tasks[0]) == {"messages": [("user", "2+2?")]}
    assert ts.graph_input(ts.tasks[1]) == {"messages": [["user", "hi"]]}  # a graph input as is
    assert ts.judge is None
    contains_set = load_task_set({"set": "jsonl", "path": str(file), "scorer": "contains"})
    assert contains_set.score(contains_set.tasks[1], "oh hello there").passed


@pytest.mark.parametrize(
    ("lines", "params", "message"),
    [
        (['{"input": "a", "expected": "b"}', '{"input": "c", '], {}, "qa.jsonl:2: not valid JSON"),
        (['["a", "b"]'], {}, 'qa.jsonl:1: expected an object with "input"'),
        (['{"input": "a"}'], {}, "qa.jsonl:1: no \"expected\" answer for scorer 'exact'"),
        (['{"input": "a", "expected": "b", "answer": 1}'], {}, "unknown keys ['answer']"),
        (['{"input": "a", "expected": "("}'], {"scorer": "regex"}, "not a valid regular"),
        (['{"input": "a", "expected": "b"}'], {"scorer": "fuzzy"}, "'fuzzy' is not one of"),
        (['{"input": "a"}'], {"scorer": "judge"}, "name the judge's model"),
        ([], {}, "has no tasks"),
        (
            [
                '{"id": 1, "input": "a", "expected": "b"}',
                '{"id": 1, "input": "c", "expected": "d"}',
            ],
            {},
            "task ids repeat: 1",
        ),
    ],
)
def test_malformed_task_files_are_refused_with_file_and_line(
    tmp_path: Path, lines: list[str], params: dict[str, str], message: str
) -> None:
    file = write_jsonl(tmp_path / "qa.jsonl", list(lines))
    with pytest.raises(InvalidSweep) as err:
        load_task_set({"set": "jsonl", "path": str(file), **params})
    assert message in str(err.value)


def test_missing_task_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidSweep, match="no such task file"):
        load_task_set(str(tmp_path / "none.jsonl"))


def test_the_projects_sets() -> None:
    qs = load_task_set({"set": "questions", "limit": 3, "offset": 2})
    assert [t.input for t in qs.tasks] == [q for q, _ in QUESTIONS[2:5]]
    plans = load_task_set({"set": "planner", "generate": {"tools": [8], "seeds": [0, 1]}})
    assert [t.id for t in plans.tasks] == ["gen8-s0", "gen8-s1"]
    assert all(t.expected is not None for t in plans.tasks)  # the optimal cost, as text
    with pytest.raises(InvalidSweep, match="does not take these parameters"):
        load_task_set({"set": "questions", "limt": 3})


def test_registering_a_task_set(tmp_path: Path) -> None:
    def tiny(n: int = 2) -> TaskSet:
        return TaskSet("tiny", [Task(f"t{i}", f"say {i}", str(i)) for i in range(n)], exact)

    register_task_set("tiny-test", tiny, "two tasks")
    assert [t.id for t in load_task_set({"set": "tiny-test", "n": 3}).tasks] == ["t0", "t1", "t2"]
    with pytest.raises(ValueError, match="task set name"):
        register_task_set("Bad Name", tiny)
    from agent_budget.bench import task_set_names

    assert task_set_names()["tiny-test"] == "two tasks"


def test_a_task_set_named_by_import_path_runs_in_pool_workers(tmp_path: Path) -> None:
    spec = planner_sweep(tasks={"set": "tiny_tasks:two_problems"}, budgets=[10], seeds=[0])
    pool = run_sweep(spec, tmp_path / "pool", backend="pool", workers=2)
    inline = run_sweep(spec, tmp_path / "inline", backend="inline")
    assert [r["task"] for r in pool.results] == ["gen8-s0", "gen8-s1"] * 2
    assert [comparable(r) for r in pool.results] == [comparable(r) for r in inline.results]


EXACT = [{"name": "exact", "agent": "agent_budget.bench.agents:planner_agent"}]
STEP0 = {
    "start": ["Query"],
    "goal": "Choice",
    "tools": [
        {"name": "search", "inputs": ["Query"], "output": "Candidates", "cost": 1},
        {"name": "select", "inputs": ["Candidates"], "output": "Choice", "cost": 2},
        {"name": "pick", "inputs": ["Style"], "output": "Choice", "cost": 9},
    ],
    "events": [
        {"after_step": 0, "type": "invalidate", "types": ["Query"], "add_start": ["Style"]},
        {"after_step": 0, "type": "tools_change", "remove": ["pick"],
         "add": [{"name": "styled", "inputs": ["Style"], "output": "Choice", "cost": 4}]},
    ],
}  # fmt: skip


def test_the_planner_set_plays_preference_and_tool_set_changes(tmp_path: Path) -> None:
    # events.json: a price change before the first call, then after it a changed preference
    # (Candidates dropped, Style held) with a new tool (styled_select) and a ban. STEP0: the
    # preference and the tool set change before the first call. The optimum of each is what
    # the replanning exact planner pays: 1.5 + 2.5 and 4.
    (tmp_path / "step0.json").write_text(json.dumps(STEP0))
    paths = [str(ROOT / "examples/problems/events.json"), str(tmp_path / "step0.json")]
    with pytest.warns(UserWarning, match="alt_search"):
        tasks = load_task_set({"set": "planner", "paths": paths}).tasks
    assert [(t.id, t.expected) for t in tasks] == [("events", "4.0"), ("step0", "4")]
    spec = planner_sweep(
        name="events", tasks={"set": "planner", "paths": paths}, budgets=[40], seeds=[0],
        configs=EXACT,
    )  # fmt: skip
    with pytest.warns(UserWarning, match="alt_search"):  # the ban names a tool already gone
        done = run_sweep(spec, tmp_path / "out", backend="inline")
    for r in done.results:
        assert r["passed"] and r["score"] == 1.0, r
        assert Decimal(r["usd"]) == Decimal(next(t.expected for t in tasks if t.id == r["task"]))


def test_task_order_runs_every_configuration_on_a_task_before_the_next(tmp_path: Path) -> None:
    configs = [{**EXACT[0], "name": n} for n in ("a", "b")]
    spec = planner_sweep(
        name="order", tasks={"set": "tiny_tasks:two_problems"}, budgets=[10], seeds=[0],
        configs=configs, order="task",
    )  # fmt: skip
    seen: list[tuple[str, str]] = []
    run_sweep(spec, tmp_path / "t", backend="inline",
              on_result=lambda r, _: seen.append((r["config"], r["task"])))  # fmt: skip
    assert seen == [("a", "gen8-s0"), ("b", "gen8-s0"), ("a", "gen8-s1"), ("b", "gen8-s1")]
    seen.clear()
    run_sweep({**spec, "order": "config"}, tmp_path / "c", backend="inline",
              on_result=lambda r, _: seen.append((r["config"], r["task"])))  # fmt: skip
    assert seen == [("a", "gen8-s0"), ("a", "gen8-s1"), ("b", "gen8-s0"), ("b", "gen8-s1")]
