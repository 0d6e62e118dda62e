"""Any planning problem (PLANNING_FORMAT.md) as a world the travel agent's planner can run:
each tool makes a placeholder of its output type, events are signalled to `planner_node` the
way `TravelWorld` signals them, and failures are drawn with the seed in call order, as
``plan --execute`` does.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from pydantic import create_model

from agent_budget.planners.problem import (
    BanTool,
    CostChange,
    Invalidate,
    Problem,
    Tool,
    ToolsChange,
)
from agent_budget.planners.signals import SIGNAL_KEY, ToolBanned
from agent_budget.tools.travel.world import Change, Paid, snake


class ProblemWorld:
    """One execution of a `Problem`: the tools as they are now and the events still to come."""

    def __init__(self, problem: Problem, seed: int = 0) -> None:
        self.problem = problem
        self.goal = problem.goal
        self.tools: dict[str, Tool] = {t.name: t for t in problem.tools}
        self.calls: list[Paid] = []
        self.log: list[str] = []
        self._rng = random.Random(seed)
        self._pending = sorted(enumerate(problem.events), key=lambda e: e[1].after_step)
        self._changes: list[Change] = []
        self._lock = threading.Lock()
        self._fire(0)

    def paid(self) -> Decimal:
        return sum((c.cost for c in self.calls), Decimal(0))

    def pending_changes(self) -> bool:
        return bool(self._changes)

    def take_changes(self) -> list[Change]:
        with self._lock:
            out, self._changes = self._changes, []
        return out

    def start_values(self) -> dict[str, Any]:
        return dict.fromkeys(self.problem.start, "given")

    def langchain_tools(self, **_: Any) -> list[Any]:
        return [self._tool(t) for t in self.tools.values()]

    def call(self, name: str, args: Mapping[str, Any]) -> Any:
        with self._lock:
            tool = self.tools.get(name)
            if tool is None:
                raise ToolBanned(f"{name} is not available", tool=name)
            ok = tool.failure_rate == 0 or self._rng.random() >= tool.failure_rate
            self.calls.append(Paid(name, tool.cost, ok))
            fired = self._fire(len(self.calls))
        events = [e for change in fired for e in change.signals]
        if not ok:
            return {SIGNAL_KEY: events}
        made = f"<{tool.output}>"
        return {SIGNAL_KEY: events, "result": made} if events else made

    def _fire(self, step: int) -> list[Change]:
        fired: list[Change] = []
        while self._pending and self._pending[0][1].after_step <= step:
            index, event = self._pending.pop(0)
            change = self._apply(event)
            if change is None:
                self.log.append(f"events.{index} ({event.type}) names a tool already gone: ignored")
                continue
            fired.append(change)
            self.log.append(f"after call {step}: {change.text}")
            if change.kind in ("invalidate", "tools_change"):
                self._changes.append(change)
        return fired

    def _apply(self, event: Any) -> Change | None:
        if isinstance(event, BanTool):
            if self.tools.pop(event.tool, None) is None:
                return None
            return Change("ban_tool", text=f"{event.tool} is banned.",
                          signals=[{"type": "ban_tool", "tool": event.tool}])  # fmt: skip
        if isinstance(event, CostChange):
            if event.tool not in self.tools:
                return None
            self.tools[event.tool] = self.tools[event.tool].model_copy(update={"cost": event.cost})
            signal = {"type": "cost_change", "tool": event.tool, "cost": str(event.cost)}
            return Change(
                "cost_change", text=f"{event.tool} now costs {event.cost}.", signals=[signal]
            )
        if isinstance(event, Invalidate):
            values = dict.fromkeys(event.add_start, "given")
            dropped: dict[str, Any] = {
                "type": "invalidate",
                "types": list(event.types),
                "add_start": list(event.add_start),
                "values": values,
            }
            return Change(
                "invalidate",
                drop=list(event.types),
                set_values=values,
                text=f"no longer held: {', '.join(event.types) or 'nothing'}; now held: "
                f"{', '.join(event.add_start) or 'nothing new'}.",
                signals=[dropped],
            )
        assert isinstance(event, ToolsChange)
        removed = [name for name in event.remove if self.tools.pop(name, None) is not None]
        for tool in event.add:
            self.tools[tool.name] = tool
        changed: dict[str, Any] = {"type": "tools_change", "remove": removed,
                                   "add": [self._tool(t) for t in event.add]}  # fmt: skip
        return Change(
            "tools_change",
            text=f"tools removed: {', '.join(event.remove) or 'none'}; added: "
            f"{', '.join(t.name for t in event.add) or 'none'}.",
            signals=[changed],
        )

    def _tool(self, spec: Tool) -> Any:
        from langchain_core.tools import StructuredTool

        fields: dict[str, Any] = {
            snake(t) if t[:1].isupper() else t: (Any, None) for t in spec.inputs
        }
        schema = create_model(f"{spec.name}_args", **fields)
        world = self

        def run(**kwargs: Any) -> Any:
            return world.call(spec.name, kwargs)

        tool = StructuredTool.from_function(
            run, name=spec.name, description=f"makes {spec.output}", args_schema=schema
        )
        tool.metadata = {
            "input_types": list(spec.inputs),
            "output_type": spec.output,
            "cost": spec.cost,
        }
        return tool
