"""Which store the settings ask for: SQLite under ``DATA_DIR``, or ``DATABASE_URL``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from bot.service.inbox import Inbox
from bot.service.postgres import Database
from bot.service.store import SqliteStore, Store
from bot.settings import Settings


@asynccontextmanager
async def opened(settings: Settings) -> AsyncIterator[Store]:
    """The service's store, for the command-line tools (``deliveries``, ``redeliver``)."""
    if settings.database_url:
        db = Database(settings.database_url, pool_size=2)
        await db.open(within=10.0)
        try:
            yield db.store
        finally:
            await db.close()
    else:
        store = SqliteStore(Inbox(settings.data_dir / "inbox.sqlite3"))
        try:
            yield store
        finally:
            await store.close()
