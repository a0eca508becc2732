"""Reading GitHub's delivery log: every page back to the checkpoint, no further back than GitHub
keeps deliveries, each missed guid taken up once (in-process, SQLite)."""

from __future__ import annotations

import socket
import time

from bot.fake import samples
from bot.github.deliveries import Attempt, parse_time, retention
from bot.service.recovery import Recovery
from tests.harness import FLEET, Harness


def dead_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/hook"


def recovery(world: Harness) -> Recovery:
    return world.state.recovery()


def test_retention_and_timestamps() -> None:
    assert retention("https://api.github.com") == 3 * 86400
    assert retention("https://api.acme.ghe.com") == 3 * 86400  # GHE.com is Enterprise Cloud
    assert retention("https://github.acme.corp/api/v3") == 7 * 86400  # GHES
    assert parse_time("2021-05-12T20:33:44Z") == 1620851624
    assert parse_time(None) == 0 and parse_time("yesterday") == 0
    assert Attempt.from_json({"id": 1}) is None  # malformed entries are skipped, not fatal
    ok = Attempt.from_json(
        {"id": 1, "guid": "g", "status_code": 202, "event": "push", "action": None}
    )
    assert ok is not None and ok.ok


async def test_pages_back_to_the_checkpoint_and_never_past_retention(world: Harness) -> None:
    fake = world.fake
    app = next(iter(fake.world.state.apps.values()))
    # a delivery that failed ten days ago: older than GHES keeps them (this fake keeps more)
    fake.world.hooks.retention = 30 * 86400
    fake.set_webhook_url(app, dead_url())
    fake.dispatch(FLEET, "image-published", {"image": samples.PAYMENT_IMAGE, "tag": "v1.0.1"})
    await fake.idle()
    ancient = fake.delivery_log[-1]
    fake.set_webhook_url(app, world.webhook_url)
    # more than a page of attempts that went well, an hour ago
    for n in range(55):
        fake.commit(FLEET, "main", {f"notes/n{n}.txt": b"x"}, author="alice")
    await world.settle()
    for d in fake.delivery_log:
        d.delivered_at -= 3600
    ancient.delivered_at = time.time() - 10 * 86400
    assert len(fake.delivery_log) > 100
    fake.set_webhook_url(app, dead_url())
    # and one that failed just now
    fake.dispatch(FLEET, "image-published", {"image": samples.PAYMENT_IMAGE, "tag": "v2.2.0"})
    await fake.idle()
    missed = fake.delivery_log[-1]
    assert not missed.ok and not ancient.ok
    fake.set_webhook_url(app, world.webhook_url)
    fake.reset_counters()

    r = recovery(world)
    assert await r.round() == 1
    await world.settle()
    lists = [x for x in fake.requests if x.path == "/app/hook/deliveries"]
    assert len(lists) == 2  # 110+ attempts: two pages of 100, following the Link cursor
    reads = [x.path for x in fake.requests if x.path.startswith("/app/hook/deliveries/")]
    assert reads == [f"/app/hook/deliveries/{missed.log_id}"]  # not the ten-day-old one
    prs = [p for p in world.pulls() if p.head_ref.startswith("fleet-bot/")]
    assert len(prs) == 1 and prs[0].merged
    text = world.file("clusters/dev-use1-01/tenants/payment-app/input.yaml")
    assert text is not None and b"payment:v2.2.0" in text

    # the next round reads only what is new since the checkpoint (one page), takes nothing
    fake.reset_counters()
    assert await r.round() == 0
    lists = [x for x in fake.requests if x.path == "/app/hook/deliveries"]
    assert len(lists) == 1
    assert not [x for x in fake.requests if x.path.startswith("/app/hook/deliveries/")]
