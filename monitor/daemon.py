"""The daemon: resources opened in order, a feed scheduler and one task per sink, a bounded drain.

Promises: everything is validated before any I/O (config and rules are loaded by the caller);
``resources`` opens the store, HTTP sessions and sinks and closes them in reverse order; every
long-lived task runs in one TaskGroup; ``stop`` only asks for shutdown: in-flight polls finish,
due deliveries get a last pass, and all of it is bounded by ``shutdown_grace``.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import os
import random
import socket
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

import aiohttp
import redis.asyncio as aioredis
from aiohttp import web
from redis.exceptions import RedisError

from monitor import health
from monitor.config import DEFAULT_CONFIG, Config, FeedConfig, SinkConfig
from monitor.deliver import SCHEDULE, Deliverer, fingerprint
from monitor.errors import ConfigError, ConfigErrors, MonitorError
from monitor.fetch import Fetcher, make_session
from monitor.logs import get_logger
from monitor.metrics import Metrics
from monitor.poller import Poller, poll_once
from monitor.reload import signature
from monitor.rules import RuleSet, load_resident
from monitor.scheduler import FeedScheduler
from monitor.sinks.base import Sink
from monitor.sinks.slack import SlackSink
from monitor.sinks.webhook import WebhookSink
from monitor.store.base import Store
from monitor.store.redis import RedisStore
from monitor.store.sqlite import SQLiteStore
from monitor.websub import WebSub

T = TypeVar("T")

STORE_RETRY = 5.0
CLAIMED_RETRY = 5.0  # a feed another replica is polling: look again after this long
# A poll (its feed and, with fetch_article, its pages one by one) that takes longer is cut
# short, so a few slow or hostile feeds cannot hold every scheduler slot for long; it counts
# as a failed poll (see poll_once): entries recorded before the cut stay recorded, the
# others come again at the next poll.
POLL_DEADLINE = 300.0
RULES_POLL = 2.0
STORE_CHECK = 10.0
REDIS_CONNECTIONS = 64  # Redis answers in well under a millisecond: callers queue briefly
REDIS_POOL_WAIT = 30.0  # longer means a connection is never handed back: fail, log, retry
REDIS_SOCKET_TIMEOUT = 20.0  # our commands answer in milliseconds; scripts in well under 1 s


@dataclass(frozen=True, slots=True)
class Deps:
    """What the running daemon holds open."""

    config: Config
    store: Store
    fetcher: Fetcher
    sinks: dict[str, Sink]
    metrics: Metrics


@contextlib.asynccontextmanager
async def resources(config: Config) -> AsyncIterator[Deps]:
    """Open the store, the two HTTP sessions and the sinks; close them in reverse order."""
    async with contextlib.AsyncExitStack() as stack:
        store = await open_store(config)
        stack.push_async_callback(store.close)
        # Two sessions on purpose: the feed session's resolver refuses private addresses,
        # while sink URLs are the operator's own and may point anywhere (DESIGN.md).
        feed_session = make_session(config.fetch)
        stack.push_async_callback(feed_session.close)
        sink_session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60, connect=10))
        stack.push_async_callback(sink_session.close)
        sinks = {name: make_sink(sc, sink_session) for name, sc in config.sinks.items()}
        for sink in sinks.values():
            stack.push_async_callback(sink.close)
        yield Deps(config, store, Fetcher(config.fetch, feed_session), sinks, Metrics())


async def open_store(config: Config, *, owner: bool = True) -> Store:
    """The Redis store when ``redis:`` is configured, else SQLite under ``state_dir``.

    ``owner=False`` is for a second process beside the daemon (the ``deliveries`` command):
    it must not clear the leases of the SQLite file's running owner.
    """
    if config.redis is not None:
        # Calls wait for a free connection rather than fail: polls, deliveries and the rest
        # run far more store calls at once than a fixed pool holds (redis-py's default pool
        # raises "Too many connections" past 100, and a delivery sent but not acked then
        # goes out again).
        # A Redis that hangs (not down: no answer) frees its connections after
        # REDIS_SOCKET_TIMEOUT, rather than holding every one of them for good.
        pool = aioredis.BlockingConnectionPool.from_url(
            config.redis.url,
            max_connections=REDIS_CONNECTIONS,
            timeout=REDIS_POOL_WAIT,
            socket_timeout=REDIS_SOCKET_TIMEOUT,
            socket_connect_timeout=REDIS_SOCKET_TIMEOUT,
        )
        client = aioredis.Redis.from_pool(pool)  # closing the client closes the pool
        store: Store = RedisStore(
            client,
            config.redis.prefix,
            stream_maxlen=config.redis.stream_maxlen,
            owns_client=True,
        )
        try:
            await store.ping()
        except (RedisError, OSError, MonitorError) as exc:
            await store.close()  # the client and the ping's own connections
            where = _redact_url(config.redis.url)
            raise ConfigError(
                f"redis.url: cannot reach Redis at {where} ({exc}); start it or fix the URL",
                str(config.path),
            ) from None
        return store
    try:
        return await SQLiteStore(config.state_dir / "monitor.db", owner=owner).open()
    except MonitorError as exc:
        raise ConfigError(f"state_dir: {exc}", str(config.path)) from None


def make_sink(sc: SinkConfig, session: aiohttp.ClientSession) -> Sink:
    """The sink object for one configured sink."""
    if sc.type == "slack":
        return SlackSink(sc.name, sc.url, session=session, timeout=sc.timeout)
    return WebhookSink(
        sc.name, sc.url, session=session, secret=list(sc.secrets) or None, timeout=sc.timeout
    )


def sink_fingerprint(sc: SinkConfig | None) -> str:
    """What identifies a sink for its 410 mark: a new type or URL re-enables it."""
    return fingerprint(sc.type, sc.url) if sc is not None else ""


def _redact_url(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{':' + str(parts.port) if parts.port else ''}"


class Daemon:
    """Runs polls and deliveries until asked to stop."""

    def __init__(
        self,
        deps: Deps,
        rules: RuleSet,
        *,
        rules_paths: list[Path] | None = None,
        retry_schedule: tuple[float, ...] = SCHEDULE,
        poll_deadline: float = POLL_DEADLINE,
    ) -> None:
        self.deps = deps
        self.poll_deadline = poll_deadline
        self.config = deps.config
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{random.getrandbits(32):08x}"
        self.deliverers = {
            n: Deliverer(
                s,
                deps.store,
                deps.metrics,
                retry_schedule,
                fingerprint=sink_fingerprint(self.config.sinks.get(n)),
                throttle=self.throttle_of,
            )
            for n, s in deps.sinks.items()
        }
        self.poller = Poller(
            deps.fetcher,
            deps.store,
            deps.metrics,
            rules,
            on_hits=[d.wake for d in self.deliverers.values()],
        )
        websub = self.config.websub
        self.websub = WebSub(websub, self.config.feeds, self.poller) if websub else None
        self.disabled_feeds: set[str] = set()
        self.rules_paths = rules_paths or list(self.config.rules)
        # Taken now, close to when the caller loaded the rules, so an edit made while the
        # daemon starts is still noticed.
        self.rules_signature = signature(self.rules_paths)
        self._reload_asked = asyncio.Event()
        self.stop = asyncio.Event()
        self.log = get_logger()
        self.http_port: int | None = None
        self.store_ok = True
        deps.metrics.rules.set(len(rules.rules))

    @property
    def rules(self) -> RuleSet:
        return self.poller.rules

    def throttle_of(self, rule_id: str) -> float | None:
        """The running rule's ``throttle`` window in seconds (None: not throttled)."""
        rule = self.rules.get(rule_id)
        return rule.throttle if rule is not None and rule.throttle else None

    def reload_rules(self) -> bool:
        """Load the rule files again; keep the running rules when the new ones are bad."""
        try:
            new = load_resident(self.rules_paths)
            check_routes(new, self.config)
        except ConfigError as exc:
            self.log.error("rules not reloaded; the previous rules keep running", error=str(exc))
            return False
        except Exception as exc:  # any surprise in a bad edit must not stop the daemon
            self.log.error(
                "rules not reloaded; the previous rules keep running",
                error=f"{type(exc).__name__}: {exc}",
            )
            return False
        self.poller.rules = new
        self.deps.metrics.rules.set(len(new.rules))
        self.log.info("rules reloaded", rules=len(new.rules))
        return True

    async def reload_in_thread(self) -> bool:
        """:meth:`reload_rules` in a thread of its own: loading 100k rules takes seconds, and
        polls, deliveries and health checks go on meanwhile."""
        return await in_daemon_thread(self.reload_rules)

    def reload_soon(self) -> None:
        """Ask for a rule reload (SIGHUP): the rule watcher does it at once."""
        self._reload_asked.set()

    async def watch_rules(self) -> None:
        """Reload the rules when asked, or when a rule file changed (checked every
        RULES_POLL seconds); one reload at a time."""
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(RULES_POLL):
                    await self._reload_asked.wait()
            asked = self._reload_asked.is_set()
            self._reload_asked.clear()
            current = signature(self.rules_paths)
            if asked or current != self.rules_signature:
                self.rules_signature = current
                await self.reload_in_thread()

    async def watch_store(self) -> None:
        """Ping the store every STORE_CHECK seconds, so the ``store_up`` metric is current
        for a scraper that never asks /readyz."""
        while True:
            await self.ready()
            await asyncio.sleep(STORE_CHECK)

    async def ready(self) -> dict[str, str]:
        """Problems that make the daemon not ready, by component."""
        problems: dict[str, str] = {}
        if not self.rules.rules:
            problems["rules"] = "no rules loaded"
        try:
            await asyncio.wait_for(self.deps.store.ping(), 2.0)
            self.deps.metrics.store_up.set(1)
        except Exception as exc:  # any failure to answer means not ready
            self.deps.metrics.store_up.set(0)
            problems["store"] = f"unreachable: {type(exc).__name__}"
        return problems

    def details(self) -> dict[str, list[str]]:
        """What /readyz shows without making the daemon unready: feeds and sinks disabled
        after 410 Gone. A dead partner webhook must not take every replica out of service
        (nor stall a rolling update); the other sinks and the polling go on."""
        disabled = sorted(name for name, d in self.deliverers.items() if d.disabled)
        return {"feeds_disabled": sorted(self.disabled_feeds), "sinks_disabled": disabled}

    async def run(self) -> None:
        """Poll and deliver until ``stop`` is set; then drain within the grace period."""
        runner = await self._start_http()
        self.log.info(
            "started",
            config=str(self.config.path),
            embedded_defaults=self.config.path == DEFAULT_CONFIG,
            feeds=len(self.config.feeds),
            rules=len(self.rules.rules),
            sinks=sorted(self.deliverers),
            store=type(self.deps.store).__name__,
            http_port=self.http_port,
        )
        sinks_stop = asyncio.Event()
        try:
            async with asyncio.TaskGroup() as tg:
                feeds = FeedScheduler(
                    self.config.feeds,
                    self.poll_feed,
                    self.stop,
                    limit=2 * self.config.fetch.concurrency,
                    retry=STORE_RETRY,
                )
                feed_tasks = [tg.create_task(feeds.run())]
                sink_tasks = [tg.create_task(d.run(sinks_stop)) for d in self.deliverers.values()]
                watchers = [tg.create_task(self.watch_rules()), tg.create_task(self.watch_store())]
                await self.stop.wait()
                self.log.info("stopping", grace=self.config.shutdown_grace)
                for watcher in watchers:
                    watcher.cancel()
                await self._drain(feed_tasks, sink_tasks, sinks_stop)
        finally:
            if runner is not None:
                await runner.cleanup()
        self.log.info("stopped")

    async def _drain(
        self,
        feeds: list[asyncio.Task[None]],
        sinks: list[asyncio.Task[None]],
        sinks_stop: asyncio.Event,
    ) -> None:
        try:
            async with asyncio.timeout(self.config.shutdown_grace):
                await self._cut_polls(feeds, self.config.shutdown_grace / 2)
                sinks_stop.set()
                await asyncio.gather(*sinks)
        except TimeoutError:
            self.log.warning("grace period over; pending deliveries stay stored for next start")
            for task in (*feeds, *sinks):
                task.cancel()

    async def _cut_polls(self, feeds: list[asyncio.Task[None]], within: float) -> None:
        """Let the polls in flight finish for ``within`` seconds, then cut them: a feed
        hanging until its fetch timeout (20 s by default) must not take the whole grace
        period from the deliveries, nor keep a container past its stop timeout. A cut
        poll loses nothing: it keeps the feed's old validators, so what it did not record
        comes again at the next start."""
        _, running = await asyncio.wait(feeds, timeout=within)
        if not running:
            return
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        self.log.warning("polls cut short at shutdown; their feeds are polled again at start")

    async def _start_http(self) -> web.AppRunner | None:
        http = self.config.http
        if http.port is None:
            return None
        app = health.make_app(
            self.deps.metrics,
            self.ready,
            details=self.details,
            routes=self.websub.routes() if self.websub else (),
        )
        try:
            runner, self.http_port = await health.start(app, http.host, http.port)
        except OSError as exc:
            raise ConfigError(
                f"http.listen: cannot listen on {http.host}:{http.port} ({exc.strerror})",
                str(self.config.path),
            ) from None
        return runner

    async def poll_feed(self, feed: FeedConfig) -> float | None:
        """Poll ``feed`` if it is due; when to look at it again (None: never, it answered
        410 Gone). For :class:`FeedScheduler`; errors are logged, never raised."""
        try:
            state = await self.deps.store.get_feed(feed.url)
            if state is None or (not state.disabled and state.next_poll <= time.time()):
                state = await poll_once(self.poller, feed, self.owner, deadline=self.poll_deadline)
                polled = state.next_poll > time.time()  # else another replica holds the claim
                if polled and self.websub is not None and not state.errors:
                    await self.websub.maintain(feed, state)
            if state.disabled:
                self.disabled_feeds.add(feed.name)  # shown on /readyz
                self.deps.metrics.feed_disabled.labels(feed.name).set(1)
                return None
            if state.next_poll > time.time():
                return state.next_poll
            return time.time() + CLAIMED_RETRY  # another replica is polling it right now
        except Exception as exc:  # store outage and the like: try the feed again soon
            self.log.error("poll failed", feed=feed.name, error=f"{type(exc).__name__}: {exc}")
            return time.time() + STORE_RETRY


def check_routes(rules: RuleSet, config: Config) -> None:
    """Every ``notify`` of every rule names a configured sink; raises every one that does
    not (:func:`route_errors`)."""
    errors = route_errors(rules, config)
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise ConfigErrors(errors)


def route_errors(rules: RuleSet, config: Config) -> list[ConfigError]:
    """A problem for each ``notify`` entry naming a sink the config does not define,
    located at that entry."""
    known = ", ".join(sorted(config.sinks)) or "none configured"
    out = []
    for rule in rules.rules:
        for j, sink in enumerate(rule.notify):
            if sink not in config.sinks:
                line, col = rule.notify_at[j] if j < len(rule.notify_at) else (rule.line, 0)
                msg = f"rule {rule.id!r} notifies unknown sink {sink!r} (sinks: {known})"
                out.append(ConfigError(msg, rule.path, line or None, col or None))
    return out


def in_daemon_thread(fn: Callable[[], T]) -> Awaitable[T]:
    """``fn()`` in a new daemon thread, with the caller's context; its result as a future.

    Unlike the default executor's, the thread is not waited for at exit: a shutdown during
    a rule reload keeps its grace period instead of waiting seconds for rules it would
    throw away (the reload only reads files and builds a new RuleSet, so cutting it off
    loses nothing).
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()
    ctx = contextvars.copy_context()

    def settle(outcome: Callable[[], None]) -> None:
        if not future.done():  # cancelled meanwhile: nobody waits for the answer
            outcome()

    def run() -> None:
        try:
            result = ctx.run(fn)
        except BaseException as exc:  # handed to the awaiting task, which decides
            answer = functools.partial(settle, functools.partial(future.set_exception, exc))
        else:
            answer = functools.partial(settle, functools.partial(future.set_result, result))
        with contextlib.suppress(RuntimeError):  # the loop closed: the daemon is exiting
            loop.call_soon_threadsafe(answer)

    threading.Thread(target=run, name="reload", daemon=True).start()
    return future
