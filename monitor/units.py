"""Parsing of the human units used in config and rules: durations and byte sizes.

Promises: a parsed duration is a finite number of seconds in (0, :data:`MAX_DURATION`] and a
parsed size a whole number of bytes in [1, :data:`MAX_SIZE`]; anything else (``.nan``,
``.inf``, ``99999999999999999d``, a 400-digit size) is a ValueError saying what is allowed.
"""

from __future__ import annotations

import math
import re

_DURATION = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d|w)")
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_SIZE = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*([kmg]i?b?|b)?", re.IGNORECASE)
_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "ki": 1024,
    "kib": 1024,
    "m": 10**6,
    "mb": 10**6,
    "mi": 2**20,
    "mib": 2**20,
    "g": 10**9,
    "gb": 10**9,
    "gi": 2**30,
    "gib": 2**30,
}
# A year: longer than any timeout, lease, grace or throttle means anything, and short enough
# for every timer and clock sum it feeds (an infinite timeout fails each delivery).
MAX_DURATION = 365 * 86_400.0
# 4 GiB: sizes cap a body held in memory; past this a cap caps nothing.
MAX_SIZE = 4 * 2**30


def parse_duration(value: object) -> float:
    """``"5m"``, ``"1h30m"``, ``"250ms"`` or a number of seconds -> seconds (float > 0, at
    most :data:`MAX_DURATION`)."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30s, 5m, 1h")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        pos, seconds = 0, 0.0
        for m in _DURATION.finditer(text):
            if m.start() != pos:
                break
            seconds += float(m.group(1)) * _DURATION_UNITS[m.group(2)]
            pos = m.end()
        if pos != len(text) or not text:
            raise ValueError(f"invalid duration {value!r} (use e.g. 30s, 5m, 1h, 1h30m)")
    else:
        raise ValueError("expected a duration such as 30s, 5m, 1h")
    if math.isnan(seconds):
        raise ValueError("duration is not a number (use e.g. 30s, 5m, 1h)")
    if seconds <= 0:
        raise ValueError(f"duration must be positive, got {value!r}")
    if seconds > MAX_DURATION:
        raise ValueError(f"duration must be at most 365d, got {_short(value)}")
    return seconds


def parse_size(value: object) -> int:
    """``"16MiB"``, ``"500KB"`` or a number of bytes -> bytes (int > 0, at most
    :data:`MAX_SIZE`)."""
    if isinstance(value, bool):
        raise ValueError("expected a size such as 16MiB")
    if isinstance(value, int):
        size: float = value
    elif isinstance(value, str):
        m = _SIZE.fullmatch(value.strip())
        if m is None:
            raise ValueError(f"invalid size {value!r} (use e.g. 512KiB, 16MiB, 1GB)")
        # float() of a 400-digit number is inf, never an error: the bound below catches it.
        size = float(m.group(1)) * _SIZE_UNITS[(m.group(2) or "").lower()]
    else:
        raise ValueError("expected a size such as 16MiB")
    if size > MAX_SIZE:
        raise ValueError(f"size must be at most 4GiB, got {_short(value)}")
    if int(size) <= 0:
        raise ValueError(f"size must be positive, got {value!r}")
    return int(size)


def _short(value: object) -> str:
    """``value``'s repr, cut to a readable length (a size may be 400 digits long)."""
    text = repr(value)
    return text if len(text) <= 30 else text[:29] + "…"


def format_duration(seconds: float) -> str:
    """Short human form of a duration, for logs and summaries."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"
