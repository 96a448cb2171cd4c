"""The plain-URL fast paths of monitor.urls and monitor.parse give what urllib gives."""

from __future__ import annotations

import random
from urllib.parse import urljoin, urlparse, urlsplit, urlunparse, urlunsplit

import pytest

from monitor import parse, urls

PLAIN = [
    "http://example.com",
    "https://example.com/",
    "https://Example.COM/a/b.html?x=1&utm_source=rss#top",
    "http://x.com?id=42",
    "http://x.com#frag",
    "http://x.com:8080/a",
    "http://x.com:/a",
    "https://x.com//a/../b/./c",
    "https://x.com/a?b?c#d#e",
    "https://x.com/a%20b?q=%2F;x",
    "http://a-b.c.d/@user/:x",
    "http://./",
]
NOT_PLAIN = [
    "",
    "HTTP://x.com/",  # upper-case scheme: urlsplit lower-cases it
    "http://x.com/a?",  # empty query: put back without the "?"
    "http://x.com/a#",  # empty fragment: put back without the "#"
    "http://x.com/a;",  # urlparse's params: an empty one is dropped
    "http://x.com/a;p",
    "http://u@x.com/",
    "http://[::1]/",
    "http://[bad/",
    "http://é.com/",
    "http://x.com/é",
    "http://x.com/a b",
    "http://x.com/a\tb",
    " http://x.com/",
    "http:///a",
    "http:/x.com",
    "ftp://x.com/",
    "//x.com/a",
    "javascript:alert(1)",
]
BASES = [
    "",
    "http://b.org/dir/page",
    "https://b.org/",
    "feed:x",
    "http://[bad/",
    "HTTP://B.org/a;p?q#f",
]


def _join(base: str, url: str) -> str | None:
    try:
        return urljoin(base, url)
    except ValueError:
        return None


@pytest.mark.parametrize("url", PLAIN)
def test_plain_urls_come_back_from_urllib_as_written(url: str) -> None:
    """A plain URL survives split/unsplit, parse/unparse and urljoin with any base."""
    assert urls.is_plain_http_url(url)
    assert urlunsplit(urlsplit(url)) == url
    assert urlunparse(urlparse(url)) == url
    for base in BASES:
        assert _join(base, url) in (url, None)


@pytest.mark.parametrize("url", NOT_PLAIN)
def test_other_urls_take_the_urllib_path(url: str) -> None:
    """URLs urllib would respell, or that are not http(s) with a plain host, are not plain."""
    assert not urls.is_plain_http_url(url)


def _random_url(rnd: random.Random) -> str:
    schemes = ["http://", "https://", "HTTP://", "http:/", "", "//", "ftp://"]
    hosts = ["x.com", "X.Com", "a-b.c", "[::1]", "u@x.com", "x.com:80", "x.com:", "x.com:99999", ""]
    alphabet = [*"/?#;&=%:@.aZ09 \t\n~é[]!\"'\\", "utm_source=a", "fbclid=1", ".."]
    tail = "".join(rnd.choice(alphabet) for _ in range(rnd.randrange(12)))
    return rnd.choice(schemes) + rnd.choice(hosts) + tail


def test_fast_paths_agree_with_urllib_on_random_urls() -> None:
    """is_http_url, canonical_url and the feed-link join answer as urllib alone would."""
    rnd = random.Random(20240611)
    for _ in range(20_000):
        url, base = _random_url(rnd), rnd.choice(BASES)
        assert urls._is_http_url.__wrapped__(url) == urls._split_is_http_url(url)
        stripped = url.strip()
        assert urls.canonical_url(url) == urls._split_canonical_url(stripped, None)
        assert urls.canonical_url(url, base) == urls._split_canonical_url(stripped, base or None)
        if base and parse._text(url):
            assert parse._link(url, base) == parse._join.__wrapped__(base, parse._text(url))
