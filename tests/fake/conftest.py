"""Fixtures: a started fake with one org, people, an app installed on a seeded fleet repo."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from gidgethub import apps
from gidgethub.aiohttp import GitHubAPI
from multidict import CIMultiDict

from bot.fake import DEFAULT_PERMISSIONS, FakeGitHub
from bot.fake.state import App, Installation, User

SECRET = "s3cret"
DEV_INPUT = "clusters/dev-use1-01/tenants/payment/input.yaml"
PROD_INPUT = "clusters/prod-use1-01/tenants/payment/input.yaml"
SEED = {
    "README.md": b"# fleet\n",
    DEV_INPUT: b"image: registry.acme.com/payment:v1.0.0\n",
    PROD_INPUT: b"image: registry.acme.com/payment:v0.9.0\n",
}


@dataclass
class Receiver:
    """A webhook endpoint that records what it receives."""

    url: str = ""
    received: list[tuple[CIMultiDict[str], bytes]] = field(default_factory=list)
    status: int = 202
    delay: float = 0.0

    def events(self) -> list[tuple[str, str | None]]:
        """(event, action) of every received delivery, in order."""
        out = []
        for headers, body in self.received:
            out.append((headers["X-GitHub-Event"], json.loads(body).get("action")))
        return out

    @staticmethod
    def valid_signature(headers: CIMultiDict[str], body: bytes) -> bool:
        """Recompute the HMAC the way a receiver must."""
        expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, headers.get("X-Hub-Signature-256", ""))


@dataclass
class Seeded:
    """A fake with org `acme`, people, app `fleet-bot` installed on `acme/fleet`."""

    fake: FakeGitHub
    app: App
    inst: Installation
    alice: User
    bob: User
    session: aiohttp.ClientSession
    receiver: Receiver

    async def token(self, inst: Installation | None = None, app: App | None = None) -> str:
        """A fresh installation token, fetched over HTTP like the bot does."""
        gh = GitHubAPI(self.session, "fake-tests", base_url=self.fake.api_url)
        target = inst or self.inst
        owner = app or self.app
        data = await apps.get_installation_access_token(
            gh,
            installation_id=str(target.id),
            app_id=str(owner.id),
            private_key=owner.private_key_pem,
        )
        return str(data["token"])

    async def bot(
        self, inst: Installation | None = None, app: App | None = None, **kwargs: Any
    ) -> GitHubAPI:
        """A client authenticated with an installation token."""
        return GitHubAPI(
            self.session,
            "fake-tests",
            oauth_token=await self.token(inst, app),
            base_url=self.fake.api_url,
            **kwargs,
        )

    def person(self, user: User) -> GitHubAPI:
        """A client authenticated with a user's personal access token."""
        return GitHubAPI(
            self.session, "fake-tests", oauth_token=user.token, base_url=self.fake.api_url
        )


async def start_receiver(receiver: Receiver) -> web.AppRunner:
    """Serve the receiver on a free port."""

    async def hook(request: web.Request) -> web.Response:
        receiver.received.append((CIMultiDict(request.headers), await request.read()))
        if receiver.delay:
            await asyncio.sleep(receiver.delay)
        return web.Response(status=receiver.status, text="ok")

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    receiver.url = f"http://127.0.0.1:{port}/hook"
    return runner


async def seed(fake: FakeGitHub, session: aiohttp.ClientSession) -> AsyncIterator[Seeded]:
    """Start a fake and a receiver and seed the standard world."""
    receiver = Receiver()
    runner = await start_receiver(receiver)
    await fake.start()
    # These tests exercise the fake's endpoints, some beyond what the product's app.yml asks
    # for (writing statuses, reading branch protection): this app has those too.
    app = fake.create_app(
        "fleet-bot",
        name="Fleet Bot",
        webhook_url=receiver.url,
        webhook_secret=SECRET,
        permissions={**DEFAULT_PERMISSIONS, "statuses": "write", "administration": "read"},
    )
    fake.create_org("acme")
    alice = fake.create_user("alice", name="Alice", email="alice@acme.test")
    bob = fake.create_user("bob", name="Bob", email="bob@acme.test")
    fake.create_team("acme", "sre", members=["alice", "bob"])
    fake.create_repo("acme", "fleet", files=SEED, author="alice")
    fake.create_repo("acme", "other", files={"x": b"1"}, author="alice")
    fake.set_collaborator("acme/fleet", "alice", "admin")
    fake.set_collaborator("acme/fleet", "bob", "write")
    inst = fake.install(app, "acme", repositories=["fleet"])
    await fake.idle()
    try:
        yield Seeded(fake, app, inst, alice, bob, session, receiver)
    finally:
        await fake.stop()
        await runner.cleanup()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
async def gh(session: aiohttp.ClientSession) -> AsyncIterator[Seeded]:
    async for seeded in seed(FakeGitHub(), session):
        yield seeded


@pytest.fixture
async def ghes(session: aiohttp.ClientSession) -> AsyncIterator[Seeded]:
    async for seeded in seed(FakeGitHub(base_path="/api/v3"), session):
        yield seeded
