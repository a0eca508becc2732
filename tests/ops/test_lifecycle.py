"""Stopping the service mid-delivery loses nothing: SIGTERM (a deploy, ``docker stop``) drains
the work in flight; SIGKILL (an OOM kill) leaves it in the inbox for the next start."""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from bot.fake import FakeGitHub
from bot.fake.state import App
from tests.harness import SECRET
from tests.ops.conftest import GATED, gate_checks, open_staging_promotion, seed_with_manifest
from tests.ops.procs import BotProcess, free_port, post_webhook, service_env, wait_inbox

#: Each API answer takes this long, so the gate's ~15 calls keep a delivery busy for seconds.
LATENCY = 0.12


@dataclass
class Deployment:
    fake: FakeGitHub
    app: App
    tmp: Path
    port: int
    env: dict[str, str]

    @property
    def data(self) -> Path:
        return self.tmp / "data"

    def start(self) -> BotProcess:
        return BotProcess(self.tmp, self.port, self.env)


@pytest.fixture
async def deployment(fake: FakeGitHub, tmp_path: Path) -> AsyncIterator[Deployment]:
    port = free_port()
    app = seed_with_manifest(fake)
    await fake.idle()  # the installation event went nowhere: no URL yet
    fake.set_webhook_url(app, f"http://127.0.0.1:{port}/api/github/webhooks")
    env = service_env(
        tmp_path,
        port,
        APP_ID=str(app.id),
        PRIVATE_KEY=app.private_key_pem.strip().replace("\n", "\\n"),
        WEBHOOK_SECRET=SECRET,
        GITHUB_API_URL=fake.api_url,
    )
    yield Deployment(fake, app, tmp_path, port, env)


async def _busy_with_a_pull_request(d: Deployment) -> int:
    """Open a PR and return once the service is working on its delivery (and not done)."""
    d.fake.latency = LATENCY
    number = open_staging_promotion(d.fake)
    running = await wait_inbox(d.data, "pull_request", ("running",))
    assert running.action == "opened"
    return number


async def test_sigterm_mid_delivery_finishes_the_work_before_exiting(
    deployment: Deployment,
) -> None:
    service = deployment.start()
    try:
        await service.wait_healthy("ok")
        number = await _busy_with_a_pull_request(deployment)
        assert gate_checks(deployment.fake, number) == {}  # not yet
        service.signal(signal.SIGTERM)
        # From now on no delivery is taken: the listener is closed (or answers 503).
        try:
            status, _ = await post_webhook(
                f"{service.url}/api/github/webhooks", "ping", {"zen": "x"}, SECRET
            )
            assert status == 503
        except aiohttp.ClientConnectionError:
            pass
        assert await service.wait_exit() == 0
    finally:
        service.kill()
    delivery = await wait_inbox(
        deployment.data, "pull_request", ("done",), within=1, action="opened"
    )
    assert delivery.api_calls and delivery.api_calls > 3
    assert gate_checks(deployment.fake, number) == GATED
    stopped = [r for r in service.log_records() if r["message"].startswith("stopped after")]
    assert len(stopped) == 1 and "all in-flight work finished" in stopped[0]["message"]


async def test_sigkill_mid_delivery_leaves_it_in_the_inbox_and_a_restart_finishes_it(
    deployment: Deployment,
) -> None:
    service = deployment.start()
    try:
        await service.wait_healthy("ok")
        number = await _busy_with_a_pull_request(deployment)
        service.signal(signal.SIGKILL)
        assert await service.wait_exit() == -signal.SIGKILL
    finally:
        service.kill()
    await wait_inbox(deployment.data, "pull_request", ("running",), within=1, action="opened")
    deployment.fake.latency = 0.0
    again = deployment.start()
    try:
        await again.wait_healthy("ok")
        # the PR's own delivery (the review request it causes is another one)
        done = await wait_inbox(deployment.data, "pull_request", ("done",), action="opened")
        assert done.attempts == 2
        assert gate_checks(deployment.fake, number) == GATED
        assert any("resuming 1 unfinished" in r["message"] for r in again.log_records())
        assert await again.stop() == 0
    finally:
        again.kill()
