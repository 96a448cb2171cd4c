"""Invariants the matcher's shortcuts rely on: word offsets read from folded text, and
candidates picked by C-level tests of second keys, agree with the plain definitions."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor import query as q
from monitor.prefilter import Index
from monitor.words import Tokens, word_re

TEXTS = [
    "",
    "plain ASCII words, with punctuation!",
    "São Paulo é a maior cidade",  # accents fold to one ASCII letter each
    "“Quoted” — text’s dashes… and ellipses",  # punctuation folds to spaces
    "Straße groß",  # ß folds to two letters: offsets from the text itself
    "ﬁnal ﬂow",  # ligatures too
    "aͺb ͺ",  # a letter that folds to a space (its word is still cut where written)
    "中国 and 日本",
    "Москва и Санкт-Петербург",
    "x\u0301y e\u0308",  # combining marks
    "  leading and trailing  ",
    "İstanbul ǅemal Σίσυφος",
    "½ ² ① ⅰⅱ",  # digits and numerals that fold to ASCII, or not
]
ALPHABET = list("aZ9 .'-_é€’“ßﬁͺİ中ё½²\u0301\u00a0\n")


def _reference(text: str) -> tuple[list[int], list[int]]:
    spans = [m.span() for m in word_re(text).finditer(text)]
    return [s for s, _ in spans], [e for _, e in spans]


def _general(text: str) -> tuple[list[int], list[int]]:
    """The offsets of non-ASCII text as worked out without its folded text."""
    toks = Tokens(text)
    toks._flat = ""
    return toks.starts, toks.ends


def _check_offsets(text: str) -> None:
    toks = Tokens(text)
    starts, ends = toks.starts, toks.ends
    if not text.isascii():
        assert (starts, ends) == _general(text)
    if len(starts) == len(toks.folded):  # not so where a word character folds to a space
        assert (starts, ends) == _reference(text)
    located = Tokens(text)  # word by word, where the folded text allows it
    for i in range(min(len(starts), 40)):
        assert located.span(i, i) == (starts[i], ends[i])


@pytest.mark.parametrize("text", TEXTS)
def test_word_offsets_are_where_the_words_are_written(text: str) -> None:
    """Each word's offsets, located one by one or worked out at once, are those of the
    word pattern, whatever the text's non-ASCII characters fold to."""
    _check_offsets(text)
    _check_offsets(text * 30)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(ALPHABET), max_size=80).map("".join))
def test_word_offsets_of_any_mix(text: str) -> None:
    """The same for any mix of characters that fold to one ASCII character or not."""
    _check_offsets(text)


def test_candidates_are_the_rules_whose_keys_are_present() -> None:
    """A rule is a candidate when one of its keys is present and, if it is filed with
    second keys, one of those too; before and after refiling."""
    rng = random.Random(7)
    vocab = [f"wd{i}" for i in range(40)] + ["common", "often"]
    queries = []
    for _ in range(300):
        a, b, c = rng.sample(vocab, 3)
        queries.append(
            rng.choice(
                [
                    f"{a} AND {b}",
                    f"({a} OR {c}) AND {b}",
                    f'"{a} {b}" AND {c}',
                    f"{a} AND {b}* AND NOT {c}",
                    f"{a} OR {b}",
                    f"NOT {a}",
                ]
            )
        )
    nodes = [q.parse(s) for s in queries]
    index = Index(nodes)
    for _ in range(400):
        words = {w for w in rng.sample(vocab, rng.randint(0, 12))} | {"common", "often"}
        keys = {f" {a} {b} " for a in words for b in words} | {f" {w}" for w in words}
        filed = list(index.filed)  # as they are when the candidates are picked
        expected = [
            i
            for i, (first, second) in enumerate(filed)
            if not first
            or (
                any(k in words or k in keys for k in first)
                and (not second or any(k in words or k in keys for k in second))
            )
        ]
        assert index.candidates(words, keys) == expected
    assert index._counted > 64  # it learnt, and refiled on the way
