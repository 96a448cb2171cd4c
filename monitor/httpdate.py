"""HTTP date and Retry-After parsing, shared by fetching and sinks."""

from __future__ import annotations

import time
from email.utils import parsedate_to_datetime

MAX_RETRY_AFTER = 86400.0


def parse_retry_after(value: str, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delta-seconds or HTTP-date), clamped."""
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER)
    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None
    delay = when - (time.time() if now is None else now)
    return max(0.0, min(delay, MAX_RETRY_AFTER))
