"""Folding against a rule set's known words (monitor._words.Vocabulary, and Tokens given
``known``): the same flat and joined text as fold_ascii, a word set holding exactly the
known words among the text's words, and everything else a Tokens answers (its folded words,
every word, positions, offsets) the same as without known words.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor._words import Vocabulary, fold_ascii
from monitor.article import Article
from monitor.parse import Feed, entry_article
from monitor.prefilter import ENGINES, Scanner
from monitor.rules import RuleSet
from monitor.words import Tokens, fold, split
from tests.test_words_c import ASCII_TEXT, FAST, MIXED_TEXT

KNOWN = ["a", "word", "x1", "2024", "korea", "s", "longerwordthanmostwords", "mail", "é", "日"]
# Keys as monitor.checks.sequence_key makes them (phrases, prefixes, both), and odd ones
# (none of the rule set's shape) that are searched for as substrings.
KEYS = [
    " word a ", " a word ", " a a ", " korea s ", " korea s mail ", " s korea ", " x1 2024 ",
    " a word a word ", " korea ", " wor", " ma", " lon", " longerwordthanmos", " korea ma",
    " a word wo", " 2024 x", " x", " 20", " mail ", " a a a ", " é ", " 日 本 ", " notaword ",
    " korea notaword ", " word  a ", "word", " a-b ", " ", "  ", "", " s kor", " s korea",
]  # fmt: skip


def reference_found(keys: list[str], joined: str) -> set[str]:
    return {key for key in keys if key.isascii() and key in joined}


def check_fold(known: list[str], text: str, keys: list[str] = KEYS) -> None:
    vocab = Vocabulary(known, keys)
    flat, joined, words, found = vocab.fold(text)
    want_flat, folded, _, want_joined = fold_ascii(text)
    assert (flat, joined) == (want_flat, want_joined)
    assert flat.isascii() and joined.isascii()
    assert words == set(folded) & set(known)
    assert found == reference_found(keys, joined), text
    # The vocabulary's own str objects, not copies.
    assert {id(w) for w in words} <= {id(w) for w in known}
    assert {id(k) for k in found} <= {id(k) for k in keys}


@FAST
@given(ASCII_TEXT)
def test_fold_as_fold_ascii(text: str) -> None:
    check_fold(KNOWN, text)


PIECES = ["a", "ab", "b", "ba", "aa", "x" * 9, "x" * 8, "x" * 16, "abc", "abcdefghij"]


@settings(FAST, max_examples=500)
@given(
    st.lists(st.sampled_from(PIECES), max_size=8),
    st.lists(
        st.tuples(st.lists(st.sampled_from(PIECES), min_size=1, max_size=4), st.booleans()),
        max_size=12,
    ),
    st.lists(st.sampled_from([*PIECES, " ", "-", "X" * 12, "AB"]), max_size=40),
)
def test_fold_finds_keys_as_substrings(
    known: list[str], shapes: list[tuple[list[str], bool]], parts: list[str]
) -> None:
    """Words sharing prefixes, or of a machine word's length and its multiples; keys of one
    to four such words, phrases or prefixes (a prefix may be longer than 8 letters, or than
    the word it meets), over texts made of the same pieces."""
    keys = [" " + " ".join(ws) + ("" if prefix else " ") for ws, prefix in shapes]
    text = " ".join(parts)
    check_fold(known + [w for ws, _ in shapes for w in ws[:-1]], text, keys)
    check_fold(PIECES, text, keys)


@pytest.mark.parametrize("size", [1, 7, 8, 9, 15, 16, 17, 63, 64, 65, 127, 128, 129, 200])
@pytest.mark.parametrize("shift", [0, 1, 8, 15, 16, 62, 63])
def test_fold_across_blocks(size: int, shift: int) -> None:
    """Words of every length that start, end or run across the fold's 64-character blocks
    (and its 8- and 16-byte loads), text ending in a word or in a space."""
    word = "".join("Ab1" for _ in range(size))[:size]
    for text in (" " * shift + word, " " * shift + word + " ", "." * shift + word + "-x"):
        check_fold([*KNOWN, word.lower(), word.lower()[:8]], text)
        check_fold(KNOWN, text + " " + text, [f" {word.lower()} ", f" {word.lower()[:3]}"])


def test_fold_cases() -> None:
    vocab = Vocabulary(["korea", "south", "korea"], [" south korea ", " kor", " south ko"])
    assert len(vocab) == 2
    assert vocab.fold("") == ("", "  ", set(), set())
    assert vocab.fold(" .- ") == ("    ", "  ", set(), set())
    assert vocab.fold("South KOREA, the south-korea") == (
        "south korea  the south korea",
        " south korea the south korea ",
        {"south", "korea"},
        {" south korea ", " kor", " south ko"},
    )
    assert vocab.fold("korea") == ("korea", " korea ", {"korea"}, {" kor"})
    assert vocab.fold("koreas skorea kore") == (
        "koreas skorea kore",
        " koreas skorea kore ",
        set(),
        {" kor"},
    )


def test_fold_many_words() -> None:
    """A large vocabulary, a long text: every known word found, no other."""
    known = [f"w{i}x" for i in range(0, 300_000, 3)]
    vocab = Vocabulary(known)
    text = " ".join(f"W{i}X" for i in range(100_000))
    keys = [f" w{i}x w{i + 3}x " for i in range(0, 300_000, 3)]
    vocab = Vocabulary(known, keys)
    words, found = vocab.fold(text)[2:]
    assert words == {f"w{i}x" for i in range(0, 100_000, 3)}
    assert found == set()  # no two known words in a row
    assert vocab.fold("W3X w6x W9x")[3] == {" w3x w6x ", " w6x w9x "}


def test_non_ascii_words_are_left_out() -> None:
    vocab = Vocabulary(["café", "cafe", "日本"], [" café ", " 日 本 ", " cafe cafe "])
    assert len(vocab) == 1
    assert vocab.fold("Cafe CAFE")[2:] == ({"cafe"}, {" cafe cafe "})


def test_bad_arguments() -> None:
    class Sub(str):
        pass

    with pytest.raises(TypeError):
        Vocabulary([Sub("a")])
    with pytest.raises(TypeError):
        Vocabulary([b"a"])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        Vocabulary(5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Vocabulary(words=["a"])  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Vocabulary(["a"], [Sub(" a ")])
    with pytest.raises(TypeError):
        Vocabulary(["a"], 5)  # type: ignore[arg-type]
    vocab = Vocabulary(["a"])
    with pytest.raises(ValueError, match="ASCII"):
        vocab.fold("café")
    with pytest.raises(TypeError):
        vocab.fold(b"a")  # type: ignore[arg-type]


def test_words_outlive_the_list() -> None:
    """The vocabulary keeps its words alive, whatever becomes of what it was given."""
    vocab = Vocabulary(iter([("kor" + "ea" * 3).lower()]))
    assert vocab.fold("KOREAEAEA korea")[2] == {"koreaeaea"}


def check_tokens(text: str, known: list[str]) -> None:
    plain, toks = Tokens(text), Tokens(text, Vocabulary(known))
    assert toks.joined == plain.joined
    assert toks.folded == plain.folded
    assert toks.every_word == plain.words
    if not toks._known_only:  # text with words that fold to other than ASCII
        assert toks.words == plain.words
    for word in {*known, *map(fold, known), *plain.words}:
        if toks._known_only:
            assert (word in toks.words) == (word in plain.words and word in known), word
        assert toks.positions(word) == plain.positions(word), word
    assert toks.vocab == plain.vocab
    assert toks.starts == plain.starts and toks.ends == plain.ends
    n = len(plain.folded)
    for i in range(0, n, max(1, n // 7)):
        assert toks.span(i, min(n - 1, i + 2)) == plain.span(i, min(n - 1, i + 2))


@settings(FAST, max_examples=600)
@given(MIXED_TEXT)
def test_tokens_answer_as_without_known_words(text: str) -> None:
    """ASCII text (and text whose non-ASCII characters fold to ASCII) keeps only the known
    words in ``words``; other text keeps them all; every other answer is unchanged."""
    check_tokens(text, KNOWN + [w.lower() for w in split(text)[::3]])


def test_tokens_on_corpus_entries(corpus_feeds: list[Feed]) -> None:
    for feed in corpus_feeds[:40]:
        for entry in feed.entries[:5]:
            text = entry_article(entry, source="s").text
            check_tokens(text, [w.lower() for w in split(text)[::5]])


def test_rule_set_fires_as_without_known_words(
    corpus: Path, corpus_feeds: list[Feed], tmp_path: Path
) -> None:
    """Rules generated from the corpus feeds' words (bench/match.py's generator: entities,
    ``case:`` forms, phrases, prefixes, NEAR, NOT, scopes) fire, with the same spans,
    whether the articles' word sets hold every word or only the known ones."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
    try:
        from match import Vocabulary as Words  # noqa: PLC0415 - the bench's generator
        from match import feed_texts, write_rules  # noqa: PLC0415
    finally:
        sys.path.pop(0)
    arts = [entry_article(e, source="s") for f in corpus_feeds[::3] for e in f.entries]
    texts = [(a.title, a.text, a.url) for a in arts]
    write_rules(Words(texts, feed_texts(corpus)), 5_000, tmp_path, seed=7)
    rs = RuleSet.from_files([tmp_path])
    articles = [Article(title=t, text=text, url=url) for t, text, url in texts]
    for engine in ENGINES:  # the keys each field's fold found are those a scan finds
        scanner = Scanner(rs._scanner.keys, engine)
        for a in articles:
            for text in (a.title, a.text):
                if text.isascii():
                    _, joined, _, found = rs._known.fold(text)
                    assert found == scanner.find(joined), (engine, text[:200])
    with_known = [[(m.rule_id, m.spans) for m in rs.match(a)] for a in articles]
    rs._known = None  # type: ignore[assignment] # Evaluators made without known words
    plain = [[(m.rule_id, m.spans) for m in rs.match(a)] for a in articles]
    assert with_known == plain
    assert sum(map(len, plain)) > 200, sum(map(len, plain))  # the rules do fire on these
