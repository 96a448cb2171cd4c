"""Query size limits, and bounded matching of hostile text: a query beyond a limit is one
located error naming its rule (never a RecursionError), and within them matching a page
built to be slow gives the results of term-by-term evaluation, first occurrences first."""

from __future__ import annotations

import itertools
import random
from bisect import bisect_left
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor import query as q
from monitor.article import Article
from monitor.evaluate import MAX_HITS, Evaluator, Occ, Result, near_pairs, union
from monitor.rules import RuleSet
from monitor.words import Tokens, find
from tests.test_cli import cli, config_with
from tests.test_rules import errors_of as rule_file_errors

BIG = {"big": [q.parse_alias(f"w{i}") for i in range(q.MAX_TERMS)]}


def chain(count: int, op: str = "NEAR") -> str:
    """``a NEAR a NEAR …`` with ``count`` operands."""
    return f" {op} ".join(["a"] * count)


def nested_chains(levels: int) -> str:
    """Groups each holding an OR over a NEAR chain of 10: 10 AST levels per group, 9 NEARs."""
    query = "a"
    for _ in range(levels):
        query = f"(x OR ({query} NEAR b NEAR c NEAR d NEAR e NEAR f NEAR g NEAR h NEAR i NEAR j))"
    return query


def errors_of(query: str, entities: dict[str, list[str]] | None = None) -> list[str]:
    """The error lines of a rule file holding one rule ``r`` with ``query`` on line 3."""
    doc = {"rules": [{"id": "r", "query": query}], **({"entities": entities} if entities else {})}
    return rule_file_errors(yaml.safe_dump(doc, width=10**9, default_style='"', sort_keys=False))


# ------------------------------------------------------------------------------------ limits


@pytest.mark.parametrize(
    ("query", "offset", "message"),
    [
        ("a " * 10_001, 0, "query is 20,002 characters long; the limit is 20,000"),
        ("a" * 1_000_000, 0, "query is 1,000,000 characters long"),
        ("title:" * 5000 + "a", 0, "the limit is 20,000"),
        (chain(11), 65, "a NEAR chain may join at most 10 operands"),
        (chain(300), 65, "a NEAR chain may join at most 10 operands"),
        (chain(11, "ONEAR/3"), 92, "a NEAR chain may join at most 10 operands"),
        (" OR ".join(["(a NEAR b)"] * 101), 1403, "more than 100 NEAR and ONEAR operators"),
        ("title:" * 101 + "a", 600, "nested too deeply"),
        ("body:" * 3999 + "a", 500, "nested too deeply"),
        ("title:(" * 51 + "a" + ")" * 51, 350, "nested too deeply"),
        ("NOT (" * 51 + "a" + ")" * 51, 250, "NOT repeated too many times"),
        (nested_chains(11), 77, "query nested too deeply: more than 100 levels"),
        ("@big a", 5, "more than 10,000 terms, counting each alias"),
        ("a @big", 2, "more than 10,000 terms"),
        ("@big OR @big", 8, "more than 10,000 terms"),
    ],
)
def test_limits_are_query_errors_at_their_offset(query: str, offset: int, message: str) -> None:
    """A query too long, too big or nested too deeply in any way is a QueryLimitError at
    the culprit's offset, not a RecursionError."""
    with pytest.raises(q.QueryLimitError) as info:
        q.parse(query, BIG)
    assert message in info.value.message
    assert info.value.offset == offset


@pytest.mark.parametrize(
    "query",
    [
        "a " * 9_999 + "b",
        chain(10),
        chain(10, "ONEAR/1000"),
        " OR ".join(["(a NEAR b)"] * 100),
        "title:" * 100 + "a",
        "(" * 100 + "a" + ")" * 100,
        nested_chains(10),
        "@big",
    ],
)
def test_queries_at_the_limits_parse(query: str) -> None:
    """Queries right at each limit are accepted."""
    q.parse(query, BIG)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (chain(300), "<string>:3:78: error: rule 'r': a NEAR chain may join at most 10 operands"),
        (
            "title:" * 5000 + "a",
            "<string>:3:13: error: rule 'r': query is 30,001 characters long; the limit is "
            "20,000 (put long lists of names in an entity)",
        ),
        ("a " * 500_000, "<string>:3:13: error: rule 'r': query is 1,000,000 characters long"),
        ("title:" * 101 + "a", "<string>:3:613: error: rule 'r': nested too deeply"),
        (nested_chains(11), "<string>:3:90: error: rule 'r': query nested too deeply"),
    ],
)
def test_rule_beyond_a_limit_is_one_located_error_naming_it(query: str, expected: str) -> None:
    """The audit's queries (a NEAR chain of 300 terms, 5,000 nested scopes, a megabyte of
    terms) give one error at the rule's query, naming the rule and the limit."""
    got = errors_of(query)
    assert len(got) == 1, got
    assert got[0].startswith(expected), got


def test_entity_too_big_for_a_query_is_located_at_its_use() -> None:
    """An entity with more aliases than a query may hold is an error where a query uses it."""
    aliases = [f"w{i}" for i in range(q.MAX_TERMS + 1)]
    (error,) = errors_of("x OR @huge", {"huge": aliases})
    assert error.startswith("<string>:")
    assert ":3:18: error: rule 'r': query has more than 10,000 terms" in error


# ------------------------------------------------------------------------------------ regexes

SLOW = "regex is too slow to match"
REGEX_HINT = "(for words within a distance use NEAR; else + or * rather than a large {n,m})"
WORDS = [f"{w}{i}" for i in range(300) for w in ("minister", "Summit")][:300]
REALISTIC = [
    r"/colou?r/",
    r"/\bCVE-\d{4}-\d{4,7}\b/",
    r"/\d{1,3}(,\d{3})*/",
    r"/\$\d{1,3}(,\d{3})*(\.\d+)? (million|billion)/",
    r"/\b\d{4}-\d{2}-\d{2}\b/",
    r"/\b\d{1,2} (?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]* \d{4}\b/",
    r"/\b(?:NYSE|NASDAQ): ?[A-Z]{1,5}\b/",
    r"/\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b/",
    r"/\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b/",
    r"/\p{Lu}\p{Ll}+ \p{Lu}\p{Ll}+/",
    r"/[\w.+-]+@[\w-]+\.[\w.]+/",
    r"/https?:\/\/[^\s]+/",
    r"/(?i)\bkorea\b.{0,60}\bcontrol\b/",
    "/(?i)\\b(?:" + "|".join(WORDS) + ")\\b/",
    "/\\b(" + "|".join(f"{w}{i}" for i in range(1500) for w in ("x",)) + ")\\b/",
]


@pytest.mark.parametrize(
    ("query", "offset", "width"),
    [
        (r"/a.{1000}z/", 0, 1000),
        (r"/(\w+\s){500}x/", 0, 1000),
        (r"korea AND /a.{101}z/", 10, 101),
        (r"/a.{50}b.{51}z/", 0, 101),
        ("/a" + "." * 101 + "z/", 0, 101),
        (r"/((a.{9}){10}){2}/", 0, 200),
        (r"/(?:\w+\s+){51}/", 0, 102),
        (r"/(?:ab|cd){26}/", 0, 104),
        ("/a{1000}/", 0, 1000),
        ("/" + "a" * 1000 + "/", 0, 999),  # written out, as slow as a{1000}
        ("/" + "ab" * 102 + "/", 0, 101),
        (r"x OR (y AND NOT /\d{4}[a-z]{2,200}/)", 16, 204),
    ],
)
def test_slow_regex_is_a_limit_error_at_the_regex(query: str, offset: int, width: int) -> None:
    """A regex whose classes, counted repetitions and self-overlapping literal runs exceed
    MAX_REGEX_WIDTH (a large {n,m}, nested ones, classes or one letter written out one by
    one) is a QueryLimitError at its opening '/', naming its width and the limit."""
    with pytest.raises(q.QueryLimitError) as info:
        q.parse(query)
    assert info.value.offset == offset
    assert info.value.message == (
        f"{SLOW}: {width:,} classes and repeated characters, counting each copy a {{n,m}} "
        f"makes; the limit is {q.MAX_REGEX_WIDTH} {REGEX_HINT}"
    )


@pytest.mark.parametrize("query", [*REALISTIC, r"/a.{100}z/", r"/(a.{9}){10}z/", "/a{100}/"])
def test_realistic_regexes_and_those_at_the_limit_parse(query: str) -> None:
    """News regexes (dates, amounts, tickers, CVE ids, names, proximity, lists of hundreds
    of words) stay well within the limit, and regexes right at it parse."""
    node = q.parse(query)
    assert isinstance(node, q.Regex)
    assert node.regex.options.max_mem == q.REGEX_MAX_MEM


@pytest.mark.parametrize(
    ("pattern", "width"),
    [
        (r"colou?r", 0),
        (r"(?i)\b(?:alpha|beta|gamma)\b", 1),  # "alpha" can start again at its last "a"
        (r"\p{Lu}\p{Ll}+", 2),
        (r"\bCVE-\d{4}-\d{4,7}\b", 11),
        (r"\d{1,3}(,\d{3})*", 6),
        (r"[a-z]{2,}", 2),
        (r"x{0}", 0),
        (r"(?P<x>a|b){10}", 20),
        (r"(?i:ab){5}", 10),
        (r"(a.{9}){10}z", 100),
        (r"[]a]{3}", 3),
        (r"[[:alpha:]\]]{4}", 4),
        (r"\x{41}{3}\x42{2}", 5),
        (r"\Qa.b\E{3}", 3),  # RE2 repeats the last character only: a.bbb
        (r"a\{3}x{,5}", 0),
        (r"a(?:\b){1000}z", 0),
        (r"(?:a*b*c*){33}", 99),
        ("a" * 1000, 999),  # as slow as a{1000}: a thousand starts live on "aaaa…"
        ("ab" * 500, 499),
        ("x" * 20 + "a" * 980, 19),  # past the x's, one start is left
        ("aaaa{100}", 102),
        ("(?i)aAaA", 3),
        ("www|aaa", 4),
    ],
)
def test_regex_width(pattern: str, width: int) -> None:
    """Classes count one each and everything in a counted repetition once per copy (nested
    ones multiplied); a run of literals counts the copies of itself that can be under way
    at once, less one (a word: 0); zero-width assertions and quantifiers other than {n,m}
    add nothing; escapes, classes and \\Q...\\E are read as RE2 reads them."""
    assert q.regex_width(pattern) == width


def test_regex_too_large_for_its_memory_is_a_limit_error() -> None:
    """A regex whose RE2 program does not fit in REGEX_MAX_MEM is a QueryLimitError at it."""
    with pytest.raises(q.QueryLimitError) as info:
        q.parse(r"a OR /[\pL\pN\pM\pS\pP]{100}/")
    assert info.value.offset == 5
    assert info.value.message == "regex is too large: its RE2 program does not fit in 2 MiB"


def test_slow_regex_in_a_rule_file_is_one_located_error() -> None:
    """A rule file with a slow regex gives one error at the regex, naming rule and limit."""
    (error,) = errors_of(r"korea AND /a.{1000}z/")
    assert error.startswith(f"<string>:3:23: error: rule 'r': {SLOW}: 1,000 classes"), error
    assert error.endswith(f"the limit is {q.MAX_REGEX_WIDTH} {REGEX_HINT}")


def test_check_refuses_slow_regexes_and_accepts_realistic_ones(tmp_path: Path) -> None:
    """`news-monitor check` on a rules file exits 1 with one path:line:col line for each
    slow regex, and says nothing about the realistic ones beside them."""
    good = [{"id": f"ok{i}", "query": query} for i, query in enumerate(REALISTIC[:13])]
    bad = [{"id": "dots", "query": "/a.{1000}z/"}, {"id": "words", "query": r"x /(\w+\s){500}x/"}]
    rules = yaml.safe_dump({"rules": [*good, *bad]}, width=10**9, sort_keys=False)
    result = cli("check", "-c", str(config_with(tmp_path, rules)))
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 2, lines
    path = f"{tmp_path}/rules/main.yml"
    dots = rules.splitlines().index("- id: dots") + 2
    assert lines[0].startswith(f"{path}:{dots}:10: error: rule 'dots': {SLOW}: 1,000 "), lines
    assert lines[1].startswith(f"{path}:{dots + 2}:12: error: rule 'words': {SLOW}: 1,000 ")


# --------------------------------------------------------------------------------- hostile text


def test_a_term_keeps_its_first_occurrences_in_each_field() -> None:
    """A word repeated thousands of times counts with its first MAX_HITS occurrences per
    field, in order, as every clause does."""
    ev = Evaluator(Article(title="a " * 3000, text="x a " * 3000))
    found = ev.eval(q.parse("a")) or []
    assert [o[:3] for o in found] == [(0, i, i) for i in range(MAX_HITS)] + [
        (1, 2 * i + 1, 2 * i + 1) for i in range(MAX_HITS)
    ]


def test_near_chain_on_a_page_of_one_word() -> None:
    """The longest NEAR chain allowed, on a page that is one word 100,000 times, holds
    where the word's kept occurrences are, with the usual three spans of that word."""
    article = Article(title="t", text="a " * 100_000)
    node = q.parse(chain(q.MAX_NEAR_OPERANDS))
    ev = Evaluator(article)
    assert ev.eval(node) == ev.eval(q.parse("a"))
    (match,) = RuleSet.from_source(f"rules: [{{id: r, query: '{chain(10)}'}}]").match(article)
    assert [s.text for s in match.spans] == ["a", "a", "a"]


def test_a_near_is_worked_out_once_per_article() -> None:
    """Each link of a NEAR chain, asked for again in the same article (its compiled check
    asks for every link, the spans for the whole chain), is the result already found."""
    node = q.parse(chain(q.MAX_NEAR_OPERANDS))
    ev = Evaluator(Article(text="a b " * 500))
    first = ev.eval(node)
    links = []
    while isinstance(node, q.Near):
        links.append((node, ev.eval(node)))
        node = node.left
    assert links[0][1] is first
    assert all(ev.eval(link) is found for link, found in links)


def test_the_same_list_merged_many_times_is_merged_once() -> None:
    """A term ANDed or ORed with itself half a million times is that term's occurrences."""
    ev = Evaluator(Article(text="a " * 5000))
    term = q.parse("a")
    found = ev.eval(term)
    assert union([found] * 500_000) is found
    assert ev.eval(q.And((term,) * 500_000)) is found


def test_big_entity_on_a_page_of_its_phrases() -> None:
    """An entity of thousands of phrases over ten words, on a page of those words, fires
    with spans on occurrences of its phrases, and finds what term-by-term search finds."""
    rng = random.Random(5)
    vocab = "abcdefghij"
    aliases = [f"{a} {b} {c} {d}" for a in vocab for b in vocab for c in vocab for d in "ab"]
    page = " ".join(rng.choice(vocab) for _ in range(20_000))
    doc = {"entities": {"e": aliases}, "rules": [{"id": "r", "query": "@e"}]}
    (match,) = RuleSet.from_source(yaml.safe_dump(doc)).match(Article(title=page, text=page))
    assert len(match.spans) == 25
    assert all(s.text in aliases for s in match.spans)
    node = q.parse("@e", {"e": [q.parse_alias(a) for a in aliases]})
    assert Evaluator(Article(text=page)).eval(node) == term_by_term(node, Article(text=page))


# ------------------------------------------------------- property: many terms found together

VOCAB = ["alpha", "Alpha", "beta", "gamma", "delta", "alphabet", "BETA"]
TERMS = st.one_of(
    st.sampled_from(VOCAB),
    st.sampled_from(VOCAB).map(lambda w: f"case:{w}"),
    st.sampled_from(["alp", "bet", "alpha", "gam", "Del"]).map(lambda w: f"{w}*"),
    st.lists(st.sampled_from(VOCAB), min_size=2, max_size=3).map(" ".join),
    st.lists(st.sampled_from(VOCAB), min_size=2, max_size=2).map(lambda ws: " ".join(ws) + "*"),
    st.lists(st.sampled_from(VOCAB), min_size=1, max_size=2).map(
        lambda ws: f'case:"{" ".join(ws)}"'
    ),
)
PAGES = st.tuples(
    st.lists(
        st.tuples(st.sampled_from(VOCAB), st.sampled_from([" ", ", ", "-", ". "])), max_size=12
    ),
    st.sampled_from([1, 2, 300, 1200]),
).map(lambda t: "".join(w + s for w, s in t[0]) * t[1])


def first_hits(occs: list[Occ]) -> list[Occ]:
    """The first MAX_HITS occurrences of each field among the sorted ``occs`` (what the
    evaluator keeps of every clause, worked out the plain way)."""
    cut = bisect_left(occs, (1,))
    return occs[: min(cut, MAX_HITS)] + occs[cut : cut + MAX_HITS]


def term_by_term(node: q.Node, article: Article) -> Result:
    """What an OR, AND or entity of terms holds, by evaluating each term alone (in an
    evaluator of its own, so nothing is shared with the evaluation under test)."""
    match node:
        case q.Or(children=kids) | q.And(children=kids) | q.Entity(aliases=kids):
            pass
        case _:
            raise AssertionError(node)
    ev = Evaluator(article)
    found = [ev.eval(kid) for kid in kids]
    if isinstance(node, q.And) and any(r is None for r in found):
        return None
    held: list[list[Occ]] = [r for r in found if r is not None]
    return first_hits(sorted(set().union(*held))) if held else None


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(TERMS, min_size=16, max_size=40),
    PAGES,
    PAGES,
    st.sampled_from(["or", "and", "entity"]),
)
def test_many_terms_found_together_agree_with_each_alone(
    terms: list[str], title: str, body: str, kind: str
) -> None:
    """An OR, AND or entity of many terms (found together, by one automaton pass that stops
    after the first occurrences) holds exactly where its terms, each looked for alone, do."""
    article = Article(title=title, text=body)
    aliases = [q.parse_alias(t) for t in terms]
    if kind == "entity":
        node = q.parse("@e", {"e": aliases})
    else:
        quoted = [t if t.startswith("case:") else f'"{t}"' for t in terms]
        node = q.parse((" OR " if kind == "or" else " AND ").join(quoted))
    assert Evaluator(article).eval(node) == term_by_term(node, article)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.sampled_from(VOCAB), min_size=1, max_size=3),
    st.booleans(),
    st.booleans(),
    PAGES,
)
def test_find_agrees_with_word_by_word_comparison(
    words: list[str], exact: bool, prefix: bool, text: str
) -> None:
    """Term positions are the same whether candidates are checked one by one or the field
    is searched (a page of a few words repeated), and ``limit`` keeps the first ones."""
    toks = Tokens(text)
    if not exact:
        words = [w.lower() for w in words]
    if prefix:
        words[-1] = words[-1][:3]
    raw = toks.raw
    folded = toks.folded
    expected = []
    for p in range(len(raw) - len(words) + 1):
        got = [raw[p + k] if exact else folded[p + k] for k in range(len(words))]
        last_ok = got[-1].startswith(words[-1]) if prefix else got[-1] == words[-1]
        if got[:-1] == words[:-1] and last_ok:
            expected.append(p)
    assert find(toks, tuple(words), exact, prefix) == expected
    assert find(toks, tuple(words), exact, prefix, 5) == expected[:5]


def test_big_query_of_groups_uses_the_key_scan() -> None:
    """A query too big to compile to code (checked by closures) fires on exactly the
    article holding one of its phrases, not on one holding only its words."""
    query = " OR ".join(f'("p{i} q{i}" NOT zz)' for i in range(100))
    rs = RuleSet.from_source(yaml.safe_dump({"rules": [{"id": "r", "query": query}]}))
    assert [m.rule_id for m in rs.match(Article(text="so p37 q37 it is"))] == ["r"]
    assert rs.match(Article(text="so p37 x q37 it is")) == []
    assert rs.match(Article(text="so p37 q37 zz")) == []


def occurrences(rng: random.Random, count: int, start: int = 0) -> list[Occ]:
    """``count`` sorted occurrences of one to three words in both fields, many close, from
    word ``start`` on."""
    found = set()
    for _ in range(count):
        first = start + rng.randrange(3 * count)
        found.add((rng.randrange(2), first, first + rng.randrange(3), 0, 0))
    return sorted(found)


def partnered(mine: list[Occ], theirs: list[Occ], n: int, after: bool, before: bool) -> set[Occ]:
    """The occurrences of ``mine`` with one of ``theirs`` starting 1..n words after their
    end (when ``after``) or ending 1..n words before their start (when ``before``)."""
    firsts = {(o[0], o[1]) for o in theirs}
    lasts = {(o[0], o[2]) for o in theirs}
    return {
        a
        for a in mine
        if (after and any((a[0], a[2] + d) in firsts for d in range(1, n + 1)))
        or (before and any((a[0], a[1] - d) in lasts for d in range(1, n + 1)))
    }


@pytest.mark.parametrize("count", [5, 300, 1200])
@pytest.mark.parametrize("ordered", [False, True])
def test_near_pairs_agrees_with_looking_at_every_distance(count: int, ordered: bool) -> None:
    """NEAR keeps exactly the occurrences with a partner close enough on the allowed side,
    whether it bisects (few) or counts in a table (many, of several lengths each)."""
    rng = random.Random(count)
    # A phrase first, a word inside it next: the earliest last word is not the first one.
    early = [(f, w, last, 0, 0) for f in (0, 1) for w, last in ((0, 2), (1, 1))]
    left = sorted({*occurrences(rng, count), *early})
    for start, n in itertools.product((0, 10, count), (1, 3, 40)):
        right = occurrences(rng, count, start)
        kept = partnered(left, right, n, True, not ordered)
        kept |= partnered(right, left, n, not ordered, True)
        expected = first_hits(sorted(kept)) if kept else None
        assert near_pairs(left, right, n, ordered) == expected, (start, n)


def test_the_regexes_of_one_query_are_bounded_together() -> None:
    """Each regex within its limit, but their times add up: past MAX_QUERY_REGEX_WIDTH in
    all, the regex that crosses it is a located limit error."""
    regex = "/a.{99}z/"  # width 100 each
    query = " OR ".join([regex] * 4)
    with pytest.raises(q.QueryLimitError) as info:
        q.parse(query)
    assert info.value.offset == 3 * len(regex + " OR ")
    assert info.value.message == (
        "the query's regexes are too slow to match together: over "
        f"{q.MAX_QUERY_REGEX_WIDTH} classes and repeated characters in all "
        f"(each regex may have {q.MAX_REGEX_WIDTH})"
    )
    q.parse(" OR ".join([regex] * 3))  # 300: at the limit
