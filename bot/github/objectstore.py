"""The on-disk side of the object caches: immutable, SHA-keyed data that survives a restart.

Only what can never change goes here: blob contents by blob SHA, tree levels by tree SHA, which
tree a commit has (commit SHA -> tree SHA), and small values derived from a blob alone (the
image an input file names, keyed by path and blob SHA). Refs, PRs, reviews and teams are read
again after a restart. The gateway checks blobs and trees against their SHA when it reads them
back, so a damaged file costs a read, never a wrong answer.

:class:`ObjectStore` is the interface the gateway uses; :class:`SqliteObjectStore` keeps it in one
SQLite file (WAL) under ``DATA_DIR``, bounded in bytes (least recently used rows go first), and
:class:`NullObjectStore` keeps nothing. Disk I/O stays off the event loop: writes go to one writer
thread through a queue (what is queued is visible to reads at once), reads run on one reader
thread, in batches. Another engine (a shared PostgreSQL for replicas) would implement the same
few methods.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Collection, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

log = logging.getLogger(__name__)

#: Kinds of values (a small integer each, so the key index stays small).
BLOB = 1
TREE = 2
IMAGE = 3

SCHEMA_VERSION = 1
SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    id INTEGER PRIMARY KEY,
    kind INTEGER NOT NULL,
    key TEXT NOT NULL,
    size INTEGER NOT NULL,
    used INTEGER NOT NULL,
    data BLOB NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS objects_key ON objects(kind, key);
CREATE TABLE IF NOT EXISTS commits (
    sha TEXT PRIMARY KEY,
    repo TEXT NOT NULL,
    tree TEXT NOT NULL,
    used INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS commits_repo ON commits(repo, used);
"""
#: Keys per query (SQLite's default limit of variables is far above this).
CHUNK = 500
#: Bytes queued for the writer before writers are asked to wait.
PENDING_BYTES = 16 * 1024 * 1024
#: Commit -> tree links kept (about 150 bytes each).
COMMITS_KEPT = 200_000
#: A row read from disk is marked as used again only when its mark is older than this.
TOUCH_AFTER = 600


class ObjectStore(Protocol):
    """Immutable values by (kind, key) and commit -> tree links, on some durable storage."""

    async def get(self, kind: int, keys: Collection[str]) -> dict[str, bytes]:
        """The stored values of those keys (missing keys are left out)."""

    async def has(self, kind: int, keys: Collection[str]) -> set[str]:
        """Which of those keys are stored, without reading their values."""

    def put(self, kind: int, items: Iterable[tuple[str, bytes]]) -> None:
        """Store values (queued: never blocks the caller; readable at once)."""

    async def settle(self) -> None:
        """Wait while more than a bound is queued (a writer producing fast calls this)."""

    def put_commit(self, repo: str, commit: str, tree: str) -> None:
        """Remember which tree a commit has."""

    async def commit_trees(self, commits: Collection[str]) -> dict[str, str]:
        """Commit SHA -> tree SHA for those commits that are stored."""

    async def recent_commits(self, repo: str, limit: int = 5) -> list[tuple[str, str]]:
        """(commit, tree) of the repository's most recently stored commits, newest first."""

    async def flush(self) -> None:
        """Wait until everything queued is written."""

    def close(self) -> None:
        """Write what is queued and release the storage."""


class NullObjectStore:
    """Keeps nothing: the caches live in memory only."""

    async def get(self, kind: int, keys: Collection[str]) -> dict[str, bytes]:
        return {}

    async def has(self, kind: int, keys: Collection[str]) -> set[str]:
        return set()

    def put(self, kind: int, items: Iterable[tuple[str, bytes]]) -> None:
        return None

    async def settle(self) -> None:
        return None

    def put_commit(self, repo: str, commit: str, tree: str) -> None:
        return None

    async def commit_trees(self, commits: Collection[str]) -> dict[str, str]:
        return {}

    async def recent_commits(self, repo: str, limit: int = 5) -> list[tuple[str, str]]:
        return []

    async def flush(self) -> None:
        return None

    def close(self) -> None:
        return None


class SqliteObjectStore:
    """:class:`ObjectStore` in one SQLite file, at most ``max_bytes`` of values."""

    def __init__(self, path: Path, max_bytes: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        path.parent.mkdir(parents=True, exist_ok=True)
        self._writer_db = _open(path)
        self._reader_db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._reader_db.execute("PRAGMA busy_timeout=5000")
        self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bot-cache-read")
        self._lock = threading.Lock()
        self._pending: dict[tuple[int, str], bytes] = {}
        self._pending_bytes = 0
        #: Futures of writers waiting for the queue to shrink (and of flushes), with their loop.
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._flushed: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._queue: queue.SimpleQueue[_Op] = queue.SimpleQueue()
        self._stored = _stored_bytes(self._writer_db)
        self._closed = False
        self._thread = threading.Thread(target=self._write_loop, name="bot-cache-write")
        self._thread.daemon = True
        self._thread.start()
        if self._stored > max_bytes:
            self._queue.put(_Evict())

    # --- reading (on the reader thread) ----------------------------------------------------

    async def _run_read(self, fn: object, *args: object) -> object:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._reader, fn, *args)  # type: ignore[arg-type]

    async def get(self, kind: int, keys: Collection[str]) -> dict[str, bytes]:
        found: dict[str, bytes] = {}
        rest: list[str] = []
        with self._lock:
            for key in keys:
                value = self._pending.get((kind, key))
                if value is None:
                    rest.append(key)
                else:
                    found[key] = value
        if rest:
            read = await self._run_read(self._select, kind, rest)
            assert isinstance(read, dict)
            found.update(read)
        return found

    def _select(self, kind: int, keys: list[str]) -> dict[str, bytes]:
        out: dict[str, bytes] = {}
        stale: list[str] = []
        old = int(time.time()) - TOUCH_AFTER
        try:
            for start in range(0, len(keys), CHUNK):
                chunk = keys[start : start + CHUNK]
                marks = ",".join("?" * len(chunk))
                rows = self._reader_db.execute(
                    f"SELECT key, used, data FROM objects WHERE kind = ? AND key IN ({marks})",
                    (kind, *chunk),
                )
                for key, used, data in rows:
                    out[key] = bytes(data)
                    if used < old:
                        stale.append(key)
        except sqlite3.Error as exc:
            log.warning("object cache read failed (%s); reading from GitHub instead", exc)
            return out
        if stale:
            self._queue.put(_Touch(kind, stale))
        return out

    async def has(self, kind: int, keys: Collection[str]) -> set[str]:
        with self._lock:
            found = {key for key in keys if (kind, key) in self._pending}
        rest = [key for key in keys if key not in found]
        if rest:
            read = await self._run_read(self._select_keys, kind, rest)
            assert isinstance(read, set)
            found |= read
        return found

    def _select_keys(self, kind: int, keys: list[str]) -> set[str]:
        out: set[str] = set()
        try:
            for start in range(0, len(keys), CHUNK):
                chunk = keys[start : start + CHUNK]
                marks = ",".join("?" * len(chunk))
                rows = self._reader_db.execute(
                    f"SELECT key FROM objects WHERE kind = ? AND key IN ({marks})",
                    (kind, *chunk),
                )
                out.update(key for (key,) in rows)
        except sqlite3.Error as exc:
            log.warning("object cache read failed (%s); reading from GitHub instead", exc)
        return out

    async def commit_trees(self, commits: Collection[str]) -> dict[str, str]:
        wanted = list(commits)
        if not wanted:
            return {}
        read = await self._run_read(self._select_commits, wanted)
        assert isinstance(read, dict)
        return read

    def _select_commits(self, commits: list[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        try:
            for start in range(0, len(commits), CHUNK):
                chunk = commits[start : start + CHUNK]
                marks = ",".join("?" * len(chunk))
                rows = self._reader_db.execute(
                    f"SELECT sha, tree FROM commits WHERE sha IN ({marks})", chunk
                )
                out.update((str(sha), str(tree)) for sha, tree in rows)
        except sqlite3.Error as exc:
            log.warning("object cache read failed (%s); reading from GitHub instead", exc)
        return out

    async def recent_commits(self, repo: str, limit: int = 5) -> list[tuple[str, str]]:
        read = await self._run_read(self._select_recent, repo, limit)
        assert isinstance(read, list)
        return read

    def _select_recent(self, repo: str, limit: int) -> list[tuple[str, str]]:
        try:
            rows = self._reader_db.execute(
                "SELECT sha, tree FROM commits WHERE repo = ? ORDER BY used DESC LIMIT ?",
                (repo.lower(), limit),
            )
            return [(str(sha), str(tree)) for sha, tree in rows]
        except sqlite3.Error as exc:
            log.warning("object cache read failed (%s); reading from GitHub instead", exc)
            return []

    # --- writing (queued for the writer thread) --------------------------------------------

    def put(self, kind: int, items: Iterable[tuple[str, bytes]]) -> None:
        batch: list[tuple[str, bytes]] = []
        with self._lock:
            for key, value in items:
                if (kind, key) not in self._pending:
                    self._pending[(kind, key)] = value
                    self._pending_bytes += len(value)
                    batch.append((key, value))
        if batch and not self._closed:
            self._queue.put(_Put(kind, batch))

    async def settle(self) -> None:
        with self._lock:
            if self._pending_bytes <= PENDING_BYTES or self._closed:
                return
            future = asyncio.get_running_loop().create_future()
            self._waiters.append((asyncio.get_running_loop(), future))
        await future

    def put_commit(self, repo: str, commit: str, tree: str) -> None:
        if not self._closed:
            self._queue.put(_Commit(repo.lower(), commit, tree))

    async def flush(self) -> None:
        if self._closed:
            return
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._queue.put(_Flush(loop, future))
        await future

    def close(self) -> None:
        """Write what is queued, stop both threads, close the connections (in that order:
        a connection closed while its thread runs a statement crashes SQLite)."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(_Stop())
        self._thread.join(timeout=30)
        self._reader.shutdown(wait=True)
        with contextlib.suppress(sqlite3.Error):
            self._reader_db.close()

    # --- the writer thread -----------------------------------------------------------------

    def _write_loop(self) -> None:
        db = self._writer_db
        try:
            while True:
                ops = [self._queue.get()]
                while len(ops) < 200:
                    try:
                        ops.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
                try:
                    stop = self._apply(db, ops)
                except Exception:
                    log.exception("object cache writer failed; continuing")
                    stop = any(isinstance(op, _Stop) for op in ops)
                if stop:
                    return
        finally:
            self._wake(everyone=True)
            with contextlib.suppress(sqlite3.Error):
                db.close()

    def _apply(self, db: sqlite3.Connection, ops: list[_Op]) -> bool:
        now = int(time.time())
        written: list[tuple[int, str, int]] = []
        flushed: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        stop = evict = False
        try:
            db.execute("BEGIN")
            for op in ops:
                if isinstance(op, _Put):
                    # in key order: inserts into the key index touch fewer pages
                    rows = sorted((op.kind, key, len(value), now, value) for key, value in op.items)
                    before = db.total_changes
                    db.executemany(
                        "INSERT OR IGNORE INTO objects(kind, key, size, used, data) "
                        "VALUES (?, ?, ?, ?, ?)",
                        rows,
                    )
                    # rows already there are ignored: count the bytes of about as many
                    size = sum(row[2] for row in rows)
                    self._stored += size * (db.total_changes - before) // max(1, len(rows))
                    written.extend((op.kind, key, size) for _k, key, size, _u, _v in rows)
                elif isinstance(op, _Commit):
                    db.execute(
                        "INSERT INTO commits(sha, repo, tree, used) VALUES (?, ?, ?, ?) "
                        "ON CONFLICT(sha) DO UPDATE SET used = excluded.used",
                        (op.commit, op.repo, op.tree, now),
                    )
                elif isinstance(op, _Touch):
                    for start in range(0, len(op.keys), CHUNK):
                        chunk = op.keys[start : start + CHUNK]
                        marks = ",".join("?" * len(chunk))
                        db.execute(
                            f"UPDATE objects SET used = ? WHERE kind = ? AND key IN ({marks})",
                            (now, op.kind, *chunk),
                        )
                elif isinstance(op, _Flush):
                    flushed.append((op.loop, op.future))
                elif isinstance(op, _Evict):
                    evict = True
                else:
                    stop = True
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            log.warning("object cache write failed (%s); continuing without those entries", exc)
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
                self._stored = _stored_bytes(db)
        with self._lock:
            for kind, key, size in written:
                if self._pending.pop((kind, key), None) is not None:
                    self._pending_bytes -= size
        if evict or self._stored > self.max_bytes:
            self._evict(db)
        with self._lock:
            self._flushed.extend(flushed)
        self._wake()
        return stop

    def _wake(self, *, everyone: bool = False) -> None:
        """Resolve the futures of flushes done, and of writers once the queue has room."""
        with self._lock:
            waiters, self._flushed = self._flushed, []
            if everyone or self._pending_bytes <= PENDING_BYTES:
                waiters += self._waiters
                self._waiters = []
        for loop, future in waiters:
            with contextlib.suppress(RuntimeError):  # the loop is closed
                loop.call_soon_threadsafe(_resolve, future)

    def _evict(self, db: sqlite3.Connection) -> None:
        """Drop the least recently used rows until the values fill 90% of the bound (one pass
        in order of use: no index on it, so that writing stays cheap; eviction is rare)."""
        target = int(self.max_bytes * 0.9)
        try:
            self._stored = _stored_bytes(db)  # the running count is close; start exact
            ids: list[int] = []
            freed = 0
            rows = db.execute("SELECT id, size FROM objects ORDER BY used, id")
            for row_id, size in rows:
                if self._stored - freed <= target:
                    break
                ids.append(row_id)
                freed += size
            rows.close()
            db.execute("BEGIN")
            for start in range(0, len(ids), CHUNK):
                chunk = ids[start : start + CHUNK]
                db.execute(f"DELETE FROM objects WHERE id IN ({','.join('?' * len(chunk))})", chunk)
            db.execute(
                "DELETE FROM commits WHERE sha IN (SELECT sha FROM commits "
                "ORDER BY used DESC LIMIT -1 OFFSET ?)",
                (COMMITS_KEPT,),
            )
            db.execute("COMMIT")
            self._stored -= freed
        except sqlite3.Error as exc:
            log.warning("object cache eviction failed: %s", exc)
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")


@dataclass(frozen=True)
class _Put:
    kind: int
    items: list[tuple[str, bytes]]


@dataclass(frozen=True)
class _Commit:
    repo: str
    commit: str
    tree: str


@dataclass(frozen=True)
class _Touch:
    kind: int
    keys: list[str]


@dataclass(frozen=True)
class _Flush:
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[None]


@dataclass(frozen=True)
class _Evict:
    pass


@dataclass(frozen=True)
class _Stop:
    pass


_Op = _Put | _Commit | _Touch | _Flush | _Evict | _Stop


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _open(path: Path) -> sqlite3.Connection:
    """The cache database, created or upgraded; a file that is not a usable cache (damaged,
    another version) is replaced, since everything in it can be read again."""
    for attempt in (1, 2):
        try:
            db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA busy_timeout=5000")
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, SCHEMA_VERSION):
                raise sqlite3.DatabaseError(f"cache schema {version}, expected {SCHEMA_VERSION}")
            db.executescript(SCHEMA)
            db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            return db
        except sqlite3.DatabaseError as exc:
            if attempt == 2:
                raise
            log.warning("object cache %s is not usable (%s); starting an empty one", path, exc)
            with contextlib.suppress(NameError, sqlite3.Error):
                db.close()
            for suffix in ("", "-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    Path(f"{path}{suffix}").unlink()
    raise AssertionError("unreachable")


def _stored_bytes(db: sqlite3.Connection) -> int:
    row = db.execute("SELECT COALESCE(SUM(size), 0) FROM objects").fetchone()
    return int(row[0])


def open_store(data_dir: Path, max_mb: int) -> ObjectStore:
    """The object store for a service: SQLite under ``data_dir``, or nothing when the bound is 0
    or the file cannot be opened (then the caches are in memory only, as the log says)."""
    if max_mb <= 0:
        return NullObjectStore()
    path = data_dir / "objects.sqlite3"
    try:
        return SqliteObjectStore(path, max_mb * 1024 * 1024)
    except (OSError, sqlite3.Error) as exc:
        log.warning("object cache %s cannot be used (%s); caching in memory only", path, exc)
        return NullObjectStore()
