"""The C stages of normalisation (monitor._textnorm.tidy, the whitespace; monitor._textnorm.fold,
the characters) against the Python steps they replaced, frozen below as they were: equal on
every string, whatever its characters and kind, and their results strs of the narrowest kind
(as every str built by Python is).

``python tests/test_textnorm_c.py`` prints the table of NFKC-stable characters that
monitor/_textnorm.c holds, generated from this Python's unicodedata.
"""

from __future__ import annotations

import csv
import functools
import re
import sys
import unicodedata
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor import textnorm
from monitor._textnorm import UNIDATA_VERSION, fold, has_c0, tidy
from monitor.clean import html_text
from monitor.parse import entry_article, parse_feed
from monitor.textnorm import MAX_CHARS, _fold, _nfkc, _normalize, normalize

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
    """The old ``_normalize``: its first steps (:func:`reference_fold`), then the
    reference."""
    text = text[:MAX_CHARS]
    if not text.isascii():
        text = reference_fold(text)
    return reference(text)


# -- the reference: monitor/textnorm.py's _fold before the C pass (do not "fix") ------------

_FOLD = {
    "\u2018": "'",
    "\u2019": "'",
    "\u201a": "'",
    "\u201b": "'",
    "\u2032": "'",
    "\u201c": '"',
    "\u201d": '"',
    "\u201e": '"',
    "\u201f": '"',
    "\u2033": '"',
    "\u00ab": '"',
    "\u00bb": '"',
    "\u2010": "-",
    "\u2011": "-",
    "\u2012": "-",
    "\u2013": "-",
    "\u2014": "-",
    "\u2015": "-",
    "\u2212": "-",
}
_INVISIBLE = (
    "\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
    "\u2060\u2061\u2062\u2063\u2064\u2066\u2067\u2068\u2069\ufeff\u00ad"
    + "".join(map(chr, range(0xFE00, 0xFE10)))
)
_REPLACE = {
    **_FOLD,
    **dict.fromkeys(_INVISIBLE, ""),
    **{chr(c): " " for c in range(0x80, 0xA0)},
}
_INVISIBLES = re.compile("[" + _INVISIBLE + "]")
_ASCII_BYTES = bytes(range(128))
_FOLDED = re.compile("[" + "".join(c for c in _REPLACE if c not in _INVISIBLE) + "]")


def marks_cut(text: str, keep: int = 30) -> str:
    """Each run of combining marks cut to ``keep`` (written apart from textnorm's regex)."""
    out: list[str] = []
    run = 0
    for char in text:
        run = run + 1 if unicodedata.combining(char) else 0
        if run <= keep:
            out.append(char)
    return "".join(out)


def reference_fold(text: str) -> str:
    """The old ``_fold``, with runs of combining marks cut to 30 around NFKC."""
    if "\xa0" in text:
        text = text.replace("\xa0", " ")
    if "\u2026" in text:
        text = text.replace("\u2026", "...")
    text, chars = _replace_each(_INVISIBLES, text, _scanned(text))
    text = marks_cut(text)
    if not unicodedata.is_normalized("NFKC", text):
        text = marks_cut(unicodedata.normalize("NFKC", text))  # makes no invisible (checked)
        chars = _scanned(text)
    text, _ = _replace_each(_FOLDED, text, chars)
    return text


def _scanned(text: str) -> str:
    raw = text.encode("utf-8", "surrogatepass")
    if len(raw) - len(text) > len(text) // 4:
        return text
    return raw.translate(None, _ASCII_BYTES).decode("utf-8", "surrogatepass")


def _replace_each(found_in: re.Pattern[str], text: str, chars: str) -> tuple[str, str]:
    itself = chars is text
    found = found_in.search(chars)
    while found is not None:
        char = found.group()
        text = text.replace(char, _REPLACE[char])
        chars = text if itself else chars.replace(char, _REPLACE[char])
        found = found_in.search(chars, found.start())
    return text, chars


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


# -- fold: the character stage -----------------------------------------------------------------


def check_fold(text: str) -> None:
    got, want = fold(text, _nfkc), reference_fold(text)
    assert got == want, text
    assert type(got) is str
    assert got.isascii() == want.isascii(), text
    assert _fold(text) == want


class Spy:
    """An ``nfkc`` for fold that notes what it is called on."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, text: str) -> str:
        self.calls.append(text)
        return unicodedata.normalize("NFKC", text)


# The NFKC-stable characters (see monitor/_textnorm.c), computed from this Python's unicodedata.

TABLE_END = 0x20000


@functools.cache
def _composed_seconds() -> frozenset[str]:
    """The second characters of the canonical decompositions in two (those NFKC may compose
    with the character before them, and some it never does), and the Hangul jamo that
    compose with the one before them (vowels, trailing consonants)."""
    seconds = {chr(c) for c in [*range(0x1161, 0x1176), *range(0x11A8, 0x11C3)]}
    for c in map(chr, range(sys.maxunicode + 1)):
        parts = unicodedata.decomposition(c).split()
        if len(parts) == 2 and not parts[0].startswith("<"):
            seconds.add(chr(int(parts[1], 16)))
    return frozenset(seconds)


def nfkc_stable(c: str) -> bool:
    return (
        ord(c) < TABLE_END
        and unicodedata.category(c) != "Cn"
        and unicodedata.combining(c) == 0
        and unicodedata.normalize("NFKC", c) == c
        and c not in _composed_seconds()
    )


@functools.cache
def _stable() -> tuple[bool, ...]:
    return tuple(map(nfkc_stable, map(chr, range(TABLE_END))))


def c_table() -> str:
    """The table as monitor/_textnorm.c holds it."""
    stable = _stable()
    blocks: dict[tuple[int, ...], int] = {}
    index = []
    for block in range(TABLE_END >> 8):
        bits = tuple(
            sum(1 << k for k in range(64) if stable[block * 256 + word * 64 + k])
            for word in range(4)
        )
        index.append(blocks.setdefault(bits, len(blocks)))
    lines = [f"static const unsigned char stable_index[{len(index)}] = {{"]
    lines += ["    " + " ".join(f"{i:3d}," for i in index[k : k + 16]) for k in range(0, 512, 16)]
    lines += ["};", f"static const uint64_t stable_bits[{len(blocks)}][4] = {{"]
    lines += ["    {" + ", ".join(f"0x{w:016x}" for w in bits) + "}," for bits in blocks]
    return "\n".join([*lines, "};"])


@functools.cache
def _substitutes() -> tuple[str, ...]:
    """The characters that are not NFKC-stable but whose NFKC is made of stable ones."""
    stable = _stable()
    return tuple(
        c
        for c in map(chr, range(sys.maxunicode + 1))
        if not (ord(c) < TABLE_END and stable[ord(c)])
        and all(ord(n) < TABLE_END and stable[ord(n)] for n in unicodedata.normalize("NFKC", c))
    )


# Characters the steps replace, drop, or that NFKC changes alone or with others.
FOLDING = [
    *_REPLACE,
    *"\xa0\u2026\u2011\u2033\u2034\u2036\u2057\u2122\u00a8\u00aa\u00af\u00b2\u00b3\u00b4",
    *"\u00b5\u00b8\u00b9\u00ba\u00bc\u00bd\u00be\u2024\u2025\u203c\u2047\u2048\u2049\u2002",
    *"\u200a\u202f\u3000\u2153\u207b\u2460\uff02\uff07\uff0d\uff41\ufb01\ufdfa\ufe19\u1d62",
    *"\u0300\u0301\u0304\u0308\u0327\u0338\u093c\u0f73\u0340\u0344",  # combining, and to be
    *"\u0b47\u0b3e\u1100\u1161\u11a8\uac00\u0915\u0928",  # composing, with class 0
    *"aeAE\u00e9\u00c5\u0130\u03b1\u0439\u05d0\u4e2d\ud55c",
    *"\U0001f600\U0001d400\U0001d443\U0002f800\U00020000\U0001fae8\u0378\ue000",
    *"\ud800\udbff\udc00\udfff",
    *"\t\n\r \x00\x1f\x7f",
]
FOLD_TEXT = st.text(alphabet=st.sampled_from(FOLDING) | st.characters(), max_size=40)
# Words and the characters between, long enough for the 8-byte skips.
FOLD_TOKENS = [
    "a", "word", "longerwordthanablock", "x.y,z!", " ", " ", "\n", "\u201cquoted\u201d",
    "\u2014", "\xa0", "\u2026", "caf\u00e9", "\u2122", "\u2033", "\u2011", "e\u0301", "\u00bd",
    "\u00b5", "\u0085", "\u200b", "\ufe0f", "\U0001f600", "\u0439", "\ud800", "\uff21",
]  # fmt: skip
FOLD_PROSE = st.lists(st.sampled_from(FOLD_TOKENS), max_size=80).map("".join)


@FAST
@given(FOLD_TEXT)
def test_fold_any_text_as_reference(text: str) -> None:
    """Random characters, rich in those folded, dropped or changed by NFKC, combining and
    composing ones, astral ones and surrogates."""
    check_fold(text)


@settings(FAST, max_examples=600)
@given(FOLD_PROSE)
def test_fold_prose_as_reference(text: str) -> None:
    check_fold(text)
    check_fold(text.replace("e\u0301", "").replace("\u00b5", ""))  # no whole-text NFKC


@settings(FAST, max_examples=600)
@given(
    st.lists(
        st.deferred(lambda: st.sampled_from(_substitutes())) | st.sampled_from(FOLDING),
        max_size=30,
    ).map("".join)
)
def test_fold_substitutes_as_reference(text: str) -> None:
    """Characters that stand for their NFKC, among those that compose or are composed."""
    check_fold(text)
    check_fold(f"ab cd {text} ef gh")


@pytest.mark.parametrize(
    ("text", "expected", "calls"),
    [
        ("\u201cQuoted\u201d \u2014 dash\u2026 and\xa0space", '"Quoted" - dash... and space', []),
        ("caf\u00e9 \u00ab\u00bb \x85", 'caf\u00e9 ""  ', []),
        ("Ko\ufe0frea\u200b", "Korea", []),
        ("5\u2033 tall", "5'' tall", ["\u2033"]),  # NFKC first: two primes
        ("non\u2011breaking", "non-breaking", ["\u2011"]),
        ("Brand\u2122 \u00bd \u2122", "BrandTM 1\u20442 TM", ["\u2122", "\u00bd"]),
        ("x\u207b\u00b9", "x-1", ["\u207b", "\u00b9"]),  # to U+2212, then "-"
        ("\u00b5m", "\u03bcm", ["\u00b5", "\u00b5m"]),  # wider than latin-1: the whole text
        ("cafe\u0301", "caf\u00e9", ["\u0301", "cafe\u0301"]),
        ("e\u200b\u0301", "\u00e9", ["\u0301", "e\u0301"]),  # dropped before NFKC: composed
        ("\u1100\u1161", "\uac00", ["\u1161", "\u1100\u1161"]),
        ("\U00020000\u2033", "\U00020000''", ["\U00020000", "\U00020000\u2033"]),  # past the table
    ],
)
def test_fold_cases(text: str, expected: str, calls: list[str]) -> None:
    """What nfkc is called on: nothing for stable text; a character alone when it stands for
    its NFKC; the text after the first step when one does not."""
    spy = Spy()
    assert reference_fold(text) == expected
    assert fold(text, spy) == expected
    assert spy.calls == calls
    check_fold(text)


def test_fold_every_code_point() -> None:
    """Each character alone and inside ASCII words (the 8-byte skips)."""
    for c in map(chr, range(sys.maxunicode + 1)):
        check_fold(c)
        check_fold(f"ab cd{c}ef gh ij kl mn op")


def test_nfkc_stable_table() -> None:
    """fold calls nfkc on a character (or text) exactly when it is not NFKC-stable, by the
    table generated from this Python's unicodedata; under another Unicode version, the
    characters the table holds are still stable (so later versions need no new table)."""
    first_step = {"\xa0", "\u2026", *_INVISIBLE}
    same = unicodedata.unidata_version == UNIDATA_VERSION
    stable = _stable()
    for i in range(sys.maxunicode + 1):
        c = chr(i)
        if c in first_step:
            continue
        spy = Spy()
        fold(c, spy)
        is_stable = i < TABLE_END and stable[i]
        if same or not spy.calls:
            assert bool(spy.calls) != is_stable, hex(i)
    if same:
        assert c_table() in Path(__file__).parents[1].joinpath("monitor/_textnorm.c").read_text()


@FAST
@given(st.lists(st.characters(max_codepoint=TABLE_END - 1).filter(nfkc_stable)).map("".join))
def test_stable_text_is_nfkc(text: str) -> None:
    assert unicodedata.is_normalized("NFKC", text)


def test_fold_many_substitutes() -> None:
    """Past 16 distinct characters that stand for their NFKC, NFKC of the whole text."""
    text = "".join(map(chr, range(0xFF21, 0xFF21 + 20)))  # fullwidth A-T
    spy = Spy()
    assert fold(text, spy) == "ABCDEFGHIJKLMNOPQRST" == reference_fold(text)
    assert spy.calls == [*text[:16], text]
    spy = Spy()
    assert fold(text[:16] * 3, spy) == "ABCDEFGHIJKLMNOP" * 3
    assert spy.calls == [*text[:16]]


@pytest.mark.parametrize("pad", ["", "\u00e9", "\u20ac", "\U0001f600"])
def test_fold_long_text(pad: str) -> None:
    """Longer than it went in (ellipses, characters standing for more), in every kind."""
    check_fold(pad + "\u2026" * 100_000)
    check_fold(pad + "a\u2034" * 50_000)
    check_fold(pad + "\u2026x\ufdfa" * 1000)
    check_fold(pad + "\u201cword\u201d\xa0" * 10_000 + "\u0301")


def test_fold_unchanged_text_is_returned_as_is() -> None:
    for text in ["ascii", "caf\u00e9", "\u0439", "\U0001f600", "\ud800"]:
        assert fold(text, _nfkc) is text

    class Sub(str):
        pass

    for text in ["caf\u00e9", "\u201c"]:
        got = fold(Sub(text), _nfkc)
        assert type(got) is str
        assert got == reference_fold(text)


def test_fold_bad_arguments() -> None:
    with pytest.raises(TypeError):
        fold(b"text", _nfkc)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        fold("text")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="callable"):
        fold("text", None)  # type: ignore[arg-type]

    def fails(text: str) -> str:
        raise ValueError(text)

    def not_str(text: str) -> bytes:
        return text.encode()

    for text in ["\u2122", "e\u0301"]:  # nfkc on a character; on the text
        with pytest.raises(ValueError):
            fold(text, fails)
        with pytest.raises(TypeError, match="must return str"):
            fold(text, not_str)  # type: ignore[arg-type]
    assert fold("\u201c", fails) == '"'  # not called


def test_fold_constants_as_reference() -> None:
    """monitor.textnorm's description of what fold does is what it did."""
    assert textnorm._FOLD == _FOLD
    assert textnorm._INVISIBLE == _INVISIBLE


def test_corpus_entries(corpus: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every corpus entry's title and text, as entry_article normalises them."""
    texts: list[str] = []

    def noting(text: str) -> str:
        texts.append(text)
        return _normalize(text)

    entries = [
        entry
        for path in sorted((corpus / "feeds").rglob("*"))
        if path.suffix in {".xml", ".json"}
        for entry in parse_feed(path.read_bytes(), "http://example.com/f").entries
    ]
    assert len(entries) > 1000
    monkeypatch.setattr(textnorm, "_normalize", noting)
    monkeypatch.setattr(textnorm, "_recent", textnorm._Recent())
    for entry in entries:
        entry_article(entry, source="x", summary=False)
    assert sum(not text.isascii() for text in texts) > 1000
    for text in texts:
        check_fold(text)


if __name__ == "__main__":
    print(c_table())


@pytest.mark.parametrize(
    "text",
    [
        "a" + "\u0301\u0316" * 500_000,  # a megabyte of marks: NFKC's sort would take minutes
        "Korea \u1e09" + "\u0316" * 40 + " talks",  # decomposing adds marks to the run
        "x" + "\u0301" * 31 + " y" + "\u0323" * 29,
        "\u0915" + "\U0001d167" * 40 + "\u0301",  # marks past U+FFFF (a run's own test)
        "\U0001f600" * 40 + "\u00e9",  # a long run past U+FFFF but of no marks: left whole
    ],
)
def test_long_runs_of_marks_are_cut_to_30(text: str) -> None:
    """Runs of combining marks keep their first 30 (UAX #15's stream-safe limit), before
    and after NFKC, so normalising costs one pass and stays idempotent."""
    out = normalize(text)
    assert out == reference_normalize(text)
    run = longest = 0
    for char in out:
        run = run + 1 if unicodedata.combining(char) else 0
        longest = max(longest, run)
    assert longest <= 30
    assert normalize(out) == out


_C0_REF = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f]")


@pytest.mark.parametrize("length", [1, 15, 16, 17, 33, 100])
def test_has_c0_every_byte_everywhere(length: int) -> None:
    """has_c0 finds each C0 control but tab, LF and CR, at any offset of bytes of any
    length (the 16-byte blocks and the tail alike), and nothing else."""
    for byte in range(256):
        for at in {0, length // 2, length - 1}:
            data = bytearray(b"x" * length)
            data[at] = byte
            assert has_c0(bytes(data)) == (_C0_REF.search(data) is not None)
    assert not has_c0(b"")
    assert has_c0(memoryview(b"\xff" * 40 + b"\x1f"))
    with pytest.raises(TypeError):
        has_c0("text")  # type: ignore[arg-type]
