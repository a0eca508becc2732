"""``DATABASE_URL``: one PostgreSQL database shared by every replica of the service.

What the replicas share, and which PostgreSQL mechanism does it (nothing of our own making):

- **The inbox** (``deliveries``): a delivery is recorded once (its id is the primary key) and
  taken by exactly one replica: a conditional ``UPDATE ... RETURNING`` for the delivery a
  replica just received, ``SELECT ... FOR UPDATE SKIP LOCKED`` for the ones nobody is working
  on (due retries, and the deliveries of a replica that is gone).
- **Who is alive**: each replica holds a session-level advisory lock on its own key for as long
  as its connection lives. A replica that is SIGKILLed, or cut from the database, loses its
  session and with it the lock: the deliveries it was running are put back by whoever looks.
- **One writer per repository**: a session advisory lock per repository
  (``pg_try_advisory_lock``), held on a pooled connection while the delivery is processed.
  A replica that loses the database loses its locks too, so it stops (cancels) what it was
  doing; the deliveries run again elsewhere (handlers are idempotent).
- **Periodic jobs** (resync, delivery recovery, the calendar's tick): a job's advisory lock
  plus the time of its last round in ``meta``, so one replica runs each round.
- **The calendar's timers** (``wakeups``): the next instant each repository's deploy calendar
  changes, one row per (installation, repository), the earliest ask winning. A tick takes the
  due rows (``owner`` = the replica judging them); asks made meanwhile wait in ``next_at`` and
  become the row's time when the judging is done; a row whose owner is gone is due again for
  the others, with nothing lost. So a replica that stops leaves its timers to the rest.
- **The schema** is created and migrated at start under an advisory lock, so replicas that
  start at once wait for each other instead of racing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, TypeVar

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from bot.concurrency.locks import KeyedLocks
from bot.github.context import Wakeups
from bot.service.inbox import INSERT_COLUMNS, Delivery, Incoming
from bot.service.store import StoreUnavailable

log = logging.getLogger(__name__)
# The pool logs every failed reconnection attempt; the replica says once that the database is
# lost and once that it is back.
logging.getLogger("psycopg.pool").setLevel(logging.ERROR)

#: Advisory lock classes (the first of the two int4 keys): who is alive, repositories, jobs,
#: migrations. Arbitrary constants, chosen to be unlikely to collide with other applications.
LIVE = 0x46420001
REPO = 0x46420002
JOB = 0x46420003
MIGRATE = 0x46420004

#: Longest an operation on the webhook path may wait for the database (GitHub waits 10 s).
OP_TIMEOUT = 5.0
#: How often the replica checks its own session (and so notices a lost database).
HEARTBEAT = 1.0
#: A delivery the receiving replica has not started after this long is anybody's.
FRESH = 5.0

#: The replicas alive now (the keys of their liveness locks); one parameter, ``LIVE``.
ALIVE = (
    "SELECT objid::bigint FROM pg_locks WHERE locktype='advisory' AND classid=%s"
    " AND objsubid=2 AND granted"
    " AND database=(SELECT oid FROM pg_database WHERE datname=current_database())"
)

COLUMNS = (
    "id, event, action, repo, installation_id, payload, received_at, status, attempts,"
    " next_attempt_at, last_error, finished_at, duration, api_calls"
)

#: (version, statements); append, never edit, so every replica agrees on what version N is.
MIGRATIONS: list[tuple[int, str]] = [
    (
        1,
        """
        CREATE TABLE deliveries (
            id TEXT PRIMARY KEY,
            event TEXT NOT NULL,
            action TEXT,
            repo TEXT,
            installation_id BIGINT,
            payload BYTEA NOT NULL,
            received_at DOUBLE PRECISION NOT NULL,
            status TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at DOUBLE PRECISION,
            last_error TEXT,
            finished_at DOUBLE PRECISION,
            duration DOUBLE PRECISION,
            api_calls INTEGER,
            owner BIGINT
        );
        CREATE INDEX deliveries_open ON deliveries (status, received_at)
            WHERE status IN ('queued', 'running', 'retry');
        CREATE INDEX deliveries_received ON deliveries (received_at);
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        """,
    ),
    (
        2,
        """
        CREATE TABLE wakeups (
            installation_id BIGINT NOT NULL,
            repo TEXT NOT NULL,
            at TIMESTAMPTZ NOT NULL,
            branch TEXT,
            owner BIGINT,
            next_at TIMESTAMPTZ,
            PRIMARY KEY (installation_id, repo)
        );
        CREATE INDEX wakeups_at ON wakeups (at);
        """,
    ),
]

T = TypeVar("T")


def describe(exc: BaseException) -> str:
    """One line about a database failure (never the URL: it may hold a password)."""
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return "the database did not answer in time"
    if isinstance(exc, PoolTimeout):
        return "no database connection could be had in time"
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]


class Database:
    """The pool, this replica's session (its liveness), and what is built on them."""

    def __init__(self, url: str, pool_size: int) -> None:
        self.url = url
        self.pool = AsyncConnectionPool(
            url,
            min_size=1,
            max_size=pool_size,
            open=False,
            kwargs={"autocommit": True, "connect_timeout": 5},
            check=AsyncConnectionPool.check_connection,
            timeout=OP_TIMEOUT,
            reconnect_timeout=24 * 3600,
        )
        self.replica = 0
        self.problem: str | None = None
        self._live: psycopg.AsyncConnection[Any] | None = None
        self._monitor: asyncio.Task[None] | None = None
        #: Called when this replica's session is lost (its locks are gone) and when it is back.
        self.on_lost: list[Callable[[], None]] = []
        self.on_back: list[Callable[[], None]] = []
        self.store = PostgresStore(self)
        self.locks = PostgresLocks(self)
        self.wakeups = PostgresWakeups(self)

    # --- lifecycle --------------------------------------------------------------------------

    async def open(self, within: float = 60.0) -> None:
        """Connect, migrate, take this replica's identity; waits up to ``within`` seconds for
        the database (replicas and the database often start together)."""
        deadline = time.monotonic() + within
        while True:
            try:
                await self.pool.open(wait=True, timeout=OP_TIMEOUT)
                await self.migrate()
                await self._become_alive()
                break
            except (psycopg.Error, PoolTimeout, OSError) as exc:
                if time.monotonic() > deadline:
                    raise StoreUnavailable(f"cannot use DATABASE_URL: {describe(exc)}") from None
                log.warning("waiting for the database: %s", describe(exc))
                await asyncio.sleep(1.0)
        self._monitor = asyncio.get_running_loop().create_task(self._watch())

    async def close(self) -> None:
        if self._monitor is not None:
            self._monitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._monitor
        if self._live is not None:
            with contextlib.suppress(psycopg.Error):
                await self._live.close()
        await self.pool.close()

    async def migrate(self) -> None:
        """Create or upgrade the schema; one replica at a time (the others wait)."""
        async with self.pool.connection() as conn:
            await conn.execute("SELECT pg_advisory_lock(%s, 0)", (MIGRATE,))
            try:
                await conn.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY,"
                    " applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
                )
                cur = await conn.execute("SELECT version FROM schema_migrations")
                applied = {int(r[0]) for r in await cur.fetchall()}
                for version, sql in MIGRATIONS:
                    if version in applied:
                        continue
                    async with conn.transaction():
                        await conn.execute(sql)
                        await conn.execute(
                            "INSERT INTO schema_migrations (version) VALUES (%s)", (version,)
                        )
                    log.info("database schema migrated to version %d", version)
            finally:
                await conn.execute("SELECT pg_advisory_unlock(%s, 0)", (MIGRATE,))

    async def _become_alive(self) -> None:
        """Open this replica's own session and hold a lock on a fresh key of its own for as
        long as it lives; that lock is what tells the others this replica is alive."""
        conn = await psycopg.AsyncConnection.connect(self.url, autocommit=True, connect_timeout=5)
        try:
            while True:
                key = random.randint(1, 2**31 - 1)
                cur = await conn.execute("SELECT pg_try_advisory_lock(%s, %s)", (LIVE, key))
                row = await cur.fetchone()
                if row and row[0]:
                    break
        except BaseException:
            await conn.close()
            raise
        self._live, self.replica = conn, key

    async def _watch(self) -> None:
        """Notice a lost session within a second; then come back as a new replica (the work
        of the old one is put back by whoever sweeps first)."""
        while True:
            await asyncio.sleep(HEARTBEAT)
            try:
                assert self._live is not None
                await asyncio.wait_for(self._live.execute("SELECT 1"), OP_TIMEOUT)
                continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.lost(describe(exc))
            while True:
                try:
                    await self._become_alive()
                    break
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    self.problem = describe(exc)
                    await asyncio.sleep(HEARTBEAT)
            log.warning("database is back; this replica is now %d", self.replica)
            self.problem = None
            for callback in self.on_back:
                callback()

    def lost(self, reason: str) -> None:
        if self.problem is not None and self._live is None:
            return
        log.error("lost the database: %s; deliveries are refused (503) until it is back", reason)
        self.problem = reason
        live, self._live = self._live, None
        if live is not None:
            asyncio.get_running_loop().create_task(_close_quietly(live))
        for callback in self.on_lost:
            callback()

    # --- running statements ---------------------------------------------------------------

    async def run(self, op: Callable[[psycopg.AsyncConnection[Any]], Awaitable[T]]) -> T:
        """Run ``op`` on a pooled connection within ``OP_TIMEOUT``; a database failure is
        ``StoreUnavailable`` (nothing was recorded)."""
        try:
            async with asyncio.timeout(OP_TIMEOUT), self.pool.connection() as conn:
                return await op(conn)
        except (psycopg.OperationalError, PoolTimeout, TimeoutError, OSError) as exc:
            raise StoreUnavailable(describe(exc)) from None

    async def execute(self, sql: str, params: Any = None) -> int:
        async def op(conn: psycopg.AsyncConnection[Any]) -> int:
            cur = await conn.execute(sql, params)
            return cur.rowcount

        return await self.run(op)

    async def fetch(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        async def op(conn: psycopg.AsyncConnection[Any]) -> list[tuple[Any, ...]]:
            cur = await conn.execute(sql, params)
            return list(await cur.fetchall())

        return await self.run(op)


async def _close_quietly(conn: psycopg.AsyncConnection[Any]) -> None:
    with contextlib.suppress(Exception):
        await conn.close()


def _delivery(row: tuple[Any, ...]) -> Delivery:
    names = [c.strip() for c in COLUMNS.split(",")]
    values = dict(zip(names, row, strict=True))
    values["payload"] = bytes(values["payload"])
    return Delivery(**values)


async def _insert(conn: psycopg.AsyncConnection[Any], incoming: Incoming) -> bool:
    cur = await conn.execute(
        f"INSERT INTO deliveries ({INSERT_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, 'queued')"
        " ON CONFLICT (id) DO NOTHING",
        incoming.row(time.time()),
    )
    return cur.rowcount == 1


class PostgresStore:
    """The inbox on PostgreSQL (see the module's docstring)."""

    shared = True

    def __init__(self, db: Database) -> None:
        self.db = db

    @property
    def problem(self) -> str | None:
        return self.db.problem

    async def add(self, incoming: Incoming) -> bool:
        async def op(conn: psycopg.AsyncConnection[Any]) -> bool:
            if await _insert(conn, incoming):
                return True
            # a redelivery of something that failed is taken up again
            cur = await conn.execute(
                "UPDATE deliveries SET status='queued', next_attempt_at=NULL, owner=NULL,"
                " payload=%s WHERE id=%s AND status='failed'",
                (incoming.payload, incoming.id),
            )
            return cur.rowcount == 1

        return await self.db.run(op)

    async def take_up(self, incoming: Incoming) -> bool:
        async def op(conn: psycopg.AsyncConnection[Any]) -> bool:
            return await _insert(conn, incoming)

        return await self.db.run(op)

    async def known(self, delivery_ids: list[str]) -> set[str]:
        rows = await self.db.fetch(
            "SELECT id FROM deliveries WHERE id = ANY(%s)", (list(delivery_ids),)
        )
        return {str(r[0]) for r in rows}

    async def start(self, delivery_id: str) -> Delivery | None:
        """Take one delivery: only one replica's UPDATE finds it still waiting."""
        rows = await self.db.fetch(
            f"UPDATE deliveries SET status='running', attempts=attempts+1, owner=%s"
            f" WHERE id=%s AND status IN ('queued', 'retry') RETURNING {COLUMNS}",
            (self.db.replica, delivery_id),
        )
        return _delivery(rows[0]) if rows else None

    async def claim_due(self, limit: int) -> list[Delivery]:
        """Take up to ``limit`` deliveries nobody is working on, oldest first; rows another
        replica is taking at this moment are skipped, not waited for."""
        now = time.time()
        rows = await self.db.fetch(
            f"UPDATE deliveries SET status='running', attempts=attempts+1, owner=%(me)s"
            f" WHERE id IN (SELECT id FROM deliveries WHERE"
            f" (status='queued' AND received_at < %(fresh)s)"
            f" OR (status='retry' AND COALESCE(next_attempt_at, 0) <= %(now)s)"
            f" ORDER BY received_at LIMIT %(n)s FOR UPDATE SKIP LOCKED)"
            f" RETURNING {COLUMNS}",
            {"me": self.db.replica, "fresh": now - FRESH, "now": now, "n": limit},
        )
        return sorted((_delivery(r) for r in rows), key=lambda d: d.received_at)

    async def sweep(self) -> int:
        """Put back the deliveries of replicas whose session is gone."""
        n = await self.db.execute(
            "UPDATE deliveries SET status='queued', owner=NULL WHERE status='running'"
            f" AND (owner IS NULL OR owner NOT IN ({ALIVE}))",
            (LIVE,),
        )
        if n:
            log.warning("put back %d deliveries of a replica that is gone", n)
        return n

    async def _finish(self, delivery_id: str, sql: str, params: tuple[Any, ...]) -> None:
        n = await self.db.execute(sql, (*params, delivery_id, self.db.replica))
        if n == 0:
            log.warning(
                "delivery %s was taken over by another replica meanwhile; its outcome here is "
                "not recorded",
                delivery_id,
            )

    async def mark_done(self, delivery_id: str, *, duration: float, api_calls: int) -> None:
        await self._finish(
            delivery_id,
            "UPDATE deliveries SET status='done', finished_at=%s, duration=%s, api_calls=%s,"
            " next_attempt_at=NULL, owner=NULL WHERE id=%s AND owner=%s",
            (time.time(), duration, api_calls),
        )

    async def mark_failed(self, delivery_id: str, error: str) -> None:
        await self._finish(
            delivery_id,
            "UPDATE deliveries SET status='failed', last_error=%s, finished_at=%s,"
            " next_attempt_at=NULL, owner=NULL WHERE id=%s AND owner=%s",
            (error[:2000], time.time()),
        )

    async def mark_retry(self, delivery_id: str, error: str, at: float) -> None:
        await self._finish(
            delivery_id,
            "UPDATE deliveries SET status='retry', last_error=%s, next_attempt_at=%s,"
            " owner=NULL WHERE id=%s AND owner=%s",
            (error[:2000], at),
        )

    async def requeue(self, delivery_id: str) -> bool:
        n = await self.db.execute(
            "UPDATE deliveries SET status='queued', next_attempt_at=NULL, owner=NULL WHERE id=%s",
            (delivery_id,),
        )
        return n == 1

    async def unfinished(self) -> list[Delivery]:
        rows = await self.db.fetch(
            f"SELECT {COLUMNS} FROM deliveries WHERE status IN ('queued', 'retry')"
            " ORDER BY received_at"
        )
        return [_delivery(r) for r in rows]

    async def counts(self) -> dict[str, int]:
        rows = await self.db.fetch("SELECT status, count(*) FROM deliveries GROUP BY status")
        return {str(s): int(n) for s, n in rows}

    async def get(self, delivery_id: str) -> Delivery | None:
        rows = await self.db.fetch(f"SELECT {COLUMNS} FROM deliveries WHERE id=%s", (delivery_id,))
        return _delivery(rows[0]) if rows else None

    async def recent(self, limit: int = 50) -> list[Delivery]:
        rows = await self.db.fetch(
            f"SELECT {COLUMNS} FROM deliveries ORDER BY received_at DESC LIMIT %s", (limit,)
        )
        return [_delivery(r) for r in rows]

    async def get_meta(self, key: str) -> str | None:
        rows = await self.db.fetch("SELECT value FROM meta WHERE key=%s", (key,))
        return str(rows[0][0]) if rows else None

    async def set_meta(self, key: str, value: str) -> None:
        await self.db.execute(
            "INSERT INTO meta (key, value) VALUES (%s, %s)"
            " ON CONFLICT (key) DO UPDATE SET value=excluded.value",
            (key, value),
        )

    async def close(self) -> None:
        """The pool belongs to the Database, which closes it."""


class PostgresLocks:
    """Repository locks across replicas: the in-process lock first (cheap, re-entrant), then
    PostgreSQL's advisory lock for the repository, held on a pooled connection."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.local = KeyedLocks()

    @property
    def max_holders_seen(self) -> int:
        return self.local.max_holders_seen

    def busy(self) -> list[str]:
        return self.local.busy()

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        if self.local.held_here(key):
            async with self.local.hold(key):
                yield
            return
        async with self.local.hold(key), self._advisory(REPO, key):
            yield

    @asynccontextmanager
    async def _advisory(self, cls: int, key: str) -> AsyncIterator[None]:
        delay = 0.02
        while True:
            conn = await self._connection()
            try:
                cur = await conn.execute(
                    "SELECT pg_try_advisory_lock(%s, hashtext(%s))", (cls, key)
                )
                row = await cur.fetchone()
            except psycopg.Error as exc:
                await self.db.pool.putconn(conn)
                raise StoreUnavailable(describe(exc)) from None
            if row and row[0]:
                break
            await self.db.pool.putconn(conn)
            await asyncio.sleep(delay)  # another replica works on this repository
            delay = min(delay * 2, 0.25)
        try:
            yield
        finally:
            with contextlib.suppress(psycopg.Error):  # else the session and its locks are gone
                await conn.execute("SELECT pg_advisory_unlock(%s, hashtext(%s))", (cls, key))
            await self.db.pool.putconn(conn)

    async def _connection(self) -> psycopg.AsyncConnection[Any]:
        try:
            return await self.db.pool.getconn(timeout=30)
        except PoolTimeout as exc:
            raise StoreUnavailable(describe(exc)) from None

    @asynccontextmanager
    async def solo(self, job: str, every: float) -> AsyncIterator[bool]:
        """True when this replica runs the job's round now: nobody else is running it and
        nobody ran it within the last ``every`` seconds (a little less, for timer drift)."""
        conn = await self._connection()
        try:
            cur = await conn.execute("SELECT pg_try_advisory_lock(%s, hashtext(%s))", (JOB, job))
            row = await cur.fetchone()
        except psycopg.Error as exc:
            await self.db.pool.putconn(conn)
            raise StoreUnavailable(describe(exc)) from None
        if not (row and row[0]):
            await self.db.pool.putconn(conn)
            yield False
            return
        try:
            cur = await conn.execute("SELECT value FROM meta WHERE key=%s", (f"job:{job}",))
            last = await cur.fetchone()
            if last is not None and every > 0 and time.time() - float(last[0]) < every * 0.9:
                yield False
                return
            yield True
            await conn.execute(
                "INSERT INTO meta (key, value) VALUES (%s, %s)"
                " ON CONFLICT (key) DO UPDATE SET value=excluded.value",
                (f"job:{job}", repr(time.time())),
            )
        finally:
            with contextlib.suppress(psycopg.Error):
                await conn.execute("SELECT pg_advisory_unlock(%s, hashtext(%s))", (JOB, job))
            await self.db.pool.putconn(conn)


class PostgresWakeups(Wakeups):
    """The calendar's timers shared by the replicas (see the module's docstring). Poking and
    sleeping stay per process; the wakes are rows of ``wakeups``."""

    def __init__(self, db: Database) -> None:
        super().__init__()
        self.db = db

    async def wake(self, installation_id: int, repo: str, at: datetime, branch: str | None) -> None:
        """The earliest ask wins. While the row is taken (being judged), asks wait in
        ``next_at``: the due time stays, in case its judge dies before it is done."""
        try:
            await self.db.execute(
                "INSERT INTO wakeups (installation_id, repo, at, branch) VALUES (%s, %s, %s, %s)"
                " ON CONFLICT (installation_id, repo) DO UPDATE SET"
                " at = CASE WHEN wakeups.owner IS NULL THEN LEAST(wakeups.at, excluded.at)"
                " ELSE wakeups.at END,"
                " next_at = CASE WHEN wakeups.owner IS NULL THEN NULL"
                " ELSE LEAST(COALESCE(wakeups.next_at, excluded.at), excluded.at) END,"
                " branch = COALESCE(excluded.branch, wakeups.branch)",
                (installation_id, repo, at, branch),
            )
        except StoreUnavailable as exc:
            # Judging goes on; the resync round is the safety net for this repository.
            log.warning("calendar wake of %s not stored: %s", repo, exc)

    async def due(self, now: datetime) -> list[tuple[int, str, str | None]]:
        """Take the due rows nobody alive is judging (one statement: each goes to one
        replica)."""
        rows = await self.db.fetch(
            "UPDATE wakeups SET owner=%s WHERE at <= %s"
            f" AND (owner IS NULL OR owner NOT IN ({ALIVE}))"
            " RETURNING installation_id, repo, branch",
            (self.db.replica, now, LIVE),
        )
        return [(int(inst), str(repo), branch) for inst, repo, branch in rows]

    async def done(self, installation_id: int, repo: str) -> None:
        """Judged again: the row's next time is the earliest ask made since it was taken; with
        none (no pull request waits for the calendar), the row goes."""
        key = (installation_id, repo, self.db.replica)
        try:
            await self.db.execute(
                "DELETE FROM wakeups WHERE installation_id=%s AND repo=%s AND owner=%s"
                " AND next_at IS NULL",
                key,
            )
            await self.db.execute(
                "UPDATE wakeups SET at=next_at, next_at=NULL, owner=NULL"
                " WHERE installation_id=%s AND repo=%s AND owner=%s",
                key,
            )
        except StoreUnavailable as exc:
            log.warning("calendar wake of %s not released: %s", repo, exc)


async def connect(url: str, pool_size: int) -> Database:
    db = Database(url, pool_size)
    await db.open()
    log.info("using PostgreSQL (replica %d)", db.replica)
    return db
