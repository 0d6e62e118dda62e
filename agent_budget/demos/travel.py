"""The travel demo: an agent plans a whole trip with priced tools, within its budget.

`run` plays a scenario (the built-in one, a scenario file, or the built-in tools with your
own request) on the embedded on-device model or any LiteLLM model: each call with its price
and the budget message as it happens, replans when a tool is banned or its price changes,
then the itinerary, the cost per sub-task and per tool, what the cheapest possible path
would have cost, the spend tree, and a PNG of where the money went.
"""

from __future__ import annotations

import json
import warnings
from collections import defaultdict
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

DEMO_REQUEST = (
    "3 days in a historic city in May, mid-range hotel, vegetarian food, $40 of tool spend"
)
DEMO_SEED = 18


class DemoInputError(ValueError):
    """Bad input to the demo (exit code 2): the message says what and where."""


@cache
def demo_scenario() -> Any:
    """The built-in scenario: the request above over a generated tool set, a $40 budget, a
    tool banned and a price raised mid-run."""
    from agent_budget.tools.travel.generate import draw_event, generate_scenario
    from agent_budget.tools.travel.request import read_request

    stated = read_request(DEMO_REQUEST)
    base = generate_scenario(DEMO_SEED, depth=1, composites=2, budget=Decimal(40))
    prefs = {k: dict(v) for k, v in base.prefs.items()}
    for sub, dims in stated["prefs"].items():
        prefs[sub].update(dims)
    scenario = base.model_copy(
        update={"prefs": prefs, "month": "May", "days": 3, "request": DEMO_REQUEST, "name": "demo"}
    )
    scenario = draw_event(scenario, "ban_tool", seed=DEMO_SEED)
    return draw_event(scenario, "cost_change", seed=DEMO_SEED + 1)


def load_scenario(path: Path | None, request: str | None) -> Any:
    from agent_budget.tools.travel.scenario import InvalidScenario, Scenario

    try:
        scenario = Scenario.from_file(path) if path is not None else demo_scenario()
    except InvalidScenario as exc:
        raise DemoInputError(str(exc)) from None
    if request is not None:
        from agent_budget.tools.travel.request import UnsatisfiableRequest, read_request

        try:
            stated = read_request(request)
        except UnsatisfiableRequest as exc:
            raise DemoInputError(f"cannot plan this trip: {exc}") from None
        update: dict[str, Any] = {"request": request}
        if stated.get("budget") is not None:
            update["budget"] = stated["budget"]
        scenario = scenario.model_copy(update=update)
    return scenario


def checked(scenario_path: Path | None, request: str | None) -> tuple[Any, Any]:
    """(scenario, the replanning exact planner's run of it), or `DemoInputError` for a bad
    file, a request the tools cannot do, or a budget below the cheapest plan; all before a
    model is loaded or a cent is spent."""
    from agent_budget.tools.travel.generate import optimal_run
    from agent_budget.tools.travel.request import UnsatisfiableRequest, read_request

    scenario = load_scenario(scenario_path, request)
    try:
        read_request(scenario.request)
    except UnsatisfiableRequest as exc:
        raise DemoInputError(f"cannot plan this trip: {exc}") from None
    # The agent's planner says the same before its first call (it plans within the budget
    # and spends nothing when no plan fits); checking here spares loading the model.
    static = optimal_run(scenario.model_copy(update={"events": ()}))
    if static.status == "infeasible":
        unbounded = optimal_run(scenario.model_copy(update={"events": (), "budget": None}))
        if unbounded.goal_reached:
            raise DemoInputError(
                f"the budget (${scenario.budget}) is below the cheapest plan for this trip "
                f"(${unbounded.paid}); nothing was spent. Raise the budget."
            )
        raise DemoInputError(f"the tools cannot satisfy this request: {static.reason}")
    return scenario, optimal_run(scenario)


def run(
    *,
    scenario_path: Path | None = None,
    request: str | None = None,
    model_spec: str = "local:smollm2-135m",
    console: Console | None = None,
    png: Path | None = Path("travel-spend.png"),
    as_json: bool = False,
) -> dict[str, Any]:
    """Run the travel agent on a scenario; returns the final trip state (also printed).
    Raises `DemoInputError` for bad input (before anything is spent)."""
    from agent_budget import Budget, BudgetTracker
    from agent_budget.agents.travel.graph import build_travel_agent, plan_json
    from agent_budget.models import resolve
    from agent_budget.tools.travel.world import TravelWorld

    console = console or Console()
    quiet = as_json
    scenario, best = checked(scenario_path, request)
    world = TravelWorld(scenario)
    if not quiet:
        console.print(Panel(Text(scenario.request), title="the request", border_style="cyan"))
        console.print(
            f"[dim]{len(scenario.tools)} priced tools over {len(scenario.subtasks)} sub-tasks, "
            f"budget ${scenario.budget}, {len(scenario.events)} scheduled events[/dim]"
        )
    with _status(console, quiet, f"loading {model_spec} ..."):
        local: dict[str, Any] = {"n_ctx": 2048} if model_spec.startswith("local:") else {}
        model = resolve(model_spec, max_tokens=160, temperature=0, **local)
    budget = Budget(usd=scenario.budget) if scenario.budget is not None else Budget()
    agent = build_travel_agent(world, model, budget)
    tracker = BudgetTracker(budget)
    shown = _Live(console, world, quiet)
    tracker.add_listener(shown.on_charge)
    config = {"configurable": {"budget_tracker": tracker}, "recursion_limit": 40}
    final: dict[str, Any] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for update in agent.stream(
            {"messages": [("user", scenario.request)]}, config, stream_mode="updates"
        ):
            for node, delta in update.items():
                shown.node(node, delta or {})
                if delta and "trip" in delta:
                    final = delta["trip"]
    state = {"trip": final}
    execution = plan_json(state)
    if as_json:
        console.print_json(json.dumps(execution))
        return state
    _summary(console, scenario, final, execution, best, tracker)
    if png is not None and execution["executed"]:
        written = spend_png(scenario, world, execution, best, png)
        console.print(f"[dim]{escape(written)}[/dim]")
    return state


class _Live:
    """Prints each paid call with its price and the budget message, as it is committed."""

    def __init__(self, console: Console, world: Any, quiet: bool) -> None:
        self.console, self.world, self.quiet = console, world, quiet
        self.n = 0
        self.logged = 0

    def on_charge(self, tracker: Any, charge: Any, outcome: str) -> None:
        if self.quiet or charge.kind != "tool":
            return
        self.n += 1
        result = ""
        value = next((v for v in reversed(list(self.world.values.values()))), None)
        if value is not None:
            result = value.text().split("] ", 1)[-1]
        line = Text.assemble(
            (f"{self.n:>3}. ", "dim"),
            (f"{charge.name:<34}", "bold"),
            (f" ${charge.usd:>5.2f}  ", "green"),
            (result, "dim"),
        )
        line.truncate(self.console.width, overflow="ellipsis")
        self.console.print(line, no_wrap=True)
        self.console.print(Text(f"     {tracker.message()}", style="yellow"), no_wrap=True)
        while self.logged < len(self.world.log):
            event = self.world.log[self.logged]
            self.console.print(
                Text(f"  !  {event} The planner replans from what it holds.", style="bold magenta")
            )
            self.logged += 1

    def node(self, node: str, delta: dict[str, Any]) -> None:
        if self.quiet:
            return
        for msg in delta.get("messages", []):
            text = str(msg.content)
            if node == "plan" and text.startswith("Replanned"):
                continue  # told as it happened, by `on_charge`
            if node == "plan" and text.startswith("Planning around"):
                self.console.print(Text(f"  -> {text}", style="magenta"))
            elif node == "plan" and "agent_budget_plan" in (msg.response_metadata or {}):
                meta = msg.response_metadata["agent_budget_plan"]
                if meta["replans"]:
                    self.console.print(
                        Text(f"  -> the planner replanned {meta['replans']}x", style="magenta")
                    )
            elif node in ("understand", "choose") or (
                node == "plan"
                and not getattr(msg, "tool_calls", None)
                and msg.type == "ai"
                and "Goal" not in text
            ):
                self.console.print(Text(f"[{node}] {text}", style="cyan"))


def _status(console: Console, quiet: bool, text: str) -> Any:
    from contextlib import nullcontext

    return nullcontext() if quiet else console.status(text)


def _summary(
    console: Console, scenario: Any, trip: dict[str, Any], execution: dict[str, Any], best: Any,
    tracker: Any,
) -> None:  # fmt: skip
    from agent_budget.render import spend_tree

    if trip.get("itinerary"):
        lines = [
            f"[bold]Day {d['day']}[/bold]: {d['plan']}"
            + (f"\n   [dim]{d['note']}[/dim]" if d["note"] else "")
            for d in trip["itinerary"]
        ]
        city = (trip.get("picks") or {}).get("location", {}).get("name", "")
        console.print(Panel("\n".join(lines), title=f"itinerary: {city}", border_style="green"))
    elif trip.get("reason"):
        console.print(Panel(Text(str(trip["reason"])), title="no trip", border_style="red"))
    by_sub, _ = costs(scenario, execution)
    table = Table(title="where the money went")
    table.add_column("sub-task")
    table.add_column("tools called")
    table.add_column("paid", justify="right")
    for sub, (usd, tools) in by_sub.items():
        table.add_row(sub, ", ".join(tools), f"${usd:.2f}")
    extras = execution.get("optional") or []
    extra_paid = Decimal(str(execution.get("optional_paid") or 0))
    paid = Decimal(str(execution["paid"])) + extra_paid
    calls = len(execution["executed"]) + len(extras)
    table.add_row("[bold]total[/bold]", f"{calls} calls", f"[bold]${paid:.2f}[/bold]")
    console.print(table)
    skipped = execution.get("skipped_optional") or []
    if extras or skipped:
        console.print(
            f"Optional refinements (re-rank a shortlist by reviews): {len(extras)} paid "
            f"(${extra_paid:.2f}), {len(skipped)} skipped"
            + (f": {', '.join(skipped)}" if skipped else "")
            + ". The regime counts the plan's reserved money as spent."
        )
    opt = Decimal(best.paid)
    first = execution.get("cost")
    console.print(
        f"Paid [bold]${paid:.2f}[/bold] of ${scenario.budget} (the plan: "
        f"${execution['paid']:.2f}). The cheapest possible "
        f"path with the same events (the replanning exact planner): [bold]${opt:.2f}[/bold]"
        + (f"; the plan known before the first call cost ${first}" if first is not None else "")
        + f". Replans: {execution['replans']}. Model calls: {tracker.spent.model_calls}, "
        f"tokens {tracker.spent.input_tokens} in / {tracker.spent.output_tokens} out."
    )
    console.print(spend_tree(tracker.tree()))


def costs(
    scenario: Any, execution: dict[str, Any]
) -> tuple[dict[str, tuple[Decimal, list[str]]], dict[str, Decimal]]:
    """Paid per sub-task (with the tools called, optional refinements included) and per tool."""
    sub_of = {t.name: t.subtask for t in (*scenario.all_tools(), *scenario.extras)}
    by_sub: dict[str, list[Any]] = {}
    by_tool: dict[str, Decimal] = defaultdict(Decimal)
    for call in [*execution["executed"], *(execution.get("optional") or [])]:
        sub = sub_of.get(call["tool"], "?")
        row = by_sub.setdefault(sub, [Decimal(0), []])
        row[0] += Decimal(str(call["cost"]))
        row[1].append(call["tool"])
        by_tool[call["tool"]] += Decimal(str(call["cost"]))
    return {k: (v[0], v[1]) for k, v in by_sub.items()}, dict(by_tool)


def spend_png(scenario: Any, world: Any, execution: dict[str, Any], best: Any, path: Path) -> str:
    """A PNG: what each sub-task cost, one bar segment per tool, next to the cheapest path."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "no PNG: matplotlib is not installed (pip install 'agent-budget[plot]')"
    by_sub, _ = costs(scenario, execution)
    best_exec = {"executed": [c.to_dict() for c in best.executed]}
    best_sub, _ = costs(scenario, best_exec)
    subs = list(dict.fromkeys([*by_sub, *best_sub]))
    fig, ax = plt.subplots(figsize=(8, 4.2))
    for i, sub in enumerate(subs):
        left = 0.0
        sub_of = {t.name: t.subtask for t in (*scenario.all_tools(), *scenario.extras)}
        for call in [*execution["executed"], *(execution.get("optional") or [])]:
            if sub_of.get(call["tool"]) != sub:
                continue
            ax.barh(i + 0.2, call["cost"], left=left, height=0.36, edgecolor="white")
            if call["cost"] > 0.6:
                ax.text(
                    left + 0.05,
                    i + 0.2,
                    call["tool"].replace(f"{sub}_", "")[:18],
                    va="center",
                    fontsize=6,
                )
            left += call["cost"]
        ax.barh(
            i - 0.2, float(best_sub.get(sub, (Decimal(0), []))[0]), height=0.36, color="#bbbbbb"
        )
    ax.set_yticks(range(len(subs)), subs)
    ax.invert_yaxis()
    ax.set_xlabel("USD (colour: the agent's calls, one segment per call; grey: the cheapest path)")
    ax.set_title(
        f"Where the money went: paid "
        f"${execution['paid'] + (execution.get('optional_paid') or 0):.2f} of ${scenario.budget}, "
        f"cheapest possible ${float(best.paid):.2f}"
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return f"wrote {path}"


def run_problem(path: Path, *, method: str = "exact", seed: int = 0, as_json: bool = False,
                console: Console | None = None) -> dict[str, Any]:  # fmt: skip
    """Plan and execute a PLANNING_FORMAT problem with its events through the agent's
    planner loop; returns the execution in the ``--execute`` shape (printed)."""
    from agent_budget import BudgetTracker
    from agent_budget.agents.travel.graph import build_problem_agent, plan_json
    from agent_budget.planners import InvalidProblem, load_problem
    from agent_budget.tools.travel.problem_world import ProblemWorld

    console = console or Console()
    try:
        problem = load_problem(Path(path))
    except InvalidProblem as exc:
        raise DemoInputError(str(exc)) from None
    if method not in ("exact", "cats"):
        raise DemoInputError(f"unknown method {method!r}: use exact or cats")
    world = ProblemWorld(problem, seed=seed)
    agent = build_problem_agent(world, method=method)  # type: ignore[arg-type]
    tracker = BudgetTracker(agent.budget)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        state = agent.invoke({"messages": []}, {"configurable": {"budget_tracker": tracker}})
    execution = plan_json(state)
    if as_json:
        console.print_json(json.dumps(execution))
    else:
        table = Table(title=f"{path}: {execution['status']}")
        for col in ("#", "tool", "paid", "ok"):
            table.add_column(col)
        for i, call in enumerate(execution["executed"], 1):
            table.add_row(str(i), call["tool"], f"{call['cost']}", "yes" if call["ok"] else "no")
        console.print(table)
        for line in world.log:
            console.print(Text(f"event {line}", style="magenta"))
        console.print(
            f"paid {execution['paid']}, replans {execution['replans']}, goal reached: "
            f"{execution['goal_reached']}"
            + (f" ({execution.get('reason')})" if execution.get("reason") else "")
        )
    return execution
