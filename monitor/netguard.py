"""The address guard: feeds and the pages they link to may only reach public addresses.

Promises: a connection for a feed, an article link or a redirect is opened only to an address
that is globally routable, unless ``fetch.allow_private`` is true or lists it (``host:port`` or
an address/CIDR, compared with the *resolved* address). Three checks, each enough on its own:

- :meth:`AddressPolicy.check_url` before every request and redirect hop: http(s) only, and IP
  literals in any spelling (``2130706433``, ``0x7f.1``, ``[::ffff:127.0.0.1]``, zone ids,
  trailing dots) judged as the address they denote;
- :class:`GuardedResolver` drops refused addresses from every DNS answer;
- :func:`guarded_socket_factory` judges the exact ``sockaddr`` each socket is about to connect
  to, so nothing — an IP literal aiohttp never resolves, a rebinding answer, a code path that
  skips the resolver — reaches a refused address. It refuses *before* creating the socket.

Not public: loopback, RFC 1918, link-local (169.254/16, cloud metadata), CGNAT (100.64/10),
unspecified (``0.0.0.0``, ``::``), multicast, reserved and documentation ranges, unique-local
and site-local IPv6, Teredo, and IPv6 forms that carry an IPv4 address (mapped ``::ffff:0:0/96``,
6to4 ``2002::/16``, NAT64 ``64:ff9b::/96``) unless the carried address is public.
"""

from __future__ import annotations

import errno
import ipaddress
import re
import socket
from urllib.parse import urlsplit

from aiohappyeyeballs import AddrInfoType, SocketFactoryType
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
NOT_PUBLIC = "is not public"
# check_url verdicts kept: one per feed URL for 10,000 feeds and the article links of the
# moment, about 2 MB at most; when full, all are forgotten and judged again as they come.
VERDICTS = 16_384
VERDICT_URL = 2048  # longer URLs are judged afresh each time rather than kept


class BlockedAddress(OSError):
    """A connection target the policy refuses (an OSError so aiohttp passes it through).

    Its errno is EACCES, so when aiohappyeyeballs folds several refusals into one OSError the
    result is still recognisable (see :func:`is_blocked`).
    """

    def __init__(self, message: str) -> None:
        super().__init__(errno.EACCES, message)

    def __str__(self) -> str:
        return str(self.strerror)


def is_blocked(exc: BaseException | None) -> bool:
    """True when ``exc`` is (or folds together) refusals by the guard."""
    if isinstance(exc, BlockedAddress):
        return True
    return isinstance(exc, OSError) and exc.errno == errno.EACCES and NOT_PUBLIC in str(exc)


class AddressPolicy:
    """Decides whether (address, port) may be connected to for untrusted URLs."""

    def __init__(self, allow_private: bool | tuple[str, ...] = False) -> None:
        self.allow_all = allow_private is True
        networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        endpoints: set[tuple[str, int]] = set()
        for entry in allow_private if isinstance(allow_private, tuple) else ():
            _add(entry, networks, endpoints)
        # Fixed from here on: check_url's verdicts are kept on that understanding.
        self.networks = tuple(networks)
        self.endpoints = frozenset(endpoints)
        self._verdicts: dict[str, str | None] = {}

    def allows(self, address: str, port: int) -> bool:
        """True when connecting to ``address:port`` is allowed."""
        ip = _parse_ip(address)
        return ip is not None and self._allows(ip, port)

    def _allows(self, ip: IPAddress, port: int) -> bool:
        if self.allow_all or is_public(ip):
            return True
        if any(ip in net for net in self.networks):
            return True
        return (str(ip), port) in self.endpoints

    def check_url(self, url: str) -> str | None:
        """Why ``url`` may not be fetched before resolving it, or None when it may.

        The verdict depends on nothing but the URL's text and this (fixed) policy — no name
        is resolved here; the resolver and the socket factory judge every address a
        connection really goes to — so it is kept for the next poll of the same feed (up to
        :data:`VERDICTS` URLs of at most :data:`VERDICT_URL` characters, then forgotten).
        """
        try:
            return self._verdicts[url]
        except KeyError:
            pass
        verdict = self._check_url(url)
        if len(url) <= VERDICT_URL:
            if len(self._verdicts) >= VERDICTS:
                self._verdicts.clear()
            self._verdicts[url] = verdict
        return verdict

    def _check_url(self, url: str) -> str | None:
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
        if ip is not None and not self._allows(ip, port):
            return f"address {ip} {NOT_PUBLIC} (allow it with fetch.allow_private)"
        return None


def _add(
    entry: str,
    networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network],
    endpoints: set[tuple[str, int]],
) -> None:
    """One ``fetch.allow_private`` entry: a network, or the addresses of ``host:port``."""
    try:
        networks.append(ipaddress.ip_network(entry, strict=False))
        return
    except ValueError:
        pass
    host, _, port = entry.rpartition(":")
    host = host.strip("[]").lower()
    ip = _parse_ip(host)
    if ip is not None:
        endpoints.add((str(ip), int(port)))
        return
    # A name is resolved once, here, so the comparison is with addresses, as for every
    # connection: a later DNS answer cannot widen what the operator allowed.
    try:
        infos = socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM)
    except OSError:
        return
    for info in infos:
        endpoints.add((str(ipaddress.ip_address(info[4][0])), int(port)))


def is_public(ip: IPAddress) -> bool:
    """Globally routable unicast: not loopback, private, link-local, CGNAT, ULA, reserved."""
    if isinstance(ip, ipaddress.IPv6Address):
        carried = _carried_v4(ip)
        if carried is not None:
            return is_public(carried)
        if ip.is_site_local or ip.teredo is not None:
            return False  # deprecated fec0::/10; Teredo hides where it really goes
    elif ip in _CGNAT:
        return False
    return ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_unspecified)


def _carried_v4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, 6to4, NAT64), if any."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


_LEGACY_V4 = re.compile(r"(0x[0-9a-f]+|[0-9]+)(\.(0x[0-9a-f]+|[0-9]+)){0,3}", re.IGNORECASE)


def _parse_ip(text: str) -> IPAddress | None:
    """An address from its text, including the legacy IPv4 spellings resolvers accept
    (``2130706433``, ``0x7f.1``, ``127.1``) — parsed here, never resolved."""
    text = text.strip("[]").split("%", 1)[0]
    if text.endswith(".") and not text.endswith(".."):
        text = text[:-1]  # "127.0.0.1." is the same address to every resolver
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
            raise BlockedAddress(f"{host} resolves to {shown}, which {NOT_PUBLIC}")
        return allowed

    async def close(self) -> None:
        await self.inner.close()


def guarded_socket_factory(policy: AddressPolicy) -> SocketFactoryType:
    """An aiohttp ``socket_factory`` that refuses, before creating the socket, any address the
    policy refuses: the last check, on the very ``sockaddr`` the connection goes to."""

    def factory(addr_info: AddrInfoType) -> socket.socket:
        family, type_, proto, _, sockaddr = addr_info
        host, port = str(sockaddr[0]), int(sockaddr[1])
        if not policy.allows(host, port):
            raise BlockedAddress(f"connection to {host} port {port} refused: address {NOT_PUBLIC}")
        return socket.socket(family=family, type=type_, proto=proto)

    return factory
