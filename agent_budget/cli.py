"""The `agent-budget` command. Thin: each command parses its flags and calls the library.

Heavy modules (litellm, llama_cpp, matplotlib, langchain integrations) are imported inside the
commands that need them, so `agent-budget --help` stays fast.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

app = typer.Typer(
    name="agent-budget",
    help="Budgets for LangGraph / LangChain agents: see, cap and plan what an agent spends.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console()
err_console = Console(stderr=True)


def print_error(message: object) -> None:
    """An error on stderr, verbatim: a message quoting user input must not be read as markup."""
    err_console.print(str(message), style="red", markup=False, highlight=False, soft_wrap=True)


@app.callback()
def _root() -> None:
    """Budgets for LangGraph / LangChain agents: see, cap and plan what an agent spends."""


@app.command()
def check(
    path: Annotated[Path, typer.Argument(help="A budget file: .yaml, .toml or .json")],
) -> None:
    """Validate a budget file and print its limits as a table."""
    from agent_budget.budget import Budget
    from agent_budget.errors import InvalidBudget
    from agent_budget.render import budget_table

    try:
        budget = Budget.from_file(path)
    except InvalidBudget as exc:
        print_error(exc)
        raise typer.Exit(2) from None
    console.print(budget_table(budget, title=str(path)))


@app.command()
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
    from agent_budget.errors import AgentBudgetError

    if name == "search":
        _demo_search(question, model, backend, queries, urls, usd)
        return

    if name == "travel":
        from agent_budget.demos.travel import DemoInputError, checked, run, run_problem

        try:
            if problem is not None:
                run_problem(problem, as_json=json_output, console=console)
                return
            checked(scenario, request)  # bad input fails here, before the model is probed
            if model.startswith("local:") and not json_output:
                _probe_or_exit(model)
            run(
                scenario_path=scenario,
                request=request,
                model_spec=model,
                console=console,
                png=png,
                as_json=json_output,
            )
        except DemoInputError as exc:
            print_error(exc)
            raise typer.Exit(2) from None
        except AgentBudgetError as exc:
            print_error(exc)
            raise typer.Exit(1) from None
        return
    from agent_budget.demos.basic import run_both

    if model.startswith("local:"):
        _probe_or_exit(model)
    try:
        run_both(model_spec=model, console=console)
    except AgentBudgetError as exc:
        print_error(exc)
        raise typer.Exit(1) from None


def _demo_search(
    question: str | None, model: str, backend: str, queries: int, urls: int, usd: str
) -> None:
    from agent_budget.demos.search import DemoInputError, checked, research_tools, run
    from agent_budget.errors import AgentBudgetError

    try:
        checked(question, backend, queries, urls, usd)  # bad input: exit 2, no model loaded
        research_tools(backend.strip().lower())  # a backend that cannot start, too
        if model.startswith("local:"):
            _probe_or_exit(model)
        run(question, model_spec=model, backend=backend, queries=queries, urls=urls, usd=usd,
            console=console)  # fmt: skip
    except DemoInputError as exc:
        print_error(exc)
        raise typer.Exit(2) from None
    except AgentBudgetError as exc:
        print_error(exc)
        raise typer.Exit(1) from None


@app.command()
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


# --- the spend ledger -------------------------------------------------------------------------

LedgerOption = Annotated[
    str | None,
    typer.Option(
        "--ledger",
        envvar="AGENT_BUDGET_LEDGER",
        help="SQLite file or postgresql:// URL (default: $AGENT_BUDGET_LEDGER)",
        show_default=False,
    ),
]
ledger_app = typer.Typer(
    help="The spend ledger: export, prune and verify its records.", no_args_is_help=True
)
app.add_typer(ledger_app, name="ledger")


def _ledger_or_exit(location: str | None) -> Any:
    from agent_budget.errors import LedgerUnavailable
    from agent_budget.ledger.report import open_for_reading

    if not location:
        err_console.print(
            "[red]no ledger: pass --ledger PATH_OR_URL or set AGENT_BUDGET_LEDGER[/red]"
        )
        raise typer.Exit(2)
    try:
        return open_for_reading(location)
    except LedgerUnavailable as exc:
        print_error(exc)
        raise typer.Exit(1) from None


def _choice(value: str, choices: tuple[str, ...], flag: str) -> str:
    if value not in choices:
        err_console.print(f"[red]{flag} {value!r}: use one of {', '.join(choices)}[/red]")
        raise typer.Exit(2)
    return value


@app.command()
def report(
    since: Annotated[str, typer.Option(help="'7d', '12h', '2025-01-31', or 'all'")] = "7d",
    by: Annotated[
        str, typer.Option(help="user|tenant|model|tool|run|thread|node|kind|day|hour")
    ] = "user",
    fmt: Annotated[str, typer.Option("--format", help="table|json|csv")] = "table",
    plot: Annotated[Path | None, typer.Option(help="Also write a PNG of spend over time")] = None,
    until: Annotated[str | None, typer.Option(help="End of the window (default: now)")] = None,
    ledger: LedgerOption = None,
) -> None:
    """Spend per user / model / tool / run / day, from the ledger."""
    from agent_budget.ledger import report as rep

    _choice(by, rep.BY_CHOICES, "--by")
    _choice(fmt, ("table", "json", "csv"), "--format")
    led = _ledger_or_exit(ledger)
    start = None if since == "all" else since
    try:
        led.expire()
        rows = led.spend(by=by, since=start, until=until)
        if plot is not None:
            written = rep.write_plot(led, by, plot, since=start, until=until)
            err_console.print(f"wrote {written}")
    except ValueError as exc:
        print_error(exc)
        raise typer.Exit(2) from None
    if fmt == "json":
        typer.echo(rep.to_json(rows, ledger=led.location, by=by, since=start, until=until))
    elif fmt == "csv":
        typer.echo(rep.to_csv(rows), nl=False)
    else:
        title = f"Spend by {by}, {rep.describe_since(start)} ({led.location})"
        console.print(rep.spend_table(rows, by, title))


@ledger_app.command("export")
def ledger_export(
    fmt: Annotated[str, typer.Option("--format", help="csv|json")] = "csv",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File (default: stdout)")
    ] = None,
    since: Annotated[str | None, typer.Option(help="'7d', '2025-01-31', ...")] = None,
    until: Annotated[str | None, typer.Option()] = None,
    ledger: LedgerOption = None,
) -> None:
    """Every ledger row (charges, refusals, reservations) as CSV or JSON, streamed."""
    from agent_budget.ledger.report import write_export

    _choice(fmt, ("csv", "json"), "--format")
    led = _ledger_or_exit(ledger)
    try:
        if output is None:
            write_export(led, fmt, sys.stdout, since=since, until=until)
        else:
            with output.open("w", encoding="utf-8", newline="") as fh:
                n = write_export(led, fmt, fh, since=since, until=until)
            err_console.print(f"wrote {n} rows to {output}")
    except ValueError as exc:
        print_error(exc)
        raise typer.Exit(2) from None


@ledger_app.command("verify")
def ledger_verify(
    repair: Annotated[
        bool, typer.Option("--repair", help="Rebuild the running totals from the rows")
    ] = False,
    ledger: LedgerOption = None,
) -> None:
    """Check the running totals (what shared limits read) against the rows they sum."""
    from rich.table import Table

    led = _ledger_or_exit(ledger)
    led.expire()
    diffs = led.verify(repair=repair)
    if not diffs:
        console.print(f"[green]ok[/green]: the totals of {led.location} match its rows")
        return
    table = Table(title=f"{len(diffs)} totals differ from the rows", title_justify="left")
    for col in ("scope", "key", "span_s", "bucket", "column", "totals", "rows"):
        table.add_column(col, justify="right" if col in ("totals", "rows") else "left")
    for d in diffs[:30]:
        table.add_row(*(str(d[c]) for c in ("scope", "key", "span_s", "bucket", "column",
                                            "totals", "rows")))  # fmt: skip
    console.print(table)
    if repair:
        console.print("[green]repaired[/green]: the totals were rebuilt from the rows")
        return
    console.print("run `agent-budget ledger verify --repair` to rebuild them from the rows")
    raise typer.Exit(1)


@ledger_app.command("prune")
def ledger_prune(
    before: Annotated[str, typer.Option(help="Delete rows older than this: '2025-01-31', '90d'")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation")] = False,
    ledger: LedgerOption = None,
) -> None:
    """Delete ledger rows recorded before a date (live reservations are kept)."""
    led = _ledger_or_exit(ledger)
    if not yes and not typer.confirm(
        f"Delete every row of {led.location} recorded before {before}?"
    ):
        raise typer.Exit(1)
    try:
        removed = led.prune(before)
    except ValueError as exc:
        print_error(exc)
        raise typer.Exit(2) from None
    console.print(f"deleted {removed} rows recorded before {before} from {led.location}")


models_app = typer.Typer(help="On-device and cloud models: list, price, ask.", no_args_is_help=True)
app.add_typer(models_app, name="models")


@models_app.command("list")
def models_list() -> None:
    """The on-device models agent-budget knows by name, and whether they are installed."""
    from rich.table import Table

    from agent_budget.models.catalog import available

    table = Table(title="on-device models")
    for col in ("name", "model", "GGUF"):
        table.add_column(col)
    for name, description, path in available():
        table.add_row(name, description, path or "[red]not installed[/red]")
    console.print(table)


def _probe_or_exit(model: str) -> None:
    """Run the on-device model once in a child process: a bad build ends with a clear message,
    not with "Illegal instruction" from this process."""
    from agent_budget.models.selfcheck import probe

    result = probe(model)
    if not result.ok:
        print_error(result.message)
        raise typer.Exit(1)


@models_app.command("check")
def models_check(
    model: Annotated[str, typer.Argument(help="The on-device model to probe")] = (
        "local:smollm2-135m"
    ),
) -> None:
    """Is the installed llama.cpp build portable, and does the on-device model run here?"""
    from agent_budget.models.portability import check_installed_llama

    report = check_installed_llama()
    console.print(report.render(), markup=False, highlight=False)
    _probe_or_exit(model)
    console.print(f"{model} runs on this machine.")
    if report.verdict == "not-portable":
        raise typer.Exit(1)


@models_app.command("price")
def models_price(
    model: Annotated[str, typer.Argument(help="local:smollm2-135m, openai/gpt-4.1-mini, ...")],
) -> None:
    """The price the budget tracker will charge for a model (same as `prices show`)."""
    prices_show(model, None)


@models_app.command("ask")
def models_ask(
    model: Annotated[str, typer.Argument(help="A model name, e.g. local:smollm2-135m")],
    prompt: Annotated[str, typer.Argument(help="What to ask")],
    max_tokens: Annotated[int, typer.Option(help="Output cap")] = 128,
    price: Annotated[
        str | None, typer.Option(help="USD per million input,output tokens, e.g. 0.15,0.60")
    ] = None,
    api_base: Annotated[str | None, typer.Option(help="OpenAI-compatible server URL")] = None,
) -> None:
    """Ask one question and print the reply with its tokens and cost."""
    from agent_budget.errors import AgentBudgetError
    from agent_budget.models import model_price, resolve
    from agent_budget.prices.usage import TokenUsage

    try:
        given = tuple(price.split(",")) if price else None
        chat = resolve(model, price=given, api_base=api_base, max_tokens=max_tokens)
        reply = chat.invoke(prompt)
        usage = reply.usage_metadata or {"input_tokens": 0, "output_tokens": 0}
        name = reply.response_metadata.get("model_name", model)
        cost = model_price(name).cost_of(TokenUsage.from_usage_metadata(usage))
    except (AgentBudgetError, ValueError) as exc:
        print_error(exc)
        raise typer.Exit(2) from None
    console.print(str(reply.content), markup=False, highlight=False)
    err_console.print(
        f"[dim]{name}: {usage['input_tokens']} in + {usage['output_tokens']} out tokens, "
        f"${cost:f}[/dim]"
    )


@app.command()
def spend(
    thread: Annotated[str, typer.Argument(help="The thread_id of a checkpointed run")],
    checkpoints: Annotated[Path, typer.Option("--checkpoints", help="A SqliteSaver database file")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead")] = False,
) -> None:
    """A thread's spend and its tree of sub-budgets, from a SqliteSaver checkpoint file."""
    import json
    import sqlite3

    from agent_budget.budget import Budget
    from agent_budget.integrations.langgraph import thread_snapshot
    from agent_budget.render import spend_tree
    from agent_budget.tracker import BudgetTracker

    if not checkpoints.is_file():
        print_error(f"{checkpoints}: no such checkpoint file")
        raise typer.Exit(2)
    try:
        from langgraph.checkpoint.sqlite import SqliteSaver
    except ImportError:
        print_error("reading checkpoints needs langgraph-checkpoint-sqlite (pip install it)")
        raise typer.Exit(2) from None
    try:
        conn = sqlite3.connect(f"file:{checkpoints}?mode=ro", uri=True)
        snapshot = thread_snapshot(SqliteSaver(conn), thread)
    except sqlite3.DatabaseError as exc:
        print_error(f"{checkpoints}: not a readable SqliteSaver database ({exc})")
        raise typer.Exit(2) from None
    if snapshot is None:
        print_error(f"thread {thread!r} has no budget state in {checkpoints}")
        raise typer.Exit(1)
    tree = BudgetTracker.restore(Budget(name=thread), snapshot).tree()
    if as_json:
        console.print_json(json.dumps({**tree.to_dict(), "events": snapshot.get("events", [])}))
    else:
        console.print(spend_tree(tree))


from agent_budget.bench.cli import bench_app  # noqa: E402  # light: imports on use

app.add_typer(bench_app, name="bench")

prices_app = typer.Typer(help="What calls cost: model prices and where they come from.")
app.add_typer(prices_app, name="prices")


@prices_app.command("show")
def prices_show(
    model: Annotated[str, typer.Argument(help="gpt-4o-mini, openai/gpt-4.1-mini, local:...")],
    budget_file: Annotated[
        Path | None,
        typer.Option(
            "--budget", help="A budget file whose model_prices / price_map / aliases apply"
        ),
    ] = None,
) -> None:
    """A model's whole price (input, output, cache read/write, reasoning, tiers above a
    prompt size, per-query prices) and where each number comes from."""
    from decimal import Decimal

    from rich.table import Table

    from agent_budget.budget import Budget
    from agent_budget.errors import AgentBudgetError, UnknownPrice
    from agent_budget.models import model_price
    from agent_budget.prices.report import price_rows

    unknown: UnknownPrice | None = None
    try:
        budget = Budget.from_file(budget_file) if budget_file else Budget()
        try:
            price = model_price(model, budget)
        except UnknownPrice as exc:  # show what the map has (a $0 stub) and why it is refused
            unknown = exc
            price = model_price(model, budget.model_copy(update={"strict_prices": False}))
        rows = price_rows(price)
    except AgentBudgetError as exc:
        print_error(exc)
        raise typer.Exit(2) from None
    if unknown is not None:
        print_error(unknown)
        if price.entry is None:
            raise typer.Exit(2)

    def per_m(value: Decimal) -> str:
        return f"${(value * 1_000_000).normalize():f}"

    cached = price.cached_input_per_token
    note = f" ({price.note})" if price.note else ""
    entry = f", entry {price.entry.name!r}" if price.entry is not None else ""
    console.print(
        f"{price.model}: {per_m(price.input_per_token)} in"
        + ("" if cached is None else f" ({per_m(cached)} cached)")
        + f" / {per_m(price.output_per_token)} out per million tokens  [{price.source}]"
        + f"\nsource: {price.price_source}{entry}{note}",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    table = Table(show_header=True, header_style="bold")
    for col in ("price", "USD", "unit", "source"):
        table.add_column(col, overflow="fold")
    for row in rows:
        table.add_row(row.what, row.usd, row.unit, row.source)
    if rows:
        console.print(table)
    if unknown is not None:
        raise typer.Exit(2)


@prices_app.command("check")
def prices_check(
    budget_file: Annotated[
        Path | None, typer.Option("--budget", help="A budget file: its models and prices")
    ] = None,
    ledger: Annotated[
        str | None, typer.Option("--ledger", help="A ledger (SQLite file or postgresql:// URL)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead")] = False,
) -> None:
    """List the models a budget file or a ledger used whose price is unknown or $0 (LiteLLM
    placeholder entries included). Exit 1 if there is one."""
    import dataclasses
    import json

    from rich.table import Table

    from agent_budget.budget import Budget
    from agent_budget.errors import AgentBudgetError
    from agent_budget.prices.report import (
        check_models,
        models_in_budget,
        models_in_ledger,
        problems,
    )

    if budget_file is None and ledger is None:
        print_error("give --budget FILE, --ledger LOCATION, or both")
        raise typer.Exit(2)
    try:
        budget = Budget.from_file(budget_file) if budget_file else Budget()
        models = models_in_budget(budget) if budget_file else {}
        if ledger:
            models.update(models_in_ledger(ledger))
        checks = check_models(budget, models)
    except AgentBudgetError as exc:
        print_error(exc)
        raise typer.Exit(2) from None
    bad = problems(checks)
    if as_json:
        console.print_json(json.dumps([dataclasses.asdict(c) for c in checks]))
    else:
        table = Table(title=f"{len(checks)} models, {len(bad)} without a real price")
        for col in ("model", "status", "source", "detail", "used in"):
            table.add_column(col, overflow="fold")
        style = {"zero": "red", "unknown": "red", "fallback": "yellow", "free": "cyan"}
        for c in checks:
            status = f"[{style[c.status]}]{c.status}[/]" if c.status in style else c.status
            table.add_row(c.model, status, c.source, c.detail, c.where)
        console.print(table)
    if bad:
        raise typer.Exit(1)


@prices_app.command("pin")
def prices_pin(
    out: Annotated[Path, typer.Argument(help="The price map file to write (JSON)")],
    models: Annotated[
        list[str] | None, typer.Option("--model", help="Only these models (repeatable)")
    ] = None,
) -> None:
    """Write the installed LiteLLM's price map (or some of its entries) to a file a budget
    can pin with `price_map:`, so later LiteLLM upgrades do not change what runs cost."""
    import json

    from agent_budget.prices.litellm_map import bundled_entry, import_litellm, litellm_version

    entries: dict[str, object] = {}
    if models:
        for name in models:
            entry = bundled_entry(name)
            if entry is None or entry.is_zero:
                print_error(f"LiteLLM {litellm_version()} has no real price for {name!r}")
                raise typer.Exit(2)
            entries[entry.name] = dict(entry.info)
    else:
        entries = dict(import_litellm().model_cost)
    out.write_text(json.dumps(entries, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    console.print(
        f"wrote {len(entries)} entries of LiteLLM {litellm_version()}'s price map to {out}",
        markup=False,
        highlight=False,
    )


def main() -> None:
    app()


if __name__ == "__main__":
    main()
