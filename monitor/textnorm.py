"""Text normalisation applied to every article before matching.

Promises: NFKC, typographic quotes/dashes folded to ASCII ones, every kind of Unicode space
(non-breaking, thin, ideographic...) made a plain space, zero-width characters, variation
selectors and control characters dropped (newlines kept as paragraph breaks), runs of spaces
collapsed. Bounded: input past :data:`MAX_CHARS` (1 M characters) is cut before any work and
the result is cut there too, and runs of combining marks keep their first :data:`MAX_MARKS`
(NFKC sorts a run by insertion), so a hostile page costs at most one pass over 1 M
characters. Idempotent: zero-width characters are dropped before NFKC, so a base letter and
its accent that one separated compose.
"""

from __future__ import annotations

import functools
import re
import threading
import unicodedata

from monitor._textnorm import fold, tidy

MAX_CHARS = 1_000_000
MAX_MARKS = 30  # combining marks in a row kept (UAX #15's stream-safe limit)

# Typographic quotes and dashes, folded to their ASCII forms after NFKC (which has made a
# non-breaking hyphen a hyphen and a double prime two primes by then: those two entries
# never apply).
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
# Zero-width characters, bidi controls and variation selectors: invisible, and a way to hide
# words from rules ("Ko\ufe0frea"). Variation selectors mostly follow emoji (VS16 asks for
# the colour form), which look much the same without. Those of the supplement
# (U+E0100-E01EF) are left.
_INVISIBLE = (
    "\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
    "\u2060\u2061\u2062\u2063\u2064\u2066\u2067\u2068\u2069\ufeff\u00ad"
    + "".join(map(chr, range(0xFE00, 0xFE10)))
)
# _FOLD and _INVISIBLE say what monitor._textnorm.fold folds and drops: the C file holds its
# own copy of them, which tests/test_textnorm_c.py checks against these.

_ASCII_BYTES = bytes(range(128))  # for non_ascii()


class _Recent(threading.local):
    """The last four results of :func:`normalize` in this thread."""

    results: tuple[str, str, str, str] = ("", "", "", "")


_recent = _Recent()


def normalize(text: str) -> str:
    """Return ``text`` in the one form the matcher and the hit JSON use.

    Each step runs only when a scan finds work for it (a scan costs a fraction of a
    substitution). A string one of this thread's last four calls returned is returned as it is, at
    no cost: normalising is idempotent, and cleaning normalises the text an Article is then
    built from (whose construction normalises it again), which would otherwise cost each
    entry a second round of scans (about 2.5 ns a character each).
    """
    if not text:
        return ""
    recent = _recent.results
    for known in recent:
        if text is known:
            return text
    result = _normalize(text)
    _recent.results = (result, recent[0], recent[1], recent[2])
    return result


def _normalize(text: str) -> str:
    text = text[:MAX_CHARS]
    if not text.isascii():  # NFKC, the folds and the invisibles leave ASCII as it is
        text = _fold(text)
    # The whitespace, in one C pass (monitor/_textnorm.c, which says how): "\r\n" and "\r"
    # made "\n", the controls that are not whitespace ([\x00-\x08\x0e-\x1b\x7f]) made
    # spaces, each line's words (runs of what str.isspace is not) joined by one space, lines
    # holding none dropped; cut at MAX_CHARS (NFKC can lengthen text, a ligature up to 18
    # characters) and stripped. ASCII text costs that one call. NEL (U+0085), whitespace to
    # str.isspace, goes a way of its own there, but never comes: _fold makes it a space.
    return tidy(text, MAX_CHARS)


def _fold(text: str) -> str:
    """``text`` (not ASCII) with no-break spaces made spaces, ellipses "...", the invisibles
    (:data:`_INVISIBLE`) dropped, NFKC applied, then the quotes and dashes folded
    (:data:`_FOLD`) and the C1 controls made spaces.

    One C pass (monitor/_textnorm.c, which says how), calling :func:`_nfkc` only where NFKC
    may change the text: most text is made of characters NFKC leaves as they are wherever
    they stand (a table of them says so), and the few others (a trade mark sign, a
    non-breaking hyphen...) mostly stand for what NFKC makes of them alone."""
    return fold(text, _nfkc)


def _nfkc(text: str) -> str:
    """NFKC of ``text``, every run of combining marks cut to :data:`MAX_MARKS` before and
    after; the quick check first, which mostly spares the costly pass.

    NFKC puts the marks of a run in order by an insertion sort: a run of 100,000 marks held
    a worker for 9 s, a megabyte of them would for ~15 minutes. Longer runs than Unicode's
    stream-safe limit (UAX #15) are noise ("zalgo" text), so the rest of each is dropped
    rather than kept in a costly order. Cut after NFKC too, since decomposing a letter adds
    marks to the run after it; a cut NFKC text is still NFKC (the dropped marks end their
    run), so normalising stays idempotent."""
    text = _marks_cut(text)
    if unicodedata.is_normalized("NFKC", text):
        return text
    return _marks_cut(unicodedata.normalize("NFKC", text))


def _marks_cut(text: str) -> str:
    """``text`` with each run of combining marks past :data:`MAX_MARKS` cut to that many."""
    if _long_mark_run(loose=True).search(text) is None:  # nearly always; 10x faster
        return text
    return _long_mark_run().sub(lambda run: run.group()[:MAX_MARKS], text)


def _ranges(codes: list[int]) -> str:
    """A regex character class body for the sorted code points ``codes``."""
    out, start = [], 0
    for i in range(1, len(codes) + 1):
        if i == len(codes) or codes[i] != codes[i - 1] + 1:
            lo, hi = codes[start], codes[i - 1]
            out.append(re.escape(chr(lo)) + ("-" + re.escape(chr(hi)) if hi > lo else ""))
            start = i
    return "".join(out)


@functools.cache
def _long_mark_run(*, loose: bool = False) -> re.Pattern[str]:
    """A run of more than MAX_MARKS combining marks. Built on first use, not at import
    (a look at 128k code points, ~25 ms every process would pay): only text NFKC may
    change needs it. Every character of a combining class but 0 lies below U+20000 (the
    last is U+1E94A).

    ``loose``: such a run of the marks below U+10000 or any character of U+10000-U+1FFFF,
    which holds every run the exact pattern finds. re tests a class holding no character
    past U+FFFF by a table, and one holding some by its ranges one after the other: 60 ns
    a character for the exact class (300 ranges), 6 ns for this one."""
    top = 0x10000 if loose else 0x20000
    marks = _ranges([c for c in range(top) if unicodedata.combining(chr(c))])
    astral = "\U00010000-\U0001ffff" if loose else ""
    return re.compile(f"[{marks}{astral}]{{{MAX_MARKS + 1},}}")


def non_ascii(text: str) -> str:
    """The non-ASCII characters of ``text``, in order (a few C passes, no Python loop)."""
    raw = text.encode("utf-8", "surrogatepass").translate(None, _ASCII_BYTES)
    return raw.decode("utf-8", "surrogatepass")
