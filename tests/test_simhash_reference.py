"""The fast SimHash gives, bit for bit, what the lane-parallel version it replaced gave.

Fingerprints are stored and compared across processes and versions, so a speed-up must not
move a single bit. ``_Frozen`` is a copy of that earlier implementation (its word cache left
out: the cache never changes a result); the tests run both on hostile texts — every script
and case oddity, lines around the length bounds, texts under and over the sampling and word
bounds, one word repeated, more distinct words than the cache holds.
"""

from __future__ import annotations

import hashlib
import random
import re
import struct

import pytest

from monitor import _simhash, simhash


class _Frozen:
    """``monitor.simhash.fingerprint`` as it was before the speed-up (words, lanes, votes)."""

    word = re.compile(r"[^\W_]+")
    ascii_words = str.maketrans({i: " " for i in range(128) if not chr(i).isalnum() and i != 10})
    low21 = (1 << 21) - 1
    low42 = (1 << 42) - 1
    mask = (1 << 64) - 1
    multiplier = 0x9E3779B97F4A7C15
    min_words, min_line_words, min_line_chars, max_words = 40, 10, 19, 1_500
    sample, sample_from_words = 4, 400

    @classmethod
    def words(cls, text: str) -> list[str]:
        words: list[str] = []
        text = text.lower()
        ascii_only = text.isascii()
        if ascii_only:
            text = text.translate(cls.ascii_words)
        for line in text.split("\n"):
            if len(line) < cls.min_line_chars:
                continue
            found = line.split() if ascii_only else cls.word.findall(line)
            if len(found) >= cls.min_line_words:
                words += found
                if len(words) >= cls.max_words:
                    del words[cls.max_words :]
                    break
        return words

    @classmethod
    def fingerprint(cls, text: str) -> int | None:
        words = cls.words(text)
        n = len(words)
        if n < cls.min_words:
            return None
        mask = cls.mask
        spread = [0] * (2 * n)
        spread[::2] = [
            int.from_bytes(
                hashlib.blake2b(w.encode("utf-8", "surrogatepass"), digest_size=8).digest(),
                "little",
            )
            for w in words
        ]
        a = int.from_bytes(struct.pack(f"<{2 * n}Q", *spread), "little")
        b, c = a >> 128, a >> 256
        lanes = cls.lanes
        x = a ^ ((b << 21) & lanes(mask ^ cls.low21, n)) ^ ((b >> 43) & lanes(cls.low21, n))
        x ^= ((c << 42) & lanes(mask ^ cls.low42, n)) ^ ((c >> 22) & lanes(cls.low42, n))
        x *= cls.multiplier
        picked = cls.starts(a, n)
        total = picked.bit_count()
        if not total:
            return None
        x &= picked * mask
        return cls.majority(x.to_bytes(16 * n + 16, "little"), n + 1, total)

    @staticmethod
    def lanes(value: int, n: int) -> int:
        return int.from_bytes(value.to_bytes(16, "little") * n, "little")

    @classmethod
    def starts(cls, a: int, n: int) -> int:
        ones = cls.lanes(1, n)
        every = (1 << 128 * (n - 2)) - 1
        if n < cls.sample_from_words:
            return ones & every
        low = a & cls.lanes(cls.sample - 1, n)
        shift = 1
        while shift < cls.sample.bit_length() - 1:
            low |= low >> shift
            shift *= 2
        return (ones ^ (low & ones)) & every

    @staticmethod
    def majority(data: bytes, lanes: int, total: int) -> int:
        ones = int.from_bytes(b"\x01" * lanes, "little")
        fp = 0
        for k in range(8):
            column = int.from_bytes(data[k::16], "little")
            for j in range(8):
                if 2 * ((column >> j) & ones).bit_count() > total:
                    fp |= 1 << (8 * k + j)
        return fp


# Words from every corner the word rules have: accents, final sigma, dotted I, the Kelvin
# sign (ASCII once lower-cased), ß, combining marks, CJK, emoji, a lone surrogate, digits,
# underscores (not word characters), and separators str.split and the regex see differently.
_PIECES = [
    "the", "Story", "SAYS", "42", "3.14", "a_b", "naïve", "FAÇADE", "ΣΟΦΙΑΣ", "οδός",
    "İstanbul", "\u212aelvin", "Straße", "e\u0301te", "東京", "😉", "x\ud800y", "don't",
    "co-op", "Ünïcödé", "\u00a0", "\x1c", "\u2028", "\t", "\r", "\x0c", "—", "’", "K", "ﬁne",
]  # fmt: skip


def _line(rng: random.Random, words: int, ascii_only: bool) -> str:
    pool = [p for p in _PIECES if p.isascii()] if ascii_only else _PIECES
    out = [
        rng.choice(pool) if rng.random() < 0.3 else f"w{rng.randrange(3000)}" for _ in range(words)
    ]
    return rng.choice([" ", "  ", ", ", " - "]).join(out)


def _text(rng: random.Random, words: int, ascii_only: bool) -> str:
    lines = []
    while words > 0:
        size = rng.choice([1, 3, 9, 10, 11, 14, 25, 60])  # around MIN_LINE_WORDS
        lines.append(_line(rng, size, ascii_only or rng.random() < 0.5))
        words -= size
    return "\n".join(lines)


def _texts() -> list[str]:
    rng = random.Random(20240611)
    sizes = [30, 41, 60, 120, 390, 399, 400, 401, 700, 1499, 1500, 1501, 2600] * 3
    return [_text(rng, size, ascii_only) for size in sizes for ascii_only in (True, False)]


def _sampled(word: str) -> bool:
    digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
    return digest[0] % _Frozen.sample == 0


@pytest.mark.parametrize("text", _texts(), ids=lambda t: f"{len(t)}chars")
def test_fingerprint_equals_the_frozen_version(text: str) -> None:
    """Random texts of every script, case and length, under and over every bound."""
    assert simhash._words(text) == _Frozen.words(text)
    assert simhash.fingerprint(text) == _Frozen.fingerprint(text)


@pytest.mark.parametrize("repeat", [40, 399, 400, 1600])
def test_one_word_repeated_equals_the_frozen_version(repeat: int) -> None:
    """One word over and over: sampled or not, a fingerprint or None as before."""
    kept = next(f"w{i}" for i in range(100) if _sampled(f"w{i}"))
    dropped = next(f"w{i}" for i in range(100) if not _sampled(f"w{i}"))
    for word in (kept, dropped):
        text = "\n".join(" ".join([word] * 12) for _ in range(repeat // 12 + 1))
        assert simhash.fingerprint(text) == _Frozen.fingerprint(text)
    assert simhash.fingerprint("\n".join([" ".join([dropped] * 12)] * 100)) is None


def test_more_distinct_words_than_the_cache_holds(monkeypatch: pytest.MonkeyPatch) -> None:
    """With the word cache cleared again and again, every fingerprint is still the same."""
    monkeypatch.setattr(simhash, "_CACHE_LIMIT", 50)
    monkeypatch.setattr(simhash, "_word_digests", _simhash.Cache())
    rng = random.Random(7)
    for size in (45, 300, 900, 1600):
        text = "\n".join(
            " ".join(f"u{rng.randrange(10**9)}" for _ in range(12)) for _ in range(size // 12)
        )
        assert simhash.fingerprint(text) == _Frozen.fingerprint(text)
        assert simhash.fingerprint(text) == _Frozen.fingerprint(text)  # from the cache
    assert len(simhash._word_digests) <= 50 + simhash.MAX_WORDS
