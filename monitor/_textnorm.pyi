"""The whitespace stage of :mod:`monitor.textnorm` (monitor/_textnorm.c)."""

def tidy(text: str, limit: int, /) -> str:
    """``text`` with "\\r\\n" and "\\r" made "\\n", the controls that are not whitespace made
    spaces, each line's words joined by one space, lines holding none dropped, then cut to
    ``limit`` characters and stripped (see the C file for the NEL quirk kept)."""
