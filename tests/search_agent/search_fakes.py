"""The network edge of the search-agent tests, on top of `fakes`: search / page tools that
record their calls, and the structured replies (plans, verdicts) the scripted model queues
(``ScriptedChat(queued={"SearchPlan": [plan("a")], "Verdict": [verdict("SUCCESS")]})``).
Everything between them (graphs, with_budget, the ledger) is real."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from fakes import FAKE_MODEL, FAKE_PRICE
from langchain_core.tools import BaseTool, tool

MODEL_PRICES = {FAKE_MODEL: FAKE_PRICE}


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
