"""The merge of occurrence lists (:func:`monitor.evaluate.union`, ``near_pairs``): the same
lists as sorting everything would give, for work about what the answer needs."""

from __future__ import annotations

import random
from bisect import bisect_left
from itertools import chain

import pytest

from monitor import evaluate
from monitor.evaluate import MAX_HITS, Occ, Result, near_pairs, union


def reference(results: list[Result]) -> Result:
    """What union promises, by sorting everything (the code before the merge)."""
    held = [r for r in results if r is not None]
    if not held:
        return None
    if len(held) == 1:
        return held[0]
    occs = sorted(set(chain.from_iterable(held)))
    cut = bisect_left(occs, (1,))
    return occs[: min(cut, MAX_HITS)] + occs[cut : cut + MAX_HITS]


def occ(f: int, word: int) -> Occ:
    return (f, word, word + word % 3, 7 * word, 7 * word + 5)


def random_list(rng: random.Random, length: int, span: int) -> list[Occ]:
    """A sorted list of ``length`` occurrences among ``span`` words of each field, with
    repeats when ``length`` is over ``span``."""
    return sorted(occ(rng.randrange(2), rng.randrange(span)) for _ in range(length))


@pytest.mark.parametrize("seed", range(60))
def test_union_is_the_first_hits_of_everything_sorted(seed: int) -> None:
    """Random sorted lists (repeats within and across lists, one field or both, the same
    list several times, None among them) give the same list as sorting them all."""
    rng = random.Random(seed)
    count = rng.choice([1, 2, 3, 5, 8, 9, 20, 200])
    lengths = [0, 1, 10, 100, 900, 1500, 3000, 6000]
    span = rng.choice([50, 1200, 5000, 100_000])
    lists: list[Result] = []
    for _ in range(count):
        roll = rng.random()
        if roll < 0.1:
            lists.append(None)
        elif roll < 0.25 and lists:
            lists.append(rng.choice(lists))  # the very same list again
        else:
            lists.append(random_list(rng, rng.choice(lengths), span))
    if rng.random() < 0.3:  # one field only
        f = rng.randrange(2)
        lists = [None if r is None else [o for o in r if o[0] == f] for r in lists]
    assert union(lists) == reference(lists)


@pytest.mark.parametrize(
    "lists",
    [
        [[occ(0, w) for w in range(k, 30_000, 26)] for k in range(8)],  # letters interleaved
        [[occ(f, w) for f in (0, 1) for w in range(3000)]] * 3 + [[occ(1, 5)]],  # equal lists
        [[occ(0, w) for w in range(3000)] for _ in range(50)],  # equal, not the same
        [[occ(0, w) for w in range(k * 1000, k * 1000 + 1000)] for k in range(40)],  # blocks
        [[occ(0, w) for w in range(k, 40_000, 40)][:1000] for k in range(40)],
    ],
)
def test_union_of_crafted_lists(lists: list[Result]) -> None:
    """Lists made to defeat a cut: interleaved, equal, crowding different stretches."""
    assert union(lists) == reference(lists)


class Counting(list[Occ]):
    """A list that counts the occurrences read from it by iteration and slicing."""

    read = 0

    def __iter__(self):  # type: ignore[no-untyped-def]
        for x in super().__iter__():
            Counting.read += 1
            yield x

    def __getitem__(self, key):  # type: ignore[no-untyped-def]
        got = super().__getitem__(key)
        if isinstance(key, slice):
            return Counting(got)
        return got


def test_union_of_many_long_lists_reads_about_what_it_keeps() -> None:
    """An OR of 500 lists each holding MAX_HITS occurrences per field reads a small part
    of them: sorting them all (what made an OR of ANDs take seconds) reads every one."""
    lists: list[Result] = [
        Counting(occ(f, w) for f in (0, 1) for w in range(k, k + 500 * MAX_HITS, 500))
        for k in range(500)
    ]
    Counting.read = 0
    got = union(lists)
    read = Counting.read
    assert got == reference([list(r) for r in lists if r is not None])
    assert read < 4 * len(got), read


def test_union_of_a_few_long_lists_reads_about_what_it_keeps() -> None:
    """Eight lists of MAX_HITS per field (an AND of eight words on a page of them) are cut
    before they are sorted."""
    lists: list[Result] = [
        Counting(occ(f, w) for f in (0, 1) for w in range(k, k + 8 * MAX_HITS, 8)) for k in range(8)
    ]
    Counting.read = 0
    got = union(lists)
    read = Counting.read
    assert got == reference([list(r) for r in lists if r is not None])
    assert read < 4 * len(got), read


@pytest.mark.parametrize("seed", range(40))
def test_near_pairs_is_the_first_hits_of_both_sides(seed: int) -> None:
    """NEAR keeps the partnered occurrences of both sides, repeats once, the first
    MAX_HITS per field, as sorting them together did."""
    rng = random.Random(seed)
    span = rng.choice([30, 3000, 20_000])
    left = sorted(set(random_list(rng, rng.choice([1, 50, 1500, 4000]), span)))
    right = left if rng.random() < 0.3 else sorted(set(random_list(rng, 2000, span)))
    n, ordered = rng.choice([1, 3, 50]), rng.random() < 0.5
    kept = evaluate._partnered(left, right, n, ordered, left_side=True)
    other = evaluate._partnered(right, left, n, ordered, left_side=False)
    expected = reference([kept, other]) if kept else None
    assert near_pairs(left, right, n, ordered) == expected
