"""URLs typed on the command line: `extract URL` and `match URL` fetch the operator's own
input, loopback included, under every other fetch limit; redirects stay under the guard."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.conftest import ROOT, SEED_ARTICLE
from tests.e2e import serve
from tests.test_cli import cli, config_with

TITLE = "U.S. military leaders in S.Korea for talks over N.Korea, alliance"


@dataclass
class Pages:
    """A local site serving the seed story, a same-site redirect to it and a redirect to
    another loopback server (``elsewhere``), which counts the requests it gets."""

    base: str = ""
    elsewhere: str = ""
    elsewhere_hits: list[str] = field(default_factory=list)


@pytest.fixture
async def pages() -> AsyncIterator[Pages]:
    """Both servers, on 127.0.0.1."""
    state = Pages()

    async def story(_: web.Request) -> web.Response:
        return web.Response(body=SEED_ARTICLE.read_bytes(), content_type="text/html")

    async def hidden(request: web.Request) -> web.Response:
        state.elsewhere_hits.append(request.path)
        return web.Response(body=SEED_ARTICLE.read_bytes(), content_type="text/html")

    async def moved(_: web.Request) -> web.Response:
        raise web.HTTPFound("/story.html")

    async def away(_: web.Request) -> web.Response:
        raise web.HTTPFound(f"{state.elsewhere}/hidden.html")

    other = web.Application()
    other.router.add_get("/hidden.html", hidden)
    site = web.Application()
    site.router.add_get("/story.html", story)
    site.router.add_get("/moved", moved)
    site.router.add_get("/away", away)
    async with serve(other) as other_server, serve(site) as server:
        state.base = f"http://127.0.0.1:{server.port}"
        state.elsewhere = f"http://127.0.0.1:{other_server.port}"
        yield state


async def run(*args: str) -> tuple[int, list[dict[str, Any]]]:
    """``news-monitor ARGS`` (while this loop keeps serving): exit code and JSON lines."""
    result = await asyncio.to_thread(cli, *args)
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, [json.loads(line) for line in result.stdout.splitlines()]


def korea_config(tmp_path: Path, extra: str = "") -> Path:
    """A config with the shipped Korea rules and no fetch.allow_private."""
    return config_with(tmp_path, (ROOT / "rules" / "korea.yml").read_text(), extra)


async def test_extract_fetches_a_typed_loopback_url(pages: Pages) -> None:
    """extract --json URL on 127.0.0.1 gives the article, also through a same-site redirect."""
    code, docs = await run("extract", "--json", f"{pages.base}/story.html", f"{pages.base}/moved")
    assert code == 0, docs
    assert [(d["input"], d["title"]) for d in docs] == [
        (f"{pages.base}/story.html", TITLE),
        (f"{pages.base}/moved", TITLE),
    ]
    assert all("operational control" in d["text"].lower() for d in docs)


async def test_match_fetches_a_typed_loopback_url(pages: Pages, tmp_path: Path) -> None:
    """match --json URL on 127.0.0.1 matches the article, though the config allows no
    private address."""
    code, docs = await run(
        "match", "-c", str(korea_config(tmp_path)), "--json", pages.base + "/story.html"
    )
    assert code == 0, docs
    (doc,) = docs
    assert doc["title"] == TITLE
    assert [m["rule"]["id"] for m in doc["matches"]] == ["korea-opcon"]


async def test_redirect_to_another_private_address_is_refused(pages: Pages, tmp_path: Path) -> None:
    """A redirect from the typed URL to another loopback port is refused, with the fix that
    applies: no config for extract, fetch.allow_private in the config for match."""
    code, (doc,) = await run("extract", "--json", f"{pages.base}/away")
    assert code == 1
    error = doc["error"]
    assert error.startswith(f"refused {pages.elsewhere}/hidden.html: ")
    assert "fetch.allow_private" not in error
    assert error.endswith("(give that URL on the command line to fetch it)")
    cfg = korea_config(tmp_path)
    code, (doc,) = await run("match", "-c", str(cfg), "--json", f"{pages.base}/away")
    assert code == 1
    assert doc["error"].endswith(
        f"(allow it with fetch.allow_private in {cfg}, or give that URL on the command line "
        "to fetch it)"
    )
    assert pages.elsewhere_hits == []


async def test_typed_url_keeps_the_other_fetch_limits(pages: Pages, tmp_path: Path) -> None:
    """Allowing the typed URL's address lifts nothing else: the size cap still holds."""
    cfg = korea_config(tmp_path, "fetch: {max_bytes: 1KiB}\n")
    code, (doc,) = await run("match", "-c", str(cfg), "--json", f"{pages.base}/story.html")
    assert code == 1 and "exceeds max_bytes 1024" in doc["error"]
