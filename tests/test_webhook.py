"""The webhook sink against a real HTTP receiver on 127.0.0.1.

The receiver records every request and answers from a script (default 200), so each test
states what the sink must send and how it must read each answer.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from email.utils import formatdate

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from standardwebhooks import Webhook

from monitor.errors import ConfigError, DeliveryError
from monitor.hit import Hit
from monitor.sinks.http import parse_retry_after
from monitor.sinks.webhook import WebhookSink
from tests.conftest import free_port
from tests.e2e import serve

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
OLD_SECRET = "whsec_" + base64.b64encode(b"an older key that is rotating out").decode()


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """Records requests; answers with ``answers`` in order, then 200."""

    server: TestServer | None = None
    requests: list[Request] = field(default_factory=list)
    answers: list[tuple[int, dict[str, str], bytes]] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append(Request(request.path, dict(request.headers), await request.read()))
        if request.path == "/hang":
            await self.release.wait()
        status, headers, body = self.answers.pop(0) if self.answers else (200, {}, b"ok")
        return web.Response(status=status, headers=headers, body=body)

    def url(self, path: str = "/hook") -> str:
        assert self.server is not None
        return str(self.server.make_url(path))


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", rec.handle)
    async with serve(app) as rec.server:
        try:
            yield rec
        finally:
            rec.release.set()


def make_hit(hid: str = "h_0123456789abcdef01234567") -> Hit:
    doc = {
        "id": hid,
        "rule": {"id": "korea-opcon", "name": "Korea wartime operational control"},
        "article": {"title": "Seoul seeks “operational control”", "url": "https://e.com/a"},
        "story": "s_1",
        "matches": [],
        "detected_at": "2026-11-27T15:00:00Z",
    }
    body = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()
    return Hit(id=hid, rule_id="korea-opcon", story="s_1", body=body)


async def failing_send(sink: WebhookSink, hit: Hit) -> DeliveryError:
    with pytest.raises(DeliveryError) as caught:
        await sink.send(hit)
    return caught.value


async def test_signed_post_verifies_with_standardwebhooks(
    receiver: Receiver, session: aiohttp.ClientSession
) -> None:
    """The POST carries the exact hit body and a signature standardwebhooks accepts."""
    hit = make_hit()
    await WebhookSink("partner", receiver.url(), session=session, secret=SECRET).send(hit)
    (req,) = receiver.requests
    assert req.body == hit.body
    assert req.headers["Content-Type"] == "application/json"
    assert req.headers["User-Agent"].startswith("news-monitor/")
    assert req.headers["webhook-id"] == hit.id
    assert Webhook(SECRET).verify(req.body, req.headers) == hit.data()


async def test_retries_keep_id_and_refresh_timestamp(
    receiver: Receiver, session: aiohttp.ClientSession
) -> None:
    """500, 500, 200: two retryable errors then success; same id, fresh timestamp and signature."""
    receiver.answers = [(500, {}, b"boom"), (500, {}, b"boom")]
    sink = WebhookSink("partner", receiver.url(), session=session, secret=SECRET)
    hit = make_hit()
    for _ in range(2):
        err = await failing_send(sink, hit)
        assert (err.status, err.permanent, err.disable, err.retry_after) == (
            500,
            False,
            False,
            None,
        )
    await asyncio.sleep(1.05)  # timestamps have one-second resolution
    await sink.send(hit)
    first, _, last = receiver.requests
    assert {r.headers["webhook-id"] for r in receiver.requests} == {hit.id}
    assert first.headers["webhook-timestamp"] != last.headers["webhook-timestamp"]
    assert first.headers["webhook-signature"] != last.headers["webhook-signature"]
    for req in receiver.requests:
        Webhook(SECRET).verify(req.body, req.headers)


async def test_rotated_secrets_sign_with_each(
    receiver: Receiver, session: aiohttp.ClientSession
) -> None:
    """A [new, old] secret list yields two signatures, each verifying with its own secret."""
    sink = WebhookSink("p", receiver.url(), session=session, secret=[SECRET, OLD_SECRET])
    await sink.send(make_hit())
    (req,) = receiver.requests
    signatures = req.headers["webhook-signature"].split(" ")
    assert len(signatures) == 2
    for signature, secret in zip(signatures, [SECRET, OLD_SECRET], strict=True):
        Webhook(secret).verify(req.body, {**req.headers, "webhook-signature": signature})
    with pytest.raises(Exception, match="No matching signature"):
        Webhook(OLD_SECRET).verify(req.body, {**req.headers, "webhook-signature": signatures[0]})


async def test_plain_secret_is_used_as_raw_bytes(
    receiver: Receiver, session: aiohttp.ClientSession
) -> None:
    """A secret without whsec_ is the HMAC key as its UTF-8 bytes."""
    await WebhookSink("p", receiver.url(), session=session, secret="hunter2").send(make_hit())
    (req,) = receiver.requests
    Webhook(b"hunter2").verify(req.body, req.headers)


async def test_no_secret_no_signature(receiver: Receiver, session: aiohttp.ClientSession) -> None:
    """Without a secret the POST has id and timestamp but no signature header."""
    await WebhookSink("p", receiver.url(), session=session).send(make_hit())
    (req,) = receiver.requests
    assert "webhook-signature" not in req.headers
    assert abs(int(req.headers["webhook-timestamp"]) - time.time()) < 60


@pytest.mark.parametrize("secret", ["whsec_n0t*base64!", "", ["whsec_AAAA", "whsec_"]])
async def test_bad_secret_is_a_config_error(
    session: aiohttp.ClientSession, secret: str | list[str]
) -> None:
    """A non-base64 or empty secret fails at construction, without echoing the secret."""
    with pytest.raises(ConfigError) as caught:
        WebhookSink("p", "https://example.com/", session=session, secret=secret)
    assert "n0t" not in str(caught.value)


@pytest.mark.parametrize("url", ["ftp://example.com/x", "/relative", "https://", "http://[::1"])
async def test_bad_url_is_a_config_error(session: aiohttp.ClientSession, url: str) -> None:
    """Only absolute http(s) URLs are accepted."""
    with pytest.raises(ConfigError):
        WebhookSink("p", url, session=session)


async def test_429_retry_after_seconds(receiver: Receiver, session: aiohttp.ClientSession) -> None:
    """429 with Retry-After: 7 gives retry_after == 7."""
    receiver.answers = [(429, {"Retry-After": "7"}, b"slow down")]
    err = await failing_send(WebhookSink("p", receiver.url(), session=session), make_hit())
    assert (err.status, err.retry_after, err.permanent, err.disable) == (429, 7.0, False, False)


async def test_503_retry_after_http_date(
    receiver: Receiver, session: aiohttp.ClientSession
) -> None:
    """503 with an HTTP-date Retry-After gives the seconds until that date."""
    receiver.answers = [(503, {"Retry-After": formatdate(time.time() + 120, usegmt=True)}, b"")]
    err = await failing_send(WebhookSink("p", receiver.url(), session=session), make_hit())
    assert err.status == 503
    assert err.retry_after is not None
    assert 100 <= err.retry_after <= 121


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("7", 7.0),
        (" 12 ", 12.0),
        ("0", 0.0),
        ("-5", 0.0),
        ("999999999", 86400.0),
        ("nan", None),
        ("soon", None),
        ("", None),
        (None, None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),
        ("Wed, 21 Oct 2015 07:29:00 GMT", 60.0),
        ("Wed, 21 Oct 2015 07:28:00", None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    """Retry-After: delta-seconds or HTTP-date, clamped to 0 … 1 day, junk ignored."""
    now = 1445412480.0  # Wed, 21 Oct 2015 07:28:00 GMT
    assert parse_retry_after(value, now=now) == expected


async def test_redirect_is_not_followed(receiver: Receiver, session: aiohttp.ClientSession) -> None:
    """301 is a retryable error and its Location never sees a request."""
    receiver.answers = [(301, {"Location": receiver.url("/moved")}, b"")]
    err = await failing_send(WebhookSink("p", receiver.url(), session=session), make_hit())
    assert (err.status, err.permanent, err.disable) == (301, False, False)
    assert [r.path for r in receiver.requests] == ["/hook"]


async def test_410_disables(receiver: Receiver, session: aiohttp.ClientSession) -> None:
    """410 Gone disables the sink."""
    receiver.answers = [(410, {}, b"gone")]
    err = await failing_send(WebhookSink("p", receiver.url(), session=session), make_hit())
    assert (err.status, err.disable) == (410, True)


@pytest.mark.parametrize("status", [400, 401, 404, 413, 422])
async def test_other_4xx_are_retryable(
    receiver: Receiver, session: aiohttp.ClientSession, status: int
) -> None:
    """Other 4xx answers are retried (Standard Webhooks practice), never permanent."""
    receiver.answers = [(status, {}, b"")]
    err = await failing_send(WebhookSink("p", receiver.url(), session=session), make_hit())
    assert (err.status, err.permanent, err.disable) == (status, False, False)


async def test_hanging_receiver_times_out(
    receiver: Receiver, session: aiohttp.ClientSession
) -> None:
    """A receiver that never answers yields a retryable DeliveryError chained to the timeout."""
    sink = WebhookSink("p", receiver.url("/hang"), session=session, timeout=0.5)
    err = await failing_send(sink, make_hit())
    assert isinstance(err.__cause__, TimeoutError | aiohttp.ClientError)
    assert err.status is None
    assert not err.permanent


async def test_connection_refused_is_retryable(session: aiohttp.ClientSession) -> None:
    """Nobody listening is a retryable DeliveryError chained to the client error."""
    sink = WebhookSink("p", f"http://127.0.0.1:{free_port()}/hook", session=session)
    err = await failing_send(sink, make_hit())
    assert isinstance(err.__cause__, aiohttp.ClientError)
    assert not err.permanent


async def test_errors_hide_url_secrets_and_big_bodies(
    receiver: Receiver, session: aiohttp.ClientSession
) -> None:
    """Messages show the host, not the URL's path or query, and only a short body excerpt."""
    receiver.answers = [(500, {}, b"x" * 1_000_000)]
    sink = WebhookSink("p", receiver.url("/in/s3cr3t?token=t0k3n"), session=session)
    err = await failing_send(sink, make_hit())
    refused = WebhookSink("p", f"http://127.0.0.1:{free_port()}/s3cr3t", session=session)
    for message in (str(err), str(await failing_send(refused, make_hit()))):
        assert "127.0.0.1" in message
        assert "s3cr3t" not in message
        assert "t0k3n" not in message
    assert len(str(err)) < 400
