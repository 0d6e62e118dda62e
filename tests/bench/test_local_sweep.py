"""The Must-show sweep: one task set x 3 budgets x 2 configurations on the embedded model,
offline; killed midway with SIGKILL and resumed, it ends with the uninterrupted results."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from bench_specs import ROOT, local_sweep

from agent_budget.bench.report import comparable

# Generous: on a 2-core machine shared with other jobs, three sweeps of the model can take
# minutes; nothing here asserts on time.
pytestmark = [pytest.mark.local_model, pytest.mark.slow, pytest.mark.timeout(1800)]


def sweep_cmd(config: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "agent_budget.cli", "bench", "sweep", str(config),
            "--out", str(out), "--workers", "2"]  # fmt: skip


ENV = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "COLUMNS": "160"}


def finished(out: Path) -> int:
    db = out / "results.db"
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            return int(conn.execute("SELECT count(*) FROM results").fetchone()[0])
    except sqlite3.OperationalError:  # the table is not created yet
        return 0


def runs(out: Path) -> list[dict]:
    return [comparable(r) for r in json.loads((out / "runs.json").read_text())]


def test_sweep_on_the_embedded_model_killed_and_resumed_equals_uninterrupted(
    tmp_path: Path,
) -> None:
    config = tmp_path / "sweep.yaml"
    config.write_text(yaml.safe_dump(local_sweep(tasks={"set": "questions", "limit": 2})))

    whole = subprocess.run(sweep_cmd(config, tmp_path / "whole"), capture_output=True,
                           text=True, env=ENV, timeout=1500)  # fmt: skip
    assert whole.returncode == 0, whole.stderr[-2000:]
    # The table (stdout) and both plots.
    assert "few-shot" in whole.stdout and "cost/pass" in whole.stdout
    for png in ("cost_accuracy.png", "accuracy_budget.png"):
        assert (tmp_path / "whole" / png).read_bytes()[:4] == b"\x89PNG"
    summary = json.loads((tmp_path / "whole" / "summary.json").read_text())
    assert summary["totals"]["overruns"] == 0
    assert summary["totals"]["runs"] == 12
    cells = {(c["config"], c["budget"]): c for c in summary["cells"]}
    # The smallest budget cannot pay for any answer: nothing passes, at no cost.
    for name in ("direct", "few-shot"):
        low = cells[(name, "usd=0.00002")]
        assert low["passed"] == 0 and low["cost_of_pass"] == "inf" and low["usd"] == "0"
    # The middle one pays for a plain answer, not for the few-shot prompt's worst case.
    assert cells[("direct", "usd=0.00004")]["model_calls"] == 2
    assert cells[("few-shot", "usd=0.00004")]["model_calls"] == 0
    assert cells[("few-shot", "usd=0.0001")]["model_calls"] == 2
    for c in summary["cells"]:
        if c["model_calls"]:
            assert set(c["tokens_by_model"]) == {"local:smollm2-135m"}
            assert Decimal(c["mean_usd"]) <= Decimal(c["budget_usd"])

    out = tmp_path / "killed"
    proc = subprocess.Popen(sweep_cmd(config, out), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=ENV, start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + 1200
    while finished(out) < 4 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the coordinator and its pool workers
    proc.wait(timeout=30)
    at_kill = finished(out)
    assert 4 <= at_kill < 12, f"the kill was not midway ({at_kill} of 12 finished)"
    assert not (out / "runs.json").exists()

    resumed = subprocess.run(sweep_cmd(config, out), capture_output=True, text=True, env=ENV,
                             timeout=1500)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"resuming: {at_kill} of 12 units already done" in resumed.stderr.replace("\n", " ")
    assert runs(out) == runs(tmp_path / "whole")
    again = json.loads((out / "summary.json").read_text())
    assert again["cells"] == summary["cells"]


def test_llm_judge_cost_is_counted_apart_from_the_agent(tmp_path: Path) -> None:
    from agent_budget.bench import run_sweep, write_outputs
    from agent_budget.ledger import Ledger

    tasks = tmp_path / "qa.jsonl"
    tasks.write_text(
        '{"id": "sky", "input": "What color is the sky?", "expected": "blue"}\n'
        '{"id": "sum", "input": "What is 2 + 2?", "expected": "4"}\n'
    )
    judge = {"model": "local:smollm2-135m", "price": [0.40, 1.60], "budget_usd": 0.001,
             "model_options": {"max_tokens": 4, "n_ctx": 1024, "n_threads": 1}}  # fmt: skip
    spec = local_sweep(
        tasks={"set": "jsonl", "path": str(tasks), "scorer": "judge", "judge": judge},
        budgets=[0.0001],
        configs=local_sweep()["configs"][:1],
    )
    done = run_sweep(spec, tmp_path / "out", backend="inline")
    summary = write_outputs(done.out, done.spec, done.results, plots=False)
    for r in done.results:
        assert r["status"] == "ok" and r["detail"].startswith("judge:")
        assert Decimal(r["judge_usd"]) > 0 and Decimal(r["usd"]) > 0
    cell = summary["cells"][0]
    agent = sum(Decimal(r["usd"]) for r in done.results)
    judged = sum(Decimal(r["judge_usd"]) for r in done.results)
    assert Decimal(cell["usd"]) == agent and Decimal(cell["judge_usd"]) == judged
    if cell["passed"]:  # cost-of-pass counts the agent's spend only
        assert Decimal(cell["cost_of_pass"]) == agent / cell["passed"]
    runs = {row["run"]: row["usd"] for row in Ledger.open(done.ledger).spend(by="run")}
    assert runs == {"direct@usd=0.0001#s0": agent, "direct@usd=0.0001#s0/judge": judged}
    assert done.spent_usd == agent + judged  # and both count against the global cap
