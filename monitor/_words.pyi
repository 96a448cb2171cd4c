"""The folding and cutting of ASCII text into words of :class:`monitor.words.Tokens`
(monitor/_words.c)."""

def fold_ascii(text: str, /) -> tuple[str, list[str], set[str], str]:
    """For ASCII ``text`` (ValueError otherwise): ``(flat, folded, words, joined)``, where
    ``flat`` is ``text`` with letters lowered, digits kept and every other character a
    space, ``folded`` is ``flat.split()``, ``words`` is ``set(folded)`` (holding the very
    str objects of ``folded``) and ``joined`` is ``" " + " ".join(folded) + " "``."""

def index(folded: list[str], /) -> dict[str, list[int]]:
    """Each word of ``folded`` with its positions there, ascending; the words in the order
    they first occur."""
