"""Building blocks of the end-to-end tests: a local news site, receivers, a daemon runner.

Everything listens on 127.0.0.1; the daemon is configured to allow exactly the site's port.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestServer

from monitor.config import Config, load_config
from monitor.daemon import POLL_DEADLINE, Daemon, resources
from monitor.rules import RuleSet

RULES = """\
entities:
  south-korea: ["South Korea", "S. Korea", "Republic of Korea", "case:ROK", "Seoul"]
rules:
  - id: korea-opcon
    name: Korea wartime operational control
    query: '@south-korea AND ("operational control" OR OPCON)'
    notify: {notify}
    channels: [alerts.korea]
  - id: nasa-spacewalk
    name: NASA spacewalks
    query: 'NASA AND spacewalk'
    notify: {notify}
"""

RSS = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>Local wire</title><link>{base}/</link>
<description>test</description>
<item><title>S.Korea, U.S. discuss wartime operational control transfer</title>
<link>{base}/world/korea-opcon.html?utm_source=rss&amp;utm_medium=feed</link>
<guid isPermaLink="false">korea-opcon-1</guid>
<pubDate>Wed, 01 Dec 2021 06:36:00 GMT</pubDate>
<description>Seoul and Washington talk about OPCON.</description></item>
</channel></rss>
"""


@dataclass
class Site:
    """A local news site: one RSS feed whose item links to the reference story page."""

    article: bytes
    feed_requests: int = 0
    page_requests: int = 0
    server: TestServer | None = None

    @property
    def base(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.port}"

    def app(self) -> web.Application:
        async def feed(_: web.Request) -> web.Response:
            self.feed_requests += 1
            return web.Response(text=RSS.format(base=self.base), content_type="application/rss+xml")

        async def page(_: web.Request) -> web.Response:
            self.page_requests += 1
            return web.Response(body=self.article, content_type="text/html")

        app = web.Application()
        app.router.add_get("/feed.xml", feed)
        app.router.add_get("/world/korea-opcon.html", page)
        return app


@dataclass
class Receiver:
    """A webhook receiver answering from a script of statuses (the last one repeats)."""

    statuses: list[int] = field(default_factory=lambda: [200])
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    server: TestServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.port}/hook"

    def app(self) -> web.Application:
        async def hook(request: web.Request) -> web.Response:
            body = await request.read()
            n = len(self.requests)
            self.requests.append((dict(request.headers), body))
            return web.Response(status=self.statuses[min(n, len(self.statuses) - 1)])

        app = web.Application()
        app.router.add_post("/hook", hook)
        return app


@contextlib.asynccontextmanager
async def serve(app: web.Application) -> AsyncIterator[TestServer]:
    """Serve ``app`` on a free 127.0.0.1 port."""
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield server
    finally:
        await server.close()


def write_config(
    tmp: Path,
    site: Site,
    *,
    redis_url: str | None = None,
    webhook: str | None = None,
    secret: str | None = None,
    rules: str | None = None,
    interval: str = "1s",
) -> Path:
    """A config for ``site`` (fetch_article on) with the Korea and NASA rules."""
    notify = "[partner]" if webhook else "[]"
    (tmp / "rules").mkdir(exist_ok=True)
    (tmp / "rules" / "test.yml").write_text(rules or RULES.format(notify=notify))
    assert site.server is not None
    lines = [
        "feeds:",
        # max_interval pins the adaptive schedule (the test feed's entry is years old, which
        # would otherwise mean one poll a day) so tests see several polls.
        f"  - {{url: '{site.base}/feed.xml', name: local-wire, interval: {interval}, "
        f"max_interval: {interval}, fetch_article: true}}",
        "rules: rules/",
        "state_dir: state",
        "fetch:",
        f"  allow_private: ['127.0.0.1:{site.server.port}']",
        "  timeout: 10s",
        "http: {listen: '127.0.0.1:0'}",
        "shutdown_grace: 5s",
    ]
    if redis_url:
        lines += ["redis:", f"  url: '{redis_url}'", "  prefix: nm-test"]
    if webhook:
        lines += [
            "sinks:",
            f"  partner: {{type: webhook, url: '{webhook}'"
            + (f", secret: '{secret}'" if secret else "")
            + "}",
        ]
    path = tmp / "monitor.yml"
    path.write_text("\n".join(lines) + "\n")
    return path


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 30.0) -> None:
    """Wait until ``check`` holds; fail with a clear message when it never does."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"condition not met within {within}s: {check.__doc__ or check}")


@contextlib.asynccontextmanager
async def running(
    config_path: Path,
    retry_schedule: tuple[float, ...] = (0.2,) * 7,
    poll_deadline: float = POLL_DEADLINE,
) -> AsyncIterator[Daemon]:
    """The daemon running in this event loop; stopped (and drained) on exit."""
    config: Config = load_config(config_path)
    rules = RuleSet.from_files(list(config.rules))
    async with resources(config) as deps:
        daemon = Daemon(deps, rules, retry_schedule=retry_schedule, poll_deadline=poll_deadline)
        task = asyncio.create_task(daemon.run())
        try:
            yield daemon
        finally:
            daemon.stop.set()
            await asyncio.wait_for(task, 15)
