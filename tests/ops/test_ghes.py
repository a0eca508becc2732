"""GitHub Enterprise Server: the API lives under ``/api/v3``; every call must keep the prefix."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from gidgethub import sansio

from bot.fake import FakeGitHub
from bot.settings import load_settings
from tests.harness import Harness, start_bot
from tests.ops.conftest import GATED, gate_checks, open_staging_promotion, seed_with_manifest


@pytest.fixture
async def ghes(tmp_path: Path) -> AsyncIterator[Harness]:
    fake = FakeGitHub(base_path="/api/v3")
    await fake.start()
    app = seed_with_manifest(fake)
    bot_app, runner, url = await start_bot(fake, app.private_key_pem, app.id, tmp_path)
    fake.set_webhook_url(app, f"{url}/api/github/webhooks")
    harness = Harness(
        fake=fake, bot_url=url, runner=runner, app=bot_app, tmp=tmp_path, app_id=app.id
    )
    try:
        await harness.settle()
        fake.reset_counters()
        yield harness
    finally:
        await runner.cleanup()
        await fake.stop()


def test_gidgethub_keeps_the_enterprise_prefix() -> None:
    """The pitfall itself: gidgethub 5 dropped ``/api/v3`` when joining a path to base_url."""
    url = sansio.format_url("/repos/acme/fleet", {}, base_url="https://ghe.example/api/v3")
    assert url == "https://ghe.example/api/v3/repos/acme/fleet"
    settings = load_settings({"GITHUB_API_URL": "https://ghe.example/api/v3/"})
    assert settings.github_api_url == "https://ghe.example/api/v3"
    assert settings.github_url == "https://ghe.example"


async def test_a_fleet_pr_on_ghes_gets_its_checks(ghes: Harness) -> None:
    fake = ghes.fake
    assert fake.api_url == fake.web_url + "/api/v3"
    assert ghes.state.settings.github_api_url == fake.api_url
    number = open_staging_promotion(fake)
    await ghes.settle()
    assert gate_checks(fake, number) == GATED
    calls = ghes.bot_requests()
    # token, tree, blobs, PR files, commits, check runs: all answered under the prefix
    assert len(calls) > 5
    assert [r for r in calls if r.status >= 400] == []
    assert any(r.path.endswith("/access_tokens") for r in calls)
    assert any(r.method == "POST" and r.path.endswith("/check-runs") for r in calls)
    assert ghes.state.inbox is not None
    done = [d for d in ghes.state.inbox.recent(100) if d.event == "pull_request"]
    # opened, and review_requested (the bot asked the sre team for the empty approval slot)
    assert sorted((d.action, d.status) for d in done) == [
        ("opened", "done"),
        ("review_requested", "done"),
    ]
    assert any(r.path.endswith(f"/pulls/{number}/requested_reviewers") for r in calls)
