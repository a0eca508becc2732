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
from typing import TYPE_CHECKING, Any

import aiohttp
from gidgethub import routing

from bot.github.context import Services
from bot.handlers import BackgroundJob
from bot.service.dispatch import Dispatcher
from bot.service.inbox import Inbox
from bot.service.metrics import Metrics
from bot.service.recovery import Recovery
from bot.service.store import SqliteStore, Store
from bot.settings import Settings

if TYPE_CHECKING:
    from bot.service.postgres import Database

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
    #: Where deliveries are kept (SQLite under DATA_DIR, or PostgreSQL with DATABASE_URL).
    store: Store | None = None
    #: The embedded SQLite inbox behind ``store`` (None on PostgreSQL).
    inbox: Inbox | None = None
    dispatcher: Dispatcher | None = None
    ready: bool = False
    accepting: bool = True
    #: The inbox's rows by status, as last read (for /metrics).
    inbox_counts: dict[str, int] = field(default_factory=dict)
    #: Read GitHub's delivery log for missed deliveries (RECOVERY_INTERVAL > 0 also needed).
    recover: bool = True
    #: Set to run a delivery recovery round now (the database came back).
    recovery_wake: asyncio.Event = field(default_factory=asyncio.Event)
    worker: Worker | None = None

    def recovery(self) -> Recovery:
        """The delivery recovery of the started service (its loop, or one round of it)."""
        assert self.services and self.store and self.dispatcher, "the service has not started"
        return Recovery(
            services=self.services,
            store=self.store,
            dispatcher=self.dispatcher,
            router=self.router,
            metrics=self.metrics,
            wake=self.recovery_wake,
        )


class Worker:
    def __init__(self, state: BotState) -> None:
        self.state = state
        self._tasks: list[asyncio.Task[None]] = []
        self.database: Database | None = None

    async def start(self) -> None:
        state = self.state
        settings = state.settings
        session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=60),
            connector=aiohttp.TCPConnector(limit=settings.max_concurrent_requests),
        )
        if settings.database_url:
            from bot.service.postgres import connect

            self.database = await connect(settings.database_url, pool_size=settings.workers + 10)
            state.store = self.database.store
            state.services = Services(
                settings,
                session,
                locks=self.database.locks,
                wakeups=self.database.wakeups,
                notes=state.store,
            )
            self.database.on_lost.append(self._lost)
            self.database.on_back.append(state.recovery_wake.set)
        else:
            state.inbox = Inbox(settings.data_dir / "inbox.sqlite3")
            state.store = SqliteStore(state.inbox)
            state.services = Services(settings, session, notes=state.store)
        state.dispatcher = Dispatcher(
            state.services,
            state.store,
            state.router,
            fanout_events=state.fanout_events,
            workers=settings.workers,
            metrics=state.metrics,
        )
        resumed = await state.dispatcher.resume()
        if resumed:
            log.info("resuming %d unfinished deliveries", resumed)
        loop = asyncio.get_running_loop()
        if state.inbox is not None:
            self._tasks.append(loop.create_task(self._checkpoints()))
        if settings.recovery_interval > 0 and state.recover:
            recovery = state.recovery()
            self._tasks.append(loop.create_task(recovery.loop(settings.recovery_interval)))
        for job in state.background:
            self._tasks.append(loop.create_task(_guard(job, state.services)))

    def _lost(self) -> None:
        """The database session is gone, and this replica's repository locks with it: stop
        the deliveries in progress (they stay in the inbox and run again)."""
        if self.state.dispatcher is not None:
            stopped = self.state.dispatcher.abandon()
            if stopped:
                log.warning("stopped %d deliveries in progress; they will run again", stopped)

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
            await asyncio.to_thread(self.state.services.objects.store.close)
        if self.state.store is not None:
            await self.state.store.close()
        if self.database is not None:
            await self.database.close()
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
