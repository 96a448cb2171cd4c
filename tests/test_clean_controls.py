"""Control characters written as character references, in entries, pages and feeds.

libxml2 decodes ``&#1;`` into the tree and lxml then refuses that text back, so such a
reference once made :func:`monitor.clean.html_to_text` raise and its entry go unmatched.
"""

from __future__ import annotations

import re

import pytest

from monitor.clean import extract, html_to_text
from monitor.parse import entry_article, parse_feed

# What the module promises never to return: C0 controls but tab/LF/CR, U+FFFE, U+FFFF.
CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
CODE_POINTS = [
    *range(0x00, 0x21),
    0x7F, 0x80, 0x9F, 0xD800, 0xDBFF, 0xDC00, 0xDFFF, 0xFFFD, 0xFFFE, 0xFFFF,
    0x10FFFF, 0x110000, 1114112, 10**20,
]  # fmt: skip


def _references(cp: int) -> list[str]:
    return [f"&#{cp};", f"&#x{cp:x};", f"&#X{cp:X};", f"&#000{cp};", f"&#x00{cp:X}", f"&#{cp}"]


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        ("<p>a&#1;b</p>", "a b"),
        ("<p>a&#0;b</p>", "a b"),
        ("<p>a&#x1F;b</p>", "a b"),
        ("<p>a&#12;b</p>", "a b"),
        ("<p>a&#xFFFE;b</p>", "a b"),
        ("<p>a&#65535;b</p>", "a b"),
        ("<p>a&#x0001;b</p>", "a b"),
        ("<p>a&#1</p><p>c</p>", "a\nc"),
        ("<p><b>in&#8;line</b> text</p>", "in line text"),
        ("<p>a&#xD800;b</p>", "a\ufffdb"),
        ("<p>a&#1114112;b</p>", "a\ufffdb"),
        ("<p>tab&#9;lf&#10;cr&#13;kept</p>", "tab lf\ncr\nkept"),
        ("<p>&#38;&#60;&#8217;&#x2014;</p>", "&<'-"),  # decoded, then normalised
        ("a&#1;b plain text", "a b plain text"),
        ("&#x1F;", ""),
    ],
)
def test_control_references_in_entry_html(html: str, expected: str) -> None:
    """A reference to a control character becomes a space, as a raw one does; others decode."""
    assert html_to_text(html) == expected


@pytest.mark.parametrize("cp", CODE_POINTS)
def test_html_to_text_never_raises_on_references(cp: int) -> None:
    """Every spelling of every awkward code point gives text free of control characters."""
    for ref in _references(cp):
        for html in (f"<p>a{ref}b</p>", f"<div><span>x{ref}</span></div>y", f"a{ref}b"):
            text = html_to_text(html)
            assert not CONTROL.search(text), (html, text)
            assert text.startswith(("a", "x")), (html, text)


ARTICLE = (
    "<html><head><title>Title{ref}here</title>"
    '<meta name="description" content="Desc{ref}here"></head><body>'
    "<article><h1>Head</h1>{body}</article></body></html>"
)
PARA = (
    "<p>The committee met on Tuesday to weigh the proposal{ref} in detail, and members said "
    "the decision would come after a second reading next month, once the figures are in.</p>"
)


@pytest.mark.parametrize("ref", ["&#1;", "&#x1f;", "&#xFFFE;", "&#65535", "&#0;", "&#xD800;"])
@pytest.mark.parametrize("paragraphs", [1, 6])  # 1: short, so readability runs as well
def test_extract_drops_control_references(ref: str, paragraphs: int) -> None:
    """A page with control references in title, description and body extracts cleanly."""
    html = ARTICLE.format(ref=ref, body=PARA.format(ref=ref) * paragraphs)
    for page in (html, html.encode()):
        article = extract(page, url="https://site.example/a")
        assert "committee met on Tuesday" in article.text
        for field in (article.text, article.title, article.summary):
            assert not CONTROL.search(field), field
        assert article.title.startswith("Title") and article.summary.startswith("Desc")


def _rss(description: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>F</title>'
        "<link>https://feed.example/</link><item><title>Entry</title>"
        "<link>https://feed.example/1</link><guid>1</guid>"
        f"<description>{description}</description></item></channel></rss>"
    ).encode()


@pytest.mark.parametrize(
    "description",
    [
        "&lt;p&gt;South&amp;#1;Korea&lt;/p&gt;",  # escaped HTML
        "<![CDATA[<p>South&#x1F;Korea</p>]]>",
        "&amp;lt;p&amp;gt;South&amp;amp;#xFFFE;Korea&amp;lt;/p&amp;gt;",  # escaped twice
        "South&amp;#12;Korea",  # plain text
    ],
)
def test_feed_entry_with_control_reference_is_matched_text(description: str) -> None:
    """Through the feed parser, such an entry yields its text instead of an error."""
    (entry,) = parse_feed(_rss(description), "https://feed.example/rss").entries
    article = entry_article(entry, source="feed")
    assert article.text == "South Korea"
