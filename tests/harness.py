"""End-to-end harness: the fake GitHub and the real service, talking over real HTTP.

The service runs in-process (aiohttp on an ephemeral port) with the settings a user would give
it; the fake GitHub delivers signed webhooks to it exactly as GitHub would, and records every
API call the service makes.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from gidgethub.routing import Router

from bot.fake import FakeGitHub, samples
from bot.service.app import STATE, create_app
from bot.service.worker import BotState
from bot.settings import load_settings

SECRET = "test-webhook-secret-3f9a"
ORG = "acme"
FLEET = "acme/fleet"


@dataclass
class Harness:
    fake: FakeGitHub
    bot_url: str
    runner: web.AppRunner
    app: web.Application
    tmp: Path
    app_id: int
    settings_env: dict[str, str] = field(default_factory=dict)
    #: Tests that provoke failed deliveries on purpose set this; otherwise any is a bug.
    allow_failed_deliveries: bool = False

    def failed_deliveries(self) -> list[tuple[str, str, str]]:
        inbox = self.state.inbox
        if inbox is None:
            return []
        return [
            (d.event, d.action or "", d.last_error or "")
            for d in inbox.recent(10_000)
            if d.status == "failed"
        ]

    @property
    def state(self) -> BotState:
        return self.app[STATE]

    @property
    def webhook_url(self) -> str:
        return f"{self.bot_url}/api/github/webhooks"

    async def settle(self, rounds: int = 50) -> None:
        """Wait until GitHub has delivered everything and the bot has done all its work
        (each side's work can cause more work on the other)."""
        dispatcher = self.state.dispatcher
        assert dispatcher is not None
        quiet = 0
        for _ in range(rounds):
            await self.fake.idle()
            await dispatcher.idle()
            await asyncio.sleep(0.005 if dispatcher.scheduled == 0 else 0.05)
            before = len(self.fake.deliveries)
            await self.fake.idle()
            if (
                dispatcher.in_flight == 0
                and dispatcher.scheduled == 0
                and len(self.fake.deliveries) == before
            ):
                quiet += 1
                if quiet >= 2:
                    return
            else:
                quiet = 0
        raise AssertionError("the system did not settle")

    def bot_requests(self) -> list[Any]:
        """API requests the bot made (as the app or an installation), in order."""
        return [r for r in self.fake.requests if r.identity.startswith(("installation:", "app:"))]

    def writes(self) -> list[Any]:
        return [
            r
            for r in self.bot_requests()
            if r.method in ("POST", "PATCH", "PUT", "DELETE")
            and not r.path.endswith("/access_tokens")
        ]

    def file(self, path: str, ref: str = "main") -> bytes | None:
        return self.fake.file(FLEET, ref, path)

    def pulls(self, state: str | None = None) -> list[Any]:
        repo = self.fake.repo(FLEET)
        prs = list(repo.prs.values())
        return [p for p in prs if state is None or p.state == state]

    async def send(
        self,
        event: str,
        payload: dict[str, Any] | bytes,
        *,
        secret: str | None = SECRET,
        delivery: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, str]:
        """POST a webhook to the service as GitHub would (signed with ``secret``)."""
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        h = {
            "Content-Type": "application/json",
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
            "User-Agent": "GitHub-Hookshot/test",
        }
        if secret is not None:
            h["X-Hub-Signature-256"] = (
                "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
            )
        h.update(headers or {})
        async with (
            aiohttp.ClientSession() as session,
            session.post(self.webhook_url, data=body, headers=h) as resp,
        ):
            return resp.status, await resp.text()


async def start_bot(
    fake: FakeGitHub,
    app_pem: str,
    app_id: int,
    tmp: Path,
    extra: dict[str, str] | None = None,
    router: Router | None = None,
) -> tuple[web.Application, web.AppRunner, str]:
    env = {
        "APP_ID": str(app_id),
        "PRIVATE_KEY": app_pem,
        "WEBHOOK_SECRET": SECRET,
        "GITHUB_API_URL": fake.api_url,
        "DATA_DIR": str(tmp / "data"),
        "LOG_LEVEL": "DEBUG",
        "TEAM_CACHE_TTL": "300",
        "RESYNC_INTERVAL": "0",
        "RECOVERY_INTERVAL": "0",
        "DASHBOARD_DEBOUNCE": "0.05",
    }
    env.update(extra or {})
    settings = load_settings(env)
    if router is None:
        app = create_app(settings)
    else:
        app = create_app(settings, router=router, fanout_events=frozenset(), background=[])
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server = site._server
    assert server is not None
    port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
    state = app[STATE]
    assert state.services is not None and state.dispatcher is not None
    # Tests should not sleep for seconds on retries.
    state.services.retry_base = 0.01
    state.dispatcher.retry_base = 0.05
    return app, runner, f"http://127.0.0.1:{port}"


def seed_world(fake: FakeGitHub, files: dict[str, bytes] | None = None) -> Any:
    """The org, its people and teams, the fleet repo, and the app installed on the org."""
    app = samples.seed(fake, org=ORG, repo="fleet", secret=SECRET)
    if files is not None:
        fake.commit(FLEET, "main", files, "replace the fleet", author="alice")
    return app
