"""Nothing lost while the service is down: GitHub's delivery log is read back at start, and a
delivery GitHub could not hand over is taken up once (on SQLite and on PostgreSQL)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest

from bot.fake import FakeGitHub, samples
from bot.service.inbox import Inbox
from tests.harness import FLEET, seed_world
from tests.replicas.kit import Cluster, Replica, eventually, metric

DEV_PAYMENT = "clusters/dev-use1-01/tenants/payment-app/input.yaml"
DEV_CHECKOUT = "clusters/dev-use1-01/tenants/checkout/input.yaml"


@pytest.fixture(params=["sqlite", "postgresql"])
async def cluster(
    request: pytest.FixtureRequest, fake: FakeGitHub, tmp_path: Path
) -> AsyncIterator[Cluster]:
    app = seed_world(fake)
    await fake.idle()
    c = Cluster(fake, app, tmp_path)
    c.store = request.param  # type: ignore[attr-defined]
    if request.param == "postgresql":
        c.database_url = request.getfixturevalue("database_url")  # type: ignore[attr-defined]
    try:
        yield c
    finally:
        c.close()


def settings(c: Cluster) -> dict[str, str]:
    extra = {"RECOVERY_INTERVAL": "600"}
    if getattr(c, "store", "") == "postgresql":
        extra["DATABASE_URL"] = c.database_url  # type: ignore[attr-defined]
    return extra


def publish(fake: FakeGitHub, image: str, tag: str) -> None:
    fake.dispatch(FLEET, "image-published", {"image": image, "tag": tag}, by="ci-bot")


async def test_an_image_published_while_the_service_is_down_is_bumped_once(
    cluster: Cluster,
) -> None:
    fake = cluster.fake
    bot = cluster.replica("bot", **settings(cluster))
    fake.set_webhook_url(cluster.app, bot.webhook_url)
    await bot.start()
    await bot.stop()  # a deploy, a crash: nothing listens

    publish(fake, samples.PAYMENT_IMAGE, "v2.2.0")
    await fake.idle()
    missed = fake.delivery_log[-1]
    assert (missed.event, missed.outcome, missed.status) == (
        "repository_dispatch",
        "failed to connect",
        None,
    )

    await bot.start()
    await eventually(lambda: any(p.merged for p in cluster.bump_prs()), what="the bump merged")
    await fake.idle()
    prs = cluster.bump_prs()
    assert len(prs) == 1 and prs[0].merged
    text = fake.file(FLEET, "main", DEV_PAYMENT)
    assert text is not None and b"payment:v2.2.0" in text
    # taken up from the log directly, not redelivered (no second attempt in GitHub's log)
    assert [d.delivery_id for d in fake.delivery_log].count(missed.delivery_id) == 1
    assert any(r.path.startswith("/app/hook/deliveries/") for r in fake.requests)
    metrics = await bot.metrics()
    assert metric(metrics, "fleetbot_deliveries_recovered_total") == 1
    assert metric(metrics, 'fleetbot_recovery_runs_total{outcome="ok"}') >= 1
    assert '"took up missed delivery' in bot.proc.log or "took up missed delivery" in bot.proc.log

    # Once: another restart reads the log again and takes nothing; a redelivery of that guid
    # (someone presses "Redeliver" on GitHub) is answered as a duplicate.
    await bot.stop()
    await bot.start()
    await eventually(
        lambda: "delivery log read back" in (bot.proc.log if bot.proc else ""), what="a round"
    )
    assert metric(await bot.metrics(), "fleetbot_deliveries_recovered_total") == 0
    fake.redeliver(missed)
    await fake.idle()
    again = fake.delivery_log[-1]
    assert again.delivery_id == missed.delivery_id and again.redelivery and again.ok
    assert again.response_text is not None and "duplicate" in again.response_text
    await fake.idle()
    assert len(cluster.bump_prs()) == 1


async def test_a_restart_in_the_middle_of_recovery_takes_each_delivery_up_once(
    cluster: Cluster,
) -> None:
    fake = cluster.fake
    bot = cluster.replica("bot", **settings(cluster))
    fake.set_webhook_url(cluster.app, bot.webhook_url)
    await bot.start()
    await bot.stop()
    publish(fake, samples.PAYMENT_IMAGE, "v2.2.0")
    publish(fake, samples.CHECKOUT_IMAGE, "v3.5.0")
    await fake.idle()
    missed = {d.delivery_id for d in fake.delivery_log[-2:]}
    assert len(missed) == 2 and not any(d.ok for d in fake.delivery_log[-2:])

    fake.latency = 0.5  # slow enough to stop it between reading one missed delivery and the next
    fake.reset_counters()
    await bot.start(healthy=False)

    await eventually(
        lambda: len(recorded(cluster, bot, missed)) >= 1, what="one missed delivery taken up"
    )
    bot.kill()  # SIGKILL in the middle of the round
    assert len(recorded(cluster, bot, missed)) == 1  # one taken up, the other not yet
    fake.latency = 0.0
    await bot.start()
    await eventually(
        lambda: len([p for p in cluster.bump_prs() if p.merged]) == 2, what="both bumps merged"
    )
    await fake.idle()
    prs = cluster.bump_prs()
    assert len(prs) == 2 and all(p.merged for p in prs)
    for path, tag in ((DEV_PAYMENT, b"payment:v2.2.0"), (DEV_CHECKOUT, b"checkout:v3.5.0")):
        text = fake.file(FLEET, "main", path)
        assert text is not None and tag in text
    rows = recorded(cluster, bot, missed)
    assert set(rows) == missed  # each once: the guid is the key
    await eventually(
        lambda: all(s == "done" for s in recorded(cluster, bot, missed).values()),
        what="both deliveries done",
    )


def recorded(cluster: Cluster, bot: Replica, ids: set[str]) -> dict[str, str]:
    """Status of these deliveries in the service's store."""
    if getattr(cluster, "store", "") == "postgresql":
        with psycopg.connect(cluster.database_url) as conn:  # type: ignore[attr-defined]
            rows = conn.execute(
                "SELECT id, status FROM deliveries WHERE id = ANY(%s)", (list(ids),)
            ).fetchall()
        return {str(i): str(s) for i, s in rows}
    inbox = Inbox(bot.tmp / "data" / "inbox.sqlite3")
    try:
        return {d.id: d.status for d in inbox.recent(1000) if d.id in ids}
    finally:
        inbox.close()
