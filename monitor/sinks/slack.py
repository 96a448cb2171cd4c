"""The Slack sink: one Block Kit message per hit, posted to an incoming webhook.

The message carries the article title as a link, the rule name, source, published and detected
times, each match's snippet with the matched text in bold, and a plain ``text`` fallback for
notifications. A throttle digest (:mod:`monitor.digest`) becomes one message listing its hits
(title link, source, time), up to Slack's 50 blocks.

Promises:

- Feed text can neither ping nor phish: in every piece of it (title, snippet, source, rule
  name, field) ``&``, ``<``, ``>`` are escaped, so ``<!channel>``, ``<@U…>`` and
  ``<https://evil|Reset password>`` arrive as inert text; mrkdwn markers (``* _ ~ ```) are
  swapped for look-alikes so feed text cannot break or fake the bolding. Only ``http(s)`` URLs
  are ever linked.
- Slack's limits hold: section text ≤ 3,000 characters, fields ≤ 2,000, at most 50 blocks,
  fallback ≤ 3,000; cuts never split an escape such as ``&amp;``.
- At most one message per ``min_interval`` (1 s) per webhook URL, shared by every SlackSink in
  the process posting to that URL; after a 429 no message goes to that URL until its
  ``Retry-After`` has passed (sends in between fail fast with that ``retry_after``).
- 400/403/404 are permanent (Slack rejected the payload or the URL), 410 disables the sink,
  anything else is retryable. The webhook URL is a secret: messages show only its host.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import urlsplit

import aiohttp

from monitor.digest import is_digest
from monitor.errors import DeliveryError
from monitor.hit import Hit
from monitor.sinks.http import USER_AGENT, checked_url, origin, post

SECTION_MAX = 3000
FIELD_MAX = 2000
FALLBACK_MAX = 3000
MAX_BLOCKS = 50
MAX_MATCH_BLOCKS = 10
TITLE_MAX = 1000
URL_MAX = 1500
NAME_MAX = 300
BEFORE_MAX = 1200
HIT_MAX = 400
AFTER_MAX = 1200
PERMANENT = frozenset({400, 403, 404})
TOO_MANY = 429

_MRKDWN = str.maketrans({"*": "∗", "_": "＿", "~": "∼", "`": "ˋ"})
_ENTITY = re.compile(r"&(?:amp|lt|gt);")


@dataclass
class _Pace:
    """Pacing of one webhook URL, shared by every sink posting to it."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    last: float = -math.inf  # monotonic time the previous post finished
    blocked_until: float = -math.inf  # monotonic time a 429's Retry-After ends
    users: int = 0


class SlackSink:
    """Posts every hit as a Block Kit message to one Slack incoming webhook."""

    _paces: ClassVar[dict[str, _Pace]] = {}

    def __init__(
        self,
        name: str,
        url: str,
        *,
        session: aiohttp.ClientSession,
        timeout: float = 10.0,
        min_interval: float = 1.0,
    ) -> None:
        self.name = name
        self._url = checked_url(name, url)
        self._session = session
        self._limits = aiohttp.ClientTimeout(total=timeout)
        self._min_interval = min_interval
        self._where = f"slack sink {name!r} ({origin(self._url)})"
        self._key = str(self._url)
        self._pace = self._paces.setdefault(self._key, _Pace())
        self._pace.users += 1
        self._closed = False

    async def send(self, hit: Hit) -> None:
        """Post ``hit`` once, paced per URL; raise DeliveryError unless Slack answered 2xx."""
        body = json.dumps(self._message(hit), ensure_ascii=False).encode()
        headers = {"content-type": "application/json; charset=utf-8", "user-agent": USER_AGENT}
        async with self._pace.lock:
            self._raise_if_blocked()
            await self._wait_turn()
            try:
                await post(
                    self._session,
                    self._url,
                    body,
                    headers,
                    where=self._where,
                    limits=self._limits,
                    permanent=PERMANENT,
                )
            except DeliveryError as err:
                if err.status == TOO_MANY and err.retry_after is not None:
                    self._pace.blocked_until = time.monotonic() + err.retry_after
                raise
            finally:
                self._pace.last = time.monotonic()

    async def close(self) -> None:
        """Drop this sink's share of the URL's pacing state (freed when the last one closes)."""
        if self._closed:
            return
        self._closed = True
        self._pace.users -= 1
        if self._pace.users <= 0 and self._paces.get(self._key) is self._pace:
            del self._paces[self._key]

    def _message(self, hit: Hit) -> dict[str, Any]:
        try:
            data = hit.data()
        except ValueError as exc:
            raise DeliveryError(f"{self._where}: hit {hit.id} is not JSON", permanent=True) from exc
        if not isinstance(data, dict):
            raise DeliveryError(f"{self._where}: hit {hit.id} is not an object", permanent=True)
        return build_digest(data) if is_digest(data) else build_message(data)

    def _raise_if_blocked(self) -> None:
        remaining = self._pace.blocked_until - time.monotonic()
        if remaining > 0:
            raise DeliveryError(
                f"{self._where}: rate-limited by Slack for {remaining:.0f} s more",
                status=TOO_MANY,
                retry_after=remaining,
                deferred=True,
            )

    async def _wait_turn(self) -> None:
        delay = self._pace.last + self._min_interval - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)


def build_message(data: dict[str, Any]) -> dict[str, Any]:
    """The Slack payload (``text`` fallback + ``blocks``) for a hit JSON object."""
    article = _obj(data, "article")
    rule = _obj(data, "rule")
    rule_name = _str(rule, "name") or _str(rule, "id")
    title = _str(article, "title") or "(untitled)"
    blocks: list[dict[str, Any]] = [
        _section(_title_line(title, _str(article, "url"))),
        _fields(rule_name, _str(article, "source"), article.get("published"), data),
        *_match_blocks(data.get("matches")),
    ]
    return {"text": _fallback(rule_name, title), "blocks": blocks[:MAX_BLOCKS]}


def build_digest(data: dict[str, Any]) -> dict[str, Any]:
    """The Slack payload for a throttle digest: one line per hit, newest matches last."""
    rule = _obj(data, "rule")
    rule_name = _str(rule, "name") or _str(rule, "id")
    hits = [h for h in data.get("hits", []) if isinstance(h, dict)]
    head = f"*{clip(feed_text(rule_name), NAME_MAX)}*: {len(hits)} more matches in this window"
    blocks: list[dict[str, Any]] = [_section(head)]
    blocks += [_section(_digest_line(h)) for h in hits[: MAX_BLOCKS - 2]]
    if len(hits) > MAX_BLOCKS - 2:
        more = len(hits) - (MAX_BLOCKS - 2)
        blocks.append({"type": "context", "elements": [_mrkdwn(f"… and {more} more")]})
    fallback = _fallback(rule_name, f"{len(hits)} more matches")
    return {"text": fallback, "blocks": blocks[:MAX_BLOCKS]}


def _digest_line(hit: dict[str, Any]) -> str:
    article = _obj(hit, "article")
    line = _title_line(_str(article, "title") or "(untitled)", _str(article, "url"))
    source = clip(feed_text(_str(article, "source")), NAME_MAX)
    published = when(article.get("published"))
    extra = " · ".join(part for part in (source, published) if part)
    return f"{line}\n{extra}" if extra else line


def _title_line(title: str, url: str) -> str:
    label = clip(feed_text(title), TITLE_MAX)
    link = safe_link(url)
    return f"*<{link}|{label}>*" if link else f"*{label}*"


def _fields(rule: str, source: str, published: object, data: dict[str, Any]) -> dict[str, Any]:
    pairs = [
        ("Rule", clip(feed_text(rule), NAME_MAX)),
        ("Source", clip(feed_text(source), NAME_MAX)),
        ("Published", when(published)),
        ("Detected", when(data.get("detected_at"))),
    ]
    return {
        "type": "section",
        "fields": [_mrkdwn(f"*{label}*\n{value or '—'}") for label, value in pairs],
    }


def _match_blocks(matches: object) -> list[dict[str, Any]]:
    items = [m for m in matches if isinstance(m, dict)] if isinstance(matches, list) else []
    blocks = [_section(_match_line(m)) for m in items[:MAX_MATCH_BLOCKS]]
    if len(items) > MAX_MATCH_BLOCKS:
        more = len(items) - MAX_MATCH_BLOCKS
        blocks.append({"type": "context", "elements": [_mrkdwn(f"… and {more} more matches")]})
    return blocks


def _match_line(match: dict[str, Any]) -> str:
    label = clip(feed_text(_str(match, "field") or "match"), 50)
    return f"_{label}_ · {highlight(_str(match, 'snippet'), _str(match, 'text'))}"


def _fallback(rule: str, title: str) -> str:
    return clip(feed_text(f"{rule}: {title}"), FALLBACK_MAX)


def highlight(snippet: str, text: str) -> str:
    """``snippet`` as safe mrkdwn with the first occurrence of ``text`` in bold."""
    snippet, text = _squash(snippet), _squash(text)
    found = re.search(re.escape(text), snippet, re.IGNORECASE) if text else None
    if found is None:
        return clip(feed_text(snippet or text), BEFORE_MAX + HIT_MAX + AFTER_MAX)
    before = clip_left(_inert(snippet[: found.start()]), BEFORE_MAX)
    after = clip(_inert(snippet[found.end() :]), AFTER_MAX)
    return f"{before}*{clip(_inert(found.group()), HIT_MAX)}*{after}"


def feed_text(raw: str) -> str:
    """Untrusted text made inert for mrkdwn: whitespace squashed, markers swapped, escaped."""
    return _inert(_squash(raw))


def _inert(text: str) -> str:
    return escape(text.translate(_MRKDWN))


def escape(text: str) -> str:
    """Slack's three escapes: ``&``, ``<``, ``>``."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def clip(escaped: str, limit: int) -> str:
    """``escaped`` cut to ``limit`` characters (ending in …), never inside an escape."""
    if len(escaped) <= limit:
        return escaped
    return escaped[: _snap(escaped, limit - 1, forward=False)] + "…"


def clip_left(escaped: str, limit: int) -> str:
    """Like :func:`clip` but keeps the end (starting with …)."""
    if len(escaped) <= limit:
        return escaped
    return "…" + escaped[_snap(escaped, len(escaped) - limit + 1, forward=True) :]


def _snap(text: str, cut: int, *, forward: bool) -> int:
    """Move ``cut`` out of any ``&amp;``/``&lt;``/``&gt;`` it would split."""
    for entity in _ENTITY.finditer(text, max(0, cut - 4), cut + 4):
        if entity.start() < cut < entity.end():
            return entity.end() if forward else entity.start()
    return cut


def safe_link(url: str) -> str | None:
    """``url`` ready for ``<url|label>`` when it is a plain http(s) URL, else None."""
    if not url or any(not c.isprintable() for c in url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    for char, code in (("|", "%7C"), ("<", "%3C"), (">", "%3E"), (" ", "%20")):
        url = url.replace(char, code)
    url = url.replace("&", "&amp;")
    return url if len(url) <= URL_MAX else None


def when(value: object) -> str:
    """An RFC 3339 time as ``YYYY-MM-DD HH:MM UTC``; anything else shown as inert text."""
    if not isinstance(value, str) or not value:
        return ""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return clip(feed_text(value), 100)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": _mrkdwn(text, SECTION_MAX)}


def _mrkdwn(text: str, limit: int = FIELD_MAX) -> dict[str, Any]:
    # The pieces are clipped to fit already; this cut is only a backstop for the limits.
    return {"type": "mrkdwn", "text": clip(text, limit)}


def _squash(text: str) -> str:
    return " ".join(text.split())


def _obj(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def _str(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    return value if isinstance(value, str) else ""
