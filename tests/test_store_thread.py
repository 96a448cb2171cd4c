"""The SQLite store's own thread, and the cheaper hot-path steps around the store.

The store's calls run on :class:`monitor.store.sqlite.StoreThread` (one thread, calls in
order, a call cancelled before its turn never runs); a poll's hits are counted per rule and
share one ``detected_at``; a body read piece by piece comes back whole, under the cap.
"""

from __future__ import annotations

import asyncio
import gc
import gzip
import os
import threading
import time
import weakref
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from monitor.article import Article
from monitor.config import FeedConfig, FetchConfig
from monitor.errors import FetchError
from monitor.fetch import Fetcher, make_session
from monitor.hit import Hit, iso
from monitor.metrics import Metrics
from monitor.poller import Poller
from monitor.store.base import FeedState
from monitor.store.sqlite import SQLiteStore
from monitor.store.thread import StoreThread
from tests.e2e import serve

# --- the thread ------------------------------------------------------------------------------


async def test_calls_run_on_one_thread_in_order() -> None:
    worker = StoreThread("store-test")
    seen: list[tuple[int, str]] = []

    def job(i: int) -> int:
        seen.append((i, threading.current_thread().name))
        return i * 2

    try:
        results = await asyncio.gather(*(worker.call(lambda i=i: job(i)) for i in range(50)))
    finally:
        worker.shutdown()
    assert results == [i * 2 for i in range(50)]
    assert [i for i, _ in seen] == list(range(50))
    assert {name for _, name in seen} == {"store-test"}


async def test_an_exception_reaches_the_caller() -> None:
    worker = StoreThread("store-test")

    def boom() -> None:
        raise ValueError("no such table")

    try:
        with pytest.raises(ValueError, match="no such table"):
            await worker.call(boom)
        assert await worker.call(lambda: "still serving") == "still serving"
    finally:
        worker.shutdown()


async def test_stop_iteration_reaches_the_caller_as_an_error() -> None:
    """A call raising StopIteration (which a future refuses) fails its caller, never
    leaves it waiting."""
    worker = StoreThread("store-test")
    try:
        with pytest.raises(RuntimeError, match="StopIteration"):
            await asyncio.wait_for(worker.call(lambda: next(iter([]))), 5)
    finally:
        worker.shutdown()


async def test_a_call_cancelled_before_its_turn_never_runs() -> None:
    worker = StoreThread("store-test")
    gate = threading.Event()
    ran: list[str] = []
    try:
        blocker = asyncio.ensure_future(worker.call(gate.wait))
        queued = asyncio.ensure_future(worker.call(lambda: ran.append("queued")))
        await asyncio.sleep(0.05)
        queued.cancel()
        gate.set()
        await blocker
        assert await worker.call(lambda: "after") == "after"  # runs after the skipped one
        assert queued.cancelled()
        assert ran == []
    finally:
        gate.set()
        worker.shutdown()


async def test_a_call_cancelled_while_it_runs_finishes_and_its_outcome_is_dropped() -> None:
    worker = StoreThread("store-test")
    started, gate = threading.Event(), threading.Event()
    done: list[str] = []

    def slow() -> str:
        started.set()
        gate.wait(5)
        done.append("done")
        return "late"

    try:
        task = asyncio.ensure_future(worker.call(slow))
        assert await asyncio.get_running_loop().run_in_executor(None, started.wait, 5)
        task.cancel()
        gate.set()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await worker.call(lambda: "next") == "next"
        assert done == ["done"]
    finally:
        gate.set()
        worker.shutdown()


async def test_submit_serves_run_in_executor_on_the_same_thread() -> None:
    worker = StoreThread("store-test")
    try:
        name = await asyncio.get_running_loop().run_in_executor(
            worker, lambda: threading.current_thread().name
        )
        assert name == "store-test"
        assert worker.submit(pow, 2, 10).result(timeout=5) == 1024
    finally:
        worker.shutdown()


async def test_shutdown_does_the_queued_work_then_refuses_more() -> None:
    worker = StoreThread("store-test")
    done: list[int] = []
    futures = [worker.submit(lambda i=i: (time.sleep(0.01), done.append(i))) for i in range(5)]
    worker.shutdown(wait=True)
    assert done == [0, 1, 2, 3, 4]
    assert all(f.done() for f in futures)
    with pytest.raises(RuntimeError, match="after shutdown"):
        await worker.call(lambda: None)
    with pytest.raises(RuntimeError, match="after shutdown"):
        worker.submit(lambda: None)


async def test_outcomes_ready_together_wake_the_loop_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Calls of several threads that finish while the loop is busy reach their callers
    with one wake-up of the loop, each with its own outcome."""
    loop = asyncio.get_running_loop()
    wakeups: list[object] = []
    real = loop.call_soon_threadsafe

    def counting(callback: Any, *args: Any, **kwargs: Any) -> Any:
        wakeups.append(callback)
        return real(callback, *args, **kwargs)

    monkeypatch.setattr(loop, "call_soon_threadsafe", counting)
    threads = [StoreThread("store-test-a"), StoreThread("store-test-b")]
    finished = [threading.Event(), threading.Event()]

    def boom() -> None:
        raise ValueError("bad row")

    try:
        calls = [asyncio.ensure_future(threads[i % 2].call(lambda i=i: i * 3)) for i in range(10)]
        failing = asyncio.ensure_future(threads[0].call(boom))
        await asyncio.sleep(0)  # every call queued on its thread
        for thread, event in zip(threads, finished, strict=True):
            thread.submit(event.set)  # runs once the calls before it have handed over
        for event in finished:  # the loop held until every outcome is handed over
            assert event.wait(5)
        assert await asyncio.gather(*calls) == [i * 3 for i in range(10)]
        with pytest.raises(ValueError, match="bad row"):
            await failing
    finally:
        for thread in threads:
            thread.shutdown()
    assert len(wakeups) == 1


async def test_calls_from_another_event_loop_meanwhile_are_answered() -> None:
    """A thread serving a second event loop (another thread's) answers both loops' calls."""
    worker = StoreThread("store-test")
    gate = threading.Event()

    def other_loop() -> list[int]:
        async def calls() -> list[int]:
            return list(await asyncio.gather(*(worker.call(lambda i=i: i) for i in range(5))))

        return asyncio.run(calls())

    try:
        held = asyncio.ensure_future(worker.call(lambda: gate.wait(5)))
        mine = asyncio.ensure_future(worker.call(lambda: "mine"))
        theirs = asyncio.get_running_loop().run_in_executor(None, other_loop)
        await asyncio.sleep(0.05)
        gate.set()
        assert await held is True
        assert await theirs == [0, 1, 2, 3, 4]
        assert await mine == "mine"
        assert await worker.call(lambda: "after") == "after"
    finally:
        gate.set()
        worker.shutdown()


def test_a_dropped_thread_object_ends_its_thread() -> None:
    worker = StoreThread("store-test-dropped")
    thread = worker._worker
    ref = weakref.ref(worker)
    del worker
    gc.collect()
    assert ref() is None
    thread.join(5)
    assert not thread.is_alive()


async def test_the_store_runs_on_its_thread_and_closes_it(tmp_path: Path) -> None:
    store = await SQLiteStore(tmp_path / "s.db").open()
    assert store._executor is not None
    thread = store._executor._worker
    await store.record(["k1"], [])
    assert await store.unseen(["k1", "k2"]) == {"k2"}
    await store.close()
    assert not thread.is_alive()
    with pytest.raises(RuntimeError, match="not open"):
        await store.unseen(["k1"])


async def test_a_cancelled_record_leaves_nothing_half_written(tmp_path: Path) -> None:
    """Cut while queued, a record does not run; cut while running, it commits whole."""
    async with SQLiteStore(tmp_path / "s.db") as store:
        assert store._executor is not None
        gate = threading.Event()
        blocker = asyncio.ensure_future(store._executor.call(gate.wait))
        hit = Hit("h_1", "r1", "s1", b"{}", ("desk",))
        cut = asyncio.ensure_future(store.record(["k1"], [hit]))
        await asyncio.sleep(0.05)
        cut.cancel()
        gate.set()
        await blocker
        assert await store.unseen(["k1"]) == {"k1"}
        assert await store.pending("desk") == []
        assert await store.record(["k1"], [hit]) == [hit]
        assert await store.unseen(["k1"]) == set()


# --- hits: counted per rule, one detected_at per poll ----------------------------------------


def test_iso_is_the_same_for_the_same_instant_in_any_zone() -> None:
    at = datetime(2021, 12, 1, 6, 36, 0, 900_000, tzinfo=UTC)
    seoul = at.astimezone(timezone(timedelta(hours=9)))
    assert iso(at) == iso(seoul) == "2021-12-01T06:36:00Z"
    assert iso(datetime(2021, 12, 1, 6, 36)) == "2021-12-01T06:36:00Z"  # naive is UTC
    assert iso(datetime(2021, 12, 1, 15, 36)) == "2021-12-01T15:36:00Z"
    assert iso(None) is None


class _Span:
    field, text, start, end, snippet = "body", "OPCON", 0, 5, "OPCON"


class _Rule:
    notify: tuple[str, ...] = ("desk",)
    channels: tuple[str, ...] = ()


class _Match:
    def __init__(self, rule_id: str) -> None:
        self.rule_id, self.rule_name, self.rule, self.spans = rule_id, rule_id, _Rule(), [_Span()]


class _Keys:
    def __init__(self, story: str) -> None:
        self.seen, self.story, self.fingerprint = story, story, None


class _Fresh:
    def __init__(self, story: str, rules: list[str]) -> None:
        self.article = Article(title=f"title {story}", url=f"https://example.com/{story}")
        self.keys = _Keys(story)
        self.matches = [_Match(r) for r in rules]
        self.seen = [story]
        self.error = None


async def test_hits_of_one_poll_are_counted_per_rule_and_share_detected_at(
    tmp_path: Path,
) -> None:
    async with SQLiteStore(tmp_path / "s.db") as store:
        metrics = Metrics()
        poller = Poller(None, store, metrics, None)  # type: ignore[arg-type]
        feed = FeedConfig("http://127.0.0.1:1/feed.xml", "f1", 60.0)
        fresh = [_Fresh("s_a", ["r1", "r2"]), _Fresh("s_b", ["r1"]), _Fresh("s_c", [])]
        assert await poller.record(feed, fresh) == 3  # type: ignore[arg-type]
        assert await poller.record(feed, fresh) == 0  # type: ignore[arg-type]
        bodies = [Hit("", "", "", body).data() for body in await store.hits()]
    counts = {
        s.labels["rule"]: s.value
        for s in metrics.hits.collect()[0].samples
        if s.name.endswith("_total")
    }
    assert counts == {"r1": 2.0, "r2": 1.0}
    assert sorted((b["rule"]["id"], b["story"]) for b in bodies) == [
        ("r1", "s_a"),
        ("r1", "s_b"),
        ("r2", "s_a"),
    ]
    assert len({b["detected_at"] for b in bodies}) == 1


# --- a body read piece by piece --------------------------------------------------------------


BIG = os.urandom(3 * 2**20 + 12345)


def _app() -> web.Application:
    async def chunked(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        for start in range(0, len(BIG), 7_001):
            await resp.write(BIG[start : start + 7_001])
        await resp.write_eof()
        return resp

    async def zipped(_: web.Request) -> web.Response:
        return web.Response(body=gzip.compress(BIG), headers={"Content-Encoding": "gzip"})

    async def plain(_: web.Request) -> web.Response:
        return web.Response(body=BIG)

    app = web.Application()
    app.router.add_get("/chunked", chunked)
    app.router.add_get("/gzip", zipped)
    app.router.add_get("/plain", plain)
    return app


@pytest.fixture
async def site() -> AsyncIterator[TestServer]:
    async with serve(_app()) as server:
        yield server


@pytest.mark.parametrize("path", ["/chunked", "/gzip", "/plain"])
async def test_a_body_read_in_pieces_comes_back_whole(site: TestServer, path: str) -> None:
    cfg = FetchConfig(allow_private=(f"127.0.0.1:{site.port}",), timeout=10.0, max_bytes=2**22)
    fetcher = Fetcher(cfg, make_session(cfg))
    async with fetcher.session:
        resp = await fetcher.get(f"http://127.0.0.1:{site.port}{path}")
    assert resp.body == BIG


@pytest.mark.parametrize("path", ["/chunked", "/gzip"])
async def test_a_body_past_the_cap_fails_however_it_comes(site: TestServer, path: str) -> None:
    cfg = FetchConfig(allow_private=(f"127.0.0.1:{site.port}",), timeout=10.0, max_bytes=2**20)
    fetcher = Fetcher(cfg, make_session(cfg))
    async with fetcher.session:
        with pytest.raises(FetchError, match="decoded body exceeds max_bytes"):
            await fetcher.get(f"http://127.0.0.1:{site.port}{path}")


async def test_a_feed_put_again_has_every_field_replaced(tmp_path: Path) -> None:
    """put_feed on a stored feed (an upsert, the row updated in place) leaves exactly the
    new state, cleared fields included, and still one row for the feed."""
    url = "http://127.0.0.1:1/feed.xml"
    first = FeedState(
        '"e1"', "Wed, 01 Dec 2021 06:36:00 GMT", 10.0, 3, 500, "boom", True, {"a": [1]}
    )
    second = FeedState(None, None, 20.5, 0, None, None, False, {})
    async with SQLiteStore(tmp_path / "s.db") as store:
        await store.put_feed(url, first)
        assert await store.get_feed(url) == first
        await store.put_feed(url, second)
        assert await store.get_feed(url) == second
        rows = await store._run(lambda db: db.execute("SELECT count(*) FROM feeds").fetchone())
    async with SQLiteStore(tmp_path / "s.db") as reopened:
        assert await reopened.get_feed(url) == second
    assert rows == (1,)
