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
