"""Fan-out with a bound: many awaits (blobs of a fleet, directories of a tree), few at a time.

``asyncio.gather`` over 10,000 coroutines starts 10,000 tasks in one turn of the event loop:
each runs its first step (cache look-ups, request set-up) before the loop can answer anything
else, and that turn took ten seconds at 2,000 clusters while webhooks waited. A few workers
pulling from one iterator keep every turn short and give the same results, in order.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

#: Workers per fan-out: above the service's concurrent-request cap is no faster.
LIMIT = 32


async def map_bounded(
    fn: Callable[[T], Awaitable[R]], items: Iterable[T], *, limit: int = LIMIT
) -> list[R]:
    """``[await fn(x) for x in items]`` with at most ``limit`` running at once, in order.

    The first exception cancels the rest and is raised as it is (no ExceptionGroup), as
    ``asyncio.gather`` would raise it."""
    todo = list(items)
    results: list[R | None] = [None] * len(todo)
    jobs = iter(enumerate(todo))

    async def worker() -> None:
        for index, item in jobs:
            results[index] = await fn(item)

    tasks = [asyncio.ensure_future(worker()) for _ in range(min(limit, len(todo)))]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    return results  # type: ignore[return-value]  # every slot was filled
