"""Inert text and bounded work: logs, Slack, links, titles, normalisation, regex rules, XML tricks.

Feed text reaches logs, Slack and the hit JSON; none of it may forge a log line, ping a channel,
become a ``javascript:`` link or cost unbounded time or memory. The XML tricks here are the
encodings a parser honours but a naive prolog check would not read.
"""

from __future__ import annotations

import json
import re
import time
import unicodedata
from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest
import structlog
from aiohttp import web
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor import logs
from monitor.article import MAX_TITLE_CHARS, Article
from monitor.clean import extract, html_to_text
from monitor.errors import ParseError
from monitor.hit import build_hit
from monitor.parse import MAX_URL_CHARS, entry_article, parse_feed
from monitor.rules import RuleSet
from monitor.sinks.slack import SlackSink
from monitor.textnorm import _FOLD, MAX_CHARS, normalize
from tests.e2e import serve

FORGED = "ok\nfake level=error event=forged\r\x1b[31mred\x1b[0m \u202eevil\u2028x\u0085y\x00z\tq"
PATHOLOGICAL_RULE = """\
rules:
  - id: pathological
    name: Backtracking bait
    query: '/^(([a-z])+.)+[A-Z]([a-z])+$/'
"""
KOREA_RULE = """\
rules:
  - id: korea
    name: Korea <!channel> rule
    query: '"South Korea" AND "operational control"'
"""


# -- logs ---------------------------------------------------------------------------------------


@pytest.fixture
def configured_logs() -> Iterator[None]:
    """structlog set up by monitor.logs for this test only."""
    yield
    structlog.reset_defaults()


@pytest.mark.parametrize("as_json", [True, False], ids=["json", "console"])
def test_log_values_cannot_forge_lines_or_escape_codes(
    configured_logs: None, capsys: pytest.CaptureFixture[str], as_json: bool
) -> None:
    """Newlines, CR, ANSI, bidi, U+2028 and NUL in values are escaped in both renderers."""
    logs.configure(json=as_json)
    logs.get_logger(feed=FORGED).warning("polled", error=FORGED, title="t" * 2000)
    out = capsys.readouterr().err
    assert out.count("\n") == 1 and out.endswith("\n")
    for raw in ("\r", "\x1b", "\u202e", "\u2028", "\u0085", "\x00", "\t"):
        assert raw not in out
    if as_json:
        line = json.loads(out)
        assert line["error"].startswith("ok\\u000afake") and len(line["title"]) <= 501


def test_log_tracebacks_keep_lines_but_lose_escape_codes(
    configured_logs: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """An exception carrying feed text is logged without raw escape or bidi characters."""
    logs.configure(json=False)
    try:
        raise ValueError(FORGED)
    except ValueError:
        logs.get_logger().exception("poll failed")
    out = capsys.readouterr().err
    assert "Traceback" in out and "\x1b" not in out and "\u202e" not in out


# -- Slack --------------------------------------------------------------------------------------


@pytest.fixture
async def slack_receiver() -> AsyncIterator[tuple[str, list[bytes]]]:
    """A local stand-in for Slack's incoming webhook, keeping raw bodies."""
    bodies: list[bytes] = []

    async def hook(request: web.Request) -> web.Response:
        bodies.append(await request.read())
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/services/{tail:.*}", hook)
    async with serve(app) as server:
        yield f"http://127.0.0.1:{server.port}/services/T0/B0/SECRET", bodies


async def test_slack_message_from_hostile_article_is_inert(
    slack_receiver: tuple[str, list[bytes]],
) -> None:
    """Mentions, link syntax and a javascript: URL in feed text reach Slack as plain text."""
    url, bodies = slack_receiver
    hostile = "<!channel> <!here> <@U0ADMIN> <https://evil.test|Reset password> *bold*"
    article = Article(
        title=f"South Korea {hostile}",
        text=f"{hostile} South Korea seeks operational control <!everyone>.",
        url="javascript:alert(1)",
        source=hostile,
    )
    match = RuleSet.from_source(KOREA_RULE).match(article)[0]
    hit = build_hit(match, article, "s_test")
    async with aiohttp.ClientSession() as session:
        sink = SlackSink("desk", url, session=session, min_interval=0)
        await sink.send(hit)
        await sink.close()
    raw = bodies[0].decode()
    for live in ("<!channel>", "<!here>", "<!everyone>", "<@U0ADMIN>", "<https://evil.test|"):
        assert live not in raw
    assert "<javascript:" not in raw and "|javascript" not in raw


# -- rules --------------------------------------------------------------------------------------


def test_pathological_regex_is_linear_on_100kb() -> None:
    """/^(([a-z])+.)+[A-Z]([a-z])+$/ against 100 KB of 'a' returns no match in well under 2 s."""
    rules = RuleSet.from_source(PATHOLOGICAL_RULE)
    article = Article(title="a" * 100, text="a" * 100_000)
    started = time.monotonic()
    assert rules.match(article) == []
    assert time.monotonic() - started < 2.0


# -- links, titles, sizes -----------------------------------------------------------------------


def rss_item(title: str = "t", link: str = "http://x.test/1", guid: str = "") -> bytes:
    guid_tag = f"<guid>{guid}</guid>" if guid else ""
    return (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>c</title>'
        f"<item><title>{title}</title><link>{link}</link>{guid_tag}"
        "<description>d</description></item></channel></rss>"
    ).encode()


@pytest.mark.parametrize(
    "link",
    [
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        " javascript:alert(1)",
        "java&#x09;script:alert(1)",
        "data:text/html;base64,PHNjcmlwdD4=",
        "vbscript:msgbox(1)",
        "file:///etc/passwd",
        "http://" + "a" * MAX_URL_CHARS + ".test/",
    ],
)
def test_non_http_entry_links_come_out_empty(link: str) -> None:
    """An entry link that is not a usable http(s) URL is never emitted as a link."""
    entry = parse_feed(rss_item(link=link), "http://feed.test/rss").entries[0]
    assert entry.link == ""
    assert entry_article(entry, source="s").url == ""


def test_relative_entry_link_is_resolved() -> None:
    """A relative link still becomes an absolute http(s) link."""
    entry = parse_feed(rss_item(link="/story/1"), "https://feed.test/rss").entries[0]
    assert entry.link == "https://feed.test/story/1"


def test_megabyte_title_and_guid_are_bounded() -> None:
    """A 1 MB title is cut to MAX_TITLE_CHARS; a 1 MB guid becomes a short stable hash."""
    data = rss_item(title="T" * 2**20, guid="g" * 2**20)
    entry = parse_feed(data).entries[0]
    assert len(entry.title) == MAX_TITLE_CHARS
    assert entry.guid.startswith("sha256:") and len(entry.guid) == 71
    assert parse_feed(data).entries[0].guid == entry.guid


def test_normalize_caps_its_input() -> None:
    """normalize reads at most MAX_CHARS characters, even when NFKC would lengthen them."""
    assert len(normalize("x" * (3 * MAX_CHARS))) == MAX_CHARS
    assert len(normalize("\ufdfa" * MAX_CHARS)) <= MAX_CHARS  # one char, 18 after NFKC
    text = normalize("\ufdfa" * 100)
    assert normalize(text) == text


# -- XML tricks the prolog check must read ------------------------------------------------------

ENTITY_DOC = (
    '<!DOCTYPE rss [<!ENTITY a "AAAAAAAAAA"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
    '<rss version="2.0"><channel><title>t</title><item><title>&b;&b;</title>'
    "<link>http://x.test/1</link></item></channel></rss>"
)
XXE_DOC = (
    '<!DOCTYPE rss [<!ENTITY x SYSTEM "file:///etc/passwd">]><rss version="2.0"><channel>'
    "<item><title>&x;</title></item></channel></rss>"
)
PARAM_DOC = (
    '<!DOCTYPE rss [<!ENTITY % p SYSTEM "http://127.0.0.1:1/evil.dtd"> %p;]>'
    '<rss version="2.0"><channel><item><title>t</title></item></channel></rss>'
)


def _decl(encoding: str) -> str:
    return f'<?xml version="1.0" encoding="{encoding}"?>\n'


@pytest.mark.parametrize(
    "data",
    [
        pytest.param((_decl("UTF-16") + ENTITY_DOC).encode("utf-16"), id="utf16-bom"),
        pytest.param((_decl("UTF-16LE") + ENTITY_DOC).encode("utf-16-le"), id="utf16le-decl"),
        pytest.param((_decl("UTF-16BE") + ENTITY_DOC).encode("utf-16-be"), id="utf16be-decl"),
        pytest.param(ENTITY_DOC.encode("utf-16-le"), id="utf16le-bare"),
        pytest.param(ENTITY_DOC.encode("utf-16-be"), id="utf16be-bare"),
        pytest.param(ENTITY_DOC.encode("utf-32"), id="utf32-bom"),
        pytest.param(ENTITY_DOC.encode("utf-32-be"), id="utf32be-bare"),
        pytest.param(b"\xef\xbb\xbf" + ENTITY_DOC.encode(), id="utf8-bom"),
        pytest.param(_decl("UTF-7").encode() + ENTITY_DOC.encode("utf-7"), id="utf7"),
        pytest.param((_decl("cp037") + ENTITY_DOC).encode("cp037"), id="ebcdic"),
        pytest.param(("<!-- c -->" * 50 + ENTITY_DOC).encode(), id="after-comments"),
        pytest.param(("<?pi x?>\n<!--a-->\n<?y?>" + ENTITY_DOC).encode(), id="after-pis"),
        pytest.param((" \n\t" + ENTITY_DOC.replace("DOCTYPE", "doctype")).encode(), id="case"),
        pytest.param(XXE_DOC.encode(), id="xxe"),
        pytest.param(XXE_DOC.encode("utf-16"), id="xxe-utf16"),
        pytest.param(PARAM_DOC.encode(), id="parameter-entity"),
        pytest.param(
            b'<!DOCTYPE rss SYSTEM "file:///etc/passwd"><rss version="2.0"/>', id="system-id"
        ),
        pytest.param(
            b'<!DOCTYPE rss PUBLIC "x" "http://127.0.0.1:1/x.dtd" [<!ENTITY a "b">]><rss/>',
            id="public-with-subset",
        ),
    ],
)
def test_entity_declarations_are_refused_in_every_encoding(data: bytes) -> None:
    """A DOCTYPE with entities is refused however the prolog is encoded or hidden."""
    with pytest.raises(ParseError, match="DOCTYPE"):
        parse_feed(data)


def test_prolog_hidden_behind_a_huge_comment_is_refused() -> None:
    """A comment longer than the scan window is refused (a DOCTYPE could hide behind it)."""
    data = ("<!--" + "x" * 70_000 + "-->" + ENTITY_DOC).encode()
    with pytest.raises(ParseError, match="too long"):
        parse_feed(data)


def test_plain_public_doctype_is_still_accepted() -> None:
    """RSS 0.91's PUBLIC DOCTYPE without a subset parses as before."""
    data = (
        b'<?xml version="1.0"?><!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN"'
        b' "http://my.netscape.com/publish/formats/rss-0.91.dtd"><rss version="0.91"><channel>'
        b"<title>c</title><item><title>ok</title><link>http://x.test/1</link></item>"
        b"</channel></rss>"
    )
    assert parse_feed(data).entries[0].title == "ok"


def test_utf16_feed_without_doctype_still_parses() -> None:
    """The wider prolog reading does not refuse honest UTF-16 feeds."""
    doc = _decl("UTF-16") + (
        '<rss version="2.0"><channel><title>c</title><item><title>héllo</title>'
        "<link>http://x.test/1</link></item></channel></rss>"
    )
    assert parse_feed(doc.encode("utf-16")).entries[0].title == "héllo"


def test_page_title_of_a_megabyte_is_cut() -> None:
    """A hostile page's 1 MB og:title is cut to MAX_TITLE_CHARS by extract."""
    huge = "A" * 1_000_000
    html = (
        f'<html><head><meta property="og:title" content="{huge}"></head>'
        "<body><article><p>" + "Real text of the story. " * 40 + "</p></article></body></html>"
    )
    assert len(extract(html).title) == MAX_TITLE_CHARS


@pytest.mark.parametrize(
    "text",
    [
        "a  b\tc\u00a0d\u3000e\u1680f\u2028g\u2029h",
        " lead\n\n  \n trail \r\n x\ry \x0b\x0c\x1c\x85 z ",
        "\u201cquoted\u201d \u2018single\u2019 dash\u2014 minus\u2212 \u00abguillemets\u00bb",
        "zero\u200bwidth\u00adsoft\ufeff and \x00\x07 controls\x7f\x9f",
        "plain ascii with single spaces\nand lines",
        "\ufb01ligature \u2163 \uff21",
    ],
)
def test_normalize_fast_paths_agree_with_every_step(text: str) -> None:
    """normalize equals applying every step unconditionally (its shortcuts change nothing)."""
    assert normalize(text) == every_step(text)


# Every kind of character a step of normalize treats: spaces, controls, line breaks,
# invisibles, quotes and dashes, compatibility forms, combining marks.
AWKWARD = (
    "ab \n\r\t\x00\x01\x08\x0b\x0c\x0e\x1b\x1c\x1f\x7f\x80\x85\x9f\xa0\u1680\u2000\u2007"
    "\u200a\u200b\u200d\u2028\u2029\u202f\u205f\u3000\ufeff\u00ad\ufb01\u2163\uff21\u2019"
    "\u201c\u2014\u2212\ufdfa\u0301e\u00e9\u2026\u0308\u0338.\ufe0f\u2764"
)


@settings(max_examples=2000, deadline=None)
@given(st.text(alphabet=AWKWARD, max_size=16))
def test_normalize_of_any_text_equals_every_step(text: str) -> None:
    """Also on text made of the awkward characters only; and normalising is idempotent
    (a copy is normalised again, the very string answered from the per-thread record of
    recent results): "a\u200b\u0301" once gave "a\u0301", which normalises to "\u00e1"."""
    once = normalize(text)
    assert once == every_step(text)
    padded = "x" * 64 + text  # mostly ASCII: only the non-ASCII characters are scanned
    assert normalize(padded) == every_step(padded)
    assert normalize(once) == once
    assert normalize(once + "") == once  # the same string, not a copy: answered at once
    assert normalize(once[:-1] + once[-1:]) == once  # a copy: normalised again


# Latin-1 only, mostly ASCII (normalize then scans only the non-ASCII characters): C1
# controls, soft hyphen, guillemets, and characters NFKC takes out of Latin-1 ("¼" to "1⁄4",
# "´" to a space and a combining accent).
LATIN1 = "ab \n\r\t\x00\x80\x85\x9f\xa0\xad\xab\xbb\xbc\xb4\xaa\xb5\xe9e\xff"


@settings(max_examples=1000, deadline=None)
@given(st.text(alphabet=LATIN1, max_size=16))
def test_normalize_of_latin1_text_equals_every_step(text: str) -> None:
    """Text scanned by its non-ASCII characters only ends where every step does too."""
    assert normalize(text) == every_step(text)
    padded = "y" * 64 + text
    assert normalize(padded) == every_step(padded)


def every_step(text: str) -> str:
    """What normalize promises, each step applied unconditionally."""
    full = re.sub(
        "[\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff\u00ad\ufe00-\ufe0f]", "", text
    )
    full = unicodedata.normalize("NFKC", full).translate(str.maketrans(_FOLD))
    full = full.replace("\r\n", "\n").replace("\r", "\n")
    full = re.sub("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]", " ", full)
    return re.sub(r"\s*\n\s*", "\n", re.sub(r"[^\S\n]+", " ", full)).strip()


@pytest.mark.parametrize("bad", ["\x00", "\x08", "\x1f", "\ufffe", "\uffff"])
def test_html_to_text_replaces_control_characters(bad: str) -> None:
    """Characters libxml2 refuses are replaced before parsing, wherever they sit."""
    assert html_to_text(f"<p>one{bad}two</p><p>three</p>") == "one two\nthree"
