"""The C whitespace stage of normalisation (monitor._textnorm.tidy) against the Python steps
it replaced, frozen below as they were: equal on every string, whatever its characters and
kind, and its result a str of the narrowest kind (as every str built by Python is).
"""

from __future__ import annotations

import csv
import re
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor._textnorm import tidy
from monitor.clean import html_text
from monitor.parse import parse_feed
from monitor.textnorm import MAX_CHARS, _fold, _normalize, normalize

# -- the reference: monitor/textnorm.py's steps before the C pass (do not "fix") ------------

_CONTROL = re.compile("[\x00-\x08\x0e-\x1b\x7f]")
_ODD_SPACE = re.compile(
    "[\t\x0b\x0c\x1c-\x1f\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
)


def reference(text: str, limit: int = MAX_CHARS) -> str:
    """The tail of the old ``_normalize``, from its "\\r" handling on (``limit`` was
    MAX_CHARS)."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    printable = text.replace("\n", " ").isprintable()
    if not printable and _CONTROL.search(text):
        text = _CONTROL.sub(" ", text)
    if (
        "  " in text
        or "\n " in text
        or " \n" in text
        or "\n\n" in text
        or text[:1].isspace()
        or text[-1:].isspace()
        or (not printable and _ODD_SPACE.search(text))
    ):
        text = _reference_tidy(text, printable)
    return text[:limit].strip()


def _reference_tidy(text: str, printable: bool) -> str:
    if not printable:
        if "\t" in text:
            text = text.replace("\t", " ")
        if _ODD_SPACE.search(text):
            lines = (" ".join(line.split()) for line in text.split("\n"))
            return "\n".join([line for line in lines if line])
    text = "\n".join(filter(None, map(str.strip, text.split("\n"))))
    while "  " in text:
        text = text.replace("  ", " ")
    return text


def reference_normalize(text: str) -> str:
    """The old ``_normalize``: its first steps (still Python, now :func:`_fold`), then the
    reference."""
    text = text[:MAX_CHARS]
    if not text.isascii():
        text = _fold(text)
    return reference(text)


# -- checking --------------------------------------------------------------------------------


def check(text: str, limit: int = MAX_CHARS) -> None:
    got, want = tidy(text, limit), reference(text, limit)
    assert got == want, (text, limit)
    assert type(got) is str
    # Equal strs of different kinds compare unequal, but an ASCII one flagged latin-1 not.
    assert got.isascii() == want.isascii(), (text, limit)


# Whitespace, controls and characters either side of the classes' edges, in every kind.
AWKWARD = [
    *" \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x85\xa0\u1680\u2000\u200a\u2028\u2029\u202f\u205f\u3000",
    *"\x00\x01\x08\x0e\x1b\x7f\x80\x84\x86\x9f\x20\x21\x7e\xff\u0100\u167f\u1681\u200b\u3001",
    *"\u7fff\u8000\uffff\ud800\udfff\U00010000\U0001f600\U0010ffff",
    *"ab.é€",
]
TEXT = st.text(alphabet=st.sampled_from(AWKWARD) | st.characters(), max_size=40)
# Words and gaps, long enough for the block copies (16 bytes, 8 characters at a time).
TOKENS = [
    "a", "word", "longerwordthanablock", "x.y,z!", "é", "naïve", "€", "日本", "😀", "\ud800",
    " ", " ", " ", "\n", "\n", "  ", "\n\n", " \n", "\n ", "\t", "\r\n", "\r", "\x0b", "\xa0",
    "\u3000", "\u2028", "\x85", "\x00", "\x1b", "\x7f", "\x1f", "\x9f",
]  # fmt: skip
PROSE = st.lists(st.sampled_from(TOKENS), max_size=80).map("".join)
FAST = settings(
    max_examples=1000,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@FAST
@given(TEXT, st.integers(0, 45))
def test_any_text_as_reference(text: str, limit: int) -> None:
    """Random characters, rich in whitespace, controls, wide and astral ones and surrogates."""
    check(text)
    check(text, limit)


@settings(FAST, max_examples=600)
@given(PROSE, st.integers(0, 200))
def test_prose_as_reference(text: str, limit: int) -> None:
    """Words and gaps of every kind, NEL alone or with other odd whitespace, cut anywhere."""
    check(text)
    check(text, limit)
    check(text.replace("\x85", ""))  # the common way, without the NEL quirk


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ""),
        ("a", "a"),
        ("  a  b  ", "a b"),
        ("a\r\nb\rc\n\rd", "a\nb\nc\nd"),
        ("a\r\r\nb", "a\nb"),
        ("a\x00\x01b\x7f", "a b"),
        ("a\tb", "a b"),
        ("a\x0bb\x0cc\x1cd\x1fe", "a b c d e"),
        ("a\u2028b\u2029c", "a b c"),  # not line breaks: split("\n") only
        ("a\xa0\u3000b", "a b"),
        ("a \n \n b", "a\nb"),
        ("\n\n\na\n\n\n", "a"),
        ("a\x85b", "a\x85b"),  # NEL kept inside a line when nothing else is to tidy...
        ("a\x85b  c", "a\x85b c"),
        ("\x85a\x85\n\x85", "a"),  # ...stripped at the ends of lines when tidied...
        ("a\n\x85\nb", "a\n\x85\nb"),  # ...but then only
        ("a\x85b\xa0c", "a b c"),  # a separator, with other odd whitespace
        ("a\x85b\tc", "a\x85b c"),
        ("\ud800 \udfff", "\ud800 \udfff"),
        ("é\u3000", "é"),  # wide only by its whitespace: latin-1
        ("a\u2000", "a"),  # ASCII
        ("😀\u3000b", "😀 b"),
        ("\U0001f600\u2028", "\U0001f600"),
        ("x\U0001f600"[:1] + "\u2028", "x"),
    ],
)
def test_cases(text: str, expected: str) -> None:
    assert reference(text) == expected
    assert tidy(text, MAX_CHARS) == expected
    check(text)


def test_every_code_point() -> None:
    """Each character alone between words, short (one character at a time) and inside
    prose (the block copies): exactly whitespace, the controls and "\\r" are changed."""
    changed = {
        c
        for c in map(chr, range(sys.maxunicode + 1))
        if c == "\r" or (c.isspace() and c != "\x85") or _CONTROL.match(c)
    }
    for i in range(sys.maxunicode + 1):
        c = chr(i)
        short, long = f"a{c}b", f"ab cd{c}ef gh ij kl mn op qr st uv wx yz"
        if c in changed:
            check(short)
            check(long)
            check(c)
        else:
            assert tidy(short, MAX_CHARS) == short
            assert tidy(long, MAX_CHARS) == long
    for c in "\x85\r":
        check(f"a{c}b")
        check(f"ab cd{c}ef gh ij kl mn op qr st uv wx yz")
        check(f"a{c}b" * 20)


@pytest.mark.parametrize("pad", ["", "é", "\u20ac", "\U0001f600"])
def test_long_text_cut_at_the_limit(pad: str) -> None:
    """Past the limit: tidied whole, then cut and stripped; the kind of what is left."""
    unit = "word " * 7 + "\n\n  x" + pad
    text = unit * (MAX_CHARS // len(unit) + 2)
    assert len(text) > MAX_CHARS
    check(text)
    for cut in (1, 5, 6, 35, 36, 37, 38):
        check(text, cut)
    check("a" * (MAX_CHARS - 1) + " " + pad + "b")
    check("a" * (MAX_CHARS - 1) + pad * 3)


def test_unchanged_text_is_returned_as_is() -> None:
    text = "Already tidy.\nTwo lines, one space each."
    assert tidy(text, MAX_CHARS) is text

    class Sub(str):
        pass

    got = tidy(Sub(text), MAX_CHARS)
    assert type(got) is str
    assert got == text


def test_bad_arguments() -> None:
    with pytest.raises(TypeError):
        tidy(b"text", 5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        tidy("text")  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="negative"):
        tidy("text", -1)
    with pytest.raises(OverflowError):
        tidy("text", 2**70)


def _corpus_texts(corpus: Path) -> list[str]:
    with (corpus / "feeds" / "manifest.tsv").open(encoding="utf-8") as f:
        urls = {row["file"]: row["original_url"] for row in csv.DictReader(f, delimiter="\t")}
    texts = []
    for name, url in urls.items():
        for entry in parse_feed((corpus / "feeds" / name).read_bytes(), url).entries:
            texts += [entry.title, html_text(entry.summary_html), html_text(entry.content_html)]
    return [text for text in texts if text]


def test_corpus_texts(corpus: Path) -> None:
    """Every corpus entry's texts: the tail alone, and the whole normalisation."""
    texts = _corpus_texts(corpus)
    assert len(texts) > 1000
    for text in texts:
        check(text)
        assert _normalize(text) == reference_normalize(text)
        assert normalize(text) == reference_normalize(text)
