"""The real engines (Tavily, SearxNG, DuckDuckGo via ddgs) against
recorded responses served on 127.0.0.1: the same client code a user runs with a key."""

from __future__ import annotations

import sys
from typing import Any

import pytest
from search_standin import Reply, Request, StandIn, json_reply, recorded

from agent_budget.tools.search import (
    MissingExtra,
    SearchToolError,
    resolve_backend,
)
from agent_budget.tools.search.engines import DdgsBackend, SearxngBackend, TavilyBackend

FAST = {"retries": 1, "retry_wait": 0.01}


def flaky(fails: int, bad: Reply, good: Reply) -> Any:
    """A route that answers ``bad`` ``fails`` times, then ``good``."""
    seen = [0]

    def route(_: Request) -> Reply:
        seen[0] += 1
        return bad if seen[0] <= fails else good

    return route


# --- Tavily ---------------------------------------------------------------------------------


def tavily(standin: StandIn, **kw: Any) -> TavilyBackend:
    return TavilyBackend(api_key="tvly-test-key", base_url=standin.url, **{**FAST, **kw})


def test_tavily_search_parses_the_recorded_reply(standin: StandIn) -> None:
    standin.routes["/search"] = lambda r: json_reply("tavily_search.json")
    hits = tavily(standin).search("python heapq priority queue", k=2)
    assert [h.url for h in hits] == [
        "https://docs.python.org/3/library/heapq.html",
        "https://realpython.com/python-heapq-module/",
    ]
    assert hits[0].title.startswith("heapq") and hits[0].score == pytest.approx(0.8736)
    assert "priority queue algorithm" in hits[0].snippet
    req = standin.requests[-1]
    assert req.method == "POST" and req.headers["authorization"] == "Bearer tvly-test-key"
    assert req.json()["query"] == "python heapq priority queue"
    assert req.json()["max_results"] == 2


def test_tavily_takes_its_key_from_the_environment(
    standin: StandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    standin.routes["/search"] = lambda r: json_reply("tavily_search.json")
    monkeypatch.setenv("TAVILY_API_KEY", "tvly-from-env")
    backend = resolve_backend("tavily", base_url=standin.url)
    assert len(backend.search("heapq")) == 3
    assert standin.requests[-1].headers["authorization"] == "Bearer tvly-from-env"
    monkeypatch.delenv("TAVILY_API_KEY")
    with pytest.raises(SearchToolError, match="TAVILY_API_KEY"):
        resolve_backend("tavily", base_url=standin.url)


def test_tavily_retries_a_500_then_succeeds(standin: StandIn) -> None:
    bad = Reply(500, b'{"detail": {"error": "internal"}}', "application/json")
    standin.routes["/search"] = flaky(1, bad, json_reply("tavily_search.json"))
    assert len(tavily(standin).search("heapq")) == 3
    assert standin.hits("/search") == 2


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (Reply(500, b"<html><body>Internal Server Error</body></html>"), "HTTP 500"),
        (Reply(200, b"this is not json {", "application/json"), "not JSON"),
        (Reply(200, b'{"results": "oops"}', "application/json"), "no result list"),
        (Reply(200, b"[1, 2]", "application/json"), "unexpected reply"),
        (Reply(401, b'{"detail": {"error": "Unauthorized"}}', "application/json"), "API key"),
        (Reply(429, b'{"detail": {"error": "limit"}}', "application/json"), "usage limit"),
    ],
)
def test_tavily_failures_are_clear_errors(standin: StandIn, reply: Reply, message: str) -> None:
    standin.routes["/search"] = lambda r: reply
    with pytest.raises(SearchToolError, match=message):
        tavily(standin).search("heapq")
    retried = reply.status >= 500
    assert standin.hits("/search") == (2 if retried else 1)


def test_tavily_timeout_is_a_clear_error(standin: StandIn) -> None:
    standin.routes["/search"] = lambda r: Reply(
        200, recorded("tavily_search.json"), "application/json", delay=2.0
    )
    with pytest.raises(SearchToolError, match="did not answer"):
        tavily(standin, timeout=0.3, retries=0).search("heapq")


# --- SearxNG --------------------------------------------------------------------------------


def test_searxng_search_parses_the_recorded_reply(standin: StandIn) -> None:
    standin.routes["/search"] = lambda r: json_reply("searxng_search.json")
    hits = SearxngBackend(standin.url, **FAST).search("python heapq priority queue", k=5)
    assert len(hits) == 2  # the result without a URL is skipped
    assert hits[0].url == "https://docs.python.org/3/library/heapq.html"
    assert hits[0].score == 7.5
    req = standin.requests[-1]
    assert req.query["q"] == ["python heapq priority queue"] and req.query["format"] == ["json"]


def test_searxng_takes_its_url_from_the_environment(
    standin: StandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    standin.routes["/searx/search"] = lambda r: json_reply("searxng_search.json")
    monkeypatch.setenv("SEARXNG_URL", standin.url + "/searx/")
    assert len(resolve_backend("searxng").search("heapq")) == 2
    monkeypatch.delenv("SEARXNG_URL")
    with pytest.raises(SearchToolError, match="SEARXNG_URL"):
        resolve_backend("searxng")


@pytest.mark.parametrize(
    ("reply", "message", "attempts"),
    [
        (Reply(403, b"<html>Forbidden</html>"), "enable the json format", 1),
        (Reply(200, b"<!DOCTYPE html><html><body>results</body></html>"), "HTML page", 1),
        (Reply(502, b"<html>Bad Gateway</html>"), "HTTP 502", 2),
        (Reply(200, b"[1, 2, 3]", "application/json"), "no result list", 1),
    ],
)
def test_searxng_failures_are_clear_errors(
    standin: StandIn, reply: Reply, message: str, attempts: int
) -> None:
    standin.routes["/search"] = lambda r: reply
    with pytest.raises(SearchToolError, match=message):
        SearxngBackend(standin.url, **FAST).search("heapq")
    assert standin.hits("/search") == attempts


def test_searxng_timeout_then_recovery(standin: StandIn) -> None:
    slow = Reply(200, recorded("searxng_search.json"), "application/json", delay=2.0)
    standin.routes["/search"] = flaky(1, slow, json_reply("searxng_search.json"))
    assert len(SearxngBackend(standin.url, timeout=0.3, **FAST).search("heapq")) == 2


async def test_searxng_async(standin: StandIn) -> None:
    standin.routes["/search"] = flaky(
        1, Reply(503, b"busy", "text/plain"), json_reply("searxng_search.json")
    )
    backend = SearxngBackend(standin.url, **FAST)
    assert len(await backend.asearch("heapq")) == 2
    standin.routes["/search"] = lambda r: Reply(200, b"<html>oops</html>")
    with pytest.raises(SearchToolError, match="not JSON"):
        await backend.asearch("heapq")


# --- DuckDuckGo (ddgs) ----------------------------------------------------------------------


def ddg(standin: StandIn, **kw: Any) -> DdgsBackend:
    return DdgsBackend(search_url=standin.url + "/html/", **{**FAST, **kw})


def test_ddgs_parses_the_recorded_results_page(standin: StandIn) -> None:
    standin.routes["/html/"] = lambda r: Reply(200, recorded("ddg_html.html"))
    hits = ddg(standin).search("python heapq priority queue")
    assert [h.url for h in hits] == [
        "https://docs.python.org/3/library/heapq.html",
        "https://docs.python.org/3/library/queue.html",
    ]  # the ad (duckduckgo.com/y.js) is dropped by ddgs's own filter
    assert hits[0].title.startswith("heapq") and "priority queue" in hits[0].snippet
    req = standin.requests[-1]
    assert req.method == "POST" and req.query["q"] == ["python heapq priority queue"]


def test_ddgs_seam_is_per_instance(standin: StandIn) -> None:
    from ddgs.engines.duckduckgo import Duckduckgo

    ddg(standin)
    assert Duckduckgo.search_url == "https://html.duckduckgo.com/html/"
    assert DdgsBackend().engine.search_url == "https://html.duckduckgo.com/html/"


@pytest.mark.parametrize(
    ("reply", "message", "attempts"),
    [
        (Reply(500, b"<html>error</html>"), "HTTP 500", 2),
        (Reply(202, b"<html><body>Please try again</body></html>"), "HTTP 202", 1),
        (
            Reply(200, b"\x00\x01\x02 binary garbage", "application/octet-stream"),
            "not a results page",
            1,
        ),
        (Reply(200, b"", "text/html"), "not a results page", 1),
    ],
)
def test_ddgs_failures_are_clear_errors(
    standin: StandIn, reply: Reply, message: str, attempts: int
) -> None:
    standin.routes["/html/"] = lambda r: reply
    with pytest.raises(SearchToolError, match=message):
        ddg(standin).search("heapq")
    assert standin.hits("/html/") == attempts


def test_ddgs_timeout_is_a_clear_error(standin: StandIn) -> None:
    standin.routes["/html/"] = lambda r: Reply(200, recorded("ddg_html.html"), delay=3.0)
    with pytest.raises(SearchToolError, match="did not answer"):
        ddg(standin, timeout=1, retries=0).search("heapq")


# --- resolving by name, missing extra -------------------------------------------------------


def test_resolve_backend_names(monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(resolve_backend("ddgs"), DdgsBackend)
    assert isinstance(resolve_backend("searxng", url="http://127.0.0.1:9"), SearxngBackend)
    with pytest.raises(SearchToolError, match="unknown search backend 'bing'"):
        resolve_backend("bing")


@pytest.mark.parametrize(
    ("name", "modules"),
    [("tavily", ["tavily"]), ("ddgs", ["ddgs", "ddgs.engines", "ddgs.engines.duckduckgo"])],
)
def test_a_real_backend_without_the_extra_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, name: str, modules: list[str]
) -> None:
    for m in modules:
        monkeypatch.setitem(sys.modules, m, None)
    with pytest.raises(MissingExtra, match=r"agent-budget\[search\]"):
        resolve_backend(name, api_key="k") if name == "tavily" else resolve_backend(name)
