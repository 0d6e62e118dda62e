"""One run of `planner_node`: plan, reserve the whole plan, call each step, replan on a
signal. Written once as steps (`agent_budget._steps`): the node drives them with
``tool.invoke`` or ``tool.ainvoke``, each call marked as already reserved."""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Generator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from langchain_core.messages import AIMessage, BaseMessage, ToolMessage

from agent_budget._steps import Call as StepCall
from agent_budget.errors import BudgetExceeded
from agent_budget.integrations._planner_signals import World, bind, content, split
from agent_budget.planners.dispatch import Method, plan
from agent_budget.planners.errors import PlannerGaveUp, PlanningWarning
from agent_budget.planners.problem import Problem, Tool
from agent_budget.planners.result import Call, ExecutionResult, ExecutionStatus, PlanResult
from agent_budget.planners.signals import ToolSignal
from agent_budget.run import settle_after_error
from agent_budget.spend import Regime
from agent_budget.tracker import ZERO, BudgetTracker, Charge, Reservation

if TYPE_CHECKING:
    from langchain_core.tools import BaseTool

PLAN_METADATA = "agent_budget_plan"
Steps = Generator[StepCall, Any, None]


@dataclass(frozen=True)
class Spec:
    """What `planner_node` was built with."""

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


@dataclass
class _Made:
    """What one call gave: the events it signalled, its value if it produced one, what
    was paid, and the message content."""

    events: list[dict[str, Any]]
    produced: bool
    value: Any
    paid: Decimal
    text: str


def reserved_regime(tracker: BudgetTracker) -> Regime:
    """The budget regime counting reserved money as spent: a plan paid for up front leaves
    only what it does not hold for anything else (`BudgetTracker.regime` counts commits)."""
    spent = tracker.spent_now()
    held = tracker.held.copy()
    return Regime.of(tracker.table.fraction_left(spent + held, tracker.elapsed()))


class Execution:
    """One node run: plan, reserve, call (the driver makes each call ``(tool, args)`` it
    is handed), replan."""

    def __init__(self, spec: Spec, state: Any, tracker: BudgetTracker | None) -> None:
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

    def drive(self) -> Steps:
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

    def _make(
        self, tool: BaseTool, args: dict[str, Any], charge: Charge, res: Reservation | None
    ) -> Generator[StepCall, Any, _Made]:
        """Call ``tool`` and settle its reservation: a `ToolSignal` (the provider refused)
        is not paid, any other error is (`settle_after_error`) and propagates."""
        cid = str(charge.key)
        self.messages.append(
            AIMessage(content="", tool_calls=[{"name": tool.name, "args": args, "id": cid}])
        )
        try:
            out = yield (tool, args), {}
        except ToolSignal as signal:
            if res is not None:
                res.release()
            made = _Made(signal.events, False, None, ZERO, f"Refused by {tool.name}: {signal}")
        except Exception as error:
            if res is not None:
                settle_after_error(res, error)
            raise
        except BaseException:  # Ctrl-C, a cancellation, a closed coroutine: not completed
            if res is not None:
                res.release()
            raise
        else:
            events, produced, value = split(out)
            paid = res.commit().usd if res is not None else charge.usd
            text = content(value) if produced else f"No result from {tool.name}."
            made = _Made(events, produced, value, paid, text)
        return made

    def _message(self, made: _Made, tool: BaseTool, charge: Charge, signals: str = "") -> None:
        status = "success" if made.produced else "error"
        self.messages.append(
            ToolMessage(made.text + signals, name=tool.name, tool_call_id=str(charge.key),
                        status=status)
        )  # fmt: skip

    def _call(
        self, step: str, charge: Charge, res: Reservation | None
    ) -> Generator[StepCall, Any, bool]:
        """Make one planned call; False when the plan must be made again."""
        tool, spec = self.world.callables[step], self.tools[step]
        made = yield from self._make(tool, bind(tool, spec.inputs, self.held), charge, res)
        self.executed.append(Call(step, made.paid, made.produced))
        if made.produced:  # held before the events: an event after this step may invalidate it
            self.held[spec.output] = made.value
        signals = ""
        if made.events:
            signals = f" (signals: {self.world.apply(made.events, step, len(self.executed))})"
        self._message(made, tool, charge, signals)
        if made.produced and spec.output in self.held:
            yield from self._refine(spec.output)
        return made.produced and not made.events

    def _refine(self, made_type: str) -> Steps:
        """The optional refinements of a value just made, unless the regime says save. Their
        signals are not applied: the plan does not depend on them."""
        for tool in self.spec.optional.get(made_type, ()):
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
            made = yield from self._make(tool, bind(tool, [made_type], self.held), charge, res)
            self.extras.append(Call(tool.name, made.paid, made.produced))
            if made.produced:
                self.held[made_type] = made.value
            self._message(made, tool, charge)

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
