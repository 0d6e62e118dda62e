"""Which addresses `fetch_page` may connect to: public ones only, unless a user allows more.

A research agent fetches URLs that a search engine or a web page handed it, so a URL may
point at the machine it runs on or at its private network (a cloud metadata endpoint, an
admin page on localhost): server-side request forgery. The guard refuses loopback, private,
link-local, multicast, reserved, unspecified and other non-global addresses, IPv4 and IPv6
(IPv4 addresses embedded in IPv6 ones - mapped, 6to4, Teredo - are checked as IPv4).

The check sits where httpx opens a TCP connection (the connection pool's network backend):
the host is resolved there, every address it resolves to is checked, and the connection goes
to a checked address literal. So there is no window between "resolved to a public address"
and "connected" for a DNS answer to change in, and every redirect hop (a new connection)
is checked the same way. TLS still verifies the certificate against the URL's host name.

Local use (a test server, an intranet wiki) opts in: ``HttpFetcher(allow_private=True)`` or
``AGENT_BUDGET_ALLOW_PRIVATE_URLS=1`` allow every address; ``allow_networks=["10.1.0.0/16"]``
allows only those networks (the rest stays refused, e.g. a cloud metadata address). With the
guard on, proxies from the environment are not used: behind a proxy the proxy resolves the
host, and the guard could not see where the request really goes.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Iterable
from functools import partial
from typing import Any

from agent_budget.tools.search.base import SearchToolError

ALLOW_ENV = "AGENT_BUDGET_ALLOW_PRIVATE_URLS"
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Networks = tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]


class BlockedAddress(SearchToolError):
    """A fetch was refused: its host resolves to an address on this machine or a private
    network. Recorded as a tool error like any other failed fetch."""


def allow_private_from_env() -> bool:
    return os.environ.get(ALLOW_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]  # the client's address
    return None


def why_blocked(ip: IPAddress) -> str | None:
    """What kind of non-public address ``ip`` is, or None when a fetch may connect to it."""
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_ipv4(ip)
        if inner is not None:
            why = why_blocked(inner)
            return f"{why} (inside the IPv6 address {ip})" if why else None
    for kind in ("loopback", "unspecified", "link_local", "multicast", "private", "reserved"):
        if getattr(ip, f"is_{kind}"):
            return f"{'an' if kind == 'unspecified' else 'a'} {kind.replace('_', '-')} address"
    if not ip.is_global:  # shared (carrier-grade NAT) space, documentation ranges, ...
        return "not a public address"
    return None


def networks(allowed: Iterable[str]) -> Networks:
    """``allowed`` (CIDR strings such as ``"10.1.0.0/16"``) parsed, or ValueError."""
    return tuple(ipaddress.ip_network(n, strict=False) for n in allowed)


def checked_addresses(host: str, port: int, allowed: Networks = ()) -> list[str]:
    """The addresses ``host`` resolves to, in resolver order, after checking every one of
    them; `BlockedAddress` if any is neither public nor in ``allowed`` (a host that resolves
    both ways is refused: which answer a connection gets is the resolver's choice, not ours).
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise SearchToolError(f"cannot resolve the host {host!r}: {exc}") from exc
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        why = None if any(ip in net for net in allowed) else why_blocked(ip)
        if why:
            shown = host if host == address else f"{host} ({address})"
            raise BlockedAddress(
                f"refused to connect to {shown}: {why}. fetch_page reads public web pages "
                "only; use another result. (To read local or private pages on purpose: "
                f"HttpFetcher(allow_private=True) or {ALLOW_ENV}=1.)"
            )
    return addresses


def _connect_first(connect: Any, addresses: list[str]) -> Any:
    last: Exception | None = None
    for address in addresses:
        try:
            return connect(address)
        except Exception as exc:  # try the next address, as a dual-stack client would
            last = exc
    assert last is not None  # getaddrinfo never returns an empty list without raising
    raise last


def guarded_transport(httpx: Any, allowed: Networks = (), *, sync: bool = True) -> Any:
    """An ``httpx.HTTPTransport`` (``sync=False``: ``AsyncHTTPTransport``) whose connections
    go through the guard."""
    if sync:
        transport = httpx.HTTPTransport()
        _wrap_backend(transport, _GuardedBackend(transport, allowed))
    else:
        transport = httpx.AsyncHTTPTransport()
        _wrap_backend(transport, _AsyncGuardedBackend(transport, allowed))
    return transport


def _inner_backend(transport: Any) -> Any:
    # httpx builds its httpcore pool without a network_backend option, so the pool's backend
    # is swapped in place. Fail closed: if a future httpx moves it, refuse to build an
    # unguarded transport rather than fetch without the check.
    inner = getattr(getattr(transport, "_pool", None), "_network_backend", None)
    if inner is None:
        raise RuntimeError(
            "this httpx/httpcore version has no pool network backend to guard; "
            f"pin httpx<1 or set {ALLOW_ENV}=1 to fetch without the address check"
        )
    return inner


def _wrap_backend(transport: Any, guarded: Any) -> None:
    transport._pool._network_backend = guarded


class _GuardedBackend:
    """httpcore's sync network backend, connecting only to checked addresses."""

    def __init__(self, transport: Any, allowed: Networks) -> None:
        self.inner = _inner_backend(transport)
        self.allowed = allowed

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> Any:
        connect = partial(
            self.inner.connect_tcp,
            port=port,
            timeout=timeout,
            local_address=local_address,
            socket_options=socket_options,
        )
        return _connect_first(connect, checked_addresses(host, port, self.allowed))

    def connect_unix_socket(self, path: str, *args: Any, **kwargs: Any) -> Any:
        raise BlockedAddress(f"refused to connect to the unix socket {path}")

    def sleep(self, seconds: float) -> None:
        self.inner.sleep(seconds)


class _AsyncGuardedBackend:
    """httpcore's async network backend, connecting only to checked addresses (resolved in
    a worker thread, so the event loop is not blocked)."""

    def __init__(self, transport: Any, allowed: Networks) -> None:
        self.inner = _inner_backend(transport)
        self.allowed = allowed

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> Any:
        import anyio

        addresses = await anyio.to_thread.run_sync(checked_addresses, host, port, self.allowed)
        last: Exception | None = None
        for address in addresses:
            try:
                return await self.inner.connect_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except Exception as exc:
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(self, path: str, *args: Any, **kwargs: Any) -> Any:
        raise BlockedAddress(f"refused to connect to the unix socket {path}")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)
