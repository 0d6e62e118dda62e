"""A sweep's configuration (YAML), checked whole before anything is spent.

```yaml
name: qa-sweep
tasks: {set: questions, limit: 4}        # a registered set, a .jsonl path, or {set: ..., ...}
budgets: [0.0002, 0.0005, 0.002]         # per task: USD, or a mapping of Budget fields
seeds: [0]
models: [local:smollm2-135m, openai/gpt-4.1-mini]   # optional: cross every config with these
global_cap_usd: 0.05                     # what the whole sweep may spend (optional)
ledger: postgresql://.../db              # default: <out>/ledger.db
configs:
  - name: direct
    agent: agent_budget.bench.agents:direct_answer   # "module:function" returning a graph
    model: local:smollm2-135m
    price: [0.15, 0.60]                  # USD per million tokens in / out (optional)
    model_options: {max_tokens: 32}
    options: {}                          # keyword arguments for the agent factory
    budget: {reserve_usd: 0.00005}       # fields every budget of this config has
    policies: {on_exhausted: finalize, warn_at: [0.8]}
```

Each (configuration, budget, seed, task) is one *run unit*: one agent invocation with its own
`Budget`. A (configuration, budget, seed) cell is one run id in the ledger.
"""

from __future__ import annotations

import hashlib
import importlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from agent_budget.bench.errors import InvalidSweep
from agent_budget.bench.tasks import Task, TaskSet

POLICY_FIELDS = frozenset(
    {"on_exhausted", "warn_at", "downgrade", "guards", "reserve_usd", "strict_prices"}
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AgentConfig(_Strict):
    """One agent configuration of a sweep."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.:/+-]+$")
    agent: str
    """``module:function`` (or ``module.function``) returning a LangGraph graph; called per
    task with whichever of ``model``, ``task``, ``seed`` it accepts, plus ``options``."""
    model: str = "local:smollm2-135m"
    price: tuple[Decimal, Decimal] | None = None
    """USD per million input / output tokens, to charge a model as if it cost that."""
    api_base: str | None = None
    model_options: dict[str, Any] = Field(default_factory=dict)
    options: dict[str, Any] = Field(default_factory=dict)
    budget: dict[str, Any] = Field(default_factory=dict)
    policies: dict[str, Any] = Field(default_factory=dict)
    task_budget: list[str] | None = None
    """Which of a task's own budget fields (`Task.budget`) this configuration takes: all of
    them (None, the default), or only those listed (``[prices]``: a baseline that is charged
    each task's prices but held to no USD limit; ``[]``: none)."""

    @field_validator("policies")
    @classmethod
    def _policies(cls, value: dict[str, Any]) -> dict[str, Any]:
        unknown = set(value) - POLICY_FIELDS
        if unknown:
            raise ValueError(
                f"unknown policies {sorted(unknown)}; use {', '.join(sorted(POLICY_FIELDS))}"
            )
        return value


class SweepSpec(_Strict):
    name: str = Field(default="sweep", pattern=r"^[A-Za-z0-9_.-]+$")
    tasks: str | dict[str, Any]
    configs: list[AgentConfig] = Field(min_length=1)
    models: list[str] | None = None
    """Cross every configuration with these models: ``direct`` becomes ``direct+MODEL`` for
    each (the configuration's own ``model`` is then ignored)."""
    budgets: list[Decimal | dict[str, Any]] = Field(min_length=1)
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    global_cap_usd: Decimal | None = Field(default=None, ge=0)
    ledger: str | None = None
    workers: int = Field(default=2, ge=1)
    order: Literal["config", "task"] = "config"
    """Run order: ``config`` (each configuration over every task, then the next) or ``task``
    (every configuration on a task before the next task: a sweep stopped early has all
    configurations on the same tasks, and a local model's saved prompt prefix serves the next
    configuration on the same task). Not part of what resuming must match."""

    @model_validator(mode="after")
    def _cross_models(self) -> SweepSpec:
        if not self.models:
            return self
        if len(set(self.models)) != len(self.models):
            raise ValueError(f"models repeat: {self.models}")
        crossed = [
            c.model_copy(update={"name": f"{c.name}+{m}", "model": m})
            for c in self.configs
            for m in self.models
        ]
        # Frozen model: set the crossed list once, here, and forget the models (a dump of
        # this spec, read back by a worker, must not cross them again).
        object.__setattr__(self, "configs", crossed)
        object.__setattr__(self, "models", None)
        return self

    @field_validator("configs")
    @classmethod
    def _unique(cls, value: list[AgentConfig]) -> list[AgentConfig]:
        names = [c.name for c in value]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"configuration names repeat: {', '.join(dupes)}")
        return value

    def fingerprint(self, task_set: TaskSet) -> str:
        """What resuming must match: configurations, budgets, seeds and the tasks (not the
        cap, the ledger or the worker count, which a resumed sweep may change)."""
        data = self.model_dump(mode="json", include={"configs", "budgets", "seeds", "name"})
        text = json.dumps(data, sort_keys=True) + task_set.fingerprint()
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class BudgetPoint:
    label: str
    overrides: dict[str, Any]
    usd: Decimal | None


@dataclass(frozen=True)
class Unit:
    """One agent invocation of the sweep."""

    config: str
    budget: str
    seed: int
    task: str

    @property
    def key(self) -> str:
        return f"{self.config}|{self.budget}|{self.seed}|{self.task}"

    @property
    def cell(self) -> str:
        """The ledger run id: one per (configuration, budget, seed)."""
        return f"{self.config}@{self.budget}#s{self.seed}"


def budget_points(spec: SweepSpec) -> list[BudgetPoint]:
    points = []
    for i, raw in enumerate(spec.budgets):
        if isinstance(raw, Mapping):
            data = dict(raw)
            label = str(data.pop("label", "") or "")
            usd = data.get("usd")
            usd_dec = None if usd is None else Decimal(str(usd))
            label = label or (f"usd={usd_dec.normalize():f}" if usd_dec is not None else f"b{i}")
            points.append(BudgetPoint(label, data, usd_dec))
        else:
            usd_dec = Decimal(str(raw))
            points.append(BudgetPoint(f"usd={usd_dec.normalize():f}", {"usd": usd_dec}, usd_dec))
    labels = [p.label for p in points]
    dupes = sorted({x for x in labels if labels.count(x) > 1})
    if dupes:
        raise InvalidSweep(f"budgets: the same budget appears twice: {', '.join(dupes)}")
    return points


def budget_for(config: AgentConfig, point: BudgetPoint, task: Task | None = None) -> dict[str, Any]:
    """The Budget fields of one run: the config's base, its policies, the swept point, then
    the task's own fields (those the config takes, see `AgentConfig.task_budget`). A mapping
    field (``prices``, ``tool_calls``, ``model_prices``...) is merged key by key, so a task's
    prices add to the point's; any other field is replaced by the later one."""
    data = {**config.budget, **config.policies, **point.overrides}
    if task is None or not task.budget:
        return data
    wanted = config.task_budget
    own = {k: v for k, v in task.budget.items() if wanted is None or k in wanted}
    return merge_budget(data, own)


def merge_budget(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``over`` on top: mappings merged one level deep, other values replaced."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = {**out[key], **value}
        else:
            out[key] = value
    return out


def import_object(path: str, what: str) -> Any:
    """``module:attr`` or ``module.attr``; an error naming ``what`` when it cannot be had."""
    module_name, sep, attr = path.partition(":")
    if not sep:
        module_name, _, attr = path.rpartition(".")
    if not module_name or not attr:
        raise InvalidSweep(f"{what}: {path!r} is not a 'module:function' path")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise InvalidSweep(f"{what}: cannot import module {module_name!r}: {exc}") from None
    except Exception as exc:  # the module itself failed while importing
        raise InvalidSweep(
            f"{what}: importing {module_name!r} failed: {type(exc).__name__}: {exc}"
        ) from None
    try:
        obj = getattr(module, attr)
    except AttributeError:
        raise InvalidSweep(f"{what}: module {module_name!r} has no {attr!r}") from None
    if not callable(obj):
        raise InvalidSweep(f"{what}: {path!r} is not callable")
    return obj


def load_sweep(source: str | Path | Mapping[str, Any]) -> SweepSpec:
    """A `SweepSpec` from a YAML / JSON file or a mapping; errors name the field."""
    where = "sweep"
    if isinstance(source, Mapping):
        data: Any = dict(source)
    else:
        path = Path(source)
        where = str(path)
        if not path.is_file():
            raise InvalidSweep(f"{path}: no such sweep file")
        text = path.read_text(encoding="utf-8")
        try:
            if path.suffix == ".json":
                data = json.loads(text)
            else:
                import yaml

                data = yaml.safe_load(text)
        except Exception as exc:  # yaml and json errors: both mean "not parseable"
            raise InvalidSweep(f"{path}: cannot parse: {exc}") from None
        if isinstance(data, dict) and isinstance(data.get("tasks"), str):
            task_path = data["tasks"]
            if task_path.endswith(".jsonl") and not Path(task_path).is_absolute():
                data["tasks"] = str((path.parent / task_path).resolve())
        if isinstance(data, dict) and isinstance(data.get("tasks"), dict):
            tasks = dict(data["tasks"])
            if isinstance(tasks.get("path"), str) and not Path(tasks["path"]).is_absolute():
                tasks["path"] = str((path.parent / tasks["path"]).resolve())
            data["tasks"] = tasks
    if not isinstance(data, dict):
        raise InvalidSweep(f"{where}: expected a mapping at the top level")
    try:
        return SweepSpec.model_validate(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = "unknown setting"
            lines.append(f"{where}: {loc}: {msg}")
        raise InvalidSweep("invalid sweep:\n  " + "\n  ".join(lines)) from None
