"""Which feed to poll next: one heap of due times for all feeds, a bounded number in flight.

Promises:

- Feeds wait in one heap of ``(due, order, feed)``, not as one sleeping task each: 100k
  feeds cost 100k small tuples, and the loop sleeps until the earliest feed is due (or a
  poll puts a feed back earlier, or ``stop`` is set).
- ``poll(feed)`` is called for each feed that comes up and answers when to look at the
  feed again (an absolute ``time.time()``), or None to drop it for good (a feed disabled
  after 410 Gone). It decides for itself whether the feed is really due: its stored state
  is the authority, so replicas sharing a store converge on one schedule.
- At most ``limit`` polls run at once; the others stay in the heap, in due order, so a
  burst of due feeds (every feed at start) never becomes a burst of tasks.
- :meth:`run` returns once ``stop`` is set and the polls in flight have finished (cancelled
  instead, it cancels them: they run in its TaskGroup). A poll
  that raises is a bug in ``poll``; it is logged and the feed looked at again after
  ``retry`` seconds, so one bad feed never stops the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import time
from collections.abc import Awaitable, Callable, Sequence
from itertools import count

from monitor.config import FeedConfig
from monitor.logs import get_logger

Poll = Callable[[FeedConfig], Awaitable[float | None]]
MAX_NAP = 60.0  # wake at least this often, in case the wall clock jumped


class FeedScheduler:
    """Calls ``poll`` for each feed when due, ``limit`` at a time, until ``stop``."""

    def __init__(
        self,
        feeds: Sequence[FeedConfig],
        poll: Poll,
        stop: asyncio.Event,
        *,
        limit: int,
        retry: float = 5.0,
    ) -> None:
        self.poll = poll
        self.stop = stop
        self.retry = retry
        self._order = count()
        self._heap: list[tuple[float, int, FeedConfig]] = [
            (0.0, next(self._order), feed) for feed in feeds
        ]
        self._slots = asyncio.Semaphore(max(1, limit))
        self._wake = asyncio.Event()
        self._inflight = 0

    def __len__(self) -> int:
        """Feeds scheduled: waiting in the heap or being polled."""
        return len(self._heap) + self._inflight

    def put(self, due: float, feed: FeedConfig) -> None:
        """Look at ``feed`` again at ``due``. The scheduler puts back each feed it polled;
        a feed put while it is still scheduled is there twice (and polled twice)."""
        heapq.heappush(self._heap, (due, next(self._order), feed))
        self._wake.set()

    async def run(self) -> None:
        """Poll feeds as they come due until ``stop``; then wait for the polls in flight."""
        async with asyncio.TaskGroup() as tg:  # on exit: the polls in flight are awaited
            tg.create_task(self._wake_on_stop())
            while not self.stop.is_set():
                if not self._heap or self._heap[0][0] > time.time():
                    await self._nap()
                    continue
                await self._slots.acquire()
                if self.stop.is_set():
                    self._slots.release()
                    break
                _, _, feed = heapq.heappop(self._heap)
                self._inflight += 1
                tg.create_task(self._one(feed))

    async def _one(self, feed: FeedConfig) -> None:
        try:
            due = await self.poll(feed)
        except Exception as exc:  # poll is meant to catch everything; keep the feed anyway
            get_logger(feed=feed.name).error("poll failed", error=f"{type(exc).__name__}: {exc}")
            due = time.time() + self.retry
        finally:
            self._inflight -= 1
            self._slots.release()
        if due is not None:
            self.put(due, feed)

    async def _nap(self) -> None:
        """Sleep until the first feed is due, a feed is put back, or stop."""
        self._wake.clear()
        delay = MAX_NAP
        if self._heap:
            delay = min(MAX_NAP, max(0.0, self._heap[0][0] - time.time()))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await self._wake.wait()

    async def _wake_on_stop(self) -> None:
        await self.stop.wait()
        self._wake.set()
