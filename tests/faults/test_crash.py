"""SIGKILL in the middle of a bump, then a restart: the delivery finishes, with exactly one PR."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from bot.fake import FakeGitHub, samples
from bot.service.inbox import Inbox
from tests.harness import FLEET, SECRET, seed_world

ROOT = str(Path(__file__).resolve().parents[2])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Service:
    """``python -m bot serve`` as a user runs it, in a subprocess."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.env = env
        self.cwd = cwd
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "serve",
            env=self.env,
            cwd=self.cwd,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{self.env['PORT']}/healthz"
        async with aiohttp.ClientSession() as session:
            for _ in range(200):
                try:
                    async with session.get(url) as resp:
                        if resp.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.05)
        raise AssertionError("the service did not become healthy")

    async def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        await self.proc.wait()


@pytest.fixture
async def served(fake: FakeGitHub, tmp_path: Path) -> AsyncIterator[tuple[FakeGitHub, Service]]:
    app = seed_world(fake)
    port = free_port()
    env = {
        **os.environ,
        "APP_ID": str(app.id),
        "PRIVATE_KEY": app.private_key_pem,
        "WEBHOOK_SECRET": SECRET,
        "GITHUB_API_URL": fake.api_url,
        "DATA_DIR": str(tmp_path / "data"),
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "RESYNC_INTERVAL": "0",
        "RECOVERY_INTERVAL": "0",
        "DASHBOARD_DEBOUNCE": "0.05",
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": ROOT,
    }
    fake.set_webhook_url(app, f"http://127.0.0.1:{port}/api/github/webhooks")
    service = Service(env, tmp_path)
    try:
        yield fake, service
    finally:
        if service.proc is not None and service.proc.returncode is None:
            await service.kill()


@pytest.mark.parametrize("kill_after", ["POST /git/refs", "POST /pulls"])
async def test_killed_mid_bump_finishes_after_restart_with_one_pr(
    served: tuple[FakeGitHub, Service], kill_after: str, tmp_path: Path
) -> None:
    fake, service = served
    await service.start()
    fake.latency = 0.05  # a bump takes a while, so there is a "middle" to kill it in
    method, suffix = kill_after.split()
    fake.dispatch(
        FLEET, "image-published", {"image": samples.PAYMENT_IMAGE, "tag": "v2.2.0"}, by="ci-bot"
    )
    for _ in range(400):
        if any(
            r.method == method and r.path.endswith(suffix) and r.status < 300 for r in fake.requests
        ):
            break
        await asyncio.sleep(0.01)
    else:
        raise AssertionError(f"the bump never reached {kill_after}")
    await service.kill()
    before = [p for p in fake.repo(FLEET).prs.values() if p.head_ref.startswith("fleet-bot/")]
    assert all(not p.merged for p in before)  # killed in the middle, really

    fake.latency = 0.0
    await service.start()  # resumes the unfinished delivery from the inbox
    for _ in range(400):
        prs = [p for p in fake.repo(FLEET).prs.values() if p.head_ref.startswith("fleet-bot/")]
        if prs and all(p.merged for p in prs):
            break
        await asyncio.sleep(0.02)
    await fake.idle()
    prs = [p for p in fake.repo(FLEET).prs.values() if p.head_ref.startswith("fleet-bot/")]
    assert len(prs) == 1 and prs[0].merged
    text = fake.file(FLEET, "main", "clusters/dev-use1-01/tenants/payment-app/input.yaml")
    assert text is not None and b"payment:v2.2.0" in text
    inbox = Inbox(tmp_path / "data" / "inbox.sqlite3")
    for _ in range(400):  # the merge is done; the delivery's own bookkeeping follows it
        dispatch = next(d for d in inbox.recent(100) if d.event == "repository_dispatch")
        if dispatch.status == "done":
            break
        await asyncio.sleep(0.02)
    await service.kill()
    assert dispatch.status == "done" and dispatch.attempts == 2
