"""``/readyz`` means "rules loaded, store reachable" (DESIGN.md): what is disabled after a
410 Gone is shown there but never makes the daemon unready."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import aiohttp

from monitor import health
from monitor.metrics import Metrics
from tests.conftest import SEED_ARTICLE
from tests.e2e import Receiver, Site, eventually, running, serve, write_config


async def readyz(port: int | None) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as s, s.get(f"http://127.0.0.1:{port}/readyz") as r:
        return r.status, json.loads(await r.read())


async def test_a_sink_gone_is_shown_but_leaves_the_daemon_ready(tmp_path: Path) -> None:
    """A webhook answering 410 disables its sink: /readyz lists it and stays 200, so one
    dead partner endpoint cannot take every replica out of service."""
    site, receiver = Site(SEED_ARTICLE.read_bytes()), Receiver(statuses=[410])
    async with serve(site.app()) as srv, serve(receiver.app()) as hook:
        site.server, receiver.server = srv, hook
        cfg = write_config(tmp_path, site, webhook=receiver.url)
        async with running(cfg) as daemon:

            async def sink_disabled() -> bool:
                """the partner sink was disabled by its 410"""
                return daemon.deliverers["partner"].disabled is not None

            await eventually(sink_disabled)
            status, doc = await readyz(daemon.http_port)
    assert len(receiver.requests) == 1
    assert (status, doc["ready"], doc["problems"]) == (200, True, {})
    assert doc["sinks_disabled"] == ["partner"]
    assert doc["feeds_disabled"] == []


async def metrics(port: int | None) -> str:
    async with aiohttp.ClientSession() as s, s.get(f"http://127.0.0.1:{port}/metrics") as r:
        return await r.text()


async def test_metrics_are_current_without_anyone_asking_readyz(tmp_path: Path) -> None:
    """A scraper of /metrics alone sees the store up (it was set only by /readyz), and the
    pending gauge back at 0 once the hit is delivered (it was set only when hits came due,
    before they were sent)."""
    site, receiver = Site(SEED_ARTICLE.read_bytes()), Receiver()
    async with serve(site.app()) as srv, serve(receiver.app()) as hook:
        site.server, receiver.server = srv, hook
        cfg = write_config(tmp_path, site, webhook=receiver.url)
        async with running(cfg) as daemon:

            async def store_up_and_nothing_pending() -> bool:
                """/metrics says the store is up and no delivery is pending after one went"""
                if daemon.http_port is None:  # not listening yet
                    return False
                text = await metrics(daemon.http_port)
                return (
                    bool(receiver.requests)
                    and "news_monitor_store_up 1.0" in text
                    and 'news_monitor_pending_deliveries{sink="partner"} 0.0' in text
                )

            await eventually(store_up_and_nothing_pending)


async def test_metrics_are_rendered_off_the_event_loop() -> None:
    """/metrics is rendered in a worker thread: with thousands of feeds that takes a while,
    and on the event loop every scrape would stall polling and delivery meanwhile."""
    threads: list[threading.Thread] = []

    class Watched(Metrics):
        def render(self) -> bytes:
            threads.append(threading.current_thread())
            return super().render()

    async def ready() -> dict[str, str]:
        return {}

    runner, port = await health.start(health.make_app(Watched(), ready), "127.0.0.1", 0)
    try:
        text = await metrics(port)
    finally:
        await runner.cleanup()
    assert "news_monitor_store_up" in text
    assert threads and threads[0] is not threading.main_thread()
