"""Secrets stay secret: webhook secrets, Slack URLs and Redis passwords never appear in output.

``check`` and ``run`` are run as the user runs them (``python -m monitor`` with the secrets in
the environment); a failing webhook delivery is run in-process so its log lines and ``/metrics``
can be read whole.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import structlog

from tests.conftest import SEED_ARTICLE, free_port
from tests.e2e import RULES, Receiver, Site, eventually, running, serve
from tests.test_cli import cli

SLACK_TOKEN = "XoXoSlackPathSecret9Q"
SLACK_URL = f"https://hooks.slack.com/services/T000/B000/{SLACK_TOKEN}"
WEBHOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
WEBHOOK_TOKEN = "QueryTokenSecret77"
REDIS_PASSWORD = "RedisPassw0rdSecret"
SECRETS = (SLACK_TOKEN, WEBHOOK_SECRET, WEBHOOK_SECRET.removeprefix("whsec_"), REDIS_PASSWORD)


def secret_config(tmp: Path, rules: str = RULES.format(notify="[desk, partner]")) -> Path:
    """A config whose sink URLs, webhook secret and Redis URL all come from the environment."""
    (tmp / "rules").mkdir(exist_ok=True)
    (tmp / "rules" / "main.yml").write_text(rules)
    path = tmp / "monitor.yml"
    path.write_text(
        "feeds: []\nrules: rules/\nstate_dir: state\nhttp: {listen: '127.0.0.1:0'}\n"
        "redis: {url: '${REDIS_URL}'}\n"
        "sinks:\n"
        "  desk: {type: slack, url: '${SLACK_WEBHOOK_URL}'}\n"
        "  partner: {type: webhook, url: '${HOOK_URL}', secret: '${WEBHOOK_SECRET}'}\n"
    )
    return path


def secret_env(redis_port: int) -> dict[str, str]:
    return {
        "SLACK_WEBHOOK_URL": SLACK_URL,
        "HOOK_URL": f"https://hooks.example.com/news?token={WEBHOOK_TOKEN}",
        "WEBHOOK_SECRET": WEBHOOK_SECRET,
        "REDIS_URL": f"redis://news:{REDIS_PASSWORD}@127.0.0.1:{redis_port}/0",
    }


def assert_no_secret(text: str) -> None:
    for secret in (*SECRETS, WEBHOOK_TOKEN):
        assert secret not in text


def test_check_output_shows_sinks_and_redis_redacted(tmp_path: Path) -> None:
    """`check` names the sinks and store without any URL path, token, secret or password."""
    result = cli("check", "-c", str(secret_config(tmp_path)), env=secret_env(free_port()))
    assert result.returncode == 0, result.stderr
    assert "hooks.slack.com" in result.stdout
    assert_no_secret(result.stdout + result.stderr)


def test_check_errors_do_not_echo_secrets(tmp_path: Path) -> None:
    """A config error next to the secrets (bad rule, bad sink URL) still prints none of them."""
    bad_rules = RULES.format(notify="[desk]") + "  - id: broken\n    query: 'a AND ('\n"
    env = secret_env(free_port()) | {"SLACK_WEBHOOK_URL": f"ftp://x/{SLACK_TOKEN}"}
    result = cli("check", "-c", str(secret_config(tmp_path, bad_rules)), env=env)
    assert result.returncode == 1
    assert_no_secret(result.stdout + result.stderr)


def test_unreachable_redis_error_omits_the_password(tmp_path: Path) -> None:
    """`run` with an unreachable password-protected Redis fails in one line without it."""
    result = cli("run", "-c", str(secret_config(tmp_path)), env=secret_env(free_port()))
    assert result.returncode == 1
    assert "redis.url" in result.stderr and "Traceback" not in result.stderr
    assert_no_secret(result.stdout + result.stderr)


async def test_failing_webhook_logs_and_metrics_hold_no_secret(tmp_path: Path) -> None:
    """A webhook answering 500 is logged and counted, but its token and secret appear nowhere."""
    site, receiver = Site(SEED_ARTICLE.read_bytes()), Receiver(statuses=[500])
    async with serve(site.app()) as srv, serve(receiver.app()) as hook:
        site.server, receiver.server = srv, hook
        cfg = _webhook_config(tmp_path, site, f"{receiver.url}?token={WEBHOOK_TOKEN}")
        with structlog.testing.capture_logs() as logs:
            async with running(cfg) as daemon:

                async def retried() -> bool:
                    """the receiver refused two attempts"""
                    return len(receiver.requests) >= 2

                await eventually(retried)
                metrics = await _get(f"http://127.0.0.1:{daemon.http_port}/metrics")
    assert any("500" in json.dumps(e, default=str) for e in logs)
    assert_no_secret(json.dumps(logs, default=str) + metrics)


def _webhook_config(tmp: Path, site: Site, hook_url: str) -> Path:
    (tmp / "rules").mkdir(exist_ok=True)
    (tmp / "rules" / "test.yml").write_text(RULES.format(notify="[partner]"))
    assert site.server is not None
    path = tmp / "monitor.yml"
    path.write_text(
        f"feeds:\n  - {{url: '{site.base}/feed.xml', name: local-wire, interval: 1s}}\n"
        "rules: rules/\nstate_dir: state\n"
        f"fetch: {{allow_private: ['127.0.0.1:{site.server.port}'], timeout: 3s}}\n"
        "http: {listen: '127.0.0.1:0'}\nshutdown_grace: 2s\n"
        f"sinks:\n  partner: {{type: webhook, url: '{hook_url}', secret: '{WEBHOOK_SECRET}'}}\n"
    )
    return path


async def _get(url: str) -> str:
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        text: Any = await resp.text()
        return str(text)
