"""``news-monitor deliveries``: list pending and dead hits per sink, and replay dead letters.

``deliveries`` prints, for each configured sink, every pending delivery (id, rule, attempts
made, next attempt, last error) and every dead letter (id, rule, attempts, when it died, last
error); ``--json`` prints one object per delivery instead.

``deliveries replay SINK [ID…]`` moves the sink's dead letters (all, or those ids) back to
pending, due now, with their attempts reset. It does not send anything itself: the running
daemon picks them up within a second (its delivery loop polls the store), and when no daemon
runs they go out at its next start — so sending always follows the sink's pacing, signing and
retry rules, and two processes never race to send the same hit. It works beside a running
daemon on either store (it does not take over the SQLite file's leases).

Errors (unreachable store, unknown sink) are one line on stderr and exit status 1.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import time
from datetime import UTC, datetime
from typing import Any

from redis.exceptions import RedisError

from monitor.config import Config
from monitor.daemon import open_store
from monitor.deliver import rule_of
from monitor.errors import ConfigError, MonitorError
from monitor.store.base import Pending, Store

EXIT_OK, EXIT_ERROR = 0, 1


async def list_deliveries(config: Config, as_json: bool) -> int:
    """Print pending and dead deliveries of every configured sink."""
    store = await open_store(config, owner=False)
    try:
        for name, sc in config.sinks.items():
            pending = await store.pending(name, limit=10_000)
            dead = await store.dead_letters(name)
            if as_json:
                _print_json(name, pending, dead)
                continue
            print(f"{name} ({sc.type} {sc.redacted_url}): {len(pending)} pending, {len(dead)} dead")
            for p in pending:
                print("  " + line("pending", p, "next"))
            for p in dead:
                print("  " + line("dead", p, "died"))
        if not config.sinks and not as_json:
            print("no sinks configured")
    except (RedisError, OSError, sqlite3.Error) as exc:
        raise MonitorError(f"store unavailable: {exc}") from None
    finally:
        await store.close()
    return EXIT_OK


async def replay(config: Config, sink: str, ids: list[str]) -> int:
    """Move dead letters of ``sink`` back to pending; report what moved."""
    if sink not in config.sinks:
        known = ", ".join(sorted(config.sinks)) or "none configured"
        raise ConfigError(f"deliveries replay: no sink {sink!r} (sinks: {known})")
    store = await open_store(config, owner=False)
    try:
        missing = await _missing(store, sink, ids)
        moved = await store.replay(sink, ids or None, time.time())
    except (RedisError, OSError, sqlite3.Error) as exc:
        raise MonitorError(f"store unavailable: {exc}") from None
    finally:
        await store.close()
    print(
        f"{sink}: {moved} dead letter{'s' if moved != 1 else ''} moved back to pending; "
        "the daemon sends them (now if it runs, else at its next start)"
    )
    for hid in missing:
        print(f"error: {hid} is not a dead letter of {sink}", file=sys.stderr)
    return EXIT_ERROR if missing else EXIT_OK


async def _missing(store: Store, sink: str, ids: list[str]) -> list[str]:
    if not ids:
        return []
    dead = {p.hit_id for p in await store.dead_letters(sink)}
    return [hid for hid in dict.fromkeys(ids) if hid not in dead]


def line(state: str, p: Pending, when_label: str) -> str:
    """One human-readable line for a delivery."""
    error = f"  error: {_one_line(p.last_error)}" if p.last_error else ""
    return (
        f"{state:<7} {p.hit_id}  rule={rule_of(p) or '?'}  attempts={p.attempts}  "
        f"{when_label}={_iso(p.next_at)}{error}"
    )


def _print_json(sink: str, pending: list[Pending], dead: list[Pending]) -> None:
    for state, items in (("pending", pending), ("dead", dead)):
        for p in items:
            doc: dict[str, Any] = {
                "sink": sink,
                "state": state,
                "id": p.hit_id,
                "rule": rule_of(p),
                "attempts": p.attempts,
                "next_at" if state == "pending" else "died_at": _iso(p.next_at),
                "error": p.last_error,
            }
            print(json.dumps(doc, ensure_ascii=False))


def add_parser(sub: Any, with_config: Any) -> None:
    """Register ``deliveries`` (and ``deliveries replay``) on the CLI's subparsers."""
    dl = sub.add_parser("deliveries", help="list pending and dead deliveries per sink")
    with_config(dl)
    dl.add_argument("--json", action="store_true", help="one JSON object per delivery")
    actions = dl.add_subparsers(dest="action")
    rp = actions.add_parser("replay", help="move dead letters back to pending")
    rp.add_argument("-c", "--config", default=argparse.SUPPRESS, help="config file")
    rp.add_argument("sink", metavar="SINK")
    rp.add_argument("ids", nargs="*", metavar="ID", help="hit ids (default: all dead letters)")


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _one_line(text: str) -> str:
    return " ".join(text.split())[:200]
