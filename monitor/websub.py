"""WebSub subscriber: hubs push new feed content to us instead of waiting for our polls.

Promises:

- When a polled feed advertises a hub (``<link rel="hub">``) and ``websub.callback`` is
  configured, :meth:`WebSub.maintain` subscribes: a form POST to the hub with ``hub.mode``,
  ``hub.topic`` (the feed URL we fetch), ``hub.callback`` (``<callback>/<feed id>``),
  ``hub.lease_seconds`` and a fresh random ``hub.secret``. The subscription lives in the
  store (``get_state``/``put_state``, key ``websub:<feed id>``), so whichever replica the hub
  calls back finds it. Hub URLs come from feeds, so the POST goes through the guarded
  session (address policy checked on the URL and on every resolved address).
- Verification (GET on the callback) echoes ``hub.challenge`` only when mode and topic are
  those of the subscription we asked for; anything else is 404. The granted lease is stored.
- A push (POST on the callback) is processed only when ``X-Hub-Signature`` is a valid HMAC
  (sha1/sha256/sha384/sha512) of the body with that subscription's secret; it then takes the
  same path as a polled answer (:meth:`monitor.poller.Poller.ingest`) and is remembered in
  the feed's state, which slows polling to the feed's ceiling while pushes keep coming.
  Bad or unsigned pushes are answered 2xx (as the spec asks) and dropped, with a warning.
- The lease is renewed at the first poll after half of it has run out (or when less than
  1.5 feed ceilings remain); a failed or unverified request is retried after
  :data:`RETRY_AFTER`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from monitor import schedule
from monitor.config import FeedConfig, WebSubConfig
from monitor.errors import FetchError, ParseError
from monitor.fetch import Fetcher
from monitor.logs import get_logger
from monitor.poller import Poller
from monitor.store.base import FeedState

RETRY_AFTER = 3600.0
MAX_PUSH_BYTES = 16 * 2**20
_DIGESTS = {"sha1": "sha1", "sha256": "sha256", "sha384": "sha384", "sha512": "sha512"}


@dataclass(slots=True)
class Subscription:
    """One subscription as stored: what we asked for and what the hub granted."""

    hub: str
    topic: str
    secret: str
    state: str  # "pending", "active" or "failed"
    asked_at: float
    expires_at: float = 0.0
    lease: float = 0.0


def feed_id(url: str) -> str:
    """The callback path segment of a feed: stable, opaque, URL-safe."""
    return hashlib.sha256(url.encode()).hexdigest()[:20]


def valid_signature(header: str, body: bytes, secret: str) -> bool:
    """True when ``header`` (``method=hexdigest``) is the HMAC of ``body`` under ``secret``."""
    method, _, given = header.partition("=")
    algorithm = _DIGESTS.get(method.strip().lower())
    if algorithm is None or not given:
        return False
    expected = hmac.new(secret.encode(), body, algorithm).hexdigest()
    return hmac.compare_digest(expected, given.strip().lower())


def renewal_due(sub: Subscription | None, hub: str, topic: str, now: float, ceiling: float) -> bool:
    """True when we should (re)subscribe now."""
    if sub is None or sub.hub != hub or sub.topic != topic:
        return True
    if sub.state != "active":
        return now - sub.asked_at >= RETRY_AFTER
    margin = max(sub.lease / 2, 1.5 * ceiling)
    return now >= sub.expires_at - margin


class WebSub:
    """Subscriptions, the callback routes and push handling of one daemon."""

    def __init__(self, config: WebSubConfig, feeds: tuple[FeedConfig, ...], poller: Poller):
        self.config = config
        self.poller = poller
        self.feeds = {feed_id(f.url): f for f in feeds}
        self.owner = f"websub:{secrets.token_hex(4)}"

    @property
    def fetcher(self) -> Fetcher:
        return self.poller.fetcher

    def callback(self, feed: FeedConfig) -> str:
        return f"{self.config.callback.rstrip('/')}/{feed_id(feed.url)}"

    def routes(self) -> list[web.RouteDef]:
        """The GET (verification) and POST (push) routes under the callback's path."""
        path = urlsplit(self.config.callback).path.rstrip("/") + "/{feed_id}"
        return [web.get(path, self.verify), web.post(path, self.push)]

    # -- subscribing -------------------------------------------------------------------------

    async def maintain(self, feed: FeedConfig, state: FeedState) -> None:
        """Subscribe or renew when the feed advertises a hub and it is time; never raises."""
        hub = state.meta.get("hub")
        if not isinstance(hub, str) or not hub:
            return
        topic = schedule.fetch_url(feed.url, state.meta)
        sub = await self.load(feed_id(feed.url))
        if not renewal_due(sub, hub, topic, time.time(), feed.max_interval):
            return
        await self.subscribe(feed, hub, topic)

    async def subscribe(self, feed: FeedConfig, hub: str, topic: str) -> None:
        """Store a pending subscription, then ask the hub; failures are stored and logged."""
        key = feed_id(feed.url)
        sub = Subscription(hub, topic, secrets.token_hex(24), "pending", time.time())
        await self.save(key, sub)
        form = {
            "hub.mode": "subscribe",
            "hub.topic": topic,
            "hub.callback": self.callback(feed),
            "hub.lease_seconds": str(int(self.config.lease)),
            "hub.secret": sub.secret,
        }
        log = get_logger(feed=feed.name)
        try:
            status = await self._post(hub, form)
        except FetchError as exc:
            status, error = None, str(exc)
        else:
            error = f"hub answered HTTP {status}"
        if status is not None and 200 <= status < 300:
            log.info("websub subscription requested", hub=hub)
            return
        sub.state = "failed"
        await self.save(key, sub)
        log.warning("websub subscription failed; polling as usual", hub=hub, error=error)

    async def _post(self, url: str, form: dict[str, str]) -> int:
        """POST ``form`` to a hub through the guarded session; returns the status."""
        reason = self.fetcher.policy.check_url(url)
        if reason:
            raise FetchError(f"refused hub {url[:200]}: {reason}")
        try:
            async with asyncio.timeout(self.fetcher.cfg.timeout):
                async with self.fetcher.session.post(url, data=form, allow_redirects=False) as r:
                    return r.status
        except TimeoutError:
            raise FetchError("hub timed out") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise FetchError(f"hub unreachable: {type(exc).__name__}: {exc}") from exc

    async def load(self, key: str) -> Subscription | None:
        raw = await self.poller.store.get_state(f"websub:{key}")
        if raw is None:
            return None
        try:
            return Subscription(**json.loads(raw))
        except (TypeError, ValueError):
            return None

    async def save(self, key: str, sub: Subscription) -> None:
        await self.poller.store.put_state(f"websub:{key}", json.dumps(asdict(sub)))

    # -- callbacks ---------------------------------------------------------------------------

    async def verify(self, request: web.Request) -> web.Response:
        """The hub's verification of intent: echo the challenge for what we asked, else 404."""
        key = request.match_info["feed_id"]
        q = request.query
        sub = await self.load(key)
        feed = self.feeds.get(key)
        if sub is None or feed is None or q.get("hub.topic") != sub.topic:
            return web.Response(status=404)
        mode = q.get("hub.mode")
        if mode == "denied":
            sub.state = "failed"
            await self.save(key, sub)
            get_logger(feed=feed.name).warning("websub hub denied the subscription")
            return web.Response(text="ok")
        if mode != "subscribe" or sub.state == "failed" or "hub.challenge" not in q:
            return web.Response(status=404)
        lease = _float(q.get("hub.lease_seconds"), self.config.lease)
        sub.state, sub.lease, sub.expires_at = "active", lease, time.time() + lease
        await self.save(key, sub)
        get_logger(feed=feed.name).info("websub subscription verified", lease=int(lease))
        return web.Response(text=q["hub.challenge"], content_type="text/plain")

    async def push(self, request: web.Request) -> web.Response:
        """New content from the hub: checked, then processed like a poll's answer."""
        key = request.match_info["feed_id"]
        feed = self.feeds.get(key)
        sub = await self.load(key)
        if feed is None or sub is None:
            return web.Response(status=404)
        body = await request.content.read(MAX_PUSH_BYTES + 1)
        log = get_logger(feed=feed.name)
        signature = request.headers.get("X-Hub-Signature", "")
        if len(body) > MAX_PUSH_BYTES or not valid_signature(signature, body, sub.secret):
            log.warning("websub push dropped: missing or bad signature, or too large")
            return web.Response(status=202)
        await self.ingest(feed, body, sub.topic)
        return web.Response(status=202)

    async def ingest(self, feed: FeedConfig, body: bytes, url: str) -> None:
        """Process pushed content under the feed's claim (its state is updated when held)."""
        store = self.poller.store
        claimed = await store.claim_feed(feed.url, self.owner, ttl=60.0)
        state = await store.get_feed(feed.url) or FeedState()
        try:
            result = await self.poller.ingest(feed, state, body, url)
        except ParseError as exc:
            get_logger(feed=feed.name).warning("websub push unreadable", error=str(exc))
            result = None
        finally:
            if claimed:
                schedule.note_push(state.meta, time.time())
                await store.put_feed(feed.url, state)
                await store.release_feed(feed.url, self.owner)
        if result is not None:
            get_logger(feed=feed.name).info(
                "pushed", entries=result.entries, new=result.new, hits=result.hits
            )


def _float(value: Any, default: float) -> float:
    try:
        return float(value) if value is not None else default
    except ValueError:
        return default
