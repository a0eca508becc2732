"""No secret ever leaves the process (issue 8): not in logs, errors, check runs, comments or
/metrics. A whole story runs with DEBUG logging, then everything the world can see is searched."""

from __future__ import annotations

import logging

import aiohttp
import pytest

from bot.fake import samples
from bot.service import logs
from tests.e2e.gatekit import PROD, open_change, path, with_image
from tests.harness import FLEET, SECRET, Harness


async def test_no_secret_in_any_output(world: Harness, capsys: pytest.CaptureFixture[str]) -> None:
    world.allow_failed_deliveries = True
    services = world.state.services
    assert services is not None
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    logs.configure("DEBUG", "json", services.settings.secrets())
    try:
        world.fake.dispatch(
            FLEET, "image-published", {"image": samples.PAYMENT_IMAGE, "tag": "v2.2.0"}, by="ci-bot"
        )
        number = open_change(
            world, "prod", {path(PROD): with_image(world, PROD, f"{samples.PAYMENT_IMAGE}:v9.9.9")}
        )
        world.fake.comment(FLEET, number, "rita", "/promote prod")
        world.fake.comment(FLEET, number, "alice", "/promote prod nope")
        world.fake.expire_tokens()  # a 401 and a token refresh along the way
        world.fake.inject_fault(
            method="POST",
            path=r"/git/trees$",
            status=422,
            times=None,
            body={"message": "boom", "documentation_url": "x"},
        )
        world.fake.dispatch(
            FLEET, "image-published", {"image": samples.PAYMENT_IMAGE, "tag": "v2.3.0"}, by="ci-bot"
        )
        await world.settle()
        async with aiohttp.ClientSession() as s, s.get(f"{world.bot_url}/metrics") as resp:
            metrics = await resp.text()
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    captured = capsys.readouterr()
    state = world.fake.world.state
    tokens = list(state.tokens)  # the fake keys installation tokens by their value
    assert tokens, "the story should have used installation tokens"
    pem = services.settings.private_key or ""
    key_lines = [ln for ln in pem.splitlines() if ln and "PRIVATE KEY" not in ln]
    secrets = [SECRET, *tokens, *key_lines[:3]]
    repo = world.fake.repo(FLEET)
    visible = [
        captured.err,
        captured.out,
        metrics,
        *(str(run.output) for run in repo.check_runs.values()),
        *(c.body for issue in repo.issues.values() for c in issue.comments),
        *(str(issue.body) for issue in repo.issues.values()),
        *(
            (d.last_error or "")
            for d in (world.state.inbox.recent(1000) if world.state.inbox else [])
        ),
    ]
    assert len(captured.err) > 1000, "DEBUG logging should have said a lot"
    for secret in secrets:
        for text in visible:
            assert secret not in text
