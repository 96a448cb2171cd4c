"""The small HTTP server: ``/healthz`` (alive), ``/readyz`` (ready to work), ``/metrics``.

``/readyz`` answers 200 or 503 with ``{"ready", "problems", ...details}``: details (such as
feeds disabled after 410 Gone) are shown without making the daemon unready. Extra routes
(the WebSub callback) are served by the same app.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from monitor.metrics import Metrics

ReadyCheck = Callable[[], Awaitable[dict[str, str]]]
Details = Callable[[], dict[str, Any]]


def make_app(
    metrics: Metrics,
    ready: ReadyCheck,
    *,
    details: Details | None = None,
    routes: Iterable[web.RouteDef] = (),
) -> web.Application:
    """The aiohttp app; ``ready`` returns problems by component, empty when ready."""

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def readyz(_: web.Request) -> web.Response:
        problems = await ready()
        doc = {**(details() if details else {}), "ready": not problems, "problems": problems}
        body = json.dumps(doc) + "\n"
        return web.Response(
            text=body, status=503 if problems else 200, content_type="application/json"
        )

    async def metrics_view(_: web.Request) -> web.Response:
        # In a worker thread: with thousands of feeds the text takes a while to render, and
        # every scrape would otherwise stall polling and delivery for that long.
        resp = web.Response(body=await asyncio.to_thread(metrics.render))
        resp.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return resp

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_view)
    app.router.add_routes(list(routes))
    return app


async def start(app: web.Application, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Start serving; returns the runner (to clean up) and the bound port."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    addresses = runner.addresses
    bound = addresses[0][1] if addresses else port
    return runner, int(bound)
