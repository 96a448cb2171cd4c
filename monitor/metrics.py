"""Prometheus metrics of one daemon, in its own registry (so tests can run several).

Label cardinality is bounded by the config: per feed name, per rule id, per sink name. Per
feed there are counters and a gauge only, a few series each; poll latency is one histogram
for all feeds. A histogram per feed was 17 series and ~4 KB per feed: with 10,000 feeds,
/metrics was 13 MB (200,000 lines) and took seconds of CPU to render at every scrape. The
``_created`` series (a timestamp beside every counter) are left out too: they doubled the
lines of every per-feed counter for a value no dashboard uses.
"""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

disable_created_metrics()  # type: ignore[no-untyped-call]  # process-wide: the only exporter


class Metrics:
    """Every metric the daemon exports on ``/metrics``."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.polls = Counter(
            "news_monitor_polls", "Feed polls by outcome", ["feed", "status"], registry=r
        )
        self.poll_errors = Counter("news_monitor_poll_errors", "Failed polls", ["feed"], registry=r)
        self.poll_seconds = Histogram(
            "news_monitor_poll_seconds", "Poll duration, all feeds", registry=r
        )
        self.entries = Counter(
            "news_monitor_entries", "Entries seen in feeds", ["feed"], registry=r
        )
        self.feed_disabled = Gauge(
            "news_monitor_feed_disabled", "1 when a feed answered 410 Gone", ["feed"], registry=r
        )
        self.new_articles = Counter(
            "news_monitor_new_articles", "New articles processed", ["feed"], registry=r
        )
        self.hits = Counter("news_monitor_hits", "Hits recorded", ["rule"], registry=r)
        self.deliveries = Counter(
            "news_monitor_deliveries", "Delivery attempts by result", ["sink", "result"], registry=r
        )
        self.delivery_seconds = Histogram(
            "news_monitor_delivery_seconds",
            "Time from hit detection to sink acceptance",
            ["sink"],
            registry=r,
        )
        self.pending = Gauge(
            "news_monitor_pending_deliveries", "Deliveries waiting", ["sink"], registry=r
        )
        self.sink_disabled = Gauge(
            "news_monitor_sink_disabled", "1 when a sink answered 410", ["sink"], registry=r
        )
        self.rules = Gauge("news_monitor_rules", "Rules loaded", registry=r)
        self.store_up = Gauge("news_monitor_store_up", "1 when the store answers", registry=r)

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric (CPU work that grows with the
        feeds: call it off the event loop)."""
        return generate_latest(self.registry)
