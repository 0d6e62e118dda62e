"""What every search backend and page fetcher returns, and the one error they raise.

A backend turns a query into ranked `SearchHit`s; a fetcher turns a URL into a `Page` of
plain text. The LangChain tools (`search_tools`) only see these two protocols, so the
offline index, DuckDuckGo, Tavily, SearxNG or a LangChain retriever plug in unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from agent_budget.errors import AgentBudgetError


@dataclass(frozen=True)
class SearchHit:
    """One search result: where it is, what it is called, and a short extract."""

    title: str
    url: str
    snippet: str
    score: float | None = None


@dataclass(frozen=True)
class Page:
    """The text of one fetched page. ``truncated``: cut at the tool's character limit;
    ``summarized``: ``text`` is a local model's summary of a longer page."""

    url: str
    title: str
    text: str
    truncated: bool = False
    summarized: bool = False


@runtime_checkable
class SearchBackend(Protocol):
    name: str

    def search(self, query: str, k: int = 5) -> list[SearchHit]: ...

    async def asearch(self, query: str, k: int = 5) -> list[SearchHit]: ...


@runtime_checkable
class PageFetcher(Protocol):
    def fetch(self, url: str) -> Page: ...

    async def afetch(self, url: str) -> Page: ...


class SearchToolError(AgentBudgetError):
    """A search or a page fetch failed (bad input, the engine timed out or sent garbage,
    the page is too big or not text). The message says what failed and what to do; the
    tools hand it to the model as an error tool message instead of crashing the run."""


class MissingExtra(SearchToolError, ImportError):
    """A real backend was asked for but its optional dependency is not installed."""

    def __init__(self, what: str, package: str) -> None:
        super().__init__(
            f"{what} needs the {package!r} package, which is not installed. "
            "Install the search extra: pip install 'agent-budget[search]' "
            "(the offline backend works without it)."
        )


def snippet(text: object, limit: int = 400) -> str:
    """``text`` on one line, cut to ``limit`` characters: a search hit's extract."""
    flat = " ".join(str(text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def check_query(query: object) -> str:
    """The query stripped, or a `SearchToolError` saying why it cannot be searched."""
    if not isinstance(query, str):
        raise SearchToolError(f"the query must be text, got {type(query).__name__}.")
    text = query.strip()
    if not text:
        raise SearchToolError("empty query: give a few keywords to search for.")
    if len(text) > 1000:
        raise SearchToolError(
            f"query too long ({len(text)} characters, at most 1000): use a few keywords."
        )
    return text


def check_k(k: int) -> int:
    if not isinstance(k, int) or isinstance(k, bool) or k < 1 or k > 50:
        raise SearchToolError(f"k must be a whole number from 1 to 50, got {k!r}.")
    return k
