"""Logging setup: structlog, JSON lines when not on a terminal, ISO UTC timestamps.

Promises: one configuration call at start-up (``configure``); context bound with
``structlog.contextvars`` (``feed=``, ``rule=``) is merged into every line; feed-supplied text
in log values cannot smuggle control characters, ANSI escapes or bidi overrides into a log line
and is cut to a sane length.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

MAX_VALUE = 500
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")


def _inert(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Escape control and bidi characters and truncate long string values."""
    for key, value in event.items():
        if isinstance(value, str):
            safe = _UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", value)
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
            _inert,
            structlog.processors.format_exc_info,
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
