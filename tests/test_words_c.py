"""The C folding and cutting of words (monitor._words.fold_ascii) and the Tokens built with
it, against the Python steps they replaced, frozen below as they were: the same folded
words, folded text, word set and joined words for every text, ASCII or not.
"""

from __future__ import annotations

import re
import string
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor._words import fold_ascii, index
from monitor.parse import entry_article, parse_feed
from monitor.textnorm import non_ascii
from monitor.words import (
    _HAS_MARK,
    WORD_MARKS_RE,
    WORD_RE,
    Tokens,
    _aligned,
    _ascii_fold_of,
    _fold_run,
    _replace_each,
    fold,
)

# -- the reference: monitor/words.py's steps before the C call (do not "fix") ---------------


def _ascii_fold_table() -> dict[int, str]:
    table = {i: " " for i in range(128) if not chr(i).isalnum()}
    table.update({ord(c): c.lower() for c in string.ascii_uppercase})
    return table


_ASCII_FOLD = str.maketrans(_ascii_fold_table())
_ASCII_FOLD_BYTES = bytes(ord(_ASCII_FOLD.get(i, chr(i))) for i in range(128)) + bytes(128)
_NON_ASCII_SPLIT = re.compile(r"([^\x00-\x7f]+)")


def _reference_fold_flat(text: str, chars: str) -> tuple[list[str], str]:
    if _HAS_MARK.search(chars):
        return [fold(w) for w in WORD_MARKS_RE.findall(text)], ""
    replaced = _replace_each(text, chars, _ascii_fold_of)
    if replaced is not None:
        flat = replaced.translate(_ASCII_FOLD)
        return flat.split(), flat if all(map(_aligned, set(chars))) else ""
    parts = _NON_ASCII_SPLIT.split(text)
    parts[1::2] = map(_fold_run, parts[1::2])
    return "".join(parts).translate(_ASCII_FOLD).split(), ""


def reference_ascii(text: str) -> tuple[str, list[str], set[str], str]:
    """What ``Tokens(text)`` made of ASCII ``text``: flat, folded, words, joined."""
    flat = text.encode("ascii").translate(_ASCII_FOLD_BYTES).decode("ascii")
    folded = flat.split()
    return flat, folded, set(folded), " " + " ".join(folded) + " "


def reference(text: str) -> dict[str, object]:
    """The attributes of the old ``Tokens(text)`` that the C call now fills (``words`` and
    ``joined`` as the old properties computed them)."""
    if text.isascii():
        chars, pattern = "", WORD_RE
        flat, folded, _, _ = reference_ascii(text)
    else:
        chars = non_ascii(text)
        pattern = WORD_MARKS_RE if _HAS_MARK.search(chars) else WORD_RE
        folded, flat = _reference_fold_flat(text, chars)
    return {
        "text": text,
        "_chars": chars,
        "pattern": pattern,
        "_flat": flat,
        "folded": folded,
        "words": set(folded),
        "joined": " " + " ".join(folded) + " ",
    }


# -- checking --------------------------------------------------------------------------------


def _exact(got: object, want: object) -> bool:
    """Equal, and of the same type; strs flagged ASCII exactly when they are (equal strs
    of one kind compare equal whatever their flag, but a str built wrong has the wrong one).
    A set's words are checked as those of the list they come from (see :func:`check_ascii`)."""
    if isinstance(want, str):
        return type(got) is str and got == want and got.isascii() == want.isascii()
    if isinstance(want, list):
        return (
            type(got) is list
            and got == want
            and set(map(type, got)) <= {str}
            and list(map(str.isascii, got)) == list(map(str.isascii, want))
        )
    return type(got) is type(want) and got == want


def _shared(words: set[str], folded: list[str]) -> bool:
    """Whether ``words`` holds str objects of ``folded``."""
    return set(map(id, words)) <= set(map(id, folded))


def check_ascii(text: str) -> None:
    flat, folded, words, joined = fold_ascii(text)
    want = reference_ascii(text)
    assert _exact(flat, want[0]), text
    assert _exact(folded, want[1]), text
    assert _exact(words, want[2]), text
    assert _exact(joined, want[3]), text
    # Filled as set(folded) fills it, so even its order is the same; each word one object.
    assert list(words) == list(set(want[1])), text
    assert _shared(words, folded) and len(set(map(id, folded))) == len(words), text


def check(text: str) -> Tokens:
    if text.isascii():
        check_ascii(text)
    toks, want = Tokens(text), reference(text)
    for name, value in want.items():
        assert _exact(getattr(toks, name), value), (name, text)
    assert list(toks.words) == list(want["words"]), text  # type: ignore[call-overload]
    return toks


# Every ASCII character (controls too), words and separators, and non-ASCII characters of
# every path: folding to one ASCII letter or digit (aligned), to several or to a separator,
# to nothing ASCII, CJK, combining marks, wide and astral characters, surrogates.
ASCII = st.characters(max_codepoint=0x7F)
NON_ASCII = st.sampled_from(
    [
        *"éÉàçñøåßİıǅ²½ªºµﬁæœÆŒ",
        *"\xa0\u2019\u2014\u00ad\u200b\u3000\u2028",
        *"日本語カナひら한국어",
        *"\u0301\u0308\u093f",
        *"€😀\U00020000\ud800Ωжя",
    ]
)
WORDS = [
    "a", "A", "Word", "WORD", "x1", "2024", "z", "_", " ", "  ", "\n", "\t", "\x00", "\x1f",
    "\x7f", "-", "'", ".", "S.Korea", "Korea's", "e-mail", "longerwordthanmostwords",
]  # fmt: skip
ASCII_TEXT = st.text(alphabet=ASCII, max_size=60) | st.lists(
    st.sampled_from(WORDS), max_size=60
).map("".join)
MIXED_TEXT = st.lists(
    st.sampled_from(WORDS) | NON_ASCII | ASCII | st.characters(), max_size=60
).map("".join)
FAST = settings(
    max_examples=1000,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@FAST
@given(ASCII_TEXT)
def test_ascii_text_as_reference(text: str) -> None:
    check(text)


@settings(FAST, max_examples=800)
@given(MIXED_TEXT)
def test_mixed_text_as_reference(text: str) -> None:
    check(text)


@settings(FAST, max_examples=300)
@given(st.lists(st.sampled_from("éñøà日€ﬁ²\u0301"), min_size=1, max_size=4), ASCII_TEXT)
def test_few_non_ascii_characters_as_reference(chars: list[str], text: str) -> None:
    """ASCII text with a few non-ASCII characters here and there: most take the C call
    on the text with them replaced."""
    for i, c in enumerate(chars):
        at = (i * 7919) % (len(text) + 1)
        text = text[:at] + c + text[at:]
    check(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "a",
        "A",
        "  \x00\x7f ",
        "Hello, World! hello WORLD 42 x_y S.Korea's",
        "a" * 1000,
        "ab " * 1000,
        "naïve café Ångström",  # aligned: each folds to one letter
        "ﬁnance ½ Straße",  # not aligned: ligature, fraction, sharp s
        "São Paulo, são PAULO!",
        "Tōkyō 東京 and 大阪",
        "e\u0301te\u0301",  # combining marks
        "".join(map(chr, range(0xC0, 0xC0 + 40))),  # more non-ASCII than are replaced
    ],
)
def test_cases(text: str) -> None:
    check(text)


def test_results() -> None:
    assert fold_ascii("") == ("", [], set(), "  ")
    assert fold_ascii(" .- ") == ("    ", [], set(), "  ")
    assert fold_ascii("Korea's S.Korea, 2x") == (
        "korea s s korea  2x",
        ["korea", "s", "s", "korea", "2x"],
        {"korea", "s", "2x"},
        " korea s s korea 2x ",
    )


def test_many_distinct_words() -> None:
    """The table of words met so far grows far past its first size."""
    text = " ".join(f"W{i}x" for i in range(200_000)) + " w7X" * 3
    check_ascii(text)


def test_str_subclass() -> None:
    class Sub(str):
        pass

    flat, folded, words, joined = fold_ascii(Sub("Ab cD"))
    assert (type(flat), flat, folded, words, type(joined), joined) == (
        str, "ab cd", ["ab", "cd"], {"ab", "cd"}, str, " ab cd ",
    )  # fmt: skip


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="ASCII"):
        fold_ascii("café")
    with pytest.raises(TypeError):
        fold_ascii(b"text")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        fold_ascii()  # type: ignore[call-arg]


def _corpus_texts(corpus: Path) -> list[str]:
    texts = []
    for path in sorted((corpus / "feeds").rglob("*")):
        if path.suffix not in (".xml", ".json"):
            continue
        for entry in parse_feed(path.read_bytes(), "http://example.com/feed").entries:
            article = entry_article(entry, source="x", summary=False)
            texts += [article.title, article.text]
    return texts


def test_corpus_texts(corpus: Path) -> None:
    """Every corpus entry's title and text, by every path: ASCII, non-ASCII replaced (its
    folded text kept or not), folded run by run, and with combining marks."""
    texts = _corpus_texts(corpus)
    assert len(texts) > 10_000
    paths = set()
    for text in texts:
        toks = check(text)
        paths.add((text.isascii(), toks.pattern is WORD_MARKS_RE, bool(toks._flat)))
    assert {(True, False, True), (False, False, True), (False, True, False)} <= paths


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["a", "bb", "c", "south", "korea", "é", "1"]), max_size=600))
def test_index_as_reference(folded: list[str]) -> None:
    """index() gives each word's positions, ascending, words in first-occurrence order, as
    the Python loop it replaced did."""
    reference: dict[str, list[int]] = {}
    for i, word in enumerate(folded):
        reference.setdefault(word, []).append(i)
    found = index(folded)
    assert found == reference
    assert list(found) == list(reference)


class _Word(str):
    """A str subclass, whose look-ups could run Python code."""


@pytest.mark.parametrize("bad", [None, ("a",), ["a", 1], "ab", ["a", _Word("b")]])
def test_index_refuses_what_is_not_a_list_of_str(bad: object) -> None:
    """A TypeError, never a crash."""
    with pytest.raises(TypeError):
        index(bad)  # type: ignore[arg-type]
