"""The generic webhook sink: the hit JSON, POSTed and signed per Standard Webhooks.

Each attempt POSTs ``hit.body`` byte for byte with ``webhook-id`` (the hit id, the same on
every attempt, so receivers can deduplicate), a fresh ``webhook-timestamp`` and, when a secret
is configured, ``webhook-signature``: ``v1,<base64 HMAC-SHA256 of "id.timestamp.body">``.

Secrets: ``whsec_<base64>`` is decoded as Standard Webhooks specifies. A secret without the
``whsec_`` prefix is used as its raw UTF-8 bytes (so a plain shared password works; note that
the ``standardwebhooks`` library would base64-decode it instead). A list of secrets, newest
first, signs with each of them (space-separated signatures) so receivers can rotate keys.

2xx is success. Everything else raises DeliveryError: 410 disables the sink, other answers and
network errors are retryable (Standard Webhooks practice), ``Retry-After`` is passed on.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Sequence

import aiohttp

from monitor.errors import ConfigError
from monitor.hit import Hit
from monitor.sinks.http import USER_AGENT, checked_url, origin, post

SECRET_PREFIX = "whsec_"


class WebhookSink:
    """POSTs every hit to one URL with Standard Webhooks headers."""

    def __init__(
        self,
        name: str,
        url: str,
        *,
        session: aiohttp.ClientSession,
        secret: str | Sequence[str] | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.name = name
        self._url = checked_url(name, url)
        self._session = session
        self._keys = signing_keys(name, secret)
        self._limits = aiohttp.ClientTimeout(total=timeout)
        self._where = f"webhook sink {name!r} ({origin(self._url)})"

    async def send(self, hit: Hit) -> None:
        """POST ``hit.body`` once; raise DeliveryError unless the receiver answered 2xx."""
        timestamp = str(int(time.time()))
        headers = {
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            "webhook-id": hit.id,
            "webhook-timestamp": timestamp,
        }
        if self._keys:
            headers["webhook-signature"] = sign(self._keys, hit.id, timestamp, hit.body)
        await post(
            self._session, self._url, hit.body, headers, where=self._where, limits=self._limits
        )

    async def close(self) -> None:
        """Nothing to release: the HTTP session belongs to the caller."""


def signing_keys(sink: str, secret: str | Sequence[str] | None) -> list[bytes]:
    """The HMAC keys for ``secret`` (one or a rotation list); empty when unsigned."""
    if secret is None:
        return []
    secrets = [secret] if isinstance(secret, str) else list(secret)
    return [_key(sink, s) for s in secrets]


def _key(sink: str, secret: str) -> bytes:
    if not secret.startswith(SECRET_PREFIX):
        key = secret.encode()
    else:
        encoded = secret.removeprefix(SECRET_PREFIX)
        try:
            key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
        except binascii.Error:
            raise ConfigError(
                f"webhook sink {sink!r}: secret after 'whsec_' is not valid base64"
            ) from None
    if not key:
        raise ConfigError(f"webhook sink {sink!r}: secret is empty")
    return key


def sign(keys: Sequence[bytes], msg_id: str, timestamp: str, body: bytes) -> str:
    """The ``webhook-signature`` value: one ``v1,<base64>`` per key, space-separated."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return " ".join(
        "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
        for key in keys
    )
