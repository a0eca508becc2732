"""Per-repository serialisation: one writer per repository, many repositories in parallel."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Protocol


class RepoLocks(Protocol):
    """One writer per repository, and periodic jobs run once at a time.

    ``KeyedLocks`` does it inside one process; with ``DATABASE_URL`` the service uses
    PostgreSQL's advisory locks (``bot.service.postgres``) so that it holds across replicas.
    """

    @property
    def max_holders_seen(self) -> int:
        """For tests: the most tasks of this process that ever held one key at once."""

    def hold(self, key: str) -> AbstractAsyncContextManager[None]:
        """Wait for ``key`` and hold it (re-entrant within a task)."""

    def solo(self, job: str, every: float) -> AbstractAsyncContextManager[bool]:
        """Run a periodic job's round here? True when this process should run it now: no
        one else is running it and nobody ran it in the last ``every`` seconds."""

    def busy(self) -> list[str]: ...


@dataclass
class _Entry:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    owner: asyncio.Task[object] | None = None
    depth: int = 0
    users: int = 0


class KeyedLocks:
    """Re-entrant (per task) locks by key, forgotten when nobody holds or waits for them.

    Re-entrancy matters because a handler already serialised on a repository may call shared
    code that serialises on the same repository again.
    """

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}
        #: For tests: the largest number of tasks that ever held one key at once (must be 1).
        self._max_holders_seen = 0
        self._holders: dict[str, set[int]] = {}

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        task = asyncio.current_task()
        entry = self._entries.setdefault(key, _Entry())
        if entry.owner is task and task is not None:
            entry.depth += 1
            try:
                yield
            finally:
                entry.depth -= 1
            return
        entry.users += 1
        try:
            async with entry.lock:
                entry.owner = task
                entry.depth = 1
                holders = self._holders.setdefault(key, set())
                holders.add(id(task))
                self._max_holders_seen = max(self._max_holders_seen, len(holders))
                try:
                    yield
                finally:
                    holders.discard(id(task))
                    entry.owner = None
                    entry.depth = 0
        finally:
            entry.users -= 1
            if entry.users == 0 and self._entries.get(key) is entry:
                del self._entries[key]
                self._holders.pop(key, None)

    @property
    def max_holders_seen(self) -> int:
        return self._max_holders_seen

    def held_here(self, key: str) -> bool:
        """Whether the current task already holds ``key`` (a re-entry)."""
        entry = self._entries.get(key)
        task = asyncio.current_task()
        return entry is not None and task is not None and entry.owner is task

    @asynccontextmanager
    async def solo(self, job: str, every: float) -> AsyncIterator[bool]:
        """One process: its own loop is the only one running the job."""
        del job, every
        yield True

    def busy(self) -> list[str]:
        return [k for k, e in self._entries.items() if e.owner is not None]
