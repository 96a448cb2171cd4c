"""Fuzzing the two parsers hostile input reaches: feeds (bytes) and rules (query text, YAML).

Property: whatever the input, ``parse_feed`` returns a bounded Feed or raises ParseError, and
the rule parsers return or raise ConfigError (QueryError is one) — nothing else escapes. Runs
are derandomized with capped examples so CI is stable and each test takes a few seconds.
"""

from __future__ import annotations

import contextlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor import query
from monitor.article import MAX_TITLE_CHARS, Article
from monitor.errors import ConfigError, ParseError
from monitor.parse import entry_article, parse_feed
from monitor.rules import RuleSet
from monitor.urls import is_http_url

FUZZ = settings(
    max_examples=300,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# -- XML-ish feeds ------------------------------------------------------------------------------

TAGS = ["rss", "channel", "item", "entry", "feed", "title", "link", "guid", "id", "description",
        "content", "summary", "pubDate", "updated", "author", "ttl", "rdf:RDF"]  # fmt: skip
TEXT = st.text(
    alphabet=st.sampled_from(list("ab <>&;/\"'=!-?[]%#:x\u202e\x00é\n")) | st.characters(),
    max_size=40,
)
PROLOGS = st.sampled_from(
    [
        "",
        '<?xml version="1.0"?>',
        '<?xml version="1.0" encoding="UTF-16"?>',
        '<?xml version="1.0" encoding="utf-7"?>',
        '<?xml version="1.0" encoding="bogus"?>',
        '<!DOCTYPE rss PUBLIC "-//x//EN" "http://x/y.dtd">',
        '<!DOCTYPE rss [<!ENTITY a "b">]>',
        "<!-- c --><?pi?>",
        "<!DOCTYPE",
    ]
)
ENCODINGS = st.sampled_from(["utf-8", "utf-16", "utf-16-be", "utf-32", "latin-1", "utf-7"])


@st.composite
def elements(draw: st.DrawFn, depth: int = 0) -> str:
    tag = draw(st.sampled_from(TAGS))
    attrs = draw(st.sampled_from(["", ' version="2.0"', ' href="javascript:x"', ' type="xhtml"']))
    if depth >= 3 or draw(st.booleans()):
        inner = draw(TEXT)
    else:
        inner = "".join(draw(st.lists(elements(depth + 1), max_size=4)))
    close = draw(st.sampled_from([f"</{tag}>", f"</{tag}>", "", "</x>"]))
    return f"<{tag}{attrs}>{inner}{close}"


@st.composite
def feeds(draw: st.DrawFn) -> bytes:
    doc = draw(PROLOGS) + draw(elements())
    encoding = draw(ENCODINGS)
    return doc.encode(encoding, errors="replace")


def _check_feed(data: bytes) -> None:
    try:
        feed = parse_feed(data, "http://feed.test/rss", max_entries=5)
    except ParseError:
        return
    assert len(feed.entries) <= 5
    for entry in feed.entries:
        assert len(entry.title) <= MAX_TITLE_CHARS and "\n" not in entry.title
        assert entry.link == "" or is_http_url(entry.link)
        article = entry_article(entry, source="fuzz")
        assert article.url == "" or is_http_url(article.url)


@FUZZ
@given(st.binary(max_size=2000))
def test_parse_feed_on_random_bytes(data: bytes) -> None:
    """Random bytes: a Feed or ParseError, never another exception."""
    _check_feed(data)


@FUZZ
@given(feeds())
def test_parse_feed_on_xmlish_documents(data: bytes) -> None:
    """Structured, often broken, XML-ish feeds in several encodings: Feed or ParseError only."""
    _check_feed(data)


@FUZZ
@given(st.text(max_size=300).map(lambda t: '{"version": "https://jsonfeed.org/version/1.1",' + t))
def test_parse_feed_on_jsonish_documents(text: str) -> None:
    """Truncated and mangled JSON Feed documents: Feed or ParseError only."""
    _check_feed(text.encode("utf-8", errors="replace"))


# -- rules --------------------------------------------------------------------------------------

QUERY_ATOMS = st.sampled_from(
    ["korea", '"south korea"', "deter*", "case:ROK", "AND", "OR", "NOT", "NEAR/3", "ONEAR/0",
     "NEAR/", "(", ")", "title:", "body:(", "site:x.test", "lang:en", "@ent", "@missing",
     "/a+b/", "/(?i)x/", "/[/", "/", '"', "*", "\\", ":", "NEAR/99999999999"]
)  # fmt: skip


@FUZZ
@given(st.lists(QUERY_ATOMS | st.text(max_size=8), max_size=12).map(" ".join))
def test_query_parser_raises_only_config_errors(text: str) -> None:
    """Any query text parses or raises ConfigError (QueryError), nothing else."""
    entities = {"ent": [query.parse_alias("Seoul")]}
    with contextlib.suppress(ConfigError):
        query.parse(text, entities)


@FUZZ
@given(st.lists(QUERY_ATOMS, min_size=1, max_size=10).map(" ".join), TEXT)
def test_rules_from_source_and_match_raise_only_config_errors(text: str, body: str) -> None:
    """A rule file built from any query loads or raises ConfigError; loaded rules just match."""
    escaped = text.replace("'", "''")
    source = (
        "entities:\n  ent: [Seoul, 'case:ROK']\n"
        f"rules:\n  - id: r1\n    name: fuzz\n    query: '{escaped}'\n"
    )
    try:
        rules = RuleSet.from_source(source)
    except ConfigError:
        return
    rules.match(Article(title=body, text=body * 3, url="http://x.test/a"))


@FUZZ
@given(st.text(max_size=400))
def test_rules_from_arbitrary_yaml_text(source: str) -> None:
    """Arbitrary text as a rule file: rules or ConfigError, never a YAML or type error."""
    with contextlib.suppress(ConfigError):
        RuleSet.from_source(source)
