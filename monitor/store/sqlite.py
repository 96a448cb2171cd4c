"""The embedded store: one SQLite file holding feed state, seen keys, hits and the outbox.

Promises (beyond those of :mod:`monitor.store.base`):
- The event loop never blocks on SQLite: one connection lives on one dedicated worker
  thread, and every call runs there, one at a time, in the order made (so no lock is
  needed). A call cancelled before its turn does not run; the calls queued when the
  interpreter exits still run before it does.
- WAL journal with ``synchronous=NORMAL``: a crash of the process loses nothing committed;
  a power loss may lose the last transactions but never corrupts the file.
- ``record`` is one ``BEGIN IMMEDIATE`` transaction: on any error nothing of it is kept.
- ``due`` leases what it hands out for ``lease`` seconds, so a delivery is not handed out
  twice while its attempt runs; ``ack``/``retry``/``dead`` end the lease, and ``open`` clears
  leases left by a previous process (one process owns the file).
- The schema version is ``PRAGMA user_version``; a file from a newer version is refused.

Seen keys live :data:`SEEN_TTL` (30 days, as in the Redis store) after a feed last listed
their entry: ``unseen`` renews the marks it finds (every feed is fetched in full at least
daily). Hits live :data:`HIT_TTL` (90 days, as the Redis store's hit marks) after they were
last met: ``record`` renews a hit it meets again, so a story whose copies keep coming alerts
once. Unlike a Redis hit mark, a hit with a delivery still pending or dead is kept whatever
its age, since it holds the body that gets sent.
``record`` deletes expired marks and hits once every ``prune_every`` seconds, in batches,
starting :data:`FIRST_PRUNE_AFTER` after open. So the file stops growing with every entry
and hit ever seen, and an entry still listed is never taken for new.

Usage: ``store = SQLiteStore(path); await store.open()`` (or ``async with SQLiteStore(path)``).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from monitor.errors import MonitorError
from monitor.hit import Hit
from monitor.simhash import BAND_BITS, MASK, MAX_DISTANCE, bands, distance
from monitor.store.base import FeedState, Pending, window_end
from monitor.store.thread import StoreThread

T = TypeVar("T")

SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE feeds (
    url           TEXT PRIMARY KEY,
    etag          TEXT,
    last_modified TEXT,
    next_poll     REAL NOT NULL DEFAULT 0,
    errors        INTEGER NOT NULL DEFAULT 0,
    last_status   INTEGER,
    last_error    TEXT,
    disabled      INTEGER NOT NULL DEFAULT 0,
    meta          TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE seen (
    key TEXT PRIMARY KEY,
    at  REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE hits (
    id          TEXT PRIMARY KEY,
    rule_id     TEXT NOT NULL,
    story       TEXT NOT NULL,
    body        BLOB NOT NULL,
    recorded_at REAL NOT NULL
);
CREATE TABLE deliveries (
    sink        TEXT NOT NULL CHECK (sink <> ''),
    hit_id      TEXT NOT NULL REFERENCES hits (id),
    attempts    INTEGER NOT NULL DEFAULT 0,
    next_at     REAL NOT NULL,
    last_error  TEXT,
    state       TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'dead')),
    lease_until REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (sink, hit_id)
);
CREATE INDEX deliveries_due ON deliveries (sink, state, next_at);
"""

PENDING_COLUMNS = "d.sink, d.hit_id, h.body, d.attempts, d.next_at, d.last_error"

# Small named values (sink disabled marks, throttle windows). Created if missing rather than
# by a schema bump: an older file gains it, and older code never reads it.
STATE_TABLE = "CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value TEXT NOT NULL)"

# Near-duplicate story index (monitor.simhash): one row per (16-bit band, fingerprint), kept
# for the story window. Created if missing, like STATE_TABLE: no schema bump needed.
STORY_TABLES = (
    "CREATE TABLE IF NOT EXISTS story_bands (band INTEGER NOT NULL,"
    " fingerprint INTEGER NOT NULL, story TEXT NOT NULL, at REAL NOT NULL)",
    "CREATE INDEX IF NOT EXISTS story_bands_band ON story_bands (band)",
    "CREATE INDEX IF NOT EXISTS story_bands_at ON story_bands (at)",
)
# For pruning seen keys and hits (and for the foreign-key check of each deleted hit, which
# looks its deliveries up by hit id); created if missing like the tables above.
INDEXES = (
    "CREATE INDEX IF NOT EXISTS seen_at ON seen (at)",
    "CREATE INDEX IF NOT EXISTS hits_recorded_at ON hits (recorded_at)",
    "CREATE INDEX IF NOT EXISTS deliveries_hit ON deliveries (hit_id)",
)
SEEN_TTL = 30 * 86_400.0
HIT_TTL = 90 * 86_400.0
PRUNE_EVERY = 3_600.0
# No pruning before this long after open: every feed is fetched in full at least daily, so by then
# the marks of entries still listed are renewed, even in a file written before marks were
# renewed (whose ``at`` is the first sighting) or after weeks of downtime.
FIRST_PRUNE_AFTER = 2 * 86_400.0
PRUNE_BATCH = 5_000  # rows per delete: each batch holds the write lock only briefly


class SQLiteStore:
    """The :class:`~monitor.store.base.Store` on one SQLite file (created with its folders)."""

    def __init__(
        self,
        path: str | Path,
        *,
        lease: float = 120.0,
        owner: bool = True,
        seen_ttl: float = SEEN_TTL,
        hit_ttl: float = HIT_TTL,
        prune_every: float = PRUNE_EVERY,
        first_prune_after: float = FIRST_PRUNE_AFTER,
    ) -> None:
        self.path = Path(path)
        self.lease = lease
        self.seen_ttl = seen_ttl
        self.hit_ttl = hit_ttl
        self.prune_every = prune_every
        self.first_prune_after = first_prune_after
        self._next_prune = 0.0
        # The daemon owns the file and clears leases a dead predecessor left; a second
        # process (the ``deliveries`` command) must not clear the running daemon's leases.
        self.owner = owner
        self._executor: StoreThread | None = None
        self._db: sqlite3.Connection | None = None
        self._claims: dict[str, tuple[str, float]] = {}

    # -- lifecycle -------------------------------------------------------------------------

    async def open(self) -> SQLiteStore:
        """Create the file, folders and schema if needed; returns the store itself."""
        self._next_prune = time.time() + self.first_prune_after
        if self._executor is not None:
            return self
        self._executor = StoreThread("sqlite-store")
        try:
            await self._thread(self._connect)
        except (sqlite3.Error, OSError) as exc:
            await self.close()
            raise MonitorError(f"cannot open state database {self.path}: {exc}") from exc
        return self

    async def close(self) -> None:
        """Close the connection and its thread; everything committed stays in the file."""
        if self._executor is None:
            return
        if self._db is not None:
            await self._thread(self._db.close)
            self._db = None
        self._executor.shutdown(wait=True)
        self._executor = None

    async def __aenter__(self) -> SQLiteStore:
        return await self.open()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def ping(self) -> None:
        """Raise :class:`MonitorError` if the database cannot be read."""
        try:
            await self._run(lambda db: db.execute("SELECT 1").fetchone())
        except (sqlite3.Error, RuntimeError) as exc:
            raise MonitorError(f"state database {self.path} unavailable: {exc}") from exc

    def _connect(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA foreign_keys=ON")
            db.execute("PRAGMA busy_timeout=5000")
            _migrate(db, self.path)
            db.execute(STATE_TABLE)
            for statement in STORY_TABLES:
                db.execute(statement)
            for statement in INDEXES:
                db.execute(statement)
            if self.owner:
                db.execute("UPDATE deliveries SET lease_until = 0 WHERE lease_until > 0")
        except BaseException:
            db.close()
            raise
        self._db = db

    async def _thread(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the store's own thread."""
        if self._executor is None:
            raise RuntimeError("SQLiteStore is not open (await store.open() first)")
        return await self._executor.call(fn)

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(connection)`` on the store's own thread."""
        db = self._db
        if db is None:
            raise RuntimeError("SQLiteStore is not open (await store.open() first)")
        return await self._thread(lambda: fn(db))

    # -- feeds -----------------------------------------------------------------------------

    async def get_feed(self, url: str) -> FeedState | None:
        """The stored state of the feed at ``url``, or None when never seen."""
        sql = (
            "SELECT etag, last_modified, next_poll, errors, last_status, last_error, disabled,"
            " meta FROM feeds WHERE url = ?"
        )
        row = await self._run(lambda db: db.execute(sql, (url,)).fetchone())
        if row is None:
            return None
        etag, last_modified, next_poll, errors, last_status, last_error, disabled, meta = row
        return FeedState(
            etag,
            last_modified,
            float(next_poll),
            errors,
            last_status,
            last_error,
            bool(disabled),
            json.loads(meta),
        )

    async def put_feed(self, url: str, state: FeedState) -> None:
        """Store the feed's state (replacing what was there)."""
        sql = _PUT_FEED
        args = (
            url,
            state.etag,
            state.last_modified,
            state.next_poll,
            state.errors,
            state.last_status,
            state.last_error,
            int(state.disabled),
            json.dumps(state.meta, separators=(",", ":")),
        )
        await self._run(lambda db: db.execute(sql, args))

    async def claim_feed(self, url: str, owner: str, ttl: float) -> bool:
        """Take the feed for ``ttl`` seconds; False while another owner holds it.

        One process owns the file, so claims live in memory; they still exclude a second
        owner (two pollers in this process) the way Redis claims do. Re-claiming by the same
        owner renews the claim.
        """
        now = time.monotonic()
        holder = self._claims.get(url)
        if holder is not None and holder[0] != owner and holder[1] > now:
            return False
        self._claims[url] = (owner, now + ttl)
        return True

    async def release_feed(self, url: str, owner: str) -> None:
        """Give the feed back, only if ``owner`` still holds it."""
        holder = self._claims.get(url)
        if holder is not None and holder[0] == owner:
            del self._claims[url]

    # -- seen and hits ---------------------------------------------------------------------

    async def unseen(self, keys: list[str]) -> set[str]:
        """The subset of ``keys`` not marked seen yet; the marks of the others are renewed
        (their ``at`` set to now), so they expire ``seen_ttl`` after the last listing."""
        if not keys:
            return set()
        now = time.time()

        def query(db: sqlite3.Connection) -> set[str]:
            wanted = list(dict.fromkeys(keys))
            seen: set[str] = set()
            for chunk in _chunks(wanted, 500):
                marks = ",".join("?" * len(chunk))
                rows = db.execute(f"SELECT key FROM seen WHERE key IN ({marks})", chunk)
                found = [key for (key,) in rows]
                seen.update(found)
                if found:
                    renew = f"UPDATE seen SET at = ? WHERE key IN ({','.join('?' * len(found))})"
                    db.execute(renew, [now, *found])
            return set(wanted) - seen

        return await self._run(query)

    async def record(self, keys: list[str], hits: list[Hit]) -> list[Hit]:
        """Mark ``keys`` seen and record the new ``hits`` with their deliveries, in one transaction.

        A hit whose id is already stored (or repeated in ``hits``) gets no new deliveries;
        the stored hit is renewed (it lives ``hit_ttl`` from now).
        Each new hit gets one pending delivery per distinct sink, due now.
        """
        now = time.time()

        def write(db: sqlite3.Connection) -> list[Hit]:
            with _transaction(db):
                db.executemany(
                    "INSERT OR REPLACE INTO seen (key, at) VALUES (?, ?)", [(k, now) for k in keys]
                )
                recorded = [hit for hit in hits if _insert_hit(db, hit, now)]
            if now >= self._next_prune:
                self._next_prune = now + self.prune_every
                with suppress(sqlite3.Error):  # the record stands; pruning can wait a round
                    self._prune(db, now)
            return recorded

        return await self._run(write)

    async def prune(self) -> int:
        """Delete the seen marks and hits expired now; returns how many rows went."""
        return await self._run(lambda db: self._prune(db, time.time()))

    def _prune(self, db: sqlite3.Connection, now: float) -> int:
        return _delete_batches(db, _EXPIRED_SEEN, now - self.seen_ttl) + _delete_batches(
            db, _EXPIRED_HITS, now - self.hit_ttl
        )

    async def hits(self, limit: int = 100) -> list[bytes]:
        """The ``limit`` most recent hit bodies, newest last."""
        sql = "SELECT body FROM hits ORDER BY rowid DESC LIMIT ?"
        rows = await self._run(lambda db: db.execute(sql, (limit,)).fetchall())
        return [bytes(body) for (body,) in reversed(rows)]

    # -- deliveries ------------------------------------------------------------------------

    async def due(self, sink: str, now: float, limit: int = 100) -> list[Pending]:
        """Due, unleased deliveries of ``sink``, oldest first; each is leased for ``lease`` s."""
        sql = (
            f"SELECT {PENDING_COLUMNS} FROM deliveries d JOIN hits h ON h.id = d.hit_id"
            " WHERE d.sink = ? AND d.state = 'pending' AND d.next_at <= ? AND d.lease_until <= ?"
            " ORDER BY d.next_at, d.rowid LIMIT ?"
        )

        def take(db: sqlite3.Connection) -> list[Pending]:
            with _transaction(db):
                rows = db.execute(sql, (sink, now, now, limit)).fetchall()
                db.executemany(
                    "UPDATE deliveries SET lease_until = ? WHERE sink = ? AND hit_id = ?",
                    [(now + self.lease, sink, row[1]) for row in rows],
                )
            return [_pending(row) for row in rows]

        return await self._run(take)

    async def ack(self, sink: str, hit_id: str) -> None:
        """The sink accepted the hit: forget the pending delivery."""
        sql = "DELETE FROM deliveries WHERE sink = ? AND hit_id = ? AND state = 'pending'"
        await self._run(lambda db: db.execute(sql, (sink, hit_id)))

    async def retry(
        self, sink: str, hit_id: str, attempts: int, next_at: float, error: str
    ) -> None:
        """Schedule another attempt at ``next_at``; ``attempts`` is the count made so far."""
        sql = (
            "UPDATE deliveries SET attempts = ?, next_at = ?, last_error = ?, lease_until = 0"
            " WHERE sink = ? AND hit_id = ? AND state = 'pending'"
        )
        await self._run(lambda db: db.execute(sql, (attempts, next_at, error, sink, hit_id)))

    async def dead(self, sink: str, hit_id: str, error: str) -> None:
        """Move the delivery to the dead letters, counting the attempt that just failed.

        The dead letter's ``next_at`` becomes the time it died.
        """
        sql = (
            "UPDATE deliveries SET state = 'dead', attempts = attempts + 1, last_error = ?,"
            " next_at = ?, lease_until = 0 WHERE sink = ? AND hit_id = ? AND state = 'pending'"
        )
        now = time.time()
        await self._run(lambda db: db.execute(sql, (error, now, sink, hit_id)))

    async def dead_letters(self, sink: str) -> list[Pending]:
        """The dead deliveries of ``sink``, in the order they died."""
        sql = (
            f"SELECT {PENDING_COLUMNS} FROM deliveries d JOIN hits h ON h.id = d.hit_id"
            " WHERE d.sink = ? AND d.state = 'dead' ORDER BY d.next_at, d.rowid"
        )
        rows = await self._run(lambda db: db.execute(sql, (sink,)).fetchall())
        return [_pending(row) for row in rows]

    async def replay(self, sink: str, hit_ids: list[str] | None, now: float) -> int:
        """Move dead deliveries (all, or those ids) back to pending, due ``now``, attempts 0."""
        sql = (
            "UPDATE deliveries SET state = 'pending', attempts = 0, next_at = ?, lease_until = 0"
            " WHERE sink = ? AND state = 'dead'"
        )

        def move(db: sqlite3.Connection) -> int:
            if hit_ids is None:
                return db.execute(sql, (now, sink)).rowcount
            with _transaction(db):
                return sum(
                    db.execute(sql + " AND hit_id = ?", (now, sink, hid)).rowcount
                    for hid in dict.fromkeys(hit_ids)
                )

        return await self._run(move)

    async def pending_count(self, sink: str) -> int:
        """How many deliveries wait for ``sink`` (due or not, leased or not)."""
        sql = "SELECT count(*) FROM deliveries WHERE sink = ? AND state = 'pending'"
        (count,) = await self._run(lambda db: db.execute(sql, (sink,)).fetchone())
        return int(count)

    async def pending(self, sink: str, limit: int = 1000) -> list[Pending]:
        """Pending deliveries of ``sink`` by next attempt, without leasing them."""
        sql = (
            f"SELECT {PENDING_COLUMNS} FROM deliveries d JOIN hits h ON h.id = d.hit_id"
            " WHERE d.sink = ? AND d.state = 'pending' ORDER BY d.next_at, d.rowid LIMIT ?"
        )
        rows = await self._run(lambda db: db.execute(sql, (sink, limit)).fetchall())
        return [_pending(row) for row in rows]

    async def get_state(self, key: str) -> str | None:
        """A small named value; None when unset."""
        sql = "SELECT value FROM state WHERE key = ?"
        row = await self._run(lambda db: db.execute(sql, (key,)).fetchone())
        return None if row is None else str(row[0])

    async def put_state(self, key: str, value: str | None) -> None:
        """Set (or, with None, delete) a small named value."""
        if value is None:
            await self._run(lambda db: db.execute("DELETE FROM state WHERE key = ?", (key,)))
            return
        sql = "INSERT OR REPLACE INTO state (key, value) VALUES (?, ?)"
        await self._run(lambda db: db.execute(sql, (key, value)))

    async def open_window(self, key: str, until: float, now: float) -> float | None:
        """See :meth:`monitor.store.base.Store.open_window`."""

        def take(db: sqlite3.Connection) -> float | None:
            with _transaction(db):
                row = db.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
                end = window_end(None if row is None else str(row[0]))
                if end > now:
                    return end
                sql = "INSERT OR REPLACE INTO state (key, value) VALUES (?, ?)"
                db.execute(sql, (key, repr(until)))
                return None

        return await self._run(take)

    async def close_window(self, key: str, until: float) -> None:
        """See :meth:`monitor.store.base.Store.close_window`."""
        sql = "DELETE FROM state WHERE key = ? AND value = ?"
        await self._run(lambda db: db.execute(sql, (key, repr(until))))

    # -- stories ---------------------------------------------------------------------------

    async def link_stories(
        self, items: list[tuple[int, str]], now: float, window: float
    ) -> list[str]:
        """The story of each ``(fingerprint, story)``: a near-duplicate's seen within
        ``window`` seconds (earlier items included), else its own, which is then indexed."""
        if not items:
            return []

        def link(db: sqlite3.Connection) -> list[str]:
            with _transaction(db):
                db.execute("DELETE FROM story_bands WHERE at < ?", (now - window,))
                return [_link_story(db, fp, story, now) for fp, story in items]

        return await self._run(link)


def _link_story(db: sqlite3.Connection, fp: int, story: str, now: float) -> str:
    """The story of the nearest indexed fingerprint within MAX_DISTANCE, else ``story``;
    ``fp`` is indexed under the result unless the very same fingerprint already is."""
    keys = [i << BAND_BITS | b for i, b in enumerate(bands(fp))]
    marks = ",".join("?" * len(keys))
    sql = f"SELECT fingerprint, story FROM story_bands WHERE band IN ({marks})"
    rows = db.execute(sql, keys).fetchall()
    near = min(((distance(fp, f & MASK), s) for f, s in rows), default=None)
    if near is not None and near[0] <= MAX_DISTANCE:
        if near[0] == 0:
            return str(near[1])
        story = str(near[1])
    signed = fp - (1 << 64) if fp >= 1 << 63 else fp  # SQLite integers are signed 64-bit
    db.executemany(
        "INSERT INTO story_bands (band, fingerprint, story, at) VALUES (?, ?, ?, ?)",
        [(key, signed, story, now) for key in keys],
    )
    return story


def _migrate(db: sqlite3.Connection, path: Path) -> None:
    """Bring the schema to ``SCHEMA_VERSION``; refuse a file from a newer version."""
    (version,) = db.execute("PRAGMA user_version").fetchone()
    if version > SCHEMA_VERSION:
        raise MonitorError(
            f"state database {path} has schema {version}, newer than this version"
            f" ({SCHEMA_VERSION}); upgrade news-monitor or use another state_dir"
        )
    if version == 0:
        with _transaction(db):
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


@contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[None]:
    """One write transaction, taken up front (IMMEDIATE) so it cannot fail to upgrade later."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


# An upsert rather than INSERT OR REPLACE: a feed seen before has its row updated in place,
# where REPLACE deleted it and inserted it anew (a new rowid, the url index changed twice).
_PUT_FEED = (
    "INSERT INTO feeds (url, etag, last_modified, next_poll, errors, last_status, last_error,"
    " disabled, meta) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (url) DO UPDATE SET"
    " etag = excluded.etag, last_modified = excluded.last_modified,"
    " next_poll = excluded.next_poll, errors = excluded.errors,"
    " last_status = excluded.last_status, last_error = excluded.last_error,"
    " disabled = excluded.disabled, meta = excluded.meta"
)
_EXPIRED_SEEN = "DELETE FROM seen WHERE key IN (SELECT key FROM seen WHERE at < ? LIMIT ?)"
_EXPIRED_HITS = (
    "DELETE FROM hits WHERE id IN (SELECT id FROM hits h WHERE recorded_at < ?"
    " AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.hit_id = h.id) LIMIT ?)"
)


def _delete_batches(db: sqlite3.Connection, sql: str, before: float) -> int:
    """Run the batch delete ``sql`` until a batch comes out short; returns the rows deleted.
    Each batch is its own transaction, so the write lock is held only briefly."""
    total = 0
    while True:
        deleted = db.execute(sql, (before, PRUNE_BATCH)).rowcount
        total += deleted
        if deleted < PRUNE_BATCH:
            return total


def _insert_hit(db: sqlite3.Connection, hit: Hit, now: float) -> bool:
    """Insert ``hit`` and its deliveries unless its id is stored, in which case the stored
    hit is only renewed (it lives ``hit_ttl`` from now); True when it was new."""
    cur = db.execute(
        "INSERT OR IGNORE INTO hits (id, rule_id, story, body, recorded_at) VALUES (?, ?, ?, ?, ?)",
        (hit.id, hit.rule_id, hit.story, hit.body, now),
    )
    if cur.rowcount != 1:
        db.execute("UPDATE hits SET recorded_at = ? WHERE id = ?", (now, hit.id))
        return False
    db.executemany(
        "INSERT INTO deliveries (sink, hit_id, next_at) VALUES (?, ?, ?)",
        [(sink, hit.id, now) for sink in dict.fromkeys(hit.sinks)],
    )
    return True


def _pending(row: tuple[Any, ...]) -> Pending:
    sink, hit_id, body, attempts, next_at, last_error = row
    return Pending(sink, hit_id, bytes(body), int(attempts), float(next_at), last_error)


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
