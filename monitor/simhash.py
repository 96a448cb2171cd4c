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
- Two fingerprints are the same story when they differ in at most :data:`MAX_DISTANCE`
  bits (different stories measured 20+ bits apart on the page corpus). :func:`bands` cuts
  a fingerprint into :data:`BANDS` 16-bit bands, which the stores index: fingerprints up to
  3 bits apart always share a band (pigeonhole); 4 and 5 bits apart share one about 90%
  and 77% of the time, which is the price of a cheap exact-band lookup.
"""

from __future__ import annotations

import hashlib
import re

BITS = 64
BANDS = 4
BAND_BITS = BITS // BANDS
MAX_DISTANCE = 5
MIN_WORDS = 40
MIN_LINE_WORDS = 10
MAX_WORDS = 1_500  # enough to tell any two stories apart; bounds the cost of long pages
SAMPLE = 4
SAMPLE_FROM_WORDS = 400
MASK = (1 << BITS) - 1
_WORD = re.compile(r"[^\W_]+")
_CACHE_LIMIT = 200_000
_word_hashes: dict[str, int] = {}


def fingerprint(text: str) -> int | None:
    """The SimHash of ``text`` as an unsigned 64-bit int, or None when it is too short."""
    words: list[str] = []
    for line in text.lower().split("\n"):
        found = _WORD.findall(line)
        if len(found) >= MIN_LINE_WORDS:
            words += found
    del words[MAX_WORDS:]
    if len(words) < MIN_WORDS:
        return None
    hashes = _word_hashes_of(words)
    # Long texts keep the shingles starting at one word in SAMPLE, chosen by the word's own
    # hash so that every copy keeps the same ones: a fraction of the cost, plenty of votes.
    sample = SAMPLE if len(words) >= SAMPLE_FROM_WORDS else 1
    starts = [i for i, h in enumerate(hashes[:-2]) if h % sample == 0]
    counters: list[int] = []
    for i in starts:
        a, b, c = hashes[i], hashes[i + 1], hashes[i + 2]
        _add(counters, (a ^ _rotate(b, 21) ^ _rotate(c, 42)) * 0x9E3779B97F4A7C15 & MASK)
    return _majority(counters, len(starts)) if starts else None


def distance(a: int, b: int) -> int:
    """How many bits ``a`` and ``b`` differ in."""
    return (a ^ b).bit_count()


def bands(fp: int) -> list[int]:
    """The :data:`BANDS` 16-bit bands of ``fp``, lowest first."""
    return [(fp >> (BAND_BITS * i)) & 0xFFFF for i in range(BANDS)]


def to_hex(fp: int) -> str:
    """``fp`` as 16 hex digits (how the stores keep it)."""
    return f"{fp:016x}"


def _word_hashes_of(words: list[str]) -> list[int]:
    """Each word's 64-bit BLAKE2b hash (cached across calls, the cache bounded)."""
    cache = _word_hashes
    if len(cache) >= _CACHE_LIMIT:
        cache.clear()
    for word in set(words).difference(cache):
        digest = hashlib.blake2b(word.encode("utf-8", "surrogatepass"), digest_size=8).digest()
        cache[word] = int.from_bytes(digest, "little")
    return [cache[w] for w in words]


def _rotate(value: int, bits: int) -> int:
    return ((value << bits) | (value >> (BITS - bits))) & MASK


def _add(counters: list[int], value: int) -> None:
    """Add ``value``'s bits to 64 bit-sliced counters (counters[j] holds bit j of each lane).

    Ripple-carry addition on whole 64-bit words counts all 64 bit positions at once, about
    log2(n) integer operations per feature instead of 64.
    """
    carry = value
    for j, counter in enumerate(counters):
        if not carry:
            return
        counters[j], carry = counter ^ carry, counter & carry
    if carry:
        counters.append(carry)


def _majority(counters: list[int], total: int) -> int:
    """Bit i set when more than half of the features had bit i set."""
    fp = 0
    for lane in range(BITS):
        count = sum(((c >> lane) & 1) << j for j, c in enumerate(counters))
        if 2 * count > total:
            fp |= 1 << lane
    return fp
