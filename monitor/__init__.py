"""news-monitor: feeds in, cleaned articles matched against alert rules, hits out.

The pipeline stages are usable as a library::

    import monitor
    article = monitor.extract(html, url=None)
    rules = monitor.RuleSet.from_files(["rules/"])
    for m in rules.match(article):
        print(m.rule_id, m.snippets)

Names are imported lazily so ``import monitor`` stays cheap (trafilatura is slow to import).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from monitor.article import Article
    from monitor.clean import extract
    from monitor.errors import (
        ConfigError,
        DeliveryError,
        FetchError,
        MonitorError,
        ParseError,
    )
    from monitor.rules import Match, Rule, RuleSet

__all__ = [
    "Article",
    "ConfigError",
    "DeliveryError",
    "FetchError",
    "Match",
    "MonitorError",
    "ParseError",
    "Rule",
    "RuleSet",
    "extract",
]

_WHERE = {
    "Article": "monitor.article",
    "extract": "monitor.clean",
    "ConfigError": "monitor.errors",
    "DeliveryError": "monitor.errors",
    "FetchError": "monitor.errors",
    "MonitorError": "monitor.errors",
    "ParseError": "monitor.errors",
    "Match": "monitor.rules",
    "Rule": "monitor.rules",
    "RuleSet": "monitor.rules",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'monitor' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
