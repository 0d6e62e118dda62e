"""Search and browse tools for budget-aware research agents.

    from agent_budget.tools.search import offline_backend, offline_fetcher, search_tools
    tools = search_tools(offline_backend(), offline_fetcher())   # web_search, fetch_page

Offline by default: BM25 (SQLite FTS5) over the docs that ship with this Python
(``offline://pydoc/topics/<topic>``, ``offline://stdlib/<module>[#<name>]``; see
`corpus`). Real engines with a key or URL, no other change:
``resolve_backend("tavily")`` (``TAVILY_API_KEY``), ``"searxng"`` (``SEARXNG_URL``),
``"ddgs"``; they need ``pip install 'agent-budget[search]'``. Any LangChain retriever:
``RetrieverBackend(retriever)``, its documents opened by ``OfflineFetcher(that_backend)``.
Web pages are fetched from public addresses only unless allowed (`guard`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agent_budget.tools.search.base import (
    MissingExtra,
    Page,
    PageFetcher,
    SearchBackend,
    SearchHit,
    SearchToolError,
)
from agent_budget.tools.search.fetch import HttpFetcher, LocalDocuments, OfflineFetcher
from agent_budget.tools.search.index import IndexInfo, OfflineBackend, ensure_index
from agent_budget.tools.search.tools import Summarizer, search_tools

BACKENDS = ("offline", "ddgs", "tavily", "searxng")

__all__ = [
    "BACKENDS",
    "HttpFetcher",
    "IndexInfo",
    "MissingExtra",
    "OfflineBackend",
    "OfflineFetcher",
    "Page",
    "PageFetcher",
    "RetrieverBackend",
    "SearchBackend",
    "SearchHit",
    "SearchToolError",
    "Summarizer",
    "ensure_index",
    "local_summarizer",
    "offline_backend",
    "offline_fetcher",
    "resolve_backend",
    "search_tools",
]


def offline_backend(index_path: Path | None = None, *, progress: bool = True) -> OfflineBackend:
    """The offline BM25 backend; builds (or repairs) its cached index on first use."""
    return OfflineBackend(index_path, progress=progress)


def offline_fetcher(
    index_path: Path | None = None,
    *,
    backend: LocalDocuments | None = None,
    http: PageFetcher | None = None,
    progress: bool = True,
) -> OfflineFetcher:
    """Opens ``offline://`` documents from the offline index (or ``retriever://`` ones from
    a `RetrieverBackend` passed as ``backend``); http(s) URLs go to ``http`` (an
    `HttpFetcher` by default)."""
    return OfflineFetcher(backend or OfflineBackend(index_path, progress=progress), http)


def resolve_backend(name: str, **options: Any) -> SearchBackend:
    """A backend by name: ``offline`` | ``ddgs`` | ``tavily`` | ``searxng``; ``options`` go
    to its constructor (e.g. ``api_key=``, ``url=``, ``base_url=``, ``timeout=``)."""
    key = name.strip().lower()
    if key == "offline":
        return OfflineBackend(options.pop("index_path", None), **options)
    if key in ("ddgs", "duckduckgo", "ddg"):
        from agent_budget.tools.search.engines import DdgsBackend

        return DdgsBackend(**options)
    if key == "tavily":
        from agent_budget.tools.search.engines import TavilyBackend

        return TavilyBackend(**options)
    if key == "searxng":
        from agent_budget.tools.search.engines import SearxngBackend

        return SearxngBackend(**options)
    raise SearchToolError(f"unknown search backend {name!r}: use one of {', '.join(BACKENDS)}.")


def __getattr__(name: str) -> Any:
    # Lazy: the engines import tenacity and their HTTP stacks only when asked for.
    if name == "RetrieverBackend":
        from agent_budget.tools.search.retriever import RetrieverBackend

        return RetrieverBackend
    if name == "local_summarizer":
        from agent_budget.tools.search.summarize import local_summarizer

        return local_summarizer
    raise AttributeError(f"module 'agent_budget.tools.search' has no attribute {name!r}")
