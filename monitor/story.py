"""Story identity: which articles count as "the same" for the seen-set and for hits.

Promises:

- :func:`article_key` is the seen-set key of one article: its canonical URL when it has one,
  else ``guid:<guid>``, else ``title:<sha256 of the normalised title>``. Keys of different
  kinds cannot collide (URLs never start with ``guid:``/``title:``).
- :func:`story_id` is ``s_`` + the first 24 hex digits of SHA-256 of the canonical URL (or of
  the article key when there is no URL): stable across processes, replicas and restarts.
- :func:`entry_key` is the seen-set key of a feed entry *before* it is cleaned, equal to
  ``article_key(entry_article(entry))``, so entries already seen cost no cleaning at all.
- :func:`story_keys` is the one place the pipeline asks for all of them: ``seen``, the
  URL-derived ``story``, and ``fingerprint`` (the SimHash of the cleaned text; for a text
  too short for one, the exact fingerprint of its title and text, so a wire story's one-line
  description on several portals is one story; None when even that is too short). The
  store's ``link_stories`` then turns (fingerprint, story) into the story id
  hits carry: the story of a near-duplicate seen within :data:`STORY_WINDOW`, so syndicated
  copies under other URLs, with other tracking parameters or other site chrome, are one
  story and alert once per rule. The pipeline fingerprints only articles that fire a rule
  (``near=False`` for the others, a third of the cost of an entry): a story id shows only
  in hits, and every article with a hit is linked, so the first copy that alerts founds the
  story and every later copy that fires joins it.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

from monitor.article import Article
from monitor.parse import Entry
from monitor.simhash import exact_fingerprint, fingerprint
from monitor.textnorm import normalize
from monitor.urls import canonical_url, is_http_url

STORY_HEX_CHARS = 24
STORY_WINDOW = 3 * 86_400.0  # syndicated copies of a story appear within hours, rarely days


@dataclass(frozen=True, slots=True)
class StoryKeys:
    """The keys one article is known by: ``seen`` for the seen-set, ``story`` for hits
    (before near-duplicate linking), ``fingerprint`` of the text for that linking."""

    seen: str
    story: str
    fingerprint: int | None = None


def _sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def story_id(canonical_url: str) -> str:
    """``s_`` + 24 hex digits of SHA-256 of ``canonical_url`` (or any article key)."""
    return "s_" + _sha256_hex(canonical_url)[:STORY_HEX_CHARS]


def article_key(article: Article) -> str:
    """The seen-set key: canonical URL, else ``guid:…``, else ``title:<sha256>``."""
    if article.url:
        return article.url
    if article.guid:
        return "guid:" + article.guid
    return "title:" + _sha256_hex(article.title)


def entry_key(entry: Entry) -> str:
    """The seen-set key ``entry`` will have as an article, computed without cleaning it."""
    if is_http_url(entry.link):
        return canonical_url(entry.link)
    if entry.guid:
        return "guid:" + entry.guid
    return "title:" + _sha256_hex(normalize(entry.title))


def story_keys(article: Article, *, near: bool = True) -> StoryKeys:
    """Every key the pipeline needs for ``article``: seen key, story id and, with ``near``,
    the text fingerprint (None without)."""
    key = article_key(article)
    printed = None
    if near:
        printed = fingerprint(article.text)
        if printed is None:
            day = _utc_day(article.published)
            printed = exact_fingerprint(article.title, article.text, day)
    return StoryKeys(seen=key, story=story_id(loose_url(key)), fingerprint=printed)


def _utc_day(when: datetime | None) -> str:
    """The UTC date of ``when`` (``2026-11-28``), '' when unknown."""
    if when is None:
        return ""
    return (when.astimezone(UTC) if when.tzinfo else when).date().isoformat()


# A URL key that urlsplit takes apart as written: a netloc of ASCII without userinfo or IPv6
# brackets (nothing for its checks to refuse) and no tab or newline (which it would drop). Most
# keys are spelled so; loose_url then reads the parts off the match, without urlsplit.
_PLAIN_KEY = re.compile(
    r"https?://(?:www\.)?+([^/?#@\[\]\t\n\r\x80-\U0010ffff]*+)(/[^?#\t\n\r]*+)?+"
    r"(?:\?([^#\t\n\r]*+))?+(?:#[^\t\n\r]*+)?+"
)


def loose_url(key: str) -> str:
    """The story identity of a URL key: scheme, ``www.``, userinfo and trailing slashes
    ignored, since sites serve one story under all of those spellings (other keys as given).

    Only the story id uses it; fetching and the seen-set keep the exact canonical URL.
    """
    plain = _PLAIN_KEY.fullmatch(key)
    if plain is None:
        return _split_loose_url(key)
    host, path, query = plain.group(1, 2, 3)
    path = (path.rstrip("/") if path else "") or "/"
    return f"//{host}{path}?{query}" if query else f"//{host}{path}"


def _split_loose_url(key: str) -> str:
    """:func:`loose_url` by urlsplit, for any key."""
    if not key.startswith(("http://", "https://")):
        return key
    parts = urlsplit(key)
    host = (parts.netloc.rpartition("@")[2]).removeprefix("www.")
    path = parts.path.rstrip("/") or "/"
    return f"//{host}{path}" + (f"?{parts.query}" if parts.query else "")
