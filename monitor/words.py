"""Word tokenisation and folding, shared by the query parser and the matcher.

Promises:

- A *word* is a maximal run of Unicode letters and digits (``str.isalnum``), with combining
  marks kept inside the word so Indic and Arabic words are not cut at their vowel signs.
  Everything else (spaces, punctuation, apostrophes, hyphens, dots, underscores) separates
  words: ``Korea's`` is ``Korea`` + ``s`` and ``S.Korea`` is ``S`` + ``Korea``.
- Chinese and Japanese are written without spaces, so each Han, Hiragana or Katakana character
  is a word of its own; a phrase of them matches the same characters in a row. Hangul is
  written with spaces and follows the general rule.
- :func:`fold` gives the case- and accent-insensitive form: casefold, NFKD, combining marks
  dropped, NFC again (so Hangul syllables stay whole). ``São`` and ``SAO`` both fold to
  ``sao``. It is pure and cached: the same word is folded once per process.
- Positions are character offsets into the text that was tokenised, so spans can be shown
  exactly as they appear in the article.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_left
from functools import lru_cache

# One character per word in scripts written without spaces (Han, kana, CJK compatibility).
_CJK = "\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"


def _mark_ranges() -> str:
    """A regex class body with every combining mark (category M*) of the BMP, as ranges.

    Only the BMP: a class reaching beyond it makes ``re`` fall back from its bitmap to a slow
    range scan, and the marks of modern scripts all live in the BMP.
    """
    out: list[str] = []
    start = prev = -2
    for cp in range(0x10000):
        if unicodedata.category(chr(cp))[0] != "M":
            continue
        if cp != prev + 1:
            if start >= 0:
                out.append(_range(start, prev))
            start = cp
        prev = cp
    out.append(_range(start, prev))
    return "".join(out)


def _range(lo: int, hi: int) -> str:
    return re.escape(chr(lo)) if lo == hi else f"{re.escape(chr(lo))}-{re.escape(chr(hi))}"


_MARKS = _mark_ranges()
_HAS_MARK = re.compile(f"[{_MARKS}]")
WORD_RE = re.compile(f"[{_CJK}]|[^\\W_{_CJK}]+")
# The same words, with combining marks kept inside them; slower, so used only when needed.
WORD_MARKS_RE = re.compile(f"[{_CJK}]|(?:[^\\W_{_CJK}]|[{_MARKS}])+")


def word_re(text: str) -> re.Pattern[str]:
    """The word pattern for ``text``: the fast one unless the text has combining marks."""
    if text.isascii() or not _HAS_MARK.search(text):
        return WORD_RE
    return WORD_MARKS_RE


@lru_cache(maxsize=200_000)
def fold(word: str) -> str:
    """Case- and accent-insensitive form of ``word`` (see the module docstring)."""
    if word.isascii():
        return word.lower()
    decomposed = unicodedata.normalize("NFKD", word.casefold())
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return unicodedata.normalize("NFC", stripped)


def split(text: str) -> list[str]:
    """The words of ``text`` as written."""
    return word_re(text).findall(text)


class Tokens:
    """One field's text cut into words once, for every rule to look at.

    ``raw[i]`` is word ``i`` as written, ``folded[i]`` its folded form, and
    ``text[starts[i]:ends[i]] == raw[i]``. ``index`` maps each folded word to its positions;
    ``vocab`` is its keys, sorted. Offsets and ``vocab`` are computed on first use, since most
    articles match no rule and never need them.
    """

    __slots__ = ("_ends", "_starts", "_vocab", "folded", "index", "pattern", "raw", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.pattern = word_re(text)
        self.raw: list[str] = self.pattern.findall(text)
        # Lower-casing ASCII keeps every offset and word boundary, and is done in C.
        self.folded: list[str] = (
            WORD_RE.findall(text.lower()) if text.isascii() else list(map(fold, self.raw))
        )
        index: dict[str, list[int]] = {}
        for i, word in enumerate(self.folded):
            hits = index.get(word)
            if hits is None:
                index[word] = [i]
            else:
                hits.append(i)
        self.index = index
        self._starts: list[int] | None = None
        self._ends: list[int] = []
        self._vocab: list[str] | None = None

    @property
    def starts(self) -> list[int]:
        """Start offset of each word."""
        if self._starts is None:
            spans = [m.span() for m in self.pattern.finditer(self.text)]
            self._starts = [s for s, _ in spans]
            self._ends = [e for _, e in spans]
        return self._starts

    @property
    def ends(self) -> list[int]:
        """End offset of each word."""
        if self._starts is None:
            self.starts  # noqa: B018 - fills both lists
        return self._ends

    @property
    def vocab(self) -> list[str]:
        """The distinct folded words, sorted (for prefix look-ups by bisection)."""
        if self._vocab is None:
            self._vocab = sorted(self.index)
        return self._vocab


def tokenize(text: str) -> Tokens:
    """Cut ``text`` into words with their folded forms and a position index."""
    return Tokens(text)


def find(toks: Tokens, words: tuple[str, ...], exact: bool, prefix: bool) -> list[int]:
    """Positions where ``words`` start in ``toks``, sorted.

    ``words`` are folded unless ``exact``; with ``prefix`` the last one need only start the
    word in the text.
    """
    first = words[0] if not exact else fold(words[0])
    whole = not prefix or len(words) > 1
    starts = toks.index.get(first, []) if whole else _prefixed(toks, first)
    n = len(words)
    if n == 1 and not exact:
        return starts
    seq = toks.raw if exact else toks.folded
    last = n - 1
    out = []
    for p in starts:
        if p + n > len(seq):
            break
        for k in range(n):
            w = seq[p + k]
            if not (w.startswith(words[k]) if prefix and k == last else w == words[k]):
                break
        else:
            out.append(p)
    return out


def _prefixed(toks: Tokens, stem: str) -> list[int]:
    vocab = toks.vocab
    i = bisect_left(vocab, stem)
    found: list[int] = []
    while i < len(vocab) and vocab[i].startswith(stem):
        found.extend(toks.index[vocab[i]])
        i += 1
    found.sort()
    return found
