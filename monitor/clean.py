"""Cleaning: HTML in, plain text out. Pure (no I/O).

Promises:

- :func:`html_to_text` turns a feed entry's summary/content HTML into plain text: scripts,
  styles and SVG dropped, block elements and ``<br>`` become line breaks, entities decoded
  (as HTML5 and ``html.unescape`` read them), and the text normalised
  (:func:`~monitor.textnorm.normalize`, whose passes tidy the whitespace too; an Article
  built from it is not normalised a second time). It never raises, and its text holds no
  C0 control but tab/LF/CR, nor U+FFFE or U+FFFF: raw or written as a character reference
  (``&#1;``, ``&#x1F``), each becomes a space. It is called for every entry, so it is one
  pass in C that builds no tree (``monitor/_htmltext.c``, whose opening comment says
  exactly what it reads how): linear in the input, with no nesting limit, and a tag's
  attributes cost their length (libxml2's time grows with their square). Text that holds
  no tag (:func:`looks_like_html`) is plain: only its references are decoded, so the
  ``<`` of ``a<b`` in prose stays.
- :func:`extract` (public as ``monitor.extract``) turns a full web page into an
  :class:`~monitor.article.Article` holding the page's main text only — no menus, sidebars,
  related links or footers — plus its title, publication time (UTC), language and canonical
  URL read from the page's own metadata. It raises only :class:`ParseError`, and control
  characters are replaced as above before the page is parsed. A page of more than
  :data:`MAX_ELEMENTS` elements is refused with ParseError before extraction: extraction
  costs ~40 µs of CPU per element, so a hostile page of 16 MB of empty ``<div>`` s would
  otherwise take a minute (real news pages measured up to 5,647 elements; the median 820).

Extraction parses the page once; trafilatura (balanced focus, fast mode, no comments) runs on
its own copy of that tree. When that yields under :data:`SHORT_TEXT_CHARS`, readability-lxml
runs on the same tree and its text is kept when more than twice as long. Paragraphs repeated
verbatim are then kept once, and short call-to-action lines (subscription pitches, "follow
us", copyright) are dropped. On the annotated corpus this finds more of the article than
trafilatura's precision mode and leaks less boilerplate than either mode. The charset is the
BOM's, else the HTTP header's (``content_type``), else the page's ``<meta charset>``, else
UTF-8; bad bytes are replaced. Metadata is read straight from the parsed tree (meta tags,
JSON-LD, ``<time>``) rather than by htmldate's guessing, which is slow and not needed when the
page states its date. ``bench/extract.py`` measures quality and speed against trafilatura
alone.
"""

from __future__ import annotations

import codecs
import json
import re
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from itertools import islice
from typing import Any

import lxml.html
import trafilatura
from lxml import etree
from readability import Document as ReadabilityDocument

from monitor import _htmltext
from monitor.article import MAX_TITLE_CHARS, Article
from monitor.errors import ParseError
from monitor.textnorm import normalize
from monitor.urls import canonical_url, is_http_url

SHORT_TEXT_CHARS = 600
MAX_CTA_CHARS = 250
MIN_REPEAT_CHARS = 40
SUMMARY_CHARS = 1_000
MAX_JSONLD_CHARS = 200_000
MAX_ELEMENTS = 25_000

# Shared parser: no network, ever (lxml's HTML parser loads no DTDs; said here explicitly).
# Every element is an lxml.html HtmlElement, as trafilatura and readability require, but
# chosen by lxml's C default lookup: lxml.html's own parser calls a Python method to pick
# the class of every element each time one is touched, over 10% of trafilatura's time.
# Comments and processing instructions, which would need their own classes, are not kept.
_HTML_PARSER = etree.HTMLParser(
    encoding="utf-8",
    huge_tree=True,
    no_network=True,
    collect_ids=False,
    default_doctype=False,
    remove_comments=True,
    remove_pis=True,
)
_HTML_PARSER.set_element_class_lookup(
    etree.ElementDefaultClassLookup(element=lxml.html.HtmlElement)
)
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_CONTROL_BYTES = bytes([*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20)])  # its ASCII part
# Numeric character references to what _CONTROL matches, with or without the semicolon as
# libxml2 reads them: it decodes them into the tree, whose text lxml then refuses to take back
# ("All strings must be XML compatible"). Surrogates and code points past U+10FFFF need no
# rule: libxml2 decodes those to U+FFFD.
_CONTROL_REF = re.compile(
    r"&#(?:0*(?:[0-8]|1[124-9]|2[0-9]|3[01]|6553[45])(?![0-9])"
    r"|[xX]0*(?:[0-8bBcCeEfF]|1[0-9a-fA-F]|[fF]{3}[eEfF])(?![0-9a-fA-F]));?"
)
_MARKUP = re.compile(r"</?[A-Za-z][A-Za-z0-9:-]*(\s[^<>]*)?/?>|<!--")
# libxml2's HTML parser checks each attribute of a tag against all the tag's others: one tag
# with 50,000 attributes (600 KB) held it for 40 s. A start tag with more than MAX_ATTRIBUTES
# loses them all before parsing (real tags hold a few dozen). _CROWDED finds such a tag by
# its first MAX_ATTRIBUTES + 1 attributes, read as HTML5 (and libxml2 2.14) reads them: names
# run to whitespace, "/", ">" or "="; whitespace and "/" separate them, and after a quoted
# value none is needed (a="1"b="2"); quoted values may hold "<" and ">". _TAG_REST is the
# rest of the tag from there. Possessive, so neither backtracks.
MAX_ATTRIBUTES = 256
_ATTRIBUTE = r"""[\s/]*+[^\s/>=]++(?:\s*+=\s*+(?:"[^"]*+"|'[^']*+'|[^\s>]++))?+"""
_CROWDED = re.compile(rf"<([A-Za-z][^\s/>]*+)(?:{_ATTRIBUTE}){{{MAX_ATTRIBUTES + 1}}}")
_TAG_REST = re.compile(r"""(?:[^>"']++|"[^"]*+"|'[^']*+')*+>""")
# Elements whose content is text to the parser, never tags: scripts hold "<" aplenty
# ("for(i=0;i<n;i++)..."), which must not be read as crowded tags and cut.
_RAW_TEXT = "script|style|textarea|title|xmp|iframe|noembed|noframes|noscript"
_SCAN = re.compile(
    rf"<(?:((?i:{_RAW_TEXT}))(?=[\s/>])"
    rf"|([A-Za-z][^\s/>]*+)(?:{_ATTRIBUTE}){{{MAX_ATTRIBUTES + 1}}})"
)
_RAW_CLOSE = {name: re.compile(rf"</{name}(?=[\s/>])", re.I) for name in _RAW_TEXT.split("|")}
_LONG_TAG_CHARS = 2 * MAX_ATTRIBUTES  # an attribute takes two characters at least (" a")
# True when an element lies deeper than libxml2 reads without huge_tree (256 levels). The path
# steps one level at a time over all elements, so this costs one pass over the tree.
_TOO_DEEP_FOR_READABILITY = etree.XPath("boolean(" + "/*" * 257 + ")")
_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_:.()-]+)""", re.I)
_HEADER_CHARSET = re.compile(r"""charset\s*=\s*["']?\s*([A-Za-z0-9_:.()-]+)""", re.I)
# Site chrome that trafilatura keeps at the edges of articles: subscription pitches, social
# follow lines, app promotions, copyright notices and label-only lines.
_CALL_TO_ACTION = re.compile(
    r"""\b(?:subscribe\s+(?:now|today|to\s+(?:our|the)|for)|already\s+a\s+subscriber
    |(?:sign|signing)\s+up\s+(?:for|to|now)|our\s+newsletter|\w+\s+newsletter$
    |follow\s+(?:us|the\s+\w+|@\w+)\s+on|download\s+(?:the|our)\s+[\w\s]{0,30}app
    |copyright\s+(?:©\s*)?\d{4}|all\s+rights\s+reserved|we\s+want\s+to\s+hear
    |letter\s+to\s+the\s+editor|never\s+miss\s+(?:the|a|an)\b
    |get\s+the\s+[\w\s]{0,30}(?:app|newsletter|daily|edition)|we\s+recommend\s+the\s+best
    |contains\s+references\s+to\s+products|written\s+permission|copyrighted\s+property)
    |©|^(?:release\s+date|last\s+modified|category|credit|photo\s+credit|image\s+credit)\s*:""",
    re.I | re.X,
)


# --- entry HTML -> text -------------------------------------------------------------------


def html_to_text(html: str) -> str:
    """Plain text of an HTML fragment, normalised (:func:`normalize`): blocks on their own
    lines, entities decoded."""
    return normalize(html_text(html))


def html_text(html: str) -> str:
    """The text of an HTML fragment before normalising: entities decoded, scripts and styles
    dropped, blocks (and Unicode line and paragraph separators) on lines of their own,
    whitespace otherwise as written. For callers that look at it before normalising."""
    if not html or html.isspace():
        return ""
    return _htmltext.text(html, looks_like_html(html))


def thin_tags(html: str) -> str:
    """``html`` with every start tag holding more than :data:`MAX_ATTRIBUTES` attributes
    made a bare tag (``<p a0 a1 … a49999>`` becomes ``<p>``); ``html`` itself, the same
    object, when there is none. A bound on the parser's time, which grows with the square
    of a tag's attributes. The content of scripts, styles and the like is left as it is:
    the parser reads no tags there."""
    if _CROWDED.search(html) is None:  # nearly always: one pass, no raw text to mind
        return html
    found = _SCAN.search(html)
    parts: list[str] = []
    pos = 0
    thinned = False
    while found is not None:
        start = found.start()
        crowded = _CROWDED.match(html, start) if found.group(1) else found
        if crowded is not None:
            name = crowded.group(1) if found.group(1) else crowded.group(2)
            parts += (html[pos:start], f"<{name}>")
            pos = _tag_end(html, crowded.end())
            thinned = True
        raw = found.group(1)
        if raw:  # skip to its end tag; with none, the rest of the page is its text
            close = _RAW_CLOSE[raw.lower()].search(html, max(pos, found.end()))
            end = len(html) if close is None else close.end()
            parts.append(html[pos:end])
            pos = end
        found = _SCAN.search(html, pos)
    if not thinned:
        return html
    parts.append(html[pos:])
    return "".join(parts)


def _tag_end(html: str, pos: int) -> int:
    """Where the start tag whose attributes run on at ``pos`` ends (after its ">")."""
    rest = _TAG_REST.match(html, pos)
    if rest is not None:
        return rest.end()
    end = html.find(">", pos)  # a quote left open: the tag ends at the next ">", if any
    return len(html) if end < 0 else end + 1


def _has_control(text: str, data: bytes) -> bool:
    """True when ``text`` (``data`` is its UTF-8) holds a character :data:`_CONTROL` matches.

    Both scans are C loops a few times faster than the regex: bytes.translate for the ASCII
    controls, and a one-character search for U+FFFE/U+FFFF, which cannot be in a ``str``
    whose widest character is below U+0100 and costs nothing there.
    """
    return (
        len(data.translate(None, _CONTROL_BYTES)) != len(data)
        or "\ufffe" in text
        or "\uffff" in text
    )


def looks_like_html(text: str) -> bool:
    """True when ``text`` holds a tag or comment (not merely a stray ``<`` or ``&``)."""
    return _MARKUP.search(text) is not None


def _tidy(text: str) -> str:
    """Single spaces inside lines, one newline between non-empty lines, no outer space."""
    lines = [" ".join(line.split()) for line in text.splitlines() if line]
    return "\n".join(line for line in lines if line)


def _parse_html(data: bytes) -> Any:
    """An lxml.html tree of UTF-8 ``data``, or None when lxml finds no document in it."""
    try:
        return lxml.html.document_fromstring(data, parser=_HTML_PARSER)
    except (etree.ParserError, etree.XMLSyntaxError, ValueError):
        return None


# --- full page -> Article -----------------------------------------------------------------


def extract(
    html: str | bytes, url: str | None = None, *, content_type: str | None = None
) -> Article:
    """The page's main text and metadata as an Article (empty text when nothing is found).

    ``content_type`` is the HTTP header, whose charset wins over the page's meta tags.
    Raises only :class:`ParseError`: whatever the libraries make of a hostile page is
    translated here, so one bad page never escapes as another exception.
    """
    try:
        return _extract(html, url, content_type)
    except ParseError:
        raise
    except RecursionError:
        raise ParseError("page nested too deeply to read") from None
    except Exception as exc:  # the boundary with trafilatura, readability and lxml
        raise ParseError(f"cannot extract page: {type(exc).__name__}: {exc}") from exc


def _extract(html: str | bytes, url: str | None, content_type: str | None) -> Article:
    text_html = decode_html(html, content_type) if isinstance(html, bytes) else html
    text_html = thin_tags(text_html)
    # Control characters are invalid in XML: lxml would take them into the tree and then
    # refuse them wherever trafilatura sets text; referenced ones would reach the title.
    text_html = _CONTROL_REF.sub(" ", text_html)
    data = text_html.encode("utf-8", "surrogatepass")
    if _has_control(text_html, data):  # a quarter of the regex's time on a page
        data = _CONTROL.sub(" ", text_html).encode("utf-8", "surrogatepass")
    root = _parse_html(data)
    if root is None:
        return Article(url=_page_url("", url))
    if more_than(root, MAX_ELEMENTS):
        raise ParseError(f"page too large to extract: more than {MAX_ELEMENTS:,} elements")
    meta = _metadata(root)
    body = _main_text(root, text_html, url)
    page_url = _page_url(meta.get("canonical", ""), url)
    return Article(
        title=meta.get("title", "")[:MAX_TITLE_CHARS],
        text=body,
        url=page_url,
        published=_parse_datetime(meta.get("published", "")),
        language=meta.get("language") or None,
        summary=normalize(meta.get("description", "")[:SUMMARY_CHARS]),
    )


def more_than(root: Any, limit: int) -> bool:
    """Whether the tree under ``root`` has more than ``limit`` elements (counting stops
    there, so a huge tree costs no more than a limit-sized one)."""
    return next(islice(root.iter(), limit, None), None) is not None


def _main_text(root: Any, html: str, url: str | None) -> str:
    """Main text: trafilatura, readability when that is short, then boilerplate lines out.

    Consumes ``root`` (readability drops hidden elements from it).
    """
    text = _trafilatura(root, url)
    if len(text) < SHORT_TEXT_CHARS:
        # Short pages are where trafilatura most often misses the article altogether
        # (unusual layouts); readability is kept only when it finds clearly more.
        other = _readability(root, html)
        if len(other) > 2 * len(text):
            text = other
    return drop_boilerplate_lines(text)


def _trafilatura(root: Any, url: str | None) -> str:
    # trafilatura works on its own copy of a tree it is given, so ``root`` is left whole
    # for readability.
    with warnings.catch_warnings():
        # htmldate/dateparser deprecations surface on some real pages; not ours to fix.
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            text = trafilatura.extract(
                root,
                url=url,
                # Balanced focus finds more of the article than favor_precision; the
                # boilerplate it lets through is mostly calls to action, which
                # drop_boilerplate_lines removes. fast=True skips trafilatura's comparison
                # with its other algorithms (40% less CPU for one snippet on the corpus).
                fast=True,
                include_comments=False,
                with_metadata=False,
            )
        except Exception:  # a library bug on one page must not stop the pipeline
            return ""
    return _tidy(text or "")


def drop_boilerplate_lines(text: str) -> str:
    """``text`` without repeated paragraphs and short call-to-action/byline-chrome lines.

    A paragraph repeated verbatim (a highlights box restating the lead) is kept once; a
    line of at most :data:`MAX_CTA_CHARS` matching :data:`_CALL_TO_ACTION` ("Subscribe now",
    "Follow us on", "All rights reserved", "Category:") is dropped. Longer lines are kept
    whatever they say: article paragraphs may well discuss subscriptions or copyright.
    """
    seen: set[str] = set()
    kept: list[str] = []
    for line in text.split("\n"):
        key = " ".join(line.lower().split())
        if len(key) > MIN_REPEAT_CHARS and key in seen:
            continue
        seen.add(key)
        if len(line) > MAX_CTA_CHARS or not _CALL_TO_ACTION.search(line):
            kept.append(line)
    return "\n".join(kept)


def _readability(root: Any, html: str) -> str:
    # Given the tree, readability works on copies of it rather than parsing the page again;
    # but its time grows with the square of the nesting depth, so a page nested deeper than
    # its own parser reads (which stops there) is left to that parser. No URL: readability
    # would only make the links absolute, and only the text is kept.
    source = html if _TOO_DEEP_FOR_READABILITY(root) else root
    try:
        summary = ReadabilityDocument(source).summary(html_partial=True)
    except Exception:  # readability raises bare Exceptions on odd pages
        return ""
    return html_to_text(summary)


# --- bytes -> str ----------------------------------------------------------------------------


def decode_html(data: bytes, content_type: str | None = None) -> str:
    """``data`` decoded by its BOM, the header's charset or ``<meta charset>``, else UTF-8."""
    for bom, codec in ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"),
                       (codecs.BOM_UTF16_BE, "utf-16-be")):  # fmt: skip
        if data.startswith(bom):
            return data[len(bom) :].decode(codec, errors="replace")
    charset = _header_charset(content_type) or _declared_charset(data[:4096]) or "utf-8"
    try:
        return data.decode(charset, errors="replace")
    except (LookupError, ValueError):  # a codec that exists but is not a text encoding
        return data.decode("utf-8", errors="replace")


def _header_charset(content_type: str | None) -> str | None:
    """The codec named by a Content-Type header's ``charset=``, if Python knows it."""
    found = _HEADER_CHARSET.search(content_type or "")
    return _known_codec(found.group(1)) if found else None


def _known_codec(name: str) -> str | None:
    try:
        codec = codecs.lookup(name).name
    except LookupError:
        return None
    # A page served as bytes cannot really be UTF-16 when its ASCII markup was readable.
    return "utf-8" if codec.startswith("utf-16") else codec


def _declared_charset(head: bytes) -> str | None:
    """The codec named by a ``<meta charset>``/``http-equiv`` tag, if Python knows it."""
    found = _CHARSET.search(head)
    return _known_codec(found.group(1).decode("ascii")) if found else None


# --- metadata ------------------------------------------------------------------------------

_TITLE_META = ("og:title", "twitter:title", "dc.title")
_DATE_META = (
    "article:published_time", "og:published_time", "datepublished", "pubdate",
    "publishdate", "publish-date", "parsely-pub-date", "sailthru.date", "dc.date.issued",
    "dc.date", "dcterms.created", "dcterms.date", "date", "article.published",
)  # fmt: skip
_DESCRIPTION_META = ("og:description", "description", "twitter:description")


def _metadata(root: Any) -> dict[str, str]:
    """Title, published, language, canonical and description as the page states them."""
    metas = _meta_tags(root)
    jsonld = _jsonld_article(root)
    return {
        "title": _first(metas, _TITLE_META) or _str(jsonld.get("headline")) or _title(root),
        "published": _first(metas, _DATE_META)
        or _str(jsonld.get("datePublished"))
        or _time_datetime(root),
        "language": _language(root, metas),
        "canonical": _canonical_href(root),
        "description": _first(metas, _DESCRIPTION_META),
    }


def _meta_tags(root: Any) -> dict[str, str]:
    """First ``content`` per lower-cased meta ``property``/``name``/``itemprop``/http-equiv."""
    found: dict[str, str] = {}
    for el in root.iter("meta"):
        content = (el.get("content") or "").strip()
        for attr in ("property", "name", "itemprop", "http-equiv"):
            key = (el.get(attr) or "").strip().lower()
            if key and content and key not in found:
                found[key] = content
    return found


def _first(metas: dict[str, str], keys: tuple[str, ...]) -> str:
    return next((metas[k] for k in keys if metas.get(k)), "")


def _str(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


def _title(root: Any) -> str:
    el = root.find(".//title")
    return _tidy(el.text_content()) if el is not None else ""


def _time_datetime(root: Any) -> str:
    for el in root.iter("time"):
        value = (el.get("datetime") or "").strip()
        if value:
            return value
    return ""


def _language(root: Any, metas: dict[str, str]) -> str:
    """Primary language subtag, lower-case (``en-GB`` -> ``en``), or empty."""
    raw = root.get("lang") or root.get("{http://www.w3.org/XML/1998/namespace}lang") or ""
    raw = raw or metas.get("content-language", "") or metas.get("language", "")
    raw = raw or metas.get("og:locale", "")
    primary = re.split(r"[-_,;\s]", raw.strip(), maxsplit=1)[0].lower()
    return primary if primary.isalpha() and 2 <= len(primary) <= 3 else ""


def _canonical_href(root: Any) -> str:
    for el in root.iter("link"):
        rels = (el.get("rel") or "").lower().split()
        if "canonical" in rels and (el.get("href") or "").strip():
            return str(el.get("href")).strip()
    return ""


def _page_url(canonical: str, url: str | None) -> str:
    """The page's ``rel=canonical`` when usable, else ``url``; canonicalised either way."""
    given = canonical_url(url) if url and is_http_url(url) else ""
    if canonical:
        resolved = canonical_url(canonical, base=url)
        # Some sites point every page's canonical at their home page; that would merge
        # every story on the site into one, so such a canonical is ignored.
        if is_http_url(resolved) and not _is_homepage_of_article(resolved, given):
            return resolved
    return given


def _is_homepage_of_article(canonical: str, given: str) -> bool:
    path = canonical.split("://", 1)[-1].partition("/")[2]
    given_path = given.split("://", 1)[-1].partition("/")[2] if given else ""
    return path.strip("/") == "" and given_path.strip("/") != ""


def _jsonld_article(root: Any) -> dict[str, Any]:
    """The first JSON-LD object with a headline or datePublished, or {}."""
    for el in root.iter("script"):
        if (el.get("type") or "").strip().lower() != "application/ld+json":
            continue
        raw = (el.text or "")[:MAX_JSONLD_CHARS]
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError):
            continue
        for node in _jsonld_nodes(data, depth=0):
            if "datePublished" in node or "headline" in node:
                return node
    return {}


def _jsonld_nodes(data: object, depth: int) -> Iterator[dict[str, Any]]:
    """Dict nodes of a JSON-LD document: top level, lists and ``@graph``, 3 levels deep."""
    if depth > 3:
        return
    if isinstance(data, list):
        for item in data:
            yield from _jsonld_nodes(item, depth + 1)
    elif isinstance(data, dict):
        yield data
        yield from _jsonld_nodes(data.get("@graph"), depth + 1)


def _parse_datetime(value: str) -> datetime | None:
    """An ISO 8601 date/time as UTC (naive times taken as UTC), or None."""
    value = value.strip()
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        try:  # some pages state RFC 822 dates, as feeds do
            parsed = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except (OverflowError, ValueError):  # year 1 or 9999 pushed out of range by the offset
        return None
