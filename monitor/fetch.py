"""Fetching feeds and pages over HTTP with every limit applied.

Promises: conditional GET (``If-None-Match``/``If-Modified-Since``); a total deadline over the
whole exchange (redirects and body included) that a slow server cannot stretch, plus a connect
timeout (a read waits at most until the total deadline: a per-read timer of the same length,
as ``sock_read`` was, could never fire first, and cost a timer rescheduled at every socket
read); redirects followed by hand (at most ``max_redirects``) so each hop is
checked by the address guard, whose resolver and socket factory also sit in the connector (see
:mod:`monitor.netguard`); the *decoded* body is counted while streaming and the fetch fails as
soon as it passes ``max_bytes``, whatever ``Content-Length`` says. Memory stays near
``max_bytes``: aiohttp (>= 3.13.3) inflates gzip, deflate and brotli in bounded steps
(``max_length``), never a whole chunk at once — ``tests/test_hostile.py`` measures it on
200 MB bombs. Response heads are bounded too: lines and fields at 8 KiB, at most 128 headers.
Every failure is a :class:`FetchError`; its message is one line fit for the poll log.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from urllib.parse import urljoin

import aiohttp

from monitor.config import FetchConfig
from monitor.errors import FetchError
from monitor.httpdate import parse_retry_after
from monitor.netguard import AddressPolicy, GuardedResolver, guarded_socket_factory, is_blocked

_REDIRECTS = {301, 302, 303, 307, 308}
_KEEP_HEADERS = (
    "etag",
    "last-modified",
    "content-type",
    "cache-control",
    "expires",
    "retry-after",
    "link",
)
MAX_HEADER_LINE = 8190
MAX_HEADERS = 128


@dataclass(frozen=True, slots=True)
class Response:
    """A completed fetch: the final URL, status, decoded body and the headers we use."""

    url: str
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    permanent_redirect: str | None = None  # set when every hop was 301/308

    @property
    def not_modified(self) -> bool:
        return self.status == 304


def make_session(cfg: FetchConfig, policy: AddressPolicy | None = None) -> aiohttp.ClientSession:
    """The guarded session for untrusted URLs (feeds, article links)."""
    policy = policy or AddressPolicy(cfg.allow_private)
    connector = aiohttp.TCPConnector(
        resolver=GuardedResolver(policy),
        socket_factory=guarded_socket_factory(policy),
        limit=cfg.concurrency,
        limit_per_host=cfg.per_host,
        ttl_dns_cache=60,
    )
    # No sock_read: every request through this session runs under a total deadline of
    # cfg.timeout (Fetcher.get, the WebSub hub POST), which a read cannot outlast anyway.
    timeout = aiohttp.ClientTimeout(total=None, connect=cfg.connect_timeout)
    return aiohttp.ClientSession(
        connector=connector,
        timeout=timeout,
        headers={"User-Agent": cfg.user_agent, "Accept-Encoding": "gzip, deflate, br"},
        max_line_size=MAX_HEADER_LINE,
        max_field_size=MAX_HEADER_LINE,
        max_headers=MAX_HEADERS,
    )


class Fetcher:
    """GETs untrusted URLs under the limits of one FetchConfig."""

    def __init__(self, cfg: FetchConfig, session: aiohttp.ClientSession) -> None:
        self.cfg = cfg
        self.session = session
        self.policy = AddressPolicy(cfg.allow_private)

    async def get(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        accept: str = "*/*",
    ) -> Response:
        """Fetch ``url``; 200 and 304 return, anything else raises FetchError."""
        headers = {"Accept": accept}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        try:
            async with asyncio.timeout(self.cfg.timeout):
                return await self._follow(url, headers)
        except TimeoutError:
            raise FetchError(f"timed out after {self.cfg.timeout:g}s") from None
        except (ValueError, UnicodeError) as exc:  # yarl/urllib on a malformed URL or Location
            raise FetchError(f"invalid URL {_short(url)}: {exc}", lasting=True) from None

    async def _follow(self, url: str, headers: dict[str, str]) -> Response:
        permanent = True
        for hops in range(self.cfg.max_redirects + 1):
            reason = self.policy.check_url(url)
            if reason:
                raise FetchError(f"refused {_short(url)}: {reason}", lasting=True)
            status, location, resp = await self._once(url, headers)
            if resp is not None:
                return _with_redirect(resp) if permanent and hops else resp
            permanent = permanent and status in (301, 308)
            url = urljoin(url, location)
        raise FetchError(f"more than {self.cfg.max_redirects} redirects", lasting=True)

    async def _once(self, url: str, headers: dict[str, str]) -> tuple[int, str, Response | None]:
        try:
            async with self.session.get(url, headers=headers, allow_redirects=False) as r:
                if r.status in _REDIRECTS and "Location" in r.headers:
                    return r.status, r.headers["Location"], None
                kept = {k: r.headers[k] for k in _KEEP_HEADERS if k in r.headers}
                if r.status == 304:
                    return 304, "", Response(url, 304, b"", kept)
                if r.status != 200:
                    raise FetchError(
                        f"HTTP {r.status}", status=r.status, retry_after=_retry_after(kept)
                    )
                body = await self._read(r)
                return 200, "", Response(url, 200, body, kept)
        except aiohttp.ClientConnectorError as exc:
            if is_blocked(exc.os_error):
                raise FetchError(f"refused {_short(url)}: {exc.os_error}", lasting=True) from None
            raise FetchError(f"cannot connect: {exc.os_error.strerror or exc}") from exc
        except aiohttp.ClientError as exc:
            raise FetchError(client_error(exc)) from exc
        except OSError as exc:  # a refusal that reached us unwrapped
            if is_blocked(exc):
                raise FetchError(f"refused {_short(url)}: {exc}", lasting=True) from None
            raise

    async def _read(self, r: aiohttp.ClientResponse) -> bytes:
        limit = self.cfg.max_bytes
        if (
            r.content_length is not None
            and "Content-Encoding" not in r.headers
            and r.content_length > limit
        ):
            raise FetchError(
                f"body of {r.content_length} bytes exceeds max_bytes {limit}", lasting=True
            )
        # Each piece as it came off the connection (or the decompressor), uncopied: reading
        # in fixed-size steps would slice every large piece into copies first. A piece is
        # bounded all the same: by the socket read, aiohttp's read buffer and, when
        # compressed, the decompressor's step (see the module docstring).
        parts: list[bytes] = []
        size = 0
        async for chunk in r.content.iter_any():
            size += len(chunk)
            if size > limit:
                raise FetchError(f"decoded body exceeds max_bytes {limit}", lasting=True)
            parts.append(chunk)
        return b"".join(parts)  # (one piece comes back as it is, not copied)


_AIOHTTP_CODE = re.compile(r"^\s*\d{3}, message[:=]\s*")


def client_error(exc: aiohttp.ClientError) -> str:
    """One line saying what went wrong with an answer aiohttp could not take.

    Its HTTP parser reports a malformed answer (status line, headers, chunking, content
    encoding) as error 400, which is aiohttp's code, not the server's: such errors are
    called a bad response. The server's text quoted in them is cut short.
    """
    if isinstance(exc, aiohttp.ClientResponseError):
        text = f"bad response: {exc.message}"
    elif isinstance(exc, aiohttp.ClientPayloadError):
        text = f"bad response body: {_AIOHTTP_CODE.sub('', str(exc))}"
    else:
        text = f"{type(exc).__name__}: {exc}"
    text = " ".join(text.split())
    return text if len(text) <= 300 else text[:300] + "…"


def _with_redirect(resp: Response) -> Response:
    return Response(resp.url, resp.status, resp.body, resp.headers, permanent_redirect=resp.url)


def _retry_after(headers: dict[str, str]) -> float | None:
    value = headers.get("retry-after")
    return parse_retry_after(value) if value else None


def _short(url: str) -> str:
    """A URL cut for messages (feed URLs can be long or hostile)."""
    return url if len(url) <= 200 else url[:200] + "…"
