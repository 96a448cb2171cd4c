"""Delivery throughput and latency, end to end, on loopback.

Two runs, each recording N hits the way the poller does (one ``record`` call per article,
hit + seen-mark together) and timing each hit from that call ("match") to its acceptance:

- **redis**: ``RedisStore.record`` into a throwaway ``redis-server``; acceptance is a
  separate client reading the hit off the stream ``P:hits`` (``XREAD BLOCK``).
- **webhook**: the same store and the real delivery loop (``Deliverer`` + ``WebhookSink``,
  one keep-alive session) POSTing signed hits to a receiver in another process; acceptance is
  the receiver's 2xx (it notes the time it answered). ``--store sqlite`` runs the webhook
  path on the embedded store instead.

Prints hits/s and p50/p99 latency per run. The webhook path runs twice: flat out (throughput;
latency there is mostly queueing) and paced below capacity (latency of one hit). The bench
process is one event loop, so its figures are per core (the Redis server and the receiver
run in their own processes).

    .venv/bin/python bench/deliver.py [-n 5000] [--store redis|sqlite]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import redis.asyncio as aioredis

from monitor import logs
from monitor.deliver import Deliverer
from monitor.hit import Hit, hit_id
from monitor.metrics import Metrics
from monitor.sinks.webhook import WebhookSink
from monitor.store.base import Store
from monitor.store.redis import RedisStore
from monitor.store.sqlite import SQLiteStore

PREFIX = "bench"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
PRODUCERS = 8

RECEIVER = """
import sys, time
from aiohttp import web
seen = {}
async def hook(request):
    await request.read()
    seen.setdefault(request.headers["webhook-id"], time.time())
    return web.Response(text="ok")
async def stats(_):
    return web.json_response(seen)
app = web.Application()
app.router.add_post("/hook", hook)
app.router.add_get("/stats", stats)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def make_hit(i: int, sinks: tuple[str, ...]) -> Hit:
    """A realistic ~1 KB hit."""
    story = f"s_bench{i:08d}"
    hid = hit_id("korea-opcon", story)
    doc = {
        "id": hid,
        "rule": {"id": "korea-opcon", "name": "Korea wartime operational control"},
        "article": {
            "id": f"a_{i}",
            "url": f"https://example.com/world/{i}",
            "title": f"Seoul and Washington discuss wartime operational control, part {i}",
            "source": "bench-wire",
            "site": "example.com",
            "published": "2026-11-27T15:00:00Z",
            "language": "en",
            "summary": "Seoul and Washington talk about OPCON. " * 8,
        },
        "story": story,
        "matches": [
            {"field": "body", "text": "operational control", "start": 10, "end": 29}
            | {"snippet": "…efforts to win wartime “operational control” of combined…"}
        ],
        "detected_at": "2026-11-27T15:00:00Z",
    }
    body = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()
    return Hit(hid, "korea-opcon", story, body, sinks)


async def produce(
    store: Store, hits: list[Hit], started: dict[str, float], rate: float | None = None
) -> float:
    """Record every hit (one call per article, PRODUCERS at a time, or paced at ``rate``/s)."""
    queue = iter(hits)
    t_start = time.monotonic()

    async def worker() -> None:
        for hit in queue:
            if rate is not None:
                await asyncio.sleep(max(0.0, t_start + len(started) / rate - time.monotonic()))
            started[hit.id] = time.time()
            await store.record([f"k:{hit.id}"], [hit])

    t0 = time.perf_counter()
    async with asyncio.TaskGroup() as tg:
        for _ in range(PRODUCERS):
            tg.create_task(worker())
    return time.perf_counter() - t0


async def read_stream(url: str, n: int, accepted: dict[str, float]) -> None:
    """Note when each hit appears on the stream (a downstream consumer's view)."""
    client = aioredis.from_url(url)
    last = "0-0"
    try:
        while len(accepted) < n:
            got = await client.xread({f"{PREFIX}:hits": last}, count=500, block=1000)
            for _, entries in got or []:
                for eid, fields in entries:
                    accepted.setdefault(fields[b"id"].decode(), time.time())
                    last = eid
    finally:
        await client.aclose()


async def bench_redis(url: str, n: int) -> tuple[float, list[float]]:
    """Hits/s and latencies (s) from record to the stream reader."""
    store = RedisStore.from_url(url, PREFIX, stream_maxlen=max(n, 1000))
    started: dict[str, float] = {}
    accepted: dict[str, float] = {}
    try:
        reader = asyncio.create_task(read_stream(url, n, accepted))
        t0 = time.perf_counter()
        await produce(store, [make_hit(i, ()) for i in range(n)], started)
        await asyncio.wait_for(reader, 120)
        elapsed = time.perf_counter() - t0
    finally:
        await store.close()
    return n / elapsed, [accepted[h] - started[h] for h in started]


async def bench_webhook(
    store: Store, hook: str, n: int, offset: int, rate: float | None = None
) -> tuple[float, list[float]]:
    """Hits/s and latencies (s) from record to the receiver's 2xx, through the real loop."""
    started: dict[str, float] = {}
    hits = [make_hit(offset + i, ("partner",)) for i in range(n)]
    async with aiohttp.ClientSession() as session:
        sink = WebhookSink("partner", hook + "/hook", session=session, secret=SECRET)
        deliverer = Deliverer(sink, store, Metrics())
        stop = asyncio.Event()
        t0 = time.perf_counter()
        async with asyncio.TaskGroup() as tg:
            tg.create_task(deliverer.run(stop))
            await _wake_while(deliverer, lambda: produce(store, hits, started, rate))
            await _until(lambda: _drained(store), 300)
            stop.set()
        elapsed = time.perf_counter() - t0
        async with session.get(hook + "/stats") as resp:
            accepted: dict[str, float] = await resp.json()
    return n / elapsed, [accepted[h] - started[h] for h in started]


async def _wake_while(deliverer: Deliverer, work: Callable[[], Awaitable[float]]) -> None:
    """Run ``work``, waking the deliverer the way the poller does after each record."""
    done = asyncio.Event()

    async def nudge() -> None:
        while not done.is_set():
            deliverer.wake.set()
            await asyncio.sleep(0.005)

    async with asyncio.TaskGroup() as tg:
        tg.create_task(nudge())
        await work()
        done.set()


async def _drained(store: Store) -> bool:
    return await store.pending_count("partner") == 0


async def _until(check: Callable[[], Awaitable[bool]], within: float) -> None:
    deadline = time.monotonic() + within
    await asyncio.sleep(0.1)
    while not await check():
        if time.monotonic() > deadline:
            raise SystemExit("bench: deliveries did not drain in time")
        await asyncio.sleep(0.05)


def report(name: str, rate: float, latencies: list[float]) -> None:
    ms = sorted(x * 1000 for x in latencies)
    p50 = statistics.median(ms)
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    print(f"{name:<28} {rate:8.0f} hits/s   p50 {p50:7.1f} ms   p99 {p99:7.1f} ms")


def start_redis(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("bench: redis-server is not installed")
    port = free_port()
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(workdir)]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_port(port)
    return proc, f"redis://127.0.0.1:{port}/0"


def start_receiver() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", RECEIVER, str(port)])
    _wait_port(port)
    return proc, f"http://127.0.0.1:{port}"


def _wait_port(port: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"bench: nothing listens on 127.0.0.1:{port}")


async def main_async(n: int, store_kind: str, workdir: Path) -> None:
    redis_proc, url = start_redis(workdir)
    receiver, hook = start_receiver()
    try:
        report("record → Redis stream", *await bench_redis(url, n))
        store: Store
        if store_kind == "redis":
            store = RedisStore.from_url(url, PREFIX)
        else:
            store = await SQLiteStore(workdir / "bench.db").open()
        try:
            name = f"record → webhook ({store_kind})"
            report(name + " max", *await bench_webhook(store, hook, n, n))
            paced = min(200.0, n / 5)
            report(
                name + f" @{paced:.0f}/s",
                *await bench_webhook(store, hook, n // 2, 2 * n, paced),
            )
        finally:
            await store.close()
    finally:
        receiver.terminate()
        redis_proc.terminate()
        receiver.wait()
        redis_proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=5000, help="hits per run (default 5000)")
    parser.add_argument("--store", choices=["redis", "sqlite"], default="redis")
    args = parser.parse_args()
    logs.configure(json=True, level="warning")
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(main_async(args.n, args.store, Path(tmp)))


if __name__ == "__main__":
    main()
