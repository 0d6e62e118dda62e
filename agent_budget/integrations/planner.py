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

from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from langchain_core.runnables import RunnableConfig

from agent_budget._steps import adrive, drive
from agent_budget.integrations._planner_run import PLAN_METADATA, Execution, Spec, reserved_regime
from agent_budget.integrations._tool_charges import GUARDED
from agent_budget.integrations.langgraph import current_tracker
from agent_budget.planners.dispatch import Method
from agent_budget.planners.signals import SIGNAL_KEY, PriceChanged, ToolBanned, ToolSignal
from agent_budget.planners.tool import problem_from_tools
from agent_budget.spend import Regime

if TYPE_CHECKING:
    from langchain_core.tools import BaseTool

__all__ = [
    "PLAN_METADATA",
    "SIGNAL_KEY",
    "PriceChanged",
    "ToolBanned",
    "ToolSignal",
    "planner_node",
    "reserved_regime",
]


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
    spec = Spec(
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
        ex = Execution(spec, state, current_tracker())
        drive(ex.drive(), lambda tool, args: _guarded(ex, tool.invoke, args, config))
        return ex.update()

    async def arun(state: Any, config: RunnableConfig) -> dict[str, Any]:
        ex = Execution(spec, state, current_tracker())
        await adrive(ex.drive(), lambda tool, args: _aguarded(ex, tool.ainvoke, args, config))
        return ex.update()

    node = RunnableCallable(run, arun, name=name)
    node.agent_budget_planner = True  # type: ignore[attr-defined]  # with_budget: a tool user
    return node


def _guarded(ex: Execution, call: Callable[..., Any], args: Any, config: RunnableConfig) -> Any:
    token = GUARDED.set(ex)  # reserved by the plan: the tool guard does not charge it again
    try:
        return call(args, config)
    finally:
        GUARDED.reset(token)


async def _aguarded(
    ex: Execution, call: Callable[..., Awaitable[Any]], args: Any, config: RunnableConfig
) -> Any:
    token = GUARDED.set(ex)
    try:
        return await call(args, config)
    finally:
        GUARDED.reset(token)
