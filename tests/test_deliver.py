"""The delivery loop against a real SQLite store and a real HTTP receiver on 127.0.0.1.

Time never passes in these tests: each one asserts on the schedule the loop wrote to the
store (attempts, next_at, last error), then makes the delivery due again by hand.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from slack_sdk.models.blocks import Block
from standardwebhooks import Webhook

from monitor.deliver import FOLDED, SCHEDULE, Deliverer, fingerprint, next_delay
from monitor.digest import digest_hit, digest_id
from monitor.errors import DeliveryError
from monitor.hit import Hit, hit_id
from monitor.metrics import Metrics
from monitor.sinks.slack import SlackSink
from monitor.sinks.webhook import WebhookSink
from monitor.store.base import Pending
from monitor.store.sqlite import SQLiteStore
from tests.conftest import SEED_ARTICLE
from tests.e2e import RULES, Site, running, serve, write_config

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SINK = "partner"


@dataclass
class Receiver:
    """Answers from ``answers`` in order, then 200; requests for ids in ``hang`` never end."""

    answers: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    hang: set[str] = field(default_factory=set)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    server: TestServer | None = None

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests.append((dict(request.headers), body))
        if request.headers.get("webhook-id") in self.hang:
            await self.release.wait()
        status, headers = self.answers.pop(0) if self.answers else (200, {})
        return web.Response(status=status, headers=headers)

    def url(self, path: str = "/hook") -> str:
        assert self.server is not None
        return str(self.server.make_url(path))

    def ids(self) -> list[str]:
        return [h["webhook-id"] for h, _ in self.requests]


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


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    async with SQLiteStore(tmp_path / "monitor.db") as s:
        yield s


def make_hit(story: str, rule: str = "korea-opcon", title: str = "Seoul talks OPCON") -> Hit:
    hid = hit_id(rule, story)
    doc = {
        "id": hid,
        "rule": {"id": rule, "name": "Korea <b>OPCON</b>"},
        "article": {"title": title, "url": f"https://example.com/{story}", "source": "wire"},
        "story": story,
        "matches": [],
        "detected_at": "2026-11-27T15:00:00Z",
    }
    body = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()
    return Hit(hid, rule, story, body, sinks=(SINK,))


def deliverer(store: SQLiteStore, sink: WebhookSink | SlackSink, **options: object) -> Deliverer:
    return Deliverer(sink, store, Metrics(), **options)  # type: ignore[arg-type]


async def make_due(store: SQLiteStore, hid: str) -> None:
    """Pretend the scheduled time has come (keeping attempts and error)."""
    [p] = [p for p in await store.pending(SINK) if p.hit_id == hid]
    await store.retry(SINK, hid, p.attempts, 0.0, p.last_error or "")


async def only_pending(store: SQLiteStore) -> tuple[int, float, str | None]:
    """(attempts, seconds until next attempt, last error) of the single pending delivery."""
    [p] = await store.pending(SINK)
    return p.attempts, p.next_at - time.time(), p.last_error


def test_schedule_spans_three_days_with_jitter() -> None:
    """Seven retries after the first attempt, ±10 % jitter, then None; Retry-After wins."""
    err = DeliveryError("x")
    assert [next_delay(n, err, rand=lambda: 0.5) for n in range(1, 9)] == [*SCHEDULE, None]
    assert next_delay(1, err, rand=lambda: 0.0) == pytest.approx(4.5)
    assert next_delay(1, err, rand=lambda: 1.0) == pytest.approx(5.5)
    assert next_delay(3, DeliveryError("x", retry_after=7.0)) == 7.0
    assert next_delay(8, DeliveryError("x", retry_after=7.0)) is None
    assert sum(SCHEDULE) == 5 + 300 + 1800 + 7200 + 18000 + 36000 + 36000  # ≈ 27.6 h in all


async def test_500_500_200_follows_the_schedule_with_one_id(
    store: SQLiteStore, receiver: Receiver, session: aiohttp.ClientSession
) -> None:
    """Two 500s are rescheduled at ≈5 s then ≈5 min; the 200 acks; id constant, sigs verify."""
    receiver.answers = [(500, {}), (500, {})]
    hit = make_hit("s_1")
    await store.record([], [hit])
    d = deliverer(store, WebhookSink(SINK, receiver.url(), session=session, secret=SECRET))
    await d.pass_once()
    attempts, wait, error = await only_pending(store)
    assert attempts == 1 and 4.4 <= wait <= 5.5 and "HTTP 500" in (error or "")
    await make_due(store, hit.id)
    await d.pass_once()
    attempts, wait, _ = await only_pending(store)
    assert attempts == 2 and 269 <= wait <= 330
    await make_due(store, hit.id)
    await d.pass_once()
    assert await store.pending(SINK) == []
    assert receiver.ids() == [hit.id] * 3
    for headers, body in receiver.requests:
        assert body == hit.body
        Webhook(SECRET).verify(body, {k.lower(): v for k, v in headers.items()})


async def test_429_retry_after_sets_next_attempt(
    store: SQLiteStore, receiver: Receiver, session: aiohttp.ClientSession
) -> None:
    """429 with Retry-After: 7 schedules the next attempt 7 s out, not on the schedule."""
    receiver.answers = [(429, {"Retry-After": "7"})]
    await store.record([], [make_hit("s_1")])
    await deliverer(store, WebhookSink(SINK, receiver.url(), session=session)).pass_once()
    attempts, wait, error = await only_pending(store)
    assert attempts == 1 and 6.0 <= wait <= 7.0 and "429" in (error or "")


async def test_slack_rate_limit_block_does_not_use_up_attempts(
    store: SQLiteStore, receiver: Receiver, session: aiohttp.ClientSession
) -> None:
    """Hits held back by a Slack 429 are rescheduled without counting an attempt."""
    receiver.answers = [(429, {"Retry-After": "30"})]
    await store.record([], [make_hit("s_1"), make_hit("s_2")])
    sink = SlackSink(SINK, receiver.url(), session=session, min_interval=0)
    try:
        await deliverer(store, sink, concurrency=1).pass_once()
    finally:
        await sink.close()
    pending = sorted(await store.pending(SINK), key=lambda p: p.attempts)
    assert len(receiver.requests) == 1  # the second hit was never sent
    assert [p.attempts for p in pending] == [0, 1]
    assert all(p.next_at > time.time() + 20 for p in pending)


async def test_503_retry_after_sets_next_attempt(
    store: SQLiteStore, receiver: Receiver, session: aiohttp.ClientSession
) -> None:
    """503 with Retry-After: 120 schedules the next attempt two minutes out."""
    receiver.answers = [(503, {"Retry-After": "120"})]
    await store.record([], [make_hit("s_1")])
    await deliverer(store, WebhookSink(SINK, receiver.url(), session=session)).pass_once()
    _, wait, _ = await only_pending(store)
    assert 119 <= wait <= 120


async def test_301_is_not_followed_and_retried(
    store: SQLiteStore, receiver: Receiver, session: aiohttp.ClientSession
) -> None:
    """A 301 is a failed attempt on the normal schedule; its Location is never requested."""
    receiver.answers = [(301, {"Location": receiver.url("/elsewhere")})]
    await store.record([], [make_hit("s_1")])
    await deliverer(store, WebhookSink(SINK, receiver.url(), session=session)).pass_once()
    attempts, wait, error = await only_pending(store)
    assert attempts == 1 and 4.4 <= wait <= 5.5 and "redirect not followed" in (error or "")
    assert len(receiver.requests) == 1


async def test_410_disables_until_the_url_changes(
    store: SQLiteStore, receiver: Receiver, session: aiohttp.ClientSession
) -> None:
    """410 stops the sink's sending and stores the mark (its pending gauge stays current);
    same config stays off, a new URL re-enables."""
    receiver.answers = [(410, {})]
    h1, h2 = make_hit("s_1"), make_hit("s_2")
    await store.record([], [h1, h2])
    sink = WebhookSink(SINK, receiver.url(), session=session)
    same = fingerprint("webhook", receiver.url())
    for d in (
        deliverer(store, sink, fingerprint=same, concurrency=1),
        deliverer(store, sink, fingerprint=same),
    ):
        stop = asyncio.Event()
        task = asyncio.create_task(d.run(stop))
        gauge = d.metrics.pending.labels(SINK)
        await until(lambda d=d, gauge=gauge: d.disabled is not None and gauge._value.get() == 2)
        stop.set()
        await task
        assert "410" in str(d.disabled) and d.metrics.sink_disabled.labels(SINK)._value.get() == 1
    assert len(receiver.requests) == 1 and await store.pending_count(SINK) == 2
    moved = deliverer(store, sink, fingerprint=fingerprint("webhook", receiver.url("/new")))
    stop = asyncio.Event()
    task = asyncio.create_task(moved.run(stop))
    await until(lambda: len(receiver.requests) == 3)
    stop.set()
    await task
    assert moved.disabled is None and await store.pending_count(SINK) == 0
    assert await store.get_state(moved.state_key) is None


async def test_exhausted_attempts_go_to_dead_letters(
    store: SQLiteStore, receiver: Receiver, session: aiohttp.ClientSession
) -> None:
    """After the last scheduled retry fails, the hit is a dead letter with its attempts."""
    receiver.answers = [(500, {})] * 3
    hit = make_hit("s_1")
    await store.record([], [hit])
    d = deliverer(store, WebhookSink(SINK, receiver.url(), session=session), schedule=(1.0, 1.0))
    for _ in range(2):
        await d.pass_once()
        await make_due(store, hit.id)
    await d.pass_once()
    [dead] = await store.dead_letters(SINK)
    assert (dead.hit_id, dead.attempts) == (hit.id, 3) and "HTTP 500" in (dead.last_error or "")
    assert await store.pending(SINK) == []


async def test_hang_times_out_and_is_rescheduled(
    store: SQLiteStore, receiver: Receiver, session: aiohttp.ClientSession
) -> None:
    """A receiver that never answers costs one per-attempt timeout, then a normal retry."""
    hit = make_hit("s_1")
    receiver.hang = {hit.id}
    await store.record([], [hit])
    sink = WebhookSink(SINK, receiver.url(), session=session, timeout=0.3)
    await deliverer(store, sink).pass_once()
    attempts, wait, error = await only_pending(store)
    assert attempts == 1 and 4.4 <= wait <= 5.5 and "no answer in time" in (error or "")


async def test_a_hanging_request_does_not_hold_up_the_sinks_other_hits(
    store: SQLiteStore, receiver: Receiver, session: aiohttp.ClientSession
) -> None:
    """While one request hangs (60 s timeout), the sink's other hits are delivered."""
    stuck, *others = [make_hit(f"s_{i}") for i in range(5)]
    receiver.hang = {stuck.id}
    await store.record([], [stuck])
    await store.record([], others)
    d = deliverer(store, WebhookSink(SINK, receiver.url(), session=session, timeout=60))
    stop = asyncio.Event()
    task = asyncio.create_task(d.run(stop))
    await until(lambda: len(receiver.requests) == 5)
    await until_async(lambda: _pending_ids(store), {stuck.id})
    receiver.release.set()
    stop.set()
    await asyncio.wait_for(task, 10)
    assert await store.pending_count(SINK) == 0


async def test_throttle_sends_first_then_one_digest(
    store: SQLiteStore, receiver: Receiver, session: aiohttp.ClientSession
) -> None:
    """First hit at once; the window's next hits are folded, then sent as one signed digest."""
    first, second, third = make_hit("s_1"), make_hit("s_2"), make_hit("s_3")
    sink = WebhookSink(SINK, receiver.url(), session=session, secret=SECRET)
    d = deliverer(store, sink, throttle=lambda rule: 600.0)
    await store.record([], [first])
    await d.pass_once()
    assert receiver.ids() == [first.id]
    window = float(await store.get_state(f"throttle:{SINK}:korea-opcon") or 0)
    assert 599 <= window - time.time() <= 600
    await store.record([], [second, third])
    await d.pass_once()
    folded = await store.pending(SINK)
    assert {(p.next_at, p.attempts, p.last_error) for p in folded} == {(window, 0, FOLDED)}
    await store.put_state(f"throttle:{SINK}:korea-opcon", "0")  # the window has ended
    for p in folded:
        await make_due(store, p.hit_id)
    await d.pass_once()
    assert await store.pending(SINK) == []
    headers, body = receiver.requests[-1]
    digest = Webhook(SECRET).verify(body, {k.lower(): v for k, v in headers.items()})
    assert digest["type"] == "digest" and digest["count"] == 2
    assert (
        headers["webhook-id"]
        == digest["id"]
        == digest_id(SINK, "korea-opcon", [p.hit_id for p in folded])
    )
    assert sorted(h["id"] for h in digest["hits"]) == sorted([second.id, third.id])
    assert len(receiver.requests) == 2


async def test_a_busy_windows_backlog_goes_out_at_its_end(
    store: SQLiteStore, receiver: Receiver, session: aiohttp.ClientSession
) -> None:
    """A window that folded more hits than one due batch (concurrency x 4) sends them all
    at its end, in as many digests as batches, rather than one batch per window (a busy
    rule's backlog grew without bound); a hit new in the next window is folded."""
    sink = WebhookSink(SINK, receiver.url(), session=session)
    d = deliverer(store, sink, throttle=lambda rule: 600.0, concurrency=2)  # batches of 8
    await store.record([], [make_hit("s_first")])
    await d.pass_once()
    await store.record([], [make_hit(f"s_{i}") for i in range(20)])
    while any(p.last_error != FOLDED for p in await store.pending(SINK)):
        await d.pass_once()
    folded = await store.pending(SINK)
    assert len(folded) == 20 and len(receiver.requests) == 1
    await store.put_state(f"throttle:{SINK}:korea-opcon", "0")  # the window has ended
    for p in folded:
        await make_due(store, p.hit_id)
    for _ in range(3):
        await d.pass_once()
    assert await store.pending(SINK) == []
    counts = [json.loads(body)["count"] for _, body in receiver.requests[1:]]
    assert counts == [8, 8, 4]
    await store.record([], [make_hit("s_next")])
    await d.pass_once()
    [late] = await store.pending(SINK)
    assert late.last_error == FOLDED and len(receiver.requests) == 4


async def test_a_failed_digest_is_retried_with_the_same_hits_and_id(
    store: SQLiteStore, receiver: Receiver, session: aiohttp.ClientSession
) -> None:
    """A digest answered 500 is retried as the same digest (same hits, same webhook-id, the
    receivers' dedupe key), even when it waits through another window and meets hits
    folded there: those go in a digest of their own."""
    sink = WebhookSink(SINK, receiver.url(), session=session)
    d = deliverer(store, sink, throttle=lambda rule: 600.0)
    window = f"throttle:{SINK}:korea-opcon"

    async def all_due() -> None:
        await store.put_state(window, "0")
        for p in await store.pending(SINK):
            await make_due(store, p.hit_id)

    await store.record([], [make_hit("s_1")])
    await d.pass_once()
    await store.record([], [make_hit("s_2"), make_hit("s_3")])
    await d.pass_once()  # folded
    await all_due()
    receiver.answers.append((500, {}))
    await d.pass_once()  # the digest of s_2 and s_3 fails
    failed = receiver.ids()[-1]
    assert failed.startswith("d_") and len(await store.pending(SINK)) == 2
    await store.record([], [make_hit("s_4")])
    await d.pass_once()  # s_4 opens a new window (the failed send closed the last one)
    for p in await store.pending(SINK):
        await make_due(store, p.hit_id)
    await d.pass_once()  # the failed digest's hits meet the open window: folded, marked
    await store.record([], [make_hit("s_5")])
    await d.pass_once()  # folded too
    await all_due()
    await d.pass_once()
    assert await store.pending(SINK) == []
    sent = {h["webhook-id"]: json.loads(b) for h, b in receiver.requests[-2:]}
    assert failed in sent
    assert sorted(h["story"] for h in sent[failed]["hits"]) == ["s_2", "s_3"]
    [other] = [doc for hid, doc in sent.items() if hid != failed]
    assert other["story"] == "s_5"  # a digest of one is sent as the hit itself


async def test_throttle_window_is_one_across_replicas(
    store: SQLiteStore, receiver: Receiver, session: aiohttp.ClientSession
) -> None:
    """Two replicas sending a throttled rule's hits at the same moment send one message; the
    other hit is folded until the window's end. A failed first send closes the window, so
    its retry is not held back."""
    first, second = make_hit("s_1"), make_hit("s_2")
    await store.record([], [first, second])
    one, two = await store.pending(SINK)
    replicas = [
        deliverer(
            store, WebhookSink(SINK, receiver.url(), session=session), throttle=lambda r: 600.0
        )
        for _ in range(2)
    ]
    await asyncio.gather(replicas[0].deliver([one]), replicas[1].deliver([two]))
    assert len(receiver.requests) == 1
    [folded] = await store.pending(SINK)
    assert folded.last_error == FOLDED and folded.next_at > time.time() + 590
    await store.put_state(f"throttle:{SINK}:korea-opcon", None)
    receiver.answers.append((503, {}))
    await replicas[0].deliver([folded])  # 503: the window it opened is closed again
    assert len(receiver.requests) == 2
    assert await store.get_state(f"throttle:{SINK}:korea-opcon") is None
    assert str((await only_pending(store))[2]).endswith("HTTP 503")


async def test_throttle_window_closed_when_the_send_is_cancelled(
    store: SQLiteStore, receiver: Receiver, session: aiohttp.ClientSession
) -> None:
    """A first send cut short (shutdown past its grace cancels it) leaves no window open, so
    the hit goes out at once when it is due again rather than at the window's end."""
    hit = make_hit("s_1")
    await store.record([], [hit])
    [p] = await store.pending(SINK)
    receiver.hang.add(hit.id)
    d = deliverer(
        store, WebhookSink(SINK, receiver.url(), session=session), throttle=lambda r: 600.0
    )
    task = asyncio.create_task(d.deliver([p]))
    await until(lambda: receiver.requests)
    assert await store.get_state(f"throttle:{SINK}:korea-opcon") is not None  # open meanwhile
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await store.get_state(f"throttle:{SINK}:korea-opcon") is None
    receiver.release.set()


async def test_folded_hits_survive_a_restart(tmp_path: Path, receiver: Receiver) -> None:
    """A crash mid-window loses no folded hit: they are stored deliveries, due at window end."""
    path = tmp_path / "monitor.db"
    async with SQLiteStore(path) as store, aiohttp.ClientSession() as session:
        d = deliverer(
            store, WebhookSink(SINK, receiver.url(), session=session), throttle=lambda r: 600.0
        )
        await store.record([], [make_hit("s_1")])
        await d.pass_once()
        await store.record([], [make_hit("s_2"), make_hit("s_3")])
        await d.pass_once()
    async with SQLiteStore(path) as store:
        assert {p.last_error for p in await store.pending(SINK)} == {FOLDED}
        assert await store.pending_count(SINK) == 2


def test_digest_body_and_id_are_stable() -> None:
    """The same folded hits give the same digest id and body, whatever their order."""
    hits = [make_hit(f"s_{i}") for i in range(3)]
    pend = [Pending(SINK, h.id, h.body, 0, 0.0) for h in hits]
    a, b = digest_hit(SINK, "korea-opcon", pend), digest_hit(SINK, "korea-opcon", pend[::-1])
    assert a.id == b.id and a.id.startswith("d_")
    assert a.body == digest_hit(SINK, "korea-opcon", pend).body


async def test_slack_digest_is_valid_block_kit_and_escaped(
    store: SQLiteStore, receiver: Receiver, session: aiohttp.ClientSession
) -> None:
    """A Slack digest is one valid Block Kit message listing the hits, feed text escaped."""
    hostile = "<!channel> <@U0ADMIN> <https://evil|Reset password>"
    hits = [make_hit(f"s_{i}", title=hostile) for i in range(60)]
    sink = SlackSink(SINK, receiver.url(), session=session, min_interval=0)
    try:
        d = deliverer(store, sink, throttle=lambda rule: 600.0, concurrency=20)
        await store.record([], hits)
        await d.pass_once()  # the first unit: every due hit of the rule, as one digest
    finally:
        await sink.close()
    [(_, body)] = receiver.requests
    payload = json.loads(body)
    assert payload["text"] and 1 <= len(payload["blocks"]) <= 50
    for raw in payload["blocks"]:
        block = Block.parse(raw)
        assert block is not None
        block.validate_json()
    text = json.dumps(payload)
    assert "<!channel>" not in text and "<@U0ADMIN>" not in text and "<https://evil" not in text
    assert "&lt;!channel&gt;" in text


async def _pending_ids(store: SQLiteStore) -> set[str]:
    return {p.hit_id for p in await store.pending(SINK)}


async def until(check: object, within: float = 10.0) -> None:
    """Wait until ``check()`` is true."""
    deadline = time.monotonic() + within
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def until_async(get: object, want: object, within: float = 10.0) -> None:
    """Wait until ``await get()`` equals ``want``."""
    deadline = time.monotonic() + within
    while await get() != want:  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_daemon_reads_rule_throttle(tmp_path: Path) -> None:
    """A rule's ``throttle: 10m`` reaches the delivery loops as 600 s; others are unthrottled."""
    rules = RULES.format(notify="[]").replace(
        "    channels: [alerts.korea]\n", "    channels: [alerts.korea]\n    throttle: 10m\n"
    )
    site = Site(SEED_ARTICLE.read_bytes())
    async with serve(site.app()) as srv:
        site.server = srv
        async with running(write_config(tmp_path, site, rules=rules)) as daemon:
            assert daemon.throttle_of("korea-opcon") == 600.0
            assert daemon.throttle_of("nasa-spacewalk") is None
            assert daemon.throttle_of("no-such-rule") is None
