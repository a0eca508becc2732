"""The promotion dashboard issue and ``/status`` (issue 11), end to end."""

from __future__ import annotations

from typing import Any

import pytest

from bot.fake import samples
from tests.e2e.gatekit import DEV, path
from tests.harness import FLEET, Harness


def dashboards(h: Harness) -> list[Any]:
    repo = h.fake.repo(FLEET)
    return [
        i for n, i in repo.issues.items() if n not in repo.prs and i.title == "Promotion dashboard"
    ]


def row(body: str, tenant: str) -> str:
    return next(line for line in body.splitlines() if line.startswith(f"| {tenant} |"))


async def test_dashboard_created_once_and_kept_current(world: Harness) -> None:
    world.fake.commit(FLEET, "main", {"README.md": b"# fleet\n"}, "touch", author="bob")
    await world.settle()
    (board,) = dashboards(world)
    assert board.user.login == "fleet-bot[bot]"
    assert row(board.body, "payment-app") == "| payment-app | `v2.1.0-rc1` | `v2.0.0` | `v1.9.0` |"
    assert row(board.body, "checkout") == "| checkout | `v3.4.0` | `v3.3.0` | `v3.2.0` |"
    assert "/promote staging payment-app" in board.body  # dev is ahead of staging

    # a bump lands in dev, then a promotion to staging is opened
    world.fake.dispatch(
        FLEET, "image-published", {"image": samples.PAYMENT_IMAGE, "tag": "v2.2.0"}, by="ci-bot"
    )
    await world.settle()
    world.fake.comment(FLEET, board.number, "alice", "/promote staging payment-app")
    await world.settle()
    (again,) = dashboards(world)
    assert again.number == board.number  # updated in place
    assert row(again.body, "payment-app").startswith("| payment-app | `v2.2.0` | `v2.0.0` |")
    promotion = next(p for p in world.pulls() if p.head_ref.startswith("fleet-bot/promote/"))
    assert f"#{promotion.number}" in again.body
    line = next(x for x in again.body.splitlines() if f"#{promotion.number} " in x)
    # lineage passed, approvals wait, staging has no calendar: the window is open
    assert line.endswith("| ✅ success | ⏳ pending | ✅ success |"), line

    world.fake.review(FLEET, promotion.number, "bob", "APPROVE")
    await world.settle()
    world.fake.merge_pr(FLEET, promotion.number, by="bob", admin=False)
    await world.settle()
    (after,) = dashboards(world)
    assert row(after.body, "payment-app").startswith("| payment-app | `v2.2.0` | `v2.2.0` |")
    assert "None open." in after.body


async def test_drift_between_clusters_is_shown(world: Harness) -> None:
    second = path("dev-euw1-01")
    world.fake.commit(
        FLEET,
        "main",
        {second: samples.fleet_files()[path(DEV)].replace(b"v2.1.0-rc1", b"v2.0.5")},
        "second dev cluster",
        author="bob",
    )
    await world.settle()
    (board,) = dashboards(world)
    assert "drift" in row(board.body, "payment-app")
    assert "dev-euw1-01: `v2.0.5`" in board.body


async def test_status_replies_with_one_tenants_matrix(world: Harness) -> None:
    issue = world.fake.create_issue(FLEET, "where is payment?", "", author="alice")
    world.fake.comment(FLEET, issue, "alice", "/status payment-app")
    world.fake.comment(FLEET, issue, "alice", "/status nope")
    await world.settle()
    replies = [
        c.body
        for c in world.fake.repo(FLEET).issues[issue].comments
        if c.user.login.endswith("[bot]")
    ]
    assert len(replies) == 2
    assert "| payment-app | `v2.1.0-rc1` | `v2.0.0` | `v1.9.0` |" in replies[0]
    assert "checkout" not in replies[0].split("|---")[-1]
    assert "no tenant `nope`" in replies[1] and "`checkout`" in replies[1]


def touch_every_input(world: Harness) -> None:
    """One commit giving each tenant input new contents (a comment): blobs the bot has never
    read, and no archive to read them from (its host fails): they are read blob by blob."""
    world.fake.serve_archive(FLEET, status=502, times=None)
    changes: dict[str, bytes | None] = {}
    for name, data in samples.fleet_files().items():
        if name.endswith("/input.yaml"):
            changes[name] = data + b"# touched\n"
    assert len(changes) == 6
    world.fake.commit(FLEET, "main", changes, "touch", author="bob")


async def test_a_large_fleet_fills_in_over_several_refreshes(
    world: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.handlers import dashboard

    monkeypatch.setattr(dashboard, "READ_BUDGET", 2)
    monkeypatch.setattr(dashboard, "READS_PER_HOUR", 3_600_000)  # refill at once, for the test
    touch_every_input(world)  # contents never read: not in memory, not on disk
    await world.settle()
    (board,) = dashboards(world)
    assert "not read yet" not in board.body  # six inputs, two per refresh: all read by now
    assert row(board.body, "checkout") == "| checkout | `v3.4.0` | `v3.3.0` | `v3.2.0` |"
    edits = [r for r in world.writes() if r.method == "PATCH" and "/issues/" in r.path]
    assert len(edits) >= 2  # it was edited as more of the fleet was read


async def test_the_dashboard_spends_at_most_its_hourly_read_budget(
    world: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.handlers import dashboard

    monkeypatch.setattr(dashboard, "READS_PER_HOUR", 4)
    touch_every_input(world)  # contents never read: not in memory, not on disk
    await world.settle()
    (board,) = dashboards(world)
    assert "2 input files are not read yet" in board.body  # six inputs, four reads an hour
