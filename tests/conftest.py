"""Shared fixtures: a started fake GitHub with the seed-shaped fleet and the real service."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bot.fake import FakeGitHub
from tests.harness import Harness, seed_world, start_bot
from tests.postgres import PostgresServer, start_server


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL server for the whole run (started on first use)."""
    server = start_server()
    try:
        yield server
    finally:
        server.destroy()


@pytest.fixture
def database_url(postgres: PostgresServer) -> str:
    """A fresh, empty database of its own for one test."""
    return postgres.create_database()


@pytest.fixture
async def fake() -> AsyncIterator[FakeGitHub]:
    gh = FakeGitHub()
    await gh.start()
    try:
        yield gh
    finally:
        await gh.stop()


@pytest.fixture
async def world(fake: FakeGitHub, tmp_path: Path) -> AsyncIterator[Harness]:
    """The fleet, its people and the app on a fake GitHub; the service running against it."""
    app = seed_world(fake)
    bot_app, runner, url = await start_bot(fake, app.private_key_pem, app.id, tmp_path)
    fake.set_webhook_url(app, f"{url}/api/github/webhooks")
    harness = Harness(
        fake=fake, bot_url=url, runner=runner, app=bot_app, tmp=tmp_path, app_id=app.id
    )
    await harness.settle()
    fake.reset_counters()
    try:
        yield harness
        failed = harness.failed_deliveries()
        if failed and not harness.allow_failed_deliveries:
            raise AssertionError(f"deliveries failed during the test: {failed}")
    finally:
        await runner.cleanup()
