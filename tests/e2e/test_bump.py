"""Image published -> dev bump PR -> automatic merge (issue 4), end to end over HTTP."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from bot.fake import samples
from tests.harness import FLEET, Harness

DEV_PAY = "clusters/dev-use1-01/tenants/payment-app/input.yaml"
DEV_SHOP = "clusters/dev-use1-01/tenants/checkout/input.yaml"
DIGEST = "sha256:" + "b" * 64


def bot_prs(h: Harness) -> list[Any]:
    return [p for p in h.pulls() if p.head_ref.startswith("fleet-bot/bump/")]


def changed_paths(h: Harness, number: int) -> list[str]:
    files = h.fake.world.pull_files(h.fake.repo(FLEET), h.fake.repo(FLEET).prs[number])
    return sorted(f["filename"] for f in files)


async def test_dispatch_opens_one_pr_changing_only_the_tag_and_merges_it(world: Harness) -> None:
    before = world.file(DEV_PAY)
    assert before is not None
    world.fake.dispatch(
        FLEET,
        "image-published",
        {"image": samples.PAYMENT_IMAGE, "tag": "v2.2.0"},
        by="ci-bot",
    )
    await world.settle()
    (pr,) = bot_prs(world)
    assert pr.merged, f"PR #{pr.number} not merged: {pr.state}"
    assert changed_paths(world, pr.number) == [DEV_PAY]
    assert world.file(DEV_PAY) == before.replace(b"payment:v2.1.0-rc1", b"payment:v2.2.0")
    # staging and prod untouched
    for cluster in ("staging-use1-01", "prod-use1-01"):
        path = DEV_PAY.replace("dev-use1-01", cluster)
        assert world.file(path) == samples.fleet_files()[path]
    assert "v2.1.0-rc1" in pr.body and "v2.2.0" in pr.body and "repository_dispatch" in pr.body
    assert not world.fake.repo(FLEET).refs.get(f"refs/heads/{pr.head_ref}")  # branch deleted


async def test_registry_package_event_bumps_the_ghcr_image(world: Harness) -> None:
    world.fake.publish_package(
        owner="acme",
        name="checkout",
        tag="v3.5.0",
        digest=DIGEST,
        repo="acme/payment",
        event="registry_package",
    )
    await world.settle()
    (pr,) = bot_prs(world)
    assert pr.merged
    assert changed_paths(world, pr.number) == [DEV_SHOP]
    text = world.file(DEV_SHOP)
    assert text is not None and f"checkout:v3.5.0@{DIGEST}  # bumped".encode() in text


async def test_package_event_bumps_too(world: Harness) -> None:
    world.fake.publish_package(
        owner="acme",
        name="checkout",
        tag="v3.6.0",
        digest=DIGEST,
        repo="acme/payment",
        event="package",
    )
    await world.settle()
    (pr,) = bot_prs(world)
    assert pr.merged and changed_paths(world, pr.number) == [DEV_SHOP]


async def test_two_dev_clusters_move_in_one_pr(world: Harness) -> None:
    second = DEV_PAY.replace("dev-use1-01", "dev-euw1-01")
    world.fake.commit(
        FLEET, "main", {second: samples.fleet_files()[DEV_PAY]}, "add dev-euw1-01", author="alice"
    )
    await world.settle()
    world.fake.dispatch(
        FLEET, "image-published", {"image": f"{samples.PAYMENT_IMAGE}:v2.2.0"}, by="ci-bot"
    )
    await world.settle()
    (pr,) = bot_prs(world)
    assert pr.merged and changed_paths(world, pr.number) == sorted([DEV_PAY, second])


async def test_same_delivery_twice_and_same_tag_twice_give_one_pr(world: Harness) -> None:
    world.fake.set_required_checks(FLEET, "main", ["ci/build"])  # keep the PR open
    payload = world.fake.deliveries  # none yet
    assert payload == []
    world.fake.dispatch(
        FLEET, "image-published", {"image": samples.PAYMENT_IMAGE, "tag": "v2.2.0"}, by="ci-bot"
    )
    await world.settle()
    dispatch = next(d for d in world.fake.deliveries if d.event == "repository_dispatch")
    body = json.dumps(dispatch.payload).encode()
    status, text = await world.send("repository_dispatch", body, delivery=dispatch.delivery_id)
    assert status == 202 and "duplicate" in text
    await world.send("repository_dispatch", body, delivery=str(uuid.uuid4()))
    world.fake.dispatch(
        FLEET, "image-published", {"image": samples.PAYMENT_IMAGE, "tag": "v2.2.0"}, by="ci-bot"
    )
    await world.settle()
    assert len(bot_prs(world)) == 1


async def test_pending_required_check_waits_then_merges_and_newer_tag_supersedes(
    world: Harness,
) -> None:
    world.fake.set_required_checks(FLEET, "main", ["ci/build"])
    world.fake.dispatch(
        FLEET, "image-published", {"image": samples.PAYMENT_IMAGE, "tag": "v2.2.0"}, by="ci-bot"
    )
    await world.settle()
    (first,) = bot_prs(world)
    assert first.state == "open" and not first.merged  # waits for ci/build
    world.fake.set_status(FLEET, first.head_sha, "ci/build", "pending", by="ci-bot")
    await world.settle()
    assert world.fake.repo(FLEET).prs[first.number].state == "open"

    # a newer tag meanwhile: the old PR is closed with a link, its branch deleted
    world.fake.dispatch(
        FLEET, "image-published", {"image": samples.PAYMENT_IMAGE, "tag": "v2.3.0"}, by="ci-bot"
    )
    await world.settle()
    old = world.fake.repo(FLEET).prs[first.number]
    new = next(p for p in bot_prs(world) if p.number != first.number)
    assert old.state == "closed" and not old.merged
    comments = [c.body for c in world.fake.repo(FLEET).issues[first.number].comments]
    assert any(f"#{new.number}" in c and "Superseded" in c for c in comments)
    assert f"refs/heads/{old.head_ref}" not in world.fake.repo(FLEET).refs
    assert new.state == "open"

    world.fake.set_status(FLEET, new.head_sha, "ci/build", "success", by="ci-bot")
    await world.settle()
    new = world.fake.repo(FLEET).prs[new.number]
    assert new.merged
    text = world.file(DEV_PAY)
    assert text is not None and b"payment:v2.3.0" in text


async def test_image_no_fleet_repo_uses_writes_nothing(world: Harness) -> None:
    world.fake.dispatch(
        FLEET,
        "image-published",
        {"image": "registry.acme.com/unknown", "tag": "v1.0.0"},
        by="ci-bot",
    )
    await world.settle()
    assert bot_prs(world) == []
    assert world.writes() == []


async def test_a_persons_dev_only_pr_is_merged_but_not_staging(world: Harness) -> None:
    files = samples.fleet_files()
    world.fake.create_branch(FLEET, "dev-logs", by="alice")
    world.fake.commit(
        FLEET,
        "dev-logs",
        {DEV_PAY: files[DEV_PAY].replace(b'"DEBUG"', b'"INFO"')},
        "dev: less logging",
        author="alice",
    )
    dev_pr = world.fake.open_pr(FLEET, "dev-logs", title="dev logging", author="alice")
    staging = DEV_PAY.replace("dev-use1-01", "staging-use1-01")
    world.fake.create_branch(FLEET, "staging-logs", by="alice")
    world.fake.commit(
        FLEET,
        "staging-logs",
        {staging: files[staging].replace(b'"INFO"', b'"DEBUG"')},
        "staging: more logging",
        author="alice",
    )
    staging_pr = world.fake.open_pr(FLEET, "staging-logs", title="staging logging", author="alice")
    await world.settle()
    repo = world.fake.repo(FLEET)
    assert repo.prs[dev_pr].merged
    assert repo.prs[staging_pr].state == "open" and not repo.prs[staging_pr].merged


async def test_do_not_merge_label_and_draft_are_left_alone(world: Harness) -> None:
    files = samples.fleet_files()
    world.fake.create_branch(FLEET, "wip", by="alice")
    world.fake.commit(
        FLEET,
        "wip",
        {DEV_PAY: files[DEV_PAY].replace(b"replicas: 2", b"replicas: 3")},
        "dev: 3 replicas",
        author="alice",
    )
    number = world.fake.open_pr(FLEET, "wip", title="wip", author="alice", draft=True)
    await world.settle()
    assert world.fake.repo(FLEET).prs[number].state == "open"
    world.fake.add_labels(FLEET, number, ["do-not-merge"], by="alice")
    world.fake.ready_for_review(FLEET, number, by="alice")
    await world.settle()
    assert not world.fake.repo(FLEET).prs[number].merged
    world.fake.remove_label(FLEET, number, "do-not-merge", by="alice")
    await world.settle()
    assert world.fake.repo(FLEET).prs[number].merged


async def test_merge_retried_by_itself_while_github_computes_mergeability(
    world: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GitHub refuses the merge while it has not computed mergeability and keeps answering
    mergeable: null; no further webhook comes. The bot comes back by itself."""
    from bot.github import gateway
    from bot.handlers import automerge

    monkeypatch.setattr(gateway, "MERGEABLE_POLL_DELAY", 0.01)
    monkeypatch.setattr(automerge, "RETRY_DELAY", 0.1)
    world.fake.set_required_checks(FLEET, "main", ["ci/build"])
    world.fake.dispatch(
        FLEET, "image-published", {"image": samples.PAYMENT_IMAGE, "tag": "v2.2.0"}, by="ci-bot"
    )
    await world.settle()
    (pr,) = bot_prs(world)
    unknown = {
        "number": pr.number,
        "state": "open",
        "mergeable": None,
        "mergeable_state": "unknown",
        "head": {"sha": pr.head_sha, "ref": pr.head_ref},
        "base": {"ref": "main"},
    }
    world.fake.inject_fault(
        method="PUT",
        path=rf"/pulls/{pr.number}/merge$",
        status=405,
        body={"message": "Pull Request is not mergeable", "documentation_url": "x"},
        times=1,
    )
    world.fake.inject_fault(
        method="GET", path=rf"/pulls/{pr.number}$", status=200, body=unknown, times=5
    )
    world.fake.set_status(FLEET, pr.head_sha, "ci/build", "success", by="ci-bot")
    await world.settle()
    assert world.fake.repo(FLEET).prs[pr.number].merged


async def test_two_images_whose_names_differ_only_by_a_slash_get_a_pr_each(
    world: Harness,
) -> None:
    """``team/pay`` and ``team-pay`` once shared a bump branch: the second image's bump found
    the first one's branch, took it for its own, and was never proposed."""
    files = samples.fleet_files()
    world.fake.commit(
        FLEET,
        "main",
        {
            DEV_PAY: files[DEV_PAY].replace(
                b"registry.acme.com/payment:v2.1.0-rc1", b"registry.acme.com/team/pay:v1.0.0"
            ),
            DEV_SHOP: files[DEV_SHOP].replace(
                b"ghcr.io/acme/checkout:v3.4.0", b"registry.acme.com/team-pay:v1.0.0"
            ),
        },
        author="alice",
    )
    world.fake.set_required_checks(FLEET, "main", ["ci/build"])  # keep the PRs open
    await world.settle()
    for image in ("registry.acme.com/team/pay", "registry.acme.com/team-pay"):
        world.fake.dispatch(
            FLEET, "image-published", {"image": image, "tag": "v2.0.0"}, by="ci-bot"
        )
        await world.settle()
    prs = bot_prs(world)
    assert len(prs) == 2 and len({p.head_ref for p in prs}) == 2
    assert all(p.state == "open" for p in prs)
    assert sorted(changed_paths(world, p.number)[0] for p in prs) == sorted([DEV_PAY, DEV_SHOP])
