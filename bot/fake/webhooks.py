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
import json
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
TIMEOUT = aiohttp.ClientTimeout(total=10)  # GitHub gives up after 10 seconds


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
    """One webhook delivery as recorded by the fake (status None until answered)."""

    event: str
    action: str | None
    delivery_id: str
    payload: dict[str, Any]
    app: App
    status: int | None = None
    response_text: str | None = None
    error: str | None = None
    body: bytes = field(default=b"", repr=False)


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
            delivery = Delivery(
                event=event.name,
                action=event.action,
                delivery_id=str(uuid.uuid4()),
                payload=payload,
                app=inst.app,
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
        self._session = aiohttp.ClientSession(timeout=TIMEOUT)
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
            "X-GitHub-Event": delivery.event,
            "X-GitHub-Delivery": delivery.delivery_id,
            "X-GitHub-Hook-ID": str(app.hook_id),
            "X-GitHub-Hook-Installation-Target-Type": "integration",
            "X-GitHub-Hook-Installation-Target-ID": str(app.id),
            "User-Agent": HOOKSHOT,
            "Content-Type": "application/json",
            "Accept": "*/*",
        }
        if app.webhook_secret:
            headers["X-Hub-Signature-256"], headers["X-Hub-Signature"] = sign(
                app.webhook_secret, body
            )
        try:
            async with self._session.post(app.webhook_url, data=body, headers=headers) as resp:
                delivery.response_text = (await resp.text())[:2000]
                delivery.status = resp.status
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            delivery.error = f"{type(exc).__name__}: {exc}"
