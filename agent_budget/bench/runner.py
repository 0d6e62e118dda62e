"""`run_sweep`: every (configuration x budget x seed x task) unit, resumable, under a cap.

The coordinator (this process) checks the whole sweep before anything is spent (`preflight`),
then hands units to an executor (a bounded process pool, Ray, or inline) at most ``workers``
at a time, and writes each result to the results file as it arrives. The global cap is a
tenant-scoped limit in the sweep's ledger, checked atomically by every worker on every call
(so parallel workers on several hosts together never pass it); the coordinator also stops
starting units whose own budget no longer fits what is left, and records them as refused.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
from collections.abc import Callable, Iterator
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

from agent_budget.bench.config import (
    SweepSpec,
    Unit,
    budget_points,
    import_object,
    load_sweep,
)
from agent_budget.bench.errors import InvalidSweep, SweepInterrupted
from agent_budget.bench.store import ResultStore
from agent_budget.bench.tasks import TaskSet, load_task_set
from agent_budget.bench.worker import Job, make_model, run_budget, run_unit
from agent_budget.budget import Budget
from agent_budget.errors import AgentBudgetError, InvalidBudget
from agent_budget.ledger import ScopedLimit, from_nanos, open_ledger, to_nanos

RESULTS_FILE = "results.db"
LEDGER_FILE = "ledger.db"


@dataclass
class Checked:
    """A sweep that passed `preflight`: its spec, tasks, units and the worst case of a run."""

    spec: SweepSpec
    task_set: TaskSet
    units: list[Unit]
    run_usd: dict[str, Decimal | None] = field(default_factory=dict)
    """Per budget label: the most one unit can spend (its USD limit, plus the judge's)."""
    task_usd: dict[tuple[str, str, str], Decimal | None] = field(default_factory=dict)
    """The same per (configuration, budget label, task) for tasks with a budget of their own."""

    def worst(self, unit: Unit) -> Decimal | None:
        """The most ``unit`` can spend (None: no USD limit)."""
        key = (unit.config, unit.budget, unit.task)
        return self.task_usd[key] if key in self.task_usd else self.run_usd.get(unit.budget)


def preflight(spec: SweepSpec) -> Checked:
    """Everything that can be wrong before a cent is spent: the task set, every factory
    import, every model name and price, every budget, and a cap that cannot pay for one run."""
    task_set = load_task_set(spec.tasks)
    points = budget_points(spec)
    own = [t for t in task_set.tasks if t.budget]
    task_usd: dict[tuple[str, str, str], Decimal | None] = {}
    for cfg in spec.configs:
        import_object(cfg.agent, f"configs.{cfg.name}.agent")
        try:
            make_model(cfg)
        except (AgentBudgetError, ValueError, TypeError) as exc:
            raise InvalidSweep(f"configs.{cfg.name}.model {cfg.model!r}: {exc}") from None
        for point in points:
            try:
                made = Budget.from_dict(
                    run_budget(cfg, point), source=f"{cfg.name} @ {point.label}"
                )
            except InvalidBudget as exc:
                raise InvalidSweep(f"configs.{cfg.name} with budget {point.label}: {exc}") from None
            if made.ledger or made.shared or made.scope in ("user", "tenant", "global"):
                # Each run is bound to the sweep's ledger and cap; a second binding of its
                # own would be ignored, and a limit silently ignored is worse than none.
                raise InvalidSweep(
                    f"configs.{cfg.name} with budget {point.label}: ledger, shared and "
                    "user/tenant/global scopes are set by the sweep (ledger:, global_cap_usd:)"
                    ", not per run"
                )
            for task in own:  # a task's own fields: checked now, not mid-sweep
                where = f"configs.{cfg.name} with budget {point.label}, task {task.id!r}"
                try:
                    usd = Budget.from_dict(run_budget(cfg, point, task), source=where).usd
                except InvalidBudget as exc:
                    raise InvalidSweep(f"{where}: {exc}") from None
                task_usd[(cfg.name, point.label, task.id)] = usd
    judge_usd = Decimal(0)
    if task_set.judge is not None:
        from agent_budget.bench.worker import DEFAULT_JUDGE_USD
        from agent_budget.models import resolve
        from agent_budget.models.catalog import is_local

        try:
            judge_model = str(task_set.judge["model"])
            local = is_local(judge_model)  # a local judge is priced in its own budget
            resolve(judge_model, price=None if local else task_set.judge.get("price"))
        except (AgentBudgetError, ValueError) as exc:
            raise InvalidSweep(f"tasks.judge.model: {exc}") from None
        judge_usd = Decimal(str(task_set.judge.get("budget_usd", DEFAULT_JUDGE_USD)))
    run_usd: dict[str, Decimal | None] = {}
    for point in points:
        run_usd[point.label] = None if point.usd is None else point.usd + judge_usd
    task_usd = {k: None if v is None else v + judge_usd for k, v in task_usd.items()}
    cap = spec.global_cap_usd
    if cap is not None:
        # A task with a budget of its own has its own worst case; the others the point's.
        plain = len(own) < len(task_set.tasks)
        worst: dict[str, Decimal | None] = {k: v for k, v in run_usd.items() if plain}
        worst.update({f"{p} ({c}, task {t})": usd for (c, p, t), usd in task_usd.items()})
        unbounded = [label for label, usd in worst.items() if usd is None]
        if unbounded:
            raise InvalidSweep(
                f"global_cap_usd needs a USD limit on every run, so a run's worst case is "
                f"known; budgets without one: {', '.join(unbounded[:5])}"
            )
        cheapest = min(usd for usd in worst.values() if usd is not None)
        if cap < cheapest:
            raise InvalidSweep(
                f"global_cap_usd ${cap} is too small for even one run: the cheapest run may "
                f"spend up to ${cheapest} (its budget"
                + (" plus the judge's" if judge_usd else "")
                + "). Raise the cap or lower the budgets."
            )
    if spec.order == "task":
        units = [
            Unit(cfg.name, point.label, seed, task.id)
            for task in task_set.tasks
            for point in points
            for seed in spec.seeds
            for cfg in spec.configs
        ]
    else:
        units = [
            Unit(cfg.name, point.label, seed, task.id)
            for cfg in spec.configs
            for point in points
            for seed in spec.seeds
            for task in task_set.tasks
        ]
    return Checked(spec, task_set, units, run_usd, task_usd)


# --- executors ----------------------------------------------------------------------------


class Executor(Protocol):
    def submit(self, unit: Unit) -> Any: ...

    def wait_any(self, handles: list[Any]) -> list[tuple[Any, dict[str, Any] | BaseException]]:
        """Block until at least one handle is done; return (handle, result) of each done
        (the exception instead of a result when the worker itself failed)."""
        ...

    def close(self) -> None: ...


@dataclass(eq=False)
class _Done:
    result: dict[str, Any]


class InlineExecutor:
    """Runs each unit in this process when it is submitted (tests, debugging)."""

    def __init__(self, job: Job) -> None:
        self.job = job

    def submit(self, unit: Unit) -> Any:
        return _Done(run_unit(self.job, unit))

    def wait_any(self, handles: list[Any]) -> list[tuple[Any, dict[str, Any] | BaseException]]:
        return [(h, h.result) for h in handles]

    def close(self) -> None:
        pass


class PoolExecutor:
    """A bounded pool of spawned processes (llama.cpp and forked threads do not mix)."""

    def __init__(self, job: Job, workers: int) -> None:
        self.job = job
        self.pool = cf.ProcessPoolExecutor(
            max_workers=workers, mp_context=multiprocessing.get_context("spawn")
        )

    def submit(self, unit: Unit) -> Any:
        try:
            return self.pool.submit(run_unit, self.job, unit)
        except BrokenProcessPool:
            raise SweepInterrupted(
                "a worker process died (killed, or crashed in native code); every finished "
                "result is saved: run the same command again to resume"
            ) from None

    def wait_any(self, handles: list[Any]) -> list[tuple[Any, dict[str, Any] | BaseException]]:
        done, _ = cf.wait(handles, return_when=cf.FIRST_COMPLETED)
        return [(f, f.exception() or f.result()) for f in done]

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


# --- the sweep ------------------------------------------------------------------------------


@dataclass
class SweepRun:
    """What `run_sweep` did: where, the results (every unit), the ledger and its spend."""

    out: Path
    spec: SweepSpec
    results: list[dict[str, Any]]
    ledger: str
    tenant: str
    spent_usd: Decimal
    ran: int
    resumed: int


Progress = Callable[[dict[str, Any], Decimal], None]


def run_sweep(
    source: str | Path | SweepSpec | dict[str, Any],
    out: str | Path,
    *,
    backend: str = "pool",
    workers: int | None = None,
    ray_address: str | None = None,
    fresh: bool = False,
    on_result: Progress | None = None,
    on_start: Callable[[int, int, Decimal], None] | None = None,
) -> SweepRun:
    """Run (or resume) a sweep into the directory ``out``; writes nothing but the results
    file and the ledger (see `agent_budget.bench.report.write_outputs` for the reports).

    ``backend``: ``pool`` (local processes), ``ray`` (``ray_address`` or a local Ray) or
    ``inline``. ``on_start(total, pending, spent_usd)`` and ``on_result(result, spent_usd)`` feed a
    progress display. Raises `InvalidSweep` before spending anything when the sweep is wrong.
    """
    spec = source if isinstance(source, SweepSpec) else load_sweep(source)
    checked = preflight(spec)
    out_dir = Path(out)
    store = ResultStore(out_dir / RESULTS_FILE)
    try:
        sweep_id = store.claim(spec.name, spec.fingerprint(checked.task_set), fresh=fresh)
        ledger = spec.ledger or str((out_dir / LEDGER_FILE).resolve())
        tenant = f"bench:{spec.name}:{sweep_id}"
        open_ledger(ledger)  # a ledger that cannot be opened fails here, before any run
        job = Job(spec.model_dump(mode="json"), ledger, tenant, _str(spec.global_cap_usd))
        done = store.done_keys()
        pending = [u for u in checked.units if u.key not in done]
        if on_start:
            on_start(len(checked.units), len(pending), _spent(job))
        executor = _executor(backend, job, workers or spec.workers, ray_address)
        try:
            ran = _drive(executor, pending, workers or spec.workers, store, checked, job, on_result)
        finally:
            executor.close()
        by_key = {r["key"]: r for r in store.results()}
        results = [by_key[u.key] for u in checked.units if u.key in by_key]
        spent = _spent(job)
        return SweepRun(
            out_dir, spec, results, ledger, tenant, spent, ran, len(checked.units) - len(pending)
        )
    finally:
        store.close()


def _str(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _executor(backend: str, job: Job, workers: int, ray_address: str | None) -> Executor:
    if backend == "inline":
        return InlineExecutor(job)
    if backend == "pool":
        return PoolExecutor(job, workers)
    if backend == "ray":
        from agent_budget.bench.ray_backend import RayExecutor

        return RayExecutor(job, workers, ray_address)
    raise InvalidSweep(f"backend {backend!r}: use pool, ray or inline")


def _cap_limit(job: Job) -> ScopedLimit | None:
    if job.cap_usd is None:
        return None
    nanos = to_nanos(Decimal(job.cap_usd), up=False)
    return ScopedLimit("tenant", job.tenant, None, usd_nanos=nanos)


def _spent(job: Job) -> Decimal:
    """What the sweep has spent (and holds) in the ledger so far, judge included."""
    ledger = open_ledger(job.ledger)
    limit = _cap_limit(job) or ScopedLimit("tenant", job.tenant, None, usd_nanos=0)
    return from_nanos(ledger.used(limit).usd_nanos)


def _drive(
    executor: Executor,
    pending: list[Unit],
    workers: int,
    store: ResultStore,
    checked: Checked,
    job: Job,
    on_result: Progress | None,
) -> int:
    queue: Iterator[Unit] = iter(pending)
    in_flight: dict[Any, Unit] = {}
    ran = 0
    limit = _cap_limit(job)
    ledger = open_ledger(job.ledger)

    def record(result: dict[str, Any]) -> None:
        store.write(result)
        if on_result:
            on_result(result, _spent(job))

    def fill() -> None:
        while len(in_flight) < workers:
            unit = next(queue, None)
            if unit is None:
                return
            worst = checked.worst(unit)
            if limit is not None and limit.usd_nanos is not None and worst is not None:
                left = limit.usd_nanos - ledger.used(limit).usd_nanos
                if left < to_nanos(worst):
                    record(_refused(unit, worst, from_nanos(max(left, 0))))
                    continue
            in_flight[executor.submit(unit)] = unit

    fill()
    while in_flight:
        for handle, result in executor.wait_any(list(in_flight)):
            unit = in_flight.pop(handle)
            if isinstance(result, BaseException):
                result = _failed(unit, result)
            record(result)
            ran += 1
        fill()
    return ran


def _refused(unit: Unit, worst: Decimal, left: Decimal) -> dict[str, Any]:
    detail = f"not started: the global cap has ${left} left, the run may spend ${worst}"
    return _empty(unit, "refused", detail=detail)


def _failed(unit: Unit, exc: BaseException) -> dict[str, Any]:
    """A unit whose worker process died: an error, with what the ledger knows of its spend
    left to the ledger (the worker could not report it)."""
    return _empty(unit, "error", error=f"worker failed: {type(exc).__name__}: {exc}")


def _empty(
    unit: Unit, status: str, *, detail: str = "", error: str | None = None
) -> dict[str, Any]:
    return {
        "key": unit.key, "run_id": unit.cell, "config": unit.config, "budget": unit.budget,
        "seed": unit.seed, "task": unit.task, "status": status, "passed": False, "score": 0.0,
        "detail": detail, "answer": "", "error": error, "usd": "0", "judge_usd": "0",
        "input_tokens": 0, "output_tokens": 0, "model_calls": 0, "tool_calls": {},
        "tokens_by_model": {}, "overruns": [], "stopped": None, "seconds": 0.0, "worker": None,
    }  # fmt: skip
