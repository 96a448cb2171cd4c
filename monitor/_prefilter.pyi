"""Candidate selection for :class:`monitor.prefilter.Index`, one C call per article
(monitor/_prefilter.c)."""

from collections.abc import Iterable, Set

class Keys:
    """A rule set's distinct keys (exact str; a phrase or prefix key starts with a space),
    numbered in order, with a count of the articles each was counted in."""

    def __init__(self, keys: Iterable[str], /) -> None: ...
    def __len__(self) -> int: ...
    def count(self, key: str, /) -> int:
        """How many articles ``key`` was counted in (0 for a non-key)."""
    def counted(self) -> list[tuple[str, int]]:
        """Each key counted at least once, with its count."""

class Table:
    """One filing of the rules, never changed: ``postings[key]`` the rules filed under a key
    alone, ``seconds[key]`` the ``(second, rules)`` filed under it that need ``second`` too,
    ``always`` the rules to try on every article. Every key is one of ``keys``; rules are
    ints in [0, 2**32 - 1)."""

    def __init__(
        self,
        keys: Keys,
        postings: dict[str, tuple[int, ...]],
        seconds: dict[str, tuple[tuple[str, tuple[int, ...]], ...]],
        always: tuple[int, ...],
        /,
    ) -> None: ...
    def select(self, words: Set[str], keys: Set[str], count: bool, /) -> list[int]:
        """The sorted distinct rules of ``always``, of the postings of the keys present and
        of the seconds entries of the keys present whose second key is present: a word key
        is present when among ``words``, a phrase or prefix key when among ``keys``, a
        second key when among either. Elements that are not exact str are never keys. With
        ``count`` true, each key among ``keys`` and each word key among ``words`` is counted."""
