"""The folding and cutting of ASCII text into words of :class:`monitor.words.Tokens`
(monitor/_words.c)."""

from collections.abc import Iterable

def fold_ascii(text: str, /) -> tuple[str, list[str], set[str], str]:
    """For ASCII ``text`` (ValueError otherwise): ``(flat, folded, words, joined)``, where
    ``flat`` is ``text`` with letters lowered, digits kept and every other character a
    space, ``folded`` is ``flat.split()``, ``words`` is ``set(folded)`` (holding the very
    str objects of ``folded``) and ``joined`` is ``" " + " ".join(folded) + " "``."""

def index(folded: list[str], /) -> dict[str, list[int]]:
    """Each word of ``folded`` with its positions there, ascending; the words in the order
    they first occur."""

def occurrences(
    tag: object, joined: str, flat: str, key: str, limit: int, /
) -> list[tuple[int, int, int, int, int]]:
    """The first ``limit`` occurrences of the phrase or prefix key ``key`` (``" a b "`` or
    ``" a b"``; ValueError for another shape) in ``joined``, the words of a text joined as
    :func:`fold_ascii` joins them, each as ``(tag, first, last, start, end)``: the numbers
    of its first and last word, where the first starts in ``flat`` and where the last ends
    (the whole word, for a prefix). ``flat`` is the text with each character of its words
    a letter or digit and every other a space (ASCII; ValueError otherwise, or when it has
    fewer words than ``joined``)."""

def offsets(flat: str, /) -> tuple[list[int], list[int]]:
    """For ASCII ``flat`` (ValueError otherwise): where each maximal run of characters
    other than a space starts, and where it ends."""

class Vocabulary:
    """A rule set's words and its phrase and prefix keys (``" a b "``, ``" a b"``: see
    :func:`monitor.checks.sequence_key`); only the ASCII ones, since no ASCII text holds the
    others."""

    def __init__(self, words: Iterable[str], keys: Iterable[str] = (), /) -> None: ...
    def __len__(self) -> int: ...
    def fold(self, text: str, /) -> tuple[str, str, set[str], set[str]]:
        """For ASCII ``text`` (ValueError otherwise): ``(flat, joined, known, found)``,
        ``flat`` and ``joined`` as :func:`fold_ascii` makes them, ``known`` the words of this
        vocabulary among the text's words and ``found`` its keys that are substrings of
        ``joined`` (the vocabulary's own str objects)."""
