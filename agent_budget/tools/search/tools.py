"""The two LangChain tools the agent calls: ``web_search`` and ``fetch_page``.

Each is sync and async. Whatever goes wrong (empty query, an engine that times out or
sends garbage, a huge or binary page) raises a `ToolException` that the tool itself turns
into an error tool message (``handle_tool_error=True``), so a plain `ToolNode` records it,
`with_budget` still counts the call, and the run goes on. Everything a tool returns has
its ``<budget>`` look-alike tags escaped, so a web page cannot forge the budget message.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from langchain_core.tools import BaseTool, StructuredTool, ToolException

from agent_budget.errors import AgentBudgetError
from agent_budget.message import escape_budget_tags
from agent_budget.tools.search.base import (
    Page,
    PageFetcher,
    SearchBackend,
    SearchHit,
    SearchToolError,
    check_k,
)

log = logging.getLogger(__name__)

Summarizer = Callable[[str, str], str]
"""``summarizer(text, url) -> summary``: shortens a page too long for the model."""

SEARCH_DESCRIPTION = (
    "Search for documents. Input: a few keywords. Returns numbered results, each with a "
    "title, a URL you can pass to fetch_page, and a short extract."
)
FETCH_DESCRIPTION = (
    "Read one document in full by its URL (a URL from a web_search result). Returns its "
    "title and text; a long page is shortened."
)


def format_hits(query: str, hits: list[SearchHit]) -> str:
    if not hits:
        return f"No results for {query!r}. Try other keywords."
    lines = [f"Results for {query!r}:"]
    for i, h in enumerate(hits, 1):
        lines.append(f"{i}. {h.title}\n   URL: {h.url}\n   {h.snippet}")
    return escape_budget_tags("\n".join(lines))


def shorten(page: Page, max_chars: int, summarizer: Summarizer | None) -> Page:
    """``page`` within ``max_chars``: summarized by ``summarizer`` when one is given (and it
    works), else truncated; either way marked on the returned page."""
    if len(page.text) <= max_chars:
        return page
    if summarizer is not None:
        try:
            summary = summarizer(page.text, page.url).strip()
        except Exception as exc:  # a failed summary must not lose the page: truncate instead
            log.warning("summarizing %s failed (%s); truncating it instead", page.url, exc)
        else:
            if summary:
                return Page(page.url, page.title, summary[:max_chars], False, True)
    return Page(page.url, page.title, page.text[:max_chars], True, page.summarized)


def format_page(page: Page, full_chars: int) -> str:
    head = [f"Title: {page.title}", f"URL: {page.url}"]
    if page.summarized:
        head.append(f"[Summary by the local model of a {full_chars:,}-character page.]")
    elif page.truncated:
        head.append(f"[Truncated: the first {len(page.text):,} of {full_chars:,} characters.]")
    return escape_budget_tags("\n".join(head) + "\n\n" + page.text)


def _as_tool_error(tool: str, exc: Exception) -> ToolException:
    if isinstance(exc, SearchToolError):
        return ToolException(f"{tool} failed: {exc}")
    return ToolException(f"{tool} failed: {type(exc).__name__}: {exc}")


def _reraise(exc: Exception) -> bool:
    # The project's own control-flow errors (budget exceeded, ledger down) are not tool
    # failures: they must reach the run, not the model.
    return isinstance(exc, AgentBudgetError) and not isinstance(exc, SearchToolError)


def search_tools(
    backend: SearchBackend,
    fetcher: PageFetcher,
    *,
    k: int = 5,
    max_page_chars: int = 4000,
    summarizer: Summarizer | None = None,
) -> list[BaseTool]:
    """``[web_search, fetch_page]`` over ``backend`` and ``fetcher``. Price them per call in
    the budget (``Budget(tool_calls={"web_search": 10, "fetch_page": 5}, prices=...)``)."""
    check_k(k)
    if max_page_chars < 100:
        raise ValueError(f"max_page_chars must be at least 100, got {max_page_chars}")

    def web_search(query: str) -> str:
        """query: a few keywords to search for."""
        try:
            return format_hits(query, backend.search(query, k))
        except Exception as exc:
            if _reraise(exc):
                raise
            raise _as_tool_error("web_search", exc) from exc

    async def aweb_search(query: str) -> str:
        try:
            return format_hits(query, await backend.asearch(query, k))
        except Exception as exc:
            if _reraise(exc):
                raise
            raise _as_tool_error("web_search", exc) from exc

    def _finish(page: Page) -> str:
        return format_page(shorten(page, max_page_chars, summarizer), len(page.text))

    def fetch_page(url: str) -> str:
        """url: the URL of a search result to read."""
        try:
            return _finish(fetcher.fetch(url))
        except Exception as exc:
            if _reraise(exc):
                raise
            raise _as_tool_error("fetch_page", exc) from exc

    async def afetch_page(url: str) -> str:
        import asyncio

        try:
            page = await fetcher.afetch(url)
            # A local summary is CPU work: keep it off the event loop.
            return await asyncio.to_thread(_finish, page)
        except Exception as exc:
            if _reraise(exc):
                raise
            raise _as_tool_error("fetch_page", exc) from exc

    common: dict[str, Any] = {"handle_tool_error": True}
    return [
        StructuredTool.from_function(
            web_search,
            coroutine=aweb_search,
            name="web_search",
            description=SEARCH_DESCRIPTION,
            **common,
        ),
        StructuredTool.from_function(
            fetch_page,
            coroutine=afetch_page,
            name="fetch_page",
            description=FETCH_DESCRIPTION,
            **common,
        ),
    ]
