"""The article: what every stage after parsing passes along.

An Article is plain data. ``title`` and ``text`` are already normalised (NFKC, straight
quotes, single spaces) by whoever built it through :func:`monitor.clean.normalize`; building
one by hand with ``monitor.Article(title=..., text=...)`` normalises too, so the matcher can
rely on it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlsplit

from monitor.textnorm import normalize

# A title longer than this is hostile or broken; feeds and pages are cut to it.
MAX_TITLE_CHARS = 2_000


@dataclass(frozen=True, slots=True)
class Article:
    """One cleaned article. Only ``title`` and ``text`` matter to the matcher's default field."""

    title: str = ""
    text: str = ""
    url: str = ""
    published: datetime | None = None
    language: str | None = None
    summary: str = ""
    source: str = ""
    guid: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Normalising on construction keeps the promise that every Article the matcher
        # sees is normalised, however it was built.
        object.__setattr__(self, "title", normalize(self.title))
        object.__setattr__(self, "text", normalize(self.text))

    @property
    def site(self) -> str:
        """The host of ``url`` without ``www.``, lower-case; empty when there is no URL."""
        host = (urlsplit(self.url).hostname or "").lower()
        return host.removeprefix("www.")

    def replace(self, **changes: object) -> Article:
        """A copy with some fields changed (dataclasses.replace, typed loosely)."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]
