"""The runner on the fast planner sweep: outputs, ledger runs, the global cap, resuming,
pool = inline, and bad input refused before anything is spent."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from bench_specs import ROOT, planner_sweep
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent_budget.bench import InvalidSweep, SweepMismatch, load_sweep, run_sweep, write_outputs
from agent_budget.bench.report import comparable
from agent_budget.ledger import Ledger


def cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent_budget.cli", *args],
        capture_output=True, text=True, cwd=cwd, timeout=300,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "COLUMNS": "200"},
    )  # fmt: skip


def test_sweep_writes_every_output_and_each_cell_is_a_run_in_the_ledger(tmp_path: Path) -> None:
    done = run_sweep(planner_sweep(), tmp_path / "out", backend="inline")
    assert len(done.results) == 8 * 3 * 2 * 2  # tasks x budgets x configs x seeds
    summary = write_outputs(done.out, done.spec, done.results)
    for name in ("runs.json", "runs.csv", "summary.json", "summary.md",
                 "cost_accuracy.png", "accuracy_budget.png"):  # fmt: skip
        assert (done.out / name).stat().st_size > 0, name
    assert (done.out / "cost_accuracy.png").read_bytes()[:4] == b"\x89PNG"
    assert summary["totals"]["overruns"] == 0
    assert len(summary["cells"]) == 6
    # Money: the results, the cells and the ledger agree to the billionth.
    agent = sum(Decimal(r["usd"]) for r in done.results)
    assert Decimal(summary["totals"]["usd"]) == agent == done.spent_usd
    by_run = {r["run"]: r["usd"] for r in Ledger.open(done.ledger).spend(by="run")}
    # 12 runs: 2 configs x 3 budgets x 2 seeds
    assert sorted(by_run) == sorted({r["run_id"] for r in done.results})
    for cell in summary["cells"]:
        assert cell["runs"] == 16
        assert cell["tool_calls"]  # tool calls by tool are counted
    # More budget never lowers accuracy on these problems; the infeasible one always passes.
    acc = {(c["config"], c["budget"]): c["accuracy"] for c in summary["cells"]}
    assert acc[("exact", "usd=4")] < acc[("exact", "usd=40")]
    travel = {
        (r["config"], r["budget"], r["seed"]): r for r in done.results if r["task"] == "travel"
    }
    for (_, budget, _), r in travel.items():  # its cheapest plan costs 10.02
        if budget == "usd=4":
            assert not r["passed"] and r["usd"] == "0" and "infeasible" in r["detail"]
        if budget == "usd=40":
            assert r["passed"] and Decimal(r["usd"]) >= Decimal("10.02")
    # The CLI's ledger report shows the sweep, one row per run.
    report = cli("report", "--by", "run", "--since", "all", "--format", "json",
                 "--ledger", done.ledger)  # fmt: skip
    assert report.returncode == 0, report.stderr
    assert {row["run"] for row in json.loads(report.stdout)["rows"]} == set(by_run)


def test_process_pool_gives_the_same_results_as_inline(tmp_path: Path) -> None:
    spec = planner_sweep(budgets=[10], seeds=[3])
    inline = run_sweep(spec, tmp_path / "inline", backend="inline")
    pool = run_sweep(spec, tmp_path / "pool", backend="pool", workers=2)
    assert [comparable(r) for r in pool.results] == [comparable(r) for r in inline.results]
    assert len({r["worker"] for r in pool.results}) >= 1


def test_global_cap_holds_refused_runs_are_recorded_and_resume_finishes(tmp_path: Path) -> None:
    spec = planner_sweep(budgets=[10], global_cap_usd=60)
    out = tmp_path / "out"
    done = run_sweep(spec, out, backend="pool", workers=3)
    statuses = [r["status"] for r in done.results]
    assert "refused" in statuses  # $60 does not pay for 32 runs of these problems
    assert len(done.results) == 32  # every unit has a row: run, or refused and why
    assert done.spent_usd <= Decimal(60)
    assert Ledger.open(done.ledger).spend()[0]["usd"] <= Decimal(60)
    for r in done.results:
        if r["status"] == "refused":
            assert r["usd"] == "0" and "global cap" in r["detail"]
    summary = write_outputs(out, done.spec, done.results, plots=False)
    assert summary["totals"]["overruns"] == 0
    assert any(not c["complete"] for c in summary["cells"])
    # A larger cap on resume runs what was refused or cut, and only that.
    finished_before = {r["key"] for r in done.results if r["status"] in ("ok", "error")}
    again = run_sweep(planner_sweep(budgets=[10], global_cap_usd=1000), out, backend="inline")
    assert again.resumed == len(finished_before)
    assert {r["status"] for r in again.results} == {"ok"}
    full = run_sweep(planner_sweep(budgets=[10]), tmp_path / "full", backend="inline")
    assert [comparable(r) for r in again.results] == [comparable(r) for r in full.results]


def test_resuming_a_different_sweep_into_the_same_directory_is_refused(tmp_path: Path) -> None:
    run_sweep(planner_sweep(budgets=[10], seeds=[0]), tmp_path, backend="inline")
    with pytest.raises(SweepMismatch, match="another sweep"):
        run_sweep(planner_sweep(budgets=[10], seeds=[1]), tmp_path, backend="inline")
    again = run_sweep(
        planner_sweep(budgets=[10], seeds=[1]), tmp_path, backend="inline", fresh=True
    )
    assert {r["seed"] for r in again.results} == {1}


def nothing_spent(out: Path) -> bool:
    return not out.exists()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"configs": [{"name": "x", "agent": "no_such_module_zz:make"}]},
            "configs.x.agent: cannot import module 'no_such_module_zz'",
        ),
        (
            {"configs": [{"name": "x", "agent": "agent_budget.bench.agents:no_such"}]},
            "configs.x.agent: module 'agent_budget.bench.agents' has no 'no_such'",
        ),
        (
            {
                "configs": [
                    {
                        "name": "x",
                        "agent": "agent_budget.bench.agents:direct_answer",
                        "model": "openai/no-such-model-zz",
                    }
                ]
            },
            "configs.x.model 'openai/no-such-model-zz'",
        ),
        (
            {
                "configs": [
                    {
                        "name": "x",
                        "agent": "agent_budget.bench.agents:direct_answer",
                        "model": "local:no-such-model",
                    }
                ]
            },
            "configs.x.model 'local:no-such-model'",
        ),
        (
            {"global_cap_usd": 3},
            "global_cap_usd $3 is too small for even one run: the cheapest run may spend up to $4",
        ),
        (
            {"budgets": [{"label": "open", "tool_calls": {"x": 1}}], "global_cap_usd": 5},
            "global_cap_usd needs a USD limit on every run",
        ),
        ({"budgets": [{"usd": 1, "on_exhausted": "explode"}]}, "on_exhausted"),
        (
            {"budgets": [{"usd": 1, "shared": [{"scope": "global", "usd": 5}]}]},
            "are set by the sweep (ledger:, global_cap_usd:), not per run",
        ),
        ({"tasks": {"set": "planer"}}, "did you mean 'planner'"),
        ({"configs": []}, "configs"),
    ],
)
def test_bad_sweeps_fail_before_anything_is_spent(
    tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    out = tmp_path / "out"
    with pytest.raises(InvalidSweep) as err:
        run_sweep(planner_sweep(**change), out, backend="inline")
    assert message in str(err.value)
    assert nothing_spent(out)


def test_a_factory_module_that_fails_on_import_is_named(tmp_path: Path, monkeypatch: Any) -> None:
    (tmp_path / "broken_agent_zz.py").write_text("raise RuntimeError('no API key')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    bad = {"configs": [{"name": "x", "agent": "broken_agent_zz:make"}]}
    with pytest.raises(
        InvalidSweep, match="importing 'broken_agent_zz' failed: RuntimeError: no API key"
    ):
        run_sweep(planner_sweep(**bad), tmp_path / "out", backend="inline")
    assert nothing_spent(tmp_path / "out")


def test_cli_reports_bad_input_with_exit_2_and_spends_nothing(tmp_path: Path) -> None:
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text('{"input": "2+2?", "expected": "4"}\n{"input": "oops", "expected": \n')
    config = tmp_path / "sweep.yaml"
    config.write_text(
        "tasks: tasks.jsonl\nbudgets: [0.01]\nconfigs:\n"
        "  - {name: a, agent: 'agent_budget.bench.agents:direct_answer'}\n"
    )
    proc = cli("bench", "sweep", str(config), "--out", str(tmp_path / "out"))
    assert proc.returncode == 2
    assert f"{tasks}:2: not valid JSON" in proc.stderr
    assert nothing_spent(tmp_path / "out")
    missing = cli("bench", "sweep", str(tmp_path / "nope.yaml"), "--out", str(tmp_path / "o2"))
    assert missing.returncode == 2 and "no such sweep file" in missing.stderr


def test_compare_shows_what_changed_between_two_sweeps(tmp_path: Path) -> None:
    a = run_sweep(planner_sweep(budgets=[4, 10]), tmp_path / "a", backend="inline")
    write_outputs(a.out, a.spec, a.results, plots=False)
    b = run_sweep(planner_sweep(budgets=[10, 40]), tmp_path / "b", backend="inline")
    write_outputs(b.out, b.spec, b.results, plots=False)
    proc = cli("bench", "compare", str(a.out), str(b.out), "--json")
    assert proc.returncode == 0, proc.stderr
    rows = {(r["config"], r["budget"]): r for r in json.loads(proc.stdout)}
    assert rows[("exact", "usd=4")]["accuracy_b"] is None  # only in A
    assert rows[("exact", "usd=40")]["accuracy_a"] is None  # only in B
    same = rows[("exact", "usd=10")]
    assert same["accuracy_change"] == 0 and same["mean_usd_change"] == "0"
    table = cli("bench", "compare", str(a.out), str(b.out))
    assert table.returncode == 0 and "usd=40" in table.stdout


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    cap=st.integers(min_value=4, max_value=40),
    budgets=st.lists(st.integers(min_value=2, max_value=12), min_size=1, max_size=3, unique=True),
)
def test_a_sweep_never_spends_more_than_its_cap(
    tmp_path: Path, cap: int, budgets: list[int]
) -> None:
    if cap < min(budgets):
        return  # refused before anything is spent (tested above)
    out = tmp_path / f"cap{cap}-{'-'.join(map(str, budgets))}"
    spec = planner_sweep(tasks={"set": "tiny_tasks:two_problems"}, budgets=budgets,
                         global_cap_usd=cap)  # fmt: skip
    done = run_sweep(spec, out, backend="inline", fresh=True)
    assert done.spent_usd <= cap
    assert sum(Decimal(r["usd"]) for r in done.results) == done.spent_usd
    assert len(done.results) == 2 * 2 * 2 * len(budgets)
    assert all(not r["overruns"] and Decimal(r["usd"]) <= Decimal(r["budget"][4:])
               for r in done.results)  # fmt: skip


def test_models_cross_every_configuration(tmp_path: Path) -> None:
    from agent_budget.bench import load_sweep

    spec = load_sweep(
        planner_sweep(models=["local:smollm2-135m", "openai/gpt-4.1-mini"], budgets=[10])
    )
    assert [c.name for c in spec.configs] == [
        "exact+local:smollm2-135m", "exact+openai/gpt-4.1-mini",
        "cats+local:smollm2-135m", "cats+openai/gpt-4.1-mini",
    ]  # fmt: skip
    assert load_sweep(spec.model_dump(mode="json")).configs == spec.configs  # not crossed twice
    with pytest.raises(InvalidSweep, match="models repeat"):
        load_sweep(planner_sweep(models=["a", "a"]))


def test_a_configs_model_price_stays_in_its_own_runs(tmp_path: Path) -> None:
    from bench_specs import local_sweep

    from agent_budget.bench import preflight
    from agent_budget.bench.worker import run_budget
    from agent_budget.budget import Budget
    from agent_budget.pricing import registered_model_price

    before = registered_model_price("local:smollm2-135m")
    checked = preflight(load_sweep(local_sweep()))
    # Checking (and building) the priced on-device model did not re-price it process-wide.
    after = registered_model_price("local:smollm2-135m")
    assert after == before or (before is None and after is not None and after.input == 0)
    cfg = checked.spec.configs[0]
    from agent_budget.bench.config import budget_points

    budget = Budget.from_dict(run_budget(cfg, budget_points(checked.spec)[0]))
    price = budget.model_prices["local:smollm2-135m"]
    assert (price.input, price.output) == (Decimal("0.40"), Decimal("1.60"))
