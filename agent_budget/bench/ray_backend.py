"""Run a sweep's units as Ray tasks (``agent-budget bench sweep --ray [--ray-address ...]``).

Install with ``pip install "agent-budget[ray]"``. Each unit is one task running the same
`run_unit` as the process pool, so both give the same results. The global cap lives in the
sweep's ledger: with workers on several hosts, point ``ledger:`` at PostgreSQL
(``postgresql://...``) so every host reserves against the same rows; a SQLite file only
works when all workers share one machine (and its filesystem).
"""

from __future__ import annotations

import os
import sys
from typing import Any

from agent_budget.bench.config import Unit
from agent_budget.bench.errors import InvalidSweep
from agent_budget.bench.worker import Job, run_unit


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise InvalidSweep(
            "--ray needs Ray, which is not installed: pip install 'agent-budget[ray]'"
        ) from None
    return ray


class RayExecutor:
    """Submits units as Ray tasks (one CPU each), at most ``workers`` in flight."""

    def __init__(self, job: Job, workers: int, address: str | None = None) -> None:
        ray = self.ray = _ray()
        if address is None and "://" not in job.ledger and not job.ledger.startswith("/"):
            raise InvalidSweep(f"ledger {job.ledger!r}: give Ray workers an absolute path")
        if address is not None and "://" not in job.ledger:
            raise InvalidSweep(
                "--ray-address runs workers on other hosts, which cannot share a SQLite ledger "
                "file: set ledger: postgresql://... in the sweep"
            )
        self._started = False
        if not ray.is_initialized():
            # Local workers import agent_budget (and the user's factories) from the paths
            # this process uses; on a cluster, install them on every node instead.
            env = {"PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
            if address is None:
                kwargs.update(num_cpus=workers, runtime_env={"env_vars": env})
            ray.init(address=address, **kwargs)
            self._started = True
        self.job_ref = ray.put(job)
        self.remote = ray.remote(num_cpus=1, max_retries=0)(run_unit)

    def submit(self, unit: Unit) -> Any:
        return self.remote.remote(self.job_ref, unit)

    def wait_any(self, handles: list[Any]) -> list[tuple[Any, dict[str, Any] | BaseException]]:
        done, _ = self.ray.wait(handles, num_returns=1)
        out: list[tuple[Any, dict[str, Any] | BaseException]] = []
        for ref in done:
            try:
                out.append((ref, self.ray.get(ref)))
            except Exception as exc:  # the worker died (or Ray lost it): the unit failed
                out.append((ref, exc))
        return out

    def close(self) -> None:
        if self._started:
            self.ray.shutdown()
