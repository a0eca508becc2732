"""CPU-bound work (YAML parsing, planning, judging) off the event loop, one job at a time.

Parsing is pure Python: threads do not add throughput under the GIL, but each extra thread
contends with the event loop for it. Six default-executor threads parsing a fleet's inputs made
webhook acknowledgements wait seconds; with one worker the loop waits at most a switch interval
(5 ms) per turn. I/O that releases the GIL (SQLite) keeps using ``asyncio.to_thread``.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")

_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bot-cpu")


async def run(fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
    """``fn(*args, **kwargs)`` on the CPU worker, with the caller's context (log fields)."""
    loop = asyncio.get_running_loop()
    call = functools.partial(contextvars.copy_context().run, fn, *args, **kwargs)
    return await loop.run_in_executor(_executor, call)
