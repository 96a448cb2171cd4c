"""Rule files and matching: every operator, field, entity and error kind, table-driven."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.article import Article
from monitor.errors import ConfigError, ConfigErrors
from monitor.evaluate import Evaluator
from monitor.rules import Match, Rule, RuleSet, Span, make_span, spans

KOREA_ENTITIES = {
    "south-korea": ["South Korea", "S. Korea", "Republic of Korea", "case:ROK", "Seoul"]
}
KOREA_QUERY = '@south-korea AND ("operational control" OR OPCON)'
KOREA_TEXT = (
    "Seoul and Washington agreed on Tuesday to keep working toward the transfer of wartime "
    "operational control of combined forces, officials said after the annual talks."
)


def ruleset(query: str, entities: dict[str, list[str]] | None = None) -> RuleSet:
    """A rule set holding one rule ``r`` with ``query``."""
    doc: dict[str, Any] = {"rules": [{"id": "r", "query": query}]}
    if entities:
        doc["entities"] = entities
    return RuleSet.from_source(yaml.safe_dump(doc, allow_unicode=True))


def fires(query: str, text: str = "", title: str = "", **meta: Any) -> bool:
    """Whether the one-rule set for ``query`` matches the article."""
    matches = ruleset(query, KOREA_ENTITIES).match(Article(title=title, text=text, **meta))
    return bool(matches)


def errors_of(text: str) -> list[str]:
    """The error lines loading ``text`` as a rule file gives (none when it loads)."""
    try:
        RuleSet.from_source(text)
    except ConfigErrors as exc:
        return [str(e) for e in exc.errors]
    return []


# ------------------------------------------------------------------------------ matching table


@pytest.mark.parametrize(
    ("query", "text", "expected"),
    [
        # words and punctuation
        ("korea", "Korea's economy grew.", True),
        ("korea", "Talks in S.Korea", True),
        ("korea", "Koreans voted", False),
        ("korea", "NorthKorea", False),
        ("korea", "KOREA", True),
        ("korea", "north-korea", True),
        ("korea", "korea_times", True),
        ("korea", "", False),
        ('"S. Korea"', "S.Korea said", True),
        ('"S. Korea"', "S Korea said", True),
        ('"S. Korea"', "S-Korea said", True),
        ("S.Korea", "S. Korea said", True),
        ('"south korea"', "south, Korea", True),
        ('"south korea"', "south of korea", False),
        ('"south korea"', "korea south", False),
        ('"operational control"', "wartime operational control of", True),
        ('"operational control"', "control operational", False),
        ('"operational control"', "operational\ncontrol", True),
        # accents, case and other scripts
        ('"Sao Paulo"', "in São Paulo today", True),
        ("São", "SAO", True),
        ("cafe", "Café society", True),
        ("café", "CAFE", True),
        ("strasse", "Straße", True),
        ("istanbul", "İstanbul", True),
        ("OPCON", "opcon", True),
        ("서울", "서울 특별시", True),
        ("서울", "서울에서", False),
        ("москва", "В Москва сегодня", True),
        ("москва", "В Москве сегодня", False),
        ("القاهرة", "في القاهرة اليوم", True),
        ("北京", "北京市政府", True),
        ("東京", "京東", False),
        ("F-35", "the F-35A jets", False),
        ("F-35A", "the F-35A jets", True),
        ("F-35", "an F 35 jet", True),
        # lower-case operator words are plain words
        ("war and peace", "war, peace and more", True),
        ("war and peace", "war and", False),
        ("not guilty", "not guilty", True),
        ("not guilty", "guilty", False),
        ("korea or japan", "korea", False),
        ("korea or japan", "korea or japan", True),
        # case:
        ("case:ROK", "the ROK army", True),
        ("case:ROK", "the rok army", False),
        ("case:ROK", "the Rok army", False),
        ("case:ROK", "the ROK's army", True),
        ("case:ROK", "ROKS", False),
        ('case:"ROK Army"', "the ROK Army said", True),
        ('case:"ROK Army"', "the ROK army said", False),
        ("case:ROK*", "ROKA", True),
        ("case:ROK*", "Roka", False),
        ("case:São", "Sao", False),
        ("case:São", "São", True),
        # prefixes
        ("deter*", "deterrence", True),
        ("deter*", "deter", True),
        ("deter*", "Deterrent", True),
        ("deter*", "undeterred", False),
        ("deter*", "Détermination", True),
        ("nuc*", "NUCLEAR", True),
        ('"nuclear deter*"', "nuclear deterrent", True),
        ('"nuclear deter*"', "nuclear umbrella deterrent", False),
        # AND / OR / NOT and precedence
        ("korea AND japan", "korea japan", True),
        ("korea AND japan", "korea", False),
        ("korea japan", "japan then korea", True),
        ("korea japan", "japan", False),
        ("korea OR japan", "japan", True),
        ("korea OR japan", "china", False),
        ("korea NOT japan", "korea", True),
        ("korea NOT japan", "korea japan", False),
        ("korea AND NOT japan", "korea and Japan's", False),
        ("NOT japan", "anything", True),
        ("NOT japan", "", True),
        ("NOT japan", "japan", False),
        ("NOT NOT japan", "japan", True),
        ("korea OR japan AND china", "korea", True),
        ("korea OR japan AND china", "japan", False),
        ("korea OR japan AND china", "japan china", True),
        ("(korea OR japan) AND china", "korea", False),
        ("(korea OR japan) AND china", "korea china", True),
        ("korea NOT japan OR china", "japan china", True),
        ("korea NOT japan OR china", "korea japan", False),
        ("NOT korea AND japan", "japan", True),
        ("NOT korea AND japan", "korea japan", False),
        ("NOT (korea OR japan)", "china", True),
        ("NOT (korea OR japan)", "japan", False),
        ("korea (japan OR china)", "korea china", True),
        ("korea (japan OR china)", "japan china", False),
        # NEAR / ONEAR: adjacent words are at distance 1
        ("alpha NEAR/1 beta", "alpha beta", True),
        ("alpha NEAR/1 beta", "beta alpha", True),
        ("alpha NEAR/1 beta", "alpha, beta", True),
        ("alpha NEAR/1 beta", "alpha x beta", False),
        ("alpha NEAR/2 beta", "alpha x beta", True),
        ("alpha NEAR/2 beta", "beta x alpha", True),
        ("alpha NEAR/2 beta", "alpha x y beta", False),
        ("alpha NEAR beta", "alpha a b c d beta", True),
        ("alpha NEAR beta", "alpha a b c d e beta", False),
        ("alpha NEAR/5 beta", "beta a b c d alpha", True),
        ("alpha ONEAR/2 beta", "alpha x beta", True),
        ("alpha ONEAR/2 beta", "beta x alpha", False),
        ("alpha ONEAR/1 beta", "alpha beta", True),
        ("alpha ONEAR beta", "alpha a b c d beta", True),
        ("alpha ONEAR beta", "beta alpha", False),
        ("alpha ONEAR/1 beta", "beta alpha beta", True),
        ("alpha NEAR/1 beta", "alpha x beta y alpha", False),
        ("alpha NEAR/1 beta", "alpha x beta alpha", True),
        ('"south korea" NEAR/2 opcon', "South Korea wants OPCON", True),
        ('"south korea" NEAR/1 opcon', "South Korea wants OPCON", False),
        ('opcon NEAR/1 "south korea"', "OPCON South Korea", True),
        ('opcon NEAR/1 "south korea"', "South Korea OPCON", True),
        ('"alpha beta" ONEAR/1 gamma', "alpha beta gamma", True),
        ('"alpha beta" ONEAR/1 gamma', "gamma alpha beta", False),
        ('gamma ONEAR/1 "alpha beta"', "gamma alpha beta", True),
        ("(alpha OR gamma) NEAR/1 beta", "gamma beta", True),
        ("(alpha OR gamma) NEAR/1 beta", "gamma x beta alpha", True),
        ("(alpha OR gamma) NEAR/1 beta", "gamma x beta", False),
        ("alpha NEAR/1 alpha", "alpha", False),
        ("alpha NEAR/1 alpha", "alpha alpha", True),
        ('korea NEAR/3 "south korea"', "south korea", False),
        ('korea NEAR/3 "south korea"', "korea and south korea", True),
        ("(alpha NEAR/1 beta) NEAR/2 gamma", "alpha beta x gamma", True),
        ("(alpha NEAR/1 beta) NEAR/2 gamma", "alpha beta x y gamma", False),
        ("(alpha AND beta) NEAR/1 gamma", "alpha x x x gamma beta", True),
        ("(alpha AND beta) NEAR/1 gamma", "alpha x gamma x beta", False),
        ("(alpha NOT zeta) NEAR/1 beta", "alpha beta", True),
        ("(alpha NOT zeta) NEAR/1 beta", "alpha beta zeta", False),
        ("deter* NEAR/2 nuclear", "nuclear deterrence", True),
        ("case:ROK NEAR/1 army", "ROK army", True),
        ("case:ROK NEAR/1 army", "rok army", False),
        ("alpha NEAR/1 beta", "alpha.\n\nbeta", True),
        # regex (RE2, case-sensitive unless (?i))
        ("/F-35[AB]?/", "the F-35A jets", True),
        ("/F-35[AB]?/", "the f-35 jets", False),
        ("/(?i)f-35/", "the F-35 jets", True),
        (r"/\d{4}-\d{2}-\d{2}/", "on 2024-01-05 it", True),
        (r"/\d{4}-\d{2}-\d{2}/", "on 2024-1-5 it", False),
        (r"/a\/b/", "see a/b", True),
        ("/Seoul|Pusan/ opcon", "Pusan OPCON", True),
        ("/F-35[AB]/ NEAR/2 jets", "F-35A fighter jets", True),
        ("/F-35[AB]/ NEAR/1 jets", "F-35A fighter jets", False),
        ("/서울/", "서울에서", True),
        ("NOT /x{3}/", "xx", True),
        ("NOT /x{3}/", "xxx", False),
        ("/a*/", "bbb", False),
    ],
)
def test_match_body(query: str, text: str, expected: bool) -> None:
    """The rule fires on the body text exactly when the query says it should."""
    assert fires(query, text) is expected


@pytest.mark.parametrize(
    ("query", "title", "text", "expected"),
    [
        ("korea", "Korea talks", "", True),
        ("title:korea", "Korea talks", "", True),
        ("title:korea", "", "korea", False),
        ("body:korea", "Korea", "", False),
        ("body:korea", "", "korea", True),
        ("body:(japan OR korea)", "", "korea", True),
        ("body:(japan OR korea)", "korea", "china", False),
        ('title:"south korea"', "South Korea votes", "", True),
        ("title:korea body:japan", "korea", "japan", True),
        ("title:korea body:japan", "japan", "korea", False),
        ("title:NOT korea", "japan", "korea", True),
        ("title:NOT korea", "korea", "japan", False),
        ("title:(body:korea)", "korea", "", False),
        ("title:(body:korea)", "", "korea", True),
        ("title:alpha NEAR beta", "alpha beta", "", True),
        ("title:alpha NEAR beta", "alpha", "beta", False),
        ("alpha NEAR beta", "alpha", "beta", False),
        ('"alpha beta"', "alpha", "beta", False),
        ("/alpha.*beta/", "alpha", "beta", False),
        ("/alpha.*beta/", "", "alpha and beta", True),
        ("title:/Breaking/", "Breaking: news", "", True),
        ("title:/Breaking/", "", "Breaking: news", False),
        ("alpha beta", "alpha", "beta", True),
    ],
)
def test_match_fields(query: str, title: str, text: str, expected: bool) -> None:
    """Field scopes look only at their field; the default field is title plus body."""
    assert fires(query, text, title=title) is expected


@pytest.mark.parametrize(
    ("query", "meta", "expected"),
    [
        ("site:example.com", {"url": "https://www.example.com/x"}, True),
        ("site:example.com", {"url": "https://example.com/x"}, True),
        ("site:example.com", {"url": "https://news.example.com/x"}, True),
        ("site:example.com", {"url": "https://EXAMPLE.com/x"}, True),
        ("site:example.com", {"url": "https://badexample.com/x"}, False),
        ("site:example.com", {"url": "https://example.com.evil.org/x"}, False),
        ("site:example.com", {}, False),
        ("site:news.example.com", {"url": "https://example.com/x"}, False),
        ("NOT site:example.com", {"url": "https://other.org/"}, True),
        ("source:yonhap", {"source": "Yonhap"}, True),
        ("source:yonhap", {"source": "yonhap-en"}, False),
        ('source:"korea herald"', {"source": "Korea Herald"}, True),
        ("lang:en", {"language": "en"}, True),
        ("lang:en", {"language": "en-US"}, True),
        ("lang:en", {"language": "EN_gb"}, True),
        ("lang:EN", {"language": "en"}, True),
        ("lang:en", {"language": "eng"}, False),
        ("lang:en", {"language": None}, False),
        ("lang:ko", {"language": "en"}, False),
        ("lang:ko OR site:example.com", {"url": "http://example.com", "language": "en"}, True),
        ("site:example.com korea", {"url": "http://example.com"}, False),
    ],
)
def test_match_metadata(query: str, meta: dict[str, Any], expected: bool) -> None:
    """site:, source: and lang: test the article's metadata as DESIGN.md says."""
    assert fires(query, "some text", **meta) is expected


@pytest.mark.parametrize(
    ("title", "text", "expected"),
    [
        ("", KOREA_TEXT, True),
        ("Seoul talks", "The transfer of wartime operational control is near.", True),
        ("", "The ROK and the US discussed OPCON.", True),
        ("", "The rok and the US discussed OPCON.", False),
        ("", "The Republic of Korea seeks operational control.", True),
        ("", "S.Korea seeks OPCON", True),
        ("", "South Korea's OPCON", True),
        ("", "Operational control talks went on in Tokyo.", False),
        ("", "Seoul is cold in winter.", False),
        ("", "Korea seeks OPCON", False),
    ],
)
def test_korea_rule(title: str, text: str, expected: bool) -> None:
    """The DESIGN.md example rule fires on Seoul + wartime operational control, not on 'rok'."""
    assert fires(KOREA_QUERY, text, title=title) is expected


# ------------------------------------------------------------------------------ match results


def test_match_result_fields() -> None:
    """A match carries the rule, its id and name, and a span for every positive term found."""
    rs = RuleSet.from_source(
        yaml.safe_dump(
            {
                "entities": KOREA_ENTITIES,
                "rules": [{"id": "korea-opcon", "name": "Korea OPCON", "query": KOREA_QUERY}],
            }
        )
    )
    [m] = rs.match(Article(title="Seoul talks", text=KOREA_TEXT))
    assert isinstance(m, Match)
    assert (m.rule_id, m.rule_name, m.rule) == ("korea-opcon", "Korea OPCON", rs.rules[0])
    got = [(s.field, s.text) for s in m.spans]
    assert got == [("title", "Seoul"), ("body", "Seoul"), ("body", "operational control")]
    start = KOREA_TEXT.index("operational control")
    assert (m.spans[2].start, m.spans[2].end) == (start, start + len("operational control"))


@pytest.mark.parametrize(
    ("query", "text", "spans"),
    [
        ("korea NOT japan", "korea china", ["korea"]),
        ("korea OR japan", "japan and korea", ["japan", "korea"]),
        ("korea OR NOT japan", "korea china", ["korea"]),
        ("NOT japan", "china", []),
        ("site:example.com OR korea", "korea", ["korea"]),
        ('"S. Korea"', "S.Korea said", ["S.Korea"]),
        ("deter*", "Deterrence, deterred", ["Deterrence", "deterred"]),
        ("/F-35[AB]/", "F-35A and F-35B", ["F-35A", "F-35B"]),
        ("alpha NEAR/1 beta", "alpha beta gamma alpha", ["alpha", "beta"]),
        ("(alpha NOT zeta) NEAR/1 beta", "alpha beta", ["alpha", "beta"]),
        ("korea", "korea " * 10, ["korea"] * 3),
        ("case:ROK", "ROK rok ROK", ["ROK", "ROK"]),
        ("São", "Sao São", ["Sao", "São"]),
    ],
)
def test_spans(query: str, text: str, spans: list[str]) -> None:
    """Spans show the positive terms as they appear in the text (never NOT-ed ones)."""
    [m] = ruleset(query).match(Article(text=text))
    assert [s.text for s in m.spans] == spans
    for s in m.spans:
        assert text[s.start : s.end] == s.text


@settings(max_examples=150, deadline=None, derandomize=True)
@given(
    st.lists(
        st.sampled_from(["Seoul", "S.Korea", "ROK", "rok", "operational control", "OPCON"])
        | st.sampled_from(["talks", "said", "the", "—", "’s", "Séoul", "\n"]),
        max_size=40,
    ).map(" ".join)
)
def test_lazy_spans_equal_eager_spans(text: str) -> None:
    """Spans worked out on first access are those the evaluator gives right away, and
    spans read in any order of matches are the same."""
    queries = [KOREA_QUERY, "seoul OR rok", "case:ROK NEAR/3 seoul", '"operational control"']
    doc = {
        "entities": KOREA_ENTITIES,
        "rules": [{"id": f"r{i}", "query": x} for i, x in enumerate(queries)],
    }
    rs = RuleSet.from_source(yaml.safe_dump(doc, allow_unicode=True))
    article = Article(title="Seoul talks", text=text)
    lazy = rs.match(article)
    ev = Evaluator(article)
    for m in reversed(lazy):
        node = rs._nodes[rs._by_id[m.rule_id]]
        eager = Match(m.rule_id, m.rule_name, m.rule, spans(ev, ev.eval(node) or []))
        assert m.spans == eager.spans
        assert m == eager
    assert rs.match(article) == lazy


def test_match_without_spans_has_none() -> None:
    """A Match built without spans (as callers and tests do) has an empty list of them."""
    rule = Rule("r", "r", "x")
    assert Match("r", "r", rule).spans == []
    assert Match("r", "r", rule).snippets == []


def test_rule_fires_once_per_article() -> None:
    """However often its terms occur, a rule yields one Match per article."""
    assert len(ruleset("korea OR japan").match(Article(text="korea japan " * 50))) == 1


def test_span_count_is_bounded() -> None:
    """A long article full of many distinct hits still yields a bounded list of spans."""
    text = " ".join(f"word{i}" for i in range(200))
    [m] = ruleset("/word\\d+/").match(Article(text=text))
    assert len(m.spans) == 25


def test_matches_come_in_rule_order() -> None:
    """Matches are listed in rule-file order, whatever the order of terms in the text."""
    doc = {"rules": [{"id": f"r{i}", "query": w} for i, w in enumerate(["zeta", "alpha", "mu"])]}
    rs = RuleSet.from_source(yaml.safe_dump(doc))
    assert [m.rule_id for m in rs.match(Article(text="alpha mu zeta"))] == ["r0", "r1", "r2"]


@pytest.mark.parametrize(
    ("text", "start", "end", "snippet"),
    [
        ("short text here", 6, 10, "short text here"),
        ("a " * 40 + "KOREA" + " b" * 40, 80, 85, "…" + "a " * 30 + "KOREA" + " b" * 30 + "…"),
        ("x" * 100 + " KOREA", 101, 106, "…KOREA"),
        ("line one\nKOREA\nline two", 9, 14, "line one KOREA line two"),
        ("北" * 100, 70, 71, "…" + "北" * 60 + "北" + "北" * 29),
    ],
)
def test_snippets(text: str, start: int, end: int, snippet: str) -> None:
    """Snippets keep about 60 characters each side, cut at spaces, with … where cut."""
    span = make_span("body", text, start, end)
    assert span.snippet == snippet
    a, b = span.highlight
    assert span.snippet[a:b] == text[start:end]


@settings(max_examples=200, deadline=None)
@given(
    st.text(alphabet="ab \n.,é", max_size=300),
    st.integers(min_value=0, max_value=300),
    st.integers(min_value=1, max_value=10),
)
def test_snippet_highlight_property(text: str, start: int, length: int) -> None:
    """Whatever the text, the highlight marks exactly the span's text inside the snippet."""
    start = min(start, len(text))
    end = min(len(text), start + length)
    span = make_span("body", text, start, end)
    a, b = span.highlight
    assert span.snippet[a:b] == text[start:end].replace("\n", " ")
    assert len(span.snippet) <= (end - start) + 2 * 60 + 2


def test_snippets_property_dedupes() -> None:
    """Match.snippets lists each distinct snippet once."""
    [m] = ruleset("korea OR seoul").match(Article(text="Korea Seoul"))
    assert len(m.spans) == 2
    assert m.snippets == ["Korea Seoul"]


# ---------------------------------------------------------------------------------- explain


@pytest.mark.parametrize(
    ("query", "text", "lines"),
    [
        (
            KOREA_QUERY,
            "The mayor of Seoul spoke.",
            [
                '✓ @south-korea  ("Seoul" in body)',
                '✗ "operational control" OR OPCON: no term found',
            ],
        ),
        (
            KOREA_QUERY,
            KOREA_TEXT,
            [
                '✓ @south-korea  ("Seoul" in body)',
                '✓ "operational control" OR OPCON  ("operational control" in body)',
            ],
        ),
        (
            "korea NOT japan",
            "korea japan",
            ['✓ korea  ("korea" in body)', '✗ NOT japan: found "japan" in body'],
        ),
        ("korea NOT japan", "korea", ['✓ korea  ("korea" in body)', "✓ NOT japan  (not found)"]),
        ("korea OR japan", "china", ["✗ korea: no term found", "✗ japan: no term found"]),
        (
            "alpha NEAR/1 beta",
            "alpha x beta",
            ["✗ alpha NEAR/1 beta: both found but not within 1 words"],
        ),
        (
            "alpha ONEAR/1 beta",
            "beta alpha",
            ["✗ alpha ONEAR/1 beta: both found but not in that order within 1 words"],
        ),
        ("alpha NEAR/1 beta", "alpha", ["✗ alpha NEAR/1 beta: beta not found"]),
        ("site:example.com", "x", ["✗ site:example.com: site is 'none'"]),
        ("title:korea", "korea", ["✗ title:korea: not found in title"]),
        ("(a AND b) OR c", "a", ["✗ a AND b: failed: b", "✗ c: no term found"]),
    ],
)
def test_explain(query: str, text: str, lines: list[str]) -> None:
    """explain() says which top-level clause held (and where) or why it failed."""
    assert ruleset(query, KOREA_ENTITIES).explain(Article(text=text), "r") == lines


def test_explain_unknown_rule() -> None:
    """explain() on a rule id that does not exist raises KeyError."""
    with pytest.raises(KeyError):
        ruleset("korea").explain(Article(text="x"), "nope")


# ---------------------------------------------------------------------------------- loading

RULES_FILE = """\
entities:
  south-korea: ["South Korea", "S. Korea", "Republic of Korea", "case:ROK", "Seoul"]
rules:
  - id: korea-opcon
    name: Korea wartime operational control
    query: '@south-korea AND ("operational control" OR OPCON)'
    notify: [desk]
    channels: [alerts.korea]
  - id: plain
    query: korea
    notify: desk
    throttle: 1h
"""


def test_rule_fields() -> None:
    """Rules keep id, name (default: id), query, notify, channels, path and line."""
    rs = RuleSet.from_source(RULES_FILE, path="rules/korea.yml")
    first, second = rs.rules
    assert first == Rule(
        "korea-opcon",
        "Korea wartime operational control",
        KOREA_QUERY,
        ("desk",),
        ("alerts.korea",),
        "rules/korea.yml",
        4,
    )
    assert (second.name, second.notify, second.channels, second.line) == ("plain", ("desk",), (), 9)
    assert rs.get("plain") is second
    assert rs.get("nope") is None


def test_notify_entries_keep_their_positions() -> None:
    """Each notify entry's line:col is kept for errors about the sink it names."""
    rs = RuleSet.from_source(
        "rules:\n  - id: a\n    query: x\n    notify: [desk, 'partner']\n"
        "  - id: b\n    query: y\n    notify: desk\n  - id: c\n    query: z\n"
    )
    assert [r.notify_at for r in rs.rules] == [((4, 14), (4, 20)), ((7, 13),), ()]


def test_rule_file_that_is_not_utf8_is_located(tmp_path: Path) -> None:
    """A byte that is not UTF-8 is an error at its line and column, counted in characters."""
    (tmp_path / "a.yml").write_bytes("rules:\n  - id: é".encode() + b"\xc3(\n")
    with pytest.raises(ConfigErrors) as info:
        RuleSet.from_files([tmp_path])
    assert [str(e) for e in info.value.errors] == [
        f"{tmp_path / 'a.yml'}:2:10: error: not UTF-8 (byte 0xc3: invalid continuation byte); "
        "save the file as UTF-8"
    ]


def test_from_files_folder(tmp_path: Path) -> None:
    """A folder loads every *.yml and *.yaml in name order; other files are ignored."""
    (tmp_path / "b.yaml").write_text("rules: [{id: b, query: beta}]\n")
    (tmp_path / "a.yml").write_text("rules: [{id: a, query: alpha}]\n")
    (tmp_path / "c.txt").write_text("not: yaml: at all: [\n")
    (tmp_path / "empty.yml").write_text("")
    extra = tmp_path / "extra.rules"
    extra.write_text("rules: [{id: x, query: gamma}]\n")
    rs = RuleSet.from_files([tmp_path, str(extra), tmp_path / "a.yml"])
    assert [r.id for r in rs.rules] == ["a", "b", "x"]
    assert rs.rules[0].path == str(tmp_path / "a.yml")


def test_entities_are_per_file(tmp_path: Path) -> None:
    """Each file uses its own entities; one file cannot use another's."""
    (tmp_path / "a.yml").write_text("entities: {e: [alpha]}\nrules: [{id: a, query: '@e'}]\n")
    (tmp_path / "b.yml").write_text("entities: {e: [beta]}\nrules: [{id: b, query: '@e'}]\n")
    rs = RuleSet.from_files([tmp_path])
    assert [m.rule_id for m in rs.match(Article(text="beta"))] == ["b"]
    (tmp_path / "c.yml").write_text("rules: [{id: c, query: '@e'}]\n")
    with pytest.raises(ConfigErrors) as info:
        RuleSet.from_files([tmp_path])
    assert [str(e) for e in info.value.errors] == [
        f"{tmp_path / 'c.yml'}:1:25: error: unknown entity '@e'"
    ]


def test_errors_across_files(tmp_path: Path) -> None:
    """Every problem in every file is reported at once, duplicate ids across files included."""
    (tmp_path / "a.yml").write_text("rules:\n  - id: r\n    query: 'a AND'\n")
    (tmp_path / "b.yml").write_text("rules:\n  - id: x\n    query: ok\n")
    (tmp_path / "c.yml").write_text("rules:\n  - id: x\n    query: ok\n  - id: y\n")
    (tmp_path / "d.yml").write_text("rules: [\n")
    with pytest.raises(ConfigError) as info:
        RuleSet.from_files([tmp_path, tmp_path / "missing.yml"])
    assert isinstance(info.value, ConfigErrors)
    b = tmp_path / "b.yml"
    assert str(info.value).splitlines() == [
        f"{tmp_path / 'a.yml'}:3:15: error: 'AND' needs a term on its right",
        f"{tmp_path / 'c.yml'}:2:9: error: duplicate rule id 'x' (first defined at {b}:2)",
        f"{tmp_path / 'c.yml'}:4:5: error: rule has no 'query'",
        f"{tmp_path / 'd.yml'}:2:1: error: invalid YAML: while parsing a flow node "
        "expected the node content, but found '<stream end>'",
        f"{tmp_path / 'missing.yml'}: error: no such rule file or folder",
    ]


def test_empty_file_has_no_rules() -> None:
    """An empty rule file, or one with no rules key, loads as zero rules."""
    assert RuleSet.from_source("").rules == []
    assert RuleSet.from_source("entities: {a: [x]}\n").rules == []


def query_file(query: str, quote: str = "'") -> str:
    """A one-rule file whose query sits on line 3 (content from column 12 + quote)."""
    return f"rules:\n  - id: r\n    query: {quote}{query}{quote}\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (query_file("a AND"), "3:15: error: 'AND' needs a term on its right"),
        (query_file("a AND", '"'), "3:15: error: 'AND' needs a term on its right"),
        (query_file("a AND", ""), "3:14: error: 'AND' needs a term on its right"),
        (query_file("OR b"), "3:13: error: 'OR' needs a term on its left"),
        (query_file("a NOT"), "3:15: error: 'NOT' needs a term on its right"),
        (query_file("a NEAR"), "3:15: error: 'NEAR' needs a term on its right"),
        (query_file(""), "3:13: error: empty query"),
        (query_file("   "), "3:13: error: empty query"),
        ("rules:\n  - id: r\n    query:\n", "3:11: error: empty query"),
        (query_file("a OR @nope"), "3:18: error: unknown entity '@nope'"),
        (query_file("foo:bar"), "3:13: error: unknown field 'foo:'"),
        (query_file("x /(a/"), "3:15: error: bad regex: missing ): (a"),
        (query_file("(a OR b"), "3:13: error: unclosed '('"),
        (query_file("a OR b)"), "3:19: error: unmatched ')'"),
        (query_file('"abc'), "3:13: error: unclosed quote"),
        (query_file('x "abc', ""), "3:14: error: unclosed quote"),
        (query_file("a NEAR/0 b"), "3:20: error: NEAR/n needs a whole number n from 1 to 1000"),
        (query_file("a ONEAR/x b"), "3:21: error: ONEAR/n needs a whole number"),
        (query_file("ab*"), "3:13: error: a prefix needs at least 3 letters before '*': ab*"),
        (query_file("site:x NEAR a"), "3:13: error: NEAR needs a word, phrase or group"),
        (query_file("()"), "3:13: error: empty parentheses"),
        ("rules:\n  - query: x\n", "2:5: error: rule has no 'id'"),
        ("rules:\n  - id: r\n", "2:5: error: rule has no 'query'"),
        ("rules:\n  - id: r\n    query: a\n    colour: red\n", "4:5: error: unknown key 'colour'"),
        ("rules:\n  - {id: r, query: x, colour: 1}\n", "2:23: error: unknown key 'colour'"),
        ("feeds: []\nrules: []\n", "1:1: error: unknown key 'feeds' (allowed: entities, rules)"),
        (
            "rules:\n  - id: r\n    query: a\n  - id: r\n    query: b\n",
            "4:9: error: duplicate rule id 'r' (first defined at <string>:2)",
        ),
        ("rules:\n  - id: 'a b'\n    query: a\n", "2:9: error: bad rule id 'a b'"),
        ("rules:\n  - id: r\n    query: [a]\n", "3:12: error: 'query' must be a string"),
        (
            "rules:\n  - id: r\n    query: a\n    notify: 5\n",
            "4:13: error: 'notify' must be a list",
        ),
        ("rules:\n  - id: r\n    query: a\n    channels: [1]\n", "4:16: error: 'channels' entries"),
        (
            "rules:\n  - id: r\n    query: a\n    name: ''\n",
            "4:11: error: 'name' must be a non-empty",
        ),
        ("rules: 5\n", "1:8: error: 'rules' must be a list of rules"),
        ("rules:\n  - x\n", "2:5: error: a rule is a mapping"),
        ("- a\n", "1:1: error: a rule file is a mapping"),
        ("entities:\n  sk: [x, 'ab*']\nrules: []\n", "2:12: error: a prefix needs at least 3"),
        ("entities:\n  sk: 5\n", "2:7: error: entity 'sk' needs a list of aliases"),
        ("entities:\n  sk: []\n", "2:7: error: entity 'sk' needs a list of aliases"),
        ("entities:\n  sk: [1]\n", "2:8: error: an alias must be a string"),
        ("entities:\n  s k: [x]\n", "2:8: error: bad entity name 's k'"),
        ("entities: [a]\n", "1:11: error: 'entities' must map names to aliases"),
        ("rules: [a\n", "2:1: error: invalid YAML: while parsing a flow sequence"),
        ("rules:\n  - id: r\n   query: x\n", "3:4: error: invalid YAML"),
        ("rules:\n  - id: r\n    id: s\n", "3:5: error: duplicate key 'id'"),
    ],
)
def test_load_errors(text: str, expected: str) -> None:
    """Each kind of rule-file problem is reported once, at its exact line and column."""
    got = errors_of(text)
    assert len(got) == 1, got
    assert got[0].startswith(f"<string>:{expected}"), got


def test_all_errors_in_one_file_are_reported() -> None:
    """Several bad rules in one file give one error each, in file order."""
    text = (
        "rules:\n"
        "  - id: a\n    query: 'x AND'\n"
        "  - id: b\n    query: '@nope'\n    colour: red\n"
        "  - query: y\n"
    )
    assert errors_of(text) == [
        "<string>:3:15: error: 'x AND' needs a term on its right".replace("'x AND'", "'AND'"),
        "<string>:5:13: error: unknown entity '@nope'",
        "<string>:6:5: error: unknown key 'colour' (allowed: id, name, query, notify, channels, "
        "throttle)",
        "<string>:7:5: error: rule has no 'id'",
    ]


# -------------------------------------------------------------------- property: naive reference

WORDS = ["alpha", "beta", "gamma", "Alpha", "ALPHA", "delta", "alphabet"]
SEPARATORS = [" ", ", ", ". ", "-", "'", " (", ") ", "\n"]


def naive_words(text: str) -> list[tuple[str, int, int]]:
    """Word, start, end for every run of letters/digits: the definition, done by hand."""
    out, start = [], None
    for i, ch in enumerate(text + " "):
        if ch.isalnum() and start is None:
            start = i
        elif not ch.isalnum() and start is not None:
            out.append((text[start:i], start, i))
            start = None
    return out


Naive = tuple[Any, ...]


def naive_eval(node: Naive, words: list[tuple[str, int, int]]) -> set[tuple[int, int]] | None:
    """Straightforward recursive evaluation: the set of (first, last) word positions, or None."""
    kind = node[0]
    if kind == "term":
        _, parts, exact, prefix = node
        found = set()
        for i in range(len(words) - len(parts) + 1):
            ok = True
            for k, part in enumerate(parts):
                word = words[i + k][0] if exact else words[i + k][0].lower()
                want = part if exact else part.lower()
                last = k == len(parts) - 1
                ok = ok and (word.startswith(want) if prefix and last else word == want)
            if ok:
                found.add((i, i + len(parts) - 1))
        return found or None
    if kind == "not":
        return set() if naive_eval(node[1], words) is None else None
    if kind == "and":
        results = [naive_eval(k, words) for k in node[1:]]
        return None if any(r is None for r in results) else set().union(*results)  # type: ignore[arg-type]
    if kind == "or":
        held = [r for r in (naive_eval(k, words) for k in node[1:]) if r is not None]
        return set().union(*held) if held else None
    _, left, right, n, ordered = node
    a_set, b_set = naive_eval(left, words) or set(), naive_eval(right, words) or set()
    used = set()
    for a in a_set:
        for b in b_set:
            if 1 <= b[0] - a[1] <= n or (not ordered and 1 <= a[0] - b[1] <= n):
                used |= {a, b}
    return used or None


def _term() -> st.SearchStrategy[tuple[str, Naive]]:
    word = st.sampled_from(WORDS)
    single = word.map(lambda w: (w, ("term", (w,), False, False)))
    exact = word.map(lambda w: (f"case:{w}", ("term", (w,), True, False)))
    prefix = st.sampled_from(["alp", "alpha", "bet", "gam"]).map(
        lambda w: (f"{w}*", ("term", (w,), False, True))
    )
    phrase = st.lists(word, min_size=2, max_size=3).map(
        lambda ws: ('"' + " ".join(ws) + '"', ("term", tuple(ws), False, False))
    )
    return st.one_of(single, single, exact, prefix, phrase)


def _combine(children: st.SearchStrategy[tuple[str, Naive]], positive: bool) -> Any:
    """AND, OR and implicit AND of two children; NEAR/ONEAR when positive, else NOT."""
    pair = st.tuples(children, children)
    ops: list[st.SearchStrategy[tuple[str, Naive]]] = [
        pair.map(lambda p: (f"({p[0][0]} AND {p[1][0]})", ("and", p[0][1], p[1][1]))),
        pair.map(lambda p: (f"({p[0][0]} {p[1][0]})", ("and", p[0][1], p[1][1]))),
        pair.map(lambda p: (f"({p[0][0]} OR {p[1][0]})", ("or", p[0][1], p[1][1]))),
    ]
    if positive:
        near = st.tuples(pair, st.integers(1, 4), st.booleans()).map(
            lambda t: (
                f"({t[0][0][0]} {'ONEAR' if t[2] else 'NEAR'}/{t[1]} {t[0][1][0]})",
                ("near", t[0][0][1], t[0][1][1], t[1], t[2]),
            )
        )
        ops += [near, near]
    else:
        ops.append(children.map(lambda c: (f"(NOT {c[0]})", ("not", c[1]))))
    return st.one_of(*ops)


POSITIVE = st.recursive(_term(), lambda kids: _combine(kids, True), max_leaves=5)
QUERIES = st.recursive(POSITIVE, lambda kids: _combine(kids, False), max_leaves=6)
TEXTS = st.lists(st.tuples(st.sampled_from(WORDS), st.sampled_from(SEPARATORS)), max_size=14).map(
    lambda parts: "".join(w + s for w, s in parts)
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(QUERIES, TEXTS)
def test_matches_naive_reference(query: tuple[str, Naive], text: str) -> None:
    """RuleSet.match agrees with a naive evaluator on random small queries and texts."""
    source, tree = query
    words = naive_words(text)
    expected = naive_eval(tree, words)
    matches = ruleset(source).match(Article(text=text))
    assert bool(matches) is (expected is not None), (source, text)
    if matches:
        allowed = {(words[i][1], words[j][2]) for i, j in expected or ()}
        assert {(s.start, s.end) for s in matches[0].spans} <= allowed


def test_span_dataclass_shape() -> None:
    """Span is a frozen value with the fields the hit JSON needs."""
    span = Span("body", "x", 0, 1, "x", (0, 1))
    with pytest.raises(AttributeError):
        span.text = "y"  # type: ignore[misc]
