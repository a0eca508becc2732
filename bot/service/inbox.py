"""The durable inbox: every verified delivery is on disk before GitHub hears 2xx.

SQLite in WAL mode with ``synchronous=NORMAL``: a commit survives a crash of this process (the
case that matters: deploys, OOM kills, SIGKILL), and costs no fsync per delivery. A delivery is
processed at least once; handlers are idempotent, so a repeat is harmless.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
    id TEXT PRIMARY KEY,
    event TEXT NOT NULL,
    action TEXT,
    repo TEXT,
    installation_id INTEGER,
    payload BLOB NOT NULL,
    received_at REAL NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL,
    last_error TEXT,
    finished_at REAL,
    duration REAL,
    api_calls INTEGER
);
CREATE INDEX IF NOT EXISTS deliveries_status ON deliveries(status, next_attempt_at);
CREATE INDEX IF NOT EXISTS deliveries_received ON deliveries(received_at);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

#: Statuses a restart must pick up again.
UNFINISHED = ("queued", "running", "retry")


@dataclass(frozen=True)
class Incoming:
    """A delivery as it arrives: what the webhook route (or the recovery) records."""

    id: str
    event: str
    action: str | None
    repo: str | None
    installation_id: int | None
    payload: bytes

    def row(self, received_at: float) -> tuple[object, ...]:
        """The values of the INSERT both stores make, in ``INSERT_COLUMNS`` order."""
        return (
            self.id,
            self.event,
            self.action,
            self.repo,
            self.installation_id,
            self.payload,
            received_at,
        )


#: The columns a new delivery fills (status: 'queued').
INSERT_COLUMNS = "id, event, action, repo, installation_id, payload, received_at, status"


@dataclass(frozen=True)
class Delivery:
    id: str
    event: str
    action: str | None
    repo: str | None
    installation_id: int | None
    payload: bytes
    received_at: float
    status: str
    attempts: int
    next_attempt_at: float | None
    last_error: str | None
    finished_at: float | None = None
    duration: float | None = None
    api_calls: int | None = None

    def data(self) -> Any:
        return json.loads(self.payload)


class Inbox:
    """A small synchronous store; each statement is short, so calling it on the loop is fine."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._lock = threading.Lock()
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        # No checkpoint on the request path: copying the WAL into the database takes
        # milliseconds every few hundred deliveries. checkpoint() runs it in the background.
        self._db.execute("PRAGMA wal_autocheckpoint=0")
        self._db.executescript(SCHEMA)
        self._checkpointer: sqlite3.Connection | None = None
        # Held while a checkpoint runs in its thread: closing a connection another thread is
        # using crashes the process (a cancelled ``to_thread`` keeps running).
        self._checkpoint_lock = threading.Lock()
        self._closed = False

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._db.close()
        with self._checkpoint_lock:
            if self._checkpointer is not None:
                self._checkpointer.close()
                self._checkpointer = None

    def checkpoint(self) -> int:
        """Copy the write-ahead log into the database without blocking writers (run it in a
        thread); returns the WAL pages left to copy. Does nothing once the inbox is closed."""
        with self._checkpoint_lock:
            if self._closed:
                return 0
            if self._checkpointer is None:
                self._checkpointer = sqlite3.connect(
                    self.path, isolation_level=None, check_same_thread=False
                )
            row = self._checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return int(row[1]) - int(row[2]) if row and row[1] >= 0 else 0

    def add(self, incoming: Incoming) -> bool:
        """Record a delivery; False when this delivery id is already known and not failed.

        GitHub keeps the delivery id on a redelivery, so a repeat of something we finished is
        skipped, while a redelivery of something that failed is taken up again.
        """
        with self._lock:
            if self._insert(incoming):
                return True
            cur = self._db.execute(
                "UPDATE deliveries SET status='queued', next_attempt_at=NULL, payload=?"
                " WHERE id=? AND status='failed'",
                (incoming.payload, incoming.id),
            )
            return cur.rowcount == 1

    def take_up(self, incoming: Incoming) -> bool:
        """Record a delivery recovered from GitHub's log; False when the id is already known
        in any state (a recovered delivery is taken up once, never run again)."""
        with self._lock:
            return self._insert(incoming)

    def _insert(self, incoming: Incoming) -> bool:
        cur = self._db.execute(
            f"INSERT OR IGNORE INTO deliveries ({INSERT_COLUMNS})"
            " VALUES (?, ?, ?, ?, ?, ?, ?, 'queued')",
            incoming.row(time.time()),
        )
        return cur.rowcount == 1

    def known(self, delivery_ids: list[str]) -> set[str]:
        """Which of these delivery ids the inbox has (in any state)."""
        found: set[str] = set()
        with self._lock:
            for start in range(0, len(delivery_ids), 500):
                chunk = delivery_ids[start : start + 500]
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(
                    f"SELECT id FROM deliveries WHERE id IN ({marks})", chunk
                ).fetchall()
                found.update(str(r[0]) for r in rows)
        return found

    def get_meta(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return str(row[0]) if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?)"
                " ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                (key, value),
            )

    def get(self, delivery_id: str) -> Delivery | None:
        with self._lock:
            cur = self._db.execute("SELECT * FROM deliveries WHERE id=?", (delivery_id,))
            row = cur.fetchone()
            names = [d[0] for d in cur.description]
        return _row(names, row) if row else None

    def start(self, delivery_id: str) -> Delivery | None:
        """Mark a delivery running and count the attempt; the delivery as it is now, in one
        statement (this is on every delivery's path)."""
        with self._lock:
            cur = self._db.execute(
                "UPDATE deliveries SET status='running', attempts=attempts+1 WHERE id=?"
                " RETURNING *",
                (delivery_id,),
            )
            row = cur.fetchone()
            names = [d[0] for d in cur.description] if cur.description else []
        return _row(names, row) if row else None

    def mark_done(self, delivery_id: str, *, duration: float, api_calls: int) -> None:
        self._finish(delivery_id, "done", None, duration, api_calls)

    def mark_failed(
        self, delivery_id: str, error: str, *, duration: float = 0.0, api_calls: int = 0
    ) -> None:
        self._finish(delivery_id, "failed", error, duration, api_calls)

    def mark_retry(self, delivery_id: str, error: str, at: float) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE deliveries SET status='retry', last_error=?, next_attempt_at=? WHERE id=?",
                (error[:2000], at, delivery_id),
            )

    def _finish(
        self, delivery_id: str, status: str, error: str | None, duration: float, api_calls: int
    ) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE deliveries SET status=?, last_error=COALESCE(?, last_error),"
                " finished_at=?, duration=?, api_calls=?, next_attempt_at=NULL WHERE id=?",
                (
                    status,
                    error[:2000] if error else None,
                    time.time(),
                    duration,
                    api_calls,
                    delivery_id,
                ),
            )

    def requeue(self, delivery_id: str) -> bool:
        with self._lock:
            cur = self._db.execute(
                "UPDATE deliveries SET status='queued', next_attempt_at=NULL WHERE id=?",
                (delivery_id,),
            )
        return cur.rowcount == 1

    def unfinished(self) -> list[Delivery]:
        return list(
            self._select(
                "SELECT * FROM deliveries WHERE status IN (?, ?, ?) ORDER BY received_at",
                UNFINISHED,
            )
        )

    def recent(self, limit: int = 50) -> list[Delivery]:
        return list(
            self._select("SELECT * FROM deliveries ORDER BY received_at DESC LIMIT ?", (limit,))
        )

    def counts(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute(
                "SELECT status, COUNT(*) FROM deliveries GROUP BY status"
            ).fetchall()
        return {str(s): int(n) for s, n in rows}

    def prune(self, older_than: float) -> int:
        """Forget finished deliveries older than ``older_than`` (epoch seconds)."""
        with self._lock:
            cur = self._db.execute(
                "DELETE FROM deliveries WHERE status IN ('done','failed') AND received_at < ?",
                (older_than,),
            )
        return cur.rowcount

    def _select(self, sql: str, args: tuple[Any, ...]) -> Iterator[Delivery]:
        with self._lock:
            cur = self._db.execute(sql, args)
            names = [d[0] for d in cur.description]
            rows = cur.fetchall()
        for row in rows:
            yield _row(names, row)


def _row(names: list[str], row: tuple[Any, ...]) -> Delivery:
    values = dict(zip(names, row, strict=True))
    payload = values["payload"]
    values["payload"] = payload if isinstance(payload, bytes) else str(payload).encode()
    return Delivery(**values)
