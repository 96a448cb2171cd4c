"""The Slack sink against a real HTTP receiver on 127.0.0.1 standing in for Slack.

Payloads are checked with slack_sdk's own Block Kit models; hostile feed text must arrive
inert; the receiver's arrival times show the per-URL pacing.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from slack_sdk.models.blocks import Block

from monitor.errors import DeliveryError
from monitor.hit import Hit
from monitor.sinks.slack import SlackSink, build_message, clip, clip_left, feed_text, highlight
from tests.e2e import serve

HOSTILE = "<!channel> <@U0ADMIN> <https://evil|Reset password> & <!here|here>"
ENTITY_OR_NOT_AMP = re.compile(r"&(?!amp;|lt;|gt;)")


@dataclass
class Receiver:
    """Records each POST's JSON and monotonic arrival time; answers from ``answers``, then 200."""

    server: TestServer | None = None
    payloads: list[dict[str, Any]] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)
    answers: list[tuple[int, dict[str, str], bytes]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        self.arrivals.append(time.monotonic())
        self.payloads.append(json.loads(await request.read()))
        status, headers, body = self.answers.pop(0) if self.answers else (200, {}, b"ok")
        return web.Response(status=status, headers=headers, body=body)

    def url(self, path: str = "/services/T000/B000/XXXXSECRETXXXX") -> str:
        assert self.server is not None
        return str(self.server.make_url(path))


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()
    app = web.Application()
    app.router.add_post("/{tail:.*}", rec.handle)
    async with serve(app) as rec.server:
        yield rec


def make_hit(**article: Any) -> Hit:
    doc = hit_doc(**article)
    return Hit(id=doc["id"], rule_id="korea-opcon", story="s_1", body=json.dumps(doc).encode())


def hit_doc(
    *, rule_name: str = "Korea wartime operational control", matches: Any = None, **article: Any
) -> dict[str, Any]:
    base = {
        "id": "h_0123456789abcdef01234567",
        "url": "https://example.com/world/korea?id=1&src=rss",
        "title": "Seoul pushes for wartime “operational control”",
        "source": "example-world",
        "site": "example.com",
        "published": "2021-12-01T06:36:00Z",
    }
    if matches is None:
        matches = [
            {
                "field": "body",
                "text": "operational control",
                "start": 10,
                "end": 29,
                "snippet": "…efforts to win wartime “operational control” of combined…",
            }
        ]
    return {
        "id": base["id"],
        "rule": {"id": "korea-opcon", "name": rule_name},
        "article": base | article,
        "story": "s_1",
        "matches": matches,
        "detected_at": "2026-11-27T15:00:00Z",
    }


def texts(node: Any) -> Iterator[str]:
    """Every string under a "text" key in the payload (block text, fields, fallback)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "text" and isinstance(value, str):
                yield value
            else:
                yield from texts(value)
    elif isinstance(node, list):
        for item in node:
            yield from texts(item)


def assert_valid_blocks(payload: dict[str, Any]) -> None:
    assert payload["text"]
    assert 1 <= len(payload["blocks"]) <= 50
    for raw in payload["blocks"]:
        block = Block.parse(raw)
        assert block is not None
        block.validate_json()


async def test_message_is_valid_block_kit(
    receiver: Receiver, session: aiohttp.ClientSession
) -> None:
    """The blocks validate with slack_sdk and show link, rule, source, times, snippet."""
    sink = SlackSink("desk", receiver.url(), session=session)
    await sink.send(make_hit())
    await sink.close()
    (payload,) = receiver.payloads
    assert_valid_blocks(payload)
    body = "\n".join(texts(payload["blocks"]))
    assert "<https://example.com/world/korea?id=1&amp;src=rss|" in body
    assert "Korea wartime operational control" in body
    assert "example-world" in body
    assert "2021-12-01 06:36 UTC" in body
    assert "2026-11-27 15:00 UTC" in body
    assert "*operational control*" in body
    assert "operational control" in payload["text"]


async def test_hostile_feed_text_is_inert(
    receiver: Receiver, session: aiohttp.ClientSession
) -> None:
    """Mentions and masked links in title, snippet, source and rule name arrive escaped."""
    matches = [{"field": "title", "text": "<!channel>", "snippet": HOSTILE}]
    hit = make_hit(title=HOSTILE, source="<@U0ADMIN>", rule_name=HOSTILE, matches=matches)
    sink = SlackSink("desk", receiver.url(), session=session)
    await sink.send(hit)
    await sink.close()
    (payload,) = receiver.payloads
    assert_valid_blocks(payload)
    for text in texts(payload):
        assert "<!" not in text
        assert "<@" not in text
        assert "<https://evil|" not in text
        assert not ENTITY_OR_NOT_AMP.search(text)
    assert "&lt;!channel&gt;" in payload["blocks"][0]["text"]["text"]


@pytest.mark.parametrize(
    "url", ["javascript:alert(1)", "data:text/html,<b>x</b>", "JaVaScRiPt:x", "//evil.com/x", ""]
)
def test_only_http_urls_are_linked(url: str) -> None:
    """A javascript:, data: or relative URL is never linked; the title shows as bold text."""
    message = build_message(hit_doc(url=url))
    title = message["blocks"][0]["text"]["text"]
    assert title == "*Seoul pushes for wartime “operational control”*"
    assert "javascript" not in json.dumps(message).lower()


def test_long_fields_are_truncated_within_limits() -> None:
    """Huge title, snippet, rule name and 60 matches stay within Slack's limits, escapes whole."""
    long = "R&D <b> " * 2000
    matches = [{"field": "body", "text": "R&D", "snippet": long} for _ in range(60)]
    message = build_message(hit_doc(title=long, source=long, rule_name=long, matches=matches))
    assert_valid_blocks(message)
    assert len(message["text"]) <= 3000
    for block in message["blocks"]:
        if block["type"] == "section" and "text" in block:
            assert len(block["text"]["text"]) <= 3000
        for item in block.get("fields", []) + block.get("elements", []):
            assert len(item["text"]) <= 2000
    for text in texts(message):
        assert not ENTITY_OR_NOT_AMP.search(text)
        assert "<" not in text.replace("<https://example.com", "")
    assert "… and 50 more matches" in json.dumps(message, ensure_ascii=False)


@pytest.mark.parametrize(
    ("snippet", "text", "expected"),
    [
        (
            "…win “operational control” of…",
            "operational control",
            "…win “*operational control*” of…",
        ),
        ("the OPCON transfer", "opcon", "the *OPCON* transfer"),
        ("a *b* c OPCON", "OPCON", "a ∗b∗ c *OPCON*"),
        ("x_y ~z~ `q` OPCON", "OPCON", "x＿y ∼z∼ ˋqˋ *OPCON*"),
        ("R&D <in> Seoul", "Seoul", "R&amp;D &lt;in&gt; *Seoul*"),
        ("no match\nhere", "absent", "no match here"),
        ("", "Seoul", "Seoul"),
    ],
)
def test_highlight(snippet: str, text: str, expected: str) -> None:
    """The matched text is bolded inside the escaped snippet; feed markers cannot interfere."""
    assert highlight(snippet, text) == expected


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("abcdef", 6, "abcdef"),
        ("abcdefg", 6, "abcde…"),
        ("abc&amp;d", 6, "abc…"),
        ("abcd&lt;", 6, "abcd…"),
        ("ab&gt;cd", 6, "ab…"),
        ("ab&gt;cd", 7, "ab&gt;…"),
    ],
)
def test_clip_never_splits_an_escape(text: str, limit: int, expected: str) -> None:
    """Cutting to a limit ends with … and never inside &amp; / &lt; / &gt;."""
    assert clip(text, limit) == expected
    assert len(clip(text, limit)) <= limit


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [("abcdef", 6, "abcdef"), ("abcdefg", 6, "…cdefg"), ("a&amp;bcd", 6, "…bcd")],
)
def test_clip_left_never_splits_an_escape(text: str, limit: int, expected: str) -> None:
    """Cutting from the left keeps the end and never starts inside an escape."""
    assert clip_left(text, limit) == expected


def test_feed_text_escapes_and_neutralises() -> None:
    """Feed text loses &, <, > and mrkdwn markers and gets single spaces."""
    assert feed_text(" <!here>\n*bold*  & _it_ ") == "&lt;!here&gt; ∗bold∗ &amp; ＿it＿"


async def test_429_retry_after_honoured(receiver: Receiver, session: aiohttp.ClientSession) -> None:
    """429 Retry-After sets retry_after; the URL then gets nothing until it has passed."""
    receiver.answers = [(429, {"Retry-After": "30"}, b"rate_limited")]
    first = SlackSink("desk", receiver.url(), session=session, min_interval=0)
    other = SlackSink("desk2", receiver.url(), session=session, min_interval=0)
    with pytest.raises(DeliveryError) as caught:
        await first.send(make_hit())
    assert (caught.value.status, caught.value.retry_after) == (429, 30.0)
    with pytest.raises(DeliveryError) as again:
        await other.send(make_hit())
    assert again.value.retry_after is not None
    assert 0 < again.value.retry_after <= 30
    assert len(receiver.payloads) == 1
    await first.close()
    await other.close()


@pytest.mark.parametrize(
    ("status", "permanent", "disable"),
    [(400, True, False), (403, True, False), (404, True, False), (410, False, True),
     (500, False, False), (503, False, False), (302, False, False)],
)  # fmt: skip
async def test_status_mapping(
    receiver: Receiver, session: aiohttp.ClientSession, status: int, permanent: bool, disable: bool
) -> None:
    """400/403/404 are permanent, 410 disables, 3xx and 5xx are retryable."""
    receiver.answers = [(status, {"Location": "/elsewhere"}, b"invalid_payload")]
    sink = SlackSink("desk", receiver.url(), session=session)
    with pytest.raises(DeliveryError) as caught:
        await sink.send(make_hit())
    await sink.close()
    err = caught.value
    assert (err.status, err.permanent, err.disable) == (status, permanent, disable)
    assert "XXXXSECRETXXXX" not in str(err)
    assert "T000" not in str(err)
    assert len(receiver.payloads) == 1


async def test_network_error_hides_url(session: aiohttp.ClientSession) -> None:
    """A refused connection is retryable and its message names the host, not the secret path."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sink = SlackSink("desk", f"http://127.0.0.1:{port}/services/T/B/XXXXSECRET", session=session)
    with pytest.raises(DeliveryError) as caught:
        await sink.send(make_hit())
    await sink.close()
    assert isinstance(caught.value.__cause__, aiohttp.ClientError)
    assert "127.0.0.1" in str(caught.value)
    assert "XXXXSECRET" not in str(caught.value)
    assert not caught.value.permanent


async def test_pacing_one_message_per_second_per_url(
    receiver: Receiver, session: aiohttp.ClientSession
) -> None:
    """Three concurrent sends via two sinks on one URL arrive at least ~1 s apart."""
    one = SlackSink("desk", receiver.url(), session=session)
    two = SlackSink("desk-copy", receiver.url(), session=session)
    async with asyncio.TaskGroup() as group:
        for sink in (one, two, one):
            group.create_task(sink.send(make_hit()))
    await one.close()
    await two.close()
    gaps = [b - a for a, b in zip(receiver.arrivals, receiver.arrivals[1:], strict=False)]
    assert len(gaps) == 2
    assert all(gap >= 0.9 for gap in gaps), gaps
