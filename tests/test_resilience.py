"""One bad entry, page or redirect never stops a feed; a passing page failure loses nothing."""

from __future__ import annotations

import json
from pathlib import Path

from monitor import schedule
from monitor.clean import MAX_ELEMENTS
from monitor.config import FeedConfig
from monitor.poller import PAGE_TRIES
from tests.test_polling import Answer, Rig, rig

PAGE = (
    "<html><head><title>Korea talks</title></head><body><article>"
    + "<p>Officials in Korea discussed the alliance and its future at length today.</p>" * 12
    + "</article></body></html>"
).encode()


def rss_linking(base: str, *paths: str) -> bytes:
    items = "".join(
        f"<item><title>Item {i}</title><link>{base}{p}</link><guid>{p}</guid>"
        "<description>No keyword here.</description></item>"
        for i, p in enumerate(paths)
    )
    head = '<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
    return f"{head}{items}</channel></rss>".encode()


def page_feed(r: Rig) -> FeedConfig:
    return FeedConfig(f"{r.base}/feed", "test", 60.0, fetch_article=True, max_interval=schedule.DAY)


async def hit_rules(r: Rig) -> list[str]:
    return [json.loads(b)["rule"]["id"] for b in await r.store.hits()]


async def test_control_characters_in_an_entry_do_not_stop_the_feed(tmp_path: Path) -> None:
    """A JSON Feed item full of control characters is handled; its neighbour still alerts."""
    feed = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "t",
        "items": [
            {
                "id": "1",
                "url": "http://news.example/1",
                "title": "a\u0001b",
                "content_html": "<p>x\u0001\u000c\u001b\u0008y</p><p>z</p>",
            },
            {
                "id": "2",
                "url": "http://news.example/2",
                "title": "Korea news",
                "content_html": "<p>Korea\u000c again</p>",
            },
        ],
    }
    body = json.dumps(feed).encode()
    async with rig(tmp_path, {"/feed": [Answer(body=body)]}) as r:
        state = await r.poll(r.feed())
        assert await hit_rules(r) == ["korea"]
    assert state.errors == 0


async def test_page_with_control_characters_is_extracted(tmp_path: Path) -> None:
    """A linked page holding a form feed and escape characters is still extracted and matched."""
    bad_page = PAGE.replace(b"alliance", b"alliance\x0c\x1b")
    async with rig(
        tmp_path, {"/page": [Answer(body=bad_page, headers={"Content-Type": "text/html"})]}
    ) as r:
        r.server.script["/feed"] = [Answer(body=rss_linking(r.base, "/page"))]
        state = await r.poll(page_feed(r))
        assert await hit_rules(r) == ["korea"]
    assert state.errors == 0


async def test_passing_page_failure_is_retried_at_the_next_poll(tmp_path: Path) -> None:
    """A 503 on the article page leaves the entry unseen; the next poll gets the page and alerts."""
    html = {"Content-Type": "text/html"}
    async with rig(tmp_path, {"/page": [Answer(503), Answer(body=PAGE, headers=html)]}) as r:
        r.server.script["/feed"] = [Answer(body=rss_linking(r.base, "/page"))]
        feed = page_feed(r)
        first = await r.poll(feed)
        assert await hit_rules(r) == []
        assert first.meta["page_tries"] == {f"{r.base}/page": 1}
        second = await r.poll(feed)
        assert await hit_rules(r) == ["korea"]
    assert second.meta["page_tries"] == {}
    assert len(r.server.hits("/page")) == 2


async def test_lasting_page_failure_falls_back_to_the_feed_text(tmp_path: Path) -> None:
    """A 404 page is not retried: the entry is matched on its feed text and marked seen."""
    async with rig(tmp_path, {"/page": [Answer(404)]}) as r:
        r.server.script["/feed"] = [Answer(body=rss_linking(r.base, "/page"))]
        feed = page_feed(r)
        await r.poll(feed)
        await r.poll(feed)
    assert len(r.server.hits("/page")) == 1


async def test_page_retries_are_bounded(tmp_path: Path) -> None:
    """A page that keeps failing is tried PAGE_TRIES times, then the feed text is used."""
    async with rig(tmp_path, {"/page": [Answer(500)]}) as r:
        r.server.script["/feed"] = [Answer(body=rss_linking(r.base, "/page"))]
        feed = page_feed(r)
        for _ in range(PAGE_TRIES + 2):
            await r.poll(feed)
    assert len(r.server.hits("/page")) == PAGE_TRIES


async def test_malformed_redirect_is_a_failed_poll(tmp_path: Path) -> None:
    """A redirect to an unparseable URL fails that poll with a clear error, nothing more."""
    async with rig(tmp_path, {"/feed": [Answer(302, headers={"Location": "http://[::1"})]}) as r:
        state = await r.poll(r.feed())
    assert state.errors == 1 and state.last_error is not None
    assert "invalid URL" in state.last_error


async def test_page_too_large_to_extract_falls_back_to_the_feed_text(tmp_path: Path) -> None:
    """A linked page of more elements than extraction will take (hostile or absurd) is
    refused at once; the entry is still matched on its feed text."""
    huge = (
        b"<html><body>" + b"<div><p>Korea</p></div>" * (MAX_ELEMENTS // 2 + 10) + b"</body></html>"
    )
    html = {"Content-Type": "text/html"}
    async with rig(tmp_path, {"/page": [Answer(body=huge, headers=html)]}) as r:
        item = (
            f"<item><title>Talks</title><link>{r.base}/page</link><guid>p</guid>"
            "<description>Officials in Korea met again today.</description></item>"
        )
        head = '<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
        r.server.script["/feed"] = [Answer(body=f"{head}{item}</channel></rss>".encode())]
        state = await r.poll(page_feed(r))
        assert await hit_rules(r) == ["korea"]
    assert state.errors == 0
