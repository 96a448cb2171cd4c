"""One alert per story: SimHash fingerprints, the stores' story index, and syndication.

The syndication case runs the real poller on real HTTP against both stores: the same article
on two sites (different URLs, tracking parameters, site chrome and titles) plus a third feed
repeating one link with other tracking parameters yields exactly one hit per rule.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import sys
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestServer
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor import simhash
from monitor.article import Article
from monitor.config import FeedConfig, FetchConfig
from monitor.fetch import Fetcher, make_session
from monitor.metrics import Metrics
from monitor.poller import Poller, poll_once
from monitor.rules import RuleSet
from monitor.simhash import MAX_DISTANCE, MIN_WORDS, bands, distance, fingerprint
from monitor.store.base import Store
from monitor.store.redis import RedisStore
from monitor.store.sqlite import SQLiteStore
from monitor.story import story_keys
from tests.conftest import RedisServer

STORY = [
    "South Korea and the United States agreed on Wednesday to keep working toward the "
    "transfer of wartime operational control of allied forces to Seoul, officials said.",
    "Defense ministers from both countries met in the capital for their annual security "
    "talks, where they reviewed a roadmap that sets conditions for the handover.",
    "The transfer has been delayed several times since it was first agreed more than a "
    "decade ago, as both sides assessed the readiness of the Korean military.",
    "Officials said a full operational capability test of the combined command would be "
    "held next year, a key step before any final decision on timing is made.",
    "North Korea has stepped up missile testing this year, and analysts said the allies "
    "were keen to show unity while the transition plans move ahead slowly.",
]
OTHER = [
    "Astronauts on the space station completed a six hour spacewalk on Thursday to replace "
    "an ageing antenna system, the space agency said in a statement afterwards.",
    "The pair worked outside the orbiting laboratory in cold darkness, removing bolts and "
    "cables before installing the new unit that mission control had tested earlier.",
    "Engineers on the ground monitored the work closely and said the antenna was operating "
    "normally after the crew returned inside and began the repressurisation process.",
]
RULES = """
rules:
  - id: korea-opcon
    query: 'Korea AND "operational control"'
  - id: seoul
    query: 'Seoul'
"""


def page(chrome: str, title: str, paragraphs: list[str]) -> bytes:
    """A news page: the article among a site's own menus, sidebar and footer."""
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    return f"""<html lang="en"><head><title>{title}</title></head><body>
<nav><a href="/">{chrome} home</a> <a href="/world">World</a> <a href="/sport">Sport</a></nav>
<main><article><h1>{title}</h1><p class="byline">By staff of {chrome}</p>{body}</article></main>
<aside><h3>Most read on {chrome}</h3><ul><li><a href="/x">Celebrity wedding photos</a></li>
<li><a href="/y">Ten recipes for a quick dinner</a></li></ul></aside>
<footer>Copyright 2024 {chrome}. All rights reserved. Subscribe to our newsletter.</footer>
</body></html>""".encode()


def feed(items: list[tuple[str, str, str]]) -> bytes:
    """An RSS feed of (title, link, description) items."""
    body = "".join(
        f"<item><title>{t}</title><link>{link.replace('&', '&amp;')}</link>"
        f"<description>{d}</description></item>"
        for t, link, d in items
    )
    head = '<?xml version="1.0"?><rss version="2.0"><channel><title>x</title>'
    return f"{head}{body}</channel></rss>".encode()


@contextlib.asynccontextmanager
async def site(routes: dict[str, bytes]) -> AsyncIterator[TestServer]:
    """A loopback site serving ``routes`` (path -> body)."""

    async def handle(request: web.Request) -> web.Response:
        body = routes.get(request.path)
        if body is None:
            return web.Response(status=404)
        kind = "application/rss+xml" if request.path.endswith(".xml") else "text/html"
        return web.Response(body=body, content_type=kind, charset="utf-8")

    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield server
    finally:
        await server.close()


@contextlib.asynccontextmanager
async def open_store(kind: str, tmp_path: Path, redis_url: str | None) -> AsyncIterator[Store]:
    if kind == "sqlite":
        store = await SQLiteStore(tmp_path / "state.db").open()
        try:
            yield store
        finally:
            await store.close()
        return
    assert redis_url is not None
    client = aioredis.from_url(redis_url)
    try:
        yield RedisStore(client, "nm-story")
    finally:
        await client.aclose()


# --- fingerprints ------------------------------------------------------------------------


def test_fingerprint_is_stable_and_robust_to_chrome_and_case() -> None:
    """Same text with other punctuation, case and a few extra words stays within reach."""
    text = " ".join(STORY)
    other = "SEOUL (Reuters) - " + text.upper().replace(",", "") + " Reporting by staff."
    a, b = fingerprint(text), fingerprint(other)
    assert a is not None and b is not None
    assert a == fingerprint(text)  # deterministic
    assert distance(a, b) <= MAX_DISTANCE


def test_different_stories_are_far_apart() -> None:
    """Unrelated texts differ in many bits."""
    a, b = fingerprint(" ".join(STORY)), fingerprint(" ".join(OTHER * 2))
    assert a is not None and b is not None and distance(a, b) > 3 * MAX_DISTANCE


def test_short_text_has_no_fingerprint() -> None:
    """Fewer than MIN_WORDS words: too short to identify a story."""
    assert fingerprint(" ".join(["word"] * (MIN_WORDS - 1))) is None
    assert fingerprint("") is None


def test_close_fingerprints_share_a_band() -> None:
    """Up to 3 flipped bits always leave one 16-bit band intact (what the index relies on)."""
    fp = fingerprint(" ".join(STORY))
    assert fp is not None
    for flips in ((0, 17, 40), (1, 2, 3), (15, 31, 63)):
        other = fp
        for bit in flips:
            other ^= 1 << bit
        assert set(enumerate(bands(fp))) & set(enumerate(bands(other)))


# --- the stores' story index -------------------------------------------------------------


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
async def test_link_stories(kind: str, tmp_path: Path, redis_server: RedisServer) -> None:
    """Near fingerprints join the first story; far ones and expired ones keep their own."""
    fp = fingerprint(" ".join(STORY))
    far = fingerprint(" ".join(OTHER * 2))
    assert fp is not None and far is not None
    near = fp ^ 0b1001  # 2 bits apart
    async with open_store(kind, tmp_path, redis_server.url) as store:
        got = await store.link_stories([(fp, "s_a"), (near, "s_b"), (far, "s_c")], 1000.0, 100.0)
        again = await store.link_stories([(near, "s_d")], 1050.0, 100.0)
        later = await store.link_stories([(fp ^ 0b110, "s_e")], 1500.0, 100.0)
    assert got == ["s_a", "s_a", "s_c"]
    assert again == ["s_a"]
    assert later == ["s_e"]  # the window has passed


# --- syndication, end to end -------------------------------------------------------------


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
async def test_syndicated_story_alerts_once(
    kind: str, tmp_path: Path, redis_server: RedisServer
) -> None:
    """One story under other URLs, tracking parameters, chrome and feeds: one hit per rule."""
    a_routes: dict[str, bytes] = {
        "/world/korea-opcon": page("Wire Daily", "Allies agree on OPCON path", STORY),
        "/space": page("Wire Daily", "Spacewalk done", OTHER * 2),
    }
    b_routes: dict[str, bytes] = {
        "/news/2024/12/01/123": page(
            "Portal News", "S.Korea, U.S. keep OPCON transfer on track", STORY
        ),
    }
    async with (
        site(a_routes) as a,
        site(b_routes) as b,
        open_store(kind, tmp_path, redis_server.url) as store,
    ):
        base_a, base_b = f"http://127.0.0.1:{a.port}", f"http://127.0.0.1:{b.port}"
        a_routes["/feed.xml"] = feed(
            [
                ("Allies agree", f"{base_a}/world/korea-opcon?utm_source=rss&utm_medium=feed", "x"),
                ("Spacewalk", f"{base_a}/space", "y"),
            ]
        )
        a_routes["/other.xml"] = feed(
            [("Allies agree (repost)", f"{base_a}/world/korea-opcon?fbclid=abc", "x")]
        )
        b_routes["/feed.xml"] = feed(
            [("Portal: allies", f"{base_b}/news/2024/12/01/123?utm_campaign=z", "z")]
        )
        allowed = (f"127.0.0.1:{a.port}", f"127.0.0.1:{b.port}")
        cfg = FetchConfig(allow_private=allowed, timeout=10.0)
        session = make_session(cfg)
        try:
            poller = Poller(Fetcher(cfg, session), store, Metrics(), RuleSet.from_source(RULES))
            for i, url in enumerate(
                [f"{base_a}/feed.xml", f"{base_b}/feed.xml", f"{base_a}/other.xml"]
            ):
                await poll_once(poller, FeedConfig(url, f"feed{i}", 60.0, True), "owner")
        finally:
            await session.close()
        hits = [json.loads(h) for h in await store.hits()]
    assert sorted(h["rule"]["id"] for h in hits) == ["korea-opcon", "seoul"]
    assert len({h["story"] for h in hits}) == 1


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
async def test_a_copy_that_fires_no_rule_leaves_the_story_to_those_that_do(
    kind: str, tmp_path: Path, redis_server: RedisServer
) -> None:
    """Only articles that fire a rule are fingerprinted: the first copy (its title lacks
    Korea) fires nothing and founds no story; the second founds it and alerts; the third,
    under yet another URL, joins it and does not alert again."""
    rules = "rules:\n  - id: korea-title\n    query: 'title:Korea AND \"operational control\"'\n"
    titles = ["Allies agree on OPCON path", "S.Korea keeps OPCON on track", "Korea: OPCON"]
    routes: dict[str, bytes] = {
        f"/copy{i}": page(f"Site {i}", title, STORY) for i, title in enumerate(titles)
    }
    async with site(routes) as srv, open_store(kind, tmp_path, redis_server.url) as store:
        base = f"http://127.0.0.1:{srv.port}"
        cfg = FetchConfig(allow_private=(f"127.0.0.1:{srv.port}",), timeout=10.0)
        session = make_session(cfg)
        try:
            poller = Poller(Fetcher(cfg, session), store, Metrics(), RuleSet.from_source(rules))
            for i, title in enumerate(titles):
                routes[f"/feed{i}.xml"] = feed([(title, f"{base}/copy{i}", "x")])
                await poll_once(poller, FeedConfig(f"{base}/feed{i}.xml", f"f{i}", 60.0, True), "o")
        finally:
            await session.close()
        hits = [json.loads(h) for h in await store.hits()]
    assert [h["article"]["url"] for h in hits] == [f"{base}/copy1"]


def _reference_fingerprint(text: str) -> int | None:
    """The SimHash as the module docstring states it, one feature at a time."""
    words: list[str] = []
    for line in text.lower().split("\n"):
        found = re.findall(r"[^\W_]+", line)
        if len(found) >= 10:
            words += found
    words = words[:1500]
    if len(words) < MIN_WORDS:
        return None
    hashes = [
        int.from_bytes(hashlib.blake2b(w.encode(), digest_size=8).digest(), "little") for w in words
    ]
    mask = (1 << 64) - 1

    def rot(v: int, n: int) -> int:
        return ((v << n) | (v >> (64 - n))) & mask

    sample = 4 if len(words) >= 400 else 1
    features = [
        (hashes[i] ^ rot(hashes[i + 1], 21) ^ rot(hashes[i + 2], 42)) * 0x9E3779B97F4A7C15 & mask
        for i in range(len(words) - 2)
        if hashes[i] % sample == 0
    ]
    if not features:
        return None
    return sum(
        1 << bit for bit in range(64) if 2 * sum(f >> bit & 1 for f in features) > len(features)
    )


@pytest.mark.parametrize("repeat", [1, 2, 9, 30, 60])
def test_fingerprint_matches_its_definition(repeat: int) -> None:
    """The lane-parallel SimHash equals the feature-by-feature definition, sampled or not."""
    lines = [f"{line} {n}" for n in range(repeat) for line in STORY + OTHER]
    text = "\n".join(
        lines + ["Short byline", "İİİİİİİİİİ", "Ünïcödé wörds: naïve façade ΣΟΦΙΑ"] * 3
    )
    assert fingerprint(text) == _reference_fingerprint(text)


def test_fingerprints_are_right_while_other_threads_clear_the_word_cache(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The word-hash cache is shared by the worker threads; with a tiny limit it is cleared
    all the time, and every fingerprint must still come out whole and right."""
    monkeypatch.setattr(simhash, "_CACHE_LIMIT", 64)
    texts = [
        "\n".join(" ".join(f"w{t}x{i}y{j}" for j in range(12)) for i in range(40)) for t in range(8)
    ]
    expected = [_reference_fingerprint(t) for t in texts]

    def work(t: int) -> list[int | None]:
        return [fingerprint(texts[t]) for _ in range(30)]

    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads take turns all the time, as under load
    try:
        with ThreadPoolExecutor(max_workers=4) as pool:
            results = list(pool.map(work, range(8)))
    finally:
        sys.setswitchinterval(switch)
    assert all(r == [expected[t]] * 30 for t, r in enumerate(results))


def _reference_words(text: str) -> list[str]:
    """SimHash's words as first written: a regex over each lower-cased line."""
    words: list[str] = []
    for line in text.lower().split("\n"):
        if len(line) >= simhash.MIN_LINE_CHARS:
            found = re.findall(r"[^\W_]+", line)
            if len(found) >= simhash.MIN_LINE_WORDS:
                words += found
    return words[: simhash.MAX_WORDS]


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet="aZ09 _-.,'\n\t!#$&()[]|\\/:;\"<>?+=\x7f\u00e9\u0130\u00df", max_size=120))
def test_simhash_words_are_the_regex_words(text: str) -> None:
    """The ASCII shortcut (one translate, then split) finds the words the regex finds, so
    fingerprints stored by earlier versions still match."""
    assert simhash._words(text) == _reference_words(text)
    assert simhash._words(text * 3) == _reference_words(text * 3)


# --- short texts: the feeds' descriptions --------------------------------------------------

LEDE = (
    "South Korea and the United States agreed on Wednesday to keep working toward the "
    "transfer of wartime operational control to Seoul."
)  # 23 words: under MIN_WORDS, over MIN_EXACT_WORDS


def test_exact_fingerprint_ignores_case_punctuation_and_spacing() -> None:
    """Short copies equal but for case, punctuation and spacing share one; another title,
    another text or too few words do not."""
    fp = simhash.exact_fingerprint("Allies agree on OPCON", LEDE)
    assert fp is not None and fingerprint(LEDE) is None
    assert (
        simhash.exact_fingerprint("ALLIES agree on OPCON!", LEDE.upper().replace(" ", "  ")) == fp
    )
    assert simhash.exact_fingerprint("Allies disagree on OPCON", LEDE) != fp
    assert simhash.exact_fingerprint("Allies agree on OPCON", LEDE + " More soon.") != fp
    assert simhash.exact_fingerprint("Allies", "Read more about it on our website") is None
    minus = "Temperatures fell to -5 degrees overnight in Seoul as the cold wave went on"
    assert simhash.exact_fingerprint("Cold", minus + " and on.") != simhash.exact_fingerprint(
        "Cold", minus.replace("-5", "5") + " and on."
    )
    assert simhash.exact_fingerprint("Allies agree on OPCON", LEDE, "2026-11-28") != fp


def test_a_templated_item_back_the_next_day_is_another_story() -> None:
    """The same title and short text under a new URL on another day (a daily template) is
    another story; copies of the same day are one, whatever their time zones say."""
    day1 = datetime(2026, 11, 27, 23, 30, tzinfo=UTC)
    same_instant = day1.astimezone(timezone(timedelta(hours=9)))  # 28 Nov in Seoul
    keys = [
        story_keys(
            Article(title="Daily wrap", text=LEDE, url=f"https://a.example/{i}", published=p)
        )
        for i, p in enumerate([day1, same_instant, day1 + timedelta(days=1)])
    ]
    assert keys[0].fingerprint == keys[1].fingerprint != keys[2].fingerprint


async def poll_feeds(
    store: Store, feeds: dict[str, list[tuple[str, str, str]]]
) -> list[dict[str, Any]]:
    """Poll each feed of (title, link-path, description) items, no pages fetched; the hits."""
    routes: dict[str, bytes] = {}
    async with site(routes) as srv:
        base = f"http://127.0.0.1:{srv.port}"
        for path, items in feeds.items():
            routes[path] = feed([(t, f"{base}{link}", d) for t, link, d in items])
        cfg = FetchConfig(allow_private=(f"127.0.0.1:{srv.port}",), timeout=10.0)
        session = make_session(cfg)
        try:
            poller = Poller(Fetcher(cfg, session), store, Metrics(), RuleSet.from_source(RULES))
            for i, path in enumerate(feeds):
                await poll_once(poller, FeedConfig(f"{base}{path}", f"f{i}", 60.0), "owner")
        finally:
            await session.close()
    return [json.loads(h) for h in await store.hits()]


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
async def test_a_syndicated_description_alerts_once(
    kind: str, tmp_path: Path, redis_server: RedisServer
) -> None:
    """The same title and one-sentence description on two portals under other URLs (the
    feed text only, too short for a SimHash): one story, one hit per rule."""
    title = "S.Korea, U.S. discuss wartime operational control"
    async with open_store(kind, tmp_path, redis_server.url) as store:
        hits = await poll_feeds(
            store,
            {
                "/a.xml": [(title, "/p/syn-a", LEDE)],
                "/b.xml": [(title.upper(), "/q/syn-b?utm_source=x", LEDE.replace(",", " ,"))],
            },
        )
    assert sorted(h["rule"]["id"] for h in hits) == ["korea-opcon", "seoul"]
    assert len({h["story"] for h in hits}) == 1


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
async def test_one_description_under_other_titles_is_other_stories(
    kind: str, tmp_path: Path, redis_server: RedisServer
) -> None:
    """A site giving every entry the same description does not fold its stories into one:
    the title is part of the exact fingerprint."""
    async with open_store(kind, tmp_path, redis_server.url) as store:
        hits = await poll_feeds(
            store,
            {
                "/a.xml": [
                    ("Seoul talks, day one", "/1", LEDE),
                    ("Seoul talks, day two", "/2", LEDE),
                ]
            },
        )
    assert len([h for h in hits if h["rule"]["id"] == "seoul"]) == 2
    assert len({h["story"] for h in hits}) == 2
