"""The travel agent: a LangGraph graph where the planner does the tool path and the model
does language.

    understand --> plan --> choose --> write
        |           |
        +-> END     +-> END   (a request the tools cannot do; a budget below the cheapest plan)

- ``understand`` (model): the request -> preferences, as grammar-constrained JSON; what the
  request states outright wins over the model's reading (see `request.merge`).
- ``plan`` (tools): `planner_node` over the world's tools, goal ``TripPlan``: the cheapest
  plan that fits what is left of the budget, reserved whole before the first call, replanned
  from what it holds on every event the tools signal (a ban, a price change, a changed
  preference, tools withdrawn or added). Optional refinements (re-ranking a shortlist by
  reviews) are paid for only while the budget regime, counting the plan's reserved money as
  spent, is HIGH or MEDIUM: at LOW and CRITICAL they are skipped.
- ``choose`` (model): picks one of each sub-task's shortlist. At a LOW or CRITICAL budget
  regime it skips this and takes the top-ranked record: the tool path is already the
  cheapest, so what is left to save is the model's own spend.
- ``write`` (model): a short note per day of the itinerary.

Wrap it with `with_budget` (`build_travel_agent` does): the plan is paid from that budget and
every model call is counted against it.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal, TypedDict

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, SystemMessage
from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from pydantic import BaseModel, Field, create_model

from agent_budget.integrations.langgraph import current_tracker
from agent_budget.integrations.planner import PLAN_METADATA, planner_node, reserved_regime
from agent_budget.tools.travel.backend import describe
from agent_budget.tools.travel.domain import BY_NAME, GOAL, TIME_INFO
from agent_budget.tools.travel.request import (
    UnsatisfiableRequest,
    merge,
    preference_schema,
    read_request,
)
from agent_budget.tools.travel.world import TravelWorld

TRIP_KEY: Final = "trip"
LOW_REGIMES = ("LOW", "CRITICAL")


class TripState(TypedDict, total=False):
    messages: Annotated[list[AnyMessage], add_messages]
    held: dict[str, Any]
    goal: str
    trip: dict[str, Any]
    trip_task: str  # which benchmark task the run belongs to (see `bench`)


def _structured(
    model: Any, schema: type[BaseModel], prompt: list[Any], config: RunnableConfig
) -> Any:
    try:
        return model.with_structured_output(schema).invoke(prompt, config)
    except Exception as exc:  # a model that cannot produce the JSON: fall back, say so
        return exc


def build_graph(
    world: TravelWorld,
    model: Any,
    *,
    language: Literal["full", "plan-only"] = "full",
    method: Literal["exact", "cats"] = "exact",
    optional: bool | None = None,
) -> StateGraph[Any, Any, Any, Any]:
    """The agent's graph over one run's ``world`` (not yet budgeted: see
    `build_travel_agent`). ``language="plan-only"`` keeps the model to reading the request
    (benchmarks measure the tool path). ``optional``: pay for the optional refinements when
    the regime allows (default: with ``language="full"``, where the model chooses from the
    refined shortlists)."""
    subtasks = world.scenario.subtasks
    extras = (
        world.optional_tools() if (language == "full" if optional is None else optional) else []
    )

    def understand(state: TripState, config: RunnableConfig) -> dict[str, Any]:
        request = _first_user_text(state.get("messages", []))
        trip: dict[str, Any] = {"request": request}
        try:
            stated = read_request(request)
        except UnsatisfiableRequest as exc:
            trip.update(status="unsatisfiable", reason=str(exc))
            return {TRIP_KEY: trip, "messages": [AIMessage(f"I cannot plan this trip: {exc}.")]}
        schema = preference_schema(subtasks, stated)
        proposed: Any = None
        if schema is None:  # the request names every preference: no model call to pay for
            trip["model_read"] = "not needed: the request states every preference"
        else:
            prompt = [
                SystemMessage("Read the travel request and fill in the trip preferences as JSON."),
                HumanMessage(request),
            ]
            proposed = _structured(model, schema, prompt, config)
            trip["model_read"] = sorted(schema.model_fields)
            if isinstance(proposed, Exception):
                trip["model_error"] = f"{type(proposed).__name__}: {proposed}"
                proposed = None
        read = merge(stated, proposed, subtasks)
        world.set_trip(read["prefs"], read["month"])
        held: dict[str, Any] = {TIME_INFO: f"{read['month']}, {read['days']} days"}
        for name in subtasks:
            sub = BY_NAME[name]
            for dim, value in read["prefs"][name].items():
                held[sub.dim_type(dim)] = value
        trip.update(status="understood", **read)
        wanted = "; ".join(
            f"{name}: " + ", ".join(read["prefs"][name].values()) for name in subtasks
        )
        note = AIMessage(f"Trip: {read['month']}, {read['days']} days. Preferences: {wanted}.")
        return {TRIP_KEY: trip, "held": held, "goal": GOAL, "messages": [note]}

    def plan(state: TripState, config: RunnableConfig) -> dict[str, Any]:
        trip = dict(state.get(TRIP_KEY) or {})
        held, messages, execution, changes = plan_loop(
            world, dict(state.get("held") or {}), GOAL, method, config, extras
        )
        trip.update(execution=execution, changes=changes, events=list(world.log))
        trip["status"] = "planned" if execution["goal_reached"] else execution["status"]
        if not execution["goal_reached"]:
            reason = execution.get("reason") or "no plan reaches the goal"
            said = (
                f"No trip fits the budget, so nothing was spent: {reason}."
                if execution["status"] == "infeasible"
                else f"The trip could not be completed: {reason}."
            )
            messages.append(AIMessage(said))
            trip["reason"] = reason
        return {TRIP_KEY: trip, "held": held, "messages": messages}

    def choose(state: TripState, config: RunnableConfig) -> dict[str, Any]:
        trip = dict(state.get(TRIP_KEY) or {})
        held = state.get("held") or {}
        lists = {name: (world.value(held.get(BY_NAME[name].final)) or None) for name in subtasks}
        short = {n: v.records for n, v in lists.items() if v is not None and v.records}
        tracker = current_tracker()
        regime = reserved_regime(tracker).value if tracker is not None else "HIGH"
        picks = {n: recs[0] for n, recs in short.items()}
        # The city is settled: every later search ran in the first of its shortlist.
        open_choices = {n: recs for n, recs in short.items() if n != "location" and len(recs) > 1}
        how = "top-ranked"
        if language == "full" and regime not in LOW_REGIMES and open_choices:
            fields: dict[str, Any] = {
                n: (Literal[tuple(r["id"] for r in recs)], Field(description=f"the {n} to book"))
                for n, recs in open_choices.items()
            }
            schema = create_model("TripPicks", **fields)
            options = "\n".join(
                f"{n}: " + " | ".join(f"{r['id']} = {describe(n, r)}" for r in recs)
                for n, recs in open_choices.items()
            )
            prompt = [
                SystemMessage("Pick the best option for each part of the trip. Answer in JSON."),
                HumanMessage(f"Request: {trip.get('request', '')}\nOptions:\n{options}"),
            ]
            chosen = _structured(model, schema, prompt, config)
            if not isinstance(chosen, Exception):
                by_id = {r["id"]: r for recs in short.values() for r in recs}
                for n, i in chosen.model_dump().items():
                    picks[n] = by_id.get(i, picks[n])
                how = "model"
        trip.update(picks=picks, picked_by=how, regime=regime)
        text = "; ".join(f"{n}: {describe(n, r)}" for n, r in picks.items())
        said = f"Picked ({how}, budget regime {regime}): {text}."
        return {TRIP_KEY: trip, "messages": [AIMessage(said)]}

    def write(state: TripState, config: RunnableConfig) -> dict[str, Any]:
        trip = dict(state.get(TRIP_KEY) or {})
        picks = trip.get("picks") or {}
        days = int(trip.get("days") or 3)
        city = picks.get("location", {}).get("name", "the city")
        notes: list[str] = []
        if language == "full":
            schema = create_model(
                "Itinerary",
                days=(
                    list[Annotated[str, Field(max_length=70)]],
                    Field(min_length=days, max_length=days),
                ),
            )
            facts = "; ".join(f"{n}: {r['name']}" for n, r in picks.items())
            prompt = [
                SystemMessage(
                    f"Write a {days}-day travel itinerary: one short sentence per day, in "
                    'JSON. Example: {"days": ["Walk the old town and have dinner by the river."]}'
                ),
                HumanMessage(f"Trip to {city}. {facts}"),
            ]
            made = _structured(model, schema, prompt, config)
            if not isinstance(made, Exception):
                notes = [str(d) for d in made.model_dump()["days"]]
        trip["itinerary"] = itinerary(picks, days, notes)
        lines = "\n".join(f"Day {d['day']}: {d['plan']}" for d in trip["itinerary"])
        return {TRIP_KEY: trip, "messages": [AIMessage(f"Your trip to {city}:\n{lines}")]}

    def after_understand(state: TripState) -> str:
        return "plan" if (state.get(TRIP_KEY) or {}).get("status") == "understood" else END

    def after_plan(state: TripState) -> str:
        return "choose" if (state.get(TRIP_KEY) or {}).get("status") == "planned" else END

    from langgraph._internal._runnable import RunnableCallable

    plan_node = RunnableCallable(plan, name="plan")
    plan_node.agent_budget_planner = True  # type: ignore[attr-defined]  # with_budget: a tool user
    graph = StateGraph(TripState)
    graph.add_node("understand", understand)
    graph.add_node("plan", plan_node)
    graph.add_node("choose", choose)
    graph.add_node("write", write)
    graph.add_edge(START, "understand")
    graph.add_conditional_edges("understand", after_understand, ["plan", END])
    graph.add_conditional_edges("plan", after_plan, ["choose", END])
    graph.add_edge("choose", "write")
    graph.add_edge("write", END)
    return graph


def plan_loop(
    world: Any,
    held: dict[str, Any],
    goal: str,
    method: Literal["exact", "cats"],
    config: RunnableConfig,
    optional: list[Any] | None = None,
) -> tuple[dict[str, Any], list[AnyMessage], dict[str, Any], list[str]]:
    """One `planner_node` run over the world's tools: it replans on every event the tools
    signal (bans, prices, preference and tool-set changes). A change made before the first
    call (``after_step: 0``) is applied to ``held`` first. Returns (held, messages, execution
    in the ``--execute`` shape, the changes, in words)."""
    messages: list[AnyMessage] = []
    changes: list[str] = []
    for change in world.take_changes():
        for t in change.drop:
            held.pop(t, None)
        held.update(change.set_values)
        changes.append(change.text)
        messages.append(AIMessage(f"Planning around: {change.text}"))
    node = planner_node(
        world.langchain_tools(), goal=goal, method=method, name="planner", optional=optional or ()
    )
    out = node.invoke({"messages": [], "held": held, "goal": goal}, config)
    messages.extend(out["messages"])
    for change in world.take_changes():
        changes.append(change.text)
        messages.append(AIMessage(f"Replanned: {change.text}"))
    execution = dict(out["messages"][-1].response_metadata[PLAN_METADATA])
    return out["held"], messages, execution, changes


def itinerary(
    picks: dict[str, dict[str, Any]], days: int, notes: list[str]
) -> list[dict[str, Any]]:
    """Day by day: arrive, the sights spread over the days, where to eat and shop; with the
    model's note for each day when it wrote one."""
    out = []
    for day in range(1, days + 1):
        parts = []
        if day == 1 and "transport" in picks:
            parts.append(f"arrive by {picks['transport']['name']}")
        if day == 1 and "accommodation" in picks:
            parts.append(f"check in at {picks['accommodation']['name']}")
        if "attraction" in picks and (day % 2 == 1 or days == 1):
            parts.append(f"visit {picks['attraction']['name']}")
        if "dining" in picks:
            parts.append(f"dinner at {picks['dining']['name']}")
        if "shopping" in picks and day == days:
            parts.append(f"shop at {picks['shopping']['name']}")
        plan = ", ".join(parts) or "free day"
        note = notes[day - 1] if day - 1 < len(notes) else ""
        out.append({"day": day, "plan": plan, "note": note})
    return out


def _first_user_text(messages: list[Any]) -> str:
    for m in messages:
        if getattr(m, "type", None) == "human":
            return str(m.content)
        if isinstance(m, tuple) and m[0] == "user":
            return str(m[1])
    return ""


def build_travel_agent(
    world: TravelWorld,
    model: Any,
    budget: Any = None,
    **options: Any,
) -> Any:
    """The agent's graph under `with_budget` (``budget``: the scenario's budget in USD by
    default, paying for tools and model alike)."""
    from agent_budget import Budget, with_budget

    if budget is None:
        budget = (
            Budget(usd=world.scenario.budget) if world.scenario.budget is not None else Budget()
        )
    return with_budget(build_graph(world, model, **options), budget, final_model=model)


def plan_json(state: dict[str, Any]) -> dict[str, Any]:
    """The run's execution in the ``--execute`` shape (empty when nothing was planned)."""
    trip = state.get(TRIP_KEY) or {}
    return trip.get("execution") or {
        "status": trip.get("status", "error"),
        "steps": [],
        "cost": None,
        "reason": trip.get("reason"),
        "executed": [],
        "paid": 0.0,
        "replans": 0,
        "goal_reached": False,
    }


__all__ = ["TripState", "build_graph", "build_travel_agent", "itinerary", "plan_json"]


def build_problem_agent(world: Any, *, method: Literal["exact", "cats"] = "exact") -> Any:
    """A planning problem's agent (``demo travel --problem``): the planner loop alone over a
    `ProblemWorld`, under `with_budget` with the problem's budget."""
    from agent_budget import Budget, with_budget

    def plan(state: TripState, config: RunnableConfig) -> dict[str, Any]:
        _, messages, execution, changes = plan_loop(
            world, world.start_values(), world.goal, method, config
        )
        trip = {"execution": execution, "changes": changes, "events": list(world.log)}
        trip["status"] = "planned" if execution["goal_reached"] else execution["status"]
        return {TRIP_KEY: trip, "messages": messages}

    from langgraph._internal._runnable import RunnableCallable

    node = RunnableCallable(plan, name="plan")
    node.agent_budget_planner = True  # type: ignore[attr-defined]
    graph = StateGraph(TripState)
    graph.add_node("plan", node)
    graph.add_edge(START, "plan")
    graph.add_edge("plan", END)
    steps = world.problem.max_steps
    budget = Budget(usd=world.problem.budget, total_tool_calls=steps, on_exhausted="raise")
    return with_budget(graph, budget)
