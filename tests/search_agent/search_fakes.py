"""The network edge of the search-agent tests: a scripted chat model whose structured
replies (plans, verdicts) come from queues, and search / page tools that count their bodies.
Everything between them (graphs, with_budget, the ledger) is real."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from typing import Any

from fakes import ScriptedChat
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.tools import BaseTool, tool
from pydantic import Field

FAKE_MODEL = "fake-gpt"
MODEL_PRICES = {FAKE_MODEL: {"input": 1.0, "output": 2.0}}  # USD per million tokens
_IDS = itertools.count()


class QueuedChat(ScriptedChat):
    """`ScriptedChat`, plus: a structured call for schema NAME takes the next entry of
    ``queued[NAME]``: a dict (the tool call's arguments) or a str (a reply in plain text,
    not the JSON asked for). An empty queue falls back to ``structured[NAME]``."""

    queued: dict[str, list[Any]] = Field(default_factory=dict)
    structured_calls: list[str] = Field(default_factory=list)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        tools = [t["function"]["name"] for t in kwargs.get("tools") or ()]
        forced = kwargs.get("ls_structured_output_format") is not None or kwargs.get(
            "tool_choice"
        ) not in (None, "auto", "none")
        if forced and len(tools) == 1:
            with self.lock:
                self.structured_calls.append(tools[0])
                queue = self.queued.get(tools[0]) or []
                entry = queue.pop(0) if queue else None
                if entry is not None:
                    self.seen.append(list(messages))
            if entry is not None:
                usage = {"input_tokens": 100, "output_tokens": 20, "total_tokens": 120}
                meta = {"model_name": self.model_name}
                if isinstance(entry, str):
                    msg = AIMessage(content=entry, usage_metadata=usage, response_metadata=meta)
                else:
                    call = {"name": tools[0], "args": entry, "id": f"s_{next(_IDS)}"}
                    msg = AIMessage(
                        content="", tool_calls=[call], usage_metadata=usage, response_metadata=meta
                    )
                return ChatResult(generations=[ChatGeneration(message=msg)])
        return super()._generate(messages, stop, run_manager, **kwargs)


class Bodies:
    """What the tool bodies were called with (thread-safe: parallel calls run in threads)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def hit(self, name: str, arg: str) -> None:
        with self.lock:
            self.calls.append((name, arg))

    def count(self, name: str) -> int:
        return sum(1 for n, _ in self.calls if n == name)


def fake_tools(bodies: Bodies, page: Callable[[str], str] | None = None) -> list[BaseTool]:
    """``web_search`` / ``fetch_page`` with the search package's names and arguments."""

    @tool
    def web_search(query: str) -> str:
        """query: a few keywords to search for."""
        bodies.hit("web_search", query)
        return f"1. Result for {query}\n   url: doc://{query.replace(' ', '-')}\n   snippet"

    @tool
    def fetch_page(url: str) -> str:
        """url: the URL of a search result to read."""
        bodies.hit("fetch_page", url)
        return page(url) if page is not None else f"Text of {url}: the answer is 42."

    return [web_search, fetch_page]


def plan(*queries: str) -> dict[str, Any]:
    return {"queries": list(queries)}


def verdict(decision: str, summary: str = "s", next_query: str = "") -> dict[str, Any]:
    return {"decision": decision, "summary": summary, "next_query": next_query}
