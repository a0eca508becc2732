"""Webhook payloads and their signed delivery, one at a time and in event order.

GitHub sends an App's webhooks to the App's single webhook URL, for every installation,
with HMAC signatures over the exact body bytes. The fake does the same in a background
task so that a handler that calls back into the fake while answering never deadlocks.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import itertools
import json
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from bot.fake.contract import Contract
from bot.fake.state import Account, App, Installation, Repo, State

# Events GitHub sends to an App whatever it subscribed to.
ALWAYS_SENT = frozenset({"installation", "installation_repositories"})
HOOKSHOT = "GitHub-Hookshot/7f3e2a1"
#: GitHub gives up on a delivery after 10 seconds (30 on GHES) and records it as failed.
TIMEOUT = 10.0
#: How long GitHub lists deliveries: 3 days on github.com (7 on GHES).
RETENTION = 3 * 24 * 3600.0


@dataclass
class Event:
    """Something that happened; `body` is the payload without `installation`."""

    name: str
    action: str | None
    body: dict[str, Any]
    account: Account
    repo: Repo | None = None
    only_app: App | None = None
    permission: str | None = None
    installation: Installation | None = None  # deliver for this installation only


@dataclass
class Delivery:
    """One webhook delivery as recorded by the fake (status None until answered).

    Once posted it is also an entry of the app's delivery log (``GET /app/hook/deliveries``):
    ``log_id`` is its id there, ``delivery_id`` its ``guid`` (shared by every attempt of the
    same event), ``outcome`` GitHub's ``status`` text and ``status`` its ``status_code``.
    """

    event: str
    action: str | None
    delivery_id: str
    payload: dict[str, Any]
    app: App
    status: int | None = None
    response_text: str | None = None
    error: str | None = None
    body: bytes = field(default=b"", repr=False)
    installation_id: int | None = None
    repository_id: int | None = None
    redelivery: bool = False
    log_id: int = 0
    delivered_at: float = 0.0
    duration: float = 0.0
    outcome: str = ""
    url: str = ""
    request_headers: dict[str, str] = field(default_factory=dict, repr=False)
    response_headers: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def guid(self) -> str:
        return self.delivery_id

    @property
    def ok(self) -> bool:
        """GitHub counts a delivery as made only when the endpoint answered 2xx in time."""
        return self.status is not None and 200 <= self.status < 300


def sign(secret: str, body: bytes) -> tuple[str, str]:
    """`X-Hub-Signature-256` and `X-Hub-Signature` header values for a body."""
    sha256 = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    sha1 = hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()
    return f"sha256={sha256}", f"sha1={sha1}"


class Dispatcher:
    """Fans events out to subscribed installations and posts them in the background."""

    def __init__(self, state: State) -> None:
        self.state = state
        self.deliveries: list[Delivery] = []
        #: The app deliveries log: every attempt posted, oldest first (ids only grow).
        self.log: list[Delivery] = []
        self.timeout = TIMEOUT
        self.retention = RETENTION
        self._log_ids = itertools.count(12_000_000_001)
        self._pending: deque[Delivery] = deque()
        self._wakeup: asyncio.Event | None = None
        self._idle: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        #: When set, every payload is checked against octokit's schema of its event.
        self.contract: Contract | None = None

    # ---- fan-out ---------------------------------------------------------------------------
    def emit(self, event: Event) -> list[Delivery]:
        """Record a delivery for each installation that should receive the event."""
        made: list[Delivery] = []
        for inst in self._recipients(event):
            payload = dict(event.body)
            # installation events carry the full installation object; others the lite form
            payload.setdefault("installation", {"id": inst.id, "node_id": inst.node_id})
            repo = payload.get("repository")
            delivery = Delivery(
                event=event.name,
                action=event.action,
                delivery_id=str(uuid.uuid4()),
                payload=payload,
                app=inst.app,
                installation_id=inst.id,
                repository_id=repo.get("id") if isinstance(repo, dict) else None,
            )
            if self.contract is not None and not made:
                self.contract.check_webhook(event.name, event.action, payload)
            self.deliveries.append(delivery)
            made.append(delivery)
            if inst.app.webhook_url:
                self._pending.append(delivery)
        if made:
            self._kick()
        return made

    def redeliver(self, original: Delivery) -> Delivery:
        """``POST /app/hook/deliveries/{id}/attempts``: the same event again, same ``guid``."""
        again = Delivery(
            event=original.event,
            action=original.action,
            delivery_id=original.delivery_id,
            payload=original.payload,
            app=original.app,
            installation_id=original.installation_id,
            repository_id=original.repository_id,
            redelivery=True,
        )
        self.deliveries.append(again)
        if original.app.webhook_url:
            self._pending.append(again)
            self._kick()
        return again

    def listed(self, app: App, now: float | None = None) -> list[Delivery]:
        """The app's log as GitHub lists it: newest first, within the retention period."""
        cutoff = (time.time() if now is None else now) - self.retention
        return [d for d in reversed(self.log) if d.app is app and d.delivered_at >= cutoff]

    def _recipients(self, event: Event) -> list[Installation]:
        if event.installation is not None:
            candidates = [event.installation]
        elif event.repo is not None:
            candidates = self.state.installations_for(event.repo)
        else:
            candidates = [
                i for i in self.state.installations.values() if i.account is event.account
            ]
        out: list[Installation] = []
        for inst in candidates:
            app = inst.app
            if event.only_app is not None and app is not event.only_app:
                continue
            if event.name not in ALWAYS_SENT and event.name not in app.events:
                continue
            if event.permission is not None and event.permission not in app.permissions:
                continue
            out.append(inst)
        return out

    # ---- delivery --------------------------------------------------------------------------
    def _kick(self) -> None:
        if self._idle is not None and self._pending:
            self._idle.clear()
        if self._wakeup is not None:
            self._wakeup.set()

    async def start(self) -> None:
        """Begin posting deliveries (those queued before start go out first)."""
        self._session = aiohttp.ClientSession()
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        if not self._pending:
            self._idle.set()
        self._task = asyncio.create_task(self._run())
        self._kick()

    async def stop(self) -> None:
        """Stop the worker; undelivered webhooks stay pending."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def idle(self) -> None:
        """Wait until every queued delivery has been posted and answered."""
        if self._idle is None:
            raise RuntimeError("the fake is not started")
        while self._pending or not self._idle.is_set():
            await self._idle.wait()

    async def _run(self) -> None:
        assert self._wakeup is not None and self._idle is not None
        while True:
            if not self._pending:
                self._idle.set()
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            delivery = self._pending[0]
            try:
                await self._post(delivery)
            finally:
                self._pending.popleft()

    async def _post(self, delivery: Delivery) -> None:
        app = delivery.app
        assert self._session is not None and app.webhook_url
        body = json.dumps(delivery.payload, separators=(",", ":")).encode()
        delivery.body = body
        headers = {
            "Accept": "*/*",
            "User-Agent": HOOKSHOT,
            "X-GitHub-Delivery": delivery.delivery_id,
            "X-GitHub-Event": delivery.event,
            "X-GitHub-Hook-ID": str(app.hook_id),
            "X-GitHub-Hook-Installation-Target-ID": str(app.id),
            "X-GitHub-Hook-Installation-Target-Type": "integration",
            "Content-Type": "application/json",
        }
        if app.webhook_secret:
            sha256, sha1 = sign(app.webhook_secret, body)
            headers["X-Hub-Signature"], headers["X-Hub-Signature-256"] = sha1, sha256
        delivery.url = app.webhook_url
        delivery.request_headers = headers
        delivery.log_id = next(self._log_ids)
        delivery.delivered_at = time.time()
        started = time.monotonic()
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        try:
            async with self._session.post(
                app.webhook_url, data=body, headers=headers, timeout=timeout
            ) as resp:
                delivery.response_text = (await resp.text())[:2000]
                delivery.response_headers = dict(resp.headers)
                delivery.status = resp.status
                delivery.outcome = "OK" if delivery.ok else f"Invalid HTTP Response: {resp.status}"
        except TimeoutError as exc:
            delivery.error = f"{type(exc).__name__}: {exc}"
            delivery.outcome = "timed out"
        except aiohttp.ClientConnectorError as exc:
            delivery.error = f"{type(exc).__name__}: {exc}"
            delivery.outcome = "failed to connect"
        except (aiohttp.ClientError, OSError) as exc:
            delivery.error = f"{type(exc).__name__}: {exc}"
            delivery.outcome = "We couldn't deliver this payload: the connection was closed"
        except asyncio.CancelledError:  # the fake stopped while the endpoint was answering
            delivery.error = delivery.outcome = "timed out"
            raise
        finally:
            delivery.duration = round(time.monotonic() - started, 3)
            self.log.append(delivery)
