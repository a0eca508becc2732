"""The service over real HTTP against the fake GitHub: signatures, tokens, failures, load."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from gidgethub import routing, sansio

from bot.fake import FakeGitHub
from bot.github.context import Context
from tests.harness import FLEET, Harness, seed_world, start_bot

PING = {"zen": "Keep it logically awesome.", "hook_id": 1}


def payload(repo: str, installation: int, n: int = 0) -> dict[str, Any]:
    return {
        "action": "probe",
        "n": n,
        "repository": {"full_name": repo, "default_branch": "main"},
        "installation": {"id": installation},
        "sender": {"login": "alice", "type": "User"},
    }


class Probe:
    """A router whose handlers record what the service does with each delivery."""

    def __init__(self) -> None:
        self.router = routing.Router()
        self.active: Counter[str] = Counter()
        self.max_active: Counter[str] = Counter()
        self.overall = 0
        self.max_overall = 0
        self.done: list[int] = []
        self.router.add(self.probe, "probe_event")
        self.router.add(self.boom, "boom_event")

    async def probe(self, event: sansio.Event, ctx: Context) -> None:
        repo = event.data["repository"]["full_name"]
        self.active[repo] += 1
        self.overall += 1
        self.max_active[repo] = max(self.max_active[repo], self.active[repo])
        self.max_overall = max(self.max_overall, self.overall)
        try:
            # a real API call, so that tokens and the gateway are exercised
            await ctx.gateway.repository(FLEET)
            await asyncio.sleep(0.01)
        finally:
            self.active[repo] -= 1
            self.overall -= 1
        self.done.append(event.data["n"])

    async def boom(self, event: sansio.Event, ctx: Context) -> None:
        raise RuntimeError("handler exploded")


@pytest.fixture
async def probed(fake: FakeGitHub, tmp_path: Path) -> AsyncIterator[tuple[Harness, Probe, int]]:
    app = seed_world(fake)
    probe = Probe()
    bot_app, runner, url = await start_bot(
        fake, app.private_key_pem, app.id, tmp_path, router=probe.router
    )
    harness = Harness(
        fake=fake, bot_url=url, runner=runner, app=bot_app, tmp=tmp_path, app_id=app.id
    )
    installation = next(iter(fake.world.state.installations.values())).id
    fake.reset_counters()
    try:
        yield harness, probe, installation
    finally:
        await runner.cleanup()


async def test_missing_or_wrong_signature_is_401_and_nothing_happens(
    probed: tuple[Harness, Probe, int],
) -> None:
    h, probe, inst = probed
    body = payload(FLEET, inst)
    assert (await h.send("probe_event", body, secret=None))[0] == 401
    assert (await h.send("probe_event", body, secret="wrong-secret"))[0] == 401
    raw = json.dumps(body).encode()
    status, _ = await h.send(
        "probe_event", raw, secret=None, headers={"X-Hub-Signature-256": "sha256=" + "0" * 64}
    )
    assert status == 401
    await h.settle()
    assert probe.done == []
    assert h.bot_requests() == []
    assert h.state.inbox is not None and h.state.inbox.recent() == []


async def test_ping_and_unknown_events_are_acknowledged(probed: tuple[Harness, Probe, int]) -> None:
    h, _probe, inst = probed
    status, text = await h.send("ping", PING)
    assert status == 200 and "pong" in text
    status, text = await h.send("deployment_protection_rule", payload(FLEET, inst))
    assert status == 202 and "ignored" in text
    assert h.bot_requests() == []


async def test_healthz_is_ready(probed: tuple[Harness, Probe, int]) -> None:
    h, _, _ = probed
    async with aiohttp.ClientSession() as s, s.get(f"{h.bot_url}/healthz") as resp:
        assert resp.status == 200


async def test_installation_token_reused_then_refreshed(probed: tuple[Harness, Probe, int]) -> None:
    h, probe, inst = probed

    def token_fetches() -> int:
        return sum(1 for r in h.fake.requests if r.path.endswith("/access_tokens"))

    for n in range(3):
        assert (await h.send("probe_event", payload(FLEET, inst, n)))[0] == 202
        await h.settle()
    assert probe.done == [0, 1, 2]
    assert token_fetches() == 1  # one token served three deliveries

    # GitHub revokes the token early: the 401 makes the service fetch a new one and go on.
    h.fake.expire_tokens()
    await h.send("probe_event", payload(FLEET, inst, 3))
    await h.settle()
    assert probe.done[-1] == 3 and token_fetches() == 2

    # A token that is about to expire (inside the 5-minute margin) is not used again.
    h.fake.token_ttl = 301
    assert h.state.services is not None
    h.state.services.auth.forget(inst)
    await h.send("probe_event", payload(FLEET, inst, 4))
    await h.settle()
    assert token_fetches() == 3
    await asyncio.sleep(1.1)
    await h.send("probe_event", payload(FLEET, inst, 5))
    await h.settle()
    assert probe.done[-1] == 5 and token_fetches() == 4


async def test_failing_handler_does_not_stop_the_next_delivery(
    probed: tuple[Harness, Probe, int],
) -> None:
    h, probe, inst = probed
    assert (await h.send("boom_event", payload(FLEET, inst), delivery="d-boom"))[0] == 202
    assert (await h.send("probe_event", payload(FLEET, inst, 7), delivery="d-ok"))[0] == 202
    await h.settle()
    assert probe.done == [7]
    inbox = h.state.inbox
    assert inbox is not None
    boom, ok = inbox.get("d-boom"), inbox.get("d-ok")
    assert (
        boom is not None
        and boom.status == "failed"
        and "handler exploded" in (boom.last_error or "")
    )
    assert ok is not None and ok.status == "done"
    async with aiohttp.ClientSession() as s, s.get(f"{h.bot_url}/healthz") as resp:
        assert resp.status == 200


async def test_hundred_deliveries_at_once_serialised_per_repository(
    probed: tuple[Harness, Probe, int],
) -> None:
    h, probe, inst = probed
    repos = [f"acme/repo-{i}" for i in range(10)]
    sends = [h.send("probe_event", payload(repos[n % 10], inst, n)) for n in range(100)]
    statuses = await asyncio.gather(*sends)
    assert [s for s, _ in statuses] == [202] * 100
    await h.settle()
    assert sorted(probe.done) == list(range(100))
    assert max(probe.max_active.values()) == 1  # never two tasks on one repository
    assert probe.max_overall > 1  # but different repositories ran in parallel
    assert h.state.services is not None
    assert h.state.services.locks.max_holders_seen == 1
