"""The sink interface.

A sink gets one hit at a time and either returns (accepted: 2xx) or raises
:class:`monitor.errors.DeliveryError` saying whether and when to retry. Sinks do not retry on
their own and keep no state of their own: the delivery loop and the store own the schedule,
so retries survive restarts.
"""

from __future__ import annotations

from typing import Protocol

from monitor.hit import Hit


class Sink(Protocol):
    """One configured destination."""

    name: str

    async def send(self, hit: Hit) -> None:
        """Deliver ``hit``; raise DeliveryError when it was not accepted."""

    async def close(self) -> None:
        """Release what the sink holds (its pacing state)."""
