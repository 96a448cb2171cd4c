"""Feed parsing (monitor.parse): the real corpus, hostile XML, fallbacks and entry_article."""

from __future__ import annotations

import csv
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor import parse
from monitor.article import MAX_TITLE_CHARS
from monitor.clean import html_to_text, looks_like_html
from monitor.errors import ParseError
from monitor.parse import Entry, entry_article, parse_feed

# Listed at collection time (the corpus fixture is only available inside tests); a missing
# corpus still yields one test, which then fails through the fixture.
_MANIFEST = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "feeds" / "manifest.tsv"


def _feed_files() -> list[str]:
    if not _MANIFEST.is_file():
        return ["<corpus missing>"]
    with _MANIFEST.open(encoding="utf-8") as f:
        return [row["file"] for row in csv.DictReader(f, delimiter="\t")]


def _manifest_urls(corpus: Path) -> dict[str, str]:
    with (corpus / "feeds" / "manifest.tsv").open(encoding="utf-8") as f:
        return {row["file"]: row["original_url"] for row in csv.DictReader(f, delimiter="\t")}


@pytest.mark.parametrize("name", _feed_files())
def test_corpus_feed_parses(corpus: Path, name: str) -> None:
    """Every corpus feed parses to entries with keys (link, guid or title) and aware dates."""
    feed = parse_feed((corpus / "feeds" / name).read_bytes(), _manifest_urls(corpus)[name])
    assert feed.entries
    keyed = sum(bool(e.link or e.guid or e.title) for e in feed.entries)
    assert keyed >= 0.9 * len(feed.entries)
    assert all(e.published is None or e.published.tzinfo is not None for e in feed.entries)


def test_corpus_titles_are_mostly_present(corpus: Path) -> None:
    """Across the corpus at least 99% of entries have a title, all plain one-line text."""
    titles = [
        e.title
        for path in sorted((corpus / "feeds").rglob("*"))
        if path.suffix in (".xml", ".json")
        for e in parse_feed(path.read_bytes()).entries
    ]
    assert len(titles) > 5000
    assert sum(bool(t) for t in titles) / len(titles) >= 0.99
    assert not [t for t in titles if "\n" in t or "<p>" in t]


def test_corpus_json_feed(corpus: Path) -> None:
    """The corpus's JSON Feed gives titles, links and dates."""
    feed = parse_feed((corpus / "feeds" / "ffp_benchmark" / "d4b7ab74da763119.json").read_bytes())
    assert feed.title == "Human Who Codes"
    first = feed.entries[0]
    assert first.title and first.link.startswith("https://humanwhocodes.com/")
    assert first.published is not None


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE rss [
  <!ENTITY lol "lol">
  <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
  <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
  <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
  <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
  <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
  <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
  <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<rss version="2.0"><channel><title>&lol9;</title>
<item><title>&lol9;</title><link>https://example.com/a</link></item></channel></rss>
"""
QUADRATIC_BLOWUP = (
    b'<?xml version="1.0"?>\n<!DOCTYPE rss [<!ENTITY a "'
    + b"x" * 100_000
    + b'">]>\n<rss version="2.0"><channel><item><title>'
    + b"&a;" * 100_000
    + b"</title></item></channel></rss>"
)
XXE_SYSTEM_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE rss SYSTEM "file:///etc/passwd">
<rss version="2.0"><channel><item><title>x</title></item></channel></rss>
"""
XXE_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE rss [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<rss version="2.0"><channel><item><title>&xxe;</title></item></channel></rss>
"""
XXE_AFTER_COMMENT = b"""<?xml version="1.0"?>
<!-- <!DOCTYPE decoy> -->
<?xml-stylesheet href="x.xsl"?>
<!DOCTYPE rss [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<rss version="2.0"><channel><item><title>&xxe;</title></item></channel></rss>
"""
XXE_AFTER_JUNK = b"HTTP/1.1 200 OK junk\n" + XXE_ENTITY
XXE_UTF16 = XXE_ENTITY.decode().replace('"1.0"?>', '"1.0" encoding="utf-16"?>').encode("utf-16")
# Read as Latin-1, "<\xe2" opens the root element and the walk stops there; read as the
# declared UTF-8, "<\u20ac" is stray text and the DOCTYPE after it counts.
XXE_AFTER_EURO = XXE_ENTITY.replace(b'"1.0"?>', b'"1.0" encoding="utf-8"?>\n<\xe2\x82\xac')
XXE_AFTER_BOM = b"\xef\xbb\xbf" + XXE_ENTITY.replace(b'"1.0"?>', b'"1.0" encoding="utf-8"?>')


@pytest.mark.parametrize(
    "data",
    [BILLION_LAUGHS, QUADRATIC_BLOWUP, XXE_SYSTEM_DTD, XXE_ENTITY, XXE_AFTER_COMMENT,
     XXE_AFTER_JUNK, XXE_UTF16, XXE_AFTER_EURO, XXE_AFTER_BOM],
    ids=["billion-laughs", "quadratic-blowup", "xxe-system", "xxe-entity", "xxe-late",
         "xxe-after-junk", "xxe-utf16", "xxe-after-euro", "xxe-after-bom"],
)  # fmt: skip
def test_hostile_doctype_is_refused(data: bytes) -> None:
    """Any DOCTYPE with an internal subset or SYSTEM reference is refused before parsing."""
    with pytest.raises(ParseError, match="DOCTYPE with entities; refused"):
        parse_feed(data)


def test_endless_prolog_is_refused() -> None:
    """A prolog longer than the scan window (which could hide a DOCTYPE) is refused."""
    data = b'<?xml version="1.0"?>\n<!--' + b"x" * 200_000 + b"-->" + XXE_ENTITY[22:]
    with pytest.raises(ParseError):
        parse_feed(data)


RSS_091_PUBLIC_DTD = b"""<?xml version="1.0" encoding="ISO-8859-1"?>
<!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN"
  "http://my.netscape.com/publish/formats/rss-0.91.dtd">
<rss version="0.91"><channel><title>Old news</title><link>http://old.example/</link>
<ttl>30</ttl>
<item><title>Caf\xe9 &amp; bar</title><link>http://old.example/a</link>
<description>Plain</description></item></channel></rss>
"""


def test_public_dtd_without_subset_parses() -> None:
    """An RSS 0.91 feed naming the Netscape DTD by PUBLIC id parses, charset honoured."""
    feed = parse_feed(RSS_091_PUBLIC_DTD)
    assert feed.title == "Old news"
    assert [e.title for e in feed.entries] == ["Café & bar"]
    assert feed.ttl_minutes == 30


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"   \n ",
        bytes(range(256)) * 40,
        b"\x89PNG\r\n\x1a\n" + b"\x00" * 500,
        b"<!DOCTYPE html><html><head><title>Home</title></head>"
        b"<body><h1>Welcome</h1><p>Not a feed.</p></body></html>",
        b'{"hello": "world"}',
        b"[1, 2, 3]",
        b'{"version": "https://jsonfeed.org/version/1.1", "items": [1, "x", null]}',
        b"\xff\xfe" + "<rss>".encode("utf-16-le") + b"\xd8",
    ],
    ids=["empty", "blank", "garbage", "png", "html", "json", "json-list", "json-bad-items",
         "bad-utf16"],
)  # fmt: skip
def test_non_feeds_raise_parse_error(data: bytes) -> None:
    """Bytes that hold no feed entries raise ParseError and nothing else."""
    with pytest.raises(ParseError):
        parse_feed(data)


def test_empty_but_valid_feed_has_no_entries() -> None:
    """A well-formed feed without items is a feed with zero entries, not an error."""
    feed = parse_feed(b'<rss version="2.0"><channel><title>Quiet</title></channel></rss>')
    assert feed.title == "Quiet"
    assert feed.entries == []


RSS_090 = b"""<?xml version="1.0"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"
         xmlns="http://my.netscape.com/rdf/simple/0.9/">
  <channel><title>Mozilla Dot Org</title><link>http://www.mozilla.org</link>
    <description>the Mozilla Organization web site</description></channel>
  <item><title>New Status Updates</title><link>http://www.mozilla.org/status/</link></item>
  <item><title>Bugzilla Reorganized</title><link>http://www.mozilla.org/bugs/</link></item>
</rdf:RDF>
"""

XHTML_ATOM = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml">Example <b>Feed</b></div></title>
  <link href="http://example.org/"/>
  <updated>2003-12-13T18:30:02Z</updated><id>urn:uuid:60a76c80</id>
  <entry>
    <title type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml">Atom <i>robots</i> run amok</div></title>
    <link href="http://example.org/2003/12/13/atom03?utm_source=feed"/>
    <id>urn:uuid:1225c695</id><updated>2003-12-13T18:30:02Z</updated>
    <content type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml"><p>Some <b>text</b>.</p></div></content>
  </entry>
</feed>
"""  # noqa: E501


def test_rss_090_parses_via_fallback() -> None:
    """RSS 0.90 (which fastfeedparser returns empty) parses through feedparser."""
    feed = parse_feed(RSS_090)
    assert [e.title for e in feed.entries] == ["New Status Updates", "Bugzilla Reorganized"]
    assert feed.entries[1].link == "http://www.mozilla.org/bugs/"


def test_xhtml_atom_parses_via_fallback() -> None:
    """XHTML-typed Atom titles and content survive (fallback), as plain text titles."""
    feed = parse_feed(XHTML_ATOM)
    (entry,) = feed.entries
    assert entry.title == "Atom robots run amok"
    assert entry.guid == "urn:uuid:1225c695"
    assert entry.published == datetime(2003, 12, 13, 18, 30, 2, tzinfo=UTC)
    article = entry_article(entry, source="example")
    assert article.text == "Some text."
    assert article.url == "http://example.org/2003/12/13/atom03"


RSS_FEED_LEVEL = b"""<?xml version="1.0"?>
<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom"
     xmlns:sy="http://purl.org/rss/1.0/modules/syndication/">
<channel><title>Site</title><link>https://site.example/</link>
<atom:link rel="hub" href="https://hub.example/"/>
<atom:link rel="self" href="https://site.example/feed"/>
<sy:updatePeriod>hourly</sy:updatePeriod><sy:updateFrequency>4</sy:updateFrequency>
<item><title>One</title><link>/news/one?utm_source=rss&amp;id=1</link>
<guid isPermaLink="false">site-1</guid>
<pubDate>Wed, 01 Dec 2021 12:06:00 +0530</pubDate>
<description><![CDATA[<p>First <b>para</b> &amp; more.</p><script>alert(1)</script><p>Second</p>]]></description>
<atom:link rel="hub" href="https://not-the-hub.example/"/>
</item>
<item><title>Two</title><link>https://site.example/two</link></item>
<item><title>Three</title><link>https://site.example/three</link></item>
</channel></rss>
"""  # noqa: E501


def test_feed_level_hub_ttl_and_relative_links() -> None:
    """Hub and sy:update* are read from the channel; relative links resolve to the feed URL."""
    feed = parse_feed(RSS_FEED_LEVEL, "https://site.example/feed")
    assert feed.hub == "https://hub.example/"
    assert feed.ttl_minutes == 15
    first = feed.entries[0]
    assert first.link == "https://site.example/news/one?utm_source=rss&id=1"
    assert first.guid == "site-1"
    assert first.published == datetime(2021, 12, 1, 6, 36, tzinfo=UTC)


def _filler(chars: int) -> bytes:
    return b"<description>" + b"x" * chars + b"</description>\n"


@pytest.mark.parametrize(
    "pad",
    [0, 3_900, 3_960, 3_990, 4_000, 4_020, 4_090, 10_000, 70_000],
)
def test_channel_read_alike_on_either_side_of_the_short_head(pad: int) -> None:
    """Hub, ttl and entries come out the same whether the first item (or the hub after a
    long channel) falls within the short head that parse_feed reads first or past it."""
    head, rest = RSS_FEED_LEVEL.split(b"<item>", 1)
    data = head + _filler(pad) + b"<item>" + rest
    feed = parse_feed(data, "https://site.example/feed")
    assert (feed.hub, feed.ttl_minutes) == ("https://hub.example/", 15)
    assert [e.title for e in feed.entries] == ["One", "Two", "Three"]
    moved = head.replace(b'<atom:link rel="hub" href="https://hub.example/"/>', b"")
    late = moved + _filler(pad) + b'<atom:link rel="HUB x" href="https://hub.example/"/>'
    feed = parse_feed(late + b"<item>" + rest, "https://site.example/feed")
    expected = "https://hub.example/" if pad < 60_000 else None  # past the 64 K head
    assert feed.hub == expected


@pytest.mark.parametrize("pad", [3_950, 4_000, 4_080, 4_090, 70_000])
def test_prolog_refusals_hold_across_the_short_head(pad: int) -> None:
    """A DOCTYPE with entities, or a comment running past the scan, is refused wherever
    it ends relative to the short head."""
    body = RSS_FEED_LEVEL.split(b"?>", 1)[1]
    comment = b"<?xml version='1.0'?><!--" + b"x" * pad + b"-->"
    doctype = comment + b"<!DOCTYPE rss [<!ENTITY a 'b'>]>" + body
    with pytest.raises(ParseError, match=r"DOCTYPE|too long"):
        parse_feed(doctype)
    feed_after_comment = comment + body
    if pad < 60_000:
        assert len(parse_feed(feed_after_comment).entries) == 3
    else:
        with pytest.raises(ParseError, match="too long"):
            parse_feed(feed_after_comment)


def test_odd_dates_do_not_break_the_feed() -> None:
    """Unreadable or out-of-range dates give published=None, and the feed still parses."""
    items = "".join(
        f"<item><title>t{i}</title><pubDate>{d}</pubDate></item>"
        for i, d in enumerate(
            ["not a date", "Mon, 01 Jan 0001 00:00:00 +0100", "9999-12-31T23:59:59-05:00", ""]
        )
    )
    feed = parse_feed(f"<rss version='2.0'><channel>{items}</channel></rss>".encode())
    assert [e.title for e in feed.entries] == ["t0", "t1", "t2", "t3"]
    assert all(e.published is None for e in feed.entries)


def test_max_entries_caps_the_entry_list() -> None:
    """No more than max_entries entries come back, in feed order."""
    feed = parse_feed(RSS_FEED_LEVEL, max_entries=2)
    assert [e.title for e in feed.entries] == ["One", "Two"]


def test_long_titles_and_html_are_capped() -> None:
    """A 1 MB title is cut to 2,000 characters and entry HTML to 1 MB."""
    huge = b"<rss version='2.0'><channel><item><title>" + b"t" * 1_000_000 + b"</title>"
    huge += b"<description>" + b"d" * 3_000_000 + b"</description></item></channel></rss>"
    (entry,) = parse_feed(huge).entries
    assert len(entry.title) == 2_000
    assert len(entry.summary_html) == 1_000_000


def test_entry_article_text_and_link() -> None:
    """entry_article turns summary HTML into text and strips tracking params from the link."""
    entry = parse_feed(RSS_FEED_LEVEL, "https://site.example/feed").entries[0]
    article = entry_article(entry, source="site")
    assert article.text == "First para & more.\nSecond"
    assert article.summary == "First para & more.\nSecond"
    assert article.url == "https://site.example/news/one?id=1"
    assert article.source == "site"
    assert article.guid == "site-1"
    assert article.published == datetime(2021, 12, 1, 6, 36, tzinfo=UTC)


def test_entry_article_prefers_content_and_unwraps_double_escaping() -> None:
    """Content wins over summary; HTML escaped twice by the feed still becomes text."""
    entry = Entry(
        title="T",
        link="javascript:alert(1)",
        guid="g",
        published=None,
        summary_html="Short summary",
        content_html="&lt;p&gt;Full &lt;b&gt;body&lt;/b&gt;&lt;/p&gt;",
        author="",
    )
    article = entry_article(entry, source="s")
    assert article.text == "Full body"
    assert article.summary == "Short summary"
    assert article.url == ""  # never a javascript: URL


# --- raw control characters and escaped titles ---------------------------------------------

CONTROLS = [b"\x00", b"\x01", b"\x08", b"\x0b", b"\x0c", b"\x0e", b"\x1b", b"\x1f"]


def _rss(bad: bytes) -> bytes:
    return (
        b'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>t</title>'
        b"<item><title>One" + bad + b"title</title><link>http://a.example/1</link>"
        b"<description><![CDATA[<p>before" + bad + b"after</p>]]></description></item>"
        b"<item><title>Two</title><link>http://a.example/2</link>"
        b"<description>plain" + bad + b"text \xc3\xa9t\xc3\xa9</description></item>"
        b"</channel></rss>"
    )


def _atom(bad: bytes) -> bytes:
    return (
        b'<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>t</title>'
        b'<entry><title>One</title><link href="http://a.example/1"/><id>1</id>'
        b'<content type="html">&lt;p&gt;before' + bad + b"after&lt;/p&gt;</content></entry>"
        b'<entry><title>Two</title><link href="http://a.example/2"/><id>2</id>'
        b"<summary>plain" + bad + b"text</summary></entry></feed>"
    )


def _json(bad: bytes) -> bytes:
    return (
        b'{"version": "https://jsonfeed.org/version/1.1", "title": "t", "items": ['
        b'{"id": "1", "url": "http://a.example/1", "title": "One", '
        b'"content_html": "<p>before' + bad + b'after</p>"}, '
        b'{"id": "2", "url": "http://a.example/2", "title": "Two", '
        b'"content_text": "plain' + bad + b'text"}]}'
    )


@pytest.mark.parametrize("bad", CONTROLS)
@pytest.mark.parametrize("build", [_rss, _atom, _json])
def test_a_raw_control_character_loses_no_text_and_no_entry(
    build: Callable[[bytes], bytes], bad: bytes
) -> None:
    """XML and JSON forbid it and parsers stopped at it: a stray \\x01 in one description
    dropped the text before it and every entry after it. It is read as a space."""
    entries = parse_feed(build(bad), "http://a.example/feed").entries
    assert [e.link for e in entries] == ["http://a.example/1", "http://a.example/2"]
    texts = [entry_article(e, source="t").text for e in entries]
    assert texts[0] == "before after"
    assert texts[1].startswith("plain text")


def test_wide_and_iso_2022_feeds_keep_their_bytes() -> None:
    """UTF-16 (NUL in every ASCII character) and ISO-2022-JP (ESC switches its character
    sets) are not touched by the control-character clean-up, and read as before."""
    rss = (
        '<?xml version="1.0" encoding="{enc}"?><rss version="2.0"><channel><title>t</title>'
        "<item><title>東京の天気</title><link>http://a.example/1</link>"
        "<description>晴れ</description></item></channel></rss>"
    )
    for enc in ("utf-16", "iso-2022-jp"):
        entries = parse_feed(rss.format(enc=enc).encode(enc), "http://a.example/f").entries
        assert [(e.title, e.summary_html) for e in entries] == [("東京の天気", "晴れ")], enc


@pytest.mark.parametrize(
    ("raw", "title"),
    [
        (b"Tom &amp;amp; Jerry", "Tom & Jerry"),  # escaped twice, as RSS titles often are
        (b"Caf&amp;eacute; &amp;#8220;open&amp;#8221;", "Caf\u00e9 \u201copen\u201d"),
        (b"a&amp;#1;b", "ab"),  # a control character by reference: gone, never raw
        (b"R&amp;D &lt; 5%", "R&D < 5%"),
        (b"AT&amp;T", "AT&T"),
        # HTML's legacy entities ("&reg", "&not") are read only with their semicolon.
        (b"Sales&amp;regional growth", "Sales&regional growth"),
        (b"Q&amp;A &amp;notes", "Q&A &notes"),
        (b"caf&amp;eacute;", "caf\u00e9"),
    ],
)
def test_titles_are_unescaped_once_more(raw: bytes, title: str) -> None:
    feed = (
        b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title><item><title>'
        + raw
        + b"</title><link>http://a.example/1</link></item></channel></rss>"
    )
    assert parse_feed(feed, "http://a.example/f").entries[0].title == title


def test_declared_iso_2022_alias_keeps_its_bytes() -> None:
    """An ISO-2022 feed declared by an alias (csISO2022JP) is left alone too."""
    rss = (
        '<?xml version="1.0" encoding="csISO2022JP"?><rss version="2.0"><channel><title>t'
        "</title><item><title>東京の天気</title><link>http://a.example/1</link>"
        "</item></channel></rss>"
    )
    entries = parse_feed(rss.encode("iso-2022-jp"), "http://a.example/f").entries
    assert [e.title for e in entries] == ["東京の天気"]


@pytest.mark.parametrize(
    ("content", "text"),
    [
        (
            "\uff1c\uff2e\uff39\uff33\uff25\uff1e\u30c0\u30a6\u5e73\u5747",
            "<NYSE>\u30c0\u30a6\u5e73\u5747",
        ),
        ("<p>\uff1c\uff22\uff1e\u901f\u5831\uff1c\uff0f\uff22\uff1e</p>", "<B>\u901f\u5831</B>"),
        ("&lt;p&gt;Hello &lt;b&gt;world&lt;/b&gt;&lt;/p&gt;", "Hello world"),  # escaped twice
        ("<p>one\u2028two\u2029three\x85four</p>", "one\ntwo\nthree\nfour"),
    ],
)
def test_entry_text_edge_cases(content: str, text: str) -> None:
    """Fullwidth brackets are text, not a tag to strip (NFKC makes them ASCII, so the
    check for HTML escaped twice looks before normalising); Unicode line and paragraph
    separators end lines."""
    entry = Entry("t", "http://a.example/1", "", None, "", content, "")
    assert entry_article(entry, source="t").text == text


def _reference_title(value: object) -> str:
    """monitor.parse._title as it was before its fast paths (do not "fix")."""
    title = (value.strip() if isinstance(value, str) else "")[: MAX_TITLE_CHARS * 4]
    if looks_like_html(title):
        title = html_to_text(title)
    elif "&" in title:
        title = parse._ENTITY.sub(parse._unescaped, title)
    return " ".join(title.split())[:MAX_TITLE_CHARS]


_TITLE_CHARS = st.sampled_from(
    ["a", "Z", " ", "  ", "\t", "\n", "\r", "\x0b", "\x1c", "\x85", "\xa0", "\u2003", "\u2028",
     "\u3000", "\u200b", "<", ">", "<b>", "</b>", "&amp;", "&", "&#32;", "&nbsp;", "\u00e9"]
)  # fmt: skip


@given(st.lists(_TITLE_CHARS, max_size=30).map("".join))
def test_titles_as_reference(title: str) -> None:
    """A title comes out as the plain split-and-join of its text did, whatever whitespace
    it holds (the fast path keeps only printable single-spaced titles as they are)."""
    assert parse._title(title) == _reference_title(title)


@pytest.mark.parametrize("pad", ["", " ", "  x", "\u00a0y"])
def test_title_cut_at_a_space_is_stripped(pad: str) -> None:
    """A title cut at MAX_TITLE_CHARS * 4 on a space, or one longer than the cap, comes out
    as the reference's."""
    title = "w " * (MAX_TITLE_CHARS * 2) + pad
    assert parse._title(title) == _reference_title(title)
    assert len(parse._title(title)) <= MAX_TITLE_CHARS
