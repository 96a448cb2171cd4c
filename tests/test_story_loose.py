"""monitor.story.loose_url against the urlsplit version it replaced, frozen below as it was:
the same story identity for every key, whatever its scheme, host, userinfo, brackets,
characters, slashes, query and fragment, and the same error where urlsplit refuses one.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.parse import Feed, entry_article
from monitor.story import article_key, loose_url

# -- the reference: monitor/story.py's loose_url before the fast path (do not "fix") -------


def reference_loose_url(key: str) -> str:
    if not key.startswith(("http://", "https://")):
        return key
    parts = urlsplit(key)
    host = (parts.netloc.rpartition("@")[2]).removeprefix("www.")
    path = parts.path.rstrip("/") or "/"
    return f"//{host}{path}" + (f"?{parts.query}" if parts.query else "")


def outcome(fn: object, key: str) -> tuple[str, str]:
    """What ``fn(key)`` gives: ("=", result) or ("!", the exception's type)."""
    try:
        return "=", fn(key)  # type: ignore[operator]
    except Exception as exc:  # any error must be the reference's
        return "!", type(exc).__name__


# Pieces of keys: every character urlsplit treats specially (delimiters, brackets, "@",
# the tab and newlines it drops, leading controls it strips), ones NFKC maps onto delimiters,
# and other non-ASCII.
SCHEME = st.sampled_from(["http://", "https://", "HTTP://", "http:/", "http:", "ftp://", "", " "])
WWW = st.sampled_from(["", "www.", "WWW.", "www.www.", "www"])
PIECE = st.text(
    alphabet="aZ09.-_~%+:;=,!$&'()*@[]/?#\t\n\r \x00\x1fé東\ufe13\uff03\u2100\ud800",
    max_size=12,
)
SLASHES = st.sampled_from(["", "/", "//", "///", "/a/", "/a//", "/./"])


@settings(max_examples=3000, deadline=None)
@given(
    st.tuples(
        SCHEME, WWW, PIECE, SLASHES, PIECE, st.sampled_from(["", "?", "#", "?#", "#?"]), PIECE
    )
)
def test_equals_the_reference(parts: tuple[str, ...]) -> None:
    """Keys assembled from the parts urlsplit cuts them into (scheme, www., host, slashes,
    path, "?" or "#", the rest), each part hostile."""
    key = "".join(parts)
    assert outcome(loose_url, key) == outcome(reference_loose_url, key)


@settings(max_examples=2000, deadline=None)
@given(st.text(max_size=60))
def test_equals_the_reference_on_any_text(text: str) -> None:
    """Any text after an http(s) scheme, and as it is."""
    for key in (text, "http://" + text, "https://www." + text):
        assert outcome(loose_url, key) == outcome(reference_loose_url, key)


@pytest.mark.parametrize(
    "key",
    [
        "https://www.example.com/news/a/",
        "http://example.com",
        "http://example.com/",
        "https://example.com//",
        "https://www./a",
        "https://www.www.e.com/a/?q=1",
        "https://e.com/a?",
        "https://e.com/a?#f",
        "https://e.com/a#f?q",
        "https://e.com?q=1/",
        "https://e.com#x",
        "https://e.com:8080/a/",
        "https://e.com:/a",
        "https://user:pw@www.e.com/a",
        "https://www.user@e.com/a",
        "https://@e.com",
        "https://[::1]/a/",
        "https://[::1/a",
        "https://]x/a",
        "https://[v1.x]/a",
        "https://e\u2100.com/a",
        "https://e\uff03.com/a",
        "https://é.com/a/",
        "https://e.com/é/?é=1",
        "https://e.com/a\tb/",
        "https://e.\ncom/a",
        "https://e.com/a;p=1/",
        "https://e.com/%2F/",
        "http://",
        "https://",
        "https:///a",
        "guid:https://e.com/a",
        "title:0123",
        "",
    ],
)
def test_tricky_keys(key: str) -> None:
    """Spellings at each edge of the fast path give what urlsplit gave."""
    assert outcome(loose_url, key) == outcome(reference_loose_url, key)


def test_corpus_keys(corpus_feeds: list[Feed]) -> None:
    """Every corpus entry's seen-set key, as the pipeline has it."""
    keys = [article_key(entry_article(e, source="x")) for f in corpus_feeds for e in f.entries]
    assert len(keys) > 1000
    for key in keys:
        assert loose_url(key) == reference_loose_url(key)
