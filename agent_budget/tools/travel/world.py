"""The travel tools as LangChain tools over one run's world: values, prices and events.

`TravelWorld` holds what one run has produced (typed values, each with a ``ref``), the
tools as they are now (after bans, price changes and tool-set changes) and the scenario's
event schedule, counted in executed calls as in PLANNING_FORMAT.md. Every tool is a
`StructuredTool` whose ``metadata`` carries ``input_types``, ``output_type`` and ``cost`` (what
`plan_tool` and `planner_node` read); its parameters are the snake_case names of its input
types, so `planner_node` binds held values to them.

How the agent learns of an event (``signals=True``, for `planner_node`): the call that reaches
the event's step returns its result with an ``agent_budget_signal`` in the planning format's
terms (``ban_tool``, ``cost_change``, ``invalidate`` with the new preference values,
``tools_change`` handing over the added tools), and the node replans; a banned or withdrawn
tool called later raises `ToolBanned` (not paid). `TravelWorld.take_changes` tells the agent
what changed, for the user. With ``signals=False`` (the ReAct baselines) the same events are
told in the tool's text.

The scenario's ``extras`` (optional refinements, `optional_tools`) take and give a sub-task's
final type: `planner_node` calls them when the budget regime allows.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from pydantic import Field, create_model

from agent_budget.planners.signals import SIGNAL_KEY, ToolBanned
from agent_budget.tools.travel.backend import OfflineBackend, Record, TravelBackend, describe
from agent_budget.tools.travel.domain import BY_NAME, REVIEW, TIME_INFO, SubTask
from agent_budget.tools.travel.scenario import (
    BanEvent,
    CostEvent,
    PreferenceEvent,
    Scenario,
    ScenarioEvent,
    ToolsEvent,
    ToolSpec,
    chain_steps,
)

_REF = re.compile(r"ref=([A-Za-z0-9_#.-]+)")


def snake(type_name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type_name).lower()


@dataclass
class Value:
    """A typed value a tool produced: its records and the context they were made in."""

    ref: str
    type: str
    subtask: str
    records: list[Record]
    prefs: dict[str, str]
    city: str | None = None
    note: str = ""

    def text(self) -> str:
        sub = self.subtask
        if sub == "trip":
            return f"[ref={self.ref}] {self.type}: every part of the trip is settled."
        if self.type.endswith("Preference"):
            wanted = ", ".join(f"{k}={v}" for k, v in self.prefs.items())
            return f"[ref={self.ref}] {self.type}: {wanted}"
        shown = "; ".join(describe(sub, r) for r in self.records[:4])
        more = f" (+{len(self.records) - 4} more)" if len(self.records) > 4 else ""
        where = f" in {self.city}" if self.city else ""
        note = f" {self.note}" if self.note else ""
        return f"[ref={self.ref}] {self.type}: {len(self.records)}{where}: {shown}{more}.{note}"


@dataclass
class Change:
    """An event the agent has to plan around: which types to drop and what now holds."""

    kind: str
    drop: list[str] = field(default_factory=list)
    set_values: dict[str, str] = field(default_factory=dict)
    text: str = ""
    signals: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Paid:
    tool: str
    cost: Decimal
    ok: bool
    optional: bool = False
    """An optional refinement: paid, but not a step of the plan (events count plan steps)."""


class TravelWorld:
    """One run's travel environment. Thread-safe: a tool call is one atomic step."""

    def __init__(self, scenario: Scenario, backend: TravelBackend | None = None) -> None:
        self.scenario = scenario
        self.backend = backend or OfflineBackend()
        self.tools: dict[str, ToolSpec] = {t.name: t for t in scenario.tools}
        self.prefs = {k: dict(v) for k, v in scenario.prefs.items()}
        self.month = scenario.month
        self.values: dict[str, Value] = {}
        self.calls: list[Paid] = []
        self.log: list[str] = []
        self._pending = sorted(scenario.events, key=lambda e: e.after_step)
        self._changes: list[Change] = []
        self._lock = threading.Lock()
        self._specs = {t.name: t for t in (*scenario.all_tools(), *scenario.extras)}
        self._fire(0)

    def set_trip(self, prefs: Mapping[str, Mapping[str, str]], month: str) -> None:
        """The preferences the agent read from the request (events change them later)."""
        with self._lock:
            for name, dims in prefs.items():
                if name in self.prefs:
                    self.prefs[name].update(dims)
            self.month = month

    # --- what the agent sees ---------------------------------------------------------------

    def price(self, name: str) -> Decimal:
        return self.tools[name].cost if name in self.tools else self._specs[name].cost

    def paid(self) -> Decimal:
        return sum((c.cost for c in self.calls), Decimal(0))

    def pending_changes(self) -> bool:
        return bool(self._changes)

    def take_changes(self) -> list[Change]:
        with self._lock:
            out, self._changes = self._changes, []
        return out

    def value(self, held: Any) -> Value | None:
        match = _REF.search(str(held)) if held is not None else None
        return self.values.get(match.group(1)) if match else None

    def langchain_tools(self, *, signals: bool = True, names: Any = None) -> list[Any]:
        """LangChain tools for the tools that exist now (or ``names``), priced as now."""
        chosen = [self._specs[n] for n in names] if names is not None else list(self.tools.values())
        return [self._tool(spec, signals) for spec in chosen]

    def optional_tools(self) -> list[Any]:
        """The optional refinements as LangChain tools (for `planner_node`'s ``optional=``)."""
        return [self._tool(spec, True) for spec in self.scenario.extras]

    # --- one call ------------------------------------------------------------------------

    def call(self, name: str, args: Mapping[str, Any], *, signals: bool) -> Any:
        with self._lock:
            spec = self.tools.get(name)
            extra = name in {t.name for t in self.scenario.extras}
            if spec is None and extra:
                spec = self._specs[name]
            if spec is None:
                reason = f"{name} is not available (banned or withdrawn by its provider)"
                if signals:
                    raise ToolBanned(reason, tool=name)
                return f"Error: {reason}. Use another tool."
            inputs, output = self.scenario.signature(spec)
            try:
                value = self._run(spec, inputs, output, args)
            except ValueError as exc:  # the caller passed wrong inputs: paid, nothing made
                self.calls.append(Paid(name, spec.cost, False, extra))
                if signals:
                    raise
                return f"Error: {exc}"
            self.calls.append(Paid(name, spec.cost, True, extra))
            self.values[value.ref] = value
            fired = [] if extra else self._fire(sum(not c.optional for c in self.calls))
            text = value.text()
        if not fired:
            return text
        if not signals:
            return text + " NOTE: " + " ".join(c.text for c in fired)
        events = [e for change in fired for e in change.signals]
        return {SIGNAL_KEY: events, "result": text}

    def _run(
        self, spec: ToolSpec, inputs: tuple[str, ...], output: str, args: Mapping[str, Any]
    ) -> Value:
        got: dict[str, Any] = {}
        for t in inputs:
            raw = args.get(snake(t))
            if raw is None or raw == "":
                raise ValueError(f"{spec.name} needs {snake(t)} (a {t})")
            got[t] = raw
        n = len(self.values) + 1
        ref = f"{snake(output)}#{n}"
        if spec.subtask == "trip":
            for t in inputs:
                self._held(got[t], t, spec.name)
            return Value(ref, output, "trip", [], {})
        sub = BY_NAME[spec.subtask]
        for t in inputs:  # every made value must be one a tool returned, of that type
            if t != TIME_INFO and t not in sub.start_types:
                self._held(got[t], t, spec.name)
        month = self.month
        prefs = self.prefs[sub.name]
        state: Value | None = None
        city: str | None = None
        if spec.steps == (REVIEW,):  # an optional refinement of the final shortlist
            prev = self._held(got[sub.final], sub.final, spec.name)
            recs = self.backend.refine(sub.name, REVIEW, prev.records, prev.prefs, month)
            return Value(ref, sub.final, sub.name, recs, prev.prefs, prev.city, "(by reviews)")
        for step in spec.steps:
            if step == "decide":
                chosen = {}
                for dim, allowed in sub.dims.items():
                    v = str(got[sub.dim_type(dim)]).strip()
                    if v not in allowed:
                        raise ValueError(
                            f"{spec.name}: {snake(sub.dim_type(dim))}={v!r} is not one of "
                            f"{', '.join(allowed)}"
                        )
                    chosen[dim] = v
                state = Value(ref, sub.preference, sub.name, [], chosen)
            elif step == "search":
                pref = state or self._held(got[sub.preference], sub.preference, spec.name)
                self._time(got.get(TIME_INFO))
                if sub.needs_location:
                    loc = self._held(got["TravelLocation"], "TravelLocation", spec.name)
                    city = loc.records[0]["name"] if loc.records else None
                recs = self.backend.search(sub.name, pref.prefs, month, city)
                state = Value(ref, sub.candidates, sub.name, recs, pref.prefs, city)
            else:
                prev = state or self._held(
                    got[self._before(sub, step)], self._before(sub, step), spec.name
                )
                if step == "select":
                    recs = self.backend.select(sub.name, prev.records, prev.prefs)
                else:
                    recs = self.backend.refine(sub.name, step, prev.records, prev.prefs, month)
                state = Value(ref, self._type_of(sub, step), sub.name, recs, prev.prefs, prev.city)
        assert state is not None
        state.ref, state.type = ref, output
        if prefs and state.prefs != prefs and state.type != sub.preference:
            state.note = "(made from an earlier preference)"
        return state

    def _type_of(self, sub: SubTask, step: str) -> str:
        chain = chain_steps(sub, self.scenario.depth)
        return sub.chain_types(self.scenario.depth)[chain.index(step)]

    def _before(self, sub: SubTask, step: str) -> str:
        chain = chain_steps(sub, self.scenario.depth)
        return sub.chain_types(self.scenario.depth)[chain.index(step) - 1]

    def _held(self, raw: Any, type_name: str, tool: str) -> Value:
        value = self.value(raw)
        if value is None or value.type != type_name:
            raise ValueError(
                f"{tool}: {snake(type_name)} must be the [ref=...] of a {type_name} a tool "
                f"returned, got {str(raw)[:60]!r}"
            )
        return value

    def _time(self, raw: Any) -> None:
        if raw is None or self.month not in str(raw):
            raise ValueError(f"time_info must name the trip's month ({self.month})")

    # --- events --------------------------------------------------------------------------

    def _fire(self, step: int) -> list[Change]:
        fired: list[Change] = []
        while self._pending and self._pending[0].after_step <= step:
            event = self._pending.pop(0)
            change = self._apply(event)
            if change is not None:
                fired.append(change)
                self.log.append(f"after plan step {step}: {change.text}")
                if change.kind in ("preference_change", "tools_change"):
                    self._changes.append(change)
        return fired

    def _apply(self, event: ScenarioEvent) -> Change | None:
        if isinstance(event, BanEvent):
            if self.tools.pop(event.tool, None) is None:
                return None
            signal = [{"type": "ban_tool", "tool": event.tool}]
            return Change("ban_tool", text=f"{event.tool} is banned.", signals=signal)
        if isinstance(event, CostEvent):
            if event.tool not in self.tools:
                return None
            self.tools[event.tool] = self.tools[event.tool].model_copy(update={"cost": event.cost})
            signal = [{"type": "cost_change", "tool": event.tool, "cost": str(event.cost)}]
            return Change(
                "cost_change",
                text=f"{event.tool} now costs ${event.cost}.",
                signals=signal,
            )
        if isinstance(event, PreferenceEvent):
            sub = BY_NAME[event.subtask]
            self.prefs[sub.name].update(event.set)
            wanted = ", ".join(f"{k} {v}" for k, v in event.set.items())
            drop = self.scenario.derived_types(sub.name)
            values = {sub.dim_type(k): v for k, v in event.set.items()}
            return Change(
                "preference_change",
                drop=drop,
                set_values=values,
                text=f"The user changed their {sub.name} preference: {wanted}. Redo {sub.name}.",
                signals=[{"type": "invalidate", "types": drop, "values": values}],
            )
        assert isinstance(event, ToolsEvent)
        removed = [n for n in event.remove if self.tools.pop(n, None) is not None]
        for spec in event.add:
            self.tools[spec.name] = spec
        added = ", ".join(f"{t.name} (${t.cost})" for t in event.add)
        # The added tools themselves: the planner node can only call what it is handed.
        changed: dict[str, Any] = {
            "type": "tools_change",
            "remove": removed,
            "add": [self._tool(spec, True) for spec in event.add],
        }
        return Change(
            "tools_change",
            text=f"Tools changed: removed {', '.join(removed) or 'none'}; added {added or 'none'}.",
            signals=[changed],
        )

    # --- LangChain tools -----------------------------------------------------------------

    def _tool(self, spec: ToolSpec, signals: bool) -> Any:
        from langchain_core.tools import StructuredTool

        inputs, output = self.scenario.signature(spec)
        fields: dict[str, Any] = {snake(t): (str, Field(description=_hint(t))) for t in inputs}
        schema = create_model(f"{spec.name}_args", **fields)
        world = self

        def run(**kwargs: Any) -> Any:
            return world.call(spec.name, kwargs, signals=signals)

        steps = " -> ".join(spec.steps)
        tool = StructuredTool.from_function(
            run,
            name=spec.name,
            description=f"{spec.subtask}: {steps}; makes {output} "
            f"(${self.price(spec.name)} per call)",
            args_schema=schema,
        )
        tool.metadata = {
            "input_types": list(inputs),
            "output_type": output,
            "cost": self.price(spec.name),
        }
        return tool


def _hint(type_name: str) -> str:
    if type_name == TIME_INFO:
        return "the trip's time, e.g. 'May, 3 days'"
    for sub in BY_NAME.values():
        for dim, allowed in sub.dims.items():
            if sub.dim_type(dim) == type_name:
                return f"one of: {', '.join(allowed)}"
    return f"the [ref=...] of a {type_name}"
