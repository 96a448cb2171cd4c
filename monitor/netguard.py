"""The address guard: feeds and the pages they link to may only reach public addresses.

Promises: a connection for a feed, an article link or a redirect is opened only to an address
that is globally routable, unless ``fetch.allow_private`` is true or lists it (``host:port`` or
an address/CIDR, compared with the *resolved* address). The check runs on the resolved address
inside the connector's resolver, so every connection — redirect hops and re-resolutions
included — passes it, and DNS rebinding cannot slip between check and connect. IP literals
(which aiohttp does not resolve) are checked before the request. Only http and https.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_CGNAT = ipaddress.ip_network("100.64.0.0/10")


class BlockedAddress(OSError):
    """A connection target the policy refuses (an OSError so aiohttp passes it through)."""


class AddressPolicy:
    """Decides whether (address, port) may be connected to for untrusted URLs."""

    def __init__(self, allow_private: bool | tuple[str, ...] = False) -> None:
        self.allow_all = allow_private is True
        self.networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        self.endpoints: set[tuple[str, int]] = set()
        for entry in allow_private if isinstance(allow_private, tuple) else ():
            self._add(entry)

    def _add(self, entry: str) -> None:
        try:
            self.networks.append(ipaddress.ip_network(entry, strict=False))
            return
        except ValueError:
            pass
        host, _, port = entry.rpartition(":")
        host = host.strip("[]").lower()
        ip = _parse_ip(host)
        if ip is not None:
            self.endpoints.add((str(ip), int(port)))
            return
        # A name is resolved once, here, so the comparison is with addresses, as for every
        # connection: a later DNS answer cannot widen what the operator allowed.
        try:
            infos = socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM)
        except OSError:
            return
        for info in infos:
            self.endpoints.add((str(ipaddress.ip_address(info[4][0])), int(port)))

    def allows(self, address: str, port: int) -> bool:
        """True when connecting to ``address:port`` is allowed."""
        ip = _parse_ip(address)
        if ip is None:
            return False
        if self.allow_all or is_public(ip):
            return True
        if any(ip in net for net in self.networks):
            return True
        return (str(ip), port) in self.endpoints

    def check_url(self, url: str) -> str | None:
        """Why ``url`` may not be fetched before resolving it, or None when it may."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            return f"scheme {parts.scheme or '(none)'!r} is not allowed (http and https only)"
        if not parts.hostname:
            return "URL has no host"
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            return "URL has an invalid port"
        ip = _parse_ip(parts.hostname)
        if ip is not None and not self.allows(str(ip), port):
            return f"address {ip} is not public (allow it with fetch.allow_private)"
        return None


def is_public(ip: IPAddress) -> bool:
    """Globally routable unicast: not loopback, private, link-local, CGNAT, ULA, reserved."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return is_public(ip.ipv4_mapped)
    if isinstance(ip, ipaddress.IPv6Address) and ip.sixtofour is not None:
        return is_public(ip.sixtofour)
    if isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT:
        return False
    return ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_unspecified)


_LEGACY_V4 = re.compile(r"(0x[0-9a-f]+|[0-9]+)(\.(0x[0-9a-f]+|[0-9]+)){0,3}", re.IGNORECASE)


def _parse_ip(text: str) -> IPAddress | None:
    """An address from its text, including the legacy IPv4 spellings resolvers accept
    (``2130706433``, ``0x7f.1``, ``127.1``) — parsed here, never resolved."""
    text = text.strip("[]").split("%", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        pass
    if _LEGACY_V4.fullmatch(text):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(text))
        except OSError:
            return None
    return None


class GuardedResolver(AbstractResolver):
    """Resolves like the default resolver, then drops every address the policy refuses."""

    def __init__(self, policy: AddressPolicy, inner: AbstractResolver | None = None) -> None:
        self.policy = policy
        self.inner = inner or ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self.inner.resolve(host, port, family)
        allowed = [r for r in results if self.policy.allows(r["host"], r["port"])]
        if not allowed:
            shown = ", ".join(sorted({r["host"] for r in results})) or "nothing"
            raise BlockedAddress(f"{host} resolves to {shown}, which is not public")
        return allowed

    async def close(self) -> None:
        await self.inner.close()
