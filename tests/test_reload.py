"""Rules reload on file change; a bad edit is reported and the old rules keep running."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

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
