"""Shared fixtures: a started fake GitHub with the seed-shaped fleet and the real service."""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator, Generator, Iterator
from pathlib import Path

import pytest

from bot.fake import FakeGitHub, contract
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


#: Every fake GitHub of the suite checks requests, responses and webhooks against GitHub's
#: published descriptions (tests/contract, made by scripts/openapi_subset.py). Set the variable
#: empty to run without (to measure what the check costs).
os.environ.setdefault(contract.ENV, str(Path(__file__).parent / "contract"))


def _contract_kept(item: pytest.Item, phase: str) -> None:
    found = contract.drain()
    # Tests of the fake's own validation send GitHub what it refuses, on purpose: they name
    # the violations they cause with @pytest.mark.contract_breach(regex, ...).
    allowed = [re.compile(p) for m in item.iter_markers("contract_breach") for p in m.args]
    found = [line for line in found if not any(p.search(line) for p in allowed)]
    if found and not os.environ.get(contract.LOG_ENV):
        raise AssertionError(
            f"the fake GitHub saw calls or sent answers outside GitHub's contract ({phase}):\n  "
            + "\n  ".join(found)
        )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, None, None]:
    contract.drain()  # what an earlier test left behind is that test's business
    result = yield
    _contract_kept(item, "setup")
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    result = yield
    _contract_kept(item, "test")
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Generator[None, None, None]:
    result = yield
    _contract_kept(item, "teardown")
    return result


@pytest.fixture
async def fake() -> AsyncIterator[FakeGitHub]:
    gh = FakeGitHub()
    await gh.start()
    try:
        yield gh
    finally:
        await gh.stop()
    # The installation token must never reach the archive host (another origin).
    assert gh.archive_auth_leaks == 0, "the bot sent its token to the archive host"


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
