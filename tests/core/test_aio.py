"""Bounded fan-out: same results as gather, in order, never more than the limit at once."""

from __future__ import annotations

import asyncio

import pytest

from bot.concurrency.aio import map_bounded


async def test_results_in_order_and_never_more_than_the_limit_at_once() -> None:
    running = peak = 0

    async def job(n: int) -> int:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.001 * (n % 3))
        running -= 1
        return n * n

    assert await map_bounded(job, range(100), limit=7) == [n * n for n in range(100)]
    assert peak == 7


async def test_one_loop_turn_starts_only_limit_jobs() -> None:
    started: list[int] = []
    gate = asyncio.Event()

    async def job(n: int) -> int:
        started.append(n)
        await gate.wait()
        return n

    task = asyncio.ensure_future(map_bounded(job, range(10_000), limit=4))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert started == [0, 1, 2, 3]
    gate.set()
    assert len(await task) == 10_000


async def test_first_error_is_raised_as_is_and_the_rest_cancelled() -> None:
    finished: list[int] = []

    async def job(n: int) -> int:
        if n == 3:
            raise ValueError("three")
        await asyncio.sleep(0.01)
        finished.append(n)
        return n

    with pytest.raises(ValueError, match="three"):
        await map_bounded(job, range(50), limit=5)
    await asyncio.sleep(0.05)
    assert len(finished) < 10  # the workers stopped; they did not run the other 45


async def test_no_items() -> None:
    async def job(n: int) -> int:
        raise AssertionError("not called")

    assert await map_bounded(job, []) == []
