"""One feed's poll, start to finish: fetch → parse → new? → clean → story → match → record.

Promises:

- The fetch is conditional (ETag and Last-Modified both sent) except once a day
  (:func:`monitor.schedule.refetch_due`); an unchanged feed costs one 304 and no parsing.
- Parsing and the seen-keys of every entry are computed in one worker-thread call per poll;
  entries already seen are dropped before any cleaning. Cleaning, fingerprinting and
  matching of the new ones run in worker threads too (one call per poll, or one per page
  when ``fetch_article`` is on), so the event loop never blocks on CPU work.
- Each new entry is cleaned (its page fetched and extracted when ``fetch_article`` is on,
  with the HTTP charset passed along), linked to its story (near-duplicates of an article
  seen in the last :data:`~monitor.story.STORY_WINDOW` share its story id, see
  :mod:`monitor.story`), matched, and recorded together with its seen-marks in one store
  call, so a crash can neither lose a hit nor record it twice, and a story alerts once per
  rule however many feeds and sites carry it.
- :meth:`Poller.ingest` is the same path for content that arrives without a poll (WebSub).
- The schedule follows :mod:`monitor.schedule`: publishing rate, server hints, backoff,
  410 disables the feed (logged as an error, shown by ``news_monitor_feed_disabled`` and on
  ``/readyz``), permanent redirects adopted after repeated confirmation. One log line per
  poll and per hit.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import random
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from redis.exceptions import RedisError

from monitor import schedule
from monitor.article import Article
from monitor.clean import extract
from monitor.config import FeedConfig
from monitor.errors import FetchError, ParseError
from monitor.faults import crashpoint
from monitor.fetch import Fetcher, Response
from monitor.hit import Hit, article_json_of, build_hit
from monitor.logs import get_logger
from monitor.metrics import Metrics
from monitor.parse import Entry, entry_article, entry_summary, parse_feed
from monitor.rules import Match, RuleSet
from monitor.store.base import FeedState, Store
from monitor.store.thread import StoreThread
from monitor.story import STORY_WINDOW, StoryKeys, entry_key, story_id, story_keys
from monitor.urls import is_http_url

T = TypeVar("T")

PAGE_TRIES = 3  # polls that may retry a page failing for a passing reason
PAGE_ACCEPT = "text/html,application/xhtml+xml;q=0.9,*/*;q=0.5"
FEED_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, "
    "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
)


@dataclass(slots=True)
class PollResult:
    """What one poll did (for logs, metrics, the scheduler and tests)."""

    status: int | str
    entries: int = 0
    new: int = 0
    hits: int = 0
    server_delay: float = 0.0  # the longest wait the server asked for (ttl, max-age, Expires)


@dataclass(frozen=True, slots=True)
class Parsed:
    """A parsed feed with each entry's seen-key (computed in the worker thread)."""

    entries: list[Entry]
    keys: list[str]
    ttl_minutes: int | None
    hub: str | None


@dataclass(slots=True)
class Fresh:
    """A new article, cleaned and matched, waiting for its story id and recording."""

    article: Article
    keys: StoryKeys
    matches: list[Match]
    seen: list[str] = field(default_factory=list)
    error: str | None = None  # set when the entry could not be processed (logged, skipped)


class Poller:
    """Polls feeds through a shared fetcher, store and (reloadable) rule set."""

    def __init__(
        self,
        fetcher: Fetcher,
        store: Store,
        metrics: Metrics,
        rules: RuleSet,
        on_hits: list[asyncio.Event] | None = None,
        *,
        story_window: float = STORY_WINDOW,
    ) -> None:
        self.fetcher = fetcher
        self.store = store
        self.metrics = metrics
        self.rules = rules
        self.on_hits = on_hits or []
        self.story_window = story_window

    async def poll(self, feed: FeedConfig, state: FeedState) -> PollResult:
        """Poll ``feed`` once, updating ``state`` in place (the caller stores it)."""
        now = time.time()
        full = schedule.refetch_due(state.meta, now)
        resp = await self.fetcher.get(
            schedule.fetch_url(feed.url, state.meta),
            etag=None if full else state.etag,
            last_modified=None if full else state.last_modified,
            accept=FEED_ACCEPT,
        )
        self._note_answer(feed, state, resp, full, now)
        if resp.not_modified:
            return PollResult(
                304, server_delay=schedule.server_delay(resp.headers, state.meta, now)
            )
        result = await self.ingest(feed, state, resp.body, resp.url)
        result.server_delay = schedule.server_delay(resp.headers, state.meta, now)
        return result

    def _note_answer(
        self, feed: FeedConfig, state: FeedState, resp: Response, full: bool, now: float
    ) -> None:
        state.etag = resp.headers.get("etag") or state.etag
        state.last_modified = resp.headers.get("last-modified") or state.last_modified
        if full:
            schedule.note_full_fetch(state.meta, now)
        moved = schedule.note_redirect(state.meta, feed.url, resp.permanent_redirect)
        if moved:
            get_logger(feed=feed.name).info("feed moved permanently; fetching it there", url=moved)

    async def ingest(self, feed: FeedConfig, state: FeedState, body: bytes, url: str) -> PollResult:
        """Parse feed ``body`` and process its new entries (a poll's answer or a push)."""
        parsed = await in_worker(read_feed, body, url)
        schedule.note_ttl(state.meta, parsed.ttl_minutes)
        if parsed.hub:
            state.meta["hub"] = parsed.hub
        else:
            state.meta.pop("hub", None)
        self.metrics.entries.labels(feed.name).inc(len(parsed.entries))
        fresh_keys = await self.store.unseen(parsed.keys)
        new = _first_of_each(parsed.entries, parsed.keys, fresh_keys)
        schedule.note_entries(
            state.meta,
            [e.published.timestamp() if e.published else None for e, _ in new],
            time.time(),
        )
        result = PollResult(200, entries=len(parsed.entries), new=len(new))
        if feed.fetch_article:
            tries = _page_tries(state.meta, {key for _, key in new})
            for entry, key in new:
                fresh = await self.clean(feed, entry, key, tries)
                if fresh is not None:
                    result.hits += await self.record(feed, [fresh])
        elif new:
            prepared = await in_worker(prepare_entries, new, feed.name, self.rules)
            result.hits += await self.record(feed, prepared)
        self.metrics.new_articles.labels(feed.name).inc(result.new)
        return result

    async def clean(
        self, feed: FeedConfig, entry: Entry, key: str, tries: dict[str, int]
    ) -> Fresh | None:
        """The entry with its page's text (fetched and extracted), matched.

        A page that fails for a passing reason (network, timeout, 429, 5xx) leaves the entry
        unseen, so the next poll tries again (None); after :data:`PAGE_TRIES` such failures,
        or a lasting one (404, refused, too big), the entry's own text is matched instead.
        """
        rules = self.rules
        if not entry.link:
            return await _prepare(prepare_entry, entry, key, feed.name, rules)
        try:
            resp = await self.fetcher.get(entry.link, accept=PAGE_ACCEPT)
        except FetchError as exc:
            log = get_logger(feed=feed.name)
            tries[key] = tries.get(key, 0) + 1
            if _passing(exc) and tries[key] < PAGE_TRIES:
                log.warning(
                    "article fetch failed; will retry at the next poll",
                    url=entry.link,
                    error=str(exc),
                    tries=tries[key],
                )
                return None
            log.warning(
                "article fetch failed; matching the feed's text", url=entry.link, error=str(exc)
            )
            tries.pop(key, None)
            return await _prepare(prepare_entry, entry, key, feed.name, rules)
        tries.pop(key, None)
        return await _prepare(prepare_page, entry, key, feed.name, resp, rules, lane="pages")

    async def record(self, feed: FeedConfig, fresh: list[Fresh]) -> int:
        """Link stories, build hits, record them with the seen-marks; returns new hits."""
        stories = await self._stories(fresh)
        hits: list[Hit] = []
        articles: dict[str, Article] = {}  # by hit id, for the log lines
        detected = datetime.now(UTC)  # one clock reading for the hits found together
        for item, story in zip(fresh, stories, strict=True):
            doc = article_json_of(item.article) if item.matches else None
            for m in item.matches:
                hit = build_hit(
                    m,
                    item.article,
                    story,
                    sinks=m.rule.notify,
                    channels=m.rule.channels,
                    detected_at=detected,
                    article_json=doc,
                )
                hits.append(hit)
                articles.setdefault(hit.id, item.article)
        for item in fresh:
            if item.error:
                get_logger(feed=feed.name).error(
                    "entry skipped: it could not be processed",
                    url=item.article.url,
                    key=item.keys.seen,
                    error=item.error,
                )
        crashpoint("after-match")
        seen = sorted({key for item in fresh for key in item.seen})
        recorded = await self.store.record(seen, hits)
        crashpoint("after-record")
        self._announce(feed, recorded, articles)
        return len(recorded)

    async def _stories(self, fresh: list[Fresh]) -> list[str]:
        """Each article's story id: a near-duplicate's story, else its own URL-derived one."""
        stories = [item.keys.story for item in fresh]
        printed = [(i, item.keys.fingerprint) for i, item in enumerate(fresh)]
        items = [(i, fp) for i, fp in printed if fp is not None]
        if not items:
            return stories
        linked = await self.store.link_stories(
            [(fp, stories[i]) for i, fp in items], time.time(), self.story_window
        )
        for (i, _), story in zip(items, linked, strict=True):
            stories[i] = story
        return stories

    def _announce(
        self, feed: FeedConfig, recorded: list[Hit], articles: dict[str, Article]
    ) -> None:
        if not recorded:
            return
        # One counter lookup per rule and one logger per call, not one of each per hit.
        for rule_id, count in Counter(hit.rule_id for hit in recorded).items():
            self.metrics.hits.labels(rule_id).inc(count)
        log = get_logger(feed=feed.name).bind()  # bind(): the lazy proxy resolved once
        for hit in recorded:
            article = articles[hit.id]
            log.info(
                "hit",
                rule=hit.rule_id,
                hit=hit.id,
                story=hit.story,
                url=article.url,
                title=article.title[:200],
            )
        for event in self.on_hits:
            event.set()


# --- worker-thread work (pure) -------------------------------------------------------------


# CPU-bound work runs in two threads of its own, one per lane: "feeds" parses feeds and
# cleans and matches entries from their feed text (bounded by the feed size cap), "pages"
# extracts fetched article pages (a hostile page can hold it for a second or so). So a slow
# page never holds up feeds, the default executor stays free for the rest (a rule reload),
# and work of one kind never runs in two threads at once: the GIL lets only one run anyway,
# and two threads taking turns cost about a third more CPU per entry (lxml lets go of the
# GIL for every parse, and each hand-over is a thread switch; see bench/ingest.py).
# Each lane is a StoreThread, as the SQLite store's: one queue put there and one wake-up of
# the event loop back, where run_in_executor on a ThreadPoolExecutor chains two futures with
# locks and callbacks on both threads (each first-sight poll makes two such calls).
class _Lanes(dict[str, StoreThread]):
    """The lanes' threads, each started on first use (not when this module is imported)."""

    def __missing__(self, lane: str) -> StoreThread:
        thread = self[lane] = StoreThread(lane)
        return thread


_lanes = _Lanes()


async def in_worker(fn: Callable[..., T], *args: Any, lane: str = "feeds") -> T:
    """``fn(*args)`` in the worker thread of ``lane``, with the caller's context (as
    ``to_thread``)."""
    ctx = contextvars.copy_context()
    return await _lanes[lane].call(functools.partial(ctx.run, fn, *args))


def read_feed(body: bytes, url: str) -> Parsed:
    """Parse ``body`` and compute every entry's seen-key."""
    feed = parse_feed(body, url)
    return Parsed(feed.entries, [entry_key(e) for e in feed.entries], feed.ttl_minutes, feed.hub)


def prepare_entries(new: Sequence[tuple[Entry, str]], source: str, rules: RuleSet) -> list[Fresh]:
    """Clean, fingerprint and match new entries from their feed text; one entry that
    cannot be processed is marked failed, never fails the others."""
    out = []
    for entry, key in new:
        try:
            out.append(prepare_entry(entry, key, source, rules))
        except Exception as exc:  # hostile input meeting a library bug: skip this entry only
            out.append(failed(entry, key, exc))
    return out


def failed(entry: Entry, key: str, exc: BaseException) -> Fresh:
    """An entry that could not be processed: recorded as seen with no hits, and logged."""
    article = Article(title=entry.title, url=entry.link if is_http_url(entry.link) else "")
    keys = StoryKeys(seen=key, story=story_id(key))
    return Fresh(article, keys, [], [key], error=f"{type(exc).__name__}: {exc}"[:500])


async def _prepare(
    fn: Callable[..., Fresh], entry: Entry, key: str, *args: Any, lane: str = "feeds"
) -> Fresh:
    """``fn(entry, key, *args)`` in a worker thread, a failed Fresh if it raises."""
    try:
        return await in_worker(fn, entry, key, *args, lane=lane)
    except Exception as exc:  # one bad page or entry never stops its feed
        return failed(entry, key, exc)


def _passing(exc: FetchError) -> bool:
    """A fetch failure that may well succeed later (no answer, 408, 425, 429, 5xx)."""
    if exc.status is not None:
        return exc.status in (408, 425, 429) or exc.status >= 500
    return not exc.lasting


def _page_tries(meta: dict[str, Any], pending: set[str]) -> dict[str, int]:
    """The per-entry count of passing page failures, kept in feed meta (only for entries
    still unseen, so it cannot grow without bound)."""
    tries: dict[str, int] = {k: v for k, v in meta.get("page_tries", {}).items() if k in pending}
    meta["page_tries"] = tries
    return tries


def prepare_entry(entry: Entry, key: str, source: str, rules: RuleSet) -> Fresh:
    """One entry from its feed text: cleaned, fingerprinted, matched."""
    article = entry_article(entry, source=source, summary=False)
    matches = matched(rules, article)
    if matches and not article.summary:
        article = article.replace(summary=entry_summary(entry))
    return Fresh(article, story_keys(article, near=bool(matches)), matches, [key])


def prepare_page(entry: Entry, key: str, source: str, resp: Response, rules: RuleSet) -> Fresh:
    """One entry from its fetched page (the feed's text when extraction finds nothing)."""
    article = entry_article(entry, source=source)
    try:
        page = extract(resp.body, resp.url, content_type=resp.headers.get("content-type"))
    except ParseError:
        page = Article()
    if page.text:
        article = merge(article, page)
    matches = matched(rules, article)
    keys = story_keys(article, near=bool(matches))
    return Fresh(article, keys, matches, sorted({key, keys.seen}))


def matched(rules: RuleSet, article: Article) -> list[Match]:
    """The rules that fire on ``article``, their spans worked out here (in the worker
    thread) rather than when the hits are built on the event loop."""
    matches = rules.match(article)
    for m in matches:
        m.spans  # noqa: B018 - computed on first access
    return matches


def merge(entry: Article, page: Article) -> Article:
    """The page's text and canonical URL, with the feed's metadata where the page lacks it."""
    return Article(
        title=entry.title or page.title,
        text=page.text or entry.text,
        url=page.url or entry.url,
        published=entry.published or page.published,
        language=page.language or entry.language,
        summary=entry.summary,
        source=entry.source,
        guid=entry.guid,
    )


def _first_of_each(
    entries: list[Entry], keys: list[str], fresh: set[str]
) -> list[tuple[Entry, str]]:
    """The unseen entries, each key once (a feed may list an entry twice)."""
    out: list[tuple[Entry, str]] = []
    taken: set[str] = set()
    for entry, key in zip(entries, keys, strict=True):
        if key in fresh and key not in taken:
            taken.add(key)
            out.append((entry, key))
    return out


# --- one scheduled poll ---------------------------------------------------------------------


async def poll_once(
    poller: Poller, feed: FeedConfig, owner: str, *, deadline: float | None = None
) -> FeedState:
    """Claim, poll, record the outcome and log the canonical poll line; never raises.

    A poll still running after ``deadline`` seconds is cut short and counts as a failed
    poll (backing off like any error); entries recorded before the cut stay recorded, and
    the feed's old validators and schedule notes are kept (as after any poll that stops
    half-way), so the next poll fetches the others again rather than hearing 304.
    """
    store = poller.store
    claimed = await store.claim_feed(feed.url, owner, ttl=feed.interval)
    try:
        # Read once claimed: a poll another replica just finished has left its validators.
        state = await store.get_feed(feed.url) or FeedState()
    except Exception:
        if claimed:
            await _release(store, feed, owner)
        raise
    if not claimed:
        return state
    started = time.monotonic()
    # A shallow copy: the schedule notes replace meta's values, never change them in place
    # (a deep copy of the publishing-rate list cost 304 polls ~10%).
    before = state.etag, state.last_modified, dict(state.meta)
    timer = asyncio.timeout(deadline)
    try:
        async with timer:
            result = await poller.poll(feed, state)
        state.errors, state.last_error, state.last_status = 0, None, int(result.status)
        delay = _success_delay(feed, state, result)
    except asyncio.CancelledError:  # cut at shutdown: nothing noted, the claim handed back
        await asyncio.shield(_release(store, feed, owner))
        raise
    except (FetchError, ParseError) as exc:
        result = PollResult("error")
        delay = _failure(poller, feed, state, exc)
    except Exception as exc:
        # The poll stopped half-way: what it noted of the feed is forgotten, above all the
        # new validators, so the entries it did not record come again rather than hide
        # behind a 304 (and are not counted twice towards the publishing rate).
        state.etag, state.last_modified, state.meta = before
        result = PollResult("error")
        if isinstance(exc, TimeoutError) and timer.expired():
            cut = FetchError(f"poll cut short after {deadline:g} s")
            delay = _failure(poller, feed, state, cut)
        else:
            # Not the feed's fault as far as we know (a store blip, a library surprise):
            # the poll counts as failed and backs off like any error; the claim is released.
            await _release(store, feed, owner)
            if _store_down(exc):
                raise
            delay = _failure(poller, feed, state, ParseError(f"{type(exc).__name__}: {exc}"))
    ms = int((time.monotonic() - started) * 1000)
    state.next_poll = time.time() + schedule.jittered(delay, random.random())
    try:
        await store.put_feed(feed.url, state)
    finally:
        await _release(store, feed, owner)
    _log_poll(poller, feed, state, result, ms)
    return state


async def _release(store: Store, feed: FeedConfig, owner: str) -> None:
    with contextlib.suppress(Exception):  # a store that is down lets the claim expire
        await store.release_feed(feed.url, owner)


def _store_down(exc: Exception) -> bool:
    """Store outages propagate to the feed loop, which waits and tries again."""
    return isinstance(exc, RedisError | sqlite3.Error | OSError)


def _success_delay(feed: FeedConfig, state: FeedState, result: PollResult) -> float:
    now = time.time()
    base = schedule.entry_interval(state.meta, now, feed.interval, feed.max_interval)
    pushed = schedule.pushed_recently(state.meta, now, feed.max_interval)
    return schedule.success_delay(
        base, result.server_delay, feed.max_interval, pushed_recently=pushed
    )


def _failure(poller: Poller, feed: FeedConfig, state: FeedState, exc: Exception) -> float:
    """Record a failed poll in ``state``; returns the delay to the next attempt."""
    status = getattr(exc, "status", None)
    state.errors += 1
    state.last_error, state.last_status = str(exc), status
    poller.metrics.poll_errors.labels(feed.name).inc()
    if status in (404, 410) and schedule.forget_redirect(state.meta):
        # The adopted redirect target vanished: go back to the configured URL at once.
        get_logger(feed=feed.name).warning("moved feed gone; back to the configured URL")
        return feed.interval
    if status == 410:
        state.disabled = True
        poller.metrics.feed_disabled.labels(feed.name).set(1)
    return schedule.error_delay(feed.interval, state.errors, getattr(exc, "retry_after", None))


def _log_poll(
    poller: Poller, feed: FeedConfig, state: FeedState, result: PollResult, ms: int
) -> None:
    status: int | str = result.status
    if status == "error":
        status = state.last_status or "error"
    poller.metrics.polls.labels(feed.name, str(status)).inc()
    poller.metrics.poll_seconds.observe(ms / 1000)
    line = {"status": status, "entries": result.entries, "new": result.new, "hits": result.hits}
    log = get_logger(feed=feed.name)
    if state.disabled:
        log.error("feed disabled: it answered 410 Gone", **line, ms=ms)
    elif state.errors:
        log.warning("polled", **line, ms=ms, errors=state.errors, error=state.last_error)
    else:
        log.info("polled", **line, ms=ms, next_in=int(state.next_poll - time.time()))
