"""Where deliveries are processed: the background side of the service.

The webhook endpoint only verifies, records and answers; this owns what does the work (the
HTTP session, the services, the dispatcher, the periodic jobs) on the same event loop. The loop
stays free for acknowledgements because the work yields to them during a burst (dispatch.py)
and the CPU-heavy parsing of fleet files runs on one worker thread (cpu.py).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from gidgethub import routing

from bot.github.context import Services
from bot.handlers import BackgroundJob
from bot.service.dispatch import Dispatcher
from bot.service.inbox import Inbox
from bot.service.metrics import Metrics
from bot.settings import Settings

log = logging.getLogger(__name__)

#: How often the inbox's write-ahead log may be folded into the database (seconds).
CHECKPOINT_EVERY = 1.0
CHECKPOINT_MAX = 10.0


@dataclass
class BotState:
    """What the running service holds: its settings and handlers, and, once started, the
    services, inbox, dispatcher and worker."""

    settings: Settings
    router: routing.Router
    fanout_events: frozenset[str]
    background: list[BackgroundJob] = field(default_factory=list)
    metrics: Metrics = field(default_factory=Metrics)
    services: Services | None = None
    inbox: Inbox | None = None
    dispatcher: Dispatcher | None = None
    ready: bool = False
    accepting: bool = True
    worker: Worker | None = None


class Worker:
    def __init__(self, state: BotState) -> None:
        self.state = state
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        state = self.state
        settings = state.settings
        session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=60),
            connector=aiohttp.TCPConnector(limit=settings.max_concurrent_requests),
        )
        state.services = Services(settings, session)
        state.inbox = Inbox(settings.data_dir / "inbox.sqlite3")
        state.dispatcher = Dispatcher(
            state.services,
            state.inbox,
            state.router,
            fanout_events=state.fanout_events,
            workers=settings.workers,
            metrics=state.metrics,
        )
        resumed = state.dispatcher.resume()
        if resumed:
            log.info("resuming %d unfinished deliveries", resumed)
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._checkpoints()))
        for job in state.background:
            self._tasks.append(loop.create_task(_guard(job, state.services)))

    async def _checkpoints(self) -> None:
        """Keep the inbox's write-ahead log short, off the request path: when deliveries
        pause, and at least every CHECKPOINT_MAX seconds during a long burst."""
        last = time.monotonic()
        while True:
            await asyncio.sleep(CHECKPOINT_EVERY)
            services, inbox = self.state.services, self.state.inbox
            if services is None or inbox is None:
                continue
            quiet = time.monotonic() - services.last_arrival > CHECKPOINT_EVERY
            if quiet or time.monotonic() - last > CHECKPOINT_MAX:
                try:
                    await asyncio.to_thread(inbox.checkpoint)
                except sqlite3.Error as exc:
                    log.warning("inbox checkpoint failed: %s", exc)
                last = time.monotonic()

    async def stop(self, grace: float) -> bool:
        """Stop scheduling, finish in-flight work (up to ``grace`` seconds), close; True when
        nothing was left unfinished (what is left stays in the inbox for the next start)."""
        for task in self._tasks:
            task.cancel()
        finished = True
        if self.state.dispatcher is not None:
            finished = await self.state.dispatcher.drain(grace=grace)
        if self.state.services is not None:
            await self.state.services.session.close()
        if self.state.inbox is not None:
            self.state.inbox.close()
        return finished

    def submit(self, delivery_id: str, data: Any) -> None:
        dispatcher = self.state.dispatcher
        assert dispatcher is not None
        dispatcher.submit(delivery_id, data)

    async def idle(self) -> None:
        """Wait until no delivery is being processed (tests, the demo, redeliver)."""
        dispatcher = self.state.dispatcher
        if dispatcher is not None:
            await dispatcher.idle()


async def _guard(job: BackgroundJob, services: Services) -> None:
    try:
        await job(services)
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("background job %s stopped", getattr(job, "__name__", job))
