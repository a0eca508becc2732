"""From the inbox to the handlers: background processing, serialised per repository.

The webhook endpoint only verifies, records and answers; this module does the work. Deliveries
for one repository run one at a time (a per-repository lock); different repositories run in
parallel. Transient GitHub failures go back to the inbox with capped exponential backoff and
jitter; permanent ones are recorded with their reason. Nothing a handler raises escapes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import gidgethub
from gidgethub import routing, sansio

from bot.github.client import TransientGitHubError
from bot.github.context import Context, Services
from bot.github.gateway import GatewayError
from bot.handlers import schemas
from bot.handlers.payload import PayloadError, installation_id, repo_full_name
from bot.service.inbox import Delivery
from bot.service.metrics import Metrics
from bot.service.store import Store

log = logging.getLogger("bot.delivery")

MAX_ATTEMPTS = 8
#: The longest a delivery's processing waits for in-flight acknowledgements to finish.
ACK_PRIORITY_WAIT = 2.0
#: Timers due within this many seconds count as pending work.
SOON = 10.0
#: Deliveries closer together than this are a burst.
BURST_GAP = 0.02
#: Above this many waiting deliveries, work no longer yields to acknowledgements.
BACKLOG_LIMIT = 2000
RETRY_BASE = 2.0
RETRY_CAP = 600.0
#: On a shared store: how often a replica looks for deliveries nobody is working on (due
#: retries, deliveries a stopped or killed replica left), and how long a freshly received
#: delivery is left to the replica that received it.
POLL_EVERY = 1.0


class Dispatcher:
    def __init__(
        self,
        services: Services,
        store: Store,
        router: routing.Router,
        *,
        fanout_events: Iterable[str] = (),
        retry_base: float = RETRY_BASE,
        retry_cap: float = RETRY_CAP,
        workers: int = 16,
        metrics: Metrics | None = None,
    ) -> None:
        self.services = services
        self.metrics = metrics if metrics is not None else Metrics()
        self.store = store
        self.router = router
        self.fanout_events = frozenset(fanout_events)
        self.retry_base = retry_base
        self.retry_cap = retry_cap
        self._tasks: set[asyncio.Task[None]] = set()  # deferred jobs
        self._timers: set[asyncio.TimerHandle] = set()
        self._deferred: set[str] = set()
        self._queue: asyncio.Queue[tuple[str, Any, Delivery | None]] = asyncio.Queue()
        self._poller: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[None]] = set()  # deliveries being processed
        self._workers = workers
        self._consumers: list[asyncio.Task[None]] = []
        self._busy = 0
        self._settled = asyncio.Event()  # nothing being processed
        self._settled.set()
        self._quiet = asyncio.Event()
        self._quiet.set()
        self._watcher: asyncio.Task[None] | None = None
        self.accepting = True
        services.defer = self.defer

    # --- submission -------------------------------------------------------------------------

    def submit(self, delivery_id: str, data: Any = None, claimed: Delivery | None = None) -> None:
        """Queue a recorded delivery for processing (``data``: its payload, when the caller
        has already parsed it; ``claimed``: the delivery, when it was already taken from a
        shared store). A fixed number of consumers work the queue: a burst costs a queue
        entry per delivery, not a task."""
        if not self._consumers:
            loop = asyncio.get_running_loop()
            self._consumers = [loop.create_task(self._consume()) for _ in range(self._workers)]
        self._queue.put_nowait((delivery_id, data, claimed))

    async def resume(self) -> int:
        """Pick up what a crash or restart left unfinished; returns how many. On a shared
        store, deliveries of replicas that are gone are put back first, and from then on the
        store is polled for work nobody is doing."""
        now = time.time()
        await self.store.sweep()
        pending = await self.store.unfinished()
        loop = asyncio.get_running_loop()
        for d in pending:
            delay = max(0.0, (d.next_attempt_at or now) - now) if d.status == "retry" else 0.0
            if delay:
                self._later(loop, delay, d.id)
            else:
                self.submit(d.id)
        if self.store.shared and self._poller is None:
            self._poller = loop.create_task(self._poll())
        return len(pending)

    async def _poll(self) -> None:
        """Shared store: take up due retries and the deliveries replicas that stopped or
        died left behind (their owner's session is gone), a few at a time."""
        while True:
            await asyncio.sleep(POLL_EVERY)
            if not self.accepting:
                continue
            try:
                await self.store.sweep()
                room = max(0, self._workers - self._busy - self._queue.qsize())
                if room:
                    for delivery in await self.store.claim_due(room):
                        self.submit(delivery.id, None, delivery)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("could not look for unfinished deliveries: %s", exc)

    def _later(self, loop: asyncio.AbstractEventLoop, delay: float, delivery_id: str) -> None:
        def fire() -> None:
            self._timers.discard(handle)
            if self.accepting:
                self.submit(delivery_id)

        handle = loop.call_later(delay, fire)
        self._timers.add(handle)

    def defer(self, key: str, delay: float, job: Callable[[], Awaitable[None]]) -> bool:
        """Run ``job`` once after ``delay`` seconds; repeats of ``key`` meanwhile coalesce.

        This is how work that many events ask for (a dashboard refresh) is debounced. The job
        is tracked like a delivery, so shutdown waits for it and tests see it in flight.
        """
        if key in self._deferred or not self.accepting:
            return False
        loop = asyncio.get_running_loop()

        def fire() -> None:
            self._timers.discard(handle)
            self._deferred.discard(key)
            if not self.accepting:
                return
            task = loop.create_task(self._guarded(key, job))
            self._tasks.add(task)
            self._settled.clear()
            task.add_done_callback(self._job_done)

        handle = loop.call_later(delay, fire)
        self._timers.add(handle)
        self._deferred.add(key)
        return True

    def _job_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._check_settled()

    async def _guarded(self, key: str, job: Callable[[], Awaitable[None]]) -> None:
        try:
            await job()
        except Exception:
            log.exception("deferred job %s failed", key)

    @property
    def in_flight(self) -> int:
        """Deliveries queued or being processed, and deferred jobs running."""
        return self._queue.qsize() + self._busy + len(self._tasks)

    @property
    def scheduled(self) -> int:
        """Retries and deferred jobs due within ``SOON`` seconds (what tests wait for; a
        dashboard refill an hour away is not pending work)."""
        if not self._timers:
            return 0
        now = asyncio.get_running_loop().time()
        return sum(1 for handle in self._timers if handle.when() - now < SOON)

    async def drain(self, grace: float = 30.0) -> bool:
        """Stop taking work, finish the deliveries being processed (queued ones stay in the
        inbox and resume at the next start); True when nothing in progress was cut."""
        self.accepting = False
        if self._poller is not None:
            self._poller.cancel()
        for handle in self._timers:
            handle.cancel()
        self._timers.clear()
        self._check_settled()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._settled.wait(), grace)
        finished = not self._busy and not self._tasks
        for consumer in self._consumers:
            consumer.cancel()
        for task in self._tasks:
            task.cancel()
        return finished

    async def idle(self) -> None:
        """Wait until nothing is queued or running (tests and the demo use this)."""
        while self._queue.qsize() or self._busy or self._tasks:
            await self._queue.join()
            if self._tasks:
                await asyncio.wait(set(self._tasks))

    def _check_settled(self) -> None:
        if self._busy or self._tasks:
            self._settled.clear()
        else:
            self._settled.set()

    # --- processing -------------------------------------------------------------------------

    async def _consume(self) -> None:
        """One of a bounded set of consumers: a burst of deliveries never delays the next
        acknowledgement, the work queues here. A consumer takes a repository's lock only
        while it processes, so a lock holder never waits for a consumer (no deadlock)."""
        while True:
            delivery_id, data, claimed = await self._queue.get()
            self._busy += 1
            self._settled.clear()
            try:
                if not self.accepting:
                    continue  # shutting down: it stays queued in the inbox for the next start
                await self._yield_to_acknowledgements()
                work = asyncio.ensure_future(self._process(delivery_id, data, claimed))
                self._running.add(work)
                try:
                    await asyncio.shield(work)
                except asyncio.CancelledError:
                    if not work.cancelled():
                        work.cancel()  # the consumer itself is being stopped
                        raise
                    log.warning("stopped delivery %s: the database was lost", delivery_id)
                finally:
                    self._running.discard(work)
            except Exception:
                log.exception("delivery %s could not be processed", delivery_id)
            finally:
                self._busy -= 1
                self._queue.task_done()
                self._check_settled()

    def abandon(self) -> int:
        """Stop the deliveries being processed (this replica lost its database session, and
        with it its repository locks: another replica may take them up). Returns how many."""
        for work in self._running:
            work.cancel()
        return len(self._running)

    async def _yield_to_acknowledgements(self) -> None:
        """Acknowledge first: while deliveries keep arriving (the last one less than
        ``BURST_GAP`` ago), work waits, at most ``ACK_PRIORITY_WAIT``, so a burst is
        acknowledged at the speed of the endpoint and the work follows right after. Waiters
        resume in the order they came (one shared gate), so a repository's deliveries keep
        their order. A backlog of more than ``BACKLOG_LIMIT`` stops the waiting."""
        if self._quiet.is_set() or self._queue.qsize() >= BACKLOG_LIMIT:
            return
        await self._quiet.wait()

    def arrived(self) -> None:
        """A delivery was just acknowledged: close the gate until arrivals pause."""
        self.services.last_arrival = time.monotonic()
        if self._quiet.is_set():
            self._quiet.clear()
            self._watcher = asyncio.get_running_loop().create_task(self._watch_burst())

    async def _watch_burst(self) -> None:
        """Open the gate once no delivery has arrived for ``BURST_GAP``, or after
        ``ACK_PRIORITY_WAIT`` at the latest (work must not starve under a long burst)."""
        closed = time.monotonic()
        while True:
            now = time.monotonic()
            remaining = min(
                self.services.last_arrival + BURST_GAP - now, closed + ACK_PRIORITY_WAIT - now
            )
            if remaining <= 0:
                break
            await asyncio.sleep(remaining)
        self._quiet.set()

    async def _process(self, delivery_id: str, data: Any, claimed: Delivery | None) -> None:
        delivery = claimed or await self.store.start(delivery_id)
        if delivery is None:
            return  # another replica has taken it
        attempts = delivery.attempts
        started = time.monotonic()
        calls = 0
        outcome = "done"
        repo = delivery.repo
        try:
            if data is None or attempts > 1:
                data = delivery.data()
            schemas.check(delivery.event, data)
            event = sansio.Event(data, event=delivery.event, delivery_id=delivery.id)
            inst = delivery.installation_id or installation_id(data)
            if inst is None:
                if repo is None:
                    raise PayloadError("installation.id is missing and there is no repository")
                inst = await self.services.installation_for(repo)
            ctx = self._context(delivery, event, inst)
            try:
                if repo is None or delivery.event in self.fanout_events:
                    await self.router.dispatch(event, ctx)
                else:
                    async with ctx.lock(repo):
                        await self.router.dispatch(event, ctx)
            finally:
                calls = ctx.gateway.calls
            await self.store.mark_done(
                delivery_id, duration=time.monotonic() - started, api_calls=calls
            )
        except TransientGitHubError as exc:
            outcome = await self._retry(delivery, attempts, str(exc), exc.retry_after)
        except (PayloadError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            outcome = "failed"
            await self.store.mark_failed(delivery_id, f"malformed payload: {exc}")
            log.warning(
                "malformed payload: %s",
                exc,
                extra=_extra(delivery, outcome, started, calls),
            )
        except gidgethub.BadRequest as exc:
            outcome = "failed"
            message = f"GitHub answered {int(exc.status_code)}: {exc}"
            await self.store.mark_failed(delivery_id, message)
            log.warning(message, extra=_extra(delivery, outcome, started, calls))
        except GatewayError as exc:
            outcome = "failed"
            await self.store.mark_failed(delivery_id, f"GitHub: {exc}")
            log.warning("GitHub: %s", exc, extra=_extra(delivery, outcome, started, calls))
        except gidgethub.GitHubBroken as exc:
            outcome = await self._retry(
                delivery, attempts, f"GitHub answered {int(exc.status_code)}"
            )
        except Exception as exc:
            outcome = "failed"
            await self.store.mark_failed(delivery_id, f"{type(exc).__name__}: {exc}")
            log.exception(
                "handler failed: %s", exc, extra=_extra(delivery, outcome, started, calls)
            )
        elapsed = time.monotonic() - started
        self.metrics.delivery(delivery.event, outcome, elapsed)
        log.info(
            "%s%s %s",
            delivery.event,
            f".{delivery.action}" if delivery.action else "",
            outcome,
            extra=_extra(delivery, outcome, started, calls),
        )

    async def _retry(
        self, delivery: Delivery, attempts: int, error: str, retry_after: float | None = None
    ) -> str:
        if attempts >= MAX_ATTEMPTS:
            await self.store.mark_failed(delivery.id, f"gave up after {attempts} attempts: {error}")
            log.error("giving up on %s: %s", delivery.id, error)
            return "failed"
        delay = retry_after if retry_after is not None else 0.0
        delay = max(
            delay,
            random.uniform(0.5, 1.0) * min(self.retry_cap, self.retry_base * 2 ** (attempts - 1)),
        )
        await self.store.mark_retry(delivery.id, error, time.time() + delay)
        log.warning("will retry %s in %.1fs: %s", delivery.id, delay, error)
        if self.accepting:
            self._later(asyncio.get_running_loop(), delay, delivery.id)
        return "retry"

    def _context(self, delivery: Delivery, event: sansio.Event, inst: int) -> Context:
        fresh = delivery.action == "rerequested"
        adapter = logging.LoggerAdapter(
            logging.getLogger("bot.handlers"),
            {"delivery": delivery.id, "event": delivery.event, "repo": delivery.repo},
        )
        return Context(
            services=self.services,
            installation_id=inst,
            delivery_id=delivery.id,
            event=delivery.event,
            gateway=self.services.gateway(inst),
            log=adapter,
            fresh=fresh,
        )


def _extra(delivery: Delivery, outcome: str, started: float, calls: int) -> dict[str, Any]:
    return {
        "delivery": delivery.id,
        "event": delivery.event,
        "action": delivery.action,
        "repo": delivery.repo,
        "outcome": outcome,
        "duration": round(time.monotonic() - started, 4),
        "api_calls": calls,
    }


def describe(data: Any) -> tuple[str | None, str | None, int | None]:
    """(action, repo, installation id) of a parsed payload, for the inbox row."""
    action = data.get("action") if isinstance(data, dict) else None
    return (
        action if isinstance(action, str) else None,
        repo_full_name(data),
        installation_id(data),
    )
