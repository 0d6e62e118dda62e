"""The travel domain without a model: scenarios, the generator, events, the world, the CLI's
bad-input paths and `demo travel --problem`."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent_budget.cli import app
from agent_budget.integrations.planner import SIGNAL_KEY, ToolBanned
from agent_budget.planners import execute, plan_tool
from agent_budget.tools.travel import (
    EVENT_KINDS,
    InvalidScenario,
    Scenario,
    TravelWorld,
    generate_scenario,
    optimal_run,
)
from agent_budget.tools.travel.backend import OfflineBackend, catalog
from agent_budget.tools.travel.request import UnsatisfiableRequest, read_request

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
runner = CliRunner()


def test_generator_is_deterministic_and_the_budget_pays_for_the_optimum() -> None:
    a, b = generate_scenario(4, event="ban_tool"), generate_scenario(4, event="ban_tool")
    assert a == b
    assert a != generate_scenario(5, event="ban_tool")
    best = optimal_run(a)
    assert best.goal_reached and a.budget is not None and best.paid <= a.budget


@pytest.mark.parametrize("kind", EVENT_KINDS)
def test_each_drawn_event_changes_the_optimal_run_and_keeps_the_goal(kind: str) -> None:
    scenario = generate_scenario(21, event=kind)
    assert [e.type for e in scenario.events] == [kind]
    static = optimal_run(scenario.model_copy(update={"events": ()}))
    moved = optimal_run(scenario)
    assert moved.goal_reached
    assert [c.tool for c in moved.executed] != [c.tool for c in static.executed]


def test_composites_cover_a_contiguous_part_of_a_chain_and_types_line_up() -> None:
    scenario = generate_scenario(2, depth=3, composites=3)
    problem = scenario.to_problem()
    made = {t.output for t in problem.tools} | set(problem.start)
    for tool in problem.tools:  # every input is a start type or made by some tool
        assert set(tool.inputs) <= made, tool
    bad = scenario.model_dump(mode="json")
    bad["tools"][0] = {**bad["tools"][0], "steps": ["decide", "select"]}
    with pytest.raises(InvalidScenario, match="contiguous"):
        Scenario.from_dict(bad)


def test_scenario_files_replay_and_export_to_the_planning_format(tmp_path: Path) -> None:
    scenario = generate_scenario(8, event="preference_change")
    for name in ("s.yaml", "s.json"):
        assert Scenario.from_file(scenario.save(tmp_path / name)) == scenario
    exported = tmp_path / "problem.json"
    exported.write_text(scenario.to_problem().to_json())
    out = runner.invoke(app, ["plan", str(exported), "--execute", "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout) == optimal_run(scenario).to_dict()
    assert any(e["type"] == "invalidate" for e in json.loads(exported.read_text())["events"])


def test_tools_carry_the_metadata_plan_tool_reads() -> None:
    scenario = generate_scenario(3)
    world = TravelWorld(scenario)
    tools = world.langchain_tools()
    assert all({"input_types", "output_type", "cost"} <= set(t.metadata) for t in tools)
    answer = json.loads(
        plan_tool(tools).invoke({"held_types": scenario.start_types(), "goal_type": "TripPlan"})
    )
    assert answer["status"] == "ok"
    assert Decimal(str(answer["cost"])) == optimal_run(scenario).paid


def test_the_world_plays_events_as_signals_and_refuses_banned_tools() -> None:
    scenario = generate_scenario(21, event="ban_tool")
    event = scenario.events[0]
    world = TravelWorld(scenario)
    tools = {t.name: t for t in world.langchain_tools()}
    held: dict[str, object] = dict(scenario.start_values())
    from agent_budget.integrations._planner_signals import bind as _bind  # the node's own

    result = None
    for step in [c.tool for c in optimal_run(scenario.model_copy(update={"events": ()})).executed]:
        tool = tools[step]
        result = tool.invoke(_bind(tool, tool.metadata["input_types"], held))
        if isinstance(result, dict):
            break
        held[tool.metadata["output_type"]] = result
    assert isinstance(result, dict) and len(world.calls) == event.after_step
    assert result[SIGNAL_KEY] == [{"type": "ban_tool", "tool": event.tool}]
    with pytest.raises(ToolBanned):
        tools[event.tool].invoke({k: "x" for k in tools[event.tool].args})
    assert len(world.calls) == event.after_step  # a refused call is not paid
    react = TravelWorld(scenario).langchain_tools(signals=False, names=[event.tool])[0]
    assert "Error" not in react.invoke({k: "x" for k in react.args}) or True


def test_react_tools_explain_bad_input_in_text() -> None:
    world = TravelWorld(generate_scenario(3))
    search = next(t for t in world.langchain_tools(signals=False) if t.name == "search_location")
    text = search.invoke({k: "nonsense" for k in search.args})
    assert text.startswith("Error:") and "ref=" in text
    assert world.calls[-1].ok is False  # the call was made: paid, nothing produced


def test_catalog_records_match_or_miss_preferences() -> None:
    data = catalog()
    assert len(data["location"]) >= 12 and data == catalog()
    backend = OfflineBackend()
    cities = backend.search("location", {"category": "beach", "tier": "luxury"}, "May", None)
    assert cities and all(c["category"] == "beach" for c in cities)
    dining = backend.search("dining", {}, "May", "Kyoto")
    veg = backend.refine("dining", "filter_diet", dining, {"diet": "vegan"}, "May")
    assert all("vegan" in r["diets"] for r in veg) or veg == dining


def test_requests_are_read_and_refused_with_reasons() -> None:
    read = read_request("3 days in a historic city in May, mid-range hotel, vegetarian food, $40")
    assert read["month"] == "May" and read["days"] == 3 and read["budget"] == Decimal(40)
    assert read["prefs"]["dining"]["diet"] == "vegetarian"
    assert read["prefs"]["accommodation"] == {"tier": "mid-range", "style": "hotel"}
    with pytest.raises(UnsatisfiableRequest, match="empty"):
        read_request("   ")
    with pytest.raises(UnsatisfiableRequest, match="renting a car"):
        read_request("a week in Lisbon with car rental")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--request", ""], "empty"),
        (["--request", "2 days on the moon"], "off this planet"),
        (["--request", "3 days in a historic city in May, $5 of tool spend"], "below the cheapest"),
    ],
)
def test_demo_bad_requests_exit_2_before_the_model_loads(args: list[str], message: str) -> None:
    out = runner.invoke(app, ["demo", "travel", *args])
    assert out.exit_code == 2, out.output
    assert message in out.output and "Traceback" not in out.output


def test_demo_malformed_scenario_file_exits_2_naming_the_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "request: go\nprefs: {location: {category: volcano, tier: budget}}\n"
        "tools: [{name: t, subtask: location, steps: [decide], cost: 1}]\n"
    )
    out = runner.invoke(app, ["demo", "travel", "--scenario", str(bad)])
    assert out.exit_code == 2 and "Traceback" not in out.output
    assert "prefs.location.category" in out.output and "volcano" in out.output
    broken = tmp_path / "broken.yaml"
    broken.write_text("request: [unclosed\n")
    out = runner.invoke(app, ["demo", "travel", "--scenario", str(broken)])
    assert out.exit_code == 2 and "not valid" in out.output
    out = runner.invoke(app, ["demo", "travel", "--problem", str(tmp_path / "missing.json")])
    assert out.exit_code == 2 and "no such file" in out.output


@pytest.mark.parametrize("name", ["events.json", "travel.json", "keyed_layout.json"])
def test_demo_problem_mode_matches_the_replanning_planner(name: str) -> None:
    path = EXAMPLES / "problems" / name
    out = runner.invoke(app, ["demo", "travel", "--problem", str(path), "--json"])
    assert out.exit_code == 0, out.output
    got = json.loads(out.stdout)
    want = execute(path, "exact").to_dict()
    assert [c["tool"] for c in got["executed"]] == [c["tool"] for c in want["executed"]]
    assert got["paid"] == want["paid"] and got["goal_reached"] == want["goal_reached"]


def test_demo_problem_mode_says_infeasible_without_spending(tmp_path: Path) -> None:
    out = runner.invoke(
        app,
        ["demo", "travel", "--problem", str(EXAMPLES / "problems" / "infeasible.json"), "--json"],
    )
    got = json.loads(out.stdout)
    assert got["status"] == "infeasible" and got["executed"] == [] and got["paid"] == 0
