"""Logging setup: structlog, JSON lines when not on a terminal, ISO UTC timestamps.

Promises: one configuration call at start-up (``configure``); context bound with
``structlog.contextvars`` (``feed=``, ``rule=``) is merged into every line; feed-supplied text
in log values cannot smuggle control characters, ANSI escapes, bidi overrides or line breaks
(``\n``, ``\r``, U+2028/2029, NEL) into a log line, in JSON *and* console output, so no value
can forge a line; string values are cut at :data:`MAX_VALUE` characters. A formatted traceback
keeps its own newlines but gets the same escaping otherwise.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

MAX_VALUE = 500
MAX_TRACEBACK = 20_000
_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\ufff9-\ufffb]"
)
_UNSAFE_BUT_NEWLINE = re.compile(_UNSAFE.pattern.replace("\x00-\x1f", "\x00-\x09\x0b-\x1f"))


def _escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def _inert(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Escape control, line-break and bidi characters and truncate long string values."""
    for key, value in event.items():
        if not isinstance(value, str):
            continue
        if key == "exception":
            event[key] = _UNSAFE_BUT_NEWLINE.sub(_escape, value)[-MAX_TRACEBACK:]
            continue
        safe = _UNSAFE.sub(_escape, value)
        event[key] = safe if len(safe) <= MAX_VALUE else safe[:MAX_VALUE] + "…"
    return event


def configure(*, json: bool | None = None, level: str = "info") -> None:
    """Set up structlog (and stdlib logging for libraries) once per process."""
    if json is None:
        json = not sys.stderr.isatty()
    renderer: Any = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            _inert,  # after format_exc_info: exception messages can carry feed text too
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(name)s: %(message)s")
    # trafilatura and htmldate log every page they find odd; we report per article ourselves.
    for noisy in ("trafilatura", "htmldate", "readability", "charset_normalizer"):
        logging.getLogger(noisy).setLevel(logging.ERROR)


def get_logger(**initial: Any) -> Any:
    """A structlog logger with ``initial`` values bound."""
    return structlog.get_logger("news-monitor", **initial)
