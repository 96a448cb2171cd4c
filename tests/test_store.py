"""The two stores keep one promise: the same suite runs on SQLite and on a real redis-server."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from monitor.config import load_config
from monitor.daemon import REDIS_CONNECTIONS, open_store
from monitor.errors import ConfigError, MonitorError
from monitor.hit import Hit, hit_id
from monitor.store.base import FeedState, Pending
from monitor.store.redis import RedisStore
from monitor.store.sqlite import SCHEMA_VERSION, SQLiteStore
from tests.e2e import eventually

PREFIX = "nm-test"
AnyStore = SQLiteStore | RedisStore


def make_hit(
    story: str = "s_1",
    rule: str = "korea-opcon",
    sinks: tuple[str, ...] = ("desk",),
    channels: tuple[str, ...] = (),
) -> Hit:
    """A hit with a UTF-8 body (curly quotes, accents) to catch any re-encoding."""
    hid = hit_id(rule, story)
    doc = {"id": hid, "rule": {"id": rule, "name": "Korea"}, "story": story, "t": "“OPCON” é"}
    body = json.dumps(doc, ensure_ascii=False).encode()
    return Hit(hid, rule, story, body, sinks, channels)


class Backend:
    """Opens handles on one backend's state; each new handle is a 'restart' of the last."""

    def __init__(self, kind: str, tmp_path: Path, redis_url: str | None) -> None:
        self.kind = kind
        self.path = tmp_path / "state" / "nested" / "monitor.db"
        self.redis_url = redis_url
        self.opened: list[AnyStore] = []

    async def open(self) -> AnyStore:
        store: AnyStore
        if self.kind == "sqlite":
            store = await SQLiteStore(self.path).open()
        else:
            assert self.redis_url is not None
            store = RedisStore.from_url(self.redis_url, PREFIX)
        self.opened.append(store)
        return store

    async def reopen(self, store: AnyStore) -> AnyStore:
        await store.close()
        return await self.open()

    async def close_all(self) -> None:
        for store in self.opened:
            await store.close()


@pytest.fixture(params=["sqlite", "redis"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    url = request.getfixturevalue("redis_server").url if request.param == "redis" else None
    backend = Backend(request.param, tmp_path, url)
    try:
        yield backend
    finally:
        await backend.close_all()


@pytest.fixture
async def store(backend: Backend) -> AnyStore:
    return await backend.open()


@pytest.fixture
async def rstore(redis_server: Any) -> AsyncIterator[RedisStore]:
    store = RedisStore.from_url(redis_server.url, PREFIX)
    try:
        yield store
    finally:
        await store.close()


FULL = FeedState(
    etag='W/"abc"',
    last_modified="Wed, 01 Dec 2021 06:36:00 GMT",
    next_poll=1_700_000_123.25,
    errors=3,
    last_status=503,
    last_error="HTTP 503 from example.com",
    disabled=True,
    meta={"entries_week": [1_700_000_000.5, 1_700_000_100.0], "moved": {"n": 2}},
)

# -- both backends -----------------------------------------------------------------------


async def test_ping(store: AnyStore) -> None:
    """An open store answers ping."""
    await store.ping()


async def test_feed_state_round_trip(store: AnyStore) -> None:
    """A feed never stored is None; a stored state reads back equal, Nones included."""
    url = "https://example.com/world/rss.xml"
    assert await store.get_feed(url) is None
    await store.put_feed(url, FULL)
    assert await store.get_feed(url) == FULL
    await store.put_feed(url, FeedState(next_poll=5.0))
    assert await store.get_feed(url) == FeedState(next_poll=5.0)


async def test_feed_state_survives_reopen(backend: Backend, store: AnyStore) -> None:
    """Feed state written before a restart is read back after it."""
    await store.put_feed("https://a.example/feed", FULL)
    store = await backend.reopen(store)
    assert await store.get_feed("https://a.example/feed") == FULL
    assert await store.get_feed("https://b.example/feed") is None


async def test_record_marks_seen(store: AnyStore) -> None:
    """Keys passed to record are seen afterwards; others stay unseen."""
    assert await store.unseen([]) == set()
    assert await store.unseen(["a", "b", "a"]) == {"a", "b"}
    assert await store.record(["a"], []) == []
    assert await store.unseen(["a", "b"]) == {"b"}


async def test_seen_survives_reopen(backend: Backend, store: AnyStore) -> None:
    """Seen marks survive a restart."""
    await store.record(["k1"], [make_hit()])
    store = await backend.reopen(store)
    assert await store.unseen(["k1", "k2"]) == {"k2"}


async def test_record_returns_new_hits_and_lists_them(store: AnyStore) -> None:
    """record returns the new hits; hits() lists their exact bodies, newest last."""
    h1, h2 = make_hit("s_1"), make_hit("s_2")
    assert await store.record(["k"], [h1, h2]) == [h1, h2]
    assert await store.hits() == [h1.body, h2.body]
    assert await store.hits(limit=1) == [h2.body]


async def test_record_is_idempotent_on_hit_id(store: AnyStore) -> None:
    """A hit id recorded before is skipped: no return, no hit listed, no new delivery."""
    hit = make_hit(sinks=("desk",))
    assert await store.record(["k1"], [hit]) == [hit]
    assert await store.record(["k2"], [hit]) == []
    assert await store.pending_count("desk") == 1
    await store.ack("desk", hit.id)
    assert await store.record(["k3"], [hit]) == []
    assert await store.pending_count("desk") == 0
    assert await store.hits() == [hit.body]
    assert await store.unseen(["k2", "k3"]) == set()


async def test_record_skips_a_repeat_within_one_call(store: AnyStore) -> None:
    """The same hit id twice in one record call is recorded once."""
    hit = make_hit()
    assert await store.record([], [hit, hit]) == [hit]
    assert await store.hits() == [hit.body]
    assert await store.pending_count("desk") == 1


async def test_one_delivery_per_sink(store: AnyStore) -> None:
    """A new hit gets one pending delivery per distinct sink, due now, with its body."""
    hit = make_hit(sinks=("desk", "partner", "desk"))
    before = time.time()
    await store.record([], [hit])
    assert await store.pending_count("desk") == 1
    assert await store.pending_count("partner") == 1
    assert await store.pending_count("other") == 0
    [p] = await store.due("partner", time.time())
    assert (p.sink, p.hit_id, p.body, p.attempts, p.last_error) == (
        "partner",
        hit.id,
        hit.body,
        0,
        None,
    )
    assert before <= p.next_at <= time.time()


async def test_due_respects_next_at(store: AnyStore) -> None:
    """due hands out only deliveries whose next_at has come, earliest first."""
    h1, h2, h3 = make_hit("s_1"), make_hit("s_2"), make_hit("s_3")
    await store.record([], [h1, h2, h3])
    assert await store.due("desk", 0.0) == []
    t = time.time()
    await store.retry("desk", h1.id, 1, t + 20, "e1")
    await store.retry("desk", h2.id, 1, t + 10, "e2")
    await store.retry("desk", h3.id, 1, t + 30, "e3")
    assert [p.hit_id for p in await store.due("desk", t + 15)] == [h2.id]
    assert [p.hit_id for p in await store.due("desk", t + 30)] == [h1.id, h3.id]


async def test_due_limit(store: AnyStore) -> None:
    """due returns at most ``limit`` deliveries; the rest come on the next call."""
    await store.record([], [make_hit(f"s_{i}") for i in range(5)])
    now = time.time()
    assert len(await store.due("desk", now, limit=2)) == 2
    assert len(await store.due("desk", now, limit=10)) == 3


async def test_due_leases_what_it_hands_out(store: AnyStore) -> None:
    """A delivery handed out by due is not handed out again until its lease runs out."""
    hit = make_hit()
    await store.record([], [hit])
    now = time.time()
    assert [p.hit_id for p in await store.due("desk", now)] == [hit.id]
    assert await store.due("desk", now) == []
    assert await store.pending_count("desk") == 1
    assert [p.hit_id for p in await store.due("desk", now + store.lease + 1)] == [hit.id]


async def test_retry_reschedules_and_counts(store: AnyStore) -> None:
    """retry sets attempts, next_at and last_error; a retried delivery is due again then."""
    hit = make_hit()
    await store.record([], [hit])
    t = time.time()
    await store.due("desk", t)
    await store.retry("desk", hit.id, 1, t + 5, "HTTP 500")
    assert await store.due("desk", t + 4) == []
    [p] = await store.due("desk", t + 5)
    assert (p.attempts, p.next_at, p.last_error) == (1, t + 5, "HTTP 500")
    await store.retry("desk", hit.id, 2, t + 300, "timeout")
    [p] = await store.due("desk", t + 300)
    assert (p.attempts, p.last_error) == (2, "timeout")


async def test_ack_removes(store: AnyStore) -> None:
    """ack forgets the delivery for that sink only; acking again is harmless."""
    hit = make_hit(sinks=("desk", "partner"))
    await store.record([], [hit])
    await store.ack("desk", hit.id)
    await store.ack("desk", hit.id)
    assert await store.pending_count("desk") == 0
    assert await store.due("desk", time.time()) == []
    assert await store.pending_count("partner") == 1


async def test_retry_after_ack_does_not_resurrect(store: AnyStore) -> None:
    """A retry for a delivery already acked (say by another replica) changes nothing."""
    hit = make_hit()
    await store.record([], [hit])
    await store.ack("desk", hit.id)
    await store.retry("desk", hit.id, 1, 0.0, "late")
    await store.dead("desk", hit.id, "late")
    assert await store.pending_count("desk") == 0
    assert await store.dead_letters("desk") == []


async def test_dead_moves_to_dead_letters(store: AnyStore) -> None:
    """dead takes the delivery out of pending into the dead letters, counting the last try."""
    hit, other = make_hit("s_1"), make_hit("s_2")
    await store.record([], [hit, other])
    t = time.time()
    await store.retry("desk", hit.id, 6, t, "HTTP 500")
    await store.dead("desk", hit.id, "HTTP 502")
    assert await store.pending_count("desk") == 1
    assert [p.hit_id for p in await store.due("desk", t + 1)] == [other.id]
    [d] = await store.dead_letters("desk")
    assert (d.sink, d.hit_id, d.body, d.attempts, d.last_error) == (
        "desk",
        hit.id,
        hit.body,
        7,
        "HTTP 502",
    )
    assert t <= d.next_at <= time.time()
    assert await store.dead_letters("partner") == []


async def test_replay_by_id_and_all(store: AnyStore) -> None:
    """replay brings dead letters back (given ids, then all), due now with attempts reset."""
    hits = [make_hit(f"s_{i}") for i in range(3)]
    await store.record([], hits)
    for h in hits:
        await store.dead("desk", h.id, "gone")
    now = time.time() + 100
    assert await store.replay("desk", [], now) == 0
    assert await store.replay("desk", [hits[1].id, "h_unknown"], now) == 1
    assert [d.hit_id for d in await store.dead_letters("desk")] == [hits[0].id, hits[2].id]
    [p] = await store.due("desk", now)
    assert (p.hit_id, p.attempts, p.next_at, p.body) == (hits[1].id, 0, now, hits[1].body)
    assert await store.replay("desk", None, now) == 2
    assert await store.dead_letters("desk") == []
    assert await store.pending_count("desk") == 3
    assert await store.replay("desk", None, now) == 0


async def test_deliveries_survive_reopen(backend: Backend, store: AnyStore) -> None:
    """Pending and dead deliveries, attempts and errors survive a restart."""
    h1, h2 = make_hit("s_1"), make_hit("s_2")
    await store.record([], [h1, h2])
    t = time.time()
    await store.retry("desk", h1.id, 2, t + 60, "HTTP 503")
    await store.dead("desk", h2.id, "HTTP 404")
    store = await backend.reopen(store)
    assert await store.due("desk", t + 60) == [
        Pending("desk", h1.id, h1.body, 2, t + 60, "HTTP 503")
    ]
    assert [(d.hit_id, d.last_error) for d in await store.dead_letters("desk")] == [
        (h2.id, "HTTP 404")
    ]


async def test_claim_feed_excludes_second_owner(store: AnyStore) -> None:
    """A claimed feed is refused to another owner until the holder releases it."""
    url = "https://example.com/rss"
    assert await store.claim_feed(url, "a", 60)
    assert not await store.claim_feed(url, "b", 60)
    assert await store.claim_feed(url, "a", 60)  # the holder renews
    await store.release_feed(url, "b")  # not the holder: no effect
    assert not await store.claim_feed(url, "b", 60)
    await store.release_feed(url, "a")
    assert await store.claim_feed(url, "b", 60)
    assert await store.claim_feed("https://other.example/rss", "a", 60)


async def test_claim_feed_expires(store: AnyStore) -> None:
    """A claim not released lapses after its ttl (a dead replica's feeds are taken over)."""
    assert await store.claim_feed("https://example.com/rss", "a", 0.05)
    await asyncio.sleep(0.2)
    assert await store.claim_feed("https://example.com/rss", "b", 60)


async def test_record_is_all_or_nothing(store: AnyStore) -> None:
    """When one hit cannot be written, nothing of the call is kept: no seen, hit or delivery."""
    good, bad = make_hit("s_1", sinks=("desk",)), make_hit("s_2", sinks=("desk", ""))
    with pytest.raises((sqlite3.IntegrityError, ResponseError)):
        await store.record(["k"], [good, bad])
    assert await store.unseen(["k"]) == {"k"}
    assert await store.hits() == []
    assert await store.pending_count("desk") == 0
    assert await store.record(["k"], [good]) == [good]


# -- SQLite only ---------------------------------------------------------------------------


async def test_sqlite_file_settings(tmp_path: Path) -> None:
    """open creates the folders and a WAL file carrying the schema version."""
    path = tmp_path / "a" / "b" / "state.db"
    store = await SQLiteStore(path).open()
    await store.close()
    await store.close()  # twice is harmless
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    db.close()


async def test_sqlite_refuses_newer_schema(tmp_path: Path) -> None:
    """A state file from a newer schema version is refused with a MonitorError."""
    path = tmp_path / "state.db"
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 99")
    db.close()
    with pytest.raises(MonitorError, match="schema 99"):
        await SQLiteStore(path).open()


async def test_sqlite_unopenable_path(tmp_path: Path) -> None:
    """A path that cannot hold a database gives a MonitorError naming it."""
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(MonitorError, match="cannot open state database"):
        await SQLiteStore(tmp_path / "file" / "state.db").open()


async def test_sqlite_restart_clears_leases(tmp_path: Path) -> None:
    """Deliveries leased by a process that died are due right away after a restart."""
    store = await SQLiteStore(tmp_path / "s.db").open()
    hit = make_hit()
    await store.record([], [hit])
    now = time.time()
    assert len(await store.due("desk", now)) == 1
    await store.close()
    store = await SQLiteStore(tmp_path / "s.db").open()
    try:
        assert [p.hit_id for p in await store.due("desk", now)] == [hit.id]
    finally:
        await store.close()


async def test_sqlite_async_with(tmp_path: Path) -> None:
    """``async with SQLiteStore(path)`` opens and closes the store; a closed one fails ping."""
    async with SQLiteStore(tmp_path / "s.db") as store:
        await store.ping()
    with pytest.raises(MonitorError, match="not open"):
        await store.ping()


# -- Redis only ----------------------------------------------------------------------------


async def test_redis_stream_entry(rstore: RedisStore, redis_client: Any) -> None:
    """Each new hit is one XADD to P:hits: ``hit`` is the body, plus id, time and sinks."""
    h1, h2 = make_hit("s_1"), make_hit("s_2", sinks=("desk", "partner"))
    before = time.time()
    await rstore.record([], [h1])
    await rstore.record([], [h1, h2])
    entries = await redis_client.xrange(f"{PREFIX}:hits")
    assert [fields[b"hit"] for _, fields in entries] == [h1.body, h2.body]
    assert [fields[b"id"].decode() for _, fields in entries] == [h1.id, h2.id]
    assert [json.loads(fields[b"sinks"]) for _, fields in entries] == [
        ["desk"],
        ["desk", "partner"],
    ]
    assert all(before <= float(fields[b"at"]) <= time.time() for _, fields in entries)


async def test_redis_stream_is_capped(redis_server: Any, redis_client: Any) -> None:
    """The stream is trimmed near stream_maxlen (MAXLEN ~)."""
    client = aioredis.Redis.from_url(redis_server.url)
    store = RedisStore(client, PREFIX, stream_maxlen=10)
    try:
        for i in range(400):
            await store.record([], [make_hit(f"s_{i}", sinks=())])
        assert 10 <= await redis_client.xlen(f"{PREFIX}:hits") < 400
        assert len(await store.hits(limit=5)) == 5
    finally:
        await store.close()  # does not close a client it was given
        await client.ping()
        await client.aclose()


async def test_redis_publishes_on_rule_and_channels(rstore: RedisStore, redis_client: Any) -> None:
    """The body is published on P:hits:<rule> and each channel, once per new hit."""
    pubsub = redis_client.pubsub()
    await pubsub.subscribe(f"{PREFIX}:hits:korea-opcon", "alerts.korea")
    try:
        await messages(pubsub, "subscribe", 2)
        h1 = make_hit("s_1", channels=("alerts.korea",))
        await rstore.record([], [h1])
        await rstore.record([], [h1])  # a duplicate publishes nothing
        h2 = make_hit("s_2")
        await rstore.record([], [h2])
        got = await messages(pubsub, "message", 3)
        assert got == [
            (f"{PREFIX}:hits:korea-opcon".encode(), h1.body),
            (b"alerts.korea", h1.body),
            (f"{PREFIX}:hits:korea-opcon".encode(), h2.body),
        ]
    finally:
        await pubsub.aclose()


async def messages(pubsub: Any, kind: str, n: int) -> list[tuple[bytes, bytes]]:
    """The next ``n`` pub/sub messages of ``kind`` as (channel, data)."""
    out: list[tuple[bytes, bytes]] = []
    async with asyncio.timeout(10):
        while len(out) < n:
            msg = await pubsub.get_message(timeout=1.0)
            if msg is not None and msg["type"] == kind:
                out.append((msg["channel"], msg["data"]))
    return out


async def test_redis_keys_expire(rstore: RedisStore, redis_client: Any) -> None:
    """Seen marks and hit markers carry a TTL; delivery bodies do not (dead letters last)."""
    hit = make_hit()
    await rstore.record(["k"], [hit])
    assert 0 < await redis_client.pttl(f"{PREFIX}:seen:k") <= rstore.seen_ttl * 1000
    assert 0 < await redis_client.pttl(f"{PREFIX}:hit:{hit.id}") <= rstore.hit_ttl * 1000
    await rstore.pending_count("desk")  # ingests the entry into the sink's outbox
    assert await redis_client.pttl(f"{PREFIX}:bodies:desk") == -1


async def test_redis_record_checks_before_writing(rstore: RedisStore, redis_client: Any) -> None:
    """A key of the wrong type fails record before any write: nothing is half-recorded."""
    await redis_client.set(f"{PREFIX}:hits", "not a stream")
    good = make_hit("s_1")
    with pytest.raises(ResponseError, match="WRONGTYPE"):
        await rstore.record(["k"], [good])
    assert await redis_client.exists(f"{PREFIX}:seen:k", f"{PREFIX}:hit:{good.id}") == 0


async def test_redis_claim_across_replicas(redis_server: Any, rstore: RedisStore) -> None:
    """Two replicas (two clients): a feed claimed by one is refused to the other."""
    other = RedisStore.from_url(redis_server.url, PREFIX)
    try:
        assert await rstore.claim_feed("https://example.com/rss", "replica-1", 60)
        assert not await other.claim_feed("https://example.com/rss", "replica-2", 60)
        await rstore.release_feed("https://example.com/rss", "replica-1")
        assert await other.claim_feed("https://example.com/rss", "replica-2", 60)
    finally:
        await other.close()


async def test_redis_due_once_across_replicas(redis_server: Any, rstore: RedisStore) -> None:
    """A due delivery goes to one replica; the other gets it only after the lease lapses."""
    other = RedisStore.from_url(redis_server.url, PREFIX)
    try:
        hit = make_hit()
        assert await other.record(["k"], [hit]) == [hit]
        assert await rstore.record(["k"], [hit]) == []
        now = time.time()
        assert len(await rstore.due("desk", now)) == 1
        assert await other.due("desk", now) == []
        assert len(await other.due("desk", now + rstore.lease + 1)) == 1
    finally:
        await other.close()


async def test_redis_ping_outage(redis_server: Any, rstore: RedisStore) -> None:
    """ping raises MonitorError while Redis is down and works again once it is back."""
    await rstore.ping()
    redis_server.stop()
    with pytest.raises(MonitorError, match="redis unreachable"):
        await rstore.ping()
    redis_server.start()
    await rstore.ping()


async def test_redis_other_calls_raise_redis_errors(redis_server: Any, rstore: RedisStore) -> None:
    """Outside ping, an outage surfaces as the library's RedisError."""
    redis_server.stop()
    with pytest.raises(RedisError):
        await rstore.record(["k"], [make_hit()])


async def test_redis_decoded_client(redis_server: Any) -> None:
    """A client with decode_responses=True works the same (bodies still come back as bytes)."""
    client = aioredis.Redis.from_url(redis_server.url, decode_responses=True)
    store = RedisStore(client, PREFIX, owns_client=True)
    try:
        hit = make_hit()
        await store.put_feed("https://example.com/rss", FULL)
        assert await store.get_feed("https://example.com/rss") == FULL
        assert await store.record(["k"], [hit]) == [hit]
        assert await store.unseen(["k", "j"]) == {"j"}
        assert await store.hits() == [hit.body]
        [p] = await store.due("desk", time.time())
        assert p.body == hit.body
        await store.dead("desk", hit.id, "x")
        assert [d.body for d in await store.dead_letters("desk")] == [hit.body]
    finally:
        await store.close()


async def test_state_values_round_trip_and_survive_reopen(
    backend: Backend, store: AnyStore
) -> None:
    """get_state/put_state keep small named values across a restart; None deletes."""
    assert await store.get_state("sink:desk") is None
    await store.put_state("sink:desk", '{"gone": 1}')
    await store.put_state("throttle:desk:r", "12.5")
    store = await backend.reopen(store)
    assert await store.get_state("sink:desk") == '{"gone": 1}'
    await store.put_state("sink:desk", None)
    assert await store.get_state("sink:desk") is None
    assert await store.get_state("throttle:desk:r") == "12.5"


async def test_pending_lists_without_leasing(store: AnyStore) -> None:
    """pending lists waiting deliveries by next attempt and leaves them due."""
    h1, h2 = make_hit("s_1"), make_hit("s_2")
    await store.record([], [h1, h2])
    t = time.time()
    await store.retry("desk", h1.id, 1, t + 60, "HTTP 500")
    listed = await store.pending("desk")
    assert [(p.hit_id, p.attempts, p.last_error) for p in listed] == [
        (h2.id, 0, None),
        (h1.id, 1, "HTTP 500"),
    ]
    assert [p.hit_id for p in await store.due("desk", t)] == [h2.id]


# -- Redis outbox: consumer groups ---------------------------------------------------------


async def group_info(client: Any, sink: str) -> dict[str, Any]:
    """XINFO GROUPS of P:hits for one sink's group, keys decoded."""
    for g in await client.xinfo_groups(f"{PREFIX}:hits"):
        if g["name"] in (f"sink:{sink}", f"sink:{sink}".encode()):
            return {k if isinstance(k, str) else k.decode(): v for k, v in g.items()}
    raise AssertionError(f"no group for {sink}")


async def test_redis_group_per_sink_acks_after_success(
    rstore: RedisStore, redis_client: Any
) -> None:
    """Each sink has a group; its entry stays in the PEL until ack, other sinks' are acked."""
    mine, other = make_hit("s_1", sinks=("desk",)), make_hit("s_2", sinks=("partner",))
    await rstore.record([], [mine, other])
    [p] = await rstore.due("desk", time.time())
    assert p.hit_id == mine.id
    assert (await group_info(redis_client, "desk"))["pending"] == 1
    assert (await group_info(redis_client, "partner"))["pending"] == 0
    await rstore.ack("desk", mine.id)
    assert (await group_info(redis_client, "desk"))["pending"] == 0
    assert await rstore.pending_count("partner") == 1
    assert (await group_info(redis_client, "partner"))["pending"] == 1


async def test_redis_dead_acks_and_keeps_body(rstore: RedisStore, redis_client: Any) -> None:
    """A dead letter leaves the PEL but keeps its body for replay."""
    hit = make_hit()
    await rstore.record([], [hit])
    await rstore.dead("desk", hit.id, "HTTP 500")
    assert (await group_info(redis_client, "desk"))["pending"] == 0
    assert await rstore.replay("desk", None, time.time()) == 1
    [p] = await rstore.due("desk", time.time())
    assert p.body == hit.body


async def test_redis_trim_keeps_unread_entries(redis_server: Any, redis_client: Any) -> None:
    """MAXLEN trimming never drops entries a sink group has not read yet."""
    store = RedisStore.from_url(redis_server.url, PREFIX, stream_maxlen=10)
    try:
        for i in range(300):
            await store.record([], [make_hit(f"s_{i}")])
        assert await redis_client.xlen(f"{PREFIX}:hits") == 300
        assert await store.pending_count("desk") == 300  # read now: bodies are in the outbox
        for i in range(300, 700):
            await store.record([], [make_hit(f"s_{i}", sinks=())])
            if i % 50 == 0:
                await store.pending_count("desk")  # the deliverer keeps reading
        assert await redis_client.xlen(f"{PREFIX}:hits") < 150
        assert len(await store.due("desk", time.time(), limit=1000)) == 300
    finally:
        await store.close()


async def test_redis_replicas_share_a_sinks_work(redis_server: Any, rstore: RedisStore) -> None:
    """Two replicas taking due work split it without overlap and each XCLAIMs its part."""
    other = RedisStore.from_url(redis_server.url, PREFIX, consumer="replica-2")
    try:
        await rstore.record([], [make_hit(f"s_{i}") for i in range(10)])
        now = time.time()
        a = {p.hit_id for p in await rstore.due("desk", now, limit=4)}
        b = {p.hit_id for p in await other.due("desk", now, limit=100)}
        assert len(a) == 4 and len(b) == 6 and not a & b
        pel = await rstore.client.xpending_range(f"{PREFIX}:hits", "sink:desk", "-", "+", 100)
        owners = {e["consumer"] for e in pel}
        assert b"replica-2" in owners and len(owners) == 2
    finally:
        await other.close()


async def test_redis_sweep_reschedules_orphaned_pel_entries(
    redis_server: Any, redis_client: Any
) -> None:
    """XAUTOCLAIM finds an entry a dead consumer read but never scheduled, and schedules it."""
    store = RedisStore.from_url(redis_server.url, PREFIX, lease=0.05)
    try:
        hit = make_hit()
        await store.record([], [hit])
        # A consumer that read the entry outside the outbox scripts, then died.
        await redis_client.xreadgroup("sink:desk", "dead-one", {f"{PREFIX}:hits": ">"})
        assert await store.pending_count("desk") == 0
        await asyncio.sleep(0.1)
        [p] = await store.due("desk", time.time())
        assert (p.hit_id, p.body) == (hit.id, hit.body)
        await store.ack("desk", hit.id)
        assert (await group_info(redis_client, "desk"))["pending"] == 0
    finally:
        await store.close()


async def test_redis_abandoned_group_cannot_grow_the_stream_forever(
    redis_server: Any, redis_client: Any
) -> None:
    """A sink group nobody reads (sink removed or disabled) is trimmed past the hard cap."""
    store = RedisStore.from_url(redis_server.url, PREFIX, stream_maxlen=10, stream_hard_cap=100)
    try:
        for i in range(600):
            await store.record([], [make_hit(f"s_{i}", sinks=("gone",))])
        # MAXLEN ~ trims whole stream nodes (100 entries each by default), hence the slack.
        assert await redis_client.xlen(f"{PREFIX}:hits") <= 300
    finally:
        await store.close()


async def test_redis_seen_marks_last_while_feeds_list_the_entry(redis_server: Any) -> None:
    """seen_ttl runs from the last time a feed listed the entry: a mark asked about every
    half second outlives the TTL; one never asked about again expires. (Marks used to
    expire seen_ttl after the first sighting, so an entry a slow feed keeps listing came
    back as new, and alerted again once its hit was forgotten too.)"""
    client = aioredis.Redis.from_url(redis_server.url)
    store = RedisStore(client, PREFIX, seen_ttl=2.0)
    try:
        await store.record(["listed", "dropped"], [])
        for _ in range(7):  # 3.5 s in all: past the TTL
            await asyncio.sleep(0.5)
            assert await store.unseen(["listed", "new"]) == {"new"}
        assert await store.unseen(["dropped", "listed"]) == {"dropped"}
    finally:
        await store.close()
        await client.aclose()


async def test_redis_hit_marks_last_while_the_story_comes_again(redis_server: Any) -> None:
    """hit_ttl runs from the last copy of the story: copies arriving every half second for
    longer than the TTL never alert again; after a quiet TTL, the story alerts anew."""
    client = aioredis.Redis.from_url(redis_server.url)
    store = RedisStore(client, PREFIX, hit_ttl=2.0)
    hit = make_hit("s_again", sinks=())
    try:
        assert [h.id for h in await store.record([], [hit])] == [hit.id]
        for _ in range(7):  # 3.5 s in all: past the TTL
            await asyncio.sleep(0.5)
            assert await store.record([], [hit]) == []
        await asyncio.sleep(2.5)
        assert [h.id for h in await store.record([], [hit])] == [hit.id]
    finally:
        await store.close()
        await client.aclose()


async def test_sqlite_seen_marks_expire_after_the_last_listing(tmp_path: Path) -> None:
    """Seen keys live seen_ttl after a feed last listed the entry, as in Redis: one asked
    about again stays, one never listed again is deleted by the periodic prune (record
    runs it when due), so the file does not grow with every entry ever seen."""
    store = await SQLiteStore(
        tmp_path / "s.db", seen_ttl=2.0, prune_every=0.0, first_prune_after=0.0
    ).open()
    try:
        await store.record(["listed", "dropped", "gone"], [])
        await asyncio.sleep(1.5)
        assert await store.unseen(["listed", "new"]) == {"new"}  # renews "listed"
        await asyncio.sleep(1.0)  # "dropped" and "gone" are now 2.5 s old, "listed" 1 s
        await store.record(["other"], [])  # due: prunes
        assert await store.unseen(["listed", "dropped", "gone", "other"]) == {"dropped", "gone"}
        assert await store.prune() == 0
    finally:
        await store.close()


async def test_sqlite_prune_deletes_in_batches(tmp_path: Path, monkeypatch: Any) -> None:
    """Expired marks past one batch are all deleted, the unexpired kept."""
    monkeypatch.setattr("monitor.store.sqlite.PRUNE_BATCH", 7)
    store = await SQLiteStore(
        tmp_path / "s.db", seen_ttl=1.0, prune_every=3600.0, first_prune_after=0.0
    ).open()
    try:
        await store.record([f"old{i}" for i in range(30)], [])  # the first record prunes
        await asyncio.sleep(1.2)
        await store.record(["fresh"], [])  # not due again for an hour
        assert await store.prune() == 30
        assert await store.unseen(["fresh", "old0"]) == {"old0"}
    finally:
        await store.close()


async def test_sqlite_first_prune_waits_for_feeds_to_renew_their_marks(tmp_path: Path) -> None:
    """A file written before marks were renewed holds first sightings; right after open,
    nothing is pruned, so the feeds polled later still find their old entries seen."""
    path = tmp_path / "s.db"
    store = await SQLiteStore(path, first_prune_after=0.0).open()
    await store.record(["old-but-listed"], [])
    await store.close()
    with sqlite3.connect(path) as db:  # as a file from before: marks 40 days old
        db.execute("UPDATE seen SET at = ?", (time.time() - 40 * 86_400,))
    store = await SQLiteStore(path).open()
    try:
        await store.record(["new-elsewhere"], [])  # the first record after open
        assert await store.unseen(["old-but-listed"]) == set()
    finally:
        await store.close()


async def test_sqlite_hits_expire_unless_met_again_or_still_owed(tmp_path: Path) -> None:
    """Hits live hit_ttl after they were last met, as in Redis: an old hit with nothing left
    to deliver is pruned (its story may alert again), one met again is renewed, and one
    with a delivery pending or dead is kept, since its body is what gets sent."""
    path = tmp_path / "s.db"
    store = await SQLiteStore(path, prune_every=3600.0, first_prune_after=0.0).open()
    done, met, pending, dead = (make_hit(f"s_{name}") for name in ("done", "met", "pend", "dead"))
    await store.record([], [done, met, pending, dead])  # the first record prunes: nothing yet
    for hit in (done, met):
        await store.ack("desk", hit.id)
    await store.dead("desk", dead.id, "HTTP 410")
    await store.close()
    with sqlite3.connect(path) as db:  # all four last met 100 days ago
        db.execute("UPDATE hits SET recorded_at = ?", (time.time() - 100 * 86_400,))
    store = await SQLiteStore(path, first_prune_after=3600.0).open()  # prune() prunes
    try:
        assert await store.record([], [met]) == []  # met again: known, renewed
        assert await store.prune() == 1
        assert await store.record([], [done, met]) == [done]  # done alerts again
        assert [p.hit_id for p in await store.dead_letters("desk")] == [dead.id]
        assert [p.hit_id for p in await store.due("desk", time.time())] == [pending.id, done.id]
    finally:
        await store.close()


async def test_throttle_window_opens_once_until_it_ends(store: AnyStore) -> None:
    """open_window opens a window only when none is open: a second opener is told when the
    open one ends, and may open it once that has passed; close_window closes only the
    window it opened."""
    key, now = "throttle:desk:r", 1_000.0
    assert await store.open_window(key, now + 600, now) is None
    assert await store.open_window(key, now + 700, now + 100) == now + 600
    await store.close_window(key, now + 700)  # not the open window: stays
    assert await store.get_state(key) == repr(now + 600)
    assert await store.open_window(key, now + 1200, now + 600) is None  # the first has ended
    await store.close_window(key, now + 1200)
    assert await store.get_state(key) is None
    await store.put_state(key, "99999999999.5")
    assert await store.open_window(key, now + 5, now) == 99999999999.5


@pytest.mark.parametrize(
    "stored",
    ["garbage", "", "inf", "1e400", "9" * 400, "0x7fffffff", "1_900_000_000", "１２３", "12."],
)
async def test_throttle_window_unreadable_is_long_past(store: AnyStore, stored: str) -> None:
    """A stored end that is not a plain finite decimal number counts as a window long past,
    in Redis's script as in Python (neither folds hits forever nor fails on it)."""
    await store.put_state("throttle:desk:r", stored)
    assert await store.open_window("throttle:desk:r", 1_600.0, 1_000.0) is None
    assert await store.get_state("throttle:desk:r") == repr(1_600.0)


async def test_throttle_window_opened_by_one_of_many_at_once(backend: Backend) -> None:
    """Of replicas opening the same window at the same moment, exactly one opens it."""
    stores = [await backend.open() for _ in range(4)]
    results = await asyncio.gather(
        *(s.open_window("throttle:desk:r", 2_000.0 + i, 1_000.0) for i, s in enumerate(stores))
    )
    assert sum(r is None for r in results) == 1
    opened = 2_000.0 + results.index(None)
    assert all(r == opened for r in results if r is not None)


async def test_the_daemons_redis_store_queues_calls_beyond_its_pool(
    redis_server: Any, tmp_path: Path
) -> None:
    """Far more store calls at once than the pool holds (a burst of polls beside the
    deliveries) all succeed, on at most REDIS_CONNECTIONS connections: they wait for a free
    one, where redis-py's default pool raised "Too many connections" past 100."""
    cfg = tmp_path / "monitor.yml"
    cfg.write_text(f"feeds: []\nredis: {{url: '{redis_server.url}', prefix: nm-pool}}\n")
    (tmp_path / "rules").mkdir()
    store = await open_store(load_config(cfg))
    assert isinstance(store, RedisStore)
    try:
        keys = [[f"k{i}-{j}" for j in range(20)] for i in range(300)]
        results = await asyncio.gather(*(store.unseen(k) for k in keys))
        pool = store.client.connection_pool
        opened = len(pool._in_use_connections) + len(pool._available_connections)  # type: ignore[attr-defined]
    finally:
        await store.close()
    assert results == [set(k) for k in keys]
    assert opened <= REDIS_CONNECTIONS


async def test_a_pool_busy_with_work_still_answers_the_ping(redis_server: Any) -> None:
    """Every connection of the pool held by work (here blocking reads) is a busy Redis,
    not a lost one: the ping (/readyz, store_up) answers at once over a connection of its
    own, where it waited for the pool past its 2 s deadline and read as Redis down."""
    pool = aioredis.BlockingConnectionPool.from_url(redis_server.url, max_connections=2)
    client = aioredis.Redis.from_pool(pool)
    store = RedisStore(client, PREFIX, owns_client=True)
    busy = [asyncio.create_task(client.blpop([f"{PREFIX}:never:{i}"], timeout=3)) for i in (1, 2)]
    try:

        async def all_in_use() -> bool:
            """both connections of the pool are taken by the blocking reads"""
            return len(pool._in_use_connections) == 2  # type: ignore[attr-defined]

        await eventually(all_in_use, within=3.0)
        await asyncio.wait_for(store.ping(), 2.0)
        assert not any(task.done() for task in busy)  # the pool was still all in use
    finally:
        await asyncio.gather(*busy, return_exceptions=True)  # their reads time out
        await store.close()


async def test_the_ping_says_when_redis_is_gone(redis_server: Any) -> None:
    """The ping's own connections still tell a stopped Redis: MonitorError, not an answer."""
    store = RedisStore.from_url(redis_server.url, PREFIX)
    try:
        await store.ping()
        redis_server.stop()
        with pytest.raises(MonitorError):
            await asyncio.wait_for(store.ping(), 5.0)
    finally:
        await store.close()


async def test_a_redis_refusing_the_start_ping_is_left_with_no_connection(
    redis_server: Any, tmp_path: Path
) -> None:
    """When Redis answers the start-up ping with an error (here a user not allowed PING),
    the daemon stops with a ConfigError and closes every connection it opened, the ping's
    own included."""
    admin = aioredis.from_url(redis_server.url)
    try:
        await admin.execute_command(
            "ACL", "SETUSER", "np", "on", ">x", "~*", "&*", "+@all", "-ping"
        )
        cfg = tmp_path / "monitor.yml"
        url = f"redis://np:x@127.0.0.1:{redis_server.port}/0"
        cfg.write_text(f"feeds: []\nredis: {{url: '{url}', prefix: nm-acl}}\n")
        (tmp_path / "rules").mkdir()
        with pytest.raises(ConfigError, match="cannot reach Redis"):
            await open_store(load_config(cfg))
        clients = await admin.execute_command("CLIENT", "LIST")
    finally:
        await admin.aclose()
    assert len(clients.splitlines()) == 1  # this test's own connection only
