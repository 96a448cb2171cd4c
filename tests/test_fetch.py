"""Fetching: conditional GET, limits, and the private-address guard (loopback only)."""

from __future__ import annotations

import asyncio
import gzip
import socket
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.test_utils import TestServer

from monitor.config import FetchConfig
from monitor.errors import FetchError
from monitor.fetch import Fetcher, make_session
from monitor.netguard import AddressPolicy, BlockedAddress, GuardedResolver
from tests.e2e import serve


@pytest.fixture(autouse=True)
def no_outside_sockets(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if anything tries to connect outside 127.0.0.0/8 and ::1."""
    real = socket.socket.connect

    def guarded(self: socket.socket, address: object) -> object:
        host = address[0] if isinstance(address, tuple) else ""
        if host and not (str(host).startswith("127.") or host == "::1"):
            pytest.fail(f"test tried to connect to {address!r}")
        return real(self, address)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", guarded)


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        ("93.184.216.34", True),
        ("2606:4700::1111", True),
        ("127.0.0.1", False),
        ("127.8.9.10", False),
        ("::1", False),
        ("10.0.0.1", False),
        ("172.16.5.4", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("255.255.255.255", False),
        ("fc00::1", False),
        ("fd12:3456::1", False),
        ("fe80::1", False),
        ("::ffff:127.0.0.1", False),
        ("::ffff:10.0.0.1", False),
        ("::ffff:93.184.216.34", True),
        ("2002:7f00:1::", False),  # 6to4 wrapping 127.0.0.1
        ("not-an-ip", False),
    ],
)
def test_policy_refuses_non_public_addresses(address: str, allowed: bool) -> None:
    """Only globally routable unicast addresses pass the default policy."""
    assert AddressPolicy().allows(address, 80) is allowed


def test_policy_allow_list_entries() -> None:
    """allow_private opens exactly the listed host:port or network, compared with the address."""
    policy = AddressPolicy(("127.0.0.1:8080", "10.1.0.0/16", "[::1]:9000"))
    assert policy.allows("127.0.0.1", 8080)
    assert not policy.allows("127.0.0.1", 8081)
    assert policy.allows("10.1.2.3", 443)
    assert not policy.allows("10.2.0.1", 443)
    assert policy.allows("::1", 9000)
    assert AddressPolicy(True).allows("169.254.169.254", 80)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("file:///etc/passwd", "scheme 'file'"),
        ("gopher://127.0.0.1:70/", "scheme 'gopher'"),
        ("javascript:alert(1)", "scheme 'javascript'"),
        ("http://169.254.169.254/latest/meta-data/", "not public"),
        ("http://[::ffff:127.0.0.1]:80/", "not public"),
        ("http://10.0.0.1/", "not public"),
        ("http://[fd00::1]/", "not public"),
        ("http:///nohost", "no host"),
        ("http://2130706433/", "127.0.0.1 is not public"),
        ("http://0x7f.1/", "127.0.0.1 is not public"),
        ("http://0xa9.254.169.254/", "169.254.169.254 is not public"),
        ("http://012.0.0.1/", "10.0.0.1 is not public"),
    ],
)
def test_check_url_refuses_before_any_socket(url: str, reason: str) -> None:
    """Schemes and IP literals are refused by the URL check, without resolving or connecting."""
    result = AddressPolicy().check_url(url)
    assert result is not None and reason in result


class FixedResolver(AbstractResolver):
    """Answers every name with the given addresses (a resolver the test controls)."""

    def __init__(self, *answers: list[str]) -> None:
        self.answers = list(answers)
        self.calls = 0

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        addrs = self.answers[min(self.calls, len(self.answers) - 1)]
        self.calls += 1
        return [
            {
                "hostname": host,
                "host": a,
                "port": port,
                "family": socket.AF_INET,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST,
            }
            for a in addrs
        ]

    async def close(self) -> None:
        return None


async def test_resolver_drops_private_answers() -> None:
    """A name resolving to private addresses is refused; mixed answers keep the public ones."""
    guarded = GuardedResolver(AddressPolicy(), FixedResolver(["10.0.0.1", "169.254.169.254"]))
    with pytest.raises(BlockedAddress, match="not public"):
        await guarded.resolve("internal.example", 80)
    mixed = GuardedResolver(AddressPolicy(), FixedResolver(["10.0.0.1", "93.184.216.34"]))
    assert [r["host"] for r in await mixed.resolve("x.example", 80)] == ["93.184.216.34"]


# -- on local servers ------------------------------------------------------------------------


class Counter:
    """A listener that counts connections (the forbidden target)."""

    def __init__(self) -> None:
        self.hits = 0

    def app(self) -> web.Application:
        async def any_path(_: web.Request) -> web.Response:
            self.hits += 1
            return web.Response(text="secret")

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", any_path)
        return app


@pytest.fixture
async def forbidden() -> AsyncIterator[tuple[Counter, TestServer]]:
    counter = Counter()
    async with serve(counter.app()) as server:
        yield counter, server


def site_app(forbidden_port: int) -> web.Application:
    async def feed(request: web.Request) -> web.Response:
        if request.headers.get("If-None-Match") == '"v1"':
            return web.Response(status=304)
        return web.Response(text="<rss/>", headers={"ETag": '"v1"', "Last-Modified": "x"})

    async def bomb(_: web.Request) -> web.Response:
        body = gzip.compress(b"\0" * (8 * 2**20))
        return web.Response(
            body=body, headers={"Content-Encoding": "gzip", "Content-Type": "text/html"}
        )

    async def slow(_: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        resp.content_length = 1000
        await resp.prepare(_)
        for _i in range(1000):
            await resp.write(b"x")
            await asyncio.sleep(1)
        return resp

    async def hop(request: web.Request) -> web.Response:
        target = request.query["to"]
        raise web.HTTPFound(target)

    async def loop(request: web.Request) -> web.Response:
        n = int(request.query.get("n", "0"))
        raise web.HTTPMovedPermanently(f"/loop?n={n + 1}")

    async def gone(_: web.Request) -> web.Response:
        return web.Response(status=429, headers={"Retry-After": "7"})

    app = web.Application()
    app.router.add_get("/feed", feed)
    app.router.add_get("/bomb", bomb)
    app.router.add_get("/slow", slow)
    app.router.add_get("/hop", hop)
    app.router.add_get("/loop", loop)
    app.router.add_get("/busy", gone)
    return app


@pytest.fixture
async def site(forbidden: tuple[Counter, TestServer]) -> AsyncIterator[TestServer]:
    async with serve(site_app(forbidden[1].port)) as server:
        yield server


def fetcher_for(port: int, **overrides: object) -> Fetcher:
    settings: dict[str, object] = {"timeout": 3.0, "max_bytes": 2**20, **overrides}
    cfg = FetchConfig(allow_private=(f"127.0.0.1:{port}",), **settings)  # type: ignore[arg-type]
    return Fetcher(cfg, make_session(cfg))


async def test_conditional_get_sends_validators_and_returns_304(site: TestServer) -> None:
    """With the stored ETag the server answers 304 and no body is read."""
    f = fetcher_for(site.port)
    async with f.session:
        first = await f.get(f"http://127.0.0.1:{site.port}/feed")
        second = await f.get(f"http://127.0.0.1:{site.port}/feed", etag=first.headers["etag"])
    assert first.status == 200 and first.body == b"<rss/>"
    assert second.not_modified and second.body == b""


async def test_decompression_bomb_stops_at_the_cap(site: TestServer) -> None:
    """8 MiB decoded from a small gzip body fails at max_bytes (1 MiB)."""
    f = fetcher_for(site.port)
    async with f.session:
        with pytest.raises(FetchError, match="exceeds max_bytes"):
            await f.get(f"http://127.0.0.1:{site.port}/bomb")


async def test_slow_body_hits_the_total_deadline(site: TestServer) -> None:
    """A 1-byte-per-second body cannot stretch the fetch past its total timeout."""
    f = fetcher_for(site.port, timeout=1.5)
    async with f.session:
        with pytest.raises(FetchError, match="timed out"):
            await f.get(f"http://127.0.0.1:{site.port}/slow")


async def test_redirect_loop_is_capped(site: TestServer) -> None:
    """More redirects than max_redirects is an error."""
    f = fetcher_for(site.port, max_redirects=3)
    async with f.session:
        with pytest.raises(FetchError, match="more than 3 redirects"):
            await f.get(f"http://127.0.0.1:{site.port}/loop")


async def test_retry_after_is_reported(site: TestServer) -> None:
    """A 429 with Retry-After carries the delay in the FetchError."""
    f = fetcher_for(site.port)
    async with f.session:
        with pytest.raises(FetchError) as info:
            await f.get(f"http://127.0.0.1:{site.port}/busy")
    assert info.value.status == 429 and info.value.retry_after == 7


@pytest.mark.parametrize(
    "spelling",
    [
        "127.0.0.1:{port}",
        "[::ffff:127.0.0.1]:{port}",
        "2130706433:{port}",
        "0x7f.1:{port}",
        "localhost:{port}",
    ],
)
async def test_forbidden_listener_is_never_reached(
    site: TestServer, forbidden: tuple[Counter, TestServer], spelling: str
) -> None:
    """Every spelling of the forbidden loopback port, directly or through a redirect, is refused."""
    counter, target = forbidden
    url = "http://" + spelling.format(port=target.port) + "/"
    f = fetcher_for(site.port)
    async with f.session:
        with pytest.raises(FetchError, match="refused"):
            await f.get(url)
        with pytest.raises(FetchError, match="refused"):
            await f.get(f"http://127.0.0.1:{site.port}/hop?to={url}")
    assert counter.hits == 0


async def test_dns_rebinding_is_checked_at_connect(
    site: TestServer, forbidden: tuple[Counter, TestServer]
) -> None:
    """A name that first resolves to the allowed address and then to a forbidden one is refused."""
    counter, _ = forbidden
    policy = AddressPolicy((f"127.0.0.1:{site.port}",))
    # The allowed server's port is the only one allowed; rebinding answers another address.
    resolver = FixedResolver(["127.0.0.1"], ["127.0.0.2"])
    cfg = FetchConfig(allow_private=policy_entries(site.port), timeout=3.0)
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(
            resolver=GuardedResolver(policy, resolver), use_dns_cache=False, force_close=True
        )
    )
    f = Fetcher(cfg, session)
    async with session:
        ok = await f.get(f"http://rebind.test:{site.port}/feed")
        with pytest.raises(FetchError, match="refused"):
            await f.get(f"http://rebind.test:{site.port}/feed")
    assert ok.status == 200 and counter.hits == 0


def policy_entries(port: int) -> tuple[str, ...]:
    return (f"127.0.0.1:{port}",)


MALFORMED = {
    "status line": b"HTTP/1.1 abc\r\nContent-Length: 0\r\n\r\n",
    "content length": b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
    "chunking": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
    "gzip": b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 9\r\n\r\nnot gzip!",
}


@pytest.mark.parametrize("answer", MALFORMED.values(), ids=MALFORMED.keys())
async def test_a_malformed_answer_is_one_line_called_a_bad_response(answer: bytes) -> None:
    """What aiohttp's parser refuses comes out as one line saying "bad response", not as
    its multi-line text with its own code 400 (which a reader takes for the server's)."""

    async def reply(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(answer)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(reply, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        f = fetcher_for(port)
        async with f.session:
            with pytest.raises(FetchError) as info:
                await f.get(f"http://127.0.0.1:{port}/feed")
    finally:
        server.close()
        await server.wait_closed()
    message = str(info.value)
    assert message.startswith("bad response") and "\n" not in message, message
    assert "400" not in message and info.value.status is None
