"""The C pass that reads an entry's HTML into text (monitor/_htmltext.c).

Table-driven for what it reads how; a differential test against ``html.unescape`` for
references; properties (never raises, never longer than its input, no control character
out) on generated and hostile input.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor._htmltext import text
from monitor.clean import html_text, html_to_text
from monitor.parse import parse_feed

# What the pass never writes: C0 controls but tab/LF/CR, U+FFFE, U+FFFF, NEL, the Unicode line
# and paragraph separators (made newlines) and lone surrogates (made U+FFFD).
NEVER = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x85\u2028\u2029\ufffe\uffff\ud800-\udfff]")


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        # tags, blocks and line breaks
        ("<p>One</p><p>Two <b>bold</b></p>", "\nOne\n\nTwo bold\n"),
        ("a<br>b<br/>c</br>d", "a\nb\nc\nd"),
        ("<CENTER>x</Center>y", "\nx\ny"),
        ("<a href=\"x>y\" title='<p>'>link</a>", "link"),  # ">" and "<" in quoted values
        ("<a href=x>y</a>", "y"),
        ("<p\tclass=x\n>t", "\nt"),
        ("<p a=1 / b='2'/>t", "\nt"),
        ("a<b", "a"),  # input ending inside a tag: the tag is dropped (HTML5)
        ('a<p title="never closed>b', "a"),
        ("a < b > c", "a < b > c"),
        ("a<1>b", "a<1>b"),
        ("a</>b", "ab"),
        ("a</ b>c", "ac"),  # bogus comment
        # comments, doctypes, processing instructions
        ("a<!-- x -->b", "ab"),
        ("a<!-->b-->c", "ab-->c"),
        ("a<!--->b", "ab"),
        ("a<!-- x --!>b", "ab"),
        ("a<!-- never closed", "a"),
        ("<!DOCTYPE html>a<?php echo 1 ?>b<![CDATA[c]]>d", "abd"),
        # dropped content
        ("a<script>if (a<b && c) x = '</p>';</script>b", "ab"),
        ("a<SCRIPT type=x>y</SCRIPT >b", "ab"),
        ("a<style>p{}</style>b<title>t</title>c", "abc"),
        ("a<script>never closed <p>b", "a"),
        ('a<script src="x.js"/>b<style/>c', "abc"),  # self-closing, as XML writes them
        ("a<svg><text>no</text><svg><g/></svg>still</svg>b", "ab"),
        ("a<svg/>b<math/>c", "abc"),
        ("a<svg>x</svg/>b", "ab"),  # "/" on an end tag means nothing
        ("a<script\x00>hidden</script>shown", "ahiddenshown"),  # no element is "script\0"
        ("a<template><p>t</p></template>b", "ab"),
        ("a<svg><script>'</svg>'</script></svg>b", "ab"),  # raw text inside dropped markup
        ("a<head>shown</head>b", "ashownb"),  # a stray head in an entry is no container
        ("a<noscript>no scripts run here</noscript>b", "ano scripts run hereb"),
        # content kept as written
        ("a<xmp><b>x</b></xmp>c", "a<b>x</b>c"),
        ("a<textarea>t&amp;<b>x</textarea>b", "at&<b>xb"),
        ("a<plaintext><b>z</b>&amp;", "a<b>z</b>&amp;"),
        ("a<iframe>fallback</iframe>b", "afallbackb"),
        # references
        ("AT&amp;T &lt;3 caf&eacute;", "AT&T <3 café"),
        ("Sales&regional &ampx &notit; &notin;", "Sales®ional &x ¬it; ∉"),
        ("&#38; &#x26; &#X26 &#38 &#; &#x; &# &", "& & & & &#; &#x; &# &"),
        ("&#128;&#x81;&#150;&#x9d;", "€\x81–\x9d"),  # Windows-1252, as HTML5 reads it
        ("a&#0;b&#1;c&#x1f;d&#65534;e&#xFFFF;f", "a b c d e f"),
        ("a&#9;b&#10;c&#13;d", "a\tb\nc\rd"),
        ("a&#xD800;b&#1114112;c&#99999999999999999999;d", "a\ufffdb\ufffdc\ufffdd"),
        ("a&#127;b&#xFDD0;c&#x1FFFE;d", "abcd"),
        ("&NotNestedGreaterGreater;&nGt;", "⪢̸≫⃒"),
        ("a&#x2028;b&#133;c", "a\nb…c"),
        # characters
        ("a\x00b\x0bc\x0cd\x1fe\ufffef\uffffg", "a b c d e f g"),
        ("a\u2028b\u2029c\x85d", "a\nb\nc\nd"),
        ("a\ud800b", "a\ufffdb"),
        ("tab\tcr\r\nkept", "tab\tcr\r\nkept"),
    ],
)
def test_reads_html_as_a_reader_sees_it(source: str, expected: str) -> None:
    """Tags, comments, dropped and kept elements, references and odd characters."""
    assert text(source, True) == expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("a<b and c>d &amp; e", "a<b and c>d & e"),
        ("<!-- not a comment in plain text -->", "<!-- not a comment in plain text -->"),
        ("a&#1;b\x00c\u2028d", "a b c\nd"),
    ],
)
def test_plain_text_has_only_its_references_read(source: str, expected: str) -> None:
    """With markup off, only references and odd characters are treated."""
    assert text(source, False) == expected


def test_prose_with_a_bare_less_than_is_plain_text() -> None:
    """An entry of prose whose "<" starts no tag keeps it (no tag: no markup pass)."""
    assert html_to_text("if a<b then c &amp; d") == "if a<b then c & d"


# The reference for references: what html.unescape makes of text once every numeric
# reference to a control character is a space (as a raw control is), and once the
# characters the pass never writes are replaced as it replaces them.
_CONTROL_REF = re.compile(
    r"&#(?:0*(?:[0-8]|1[124-9]|2[0-9]|3[01]|6553[45])(?![0-9])"
    r"|[xX]0*(?:[0-8bBcCeEfF]|1[0-9a-fA-F]|[fF]{3}[eEfF])(?![0-9a-fA-F]));?"
)


def _reference(source: str) -> str:
    decoded = html.unescape(_CONTROL_REF.sub(" ", source))
    decoded = re.sub("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]", " ", decoded)
    decoded = re.sub("[\x85\u2028\u2029]", "\n", decoded)
    return re.sub("[\ud800-\udfff]", "\ufffd", decoded)


_NAMES = sorted(html.entities.html5)
_REFERENCE_TEXT = st.lists(
    st.one_of(
        st.sampled_from(_NAMES).map(lambda n: "&" + n),
        st.sampled_from(_NAMES).map(lambda n: "&" + n.rstrip(";")),
        st.integers(0, 0x110100).map(lambda n: f"&#{n}"),
        st.integers(0, 0x110100).map(lambda n: f"&#x{n:X};"),
        st.sampled_from(["&", "#", ";", "x", "X", "0", "a", " ", "\t", "\x00", "\u2028", "é"]),
        st.text(max_size=3),
    ),
    max_size=30,
).map("".join)


@settings(max_examples=600, deadline=None)
@given(_REFERENCE_TEXT)
def test_references_are_read_as_html_unescape_reads_them(source: str) -> None:
    """Named (legacy ones without ";" too), decimal and hex references, everywhere."""
    assert text(source, False) == _reference(source)
    if "<" not in source:
        assert text(source, True) == _reference(source)


_PIECES = [
    "<p>", "</p>", "<br/>", "<script>", "</script>", "<svg>", "</svg>", "<svg/>", "<template>",
    "</template>", "<!--", "-->", "<!", "<?", "</", ">", "<", "'", '"', "=", "/", "&amp;",
    "&#1;", "<xmp>", "</xmp>", "<textarea>", "<plaintext>", "<a href='", "<b ", " x=", "\x00",
    "\ud800", "\u2029", "\U0001f600", "é",
]  # fmt: skip
_MARKUP_TEXT = st.lists(st.one_of(st.sampled_from(_PIECES), st.text(max_size=4)), max_size=40).map(
    "".join
)


@settings(max_examples=1500, deadline=None)
@given(_MARKUP_TEXT)
def test_any_markup_gives_text_no_longer_than_itself(source: str) -> None:
    """Never raises, never writes more than it reads, never writes a control character."""
    for markup in (True, False):
        out = text(source, markup)
        assert len(out) <= len(source)
        assert not NEVER.search(out)


@settings(max_examples=1500, deadline=None)
@given(_MARKUP_TEXT, st.sampled_from(["", "\u00e9", "\u0100", "\U0001f600"]))
def test_every_string_width_reads_alike(source: str, lead: str) -> None:
    """The pass reads a string at the width Python stores it (1, 2 or 4 bytes a character):
    a leading plain character, which changes nothing after it, changes that width but not
    the text of the rest."""
    for markup in (True, False):
        assert text(lead + source, markup) == lead + text(source, markup)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("abc &mdash; d", "abc \u2014 d"),  # 1-byte input, a reference widens the output
        ("x&#128512;y", "x\U0001f600y"),  # 1 byte to 4
        ("\u0100&#128512;<b>\u00e9</b>", "\u0100\U0001f600\u00e9"),  # 2 bytes to 4
        ("\u00e9<a href='\u00e9x'>&#xe9;</a>", "\u00e9\u00e9"),  # stays 1 byte
        ('<p title="a>b">\u0100</p>', "\n\u0100\n"),  # quoted ">" in a 2-byte string
    ],
)
def test_output_widens_as_references_need(source: str, expected: str) -> None:
    """A reference to a character wider than the input's widens the output mid-pass."""
    assert text(source, True) == expected


def test_hostile_shapes_cost_one_pass() -> None:
    """Deep nesting, a tag of 100,000 attributes, an endless comment or script, and a
    megabyte of references are each read in one pass (no tree, no quadratic step)."""
    assert html_to_text("<div>" * 100_000 + "deep" + "</div>" * 100_000) == "deep"
    crowded = "<p " + " ".join(f"a{i}='<>'" for i in range(100_000)) + ">Korea</p>"
    assert html_to_text(crowded) == "Korea"
    assert html_to_text("x<!--" + "-" * 1_000_000) == "x"
    assert html_to_text("x<script>" + "<" * 1_000_000) == "x"
    assert (
        html_to_text("<p>" + "&" + "a" * 1_000_000) == "&" + "a" * 999_998
    )  # normalize keeps 1 M characters
    assert html_to_text("<p>" + "&amp" * 250_000) == "&" * 250_000


def test_every_corpus_entry_reads(corpus: Path) -> None:
    """Every entry of every corpus feed gives text with none of the characters the pass
    never writes, and the words of its title-like first line."""
    entries = 0
    for path in sorted((corpus / "feeds").rglob("*")):
        if path.suffix not in (".xml", ".json"):
            continue
        try:
            feed = parse_feed(path.read_bytes(), "http://example.com/")
        except Exception:  # a corpus file the parser refuses is tested elsewhere
            continue
        for entry in feed.entries:
            for source in (entry.content_html, entry.summary_html):
                out = html_text(source)
                assert not NEVER.search(out), path.name
                assert len(out) <= len(source)
            entries += 1
    assert entries > 6000
