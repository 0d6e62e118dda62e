"""Two versions of the ledger side by side, in one run, on PostgreSQL: reserve+commit median
latency (one process, a user's 30-day limit) and throughput with 8 worker processes, each
with ``synchronous_commit`` off and on, interleaved round by round so load drifts hit every
variant alike.

Each tree is an ``agent_budget`` source tree (e.g. ``git archive <rev> agent_budget | tar -x
-C /tmp/before``); every measurement runs in a fresh interpreter with that tree first on
``PYTHONPATH``. Scenarios: ``user`` (8 workers on one user's limit: the issue's goal) and
``global`` (8 workers, 8 users, one limit over everyone: the global-key hot spot).

    python benchmarks/ledger_ab.py --tree before=/tmp/before --tree after=. [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"
PG = os.environ.get("AGENT_BUDGET_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
PROCS = 8


def _limits(scenario: str, user: str) -> Any:
    from agent_budget.ledger import ScopedLimit

    if scenario == "global":
        return [ScopedLimit("global", None, "30d", usd_nanos=10**18)]
    return [ScopedLimit("user", user, "30d", usd_nanos=10**18)]


def _worker(url: str, scenario: str, seconds: float, barrier: Any, n: int) -> int:
    from decimal import Decimal

    from agent_budget.ledger import ChargeContext, Ledger
    from agent_budget.tracker import Charge

    user = "bench-user" if scenario == "user" else f"user{n}"
    ledger, ctx = Ledger.open(url), ChargeContext("run", "t", user, None)
    limits, charge = _limits(scenario, user), Charge("tool", "call", Decimal("0.0001"))
    barrier.wait()
    done, deadline = 0, time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        ledger.commit(ledger.reserve(charge, ctx, limits), charge, ctx)
        done += 1
    ledger.close()
    return done


def measure(url: str, scenario: str, seconds: float, samples: int) -> dict[str, float]:
    """One variant: 1-process median latency (ms) and 8-process throughput (per second)."""
    from decimal import Decimal

    from agent_budget.ledger import ChargeContext, Ledger
    from agent_budget.tracker import Charge

    ledger = Ledger.open(url)
    ctx = ChargeContext("run", "t", "bench-user", None)
    limits, charge = _limits(scenario, "bench-user"), Charge("tool", "call", Decimal("0.0001"))
    times = []
    for i in range(samples + 20):
        t0 = time.perf_counter()
        ledger.commit(ledger.reserve(charge, ctx, limits), charge, ctx)
        if i >= 20:  # warm-up: connection, prepared statements
            times.append(time.perf_counter() - t0)
    ledger.close()
    ctx_mp = multiprocessing.get_context("spawn")
    barrier = ctx_mp.Manager().Barrier(PROCS)
    with ctx_mp.Pool(PROCS) as pool:
        jobs = [
            pool.apply_async(_worker, (url, scenario, seconds, barrier, n)) for n in range(PROCS)
        ]
        total = sum(job.get(timeout=300) for job in jobs)
    return {"median_ms": statistics.median(times) * 1e3, "per_s": total / seconds}


def run_variant(tree: str, url: str, scenario: str, seconds: float, samples: int) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([tree, str(Path(__file__).parent)])}
    code = (
        "import json, ledger_ab; "
        f"print(json.dumps(ledger_ab.measure({url!r}, {scenario!r}, {seconds}, {samples})))"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True)  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", action="append", required=True, help="name=path")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--scenarios", default="user,global")
    parser.add_argument("--out", default=str(RESULTS / "ledger_ab.json"))
    args = parser.parse_args()
    trees = dict(t.split("=", 1) for t in args.tree)
    trees = {name: str(Path(path).resolve()) for name, path in trees.items()}
    tag = uuid.uuid4().hex[:8]
    samples: dict[str, list[dict[str, float]]] = {}
    loads = [os.getloadavg()[0]]
    for rnd in range(args.rounds):
        for scenario in args.scenarios.split(","):
            for name, tree in trees.items():
                for sync in ("off", "on"):
                    key = f"{scenario} | {name} | synchronous_commit={sync}"
                    # a fresh schema per variant and round: every point starts empty
                    url = f"{PG}?schema=ab_ab_{tag}_{len(samples)}_{rnd}&synchronous_commit={sync}"
                    got = run_variant(tree, url, scenario, args.seconds, args.samples)
                    samples.setdefault(key, []).append(got)
                    loads.append(os.getloadavg()[0])
                    print(f"round {rnd + 1}: {key}: {got['median_ms']:.3f} ms, "
                          f"{got['per_s']:.0f}/s (load {loads[-1]:.1f})", flush=True)  # fmt: skip
    _drop(tag)
    summary = {
        key: {
            "median_ms": round(statistics.median(r["median_ms"] for r in rows), 3),
            "per_s_8_procs": round(statistics.median(r["per_s"] for r in rows), 1),
            "rounds": rows,
        }
        for key, rows in samples.items()
    }
    result = {
        "trees": trees,
        "params": vars(args) | {"procs": PROCS, "cpus": os.cpu_count()},
        "load_avg_1m": {"min": min(loads), "max": max(loads), "mean": statistics.mean(loads)},
        "results": summary,
    }
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    for key, row in summary.items():
        print(f"{key:55s} {row['median_ms']:7.3f} ms  {row['per_s_8_procs']:7.0f}/s")
    print(f"load average (1 min) during the run: {min(loads):.1f}-{max(loads):.1f}")


def _drop(tag: str) -> None:
    import psycopg

    with psycopg.connect(PG, autocommit=True) as conn:
        names = conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE %s", (f"ab_ab_{tag}_%",)
        ).fetchall()
        for (name,) in names:
            conn.execute(f'DROP SCHEMA "{name}" CASCADE')


if __name__ == "__main__":
    main()
