"""The database goes away and comes back: the replica refuses what it cannot store (503, so
GitHub records the failure), says why on /healthz, and takes everything up once it is back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest

from bot.fake import FakeGitHub, samples
from tests.harness import FLEET, SECRET, seed_world
from tests.ops.procs import post_webhook
from tests.postgres import PostgresServer, wait_until_up
from tests.replicas.kit import Cluster, eventually, metric


@pytest.fixture
async def cluster(fake: FakeGitHub, tmp_path: Path) -> AsyncIterator[Cluster]:
    app = seed_world(fake)
    await fake.idle()
    c = Cluster(fake, app, tmp_path)
    try:
        yield c
    finally:
        c.close()


async def test_database_goes_away_and_comes_back(
    cluster: Cluster, postgres: PostgresServer, database_url: str
) -> None:
    fake = cluster.fake
    bot = cluster.replica("bot", DATABASE_URL=database_url, RECOVERY_INTERVAL="600")
    fake.set_webhook_url(cluster.app, bot.webhook_url)
    await bot.start()
    try:
        postgres.stop()  # every session is cut, as in a failover

        for _ in range(200):  # noticed within a heartbeat or two
            status, body = await bot.health()
            if status == 503 and body.get("status") == "database unavailable":
                break
            await asyncio.sleep(0.05)
        status, body = await bot.health()
        assert status == 503 and body["reason"]
        assert database_url.split("@")[0] not in str(body)  # no credentials in the answer

        # an image is published meanwhile: the replica cannot store it, so it does not
        # acknowledge it (GitHub records the failure)
        fake.dispatch(
            FLEET,
            "image-published",
            {"image": samples.PAYMENT_IMAGE, "tag": "v2.2.0"},
            by="ci-bot",
        )
        await fake.idle()
        refused = fake.delivery_log[-1]
        assert refused.status == 503 and not refused.ok
        assert refused.response_text is not None and "database unavailable" in refused.response_text
        code, answer = await post_webhook(bot.webhook_url, "issues", {"action": "opened"}, SECRET)
        assert code == 503 and "database unavailable" in answer["error"]
        assert cluster.bump_prs() == []
    finally:
        postgres.start()
    wait_until_up(database_url)

    # back: healthy again, and the refused delivery is taken up from GitHub's log, once
    await bot.proc.wait_healthy("ok", within=30)  # type: ignore[union-attr]
    await eventually(lambda: any(p.merged for p in cluster.bump_prs()), what="the bump merged")
    await fake.idle()
    prs = cluster.bump_prs()
    assert len(prs) == 1 and prs[0].merged
    text = fake.file(FLEET, "main", "clusters/dev-use1-01/tenants/payment-app/input.yaml")
    assert text is not None and b"payment:v2.2.0" in text
    assert metric(await bot.metrics(), "fleetbot_deliveries_recovered_total") == 1
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT status FROM deliveries WHERE id=%s", (refused.delivery_id,)
        ).fetchone()
    assert row == ("done",)
    assert bot.proc is not None and "lost the database" in bot.proc.log
    assert "database is back" in bot.proc.log
