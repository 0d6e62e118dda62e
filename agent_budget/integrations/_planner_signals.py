"""What a tool can tell `planner_node` about the world changing, and how the node applies it.

A tool returns ``{"agent_budget_signal": EVENT or [EVENT, ...], "result": VALUE}`` or raises a
`ToolSignal` (both from `agent_budget.planners.signals`, a layer the tools may import); EVENT
is one of the planning format's event types (PLANNING_FORMAT.md):

- ``{"type": "ban_tool", "tool": NAME}``: the tool can no longer be called;
- ``{"type": "cost_change", "tool": NAME, "cost": X}``: it costs ``X`` from now on;
- ``{"type": "invalidate", "types": [...], "add_start": [...], "values": {TYPE: VALUE}}``: the
  listed types are no longer held (a user changed a preference); ``add_start`` types become
  held, with their value from ``values`` (this node's extension of the format: a type held
  already, such as the preference itself, takes its new value from ``values`` too);
- ``{"type": "tools_change", "remove": [NAME, ...], "add": [TOOL, ...]}``: tools go away and
  others appear. An added TOOL is a LangChain tool with the planning metadata (the node must
  be able to call it), or a dict ``{"name", "inputs", "output", "cost"}`` naming a tool the
  node was given, which then comes back at that cost.

``tool`` defaults to the tool that signals. A signal the node cannot apply (a bad event, a
tool it does not know) is a `PlanningWarning`, never an error: the world changed, the node
keeps planning over what it knows. `bind` is how the node passes held values to a tool.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import TypeAdapter, ValidationError

from agent_budget.planners.problem import BanTool, CostChange, Event, Invalidate, Tool, ToolsChange
from agent_budget.planners.signals import SIGNAL_KEY
from agent_budget.planners.tool import problem_from_tools
from agent_budget.tracker import escape_budget_tags

if TYPE_CHECKING:
    from langchain_core.tools import BaseTool

_EVENT: TypeAdapter[Any] = TypeAdapter(Event)


def split(value: Any) -> tuple[list[dict[str, Any]], bool, Any]:
    """(events, produced, result) of a tool's return value."""
    if isinstance(value, Mapping) and SIGNAL_KEY in value:
        raw = value[SIGNAL_KEY]
        events = [dict(raw)] if isinstance(raw, Mapping) else [dict(e) for e in raw]
        return events, "result" in value, value.get("result")
    return [], True, value


class World:
    """What one node run believes: the tools it may call (planning view and callables) and
    the typed values it holds. `apply` changes it as signals say."""

    def __init__(
        self,
        tools: dict[str, Tool],
        callables: dict[str, BaseTool],
        held: dict[str, Any],
        warn: Callable[[str], None],
    ) -> None:
        self.tools, self.callables, self.held, self._warn = tools, callables, held, warn

    def apply(self, events: list[dict[str, Any]], caller: str, step: int) -> str:
        """Apply signalled events in order; returns what was done, for the transcript."""
        done: list[str] = []
        for raw in events:
            data = {**raw, "after_step": step}
            values = data.pop("values", None) if data.get("type") == "invalidate" else None
            added = data.get("add") if data.get("type") == "tools_change" else None
            if added is not None:
                data["add"] = []  # validated one by one below: a tool object is no dict
            if raw.get("type") in ("ban_tool", "cost_change"):
                data.setdefault("tool", caller)
            try:
                event = _EVENT.validate_python(data)
                if values is not None and not isinstance(values, Mapping):
                    raise TypeError("values must be a mapping of type -> value")
            except (ValidationError, TypeError) as exc:
                why = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
                self._warn(f"{caller}: bad signal {raw!r} ignored ({why})")
                continue
            if isinstance(event, BanTool | CostChange):
                done.extend(self._tool_event(event, caller))
            elif isinstance(event, Invalidate):
                done.append(self._invalidate(event, dict(values or {})))
            else:
                done.append(self._tools_change(event, list(added or []), caller))
        return "; ".join(done) or "none applied"

    def _tool_event(self, event: BanTool | CostChange, caller: str) -> list[str]:
        if event.tool not in self.tools:
            self._warn(
                f"{caller}: signal {event.type} names tool {event.tool!r}, "
                "which is not (or no longer) available: ignored"
            )
            return []
        if isinstance(event, BanTool):
            del self.tools[event.tool]
            return [f"ban_tool {event.tool}"]
        self.tools[event.tool] = self.tools[event.tool].model_copy(update={"cost": event.cost})
        return [f"cost_change {event.tool} -> {event.cost}"]

    def _invalidate(self, event: Invalidate, values: dict[str, Any]) -> str:
        # The format's order: drop the listed types first, then add the new start types.
        dropped = [t for t in event.types if t in self.held]
        for t in dropped:
            del self.held[t]
        for t in event.add_start:
            self.held[t] = values.get(t)
        self.held.update(values)
        now = sorted({*event.add_start, *values})
        return f"invalidate {', '.join(dropped) or 'nothing held'}" + (
            f"; now held: {', '.join(now)}" if now else ""
        )

    def _tools_change(self, event: ToolsChange, added: list[Any], caller: str) -> str:
        removed = [n for n in event.remove if self.tools.pop(n, None) is not None]
        gone = sorted(set(event.remove) - set(removed))
        if gone:
            self._warn(f"{caller}: tools_change removes {', '.join(gone)}, not available: ignored")
        names: list[str] = []
        for item in added:
            tool = self._added(item, caller)
            if tool is not None:
                self.tools[tool.name] = tool
                names.append(f"{tool.name} (${tool.cost})")
        return f"tools_change -{','.join(removed) or 'none'} +{', '.join(names) or 'none'}"

    def _added(self, item: Any, caller: str) -> Tool | None:
        try:
            if isinstance(item, Mapping):
                tool = Tool.model_validate(dict(item))
                if tool.name not in self.callables:
                    self._warn(
                        f"{caller}: tools_change adds {tool.name!r}, which this node cannot "
                        "call (pass the tool itself, or give it to planner_node): ignored"
                    )
                    return None
                return tool
            made = problem_from_tools([item], start=(), goal="-").tools
        except (ValidationError, ValueError, TypeError, AttributeError) as exc:
            self._warn(f"{caller}: tools_change adds {item!r}, not a tool ({exc}): ignored")
            return None
        if not made:
            self._warn(f"{caller}: tools_change adds {item.name!r} without output_type: ignored")
            return None
        self.callables[made[0].name] = item
        return made[0]


def bind(tool: BaseTool, types: Sequence[str], held: Mapping[str, Any]) -> dict[str, Any]:
    params = list(tool.args)
    norm = {p.replace("_", "").lower(): p for p in params}
    args: dict[str, Any] = {}
    rest = []
    for t in types:
        param = norm.get(t.replace("_", "").lower())
        if param is not None and param not in args:
            args[param] = held.get(t)
        else:
            rest.append(t)
    free = [p for p in params if p not in args]
    args.update(zip(free, (held.get(t) for t in rest), strict=False))
    return {k: v for k, v in args.items() if v is not None}


def content(value: Any) -> str:
    if isinstance(value, str):
        return escape_budget_tags(value)
    try:
        return escape_budget_tags(json.dumps(value, default=str))
    except (TypeError, ValueError):
        return escape_budget_tags(str(value))
