"""Term occurrences found by one C pass (monitor._words.occurrences, Tokens.occurrences)
and word offsets in C (monitor._words.offsets): the same word numbers and offsets as the
word-by-word path they stand in for (find, the word index, Tokens.span), for ASCII text,
text of few non-ASCII characters and text of any str kind, with ``case:`` and prefix
terms, and bounded on hostile text.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor import query as q
from monitor._words import Vocabulary, fold_ascii, occurrences, offsets
from monitor.article import Article
from monitor.evaluate import BOTH, MAX_HITS, Evaluator
from monitor.rules import RuleSet
from monitor.words import Tokens, find, fold

_RUN = re.compile(r"[^ ]+")

# Words that fold alike in different ways, so phrases, prefixes and case: terms all meet.
_WORDS = ["Korea", "korea", "KOREA", "kor", "Koreas", "nuclear", "São", "sao", "Straße", "x"]
_SEPS = [" ", "  ", ", ", "'", "-", "\n", " — ", "…", ".", "_"]


@st.composite
def texts(draw: st.DrawFn) -> str:
    """Text made of a few words that repeat, with assorted separators (and some not)."""
    words = draw(st.lists(st.sampled_from(_WORDS), max_size=40))
    seps = draw(st.lists(st.sampled_from(_SEPS), min_size=len(words) + 1, max_size=len(words) + 1))
    return "".join(s + w for s, w in zip(seps, words, strict=False)) + seps[-1]


@st.composite
def terms(draw: st.DrawFn) -> q.Term:
    """A term of one to three of those words: folded, or ``case:``; whole, or a prefix."""
    words = draw(st.lists(st.sampled_from(_WORDS), min_size=1, max_size=3))
    exact, prefix = draw(st.booleans()), draw(st.booleans())
    if prefix:
        words[-1] = words[-1][: draw(st.integers(1, len(words[-1])))]
    return q.Term(tuple(words if exact else map(fold, words)), exact, prefix)


def word_by_word(ev: Evaluator, term: q.Term) -> list[tuple[int, int, int, int, int]] | None:
    """The term's occurrences as the word-by-word path finds them (every word's offsets)."""
    out = []
    for f, toks in enumerate(ev.fields):
        for p in find(toks, term.words, term.exact, term.prefix, MAX_HITS):
            last = p + len(term.words) - 1
            out.append((f, p, last, toks.starts[p], toks.ends[last]))
    return out or None


def _known(term: q.Term) -> Vocabulary:
    words = {*term.words, *map(fold, term.words)}
    key = " " + " ".join(map(fold, term.words)) + ("" if term.prefix else " ")
    return Vocabulary(sorted(words), [key])


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(texts(), texts(), terms(), st.booleans())
def test_term_as_word_by_word(title: str, text: str, term: q.Term, known: bool) -> None:
    """A term's occurrences found by one C pass are those found word by word."""
    article = Article(title=title, text=text)
    vocab = _known(term) if known else None
    scanned, reference = Evaluator(article, vocab), Evaluator(article, vocab)
    assert scanned.term(term, BOTH) == word_by_word(reference, term)


@given(texts(), terms())
def test_term_with_the_word_index_as_without(text: str, term: q.Term) -> None:
    """Once a field answers from the index of every word, a term's occurrences stay put."""
    article = Article(title=text, text=text)
    scanned, indexed = Evaluator(article), Evaluator(article)
    for toks in indexed.fields:
        toks.use_index()
    assert scanned.term(term, BOTH) == indexed.term(term, BOTH)


@pytest.mark.parametrize(
    ("text", "key", "expected"),
    [
        ("The  Quick, brown fox -- the quick", " the quick ", [(0, 1, 0, 10), (4, 5, 25, 34)]),
        ("The  Quick, brown fox -- the quick", " qu", [(1, 1, 5, 10), (5, 5, 29, 34)]),
        ("a a a", " a a ", [(0, 1, 0, 3), (1, 2, 2, 5)]),
        ("  lead and trail  ", " trail ", [(2, 2, 11, 16)]),
        ("word", " word ", [(0, 0, 0, 4)]),
        ("word", " wo", [(0, 0, 0, 4)]),
        ("words", " word ", []),
        ("", " word ", []),
        ("...", " word ", []),
    ],
)
def test_occurrences_cases(text: str, key: str, expected: list[tuple[int, ...]]) -> None:
    """Word numbers, and offsets from the first word's start to the last word's end."""
    flat, _, _, joined = fold_ascii(text)
    found = occurrences("t", joined, flat, key, 100)
    assert found == [("t", *occ) for occ in expected]
    assert [text[s:e].lower() for *_, s, e in found] == [
        text[s:e].lower() for _, _, s, e in expected
    ]


@pytest.mark.parametrize("limit", [0, 1, 2, 5])
def test_occurrences_stop_at_the_limit(limit: int) -> None:
    """Only the first ``limit`` occurrences are given."""
    flat, _, _, joined = fold_ascii("a b a b a b a")
    assert occurrences(0, joined, flat, " a ", limit) == [
        (0, p, p, p * 2, p * 2 + 1) for p in (0, 2, 4, 6)[:limit]
    ]


@pytest.mark.parametrize(
    "text",
    ["Ünïcödé wörds ünïcödé", "Ёлка ёлка и ЁЛКА", "emoji 😀 wörds 😀 wörds", "ÿ ÿ\u0100 ÿ"],
)
def test_occurrences_in_joined_words_of_any_kind(text: str) -> None:
    """Joined words of any str kind (latin-1, two- and four-byte) are counted alike."""
    toks = Tokens(text)
    assert toks.mask, "these texts have a mask"
    for word in set(toks.folded):
        key = f" {word} "
        positions = [p for p, w in enumerate(toks.folded) if w == word]
        assert toks.occurrences(key, 100, 1) == [
            (1, p, p, toks.starts[p], toks.ends[p]) for p in positions
        ]


@given(st.text(alphabet=" ab\t.\x00\x7f", max_size=80))
def test_offsets_are_the_runs_of_non_spaces(flat: str) -> None:
    """offsets(flat) gives where each run of characters other than a space starts and ends."""
    runs = list(_RUN.finditer(flat))
    assert offsets(flat) == ([m.start() for m in runs], [m.end() for m in runs])


@given(st.text(alphabet=" ab\t", max_size=60), st.sampled_from([" a ", " a", " ab ", " b a"]))
def test_occurrences_of_any_ascii_flat_text(flat: str, key: str) -> None:
    """Any ASCII flat text: the words are the runs of non-spaces (a tab is a letter here)."""
    words = flat.split(" ")
    words = [w for w in words if w]
    joined = " " + " ".join(words) + " " if words else "  "
    starts, ends = offsets(flat)
    width = len(key.split())
    expected = []
    at = joined.find(key)
    while at >= 0:
        p = joined.count(" ", 0, at)
        expected.append((0, p, p + width - 1, starts[p], ends[p + width - 1]))
        at = joined.find(key, at + 1)
    assert occurrences(0, joined, flat, key, 1000) == expected


def test_occurrences_of_a_key_that_cannot_be_there() -> None:
    """A non-ASCII key in ASCII words, or a key with two spaces in a row, occurs nowhere."""
    flat, _, _, joined = fold_ascii("sao paulo")
    assert occurrences(0, joined, flat, " são ", 10) == []
    assert occurrences(0, joined, flat, " sao  paulo ", 10) == []


@pytest.mark.parametrize(
    ("args", "error"),
    [
        ((0, " a ", "a", "", 1), ValueError),  # a key must hold a word after its space
        ((0, " a ", "a", "a", 1), ValueError),
        ((0, " a ", "a", "  a", 1), ValueError),
        ((0, " a ", "ä", " a ", 1), ValueError),  # flat must be ASCII
        ((0, " a b ", "a", " b ", 1), ValueError),  # flat has fewer words than joined
        ((0, " a ", "", " a ", 1), ValueError),
        ((0, b" a ", "a", " a ", 1), TypeError),
        ((0, " a ", b"a", " a ", 1), TypeError),
        ((0, " a ", "a", b" a ", 1), TypeError),
        ((0, " a ", "a", " a "), TypeError),
        ((0, " a ", "a", " a ", "1"), TypeError),
    ],
)
def test_occurrences_refuses_bad_arguments(args: tuple[object, ...], error: type) -> None:
    """Arguments of the wrong type or shape raise, never crash."""
    with pytest.raises(error):
        occurrences(*args)  # type: ignore[arg-type]


@pytest.mark.parametrize(("arg", "error"), [("ä b", ValueError), (b"a b", TypeError)])
def test_offsets_refuses_bad_arguments(arg: object, error: type) -> None:
    """offsets() takes ASCII str only."""
    with pytest.raises(error):
        offsets(arg)  # type: ignore[arg-type]


def test_hostile_text_of_one_word_repeated() -> None:
    """One word repeated 100,000 times: the first MAX_HITS occurrences, in one pass each."""
    toks = Tokens("spam " * 100_000)
    found = toks.occurrences(" spam spam ", MAX_HITS, 1)
    assert found == [(1, p, p + 1, 5 * p, 5 * p + 9) for p in range(MAX_HITS)]
    assert toks.occurrences(" spam eggs ", MAX_HITS, 1) == []
    starts, ends = offsets(toks.mask)
    assert len(starts) == 100_000 and starts[-1] == 499_995 and ends[-1] == 499_999


def test_hostile_field_spans_match_word_by_word() -> None:
    """A 200,000-character field: a phrase found late, a case: term with many near misses."""
    text = "Ab ab " * 33_333 + "Ab cd"
    article = Article(title="", text=text)
    scanned, reference = Evaluator(article), Evaluator(article)
    for term in (q.Term(("ab", "cd")), q.Term(("Ab", "cd"), exact=True), q.Term(("Ab",), True)):
        assert scanned.term(term, BOTH) == word_by_word(reference, term)


def test_rule_spans_unchanged_by_the_index_of_every_word() -> None:
    """Spans of a rule set's matches are the same when every field answers from the index."""
    rules = RuleSet.from_source(
        "rules:\n"
        "  - {id: a, query: '\"south korea\" AND nuclear*'}\n"
        "  - {id: b, query: 'case:Korea NEAR/3 sao'}\n"
    )
    text = "São Paulo, Korea's nuclear plan. KOREA south korea"
    article = Article(title="South Korea", text=text)
    scanned, indexed = rules.match(article), rules.match(article)
    for m in indexed:
        for toks in m._whence[0].fields:  # type: ignore[index]
            toks.use_index()
    assert [m.spans for m in scanned] == [m.spans for m in indexed]
    assert [m.rule_id for m in scanned] == ["a", "b"]
