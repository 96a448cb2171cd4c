"""Ingestion at scale: polls/s on 304s, feeds/s and entries/s on first sight, peak RSS.

A feed server runs in its own process on 127.0.0.1 (so its CPU is not counted), hosting
thousands of feeds built from the shared corpus (../shared/corpus/feeds): feed ``i`` serves
corpus file ``i mod n`` at ``/f/<i>.xml`` with its own ETag and Last-Modified, and answers
304 to a matching ``If-None-Match``. This process runs the real pipeline — ``poll_once``
with fetch, parse, new?, clean, story linking, matching against generated rules and
recording in a SQLite store — with ``--concurrency`` polls in flight, and prints per CPU
second of this process (worker threads included):

1. peak RSS with ``--many`` feeds (states stored, then one 304 round over all of them),
   measured first, before the first-sight phase's large feed bodies raise the peak;
2. first sight: every feed new, every entry new (one fresh store per pass over the corpus
   files, so each pass sees its entries for the first time);
3. 304s: the same feeds polled again with their validators.

Machines differ (the same code ran 2.6x slower on one session's machine than on the last), so
the script first times a fixed yardstick in this process: fastfeedparser parsing every
corpus feed, which the issue measured at ~1,100 feeds/s on its reference machine. The
first-sight and 304 figures are then also printed scaled to that machine (figure x 1,100 /
the yardstick here), labelled as such; the raw figures stay the ones measured.

No assertions: the figures are for people.

With ``--entries N`` the server cuts every feed to its first N entries. The corpus feeds
average 30.5 entries, so the issue's two first-sight targets (200 feeds/s and 2,000
entries/s) cannot both hold on them; together they assume feeds of about 10 entries, which
``--entries 10`` serves.

    .venv/bin/python bench/ingest.py [--rules 10000] [--passes 2] [--many 10000] [--entries N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import fastfeedparser
from aiohttp import web
from lxml import etree

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from match import Vocabulary, feed_texts, load_texts, write_rules  # noqa: E402

from monitor.config import FeedConfig, FetchConfig  # noqa: E402
from monitor.fetch import Fetcher, make_session  # noqa: E402
from monitor.logs import configure  # noqa: E402
from monitor.metrics import Metrics  # noqa: E402
from monitor.poller import Poller, _lanes, poll_once  # noqa: E402
from monitor.rules import RuleSet, load_resident  # noqa: E402
from monitor.store.base import FeedState  # noqa: E402
from monitor.store.sqlite import SQLiteStore  # noqa: E402

CORPUS = ROOT.parent / "shared" / "corpus"
LAST_MODIFIED = "Wed, 01 Dec 2021 06:36:00 GMT"


# --- the feed server (its own process) -------------------------------------------------------


def corpus_feeds(entries: int = 0) -> list[bytes]:
    """Every corpus feed file's bytes, in a stable order; with ``entries``, each cut to its
    first ``entries`` items."""
    files = sorted(p for p in (CORPUS / "feeds").rglob("*") if p.suffix in (".xml", ".json"))
    return [cut(p.read_bytes(), entries) if entries else p.read_bytes() for p in files]


def cut(data: bytes, entries: int) -> bytes:
    """A feed with its items past the first ``entries`` removed (as it is, if unreadable)."""
    if data.lstrip().startswith(b"{"):
        doc = json.loads(data)
        doc["items"] = doc.get("items", [])[:entries]
        return json.dumps(doc).encode()
    try:
        root = etree.fromstring(data, etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError:
        return data
    items = [
        el for el in root.iter(etree.Element) if etree.QName(el).localname in ("item", "entry")
    ]
    for el in items[entries:]:
        el.getparent().remove(el)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="utf-8"))


def serve(port: int, ready: multiprocessing.synchronize.Event, entries: int) -> None:  # type: ignore[name-defined]
    """Serve ``/f/<i>.xml`` until killed."""
    feeds = corpus_feeds(entries)

    async def handle(request: web.Request) -> web.Response:
        i = int(request.match_info["i"])
        etag = f'"{i}"'
        headers = {"ETag": etag, "Last-Modified": LAST_MODIFIED}
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers=headers)
        return web.Response(body=feeds[i % len(feeds)], headers=headers, content_type="text/xml")

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/f/{i}.xml", handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port, backlog=1024).start()
        ready.set()
        await asyncio.Event().wait()

    asyncio.run(main())


# --- the client ------------------------------------------------------------------------------


def rules(count: int, dense: bool) -> RuleSet:
    """``count`` generated rules (bench/match.py's generator and vocabulary: pages and feeds,
    or pages alone with ``dense``), loaded as the daemon loads them (frozen out of the cycle
    collector's sight, see ``load_resident``), so the phases below are not charged for
    collections walking the rule set."""
    texts = load_texts(CORPUS)
    with tempfile.TemporaryDirectory(prefix="ingest-rules-") as name:
        folder = Path(name)
        write_rules(Vocabulary(texts, [] if dense else feed_texts(CORPUS)), count, folder, seed=1)
        return load_resident([folder])


def feeds(port: int, start: int, count: int) -> list[FeedConfig]:
    base = f"http://127.0.0.1:{port}/f"
    return [FeedConfig(f"{base}/{i}.xml", f"f{i}", 60.0) for i in range(start, start + count)]


async def run_all(polls: list[Callable[[], Awaitable[object]]], concurrency: int) -> float:
    """Run every poll with ``concurrency`` in flight; returns CPU seconds used."""
    queue = list(reversed(polls))

    async def worker() -> None:
        while queue:
            await queue.pop()()

    cpu = time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.process_time() - cpu


REFERENCE_FEEDS_PER_S = 1_100  # fastfeedparser on the corpus, the reference machine


def yardstick() -> float:
    """fastfeedparser's feeds/s over the corpus in this process (best of three rounds):
    how fast this machine is against the issue's reference (REFERENCE_FEEDS_PER_S)."""
    bodies = corpus_feeds()
    best = 0.0
    for _ in range(3):
        cpu = time.process_time()
        for body in bodies:
            try:
                fastfeedparser.parse(body)
            except Exception:  # a feed it cannot read costs what it costs
                continue
        best = max(best, len(bodies) / (time.process_time() - cpu))
    return best


async def bench(args: argparse.Namespace, port: int) -> None:
    speed = yardstick()
    args.scale = REFERENCE_FEEDS_PER_S / speed
    print(
        f"yardstick: fastfeedparser {speed:.0f} feeds/s here, {REFERENCE_FEEDS_PER_S:,} on "
        f"the reference machine: this machine runs at {1 / args.scale:.2f}x its speed"
    )
    ruleset = rules(args.rules, args.dense)
    print(f"{len(ruleset.rules)} rules loaded; peak RSS so far {peak_mb():.0f} MB")
    n = len(corpus_feeds())
    cfg = FetchConfig(allow_private=(f"127.0.0.1:{port}",), concurrency=64, per_host=64)
    session = make_session(cfg)
    fetcher = Fetcher(cfg, session)
    tmp = Path(tempfile.mkdtemp(prefix="ingest-"))
    try:
        # The 10k-feed round first: its peak RSS is the daemon's with that many feeds, not
        # the first-sight phase's (64 multi-MB feed bodies in flight at once).
        if args.many:
            await many(args, fetcher, ruleset, tmp, port)
        if args.passes:
            await first_sight(args, fetcher, ruleset, tmp, port, n=n)
    finally:
        await session.close()
        shutil.rmtree(tmp, ignore_errors=True)  # the stores: 20 MB a run


async def first_sight(
    args: argparse.Namespace, fetcher: Fetcher, ruleset: RuleSet, tmp: Path, port: int, *, n: int
) -> None:
    """Each pass: a fresh store, every corpus feed once (all new), then again (all 304)."""
    cpu = cpu304 = lane = stored = 0.0
    entries = polled = hits = 0
    rates: list[str] = []  # entries/s of each pass: the first with every cache cold
    for p in range(args.passes):
        store = await SQLiteStore(tmp / f"pass{p}.db").open()
        poller = Poller(fetcher, store, Metrics(), ruleset)
        batch = feeds(port, p * n, n)
        lane0, stored0 = await thread_cpu(_lanes["feeds"]), await thread_cpu(store._executor)
        spent = await run_all([poll(poller, f) for f in batch], args.concurrency)
        cpu += spent
        lane += await thread_cpu(_lanes["feeds"]) - lane0
        stored += await thread_cpu(store._executor) - stored0
        entries += new_entries(poller.metrics)
        rates.append(f"{new_entries(poller.metrics) / spent:.0f}")
        hits += counted(poller.metrics.hits)
        cpu304 += await run_all([poll(poller, f) for f in batch], args.concurrency)
        polled += len(batch)
        await store.close()
    print(
        f"first sight: {polled} feeds, {entries} new entries ({entries / polled:.1f} a feed) "
        f"in {cpu:.1f} CPU s: "
        f"{polled / cpu:.0f} feeds/s, {entries / cpu:.0f} entries/s per core; {hits} hits"
    )
    print(
        f"  of which: feed worker thread (parse, clean, match) {lane:.1f} s "
        f"({lane / entries * 1e6:.0f} µs an entry), store thread {stored:.1f} s, "
        f"event loop and the rest {cpu - lane - stored:.1f} s; entries/s by pass "
        f"{', '.join(rates)} (the first with cold caches)"
    )
    print(f"304s: {polled} polls in {cpu304:.2f} CPU s: {polled / cpu304:.0f} polls/s per core")
    print(
        f"scaled to the reference machine (x{args.scale:.2f}): first sight "
        f"{polled / cpu * args.scale:.0f} feeds/s, {entries / cpu * args.scale:.0f} entries/s; "
        f"304s {polled / cpu304 * args.scale:.0f} polls/s per core"
    )


async def thread_cpu(executor: Any) -> float:
    """CPU seconds used so far by the one thread of ``executor``."""
    return float(await asyncio.get_running_loop().run_in_executor(executor, time.thread_time))


def poll(poller: Poller, feed: FeedConfig) -> Callable[[], Awaitable[object]]:
    return lambda: poll_once(poller, feed, "bench")


def new_entries(metrics: Metrics) -> int:
    return counted(metrics.new_articles)


def counted(counter: Any) -> int:
    """The total of a labelled prometheus counter."""
    samples = counter.collect()[0].samples
    return sum(int(s.value) for s in samples if s.name.endswith("_total"))


async def many(
    args: argparse.Namespace, fetcher: Fetcher, ruleset: RuleSet, tmp: Path, port: int
) -> None:
    store = await SQLiteStore(tmp / "many.db").open()
    poller = Poller(fetcher, store, Metrics(), ruleset)
    batch = feeds(port, 0, args.many)
    for i, f in enumerate(batch):
        meta = {"full_at": round(time.time()), "recent": [round(time.time())] * 50}
        await store.put_feed(
            f.url, FeedState(etag=f'"{i}"', last_modified=LAST_MODIFIED, meta=meta)
        )
    cpu = await run_all([poll(poller, f) for f in batch], args.concurrency)
    await store.close()
    print(
        f"{args.many} feeds: one 304 round in {cpu:.1f} CPU s ({args.many / cpu:.0f} polls/s, "
        f"{args.many / cpu * args.scale:.0f} scaled to the reference machine); "
        f"peak RSS {peak_mb():.0f} MB"
    )


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", type=int, default=10_000)
    parser.add_argument("--passes", type=int, default=2, help="first-sight passes over corpus")
    parser.add_argument("--many", type=int, default=10_000, help="feeds for the RSS figure")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--port", type=int, default=18_999)
    parser.add_argument("--dense", action="store_true", help="rule words from the pages only")
    parser.add_argument(
        "--entries", type=int, default=0, help="cut each feed to its first N entries"
    )
    args = parser.parse_args()
    configure(json=True, level="error")
    ready = multiprocessing.Event()
    server = multiprocessing.Process(
        target=serve, args=(args.port, ready, args.entries), daemon=True
    )
    server.start()
    try:
        if not ready.wait(30):
            print("feed server did not start", file=sys.stderr)
            return 1
        asyncio.run(bench(args, args.port))
    finally:
        server.terminate()
        server.join()
    return 0


if __name__ == "__main__":
    sys.exit(main())
