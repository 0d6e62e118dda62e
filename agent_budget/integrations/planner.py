"""`planner_node`: a LangGraph node that pays for the cheapest plan up front, runs it, and
replans when a tool signals a ban or a price change.

Tools describe themselves as for `plan_tool` (``metadata``: ``input_types``, ``output_type``,
``cost``, optional ``failure_rate``). On each run the node:

1. takes the goal type from ``state[goal_key]`` (else ``goal=``) and the held typed values
   from ``start=`` updated by ``state[held_key]`` (a dict: type name -> value);
2. plans with what is left of the run's budget (USD less ``reserve_usd`` and what is held,
   total and per-tool call counts). When no plan fits it answers ``infeasible: ...`` and
   spends nothing;
3. inside a `with_budget` run, reserves every step at once (`BudgetTracker.reserve_all`, all
   or none), so a plan the budget cannot finish never starts; outside one, reserves nothing;
4. calls the real tools in order. A tool's parameters take the values of its
   ``input_types``: a parameter named like the type (``hotel_offer`` <- ``HotelOffer``),
   else the remaining types in order; a type held without a value passes no argument;
5. commits each step as it returns; after a signal (or a call that produced nothing) it
   releases the unspent steps, replans from the held types and reserves the new plan.

It writes each call as an AIMessage with one tool call followed by its ToolMessage (a valid
chat transcript), then a summary AIMessage whose ``response_metadata["agent_budget_plan"]``
is the execution in the ``--execute`` JSON shape of PLANNING_FORMAT.md, and
``state[held_key]``: every held value, the produced ones included.

Prices: a tool listed in the run's ``Budget.prices`` costs that (a `PlanningWarning` when its
metadata says otherwise: the budget is what limits are checked against); any other tool its
metadata ``cost``. A ``cost_change`` signal overrides both for the rest of the node's run.

Signals (`agent_budget.integrations._planner_signals` has the details): a tool returns
``{"agent_budget_signal": EVENT or [EVENT, ...], "result": VALUE}`` (the call was made, so it
is paid; it produced its output only if ``result`` is present) or raises `ToolBanned` /
`PriceChanged` (a `ToolSignal`: its provider refused the call, so it is not paid). EVENT is
any event type of the planning format: ``ban_tool``, ``cost_change``, ``invalidate`` (a
changed preference: types no longer held, new values) and ``tools_change`` (tools removed and
added). The node applies the events after the call's output is held, then replans from what
it holds.

Optional refinements (``optional=``): tools that improve a value the plan makes without being
needed for the goal (metadata ``input_types == [T]``, ``output_type == T``). After a step
makes ``T``, each is called unless the budget regime is in ``skip_optional_at`` (LOW and
CRITICAL by default). The regime counts what the rest of the plan holds reserved
(`reserved_regime`): money the plan will spend is not money left for extras. Each is reserved
on its own, after the plan, so it can never take what the plan needs.

Any other exception from a tool is charged (the call was made), the rest of the plan is
released, and the exception propagates.
"""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Collection, Generator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.runnables import RunnableConfig

from agent_budget.errors import BudgetExceeded
from agent_budget.integrations._planner_signals import World, split
from agent_budget.integrations._planner_signals import (
    bind as _bind,
)
from agent_budget.integrations._planner_signals import (
    content as _content,
)
from agent_budget.integrations._tool_charges import GUARDED
from agent_budget.integrations.langgraph import current_tracker
from agent_budget.planners.dispatch import Method, plan
from agent_budget.planners.errors import PlannerGaveUp, PlanningWarning
from agent_budget.planners.problem import Problem, Tool
from agent_budget.planners.result import Call, ExecutionResult, ExecutionStatus, PlanResult
from agent_budget.planners.signals import SIGNAL_KEY, PriceChanged, ToolBanned, ToolSignal
from agent_budget.planners.tool import problem_from_tools
from agent_budget.run import settle_after_error
from agent_budget.spend import Regime
from agent_budget.tracker import ZERO, BudgetTracker, Charge, Reservation

if TYPE_CHECKING:
    from langchain_core.tools import BaseTool

PLAN_METADATA = "agent_budget_plan"
__all__ = [
    "PLAN_METADATA",
    "SIGNAL_KEY",
    "PriceChanged",
    "ToolBanned",
    "ToolSignal",
    "planner_node",
    "reserved_regime",
]
_Step = tuple["BaseTool", dict[str, Any]]
_Outcome = tuple[Any, BaseException | None]


@dataclass(frozen=True)
class _Spec:
    by_name: dict[str, BaseTool]
    planned: tuple[Tool, ...]
    goal: str | None
    start: dict[str, Any]
    method: Method
    seed: int
    messages_key: str
    held_key: str
    goal_key: str
    max_replans: int
    optional: dict[str, list[BaseTool]]
    """Held type -> the optional refinements of a value of that type, in the given order."""
    skip_optional_at: frozenset[str]


def reserved_regime(tracker: BudgetTracker) -> Regime:
    """The budget regime counting reserved money as spent: a plan paid for up front leaves
    only what it does not hold for anything else (`BudgetTracker.regime` counts commits)."""
    spent = tracker.spent_now()
    held = tracker.held.copy()
    return Regime.of(tracker.table.fraction_left(spent + held, tracker.elapsed()))


def _optional(tools: Sequence[BaseTool]) -> dict[str, list[BaseTool]]:
    by_type: dict[str, list[BaseTool]] = {}
    for t in tools:
        meta = t.metadata or {}
        inputs, output = list(meta.get("input_types", ())), meta.get("output_type")
        if inputs != [output] or meta.get("cost", meta.get("price")) is None:
            raise ValueError(
                f"planner_node: optional tool {t.name!r} must refine one type (metadata "
                f"input_types [T], output_type T, cost), got {inputs} -> {output}"
            )
        by_type.setdefault(str(output), []).append(t)
    return by_type


def planner_node(
    tools: Sequence[BaseTool],
    *,
    goal: str | None = None,
    start: Mapping[str, Any] | Sequence[str] = (),
    method: Method = "exact",
    seed: int = 0,
    messages_key: str = "messages",
    held_key: str = "held",
    goal_key: str = "goal",
    max_replans: int = 10,
    name: str = "planner",
    optional: Sequence[BaseTool] = (),
    skip_optional_at: Collection[str] = ("LOW", "CRITICAL"),
) -> Any:
    """A node (sync and async) that plans over ``tools``, pays for the plan up front, runs it
    and replans on signals. ``start`` is held types (values None) or a dict type -> value.
    ``optional``: refinements called after a step makes their type, unless the regime
    (reserved plan included) is one of ``skip_optional_at``."""
    from agent_budget.integrations._private import RunnableCallable

    unknown = set(skip_optional_at) - {r.value for r in Regime}
    if unknown:
        raise ValueError(f"planner_node: skip_optional_at {sorted(unknown)}: not a regime")
    spec = _Spec(
        {t.name: t for t in tools},
        problem_from_tools(tools, start=(), goal="-").tools,  # validates the metadata now
        goal,
        dict(start) if isinstance(start, Mapping) else dict.fromkeys(start),
        method,
        seed,
        messages_key,
        held_key,
        goal_key,
        max_replans,
        _optional(optional),
        frozenset(skip_optional_at),
    )

    def run(state: Any, config: RunnableConfig) -> dict[str, Any]:
        ex = _Execution(spec, state, current_tracker())
        gen = ex.drive()
        try:
            tool, args = next(gen)
            while True:
                token = GUARDED.set(ex)  # reserved by the plan: not charged again
                try:
                    outcome: _Outcome = (tool.invoke(args, config), None)
                except Exception as exc:
                    outcome = (None, exc)
                finally:
                    GUARDED.reset(token)
                tool, args = gen.send(outcome)
        except StopIteration:
            return ex.update()
        finally:
            gen.close()  # releases what is still reserved if the run is interrupted

    async def arun(state: Any, config: RunnableConfig) -> dict[str, Any]:
        ex = _Execution(spec, state, current_tracker())
        gen = ex.drive()
        try:
            tool, args = next(gen)
            while True:
                token = GUARDED.set(ex)
                try:
                    outcome: _Outcome = (await tool.ainvoke(args, config), None)
                except Exception as exc:
                    outcome = (None, exc)
                finally:
                    GUARDED.reset(token)
                tool, args = gen.send(outcome)
        except StopIteration:
            return ex.update()
        finally:
            gen.close()

    node = RunnableCallable(run, arun, name=name)
    node.agent_budget_planner = True  # type: ignore[attr-defined]  # with_budget: a tool user
    return node


class _Execution:
    """One node run: plan, reserve, call (the driver makes each call it is handed), replan."""

    def __init__(self, spec: _Spec, state: Any, tracker: BudgetTracker | None) -> None:
        get = state.get if isinstance(state, Mapping) else lambda k: getattr(state, k, None)
        wanted = get(spec.goal_key) or spec.goal
        if not wanted:
            raise ValueError(f"planner_node: no goal type: set state[{spec.goal_key!r}] or goal=")
        self.spec, self.tracker, self.goal = spec, tracker, str(wanted)
        self.held: dict[str, Any] = {**spec.start, **(get(spec.held_key) or {})}
        self.tools = {t.name: t for t in spec.planned}
        prices = tracker.budget.prices if tracker else {}
        for t in spec.planned:
            if t.name in prices and prices[t.name] != t.cost:
                warnings.warn(
                    f"tool {t.name!r}: Budget.prices says {prices[t.name]}, its metadata says "
                    f"{t.cost}; planning and charging with the budget's price",
                    PlanningWarning,
                    stacklevel=2,
                )
                self.tools[t.name] = t.model_copy(update={"cost": prices[t.name]})
        self.world = World(self.tools, dict(spec.by_name), self.held, self._warn)
        self.messages: list[BaseMessage] = []
        self.executed: list[Call] = []
        self.extras: list[Call] = []
        self.skipped: list[str] = []
        self.plans: list[PlanResult] = []
        self.notes: list[str] = []
        self.status: ExecutionStatus = "ok"
        self.reason: str | None = None

    def drive(self) -> Generator[_Step, _Outcome, None]:
        while self.goal not in self.held:
            if len(self.plans) > self.spec.max_replans:
                self.status, self.reason = "unreachable", f"gave up after {len(self.plans)} plans"
                return
            result = self._plan()
            if not result.ok:
                reason = (result.reason or "no plan").replace("> budget ", "> budget left ")
                self.status = "unreachable" if self.executed else "infeasible"
                self.reason = reason
                return
            charges = [self._charge(step, i) for i, step in enumerate(result.steps)]
            try:
                reserved = self.tracker.reserve_all(charges) if self.tracker else []
            except BudgetExceeded as exc:
                self.status = "unreachable" if self.executed else "infeasible"
                self.reason = f"refused: {exc}"
                return
            try:
                for i, step in enumerate(result.steps):
                    res = reserved[i] if reserved else None
                    if not (yield from self._call(step, charges[i], res)):
                        break
            finally:
                for res in reserved:
                    if not res.settled:
                        res.release()

    def _call(
        self, step: str, charge: Charge, res: Reservation | None
    ) -> Generator[_Step, _Outcome, bool]:
        """Make one call; False when the plan must be made again."""
        tool, spec = self.world.callables[step], self.tools[step]
        cid = str(charge.key)
        args = _bind(tool, spec.inputs, self.held)
        self.messages.append(
            AIMessage(content="", tool_calls=[{"name": step, "args": args, "id": cid}])
        )
        value, error = yield tool, args
        if isinstance(error, ToolSignal):
            if res is not None:
                res.release()
            events, produced, paid = error.events, False, ZERO
            content = f"Refused by {step}: {error}"
        elif error is not None:
            if res is not None:
                settle_after_error(res, error)
            raise error
        else:
            events, produced, value = split(value)
            paid = res.commit().usd if res is not None else charge.usd
            content = _content(value) if produced else f"No result from {step}."
        self.executed.append(Call(step, paid, produced))
        if produced:  # held before the events: an event after this step may invalidate it
            self.held[spec.output] = value
        if events:
            content += f" (signals: {self.world.apply(events, step, len(self.executed))})"
        status = "success" if produced else "error"
        self.messages.append(ToolMessage(content, name=step, tool_call_id=cid, status=status))
        if produced and spec.output in self.held:
            yield from self._refine(spec.output)
        return produced and not events

    def _refine(self, made: str) -> Generator[_Step, _Outcome, None]:
        """The optional refinements of a value just made, unless the regime says save."""
        for tool in self.spec.optional.get(made, ()):
            regime = reserved_regime(self.tracker).value if self.tracker else "HIGH"
            if regime in self.spec.skip_optional_at:
                self.skipped.append(f"{tool.name} (regime {regime})")
                continue
            meta = tool.metadata or {}
            cost = Decimal(str(meta.get("cost", meta.get("price"))))
            charge = Charge("tool", tool.name, cost, key=f"call_opt_{uuid.uuid4().hex[:16]}",
                            meta={"optional": True})  # fmt: skip
            try:
                res = self.tracker.reserve(charge) if self.tracker else None
            except BudgetExceeded:
                self.skipped.append(f"{tool.name} (does not fit what is left)")
                continue
            args = _bind(tool, [made], self.held)
            cid = str(charge.key)
            self.messages.append(
                AIMessage(content="", tool_calls=[{"name": tool.name, "args": args, "id": cid}])
            )
            value, error = yield tool, args
            produced = False
            if isinstance(error, ToolSignal):
                if res is not None:
                    res.release()
                self.extras.append(Call(tool.name, ZERO, False))
                content = f"Refused by {tool.name}: {error}"
            elif error is not None:
                if res is not None:
                    settle_after_error(res, error)
                raise error
            else:
                _, produced, value = split(value)
                paid = res.commit().usd if res is not None else cost
                self.extras.append(Call(tool.name, paid, produced))
                if produced:
                    self.held[made] = value
                content = _content(value) if produced else f"No result from {tool.name}."
            status = "success" if produced else "error"
            self.messages.append(
                ToolMessage(content, name=tool.name, tool_call_id=cid, status=status)
            )

    def _plan(self) -> PlanResult:
        usd, steps, tools = None, None, list(self.tools.values())
        if self.tracker is not None:
            b, s, h = self.tracker.budget, self.tracker.spent, self.tracker.held
            if b.usd is not None:
                usd = max(b.usd - b.reserve_usd - s.usd - h.usd, ZERO)
            if b.total_tool_calls is not None:
                steps = max(b.total_tool_calls - s.total_tool_calls - h.total_tool_calls, 0)
            calls_left = {
                n: limit - s.tool_calls.get(n, 0) - h.tool_calls.get(n, 0)
                for n, limit in b.tool_calls.items()
            }
            tools = [t for t in tools if calls_left.get(t.name, 1) > 0]
        problem = Problem(
            start=tuple(self.held), goal=self.goal, budget=usd, max_steps=steps, tools=tuple(tools)
        )
        try:
            result = plan(problem, self.spec.method, seed=self.spec.seed + len(self.plans))
        except PlannerGaveUp as exc:
            result = PlanResult("infeasible", reason=f"the planner gave up: {exc}")
        self.plans.append(result)
        return result

    def _charge(self, step: str, index: int) -> Charge:
        cid = f"call_plan_{uuid.uuid4().hex[:16]}"
        meta = {"tool_call_id": cid, "planned": True, "plan": len(self.plans), "step": index}
        return Charge("tool", step, self.tools[step].cost, key=cid, meta=meta)

    def _warn(self, message: str) -> None:
        self.notes.append(message)
        warnings.warn(message, PlanningWarning, stacklevel=3)

    def update(self) -> dict[str, Any]:
        first = self.plans[0] if self.plans else PlanResult("ok", (), ZERO)
        paid = sum((c.cost for c in self.executed), ZERO)
        result = ExecutionResult(
            self.status,
            first.steps,
            first.cost,
            tuple(self.executed),
            paid,
            max(len(self.plans) - 1, 0),
            self.goal in self.held,
            self.reason,
            tuple(self.notes),
        )
        if result.goal_reached:
            path = " -> ".join(c.tool for c in self.executed) or "nothing to call"
            text = f"Goal {self.goal!r} reached: {path}."
        else:
            text = f"{self.status}: {self.reason}."
        text += f" Paid ${paid} for {len(self.executed)} calls, {result.replans} replans."
        data = result.to_dict()
        if self.spec.optional:  # the --execute shape, plus what was paid for extras
            data["optional"] = [c.to_dict() for c in self.extras]
            data["optional_paid"] = float(sum((c.cost for c in self.extras), ZERO))
            data["skipped_optional"] = list(self.skipped)
            if self.extras or self.skipped:
                text += (
                    f" Optional refinements: {len(self.extras)} called"
                    f" (${data['optional_paid']}), {len(self.skipped)} skipped."
                )
        if self.tracker is not None:
            text += "\n\n" + self.tracker.message()
        summary = AIMessage(content=text, response_metadata={PLAN_METADATA: data})
        return {self.spec.messages_key: [*self.messages, summary], self.spec.held_key: self.held}
