"""Recovery: the resync safety net, two replicas, and the deliveries/redeliver commands."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

from bot.fake import FakeGitHub, samples
from bot.handlers.resync import resync
from tests.e2e.gatekit import PROD, checks, open_change, path, verdict, with_image
from tests.harness import FLEET, SECRET, Harness, start_bot

ROOT = str(Path(__file__).resolve().parents[2])


async def test_resync_judges_a_pr_whose_webhook_was_never_delivered(world: Harness) -> None:
    app = next(iter(world.fake.world.state.apps.values()))
    world.fake.set_webhook_url(app, None)  # GitHub loses every delivery for a while
    number = open_change(
        world, "lost", {path(PROD): with_image(world, PROD, f"{samples.PAYMENT_IMAGE}:v2.0.0")}
    )
    dev = path("dev-use1-01")
    world.fake.create_branch(FLEET, "dev-lost", by="alice")
    world.fake.commit(
        FLEET,
        "dev-lost",
        {dev: with_image(world, "dev-use1-01", f"{samples.PAYMENT_IMAGE}:v2.9.0")},
        "dev",
        author="alice",
    )
    dev_pr = world.fake.open_pr(FLEET, "dev-lost", title="dev", author="alice")
    await world.settle()
    assert checks(world, number) == {}  # nothing arrived: unchecked, stuck
    assert world.state.services is not None
    seen = await resync(world.state.services)
    assert seen == {FLEET: 2}
    assert verdict(world, number, "promotion/lineage") == "success"
    assert verdict(world, number, "promotion/approvals") == "pending"
    assert world.fake.repo(FLEET).prs[dev_pr].merged  # the dev PR was merged by the resync


async def test_two_replicas_handle_the_same_event_with_one_pr(
    world: Harness, fake: FakeGitHub, tmp_path: Path
) -> None:
    app = next(iter(fake.world.state.apps.values()))
    _, runner2, url2 = await start_bot(fake, app.private_key_pem, app.id, tmp_path / "replica")
    try:
        fake.set_webhook_url(app, None)
        fake.dispatch(
            FLEET, "image-published", {"image": samples.PAYMENT_IMAGE, "tag": "v2.2.0"}, by="ci-bot"
        )
        await fake.idle()
        delivery = next(d for d in fake.deliveries if d.event == "repository_dispatch")
        body = json.dumps(delivery.payload).encode()
        second = Harness(
            fake=fake, bot_url=url2, runner=runner2, app=runner2.app, tmp=tmp_path, app_id=app.id
        )
        # the load balancer sends the same event to both replicas at once
        await asyncio.gather(
            world.send("repository_dispatch", body, delivery=delivery.delivery_id),
            second.send("repository_dispatch", body, delivery=delivery.delivery_id),
        )
        fake.set_webhook_url(app, world.webhook_url)
        await asyncio.gather(world.settle(), second.settle())
        await world.settle()
        prs = [p for p in world.pulls() if p.head_ref.startswith("fleet-bot/bump/")]
        merged = [p for p in prs if p.merged]
        assert len(merged) == 1 and not [p for p in prs if p.state == "open"]
        # A replica that lost the race may have opened its PR a moment before seeing the
        # change on main; it then closes it at once, saying why.
        for lost in (p for p in prs if not p.merged):
            comments = world.fake.repo(FLEET).issues[lost.number].comments
            assert any("already has this change" in c.body for c in comments)
        text = world.file(path("dev-use1-01"))
        assert text is not None and text.count(b"payment:v2.2.0") == 1
    finally:
        await runner2.cleanup()


def run_cli(
    args: list[str], data_dir: Path, extra: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATA_DIR": str(data_dir), "PYTHONPATH": ROOT, **extra}
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_deliveries_lists_and_redeliver_runs_again(world: Harness) -> None:
    world.allow_failed_deliveries = True
    world.fake.inject_fault(
        method="POST",
        path=r"/git/trees$",
        status=422,
        times=None,
        body={"message": "GitHub says no", "documentation_url": "x"},
    )
    world.fake.dispatch(
        FLEET, "image-published", {"image": samples.PAYMENT_IMAGE, "tag": "v2.2.0"}, by="ci-bot"
    )
    await world.settle()
    world.fake.clear_faults()
    data_dir = world.tmp / "data"
    app = next(iter(world.fake.world.state.apps.values()))
    creds = {
        "APP_ID": str(app.id),
        "PRIVATE_KEY": app.private_key_pem,
        "WEBHOOK_SECRET": SECRET,
        "GITHUB_API_URL": world.fake.api_url,
        "RESYNC_INTERVAL": "0",
        "RECOVERY_INTERVAL": "0",
        "DASHBOARD_DEBOUNCE": "0",
    }
    listed = await asyncio.to_thread(run_cli, ["deliveries"], data_dir, creds)
    assert listed.returncode == 0, listed.stderr
    line = next(ln for ln in listed.stdout.splitlines() if "repository_dispatch" in ln)
    assert "failed" in line and "GitHub says no" in line
    delivery_id = line.split()[2]
    again = await asyncio.to_thread(run_cli, ["redeliver", delivery_id], data_dir, creds)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"delivery {delivery_id}: done" in again.stdout
    await world.fake.idle()
    prs = [p for p in world.pulls() if p.head_ref.startswith("fleet-bot/bump/")]
    assert len(prs) == 1
    missing = await asyncio.to_thread(run_cli, ["redeliver", "no-such-id"], data_dir, creds)
    assert missing.returncode == 2 and "no delivery no-such-id" in missing.stderr
