"""Shutdown: a feed hanging until its fetch timeout does not take the whole grace period."""

from __future__ import annotations

import asyncio
from pathlib import Path

import structlog
from aiohttp import web

from monitor.store.redis import RedisStore
from tests.conftest import SEED_ARTICLE, RedisServer
from tests.e2e import Receiver, Site, eventually, running, serve


async def test_polls_in_flight_are_cut_at_half_the_grace(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    """At stop, a poll of a feed that never answers (fetch timeout 60 s, grace 4 s) is cut
    after half the grace, logged, leaves the feed's state as it was and hands its claim
    back; the deliveries get the rest, and the daemon stops by itself."""
    asked = asyncio.Event()

    async def hang(_: web.Request) -> web.Response:
        asked.set()
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    hanging = web.Application()
    hanging.router.add_get("/feed", hang)
    site, receiver = Site(SEED_ARTICLE.read_bytes()), Receiver()
    async with serve(site.app()) as srv, serve(receiver.app()) as hook, serve(hanging) as bad:
        site.server, receiver.server = srv, hook
        (tmp_path / "rules").mkdir()
        (tmp_path / "rules" / "r.yml").write_text(
            "rules:\n  - {id: korea, query: 'Korea AND OPCON', notify: [partner]}\n"
        )
        cfg = tmp_path / "monitor.yml"
        cfg.write_text(
            "feeds:\n"
            f"  - {{url: '{site.base}/feed.xml', name: wire, interval: 1s}}\n"
            f"  - {{url: 'http://127.0.0.1:{bad.port}/feed', name: hanging, interval: 60s}}\n"
            "rules: rules/\nshutdown_grace: 4s\n"
            f"redis: {{url: '{redis_server.url}', prefix: nm-stop}}\n"
            f"fetch: {{allow_private: ['127.0.0.1:{srv.port}', '127.0.0.1:{bad.port}'], "
            "timeout: 60s}\n"
            f"sinks: {{partner: {{type: webhook, url: '{receiver.url}'}}}}\n"
        )
        with structlog.testing.capture_logs() as logs:
            async with running(cfg):

                async def hanging_asked_and_hit_delivered() -> bool:
                    """the hanging feed was asked and the wire's hit was delivered"""
                    return asked.is_set() and bool(receiver.requests)

                await eventually(hanging_asked_and_hit_delivered)
        store = RedisStore.from_url(redis_server.url, "nm-stop")
        try:
            state = await store.get_feed(f"http://127.0.0.1:{bad.port}/feed")
            free = await store.claim_feed(f"http://127.0.0.1:{bad.port}/feed", "next", ttl=60)
        finally:
            await store.close()
    events = [e["event"] for e in logs]
    assert "polls cut short at shutdown; their feeds are polled again at start" in events
    assert "grace period over; pending deliveries stay stored for next start" not in events
    assert state is None or state.etag is None  # never answered: nothing noted of it
    assert free  # the cut poll handed its claim back (its claim lasts the feed's 60 s interval)
