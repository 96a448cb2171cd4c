"""URL canonicalisation: one spelling per article URL, without tracking parameters.

Promises of :func:`canonical_url` (pure, never raises):

- resolved against ``base`` when given (relative links from feeds and pages);
- scheme and host lower-case; default port (``:80`` for http, ``:443`` for https) dropped;
- fragment dropped; an empty path becomes ``/``;
- tracking parameters removed (names compared case-insensitively): every ``utm_*`` and the
  names in :data:`TRACKING_PARAMS`; every other parameter is kept, in its order and with its
  original encoding, so a page that needs ``?id=42`` still gets it;
- anything that is not an absolute http(s) URL is returned stripped but otherwise unchanged
  (a ``urn:`` guid, a ``mailto:``) — use :func:`is_http_url` to decide whether to fetch it.

``www.`` is kept, and percent-escapes are not rewritten: both can name a different resource,
and merging syndicated copies is the story stage's job, not this one's.
"""

from __future__ import annotations

import re
from functools import lru_cache
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

HTTP_SCHEMES = frozenset({"http", "https"})
DEFAULT_PORTS = {"http": 80, "https": 443}

# Click identifiers and campaign tags added by ad networks, mailers and social sites. They
# never select content, only attribute the visit. Generic names such as ``ref`` or ``source``
# are deliberately absent: some sites use them to pick the page.
TRACKING_PARAMS = frozenset(
    {
        # ad and social click ids
        "fbclid",
        "gclid",
        "gclsrc",
        "dclid",
        "gbraid",
        "wbraid",
        "msclkid",
        "yclid",
        "ysclid",
        "twclid",
        "ttclid",
        "li_fat_id",
        "igshid",
        "igsh",
        "epik",
        # analytics and mailers (Google, Mailchimp, HubSpot, Marketo, Vero, AT Internet)
        "_ga",
        "_gl",
        "mc_cid",
        "mc_eid",
        "_hsenc",
        "_hsmi",
        "__hstc",
        "__hssc",
        "__hsfp",
        "mkt_tok",
        "vero_id",
        "vero_conv",
        "at_medium",
        "at_campaign",
        # publishers' own campaign tags (Twitter/X shares, Microsoft, NYT, Yahoo, Adobe)
        "ref_src",
        "ref_url",
        "cmpid",
        "ocid",
        "smid",
        "smtyp",
        "ncid",
        "s_cid",
        "wt.mc_id",
    }
)
TRACKING_PREFIXES = ("utm_",)


# Each entry's link is asked about several times on its way (its seen-key, its article, its
# story): the answers for URLs up to _CACHED_CHARS long are cached (a hostile page's
# megabyte-long canonical link is answered, not kept).
_CACHED = 4096
_CACHED_CHARS = 2048


# An absolute http(s) URL that urlsplit and urlparse take apart, and urlunsplit and urlunparse
# put back, as it is written: lower-case scheme, a host of ASCII letters, digits, dots and
# hyphens (no userinfo, no IPv6 brackets, nothing for the IDNA check) with perhaps a port,
# printable ASCII after it (urlsplit removes tabs and newlines), no ";" in the path (urlparse
# splits params off at it) and no "?" or "#" with nothing after it (put back without them).
# Most feed links are spelled so; each one is then answered without urlsplit.
_PLAIN_HTTP = re.compile(
    r"(https?)://([A-Za-z0-9.-]++)(:[0-9]*+)?+"
    r"""(/[!-"$-:<->@-~]*+)?+(?:\?([!-"$-~]++))?+(?:#[!-~]++)?+"""
)


def is_plain_http_url(url: str) -> bool:
    """True when ``url`` is an absolute http(s) URL with a host that urllib's split and
    join functions give back unchanged: ``urljoin(base, url) == url`` whenever urljoin
    takes ``base`` at all (it raises ValueError on a bad IPv6 literal)."""
    return _PLAIN_HTTP.fullmatch(url) is not None


def is_http_url(url: str) -> bool:
    """True for an absolute http(s) URL with a host; never javascript:, data:, file: etc."""
    return _is_http_url(url) if len(url) <= _CACHED_CHARS else _is_http_url.__wrapped__(url)


@lru_cache(maxsize=_CACHED)
def _is_http_url(url: str) -> bool:
    return _PLAIN_HTTP.fullmatch(url) is not None or _split_is_http_url(url)


def _split_is_http_url(url: str) -> bool:
    """:func:`is_http_url` by urlsplit, for any URL."""
    try:
        parts = urlsplit(url.strip())
        return parts.scheme.lower() in HTTP_SCHEMES and bool(parts.hostname)
    except ValueError:
        return False


def is_tracking_param(name: str) -> bool:
    """True when a query parameter name only attributes a visit (see :data:`TRACKING_PARAMS`)."""
    key = unquote(name).strip().lower()
    return key in TRACKING_PARAMS or key.startswith(TRACKING_PREFIXES)


def strip_tracking(query: str) -> str:
    """``query`` without tracking parameters; the others keep their order and encoding."""
    if not query:
        return ""
    kept = [p for p in query.split("&") if p and not is_tracking_param(p.split("=", 1)[0])]
    return "&".join(kept)


def canonical_url(url: str, base: str | None = None) -> str:
    """The canonical spelling of ``url`` (resolved against ``base``); see the module docstring."""
    if len(url) + len(base or "") <= _CACHED_CHARS:
        return _canonical_url(url, base)
    return _canonical_url.__wrapped__(url, base)


@lru_cache(maxsize=_CACHED)
def _canonical_url(url: str, base: str | None) -> str:
    url = url.strip()
    plain = None if base else _PLAIN_HTTP.fullmatch(url)
    if plain is not None and plain.group(3) is None:  # a port is left to urlsplit's checks
        # What _split_canonical_url makes of it, without urlsplit and urlunsplit.
        scheme, host, path, query = plain.group(1, 2, 4, 5)
        query = strip_tracking(query or "")
        return f"{scheme}://{host.lower()}{path or '/'}{'?' if query else ''}{query}"
    return _split_canonical_url(url, base)


def _split_canonical_url(url: str, base: str | None) -> str:
    """:func:`canonical_url` of a stripped ``url`` by urljoin and urlsplit, for any URL."""
    try:
        if base:
            url = urljoin(base.strip(), url)
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in HTTP_SCHEMES or not parts.hostname:
            return url
        netloc = _netloc(scheme, parts.netloc, parts.hostname, parts.port)
    except ValueError:  # bad port, bad IPv6 literal: leave it for the fetch guard to refuse
        return url
    path = parts.path or "/"
    return urlunsplit((scheme, netloc, path, strip_tracking(parts.query), ""))


def _netloc(scheme: str, netloc: str, hostname: str, port: int | None) -> str:
    """``netloc`` with the host lower-cased and a default port dropped; userinfo kept."""
    userinfo = netloc.rpartition("@")[0]
    host = f"[{hostname}]" if ":" in hostname else hostname  # IPv6 literal keeps its brackets
    if port is not None and port != DEFAULT_PORTS[scheme]:
        host = f"{host}:{port}"
    return f"{userinfo}@{host}" if userinfo else host
