"""The Redis outbox: one consumer group per sink on the hit stream ``P:hits``.

How a hit travels (``P`` is the prefix, ``G`` = ``sink:<name>`` is the sink's group):

1. ``record`` (in :mod:`monitor.store.redis`) creates ``G`` at ``$`` if needed and ``XADD``\\ s
   the hit with fields ``hit`` (the JSON), ``id``, ``at`` (record time) and ``sinks`` (JSON list).
2. Every outbox call of a sink first *ingests*: ``XREADGROUP G <consumer> … >`` reads the new
   entries; those routed elsewhere are ``XACK``\\ ed at once, the sink's own enter its schedule
   ``P:sched:<sink>`` (zset hit id → next attempt, due at record time) with a copy of the body
   in ``P:bodies:<sink>`` and the entry id in ``P:entry:<sink>``. The entry stays in the
   group's PEL until the delivery ends.
3. ``due`` hands out scheduled ids whose time has come, pushes each one's score forward by the
   lease (so no other replica takes it meanwhile) and ``XCLAIM``\\ s its entry to the calling
   consumer. Several replicas thus share one sink's work; a dead replica's deliveries come due
   again when their lease lapses.
4. ``ack`` (2xx) removes the id from the schedule and ``XACK``\\ s the entry; ``retry`` moves
   its score to the next attempt; ``dead`` moves it to ``P:dead:<sink>`` (id → time it died)
   and ``XACK``\\ s the entry, keeping the body so ``replay`` can bring it back.
5. A sweep (at most once per lease, from ``due``) runs ``XAUTOCLAIM`` over the group's PEL for
   entries idle longer than the lease that no schedule knows (read by a consumer that died
   before step 2 completed, e.g. an older version) and schedules them now.

Trimming: ``XADD … MAXLEN ~ stream_maxlen`` would drop entries a lagging group has not read
yet, so ``record`` trims by ``MAXLEN ~`` only while every sink group's lag (plus the new
entries) is below the cap, and otherwise by ``MINID ~`` at the slowest group's last-delivered
id. Read entries need no protection: their body lives in ``P:bodies:<sink>`` until acked, so
retries that span days never pin the stream.
"""

from __future__ import annotations

import os
import random
import socket
import time
from typing import Any

import redis.asyncio as aioredis

from monitor.store.base import Pending

# Shared by every outbox script. KEYS[1..7]: stream, sched, entry, bodies, attempts, errors,
# dead. ARGV[1]: group, ARGV[2]: consumer.
PRELUDE = """
local stream, sched, entry, bodies = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local attempts, errors, dead = KEYS[5], KEYS[6], KEYS[7]
local group, consumer = ARGV[1], ARGV[2]
local sink = string.sub(group, 6)

local function fieldmap(flat)
  local out = {}
  for j = 1, #flat, 2 do out[flat[j]] = flat[j + 1] end
  return out
end

local function routed_here(f)
  if not f.sinks then return false end
  for _, s in ipairs(cjson.decode(f.sinks)) do
    if s == sink then return true end
  end
  return false
end

local function schedule(eid, f, score)
  redis.call('ZADD', sched, 'NX', score, f.id)
  redis.call('HSET', bodies, f.id, f.hit)
  redis.call('HSET', entry, f.id, eid)
end

-- Move the group's unread entries into the schedule (or ack them when routed elsewhere).
local function ingest()
  while true do
    local r = redis.pcall('XREADGROUP', 'GROUP', group, consumer, 'COUNT', 500,
                          'STREAMS', stream, '>')
    if type(r) ~= 'table' or r.err or not r[1] then return end
    local entries = r[1][2]
    for _, e in ipairs(entries) do
      local f = fieldmap(e[2])
      if f.id and f.hit and routed_here(f) then
        schedule(e[1], f, f.at or '0')
      else
        redis.call('XACK', stream, group, e[1])
      end
    end
    if #entries < 500 then return end
  end
end

-- The id, score, attempts, error and body of each id in ids (flat, as Python reads them).
local function describe(ids, scores)
  local out = {}
  for j, id in ipairs(ids) do
    out[#out + 1] = id
    out[#out + 1] = scores[j]
    out[#out + 1] = redis.call('HGET', attempts, id)
    out[#out + 1] = redis.call('HGET', errors, id)
    out[#out + 1] = redis.call('HGET', bodies, id)
  end
  return out
end

local function split(flat)
  local ids, scores = {}, {}
  for j = 1, #flat, 2 do
    ids[#ids + 1] = flat[j]
    scores[#scores + 1] = flat[j + 1]
  end
  return ids, scores
end

local function forget(id)
  local eid = redis.call('HGET', entry, id)
  if eid then redis.call('XACK', stream, group, eid) end
  redis.call('HDEL', entry, id)
end
"""

# ARGV[3]: now, ARGV[4]: limit, ARGV[5]: lease score. Due deliveries, leased and claimed.
TAKE = (
    PRELUDE
    + """
ingest()
local ids, scores = split(redis.call('ZRANGEBYSCORE', sched, '-inf', ARGV[3],
                                     'WITHSCORES', 'LIMIT', 0, ARGV[4]))
for _, id in ipairs(ids) do
  redis.call('ZADD', sched, ARGV[5], id)
  local eid = redis.call('HGET', entry, id)
  if eid then redis.pcall('XCLAIM', stream, group, consumer, 0, eid, 'JUSTID') end
end
return describe(ids, scores)
"""
)

# ARGV[3]: which zset to list ('sched' or 'dead'), ARGV[4]: limit (-1 = all). No lease.
LIST = (
    PRELUDE
    + """
ingest()
local key = sched
if ARGV[3] == 'dead' then key = dead end
local last = tonumber(ARGV[4])
if last >= 0 then last = last - 1 end
return describe(split(redis.call('ZRANGE', key, 0, last, 'WITHSCORES')))
"""
)

COUNT = PRELUDE + "\ningest()\nreturn redis.call('ZCARD', sched)\n"

# ARGV[3]: hit id.
ACK = (
    PRELUDE
    + """
ingest()
local id = ARGV[3]
if redis.call('ZREM', sched, id) == 1 then
  forget(id)
  redis.call('HDEL', attempts, id)
  redis.call('HDEL', errors, id)
  redis.call('HDEL', bodies, id)
end
return 0
"""
)

# ARGV[3]: hit id, ARGV[4]: attempts, ARGV[5]: next_at, ARGV[6]: error.
RETRY = (
    PRELUDE
    + """
ingest()
local id = ARGV[3]
if redis.call('ZSCORE', sched, id) then
  redis.call('ZADD', sched, ARGV[5], id)
  redis.call('HSET', attempts, id, ARGV[4])
  redis.call('HSET', errors, id, ARGV[6])
end
return 0
"""
)

# ARGV[3]: hit id, ARGV[4]: now, ARGV[5]: error.
DEAD = (
    PRELUDE
    + """
ingest()
local id = ARGV[3]
if redis.call('ZREM', sched, id) == 1 then
  forget(id)
  redis.call('ZADD', dead, ARGV[4], id)
  redis.call('HINCRBY', attempts, id, 1)
  redis.call('HSET', errors, id, ARGV[5])
end
return 0
"""
)

# ARGV[3]: now, ARGV[4…]: ids (none = all dead letters). Returns how many moved.
REPLAY = (
    PRELUDE
    + """
local ids = {}
if #ARGV == 3 then
  ids = redis.call('ZRANGE', dead, 0, -1)
else
  for j = 4, #ARGV do ids[#ids + 1] = ARGV[j] end
end
local moved = 0
for _, id in ipairs(ids) do
  if redis.call('ZREM', dead, id) == 1 then
    redis.call('ZADD', sched, ARGV[3], id)
    redis.call('HSET', attempts, id, 0)
    moved = moved + 1
  end
end
return moved
"""
)

# ARGV[3]: min idle ms, ARGV[4]: now. XAUTOCLAIM the PEL; schedule entries nobody schedules.
SWEEP = (
    PRELUDE
    + """
ingest()
local cursor, found = '0-0', 0
for _ = 1, 20 do
  local r = redis.pcall('XAUTOCLAIM', stream, group, consumer, ARGV[3], cursor, 'COUNT', 100)
  if type(r) ~= 'table' or r.err then return found end
  cursor = r[1]
  for _, e in ipairs(r[2]) do
    local f = fieldmap(e[2] or {})
    if f.id and f.hit and not redis.call('ZSCORE', sched, f.id)
       and not redis.call('ZSCORE', dead, f.id) then
      schedule(e[1], f, ARGV[4])
      found = found + 1
    elseif not f.id then
      redis.call('XACK', stream, group, e[1])
    end
  end
  if cursor == '0-0' then return found end
end
return found
"""
)


def consumer_name() -> str:
    """A consumer name unique to this process: host, pid and a random tag."""
    return f"{socket.gethostname()}:{os.getpid()}:{random.getrandbits(32):08x}"


class RedisOutbox:
    """The delivery half of :class:`~monitor.store.redis.RedisStore` (see the module doc)."""

    def __init__(
        self, client: aioredis.Redis, prefix: str, *, lease: float, consumer: str | None = None
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.lease = lease
        self.consumer = consumer or consumer_name()
        self._swept: dict[str, float] = {}
        self._take = client.register_script(TAKE)
        self._list = client.register_script(LIST)
        self._count = client.register_script(COUNT)
        self._ack = client.register_script(ACK)
        self._retry = client.register_script(RETRY)
        self._dead = client.register_script(DEAD)
        self._replay = client.register_script(REPLAY)
        self._sweep = client.register_script(SWEEP)

    def _keys(self, sink: str) -> list[str]:
        kinds = ("sched", "entry", "bodies", "attempts", "errors", "dead")
        return [f"{self.prefix}:hits", *(f"{self.prefix}:{k}:{sink}" for k in kinds)]

    def _args(self, sink: str, *rest: Any) -> list[Any]:
        return [f"sink:{sink}", self.consumer, *rest]

    async def due(self, sink: str, now: float, limit: int) -> list[Pending]:
        """Due deliveries, oldest first, leased to this consumer (sweeping the PEL now and then)."""
        if time.monotonic() - self._swept.get(sink, -1e18) >= self.lease:
            self._swept[sink] = time.monotonic()
            await self.sweep(sink, now)
        args = self._args(sink, repr(now), limit, repr(now + self.lease))
        return pendings(sink, await self._take(keys=self._keys(sink), args=args))

    async def sweep(self, sink: str, now: float) -> int:
        """Schedule PEL entries idle longer than the lease that no schedule knows."""
        args = self._args(sink, int(self.lease * 1000), repr(now))
        return int(await self._sweep(keys=self._keys(sink), args=args))

    async def pending(self, sink: str, limit: int) -> list[Pending]:
        """Pending deliveries by next attempt, without leasing them."""
        raw = await self._list(keys=self._keys(sink), args=self._args(sink, "sched", limit))
        return pendings(sink, raw)

    async def dead_letters(self, sink: str) -> list[Pending]:
        """Dead letters in the order they died."""
        raw = await self._list(keys=self._keys(sink), args=self._args(sink, "dead", -1))
        return pendings(sink, raw)

    async def count(self, sink: str) -> int:
        """How many deliveries wait for ``sink``."""
        return int(await self._count(keys=self._keys(sink), args=self._args(sink)))

    async def ack(self, sink: str, hit_id: str) -> None:
        """Forget the delivery and XACK its entry."""
        await self._ack(keys=self._keys(sink), args=self._args(sink, hit_id))

    async def retry(
        self, sink: str, hit_id: str, attempts: int, next_at: float, error: str
    ) -> None:
        """Schedule another attempt at ``next_at``."""
        args = self._args(sink, hit_id, attempts, repr(next_at), error)
        await self._retry(keys=self._keys(sink), args=args)

    async def dead(self, sink: str, hit_id: str, error: str) -> None:
        """Move the delivery to the dead letters and XACK its entry."""
        args = self._args(sink, hit_id, repr(time.time()), error)
        await self._dead(keys=self._keys(sink), args=args)

    async def replay(self, sink: str, hit_ids: list[str] | None, now: float) -> int:
        """Dead letters (all, or those ids) back into the schedule, due ``now``."""
        if hit_ids is not None and not hit_ids:
            return 0
        args = self._args(sink, repr(now), *(hit_ids or []))
        return int(await self._replay(keys=self._keys(sink), args=args))


def pendings(sink: str, raw: list[Any]) -> list[Pending]:
    """Pendings from a script's flat answer, skipping any without a body."""
    out = []
    for j in range(0, len(raw), 5):
        hid, score, attempts, error, body = raw[j : j + 5]
        if body is None:
            continue
        err = _str(error) if error is not None else None
        out.append(Pending(sink, _str(hid), _bytes(body), int(attempts or 0), float(score), err))
    return out


def _str(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _bytes(value: str | bytes) -> bytes:
    return value.encode() if isinstance(value, str) else value
