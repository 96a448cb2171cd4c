"""OPML import: the feed list a user exports from another reader.

Reads with a hardened lxml parser (no network, no DTD loading), and refuses a file that
declares entities (libxml2 expands internal ones in attribute values even with
``resolve_entities=False``), so an OPML file cannot expand or fetch anything. Returns
(xmlUrl, title) pairs of http(s) feeds in document order, duplicates removed.
"""

from __future__ import annotations

import re
from pathlib import Path

from lxml import etree

from monitor.errors import ConfigError

_ENTITY = re.compile(rb"<!ENTITY", re.I)


def read_opml(path: Path) -> list[tuple[str, str]]:
    """Every ``<outline xmlUrl=…>`` in the OPML file at ``path``."""
    try:
        data = path.read_bytes()
    except OSError:
        raise ConfigError(f"cannot read OPML file {path}") from None
    if _ENTITY.search(data):
        raise ConfigError(f"OPML file {path} declares entities; refused (remove the DOCTYPE)")
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
    )
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        raise ConfigError(f"invalid OPML in {path}: {exc}") from None
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    for node in root.iter("outline"):
        url = (node.get("xmlUrl") or "").strip()
        if url.startswith(("http://", "https://")) and url not in seen:
            seen.add(url)
            out.append((url, (node.get("title") or node.get("text") or "").strip()))
    return out
