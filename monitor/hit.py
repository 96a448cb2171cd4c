"""Hits: a rule's match on a story, in the JSON form every sink receives.

Ids are derived, never random: ``h_`` + hash(rule id, story id), so the same rule on the same
story always yields the same hit id — the idempotency key across retries, restarts and
replicas. ``story`` ids come from :mod:`monitor.story`.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from json.encoder import encode_basestring
from typing import Any, Protocol

from monitor.article import Article

SUMMARY_CHARS = 300
# json.dumps with these options builds an encoder on every call; a hit is encoded with this
# one (encoding keeps no state between calls, so it is shared safely by threads).
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_string = encode_basestring  # what _ENCODER.encode does with a str (ensure_ascii off)


class SpanLike(Protocol):
    """What the hit needs from one matched span (monitor.rules provides it)."""

    field: str
    text: str
    start: int
    end: int
    snippet: str


class MatchLike(Protocol):
    """What the hit needs from a rule match (monitor.rules.Match provides it)."""

    @property
    def rule_id(self) -> str: ...
    @property
    def rule_name(self) -> str: ...
    @property
    def spans(self) -> list[Any]: ...


@dataclass(frozen=True, slots=True)
class Hit:
    """One hit, ready to record and deliver. ``body`` is the exact JSON every sink gets."""

    id: str
    rule_id: str
    story: str
    body: bytes
    sinks: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()

    def data(self) -> dict[str, Any]:
        """The hit JSON as a dict."""
        result: dict[str, Any] = json.loads(self.body)
        return result


def hit_id(rule_id: str, story: str) -> str:
    """Stable id of ``rule_id`` firing on ``story``."""
    digest = hashlib.sha256(f"{rule_id}\x00{story}".encode()).hexdigest()
    return "h_" + digest[:24]


@functools.lru_cache(maxsize=1024)  # the hits found together share one detected_at
def iso(ts: datetime | None) -> str | None:
    """RFC 3339 UTC with a ``Z``, second precision; None stays None."""
    if ts is None:
        return None
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_hit(
    match: MatchLike,
    article: Article,
    story: str,
    *,
    sinks: tuple[str, ...] = (),
    channels: tuple[str, ...] = (),
    detected_at: datetime | None = None,
    article_json: str | None = None,
) -> Hit:
    """The hit for ``match`` on ``article``, in the JSON shape of DESIGN.md.

    ``article_json`` is :func:`article_json_of` of ``article`` when the caller already has it
    (an article matching several rules is described and encoded once for all its hits).
    """
    hid = hit_id(match.rule_id, story)
    matches = [
        {"field": s.field, "text": s.text, "start": s.start, "end": s.end, "snippet": s.snippet}
        for s in match.spans
    ]
    rule = {"id": match.rule_id, "name": match.rule_name}
    detected = iso(detected_at or datetime.now(UTC)) or ""
    # The object encoded member by member, the article's part as given: the very bytes
    # _ENCODER.encode gives for the whole dict (same separators, same member order).
    body = (
        f'{{"id":{_string(hid)},"rule":{_ENCODER.encode(rule)},'
        f'"article":{article_json_of(article) if article_json is None else article_json},'
        f'"story":{_string(story)},"matches":{_ENCODER.encode(matches)},'
        f'"detected_at":{_string(detected)}}}'
    ).encode()
    return Hit(hid, match.rule_id, story, body, sinks, channels)


def article_json_of(article: Article) -> str:
    """:func:`article_data` of ``article`` encoded as in the hit JSON."""
    return _ENCODER.encode(article_data(article))


def article_data(article: Article) -> dict[str, Any]:
    """The ``article`` object of the hit JSON."""
    summary = article.summary or article.text[:SUMMARY_CHARS]
    return {
        "id": article_id(article.url or article.guid or article.title),
        "url": article.url,
        "title": article.title,
        "source": article.source,
        "site": article.site,
        "published": iso(article.published),
        "language": article.language,
        "summary": summary[:SUMMARY_CHARS],
    }


def article_id(key: str) -> str:
    """Stable id of an article from its canonical URL (or guid, or title)."""
    return "a_" + hashlib.sha256(key.encode()).hexdigest()[:24]
