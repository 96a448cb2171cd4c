"""End to end on real HTTP and real Redis: the reference story produces exactly one hit."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import redis.asyncio as aioredis
from standardwebhooks import Webhook

from tests.conftest import SEED_ARTICLE, RedisServer
from tests.e2e import Receiver, Site, eventually, running, serve, write_config

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def rules_of(bodies: list[bytes]) -> list[str]:
    return [json.loads(b)["rule"]["id"] for b in bodies]


async def test_embedded_reference_story_one_hit_and_no_nasa(tmp_path: Path) -> None:
    """Embedded mode: the Korea rule fires once on the seed story, the sidebar NASA rule never."""
    site = Site(SEED_ARTICLE.read_bytes())
    async with serve(site.app()) as srv:
        site.server = srv
        cfg = write_config(tmp_path, site)
        async with running(cfg) as daemon:

            async def polled_twice() -> bool:
                """the feed was polled at least twice"""
                return site.feed_requests >= 2

            await eventually(polled_twice)
            bodies = await daemon.deps.store.hits()
    assert rules_of(bodies) == ["korea-opcon"]
    hit = json.loads(bodies[0])
    # The page's rel=canonical wins over the feed link (DESIGN.md: article.url).
    assert hit["article"]["url"] == (
        "https://www.devdiscourse.com/article/politics/"
        "1839127-us-military-leaders-in-skorea-for-talks-over-nkorea-alliance"
    )
    assert hit["article"]["site"] == "devdiscourse.com"
    assert hit["article"]["source"] == "local-wire"
    assert hit["id"].startswith("h_") and hit["story"].startswith("s_")
    assert any(
        "operational control" in m["text"].lower() or m["text"] == "OPCON" for m in hit["matches"]
    )
    assert site.page_requests == 1  # the page is fetched once: the entry is seen afterwards


async def test_redis_reference_story_stream_and_pubsub(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    """Redis mode: one Korea hit in the stream and on the rule's and the extra channel."""
    site = Site(SEED_ARTICLE.read_bytes())
    client = aioredis.from_url(redis_server.url)
    pubsub = client.pubsub()
    await pubsub.subscribe(
        "nm-test:hits:korea-opcon", "alerts.korea", "nm-test:hits:nasa-spacewalk"
    )
    try:
        async with serve(site.app()) as srv:
            site.server = srv
            cfg = write_config(tmp_path, site, redis_url=redis_server.url)
            async with running(cfg):
                got: list[tuple[bytes, bytes]] = []

                async def two_messages() -> bool:
                    """both subscribed channels received the hit"""
                    msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
                    if msg:
                        got.append((msg["channel"], msg["data"]))
                    return len(got) >= 2

                await eventually(two_messages)

                async def polled_twice() -> bool:
                    """the feed was polled at least twice"""
                    return site.feed_requests >= 2

                await eventually(polled_twice)
            entries = await client.xrange("nm-test:hits")
        await asyncio.sleep(0.2)
        late = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2)
    finally:
        await pubsub.aclose()
        await client.aclose()
    assert [rules_of([f[b"hit"]]) for _, f in entries] == [["korea-opcon"]]
    assert sorted(ch for ch, _ in got) == [b"alerts.korea", b"nm-test:hits:korea-opcon"]
    assert all(data == entries[0][1][b"hit"] for _, data in got)
    assert late is None


async def test_restart_no_second_hit_and_webhook_retries_same_id(tmp_path: Path) -> None:
    """Webhook answering 500, 500, 200 gets one id, valid signatures; a restart adds nothing."""
    site = Site(SEED_ARTICLE.read_bytes())
    receiver = Receiver(statuses=[500, 500, 200])
    async with serve(site.app()) as srv, serve(receiver.app()) as hook:
        site.server, receiver.server = srv, hook
        cfg = write_config(tmp_path, site, webhook=receiver.url, secret=SECRET)
        async with running(cfg):

            async def delivered() -> bool:
                """the receiver got three attempts"""
                return len(receiver.requests) >= 3

            await eventually(delivered)
        polls_before = site.feed_requests
        async with running(cfg) as daemon:

            async def polled_again() -> bool:
                """the restarted daemon polled the feed twice more"""
                return site.feed_requests >= polls_before + 2

            await eventually(polled_again)
            bodies = await daemon.deps.store.hits()
    assert rules_of(bodies) == ["korea-opcon"]
    assert len(receiver.requests) == 3
    ids = {h["webhook-id"] for h, _ in receiver.requests}
    assert ids == {json.loads(bodies[0])["id"]}
    wh = Webhook(SECRET)
    for headers, body in receiver.requests:
        wh.verify(body, {k.lower(): v for k, v in headers.items()})
        assert body == bodies[0]
