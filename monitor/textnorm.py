"""Text normalisation applied to every article before matching.

Promises: NFKC, typographic quotes/dashes folded to ASCII ones, every kind of Unicode space
(non-breaking, thin, ideographic...) made a plain space, zero-width characters, variation
selectors and control characters dropped (newlines kept as paragraph breaks), runs of spaces
collapsed. Bounded: input past :data:`MAX_CHARS` (1 M characters) is cut before any work and
the result is cut there too, so a hostile page costs at most one pass over 1 M characters.
Idempotent: zero-width characters are dropped before NFKC, so a base letter and its accent
that one separated compose.
"""

from __future__ import annotations

import re
import threading
import unicodedata

from monitor._textnorm import tidy

MAX_CHARS = 1_000_000

# Typographic quotes and dashes, folded to their ASCII forms. A regex finds them: str.translate
# looks every character up in a dict, which costs more than all the other steps together.
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
# (U+E0100-E01EF) are left: a class reaching past the BMP makes every scan a slow one.
_INVISIBLE = (
    "\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
    "\u2060\u2061\u2062\u2063\u2064\u2066\u2067\u2068\u2069\ufeff\u00ad"
    + "".join(map(chr, range(0xFE00, 0xFE10)))
)
# Every character outside ASCII that a step below replaces, and by what: invisibles dropped
# (found by _INVISIBLES, before NFKC), quotes and dashes folded and C1 controls made spaces
# (found by _FOLDED, after it). Each is replaced by one thing, so replacing one distinct
# character at a time equals the steps one by one.
_REPLACE = {
    **_FOLD,
    **dict.fromkeys(_INVISIBLE, ""),
    **{chr(c): " " for c in range(0x80, 0xA0)},
}
_INVISIBLES = re.compile("[" + _INVISIBLE + "]")
_ASCII_BYTES = bytes(range(128))
_FOLDED = re.compile("[" + "".join(c for c in _REPLACE if c not in _INVISIBLE) + "]")


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
    """``text`` (not ASCII) with the invisibles dropped, NFKC applied, then the quotes and
    dashes folded and the C1 controls made spaces (:data:`_REPLACE`)."""
    # No-break spaces and ellipses make most text that is not NFKC so (measured on the
    # corpus feeds); replaced first by what NFKC makes of them (characters that compose
    # with nothing), such text mostly passes the quick check and skips the costly pass.
    if "\xa0" in text:
        text = text.replace("\xa0", " ")
    if "\u2026" in text:
        text = text.replace("\u2026", "...")
    text, chars = _replace_each(_INVISIBLES, text, _scanned(text))
    if not unicodedata.is_normalized("NFKC", text):
        text = unicodedata.normalize("NFKC", text)  # makes no invisible (checked)
        chars = _scanned(text)
    text, _ = _replace_each(_FOLDED, text, chars)
    return text


def non_ascii(text: str) -> str:
    """The non-ASCII characters of ``text``, in order (a few C passes, no Python loop)."""
    raw = text.encode("utf-8", "surrogatepass").translate(None, _ASCII_BYTES)
    return raw.decode("utf-8", "surrogatepass")


def _scanned(text: str) -> str:
    """What the regex scans of :func:`_normalize` look at: the non-ASCII characters of
    ``text``, a few percent of most text, since a scan costs several times the C passes
    that pick them out; or ``text`` itself when much of it is non-ASCII (Cyrillic, CJK...),
    where picking them out would only add a copy to scan and keep up to date."""
    raw = text.encode("utf-8", "surrogatepass")
    if len(raw) - len(text) > len(text) // 4:  # the extra bytes of the multi-byte characters
        return text
    return raw.translate(None, _ASCII_BYTES).decode("utf-8", "surrogatepass")


def _replace_each(found_in: re.Pattern[str], text: str, chars: str) -> tuple[str, str]:
    """``text`` with every character ``found_in`` matches replaced as :data:`_REPLACE`
    says, ``chars`` being its non-ASCII characters or ``text`` itself (see
    :func:`_scanned`); returns both, replaced.

    One ``str.replace`` per distinct character found, each search going on from where the
    last one stopped (nothing before it changes): a substitution would call back into
    Python for each of the dozens of quotes an article holds, and a list of every match
    would cost memory on a page of nothing else.
    """
    itself = chars is text
    found = found_in.search(chars)
    while found is not None:
        char = found.group()
        text = text.replace(char, _REPLACE[char])
        chars = text if itself else chars.replace(char, _REPLACE[char])
        found = found_in.search(chars, found.start())
    return text, chars
