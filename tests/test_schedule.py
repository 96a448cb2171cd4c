"""The polling schedule (monitor.schedule): pure rules, table-driven."""

from __future__ import annotations

from email.utils import formatdate
from typing import Any

import pytest

from monitor import schedule as s

NOW = 1_800_000_000.0
HOUR = 3600.0


@pytest.mark.parametrize(
    ("recent", "floor", "ceiling", "expected"),
    [
        ([], 300.0, s.DAY, s.DAY),  # nothing last week: the ceiling
        ([NOW - 10 * s.DAY], 300.0, s.DAY, s.DAY),  # older than a week does not count
        ([NOW - HOUR] * 7, 300.0, s.DAY, s.DAY),  # 7 a week: one a day
        ([NOW - HOUR] * 14, 300.0, s.DAY, s.DAY / 2),  # 14 a week: every 12 h
        ([NOW - HOUR] * 5000, 300.0, s.DAY, 300.0),  # busy feed: the configured floor
        ([NOW - HOUR] * 5000, 900.0, s.DAY, 900.0),
        ([], 2 * s.DAY, s.DAY, 2 * s.DAY),  # a floor above the ceiling wins
    ],
)
def test_entry_interval(recent: list[float], floor: float, ceiling: float, expected: float) -> None:
    """A week divided by last week's entries, clamped to [floor, ceiling]."""
    meta = {"recent": recent}
    assert s.entry_interval(meta, NOW, floor, ceiling) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("since", "recent", "expected"),
    [
        (NOW - HOUR, [NOW - 50 * 60] * 4, 900.0),  # a feed of its last hour: 4 an hour
        (NOW - 30 * s.DAY, [NOW - HOUR] * 4, s.DAY),  # read for a month: 4 a week
        (NOW - 2 * s.DAY, [NOW - HOUR] * 8, 6 * HOUR),  # read for 2 days: 4 a day
        (NOW, [NOW] * 2, HOUR / 2),  # 2 undated entries: worked out over an hour at least
        (NOW, [NOW - 3 * s.DAY] * 3, s.DAY),  # the oldest entry reaches back further
    ],
)
def test_entry_interval_over_less_than_a_week(
    since: float, recent: list[float], expected: float
) -> None:
    """Known for less than a week, a feed's week is extrapolated from the time covered."""
    meta = {"since": since, "recent": recent}
    assert s.entry_interval(meta, NOW, 60.0, s.DAY) == pytest.approx(expected)


def test_note_entries_remembers_how_far_back_the_feed_is_known() -> None:
    """The first read sets ``since`` to the oldest dated entry listed, even one older than
    a week (its page reaches that far back), or to now; later reads leave it."""
    meta: dict[str, Any] = {}
    s.note_entries(meta, [None, NOW - HOUR, NOW - 30 * s.DAY], NOW)
    assert meta["since"] == NOW - 30 * s.DAY
    s.note_entries(meta, [NOW - 40 * s.DAY], NOW + HOUR)
    assert meta["since"] == NOW - 30 * s.DAY
    undated: dict[str, Any] = {}
    s.note_entries(undated, [None, None, NOW + HOUR], NOW)  # undated or future: no age
    assert undated["since"] == NOW - s.WEEK
    assert s.entry_interval(undated, NOW, 60.0, s.WEEK) == pytest.approx(s.WEEK / 3)


def test_a_state_from_before_since_counts_a_week() -> None:
    """A feed known before ``since`` was kept is scheduled as it always was: its first
    read after the upgrade, even with nothing new, does not shrink its week to the span
    of what it remembers."""
    meta: dict[str, Any] = {"recent": [NOW - HOUR, NOW - 2 * HOUR, NOW - 2 * HOUR]}
    before = s.entry_interval(meta, NOW, 60.0, s.DAY)
    s.note_entries(meta, [], NOW)
    assert meta["since"] == NOW - s.WEEK
    assert s.entry_interval(meta, NOW, 60.0, s.DAY) == before == s.DAY


def test_note_entries_keeps_a_week_and_dates_undated_now() -> None:
    """Publication times are remembered for a week; undated or future ones count as now."""
    meta: dict[str, Any] = {"recent": [NOW - 8 * s.DAY, NOW - s.DAY]}
    s.note_entries(meta, [None, NOW + s.DAY, NOW - 2 * s.DAY, NOW - 30 * s.DAY], NOW)
    assert meta["recent"] == [NOW - 2 * s.DAY, NOW - s.DAY, NOW, NOW]


def test_note_entries_is_capped() -> None:
    """The remembered list stays bounded however busy the feed."""
    meta: dict[str, Any] = {}
    s.note_entries(meta, [NOW] * (s.RECENT_CAP + 500), NOW)
    assert len(meta["recent"]) == s.RECENT_CAP


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("max-age=600", 600.0),
        ("public, max-age=60, must-revalidate", 60.0),
        ('max-age="120"', 120.0),
        ("s-maxage=30", None),
        ("no-cache", None),
        ("", None),
    ],
)
def test_max_age(value: str, expected: float | None) -> None:
    """Cache-Control max-age is read; other directives say nothing about when."""
    assert s.max_age(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (formatdate(NOW + HOUR, usegmt=True), HOUR),
        (formatdate(NOW - HOUR, usegmt=True), None),  # already past
        ("0", None),  # the classic "already expired"
        ("garbage", None),
        ("", None),
    ],
)
def test_expires_in(value: str, expected: float | None) -> None:
    """Expires in the future gives seconds from now; past or unreadable gives None."""
    assert s.expires_in(value, NOW) == expected


def test_server_delay_takes_the_longest_hint() -> None:
    """<ttl>, max-age and Expires: the longest wait wins."""
    assert s.server_delay({"cache-control": "max-age=90"}, {"ttl": 1}, NOW) == 90.0
    assert s.server_delay({"cache-control": "max-age=30"}, {"ttl": 2}, NOW) == 120.0
    assert s.server_delay({}, {}, NOW) == 0.0


@pytest.mark.parametrize(
    ("base", "server", "ceiling", "pushed", "expected"),
    [
        (600.0, 0.0, s.DAY, False, 600.0),
        (600.0, 1800.0, s.DAY, False, 1800.0),  # the server may push the poll later
        (1800.0, 600.0, s.DAY, False, 1800.0),  # but never earlier
        (600.0, 30 * s.DAY, s.DAY, False, s.DAY),  # and never past the ceiling
        (600.0, 0.0, s.DAY, True, s.DAY),  # pushes arrive: poll rarely
    ],
)
def test_success_delay(
    base: float, server: float, ceiling: float, pushed: bool, expected: float
) -> None:
    """Good answers: the rate, pushed later by server hints, capped; WebSub slows polling."""
    assert s.success_delay(base, server, ceiling, pushed_recently=pushed) == expected


@pytest.mark.parametrize(
    ("floor", "errors", "retry_after", "expected"),
    [
        (600.0, 1, None, 600.0),
        (600.0, 3, None, 1800.0),  # interval x consecutive errors
        (600.0, 1000, None, s.MAX_BACKOFF),  # capped
        (600.0, 1, 7200.0, 7200.0),  # Retry-After later than the backoff wins
        (600.0, 5, 60.0, 3000.0),  # an earlier Retry-After does not shorten the backoff
        (600.0, 1, 365 * s.DAY, s.MAX_RETRY_AFTER),  # an absurd Retry-After is capped
    ],
)
def test_error_delay(floor: float, errors: int, retry_after: float | None, expected: float) -> None:
    """Errors back off linearly up to a cap; Retry-After can only extend."""
    assert s.error_delay(floor, errors, retry_after) == expected


@pytest.mark.parametrize("unit", [0.0, 0.25, 0.5, 0.999])
def test_jitter_stays_within_bounds(unit: float) -> None:
    """Jitter moves a delay by at most ±JITTER of itself."""
    got = s.jittered(1000.0, unit)
    assert 1000.0 * (1 - s.JITTER) <= got <= 1000.0 * (1 + s.JITTER)


def test_refetch_due_first_and_daily() -> None:
    """The first poll and one a day go out without validators."""
    meta: dict[str, Any] = {}
    assert s.refetch_due(meta, NOW)
    s.note_full_fetch(meta, NOW)
    assert not s.refetch_due(meta, NOW + s.FULL_REFETCH - 60)
    assert s.refetch_due(meta, NOW + s.FULL_REFETCH)


def test_redirect_adopted_after_repeated_permanent_chains() -> None:
    """The effective URL changes only after REDIRECT_CONFIRMATIONS polls in a row."""
    meta: dict[str, Any] = {}
    conf, new = "https://a.example/feed", "https://b.example/feed"
    for _ in range(s.REDIRECT_CONFIRMATIONS - 1):
        assert s.note_redirect(meta, conf, new) is None
        assert s.fetch_url(conf, meta) == conf
    assert s.note_redirect(meta, conf, new) == new
    assert s.fetch_url(conf, meta) == new
    assert s.note_redirect(meta, conf, None) is None  # fetched there directly: no redirect
    assert s.fetch_url(conf, meta) == new


def test_redirect_count_resets_on_a_break() -> None:
    """A poll without a fully permanent chain, or to another target, starts the count over."""
    meta: dict[str, Any] = {}
    conf, new, other = "https://a.example/f", "https://b.example/f", "https://c.example/f"
    s.note_redirect(meta, conf, new)
    s.note_redirect(meta, conf, new)
    s.note_redirect(meta, conf, None)  # e.g. a 302 somewhere in the chain
    assert s.note_redirect(meta, conf, new) is None
    s.note_redirect(meta, conf, other)
    assert s.note_redirect(meta, conf, new) is None
    assert s.fetch_url(conf, meta) == conf


def test_forget_redirect() -> None:
    """A vanished target sends the feed back to its configured URL."""
    meta: dict[str, Any] = {"url": "https://b.example/f"}
    assert s.forget_redirect(meta)
    assert s.fetch_url("https://a.example/f", meta) == "https://a.example/f"
    assert not s.forget_redirect(meta)


def test_pushed_recently() -> None:
    """Pushes count as recent within the ceiling."""
    meta: dict[str, Any] = {}
    assert not s.pushed_recently(meta, NOW, s.DAY)
    s.note_push(meta, NOW)
    assert s.pushed_recently(meta, NOW + s.DAY - 1, s.DAY)
    assert not s.pushed_recently(meta, NOW + s.DAY, s.DAY)
