"""Delivery loops: each sink works through its own pending hits in the store.

Promises:
- A hit is acknowledged for a sink only after that sink accepted it (2xx), so a crash at any
  point re-sends rather than loses (at-least-once; the hit id is the receivers' dedupe key).
- Failures are retried on the Standard Webhooks schedule (≈5 s, 5 min, 30 min, 2 h, 5 h,
  10 h, 10 h after the first attempt) with ±10 % jitter, or after the sink's ``Retry-After``;
  after the last attempt (or a permanent refusal such as Slack's 400) the hit moves to the
  sink's dead letters. The schedule lives in the store, so retries survive restarts.
- 410 Gone disables the sink: its loop sends nothing more (the pending gauge stays
  current), ``/readyz`` and the ``sink_disabled`` metric
  show it, and the mark is stored with a fingerprint of the sink's config, so a restart with
  the same config stays disabled while a changed URL re-enables it. Its pending hits wait.
- Each sink has its own loop, and within it up to ``concurrency`` attempts run at once: a
  slow or dead sink never delays the others, and one hanging request (bounded by the sink's
  per-attempt timeout) never holds up that sink's other hits.
- A rule with a ``throttle`` window sends its first hit at once and folds the rest of the
  window into one digest per sink (:mod:`monitor.digest`); folded hits stay stored as pending
  deliveries due at the window's end, so a crash mid-window loses none of them. A digest
  holds one due batch (``concurrency`` × 4 hits at most); what a busy window folded beyond
  that goes out in further digests at once, never waiting for the next window.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import random
import re
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

from monitor.digest import digest_hit, is_digest_id
from monitor.errors import DeliveryError
from monitor.faults import crashpoint
from monitor.hit import Hit
from monitor.logs import get_logger
from monitor.metrics import Metrics
from monitor.sinks.base import Sink
from monitor.store.base import Pending, Store

SCHEDULE = (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)
IDLE_WAIT = 1.0
GAUGE_EVERY = 5.0  # an idle loop sets the pending gauge this often (acks lower it)
CONCURRENCY = 8
FOLDED = "folded into the next digest (rule throttle)"

ThrottleOf = Callable[[str], float | None]


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


def rule_of(p: Pending) -> str:
    """The rule id of a pending delivery ('' when its body is unreadable)."""
    try:
        rule = json.loads(p.body)["rule"]["id"]
    except (ValueError, KeyError, TypeError):
        return ""
    return rule if isinstance(rule, str) else ""


def fingerprint(*parts: str) -> str:
    """A short digest of a sink's identifying config (type and URL), safe to store."""
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:16]


def no_throttle(_rule_id: str) -> float | None:
    """The default: no rule is throttled."""
    return None


class Deliverer:
    """Runs one sink's delivery loop against the store."""

    def __init__(
        self,
        sink: Sink,
        store: Store,
        metrics: Metrics,
        schedule: tuple[float, ...] = SCHEDULE,
        *,
        fingerprint: str = "",
        throttle: ThrottleOf = no_throttle,
        concurrency: int = CONCURRENCY,
    ) -> None:
        self.sink = sink
        self.schedule = schedule
        self.store = store
        self.metrics = metrics
        self.fingerprint = fingerprint
        self.throttle = throttle
        self.concurrency = concurrency
        self.wake = asyncio.Event()
        self.disabled: str | None = None
        self.inflight: set[str] = set()
        self._slots = asyncio.Semaphore(concurrency)
        self._gauged = float("-inf")  # when the pending gauge was last set
        self.log = get_logger(sink=sink.name)

    @property
    def state_key(self) -> str:
        """Where the sink's disabled mark is stored."""
        return f"sink-disabled:{self.sink.name}"

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until ``stop`` is set, then make one last pass and finish what is in flight."""
        await self.restore(stop)
        async with asyncio.TaskGroup() as tg:
            while not stop.is_set():
                # A disabled sink sends nothing, but its hits keep coming: the gauge says so.
                sent = 0 if self.disabled is not None else await self.dispatch(tg)
                if time.monotonic() >= self._gauged + GAUGE_EVERY:
                    await self._gauge()
                if not sent:
                    await self._sleep(stop)
            if self.disabled is None:
                await self.dispatch(tg)

    async def restore(self, stop: asyncio.Event) -> None:
        """Read the stored disabled mark (retrying while the store is down)."""
        while not stop.is_set():
            try:
                await self._restore_once()
                return
            except Exception as exc:  # store outage at start: keep trying until it answers
                self.log.warning("store unavailable", error=str(exc))
                await self._sleep(stop)

    async def _restore_once(self) -> None:
        raw = await self.store.get_state(self.state_key)
        if raw is None:
            return
        mark = json.loads(raw)
        if mark.get("fingerprint") != self.fingerprint:
            await self.store.put_state(self.state_key, None)
            self.log.info("sink re-enabled: its config changed since it answered 410")
            return
        self.disabled = str(mark.get("reason", "410 Gone"))
        self.metrics.sink_disabled.labels(self.sink.name).set(1)
        self.log.error("sink stays disabled (410 Gone earlier); change its url to re-enable")

    async def _sleep(self, stop: asyncio.Event) -> None:
        self.wake.clear()
        waits = [asyncio.ensure_future(self.wake.wait()), asyncio.ensure_future(stop.wait())]
        try:
            await asyncio.wait(waits, timeout=IDLE_WAIT, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()

    async def dispatch(self, tg: asyncio.TaskGroup) -> int:
        """Start attempts for what is due, within the sink's concurrency; returns how many."""
        if len(self.inflight) >= self.concurrency:
            return 0
        try:
            due = await self.store.due(self.sink.name, time.time(), self.concurrency * 4)
        except Exception as exc:  # store outage: log, keep looping, retry later
            self.log.warning("store unavailable", error=str(exc))
            return 0
        due = [p for p in due if p.hit_id not in self.inflight]
        for unit in self.units(due):
            self.inflight.update(p.hit_id for p in unit)
            tg.create_task(self._guarded(unit))
        if due:
            await self._gauge()
        return len(due)

    async def pass_once(self) -> int:
        """Attempt everything due once and wait for the outcomes; returns how many."""
        async with asyncio.TaskGroup() as tg:
            return await self.dispatch(tg)

    def units(self, due: list[Pending]) -> list[list[Pending]]:
        """What to send: one unit per hit, except a throttled rule's hits form one unit,
        and the hits of a digest that failed form one of their own, so that its retry is
        the same digest with the same id (the receivers' dedupe key)."""
        singles: list[list[Pending]] = []
        throttled: dict[tuple[str, str], list[Pending]] = {}
        for p in due:
            rule = rule_of(p)
            if self.throttle(rule) is None:
                singles.append([p])
            else:
                throttled.setdefault((rule, digest_of(p)), []).append(p)
        return singles + list(throttled.values())

    async def _guarded(self, unit: list[Pending]) -> None:
        try:
            async with self._slots:
                if self.disabled is None:
                    await self.deliver(unit)
                else:  # hand the lease back: due at once when the sink is re-enabled
                    await self._reschedule(unit, time.time(), self.disabled)
        except Exception as exc:  # a store blip mid-attempt: the lease brings it back
            self.log.error(
                "delivery attempt failed",
                hit=unit[0].hit_id,
                error=f"{type(exc).__name__}: {exc}",
            )
        finally:
            self.inflight.difference_update(p.hit_id for p in unit)
            self.wake.set()

    async def deliver(self, unit: list[Pending]) -> None:
        """One attempt for one unit (a hit, or a throttled rule's due hits)."""
        rule = rule_of(unit[0])
        window = self.throttle(rule)
        if window is None:
            await self.attempt(unit[0])
            return
        # The window opens before the send, atomically in the store: of replicas sending
        # the rule's hits at the same moment, one sends and the others fold theirs. An
        # attempt that sends nothing closes it again, so its retry is not held back to the
        # window's end (a crash in between leaves it open: the hit goes out in the digest).
        key = f"throttle:{self.sink.name}:{rule}"
        now = time.time()
        until = now + window
        open_until = await self.store.open_window(key, until, now)
        if open_until is not None:
            # Hits folded into an earlier window and left over when its digest went out
            # (a digest holds one due batch) go out now, in further digests: folded again,
            # a busy rule's backlog would grow by all but one batch every window.
            unit, backlog = _split_backlog(unit, open_until - window)
            if unit:
                await self._fold(unit, open_until)
            if backlog:
                await self.send(backlog, self._message(rule, backlog))
            return
        sent = False
        try:
            sent = await self.send(unit, self._message(rule, unit))
        finally:
            if not sent:  # refused, cancelled at shutdown, or the store failed mid-way
                with contextlib.suppress(Exception):  # store down: the window runs its course
                    await self.store.close_window(key, until)

    def _message(self, rule: str, unit: list[Pending]) -> Hit:
        """What a throttled rule's unit is sent as: its one hit, or the digest of them."""
        if len(unit) == 1:
            return hit_from_pending(unit[0])
        return digest_hit(self.sink.name, rule, unit)

    async def attempt(self, p: Pending) -> None:
        """One attempt of one delivery, with its outcome written to the store."""
        await self.send([p], hit_from_pending(p))

    async def send(self, unit: list[Pending], hit: Hit) -> bool:
        """Send ``hit`` (standing for ``unit``); ack or reschedule; True when accepted."""
        try:
            await self.sink.send(hit)
        except DeliveryError as err:
            await self._failed(unit, err, digest=hit.id if is_digest_id(hit.id) else "")
            return False
        crashpoint("after-send")
        for p in unit:
            await self.store.ack(self.sink.name, p.hit_id)
        self.metrics.deliveries.labels(self.sink.name, "ok").inc(len(unit))
        self.metrics.delivery_seconds.labels(self.sink.name).observe(_age(hit))
        self.log.info(
            "delivered", hit=hit.id, rule=hit.rule_id, hits=len(unit), attempts=unit[0].attempts + 1
        )
        return True

    async def _fold(self, unit: list[Pending], until: float) -> None:
        await self._reschedule(unit, until, FOLDED)  # a failed digest's hits keep its id
        self.metrics.deliveries.labels(self.sink.name, "folded").inc(len(unit))
        self.log.info("folded into digest", hits=[p.hit_id for p in unit], until=until)

    async def _failed(self, unit: list[Pending], err: DeliveryError, *, digest: str = "") -> None:
        """Reschedule or dead-letter ``unit`` after ``err``; the hits of a failed digest are
        marked with its id (``digest``), so that they are retried as that digest."""
        self.metrics.deliveries.labels(self.sink.name, "error").inc(len(unit))
        if digest:
            unit = [replace(p, last_error=f"[digest {digest}]") for p in unit]
        if err.disable:
            await self._disable(unit, err)
            return
        if err.deferred:  # nothing was sent: wait as asked, without using up an attempt
            await self._reschedule(unit, time.time() + (err.retry_after or 1.0), str(err))
            return
        attempts = max(p.attempts for p in unit) + 1
        delay = None if err.permanent else next_delay(attempts, err, self.schedule)
        for p in unit:
            if delay is None:
                await self._dead(p, err)
            else:
                at = time.time() + delay
                why = _marked(str(err), p)
                await self.store.retry(self.sink.name, p.hit_id, p.attempts + 1, at, why)
        if delay is not None:
            self.log.warning(
                "delivery failed; will retry",
                hit=unit[0].hit_id,
                attempts=attempts,
                retry_in=round(delay, 1),
                error=str(err),
            )

    async def _dead(self, p: Pending, err: DeliveryError) -> None:
        await self.store.dead(self.sink.name, p.hit_id, str(err))
        self.metrics.deliveries.labels(self.sink.name, "dead").inc()
        self.log.error(
            "delivery failed for good", hit=p.hit_id, attempts=p.attempts + 1, error=str(err)
        )

    async def _disable(self, unit: list[Pending], err: DeliveryError) -> None:
        self.disabled = str(err)
        self.metrics.sink_disabled.labels(self.sink.name).set(1)
        self.log.error("sink disabled: it answered 410 Gone; change its url to re-enable")
        mark = {"fingerprint": self.fingerprint, "reason": str(err), "at": time.time()}
        await self.store.put_state(self.state_key, json.dumps(mark))
        await self._reschedule(unit, time.time(), str(err))  # due at once when re-enabled

    async def _reschedule(self, unit: list[Pending], at: float, why: str) -> None:
        """Put the unit back, due at ``at``, without counting an attempt (a failed
        digest's hits keep its id)."""
        for p in unit:
            await self.store.retry(self.sink.name, p.hit_id, p.attempts, at, _marked(why, p))

    async def _gauge(self) -> None:
        self._gauged = time.monotonic()
        with contextlib.suppress(Exception):
            count = await self.store.pending_count(self.sink.name)
            self.metrics.pending.labels(self.sink.name).set(count)


def _split_backlog(unit: list[Pending], window_start: float) -> tuple[list[Pending], list[Pending]]:
    """``unit``'s hits to fold into the window that opened at ``window_start``, and those
    folded into an earlier one (due before this one opened) and left over from its digest.
    A hit never folded is folded now, even one recorded before the window opened: another
    replica's first send may have opened it a moment ago."""
    fold: list[Pending] = []
    backlog: list[Pending] = []
    for p in unit:
        (backlog if _folded(p) and p.next_at < window_start else fold).append(p)
    return fold, backlog


_DIGEST_MARK = re.compile(r"\[digest (d_[0-9a-f]+)\]\Z")


def digest_of(p: Pending) -> str:
    """The id of the failed digest ``p`` was sent in, '' when none (see :meth:`_failed`)."""
    found = _DIGEST_MARK.search(p.last_error or "")
    return found.group(1) if found else ""


def _marked(why: str, p: Pending) -> str:
    """``why``, followed by the mark of the failed digest ``p`` belongs to, if any."""
    digest = digest_of(p)
    return f"{why} [digest {digest}]" if digest else why


def _folded(p: Pending) -> bool:
    return (p.last_error or "").startswith(FOLDED)


def _age(hit: Hit) -> float:
    try:
        detected = datetime.fromisoformat(hit.data()["detected_at"].replace("Z", "+00:00"))
    except (KeyError, ValueError, AttributeError, TypeError):
        return 0.0
    return max(0.0, (datetime.now(UTC) - detected).total_seconds())
