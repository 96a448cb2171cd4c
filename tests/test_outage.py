"""Redis stopped for 30 s while hits arrive: nothing is lost, the daemon recovers by itself.

The daemon runs in this process against a real redis-server, a local site and a local webhook
receiver. Redis is saved (as a persistent deployment would be) and stopped; two new stories
appear meanwhile; ``/readyz`` must report the outage throughout; once Redis is back on the
same port, every story's hit must reach the receiver without restarting the daemon.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import aiohttp
import redis.asyncio as aioredis
from aiohttp import web

from tests.conftest import RedisServer
from tests.e2e import Receiver, eventually, running, serve

OUTAGE = 30.0

RULES = """\
entities:
  south-korea: ["South Korea", "Seoul"]
rules:
  - id: korea-opcon
    name: Korea wartime operational control
    query: '@south-korea AND OPCON'
    notify: [partner]
"""

STORIES = [
    "Seoul and Washington resumed talks on OPCON transfer after a two-year pause in the "
    "alliance's planning cycle, officials at the defense ministry said on Monday.",
    "A parliamentary committee in Seoul questioned the budget for OPCON readiness drills, "
    "citing delays in command-post exercises and shortages of trained liaison officers.",
    "Farmers near the border told reporters that the OPCON debate in Seoul felt distant "
    "compared with rising fertilizer prices and a dry spring that threatened rice harvests.",
]


class Wire:
    """A feed whose items are added while the test runs."""

    def __init__(self) -> None:
        self.items: list[int] = []
        self.base = ""

    def app(self) -> web.Application:
        async def feed(_: web.Request) -> web.Response:
            items = "".join(
                f"<item><title>Korea OPCON report {n}</title>"
                f"<link>{self.base}/story/{n}</link><guid>story-{n}</guid>"
                f"<description>{STORIES[n]}</description></item>"
                for n in self.items
            )
            rss = f"<rss version='2.0'><channel><title>w</title>{items}</channel></rss>"
            return web.Response(text=rss, content_type="application/rss+xml")

        app = web.Application()
        app.router.add_get("/feed.xml", feed)
        return app


def write_config(tmp: Path, base: str, port: int, hook: str, redis_url: str) -> Path:
    (tmp / "rules").mkdir()
    (tmp / "rules" / "r.yml").write_text(RULES)
    path = tmp / "monitor.yml"
    path.write_text(
        f"feeds: [{{url: '{base}/feed.xml', name: wire, interval: 1s, max_interval: 1s}}]\n"
        "rules: rules/\n"
        f"fetch: {{allow_private: ['127.0.0.1:{port}']}}\n"
        "http: {listen: '127.0.0.1:0'}\n"
        f"redis: {{url: '{redis_url}', prefix: nm-outage}}\n"
        f"sinks: {{partner: {{type: webhook, url: '{hook}', timeout: 2s}}}}\n"
    )
    return path


async def readyz(port: int | None) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as s, s.get(f"http://127.0.0.1:{port}/readyz") as r:
        return r.status, json.loads(await r.read())


async def test_redis_outage_loses_nothing_and_recovers(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    """Hits arriving during a 30 s Redis outage are delivered after it; /readyz shows it."""
    wire, receiver = Wire(), Receiver()
    async with serve(wire.app()) as site, serve(receiver.app()) as hook:
        wire.base = f"http://127.0.0.1:{site.port}"
        receiver.server = hook
        cfg = write_config(tmp_path, wire.base, site.port, receiver.url, redis_server.url)
        wire.items = [0]
        async with running(cfg) as daemon:

            async def delivered(n: int) -> bool:
                return len({json.loads(b)["id"] for _, b in receiver.requests}) >= n

            await eventually(lambda: delivered(1))
            assert (await readyz(daemon.http_port))[0] == 200
            client = aioredis.from_url(redis_server.url)
            await client.save()  # a persistent Redis keeps its data across the restart
            await client.aclose()
            redis_server.stop()
            wire.items = [0, 1, 2]
            statuses = []
            deadline = time.monotonic() + OUTAGE
            while time.monotonic() < deadline:
                statuses.append(await readyz(daemon.http_port))
                await asyncio.sleep(2.0)
            redis_server.start()

            async def all_three() -> bool:
                """every story's hit reached the receiver"""
                return await delivered(3)

            await eventually(all_three, within=60)
            assert (await readyz(daemon.http_port))[0] == 200
    assert statuses and all(code == 503 and "store" in doc["problems"] for code, doc in statuses)
    bodies = [json.loads(b) for _, b in receiver.requests]
    assert sorted({b["article"]["title"] for b in bodies}) == [
        f"Korea OPCON report {n}" for n in range(3)
    ]
