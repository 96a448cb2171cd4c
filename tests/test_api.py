"""The Python API of DESIGN.md works exactly as written there."""

from __future__ import annotations

from pathlib import Path

import pytest

import monitor
from tests.conftest import ROOT, SEED_ARTICLE


def test_design_snippet_runs_as_written() -> None:
    """extract → RuleSet.from_files → match gives the Korea rule with snippets."""
    html = SEED_ARTICLE.read_text(encoding="utf-8")
    article = monitor.extract(html, url=None)
    assert isinstance(article, monitor.Article)
    rules = monitor.RuleSet.from_files([str(ROOT / "rules")])
    matches = rules.match(article)
    assert "korea-opcon" in [m.rule_id for m in matches]
    for m in matches:
        assert isinstance(m, monitor.Match) and m.snippets


def test_article_from_plain_text() -> None:
    """An Article built from plain text is normalised and matchable."""
    article = monitor.Article(
        title="S.Korea\u00a0talks", text="Wartime \u201coperational control\u201d"
    )
    assert article.title == "S.Korea talks" and article.text == 'Wartime "operational control"'
    rules = monitor.RuleSet.from_files([str(ROOT / "rules" / "korea.yml")])
    assert [m.rule_id for m in rules.match(article)] == ["korea-opcon"]


def test_bad_rules_raise_config_error_with_position(tmp_path: Path) -> None:
    """A bad rule file raises monitor.ConfigError naming file:line:col."""
    path = tmp_path / "bad.yml"
    path.write_text("rules:\n  - id: x\n    query: 'a AND'\n")
    with pytest.raises(monitor.ConfigError) as info:
        monitor.RuleSet.from_files([str(path)])
    assert f"{path}:3:" in str(info.value)


def test_from_files_takes_one_path_on_its_own() -> None:
    """A single folder as a string is one path, not a sequence of characters."""
    rules = monitor.RuleSet.from_files(str(ROOT / "rules"))
    assert "korea-opcon" in [r.id for r in rules.rules]


def test_unknown_name_is_an_attribute_error() -> None:
    """The lazy namespace still refuses names it does not have."""
    with pytest.raises(AttributeError):
        _ = monitor.NoSuchThing  # type: ignore[attr-defined]
