"""Rules reload on file change; a bad edit is reported and the old rules keep running."""

from __future__ import annotations

import asyncio
import gc
import os
import weakref
from pathlib import Path

from monitor.article import Article
from monitor.rules import load_resident
from tests.e2e import eventually, running

RULES_V1 = "rules:\n  - id: first\n    query: korea\n"
RULES_V2 = RULES_V1 + "  - id: second\n    query: japan\n"
RULES_BAD = RULES_V2 + "  - id: third\n    query: '(unclosed'\n"


def bump(path: Path, text: str) -> None:
    """Write ``text`` and move the mtime forward, so coarse clocks still see a change."""
    path.write_text(text)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))


async def test_rule_file_edit_reloads_and_bad_edit_keeps_old_rules(tmp_path: Path) -> None:
    """Adding a rule takes effect without restart; a syntax error leaves the running rules."""
    (tmp_path / "rules").mkdir()
    rule_file = tmp_path / "rules" / "main.yml"
    rule_file.write_text(RULES_V1)
    cfg = tmp_path / "monitor.yml"
    cfg.write_text("feeds: []\nrules: rules/\nstate_dir: state\nhttp: {listen: '127.0.0.1:0'}\n")
    async with running(cfg) as daemon:
        assert [r.id for r in daemon.rules.rules] == ["first"]
        bump(rule_file, RULES_V2)

        async def two_rules() -> bool:
            """the second rule was loaded"""
            return [r.id for r in daemon.rules.rules] == ["first", "second"]

        await eventually(two_rules, within=15)
        bump(rule_file, RULES_BAD)
        await asyncio.sleep(5)  # two watcher periods: the bad edit has been seen
        assert [r.id for r in daemon.rules.rules] == ["first", "second"]
        assert not daemon.reload_rules()
        bump(rule_file, "rules: " + "[" * 5000 + "]" * 5000 + "\n")
        assert not daemon.reload_rules()  # nesting that breaks the YAML composer
        assert [r.id for r in daemon.rules.rules] == ["first", "second"]


class _Cyclic:
    """An object in a reference cycle: only the cycle collector can free it."""

    def __init__(self) -> None:
        self.me = self


def test_resident_rules_are_frozen_and_frozen_garbage_is_reclaimed_at_reload(
    tmp_path: Path,
) -> None:
    """load_resident hides the rules from the cycle collector; the next load hands the
    frozen objects back and collects first, so a cycle that became garbage while frozen
    (made by a rule set, or by anything else) is freed then, not kept for ever."""
    rules = "".join(
        f"  - id: r{i}\n    query: '\"w{i} x\" AND (a{i} OR b{i})'\n" for i in range(300)
    )
    path = tmp_path / "rules.yml"
    path.write_text("rules:\n" + rules)
    try:
        gc.unfreeze()  # from earlier daemons in this process
        gc.collect()
        cyclic = _Cyclic()
        alive = weakref.ref(cyclic)
        before = gc.get_freeze_count()
        loaded = load_resident([path])
        assert gc.get_freeze_count() > before + 300  # the rules (and the cycle) are frozen
        del cyclic
        gc.collect()
        assert alive() is not None  # frozen: the collector does not see it
        loaded = load_resident([path])
        assert alive() is None  # handed back and collected by the reload
        assert [m.rule_id for m in loaded.match(Article(text="W7 x and b7"))] == ["r7"]
    finally:
        gc.unfreeze()
