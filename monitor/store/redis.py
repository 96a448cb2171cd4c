"""The shared store: the same state in Redis, so several replicas can split the work.

Promises (beyond those of :mod:`monitor.store.base`):
- ``record`` is one Lua script, so it is atomic across replicas: a hit id is recorded,
  appended to the stream ``P:hits`` (field ``hit``) and published on ``P:hits:<rule-id>`` and
  on the hit's channels exactly once, together with its pending deliveries and the seen
  marks. The script checks everything that could fail before its first write (Redis does not
  roll a failed script back), so an error leaves nothing half-written.
- ``claim_feed`` is a lease with a TTL (``SET NX PX``): one replica polls a feed at a time,
  and a dead replica's claim expires. The holder may renew it by claiming again.
- Deliveries use one consumer group per sink on ``P:hits`` (``XACK`` after success,
  ``XAUTOCLAIM`` for entries a dead consumer held) with a persistent retry schedule beside
  the PEL; ``due`` leases what it hands out for ``lease`` seconds, so two replicas never
  deliver the same hit at once, and a dead replica's deliveries come due again for the
  others when the lease runs out. See :mod:`monitor.store.redis_outbox`.
- ``ping`` raises :class:`MonitorError` when Redis cannot be reached; other methods let
  ``redis.exceptions.RedisError`` through (the caller decides whether to retry).
- Works with clients made with or without ``decode_responses``.

Key layout (``P`` is the prefix):
    P:hits              stream, fields ``hit`` = hit JSON, ``id``, ``at``, ``sinks`` (JSON
                        list); trimmed near ``stream_maxlen`` but never past a sink group's
                        unread entries; consumer group ``sink:<name>`` per sink
    P:hits:<rule-id>    pub/sub channel (and each of the hit's channels, names as written)
    P:feed:<urlhash>    hash: url, etag, last_modified, next_poll, errors, last_status, ...
    P:lock:<urlhash>    string: the owner polling the feed (PX ttl)
    P:seen:<key>        string "1", expires ``seen_ttl`` (default 30 days) after a feed
                        last listed the entry
    P:hit:<hit-id>      string "1": hit recorded, expires ``hit_ttl`` (default 90 days)
                        after the story was last met
    P:sched:<sink>      zset: hit id -> next attempt (unix time; pushed by a lease)
    P:entry:<sink>      hash: hit id -> its stream entry id (still in the group's PEL)
    P:dead:<sink>       zset: hit id -> time it died
    P:attempts:<sink>   hash: hit id -> attempts made
    P:errors:<sink>     hash: hit id -> last error
    P:bodies:<sink>     hash: hit id -> hit JSON; lives exactly as long as the delivery does
                        (no TTL, so a dead letter kept for months can still be replayed)
    P:state             hash: small named values (sink disabled marks, throttle windows)
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError
from redis.typing import EncodableT, FieldT

from monitor.errors import MonitorError
from monitor.hit import Hit
from monitor.simhash import MAX_DISTANCE, to_hex
from monitor.store.base import FeedState, Pending, window_end
from monitor.store.redis_outbox import RedisOutbox

DAY = 86_400.0

# ARGV: prefix, maxlen, seen_ttl_ms, hit_ttl_ms, now, hard_cap, n_keys, keys...,
#       n_hits, then per hit: id, rule, body, n_sinks, sinks..., n_channels, channels...
# Returns the ids recorded. Keys are built from the prefix inside the script (one Redis, not
# a cluster: the stream and the per-sink keys could not share a slot anyway).
RECORD = """
local p, maxlen, seen_ttl, hit_ttl, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local hard_cap = ARGV[6]
local i = 7
local function list()
  local n = tonumber(ARGV[i]); i = i + 1
  local out = {}
  for j = 1, n do out[j] = ARGV[i]; i = i + 1 end
  return out
end
local keys = list()
local n_hits = tonumber(ARGV[i]); i = i + 1
local hits = {}
for h = 1, n_hits do
  local hit = {id = ARGV[i], rule = ARGV[i + 1], body = ARGV[i + 2]}
  i = i + 3
  hit.sinks = list()
  hit.channels = list()
  hits[h] = hit
end

-- Phase 1: decide and check, without writing: a script error does not undo earlier writes.
local function expect(key, want)
  local got = redis.call('TYPE', key)['ok']
  if got ~= 'none' and got ~= want then
    error('WRONGTYPE ' .. key .. ' is a ' .. got .. ', expected a ' .. want)
  end
end
expect(p .. ':hits', 'stream')
local new, taken, known = {}, {}, {}
for _, hit in ipairs(hits) do
  if not taken[hit.id] and redis.call('EXISTS', p .. ':hit:' .. hit.id) == 0 then
    taken[hit.id] = true
    for _, sink in ipairs(hit.sinks) do
      if sink == '' then error('empty sink name in hit ' .. hit.id) end
    end
    new[#new + 1] = hit
  elseif not taken[hit.id] then
    known[#known + 1] = hit.id
  end
end

-- Trim by MAXLEN only while no sink group lags that far behind; else keep what it has not
-- read (MINID at the slowest group's last-delivered id). See monitor.store.redis_outbox.
local function older(a, b)
  local am, as = string.match(a, '(%d+)-(%d+)')
  local bm, bs = string.match(b, '(%d+)-(%d+)')
  if tonumber(am) ~= tonumber(bm) then return tonumber(am) < tonumber(bm) end
  return tonumber(as) < tonumber(bs)
end
local trim = {'MAXLEN', '~', maxlen}
local groups = redis.pcall('XINFO', 'GROUPS', p .. ':hits')
if type(groups) == 'table' and not groups.err then
  local slowest, lagging = nil, false
  for _, g in ipairs(groups) do
    local info = {}
    for j = 1, #g, 2 do info[g[j]] = g[j + 1] end
    if string.sub(info['name'], 1, 5) == 'sink:' then
      local last = info['last-delivered-id']
      if not info['lag'] or info['lag'] + #new >= tonumber(maxlen) then lagging = true end
      if slowest == nil or older(last, slowest) then slowest = last end
    end
  end
  if lagging then trim = {'MINID', '~', slowest} end
end

-- Phase 2: write.
-- A hit met again (another copy of its story, an entry seen again) is remembered for hit_ttl
-- from now: while copies keep coming, the story keeps alerting once.
for _, id in ipairs(known) do redis.call('PEXPIRE', p .. ':hit:' .. id, hit_ttl) end
local ids = {}
for _, hit in ipairs(new) do
  redis.call('SET', p .. ':hit:' .. hit.id, '1', 'PX', hit_ttl)
  local fields = {'hit', hit.body, 'id', hit.id, 'at', now}
  if #hit.sinks > 0 then
    for _, sink in ipairs(hit.sinks) do
      -- Created before the XADD, at '$': a sink's group sees every hit routed to it.
      redis.pcall('XGROUP', 'CREATE', p .. ':hits', 'sink:' .. sink, '$', 'MKSTREAM')
      redis.call('HDEL', p .. ':attempts:' .. sink, hit.id)
      redis.call('HDEL', p .. ':errors:' .. sink, hit.id)
    end
    fields[#fields + 1] = 'sinks'
    fields[#fields + 1] = cjson.encode(hit.sinks)
  end
  redis.call('XADD', p .. ':hits', trim[1], trim[2], trim[3], '*', unpack(fields))
  redis.call('PUBLISH', p .. ':hits:' .. hit.rule, hit.body)
  for _, channel in ipairs(hit.channels) do redis.call('PUBLISH', channel, hit.body) end
  ids[#ids + 1] = hit.id
end
for _, key in ipairs(keys) do redis.call('SET', p .. ':seen:' .. key, '1', 'PX', seen_ttl) end
-- A group nobody reads any more (a sink removed from the config, a disabled sink) must not
-- hold the stream forever: past hard_cap entries it is trimmed regardless.
if trim[1] == 'MINID' and #new > 0 then
  redis.call('XTRIM', p .. ':hits', 'MAXLEN', '~', hard_cap)
end
return ids
"""

# KEYS: seen marks; ARGV: ttl_ms. Renews the marks that exist; returns the (1-based)
# positions of those that do not.
TOUCH = """
local missing = {}
for i, key in ipairs(KEYS) do
  if redis.call('PEXPIRE', key, ARGV[1]) == 0 then missing[#missing + 1] = i end
end
return missing
"""

# KEYS: lock; ARGV: owner, ttl_ms. Take the lock, or renew it when we hold it already.
CLAIM = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if holder then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""

# KEYS: lock; ARGV: owner. Delete the lock only while we hold it.
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


# KEYS: state hash; ARGV: field, until, now. Open the window unless one is open at now;
# returns the open one's end, or false when this call opened it. A stored end is read as
# monitor.store.base.window_end reads it: a plain finite decimal number, else long past.
OPEN_WINDOW = """
local open = redis.call('HGET', KEYS[1], ARGV[1])
local plain = open and (string.match(open, '^%d+$') or string.match(open, '^%d+%.%d+$'))
local ends = plain and tonumber(open)
if ends and ends < math.huge and ends > tonumber(ARGV[3]) then return open end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return false
"""

# KEYS: state hash; ARGV: field, until. Close the window only if it is still ours.
CLOSE_WINDOW = """
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then redis.call('HDEL', KEYS[1], ARGV[1]) end
return 0
"""


class RedisStore:
    """The :class:`~monitor.store.base.Store` in Redis, shared by every replica."""

    def __init__(
        self,
        client: aioredis.Redis,
        prefix: str = "news-monitor",
        *,
        stream_maxlen: int = 100_000,
        seen_ttl: float = 30 * DAY,
        hit_ttl: float = 90 * DAY,
        lease: float = 120.0,
        owns_client: bool = False,
        consumer: str | None = None,
        stream_hard_cap: int | None = None,
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.stream_maxlen = stream_maxlen
        # Unread entries are kept past stream_maxlen (a sink that lags loses nothing), but
        # not without bound: a consumer group that no replica reads any more would otherwise
        # grow the stream forever.
        self.stream_hard_cap = stream_hard_cap or max(10 * stream_maxlen, 1_000_000)
        self.seen_ttl = seen_ttl
        self.hit_ttl = hit_ttl
        self.lease = lease
        self.owns_client = owns_client
        self._pinger: aioredis.Redis | None = None  # see ping
        self._record = client.register_script(RECORD)
        self._touch = client.register_script(TOUCH)
        self._claim = client.register_script(CLAIM)
        self._release = client.register_script(RELEASE)
        self._open_window = client.register_script(OPEN_WINDOW)
        self._close_window = client.register_script(CLOSE_WINDOW)
        self.outbox = RedisOutbox(client, prefix, lease=lease, consumer=consumer)

    @classmethod
    def from_url(cls, url: str, prefix: str = "news-monitor", **options: Any) -> RedisStore:
        """A store on its own client for ``url``; ``close`` closes that client."""
        return cls(aioredis.Redis.from_url(url), prefix, owns_client=True, **options)

    def key(self, *parts: str) -> str:
        """``prefix:part:part…``."""
        return ":".join((self.prefix, *parts))

    # -- lifecycle -------------------------------------------------------------------------

    async def ping(self) -> None:
        """Raise :class:`MonitorError` when Redis does not answer.

        The ping goes over connections of its own (two at most), not the client's pool: a
        pool whose every connection is busy with work, callers queueing for one, is a busy
        Redis, not a lost one, and must not make the daemon unready (``/readyz`` and the
        ``store_up`` metric ask with a 2 s deadline).
        """
        if self._pinger is None:
            pool = self.client.connection_pool
            self._pinger = aioredis.Redis.from_pool(  # closing it closes its pool
                aioredis.BlockingConnectionPool(
                    connection_class=pool.connection_class,
                    max_connections=2,
                    **pool.connection_kwargs,
                )
            )
        try:
            await self._pinger.ping()
        except (RedisError, OSError) as exc:
            raise MonitorError(f"redis unreachable: {exc}") from exc

    async def close(self) -> None:
        """Close the client if this store made it (``from_url``); a passed-in one stays open.
        The ping's own connections are closed either way."""
        pinger, self._pinger = self._pinger, None
        if pinger is not None:
            await pinger.aclose()
        if self.owns_client:
            self.owns_client = False  # closing twice is harmless
            await self.client.aclose()

    # -- feeds -----------------------------------------------------------------------------

    async def get_feed(self, url: str) -> FeedState | None:
        """The stored state of the feed at ``url``, or None when never seen."""
        raw = await self.client.hgetall(self.key("feed", _url_hash(url)))
        if not raw:
            return None
        return _feed_state({_str(k): _str(v) for k, v in raw.items()})

    async def put_feed(self, url: str, state: FeedState) -> None:
        """Store the feed's state (replacing what was there)."""
        key = self.key("feed", _url_hash(url))
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.delete(key)
            pipe.hset(key, mapping=_feed_fields(url, state))
            await pipe.execute()

    async def claim_feed(self, url: str, owner: str, ttl: float) -> bool:
        """Take the feed for ``ttl`` seconds; False while another owner holds it."""
        lock = self.key("lock", _url_hash(url))
        return bool(await self._claim(keys=[lock], args=[owner, _ms(ttl)]))

    async def release_feed(self, url: str, owner: str) -> None:
        """Give the feed back, only if ``owner`` still holds it."""
        await self._release(keys=[self.key("lock", _url_hash(url))], args=[owner])

    # -- seen and hits ---------------------------------------------------------------------

    async def unseen(self, keys: list[str]) -> set[str]:
        """The subset of ``keys`` not marked seen yet; the marks of the others are renewed
        for ``seen_ttl`` (one script, one round trip).

        So ``seen_ttl`` runs from the last time a feed listed the entry (every feed is
        fetched in full at least daily, see :func:`monitor.schedule.refetch_due`), not from
        the first: an entry a slow feed lists for months is not taken for new every
        ``seen_ttl``, cleaned, matched and (once its hit is forgotten) alerted again.
        """
        wanted = list(dict.fromkeys(keys))
        if not wanted:
            return set()
        missing = await self._touch(
            keys=[self.key("seen", k) for k in wanted], args=[_ms(self.seen_ttl)]
        )
        return {wanted[int(i) - 1] for i in missing}

    async def record(self, keys: list[str], hits: list[Hit]) -> list[Hit]:
        """Mark ``keys`` seen, record, stream and publish the new ``hits``, in one script.

        A hit id recorded before (or repeated in ``hits``) is not streamed, published or
        delivered again; its mark is renewed (it lives ``hit_ttl`` from now).
        """
        args: list[str | bytes | int] = [
            self.prefix,
            self.stream_maxlen,
            _ms(self.seen_ttl),
            _ms(self.hit_ttl),
            repr(time.time()),
            self.stream_hard_cap,
            len(keys),
            *keys,
            len(hits),
        ]
        for hit in hits:
            args += [hit.id, hit.rule_id, hit.body]
            args += _counted(hit.sinks) + _counted(hit.channels)
        recorded = {_str(hid) for hid in await self._record(args=args)}
        new: dict[str, Hit] = {}
        for hit in hits:
            if hit.id in recorded:
                new.setdefault(hit.id, hit)
        return list(new.values())

    async def hits(self, limit: int = 100) -> list[bytes]:
        """The ``limit`` most recent hit bodies of the stream, newest last."""
        entries = await self.client.xrevrange(self.key("hits"), count=limit)
        bodies = [_field(fields or {}, "hit") for _, fields in entries or []]
        return [_bytes(b) for b in reversed(bodies) if b is not None]

    # -- deliveries ------------------------------------------------------------------------

    async def due(self, sink: str, now: float, limit: int = 100) -> list[Pending]:
        """Due deliveries of ``sink``, oldest first; each is leased for ``lease`` seconds."""
        return await self.outbox.due(sink, now, limit)

    async def pending(self, sink: str, limit: int = 1000) -> list[Pending]:
        """Pending deliveries of ``sink`` by next attempt, without leasing them."""
        return await self.outbox.pending(sink, limit)

    async def ack(self, sink: str, hit_id: str) -> None:
        """The sink accepted the hit: forget the pending delivery (and XACK its entry)."""
        await self.outbox.ack(sink, hit_id)

    async def retry(
        self, sink: str, hit_id: str, attempts: int, next_at: float, error: str
    ) -> None:
        """Schedule another attempt at ``next_at``; ``attempts`` is the count made so far."""
        await self.outbox.retry(sink, hit_id, attempts, next_at, error)

    async def dead(self, sink: str, hit_id: str, error: str) -> None:
        """Move the delivery to the dead letters, counting the attempt that just failed.

        The dead letter's ``next_at`` becomes the time it died.
        """
        await self.outbox.dead(sink, hit_id, error)

    async def dead_letters(self, sink: str) -> list[Pending]:
        """The dead deliveries of ``sink``, in the order they died."""
        return await self.outbox.dead_letters(sink)

    async def replay(self, sink: str, hit_ids: list[str] | None, now: float) -> int:
        """Move dead deliveries (all, or those ids) back to pending, due ``now``, attempts 0."""
        return await self.outbox.replay(sink, hit_ids, now)

    async def pending_count(self, sink: str) -> int:
        """How many deliveries wait for ``sink`` (due or not, leased or not)."""
        return await self.outbox.count(sink)

    async def get_state(self, key: str) -> str | None:
        """A small named value (sink disabled marks, throttle windows); None when unset."""
        value = await self.client.hget(self.key("state"), key)
        return None if value is None else _str(value)

    async def put_state(self, key: str, value: str | None) -> None:
        """Set (or, with None, delete) a small named value."""
        if value is None:
            await self.client.hdel(self.key("state"), key)
        else:
            await self.client.hset(self.key("state"), key, value)

    async def open_window(self, key: str, until: float, now: float) -> float | None:
        """See :meth:`monitor.store.base.Store.open_window` (one script: atomic)."""
        found = await self._open_window(
            keys=[self.key("state")], args=[key, repr(until), repr(now)]
        )
        return None if found is None else window_end(_str(found))

    async def close_window(self, key: str, until: float) -> None:
        """See :meth:`monitor.store.base.Store.close_window`."""
        await self._close_window(keys=[self.key("state")], args=[key, repr(until)])

    # -- stories ---------------------------------------------------------------------------
    # P:story:<band>:<value>  zset: "<16 hex fingerprint><story id>" -> time indexed; entries
    #                         older than the window are trimmed, idle keys expire with it.

    async def link_stories(
        self, items: list[tuple[int, str]], now: float, window: float
    ) -> list[str]:
        """The story of each ``(fingerprint, story)``, in one script (atomic across replicas):
        a near-duplicate's seen within ``window`` seconds, else its own, then indexed."""
        if not items:
            return []
        script = getattr(self, "_link_stories", None)
        if script is None:
            script = self._link_stories = self.client.register_script(LINK_STORIES)
        args: list[str | int] = [self.prefix, repr(now), repr(window), MAX_DISTANCE, len(items)]
        for fp, story in items:
            args += [to_hex(fp), story]
        return [_str(story) for story in await script(args=args)]


def _url_hash(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()[:32]


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def _counted(items: tuple[str, ...]) -> list[str | bytes | int]:
    """``[n, item…]`` of the distinct items, as the record script reads lists."""
    distinct = list(dict.fromkeys(items))
    return [len(distinct), *distinct]


def _str(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _bytes(value: str | bytes) -> bytes:
    return value.encode() if isinstance(value, str) else value


def _field(fields: dict[Any, Any], name: str) -> str | bytes | None:
    value: str | bytes | None = fields.get(name.encode(), fields.get(name))
    return value


def _feed_fields(url: str, state: FeedState) -> dict[FieldT, EncodableT]:
    fields: dict[FieldT, EncodableT] = {
        "url": url,
        "next_poll": repr(state.next_poll),
        "errors": str(state.errors),
        "disabled": "1" if state.disabled else "0",
        "meta": json.dumps(state.meta, separators=(",", ":")),
    }
    optional = {
        "etag": state.etag,
        "last_modified": state.last_modified,
        "last_status": state.last_status,
        "last_error": state.last_error,
    }
    fields.update({k: str(v) for k, v in optional.items() if v is not None})
    return fields


def _feed_state(fields: dict[str, str]) -> FeedState:
    status = fields.get("last_status")
    return FeedState(
        etag=fields.get("etag"),
        last_modified=fields.get("last_modified"),
        next_poll=float(fields.get("next_poll", "0")),
        errors=int(fields.get("errors", "0")),
        last_status=int(status) if status is not None else None,
        last_error=fields.get("last_error"),
        disabled=fields.get("disabled") == "1",
        meta=json.loads(fields.get("meta", "{}")),
    )


# -- stories -------------------------------------------------------------------------------

# ARGV: prefix, now, window, max distance, n, then per item: 16-hex fingerprint, story.
# Mirrors monitor.store.sqlite._link_story: nearest within max distance (ties: smallest
# story id) wins; the fingerprint is indexed under the result unless already there.
LINK_STORIES = """
local p, now, window, maxd = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local function bands(hex)
  return {tonumber(hex:sub(13, 16), 16), tonumber(hex:sub(9, 12), 16),
          tonumber(hex:sub(5, 8), 16), tonumber(hex:sub(1, 4), 16)}
end
local function popcount(x)
  local c = 0
  while x ~= 0 do x = bit.band(x, x - 1); c = c + 1 end
  return c
end
local function dist(a, b)
  local d = 0
  for i = 1, 4 do d = d + popcount(bit.bxor(a[i], b[i])) end
  return d
end
local out = {}
for j = 1, tonumber(ARGV[5]) do
  local hex, story = ARGV[4 + 2 * j], ARGV[5 + 2 * j]
  local bs = bands(hex)
  local keys = {}
  local best, best_story = maxd + 1, nil
  for i = 1, 4 do
    keys[i] = p .. ':story:' .. (i - 1) .. ':' .. bs[i]
    redis.call('ZREMRANGEBYSCORE', keys[i], '-inf', '(' .. (now - window))
    for _, m in ipairs(redis.call('ZRANGE', keys[i], 0, -1)) do
      local d, s = dist(bs, bands(m:sub(1, 16))), m:sub(17)
      if d < best or (d == best and best_story ~= nil and s < best_story) then
        best, best_story = d, s
      end
    end
  end
  if best_story ~= nil then story = best_story end
  if best ~= 0 then
    for i = 1, 4 do
      redis.call('ZADD', keys[i], now, hex .. story)
      redis.call('EXPIRE', keys[i], math.ceil(window))
    end
  end
  out[j] = story
end
return out
"""
