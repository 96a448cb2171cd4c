"""Text normalisation applied to every article before matching.

Promises: NFKC, typographic quotes/dashes folded to ASCII ones, every kind of Unicode space
(non-breaking, thin, ideographic...) made a plain space, zero-width and control characters
dropped (newlines kept as paragraph breaks), runs of spaces collapsed. Bounded: input past
:data:`MAX_CHARS` (1 M characters) is cut before any work and the result is cut there too, so a
hostile page costs at most one pass over 1 M characters. Idempotent.
"""

from __future__ import annotations

import re
import unicodedata

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
_FOLDED = re.compile("[" + "".join(_FOLD) + "]")
# Zero-width characters and bidi controls: invisible, and a way to hide words from rules.
_INVISIBLE = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff\u00ad]")
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_SPACES = re.compile(r"[^\S\n]+")
_NEWLINES = re.compile(r"\s*\n\s*")
# Every character ``\s`` matches but " " and "\n": where _SPACES has work beyond a lone space.
_ODD_SPACE = re.compile(
    "[\t\x0b\x0c\r\x1c-\x1f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
)


def normalize(text: str) -> str:
    """Return ``text`` in the one form the matcher and the hit JSON use."""
    if not text:
        return ""
    text = text[:MAX_CHARS]
    if not text.isascii():  # NFKC, the folds and the invisibles leave ASCII as it is
        text = unicodedata.normalize("NFKC", text)
        text = _FOLDED.sub(_fold, text)
        text = _INVISIBLE.sub("", text)
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub(" ", text)
    # Each step below runs only when it has work: a match per space costs more than a scan.
    if "  " in text or _ODD_SPACE.search(text):
        text = _SPACES.sub(" ", text)
    # Now " " and "\n" are the only spaces left, so these three cover every change.
    if "\n " in text or " \n" in text or "\n\n" in text:
        text = _NEWLINES.sub("\n", text)
    return text[:MAX_CHARS].strip()  # NFKC can lengthen text (one ligature, up to 18 chars)


def _fold(found: re.Match[str]) -> str:
    return _FOLD[found.group()]
