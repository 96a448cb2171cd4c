"""Near-duplicate fingerprints: a 64-bit SimHash of an article's cleaned text.

Promises:

- :func:`fingerprint` is pure and stable across processes, machines and Python versions
  (features are hashed with BLAKE2b, never ``hash()``), so replicas sharing a store agree.
  Features are the overlapping 3-word shingles of the lower-cased words (runs of letters
  and digits) of the text's paragraphs — lines of at least :data:`MIN_LINE_WORDS` words, so
  headlines, bylines, captions and leftover chrome, which differ between syndicated copies,
  do not count; texts of :data:`SAMPLE_FROM_WORDS` words or more use the shingles starting
  at a hash-chosen quarter of the words. So the same article text under different site
  chrome, headline, punctuation or case gives the same or a very close fingerprint, while
  different stories differ in about half the bits. Texts of fewer than :data:`MIN_WORDS`
  words get ``None``: too short to tell a story from a template.
- :func:`exact_fingerprint` stands in for those short texts (the one- or two-sentence
  descriptions of most feeds): a 64-bit BLAKE2b hash of the lower-cased words of the title
  and the text (numbers keep their sign) and of the publication day, so copies equal but for
  case, punctuation and spacing share it. The title is part of it, since a site may give all
  its entries one description, and the day, since a templated item may come back word for
  word every day under a new URL; a text of fewer than
  :data:`MIN_EXACT_WORDS` words gets ``None`` (``"Read more"`` tells nothing). Random
  64-bit hashes lie within :data:`MAX_DISTANCE` bits of each other once in ~2·10¹²
  pairs, so the stores can index both kinds alike.
- Two fingerprints are the same story when they differ in at most :data:`MAX_DISTANCE`
  bits (different stories measured 20+ bits apart on the page corpus). :func:`bands` cuts
  a fingerprint into :data:`BANDS` 16-bit bands, which the stores index: fingerprints up to
  3 bits apart always share a band (pigeonhole); 4 and 5 bits apart share one about 90%
  and 77% of the time, which is the price of a cheap exact-band lookup.
"""

from __future__ import annotations

import hashlib
import re

from monitor import _simhash

BITS = 64
BANDS = 4
BAND_BITS = BITS // BANDS
MAX_DISTANCE = 5
MIN_WORDS = 40
MIN_EXACT_WORDS = 15
MIN_LINE_WORDS = 10
MIN_LINE_CHARS = 2 * MIN_LINE_WORDS - 1  # a shorter line cannot hold MIN_LINE_WORDS words
MAX_WORDS = 1_500  # enough to tell any two stories apart; bounds the cost of long pages
SAMPLE = 4  # a power of two: a word is sampled when the low bits of its hash are zero
SAMPLE_FROM_WORDS = 400
MASK = (1 << BITS) - 1
MULTIPLIER = 0x9E3779B97F4A7C15  # as monitor/_simhash.c has it
_EXACT_WORD = re.compile(r"[-+\u2212]?[0-9]+(?:[.,][0-9]+)*|[^\W_]+")  # "-5" is not "5"
_CACHE_LIMIT = 200_000
_word_digests = _simhash.Cache()  # words' 64-bit BLAKE2b hashes (what _digest gives)


def fingerprint(text: str) -> int | None:
    """The SimHash of ``text`` as an unsigned 64-bit int, or None when it is too short.

    The words are :func:`_words`'s. Shingle ``i`` of words ``a b c`` (64-bit hashes) is the
    feature ``(a ^ rotl(b, 21) ^ rotl(c, 42)) * MULTIPLIER mod 2**64``; bit ``j`` of the
    result is set when more than half of the (sampled) features have it set. Long texts keep
    the shingles starting at one word in SAMPLE, chosen by the word's own hash (the low byte
    of its digest) so that every copy keeps the same ones: a fraction of the cost, plenty of
    votes.

    A word's hash is taken from ``_word_digests`` when there; the words that are not are
    hashed (:func:`_digest`) and added to it (but for the rare word too long for it), after
    clearing it when it holds ``_CACHE_LIMIT`` words or more, so it stays bounded. The worker
    threads share it: the digests may let another thread run and clear it, which changes no
    result (the hashes found are copied out first, the others come from the call's own). A
    text too short for a fingerprint leaves it alone.

    All of it is one C call (``monitor/_simhash.c``): the words are found, lower-cased and
    looked up once per distinct word, without a list of them, and a str is made only for a
    word the cache does not hold.
    """
    return _simhash.fingerprint(
        text,
        MIN_LINE_CHARS,
        MIN_LINE_WORDS,
        MAX_WORDS,
        MIN_WORDS,
        SAMPLE_FROM_WORDS,
        SAMPLE,
        _word_digests,
        _CACHE_LIMIT,
        _digest,
    )


def exact_fingerprint(title: str, text: str, day: str = "") -> int | None:
    """A 64-bit hash of the lower-cased words of ``title`` and ``text`` (numbers with their
    sign and decimals) and of ``day``, the publication date when known, or None when the
    text has fewer than :data:`MIN_EXACT_WORDS` words (see the module's promises)."""
    words = _EXACT_WORD.findall(text.lower())
    if len(words) < MIN_EXACT_WORDS:
        return None
    key = " ".join(_EXACT_WORD.findall(title.lower())) + "\n" + " ".join(words) + "\n" + day
    digest = hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8)
    return int.from_bytes(digest.digest(), "little")


def _words(text: str) -> list[str]:
    """The first MAX_WORDS lower-cased words of the lines of at least MIN_LINE_WORDS: the
    words :func:`fingerprint` hashes (it finds them the same way, without this list).

    The text is lower-cased first ("İ" becomes two characters, "K" (Kelvin) becomes ASCII)
    and cut into lines at "\\n" only; a line of fewer than MIN_LINE_CHARS characters (once
    lower-cased) is skipped; the words are the runs of letters and digits (the regex
    ``[^\\W_]+``: str.isalnum, so not "_"); a line of fewer than MIN_LINE_WORDS words is
    skipped. One C pass (``monitor/_simhash.c``)."""
    return _simhash.words(text, MIN_LINE_CHARS, MIN_LINE_WORDS, MAX_WORDS)


def distance(a: int, b: int) -> int:
    """How many bits ``a`` and ``b`` differ in."""
    return (a ^ b).bit_count()


def bands(fp: int) -> list[int]:
    """The :data:`BANDS` 16-bit bands of ``fp``, lowest first."""
    return [(fp >> (BAND_BITS * i)) & 0xFFFF for i in range(BANDS)]


def to_hex(fp: int) -> str:
    """``fp`` as 16 hex digits (how the stores keep it)."""
    return f"{fp:016x}"


def _digest(word: str) -> bytes:
    """``word``'s 64-bit BLAKE2b hash, 8 bytes little-endian (what ``_word_digests`` keeps)."""
    return hashlib.blake2b(word.encode("utf-8", "surrogatepass"), digest_size=8).digest()
