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
import string
import unicodedata
from functools import cache, lru_cache
from itertools import accumulate, compress, repeat
from operator import add

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
    return unicodedata.normalize("NFC", "".join(map(_fold_char, word)))


@cache
def _fold_char(c: str) -> str:
    """One character folded: casefold, NFKD, combining marks dropped."""
    decomposed = unicodedata.normalize("NFKD", c.casefold())
    return "".join(d for d in decomposed if not unicodedata.combining(d))


@lru_cache(maxsize=100_000)
def _fold_run(run: str) -> str:
    """A run of non-ASCII characters folded for :func:`fold_words`: letters and digits folded
    (each CJK one set apart as a word of its own), anything else a space."""
    out = []
    for c in run:
        if _CJK_RE.match(c):
            out.append(f" {_fold_char(c)} ")
        else:
            out.append(_fold_char(c) if c.isalnum() else " ")
    return unicodedata.normalize("NFC", "".join(out))


def _ascii_fold_table() -> dict[int, str]:
    table = {i: " " for i in range(128) if not chr(i).isalnum()}
    table.update({ord(c): c.lower() for c in string.ascii_uppercase})
    return table


_ASCII_FOLD = str.maketrans(_ascii_fold_table())
_ASCII_SEP = str.maketrans({i: " " for i in range(128) if not chr(i).isalnum()})
_NON_ASCII = re.compile(r"[^\x00-\x7f]+")
_CJK_RE = re.compile(f"[{_CJK}]")


def fold_words(text: str) -> list[str]:
    """The folded words of ``text``: ``[fold(w) for w in split(text)]``, computed faster.

    ASCII text is folded and cut by one ``str.translate`` and ``str.split``; other text has
    its non-ASCII runs folded first (cached per run). Text with combining marks takes the
    word-by-word path, since marks decide where its words end.
    """
    if text.isascii():
        return text.translate(_ASCII_FOLD).split()
    if word_re(text) is WORD_MARKS_RE:
        return [fold(w) for w in WORD_MARKS_RE.findall(text)]
    folded = _NON_ASCII.sub(lambda m: _fold_run(m.group()), text)
    return folded.translate(_ASCII_FOLD).split()


def split(text: str) -> list[str]:
    """The words of ``text`` as written."""
    return word_re(text).findall(text)


class Tokens:
    """One field's text cut into words once, for every rule to look at.

    ``folded[i]`` is word ``i`` folded; ``raw[i]`` is word ``i`` as written and
    ``text[starts[i]:ends[i]] == raw[i]``. ``words`` is the set of folded words and
    ``joined`` is ``" w0 w1 … "``, so a folded phrase (or a phrase ending in a prefix) is
    present exactly when ``" a b "`` (or ``" a b"``) is a substring of it. Everything but
    ``folded`` is computed on first use, since most articles match no rule and never need it.
    """

    __slots__ = (
        "_ends",
        "_index",
        "_joined",
        "_positions",
        "_raw",
        "_starts",
        "_vocab",
        "_words",
        "folded",
        "pattern",
        "text",
    )

    def __init__(self, text: str) -> None:
        self.text = text
        self.pattern = word_re(text)
        self.folded: list[str] = fold_words(text)
        self._raw: list[str] | None = None
        self._starts: list[int] | None = None
        self._ends: list[int] = []
        self._index: dict[str, list[int]] | None = None
        self._vocab: list[str] | None = None
        self._words: set[str] | None = None
        self._joined: str | None = None
        self._positions: dict[str, list[int]] = {}

    @property
    def raw(self) -> list[str]:
        """Each word as written."""
        if self._raw is None:
            text = self.text
            self._raw = text.translate(_ASCII_SEP).split() if text.isascii() else split(text)
        return self._raw

    @property
    def words(self) -> set[str]:
        """The distinct folded words."""
        if self._words is None:
            self._words = set(self.folded)
        return self._words

    @property
    def joined(self) -> str:
        """The folded words, each with one space on either side."""
        if self._joined is None:
            self._joined = " " + " ".join(self.folded) + " "
        return self._joined

    @property
    def index(self) -> dict[str, list[int]]:
        """Each folded word's positions."""
        if self._index is None:
            index: dict[str, list[int]] = {}
            for i, word in enumerate(self.folded):
                index.setdefault(word, []).append(i)
            self._index = index
        return self._index

    def positions(self, word: str) -> list[int]:
        """Positions of the folded ``word``, sorted (a C-speed scan, cached per word)."""
        found = self._positions.get(word)
        if found is None:
            found = []
            if word in self.words:
                folded, i = self.folded, -1
                try:
                    while True:
                        i = folded.index(word, i + 1)
                        found.append(i)
                except ValueError:
                    pass
            self._positions[word] = found
        return found

    @property
    def starts(self) -> list[int]:
        """Start offset of each word."""
        if self._starts is None:
            if self.text.isascii():
                self._starts, self._ends = _ascii_offsets(self.text)
            else:
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
            self._vocab = sorted(self.words)
        return self._vocab


def _ascii_offsets(text: str) -> tuple[list[int], list[int]]:
    """Start and end offsets of the words of ASCII ``text``, without a Python-level loop.

    Folding ASCII is one character for one, so the pieces of the folded text split at single
    spaces sit at running sums of (length + 1); the non-empty pieces are the words.
    """
    parts = text.translate(_ASCII_FOLD).split(" ")
    offsets = accumulate(map(add, map(len, parts), repeat(1)), initial=0)
    starts = list(compress(offsets, parts))
    ends = list(map(add, starts, map(len, filter(None, parts))))
    return starts, ends


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
    starts = toks.positions(first) if whole else _prefixed(toks, first)
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
    if " " + stem not in toks.joined:
        return []
    found = [i for i, word in enumerate(toks.folded) if word.startswith(stem)]
    return found
