"""The command line: clear one-line errors, check/run agreement, drain on SIGTERM, match/extract."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
from aiohttp import web

from tests.conftest import ROOT, SEED_ARTICLE, free_port
from tests.e2e import serve

BAD_RULES = """\
rules:
  - id: broken
    query: '"operational control" AND (OPCON'
"""


def cli(
    *args: str,
    cwd: Path | None = None,
    stdin: bytes | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m monitor`` with a clean environment and a bounded time."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("NEWS_MONITOR")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        cwd=cwd or ROOT,
        capture_output=True,
        input=stdin.decode() if stdin else None,
        text=True,
        timeout=60,
        env=full_env,
        check=False,
    )


def config_with(tmp_path: Path, rules: str, extra: str = "") -> Path:
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "main.yml").write_text(rules)
    cfg = tmp_path / "monitor.yml"
    cfg.write_text(
        f"feeds: []\nrules: rules/\nstate_dir: state\nhttp: {{listen: '127.0.0.1:0'}}\n{extra}"
    )
    return cfg


async def start_daemon(config: Path) -> asyncio.subprocess.Process:
    """``news-monitor run -c config`` as a child process, its stderr piped."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "monitor",
        "run",
        "-c",
        str(config),
        cwd=ROOT,
        stderr=asyncio.subprocess.PIPE,
    )


async def wait_healthy(session: aiohttp.ClientSession, port: int) -> None:
    """Until the daemon on ``port`` answers /healthz with 200 (10 s at most)."""
    for _ in range(200):
        try:
            async with session.get(f"http://127.0.0.1:{port}/healthz") as r:
                assert r.status == 200
                return
        except aiohttp.ClientConnectionError:
            await asyncio.sleep(0.05)
    raise AssertionError("the daemon never answered /healthz")


async def rules_gauge(session: aiohttp.ClientSession, port: int) -> str:
    """The ``news_monitor_rules`` line of /metrics."""
    async with session.get(f"http://127.0.0.1:{port}/metrics") as r:
        return next(x for x in (await r.text()).splitlines() if x.startswith("news_monitor_rules"))


def test_check_accepts_the_shipped_example_config() -> None:
    """`check` on deploy/monitor.example.yml exits 0 with a summary."""
    result = cli("check", "-c", "deploy/monitor.example.yml")
    assert result.returncode == 0, result.stderr
    assert "ok:" in result.stdout and "rules" in result.stdout


def test_check_and_run_report_a_rule_syntax_error_the_same_way(tmp_path: Path) -> None:
    """A syntax error is path:line:col: error: from check (exit 1), and run refuses to start."""
    cfg = config_with(tmp_path, BAD_RULES)
    check = cli("check", "-c", str(cfg))
    run = cli("run", "-c", str(cfg))
    assert check.returncode == 1 and run.returncode == 1
    pattern = re.compile(r"^\S*rules/main\.yml:3:\d+: error: .+$", re.MULTILINE)
    assert pattern.search(check.stderr), check.stderr
    assert check.stderr.strip() == run.stderr.strip()
    assert "Traceback" not in check.stderr + run.stderr


def test_unknown_sink_in_notify_is_reported(tmp_path: Path) -> None:
    """A rule routing to a sink that is not configured fails check at that notify entry."""
    rules = "rules:\n  - id: r\n    query: x\n    notify: [nowhere, desk, elsewhere]\n"
    sinks = "sinks:\n  desk: {type: webhook, url: 'https://h.example/'}\n"
    result = cli("check", "-c", str(config_with(tmp_path, rules, sinks)))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"{tmp_path}/rules/main.yml:4:14: error: rule 'r' notifies unknown sink 'nowhere' "
        "(sinks: desk)",
        f"{tmp_path}/rules/main.yml:4:29: error: rule 'r' notifies unknown sink 'elsewhere' "
        "(sinks: desk)",
    ]


def test_check_reports_every_problem_of_config_and_rules(tmp_path: Path) -> None:
    """A bad config does not hide its other problems, nor those of the rule files."""
    rules = "rules:\n  - id: r\n    query: 'a AND (b'\n  - id: s\n    query: x\n    colour: red\n"
    cfg = config_with(tmp_path, rules, "fetch: {timeout: 5x, bar: 2}\n")
    cfg.write_text(cfg.read_text().replace("{listen: '127.0.0.1:0'}", "{listen: nope}"))
    result = cli("check", "-c", str(cfg))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert [line.split(": error: ")[0] for line in lines] == [
        f"{cfg}:4:16",
        f"{cfg}:5:18",
        f"{cfg}:5:22",
        f"{tmp_path}/rules/main.yml:3:19",
        f"{tmp_path}/rules/main.yml:6:5",
    ]
    assert "http.listen" in lines[0] and "fetch.timeout" in lines[1] and "fetch.bar" in lines[2]
    assert "unknown key 'colour'" in lines[4]


def test_rule_files_are_not_checked_when_the_rules_key_is_bad(tmp_path: Path) -> None:
    """With an unusable rules: value, check names it and reads no rule file."""
    cfg = config_with(tmp_path, BAD_RULES, "fetch: {bar: 2}\n")
    cfg.write_text(cfg.read_text().replace("rules: rules/", "rules: [rules/]"))
    result = cli("check", "-c", str(cfg))
    assert result.returncode == 1
    assert [line.split(": error: ")[0] for line in result.stderr.splitlines()] == [
        f"{cfg}:2:8",
        f"{cfg}:5:9",
    ]


def test_missing_rule_folder_points_at_the_config_value(tmp_path: Path) -> None:
    """rules: naming nothing is an error at that value in the config, naming the path."""
    cfg = config_with(tmp_path, "rules: []\n")
    cfg.write_text(cfg.read_text().replace("rules: rules/", "rules: nonexist/"))
    for command in ("check", "run"):
        result = cli(command, "-c", str(cfg))
        assert result.returncode == 1
        assert result.stderr == (
            f"{cfg}:2:8: error: rules: no such rule file or folder: {tmp_path / 'nonexist'}\n"
        )


def test_files_that_are_not_utf8_are_located(tmp_path: Path) -> None:
    """A byte that is not UTF-8, in a rule file or the config, is reported at its line:col."""
    cfg = config_with(tmp_path, "")
    (tmp_path / "rules" / "main.yml").write_bytes(b"rules:\n  - id: r\n    query: 'x\xe9'\n")
    result = cli("check", "-c", str(cfg))
    assert result.returncode == 1
    assert result.stderr.startswith(f"{tmp_path}/rules/main.yml:3:14: error: not UTF-8 (byte 0xe9")
    cfg.write_bytes(cfg.read_bytes().replace(b"state_dir: state", b"state_dir: \xffstate"))
    result = cli("check", "-c", str(cfg))
    assert result.returncode == 1
    assert result.stderr.startswith(f"{cfg}:3:12: error: not UTF-8 (byte 0xff")


def test_missing_config_file_is_one_line(tmp_path: Path) -> None:
    """A config file that does not exist has no position: path: error: file not found."""
    result = cli("check", "-c", str(tmp_path / "none.yml"))
    assert result.returncode == 1
    assert result.stderr == f"{tmp_path / 'none.yml'}: error: file not found\n"


def test_run_with_unreachable_redis_is_one_line(tmp_path: Path) -> None:
    """Redis down at start is one clear line naming redis.url, not a traceback."""
    port = free_port()
    cfg = config_with(tmp_path, "rules: []\n", f"redis: {{url: 'redis://127.0.0.1:{port}/0'}}\n")
    result = cli("run", "-c", str(cfg))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"{cfg}:5:14: error: redis.url: cannot reach Redis"), lines[0]


def test_bad_config_key_is_one_line(tmp_path: Path) -> None:
    """An unknown config key stops run with file:line:col and the key."""
    cfg = config_with(tmp_path, "rules: []\n", "colour: blue\n")
    result = cli("run", "-c", str(cfg))
    assert result.returncode == 1
    assert re.fullmatch(r"\S+monitor\.yml:5:1: error: colour: unknown key .*\n", result.stderr)


async def sigterm(proc: asyncio.subprocess.Process, *, within: float) -> tuple[int, list[str]]:
    """Send the daemon SIGTERM; its exit code (waited for at most ``within`` seconds) and
    the events it logged."""
    proc.send_signal(signal.SIGTERM)
    code = await asyncio.wait_for(proc.wait(), within)
    assert proc.stderr is not None
    return code, [json.loads(line)["event"] for line in (await proc.stderr.read()).splitlines()]


async def test_run_serves_health_and_drains_on_sigterm(tmp_path: Path) -> None:
    """The daemon answers /healthz and /readyz, and exits 0 soon after SIGTERM."""
    rules = "rules:\n  - id: r\n    query: korea\n"
    port = free_port()
    cfg = config_with(tmp_path, rules).read_text().replace("127.0.0.1:0", f"127.0.0.1:{port}")
    (tmp_path / "monitor.yml").write_text(cfg)
    proc = await start_daemon(tmp_path / "monitor.yml")
    try:
        async with aiohttp.ClientSession() as session:
            await wait_healthy(session, port)
            async with session.get(f"http://127.0.0.1:{port}/readyz") as r:
                assert r.status == 200 and (await r.json())["ready"] is True
            async with session.get(f"http://127.0.0.1:{port}/metrics") as r:
                assert "news_monitor_rules 1.0" in await r.text()
        code, events = await sigterm(proc, within=20)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert code == 0
    assert [e for e in events if e in ("started", "stopping", "stopped")] == [
        "started",
        "stopping",
        "stopped",
    ]


async def test_sighup_reloads_rules_the_file_watcher_cannot_see(tmp_path: Path) -> None:
    """SIGHUP reloads on its own: the edit keeps the file's size and mtime, so only the
    signal can reveal it; the daemon keeps serving while it loads."""
    one = "rules:\n  - id: a\n    query: korea\n##- id: b\n##  query: japan\n"
    two = "rules:\n  - id: a\n    query: korea\n  - id: b\n    query: japan\n"
    assert len(one) == len(two)
    port = free_port()
    cfg = config_with(tmp_path, one).read_text().replace("127.0.0.1:0", f"127.0.0.1:{port}")
    (tmp_path / "monitor.yml").write_text(cfg)
    rule_file = tmp_path / "rules" / "main.yml"
    proc = await start_daemon(tmp_path / "monitor.yml")
    try:
        async with aiohttp.ClientSession() as session:
            await wait_healthy(session, port)
            assert await rules_gauge(session, port) == "news_monitor_rules 1.0"
            before = rule_file.stat()
            edited = tmp_path / "edited.yml"  # written aside and swapped in whole, so the
            edited.write_text(two)  # watcher never sees a half-written file
            os.utime(edited, ns=(before.st_atime_ns, before.st_mtime_ns))
            os.replace(edited, rule_file)
            await asyncio.sleep(4.5)  # two watcher periods: the watcher saw nothing
            assert await rules_gauge(session, port) == "news_monitor_rules 1.0"
            proc.send_signal(signal.SIGHUP)
            for _ in range(100):
                if await rules_gauge(session, port) == "news_monitor_rules 2.0":
                    break
                await asyncio.sleep(0.1)
            assert await rules_gauge(session, port) == "news_monitor_rules 2.0"
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 20) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_sigterm_during_a_long_reload_exits_at_once(tmp_path: Path) -> None:
    """A reload of 100k rules takes seconds; SIGTERM meanwhile stops the daemon at once
    instead of waiting for rules it would throw away (the reload thread was joined at
    exit, past shutdown_grace)."""
    port = free_port()
    cfg = config_with(tmp_path, "rules:\n  - id: a\n    query: korea\n").read_text()
    (tmp_path / "monitor.yml").write_text(cfg.replace("127.0.0.1:0", f"127.0.0.1:{port}"))
    many = "".join(f"  - id: r{i}\n    query: 'w{i} AND (v{i} OR x{i})'\n" for i in range(100_000))
    (tmp_path / "big.yml").write_text("rules:\n" + many)
    proc = await start_daemon(tmp_path / "monitor.yml")
    try:
        async with aiohttp.ClientSession() as session:
            await wait_healthy(session, port)
            os.replace(tmp_path / "big.yml", tmp_path / "rules" / "main.yml")
            proc.send_signal(signal.SIGHUP)
            await asyncio.sleep(1.5)  # loading: ~10 s here
            assert await rules_gauge(session, port) == "news_monitor_rules 1.0"
        code, events = await sigterm(proc, within=60)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert code == 0 and events[-2:] == ["stopping", "stopped"]
    # Stopped while still loading: the reload was cut off, not waited for (it used to
    # finish, ~10 s, and log this line before the process could exit).
    assert "rules reloaded" not in events


def test_extract_json_one_object_per_input(tmp_path: Path) -> None:
    """extract --json prints one object per input, with an error field for a bad one."""
    result = cli(
        "extract", "--json", str(SEED_ARTICLE), str(tmp_path / "missing.html"), "http://[::1"
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    first, second, third = (json.loads(line) for line in result.stdout.splitlines())
    assert third["input"] == "http://[::1" and "invalid URL" in third["error"]
    assert first["input"] == str(SEED_ARTICLE)
    assert "operational control" in first["text"].lower()
    assert "spacewalk" not in first["text"].lower()
    assert second["input"].endswith("missing.html") and "error" in second


def test_match_explains_the_seed_story(tmp_path: Path) -> None:
    """match names the Korea rule with highlighted snippets and not the NASA rule."""
    rules = (ROOT / "rules" / "korea.yml").read_text() + (
        "  - id: nasa-spacewalk\n    name: NASA\n    query: 'NASA AND spacewalk'\n"
    )
    cfg = config_with(tmp_path, rules)
    human = cli("match", "-c", str(cfg), str(SEED_ARTICLE))
    as_json = cli("match", "-c", str(cfg), "--json", "-", stdin=SEED_ARTICLE.read_bytes())
    assert human.returncode == 0 and as_json.returncode == 0, human.stderr + as_json.stderr
    assert "korea-opcon" in human.stdout and "nasa-spacewalk" not in human.stdout
    assert "[" in human.stdout  # the matched term is highlighted
    doc = json.loads(as_json.stdout)
    assert doc["input"] == "-"
    assert [m["rule"]["id"] for m in doc["matches"]] == ["korea-opcon"]
    assert all(s["snippet"] for s in doc["matches"][0]["matches"])


async def test_second_signal_stops_at_once_without_traceback(tmp_path: Path) -> None:
    """SIGTERM while a drain waits on a hanging feed, then SIGTERM again: exit 130, no traceback."""
    seen = asyncio.Event()

    async def hang(_: web.Request) -> web.Response:
        seen.set()
        await asyncio.sleep(3600)
        return web.Response()

    app = web.Application()
    app.router.add_get("/feed", hang)
    async with serve(app) as server:
        rules = "rules:\n  - id: r\n    query: korea\n"
        extra = (
            f"feeds: [{{url: 'http://127.0.0.1:{server.port}/feed', interval: 1m}}]\n"
            f"fetch: {{allow_private: ['127.0.0.1:{server.port}'], timeout: 1h}}\n"
            "shutdown_grace: 1h\n"
        )
        cfg = config_with(tmp_path, rules, extra).read_text().replace("feeds: []\n", "", 1)
        (tmp_path / "monitor.yml").write_text(cfg)
        proc = await start_daemon(tmp_path / "monitor.yml")
        try:
            await asyncio.wait_for(seen.wait(), 30)
            proc.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.5)
            proc.send_signal(signal.SIGTERM)
            code = await asyncio.wait_for(proc.wait(), 20)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    assert proc.stderr is not None
    err = (await proc.stderr.read()).decode()
    assert code == 130
    assert "Traceback" not in err and "stopped without draining" in err


def test_local_inputs_are_read_up_to_max_bytes(tmp_path: Path) -> None:
    """A file or stdin is read no further than fetch.max_bytes, as a page is fetched:
    /dev/zero ends with one error line; an empty INPUT name says what to give."""
    result = cli("extract", "--json", "/dev/zero", "")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    zero, empty = (json.loads(line) for line in result.stdout.splitlines())
    assert "/dev/zero is larger than fetch.max_bytes (16777216 bytes)" in zero["error"]
    assert "empty INPUT" in empty["error"]
    cfg = config_with(tmp_path, "rules: []\n", "fetch: {max_bytes: 1KiB}\n")
    page = tmp_path / "page.html"
    page.write_bytes(b"<p>Korea</p>" * 100)
    for args, stdin in (([str(page)], None), (["-"], page.read_bytes())):
        result = cli("match", "-c", str(cfg), "--json", *args, stdin=stdin)
        assert result.returncode == 1, result.stderr
        assert "larger than fetch.max_bytes (1024 bytes)" in json.loads(result.stdout)["error"]
