"""One feed's poll, start to finish: fetch → parse → new? → clean → match → record.

Promises: the fetch is conditional (ETag/Last-Modified); an unchanged feed costs one 304;
each new entry is cleaned (its page fetched and extracted when ``fetch_article`` is on),
matched, and recorded together with its seen-mark in one store call, so a crash can neither
lose a hit nor record it twice. A failing feed backs off (interval × consecutive errors,
capped at a day, or the server's Retry-After) and never stops the others. One log line per
poll and per hit.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass

from monitor.article import Article
from monitor.clean import extract
from monitor.config import FeedConfig
from monitor.errors import FetchError, ParseError
from monitor.fetch import Fetcher
from monitor.hit import Hit, build_hit
from monitor.logs import get_logger
from monitor.metrics import Metrics
from monitor.parse import entry_article, parse_feed
from monitor.rules import RuleSet
from monitor.store.base import FeedState, Store
from monitor.story import article_key, story_id

MAX_BACKOFF = 86400.0
JITTER = 0.1
PAGE_ACCEPT = "text/html,application/xhtml+xml;q=0.9,*/*;q=0.5"
FEED_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, "
    "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
)


@dataclass(slots=True)
class PollResult:
    """What one poll did (for logs, metrics and tests)."""

    status: int | str
    entries: int = 0
    new: int = 0
    hits: int = 0


class Poller:
    """Polls feeds through a shared fetcher, store and (reloadable) rule set."""

    def __init__(
        self,
        fetcher: Fetcher,
        store: Store,
        metrics: Metrics,
        rules: RuleSet,
        on_hits: list[asyncio.Event] | None = None,
    ) -> None:
        self.fetcher = fetcher
        self.store = store
        self.metrics = metrics
        self.rules = rules
        self.on_hits = on_hits or []

    async def poll(self, feed: FeedConfig, state: FeedState) -> PollResult:
        """Poll ``feed`` once, updating ``state`` in place (the caller stores it)."""
        resp = await self.fetcher.get(
            feed.url, etag=state.etag, last_modified=state.last_modified, accept=FEED_ACCEPT
        )
        state.etag = resp.headers.get("etag") or state.etag
        state.last_modified = resp.headers.get("last-modified") or state.last_modified
        if resp.not_modified:
            return PollResult(304)
        parsed = await asyncio.to_thread(parse_feed, resp.body, resp.url)
        articles = [entry_article(e, source=feed.name) for e in parsed.entries]
        self.metrics.entries.labels(feed.name).inc(len(articles))
        fresh = await self.store.unseen([article_key(a) for a in articles])
        result = PollResult(200, entries=len(articles))
        for article in articles:
            if article_key(article) in fresh:
                result.new += 1
                result.hits += await self.process(feed, article)
        self.metrics.new_articles.labels(feed.name).inc(result.new)
        return result

    async def process(self, feed: FeedConfig, entry: Article) -> int:
        """Clean, match and record one new article; returns the number of new hits."""
        article = await self.clean(feed, entry) if feed.fetch_article else entry
        keys = sorted({article_key(entry), article_key(article)})
        story = story_id(article.url or article_key(article))
        hits: list[Hit] = []
        for m in self.rules.match(article):
            hits.append(build_hit(m, article, story, sinks=m.rule.notify, channels=m.rule.channels))
        recorded = await self.store.record(keys, hits)
        for hit in recorded:
            self.metrics.hits.labels(hit.rule_id).inc()
            get_logger().info(
                "hit",
                rule=hit.rule_id,
                hit=hit.id,
                story=story,
                url=article.url,
                title=article.title[:200],
            )
        if recorded:
            for event in self.on_hits:
                event.set()
        return len(recorded)

    async def clean(self, feed: FeedConfig, entry: Article) -> Article:
        """The entry's page, fetched and extracted; the entry itself when that fails."""
        if not entry.url:
            return entry
        try:
            resp = await self.fetcher.get(entry.url, accept=PAGE_ACCEPT)
            page = await asyncio.to_thread(extract, resp.body, resp.url)
        except (FetchError, ParseError) as exc:
            get_logger(feed=feed.name).warning(
                "article fetch failed; matching the feed's text", url=entry.url, error=str(exc)
            )
            return entry
        return merge(entry, page)


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


def next_poll(feed: FeedConfig, state: FeedState, now: float, retry_after: float | None) -> float:
    """When to poll next: the interval on success, a growing backoff on errors (jittered)."""
    delay = min(feed.interval * state.errors, MAX_BACKOFF) if state.errors else feed.interval
    if retry_after is not None:
        delay = max(delay, retry_after)
    return now + delay * (1 - JITTER + 2 * JITTER * random.random())


async def poll_once(poller: Poller, feed: FeedConfig, owner: str) -> FeedState:
    """Claim, poll, record the outcome and log the canonical poll line; never raises."""
    log = get_logger(feed=feed.name)
    store = poller.store
    state = await store.get_feed(feed.url) or FeedState()
    if not await store.claim_feed(feed.url, owner, ttl=feed.interval):
        return state
    started = time.monotonic()
    retry_after: float | None = None
    try:
        result = await poller.poll(feed, state)
        state.errors, state.last_error, state.last_status = 0, None, int(result.status)
        status: int | str = result.status
    except (FetchError, ParseError) as exc:
        result, status = PollResult("error"), getattr(exc, "status", None) or "error"
        state.errors += 1
        state.last_error, state.last_status = str(exc), getattr(exc, "status", None)
        retry_after = getattr(exc, "retry_after", None)
        state.disabled = state.last_status == 410
        poller.metrics.poll_errors.labels(feed.name).inc()
    ms = int((time.monotonic() - started) * 1000)
    state.next_poll = next_poll(feed, state, time.time(), retry_after)
    await store.put_feed(feed.url, state)
    await store.release_feed(feed.url, owner)
    poller.metrics.polls.labels(feed.name, str(status)).inc()
    poller.metrics.poll_seconds.labels(feed.name).observe(ms / 1000)
    line = {
        "status": status,
        "entries": result.entries,
        "new": result.new,
        "hits": result.hits,
        "ms": ms,
    }
    if state.disabled:
        log.error("feed disabled: it answered 410 Gone", **line)
    elif state.errors:
        log.warning("polled", **line, errors=state.errors, error=state.last_error)
    else:
        log.info("polled", **line)
    return state
