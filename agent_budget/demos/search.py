"""The web-search demo: a BATS research agent with a Query, a URL and a USD budget.

`run` answers one question with the BATS agent (`agent_budget.agents.search`) over the
offline index of the docs that ship with Python (or a real engine: ``--backend``), on the
embedded on-device model (or any model: ``--model``). It prints the plan, each search and
page read with the budget message the model saw after it, each verifier decision, the
answer, and what was spent.
"""

from __future__ import annotations

import re
import time
import warnings
from decimal import Decimal, InvalidOperation
from typing import Any

from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

DEMO_QUESTION = "What is the default maximum width of wrapped lines in textwrap's TextWrapper?"
BACKENDS = ("offline", "ddgs", "tavily", "searxng")
_BUDGET = re.compile(r"<budget>.*?</budget>", re.S)


class DemoInputError(ValueError):
    """Bad input to the demo (exit code 2): the message says what and where."""


def checked(
    question: str | None, backend: str, queries: int, urls: int, usd: str | float | None
) -> tuple[str, str, Decimal | None]:
    """(question, backend, usd) checked, or `DemoInputError`; before any model loads."""
    text = DEMO_QUESTION if question is None else question.strip()
    if not text:
        raise DemoInputError("the question is empty: ask something, e.g. " + repr(DEMO_QUESTION))
    if len(text) > 1000:
        raise DemoInputError(f"the question is {len(text)} characters long; at most 1000")
    name = backend.strip().lower()
    if name not in BACKENDS:
        raise DemoInputError(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}")
    if queries < 1:
        raise DemoInputError(f"--queries must be at least 1 (got {queries})")
    if urls < 0:
        raise DemoInputError(f"--urls must be 0 or more (got {urls})")
    amount = None
    if usd is not None:
        try:
            amount = Decimal(str(usd))
        except InvalidOperation:
            raise DemoInputError(f"--usd must be a number of dollars (got {usd!r})") from None
        if not amount.is_finite() or amount <= 0:
            raise DemoInputError(f"--usd must be more than 0 (got {usd})")
    return text, name, amount


def research_tools(backend: str, *, small: bool = True) -> list[Any]:
    """The search tools over ``backend``; a backend that cannot start (no key, no URL, its
    package missing) is a `DemoInputError`, before the model loads. ``small``: 3 hits a
    search and pages cut at 1,500 characters, for the 135M on-device model's short context
    (otherwise 5 hits and 4,000 characters)."""
    from agent_budget.agents.search.bench import tools_for
    from agent_budget.tools.search import SearchToolError

    try:
        return tools_for(backend, k=3, max_page_chars=1500) if small else tools_for(backend)
    except SearchToolError as exc:
        raise DemoInputError(f"backend {backend!r}: {exc}") from None


def run(
    question: str | None = None,
    *,
    model_spec: str = "local:smollm2-135m",
    backend: str = "offline",
    queries: int = 4,
    urls: int = 2,
    usd: str | float | None = "0.05",
    console: Console | None = None,
    n_threads: int | None = None,
) -> dict[str, Any]:
    """Answer ``question`` with the BATS agent under a research budget; returns the final
    state (also printed). `DemoInputError` on bad input, before a model loads."""
    from agent_budget import BudgetTracker
    from agent_budget.agents.search import build_bats_agent, research_budget
    from agent_budget.models import resolve

    console = console or Console()
    text, name, amount = checked(question, backend, queries, urls, usd)
    tools = research_tools(name, small=model_spec.startswith("local:"))
    console.print(Panel(Text(text), title="the question", border_style="cyan"))
    started = time.monotonic()
    with console.status(f"loading {model_spec} ..."):
        local: dict[str, Any] = {}
        if model_spec.startswith("local:"):
            local = {"n_ctx": 4096, "n_threads": n_threads}
        model = resolve(model_spec, max_tokens=96, temperature=0, **local)
    budget = research_budget(queries, urls, amount)
    tracker = BudgetTracker(budget)
    console.print(Text(f"budget at the start: {tracker.message()}", style="yellow"))
    agent = build_bats_agent(model, tools, budget)
    config = {"configurable": {"budget_tracker": tracker}, "recursion_limit": 60}
    live = _Live(console)
    final: dict[str, Any] = {"messages": []}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for update in agent.stream({"messages": [("user", text)]}, config, stream_mode="updates"):
            for node, delta in update.items():
                live.node(node, delta or {})
                if delta and "research" in delta:
                    final["research"] = delta["research"]
                if delta and delta.get("messages"):
                    final["messages"] = [*final["messages"], *delta["messages"]]
    answer = _answer(final["messages"])
    console.print(Panel(Text(answer or "(no answer)"), title="the answer", border_style="green"))
    _summary(console, tracker, text, answer, time.monotonic() - started)
    final["answer"] = answer
    return final


class _Live:
    """Prints what each node did as it happens."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.n = 0

    def node(self, node: str, delta: dict[str, Any]) -> None:
        research = delta.get("research") or {}
        if node == "plan" and research.get("plans"):
            p = research["plans"][-1]
            head = "new direction" if p["pivot"] else "plan"
            body = f"{p['mode']} at regime {p['regime']}: {len(p['queries'])} search(es) now, "
            body += f"up to {p['urls']} page(s) after"
            if p["queries"]:
                body += "\nsearching: " + "; ".join(p["queries"])
            if p.get("error"):
                body += f"\n(model gave no usable plan: {p['error'][:80]}; searching the question)"
            self.console.print(Panel(Text(body), title=head, border_style="blue"))
        for msg in delta.get("messages", []):
            kind = getattr(msg, "type", "")
            if kind == "tool":
                self._tool(msg)
            elif kind == "ai" and getattr(msg, "tool_calls", None) and node != "plan":
                calls = ", ".join(f"{c['name']}({_args(c['args'])})" for c in msg.tool_calls)
                self.console.print(Text(f"[{node}] calls {calls}", style="cyan"))
            elif kind == "ai" and node == "agent":
                self.console.print(Text(f"[agent] candidate answer: {msg.content}", style="cyan"))
            elif kind == "ai" and node != "plan":
                self.console.print(Text(f"[{node}] {msg.content}", style="magenta"))
        if node == "verify" and research.get("verdicts"):
            v = research["verdicts"][-1]
            style = {"SUCCESS": "bold green", "CONTINUE": "bold yellow", "PIVOT": "bold magenta"}
            how = "asked" if v["asked"] else "not asked"
            how += ", fallback" if v["fallback"] else ""
            line = Text.assemble(
                ("[verify] ", "cyan"),
                (v["decision"], style[v["decision"]]),
                f" -> {v['acted']} ({how}): {v['summary']}",
            )
            self.console.print(line)

    def _tool(self, msg: Any) -> None:
        self.n += 1
        content = str(msg.content)
        shown = _BUDGET.findall(content)
        body = _BUDGET.sub("", content).strip().replace("\n", " ")
        mark = " (error)" if getattr(msg, "status", "") == "error" else ""
        line = Text.assemble((f"{self.n:>3}. ", "dim"), (f"{msg.name}{mark} ", "bold"), body)
        line.truncate(self.console.width, overflow="ellipsis")
        self.console.print(line, no_wrap=True)
        if shown:
            self.console.print(Text(f"     {shown[-1]}", style="yellow"))


def _summary(console: Console, tracker: Any, question: str, answer: str, seconds: float) -> None:
    s = tracker.spent
    table = Table(title="what the run spent")
    table.add_column("")
    table.add_column("used", justify="right")
    table.add_column("of", justify="right")
    limits = tracker.limits
    for tool, label in (("web_search", "Query budget"), ("fetch_page", "URL budget")):
        table.add_row(label, str(s.tool_calls.get(tool, 0)), str(limits.tool_calls.get(tool, "-")))
    table.add_row("USD", f"${s.usd}", "-" if limits.usd is None else f"${limits.usd}")
    table.add_row("model calls", str(s.model_calls), "-")
    table.add_row("tokens in / out", f"{s.input_tokens} / {s.output_tokens}", "-")
    console.print(table)
    known = _known(question)
    if known is not None:
        verdict = "correct" if known.correct(answer) else "not correct"
        console.print(f"Known question: the answer is {verdict} (accepted: {list(known.answers)}).")
    console.print(f"[dim]{seconds:.1f} s[/dim]")


def _known(question: str) -> Any:
    from agent_budget.tools.search.questions import load_questions

    return next((q for q in load_questions() if q.question == question), None)


def _answer(messages: list[Any]) -> str:
    for m in reversed(messages):
        if getattr(m, "type", "") == "ai" and not getattr(m, "tool_calls", None):
            return str(m.content)
    return ""


def _args(args: dict[str, Any]) -> str:
    return ", ".join(repr(v)[:60] for v in args.values())
