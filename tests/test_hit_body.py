"""The hit body is built member by member, the article's part encoded once per article;
it must stay, byte for byte, the JSON of the whole hit object (DESIGN.md's shape, compact
separators, UTF-8, non-ASCII kept as it is)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from monitor.article import Article
from monitor.hit import article_data, article_json_of, build_hit, hit_id, iso
from monitor.rules import Span


@dataclass
class FakeMatch:
    rule_id: str
    rule_name: str
    spans: list[Any] = field(default_factory=list)


AWKWARD = 'quote " backslash \\ tab \t nl \n nul \x00 del \x7f é 漢字 🙂 \u2028 \u202e </script>'
WHEN = datetime(2026, 11, 27, 15, 0, 0, tzinfo=UTC)

CASES = [
    pytest.param(Article(title="Plain", text="body text", url="https://a.example/x"), id="plain"),
    pytest.param(
        Article(
            title=AWKWARD,
            text=AWKWARD * 40,
            url="https://www.Example.COM/path?q=\"x\"&r='y'",
            published=datetime(2021, 12, 1, 6, 36, tzinfo=timezone(timedelta(hours=9))),
            language="ko",
            summary=AWKWARD,
            source=AWKWARD,
            guid="g-1",
        ),
        id="awkward",
    ),
    pytest.param(Article(guid="only-guid", published=datetime(2020, 1, 1)), id="naive-date"),
    pytest.param(Article(), id="empty"),
]


def reference(match: FakeMatch, article: Article, story: str, when: datetime) -> bytes:
    """The body as the whole object encoded in one go."""
    doc = {
        "id": hit_id(match.rule_id, story),
        "rule": {"id": match.rule_id, "name": match.rule_name},
        "article": article_data(article),
        "story": story,
        "matches": [
            {"field": s.field, "text": s.text, "start": s.start, "end": s.end, "snippet": s.snippet}
            for s in match.spans
        ],
        "detected_at": iso(when),
    }
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()


@pytest.mark.parametrize("article", CASES)
@pytest.mark.parametrize(
    "match",
    [
        FakeMatch("r1", "Rule one"),
        FakeMatch(
            "korea-opcon",
            AWKWARD,
            [
                Span("body", AWKWARD, 0, 12, f"…{AWKWARD}…", (1, 13)),
                Span("title", "x", 3, 4, "a x b", (2, 3)),
            ],
        ),
    ],
)
@pytest.mark.parametrize("pre_encoded", [False, True])
def test_the_body_is_the_whole_object_encoded(
    article: Article, match: FakeMatch, pre_encoded: bool
) -> None:
    """With or without the article's JSON given, the body is the one-go encoding."""
    given = article_json_of(article) if pre_encoded else None
    hit = build_hit(match, article, f"s_{AWKWARD}", detected_at=WHEN, article_json=given)
    assert hit.body == reference(match, article, f"s_{AWKWARD}", WHEN)
    assert hit.data()["article"] == article_data(article)


def test_without_a_clock_reading_the_hit_is_stamped_now() -> None:
    """detected_at defaults to the current second."""
    before = datetime.now(UTC).replace(microsecond=0)
    hit = build_hit(FakeMatch("r", "R"), Article(title="t"), "s_1")
    stamped = datetime.strptime(hit.data()["detected_at"], "%Y-%m-%dT%H:%M:%SZ")
    assert before <= stamped.replace(tzinfo=UTC) <= datetime.now(UTC)
