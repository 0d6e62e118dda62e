"""`agent-budget demo`: the travel, search and basic demos, end to end."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from agent_budget.cli._common import console, print_error, probe_or_exit


def demo(
    name: Annotated[
        str, typer.Argument(help="Which demo: travel (default), search or basic")
    ] = "travel",
    question: Annotated[str | None, typer.Argument(help="search: the question to research")] = None,
    model: Annotated[
        str,
        typer.Option("--model", help="Model to run: local:smollm2-135m, openai/gpt-4.1-mini, ..."),
    ] = "local:smollm2-135m",
    scenario: Annotated[
        Path | None, typer.Option(help="travel: a scenario file (YAML/JSON) to replay")
    ] = None,
    request: Annotated[
        str | None, typer.Option(help="travel: your own request, over the scenario's tools")
    ] = None,
    problem: Annotated[
        Path | None,
        typer.Option(help="travel: plan and execute a PLANNING_FORMAT.md problem instead"),
    ] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="travel: print the execution as JSON (--execute shape)")
    ] = False,
    png: Annotated[
        Path, typer.Option(help="travel: where to write the PNG of where the money went")
    ] = Path("travel-spend.png"),
    backend: Annotated[
        str, typer.Option(help="search: offline (default) | ddgs | tavily | searxng")
    ] = "offline",
    queries: Annotated[int, typer.Option(help="search: the Query budget (searches)")] = 4,
    urls: Annotated[int, typer.Option(help="search: the URL budget (page reads)")] = 2,
    usd: Annotated[str, typer.Option(help="search: the USD budget")] = "0.05",
) -> None:
    """Run a budgeted agent end to end (offline on the embedded on-device model by default)."""
    if name not in ("travel", "search", "basic"):
        print_error(f"unknown demo {name!r}; available: travel, search, basic")
        raise typer.Exit(2)
    if question is not None and name != "search":
        print_error(f"demo {name} takes no question (only the search demo does)")
        raise typer.Exit(2)
    if name == "search":
        _demo_search(question, model, backend, queries, urls, usd)
        return

    if name == "travel":
        from agent_budget.demos.travel import DemoInputError, checked, run, run_problem

        with _exit_codes(DemoInputError):
            if problem is not None:
                run_problem(problem, as_json=json_output, console=console)
                return
            checked(scenario, request)  # bad input fails here, before the model is probed
            if model.startswith("local:") and not json_output:
                probe_or_exit(model)
            run(
                scenario_path=scenario,
                request=request,
                model_spec=model,
                console=console,
                png=png,
                as_json=json_output,
            )
        return
    from agent_budget.demos.basic import run_both

    if model.startswith("local:"):
        probe_or_exit(model)
    with _exit_codes():
        run_both(model_spec=model, console=console)


def _demo_search(
    question: str | None, model: str, backend: str, queries: int, urls: int, usd: str
) -> None:
    from agent_budget.demos.search import DemoInputError, checked, research_tools, run

    with _exit_codes(DemoInputError):
        checked(question, backend, queries, urls, usd)  # bad input: exit 2, no model loaded
        research_tools(backend.strip().lower())  # a backend that cannot start, too
        if model.startswith("local:"):
            probe_or_exit(model)
        run(question, model_spec=model, backend=backend, queries=queries, urls=urls, usd=usd,
            console=console)  # fmt: skip


@contextmanager
def _exit_codes(*input_errors: type[Exception]) -> Iterator[None]:
    """A demo's errors as exit codes, each with its message: bad input 2, a budget or
    model error 1."""
    from agent_budget.errors import AgentBudgetError

    try:
        yield
    except input_errors as exc:
        print_error(exc)
        raise typer.Exit(2) from None
    except AgentBudgetError as exc:
        print_error(exc)
        raise typer.Exit(1) from None
