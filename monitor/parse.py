"""Parsing: feed bytes in, entries out. Pure (no I/O); the only error it raises is ParseError.

Promises of :func:`parse_feed`:

- RSS 0.9x/1.0 (RDF)/2.0, Atom 0.3/1.0 and JSON Feed are read. fastfeedparser goes first (it
  is ~100x faster); feedparser is the fallback when fastfeedparser raises, finds no entries,
  or loses XHTML-typed titles (which it returns empty).
- Hostile XML is refused before any parser sees it: a prolog whose ``<!DOCTYPE`` has an
  internal subset (``[...]``, where ``<!ENTITY`` lives) or a ``SYSTEM`` reference raises
  ``ParseError("feed declares a DOCTYPE with entities; refused")``, which rules out
  billion-laughs, quadratic blow-up and XXE. The prolog is read the way a parser would read it:
  by BOM, by the byte pattern of ``<`` in UTF-16/32 (with or without BOM) and EBCDIC, and again
  in the encoding the XML declaration names (so a UTF-7 ``+ADw-!DOCTYPE`` is seen too). A
  comment or PI running past the first 64 K characters is refused, since a DOCTYPE could hide
  behind it. A plain ``<!DOCTYPE rss PUBLIC ...>`` (old RSS 0.91) is accepted; neither parser
  loads external DTDs (fastfeedparser's lxml parsers use ``resolve_entities=False`` and lxml's
  default ``no_network``/no DTD loading; feedparser turns off external entities in its SAX
  parser).
- Bounded output: at most ``max_entries`` entries, titles and authors cut at
  :data:`MAX_TITLE_CHARS`, each entry's HTML cut at :data:`MAX_HTML_CHARS`, guids longer than
  :data:`MAX_URL_CHARS` replaced by their SHA-256. Titles are plain single-line text, their
  entities decoded (RSS titles are often escaped twice).
- A raw control character (C0 but tab, LF, CR), which XML and JSON forbid and parsers stop
  at, becomes a space in any ASCII-compatible encoding, so it loses no text and no entry.
- Entry links are resolved against the feed URL and are absolute ``http(s)`` URLs of at most
  :data:`MAX_URL_CHARS`, or empty: ``javascript:``, ``data:``, ``file:`` and the like never come
  out as links. ``published`` is UTC-aware or None.
- Anything the libraries raise becomes :class:`~monitor.errors.ParseError`.

:func:`entry_article` turns one entry into an :class:`~monitor.article.Article` (text from the
entry's HTML, URL canonical and without tracking parameters).
"""

from __future__ import annotations

import calendar
import codecs
import hashlib
import html
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import lru_cache
from itertools import islice
from typing import Any
from urllib.parse import urljoin

import fastfeedparser
import feedparser

from monitor._textnorm import has_c0
from monitor.article import MAX_TITLE_CHARS, Article
from monitor.clean import html_text, html_to_text, looks_like_html
from monitor.errors import ParseError
from monitor.textnorm import normalize
from monitor.urls import canonical_url, is_http_url, is_plain_http_url

MAX_HTML_CHARS = 1_000_000
MAX_URL_CHARS = 8_192
SUMMARY_CHARS = 1_000
PROLOG_SCAN_CHARS = 64 * 1024
REFUSED_DOCTYPE = "feed declares a DOCTYPE with entities; refused"


@dataclass(frozen=True, slots=True)
class Entry:
    """One feed entry as the feed states it (HTML left as HTML)."""

    title: str
    link: str
    guid: str
    published: datetime | None
    summary_html: str
    content_html: str
    author: str


@dataclass(frozen=True, slots=True)
class Feed:
    """A parsed feed: its own title/link, entries, RSS ``<ttl>`` and WebSub hub if any."""

    title: str
    link: str
    entries: list[Entry]
    ttl_minutes: int | None
    hub: str | None


def parse_feed(data: bytes, url: str = "", *, max_entries: int = 1000) -> Feed:
    """Parse feed ``data`` fetched from ``url``; raises ParseError when it is not a feed."""
    if not data or not data.strip():
        raise ParseError("empty document")
    wide = _wide_codec(data)
    head, channel = _checked_prolog(data, wide)
    data = _controls_out(data, head, wide)
    try:
        feed = _parse_any(data, url, max_entries)
    except ParseError:
        raise
    except Exception as exc:  # our mapping met a shape no test showed; still a bad feed
        raise ParseError(f"unreadable feed: {type(exc).__name__}: {exc}") from exc
    return Feed(feed.title, feed.link, feed.entries, _ttl_minutes(channel), _hub(channel, url))


def entry_article(entry: Entry, *, source: str, summary: bool = True) -> Article:
    """The entry as an Article: text from content (else summary), canonical link.

    With ``summary=False``, an entry whose text comes from its content gets no summary, so
    its summary HTML is not even read: matching never looks at it, and the pipeline adds
    it (:func:`entry_summary`) only to the articles that fire a rule.
    """
    content = entry.content_html
    text = _entry_text(content) if content and content != entry.summary_html else ""
    if text:
        about = entry_summary(entry) if summary else ""
    else:
        text = _entry_text(entry.summary_html)
        about = normalize(text[:SUMMARY_CHARS])
    return Article(
        title=entry.title,
        text=text,
        url=canonical_url(entry.link) if is_http_url(entry.link) else "",
        published=entry.published,
        summary=about,
        source=source,
        guid=entry.guid,
    )


def entry_summary(entry: Entry) -> str:
    """The first :data:`SUMMARY_CHARS` characters of the text of the entry's summary."""
    return normalize(_entry_text(entry.summary_html)[:SUMMARY_CHARS])


def _entry_text(entry_html: str) -> str:
    """Text of entry HTML; HTML that the feed escaped twice is unwrapped once more.

    Told from the text before normalising: NFKC would make fullwidth brackets ("＜NYSE＞")
    look like a tag.
    """
    text = html_text(entry_html)
    head = text[:1000].lstrip()[:200]  # not a copy of a long text to read its start
    if head.startswith("<") and looks_like_html(head):
        text = html_text(text)
    return normalize(text)


# --- choosing a parser -----------------------------------------------------------------------


def _parse_any(data: bytes, url: str, max_entries: int) -> Feed:
    """fastfeedparser's result unless it failed, found nothing or lost titles; then feedparser's."""
    fast = _parse_fast(data, url, max_entries)
    if fast is not None and fast.entries and not _lost_xhtml_titles(fast, data):
        return fast
    slow, recognised = _parse_slow(data, url, max_entries)
    if slow.entries:
        return slow
    if fast is not None:  # a feed, perhaps empty, that feedparser could not improve on
        return fast
    if recognised:  # a well-formed feed with no entries
        return slow
    raise ParseError("not a feed: no RSS, Atom or JSON Feed entries found")


def _lost_xhtml_titles(feed: Feed, data: bytes) -> bool:
    return (
        any(not e.title for e in feed.entries)
        and re.search(rb"""type=["']xhtml""", data) is not None
    )


def _parse_fast(data: bytes, url: str, max_entries: int) -> Feed | None:
    """fastfeedparser's reading, or None when it raised (the fallback decides)."""
    try:
        # bytes, never str: a str starting with http:// would make it fetch that URL. Tags,
        # media and enclosures are never read here: not having them built saves a tenth.
        parsed = fastfeedparser.parse(
            bytes(data), include_tags=False, include_media=False, include_enclosures=False
        )
    except Exception:
        return None
    meta = parsed.get("feed") or {}
    entries = [_fast_entry(e, url) for e in islice(parsed.get("entries") or [], max_entries)]
    return Feed(_title(meta.get("title")), _link(meta.get("link"), url), entries, None, None)


def _parse_slow(data: bytes, url: str, max_entries: int) -> tuple[Feed, bool]:
    """feedparser's reading and whether it recognised a feed format at all."""
    headers = {"content-location": url} if url else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # feedparser warns on odd dates and encodings
        try:
            parsed = feedparser.parse(
                bytes(data),
                response_headers=headers,
                sanitize_html=False,  # we only want text out of it; sanitising is wasted
                resolve_relative_uris=False,
            )
        except Exception as exc:
            raise ParseError(f"unreadable feed: {exc}") from exc
    meta = parsed.get("feed") or {}
    entries = [_slow_entry(e, url) for e in islice(parsed.get("entries") or [], max_entries)]
    feed = Feed(_title(meta.get("title")), _link(meta.get("link"), url), entries, None, None)
    return feed, bool(parsed.get("version"))


# --- mapping library dicts to Entry -----------------------------------------------------------


def _fast_entry(raw: Mapping[str, Any], base: str) -> Entry:
    link = _text(raw.get("link")) or _alternate(raw.get("links"))
    resolved, usable = _resolved(link, base)
    return Entry(
        title=_title(raw.get("title")),
        link=usable,
        guid=_guid(raw.get("id"), link, resolved),
        published=_date_text(raw.get("published")) or _date_text(raw.get("updated")),
        summary_html=_html(raw.get("description") or raw.get("summary")),
        content_html=_content(raw.get("content")),
        author=_text(raw.get("author"))[:MAX_TITLE_CHARS],
    )


def _slow_entry(raw: Mapping[str, Any], base: str) -> Entry:
    link = _text(raw.get("link")) or _alternate(raw.get("links"))
    resolved, usable = _resolved(link, base)
    return Entry(
        title=_title(raw.get("title")),
        link=usable,
        guid=_guid(raw.get("id"), link, resolved),
        published=_date_struct(raw.get("published_parsed"))
        or _date_struct(raw.get("updated_parsed")),
        summary_html=_html(raw.get("summary")),
        content_html=_content(raw.get("content")),
        author=_text(raw.get("author"))[:MAX_TITLE_CHARS],
    )


def _guid(value: object, link: str, resolved: str) -> str:
    """The entry's id; when it is missing or just repeats ``link``, ``resolved`` (the link
    made absolute)."""
    guid = _text(value)
    guid = guid if guid and guid != link else resolved
    if len(guid) > MAX_URL_CHARS:  # a hash keeps long ids distinct without keeping them
        return "sha256:" + hashlib.sha256(guid.encode("utf-8", "replace")).hexdigest()
    return guid


def _text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


def _html(value: object) -> str:
    return value[:MAX_HTML_CHARS] if isinstance(value, str) else ""


def _title(value: object) -> str:
    """A plain one-line title: tags (from HTML/XHTML-typed titles) removed, capped."""
    title = _text(value)[: MAX_TITLE_CHARS * 4]
    if "<" in title and looks_like_html(title):  # no "<", no tag: most titles
        title = html_to_text(title)
    elif "&" in title:  # escaped once more than XML needs, as RSS titles often are
        title = _ENTITY.sub(_unescaped, title)
    if not _one_line(title):
        title = " ".join(title.split())
    return title[:MAX_TITLE_CHARS]


def _one_line(text: str) -> bool:
    """True when ``" ".join(text.split())`` would give ``text`` back, told without building it:
    every whitespace character but " " is unprintable to str.isprintable, so a printable
    text without two spaces in a row or one at either end is made of single-spaced words."""
    return text.isprintable() and "  " not in text and text[:1] != " " and text[-1:] != " "


# A character reference with its semicolon: html.unescape alone would also read "&reg"
# in "Sales&regional" (HTML's legacy entities need none), which a plain title never means.
_ENTITY = re.compile(r"&(?:#[0-9]{1,8}|#[xX][0-9a-fA-F]{1,8}|[A-Za-z][A-Za-z0-9]{1,31});")


def _unescaped(found: re.Match[str]) -> str:
    return html.unescape(found.group())


def _link(value: object, base: str) -> str:
    link = _text(value)
    if not link or not base or is_plain_http_url(link):  # most links: urljoin gives it back
        return link
    return _joined(base, link)


def _joined(base: str, link: str) -> str:
    if len(base) + len(link) > _CACHED_CHARS:  # answered, not kept (a hostile length)
        return _join.__wrapped__(base, link)
    return _join(base, link)


_CACHED_CHARS = 2048


@lru_cache(maxsize=4096)  # a feed's relative links come again at every poll
def _join(base: str, link: str) -> str:
    try:
        return urljoin(base, link)
    except ValueError:
        return link


def _resolved(link: str, base: str) -> tuple[str, str]:
    """The entry's ``link`` (stripped) made absolute against ``base``; and that again when
    it is a usable http(s) URL of at most :data:`MAX_URL_CHARS`, else empty."""
    if link and is_plain_http_url(link):  # most links; is_http_url would say yes again
        return link, link if len(link) <= MAX_URL_CHARS else ""
    resolved = _joined(base, link) if link and base else link
    usable = len(resolved) <= MAX_URL_CHARS and is_http_url(resolved)
    return resolved, resolved if usable else ""


def _alternate(links: object) -> str:
    """The first ``rel=alternate`` (or rel-less) href of a links list."""
    if not isinstance(links, list):
        return ""
    for item in links:
        if isinstance(item, Mapping) and item.get("rel") in (None, "", "alternate"):
            href = _text(item.get("href"))
            if href:
                return href
    return ""


def _content(value: object) -> str:
    """The first non-empty content block as HTML (plain-text blocks escaped)."""
    if not isinstance(value, list):
        return ""
    for block in value:
        if not isinstance(block, Mapping):
            continue
        body = _html(block.get("value"))
        if body and not body.isspace():  # body.strip() would copy it to tell
            plain = str(block.get("type") or "") in ("text", "text/plain")
            return html.escape(body, quote=False) if plain else body
    return ""


def _date_text(value: object) -> datetime | None:
    """An ISO 8601 or RFC 822 date string as UTC (naive taken as UTC), or None."""
    text = _text(value)
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        try:
            parsed = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
    try:
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (OverflowError, ValueError):  # year 1 or 9999 pushed out of range by the offset
        return None


def _date_struct(value: object) -> datetime | None:
    """feedparser's UTC ``time.struct_time`` as an aware datetime, or None."""
    try:
        return datetime.fromtimestamp(calendar.timegm(value), UTC)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError, OSError):
        return None


# --- the prolog: hostile DTDs, ttl, hub -------------------------------------------------------

_BOMS = (
    (b"\x00\x00\xfe\xff", "utf-32-be"), (b"\xff\xfe\x00\x00", "utf-32-le"),
    (b"\xfe\xff", "utf-16-be"), (b"\xff\xfe", "utf-16-le"),
    (b"\x00\x00\x00<", "utf-32-be"), (b"<\x00\x00\x00", "utf-32-le"),
    (b"\x00<\x00?", "utf-16-be"), (b"<\x00?\x00", "utf-16-le"),
    (b"Lo\xa7\x94", "cp037"),  # "<?xm" in EBCDIC, which libxml2 recognises
)  # fmt: skip
_DECLARED = re.compile(r"""<\?xml\s[^>]{0,200}?encoding\s*=\s*["']([A-Za-z0-9._:-]{1,40})["']""")


def _checked_prolog(data: bytes, wide: str | None) -> tuple[str, str]:
    """Refuse a hostile prolog (:func:`_refuse_hostile`); return the head read (a prefix of
    :func:`_head_text`'s, at least 512 characters or all of it) and the channel head
    (:func:`_channel_head`).

    Most feeds show their root element and first item within :data:`_SHORT_HEAD_BYTES`; then
    reading only those gives what reading :data:`PROLOG_SCAN_CHARS` would (decoding those
    took a third of our own work on a feed), else the whole head is read.
    """
    if wide is None and len(data) > _SHORT_HEAD_BYTES:
        head = data[:_SHORT_HEAD_BYTES].decode("latin-1")
        channel = _short_channel(data, head)
        if channel is not None:
            return head, channel
    head = _head_text(data, wide)
    _refuse_hostile(data, head, wide)
    return head, _channel_head(head)


_SHORT_HEAD_BYTES = 4096


def _short_channel(data: bytes, head: str) -> str | None:
    """The channel head when ``head``, a Latin-1 prefix of ``data``, answers as the whole
    head would; None when it might not (a longer read decides, and raises if need be).

    The prolog walk looks at most :data:`_LOOKAHEAD` characters past each "<" up to the root
    element, so a root found with that many characters after it was found as in the whole
    head; any refusal or search running into the cut is left to the whole head. An item
    match ending before the cut is the whole head's first too: an earlier one would hold
    the later "<", and a match holds no "<" but its first character.
    """
    try:
        root = _refuse_hostile_prolog(head)
    except ParseError:
        return None
    item = _FIRST_ITEM.search(head)
    if root < 0 or root + _LOOKAHEAD > len(head) or item is None or item.end() >= len(head):
        return None
    codec = _declared_codec(head)
    if codec is not None and not _reads_alike(data, head, None, codec, root):
        return None  # the prolog is read again in that codec, against the whole head
    return head[: item.start()]


def _head_text(data: bytes, wide: str | None) -> str:
    """The first PROLOG_SCAN_CHARS of ``data`` as text, decoded just enough to read markup.

    UTF-16/32 and EBCDIC (``wide``, from :func:`_wide_codec`) are recognised by BOM, by how
    ``<?`` is spelled or by where the NUL bytes sit; everything else is read as Latin-1,
    which keeps every ASCII byte (all the markup we look at) as it is.
    """
    if wide is None:
        return data[:PROLOG_SCAN_CHARS].decode("latin-1")
    width = {"cp037": 1, "utf-32-be": 4, "utf-32-le": 4}.get(wide, 2)
    return data[: PROLOG_SCAN_CHARS * width].decode(wide, errors="replace")


# UTF-16/32 without BOM or ``<?``: the NUL pattern of the first character (any character).
_WIDE = {"x000": "utf-32-le", "000x": "utf-32-be", "x0x0": "utf-16-le", "0x0x": "utf-16-be"}


def _wide_codec(data: bytes) -> str | None:
    """UTF-16/32 or EBCDIC when ``data`` starts like them (see :func:`_head_text`), else None."""
    codec = next((c for prefix, c in _BOMS if data.startswith(prefix)), None)
    return codec or _WIDE.get("".join("0" if b == 0 else "x" for b in data[:4]))


def _declared_codec(head: str) -> str | None:
    """Python's name for the encoding the XML declaration names; None without one, or when
    Python does not know it (then no parser will decode by it either)."""
    found = _DECLARED.search(head[:512])
    if not found:
        return None
    try:
        return codecs.lookup(found.group(1)).name  # aliases too
    except LookupError:
        return None


# C0 controls but tab, LF and CR, which XML 1.0 and JSON strings forbid.
_C0 = bytes([*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20)])
_C0_TO_SPACE = bytes.maketrans(_C0, b" " * len(_C0))


def _controls_out(data: bytes, head: str, wide: str | None) -> bytes:
    """``data`` with each raw C0 control byte but tab, LF and CR made a space.

    Parsers stop at such a byte: fastfeedparser dropped the rest of the element and every
    entry after it, so one stray ``\x01`` in a description lost the rest of the feed. In an
    ASCII-compatible encoding (UTF-8, Latin-1, Windows-125x, Shift_JIS, GB18030…) such a
    byte is that control character wherever it sits, never part of another character.
    UTF-16/32 and EBCDIC (``wide``: NUL bytes in every ASCII character), and ISO-2022 (ESC,
    SO and SI switch its character sets), are left as they are. ``data`` itself comes back
    when it holds no such byte (nearly always), told by a pass that copies nothing.
    """
    if wide is not None or not has_c0(data):
        return data
    declared = _declared_codec(head)
    if declared is not None and declared.startswith("iso2022"):
        return data
    return data.translate(_C0_TO_SPACE)


# Encodings that read a run of ASCII bytes at the start of a document as those characters,
# whatever follows: a prolog of ASCII bytes reads the same in them as in ``head``.
_ASCII_SAFE = frozenset({"utf-8", "ascii", "iso8859-1", "iso8859-15", "cp1250", "cp1251", "cp1252"})
# How far past a "<" _refuse_hostile_prolog looks to tell what it opens ("<!DOCTYPE").
_LOOKAHEAD = 9


def _refuse_hostile(data: bytes, head: str, wide: str | None) -> None:
    """Raise ParseError when the prolog, as ``head`` reads it or as the XML declaration's
    encoding does, holds a DOCTYPE that could expand or fetch.

    A parser honours ``encoding="UTF-7"`` (and other codecs that spell ``<`` differently), so
    the check must read the bytes that way too. The prolog is decoded so (up to 256 KB) only
    when that could read differently: not when the bytes up to just past the root element
    are ASCII and the encoding reads ASCII as Latin-1 does, as in nearly every feed.
    """
    root = _refuse_hostile_prolog(head)
    codec = _declared_codec(head)
    if codec is None or _reads_alike(data, head, wide, codec, root):
        return
    view = data[: PROLOG_SCAN_CHARS * 4].decode(codec, errors="replace")[:PROLOG_SCAN_CHARS]
    if view != head:
        _refuse_hostile_prolog(view)


def _reads_alike(data: bytes, head: str, wide: str | None, codec: str, root: int) -> bool:
    """Whether ``data`` decoded by ``codec`` starts as ``head`` does up to just past its root
    element (at ``root``), so that the walk meets the same markup there: true when ``head``
    is the Latin-1 reading, those bytes are ASCII and ``codec`` reads them so."""
    end = root + _LOOKAHEAD
    return (
        wide is None
        and codec in _ASCII_SAFE
        and root >= 0
        and end <= len(head)
        and data[:end].isascii()
    )


def _refuse_hostile_prolog(head: str) -> int:
    """Raise ParseError when a DOCTYPE before the root element could expand or fetch; else
    return where the root element starts (-1 when ``head`` holds none).

    Walks markup up to the first element, skipping PIs, comments and stray text (parsers
    skip leading junk too, so a DOCTYPE after junk still counts). At each "<" it looks at
    most :data:`_LOOKAHEAD` characters on.
    """
    i = 0
    while (i := head.find("<", i)) >= 0:
        if head.startswith("<?", i):
            i = _after(head, "?>", i + 2)
        elif head.startswith("<!--", i):
            i = _after(head, "-->", i + 4)
        elif head[i : i + 9].upper() == "<!DOCTYPE":
            i = _check_doctype(head, i + 9)
        elif head[i + 1 : i + 2].isalpha():
            return i  # the root element: no DOCTYPE can follow it
        else:
            i += 1
        if i < 0:
            # A comment or PI runs past what we scanned; a DOCTYPE could hide behind it.
            raise ParseError("feed prolog is too long to check; refused")
    return -1


def _after(text: str, marker: str, start: int) -> int:
    end = text.find(marker, start)
    return -1 if end < 0 else end + len(marker)


def _check_doctype(head: str, start: int) -> int:
    """Refuse a DOCTYPE with an internal subset or SYSTEM id; else return where it ends."""
    quote = ""
    for i in range(start, len(head)):
        ch = head[i]
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch == "[":
            raise ParseError(REFUSED_DOCTYPE)
        elif ch == ">":
            if re.search(r"\bSYSTEM\b", _unquoted(head[start:i]), re.I):
                raise ParseError(REFUSED_DOCTYPE)
            return i + 1
    raise ParseError(REFUSED_DOCTYPE)  # unterminated within the scan window


def _unquoted(decl: str) -> str:
    return re.sub(r"\"[^\"]*\"|'[^']*'", " ", decl)


_TTL = re.compile(r"<ttl>\s*(\d{1,7})\s*</ttl>", re.I)
_UPDATE_PERIOD = re.compile(r"<sy:updatePeriod>\s*(\w+)\s*</sy:updatePeriod>", re.I)
_UPDATE_FREQUENCY = re.compile(r"<sy:updateFrequency>\s*(\d{1,6})\s*</sy:updateFrequency>", re.I)
_PERIOD_MINUTES = {"hourly": 60, "daily": 1440, "weekly": 10080, "monthly": 43200,
                   "yearly": 525600}  # fmt: skip
_LINK_TAG = re.compile(r"<(?:[\w.-]+:)?link\b([^>]*)>", re.I)
_ATTR = re.compile(r"""([\w:-]+)\s*=\s*(?:"([^"]*)"|'([^']*)')""")
_FIRST_ITEM = re.compile(r"<(?:[\w.-]+:)?(?:item|entry)\b", re.I)


def _channel_head(head: str) -> str:
    """The part of ``head`` before the first item/entry (feed-level elements only)."""
    found = _FIRST_ITEM.search(head)
    return head[: found.start()] if found else head


def _ttl_minutes(channel: str) -> int | None:
    """RSS ``<ttl>``, else ``sy:updatePeriod``/``updateFrequency``, in minutes, read from
    ``channel`` (:func:`_channel_head`)."""
    if found := _TTL.search(channel):
        return int(found.group(1)) or None  # ttl 0 says nothing about how often to poll
    period = _UPDATE_PERIOD.search(channel)
    if period is None or period.group(1).lower() not in _PERIOD_MINUTES:
        return None
    frequency = _UPDATE_FREQUENCY.search(channel)
    times = max(int(frequency.group(1)), 1) if frequency else 1
    return max(_PERIOD_MINUTES[period.group(1).lower()] // times, 1)


def _hub(channel: str, base: str) -> str | None:
    """The WebSub hub URL the feed advertises (``<link rel="hub">`` in ``channel``,
    :func:`_channel_head`), if http(s)."""
    for tag in _LINK_TAG.finditer(channel):
        if "hub" not in tag.group(1).lower():  # rel holds it, if any: most links go here
            continue
        attrs = {
            m.group(1).lower(): m.group(2) or m.group(3) or "" for m in _ATTR.finditer(tag.group(1))
        }
        if "hub" in attrs.get("rel", "").lower().split():
            href = canonical_url(html.unescape(attrs.get("href", "")), base or None)
            return href if is_http_url(href) else None
    return None
