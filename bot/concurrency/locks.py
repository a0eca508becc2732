"""Per-repository serialisation: one writer per repository, many repositories in parallel."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field


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
        self.max_holders_seen = 0
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
                self.max_holders_seen = max(self.max_holders_seen, len(holders))
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

    def busy(self) -> list[str]:
        return [k for k, e in self._entries.items() if e.owner is not None]
