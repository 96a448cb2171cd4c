"""WebSub round trip on loopback: subscribe → verify → push → hit, with a local hub stand-in."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from aiohttp import web

from monitor.websub import Subscription, renewal_due, valid_signature
from tests.conftest import free_port
from tests.e2e import eventually, running, serve

RULES = "rules:\n  - id: korea\n    query: 'Korea AND \"operational control\"'\n"


def feed_xml(hub: str, items: list[tuple[str, str, str]]) -> bytes:
    """An RSS feed advertising ``hub``, with (title, link, description) items."""
    body = "".join(
        f"<item><title>{t}</title><link>{link}</link><description>{d}</description></item>"
        for t, link, d in items
    )
    return (
        '<?xml version="1.0"?><rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom">'
        f'<channel><title>w</title><atom:link rel="hub" href="{hub}"/>{body}</channel></rss>'
    ).encode()


@dataclass
class Hub:
    """A hub stand-in: takes subscriptions and verifies intent right away."""

    subscriptions: list[dict[str, str]] = field(default_factory=list)
    verifications: list[tuple[int, str, str]] = field(default_factory=list)  # status, sent, got

    def app(self) -> web.Application:
        async def subscribe(request: web.Request) -> web.Response:
            form = dict(await request.post())
            self.subscriptions.append({k: str(v) for k, v in form.items()})
            challenge = secrets.token_hex(8)
            query = {
                "hub.mode": "subscribe",
                "hub.topic": str(form["hub.topic"]),
                "hub.challenge": challenge,
                "hub.lease_seconds": "3600",
            }
            async with (
                aiohttp.ClientSession() as s,
                s.get(str(form["hub.callback"]), params=query) as r,
            ):
                self.verifications.append((r.status, challenge, await r.text()))
            return web.Response(status=202)

        app = web.Application()
        app.router.add_post("/hub", subscribe)
        return app


def test_signature_check() -> None:
    """X-Hub-Signature: sha1/sha256/sha512 HMACs verify; wrong secret, body or method fail."""
    body, secret = b"<rss/>", "s3cret"
    for method in ("sha1", "sha256", "sha512"):
        digest = hmac.new(secret.encode(), body, method).hexdigest()
        assert valid_signature(f"{method}={digest}", body, secret)
        assert not valid_signature(f"{method}={digest}", body + b" ", secret)
        assert not valid_signature(f"{method}={digest}", body, "other")
    assert not valid_signature("md5=abc", body, secret)
    assert not valid_signature("", body, secret)


def test_renewal_due() -> None:
    """Renew when missing, moved, failed an hour ago, or past half the lease."""
    sub = Subscription("h", "t", "s", "active", 0.0, expires_at=10_000.0, lease=10_000.0)
    assert not renewal_due(sub, "h", "t", 1000.0, 60.0)
    assert renewal_due(sub, "h", "t", 5001.0, 60.0)
    assert renewal_due(sub, "other-hub", "t", 1000.0, 60.0)
    assert renewal_due(None, "h", "t", 1000.0, 60.0)
    failed = Subscription("h", "t", "s", "failed", 0.0)
    assert not renewal_due(failed, "h", "t", 60.0, 60.0)
    assert renewal_due(failed, "h", "t", 3600.0, 60.0)


async def test_websub_round_trip(tmp_path: Path) -> None:
    """The daemon subscribes, echoes the challenge, and a signed push (only) makes a hit."""
    hub = Hub()
    feed_body: dict[str, bytes] = {}

    async def feed(_: web.Request) -> web.Response:
        return web.Response(body=feed_body["xml"], content_type="application/rss+xml")

    feed_app = web.Application()
    feed_app.router.add_get("/feed.xml", feed)
    port = free_port()
    async with serve(hub.app()) as hub_srv, serve(feed_app) as feed_srv:
        hub_url = f"http://127.0.0.1:{hub_srv.port}/hub"
        feed_body["xml"] = feed_xml(hub_url, [("Weather", "http://w.example/1", "Sunny")])
        (tmp_path / "rules.yml").write_text(RULES)
        (tmp_path / "monitor.yml").write_text(
            "feeds:\n"
            f"  - {{url: 'http://127.0.0.1:{feed_srv.port}/feed.xml', name: wire,"
            " interval: 1s, max_interval: 1s}\n"
            "rules: rules.yml\nstate_dir: state\n"
            f"fetch: {{allow_private: ['127.0.0.1:{feed_srv.port}', '127.0.0.1:{hub_srv.port}']}}\n"
            f"http: {{listen: '127.0.0.1:{port}'}}\n"
            f"websub: {{callback: 'http://127.0.0.1:{port}/websub', lease: 1h}}\n"
            "shutdown_grace: 5s\n"
        )
        async with running(tmp_path / "monitor.yml") as daemon:

            async def verified() -> bool:
                """the hub verified the subscription"""
                return bool(hub.verifications)

            await eventually(verified)
            form = hub.subscriptions[0]
            status, sent, got = hub.verifications[0]
            assert (status, got) == (200, sent)
            assert form["hub.topic"] == f"http://127.0.0.1:{feed_srv.port}/feed.xml"
            assert form["hub.mode"] == "subscribe" and form["hub.lease_seconds"] == "3600"

            story = "South Korea seeks operational control of its forces."
            pushed = feed_xml(hub_url, [("OPCON", "http://w.example/2", story)])
            forged = feed_xml(hub_url, [("OPCON again", "http://w.example/3", story)])
            digest = hmac.new(form["hub.secret"].encode(), pushed, hashlib.sha256).hexdigest()
            async with aiohttp.ClientSession() as s:
                for body, sig in ((forged, "sha256=" + "0" * 64), (pushed, f"sha256={digest}")):
                    async with s.post(
                        form["hub.callback"], data=body, headers={"X-Hub-Signature": sig}
                    ) as r:
                        assert r.status == 202

            async def hit() -> bool:
                """the pushed entry produced a hit"""
                return bool(await daemon.deps.store.hits())

            await eventually(hit)
            bodies = await daemon.deps.store.hits()
    urls = [json.loads(b)["article"]["url"] for b in bodies]
    assert urls == ["http://w.example/2"]
