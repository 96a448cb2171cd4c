"""The store interface every backend implements (SQLite embedded, Redis shared).

Promises of every store:
- Feed state (validators, schedule, error count) survives a restart.
- ``record`` is atomic: the articles' seen-marks, the hits, and one pending delivery per
  (hit, sink) are written together or not at all. A hit id already recorded is not recorded
  again (one alert per rule and story), and gets no second delivery.
- A pending delivery stays until ``ack`` (sink accepted) or ``dead`` (attempts exhausted);
  ``due`` hands out the ones whose next attempt time has come.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Protocol

from monitor.hit import Hit

# A stored throttle window's end as the stores write it (``repr`` of a timestamp). Redis's
# script (monitor.store.redis.OPEN_WINDOW) reads the same grammar.
_WINDOW_END = re.compile(r"[0-9]+(?:\.[0-9]+)?")


def window_end(value: str | None) -> float:
    """The end of a stored throttle window; anything but a plain finite decimal number
    (unset, garbage, ``inf``, hex) counts as a window long past, in every store alike."""
    if value is None or not _WINDOW_END.fullmatch(value):
        return 0.0
    end = float(value)
    return end if math.isfinite(end) else 0.0


@dataclass(slots=True)
class FeedState:
    """What we remember of a feed between polls and across restarts."""

    etag: str | None = None
    last_modified: str | None = None
    next_poll: float = 0.0  # unix time
    errors: int = 0  # consecutive errors
    last_status: int | None = None
    last_error: str | None = None
    disabled: bool = False
    # Scheduler bookkeeping (publishing rate, redirects seen, server hints): JSON-able data
    # the stores keep as one blob, so the scheduler can grow without schema changes.
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Pending:
    """A hit waiting for one sink."""

    sink: str
    hit_id: str
    body: bytes
    attempts: int  # attempts already made
    next_at: float  # unix time of the next attempt
    last_error: str | None = None


class Store(Protocol):
    """Feed state, seen articles and stories, hits, and the per-sink delivery outbox."""

    async def ping(self) -> None:
        """Raise if the store cannot be reached."""

    async def close(self) -> None:
        """Release connections; pending work stays stored."""

    async def get_feed(self, url: str) -> FeedState | None:
        """The stored state of the feed at ``url``, or None when never seen."""

    async def put_feed(self, url: str, state: FeedState) -> None:
        """Store the feed's state."""

    async def claim_feed(self, url: str, owner: str, ttl: float) -> bool:
        """Take the feed for one poll; False when another replica holds it."""

    async def release_feed(self, url: str, owner: str) -> None:
        """Give the feed back after a poll."""

    async def unseen(self, keys: list[str]) -> set[str]:
        """The subset of article keys not marked seen yet."""

    async def record(self, keys: list[str], hits: list[Hit]) -> list[Hit]:
        """Mark ``keys`` seen and record ``hits`` with their deliveries, atomically.

        Returns the hits that were new. A hit id recorded before gets no new deliveries; its
        record is renewed, so a story whose copies keep coming alerts once.
        """

    async def hits(self, limit: int = 100) -> list[bytes]:
        """The most recent hit bodies, newest last (for tests, the CLI and backtests)."""

    async def due(self, sink: str, now: float, limit: int = 100) -> list[Pending]:
        """Pending deliveries of ``sink`` whose next attempt is due, oldest first."""

    async def ack(self, sink: str, hit_id: str) -> None:
        """The sink accepted the hit: forget the pending delivery."""

    async def retry(
        self, sink: str, hit_id: str, attempts: int, next_at: float, error: str
    ) -> None:
        """Schedule another attempt."""

    async def dead(self, sink: str, hit_id: str, error: str) -> None:
        """Attempts exhausted: move the delivery to the sink's dead letters."""

    async def dead_letters(self, sink: str) -> list[Pending]:
        """The dead deliveries of ``sink``."""

    async def replay(self, sink: str, hit_ids: list[str] | None, now: float) -> int:
        """Move dead deliveries (all, or those ids) back to pending, due now; returns count."""

    async def pending_count(self, sink: str) -> int:
        """How many deliveries wait for ``sink`` (due or not)."""

    async def pending(self, sink: str, limit: int = 1000) -> list[Pending]:
        """Pending deliveries of ``sink`` by next attempt, without leasing them (for the CLI)."""

    async def get_state(self, key: str) -> str | None:
        """A small named value that survives restarts (sink disabled marks, throttle windows)."""

    async def put_state(self, key: str, value: str | None) -> None:
        """Set (or, with None, delete) a small named value."""

    async def open_window(self, key: str, until: float, now: float) -> float | None:
        """Open the window ``key`` (a small named value) until ``until``, unless one is
        still open at ``now``: None when this call opened it, else when the open one ends.
        Atomic, so of several replicas sharing the store only one opens a given window."""

    async def close_window(self, key: str, until: float) -> None:
        """Close the window ``key`` if it is still the one opened until ``until``."""

    # -- stories ---------------------------------------------------------------------------

    async def link_stories(
        self, items: list[tuple[int, str]], now: float, window: float
    ) -> list[str]:
        """The story of each ``(fingerprint, story)``, atomically across replicas.

        An item whose SimHash fingerprint is near one recorded within the last ``window``
        seconds (earlier items of the same call included) joins that story; otherwise its
        own ``story`` is recorded for it. Returns one story id per item, in order.
        """
