"""The feed scheduler: due order, the in-flight cap, dropping, retrying, stopping, scale,
and the daemon's poll deadline that keeps slow feeds from holding every slot."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from aiohttp import web

from monitor.config import FeedConfig
from monitor.scheduler import FeedScheduler
from tests.conftest import SEED_ARTICLE
from tests.e2e import Site, eventually, running, serve, write_config


def feeds(n: int) -> list[FeedConfig]:
    return [FeedConfig(f"http://127.0.0.1:9/{i}.xml", f"f{i}", 60.0) for i in range(n)]


async def test_feeds_come_up_in_due_order_and_again_when_due() -> None:
    """Every feed is looked at once at start, then each when its answer says."""
    stop = asyncio.Event()
    seen: list[tuple[str, float]] = []
    delays = {"f0": 0.25, "f1": 0.15, "f2": 0.2}

    async def poll(feed: FeedConfig) -> float:
        seen.append((feed.name, time.monotonic()))
        if len(seen) == 6:
            stop.set()
        return time.time() + delays[feed.name]

    start = time.monotonic()
    await asyncio.wait_for(FeedScheduler(feeds(3), poll, stop, limit=8).run(), 5)
    names = [n for n, _ in seen]
    assert names[:3] == ["f0", "f1", "f2"]  # all due at start, in configured order
    assert names[3:6] == ["f1", "f2", "f0"]  # then by their own delays
    assert all(t - start >= delays[n] - 0.02 for n, t in seen[3:])


async def test_at_most_limit_polls_run_at_once() -> None:
    """A burst of due feeds runs `limit` at a time, never as one task per feed."""
    stop = asyncio.Event()
    running = peak = done = 0

    async def poll(feed: FeedConfig) -> float:
        nonlocal running, peak, done
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.01)
        running -= 1
        done += 1
        if done == 50:
            stop.set()
        return time.time() + 3600

    await asyncio.wait_for(FeedScheduler(feeds(50), poll, stop, limit=4).run(), 10)
    assert peak == 4 and done == 50


async def test_dropped_and_failing_feeds() -> None:
    """None drops a feed for good; a poll that raises is retried after `retry` seconds
    while the other feeds carry on."""
    stop = asyncio.Event()
    calls: dict[str, int] = {}

    async def poll(feed: FeedConfig) -> float | None:
        calls[feed.name] = calls.get(feed.name, 0) + 1
        if feed.name == "f0":
            return None
        if feed.name == "f1":
            raise RuntimeError("a bug in poll")
        if calls["f2"] == 10:
            stop.set()
        return time.time() + 0.02

    sched = FeedScheduler(feeds(3), poll, stop, limit=2, retry=0.05)
    await asyncio.wait_for(sched.run(), 5)
    assert calls["f0"] == 1
    assert calls["f1"] >= 2  # retried (every 50 ms) while f2 went on
    assert len(sched) == 2  # f1 and f2 still scheduled, f0 gone


async def test_stop_waits_for_polls_in_flight_and_cancel_stops_them() -> None:
    """After stop, run returns only once the poll in flight has finished; cancelled
    instead, it cancels that poll."""
    stop = asyncio.Event()
    finished = asyncio.Event()

    async def slow(feed: FeedConfig) -> float:
        stop.set()
        await asyncio.sleep(0.2)
        finished.set()
        return time.time() + 60

    await asyncio.wait_for(FeedScheduler(feeds(1), slow, stop, limit=1).run(), 5)
    assert finished.is_set()

    stop = asyncio.Event()
    cancelled = asyncio.Event()

    async def hang(feed: FeedConfig) -> float:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return 0.0

    task = asyncio.create_task(FeedScheduler(feeds(1), hang, stop, limit=1).run())
    await asyncio.sleep(0.05)
    task.cancel()
    await asyncio.wait_for(asyncio.gather(task, return_exceptions=True), 5)
    assert cancelled.is_set()


async def test_a_feed_put_back_early_wakes_the_loop() -> None:
    """The loop sleeps until the first due feed, but a feed put back earlier than that
    is polled on time, not after the sleep."""
    stop = asyncio.Event()
    polled: list[float] = []  # when each poll ran
    due: list[float] = []  # when each poll asked to be polled next
    one = feeds(1)[0]

    async def poll(feed: FeedConfig) -> float:
        polled.append(time.time())
        if len(polled) == 2:
            stop.set()
        due.append(time.time() + 30)  # the loop now sleeps for 30 s
        return due[-1]

    sched = FeedScheduler([one], poll, stop, limit=1)
    task = asyncio.create_task(sched.run())
    await asyncio.sleep(0.1)
    sched.put(time.time(), one)
    await asyncio.wait_for(task, 60)  # a guard against hanging only
    assert polled[1] < due[0]  # woken by the put, not by the end of the sleep


async def test_twenty_thousand_feeds_need_no_task_each() -> None:
    """20k feeds: every one polled at start with a handful of tasks alive at any time."""
    stop = asyncio.Event()
    count = 20_000
    seen = 0
    most_tasks = 0

    async def poll(feed: FeedConfig) -> float:
        nonlocal seen, most_tasks
        seen += 1
        if seen % 1000 == 0:
            most_tasks = max(most_tasks, len(asyncio.all_tasks()))
        if seen == count:
            stop.set()
        return time.time() + 3600

    await asyncio.wait_for(FeedScheduler(feeds(count), poll, stop, limit=16).run(), 60)
    assert seen == count
    assert most_tasks <= 16 + 3  # the polls, the loop, its stop watcher, the test


async def test_feeds_that_never_answer_cannot_hold_every_slot(tmp_path: Path) -> None:
    """fetch.concurrency 1 gives the daemon two poll slots; two feeds that never answer
    take both at start and are cut at the poll deadline (well before their 30 s fetch
    timeout), so the third feed's alert still arrives within seconds."""
    site = Site(SEED_ARTICLE.read_bytes())
    never = asyncio.Event()

    async def hang(_: web.Request) -> web.Response:
        await never.wait()
        return web.Response()

    app = site.app()
    app.router.add_get("/hang/{n}.xml", hang)
    async with serve(app) as srv:
        site.server = srv
        cfg = write_config(tmp_path, site)
        text = cfg.read_text()
        hanging = "".join(
            f"  - {{url: '{site.base}/hang/{n}.xml', name: hang{n}, interval: 60s}}\n"
            for n in (1, 2)
        )
        text = text.replace("feeds:\n", "feeds:\n" + hanging).replace(
            "timeout: 10s", "timeout: 30s"
        )
        cfg.write_text(text.replace("fetch:\n", "fetch:\n  concurrency: 1\n"))
        async with running(cfg, poll_deadline=1.0) as daemon:

            async def alerted() -> bool:
                """the Korea story's hit was recorded"""
                return bool(await daemon.deps.store.hits())

            await eventually(alerted, within=10)
        never.set()
