"""Sinks: where hits go (webhook, Slack). Redis publication is part of the Redis store."""

from monitor.sinks.base import Sink

__all__ = ["Sink"]
