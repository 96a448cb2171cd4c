"""State stores: the embedded SQLite store and the Redis store, behind one interface."""

from monitor.store.base import FeedState, Pending, Store

__all__ = ["FeedState", "Pending", "Store"]
