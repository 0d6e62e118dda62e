from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from planner_helpers import problem, tool

from agent_budget.errors import AgentBudgetError
from agent_budget.planners import InvalidProblem, Problem, load_problem

SPEC_EXAMPLE = """{
  "start":  ["TimeInfo", "LocationCategory", "LocationTier"],
  "goal":   "TravelLocation",
  "budget": 40.0,
  "tools": [
    {"name": "decide_location", "inputs": ["LocationCategory", "LocationTier"],
     "output": "LocationPreference", "cost": 3.12},
    {"name": "search_locations", "inputs": ["LocationPreference", "TimeInfo"],
     "output": "LocationCandidates", "cost": 5.0, "failure_rate": 0.0}
  ],
  "events": [
    {"after_step": 1, "type": "ban_tool",    "tool": "search_locations"},
    {"after_step": 1, "type": "cost_change", "tool": "decide_location", "cost": 9.5},
    {"after_step": 2, "type": "invalidate",  "types": ["LocationPreference"],
     "add_start": ["LocationStyle"]},
    {"after_step": 0, "type": "tools_change", "remove": ["decide_location"],
     "add": [{"name": "x", "inputs": [], "output": "Y", "cost": 1.0}]}
  ]
}"""


def test_spec_example_loads_with_exact_money() -> None:
    p = Problem.from_json(SPEC_EXAMPLE)
    assert p.budget == Decimal("40.0")
    assert p.tools[0].cost == Decimal("3.12")
    assert [e.type for e in p.events] == ["ban_tool", "cost_change", "invalidate", "tools_change"]
    assert p.events[3].add[0].name == "x"  # type: ignore[union-attr]


def test_keyed_layout_equals_list_layout() -> None:
    keyed = Problem.from_json(
        '{"start": ["A"], "goal": "C", "tools": {'
        '"make_b": {"input_types": ["A"], "output_type": "B", "cost": 1.5},'
        '"make_c": {"input_types": ["B"], "output_type": "C", "cost": 2, "failure_rate": 0.1}}}'
    )
    listed = problem(
        ["A"], "C", [tool("make_b", ["A"], "B", "1.5"), tool("make_c", ["B"], "C", 2, 0.1)]
    )
    assert keyed == listed


def test_python_floats_become_their_decimal_text() -> None:
    p = problem([], "G", [tool("a", [], "G", 0.1)], budget=0.3)
    assert p.tools[0].cost == Decimal("0.1")
    assert p.budget == Decimal("0.3")


def test_json_numbers_are_never_floats() -> None:
    p = Problem.from_json(
        '{"goal": "G", "tools": [{"name": "a", "output": "G", "cost": 0.1000000000000000000001}]}'
    )
    assert p.tools[0].cost == Decimal("0.1000000000000000000001")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "not valid JSON"),
        ("[1, 2]", "not a planning problem"),
        ('{"budget": 3}', "missing 'goal', 'tools'"),
        (
            '{"goal": "G", "tools": [{"name": "a", "output": "G", "cost": -1}]}',
            "tools.0.cost: Input should be greater than or equal to 0 (got -1)",
        ),
        (
            '{"goal": "G", "tools": [{"name": "a", "output": "G", "cost": 1},'
            ' {"name": "a", "output": "H", "cost": 2}]}',
            "duplicate tool name 'a'",
        ),
        (
            '{"goal": "G", "tools": {"a": {"output_type": "G", "cost": 1},'
            ' "a": {"output_type": "H", "cost": 1}}}',
            "duplicate key 'a'",
        ),
        (
            '{"goal": "G", "tools": [{"name": "a", "output": "G", "cost": 1}],'
            ' "events": [{"after_step": 0, "type": "ban_tool", "tool": "zzz"}]}',
            "names tool 'zzz'",
        ),
        (
            '{"goal": "G", "tools": [{"name": "a", "output": "G", "cost": 1}],'
            ' "events": [{"after_step": 0, "type": "explode"}]}',
            "does not match",
        ),
        (
            '{"goal": "G", "tools": [{"name": "a", "output": "G", "cost": 1}],'
            ' "events": [{"after_step": -1, "type": "ban_tool", "tool": "a"}]}',
            "after_step",
        ),
        (
            '{"goal": "G", "max_steps": 2, "tools": [{"name": "a", "output": "G", "cost": 1}],'
            ' "events": [{"after_step": 3, "type": "ban_tool", "tool": "a"}]}',
            "past max_steps 2",
        ),
        (
            '{"goal": "G", "tools": [{"name": "a", "output": "G", "cost": 1, "failure_rate": 1}]}',
            "failure_rate",
        ),
        ('{"goal": "G", "tools": [{"name": "a", "output": "G", "cost": "abc"}]}', "not a number"),
        (
            '{"goal": "G", "tools": [{"name": "a", "output": "G", "cost": 1}], "budjet": 3}',
            "budjet",
        ),
        (
            '{"goal": "G", "tools": {"a": {"name": "b", "output_type": "G", "cost": 1}}}',
            "says its name is 'b'",
        ),
    ],
)
def test_bad_problems_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(InvalidProblem) as caught:
        Problem.from_json(text)
    assert message in str(caught.value)
    assert isinstance(caught.value, AgentBudgetError)
    assert isinstance(caught.value, ValueError)


def test_event_may_name_a_tool_added_by_another_event() -> None:
    p = Problem.from_json(
        '{"goal": "G", "tools": [{"name": "a", "output": "G", "cost": 1}], "events": ['
        '{"after_step": 0, "type": "tools_change",'
        ' "add": [{"name": "b", "output": "G", "cost": 2}]},'
        '{"after_step": 1, "type": "cost_change", "tool": "b", "cost": 3}]}'
    )
    assert len(p.events) == 2


def test_input_nothing_produces_is_fine() -> None:
    p = problem(["A"], "G", [tool("g", ["A"], "G", 1), tool("never", ["Ghost"], "G", 0)])
    assert len(p.tools) == 2


def test_files(tmp_path: Path) -> None:
    good = tmp_path / "p.json"
    good.write_text(SPEC_EXAMPLE)
    assert load_problem(good).goal == "TravelLocation"
    with pytest.raises(InvalidProblem, match="no such file"):
        load_problem(tmp_path / "missing.json")
    with pytest.raises(InvalidProblem, match="directory"):
        load_problem(tmp_path)
    (tmp_path / "bin.json").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(InvalidProblem):
        load_problem(tmp_path / "bin.json")


def test_round_trip_through_json() -> None:
    p = Problem.from_json(SPEC_EXAMPLE)
    again = Problem.from_json(p.to_json())
    assert again == p
    assert json.loads(p.to_json())["tools"][0]["cost"] == 3.12
