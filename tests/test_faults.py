"""Crash tests: ``kill -9`` of a real daemon process at each point, then a restart.

The daemon (``python -m monitor run``) polls a local site and delivers to two local webhook
receivers. ``NEWS_MONITOR_CRASHPOINT`` makes it SIGKILL itself after the match (nothing
recorded), after recording (nothing sent) or after a sink's 2xx (not acknowledged). After a
restart without the hook, every sink must have the hit — duplicates allowed, same id.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from monitor.faults import ENV, crashpoint
from tests.conftest import ROOT, SEED_ARTICLE
from tests.e2e import RULES, Receiver, Site, eventually, serve

POINTS = ["after-match", "after-record", "after-send"]


def write_config(tmp: Path, site: Site, hooks: dict[str, str], redis_url: str | None) -> Path:
    """Config for ``site`` routing the test rules to every receiver in ``hooks``."""
    (tmp / "rules").mkdir(exist_ok=True)
    (tmp / "rules" / "test.yml").write_text(RULES.format(notify=f"[{', '.join(hooks)}]"))
    assert site.server is not None
    lines = [
        "feeds:",
        f"  - {{url: '{site.base}/feed.xml', name: local-wire, interval: 1s, max_interval: 1s,"
        " fetch_article: true}",
        "rules: rules/",
        "state_dir: state",
        f"fetch: {{allow_private: ['127.0.0.1:{site.server.port}'], timeout: 10s}}",
        "http: {listen: '127.0.0.1:0'}",
        "shutdown_grace: 5s",
        "sinks:",
        *(f"  {name}: {{type: webhook, url: '{url}', timeout: 5s}}" for name, url in hooks.items()),
    ]
    if redis_url:
        lines += [f"redis: {{url: '{redis_url}', prefix: nm-faults}}"]
    path = tmp / "monitor.yml"
    path.write_text("\n".join(lines) + "\n")
    return path


async def start(config: Path, crashpoint: str | None) -> asyncio.subprocess.Process:
    """``python -m monitor run -c config`` with the crash hook set (or not)."""
    env = {k: v for k, v in os.environ.items() if k != ENV}
    if crashpoint:
        env[ENV] = crashpoint
    env["PYTHONPATH"] = str(ROOT)
    with (config.parent / "daemon.log").open("ab") as log:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "monitor",
            "run",
            "-c",
            str(config),
            "--log-format",
            "json",
            env=env,
            cwd=config.parent,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=log,
        )


async def expire_leases(redis_url: str) -> None:
    """Fast-forward past the dead process's leases instead of waiting them out.

    With Redis the killed daemon's feed claim (up to 60 s) and delivery leases (120 s) run
    out on their own — that is how other replicas take over; the stores' tests cover it.
    Here time jumps forward: claims are dropped and leased deliveries made due now.
    """
    client = aioredis.from_url(redis_url)
    try:
        async for key in client.scan_iter(match="nm-faults:lock:*"):
            await client.delete(key)
        async for key in client.scan_iter(match="nm-faults:sched:*"):
            ids = await client.zrange(key, 0, -1)
            if ids:
                await client.zadd(key, dict.fromkeys(ids, time.time()), xx=True)
    finally:
        await client.aclose()


def hit_ids(receiver: Receiver) -> set[str]:
    return {json.loads(body)["id"] for _, body in receiver.requests}


@pytest.mark.parametrize("store", ["redis", "sqlite"])
@pytest.mark.parametrize("point", POINTS)
async def test_kill_9_then_restart_delivers_every_hit(
    tmp_path: Path, request: pytest.FixtureRequest, point: str, store: str
) -> None:
    """Killed at ``point``, the restarted daemon gets the hit to every sink under one id."""
    redis_url = request.getfixturevalue("redis_server").url if store == "redis" else None
    site = Site(SEED_ARTICLE.read_bytes())
    desk, partner = Receiver(), Receiver()
    async with serve(site.app()) as srv, serve(desk.app()) as d, serve(partner.app()) as p:
        site.server, desk.server, partner.server = srv, d, p
        config = write_config(tmp_path, site, {"desk": desk.url, "partner": partner.url}, redis_url)
        crashed = await start(config, point)
        assert await asyncio.wait_for(crashed.wait(), 60) == -signal.SIGKILL
        if redis_url:
            await expire_leases(redis_url)
        sent_before = len(desk.requests) + len(partner.requests)
        daemon = await start(config, None)
        try:

            async def both_sinks_have_it() -> bool:
                """the restarted daemon sent, and each sink has the Korea hit"""
                sent = len(desk.requests) + len(partner.requests)
                return sent > sent_before and len(hit_ids(desk)) == len(hit_ids(partner)) == 1

            await eventually(both_sinks_have_it, within=60)
        finally:
            daemon.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(daemon.wait(), 30) == 0
    assert hit_ids(desk) == hit_ids(partner)
    if point == "after-send":  # the crash came after one sink's 2xx: it gets a duplicate
        assert sent_before >= 1
    else:
        assert sent_before == 0


async def test_crashpoint_is_inert_unless_named(monkeypatch: pytest.MonkeyPatch) -> None:
    """crashpoint does nothing when the variable is unset or names another point."""
    monkeypatch.delenv(ENV, raising=False)
    crashpoint("after-send")
    monkeypatch.setenv(ENV, "after-match")
    crashpoint("after-send")
