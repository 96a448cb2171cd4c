"""Hosts, ports and URLs as a connection reads them: the config's checks, so that ``check``
accepts no address ``run`` would fail on.

Promises: every function is pure and never raises; the ``*_problem`` functions return what
is wrong (one short phrase) or None, and never quote the URL they judge, since sink and
Redis URLs hold secrets.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

from redis.asyncio.connection import parse_url as parse_redis_url

PORT = re.compile(r"[0-9]{1,5}")  # ASCII digits only: "²".isdigit() is True, int("²") fails
_LABEL = re.compile(r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)")
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def valid_allow_entry(text: str) -> bool:
    """Whether ``text`` is an address or CIDR, or ``host:port`` with a port from 1."""
    try:
        ipaddress.ip_network(text, strict=False)
        return True
    except ValueError:
        pass
    host, port = split_host_port(text)
    return bool(host and port is not None and host_problem(host) is None and not port_problem(port))


def url_problem(text: str) -> str | None:
    """What keeps ``text`` from being an http(s) URL to connect to, or None. Never quotes
    the URL: sink URLs are secrets."""
    try:
        parts = urlsplit(text)
    except ValueError:  # "http://[x]/", "http://[::1"
        return _unsplittable(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return "expected an http:// or https:// URL"
    if CONTROL.search(text):
        return "invalid URL: it contains a control character"
    return _netloc_problem(parts.netloc, host_required=True)


def redis_url_problem(url: str) -> str | None:
    """What keeps ``url`` from being a Redis URL the client connects with, or None."""
    expected = "expected redis://host:port/db, rediss:// or unix://"
    try:
        parts = urlsplit(url)
    except ValueError:
        return _unsplittable(url)
    if parts.scheme not in ("redis", "rediss", "unix"):
        return expected
    if CONTROL.search(url):
        return "invalid URL: it contains a control character"
    if parts.scheme == "unix":
        return None if parts.path else "a unix:// URL names the socket: unix:///run/redis.sock"
    problem = _netloc_problem(parts.netloc, host_required=False)
    if problem is None and not re.fullmatch(r"/?[0-9]*", parts.path):
        problem = "the URL's path is the database number: redis://host:port/0"
    if problem is None:
        try:
            parse_redis_url(url)
        except ValueError as exc:  # a bad ?option=value
            problem = str(exc).rstrip(".")
    return problem


def _unsplittable(url: str) -> str:
    """Why urlsplit refused ``url``: nearly always brackets that do not hold an IPv6 address."""
    if "[" in url or "]" in url:
        return "invalid URL host: not an IPv6 address inside [ ]"
    return "invalid URL host: not a valid host name"


def _netloc_problem(netloc: str, *, host_required: bool) -> str | None:
    """What is wrong with a URL's ``[user@]host[:port]``, or None."""
    host, port = split_host_port(netloc.rpartition("@")[2])
    if host or host_required:
        problem = host_problem(host)
        if problem is not None:
            return f"invalid URL host: {problem}"
    if port:  # "http://a.example:/" is the default port
        problem = port_problem(port)
        if problem is not None:
            return f"invalid URL port: {problem}"
    return None


def split_host_port(text: str) -> tuple[str, str | None]:
    """``host[:port]`` as (host, port or None); an IPv6 host keeps its brackets, and text
    that does not split cleanly is returned whole as the host."""
    if text.startswith("["):
        end = text.find("]")
        rest = text[end + 1 :] if end >= 0 else ""
        if end < 0 or (rest and not rest.startswith(":")):
            return text, None
        return text[: end + 1], rest[1:] if rest else None
    host, sep, port = text.rpartition(":")
    return (host, port) if sep else (text, None)


def port_problem(port: str, lowest: int = 1) -> str | None:
    """None when ``port`` is ASCII digits from ``lowest`` to 65535."""
    if PORT.fullmatch(port) and lowest <= int(port) <= 65535:
        return None
    return f"expected a port number from {lowest} to 65535"


def host_problem(host: str) -> str | None:
    """None when ``host`` is an IPv4 address, an IPv6 address in brackets, or a DNS name
    (international names included); else what it is not."""
    if host.startswith("["):
        try:
            ipaddress.IPv6Address(host[1:-1] if host.endswith("]") else "")
            return None
        except ValueError:
            return "not an IPv6 address inside [ ]"
    if ":" in host:
        return "not a host name (an IPv6 address goes inside [ ])"
    try:
        name = host.removesuffix(".").encode("idna").decode("ascii")
        name.encode("ascii").decode("idna")  # refuses a malformed "xn--" label
    except UnicodeError:
        return "not a valid host name"
    labels = name.split(".")
    if not all(_LABEL.fullmatch(label) for label in labels):
        return "not a valid host name"
    if labels[-1].isdigit():  # numeric last label: an IPv4 address or nothing
        try:
            ipaddress.IPv4Address(name)
        except ValueError:
            return "not a valid IPv4 address"
    return None
