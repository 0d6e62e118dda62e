"""One run unit: build the agent, run it on one task under its own budget, score the answer.

Runs in a pool process or a Ray worker (everything it needs travels in a picklable `Job`) or
inline. Models, task sets and factories are built once per process and reused. Every charge
goes through the public API: a `BudgetTracker` per unit, the graph wrapped by `with_budget`,
the sweep's ledger bound to the tracker with the global cap as a tenant-scoped limit.
"""

from __future__ import annotations

import inspect
import os
import socket
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from agent_budget.bench.config import (
    AgentConfig,
    BudgetPoint,
    SweepSpec,
    Unit,
    budget_for,
    budget_points,
    import_object,
)
from agent_budget.bench.tasks import Task, TaskSet, load_task_set
from agent_budget.budget import Budget
from agent_budget.errors import BudgetExceeded
from agent_budget.ledger import ChargeContext, LedgerBudget, ScopedLimit, open_ledger, to_nanos
from agent_budget.spend import Spend
from agent_budget.tracker import BudgetTracker, Charge

ANSWER_CHARS = 300
RECURSION_LIMIT = 40
DEFAULT_JUDGE_USD = Decimal("0.01")


@dataclass(frozen=True)
class Job:
    """What a worker needs to run units of a sweep (small and picklable)."""

    spec: dict[str, Any]
    ledger: str
    tenant: str
    cap_usd: str | None


class CapBinding(LedgerBudget):
    """The unit's ledger binding; notes when the sweep's global cap refused a call."""

    capped = False

    def reserve(self, charge: Charge) -> int:
        try:
            return super().reserve(charge)
        except BudgetExceeded:
            self.capped = True
            raise


@dataclass
class _Prepared:
    spec: SweepSpec
    task_set: TaskSet
    configs: dict[str, AgentConfig]
    points: dict[str, BudgetPoint]
    factories: dict[str, Any] = field(default_factory=dict)
    models: dict[str, Any] = field(default_factory=dict)


_PREPARED: dict[str, _Prepared] = {}


def prepared(job: Job) -> _Prepared:
    key = repr(sorted(job.spec.items()))
    found = _PREPARED.get(key)
    if found is None:
        spec = SweepSpec.model_validate(job.spec)
        found = _PREPARED[key] = _Prepared(
            spec,
            load_task_set(spec.tasks),
            {c.name: c for c in spec.configs},
            {p.label: p for p in budget_points(spec)},
        )
    return found


def _is_local(model: str) -> bool:
    from agent_budget.models.catalog import is_local

    return bool(is_local(model))


def make_model(cfg: AgentConfig) -> Any:
    from agent_budget.models import resolve

    # An on-device model's price goes in the run's budget (`price_overrides`), not in the
    # process-wide price registry, where it would leak into other configurations and runs.
    price = None if _is_local(cfg.model) else cfg.price
    return resolve(cfg.model, price=price, api_base=cfg.api_base, **cfg.model_options)


def price_overrides(model: str, price: Any) -> dict[str, Any]:
    """``model_prices`` for a run's budget that charge ``model`` at ``price``."""
    if price is None or not _is_local(model):
        return {}
    from agent_budget.models import canonical_name

    return {canonical_name(model): {"input": str(price[0]), "output": str(price[1])}}


def _model(prep: _Prepared, cfg: AgentConfig, seed: int) -> Any:
    base = prep.models.get(cfg.name)
    if base is None:
        base = prep.models[cfg.name] = make_model(cfg)
    if "seed" in type(base).model_fields:
        return base.model_copy(update={"seed": seed})
    return base


def call_factory(factory: Any, options: dict[str, Any], **available: Any) -> Any:
    """Call ``factory`` with the options plus whichever of ``available`` it accepts."""
    params = inspect.signature(factory).parameters
    takes_all = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    chosen = {k: v for k, v in available.items() if takes_all or k in params}
    return factory(**chosen, **options)


def _bind(tracker: BudgetTracker, job: Job, ctx: ChargeContext) -> CapBinding:
    limits = []
    if job.cap_usd is not None:
        nanos = to_nanos(Decimal(job.cap_usd), up=False)
        limits.append(ScopedLimit("tenant", job.tenant, None, usd_nanos=nanos))
    binding = CapBinding(open_ledger(job.ledger), ctx, limits)
    # with_budget's attach_ledger finds this binding and keeps it.
    tracker.shared.append(binding)
    tracker.add_listener(binding.on_charge)
    return binding


def run_budget(cfg: AgentConfig, point: BudgetPoint, task: Task | None = None) -> dict[str, Any]:
    """The fields of one run's Budget (the task's own fields merged in), the configuration's
    model price included."""
    data = budget_for(cfg, point, task)
    own = price_overrides(cfg.model, cfg.price)
    if own:
        data["model_prices"] = {**own, **(data.get("model_prices") or {})}
    return data


def overruns(budget: Budget, spent: Spend) -> list[str]:
    """Every limit of ``budget`` that ``spent`` went past (there must never be one)."""
    out = []
    checks: list[tuple[str, Any, Any]] = [
        ("usd", budget.usd, spent.usd),
        ("tokens.input", budget.tokens.input, spent.input_tokens),
        ("tokens.output", budget.tokens.output, spent.output_tokens),
        ("tokens.total", budget.tokens.total, spent.total_tokens),
        ("model_calls", budget.model_calls, spent.model_calls),
        ("total_tool_calls", budget.total_tool_calls, spent.total_tool_calls),
    ]
    checks += [
        (f"tool_calls.{t}", n, spent.tool_calls.get(t, 0)) for t, n in budget.tool_calls.items()
    ]
    for name, limit, used in checks:
        if limit is not None and used > limit:
            out.append(f"{name}: {used} > {limit}")
    return out


def run_unit(job: Job, unit: Unit) -> dict[str, Any]:
    """Run one unit; returns its result row (plain JSON-able data)."""
    from langchain_core.runnables import RunnableConfig

    from agent_budget.integrations.langgraph import BudgetedGraph, with_budget

    started = time.monotonic()
    prep = prepared(job)
    cfg = prep.configs[unit.config]
    point = prep.points[unit.budget]
    task = prep.task_set.task(unit.task)
    budget = Budget.from_dict(
        run_budget(cfg, point, task), source=f"{cfg.name} budget {point.label} task {task.id}"
    )
    tracker = BudgetTracker(budget)
    ctx = ChargeContext(run_id=unit.cell, thread_id=unit.task, tenant_id=job.tenant)
    binding = _bind(tracker, job, ctx)
    by_model: dict[str, dict[str, int]] = {}

    def count(_t: BudgetTracker, charge: Charge, outcome: str) -> None:
        if outcome != "refused" and charge.kind == "model":
            row = by_model.setdefault(charge.name, {"input": 0, "output": 0, "calls": 0})
            row["input"] += charge.input_tokens
            row["output"] += charge.output_tokens
            row["calls"] += 1

    tracker.add_listener(count)
    status, error, answer = "ok", None, ""
    try:
        factory = prep.factories.get(cfg.name)
        if factory is None:
            factory = prep.factories[cfg.name] = import_object(cfg.agent, f"{cfg.name}.agent")
        model = _model(prep, cfg, unit.seed)
        graph = call_factory(factory, cfg.options, model=model, task=task, seed=unit.seed)
        if not isinstance(graph, BudgetedGraph):
            import warnings

            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*has no ToolNode")
                graph = with_budget(graph, budget, final_model=model)
        config = RunnableConfig(
            configurable={"budget_tracker": tracker, "thread_id": f"{unit.cell}/{unit.task}"},
            recursion_limit=RECURSION_LIMIT,
        )
        state = graph.invoke(prep.task_set.graph_input(task), config)
        answer = prep.task_set.answer(state)
    except BudgetExceeded as exc:  # on_exhausted="raise": the run ends without an answer
        status, error = "exhausted", str(exc).splitlines()[0]
    except Exception as exc:
        status, error = (
            "error",
            f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
        )
    if binding.capped:
        status = "capped"
    score_passed, score_value, detail, judge_usd = False, 0.0, "", Decimal(0)
    if status in ("ok", "capped"):
        judge = _judge(prep, job, unit) if prep.task_set.judge else None
        try:
            score = prep.task_set.score(task, answer, judge)
            score_passed, score_value, detail = score.passed, score.value, score.detail
        except Exception as exc:
            status, error = "error", f"scoring failed: {type(exc).__name__}: {exc}"
        if judge is not None:
            judge_usd = judge.usd
            if getattr(judge.tracker.shared[0], "capped", False):
                status = "capped"
    spent = tracker.spent
    return {
        "key": unit.key,
        "run_id": unit.cell,
        "config": unit.config,
        "budget": unit.budget,
        "seed": unit.seed,
        "task": unit.task,
        "status": status,
        "passed": bool(score_passed) and status == "ok",
        "score": score_value,
        "detail": detail,
        "answer": answer[:ANSWER_CHARS],
        "error": error,
        "usd": str(spent.usd),
        "judge_usd": str(judge_usd),
        "input_tokens": spent.input_tokens,
        "output_tokens": spent.output_tokens,
        "model_calls": spent.model_calls,
        "tool_calls": dict(sorted(spent.tool_calls.items())),
        "tokens_by_model": dict(sorted(by_model.items())),
        "overruns": overruns(budget, spent),
        "stopped": tracker.exhausted(),
        "seconds": round(time.monotonic() - started, 3),
        "worker": f"{socket.gethostname()}:{os.getpid()}",
    }


def _judge(prep: _Prepared, job: Job, unit: Unit) -> Any:
    from agent_budget.bench.judge import ModelJudge
    from agent_budget.models import resolve

    spec = dict(prep.task_set.judge or {})
    name = str(spec["model"])
    model = prep.models.get("__judge__")
    if model is None:
        price = None if _is_local(name) else spec.get("price")
        model = prep.models["__judge__"] = resolve(
            name, price=price, api_base=spec.get("api_base"), **spec.get("model_options", {}),
        )  # fmt: skip
    usd = Decimal(str(spec.get("budget_usd", DEFAULT_JUDGE_USD)))
    prices = price_overrides(name, spec.get("price"))
    tracker = BudgetTracker(Budget(usd=usd, on_exhausted="raise", model_prices=prices))
    _bind(tracker, job, ChargeContext(f"{unit.cell}/judge", unit.task, tenant_id=job.tenant))
    return ModelJudge(model, tracker)
