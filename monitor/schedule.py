"""Polling schedule: when to poll a feed next, from how it publishes and what its server says.

Pure functions over numbers, headers and the ``FeedState.meta`` dict (which the stores
persist, so all of this survives restarts). Promises:

- **Publishing rate** (Miniflux's entry frequency): the base interval is a week divided by
  the entries published in the last week, clamped to ``[floor, ceiling]`` — the feed's
  configured ``interval`` and ``max_interval`` (24 h by default). A feed with no entry in
  the last week is polled at the ceiling. Entries are remembered as their publication time
  (first-seen time when undated or dated in the future) in ``meta["recent"]``.
  What is known of a feed may cover less than a week: a feed that lists only its newest
  entries shows, at first sight, just the last hours. Its week is then extrapolated from
  the time covered, back to the oldest entry it listed when first read or to that first
  read (``meta["since"]``), at least :data:`MIN_SPAN`: 4 entries of the last hour mean a
  poll every 15 minutes, not one a day, when by tomorrow ~100 entries would have come and
  gone.
- **Server hints** only ever push the next poll later, never earlier, and never past the
  ceiling: RSS ``<ttl>`` (remembered in ``meta["ttl"]``, so 304 answers keep honouring it),
  ``Cache-Control: max-age`` (``no-store``/``no-cache`` say nothing about when) and
  ``Expires``.
- **Errors** back off: the floor × consecutive errors, capped at :data:`MAX_BACKOFF`; a
  ``Retry-After`` later than that wins (capped at :data:`MAX_RETRY_AFTER`).
- **Jitter** of ±:data:`JITTER` spreads polls, so feeds loaded together do not stay in step.
- **Unconditional refetch**: once every :data:`FULL_REFETCH` seconds the validators are left
  out, so a server whose ETag never changes cannot hide new entries forever.
- **Permanent redirects**: the feed is fetched from the redirect target only after
  :data:`REDIRECT_CONFIRMATIONS` polls in a row ended a fully permanent (301/308) chain at
  the same URL; the configured URL stays the feed's identity (store key, logs), the
  effective one lives in ``meta["url"]``. A 404/410 from an effective URL sends the feed
  back to its configured URL instead of disabling it.
- **WebSub**: while pushes arrive (one within the ceiling), polls fall back to the ceiling.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from email.utils import parsedate_to_datetime
from typing import Any

MINUTE = 60.0
DAY = 86_400.0
WEEK = 7 * DAY
MAX_BACKOFF = DAY
MAX_RETRY_AFTER = WEEK
JITTER = 0.1
FULL_REFETCH = DAY
REDIRECT_CONFIRMATIONS = 3
RECENT_CAP = 2_000  # a week at one entry per 5 minutes; more says nothing new
MIN_SPAN = 3_600.0  # the least time a rate is worked out over (one entry a minute ago...)

_MAX_AGE = re.compile(r"(?:^|[,\s])max-age\s*=\s*\"?(\d{1,10})", re.I)


# --- publishing rate ---------------------------------------------------------------------


def note_entries(meta: dict[str, Any], published: Iterable[float | None], now: float) -> None:
    """Remember new entries' publication times (``None`` or future: ``now``); keep a week.

    The first call also remembers how far back the feed is known (``meta["since"]``): to
    its oldest dated entry, or to now when it lists none older; from then on every entry
    it publishes is seen at the next poll. Undated (or future-dated) entries tell nothing
    of when they came, so a first read of only such entries counts as a week, as does a
    state kept before ``since`` was (its ``recent`` reaches back as far as it knew).
    """
    given = list(published)  # read twice below
    times = [now if t is None or t > now else t for t in given]
    if "since" not in meta:
        dated = [t for t in given if t is not None and t <= now]
        known_before = "recent" in meta
        meta["since"] = round(now - WEEK if known_before or not dated else min(dated))
    recent = [t for t in _floats(meta.get("recent")) if now - WEEK <= t <= now]
    recent += times
    recent = sorted(t for t in recent if t >= now - WEEK)[-RECENT_CAP:]
    meta["recent"] = [round(t) for t in recent]


def entry_interval(meta: Mapping[str, Any], now: float, floor: float, ceiling: float) -> float:
    """A week divided by the entries of the last week, clamped to ``[floor, ceiling]``; when
    what is known of the feed covers less than a week, the time covered divided by them."""
    recent = [t for t in _floats(meta.get("recent")) if t >= now - WEEK]
    if not recent:
        return max(floor, ceiling)
    return clamp(covered(meta, recent, now) / len(recent), floor, ceiling)


def covered(meta: Mapping[str, Any], recent: list[float], now: float) -> float:
    """The time, within the last week, that what is known of the feed covers: back to the
    oldest entry remembered or to ``meta["since"]``, whichever is earlier (a feed read for
    days shows its quiet days too), at least :data:`MIN_SPAN`. A state written before
    ``since`` was kept counts as a whole week, as it always did."""
    since = meta.get("since")
    first = float(since) if isinstance(since, int | float) else now - WEEK
    return min(max(now - min(first, *recent), MIN_SPAN), WEEK)


def clamp(value: float, floor: float, ceiling: float) -> float:
    """``value`` within ``[floor, max(floor, ceiling)]``."""
    return min(max(value, floor), max(floor, ceiling))


# --- server hints ------------------------------------------------------------------------


def note_ttl(meta: dict[str, Any], ttl_minutes: int | None) -> None:
    """Remember the feed's ``<ttl>`` (or its absence) from the last full answer."""
    if ttl_minutes:
        meta["ttl"] = ttl_minutes
    else:
        meta.pop("ttl", None)


def server_delay(headers: Mapping[str, str], meta: Mapping[str, Any], now: float) -> float:
    """The longest wait the server asked for (``<ttl>``, max-age, Expires), 0 when none."""
    hints = [float(meta.get("ttl") or 0) * MINUTE]
    hints.append(max_age(headers.get("cache-control", "")) or 0.0)
    hints.append(expires_in(headers.get("expires", ""), now) or 0.0)
    return max(hints)


def max_age(cache_control: str) -> float | None:
    """``max-age`` seconds of a Cache-Control header, or None."""
    found = _MAX_AGE.search(cache_control)
    return float(found.group(1)) if found else None


def expires_in(expires: str, now: float) -> float | None:
    """Seconds until an ``Expires`` date, or None when absent, past or unreadable."""
    if not expires:
        return None
    try:
        when = parsedate_to_datetime(expires).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return when - now if when > now else None


# --- the next poll -----------------------------------------------------------------------


def success_delay(
    base: float, server: float, ceiling: float, *, pushed_recently: bool = False
) -> float:
    """Seconds to the next poll after a good answer: the rate, pushed later by the server."""
    if pushed_recently:
        return ceiling
    return max(base, min(server, ceiling))


def error_delay(floor: float, errors: int, retry_after: float | None) -> float:
    """Seconds to the next poll after ``errors`` failures in a row (Retry-After may extend)."""
    delay = min(floor * max(errors, 1), max(MAX_BACKOFF, floor))
    if retry_after is not None:
        delay = max(delay, min(retry_after, MAX_RETRY_AFTER))
    return delay


def jittered(delay: float, unit: float) -> float:
    """``delay`` moved by up to ±JITTER of itself; ``unit`` is a random number in [0, 1)."""
    return delay * (1 - JITTER + 2 * JITTER * unit)


# --- unconditional refetch ---------------------------------------------------------------


def refetch_due(meta: Mapping[str, Any], now: float) -> bool:
    """True when the validators should be left out this time (first poll included)."""
    return now - float(meta.get("full_at") or 0) >= FULL_REFETCH


def note_full_fetch(meta: dict[str, Any], now: float) -> None:
    """Remember that an unconditional fetch was answered."""
    meta["full_at"] = round(now)


# --- redirects ---------------------------------------------------------------------------


def fetch_url(configured: str, meta: Mapping[str, Any]) -> str:
    """The URL to fetch: the confirmed permanent redirect target, else the configured one."""
    effective = meta.get("url")
    return effective if isinstance(effective, str) and effective else configured


def note_redirect(meta: dict[str, Any], configured: str, permanent_to: str | None) -> str | None:
    """Count a poll's redirect; returns the new effective URL once confirmed, else None.

    ``permanent_to`` is the end of a chain in which every hop was 301/308 (None when the
    answer came without redirects or through any temporary hop, which resets the count).
    """
    if not permanent_to or permanent_to == fetch_url(configured, meta):
        meta.pop("redirect", None)
        return None
    seen = meta.get("redirect")
    count = int(seen[1]) + 1 if isinstance(seen, list) and seen[:1] == [permanent_to] else 1
    if count < REDIRECT_CONFIRMATIONS:
        meta["redirect"] = [permanent_to, count]
        return None
    meta.pop("redirect", None)
    if permanent_to == configured:
        meta.pop("url", None)
    else:
        meta["url"] = permanent_to
    return permanent_to


def forget_redirect(meta: dict[str, Any]) -> bool:
    """Drop the effective URL (its target vanished); True when there was one."""
    meta.pop("redirect", None)
    return meta.pop("url", None) is not None


# --- WebSub ------------------------------------------------------------------------------


def note_push(meta: dict[str, Any], now: float) -> None:
    """Remember that the hub pushed content."""
    meta["push_at"] = round(now)


def pushed_recently(meta: Mapping[str, Any], now: float, ceiling: float) -> bool:
    """True when the hub pushed within the last ``ceiling`` seconds."""
    return now - float(meta.get("push_at") or 0) < ceiling


def _floats(value: object) -> list[float]:
    if not isinstance(value, list):
        return []
    return [float(v) for v in value if isinstance(v, int | float)]
