"""HTTP plumbing shared by the webhook and Slack sinks.

One POST per call and no retries: :func:`post` returns on 2xx and raises
:class:`~monitor.errors.DeliveryError` otherwise, saying what the delivery loop should do next:

- 3xx is never followed and is a retryable error (a moved endpoint is a config problem);
- ``Retry-After`` (delta-seconds or HTTP-date) becomes ``retry_after`` in seconds, clamped to
  0 … 1 day;
- 410 Gone sets ``disable``; statuses in ``permanent`` set ``permanent``; the rest is retryable;
- network errors and timeouts are retryable and chained (``from exc``); cancellation passes.

Messages name the sink and only the scheme and host of its URL: webhook URLs (Slack's above
all) carry secrets in their path and query. At most :data:`MAX_BODY` bytes of an answer are read.
"""

from __future__ import annotations

import importlib.metadata
import math
import time
from collections.abc import Collection, Mapping
from email.utils import parsedate_to_datetime

import aiohttp
from multidict import CIMultiDictProxy
from yarl import URL

from monitor.errors import ConfigError, DeliveryError

MAX_BODY = 4096
MAX_RETRY_AFTER = 86400.0
EXCERPT_CHARS = 200
GONE = 410


def _version() -> str:
    try:
        return importlib.metadata.version("news-monitor")
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"


USER_AGENT = f"news-monitor/{_version()}"


def checked_url(sink: str, url: str) -> URL:
    """``url`` parsed, or ConfigError when it is not an absolute http(s) URL (URL not printed)."""
    try:
        parsed = URL(url)
    except ValueError:
        parsed = URL()
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ConfigError(f"sink {sink!r}: url must be an absolute http:// or https:// URL")
    return parsed


def origin(url: URL) -> str:
    """Scheme and host (and port when explicit) of ``url``: safe to print, unlike its path."""
    return str(url.origin())


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value, clamped to 0 … 1 day; None if unusable."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    seconds: float | None
    try:
        seconds = float(value)
    except ValueError:
        seconds = _seconds_until(value, time.time() if now is None else now)
    if seconds is None or not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def _seconds_until(http_date: str, now: float) -> float | None:
    try:
        when = parsedate_to_datetime(http_date)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT; a naive parse means "-0000"
        return None
    return when.timestamp() - now


async def post(
    session: aiohttp.ClientSession,
    url: URL,
    body: bytes,
    headers: Mapping[str, str],
    *,
    where: str,
    limits: aiohttp.ClientTimeout,
    permanent: Collection[int] = (),
) -> None:
    """POST ``body`` once; return on 2xx, else raise DeliveryError (see the module docstring)."""
    try:
        async with session.post(
            url,
            data=body,
            headers=dict(headers),
            allow_redirects=False,
            timeout=limits,
        ) as resp:
            if 200 <= resp.status < 300:
                return
            excerpt = await _read_excerpt(resp)
            raise status_error(where, resp.status, resp.headers, excerpt, permanent)
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise DeliveryError(f"{where}: {_describe(exc, url)}") from exc


def status_error(
    where: str,
    status: int,
    headers: CIMultiDictProxy[str] | Mapping[str, str],
    excerpt: str,
    permanent: Collection[int] = (),
) -> DeliveryError:
    """The DeliveryError for a non-2xx answer."""
    message = f"{where}: HTTP {status}"
    if 300 <= status < 400:
        message += " (redirect not followed; fix the sink URL)"
    if excerpt:
        message += f": {excerpt}"
    return DeliveryError(
        message,
        status=status,
        retry_after=parse_retry_after(headers.get("Retry-After")),
        permanent=status in permanent,
        disable=status == GONE,
    )


async def _read_excerpt(resp: aiohttp.ClientResponse) -> str:
    """The first bytes of the answer as one short printable line."""
    data = b""
    while len(data) < MAX_BODY:
        chunk = await resp.content.read(MAX_BODY - len(data))
        if not chunk:
            break
        data += chunk
    text = " ".join(data.decode("utf-8", "replace").split())
    text = "".join(c for c in text if c.isprintable())
    return text[:EXCERPT_CHARS]


def _describe(exc: BaseException, url: URL) -> str:
    """Exception class and message, with the URL's path and query (its secret parts) cut out."""
    text = str(exc)
    if len(url.raw_path_qs) > 1:
        for full in (str(url), url.human_repr()):
            text = text.replace(full, origin(url) + "/…")
        for part in (url.raw_path_qs, url.path_qs):
            text = text.replace(part, "/…")
    name = type(exc).__name__
    if isinstance(exc, TimeoutError) and not text:
        return f"{name}: no answer in time"
    return f"{name}: {text}" if text else name
