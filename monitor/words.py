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
- Finding a term (:func:`find`, or :meth:`Tokens.occurrences` with its offsets) costs at
  most about one pass over the field whatever the page (a page of one word repeated
  included), and stops at its first ``limit`` occurrences; many terms at once
  (:func:`locate`) cost one Aho-Corasick pass, not one each.
"""

from __future__ import annotations

import re
import string
import unicodedata
from bisect import bisect_left
from collections.abc import Callable, Collection, Iterator
from functools import cache, lru_cache
from itertools import accumulate, chain, islice
from typing import Any

import ahocorasick

from monitor._words import Vocabulary, fold_ascii, occurrences, offsets
from monitor._words import index as index_words
from monitor.textnorm import non_ascii

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
_NON_ASCII_SPLIT = re.compile(r"([^\x00-\x7f]+)")
_MAX_REPLACED = 24  # more distinct non-ASCII characters than this: fold run by run
_CJK_RE = re.compile(f"[{_CJK}]")


def fold_words(text: str) -> list[str]:
    """The folded words of ``text``: ``[fold(w) for w in split(text)]``, computed faster.

    ASCII text is folded and cut by one ``str.translate`` and ``str.split``. In other text,
    when its few distinct non-ASCII characters all fold to ASCII, each is replaced throughout
    (one C scan each) and the ASCII path follows; else its non-ASCII runs are folded (cached
    per run). Text with combining marks takes the word-by-word path, since marks decide
    where its words end.
    """
    if text.isascii():
        return text.translate(_ASCII_FOLD).split()
    return _fold_flat(text, non_ascii(text))[0]


def _fold_flat(text: str, chars: str) -> tuple[list[str], str]:
    """:func:`fold_words` of ``text``, whose non-ASCII characters are ``chars``, and its
    folded text with every separator a space, from which the words were split, when that
    text is the original character for character (each non-ASCII character folded to one
    ASCII character, a letter or digit exactly where the text has a word character): word
    offsets can then be read from it as from folded ASCII text. Else ``""``."""
    if _HAS_MARK.search(chars):
        return _fold_marked(text), ""
    replaced = _replace_each(text, chars, _ascii_fold_of)
    if replaced is not None:
        flat = replaced.translate(_ASCII_FOLD)
        return flat.split(), flat if _all_aligned(chars) else ""
    return _fold_runs(text), ""


def _fold_marked(text: str) -> list[str]:
    """The folded words of ``text``, which has combining marks, word by word."""
    return [fold(w) for w in WORD_MARKS_RE.findall(text)]


def _fold_runs(text: str) -> list[str]:
    """The folded words of ``text`` (without combining marks), its non-ASCII runs folded."""
    parts = _NON_ASCII_SPLIT.split(text)
    parts[1::2] = map(_fold_run, parts[1::2])
    return "".join(parts).translate(_ASCII_FOLD).split()


def _all_aligned(chars: str) -> bool:
    """Whether every character of ``chars`` is :func:`_aligned`."""
    return all(map(_aligned, set(chars)))


@cache
def _aligned(c: str) -> bool:
    """Whether ``c`` folds (as :func:`_fold_run` of it alone) to one ASCII character that is
    a letter or digit exactly when ``c`` is part of a word (see :func:`_mask_of`)."""
    folded = _ascii_fold_of(c)
    return folded is not None and len(folded) == 1 and folded.isalnum() == (_mask_of(c) == "a")


def _replace_each(text: str, chars: str, by: Callable[[str], str | None]) -> str | None:
    """``text`` with each distinct character of ``chars`` replaced by ``by(c)``; None when
    there are too many of them or ``by`` has no replacement for one."""
    distinct = set(chars)
    if len(distinct) > _MAX_REPLACED:
        return None
    pairs = [(c, by(c)) for c in distinct]
    for c, rep in pairs:
        if rep is None:
            return None
        text = text.replace(c, rep)
    return text


@cache
def _ascii_fold_of(c: str) -> str | None:
    """What :func:`_fold_run` makes of the lone character ``c``, if ASCII (ASCII text stays
    as it is under NFC, so folding such characters one by one gives the same result)."""
    folded = _fold_run(c)
    return folded if folded.isascii() else None


@cache
def _mask_of(c: str) -> str | None:
    """``c`` as one ASCII character for the word-offset mask: ``a`` inside words, a space
    between them; None for CJK, where each character is a word of its own."""
    if _CJK_RE.match(c):
        return None
    return "a" if c.isalnum() or _HAS_MARK.match(c) else " "


def split(text: str) -> list[str]:
    """The words of ``text`` as written."""
    return word_re(text).findall(text)


class Tokens:
    """One field's text cut into words once, for every rule to look at.

    ``folded[i]`` is word ``i`` folded; ``raw[i]`` is word ``i`` as written and
    ``text[starts[i]:ends[i]] == raw[i]``. ``words`` is the set of folded words and
    ``joined`` is ``" w0 w1 … "``, so a folded phrase (or a phrase ending in a prefix) is
    present exactly when ``" a b "`` (or ``" a b"``) is a substring of it. Everything but
    ``folded`` is computed on first use, since most articles match no rule and never need it;
    but ``words`` and ``joined``, which every :class:`monitor.evaluate.Evaluator` reads,
    come with ``folded`` from the one C call (:func:`monitor._words.fold_ascii`) that folds
    and cuts ASCII text, and text whose non-ASCII characters all fold to ASCII.

    Given the ``known`` words of a rule set, such text is folded by
    :meth:`monitor._words.Vocabulary.fold` instead, and ``words`` holds only the known
    words among its words (``every_word`` holds them all): a rule set asks only whether its
    own words are present, so the answer is the same, while ``folded`` is cut from
    ``joined`` only when some rule fired and wants positions (most articles fire none).
    ``keys`` is then the rule set's phrase and prefix keys found in ``joined``.

    A fired rule's terms are found with their offsets by :meth:`occurrences`, one C pass
    over ``joined`` and the :attr:`mask` each, so ``folded`` is not cut at all unless a
    field is asked for so many terms that the index of every word costs less
    (:meth:`scans`).
    """

    __slots__ = (
        "_calls",
        "_chars",
        "_ends",
        "_every",
        "_flat",
        "_folded",
        "_index",
        "_joined",
        "_known_only",
        "_located",
        "_mask",
        "_padded",
        "_positions",
        "_raw",
        "_seams",
        "_starts",
        "_vocab",
        "_words",
        "keys",
        "pattern",
        "text",
    )

    def __init__(self, text: str, known: Vocabulary | None = None) -> None:
        self.text = text
        self._flat = ""
        self._folded: list[str] | None = None
        self._words: set[str] | None = None
        self._every: set[str] | None = None  # all words, where ``_words`` holds known ones
        self._known_only = False
        self._joined: str | None = None
        # The known words' keys in ``joined``, when a Vocabulary folded it (None otherwise).
        self.keys: set[str] | None = None
        # ASCII text, and text whose few non-ASCII characters each fold to ASCII (replaced
        # throughout, as in _fold_flat), is folded and cut by one C call, which makes its
        # word set and joined words too: the Evaluator reads both of every field.
        if text.isascii():
            self._chars = ""
            self.pattern = WORD_RE
            self._flat = self._ascii(text, known)
        else:
            self._chars = chars = non_ascii(text)
            self.pattern = WORD_MARKS_RE if _HAS_MARK.search(chars) else WORD_RE
            if self.pattern is WORD_MARKS_RE:
                self._folded = _fold_marked(text)
            elif (replaced := _replace_each(text, chars, _ascii_fold_of)) is None:
                self._folded = _fold_runs(text)
            else:
                flat = self._ascii(replaced, known)
                if _all_aligned(chars):
                    self._flat = flat
        self._located: dict[str, list[int]] = {}
        self._mask: str | None = None
        self._padded: str | None = None
        self._calls = 0
        self._raw: list[str] | None = None
        self._starts: list[int] | None = None
        self._ends: list[int] = []
        self._index: dict[str, list[int]] | None = None
        self._vocab: list[str] | None = None
        self._positions: dict[str, list[int]] = {}
        self._seams: dict[bool, tuple[str, list[int]]] = {}

    def _ascii(self, text: str, known: Vocabulary | None) -> str:
        """Fold and cut ASCII ``text`` (with only its ``known`` words kept, if given);
        returns its flat form."""
        if known is None:
            flat, self._folded, self._words, self._joined = fold_ascii(text)
        else:
            flat, self._joined, self._words, self.keys = known.fold(text)
            self._known_only = True
        return flat

    @property
    def folded(self) -> list[str]:
        """Each word folded."""
        if self._folded is None:
            # Only folded by Vocabulary.fold, which made the joined words.
            assert self._joined is not None
            self._folded = self._joined.split()
        return self._folded

    @property
    def raw(self) -> list[str]:
        """Each word as written."""
        if self._raw is None:
            text = self.text
            self._raw = text.translate(_ASCII_SEP).split() if text.isascii() else split(text)
        return self._raw

    @property
    def words(self) -> set[str]:
        """The distinct folded words (only the known ones, when given known words)."""
        if self._words is None:
            self._words = set(self.folded)
        return self._words

    @property
    def every_word(self) -> set[str]:
        """The distinct folded words, known or not."""
        if not self._known_only:
            return self.words
        if self._every is None:
            self._every = set(self.folded)
        return self._every

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
            self._index = index_words(self.folded)  # one C pass (monitor/_words.c)
        return self._index

    def positions(self, word: str) -> list[int]:
        """Positions of the folded ``word``, sorted: a C-speed scan cached per word, until
        so many words were asked for that indexing every word at once is cheaper."""
        found = self._positions.get(word)
        if found is None:
            # Absent, unless ``words`` holds only the known words and this is another (a
            # word a prefix term matched, say): that one is looked for like any other.
            if word not in self.words and not self._known_only:
                return []
            self._calls += 1
            if self._calls > _SCANS_BEFORE_INDEX:
                self._positions = self.index
                return self._positions.get(word, [])
            found = []
            folded, i = self.folded, -1
            try:
                while True:
                    i = folded.index(word, i + 1)
                    found.append(i)
            except ValueError:
                pass
            self._positions[word] = found
        return found

    def use_index(self) -> None:
        """Answer :meth:`positions` from the index of every word from the next word on: worth
        it when many words will be asked for (spans of fired rules), not for a few."""
        self._calls = max(self._calls, _SCANS_BEFORE_INDEX)

    @property
    def starts(self) -> list[int]:
        """Start offset of each word."""
        if self._starts is None:
            if self.mask:
                self._starts, self._ends = offsets(self.mask)  # one C pass
            else:
                spans = [m.span() for m in self.pattern.finditer(self.text)]
                self._starts = [s for s, _ in spans]
                self._ends = [e for _, e in spans]
        return self._starts

    def span(self, first: int, last: int) -> tuple[int, int]:
        """Start offset of word ``first`` and end offset of word ``last``.

        In ASCII text (and text whose few non-ASCII characters each fold to one ASCII
        character, see :func:`_fold_flat`), until all offsets are known, each asked-for
        word's offsets come from a scan for its whole-word occurrences (``" w "``) in the
        folded text, which has the text's length, and its rank among its positions: a fired
        rule needs a few words' offsets, not those of every word (~20 µs for a 5 KB
        article, by :func:`monitor._words.offsets`). Past :data:`_LOCATED_WORDS` words, for
        a word with more than :data:`_LOCATED_OCCURRENCES` occurrences, and in other text,
        every word's offsets are worked out at once.
        """
        if self._starts is None and self._flat and len(self._located) < _LOCATED_WORDS:
            start, end = self._located_start(first), self._located_start(last)
            if start is not None and end is not None:
                return start, end + len(self.folded[last])
        return self.starts[first], self.ends[last]

    def _located_start(self, i: int) -> int | None:
        """Start offset of word ``i`` by locating its word alone; None for a word so
        frequent that working out every word's offsets costs less."""
        word = self.folded[i]
        found = self._located.get(word)
        if found is None:
            if len(self.positions(word)) > _LOCATED_OCCURRENCES:
                return None
            if self._padded is None:
                self._padded = f" {self._flat} "  # so every word has a space either side
            padded, key, found = self._padded, f" {word} ", []
            at = padded.find(key)
            while at >= 0:  # at is the word's offset in the text (the pad shifts it by one)
                found.append(at)
                at = padded.find(key, at + len(word) + 1)  # the next may share this space
            self._located[word] = found
        return found[bisect_left(self.positions(word), i)]

    @property
    def mask(self) -> str:
        """The text with each character of its words a letter or digit and every other
        character a space (its folded form, when that is the text character for character),
        from which word offsets are read; "" for text where it cannot be made (CJK, or too
        many distinct non-ASCII characters)."""
        if self._mask is None:
            if self._flat or not self._chars:
                self._mask = self._flat
            else:
                masked = _replace_each(self.text, self._chars, _mask_of)
                self._mask = "" if masked is None else masked.translate(_ASCII_FOLD)
        return self._mask

    def scans(self) -> bool:
        """Whether to find one more term by :meth:`occurrences` (a pass over the text)
        rather than from the positions and offsets of every word, as :meth:`positions`
        decides (a scan counts as one of its scans)."""
        if self._calls >= _SCANS_BEFORE_INDEX or not self.mask:
            return False
        self._calls += 1
        return True

    def occurrences(self, key: str, limit: int, tag: int) -> list[tuple[int, int, int, int, int]]:
        """The first ``limit`` occurrences of the phrase or prefix key ``key`` (as
        :meth:`scan` takes them, folded), each as ``(tag, first word, last word, start
        offset, end offset)``: what :func:`find` and :meth:`span` make of a term, by one C
        pass (:func:`monitor._words.occurrences`) over :attr:`joined` and :attr:`mask`,
        without the list of words or their offsets (for a long text, most of the cost of a
        fired rule's spans). Only for text with a :attr:`mask`."""
        return occurrences(tag, self.joined, self.mask, key, limit)

    def written(self, start: int, end: int) -> list[str]:
        """The words of ``text[start:end]`` as written, which must start and end at word
        boundaries (only for text with a :attr:`mask`)."""
        text = self.text
        return [text[m.start() : m.end()] for m in _RUN.finditer(self.mask, start, end)]

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
            self._vocab = sorted(self.every_word)
        return self._vocab

    def scan(self, key: str, exact: bool) -> Iterator[int]:
        """The positions, in order, where ``key`` occurs: ``" a b "`` (``" a b"`` for a
        prefix) as :attr:`joined` holds the words, or as written when ``exact``. A substring
        search in C, so its cost does not grow with how often the key's words occur."""
        joined, offsets = self.seam(exact)
        at = joined.find(key)
        while at >= 0:
            yield bisect_left(offsets, at + 1)
            at = joined.find(key, at + 1)

    def seam(self, exact: bool) -> tuple[str, list[int]]:
        """The words (folded, or as written when ``exact``) joined as in :attr:`joined`, and
        the offset there of each word."""
        seam = self._seams.get(exact)
        if seam is None:
            words = self.raw if exact else self.folded
            joined = " " + " ".join(words) + " " if exact else self.joined
            offsets = list(accumulate(map((1).__add__, map(len, words)), initial=1))
            seam = self._seams[exact] = (joined, offsets)
        return seam


_LOCATED_WORDS = 32  # words located one by one before all offsets are worked out at once
_LOCATED_OCCURRENCES = 64  # …and occurrences of one word (each costs a find and an append)
_SCANS_BEFORE_INDEX = 24  # a scan costs ~4-8 µs of 5 KB, an index of it ~100-250 µs
_RUN = re.compile(r"[^ ]+")


def tokenize(text: str) -> Tokens:
    """Cut ``text`` into words with their folded forms and a position index."""
    return Tokens(text)


def find(
    toks: Tokens, words: tuple[str, ...], exact: bool, prefix: bool, limit: int | None = None
) -> list[int]:
    """Positions where ``words`` start in ``toks``, sorted; only the first ``limit`` when
    given (the search stops there, so a word repeated 100,000 times costs ``limit``).

    ``words`` are folded unless ``exact``; with ``prefix`` the last one need only start the
    word in the text. Each occurrence of the term's rarest word (its first, for ``exact``)
    is a candidate, checked in Python; when they are so many that a substring search of the
    whole field costs less (a page of a few words repeated), that search is made instead
    (:meth:`Tokens.scan`), so no term costs more than about one pass over the field.
    """
    if len(words) == 1 and not exact:
        if prefix:
            return _prefixed(toks, words[0], limit)
        found = toks.positions(words[0])
        return found if limit is None or len(found) <= limit else found[:limit]
    first = words[0] if not exact else fold(words[0])
    whole = not prefix or len(words) > 1
    starts = toks.positions(first) if whole else _prefixed(toks, first)
    n = len(words)
    last = n - 1
    anchor, at = starts, 0
    if not exact:
        # Anchor on the whole word of the phrase with the fewest occurrences, so "the summit"
        # is looked for around "summit" rather than around every "the".
        for k in range(1, n - 1 if prefix else n):
            found = toks.positions(words[k])
            if len(found) < len(anchor):
                anchor, at = found, k
    if len(anchor) * _CANDIDATE_COST > len(toks.joined):
        key = " " + " ".join(words) + ("" if prefix else " ")
        return list(islice(toks.scan(key, exact), limit))
    out: list[int] = []
    size = limit if limit is not None else len(anchor)
    if exact:
        # Compare the words as written, sliced from the text, only where the folded first
        # word occurs: no list of raw words is built.
        text, begin, end = toks.text, toks.starts, toks.ends
        for p in starts:
            if p + n > len(begin) or len(out) >= size:
                break
            for k in range(n):
                w = text[begin[p + k] : end[p + k]]
                if not (w.startswith(words[k]) if prefix and k == last else w == words[k]):
                    break
            else:
                out.append(p)
        return out
    seq = toks.folded
    if not prefix:
        # Whole words only: compare a slice of the folded words with the phrase (a slice
        # that runs off the end is shorter, so never equal).
        phrase = list(words)
        if limit is None or len(anchor) <= limit:
            return [p for p in (q - at for q in anchor) if p >= 0 and seq[p : p + n] == phrase]
        hits = (p for p in (q - at for q in anchor) if p >= 0 and seq[p : p + n] == phrase)
        return list(islice(hits, limit))
    total = len(seq)
    for q in anchor:
        p = q - at
        if p < 0:
            continue
        if p + n > total or len(out) >= size:
            break
        for k in range(n):
            w = seq[p + k]
            if not (w.startswith(words[k]) if prefix and k == last else w == words[k]):
                break
        else:
            out.append(p)
    return out


# A candidate checked in Python costs about as much as a substring search over this many
# characters of joined words (at its slowest, on text of one word repeated).
_CANDIDATE_COST = 32


def _prefixed(toks: Tokens, stem: str, limit: int | None = None) -> list[int]:
    """Positions of the words that start with ``stem``: those words are a run of the
    sorted vocabulary, so the cost grows with their occurrences, not with the field."""
    vocab = toks.vocab
    lo = hi = bisect_left(vocab, stem)
    while hi < len(vocab) and vocab[hi].startswith(stem):
        hi += 1
    if hi - lo == 1:
        found = toks.positions(vocab[lo])
    else:
        if hi - lo > _SCANS_BEFORE_INDEX:
            toks.use_index()
        found = sorted(chain.from_iterable(map(toks.positions, vocab[lo:hi])))
    return found if limit is None or len(found) <= limit else found[:limit]


def locate(toks: Tokens, keys: Collection[str], exact: bool, limit: int) -> dict[str, list[int]]:
    """For each key (as :meth:`Tokens.scan` takes them) that occurs, its positions in order,
    as far into the field as the first ``limit`` occurrences of all the keys together need
    (an occurrence is a position and a number of words); later ones may be left out.

    One Aho-Corasick pass finds them all, where a :meth:`Tokens.scan` per key would cost a
    pass over the field each (an entity of thousands of phrases, on a page holding all their
    words), and it stops once those first ``limit`` are known, so keys that occur everywhere
    (a page of one word repeated) cost no more than that.
    """
    joined, offsets = toks.seam(exact)
    automaton, longest = _automaton(frozenset(keys))
    widths = {key: len(key.split()) for key in keys}
    found: dict[str, list[int]] = {}
    seen: set[tuple[int, int]] = set()
    stop = len(joined)  # what starts after this cannot be among the first ``limit``
    for end, key in automaton.iter(joined):
        at = end - len(key) + 1
        if at > stop:
            if end - longest >= stop:
                break  # every later occurrence ends here or later, so starts after ``stop``
            continue
        found.setdefault(key, []).append(at)
        if len(seen) < limit:
            seen.add((at, widths[key]))
            if len(seen) == limit:
                stop = max(start for start, _ in seen)
    return {key: [bisect_left(offsets, at + 1) for at in starts] for key, starts in found.items()}


@lru_cache(maxsize=64)
def _automaton(keys: frozenset[str]) -> tuple[Any, int]:
    """An Aho-Corasick automaton finding ``keys`` (each its own value), and their longest
    length; kept, since the same entity is looked for in article after article."""
    automaton = ahocorasick.Automaton()
    for key in keys:
        automaton.add_word(key, key)
    automaton.make_automaton()
    return automaton, max(map(len, keys))
