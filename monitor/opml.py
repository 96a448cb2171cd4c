"""OPML import: the feed list a user exports from another reader.

Reads with a hardened lxml parser (no network, no DTD loading), and refuses a file that
declares entities (libxml2 expands internal ones in attribute values even with
``resolve_entities=False``), so an OPML file cannot expand or fetch anything. Returns the
http(s) feeds' outlines (xmlUrl, title, line) in document order, duplicates removed. A file
that cannot be read is a ConfigError saying why; one that is not XML, a ConfigError at its
own ``path:line:col``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple

from lxml import etree

from monitor.errors import ConfigError

_ENTITY = re.compile(rb"<!ENTITY", re.I)


class Outline(NamedTuple):
    """One feed of an OPML file; ``line`` is where its ``<outline>`` sits, when known."""

    url: str
    title: str
    line: int | None = None


def read_opml(path: Path) -> list[Outline]:
    """Every ``<outline xmlUrl=…>`` with an http(s) URL in the OPML file at ``path``."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read OPML file {path}: {exc.strerror or exc}") from None
    if _ENTITY.search(data):
        raise ConfigError(f"OPML file {path} declares entities; refused (remove the DOCTYPE)")
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
    )
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        line, col = exc.position if exc.position else (None, None)
        why = re.sub(r", line \d+, column \d+$", "", exc.msg or "")
        raise ConfigError(f"not valid XML: {why}", str(path), line or None, col or None) from None
    out: list[Outline] = []
    seen: set[str] = set()
    for node in root.iter("outline"):
        url = (node.get("xmlUrl") or "").strip()
        if url.startswith(("http://", "https://")) and url not in seen:
            seen.add(url)
            title = (node.get("title") or node.get("text") or "").strip()
            out.append(Outline(url, title, node.sourceline))
    return out
