"""URL canonicalisation (monitor.urls) and story keys (monitor.story)."""

from __future__ import annotations

import re

import pytest

from monitor import urls
from monitor.article import Article
from monitor.story import article_key, loose_url, story_id, story_keys
from monitor.urls import canonical_url, is_http_url, strip_tracking

CANONICAL_CASES = [
    # (url, base, expected)
    ("https://example.com/a", None, "https://example.com/a"),
    ("HTTPS://Example.COM/Path/Case", None, "https://example.com/Path/Case"),
    ("http://example.com:80/a", None, "http://example.com/a"),
    ("https://example.com:443/a", None, "https://example.com/a"),
    ("https://example.com:8443/a", None, "https://example.com:8443/a"),
    ("http://example.com:443/a", None, "http://example.com:443/a"),
    ("https://example.com", None, "https://example.com/"),
    ("https://example.com?x=1", None, "https://example.com/?x=1"),
    ("https://example.com/a#section-2", None, "https://example.com/a"),
    ("https://example.com/a?utm_source=rss&utm_medium=feed", None, "https://example.com/a"),
    ("https://example.com/a?id=7&utm_campaign=x&page=2", None, "https://example.com/a?id=7&page=2"),
    ("https://example.com/a?b=2&a=1", None, "https://example.com/a?b=2&a=1"),
    ("https://example.com/a?UTM_Source=x&id=1", None, "https://example.com/a?id=1"),
    ("https://example.com/a?fbclid=abc", None, "https://example.com/a"),
    ("https://example.com/a?gclid=1&dclid=2&msclkid=3&yclid=4", None, "https://example.com/a"),
    ("https://example.com/a?mc_cid=1&mc_eid=2&igshid=3&_ga=4", None, "https://example.com/a"),
    ("https://example.com/a?ref_src=twsrc&cmpid=rss&ocid=msn", None, "https://example.com/a"),
    ("https://example.com/a?at_medium=rss&at_campaign=x&id=9", None, "https://example.com/a?id=9"),
    ("https://example.com/a?ref=home&source=rss", None, "https://example.com/a?ref=home&source=rss"),
    ("https://example.com/a?q=a%20b&utm_term=x", None, "https://example.com/a?q=a%20b"),
    ("https://example.com/a?flag&utm_source=x", None, "https://example.com/a?flag"),
    ("https://example.com/a?", None, "https://example.com/a"),
    ("/world/story-1?utm_source=rss", "https://News.example.com/feed.xml",
     "https://news.example.com/world/story-1"),
    ("story-2", "https://example.com/world/", "https://example.com/world/story-2"),
    ("//cdn.example.com/x", "https://example.com/", "https://cdn.example.com/x"),
    ("https://other.example/x", "https://example.com/", "https://other.example/x"),
    ("  https://example.com/a  ", None, "https://example.com/a"),
    ("https://user@Example.com:443/a", None, "https://user@example.com/a"),
    ("http://[::1]:80/a", None, "http://[::1]/a"),
    ("https://www.example.com/a", None, "https://www.example.com/a"),
    ("urn:uuid:1225c695-cfb8", None, "urn:uuid:1225c695-cfb8"),
    ("mailto:desk@example.com", None, "mailto:desk@example.com"),
    ("/relative/only", None, "/relative/only"),
    ("https://example.com:99999/a", None, "https://example.com:99999/a"),
]  # fmt: skip


@pytest.mark.parametrize(("url", "base", "expected"), CANONICAL_CASES)
def test_canonical_url(url: str, base: str | None, expected: str) -> None:
    """canonical_url spells each URL one way: lower scheme/host, no default port, no tracking."""
    assert canonical_url(url, base) == expected


@pytest.mark.parametrize(("url", "_base", "expected"), CANONICAL_CASES)
def test_canonical_url_is_idempotent(url: str, _base: str | None, expected: str) -> None:
    """Canonicalising a canonical URL changes nothing."""
    assert canonical_url(expected) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://example.com/a", True),
        ("http://example.com", True),
        ("HTTP://EXAMPLE.COM/", True),
        ("javascript:alert(1)", False),
        ("data:text/html,<script>alert(1)</script>", False),
        ("file:///etc/passwd", False),
        ("ftp://example.com/a", False),
        ("mailto:a@example.com", False),
        ("https://", False),
        ("/relative", False),
        ("", False),
        ("http://[::1", False),
    ],
)
def test_is_http_url(url: str, expected: bool) -> None:
    """Only absolute http(s) URLs with a host count as fetchable."""
    assert is_http_url(url) is expected


def test_strip_tracking_keeps_order_and_encoding() -> None:
    """Non-tracking parameters keep their order and their exact encoding."""
    assert strip_tracking("z=1&utm_x=2&a=%2F&fbclid=q&m=") == "z=1&a=%2F&m="


def test_story_id_shape_and_stability() -> None:
    """story_id is s_ + 24 hex digits and depends only on the canonical URL."""
    sid = story_id("https://example.com/a")
    assert re.fullmatch(r"s_[0-9a-f]{24}", sid)
    assert sid == story_id("https://example.com/a")
    assert sid != story_id("https://example.com/b")


def test_article_key_prefers_url_then_guid_then_title() -> None:
    """The seen-set key is the URL, else the guid, else a hash of the title."""
    assert article_key(Article(title="T", url="https://e.com/a", guid="g")) == "https://e.com/a"
    assert article_key(Article(title="T", guid="g-1")) == "guid:g-1"
    key = article_key(Article(title="Only a title"))
    assert re.fullmatch(r"title:[0-9a-f]{64}", key)
    assert key == article_key(Article(title="Only  a title"))  # titles are normalised first


def test_story_keys_tie_seen_key_and_story() -> None:
    """story_keys gives the exact seen key and a story id from its loose spelling."""
    keys = story_keys(Article(title="T", url="https://e.com/a"))
    assert keys.seen == "https://e.com/a"
    assert keys.story == story_id(loose_url("https://e.com/a"))


@pytest.mark.parametrize(
    "url",
    [
        "https://www.example.com/world/opcon-talks",
        "http://example.com/world/opcon-talks/",
        "https://example.com/world/opcon-talks//",
        "http://www.example.com/world/opcon-talks",
    ],
)
def test_one_story_under_url_spellings(url: str) -> None:
    """Scheme, www. and trailing slashes do not split a story (the seen key stays exact)."""
    base = story_keys(Article(title="T", url="https://example.com/world/opcon-talks"))
    keys = story_keys(Article(title="T", url=url))
    assert keys.story == base.story
    assert keys.seen == url


def test_long_urls_are_answered_but_not_cached() -> None:
    """The URL caches keep only ordinary lengths: a hostile page's megabyte-long canonical
    link is answered like any other, never held in memory afterwards."""
    huge = "https://example.com/" + "a" * 1_000_000 + "?utm_source=x&id=1"
    before = (urls._is_http_url.cache_info().currsize, urls._canonical_url.cache_info().currsize)
    assert urls.is_http_url(huge)
    assert urls.canonical_url(huge) == "https://example.com/" + "a" * 1_000_000 + "?id=1"
    after = (urls._is_http_url.cache_info().currsize, urls._canonical_url.cache_info().currsize)
    assert after == before
    assert urls.canonical_url("HTTPS://Example.com:443/a?utm_medium=b") == "https://example.com/a"
