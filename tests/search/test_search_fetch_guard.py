"""fetch_page does not connect to this machine or private networks (SSRF), on the first hop
or after a redirect, unless a user opts in; a refused fetch is a counted tool error. Real
HTTP servers on 127.0.0.x: a refused fetch must not reach them at all."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from fakes import FAKE_MODEL, FAKE_PRICE, ScriptedFake
from langchain_core.messages import ToolMessage
from langgraph.prebuilt import create_react_agent
from search_standin import Reply, StandIn

from agent_budget import Budget, with_budget
from agent_budget.tools.search import (
    HttpFetcher,
    OfflineBackend,
    OfflineFetcher,
    SearchToolError,
    search_tools,
)
from agent_budget.tools.search.guard import ALLOW_ENV, BlockedAddress, why_blocked


def fetcher(**kw: Any) -> HttpFetcher:
    return HttpFetcher(timeout=2.0, connect_timeout=2.0, **kw)


@pytest.fixture
def other() -> Iterator[StandIn]:
    """A second server on another loopback address, which a test allows by network."""
    with StandIn("127.0.0.2") as server:
        yield server


def text_route(standin: StandIn, path: str = "/p") -> str:
    standin.routes[path] = lambda r: Reply(200, b"private text", "text/plain")
    return standin.url + path


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),  # the cloud metadata endpoint
        ("224.0.0.1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("100.64.0.1", "not a public"),
        ("::1", "loopback"),
        ("::", "unspecified"),
        ("fe80::1", "link-local"),
        ("fc00::1", "private"),
        ("ff02::1", "multicast"),
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped
        ("::ffff:169.254.169.254", "link-local"),
        ("2002:a00:1::", "private"),  # 6to4 around 10.0.0.1
    ],
)
def test_non_public_addresses_are_named(address: str, kind: str) -> None:
    why = why_blocked(ipaddress.ip_address(address))
    assert why is not None and kind in why


@pytest.mark.parametrize("address", ["93.184.215.14", "2606:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_pass(address: str) -> None:
    assert why_blocked(ipaddress.ip_address(address)) is None


def test_a_local_server_is_refused_by_default_and_never_reached(
    standin: StandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ALLOW_ENV, raising=False)
    url = text_route(standin)
    port = url.split(":")[2].split("/")[0]
    for target in (url, f"http://localhost:{port}/p", f"http://[::ffff:127.0.0.1]:{port}/p"):
        with pytest.raises(BlockedAddress, match=r"refused to connect .*loopback"):
            fetcher().fetch(target)
    assert standin.requests == []


async def test_async_fetch_is_guarded_too(standin: StandIn) -> None:
    url = text_route(standin)
    with pytest.raises(BlockedAddress, match="loopback"):
        await fetcher(allow_private=False).afetch(url)
    assert standin.requests == []
    assert (await fetcher(allow_private=True).afetch(url)).text == "private text"


def test_local_pages_open_when_the_user_opts_in(
    standin: StandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = text_route(standin)
    assert fetcher(allow_private=True).fetch(url).text == "private text"
    monkeypatch.setenv(ALLOW_ENV, "1")
    assert fetcher().fetch(url).text == "private text"
    # An explicit False beats the environment.
    with pytest.raises(BlockedAddress):
        fetcher(allow_private=False).fetch(url)


def test_an_allowed_network_opens_only_that_network(standin: StandIn, other: StandIn) -> None:
    allowed = fetcher(allow_private=False, allow_networks=["127.0.0.2/32"])
    assert allowed.fetch(text_route(other)).text == "private text"
    with pytest.raises(BlockedAddress, match=r"127\.0\.0\.1"):
        allowed.fetch(text_route(standin))
    assert standin.requests == []


@pytest.mark.parametrize("use_async", [False, True])
async def test_a_redirect_to_a_local_address_is_refused(
    standin: StandIn, other: StandIn, use_async: bool
) -> None:
    target = text_route(standin, "/secret")
    port = target.split(":")[2].split("/")[0]
    for path, location in (("/a", target), ("/b", f"http://localhost:{port}/secret")):
        other.routes[path] = lambda r, loc=location: Reply(302, b"", None, {"Location": loc})
    allowed = fetcher(allow_private=False, allow_networks=["127.0.0.2/32"])
    for path in ("/a", "/b"):
        with pytest.raises(BlockedAddress, match="loopback"):
            if use_async:
                await allowed.afetch(other.url + path)
            else:
                allowed.fetch(other.url + path)
    assert other.hits("/a") == 1 and other.hits("/b") == 1  # the first hop was allowed
    assert standin.requests == []  # the second hop never connected


def test_the_checked_address_is_the_one_connected_to(
    standin: StandIn, other: StandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DNS rebinding: a host that resolves to an allowed address once and to a local one
    after. The guard resolves once and connects to what it checked; a resolve-then-connect
    check would connect to the second answer."""
    answers = iter(["127.0.0.2", "127.0.0.1"])
    real = socket.getaddrinfo

    def rebinding(host: Any, port: Any, *args: Any, **kw: Any) -> Any:
        if host == "rebind.example":
            host = next(answers, "127.0.0.1")
        return real(host, port, *args, **kw)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    text_route(standin)
    other.routes["/p"] = lambda r: Reply(200, b"checked server", "text/plain")
    port = other.url.split(":")[2]
    page = fetcher(allow_networks=["127.0.0.2/32"]).fetch(f"http://rebind.example:{port}/p")
    assert page.text == "checked server"
    assert standin.requests == []


def test_non_http_schemes_are_refused_also_after_a_redirect(standin: StandIn) -> None:
    for url in ("file:///etc/passwd", "gopher://127.0.0.1/", "ftp://example.com/"):
        with pytest.raises(SearchToolError, match="only http"):
            fetcher().fetch(url)
    standin.routes["/r"] = lambda r: Reply(302, b"", None, {"Location": "file:///etc/passwd"})
    with pytest.raises(SearchToolError, match="UnsupportedProtocol"):
        fetcher(allow_private=True).fetch(standin.url + "/r")


def test_a_refused_fetch_is_a_counted_tool_error(backend: OfflineBackend, standin: StandIn) -> None:
    url = text_route(standin)
    model = ScriptedFake(
        script=[
            [("fetch_page", {"url": url})],
            [("fetch_page", {"url": "offline://stdlib/heapq"})],
            "done",
        ]
    )
    budget = Budget(
        usd=1.0,
        tool_calls={"web_search": 2, "fetch_page": 2},
        tool_labels={"web_search": "Query", "fetch_page": "URL"},
        prices={"web_search": 0.01, "fetch_page": 0.002},
        model_prices={FAKE_MODEL: FAKE_PRICE},
    )
    tools = search_tools(backend, OfflineFetcher(backend, fetcher(allow_private=False)))
    agent = with_budget(create_react_agent(model, tools), budget)
    out = agent.invoke({"messages": [("user", "read it")]}, {"recursion_limit": 50})
    msgs = [m for m in out["messages"] if isinstance(m, ToolMessage)]
    assert [m.status for m in msgs] == ["error", "success"]
    assert "refused to connect" in str(msgs[0].content)
    assert "URL Budget Used: 1, URL Budget Remaining: 1" in str(msgs[0].content)
    assert "URL Budget Used: 2, URL Budget Remaining: 0" in str(msgs[1].content)
    assert standin.requests == []
