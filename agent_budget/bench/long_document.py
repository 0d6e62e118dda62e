"""The ``long_document`` task set: questions over long documents with known answers, for
sweeping the delegation modes (remote_only, minion, minions, auto) by budget.

```yaml
tasks: {set: long_document, sizes: [20000, 50000], needles: 1, pydoc: 1}
budgets: [0.0005, 0.002, 0.01]
configs:
  - name: minions
    agent: agent_budget.bench.long_document:delegation_agent
    model: openai/gpt-4.1-mini          # the remote (cloud) side
    options: {mode: minions, local: "local:smollm2-135m", max_rounds: 2, max_jobs: 2}
  - name: remote-only
    agent: agent_budget.bench.long_document:delegation_agent
    model: openai/gpt-4.1-mini
    options: {mode: remote_only}
```

Documents are built offline from CPython's own documentation (`delegation.corpus`): a task
carries how to build its document, not the text, so a sweep's file and fingerprint stay
small and every worker builds the same text. Scored by `contains` on the known answers.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Annotated, Any, TypedDict

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AnyMessage
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages

from agent_budget.bench.errors import InvalidSweep
from agent_budget.bench.tasks import Task, TaskSet, contains

MODES = ("remote_only", "local_only", "minion", "minions", "auto")


@lru_cache(maxsize=8)
def document(kind: str, tokens: int | None, seed: int = 0) -> str:
    """The text a task's ``document`` spec names (cached: a sweep asks for it per unit)."""
    from agent_budget.delegation.corpus import needle_document, pydoc_document

    if kind == "needle":
        return needle_document(int(tokens or 0), seed=seed)
    return pydoc_document(tokens)


class LongDocumentTasks(TaskSet):
    """Each task's graph input is the question and its document's spec (``document``)."""

    def graph_input(self, task: Task) -> dict[str, Any]:
        return {
            "messages": [("user", task.input["question"])],
            "document": dict(task.input["document"]),
        }


def long_document_tasks(
    sizes: Sequence[int] = (20_000,),
    needles: int = 1,
    pydoc: int = 1,
    pydoc_tokens: int | None = None,
    seed: int = 0,
) -> TaskSet:
    """``needles`` needle questions on a document of each of ``sizes`` tokens, plus ``pydoc``
    questions over the documentation (cut to ``pydoc_tokens``; all of it when None)."""
    from agent_budget.delegation.corpus import NEEDLES, PYDOC_QUESTIONS

    if not 0 <= needles <= len(NEEDLES):
        raise InvalidSweep(f"tasks.needles: 0 to {len(NEEDLES)} (got {needles})")
    if not 0 <= pydoc <= len(PYDOC_QUESTIONS):
        raise InvalidSweep(f"tasks.pydoc: 0 to {len(PYDOC_QUESTIONS)} (got {pydoc})")
    bad = [s for s in sizes if not isinstance(s, int) or s < 500]
    if bad:
        raise InvalidSweep(f"tasks.sizes: documents of at least 500 tokens (got {bad})")
    tasks = []
    for size in sizes:
        spec = {"kind": "needle", "tokens": size, "seed": seed}
        for i, needle in enumerate(NEEDLES[:needles]):
            q = needle.question
            tasks.append(
                Task(f"needle{size}-{i}", {"question": q.question, "document": spec}, q.answers)
            )
    spec = {"kind": "pydoc", "tokens": pydoc_tokens, "seed": 0}
    for i, q in enumerate(PYDOC_QUESTIONS[:pydoc]):
        tasks.append(Task(f"pydoc-{i}", {"question": q.question, "document": spec}, q.answers))
    return LongDocumentTasks("long_document", tasks, contains)


# --- the agent a sweep runs -------------------------------------------------------------------


class DocumentState(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]
    document: dict[str, Any]


_locals: dict[tuple[str, tuple[tuple[str, Any], ...]], BaseChatModel] = {}


def delegation_agent(
    model: BaseChatModel,
    mode: str = "auto",
    local: str = "local:smollm2-135m",
    local_options: dict[str, Any] | None = None,
    max_rounds: int = 2,
    max_jobs: int = 2,
    max_chunk: int = 2000,
    local_max_tokens: int = 64,
    remote_max_tokens: int = 256,
    remote_json: str = "json_schema",
) -> StateGraph[Any, Any, Any, Any]:
    """One `minions_node` answering the task's question over its document, ``model`` on the
    remote side and ``local`` (loaded once per worker) on the device. It spends as the child
    budget ``minions`` of the run's budget, so the sweep's cells show what each mode costs
    at each budget. ``remote_json``: ``json_object`` for a server that cannot take a schema
    (e.g. a ``llama_cpp.server`` stand-in)."""
    from agent_budget.delegation import Minion, MinionS, minions_node
    from agent_budget.models import resolve

    if mode not in MODES:
        raise InvalidSweep(f"options.mode: {mode!r} is not one of {', '.join(MODES)}")
    opts = {"n_ctx": 4096, "n_threads": 1, "max_tokens": local_max_tokens, **(local_options or {})}
    key = (local, tuple(sorted(opts.items())))
    if key not in _locals:
        _locals[key] = resolve(local, **opts)
    local_model = _locals[key]
    common: dict[str, Any] = {
        "local": local_model,
        "remote": model,
        "max_rounds": max_rounds,
        "local_max_tokens": local_max_tokens,
        "remote_max_tokens": remote_max_tokens,
        "remote_json": remote_json,
    }
    minions = MinionS(**common, max_jobs=max_jobs, max_chunk=max_chunk)
    minion = Minion(**common)

    def documents(state: dict[str, Any]) -> list[str]:
        spec = state["document"]
        return [document(spec["kind"], spec.get("tokens"), int(spec.get("seed", 0)))]

    node = minions_node(
        documents,
        local=local_model,
        remote=model,
        delegate_mode=mode,  # type: ignore[arg-type]
        minions=minions,
        minion=minion,
    )
    graph = StateGraph(DocumentState)
    graph.add_node("delegate", node)
    graph.add_edge(START, "delegate")
    graph.add_edge("delegate", END)
    return graph
