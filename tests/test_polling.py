"""Scheduling rules end to end: a real poller, store and fetcher against a local HTTP server.

Each test scripts the server's answers and checks what the poller sent and what it stored
(validators, next poll, errors, redirects), without waiting for any real schedule.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestServer

from monitor import schedule
from monitor.config import FeedConfig, FetchConfig
from monitor.fetch import Fetcher, make_session
from monitor.metrics import Metrics
from monitor.poller import Poller, poll_once
from monitor.rules import RuleSet
from monitor.store.base import FeedState
from monitor.store.sqlite import SQLiteStore

RULES = "rules:\n  - id: korea\n    query: 'Korea'\n"
OWNER = "test-owner"


def rss(
    items: int = 1,
    *,
    age: timedelta = timedelta(days=400),
    step: timedelta = timedelta(0),
    ttl: int | None = None,
) -> bytes:
    """An RSS feed with ``items`` entries, the newest published ``age`` ago and each next
    one ``step`` earlier."""
    now = datetime.now(UTC)
    body = "".join(
        f"<item><title>Story {i}</title><link>http://news.example/{i}</link>"
        f"<pubDate>{format_datetime(now - age - i * step, usegmt=True)}</pubDate>"
        f"<description>Text {i}</description></item>"
        for i in range(items)
    )
    ttl_tag = f"<ttl>{ttl}</ttl>" if ttl else ""
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>{ttl_tag}'
        f"{body}</channel></rss>"
    ).encode()


@dataclass
class Answer:
    """One scripted answer."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering


@dataclass
class Scripted:
    """A server answering each path from a script (the last answer repeats)."""

    script: dict[str, list[Answer]]
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    def app(self) -> web.Application:
        async def handle(request: web.Request) -> web.Response:
            path = request.path
            seen = sum(1 for p, _ in self.requests if p == path)
            self.requests.append((path, dict(request.headers)))
            answers = self.script.get(path) or [Answer(404)]
            a = answers[min(seen, len(answers) - 1)]
            await asyncio.sleep(a.delay)
            return web.Response(status=a.status, body=a.body, headers=a.headers)

        app = web.Application()
        app.router.add_route("GET", "/{tail:.*}", handle)
        return app

    def hits(self, path: str) -> list[dict[str, str]]:
        return [h for p, h in self.requests if p == path]


@dataclass
class Rig:
    """A poller wired to a scripted server and a SQLite store."""

    server: Scripted
    poller: Poller
    store: SQLiteStore
    base: str

    def feed(self, path: str = "/feed", **kw: float) -> FeedConfig:
        return FeedConfig(
            f"{self.base}{path}",
            "test",
            kw.get("interval", 60.0),
            max_interval=kw.get("max_interval", schedule.DAY),
        )

    async def busy(self, feed: FeedConfig) -> None:
        """Make the feed look busy (its rate alone would say "as often as allowed")."""
        recent = [time.time() - 3600] * schedule.RECENT_CAP
        await self.store.put_feed(feed.url, FeedState(meta={"recent": recent}))

    async def poll(self, feed: FeedConfig) -> FeedState:
        # Claims are per owner; the next poll may come at once in a test.
        await self.store.release_feed(feed.url, OWNER)
        return await poll_once(self.poller, feed, OWNER)


@contextlib.asynccontextmanager
async def rig(tmp_path: Path, script: dict[str, list[Answer]]) -> AsyncIterator[Rig]:
    """Server, fetcher, store and poller; all closed on exit."""
    scripted = Scripted(script)
    server = TestServer(scripted.app(), host="127.0.0.1")
    await server.start_server()
    cfg = FetchConfig(allow_private=(f"127.0.0.1:{server.port}",), timeout=10.0)
    session = make_session(cfg)
    store = await SQLiteStore(tmp_path / "state.db").open()
    try:
        poller = Poller(Fetcher(cfg, session), store, Metrics(), RuleSet.from_source(RULES))
        yield Rig(scripted, poller, store, f"http://127.0.0.1:{server.port}")
    finally:
        await store.close()
        await session.close()
        await server.close()


def delay(state: FeedState) -> float:
    return state.next_poll - time.time()


async def test_304_after_200_sends_both_validators(tmp_path: Path) -> None:
    """The second poll sends If-None-Match and If-Modified-Since; a 304 counts as success."""
    lm = "Wed, 01 Dec 2021 06:36:00 GMT"
    ok = Answer(200, rss(), {"ETag": '"v1"', "Last-Modified": lm})
    async with rig(tmp_path, {"/feed": [ok, Answer(304)]}) as r:
        feed = r.feed()
        await r.poll(feed)
        state = await r.poll(feed)
        second = r.server.hits("/feed")[1]
    assert second["If-None-Match"] == '"v1"' and second["If-Modified-Since"] == lm
    assert state.last_status == 304 and state.errors == 0
    assert (state.etag, state.last_modified) == ('"v1"', lm)


async def test_daily_unconditional_refetch_leaves_validators_out(tmp_path: Path) -> None:
    """Once a day the feed is fetched without validators, whatever the ETag says."""
    ok = Answer(200, rss(), {"ETag": '"v1"'})
    async with rig(tmp_path, {"/feed": [ok]}) as r:
        feed = r.feed()
        state = await r.poll(feed)
        state.meta["full_at"] = time.time() - schedule.FULL_REFETCH - 1
        await r.store.put_feed(feed.url, state)
        await r.poll(feed)
        first, second = r.server.hits("/feed")
    assert "If-None-Match" not in first and "If-None-Match" not in second


async def test_state_survives_a_restart(tmp_path: Path) -> None:
    """Validators, schedule and scheduler bookkeeping come back from the store file."""
    ok = Answer(200, rss(3, age=timedelta(hours=1)), {"ETag": '"v9"'})
    async with rig(tmp_path, {"/feed": [ok]}) as r:
        feed = r.feed()
        before = await r.poll(feed)
    store = await SQLiteStore(tmp_path / "state.db").open()
    try:
        after = await store.get_feed(feed.url)
    finally:
        await store.close()
    assert after is not None
    assert (after.etag, after.next_poll, after.meta) == (before.etag, before.next_poll, before.meta)
    assert len(after.meta["recent"]) == 3


async def test_publishing_rate_sets_the_interval(tmp_path: Path) -> None:
    """14 entries in the last week (and one older): polled about every 12 hours (interval
    1 min, cap 24 h)."""
    ok = Answer(200, rss(15, age=timedelta(hours=11.5), step=timedelta(hours=11.5)))
    async with rig(tmp_path, {"/feed": [ok]}) as r:
        state = await r.poll(r.feed())
    assert 0.85 * schedule.DAY / 2 < delay(state) < 1.15 * schedule.DAY / 2


async def test_a_feed_listing_only_its_last_hour_is_polled_often(tmp_path: Path) -> None:
    """A feed that lists only its newest entries shows 4 of the last hour at first sight:
    about every 15 minutes, not once a day (by then ~100 entries would have come and gone);
    it slows down as polls find nothing new."""
    first = Answer(200, rss(4, age=timedelta(minutes=5), step=timedelta(minutes=15)))
    async with rig(tmp_path, {"/feed": [first]}) as r:
        feed = r.feed(interval=60.0)
        state = await r.poll(feed)
        assert 0.85 * 900 < delay(state) < 1.15 * 900
        # Three quiet hours later the same 4 entries mean 4 in 4 hours: once an hour.
        state.meta["since"] -= 3 * 3600
        state.meta["recent"] = [t - 3 * 3600 for t in state.meta["recent"]]
        await r.store.put_feed(feed.url, state)
        state = await r.poll(feed)
    assert 0.85 * 3600 < delay(state) < 1.15 * 3600


async def test_quiet_feed_is_polled_at_the_ceiling(tmp_path: Path) -> None:
    """No entry in the last week: the next poll is max_interval away."""
    async with rig(tmp_path, {"/feed": [Answer(200, rss(5))]}) as r:
        state = await r.poll(r.feed(max_interval=7200.0))
    assert 0.85 * 7200 < delay(state) < 1.15 * 7200


async def test_cache_control_and_ttl_push_the_poll_later(tmp_path: Path) -> None:
    """max-age and <ttl> delay the next poll; a later 304 still honours the ttl."""
    script = {
        "/a": [Answer(200, rss(), {"Cache-Control": "max-age=5400"})],
        "/b": [Answer(200, rss(ttl=120)), Answer(304)],
    }
    async with rig(tmp_path, script) as r:
        feed_a, feed_b = r.feed("/a", interval=400.0), r.feed("/b", interval=400.0)
        await r.busy(feed_a)
        await r.busy(feed_b)
        a = await r.poll(feed_a)
        await r.poll(feed_b)
        b = await r.poll(feed_b)
    assert 0.85 * 5400 < delay(a) < 1.15 * 5400
    assert b.last_status == 304 and 0.85 * 7200 < delay(b) < 1.15 * 7200


async def test_retry_after_is_honoured(tmp_path: Path) -> None:
    """A 503 with Retry-After: 7200 puts the next poll two hours away."""
    busy = Answer(503, b"busy", {"Retry-After": "7200"})
    async with rig(tmp_path, {"/feed": [busy]}) as r:
        state = await r.poll(r.feed())
    assert state.errors == 1 and state.last_status == 503
    assert 0.85 * 7200 < delay(state) < 1.15 * 7200


async def test_errors_back_off_linearly_then_recover(tmp_path: Path) -> None:
    """Each consecutive error adds one interval; a success resets the count."""
    script = {"/feed": [Answer(500)] * 3 + [Answer(200, rss())]}
    async with rig(tmp_path, script) as r:
        feed = r.feed(interval=400.0)
        await r.busy(feed)
        delays = []
        for _ in range(3):
            state = await r.poll(feed)
            delays.append(delay(state))
        ok = await r.poll(feed)
    for n, d in enumerate(delays, start=1):
        assert 0.85 * 400 * n < d < 1.15 * 400 * n
    assert ok.errors == 0 and ok.last_error is None and delay(ok) < 1.15 * 400


async def test_410_disables_the_feed_visibly(tmp_path: Path) -> None:
    """410 Gone disables the feed and sets its news_monitor_feed_disabled gauge."""
    async with rig(tmp_path, {"/feed": [Answer(410)]}) as r:
        feed = r.feed()
        await r.poll(feed)
        stored = await r.store.get_feed(feed.url)
        metrics = r.poller.metrics.render().decode()
    assert stored is not None and stored.disabled and stored.last_status == 410
    assert 'news_monitor_feed_disabled{feed="test"} 1.0' in metrics


async def test_permanent_redirect_adopted_after_three_polls(tmp_path: Path) -> None:
    """A 301 chain seen three polls in a row moves fetching to the target; the key stays."""
    script = {
        "/old": [Answer(301, headers={"Location": "/mid"})],
        "/mid": [Answer(308, headers={"Location": "/new"})],
        "/new": [Answer(200, rss())],
    }
    async with rig(tmp_path, script) as r:
        feed = r.feed("/old")
        for _ in range(4):
            state = await r.poll(feed)
        assert await r.store.get_feed(feed.url) is not None  # still stored under its URL
    assert len(r.server.hits("/old")) == 3 and len(r.server.hits("/new")) == 4
    assert state.meta["url"] == f"{r.base}/new"


async def test_temporary_hop_never_moves_the_feed(tmp_path: Path) -> None:
    """A chain with any 302 in it is followed but never adopted."""
    script = {
        "/old": [Answer(301, headers={"Location": "/mid"})],
        "/mid": [Answer(302, headers={"Location": "/new"})],
        "/new": [Answer(200, rss())],
    }
    async with rig(tmp_path, script) as r:
        feed = r.feed("/old")
        for _ in range(4):
            state = await r.poll(feed)
    assert len(r.server.hits("/old")) == 4 and "url" not in state.meta


async def test_vanished_redirect_target_falls_back(tmp_path: Path) -> None:
    """When an adopted target answers 404/410, the configured URL is used again, not disabled."""
    script = {"/feed": [Answer(200, rss())], "/moved": [Answer(410)]}
    async with rig(tmp_path, script) as r:
        feed = r.feed("/feed")
        await r.store.put_feed(feed.url, FeedState(meta={"url": f"{r.base}/moved"}))
        gone = await r.poll(feed)
        back = await r.poll(feed)
    assert not gone.disabled and "url" not in gone.meta
    assert back.last_status == 200 and len(r.server.hits("/feed")) == 1


async def test_a_poll_cut_at_its_deadline_fails_and_keeps_the_old_validators(
    tmp_path: Path,
) -> None:
    """A poll still fetching an article page at its deadline is cut: it counts as a failed
    poll (backing off), gives its claim back, and does not keep the new ETag, since its
    entry was not recorded and a 304 at the next poll would lose it."""
    async with rig(tmp_path, {}) as r:
        body = (
            '<?xml version="1.0"?><rss version="2.0"><channel><title>t</title><item>'
            f"<title>Korea story</title><link>{r.base}/page</link>"
            "<description>Korea</description></item></channel></rss>"
        ).encode()
        r.server.script["/feed"] = [Answer(200, body, {"ETag": '"v1"'})]
        r.server.script["/page"] = [Answer(200, b"<p>Korea</p>", delay=5.0)]
        feed = dataclasses.replace(r.feed(), fetch_article=True)
        state = await poll_once(r.poller, feed, OWNER, deadline=0.5)
        stored = await r.store.get_feed(feed.url)
        claimed = await r.store.claim_feed(feed.url, "another-replica", ttl=60)
        unseen = await r.store.unseen([f"{r.base}/page"])
    assert stored is not None
    assert state.errors == stored.errors == 1
    assert "cut short" in (stored.last_error or "")  # not waiting the page's 5 s
    assert stored.etag is None  # the next poll fetches the feed in full again
    assert "recent" not in stored.meta  # its entry is not counted as published yet
    assert delay(stored) > 0.5 * feed.interval  # backs off as any failed poll does
    assert claimed  # the claim was given back
    assert unseen == {f"{r.base}/page"}  # not recorded: it comes again next time


async def test_poll_latency_is_one_histogram_whatever_the_feeds(tmp_path: Path) -> None:
    """Per feed, /metrics holds a few counter lines, never a latency histogram nor
    ``_created`` twins: a histogram per feed was 17 series and ~4 KB each, a 13 MB
    exposition taking seconds to render at 10,000 feeds. Poll latency is one histogram for
    all feeds."""
    script = {"/a": [Answer(200, rss())], "/b": [Answer(200, rss())]}
    async with rig(tmp_path, script) as r:
        for name in ("a", "b"):
            await poll_once(r.poller, FeedConfig(f"{r.base}/{name}", f"feed-{name}", 60.0), OWNER)
        lines = r.poller.metrics.render().decode().splitlines()
    latency = [x for x in lines if x.startswith("news_monitor_poll_seconds")]
    assert "news_monitor_poll_seconds_count 2.0" in latency
    assert not [x for x in latency if "feed=" in x]
    per_feed = [x for x in lines if 'feed="feed-a"' in x and not x.startswith("#")]
    assert 0 < len(per_feed) <= 4, per_feed
    assert not [x for x in lines if "_created" in x]  # a timestamp beside every counter
