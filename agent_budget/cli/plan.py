"""`agent-budget plan`: the cheapest plan over priced tools (PLANNING_FORMAT.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from agent_budget.cli._common import console, err_console, print_error


def plan(
    problem: Annotated[
        Path | None,
        typer.Argument(
            help="A planning problem (PLANNING_FORMAT.md); with --generate, the file to write"
        ),
    ] = None,
    method: Annotated[str, typer.Option(help="Planner: exact | cats")] = "exact",
    budget: Annotated[str | None, typer.Option(help="Override the problem's budget")] = None,
    seed: Annotated[int, typer.Option(help="Seed for cats and for failure draws")] = 0,
    execute: Annotated[
        bool, typer.Option("--execute", help="Run the plan with the problem's events, replanning")
    ] = False,
    json_output: Annotated[bool, typer.Option("--json", help="One JSON object on stdout")] = False,
    generate: Annotated[
        int | None,
        typer.Option(metavar="N_TOOLS", help="Write a random problem with N tools instead"),
    ] = None,
    failure_rate: Annotated[
        float, typer.Option(help="With --generate: the highest tool failure rate")
    ] = 0.0,
) -> None:
    """Find the cheapest plan over priced tools that fits the budget (or say why none does)."""
    import json
    import warnings
    from decimal import Decimal, InvalidOperation

    from agent_budget.planners import (
        METHODS,
        InvalidProblem,
        PlannerGaveUp,
        PlanningWarning,
        load_problem,
    )
    from agent_budget.planners import execute as run_plan
    from agent_budget.planners import plan as make_plan
    from agent_budget.planners.generate import generate_problem
    from agent_budget.planners.render import plan_table

    def bad_input(message: str) -> None:
        err_console.print(message, style="red", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(2)

    if generate is not None:
        try:
            made = generate_problem(generate, seed=seed, failure_rate=failure_rate)
        except ValueError as exc:
            bad_input(f"--generate: {exc}")
        else:
            if problem is None:
                typer.echo(made.to_json())
            else:
                problem.write_text(made.to_json() + "\n")
            return
    if problem is None:
        bad_input("give a problem file: agent-budget plan PROBLEM.json (or --generate N_TOOLS)")
        return
    if method not in METHODS:
        bad_input(f"unknown --method {method!r}: use one of {', '.join(METHODS)}")
    limit: Decimal | None = None
    if budget is not None:
        try:
            limit = Decimal(budget)
        except InvalidOperation:
            bad_input(f"--budget must be a number, got {budget!r}")
        if limit is not None and (not limit.is_finite() or limit < 0):
            bad_input(f"--budget must be a finite number >= 0, got {budget!r}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", PlanningWarning)
        try:
            loaded = load_problem(problem)
            result = (
                run_plan(loaded, method, seed=seed, budget=limit)
                if execute
                else make_plan(loaded, method, seed=seed, budget=limit)
            )
        except InvalidProblem as exc:
            bad_input(str(exc))
            return
        except PlannerGaveUp as exc:
            print_error(exc)
            raise typer.Exit(1) from None
    for warning in caught:
        err_console.print(
            f"warning: {warning.message}", style="yellow", markup=False, soft_wrap=True
        )
    if json_output:
        typer.echo(json.dumps(result.to_dict()))
    else:
        console.print(plan_table(result, loaded, title=str(problem)))
