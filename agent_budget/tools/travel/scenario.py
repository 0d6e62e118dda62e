"""Travel scenarios: a request, a priced tool set and scheduled events, in a file that replays
a run exactly, exporting to the planning format (PLANNING_FORMAT.md).

A scenario file (YAML or JSON)::

    name: kyoto-ban
    request: "3 days in a historic city in May, mid-range hotel, vegetarian food, $40 of tool spend"
    prefs: {location: {category: historic, tier: mid-range}, dining: {diet: vegetarian, ...}, ...}
    month: May
    days: 3
    budget: 40
    tools:
      - {name: decide_location_preference, subtask: location, steps: [decide], cost: 0.8}
      - {name: location_search_to_select, subtask: location, steps: [search, select], cost: 3.1}
    extras:   # optional refinements (not needed for the goal): see `domain.REVIEW`
      - {name: dining_read_reviews, subtask: dining, steps: [read_reviews], cost: 0.4}
    events:
      - {after_step: 3, type: ban_tool, tool: search_dining}
      - {after_step: 2, type: cost_change, tool: select_accommodation, cost: 4.5}
      - {after_step: 4, type: preference_change, subtask: dining, set: {diet: vegan}}
      - {after_step: 5, type: tools_change, remove: [search_dining],
         add: [{name: partner_dining, subtask: dining, steps: [search, select], cost: 1.2}]}

A tool's inputs and output follow from its sub-task and the chain ``steps`` it covers
(`ToolSpec.signature`), so a file cannot describe a tool that does not fit the chain.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from agent_budget.planners.problem import Money, Problem
from agent_budget.tools.travel.domain import (
    ASSEMBLE,
    BY_NAME,
    GOAL,
    MONTHS,
    REVIEW,
    SUBTASKS,
    TIME_INFO,
    SubTask,
)


class InvalidScenario(ValueError):
    """A scenario file or request that cannot be run; the message says what and where."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def chain_steps(sub: SubTask, depth: int) -> list[str]:
    return ["decide", "search", *(verb for verb, _ in sub.refinements[:depth]), "select"]


class ToolSpec(_Strict):
    """A priced travel tool: the contiguous ``steps`` of one sub-task's chain it performs
    (one step: an atomic tool; several: a composite). ``assemble_trip`` has subtask ``trip``."""

    name: str = Field(min_length=1)
    subtask: str
    steps: tuple[str, ...] = Field(min_length=1)
    cost: Money

    def signature(self, depth: int, subtasks: tuple[str, ...]) -> tuple[tuple[str, ...], str]:
        """(input types, output type) of this tool in a trip of ``depth`` refinements."""
        if self.subtask == "trip":
            return tuple(BY_NAME[s].final for s in subtasks), GOAL
        sub = BY_NAME[self.subtask]
        if self.steps == (REVIEW,):  # an optional refinement of the sub-task's result
            return (sub.final,), sub.final
        chain = chain_steps(sub, depth)
        outputs = sub.chain_types(depth)
        first = chain.index(self.steps[0])
        produced: set[str] = set()
        inputs: list[str] = []
        order = [s for s in subtasks if s in BY_NAME]
        before = order[: order.index(sub.name)] if sub.name in order else []
        after_type = BY_NAME[before[-1]].final if before else None
        for i in range(first, first + len(self.steps)):
            for needed in _step_inputs(sub, chain, outputs, i, after_type):
                if needed not in produced and needed not in inputs:
                    inputs.append(needed)
            produced.add(outputs[i])
        return tuple(inputs), outputs[first + len(self.steps) - 1]


def _step_inputs(
    sub: SubTask, chain: list[str], outputs: list[str], i: int, after: str | None
) -> list[str]:
    # A sub-task starts from what the one before it settled (where to stay depends on how
    # you arrive, where to eat on where you stay): the trip is planned in order, so the
    # planning problem is one long chain rather than a product of six.
    step = chain[i]
    if step == "decide":
        return [*sub.start_types, *([after] if after else [])]
    if step == "search":
        extra = ["TravelLocation"] if sub.needs_location else []
        if after and after not in extra:
            extra.append(after)
        return [sub.preference, TIME_INFO, *extra]
    if step == "select":
        return [outputs[i - 1], sub.preference]
    return [outputs[i - 1]]


class BanEvent(_Strict):
    after_step: int = Field(ge=0)
    type: Literal["ban_tool"]
    tool: str


class CostEvent(_Strict):
    after_step: int = Field(ge=0)
    type: Literal["cost_change"]
    tool: str
    cost: Money


class PreferenceEvent(_Strict):
    """The user changes a preference: what the sub-task derived from it is no longer held."""

    after_step: int = Field(ge=0)
    type: Literal["preference_change"]
    subtask: str
    set: dict[str, str] = Field(min_length=1)


class ToolsEvent(_Strict):
    after_step: int = Field(ge=0)
    type: Literal["tools_change"]
    remove: tuple[str, ...] = ()
    add: tuple[ToolSpec, ...] = ()


ScenarioEvent = Annotated[
    BanEvent | CostEvent | PreferenceEvent | ToolsEvent, Field(discriminator="type")
]
EVENT_KINDS = ("ban_tool", "cost_change", "preference_change", "tools_change")


class Scenario(_Strict):
    """A trip request with its tools, budget and events: replays a run exactly."""

    name: str = "trip"
    request: str = Field(min_length=1)
    prefs: dict[str, dict[str, str]]
    month: str = "May"
    days: int = Field(default=3, ge=1, le=14)
    budget: Money | None = None
    depth: int = Field(default=1, ge=0, le=4)
    tools: tuple[ToolSpec, ...] = Field(min_length=1)
    events: tuple[ScenarioEvent, ...] = ()
    extras: tuple[ToolSpec, ...] = ()
    """Optional refinements (steps ``[read_reviews]``): never part of a plan; the agent calls
    them when the budget regime allows."""
    seed: int | None = None

    @property
    def subtasks(self) -> tuple[str, ...]:
        return tuple(s.name for s in SUBTASKS if s.name in self.prefs)

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        if self.month not in MONTHS:
            raise ValueError(f"month {self.month!r} is not one of {', '.join(MONTHS)}")
        if "location" not in self.prefs:
            raise ValueError("prefs: a trip needs a 'location' sub-task")
        for sub_name, dims in self.prefs.items():
            sub = BY_NAME.get(sub_name)
            if sub is None:
                raise ValueError(f"prefs.{sub_name}: unknown sub-task; use {', '.join(BY_NAME)}")
            for dim, value in dims.items():
                _check_dim(sub, dim, value, f"prefs.{sub_name}")
            missing = set(sub.dims) - set(dims)
            if missing:
                raise ValueError(f"prefs.{sub_name}: missing {', '.join(sorted(missing))}")
        for tool in self.all_tools():
            self._check_tool(tool)
        for tool in self.extras:
            if tool.steps != (REVIEW,) or tool.subtask not in self.prefs:
                raise ValueError(
                    f"extras: tool {tool.name!r} must have steps [{REVIEW}] and a sub-task "
                    "of the trip"
                )
        names = [t.name for t in (*self.tools, *self.extras)]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"tools: duplicate names {', '.join(dupes)}")
        for i, event in enumerate(self.events):
            if isinstance(event, PreferenceEvent):
                sub = BY_NAME.get(event.subtask)
                if sub is None or event.subtask not in self.prefs:
                    raise ValueError(f"events.{i}: sub-task {event.subtask!r} is not in prefs")
                for dim, value in event.set.items():
                    _check_dim(sub, dim, value, f"events.{i}.set")
        return self

    def _check_tool(self, tool: ToolSpec) -> None:
        if tool.subtask == "trip":
            if tool.steps != ("assemble",):
                raise ValueError(f"tool {tool.name!r}: the trip tool's steps must be [assemble]")
            return
        sub = BY_NAME.get(tool.subtask)
        if sub is None or tool.subtask not in self.prefs:
            raise ValueError(f"tool {tool.name!r}: sub-task {tool.subtask!r} is not in the trip")
        chain = chain_steps(sub, self.depth)
        if tool.steps[0] not in chain:
            raise ValueError(
                f"tool {tool.name!r}: step {tool.steps[0]!r} is not in the {sub.name} chain "
                f"({' -> '.join(chain)})"
            )
        first = chain.index(tool.steps[0])
        if list(tool.steps) != chain[first : first + len(tool.steps)]:
            raise ValueError(
                f"tool {tool.name!r}: steps {list(tool.steps)} are not a contiguous part of "
                f"the {sub.name} chain ({' -> '.join(chain)})"
            )

    def all_tools(self) -> list[ToolSpec]:
        """Every tool that exists at some point (tools added by events included)."""
        out = list(self.tools)
        for event in self.events:
            if isinstance(event, ToolsEvent):
                out.extend(event.add)
        return out

    def signature(self, tool: ToolSpec) -> tuple[tuple[str, ...], str]:
        return tool.signature(self.depth, self.subtasks)

    def start_types(self) -> list[str]:
        out = [TIME_INFO]
        for name in self.subtasks:
            out.extend(BY_NAME[name].start_types)
        return out

    def start_values(self) -> dict[str, str]:
        """Start type -> the user's value (what the agent holds before the first call)."""
        values = {TIME_INFO: f"{self.month}, {self.days} days"}
        for name in self.subtasks:
            sub = BY_NAME[name]
            for dim in sub.dims:
                values[sub.dim_type(dim)] = self.prefs[name][dim]
        return values

    def derived_types(self, subtask: str) -> list[str]:
        """What a sub-task's chain produces: invalid once the user changes its preference
        (the trip's location invalidates everything searched in that city too)."""
        sub = BY_NAME[subtask]
        types = sub.chain_types(self.depth)
        if subtask == "location":
            for other in self.subtasks:
                if other != "location":
                    types += BY_NAME[other].chain_types(self.depth)[1:]
        return types

    def to_problem(self) -> Problem:
        """The scenario in the planning format: types, tools, budget and events."""
        events: list[dict[str, Any]] = []
        for e in self.events:
            if isinstance(e, BanEvent | CostEvent):
                events.append(e.model_dump())
            elif isinstance(e, PreferenceEvent):
                events.append(
                    {
                        "after_step": e.after_step,
                        "type": "invalidate",
                        "types": self.derived_types(e.subtask),
                    }
                )
            else:
                events.append(
                    {
                        "after_step": e.after_step,
                        "type": "tools_change",
                        "remove": list(e.remove),
                        "add": [self._tool_dict(t) for t in e.add],
                    }
                )
        data: dict[str, Any] = {
            "start": self.start_types(),
            "goal": GOAL,
            "tools": [self._tool_dict(t) for t in self.tools],
            "events": events,
        }
        if self.budget is not None:
            data["budget"] = self.budget
        return Problem.from_dict(data, source=f"scenario {self.name}")

    def _tool_dict(self, tool: ToolSpec) -> dict[str, Any]:
        inputs, output = self.signature(tool)
        return {"name": tool.name, "inputs": list(inputs), "output": output, "cost": tool.cost}

    # --- files ---------------------------------------------------------------------------

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json", exclude_none=True), indent=2)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        if path.suffix in (".yaml", ".yml"):
            import yaml

            data = json.loads(self.to_json())
            path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        else:
            path.write_text(self.to_json() + "\n", encoding="utf-8")
        return path

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "scenario") -> Scenario:
        if not isinstance(data, Mapping):
            raise InvalidScenario(
                f"{source}: expected a mapping with request, prefs and tools, "
                f"got {type(data).__name__}"
            )
        try:
            return cls.model_validate(dict(data))
        except ValidationError as exc:
            lines = []
            for err in exc.errors(include_url=False):
                loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
                msg = err["msg"].removeprefix("Value error, ")
                if err["type"] == "extra_forbidden":
                    msg = "unknown field"
                lines.append(f"  {loc}: {msg}")
            raise InvalidScenario(
                f"{source} is not a valid scenario:\n" + "\n".join(lines)
            ) from None

    @classmethod
    def from_file(cls, path: str | Path) -> Scenario:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise InvalidScenario(f"{path}: no such file") from None
        except (IsADirectoryError, UnicodeDecodeError, OSError) as exc:
            raise InvalidScenario(f"{path}: cannot read it as text ({exc})") from None
        try:
            if path.suffix == ".json":
                data = json.loads(text)
            else:
                import yaml

                data = yaml.safe_load(text)
        except Exception as exc:  # json and yaml errors both mean "not parseable"
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise InvalidScenario(
                f"{path}: not valid {path.suffix[1:] or 'YAML'}: {first}"
            ) from None
        return cls.from_dict(data, source=str(path))


def _check_dim(sub: SubTask, dim: str, value: str, where: str) -> None:
    allowed = sub.dims.get(dim)
    if allowed is None:
        raise ValueError(
            f"{where}: {sub.name} has no preference {dim!r} (has {', '.join(sub.dims)})"
        )
    if value not in allowed:
        raise ValueError(f"{where}.{dim}: {value!r} is not one of {', '.join(allowed)}")


def assemble_tool() -> ToolSpec:
    return ToolSpec(name=ASSEMBLE, subtask="trip", steps=("assemble",), cost=Decimal(0))


def tool_name(sub: SubTask, steps: tuple[str, ...] | list[str]) -> str:
    """``decide_dining_preference``, ``search_dining``, ``dining_filter_diet``,
    ``select_dining``; a composite: ``dining_search_to_select``."""
    if len(steps) == 1:
        step = steps[0]
        if step == "decide":
            return f"decide_{sub.name}_preference"
        if step in ("search", "select"):
            return f"{step}_{sub.name}"
        return f"{sub.name}_{step}"
    return f"{sub.name}_{steps[0]}_to_{steps[-1]}"
