"""Nothing lost: deliveries GitHub could not hand over are read back from its delivery log.

GitHub never redelivers a failed webhook by itself. At start, every ``RECOVERY_INTERVAL``
seconds and whenever the database comes back, the log is read newest first down to the point
already checked (kept in the store, with a margin for attempts still being written; never
further back than GitHub keeps them). A ``guid`` none of whose attempts got a 2xx, that the inbox
does not know, is taken up once: its payload is read from the log and put in the inbox directly
(not redelivered: see the README), then processed like any delivery. A comment is read once
more first: one deleted or edited since it was written runs no command (its author took it
back before the bot could read it). The insert is keyed by the
``guid``, so a later redelivery of it, or a second replica, or a restart in the middle of a
round, never runs it twice.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

import gidgethub
from gidgethub import routing, sansio

from bot.github import deliveries
from bot.github.context import Services
from bot.rules.commands import still_as_written
from bot.service.dispatch import Dispatcher, describe
from bot.service.inbox import Incoming
from bot.service.metrics import Metrics
from bot.service.store import Store

log = logging.getLogger("bot.recovery")

CHECKPOINT_KEY = "recovery:checked_until"
#: Re-read this much before the checkpoint: an attempt is listed once it has finished, up to
#: GitHub's 10 s timeout (30 s on GHES) after its ``delivered_at``.
OVERLAP = 120.0


@dataclass
class Recovery:
    services: Services
    store: Store
    dispatcher: Dispatcher
    router: routing.Router
    metrics: Metrics
    #: Set to run a round now (the database came back).
    wake: asyncio.Event

    async def loop(self, interval: float) -> None:
        """At start, then every ``interval`` seconds or when woken; one replica at a time.
        A timed round is skipped when another replica ran one within the interval; the round
        at start and a woken one always run (they follow a gap in this replica's service)."""
        every = 0.0
        while True:
            self.wake.clear()
            try:
                async with self.services.locks.solo("recovery", every=every) as mine:
                    if mine:
                        await self.round()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.metrics.recovery_run("failed")
                log.warning("delivery recovery failed (%s); trying again later", exc)
            every = 0.0
            try:
                await asyncio.wait_for(self.wake.wait(), interval)
            except TimeoutError:
                every = interval

    async def round(self) -> int:
        """Read the log back to the checkpoint; returns how many deliveries were taken up."""
        started = time.time()
        oldest = started - deliveries.retention(self.services.settings.github_api_url)
        checked = await self.store.get_meta(CHECKPOINT_KEY)
        since = max(oldest, float(checked) - OVERLAP) if checked else oldest
        client = self.services.app_client()
        by_guid: dict[str, list[deliveries.Attempt]] = {}
        async for attempt in deliveries.attempts_since(client, since):
            by_guid.setdefault(attempt.guid, []).append(attempt)
        missed = {
            guid: tries
            for guid, tries in by_guid.items()
            if not any(t.ok for t in tries) and self._handled(tries[0])
        }
        known = await self.store.known(list(missed)) if missed else set()
        taken = 0
        for guid, tries in missed.items():
            if guid not in known and await self._take_up(guid, tries[0]):  # the newest try
                taken += 1
        # Everything listed up to the start of this round is settled.
        await self.store.set_meta(CHECKPOINT_KEY, repr(started))
        self.metrics.recovery_run("ok", taken=taken, checked_until=started)
        log.info(
            "delivery log read back to %s: %d attempts, %d deliveries GitHub could not hand"
            " over, %d taken up",
            time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(since)),
            sum(len(t) for t in by_guid.values()),
            len(missed),
            taken,
        )
        return taken

    def _handled(self, attempt: deliveries.Attempt) -> bool:
        """Whether the service acts on it at all (no read for events it ignores)."""
        data = {"action": attempt.action} if attempt.action else {}
        event = sansio.Event(data, event=attempt.event, delivery_id="-")
        return bool(self.router.fetch(event))

    async def _as_written(
        self, payload: dict[str, Any], repo: str | None, inst: int | None
    ) -> bool:
        """A comment read late runs its commands only if it is still as its author wrote it
        (one read of the comment; people's comments only: the bot ignores bots' anyway)."""
        comment = payload.get("comment")
        if not isinstance(comment, dict) or not isinstance(comment.get("id"), int):
            return False
        if (comment.get("user") or {}).get("type") == "Bot":
            return True
        if repo is None or inst is None:
            return False
        now = await self.services.gateway(inst).issue_comment(repo, comment["id"])
        return still_as_written(comment, now)

    async def _take_up(self, guid: str, attempt: deliveries.Attempt) -> bool:
        try:
            headers, payload = await deliveries.request_of(self.services.app_client(), attempt.id)
        except (gidgethub.BadRequest, RecursionError) as exc:
            log.warning("missed delivery %s (%s) cannot be read back: %s", guid, attempt.event, exc)
            return False
        event = str(headers.get("X-GitHub-Event") or attempt.event)
        if not isinstance(payload, dict) or not isinstance(payload.get("action", ""), str):
            log.warning("missed delivery %s (%s) has no usable payload; skipped", guid, event)
            return False
        action, repo, inst = describe(payload)
        commented = event == "issue_comment" and action == "created"
        if commented and not await self._as_written(payload, repo, inst):
            log.warning(
                "missed delivery %s (issue_comment.created) was deleted or edited since it was"
                " written; its commands do not run",
                guid,
                extra={"delivery": guid, "event": event, "action": action, "repo": repo},
            )
            return False
        body = json.dumps(payload, separators=(",", ":")).encode()
        if not await self.store.take_up(Incoming(guid, event, action, repo, inst, body)):
            return False  # it arrived (or another replica took it up) meanwhile
        log.warning(
            "took up missed delivery %s (%s%s of %s) from GitHub's delivery log",
            guid,
            event,
            f".{action}" if action else "",
            time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(attempt.delivered_at)),
            extra={"delivery": guid, "event": event, "action": action, "repo": repo},
        )
        self.dispatcher.submit(guid, payload)
        return True
