"""The web-search questions as a task set of the evaluation harness, and the three agents
as its configurations:

    tasks: {set: search, limit: 12}
    budgets:
      - {label: q=5, tool_calls: {web_search: 5, fetch_page: 5}}
    configs:
      - {name: bats, agent: "agent_budget.agents.search.bench:bats_agent"}
      - {name: react+budget, agent: "agent_budget.agents.search.bench:react_agent"}
      - {name: react, agent: "agent_budget.agents.search.bench:react_agent",
         budget: {message_template: ""}}                   # the budget hidden

A sweep point is one research budget (Query / URL / USD); every configuration's ``budget``
adds the tool prices and labels (`research_config_budget`). A task passes when the reply
names one of the question's accepted answers (`SearchQuestion.correct`).
"""

from __future__ import annotations

import threading
from typing import Any

from agent_budget.agents.search.budgeting import TOOL_LABELS, TOOL_PRICES
from agent_budget.bench.tasks import Judge, Score, Task, TaskSet

DEFAULT_BACKEND = "offline"

_TOOLS: dict[tuple[str, int, int], list[Any]] = {}
_LOCK = threading.Lock()


def research_config_budget(steps: int | None = None) -> dict[str, Any]:
    """The Budget fields every configuration of a search sweep shares: tool prices, the
    Query / URL labels, and the step limit (model calls) when one is set."""
    data: dict[str, Any] = {
        "prices": {k: str(v) for k, v in TOOL_PRICES.items()},
        "tool_labels": dict(TOOL_LABELS),
    }
    if steps is not None:
        data["model_calls"] = steps
    return data


def search_tasks(limit: int | None = None, offset: int = 0) -> TaskSet:
    """The offline question set (`agent_budget.tools.search.questions`), ``limit`` of them
    from ``offset``."""
    from agent_budget.tools.search.questions import load_questions

    questions = list(load_questions())[offset:]
    if limit is not None:
        questions = questions[:limit]
    by_id = {q.id: q for q in questions}

    def score(task: Task, answer: str, judge: Judge | None = None) -> Score:
        ok = bool(by_id[task.id].correct(answer))
        return Score(ok, 1.0 if ok else 0.0, f"expected one of {list(task.expected)}")

    tasks = [
        Task(q.id, q.question, list(q.answers), {"hops": q.hops, "sources": list(q.sources)})
        for q in questions
    ]
    return TaskSet("search", tasks, score)


def tools_for(
    backend: str = DEFAULT_BACKEND, k: int = 5, max_page_chars: int = 4000, progress: bool = True
) -> list[Any]:
    """``[web_search, fetch_page]`` over ``backend`` (``offline`` | ``ddgs`` | ``tavily`` |
    ``searxng``), built once per process: the offline index is opened once. Pages of the
    offline index open from it; a real engine's results are fetched over HTTP."""
    key = (backend, k, max_page_chars)
    with _LOCK:
        tools = _TOOLS.get(key)
        if tools is None:
            from agent_budget.tools.search import (
                HttpFetcher,
                offline_backend,
                offline_fetcher,
                resolve_backend,
                search_tools,
            )

            if backend == "offline":
                engine: Any = offline_backend(progress=progress)
                fetcher: Any = offline_fetcher(backend=engine)
            else:
                engine, fetcher = resolve_backend(backend), HttpFetcher()
            made = search_tools(engine, fetcher, k=k, max_page_chars=max_page_chars)
            tools = _TOOLS[key] = list(made)
        return tools


def bats_agent(
    model: Any, backend: str = DEFAULT_BACKEND, max_rounds: int = 3, k: int = 5,
    max_page_chars: int = 4000,
) -> Any:  # fmt: skip
    """The BATS agent's graph (the runner budgets it)."""
    from agent_budget.agents.search.graph import bats_graph

    return bats_graph(model, tools_for(backend, k, max_page_chars), max_rounds=max_rounds)


def react_agent(
    model: Any, backend: str = DEFAULT_BACKEND, k: int = 5, max_page_chars: int = 4000
) -> Any:
    """The ReAct loop's graph; its configuration's budget decides whether the budget message
    is shown (``message_template: ""`` hides it)."""
    from agent_budget.agents.search.baselines import react_graph

    return react_graph(model, tools_for(backend, k, max_page_chars))
