"""Merge queues (issue 21), end to end: the gate on merge groups, dev bumps through the queue."""

from __future__ import annotations

import json
from typing import Any

from bot.fake import samples
from tests.e2e.gatekit import PROD, open_change, path, with_image
from tests.harness import FLEET, Harness

LINEAGE, APPROVALS, FLEET_CHECK = "promotion/lineage", "promotion/approvals", "promotion/fleet"
WINDOW = "promotion/window"
GATE = [LINEAGE, APPROVALS, FLEET_CHECK, WINDOW]
IMG = "registry.acme.com/payment"
DEV_PAY = "clusters/dev-use1-01/tenants/payment-app/input.yaml"


def group_checks(h: Harness, sha: str) -> dict[str, Any]:
    """The newest run of each bot check on a commit, by name."""
    latest: dict[str, Any] = {}
    for run in h.fake.check_runs(FLEET, sha):
        if run.app.id == h.app_id and (run.name not in latest or run.id > latest[run.name].id):
            latest[run.name] = run
    return latest


def groups(h: Harness) -> list[dict[str, Any]]:
    """Every merge_group delivery, in order."""
    return [d.payload for d in h.fake.deliveries if d.event == "merge_group"]


def calls_for(h: Harness, since: int) -> list[str]:
    return [f"{r.method} {r.path}" for r in h.bot_requests()[since:]]


async def approved_prod_pr(h: Harness, image: str = f"{IMG}:v2.0.0") -> int:
    """A prod PR whose image ran in staging, approved by two SREs and a tech lead."""
    number = open_change(h, "to-prod", {path(PROD): with_image(h, PROD, image)}, title="prod")
    await h.settle()
    for who in ("bob", "carol", "erin"):
        h.fake.review(FLEET, number, who, "APPROVE")
    await h.settle()
    return number


async def test_prod_pr_with_green_gates_enters_the_queue_and_merges_after_the_group_check(
    world: Harness,
) -> None:
    world.fake.require_merge_queue(FLEET, "main", required_checks=[LINEAGE, APPROVALS])
    number = await approved_prod_pr(world)
    main_before = world.fake.repo(FLEET).branch_sha("main")
    world.fake.reset_counters()
    world.fake.enqueue_pr(FLEET, number, by="alice")
    [(_, group)] = world.fake.merge_queue(FLEET, "main")
    assert group is not None
    await world.settle()
    runs = group_checks(world, group)
    assert {n: (r.status, r.conclusion) for n, r in runs.items()} == {
        n: ("completed", "success") for n in GATE
    }
    assert (
        f"pull request #{number} merged onto `{main_before[:7]}`"
        in runs[APPROVALS].output["summary"]
    )
    pr = world.fake.pr(FLEET, number)
    assert (pr["merged"], pr["merge_commit_sha"]) == (True, group)
    assert world.fake.repo(FLEET).branch_sha("main") == group
    assert [(g["action"], g.get("reason")) for g in groups(world)] == [
        ("checks_requested", None),
        ("destroyed", "merged"),
    ]
    # What judging the group cost: the PR, the base branch, the group's tree (a comparison with
    # the tree read last), the upstream history, the reviews, the freeze issues, the check runs
    # (read, 4 created).
    calls = calls_for(world, 0)
    judged = len(calls) - calls[::-1].index(f"POST /repos/{FLEET}/check-runs")
    assert judged <= 11, "\n".join(calls)


async def test_approval_dismissed_after_queueing_fails_the_group(world: Harness) -> None:
    # CI must pass on the group too, so the group waits after the bot's checks
    world.fake.require_merge_queue(FLEET, "main", required_checks=[LINEAGE, APPROVALS, "ci"])
    number = await approved_prod_pr(world)
    head = world.fake.pr(FLEET, number)["head"]["sha"]
    world.fake.set_status(FLEET, head, "ci", "success", by="ci-bot")
    world.fake.enqueue_pr(FLEET, number, by="alice")
    [(_, group)] = world.fake.merge_queue(FLEET, "main")
    assert group is not None
    await world.settle()
    assert group_checks(world, group)[APPROVALS].conclusion == "success"
    assert world.fake.merge_queue(FLEET, "main") == [(number, group)]  # waits for ci
    review = next(r for r in world.fake.repo(FLEET).prs[number].reviews if r.user.login == "carol")
    world.fake.dismiss_review(FLEET, number, review.id, by="dana", message="not this one")
    await world.settle()
    run = group_checks(world, group)[APPROVALS]
    assert run.conclusion == "failure"
    assert "fails in the merge queue" in run.output["title"]
    assert world.fake.merge_queue(FLEET, "main") == []  # the queue took it out
    pr = world.fake.pr(FLEET, number)
    assert pr["state"] == "open" and not pr["merged"]
    assert [(g["action"], g.get("reason")) for g in groups(world)] == [
        ("checks_requested", None),
        ("destroyed", "dequeued"),
    ]
    dequeued = [
        d.payload["reason"]
        for d in world.fake.deliveries
        if d.event == "pull_request" and d.action == "dequeued"
    ]
    assert dequeued == ["CI_FAILURE"]


async def test_approval_dismissed_before_the_group_is_judged_fails_it(world: Harness) -> None:
    world.fake.require_merge_queue(FLEET, "main", required_checks=[LINEAGE, APPROVALS])
    number = await approved_prod_pr(world)
    world.fake.enqueue_pr(FLEET, number, by="alice")
    [(_, group)] = world.fake.merge_queue(FLEET, "main")
    review = next(r for r in world.fake.repo(FLEET).prs[number].reviews if r.user.login == "erin")
    world.fake.dismiss_review(FLEET, number, review.id, by="dana")  # before the bot looks
    await world.settle()
    assert group is not None and group_checks(world, group)[APPROVALS].conclusion == "failure"
    assert not world.fake.pr(FLEET, number)["merged"]


async def test_dev_bump_on_a_queue_branch_is_enqueued_and_merged(world: Harness) -> None:
    world.fake.require_merge_queue(FLEET, "main", required_checks=[LINEAGE, APPROVALS])
    before = world.file(DEV_PAY)
    assert before is not None
    world.fake.reset_counters()
    world.fake.dispatch(
        FLEET, "image-published", {"image": samples.PAYMENT_IMAGE, "tag": "v2.2.0"}, by="ci-bot"
    )
    await world.settle()
    (pr,) = [p for p in world.pulls() if p.head_ref.startswith("fleet-bot/bump/")]
    assert pr.merged, f"PR #{pr.number} not merged: {pr.state}"
    assert world.file(DEV_PAY) == before.replace(b"payment:v2.1.0-rc1", b"payment:v2.2.0")
    assert not world.fake.repo(FLEET).refs.get(f"refs/heads/{pr.head_ref}")  # branch deleted
    calls = calls_for(world, 0)
    # the REST merge said "merge queue" (no rules read), then one GraphQL enqueue
    assert calls.count(f"PUT /repos/{FLEET}/pulls/{pr.number}/merge") == 1
    assert calls.count("POST /graphql") == 1
    assert not any("/rules/branches/" in c for c in calls)
    # a second bump goes straight to the queue
    world.fake.reset_counters()
    world.fake.dispatch(
        FLEET, "image-published", {"image": samples.PAYMENT_IMAGE, "tag": "v2.3.0"}, by="ci-bot"
    )
    await world.settle()
    assert b"payment:v2.3.0" in (world.file(DEV_PAY) or b"")
    calls = calls_for(world, 0)
    assert not any(c.endswith("/merge") for c in calls), calls
    assert calls.count("POST /graphql") == 1


async def test_a_405_that_does_not_name_the_queue_is_confirmed_by_the_branch_rules(
    world: Harness,
) -> None:
    world.fake.require_merge_queue(FLEET, "main", required_checks=[LINEAGE, APPROVALS])
    world.fake.inject_fault(
        method="PUT",
        path=r"/pulls/\d+/merge$",
        status=405,
        body={"message": "Repository rule violations found", "documentation_url": "x"},
    )
    world.fake.reset_counters()
    world.fake.dispatch(
        FLEET, "image-published", {"image": samples.PAYMENT_IMAGE, "tag": "v2.2.0"}, by="ci-bot"
    )
    await world.settle()
    (pr,) = [p for p in world.pulls() if p.head_ref.startswith("fleet-bot/bump/")]
    assert pr.merged
    calls = calls_for(world, 0)
    assert calls.count(f"GET /repos/{FLEET}/rules/branches/main") == 1
    assert calls.count("POST /graphql") == 1


async def test_destroyed_needs_nothing(world: Harness) -> None:
    world.fake.require_merge_queue(FLEET, "main", required_checks=[LINEAGE, APPROVALS, "ci"])
    number = await approved_prod_pr(world)
    head = world.fake.pr(FLEET, number)["head"]["sha"]
    world.fake.set_status(FLEET, head, "ci", "success", by="ci-bot")
    world.fake.enqueue_pr(FLEET, number, by="alice")
    await world.settle()
    world.fake.reset_counters()
    world.fake.dequeue_pr(FLEET, number, by="alice")
    await world.settle()
    assert [(g["action"], g["reason"]) for g in groups(world)] == [("destroyed", "dequeued")]
    assert calls_for(world, 0) == []
    assert world.failed_deliveries() == []


async def test_a_group_with_changes_beyond_its_pr_fails_closed(world: Harness) -> None:
    """A merge group whose commit holds more than the PR it names (here: a hand-made group that
    also changes prod's checkout tenant) has no approvals for the rest: every check fails."""
    number = await approved_prod_pr(world)
    main = world.fake.repo(FLEET).branch_sha("main")
    assert main is not None
    extra = {
        path(PROD): with_image(world, PROD, f"{IMG}:v2.0.0"),
        path(PROD, "checkout"): with_image(
            world, PROD, "registry.acme.com/checkout:v9", "checkout"
        ),
    }
    world.fake.create_branch(FLEET, "smuggle", by="alice")
    sha = world.fake.commit(FLEET, "smuggle", extra, "two changes", author="alice")
    status, _ = await world.send("merge_group", group_payload(world, number, main, sha))
    assert status == 202
    await world.settle()
    runs = group_checks(world, sha)
    assert {n: r.conclusion for n, r in runs.items()} == dict.fromkeys(GATE, "failure")
    assert path(PROD, "checkout") in runs[LINEAGE].output["summary"]


async def test_a_group_branch_without_a_pr_number_fails_closed(world: Harness) -> None:
    main = world.fake.repo(FLEET).branch_sha("main")
    assert main is not None
    payload = group_payload(world, 1, main, main)
    payload["merge_group"]["head_ref"] = "refs/heads/gh-readonly-queue/main/whatever"
    status, _ = await world.send("merge_group", payload)
    assert status == 202
    await world.settle()
    runs = group_checks(world, main)
    assert {n: r.conclusion for n, r in runs.items()} == dict.fromkeys(GATE, "failure")
    assert "does not name a pull request" in runs[APPROVALS].output["summary"]


def group_payload(h: Harness, number: int, base: str, head: str) -> dict[str, Any]:
    """A merge_group checks_requested payload in GitHub's shape (octokit's example, rewritten
    to the fake's repository and installation)."""
    c = h.fake.world.objects.commits[head]
    repo = h.fake.world.shapes.repo(h.fake.repo(FLEET))
    inst = next(iter(h.fake.world.state.installations.values()))
    return json.loads(
        json.dumps(
            {
                "action": "checks_requested",
                "merge_group": {
                    "head_sha": head,
                    "head_ref": f"refs/heads/gh-readonly-queue/main/pr-{number}-{base}",
                    "base_sha": base,
                    "base_ref": "refs/heads/main",
                    "head_commit": {
                        "id": head,
                        "tree_id": c.tree,
                        "message": c.message,
                        "timestamp": "2026-12-01T10:00:00Z",
                        "author": {"name": c.author.name, "email": c.author.email},
                        "committer": {"name": c.committer.name, "email": c.committer.email},
                    },
                },
                "repository": repo,
                "organization": h.fake.world.shapes.org(h.fake.world.state.orgs["acme"]),
                "sender": h.fake.world.shapes.user(h.fake.world.state.users["alice"]),
                "installation": {"id": inst.id, "node_id": inst.node_id},
            }
        )
    )


async def test_a_pushed_branch_named_like_a_queue_group_gets_no_verdict(world: Harness) -> None:
    """Anyone with write access can push gh-readonly-queue/... branches: the bot judges the
    groups GitHub's queue lists, never a branch because of its name."""
    world.fake.require_merge_queue(FLEET, "main", required_checks=[LINEAGE, APPROVALS, "ci"])
    number = await approved_prod_pr(world)
    head = world.fake.pr(FLEET, number)["head"]["sha"]
    world.fake.set_status(FLEET, head, "ci", "success", by="ci-bot")
    world.fake.enqueue_pr(FLEET, number, by="alice")
    [(_, group)] = world.fake.merge_queue(FLEET, "main")
    await world.settle()
    name = f"gh-readonly-queue/main/pr-{number}-{'1' * 40}"
    world.fake.create_branch(FLEET, name, by="alice")
    forged = world.fake.commit(
        FLEET,
        name,
        {path(PROD, "checkout"): b"anything\n"},
        "looks like a group",
        author="alice",
    )
    review = next(r for r in world.fake.repo(FLEET).prs[number].reviews if r.user.login == "bob")
    world.fake.dismiss_review(FLEET, number, review.id, by="dana")
    await world.settle()
    assert group_checks(world, forged) == {}
    assert group is not None and group_checks(world, group)[APPROVALS].conclusion == "failure"
