"""The error tree of news-monitor.

    MonitorError
    ├── ConfigError      bad config or rule file; carries file:line:col when known
    ├── FetchError       a feed or page could not be fetched (network, status, limits, guard)
    ├── ParseError       a feed or page could not be parsed
    └── DeliveryError    a sink did not accept a hit (retry_after / permanent say what next)

Library errors are translated into these at the boundary (``raise FetchError(...) from exc``),
so callers handle one small set and a bad feed, page or sink never stops the others.
"""

from __future__ import annotations


class MonitorError(Exception):
    """Base of every error news-monitor raises on purpose."""


class ConfigError(MonitorError):
    """A config or rule problem, printed as ``path:line:col: error: message``."""

    def __init__(
        self, message: str, path: str | None = None, line: int | None = None, col: int | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.path = path
        self.line = line
        self.col = col

    def __str__(self) -> str:
        where = ""
        if self.path is not None:
            where = self.path
            if self.line is not None:
                where += f":{self.line}"
                if self.col is not None:
                    where += f":{self.col}"
            return f"{where}: error: {self.message}"
        return f"error: {self.message}"


class ConfigErrors(ConfigError):
    """Several problems found in one pass (``check`` reports them all)."""

    def __init__(self, errors: list[ConfigError]) -> None:
        super().__init__("\n".join(str(e) for e in errors))
        self.errors = errors

    def __str__(self) -> str:
        return "\n".join(str(e) for e in self.errors)


class FetchError(MonitorError):
    """A fetch failed; ``status`` is the HTTP status when there was one.

    ``lasting`` marks failures that trying again will not cure (refused by the address
    guard, over a size or redirect limit, a malformed URL).
    """

    def __init__(
        self,
        message: str,
        status: int | None = None,
        retry_after: float | None = None,
        *,
        lasting: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after
        self.lasting = lasting


class ParseError(MonitorError):
    """Bytes that are not a feed or page we can read."""


class DeliveryError(MonitorError):
    """A sink refused or failed a hit.

    ``retry_after`` (seconds) overrides the backoff schedule when the sink said so;
    ``permanent`` means retrying the same hit cannot help (e.g. Slack 400);
    ``disable`` means the sink itself is gone (HTTP 410);
    ``deferred`` means nothing was sent (the sink is holding back, e.g. under a Slack rate
    limit), so the attempt does not count against the hit's retries.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        permanent: bool = False,
        disable: bool = False,
        deferred: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after
        self.permanent = permanent
        self.disable = disable
        self.deferred = deferred
