"""Running ``python -m bot serve`` processes against the fake GitHub, on SQLite or PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bot.fake import FakeGitHub
from bot.fake.state import App
from tests.harness import FLEET, SECRET
from tests.ops.procs import BotProcess, free_port, service_env


@dataclass
class Replica:
    """One replica: its own port and working directory, the shared settings."""

    name: str
    tmp: Path
    port: int
    env: dict[str, str]
    proc: BotProcess | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def webhook_url(self) -> str:
        return f"{self.url}/api/github/webhooks"

    async def start(self, healthy: bool = True) -> BotProcess:
        self.proc = BotProcess(self.tmp, self.port, self.env)
        if healthy:
            await self.proc.wait_healthy("ok")
        return self.proc

    async def stop(self) -> None:
        if self.proc is not None:
            await self.proc.stop()

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()

    async def metrics(self) -> str:
        async with aiohttp.ClientSession() as s, s.get(f"{self.url}/metrics") as resp:
            return await resp.text()

    async def health(self) -> tuple[int, dict[str, Any]]:
        async with aiohttp.ClientSession() as s, s.get(f"{self.url}/healthz") as resp:
            return resp.status, await resp.json()


@dataclass
class Cluster:
    fake: FakeGitHub
    app: App
    tmp: Path
    replicas: list[Replica] = field(default_factory=list)

    def replica(self, name: str, **settings: str) -> Replica:
        home = self.tmp / name
        home.mkdir(parents=True, exist_ok=True)
        port = free_port()
        env = service_env(
            home,
            port,
            APP_ID=str(self.app.id),
            PRIVATE_KEY=self.app.private_key_pem.strip().replace("\n", "\\n"),
            WEBHOOK_SECRET=SECRET,
            GITHUB_API_URL=self.fake.api_url,
            DASHBOARD_DEBOUNCE="0.05",
            **settings,
        )
        replica = Replica(name, home, port, env)
        self.replicas.append(replica)
        return replica

    def bump_prs(self) -> list[Any]:
        return [
            p for p in self.fake.repo(FLEET).prs.values() if p.head_ref.startswith("fleet-bot/")
        ]

    def close(self) -> None:
        for r in self.replicas:
            r.kill()


async def eventually(check: Callable[[], bool], within: float = 60.0, what: str = "") -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        await asyncio.sleep(0.05)


def metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no {name} in /metrics")
