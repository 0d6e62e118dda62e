"""Page fetchers: local documents by their ``offline://`` or ``retriever://`` URL, web pages
over HTTP.

`HttpFetcher` guards the agent against what the web sends back: connect and read timeouts,
a byte limit enforced while streaming (it stops reading past it, whatever the server
claims), a content-type allow-list (HTML and text; PDF and other binary types are refused
with a clear error), a bounded number of redirects, a check that "text" is not binary, and
(`guard`) no connections to this machine or private networks, on any redirect hop.
HTML goes through trafilatura (the ``[search]`` extra), which keeps the main text and drops
navigation and boilerplate.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol

from agent_budget.tools.search.base import MissingExtra, Page, PageFetcher, SearchToolError
from agent_budget.tools.search.guard import allow_private_from_env, guarded_transport, networks

if TYPE_CHECKING:
    import httpx

    from agent_budget.tools.search.corpus import Document

TEXT_TYPES = frozenset(
    {
        "text/html",
        "application/xhtml+xml",
        "text/plain",
        "text/markdown",
        "text/x-rst",
        "text/csv",
        "application/json",
        "text/xml",
        "application/xml",
    }
)
HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
MAX_BYTES = 2_000_000
USER_AGENT = "agent-budget-fetch/0.1 (+https://github.com/agent-budget)"


def _content_type(header: str | None) -> tuple[str, str | None]:
    if not header:
        return "", None
    main, _, params = header.partition(";")
    m = re.search(r"charset\s*=\s*\"?([\w.:-]+)", params, re.IGNORECASE)
    return main.strip().lower(), (m.group(1) if m else None)


class HttpFetcher:
    """Fetch a web page and extract its text.

    ``max_bytes``: the most bytes read from the body; a longer page is refused (the read
    stops at the limit). ``timeout``: seconds to connect and between two reads.
    ``max_redirects``: redirects followed before giving up (a loop ends here).
    ``allow_private``: also fetch from loopback, private and other non-public addresses
    (default: ``$AGENT_BUDGET_ALLOW_PRIVATE_URLS``, else refused; see `guard`).
    ``allow_networks``: CIDR networks allowed although not public (``["10.1.0.0/16"]``).
    """

    def __init__(
        self,
        *,
        timeout: float = 10.0,
        connect_timeout: float = 5.0,
        max_bytes: int = MAX_BYTES,
        max_redirects: int = 5,
        allowed_types: frozenset[str] = TEXT_TYPES,
        headers: dict[str, str] | None = None,
        allow_private: bool | None = None,
        allow_networks: Iterable[str] = (),
    ) -> None:
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.max_bytes = max_bytes
        self.max_redirects = max_redirects
        self.allowed_types = allowed_types
        self.headers = {"User-Agent": USER_AGENT, **(headers or {})}
        self.allow_private = allow_private_from_env() if allow_private is None else allow_private
        self.allow_networks = networks(allow_networks)

    def _client_options(self, *, sync: bool) -> dict[str, Any]:
        import httpx

        options: dict[str, Any] = {
            "timeout": httpx.Timeout(self.timeout, connect=self.connect_timeout),
            "follow_redirects": True,
            "max_redirects": self.max_redirects,
            "headers": self.headers,
        }
        if not self.allow_private:
            options["transport"] = guarded_transport(httpx, self.allow_networks, sync=sync)
        return options

    def fetch(self, url: str) -> Page:
        httpx = _httpx()
        _check_url(url)
        try:
            with (
                httpx.Client(**self._client_options(sync=True)) as client,
                client.stream("GET", url) as resp,
            ):
                ctype, charset = self._check_response(url, resp)
                body = bytearray()
                for chunk in resp.iter_bytes():
                    body += chunk
                    self._check_size(url, len(body))
                final_url = str(resp.url)
        except httpx.HTTPError as exc:
            raise _http_error(url, exc) from exc
        return self._page(final_url, bytes(body), ctype, charset)

    async def afetch(self, url: str) -> Page:
        httpx = _httpx()
        _check_url(url)
        try:
            async with (
                httpx.AsyncClient(**self._client_options(sync=False)) as client,
                client.stream("GET", url) as resp,
            ):
                ctype, charset = self._check_response(url, resp)
                body = bytearray()
                async for chunk in resp.aiter_bytes():
                    body += chunk
                    self._check_size(url, len(body))
                final_url = str(resp.url)
        except httpx.HTTPError as exc:
            raise _http_error(url, exc) from exc
        return await asyncio.to_thread(self._page, final_url, bytes(body), ctype, charset)

    def _check_response(self, url: str, resp: httpx.Response) -> tuple[str, str | None]:
        if resp.status_code >= 400:
            raise SearchToolError(
                f"fetching {url} failed: HTTP {resp.status_code} {resp.reason_phrase}. "
                "Try another result."
            )
        ctype, charset = _content_type(resp.headers.get("content-type"))
        if ctype and ctype not in self.allowed_types:
            kind = "a PDF" if ctype == "application/pdf" else f"of type {ctype!r}"
            raise SearchToolError(
                f"{url} is {kind}, not a web page or text; only HTML and text pages can be "
                "read. Try another result."
            )
        declared = resp.headers.get("content-length")
        if declared and declared.isdigit():
            self._check_size(url, int(declared))
        return ctype, charset

    def _check_size(self, url: str, size: int) -> None:
        if size > self.max_bytes:
            raise SearchToolError(
                f"{url} is larger than {self.max_bytes:,} bytes; stopped reading. "
                "Try a shorter page or another result."
            )

    def _page(self, url: str, body: bytes, ctype: str, charset: str | None) -> Page:
        if b"\x00" in body[:4096]:
            raise SearchToolError(f"{url} is binary data, not text. Try another result.")
        text = body.decode(charset or "utf-8", errors="replace")
        if ctype in HTML_TYPES or (
            not ctype and text.lstrip()[:15].lower().startswith("<!doctype")
        ):
            return _from_html(url, text)
        return Page(url=url, title=url.rsplit("/", 1)[-1] or url, text=text.strip())


def _from_html(url: str, html: str) -> Page:
    try:
        import trafilatura
    except ImportError as exc:
        raise MissingExtra("reading HTML pages", "trafilatura") from exc
    text = trafilatura.extract(html, url=url, include_comments=False, include_tables=True)
    meta = trafilatura.extract_metadata(html, default_url=url)
    title = (meta.title if meta is not None and meta.title else None) or url
    if not text:
        raise SearchToolError(f"{url} has no readable text (empty page or only scripts).")
    return Page(url=url, title=title, text=text.strip())


def _check_url(url: object) -> None:
    if not isinstance(url, str) or not url.strip():
        raise SearchToolError("empty URL: pass a URL from a search result.")
    if not re.match(r"https?://[^\s/]+", url.strip(), re.IGNORECASE):
        raise SearchToolError(
            f"cannot fetch {url!r}: only http(s):// and offline:// URLs from search results "
            "can be opened."
        )


def _http_error(url: str, exc: Exception) -> SearchToolError:
    import httpx

    if isinstance(exc, httpx.TooManyRedirects):
        return SearchToolError(f"fetching {url} failed: too many redirects (a redirect loop?).")
    if isinstance(exc, httpx.TimeoutException):
        return SearchToolError(f"fetching {url} timed out ({type(exc).__name__}). Try another.")
    return SearchToolError(f"fetching {url} failed: {type(exc).__name__}: {exc}")


def _httpx() -> Any:
    try:
        import httpx
    except ImportError as exc:  # pragma: no cover - httpx comes with langgraph's deps
        raise MissingExtra("fetching web pages", "httpx") from exc
    return httpx


class LocalDocuments(Protocol):
    """Documents held locally, opened by URL: the offline index (``offline://``) or a
    `RetrieverBackend` (``retriever://``)."""

    scheme: str

    def document(self, url: str) -> Document | None: ...


class OfflineFetcher:
    """Open ``<backend.scheme>://`` documents from ``backend`` (``offline://`` from the
    offline index, ``retriever://`` from a `RetrieverBackend`); hand other URLs to ``http``."""

    def __init__(self, backend: LocalDocuments, http: PageFetcher | None = None) -> None:
        self.backend = backend
        self.prefix = f"{backend.scheme}://"
        self.http = http if http is not None else HttpFetcher()

    def _is_local(self, url: object) -> bool:
        return isinstance(url, str) and url.strip().lower().startswith(self.prefix)

    def fetch(self, url: str) -> Page:
        if self._is_local(url):
            return self._local(url.strip())
        return self.http.fetch(url)

    async def afetch(self, url: str) -> Page:
        if self._is_local(url):
            return await asyncio.to_thread(self._local, url.strip())
        return await self.http.afetch(url)

    def _local(self, url: str) -> Page:
        doc = self.backend.document(url)
        if doc is None:
            raise SearchToolError(
                f"no {self.backend.scheme} document at {url}; use a URL exactly as a search "
                "result gave it."
            )
        return Page(url=doc.url, title=doc.title, text=doc.body)
