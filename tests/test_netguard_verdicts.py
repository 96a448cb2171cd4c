"""check_url keeps its verdicts per URL: a kept verdict is the one judging afresh gives,
each policy keeps its own, and the store of verdicts stays bounded. No name is resolved and
no packet is sent here."""

from __future__ import annotations

import pytest

from monitor import netguard
from monitor.netguard import AddressPolicy

URLS = [
    "http://127.0.0.1:8080/feed",
    "http://127.0.0.1:9090/feed",
    "http://2130706433/feed",
    "http://[::ffff:169.254.169.254]/latest/meta-data",
    "http://10.1.2.3/x",
    "https://93.184.216.34/rss",
    "http://news.example/rss",
    "ftp://news.example/rss",
    "http:///no-host",
    "http://news.example:99999/rss",
]


@pytest.mark.parametrize("allow", [False, True, ("127.0.0.1:8080", "10.1.0.0/16")])
def test_a_kept_verdict_is_the_fresh_one(allow: bool | tuple[str, ...]) -> None:
    """Asked twice, check_url answers as judging the URL afresh does."""
    policy = AddressPolicy(allow)
    first = [policy.check_url(url) for url in URLS]
    again = [policy.check_url(url) for url in URLS]
    fresh = [AddressPolicy(allow)._check_url(url) for url in URLS]
    assert first == again == fresh
    assert set(policy._verdicts) == set(URLS)


def test_each_policy_keeps_its_own_verdicts() -> None:
    """A URL one policy allows stays refused by a stricter one asked afterwards."""
    url = "http://127.0.0.1:8080/feed"
    assert AddressPolicy(("127.0.0.1:8080",)).check_url(url) is None
    assert "not public" in (AddressPolicy().check_url(url) or "")


def test_the_policy_cannot_be_widened_after_the_fact() -> None:
    """The allowed networks and endpoints are fixed once built (verdicts rely on it)."""
    policy = AddressPolicy(("10.1.0.0/16", "127.0.0.1:8080"))
    assert isinstance(policy.networks, tuple)
    assert isinstance(policy.endpoints, frozenset)


def test_the_verdicts_kept_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past VERDICTS URLs the kept ones are forgotten; over-long URLs are never kept."""
    monkeypatch.setattr(netguard, "VERDICTS", 8)
    policy = AddressPolicy()
    for i in range(50):
        assert policy.check_url(f"http://10.0.0.{i}/") is not None
        assert len(policy._verdicts) <= 8
    long = "http://10.0.0.1/" + "a" * netguard.VERDICT_URL
    assert policy.check_url(long) is not None
    assert long not in policy._verdicts
