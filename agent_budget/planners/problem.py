"""The planning problem format (PLANNING_FORMAT.md v1) as pydantic models, with loaders.

Money is `Decimal` all the way: JSON numbers are parsed from their text (never through a
float), so `0.1 + 0.2` sums to exactly `0.3` and a plan that fits its budget stays feasible.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from agent_budget.planners.errors import InvalidProblem


def _to_decimal(value: Any) -> Any:
    """Exact money: floats go through their shortest repr, so 0.1 stays 0.1."""
    if isinstance(value, bool):
        raise ValueError("must be a number, not a boolean")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("must be a finite number")
        return Decimal(repr(value))
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError("must be a finite number")
        return value
    if isinstance(value, str):
        try:
            parsed = Decimal(value.strip())
        except InvalidOperation:
            raise ValueError(f"{value!r} is not a number") from None
        if not parsed.is_finite():
            raise ValueError("must be a finite number")
        return parsed
    raise ValueError(f"must be a number, got {type(value).__name__}")


Money = Annotated[Decimal, BeforeValidator(_to_decimal), Field(ge=0)]
TypeName = Annotated[str, Field(min_length=1)]


class Tool(BaseModel):
    """A priced tool: turns the types in `inputs` into one new `output` type."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: TypeName
    inputs: tuple[TypeName, ...] = ()
    output: TypeName
    cost: Money
    failure_rate: float = Field(default=0.0, ge=0.0, lt=1.0)
    """Chance that a call is paid for but produces nothing (1.0 would never succeed)."""

    @field_validator("failure_rate", mode="before")
    @classmethod
    def _rate_is_number(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("must be a number, not a boolean")
        return float(value) if isinstance(value, Decimal) else value


def _normalize_tools(value: Any) -> Any:
    """Accept both layouts: a list of tools, or an object keyed by name with
    `input_types` / `output_type` / `cost` (the layout some tool-cost benchmarks use)."""
    if not isinstance(value, Mapping):
        return value
    tools = []
    for name, spec in value.items():
        if not isinstance(spec, Mapping):
            raise ValueError(f"tool {name!r} must be an object, got {type(spec).__name__}")
        spec = dict(spec)
        if "name" in spec and spec["name"] != name:
            raise ValueError(f"tool keyed {name!r} says its name is {spec['name']!r}")
        spec["name"] = name
        for old, new in (("input_types", "inputs"), ("output_type", "output")):
            if old in spec:
                if new in spec:
                    raise ValueError(f"tool {name!r} has both {old!r} and {new!r}")
                spec[new] = spec.pop(old)
        tools.append(spec)
    return tools


ToolList = Annotated[tuple[Tool, ...], BeforeValidator(_normalize_tools)]


def _unique_names(tools: tuple[Tool, ...], where: str) -> None:
    seen: set[str] = set()
    for tool in tools:
        if tool.name in seen:
            raise ValueError(f"duplicate tool name {tool.name!r} in {where}")
        seen.add(tool.name)


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    after_step: int = Field(ge=0)
    """Executed calls before the event happens (0 = before the first call)."""


class BanTool(_Event):
    type: Literal["ban_tool"]
    tool: TypeName


class CostChange(_Event):
    type: Literal["cost_change"]
    tool: TypeName
    cost: Money


class Invalidate(_Event):
    type: Literal["invalidate"]
    types: tuple[TypeName, ...] = ()
    add_start: tuple[TypeName, ...] = ()


class ToolsChange(_Event):
    type: Literal["tools_change"]
    remove: tuple[TypeName, ...] = ()
    add: ToolList = ()

    @model_validator(mode="after")
    def _unique_added(self) -> ToolsChange:
        _unique_names(self.add, "tools_change.add")
        return self


Event = Annotated[BanTool | CostChange | Invalidate | ToolsChange, Field(discriminator="type")]


class Problem(BaseModel):
    """A planning problem: reach `goal` from `start` by calling priced `tools`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: tuple[TypeName, ...] = ()
    goal: TypeName
    budget: Money | None = None
    max_steps: int | None = Field(default=None, ge=0)
    tools: ToolList
    events: tuple[Event, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> Problem:
        _unique_names(self.tools, "tools")
        known = {tool.name for tool in self.tools}
        for event in self.events:
            if isinstance(event, ToolsChange):
                known.update(tool.name for tool in event.add)
        for index, event in enumerate(self.events):
            named: tuple[str, ...] = ()
            if isinstance(event, BanTool | CostChange):
                named = (event.tool,)
            elif isinstance(event, ToolsChange):
                named = event.remove
            for name in named:
                if name not in known:
                    raise ValueError(
                        f"events.{index} ({event.type}) names tool {name!r}, which is not in "
                        "tools nor added by any tools_change event"
                    )
            if self.max_steps is not None and event.after_step > self.max_steps:
                raise ValueError(
                    f"events.{index} ({event.type}) is at after_step {event.after_step}, past "
                    f"max_steps {self.max_steps}: it could never happen"
                )
        return self

    # --- loading -------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "problem") -> Problem:
        if not isinstance(data, Mapping):
            raise InvalidProblem(
                f"{source} is not a planning problem: expected a JSON object with 'goal' and "
                f"'tools', got {type(data).__name__}"
            )
        missing = [key for key in ("goal", "tools") if key not in data]
        if missing:
            raise InvalidProblem(
                f"{source} is not a planning problem: missing {', '.join(map(repr, missing))} "
                "(see PLANNING_FORMAT.md)"
            )
        try:
            return cls.model_validate(dict(data))
        except ValidationError as exc:
            raise InvalidProblem(_describe(exc, source)) from None

    @classmethod
    def from_json(cls, text: str | bytes, *, source: str = "problem") -> Problem:
        try:
            data = json.loads(text, parse_float=Decimal, object_pairs_hook=_no_duplicate_keys)
        except _DuplicateKey as exc:
            raise InvalidProblem(f"{source}: {exc}") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InvalidProblem(f"{source} is not valid JSON: {exc}") from None
        return cls.from_dict(data, source=source)

    @classmethod
    def from_file(cls, path: str | Path) -> Problem:
        path = Path(path)
        try:
            text = path.read_bytes()
        except FileNotFoundError:
            raise InvalidProblem(f"{path}: no such file") from None
        except IsADirectoryError:
            raise InvalidProblem(f"{path} is a directory, not a problem file") from None
        except OSError as exc:
            raise InvalidProblem(f"{path}: cannot read ({exc.strerror})") from None
        return cls.from_json(text, source=str(path))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data in the list-of-tools layout; money as Decimal (exact)."""
        data = self.model_dump(exclude_none=True)
        for tool in [*data["tools"], *(t for e in data["events"] for t in e.get("add", ()))]:
            if tool.get("failure_rate") == 0.0:
                del tool["failure_rate"]
        if not data["events"]:
            del data["events"]
        return data

    def to_json(self, indent: int | None = 2) -> str:
        """JSON text; money as numbers (exact for amounts of up to 15 significant digits)."""
        return json.dumps(self.to_dict(), indent=indent, default=_decimal_number)


def load_problem(source: Problem | Mapping[str, Any] | str | Path) -> Problem:
    """A `Problem` from a model, a dict, JSON text (a str) or a file path (a `Path`)."""
    if isinstance(source, Problem):
        return source
    if isinstance(source, Path):
        return Problem.from_file(source)
    if isinstance(source, str):
        return Problem.from_json(source)
    return Problem.from_dict(source)


def _decimal_number(value: Any) -> Any:
    if isinstance(value, Decimal):  # shortest float repr keeps up to 15 significant digits
        return float(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


class _DuplicateKey(ValueError):
    pass


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # json.loads silently keeps the last of two equal keys; a tool keyed twice is a mistake.
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(f"duplicate key {key!r} in a JSON object")
        out[key] = value
    return out


def _describe(exc: ValidationError, source: str) -> str:
    lines = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(part) for part in error["loc"]) or "problem"
        message = error["msg"].removeprefix("Value error, ")
        got = error.get("input")
        text = str(got) if isinstance(got, Decimal) else repr(got)
        shown = "" if isinstance(got, Mapping | list | tuple) or got is None else f" (got {text})"
        lines.append(f"  {where}: {message}{shown}")
    return f"{source} is not a valid planning problem:\n" + "\n".join(lines)
