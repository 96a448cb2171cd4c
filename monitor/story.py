"""Story identity: which articles count as "the same" for the seen-set and for hits.

Promises:

- :func:`article_key` is the seen-set key of one article: its canonical URL when it has one,
  else ``guid:<guid>``, else ``title:<sha256 of the normalised title>``. Keys of different
  kinds cannot collide (URLs never start with ``guid:``/``title:``).
- :func:`story_id` is ``s_`` + the first 24 hex digits of SHA-256 of the canonical URL (or of
  the article key when there is no URL): stable across processes, replicas and restarts.
- :func:`story_keys` is the one place the pipeline asks for both. Near-duplicate grouping
  (SimHash of the text, so syndicated copies under other URLs join one story) will add its
  keys to :class:`StoryKeys` here without changing any caller.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from monitor.article import Article

STORY_HEX_CHARS = 24


@dataclass(frozen=True, slots=True)
class StoryKeys:
    """The keys one article is known by: ``seen`` for the seen-set, ``story`` for hits."""

    seen: str
    story: str


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


def story_keys(article: Article) -> StoryKeys:
    """Every key the pipeline needs for ``article`` (the seam for near-duplicate grouping)."""
    key = article_key(article)
    return StoryKeys(seen=key, story=story_id(key))
