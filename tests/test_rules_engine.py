"""The fast matching path: prefilter, compiled checks, folding, limits, throttle, explain."""

from __future__ import annotations

import platform
import sys
import unicodedata
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor import query as q
from monitor.article import Article
from monitor.checks import Compiler
from monitor.codegen import CodeCompiler
from monitor.errors import ConfigErrors
from monitor.evaluate import MAX_FIELD_CHARS, Evaluator
from monitor.prefilter import ENGINES, Index, Scanner, filing, triggers
from monitor.rules import SNIPPET_CONTEXT, RuleSet, make_span
from monitor.textnorm import normalize
from monitor.words import Tokens, find, fold, fold_words, split

ENTITIES = {"ent1": ["alpha beta", "case:Gamma", "delt*"], "ent2": ["béta", "Straße"]}


def ruleset(*queries: str) -> RuleSet:
    """Rules ``r0``, ``r1``… with these queries, and the ENTITIES."""
    rules = [{"id": f"r{i}", "query": text} for i, text in enumerate(queries)]
    doc = {"entities": ENTITIES, "rules": rules}
    return RuleSet.from_source(yaml.safe_dump(doc, allow_unicode=True))


# ------------------------------------------------------------------------------- throttle


@pytest.mark.parametrize(
    ("value", "seconds"), [("10m", 600.0), ("1h30m", 5400.0), ("45s", 45.0), (30, 30.0)]
)
def test_throttle_is_parsed(value: Any, seconds: float) -> None:
    """``throttle`` becomes Rule.throttle in seconds."""
    doc = {"rules": [{"id": "r", "query": "x", "throttle": value}]}
    rule = RuleSet.from_source(yaml.safe_dump(doc)).rules[0]
    assert rule.throttle == seconds


def test_throttle_defaults_to_none() -> None:
    """A rule without ``throttle`` has Rule.throttle None."""
    assert ruleset("x").rules[0].throttle is None


@pytest.mark.parametrize("value", ["soon", "0s", "-5m", "[1]", "true"])
def test_bad_throttle_is_an_error_at_its_value(value: str) -> None:
    """An invalid duration is reported at the value's line and column."""
    text = f"rules:\n  - id: r\n    query: x\n    throttle: {value}\n"
    with pytest.raises(ConfigErrors) as info:
        RuleSet.from_source(text)
    (error,) = info.value.errors
    assert str(error).startswith("<string>:4:15: error: 'throttle': "), str(error)


# -------------------------------------------------------------------------------- explain


@pytest.mark.parametrize(
    ("query", "text", "lines"),
    [
        (
            "korea AND (japan OR (china NEAR/2 trade))",
            "korea china a b c trade",
            [
                '✓ korea  ("korea" in body)',
                "✗ japan OR (china NEAR/2 trade): none held: japan; "
                "china NEAR/2 trade (both found but not within 2 words)",
            ],
        ),
        (
            "korea (japan AND (china OR trade))",
            "korea japan",
            [
                '✓ korea  ("korea" in body)',
                "✗ japan AND (china OR trade): failed: china OR trade (no term found)",
            ],
        ),
        (
            "korea (japan NOT china)",
            "korea japan china",
            [
                '✓ korea  ("korea" in body)',
                '✗ japan NOT china: failed: NOT china (found "china" in body)',
            ],
        ),
        (
            "title:(korea AND japan) OR site:example.com",
            "korea japan",
            [
                "✗ title:(korea AND japan): not found in title: failed: korea, japan",
                "✗ site:example.com: site is 'none'",
            ],
        ),
        (
            "(alpha NEAR/1 (beta AND gamma)) OR delta",
            "alpha beta",
            [
                "✗ alpha NEAR/1 (beta AND gamma): beta AND gamma (failed: gamma) not found",
                "✗ delta: no term found",
            ],
        ),
    ],
)
def test_explain_names_the_failed_sub_clause(query: str, text: str, lines: list[str]) -> None:
    """A failed clause says which of its own clauses failed, and why."""
    assert ruleset(query).explain(Article(text=text), "r0") == lines


# -------------------------------------------------------------------------------- folding

UNICODE_PIECES = [
    *"aZé ÉßİıçÇ-.,'_北京東서울에москваМОСКВАالقاهرة½ΣσςÅ",
    "e\u0301",
    "\u0915\u094d\u0937",
    "\U00020000",
    "São",
    "  ",
    "\n",
]


@settings(max_examples=500, deadline=None, derandomize=True)
@given(st.lists(st.sampled_from(UNICODE_PIECES), max_size=24).map("".join))
def test_fold_words_is_fold_of_each_word(text: str) -> None:
    """The whole-text fast fold gives exactly the folded words, in order, for any text."""
    text = normalize(text)
    assert fold_words(text) == [fold(w) for w in split(text)]


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.lists(st.sampled_from([*UNICODE_PIECES, "Hello", "x1"]), max_size=24).map("".join))
def test_token_offsets_agree_with_words(text: str) -> None:
    """Offsets, raw words and folded words line up one to one."""
    toks = Tokens(normalize(text))
    assert [toks.text[s:e] for s, e in zip(toks.starts, toks.ends, strict=True)] == toks.raw
    assert len(toks.raw) == len(toks.folded)


@settings(max_examples=500, deadline=None, derandomize=True)
@given(
    st.lists(st.sampled_from(["a", "A", "ab", "b", "1", " ", "  ", "-", ".", "\n"]), max_size=30)
)
def test_word_spans_located_one_by_one_agree_with_all_offsets(pieces: list[str]) -> None:
    """A word's span found by scanning for it alone (ASCII text, before all offsets are
    worked out) is the one the full offsets give, for every word and in any order."""
    text = "".join(pieces)
    every = Tokens(text)
    expected = list(zip(every.starts, every.ends, strict=True))
    alone = Tokens(text)
    order = sorted(range(len(expected)), key=lambda i: (i * 7) % (len(expected) or 1))
    assert {i: alone.span(i, i) for i in order} == dict(enumerate(expected))
    phrases = Tokens(text)  # the span of words i..j, located one by one
    pairs = [(i, j) for i in range(len(expected)) for j in range(i, len(expected))]
    assert [phrases.span(i, j) for i, j in pairs] == [
        (expected[i][0], expected[j][1]) for i, j in pairs
    ]


def test_word_spans_of_frequent_and_many_words_agree_with_all_offsets() -> None:
    """A word with more occurrences than are located one by one, and more distinct words
    than are, get the spans all offsets give."""
    text = "a B, " * 100 + " ".join(f"w{i}" for i in range(40))
    every = Tokens(text)
    for i in (151, 199, 200, 239):
        assert Tokens(text).span(i, i) == (every.starts[i], every.ends[i])
    many = Tokens(text)
    assert [many.span(i, i) for i in range(200, 240)] == [
        (every.starts[i], every.ends[i]) for i in range(200, 240)
    ]


@pytest.mark.parametrize("indexed", [False, True])
def test_phrase_positions_scanned_or_indexed(indexed: bool) -> None:
    """Phrases are found the same whether word positions are scanned or indexed, including
    a phrase that would run off the end of the field."""
    toks = Tokens("war and peace and war and peace and war")
    if indexed:
        toks.use_index()
    assert find(toks, ("war", "and"), False, False) == [0, 4]
    assert find(toks, ("and", "war"), False, False) == [3, 7]
    assert find(toks, ("peace", "and", "war"), False, False) == [2, 6]
    assert find(toks, ("war", "and", "peace"), False, False) == [0, 4]
    assert find(toks, ("and", "pea"), False, True) == [1, 5]


def test_snippet_is_cut_at_the_last_space_before_its_end() -> None:
    """The snippet's right side ends at the last space within SNIPPET_CONTEXT characters."""
    text = "x " + "word " * 11 + "abcdefghij" * 10  # a letter right at the limit
    span = make_span("body", text, 0, 1)
    assert span.snippet == text[: text.rindex(" ", 0, 1 + SNIPPET_CONTEXT)] + "…"
    assert span.snippet == "x" + " word" * 11 + "…"
    assert span.highlight == (0, 1)


# ------------------------------------------------------------------------- prefilter index


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("korea", {"korea"}),
        ('"south korea"', {" south korea "}),
        ('"the pyongyang"', {" the pyongyang "}),
        ("deter*", {" deter"}),
        ('"nuclear deter*"', {" nuclear deter"}),
        ("case:ROK", {"rok"}),
        ('case:"ROK Army"', {" rok army "}),
        ("korea OR japan", {"korea", "japan"}),
        ("the AND pyongyang", {"pyongyang"}),
        ('"south korea" AND korea', {" south korea "}),
        ("korea AND NOT japan", {"korea"}),
        ("NOT japan", None),
        ("korea OR NOT japan", None),
        ("/x+/", None),
        ("site:example.com", None),
        ("title:korea", {"korea"}),
        ("alpha NEAR/3 alphabetical", {"alphabetical"}),
    ],
)
def test_triggers(query: str, expected: set[str] | None) -> None:
    """Rules are filed under keys that must be present; NOT never selects."""
    assert triggers(q.parse(query)) == expected


def _present(index: Index, article: Article) -> tuple[set[str], set[str]]:
    ev = Evaluator(article)
    return ev.words[2], Scanner(index.keys).scan(ev.joined)[2]


def test_candidates_use_words_phrases_and_stems() -> None:
    """Only rules whose trigger words, phrases or stems occur are candidates; an AND needs
    its two rarest clauses present."""
    queries = ("korea", "deter*", "NOT x", "japan AND china", '"south korea"', "dete*")
    index = Index([q.parse(s) for s in queries])
    got = index.candidates(*_present(index, Article(text="Korea deterrence japan")))
    assert got == [0, 1, 2, 5]
    got = index.candidates(*_present(index, Article(text="Korea: China and Japan")))
    assert got == [0, 2, 3]
    assert index.candidates(*_present(index, Article(text="South Korea"))) == [0, 2, 4]
    assert index.candidates(*_present(index, Article(text="nothing here"))) == [2]


@pytest.mark.parametrize(
    ("query", "keys", "seconds"),
    [
        ("korea", {"korea"}, set()),
        ("korea AND pyongyang", {"pyongyang"}, {"korea"}),
        ("(korea OR japan) AND pyongyang", {"pyongyang"}, {"korea", "japan"}),
        ('title:(korea AND "kim jong")', {" kim jong "}, {"korea"}),
        ("korea NEAR/3 pyongyang", {"pyongyang"}, {"korea"}),
        ("korea AND NOT japan", {"korea"}, set()),
        ("korea OR (japan AND chinese)", {"korea", "chinese"}, set()),
        ("NOT japan", set(), set()),
    ],
)
def test_filing(query: str, keys: set[str], seconds: set[str]) -> None:
    """A rule is filed under its rarest clause's keys and, for an AND, the next rarest's."""
    first, second = filing(q.parse(query))
    assert (set(first), set(second)) == (keys, seconds)


@pytest.mark.parametrize("engine", ENGINES)
def test_scanner_tells_title_from_body(engine: str) -> None:
    """Keys are reported for the field they occur in, never across the two fields."""
    scanner = Scanner([" south korea ", " deter", " korea seoul "], engine)
    ev = Evaluator(Article(title="South Korea", text="Seoul deterrence"))
    assert scanner.scan(ev.joined) == ({" south korea "}, {" deter"}, {" south korea ", " deter"})


@pytest.mark.parametrize("engine", ENGINES)
def test_scanner_finds_keys_in_any_script(engine: str) -> None:
    """Keys in other scripts are found (Hyperscan matches UTF-8 bytes), and a prefix key
    is not found in a character that only shares its first bytes (가 is EA B0 80, 각 is
    EA B0 81)."""
    keys = [" 서울 ", " москв", " \u4e2d \u56fd ", " 가"]
    scanner = Scanner(keys, engine)
    ev = Evaluator(Article(text="서울 Москвой 中国 각"))
    assert scanner.scan(ev.joined)[1] == {" 서울 ", " москв", " \u4e2d \u56fd "}


def test_scanner_engines() -> None:
    """Hyperscan is installed on x86-64 Linux (the package's dependency marker); keys it
    would mishandle (a NUL cuts its literals short) go to the automaton, found alike."""
    if platform.machine() == "x86_64" and sys.platform == "linux":
        assert ENGINES == ("ahocorasick", "hyperscan")
    assert Scanner([" a b "]).engine in ENGINES
    scanner = Scanner([" a\x00", " a "], ENGINES[-1])
    assert scanner.engine == "ahocorasick"
    assert scanner.scan((" a c ", " a\x00b ", "")) == ({" a "}, {" a\x00"}, {" a ", " a\x00"})


def test_common_keys_are_refiled_without_changing_results() -> None:
    """A key seen in most articles gets its rules filed under a rarer key; the rules that
    fire stay the same before and after."""
    rs = ruleset("(zebra OR yak) AND something", "something OR yak")
    common = Article(text="something here")
    rare = Article(text="something about a yak")
    assert rs._index.filed[0][0] == ("something",)
    for _ in range(40):
        assert [m.rule_id for m in rs.match(common)] == ["r1"]
    assert set(rs._index.filed[0][0]) == {"zebra", "yak"}
    assert set(rs._index.filed[1][0]) == {"something", "yak"}
    assert [m.rule_id for m in rs.match(rare)] == ["r0", "r1"]
    assert rs._index.candidates(*_present(rs._index, common)) == [1]


# ------------------------------------------------------------------------------- limits


def test_fields_are_capped_before_matching() -> None:
    """Text past MAX_FIELD_CHARS is not looked at, so a term only there does not fire."""
    filler = "filler " * (MAX_FIELD_CHARS // 7 + 10)
    rs = ruleset("needle", "filler", "/needle/")
    assert [m.rule_id for m in rs.match(Article(text=filler + " needle"))] == ["r1"]


def test_hostile_regex_and_near_stay_bounded() -> None:
    """A regex matching everywhere and a wide NEAR over a huge text still give bounded spans."""
    text = "a " * (MAX_FIELD_CHARS // 2)
    rs = ruleset("/a/ NEAR/1000 a", "(a OR /a/) ONEAR/1000 a")
    matches = rs.match(Article(text=text))
    assert [m.rule_id for m in matches] == ["r0", "r1"]
    assert all(len(m.spans) <= 25 for m in matches)


# ------------------------------------------------------------------ property: naive reference

WORDS = ["alpha", "Alpha", "ÁLPHA", "beta", "béta", "BETA", "Gamma", "gamma", "delta", "Straße"]
WORDS += ["strasse", "alphabet", "deltas"]
SEPARATORS = [" ", ", ", ". ", "-", "'", " (", ") ", "\n", "’"]
Naive = tuple[Any, ...]
Occs = set[tuple[int, int, int]]


def ref_fold(word: str) -> str:
    """Casefold, strip accents: the definition, done by hand."""
    decomposed = unicodedata.normalize("NFKD", word.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def ref_words(text: str) -> list[str]:
    """Runs of letters and digits."""
    out, cur = [], ""
    for ch in text + " ":
        if ch.isalnum():
            cur += ch
        elif cur:
            out.append(cur)
            cur = ""
    return out


def ref_term(node: Naive, fields: list[list[str]], scope: tuple[int, ...]) -> Occs:
    _, parts, exact, prefix = node
    found = set()
    for f in scope:
        words = fields[f]
        for i in range(len(words) - len(parts) + 1):
            ok = True
            for k, part in enumerate(parts):
                word = words[i + k] if exact else ref_fold(words[i + k])
                want = part if exact else ref_fold(part)
                last = k == len(parts) - 1
                ok = ok and (word.startswith(want) if prefix and last else word == want)
            if ok:
                found.add((f, i, i + len(parts) - 1))
    return found


def ref_eval(node: Naive, fields: list[list[str]], scope: tuple[int, ...] = (0, 1)) -> Any:
    """Straightforward recursive evaluation: the set of occurrences, or None."""
    kind = node[0]
    if kind == "term":
        return ref_term(node, fields, scope) or None
    if kind == "scope":
        return ref_eval(node[2], fields, (node[1],))
    if kind == "not":
        return set() if ref_eval(node[1], fields, scope) is None else None
    results = [ref_eval(k, fields, scope) for k in node[1:]] if kind in ("and", "or") else []
    if kind == "and":
        return None if any(r is None for r in results) else set().union(*results)
    if kind == "or":
        held = [r for r in results if r is not None]
        return set().union(*held) if held else None
    _, left, right, n, ordered = node
    a_set = ref_eval(left, fields, scope) or set()
    b_set = ref_eval(right, fields, scope) or set()
    used = set()
    for a in a_set:
        for b in b_set:
            after = 1 <= b[1] - a[2] <= n
            if a[0] == b[0] and (after or (not ordered and 1 <= a[1] - b[2] <= n)):
                used |= {a, b}
    return used or None


def _alias(alias: str) -> Naive:
    exact = alias.startswith("case:")
    body = alias.removeprefix("case:")
    return ("term", tuple(ref_words(body.rstrip("*"))), exact, body.endswith("*"))


ENTITY_TREES = {name: ("or", *map(_alias, aliases)) for name, aliases in ENTITIES.items()}


def _leaf() -> st.SearchStrategy[tuple[str, Naive]]:
    word = st.sampled_from(WORDS)
    single = word.map(lambda w: (w, ("term", (w,), False, False)))
    exact = word.map(lambda w: (f"case:{w}", ("term", (w,), True, False)))
    prefix = st.sampled_from(["alp", "alpha", "bet", "gam", "Del", "STRA"]).map(
        lambda w: (f"{w}*", ("term", (w,), False, True))
    )
    phrase = st.lists(word, min_size=2, max_size=3).map(
        lambda ws: ('"' + " ".join(ws) + '"', ("term", tuple(ws), False, False))
    )
    entity = st.sampled_from(sorted(ENTITY_TREES)).map(lambda e: (f"@{e}", ENTITY_TREES[e]))
    return st.one_of(single, single, exact, prefix, phrase, entity)


def _combine(kids: st.SearchStrategy[tuple[str, Naive]], positive: bool) -> Any:
    """AND, OR, implicit AND and field scopes; NEAR/ONEAR when positive, else NOT."""
    pair = st.tuples(kids, kids)
    ops: list[st.SearchStrategy[tuple[str, Naive]]] = [
        pair.map(lambda p: (f"({p[0][0]} AND {p[1][0]})", ("and", p[0][1], p[1][1]))),
        pair.map(lambda p: (f"({p[0][0]} {p[1][0]})", ("and", p[0][1], p[1][1]))),
        pair.map(lambda p: (f"({p[0][0]} OR {p[1][0]})", ("or", p[0][1], p[1][1]))),
        st.tuples(st.sampled_from(["title", "body"]), kids).map(
            lambda t: (f"{t[0]}:({t[1][0]})", ("scope", ["title", "body"].index(t[0]), t[1][1]))
        ),
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
        ops.append(kids.map(lambda c: (f"(NOT {c[0]})", ("not", c[1]))))
    return st.one_of(*ops)


POSITIVE = st.recursive(_leaf(), lambda kids: _combine(kids, True), max_leaves=5)
QUERIES = st.recursive(POSITIVE, lambda kids: _combine(kids, False), max_leaves=7)
TEXTS = st.lists(st.tuples(st.sampled_from(WORDS), st.sampled_from(SEPARATORS)), max_size=12).map(
    lambda parts: "".join(w + s for w, s in parts)
)


@settings(
    max_examples=400,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.lists(QUERIES, min_size=1, max_size=4), TEXTS, TEXTS)
def test_fast_engine_matches_reference(
    queries: list[tuple[str, Naive]], title: str, body: str
) -> None:
    """Prefilter + compiled checks fire exactly the rules a naive evaluator says hold, with
    spans only on words the reference found, and agree with the positional evaluator."""
    article = Article(title=title, text=body)
    fields = [ref_words(article.title), ref_words(article.text)]
    rs = ruleset(*(source for source, _ in queries))
    expected = [
        f"r{i}" for i, (_, tree) in enumerate(queries) if ref_eval(tree, fields) is not None
    ]
    matches = rs.match(article)
    assert [m.rule_id for m in matches] == expected, ([s for s, _ in queries], title, body)
    ev = Evaluator(article)
    compiler, coder = Compiler(), CodeCompiler()
    nodes = [
        q.parse(source, {k: [q.parse_alias(a) for a in v] for k, v in ENTITIES.items()})
        for source, _ in queries
    ]
    fast = [coder.compile(node) for node in nodes]
    present = coder.present(ev)
    for engine in ENGINES:
        assert Scanner(coder.keys, engine).scan(ev.joined) == present, engine
    known = Evaluator(article, rs._known)  # as rs.match cuts it: only the rules' words
    for node, check in zip(nodes, fast, strict=True):
        holds = ev.eval(node) is not None
        assert compiler.compile(node)(ev) is holds, node.src
        assert check(ev.words, present, ev) is holds, node.src
        assert check(known.words, present, known) is holds, node.src
        assert (known.eval(node) is not None) is holds, node.src
    _spans_are_reference_words(matches, queries, article, fields)


def _spans_are_reference_words(
    matches: list[Any], queries: list[tuple[str, Naive]], article: Article, fields: Any
) -> None:
    texts = (article.title, article.text)
    for m in matches:
        tree = queries[int(m.rule_id[1:])][1]
        occs = ref_eval(tree, fields) or set()
        shown = {(FIELD[f], " ".join(fields[f][i : j + 1])) for f, i, j in occs}
        for span in m.spans:
            words = ref_words(texts[FIELD.index(span.field)][span.start : span.end])
            assert (span.field, " ".join(words)) in shown, (m.rule_id, span)


FIELD = ["title", "body"]


def test_invisible_characters_cannot_hide_a_word() -> None:
    """A zero-width space, a soft hyphen or a variation selector inside a word does not hide
    it from rules, and an emoji's variation selector splits no word from the next."""
    rs = ruleset("korea AND seoul AND busan AND love")
    article = Article(text="Ko\u200brea, Se\u00adoul and Bu\ufe0fsan \u2764\ufe0flove")
    assert [m.rule_id for m in rs.match(article)] == ["r0"]
