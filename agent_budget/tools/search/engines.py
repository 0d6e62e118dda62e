"""Real search engines behind `SearchBackend`: DuckDuckGo, Tavily and SearxNG (a LangChain
retriever: `retriever`).

Each takes its endpoint as an option that defaults to the real service, so the same code
runs against the real API and against recorded responses on 127.0.0.1 in the tests:

- `TavilyBackend`: ``tavily-python``'s client with its own ``api_base_url`` option; the key
  from ``api_key=`` or ``TAVILY_API_KEY``.
- `SearxngBackend`: SearxNG's JSON API (``/search?format=json``) over httpx; the instance
  from ``url=`` or ``SEARXNG_URL`` (the instance must allow the JSON format).
- `DdgsBackend`: the ``ddgs`` package's DuckDuckGo engine (``html.duckduckgo.com``). ``ddgs``
  has no base-URL option, so the seam is the engine's ``search_url`` attribute, which
  ``search_url=`` overrides on our engine instance (nothing global is patched). We call
  the engine's own ``build_payload`` / ``extract_results`` so parsing stays ddgs's, and
  read the HTTP status ourselves, which ``ddgs`` hides.

Transient failures (timeouts, connection errors, HTTP 5xx, 429) are retried with tenacity
(``retries`` more attempts, exponential wait); anything else, and the last failure, is a
`SearchToolError` that says which engine failed and how.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from typing import Any, TypeVar

from tenacity import (
    RetryError,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from agent_budget.tools.search.base import (
    MissingExtra,
    SearchHit,
    SearchToolError,
    check_k,
    check_query,
    snippet,
)

T = TypeVar("T")


class TransientError(SearchToolError):
    """A failure worth retrying: a timeout, a dropped connection, HTTP 5xx or 429."""


def with_retries(engine: str, retries: int, wait: float, call: Callable[[], T]) -> T:
    try:
        for attempt in Retrying(
            stop=stop_after_attempt(retries + 1),
            wait=wait_exponential(multiplier=wait, max=max(wait * 8, wait)),
            retry=retry_if_exception_type(TransientError),
            reraise=True,
        ):
            with attempt:
                return call()
    except RetryError as exc:  # pragma: no cover - reraise=True hands back the last error
        raise SearchToolError(f"{engine} search failed after {retries + 1} attempts") from exc
    raise AssertionError("unreachable")  # pragma: no cover


def _content_hits(results: list[Any], k: int) -> list[SearchHit]:
    """The first ``k`` usable hits of a reply in the ``{title, url, content, score}`` shape
    that Tavily and SearxNG share (entries without a URL are skipped)."""
    return [
        SearchHit(
            title=str(r.get("title") or r.get("url")),
            url=str(r["url"]),
            snippet=snippet(r.get("content")),
            score=float(r["score"]) if isinstance(r.get("score"), int | float) else None,
        )
        for r in results
        if isinstance(r, dict) and r.get("url")
    ][:k]


def _status_error(engine: str, status: int, body: str) -> SearchToolError:
    kind = TransientError if status >= 500 or status == 429 else SearchToolError
    hint = {
        401: " Check the API key.",
        403: " The key or instance refuses this request (for SearxNG: enable the json format).",
        429: " Rate limited: wait or lower the Query budget.",
    }.get(status, "")
    return kind(f"{engine} answered HTTP {status}: {snippet(body, 160)!r}.{hint}")


class TavilyBackend:
    """Tavily's search API. ``base_url`` defaults to Tavily's own (``https://api.tavily.com``)."""

    name = "tavily"

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        timeout: float = 20.0,
        retries: int = 2,
        retry_wait: float = 0.5,
        search_depth: str = "basic",
    ) -> None:
        try:
            from tavily import TavilyClient
        except ImportError as exc:
            raise MissingExtra("the Tavily backend", "tavily-python") from exc
        key = api_key or os.environ.get("TAVILY_API_KEY")
        if not key:
            raise SearchToolError(
                "the Tavily backend needs an API key: set TAVILY_API_KEY or pass api_key=."
            )
        self.client = TavilyClient(api_key=key, api_base_url=base_url)
        self.timeout, self.retries, self.retry_wait = timeout, retries, retry_wait
        self.search_depth = search_depth

    def _once(self, query: str, k: int) -> dict[str, Any]:
        import requests
        from tavily import errors

        try:
            out = self.client.search(
                query, max_results=k, search_depth=self.search_depth, timeout=self.timeout
            )
        except (
            errors.TimeoutError,
            TimeoutError,
            requests.Timeout,
            requests.ConnectionError,
        ) as exc:
            raise TransientError(f"tavily did not answer: {type(exc).__name__} {exc}") from exc
        except requests.HTTPError as exc:  # tavily re-raises other statuses as this
            resp = exc.response
            status = resp.status_code if resp is not None else 0
            raise _status_error("tavily", status, resp.text if resp is not None else "") from exc
        except ValueError as exc:  # requests' JSONDecodeError is a ValueError
            raise SearchToolError(f"tavily sent a reply that is not JSON: {exc}") from exc
        except errors.InvalidAPIKeyError as exc:
            raise SearchToolError(
                f"tavily refused the API key ({exc}): check TAVILY_API_KEY."
            ) from exc
        except errors.UsageLimitExceededError as exc:
            raise SearchToolError(f"tavily usage limit reached ({exc}).") from exc
        except (errors.BadRequestError, errors.ForbiddenError) as exc:
            raise SearchToolError(
                f"tavily refused the request: {type(exc).__name__}: {exc}"
            ) from exc
        except Exception as exc:  # the client choking on a reply of the wrong shape
            raise SearchToolError(
                f"tavily sent an unexpected reply ({type(exc).__name__}: {exc})"
            ) from exc
        if not isinstance(out, dict):
            raise SearchToolError(f"tavily sent an unexpected reply: {snippet(out, 160)!r}")
        return out

    def search(self, query: str, k: int = 5) -> list[SearchHit]:
        q, k = check_query(query), check_k(k)
        out = with_retries("tavily", self.retries, self.retry_wait, lambda: self._once(q, k))
        results = out.get("results")
        if not isinstance(results, list):
            raise SearchToolError(f"tavily's reply has no result list: {snippet(out, 160)!r}")
        return _content_hits(results, k)

    async def asearch(self, query: str, k: int = 5) -> list[SearchHit]:
        return await asyncio.to_thread(self.search, query, k)


class SearxngBackend:
    """A SearxNG instance's JSON API. ``url``: the instance (else ``SEARXNG_URL``)."""

    name = "searxng"

    def __init__(
        self,
        url: str | None = None,
        *,
        timeout: float = 15.0,
        retries: int = 2,
        retry_wait: float = 0.5,
        params: dict[str, str] | None = None,
    ) -> None:
        base = url or os.environ.get("SEARXNG_URL")
        if not base:
            raise SearchToolError(
                "the SearxNG backend needs an instance URL: set SEARXNG_URL or pass url=."
            )
        self.url = base.rstrip("/") + "/search"
        self.timeout, self.retries, self.retry_wait = timeout, retries, retry_wait
        self.params = params or {}

    def _params(self, query: str) -> dict[str, str]:
        return {"q": query, "format": "json", "pageno": "1", **self.params}

    def _parse(self, status: int, ctype: str, body: str, k: int) -> list[SearchHit]:
        if status != 200:
            raise _status_error("searxng", status, body)
        try:
            data = json.loads(body)
        except ValueError as exc:
            kind = "an HTML page" if "html" in ctype or body.lstrip().startswith("<") else "text"
            raise SearchToolError(
                f"searxng sent {kind}, not JSON ({snippet(body, 120)!r}); is the json "
                "format enabled on the instance (search.formats in settings.yml)?"
            ) from exc
        results = data.get("results") if isinstance(data, dict) else None
        if not isinstance(results, list):
            raise SearchToolError(f"searxng's reply has no result list: {snippet(body, 160)!r}")
        return _content_hits(results, k)

    def search(self, query: str, k: int = 5) -> list[SearchHit]:
        import httpx

        q, k = check_query(query), check_k(k)

        def once() -> list[SearchHit]:
            try:
                r = httpx.get(self.url, params=self._params(q), timeout=self.timeout)
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                raise TransientError(f"searxng did not answer: {type(exc).__name__}") from exc
            return self._parse(r.status_code, r.headers.get("content-type", ""), r.text, k)

        return with_retries("searxng", self.retries, self.retry_wait, once)

    async def asearch(self, query: str, k: int = 5) -> list[SearchHit]:
        import httpx
        from tenacity import AsyncRetrying

        q, k = check_query(query), check_k(k)
        async with httpx.AsyncClient(timeout=self.timeout) as client:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(self.retries + 1),
                wait=wait_exponential(multiplier=self.retry_wait, max=self.retry_wait * 8),
                retry=retry_if_exception_type(TransientError),
                reraise=True,
            ):
                with attempt:
                    try:
                        r = await client.get(self.url, params=self._params(q))
                    except (httpx.TimeoutException, httpx.TransportError) as exc:
                        raise TransientError(
                            f"searxng did not answer: {type(exc).__name__}"
                        ) from exc
                    return self._parse(r.status_code, r.headers.get("content-type", ""), r.text, k)
        raise AssertionError("unreachable")  # pragma: no cover


class DdgsBackend:
    """DuckDuckGo through ``ddgs``'s DuckDuckGo engine (no key needed).

    ``search_url``: the endpoint (default ddgs's ``https://html.duckduckgo.com/html/``);
    ``proxy``: as ddgs takes it (also ``DDGS_PROXY``)."""

    name = "ddgs"

    def __init__(
        self,
        *,
        search_url: str | None = None,
        region: str = "us-en",
        safesearch: str = "moderate",
        timeout: int = 10,
        retries: int = 2,
        retry_wait: float = 0.5,
        proxy: str | None = None,
    ) -> None:
        try:
            from ddgs.engines.duckduckgo import Duckduckgo
        except ImportError as exc:
            raise MissingExtra("the DuckDuckGo backend", "ddgs") from exc
        self.engine = Duckduckgo(proxy=proxy or os.environ.get("DDGS_PROXY"), timeout=timeout)
        if search_url:
            self.engine.search_url = search_url  # this instance only
        self.region, self.safesearch = region, safesearch
        self.retries, self.retry_wait = retries, retry_wait

    def _once(self, query: str, k: int) -> list[SearchHit]:
        from ddgs.exceptions import DDGSException, TimeoutException

        e = self.engine
        payload = e.build_payload(
            query=query, region=self.region, safesearch=self.safesearch, timelimit=None
        )
        kw = {"params": payload} if e.search_method == "GET" else {"data": payload}
        try:
            resp = e.http_client.request(e.search_method, e.search_url, **kw)
        except TimeoutException as exc:
            raise TransientError("duckduckgo did not answer in time") from exc
        except DDGSException as exc:
            raise TransientError(f"duckduckgo request failed: {exc}") from exc
        if resp.status_code != 200:
            raise _status_error("duckduckgo", resp.status_code, resp.text)
        try:
            results = e.post_extract_results(e.extract_results(resp.text))
        except Exception as exc:  # lxml on a reply that is not HTML
            raise SearchToolError(
                f"duckduckgo sent a reply that is not a results page: {snippet(resp.text, 120)!r}"
            ) from exc
        if not results and "result" not in resp.text.lower():
            # DuckDuckGo's own "no results" page still has its result markup; anything
            # else (a captcha, an error page, bytes) is not an answer to the query.
            raise SearchToolError(
                f"duckduckgo sent a page that is not a results page: {snippet(resp.text, 120)!r}"
            )
        return [
            SearchHit(title=r.title or r.href, url=r.href, snippet=snippet(r.body))
            for r in results
            if r.href
        ][:k]

    def search(self, query: str, k: int = 5) -> list[SearchHit]:
        q, k = check_query(query), check_k(k)
        return with_retries("duckduckgo", self.retries, self.retry_wait, lambda: self._once(q, k))

    async def asearch(self, query: str, k: int = 5) -> list[SearchHit]:
        return await asyncio.to_thread(self.search, query, k)
