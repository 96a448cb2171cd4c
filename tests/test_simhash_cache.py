"""The word cache of monitor._simhash (a C table holding each word's characters and hash) and
the vote's byte-wide counters: whatever the cache holds, misses or is cleared of, and however
many features are counted, every fingerprint is the reference one.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor import _simhash
from tests.test_simhash_c import (
    ALPHABET,
    BOUNDS,
    VOTE,
    cache_of,
    digest,
    reference_fingerprint,
    reference_words,
    vote,
)

SLOT_BYTES = 29  # the longest word a slot holds, in bytes of its str kind (_simhash.c)
ANY_LINE = (0, 1, 10**9)  # every line kept, all words


def _lines(words: list[str], per_line: int = 12) -> str:
    return "\n".join(" ".join(words[i : i + per_line]) for i in range(0, len(words), per_line))


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.text(alphabet=ALPHABET + "abcdefgh      \n", max_size=300), max_size=6),
    st.integers(0, 40),
)
def test_one_cache_for_many_texts(texts: list[str], limit: int) -> None:
    """A cache shared by several texts, cleared whenever it holds ``limit`` words: every
    fingerprint as with no cache at all, the first time and the next."""
    cache = _simhash.Cache()
    bounds = (0, 1, 60)
    vote_bounds = (1, 30, 2)
    for _ in range(2):
        for text in texts:
            expected = reference_fingerprint(text, bounds, *vote_bounds)
            got = _simhash.fingerprint(text, *bounds, *vote_bounds, cache, limit, digest)
            assert got == expected


@pytest.mark.parametrize("letter", ["a", "é", "東", "\U00020000"])
def test_words_about_as_long_as_a_slot(letter: str) -> None:
    """Words up to a slot's size are cached, longer ones hashed again each time, in each kind
    of str (1, 2 and 4 bytes a character); all of them give the reference fingerprint."""
    size = 4 if letter > "\uffff" else 2 if letter > "ÿ" else 1
    words = [letter * n for n in range(1, 41)]
    text = _lines([w for w in words for _ in range(3)])
    calls: list[str] = []

    def counted(word: str) -> bytes:
        calls.append(word)
        return digest(word)

    cache = _simhash.Cache()
    for _ in range(2):
        calls.clear()
        got = _simhash.fingerprint(text, *ANY_LINE, 0, 10**9, 1, cache, 10**6, counted)
        assert got == reference_fingerprint(text, ANY_LINE, 0, 10**9, 1)
        assert len(calls) == len(set(calls))  # once per distinct word a call
    assert sorted(calls) == sorted(w for w in words if len(w) * size > SLOT_BYTES)
    assert all((w in cache) == (len(w) * size <= SLOT_BYTES) for w in words)
    assert len(cache) == sum(len(w) * size <= SLOT_BYTES for w in words)


def test_a_word_is_one_word_in_lines_of_every_kind() -> None:
    """A word read from an ASCII line, a Latin-1 one, a 2-byte and a 4-byte one is stored as a
    str of it would be: hashed once, found after in any of them."""
    words = ["plain", "café", "東京", "x\U00020000"]
    fillers = ["", "é", "東", "\U00020001"]
    text = "\n".join(" ".join(words * 3) + " " + filler for filler in fillers)
    calls: list[str] = []

    def counted(word: str) -> bytes:
        calls.append(word)
        return digest(word)

    cache = _simhash.Cache()
    expected = reference_fingerprint(text, ANY_LINE, 0, 10**9, 1)
    assert _simhash.fingerprint(text, *ANY_LINE, 0, 10**9, 1, cache, 99, counted) == expected
    assert sorted(calls) == sorted({*words, *(f for f in fillers if f)})
    calls.clear()
    for filler in fillers:
        line = " ".join(reversed(words)) + " " + filler
        expected = reference_fingerprint(line, ANY_LINE, 0, 10**9, 1)
        assert _simhash.fingerprint(line, *ANY_LINE, 0, 10**9, 1, cache, 99, counted) == expected
    assert calls == []
    assert all(w in cache for w in words)


def test_what_the_cache_answers() -> None:
    """len, in and clear: only an exact str can be in it."""
    cache = cache_of(["alpha", "beta", "γάμμα"])
    assert len(cache) == 3
    assert "alpha" in cache and "γάμμα" in cache and "gamma" not in cache
    assert "" not in cache and b"alpha" not in cache and 5 not in cache

    class Sub(str):
        pass

    assert Sub("alpha") not in cache
    cache.clear()
    assert len(cache) == 0 and "alpha" not in cache
    assert len(_simhash.Cache()) == 0 and "alpha" not in _simhash.Cache()


def test_a_growing_cache_keeps_every_word() -> None:
    """Many distinct words over many calls: the cache grows past its first slots many times
    over, and every fingerprint is still right, from it or not."""
    rng = random.Random(3)
    pool = [f"w{i}" + rng.choice(["", "é", "東", "\U00020000"]) for i in range(30_000)]
    cache = _simhash.Cache()
    texts = [_lines(rng.sample(pool, 600)) for _ in range(100)]
    used = set(" ".join(texts).split())
    for _ in range(2):
        for text in texts:
            assert _simhash.fingerprint(text, *BOUNDS, *VOTE, cache, 10**6, digest) == (
                reference_fingerprint(text)
            )
    assert 0.99 * len(used) < len(cache) <= len(used)


# -- the vote's byte-wide counters, flushed every 255 features -----------------------------


@pytest.mark.parametrize("n", [254, 255, 256, 257, 258, 510, 511, 512, 766, 767, 1500, 4000])
def test_vote_around_every_flush(n: int) -> None:
    """Features counted across the flushes of the byte-wide counters, sampled or not, equal
    the feature-by-feature definition."""
    rng = random.Random(n)
    base = [rng.randbytes(8) for _ in range(7)]
    # few distinct hashes: the same features over and over, so counts run high in every bit
    hashes = [rng.choice(base) for _ in range(n + 2)]
    for sample_from, sample in ((0, 1), (10**9, 4), (0, 2)):
        assert _simhash.simhash(hashes, sample_from, sample) == vote(hashes, sample_from, sample)


@pytest.mark.parametrize("n", [255, 256, 65_535, 65_536, 65_537, 70_000])
def test_one_feature_many_times(n: int) -> None:
    """One feature n times (one hash over and over): each bit is counted n times or none, so a
    counter that wrapped would drop the bit."""
    mask = (1 << 64) - 1
    for value in (0x0123456789ABCDEF, mask, 1):

        def rotl(x: int, k: int) -> int:
            return ((x << k) | (x >> (64 - k))) & mask

        feature = ((value ^ rotl(value, 21) ^ rotl(value, 42)) * 0x9E3779B97F4A7C15) & mask
        hashes = [value.to_bytes(8, "little")] * (n + 2)
        assert _simhash.simhash(hashes, 10**9, 1) == feature
        assert _simhash.simhash(hashes[:3], 10**9, 1) == feature


def test_fingerprint_of_more_than_65535_words() -> None:
    """A text of 70 000 words (no cap) through the whole C path equals the reference."""
    rng = random.Random(9)
    words = [f"v{rng.randrange(300)}" for _ in range(70_000)]
    text = _lines(words)
    bounds = (19, 10, 10**6)
    assert _simhash.words(text, *bounds) == reference_words(text, *bounds)
    for vote_bounds in ((40, 400, 4), (40, 10**9, 1)):
        expected = reference_fingerprint(text, bounds, *vote_bounds)
        assert expected is not None
        got = _simhash.fingerprint(text, *bounds, *vote_bounds, _simhash.Cache(), 99, digest)
        assert got == expected
