"""Where deliveries are kept: the interface the service uses, and its embedded SQLite form.

Two implementations: ``SqliteStore`` (the inbox under ``DATA_DIR``, one process) and
``bot.service.postgres.PostgresStore`` (``DATABASE_URL``, shared by every replica). The webhook
route records through ``add``; the dispatcher takes a delivery with ``start`` (on PostgreSQL
only one replica gets it) and records its outcome; the delivery recovery reads ``known`` and
records with ``take_up``; small durable values (the recovery checkpoint) are ``meta``.
"""

from __future__ import annotations

from typing import Protocol

from bot.service.inbox import Delivery, Inbox, Incoming


class StoreUnavailable(Exception):
    """The store cannot be reached now: nothing was recorded (the caller answers 503)."""


class Store(Protocol):
    #: True when other processes share it (then deliveries are claimed, not just started).
    shared: bool

    @property
    def problem(self) -> str | None:
        """Why deliveries cannot be recorded now (None: they can)."""

    async def add(self, incoming: Incoming) -> bool: ...

    async def take_up(self, incoming: Incoming) -> bool: ...

    async def known(self, delivery_ids: list[str]) -> set[str]: ...

    async def start(self, delivery_id: str) -> Delivery | None: ...

    async def claim_due(self, limit: int) -> list[Delivery]: ...

    async def sweep(self) -> int: ...

    async def mark_done(self, delivery_id: str, *, duration: float, api_calls: int) -> None: ...

    async def mark_failed(self, delivery_id: str, error: str) -> None: ...

    async def mark_retry(self, delivery_id: str, error: str, at: float) -> None: ...

    async def requeue(self, delivery_id: str) -> bool: ...

    async def unfinished(self) -> list[Delivery]: ...

    async def counts(self) -> dict[str, int]: ...

    async def get(self, delivery_id: str) -> Delivery | None: ...

    async def recent(self, limit: int = 50) -> list[Delivery]: ...

    async def get_meta(self, key: str) -> str | None: ...

    async def set_meta(self, key: str, value: str) -> None: ...

    async def close(self) -> None: ...


class SqliteStore:
    """The embedded inbox: each statement is short, so it runs on the loop as before."""

    shared = False

    def __init__(self, inbox: Inbox) -> None:
        self.inbox = inbox

    @property
    def problem(self) -> str | None:
        return None

    async def add(self, incoming: Incoming) -> bool:
        return self.inbox.add(incoming)

    async def take_up(self, incoming: Incoming) -> bool:
        return self.inbox.take_up(incoming)

    async def known(self, delivery_ids: list[str]) -> set[str]:
        return self.inbox.known(delivery_ids)

    async def start(self, delivery_id: str) -> Delivery | None:
        return self.inbox.start(delivery_id)

    async def claim_due(self, limit: int) -> list[Delivery]:
        return []  # one process: its own timers and queue are the whole picture

    async def sweep(self) -> int:
        return 0

    async def mark_done(self, delivery_id: str, *, duration: float, api_calls: int) -> None:
        self.inbox.mark_done(delivery_id, duration=duration, api_calls=api_calls)

    async def mark_failed(self, delivery_id: str, error: str) -> None:
        self.inbox.mark_failed(delivery_id, error)

    async def mark_retry(self, delivery_id: str, error: str, at: float) -> None:
        self.inbox.mark_retry(delivery_id, error, at)

    async def requeue(self, delivery_id: str) -> bool:
        return self.inbox.requeue(delivery_id)

    async def unfinished(self) -> list[Delivery]:
        return self.inbox.unfinished()

    async def counts(self) -> dict[str, int]:
        return self.inbox.counts()

    async def get(self, delivery_id: str) -> Delivery | None:
        return self.inbox.get(delivery_id)

    async def recent(self, limit: int = 50) -> list[Delivery]:
        return self.inbox.recent(limit)

    async def get_meta(self, key: str) -> str | None:
        return self.inbox.get_meta(key)

    async def set_meta(self, key: str, value: str) -> None:
        self.inbox.set_meta(key, value)

    async def close(self) -> None:
        self.inbox.close()
