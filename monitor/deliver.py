"""Delivery loops: each sink works through its own pending hits in the store.

Promises: a hit is acknowledged for a sink only after that sink accepted it; failures are
retried on the Standard Webhooks schedule (≈5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h after the
first attempt) with ±10 % jitter, or after the sink's ``Retry-After``; after the last attempt
the hit moves to the sink's dead letters; a 410 disables the sink until the config changes.
The schedule lives in the store, so retries survive restarts; one slow sink never delays
another (each has its own loop).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime

from monitor.errors import DeliveryError
from monitor.hit import Hit
from monitor.logs import get_logger
from monitor.metrics import Metrics
from monitor.sinks.base import Sink
from monitor.store.base import Pending, Store

SCHEDULE = (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)
IDLE_WAIT = 1.0
BATCH = 50


def next_delay(
    attempts: int,
    err: DeliveryError,
    schedule: tuple[float, ...] = SCHEDULE,
    rand: Callable[[], float] = random.random,
) -> float | None:
    """Seconds until attempt ``attempts + 1``, or None when attempts are exhausted."""
    if attempts > len(schedule):
        return None
    if err.retry_after is not None:
        return err.retry_after
    return schedule[attempts - 1] * (0.9 + 0.2 * rand())


def hit_from_pending(p: Pending) -> Hit:
    """Rebuild the Hit a sink needs from the stored body."""
    data = json.loads(p.body)
    return Hit(p.hit_id, data["rule"]["id"], data.get("story", ""), p.body)


class Deliverer:
    """Runs one sink's delivery loop against the store."""

    def __init__(
        self, sink: Sink, store: Store, metrics: Metrics, schedule: tuple[float, ...] = SCHEDULE
    ) -> None:
        self.sink = sink
        self.schedule = schedule
        self.store = store
        self.metrics = metrics
        self.wake = asyncio.Event()
        self.disabled: str | None = None
        self.log = get_logger(sink=sink.name)

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until ``stop`` is set, then make one last pass over what is due."""
        while not stop.is_set() and self.disabled is None:
            delivered = await self.pass_once()
            if not delivered:
                await self._sleep(stop)
        if self.disabled is None:
            await self.pass_once()

    async def _sleep(self, stop: asyncio.Event) -> None:
        self.wake.clear()
        waits = [asyncio.ensure_future(self.wake.wait()), asyncio.ensure_future(stop.wait())]
        try:
            await asyncio.wait(waits, timeout=IDLE_WAIT, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()

    async def pass_once(self) -> int:
        """Try every due delivery once; returns how many were attempted."""
        try:
            due = await self.store.due(self.sink.name, time.time(), BATCH)
        except Exception as exc:  # store outage: log, keep looping, retry later
            self.log.warning("store unavailable", error=str(exc))
            return 0
        for pending in due:
            if self.disabled is not None:
                break
            try:
                await self.attempt(pending)
            except Exception as exc:  # a store blip mid-attempt: the lease brings it back
                self.log.error(
                    "delivery attempt failed",
                    hit=pending.hit_id,
                    error=f"{type(exc).__name__}: {exc}",
                )
        if due:
            with contextlib.suppress(Exception):
                count = await self.store.pending_count(self.sink.name)
                self.metrics.pending.labels(self.sink.name).set(count)
        return len(due)

    async def attempt(self, p: Pending) -> None:
        """One attempt of one delivery, with its outcome written to the store."""
        hit = hit_from_pending(p)
        try:
            await self.sink.send(hit)
        except DeliveryError as err:
            await self._failed(p, err)
            return
        await self.store.ack(self.sink.name, p.hit_id)
        self.metrics.deliveries.labels(self.sink.name, "ok").inc()
        self.metrics.delivery_seconds.labels(self.sink.name).observe(_age(hit))
        self.log.info("delivered", hit=p.hit_id, rule=hit.rule_id, attempts=p.attempts + 1)

    async def _failed(self, p: Pending, err: DeliveryError) -> None:
        attempts = p.attempts + 1
        self.metrics.deliveries.labels(self.sink.name, "error").inc()
        if err.disable:
            self.disabled = str(err)
            self.metrics.sink_disabled.labels(self.sink.name).set(1)
            self.log.error(
                "sink disabled: it answered 410 Gone; fix the config and restart", hit=p.hit_id
            )
            await self.store.retry(self.sink.name, p.hit_id, p.attempts, time.time(), str(err))
            return
        delay = None if err.permanent else next_delay(attempts, err, self.schedule)
        if delay is None:
            await self.store.dead(self.sink.name, p.hit_id, str(err))
            self.metrics.deliveries.labels(self.sink.name, "dead").inc()
            self.log.error(
                "delivery failed for good", hit=p.hit_id, attempts=attempts, error=str(err)
            )
            return
        await self.store.retry(self.sink.name, p.hit_id, attempts, time.time() + delay, str(err))
        self.log.warning(
            "delivery failed; will retry",
            hit=p.hit_id,
            attempts=attempts,
            retry_in=round(delay, 1),
            error=str(err),
        )


def _age(hit: Hit) -> float:
    try:
        detected = datetime.fromisoformat(hit.data()["detected_at"].replace("Z", "+00:00"))
    except (KeyError, ValueError, AttributeError):
        return 0.0
    return max(0.0, (datetime.now(UTC) - detected).total_seconds())
