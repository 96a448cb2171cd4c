"""``news-monitor deliveries``: lists pending and dead hits per sink, replays dead letters."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from monitor.cli import main
from monitor.store.sqlite import SQLiteStore
from tests.conftest import free_port
from tests.test_deliver import make_hit

CONFIG = """\
feeds: []
rules: rules/
state_dir: state
sinks:
  partner: {type: webhook, url: 'http://127.0.0.1:9/hook/s3cr3t'}
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    (tmp_path / "rules").mkdir()
    path = tmp_path / "monitor.yml"
    path.write_text(CONFIG)
    return path


async def seed(config: Path) -> tuple[str, str]:
    """One pending (after a failed attempt) and one dead delivery; returns their ids."""
    pending, dead = make_hit("s_1"), make_hit("s_2")
    async with SQLiteStore(config.parent / "state" / "monitor.db") as store:
        await store.record([], [pending, dead])
        await store.retry("partner", pending.id, 1, time.time() + 300, "HTTP 500\nboom")
        await store.dead("partner", dead.id, "HTTP 404")
        # A lease the running daemon holds must survive the command.
        await store.due("partner", time.time() + 400)
    return pending.id, dead.id


def test_lists_pending_and_dead(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Each sink shows its pending and dead hits with rule, attempts, time and last error."""
    pending, dead = asyncio.run(seed(config))
    assert main(["deliveries", "-c", str(config)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "partner (webhook http://127.0.0.1/…): 1 pending, 1 dead"
    assert out[1].startswith(f"  pending {pending}  rule=korea-opcon  attempts=1  next=")
    assert out[1].endswith("error: HTTP 500 boom")
    assert out[2].startswith(f"  dead    {dead}  rule=korea-opcon  attempts=1  died=")
    assert "s3cr3t" not in "\n".join(out)


def test_lists_as_json(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--json prints one object per delivery."""
    pending, dead = asyncio.run(seed(config))
    assert main(["deliveries", "--json", "-c", str(config)]) == 0
    docs = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [(d["state"], d["id"], d["attempts"]) for d in docs] == [
        ("pending", pending, 1),
        ("dead", dead, 1),
    ]


def test_replay_moves_dead_letters_back(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """replay SINK ID makes the dead letter pending again, due now, and keeps others' leases."""
    _, dead = asyncio.run(seed(config))
    assert main(["deliveries", "replay", "partner", dead, "-c", str(config)]) == 0
    assert "1 dead letter moved back to pending" in capsys.readouterr().out

    async def after() -> tuple[list[str], list[str]]:
        async with SQLiteStore(config.parent / "state" / "monitor.db", owner=False) as store:
            due = [p.hit_id for p in await store.due("partner", time.time())]
            return due, [p.hit_id for p in await store.dead_letters("partner")]

    assert asyncio.run(after()) == ([dead], [])


def test_replay_unknown_sink_and_id_are_one_line(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An unknown sink or an id that is no dead letter is one error line, exit 1."""
    asyncio.run(seed(config))
    assert main(["deliveries", "replay", "desk", "-c", str(config)]) == 1
    err = capsys.readouterr().err.strip()
    assert err == "error: deliveries replay: no sink 'desk' (sinks: partner)"
    assert main(["deliveries", "replay", "partner", "h_nope", "-c", str(config)]) == 1
    assert capsys.readouterr().err.strip() == "error: h_nope is not a dead letter of partner"


def test_unreachable_redis_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """With Redis down the command prints one line naming redis.url, no traceback."""
    (tmp_path / "rules").mkdir()
    cfg = tmp_path / "monitor.yml"
    cfg.write_text(CONFIG + f"redis: {{url: 'redis://127.0.0.1:{free_port()}/0'}}\n")
    assert main(["deliveries", "-c", str(cfg)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "redis.url: cannot reach Redis" in err[0]
