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
from itertools import compress

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
MULTIPLIER = 0x9E3779B97F4A7C15
_WORD = re.compile(r"[^\W_]+")
_EXACT_WORD = re.compile(r"[-+\u2212]?[0-9]+(?:[.,][0-9]+)*|[^\W_]+")  # "-5" is not "5"
_CACHE_LIMIT = 200_000
_word_digests: dict[str, bytes] = {}  # each word's 64-bit BLAKE2b hash, 8 bytes little-endian
_GAP = bytes(8)  # the empty upper half of a hash's 128-bit lane
_LOW64_LANES = int.from_bytes((b"\xff" * 8 + _GAP) * MAX_WORDS, "little")
# 1 where a hash's low byte samples its shingle (SAMPLE divides 256), else 0.
_SAMPLED = bytes(v % SAMPLE == 0 for v in range(256))
# Bit j of every byte, MAX_WORDS bytes long: ``&`` with a shorter int has that int's length.
_BYTE_BITS = [int.from_bytes(bytes([1 << j]) * MAX_WORDS, "little") for j in range(8)]


def fingerprint(text: str) -> int | None:
    """The SimHash of ``text`` as an unsigned 64-bit int, or None when it is too short.

    Shingle ``i`` of words ``a b c`` (64-bit hashes) is the feature
    ``(a ^ rotl(b, 21) ^ rotl(c, 42)) * MULTIPLIER mod 2**64``; bit ``j`` of the result is
    set when more than half of the (sampled) features have it set. The arithmetic is done on
    all shingles at once: each word's hash sits in its own 128-bit lane of one big integer,
    so shifts, masks and one multiplication compute every feature in a few C-level steps.
    """
    words = _words(text)
    n = len(words)
    if n < MIN_WORDS:
        return None
    a, u, lanes = _shingle_lanes(_hashes(words))
    if not lanes:
        return None
    # Lane i of u holds b << 21 ^ c << 42 (upper halves of a, b, c are zero), so its low
    # 64 bits xor its high ones are the two rotations; the upper halves are left garbage.
    x = (a ^ u ^ (u >> 64)) & (_LOW64_LANES >> 128 * (MAX_WORDS - lanes))
    x *= MULTIPLIER  # lane by lane: a 64-bit value times a 64-bit one fits in 128 bits
    return _majority(x.to_bytes(16 * lanes, "little"), lanes)


def _shingle_lanes(hashes: list[bytes]) -> tuple[int, int, int]:
    """``(a, u, lanes)``: lane i of ``a`` holds the hash of the first word ``a`` of the i-th
    kept shingle ``a b c``, lane i of ``u`` holds ``b << 21 ^ c << 42``.

    Long texts keep the shingles starting at one word in SAMPLE, chosen by the word's own
    hash (the low byte of its digest: SAMPLE divides 256) so that every copy keeps the same
    ones: a fraction of the cost, plenty of votes.
    """
    if len(hashes) < SAMPLE_FROM_WORDS:
        a = int.from_bytes(_GAP.join(hashes), "little")
        return a, (a >> 107) ^ (a >> 214), len(hashes) - 2  # the next lanes, shifted
    keep = b"".join(hashes[:-2])[::8].translate(_SAMPLED)
    firsts, seconds, thirds = (
        _GAP.join(compress(h, keep)) for h in (hashes, hashes[1:], hashes[2:])
    )
    b, c = int.from_bytes(seconds, "little"), int.from_bytes(thirds, "little")
    return int.from_bytes(firsts, "little"), (b << 21) ^ (c << 42), (len(firsts) + 8) // 16


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


# ASCII text with every character but letters, digits and newlines made a space: its words
# are then what str.split finds, as _WORD would (one C pass, where the regex is 4x slower).
_ASCII_WORDS = str.maketrans({i: " " for i in range(128) if not chr(i).isalnum() and i != 10})


def _words(text: str) -> list[str]:
    """The first MAX_WORDS lower-cased words of the lines of at least MIN_LINE_WORDS."""
    words: list[str] = []
    text = text.lower()  # first: "İ" becomes two characters, "K" (Kelvin) becomes ASCII
    ascii_only = text.isascii()
    if ascii_only:
        text = text.translate(_ASCII_WORDS)
    for line in text.split("\n"):
        if len(line) < MIN_LINE_CHARS:
            continue
        if ascii_only:
            found = line.split()
        elif line.isascii():  # most lines of most non-English texts
            found = line.translate(_ASCII_WORDS).split()
        else:
            found = _WORD.findall(line)
        if len(found) >= MIN_LINE_WORDS:
            words += found
            if len(words) >= MAX_WORDS:
                del words[MAX_WORDS:]
                break
    return words


def _majority(data: bytes, total: int) -> int:
    """Bit ``8k + j`` set when more than half of the ``total`` features have it set.

    ``data`` holds the features as 128-bit little-endian lanes; their low 64 bits count.
    """
    half = total // 2
    fp = 0
    for k in range(8):
        column = int.from_bytes(data[k::16], "little")  # byte k of every lane
        for j, bits in enumerate(_BYTE_BITS):
            if (column & bits).bit_count() > half:
                fp |= 1 << (8 * k + j)
    return fp


def distance(a: int, b: int) -> int:
    """How many bits ``a`` and ``b`` differ in."""
    return (a ^ b).bit_count()


def bands(fp: int) -> list[int]:
    """The :data:`BANDS` 16-bit bands of ``fp``, lowest first."""
    return [(fp >> (BAND_BITS * i)) & 0xFFFF for i in range(BANDS)]


def to_hex(fp: int) -> str:
    """``fp`` as 16 hex digits (how the stores keep it)."""
    return f"{fp:016x}"


def _hashes(words: list[str]) -> list[bytes]:
    """Each word's 64-bit BLAKE2b hash as 8 little-endian bytes (cached across calls, the
    cache bounded)."""
    cache = _word_digests
    try:
        return list(map(cache.__getitem__, words))
    except KeyError:
        pass
    fresh = {word: _digest(word) for word in set(words).difference(cache)}
    if len(cache) >= _CACHE_LIMIT:
        cache.clear()
    cache.update(fresh)
    try:
        return list(map(cache.__getitem__, words))
    except KeyError:  # another thread cleared the cache meanwhile: answer from our own
        found = {word: _digest(word) for word in set(words)}
        return list(map(found.__getitem__, words))


def _digest(word: str) -> bytes:
    return hashlib.blake2b(word.encode("utf-8", "surrogatepass"), digest_size=8).digest()
