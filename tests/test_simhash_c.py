"""The C entry points of monitor._simhash (words, fingerprint, simhash) against the Python code
they replaced, frozen below as it was: equal on every text, whatever its characters, kind,
line lengths and bounds; the word cache filled, bounded and cleared as the dict it replaced
was; bad arguments refused.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor import _simhash, simhash
from monitor.parse import Feed, entry_article

# -- the reference: monitor/simhash.py's _words and _hashes before the C pass (do not "fix") --

_WORD = re.compile(r"[^\W_]+")
_ASCII_WORDS = str.maketrans({i: " " for i in range(128) if not chr(i).isalnum() and i != 10})
BOUNDS = (simhash.MIN_LINE_CHARS, simhash.MIN_LINE_WORDS, simhash.MAX_WORDS)
VOTE = (simhash.MIN_WORDS, simhash.SAMPLE_FROM_WORDS, simhash.SAMPLE)


def reference_words(
    text: str, min_line_chars: int, min_line_words: int, max_words: int
) -> list[str]:
    words: list[str] = []
    text = text.lower()
    ascii_only = text.isascii()
    if ascii_only:
        text = text.translate(_ASCII_WORDS)
    for line in text.split("\n"):
        if len(line) < min_line_chars:
            continue
        if ascii_only:
            found = line.split()
        elif line.isascii():
            found = line.translate(_ASCII_WORDS).split()
        else:
            found = _WORD.findall(line)
        if len(found) >= min_line_words:
            words += found
            if len(words) >= max_words:
                del words[max_words:]
                break
    return words


def digest(word: str) -> bytes:
    return hashlib.blake2b(word.encode("utf-8", "surrogatepass"), digest_size=8).digest()


def vote(hashes: list[bytes], sample_from: int, sample: int) -> int | None:
    """SimHash by its definition, feature by feature."""
    mask = (1 << 64) - 1
    h = [int.from_bytes(d, "little") for d in hashes]

    def rotl(x: int, k: int) -> int:
        return ((x << k) | (x >> (64 - k))) & mask

    features = [
        ((a ^ rotl(b, 21) ^ rotl(c, 42)) * simhash.MULTIPLIER) & mask
        for a, b, c in zip(h, h[1:], h[2:], strict=False)
        if len(h) < sample_from or (a & 0xFF) % sample == 0
    ]
    if not features:
        return None
    return sum(1 << j for j in range(64) if 2 * sum(f >> j & 1 for f in features) > len(features))


def reference_fingerprint(
    text: str,
    bounds: tuple[int, int, int] = BOUNDS,
    min_words: int = simhash.MIN_WORDS,
    sample_from: int = simhash.SAMPLE_FROM_WORDS,
    sample: int = simhash.SAMPLE,
) -> int | None:
    words = reference_words(text, *bounds)
    if len(words) < min_words:
        return None
    return _simhash.simhash([digest(w) for w in words], sample_from, sample)


def c_fingerprint(
    text: str,
    bounds: tuple[int, int, int] = BOUNDS,
    vote_bounds: tuple[int, int, int] = VOTE,
    cache: _simhash.Cache | None = None,
    cache_limit: int = 1000,
) -> int | None:
    cache = _simhash.Cache() if cache is None else cache
    return _simhash.fingerprint(text, *bounds, *vote_bounds, cache, cache_limit, digest)


def cache_of(words: list[str], hashed: Callable[[str], bytes] = digest) -> _simhash.Cache:
    """A cache holding ``words`` (hashed by ``hashed``), as fingerprint fills it."""
    cache = _simhash.Cache()
    fill(cache, words, hashed)
    return cache


def fill(cache: _simhash.Cache, words: list[str], hashed: Callable[[str], bytes]) -> None:
    """Has fingerprint add ``words`` to ``cache`` (every line kept, no word too few)."""
    _simhash.fingerprint(" ".join(words), 0, 1, 10**9, 0, 10**9, 1, cache, 10**9, hashed)


# -- words --------------------------------------------------------------------------------

# ASCII of every class, Latin-1, 2- and 4-byte characters, case oddities (dotted I, Kelvin,
# final sigma, ß, the fi ligature), combining marks, digits and numbers that are not ASCII,
# a lone surrogate, and separators that str.split and the regex see differently.
ALPHABET = (
    "aZ09 _-.,'\n\t\r\x0b\x0c\x1c\x7f\x00"
    "é\u00c9\u00a0²½ß"
    "İΣσςΟ\u212a\u2019\u2014\u0301\u2028\u0663ﬁ\ud800東"
    "😉\U0001d7d8"
)


@settings(max_examples=1500, deadline=None)
@given(
    st.text(alphabet=ALPHABET, max_size=300),
    st.integers(-1, 25),
    st.integers(-1, 6),
    st.integers(0, 40),
)
def test_words_equal_the_reference(
    text: str, min_line_chars: int, min_line_words: int, max_words: int
) -> None:
    """Any text, any bounds."""
    bounds = (min_line_chars, min_line_words, max_words)
    assert _simhash.words(text, *bounds) == reference_words(text, *bounds)


_LINE_WORD = st.text(alphabet="abcXYZ019", min_size=1, max_size=20)
_SEPARATOR = st.text(alphabet=" .,-_'\t", min_size=1, max_size=3)


@settings(max_examples=500, deadline=None)
@given(
    st.lists(st.lists(st.tuples(_SEPARATOR, _LINE_WORD), max_size=40), max_size=6),
    st.sampled_from(["", "\u2019", "😉", "é"]),
    st.integers(0, 30),
)
def test_long_ascii_lines_equal_the_reference(
    lines: list[list[tuple[str, str]]], extra: str, max_words: int
) -> None:
    """ASCII lines of every length, words across every 8- and 64-character boundary, in texts
    stored 1, 2 or 4 bytes a character (a line of one other character makes them so)."""
    text = "\n".join("".join(s + w for s, w in line) for line in lines) + "\n" + extra
    for bounds in ((19, 10, 1500), (0, 1, max_words), (5, 3, 10**9)):
        assert _simhash.words(text, *bounds) == reference_words(text, *bounds)


@pytest.mark.parametrize("size", [1, 7, 8, 9, 15, 16, 17, 63, 64, 65, 127, 128, 129, 300])
def test_words_at_every_offset(size: int) -> None:
    """A word of each size at every offset from a line's start, in every kind of text."""
    for offset in range(0, 70):
        line = "." * offset + " ".join(["Wo" * size] + [f"w{i}" for i in range(12)]) + "."
        for extra in ("", "\nÉ", "\n\u2019", "\n😉"):
            text = line + "\n" + line.upper() + extra
            for bounds in ((19, 10, 1500), (1, 1, 14), (0, 0, 3)):
                assert _simhash.words(text, *bounds) == reference_words(text, *bounds)


def test_every_code_point() -> None:
    """Every character is a word character or not exactly as the regex has it, after
    lower-casing, in lines of each kind."""
    points = [chr(c) for c in range(0x110000) if c != 10]
    lines = [
        "a b c d e f g h i j " + "".join(points[i : i + 300]) for i in range(0, len(points), 300)
    ]
    text = "\n".join(lines)
    bounds = (1, 1, 10**9)
    assert _simhash.words(text, *bounds) == reference_words(text, *bounds)
    spaced = "\n".join(
        "a b c d e f g h i j " + " ".join(points[i : i + 300]) for i in range(0, len(points), 300)
    )
    assert _simhash.words(spaced, *bounds) == reference_words(spaced, *bounds)


def test_case_rules_that_look_at_neighbours() -> None:
    """Lines are lower-cased one by one, which gives what lower-casing the whole text gives:
    a final sigma at a line's end or start, a dotted I that grows a line past the bound."""
    texts = [
        "ΟΔΟΣ ΣΟΦΙΑΣ Σ ΑΣ\nΣΑ ΣΣ Σ.\nΑΣ\nΣ\n",
        "x" + "\nΣ".join(["ΣΟΦΟΣ"] * 30),
        "İ" * 10 + "\n" + "İ" * 9 + "\n" + " İ" * 10,
        "\u212a" * 30 + "\n" + "\u212ae\u212a " * 20,
    ]
    for text in texts:
        for bounds in ((19, 10, 1500), (1, 1, 1500), (10, 2, 1500), (20, 10, 1500)):
            assert _simhash.words(text, *bounds) == reference_words(text, *bounds)


def test_a_str_subclass_is_lower_cased_by_its_own_lower() -> None:
    """As text.lower() did: a subclass's lower() is called, and its result taken as it is."""

    class Shouting(str):
        def lower(self) -> str:
            return self.upper()

    text = Shouting("\n".join(" ".join(f"Wörd{i} w{j}" for j in range(6)) for i in range(3)))
    assert _simhash.words(text, 1, 1, 100) == reference_words(text, 1, 1, 100)
    assert _simhash.words(text, 1, 1, 100)[0] == "WÖRD0"

    class Plain(str):
        pass

    text = Plain("Some ASCII Words Here, Eleven Of Them In One Line, Today")
    assert _simhash.words(text, 1, 1, 100) == reference_words(text, 1, 1, 100)

    class Broken(str):
        def lower(self) -> str:
            return 5  # type: ignore[return-value]

    with pytest.raises(TypeError, match="lower"):
        _simhash.words(Broken("text"), 1, 1, 100)


def test_edge_sizes() -> None:
    for text in ["", "\n", "\n" * 100, " ", "a", "a" * 10_000, ("a " * 5000) + "\n"]:
        for bounds in ((19, 10, 1500), (0, 0, 0), (0, 0, 1), (-5, -5, 5), (0, 1, 10**9)):
            assert _simhash.words(text, *bounds) == reference_words(text, *bounds)


def test_words_bad_arguments() -> None:
    with pytest.raises(TypeError):
        _simhash.words(b"text", 1, 1, 1)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        _simhash.words("text", 1, 1)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="negative"):
        _simhash.words("text", 1, 1, -1)
    with pytest.raises(OverflowError):
        _simhash.words("text", 1, 1, 2**70)


# -- fingerprint --------------------------------------------------------------------------


@settings(max_examples=700, deadline=None)
@given(
    st.text(alphabet=ALPHABET + "abcdefgh      ", max_size=400),
    st.tuples(st.integers(0, 12), st.integers(0, 3), st.integers(0, 60)),
    st.tuples(st.integers(0, 10), st.integers(0, 80), st.integers(1, 8)),
)
def test_fingerprint_equals_the_reference(
    text: str, bounds: tuple[int, int, int], vote_bounds: tuple[int, int, int]
) -> None:
    """Any text, any bounds, with an empty cache and then a full one."""
    expected = reference_fingerprint(text, bounds, *vote_bounds)
    cache = _simhash.Cache()
    for _ in range(2):
        assert c_fingerprint(text, bounds, vote_bounds, cache) == expected


@pytest.mark.parametrize("distinct", [100, 1_000, 20_000])
def test_many_distinct_words(distinct: int) -> None:
    """More distinct words than any table starts with, repeated, long and short, in lines of
    every kind."""
    rng = random.Random(distinct)
    pool = [
        f"w{i}" + "x" * rng.randrange(12) + rng.choice(["", "é", "😉"]) for i in range(distinct)
    ]
    words = [rng.choice(pool) for _ in range(3 * distinct)]
    text = "\n".join(" ".join(words[i : i + 12]) for i in range(0, len(words), 12))
    for bounds in (BOUNDS, (19, 10, 10**9)):
        assert _simhash.words(text, *bounds) == reference_words(text, *bounds)
        expected = reference_fingerprint(text, bounds)
        assert c_fingerprint(text, bounds, cache_limit=10**9) == expected
        assert c_fingerprint(text, bounds, vote_bounds=(40, 10**9, 1)) == reference_fingerprint(
            text, bounds, 40, 10**9, 1
        )


def test_simhash_is_its_definition() -> None:
    rng = random.Random(5)
    for n in (0, 1, 2, 3, 4, 5, 50, 399, 400, 401, 1000):
        hashes = [rng.randbytes(8) for _ in range(n)]
        for sample_from, sample in ((400, 4), (0, 1), (0, 256), (10, 3), (10**9, 4)):
            assert _simhash.simhash(hashes, sample_from, sample) == vote(
                hashes, sample_from, sample
            )


def _text(words: list[str]) -> str:
    return "\n".join(" ".join(words[i : i + 10]) for i in range(0, len(words), 10))


def test_the_cache_fills_with_the_missing_words_only() -> None:
    words = [f"w{i % 37}" for i in range(100)]
    text = _text(words)
    calls: list[str] = []

    def counted(word: str) -> bytes:
        calls.append(word)
        return digest(word)

    cache = cache_of(["w1", "other"])
    args = (*BOUNDS, *VOTE)
    assert _simhash.fingerprint(text, *args, cache, 1000, counted) == reference_fingerprint(text)
    assert sorted(calls) == sorted(set(words) - {"w1"})  # once per missing word
    assert len(cache) == len({*words, "other"}) and all(w in cache for w in {*words, "other"})
    calls.clear()
    assert _simhash.fingerprint(text, *args, cache, 1000, counted) == reference_fingerprint(text)
    assert calls == []  # every word cached: no digest


def test_a_full_cache_is_cleared_first() -> None:
    words = [f"w{i % 50}" for i in range(100)]
    text = _text(words)
    cache = cache_of(words[:10] + [f"old{i}" for i in range(5)])
    args = (*BOUNDS, *VOTE)
    assert _simhash.fingerprint(text, *args, cache, 15, digest) == reference_fingerprint(text)
    assert len(cache) == 40 and all(w in cache for w in words[10:50])  # cleared, then the new
    assert "w0" not in cache and "old0" not in cache
    cache = cache_of(["old"])
    assert _simhash.fingerprint(text, *args, cache, 2, digest) == reference_fingerprint(text)
    assert len(cache) == 51  # under the limit: kept


def test_too_few_words_leave_the_cache_alone() -> None:
    text = _text([f"w{i}" for i in range(simhash.MIN_WORDS - 1)])

    def never(word: str) -> bytes:
        raise AssertionError(word)

    cache = cache_of(["w1"], lambda w: b"\xff" * 8)  # a wrong hash: not even read
    assert _simhash.fingerprint(text, *BOUNDS, *VOTE, cache, 0, never) is None
    assert len(cache) == 1 and "w1" in cache


def test_another_thread_clearing_the_cache_changes_nothing() -> None:
    """The digest may let other threads run, which may clear or refill the cache (and grow
    it, moving its slots): the result is still right, from the hashes copied out and this
    call's own."""
    words = [f"w{i}" for i in range(200)]
    text = _text(words)
    cache = cache_of(words[::2])
    more = [f"m{i}" for i in range(5000)]

    def meddling(word: str) -> bytes:
        cache.clear()
        fill(cache, words + more, lambda w: b"\xff" * 8)  # wrong hashes: must not be used
        return digest(word)

    assert _simhash.fingerprint(text, *BOUNDS, *VOTE, cache, 10**6, meddling) == (
        reference_fingerprint(text)
    )
    assert "w1" in cache and len(cache) <= len(words + more)


def test_fingerprint_bad_arguments() -> None:
    text = _text([f"w{i}" for i in range(100)])
    args = (*BOUNDS, *VOTE)
    with pytest.raises(TypeError):
        _simhash.fingerprint(b"x", *args, _simhash.Cache(), 10, digest)  # type: ignore[arg-type]
    for not_a_cache in ([], {}):
        with pytest.raises(TypeError):
            _simhash.fingerprint(text, *args, not_a_cache, 10, digest)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="callable"):
        _simhash.fingerprint(text, *args, _simhash.Cache(), 10, None)  # type: ignore[arg-type]
    for sample in (0, 257, -1):
        with pytest.raises(ValueError, match="sample"):
            _simhash.fingerprint(text, *BOUNDS, 40, 400, sample, _simhash.Cache(), 10, digest)
    with pytest.raises(ValueError, match="negative"):
        _simhash.fingerprint(text, 19, 10, -1, *VOTE, _simhash.Cache(), 10, digest)
    with pytest.raises(TypeError, match="8-byte"):
        _simhash.fingerprint(text, *args, _simhash.Cache(), 10, lambda w: b"short")
    with pytest.raises(TypeError, match="8-byte"):
        _simhash.fingerprint(text, *args, _simhash.Cache(), 10, lambda w: 5)

    def failing(word: str) -> bytes:
        raise KeyError(word)

    cache = _simhash.Cache()
    with pytest.raises(KeyError):
        _simhash.fingerprint(text, *args, cache, 10, failing)
    assert len(cache) == 0


def test_simhash_bad_arguments() -> None:
    with pytest.raises(TypeError):
        _simhash.simhash((b"x" * 8,) * 3, 400, 4)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="8-byte"):
        _simhash.simhash([b"x" * 8, b"x" * 7, b"x" * 8], 400, 4)
    with pytest.raises(ValueError, match="sample"):
        _simhash.simhash([b"x" * 8] * 3, 400, 0)


def test_fingerprint_of_the_module_uses_its_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """monitor.simhash.fingerprint passes its cache, limit and digest as they are when
    called (tests and callers may replace them)."""
    cache = _simhash.Cache()
    monkeypatch.setattr(simhash, "_word_digests", cache)
    monkeypatch.setattr(simhash, "_CACHE_LIMIT", 5)
    text = _text([f"w{i}" for i in range(60)])
    assert simhash.fingerprint(text) == reference_fingerprint(text)
    assert len(cache) == 60
    assert simhash.fingerprint(text.replace("w", "v")) == reference_fingerprint(
        text.replace("w", "v")
    )
    assert len(cache) == 60 and "v1" in cache and "w1" not in cache


def test_corpus_texts(corpus_feeds: list[Feed]) -> None:
    """Every corpus entry's text, as the pipeline has it."""
    texts = [
        entry_article(e, source="x", summary=False).text for f in corpus_feeds for e in f.entries
    ]
    assert len(texts) > 1000
    cache = _simhash.Cache()
    for text in texts:
        assert _simhash.words(text, *BOUNDS) == reference_words(text, *BOUNDS)
        expected = reference_fingerprint(text)
        assert c_fingerprint(text, cache=cache, cache_limit=10**6) == expected
