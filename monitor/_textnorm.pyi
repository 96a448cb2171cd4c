"""The character and whitespace stages of :mod:`monitor.textnorm` (monitor/_textnorm.c)."""

from collections.abc import Callable

UNIDATA_VERSION: str
"""The Unicode version of unicodedata the C file's table of NFKC-stable characters was
generated from."""

def fold(text: str, nfkc: Callable[[str], str], /) -> str:
    """``text`` with no-break spaces made spaces, ellipses "...", the invisibles dropped; then
    ``nfkc`` of that (called only where NFKC may change it: on the text, or on single
    characters); then the quotes and dashes folded to ASCII and the C1 controls made spaces
    (see the C file for how NFKC is skipped)."""

def tidy(text: str, limit: int, /) -> str:
    """``text`` with "\\r\\n" and "\\r" made "\\n", the controls that are not whitespace made
    spaces, each line's words joined by one space, lines holding none dropped, then cut to
    ``limit`` characters and stripped (see the C file for the NEL quirk kept)."""

def has_c0(data: bytes, /) -> bool:
    """Whether ``data`` holds a C0 control other than tab, LF and CR (0x00-0x08, 0x0B, 0x0C,
    0x0E-0x1F): one read-only pass, where ``bytes.translate`` would copy the whole body."""
