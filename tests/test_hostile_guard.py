"""No reaching inside: the address policy, the connector's socket factory and every URL form.

Nothing here sends a packet beyond 127.0.0.0/8 and ::1. Refusal of other ranges is proved on
the policy and on the connector with socket creation intercepted: a refused target must never
get as far as creating a socket, and an allowed one is stopped by the interceptor instead of
connecting. Any ``connect`` outside loopback fails the test outright.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from monitor.config import FetchConfig
from monitor.errors import FetchError
from monitor.fetch import Fetcher, make_session
from monitor.netguard import AddressPolicy, BlockedAddress, guarded_socket_factory, is_blocked
from tests.e2e import serve
from tests.test_fetch import Counter, FixedResolver


@pytest.fixture(autouse=True)
def no_outside_sockets(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if anything tries to connect outside 127.0.0.0/8 and ::1."""
    real = socket.socket.connect

    def guarded(self: socket.socket, address: Any) -> Any:
        host = address[0] if isinstance(address, tuple) else ""
        if host and not (str(host).startswith("127.") or host == "::1"):
            pytest.fail(f"test tried to connect to {address!r}")
        return real(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)


class Intercepted(OSError):
    """Raised instead of creating a socket: the guard let the target through."""


@contextlib.contextmanager
def trap_sockets() -> Iterator[list[tuple[Any, ...]]]:
    """Intercepts socket creation inside the block; yields what was asked for.

    Entered inside the running test (not as a fixture), so the event loop's own sockets are
    made before it and nothing of the test harness is caught.
    """
    created: list[tuple[Any, ...]] = []

    def intercept(*args: Any, **kwargs: Any) -> socket.socket:
        created.append((args, kwargs))
        raise Intercepted("socket creation intercepted by the test")

    real, socket.socket = socket.socket, intercept  # type: ignore[misc,assignment]
    try:
        yield created
    finally:
        socket.socket = real  # type: ignore[misc]


REFUSED_ADDRESSES = [
    "169.254.169.254",  # cloud metadata
    "10.0.0.1",
    "172.16.0.1",
    "192.168.0.1",
    "100.64.0.1",  # CGNAT
    "127.0.0.1",
    "0.0.0.0",
    "::",
    "::1",
    "fc00::1",
    "fd00:ec2::254",  # ULA (AWS IPv6 metadata)
    "fe80::1",
    "fe80::1%eth0",  # zone id
    "fec0::1",  # deprecated site-local
    "::ffff:169.254.169.254",  # mapped
    "::ffff:0:a9fe:a9fe",  # IPv4-translated
    "::a9fe:a9fe",  # IPv4-compatible
    "2002:a9fe:a9fe::1",  # 6to4 around 169.254.169.254
    "64:ff9b::a9fe:a9fe",  # NAT64 around 169.254.169.254
    "64:ff9b::a00:1",  # NAT64 around 10.0.0.1
    "64:ff9b:1::a00:1",  # local-use NAT64
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
    "2001:db8::1",  # documentation
    "ff02::1",  # multicast
    "198.18.0.1",  # benchmarking
    "192.0.0.1",
    "240.0.0.1",
]


@pytest.mark.parametrize("address", REFUSED_ADDRESSES)
def test_policy_refuses_internal_ranges(address: str) -> None:
    """Every internal, special or IPv4-carrying form of an internal address is refused."""
    assert not AddressPolicy().allows(address, 80)


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:4700::1111", "64:ff9b::5db8:d822"])
def test_policy_allows_public_addresses(address: str) -> None:
    """Public addresses pass (NAT64 of a public IPv4 address too)."""
    assert AddressPolicy().allows(address, 443)


@pytest.mark.parametrize(
    "host",
    ["[fe80::1%25eth0]", "[::]", "0.0.0.0", "127.0.0.1.", "0177.0.0.1", "0x7f000001", "127.1"],
)
def test_check_url_judges_every_literal_spelling(host: str) -> None:
    """Zone ids, unspecified addresses, trailing dots, octal and hex spellings are refused."""
    reason = AddressPolicy().check_url(f"http://{host}:8080/feed")
    assert reason is not None and "not public" in reason


@pytest.mark.parametrize("address", ["169.254.169.254", "10.0.0.1", "100.64.0.1", "fc00::1"])
def test_socket_factory_refuses_before_creating_a_socket(address: str) -> None:
    """The connector's socket factory refuses the address without creating a socket."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    factory = guarded_socket_factory(AddressPolicy(("127.0.0.1:1",)))
    with trap_sockets() as sockets, pytest.raises(BlockedAddress, match="not public"):
        factory((family, socket.SOCK_STREAM, 6, "", (address, 80)))
    assert sockets == []


def test_socket_factory_lets_allowed_addresses_through() -> None:
    """Public addresses and allow-listed private ones reach socket creation (intercepted)."""
    factory = guarded_socket_factory(AddressPolicy(("10.1.0.0/16",)))
    with trap_sockets() as sockets:
        for address in ("93.184.216.34", "10.1.2.3"):
            with pytest.raises(Intercepted):
                factory((socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, 443)))
    assert len(sockets) == 2


def guarded_session(resolver: FixedResolver | None = None) -> aiohttp.ClientSession:
    """The daemon's feed session (allowing one unused loopback port), or one whose resolver
    is *not* guarded, so only the socket factory stands between it and the address."""
    cfg = FetchConfig(allow_private=("127.0.0.1:1",), timeout=3.0)
    if resolver is None:
        return make_session(cfg)
    connector = aiohttp.TCPConnector(
        resolver=resolver,
        socket_factory=guarded_socket_factory(AddressPolicy(cfg.allow_private)),
        use_dns_cache=False,
    )
    return aiohttp.ClientSession(connector=connector)


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/",
        "http://100.64.0.1/",
        "http://[fc00::1]/",
        "http://[fd00::1]:8080/",
        "http://[64:ff9b::a9fe:a9fe]/",
        "http://0.0.0.0:8080/",
        "http://[::]:8080/",
        "http://[::ffff:10.0.0.1]/",
    ],
)
async def test_connector_refuses_ip_literals_without_the_url_check(url: str) -> None:
    """Literals aiohttp never resolves are still refused at connect time, with no socket."""
    async with guarded_session() as session:
        with trap_sockets() as sockets, pytest.raises(aiohttp.ClientConnectorError) as info:
            await session.get(url, allow_redirects=False)
    assert is_blocked(info.value.os_error)
    assert sockets == []


@pytest.mark.parametrize(
    "answers",
    [["169.254.169.254"], ["10.0.0.1", "100.64.0.1"], ["127.0.0.1"]],
    ids=["metadata", "private-and-cgnat", "loopback-port-not-allowed"],
)
async def test_connector_refuses_what_an_unguarded_resolver_returns(answers: list[str]) -> None:
    """A resolver answer that bypassed the guard (a rebinding race) dies at the socket factory."""
    async with guarded_session(FixedResolver(answers)) as session:
        with trap_sockets() as sockets, pytest.raises(aiohttp.ClientConnectorError) as info:
            await session.get("http://rebind.test:8080/", allow_redirects=False)
    assert is_blocked(info.value.os_error)
    assert sockets == []


async def test_connector_public_answer_reaches_socket_creation_only() -> None:
    """A public answer passes the guard; the interceptor stops it before any packet."""
    async with guarded_session(FixedResolver(["93.184.216.34"])) as session:
        with trap_sockets() as sockets, pytest.raises(aiohttp.ClientConnectorError) as info:
            await session.get("http://public.test/", allow_redirects=False)
    assert isinstance(info.value.os_error, Intercepted)
    assert len(sockets) == 1


async def test_fetcher_reports_connector_refusals_as_refused() -> None:
    """The Fetcher turns any refusal, from the URL check or the connector, into 'refused'."""
    cfg = FetchConfig(timeout=3.0)
    fetcher = Fetcher(cfg, guarded_session(FixedResolver(["10.0.0.1"])))
    async with fetcher.session:
        with trap_sockets() as sockets:
            for url in ("http://rebind.test/", "http://[fd00::1]/", "http://0x7f.1/"):
                with pytest.raises(FetchError, match="refused"):
                    await fetcher.get(url)
    assert sockets == []


# -- redirects to every forbidden form, on loopback ---------------------------------------------


@pytest.fixture
async def forbidden() -> AsyncIterator[tuple[Counter, TestServer]]:
    counter = Counter()
    async with serve(counter.app()) as server:
        yield counter, server


@pytest.fixture
async def redirector() -> AsyncIterator[TestServer]:
    async def hop(request: web.Request) -> web.Response:
        raise web.HTTPFound(request.query["to"])

    app = web.Application()
    app.router.add_get("/hop", hop)
    async with serve(app) as server:
        yield server


@pytest.mark.parametrize(
    "target",
    [
        "file:///etc/passwd",
        "gopher://127.0.0.1:{port}/_GET%20/",
        "http://127.0.0.1:{port}/",
        "http://127.0.0.1.:{port}/",
        "http://[::ffff:7f00:1]:{port}/",
        "http://017700000001:{port}/",
        "http://localhost:{port}/",
        "http://0.0.0.0:{port}/",
        "http://[::]:{port}/",
        "//127.0.0.1:{port}/",
    ],
)
async def test_redirect_hops_to_forbidden_forms_are_refused(
    redirector: TestServer, forbidden: tuple[Counter, TestServer], target: str
) -> None:
    """A redirect from the allowed server to any spelling of the forbidden one is refused."""
    counter, server = forbidden
    cfg = FetchConfig(allow_private=(f"127.0.0.1:{redirector.port}",), timeout=3.0)
    fetcher = Fetcher(cfg, make_session(cfg))
    to = target.format(port=server.port)
    async with fetcher.session:
        with pytest.raises(FetchError, match="refused"):
            await fetcher.get(f"http://127.0.0.1:{redirector.port}/hop?to={to}")
    assert counter.hits == 0
