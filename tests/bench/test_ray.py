"""The same sweeps on a local Ray instance (4 CPUs): the same numbers as the process pool,
and the global cap holding across 4 Ray workers sharing a PostgreSQL ledger."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from bench_specs import local_sweep, planner_sweep

from agent_budget.bench import run_sweep
from agent_budget.bench.report import comparable
from agent_budget.ledger import Ledger

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'agent-budget[ray]')")
pytestmark = [pytest.mark.ray, pytest.mark.slow, pytest.mark.timeout(1800)]


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    env = {"PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": env})  # fmt: skip
    yield
    ray.shutdown()


def same(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> bool:
    return [comparable(r) for r in a] == [comparable(r) for r in b]


@pytest.mark.local_model
def test_embedded_model_sweep_on_ray_equals_the_process_pool(
    local_ray: None, tmp_path: Path
) -> None:
    spec = local_sweep(tasks={"set": "questions", "limit": 2})
    pool = run_sweep(spec, tmp_path / "pool", backend="pool", workers=2)
    on_ray = run_sweep(spec, tmp_path / "ray", backend="ray", workers=4)
    assert len(on_ray.results) == 12
    assert same(on_ray.results, pool.results)
    assert on_ray.spent_usd == pool.spent_usd > 0


def test_planner_sweep_on_ray_equals_the_process_pool(local_ray: None, tmp_path: Path) -> None:
    spec = planner_sweep(budgets=[4, 40])
    pool = run_sweep(spec, tmp_path / "pool", backend="pool", workers=2)
    on_ray = run_sweep(spec, tmp_path / "ray", backend="ray", workers=4)
    assert same(on_ray.results, pool.results)
    assert len({r["worker"] for r in on_ray.results}) > 1  # really spread over workers


def test_global_cap_holds_across_4_ray_workers_on_postgres(
    local_ray: None, tmp_path: Path, pg_ledger: str
) -> None:
    # Four units start at once, each allowed $8, under an $8 cap: their plans (about $3-6
    # each) cannot all be paid, and the ledger, shared by the four workers, decides which.
    cap = Decimal(8)
    tasks = {"set": "planner", "generate": {"tools": [12, 16], "seeds": [0, 1, 2, 3]}}
    spec = planner_sweep(tasks=tasks, budgets=[8], ledger=pg_ledger, global_cap_usd=str(cap))
    done = run_sweep(spec, tmp_path / "out", backend="ray", workers=4)
    assert len(done.results) == 32  # every unit recorded, run or not
    ledger = Ledger.open(pg_ledger)
    total = ledger.spend()[0]
    assert total["usd"] <= cap and done.spent_usd == total["usd"]
    assert sum((r["usd"] for r in ledger.spend(by="run")), Decimal(0)) == total["usd"]
    assert sum(Decimal(r["usd"]) for r in done.results) == total["usd"]
    by_status: dict[str, int] = {}
    for r in done.results:
        by_status[r["status"]] = by_status.get(r["status"], 0) + 1
        if r["status"] == "refused":  # never started: the cap could not pay for its budget
            assert r["usd"] == "0" and "global cap" in r["detail"]
        if r["status"] == "capped":  # started, and a call was refused by the shared cap
            assert "tenant.usd" in r["detail"] and not r["passed"]
        assert not r["overruns"]
    assert by_status.get("ok", 0) >= 1 and by_status.get("refused", 0) >= 1, by_status


def test_ray_on_other_hosts_needs_a_shared_ledger(tmp_path: Path) -> None:
    from agent_budget.bench import InvalidSweep

    with pytest.raises(InvalidSweep, match="cannot share a SQLite ledger file"):
        run_sweep(planner_sweep(), tmp_path / "out", backend="ray", ray_address="ray://h:1")
