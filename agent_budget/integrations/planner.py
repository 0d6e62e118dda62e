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

Signals, in the format's event types (``tool`` defaults to the tool that signals):

- a tool returns ``{"agent_budget_signal": EVENT or [EVENT, ...], "result": VALUE}``, EVENT
  being ``{"type": "ban_tool", "tool": NAME}`` or ``{"type": "cost_change", "tool": NAME,
  "cost": X}``. The call was made, so it is paid; it produced its output only if ``result``
  is present;
- a tool raises `ToolBanned` or `PriceChanged` (a `ToolSignal`): its provider refused the
  call, so it is not paid (its reservation is released) and produced nothing.

Any other exception from a tool is charged (the call was made), the rest of the plan is
released, and the exception propagates.
"""

from __future__ import annotations

import json
import uuid
import warnings
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from pydantic import TypeAdapter, ValidationError

from agent_budget.errors import AgentBudgetError, BudgetExceeded
from agent_budget.integrations._tool_charges import GUARDED
from agent_budget.integrations.langgraph import current_tracker
from agent_budget.planners.dispatch import Method, plan
from agent_budget.planners.errors import PlannerGaveUp, PlanningWarning
from agent_budget.planners.problem import BanTool, CostChange, Event, Problem, Tool
from agent_budget.planners.result import Call, ExecutionResult, ExecutionStatus, PlanResult
from agent_budget.planners.tool import problem_from_tools
from agent_budget.run import settle_after_error
from agent_budget.tracker import ZERO, BudgetTracker, Charge, Reservation, escape_budget_tags

if TYPE_CHECKING:
    from langchain_core.tools import BaseTool

SIGNAL_KEY = "agent_budget_signal"
PLAN_METADATA = "agent_budget_plan"
_EVENT: TypeAdapter[Any] = TypeAdapter(Event)
_Step = tuple["BaseTool", dict[str, Any]]
_Outcome = tuple[Any, BaseException | None]


class ToolSignal(AgentBudgetError):
    """Raised by a tool whose provider refused the call: not paid; the events then apply."""

    def __init__(self, *events: Mapping[str, Any], reason: str = "") -> None:
        self.events = [dict(event) for event in events]
        super().__init__(reason or ", ".join(str(e.get("type")) for e in self.events))


class ToolBanned(ToolSignal):
    """The tool (or ``tool``) can no longer be called."""

    def __init__(self, reason: str = "banned", *, tool: str | None = None) -> None:
        super().__init__({"type": "ban_tool", **({"tool": tool} if tool else {})}, reason=reason)


class PriceChanged(ToolSignal):
    """The tool (or ``tool``) now costs ``cost`` per call; this call was not made."""

    def __init__(self, cost: Decimal | float | str, *, tool: str | None = None) -> None:
        event = {"type": "cost_change", "cost": cost, **({"tool": tool} if tool else {})}
        super().__init__(event, reason=f"price changed to {cost}")


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
) -> Any:
    """A node (sync and async) that plans over ``tools``, pays for the plan up front, runs it
    and replans on signals. ``start`` is held types (values None) or a dict type -> value."""
    from agent_budget.integrations._private import RunnableCallable

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
        self.messages: list[BaseMessage] = []
        self.executed: list[Call] = []
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
        tool, spec = self.spec.by_name[step], self.tools[step]
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
            events, produced, value = _split(value)
            paid = res.commit().usd if res is not None else charge.usd
            content = _content(value) if produced else f"No result from {step}."
        self.executed.append(Call(step, paid, produced))
        if events:
            content += f" (signals: {self._apply(events, step)})"
        status = "success" if produced else "error"
        self.messages.append(ToolMessage(content, name=step, tool_call_id=cid, status=status))
        if produced:
            self.held[spec.output] = value
        return produced and not events

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

    def _apply(self, events: list[dict[str, Any]], caller: str) -> str:
        done: list[str] = []
        for raw in events:
            try:
                data = {**raw, "after_step": len(self.executed)}
                if raw.get("type") in ("ban_tool", "cost_change"):
                    data.setdefault("tool", caller)
                event = _EVENT.validate_python(data)
            except ValidationError as exc:
                self._warn(f"{caller}: bad signal {raw!r} ignored ({exc.errors()[0]['msg']})")
                continue
            if not isinstance(event, BanTool | CostChange):
                self._warn(f"{caller}: signal {event.type!r} is not supported here: ignored")
            elif event.tool not in self.tools:
                self._warn(
                    f"{caller}: signal {event.type} names tool {event.tool!r}, "
                    "which is not (or no longer) available: ignored"
                )
            elif isinstance(event, BanTool):
                del self.tools[event.tool]
                done.append(f"ban_tool {event.tool}")
            else:
                self.tools[event.tool] = self.tools[event.tool].model_copy(
                    update={"cost": event.cost}
                )
                done.append(f"cost_change {event.tool} -> {event.cost}")
        return "; ".join(done) or "none applied"

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
        if self.tracker is not None:
            text += "\n\n" + self.tracker.message()
        summary = AIMessage(content=text, response_metadata={PLAN_METADATA: result.to_dict()})
        return {self.spec.messages_key: [*self.messages, summary], self.spec.held_key: self.held}


def _bind(tool: BaseTool, types: Sequence[str], held: Mapping[str, Any]) -> dict[str, Any]:
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


def _split(value: Any) -> tuple[list[dict[str, Any]], bool, Any]:
    """(events, produced, result) of a tool's return value."""
    if isinstance(value, Mapping) and SIGNAL_KEY in value:
        raw = value[SIGNAL_KEY]
        events = [dict(raw)] if isinstance(raw, Mapping) else [dict(e) for e in raw]
        return events, "result" in value, value.get("result")
    return [], True, value


def _content(value: Any) -> str:
    if isinstance(value, str):
        return escape_budget_tags(value)
    try:
        return escape_budget_tags(json.dumps(value, default=str))
    except (TypeError, ValueError):
        return escape_budget_tags(str(value))
