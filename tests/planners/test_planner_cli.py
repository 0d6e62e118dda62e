"""`agent-budget plan` through typer's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent_budget.cli import app
from agent_budget.planners import load_problem

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "problems"
runner = CliRunner()

PROBLEM = {
    "start": ["TimeInfo", "LocationCategory", "LocationTier"],
    "goal": "TravelLocation",
    "budget": 40.0,
    "tools": [
        {
            "name": "decide_location",
            "inputs": ["LocationCategory", "LocationTier"],
            "output": "LocationPreference",
            "cost": 3.12,
        },
        {
            "name": "search_locations",
            "inputs": ["LocationPreference", "TimeInfo"],
            "output": "TravelLocation",
            "cost": 5.0,
        },
        {
            "name": "premium_search",
            "inputs": ["LocationPreference", "TimeInfo"],
            "output": "TravelLocation",
            "cost": 9.0,
        },
    ],
    "events": [{"after_step": 1, "type": "ban_tool", "tool": "search_locations"}],
}


@pytest.fixture
def problem_file(tmp_path: Path) -> Path:
    path = tmp_path / "problem.json"
    path.write_text(json.dumps(PROBLEM))
    return path


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["plan", *args])
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("method", ["exact", "cats"])
def test_json_output_shape(problem_file: Path, method: str) -> None:
    code, out, _ = invoke(str(problem_file), "--method", method, "--json")
    assert code == 0
    assert json.loads(out) == {
        "status": "ok",
        "steps": ["decide_location", "search_locations"],
        "cost": 8.12,
    }
    assert out.count("\n") == 1  # one JSON object on one line


def test_infeasible_with_budget_override(problem_file: Path) -> None:
    code, out, _ = invoke(str(problem_file), "--budget", "8.11", "--json")
    assert code == 0
    assert json.loads(out) == {
        "status": "infeasible",
        "steps": [],
        "cost": None,
        "reason": "cheapest plan costs 8.12 > budget 8.11",
    }


def test_execute_json(problem_file: Path) -> None:
    code, out, _ = invoke(str(problem_file), "--execute", "--json", "--seed", "4")
    assert code == 0
    assert json.loads(out) == {
        "status": "ok",
        "steps": ["decide_location", "search_locations"],
        "cost": 8.12,
        "executed": [
            {"tool": "decide_location", "cost": 3.12, "ok": True},
            {"tool": "premium_search", "cost": 9.0, "ok": True},
        ],
        "paid": 12.12,
        "replans": 1,
        "goal_reached": True,
    }


def test_table_output(problem_file: Path) -> None:
    code, out, _ = invoke(str(problem_file))
    assert code == 0 and "decide_location" in out and "8.12" in out
    code, out, _ = invoke(str(problem_file), "--execute")
    assert code == 0 and "premium_search" in out and "1 replans" in out


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "is not valid JSON"),
        ('{"hello": "world"}', "is not a planning problem"),
        ("[]", "is not a planning problem"),
        ('{"goal": "G", "tools": [{"name": "a", "output": "G", "cost": -2}]}', "cost"),
    ],
)
def test_bad_input_exits_2_with_a_message(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    code, out, err = invoke(str(path), "--json")
    assert code == 2
    assert message in err and out == ""
    assert "Traceback" not in err


def test_event_past_the_plans_end_exits_2(tmp_path: Path) -> None:
    data = {**PROBLEM, "events": [{"after_step": 9, "type": "ban_tool", "tool": "premium_search"}]}
    path = tmp_path / "late.json"
    path.write_text(json.dumps(data))
    code, _, err = invoke(str(path), "--execute", "--json")
    assert code == 2 and "past the plan's end" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.json"], "no such file"),
        (["{problem}", "--method", "magic"], "unknown --method 'magic'"),
        (["{problem}", "--budget", "lots"], "--budget must be a number"),
        (["{problem}", "--budget", "-1"], "--budget must be a finite number >= 0"),
        ([], "give a problem file"),
        (["--generate", "1"], "n_tools must be >= 2"),
    ],
)
def test_bad_arguments_exit_2(problem_file: Path, args: list[str], message: str) -> None:
    code, _, err = invoke(*[a.replace("{problem}", str(problem_file)) for a in args])
    assert code == 2 and message in err


def test_warnings_go_to_stderr(tmp_path: Path) -> None:
    data = {
        **PROBLEM,
        "events": [
            {"after_step": 0, "type": "ban_tool", "tool": "premium_search"},
            {"after_step": 1, "type": "ban_tool", "tool": "premium_search"},
        ],
    }
    path = tmp_path / "warn.json"
    path.write_text(json.dumps(data))
    code, out, err = invoke(str(path), "--execute", "--json")
    assert code == 0 and json.loads(out)["goal_reached"] is True
    assert "already removed" in err


def test_generate_writes_a_loadable_problem(tmp_path: Path) -> None:
    path = tmp_path / "gen.json"
    code, _, _ = invoke(str(path), "--generate", "30", "--seed", "2", "--failure-rate", "0.4")
    assert code == 0
    p = load_problem(path)
    assert len(p.tools) == 30 and any(t.failure_rate > 0 for t in p.tools)
    code, out, _ = invoke("--generate", "12")
    assert code == 0 and len(load_problem(out).tools) == 12


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("*.json")))
def test_example_problems_plan(name: str) -> None:
    code, out, err = invoke(str(EXAMPLES / name), "--json")
    assert code == 0, err
    assert json.loads(out)["status"] in {"ok", "infeasible"}
