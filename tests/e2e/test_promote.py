"""``/promote <env>`` (issue 6), end to end: comments in, promotion PRs and replies out."""

from __future__ import annotations

import copy
from typing import Any

from bot.fake import samples
from tests.e2e.gatekit import DEV, PROD, STAGING, path, summary, verdict
from tests.harness import FLEET, Harness

APPROVALS = "promotion/approvals"


def bot_comments(h: Harness, number: int) -> list[str]:
    issue = h.fake.repo(FLEET).issues[number]
    return [c.body for c in issue.comments if c.user.login.endswith("[bot]")]


def promotion_prs(h: Harness) -> list[Any]:
    return [p for p in h.pulls() if p.head_ref.startswith("fleet-bot/promote/")]


def changed(h: Harness, number: int) -> dict[str, bytes]:
    """The PR's files and their content at its head (b"" for a removed file)."""
    repo = h.fake.repo(FLEET)
    pr = repo.prs[number]
    out: dict[str, bytes] = {}
    for f in h.fake.world.pull_files(repo, pr):
        out[f["filename"]] = h.fake.file(FLEET, pr.head_sha, f["filename"]) or b""
    return out


async def merged_dev_bump(h: Harness, tag: str = "v2.2.0") -> int:
    h.fake.dispatch(
        FLEET, "image-published", {"image": samples.PAYMENT_IMAGE, "tag": tag}, by="ci-bot"
    )
    await h.settle()
    (pr,) = [p for p in h.pulls() if p.head_ref.startswith("fleet-bot/bump/")]
    assert pr.merged
    return int(pr.number)


async def test_promote_staging_on_a_merged_bump_pr(world: Harness) -> None:
    bump = await merged_dev_bump(world)
    cid = world.fake.comment(FLEET, bump, "alice", "Looks good in dev.\n/promote staging\n")
    await world.settle()
    (pr,) = promotion_prs(world)
    files = changed(world, pr.number)
    assert list(files) == [path(STAGING)]
    before = samples.fleet_files()[path(STAGING)]
    assert files[path(STAGING)] == before.replace(b"payment:v2.0.0", b"payment:v2.2.0")
    assert [t.slug for t in pr.requested_teams] == ["sre"]
    (reply,) = bot_comments(world, bump)
    assert f"#{pr.number}" in reply and reply.startswith("@alice")
    comment = next(c for c in world.fake.repo(FLEET).issues[bump].comments if c.id == cid)
    assert any(r.content == "eyes" for r in comment.reactions)
    assert "alice" in pr.body and "staging" in pr.title
    assert verdict(world, pr.number, "promotion/lineage") == "success"


async def test_requesters_own_approval_does_not_count(world: Harness) -> None:
    bump = await merged_dev_bump(world)
    world.fake.comment(FLEET, bump, "bob", "/promote staging")  # bob is sre
    await world.settle()
    (pr,) = promotion_prs(world)
    world.fake.review(FLEET, pr.number, "bob", "APPROVE")
    await world.settle()
    assert verdict(world, pr.number, APPROVALS) == "pending"
    assert "promote" in summary(world, pr.number, APPROVALS)
    world.fake.review(FLEET, pr.number, "carol", "APPROVE")
    await world.settle()
    assert verdict(world, pr.number, APPROVALS) == "success"


async def test_promote_prod_checkout_on_an_issue(world: Harness) -> None:
    issue = world.fake.create_issue(FLEET, "Release train", "weekly", author="alice")
    world.fake.comment(FLEET, issue, "alice", "/promote prod checkout")
    await world.settle()
    (pr,) = promotion_prs(world)
    files = changed(world, pr.number)
    assert list(files) == [path(PROD, "checkout")]
    assert b"checkout:v3.3.0" in files[path(PROD, "checkout")]
    assert sorted(t.slug for t in pr.requested_teams) == ["sre", "tech-leads"]
    assert f"#{pr.number}" in bot_comments(world, issue)[0]


async def test_promote_on_an_issue_without_tenants_takes_every_differing_one(
    world: Harness,
) -> None:
    issue = world.fake.create_issue(FLEET, "Catch up staging", "", author="alice")
    world.fake.comment(FLEET, issue, "alice", "/promote staging")
    await world.settle()
    (pr,) = promotion_prs(world)
    assert sorted(changed(world, pr.number)) == sorted([path(STAGING), path(STAGING, "checkout")])


async def test_read_only_commenter_is_refused_and_nothing_happens(world: Harness) -> None:
    issue = world.fake.create_issue(FLEET, "please", "", author="alice")
    world.fake.reset_counters()
    world.fake.comment(FLEET, issue, "rita", "/promote prod")
    await world.settle()
    assert promotion_prs(world) == []
    (reply,) = bot_comments(world, issue)
    assert reply.startswith("@rita") and "write access" in reply
    writes = [(r.method, r.path) for r in world.writes()]
    assert writes == [("POST", f"/repos/{FLEET}/issues/{issue}/comments")]


async def test_bad_environment_and_typos_get_usage(world: Harness) -> None:
    issue = world.fake.create_issue(FLEET, "x", "", author="alice")
    world.fake.comment(FLEET, issue, "alice", "/promote qa")
    world.fake.comment(FLEET, issue, "alice", "/promte staging")
    world.fake.comment(FLEET, issue, "alice", "/promote")
    world.fake.comment(FLEET, issue, "alice", "/promote dev")
    world.fake.comment(FLEET, issue, "alice", "/promote prod ../etc")
    world.fake.comment(FLEET, issue, "alice", "/status is not ours, /lgtm neither")
    world.fake.comment(FLEET, issue, "alice", "/promoted to staging yesterday, /statuses fine")
    await world.settle()
    replies = bot_comments(world, issue)
    assert len(replies) == 6  # ordinary words such as /promoted get no reply
    assert "`staging`" in replies[0] and "`prod`" in replies[0] and "Usage" in replies[0]
    assert "Did you mean" in replies[1]
    assert "needs an environment" in replies[2]
    assert "no upstream" in replies[3]
    assert "not a plain name" in replies[4]
    assert "at most one tenant" in replies[5]
    assert promotion_prs(world) == []


async def test_unknown_tenant_lists_the_valid_ones(world: Harness) -> None:
    issue = world.fake.create_issue(FLEET, "x", "", author="alice")
    world.fake.comment(FLEET, issue, "alice", "/promote prod paymnet-app")
    await world.settle()
    (reply,) = bot_comments(world, issue)
    assert "paymnet-app" in reply and "`payment-app`" in reply and "`checkout`" in reply


async def test_second_identical_request_does_not_open_a_second_pr(world: Harness) -> None:
    bump = await merged_dev_bump(world)
    world.fake.comment(FLEET, bump, "alice", "/promote staging")
    await world.settle()
    world.fake.comment(FLEET, bump, "carol", "/promote staging")
    await world.settle()
    (pr,) = promotion_prs(world)
    replies = bot_comments(world, bump)
    assert len(replies) == 2 and f"#{pr.number}" in replies[1]


async def test_repeat_request_updates_the_open_pr_to_the_new_upstream(world: Harness) -> None:
    bump = await merged_dev_bump(world, "v2.2.0")
    world.fake.comment(FLEET, bump, "alice", "/promote staging payment-app")
    await world.settle()
    (pr,) = promotion_prs(world)
    await merged_dev_bump_again(world, "v2.3.0")
    world.fake.comment(FLEET, bump, "carol", "/promote staging payment-app")
    await world.settle()
    (again,) = promotion_prs(world)
    assert again.number == pr.number
    files = changed(world, pr.number)
    assert b"payment:v2.3.0" in files[path(STAGING)]
    assert "Updated" in bot_comments(world, bump)[-1]


async def merged_dev_bump_again(h: Harness, tag: str) -> None:
    h.fake.dispatch(
        FLEET, "image-published", {"image": samples.PAYMENT_IMAGE, "tag": tag}, by="ci-bot"
    )
    await h.settle()
    dev = h.file(path(DEV))
    assert dev is not None and f"payment:{tag}".encode() in dev


async def test_upstream_disagreement_promotes_nothing_for_that_tenant(world: Harness) -> None:
    second = path("dev-euw1-01")
    world.fake.commit(
        FLEET,
        "main",
        {second: samples.fleet_files()[path(DEV)].replace(b"v2.1.0-rc1", b"v2.0.5")},
        "second dev cluster",
        author="bob",
    )
    await world.settle()
    issue = world.fake.create_issue(FLEET, "x", "", author="alice")
    world.fake.comment(FLEET, issue, "alice", "/promote staging payment-app")
    await world.settle()
    assert promotion_prs(world) == []
    (reply,) = bot_comments(world, issue)
    assert "disagree" in reply and "dev-euw1-01" in reply and "dev-use1-01" in reply


async def test_already_up_to_date_says_so(world: Harness) -> None:
    issue = world.fake.create_issue(FLEET, "x", "", author="alice")
    world.fake.comment(FLEET, issue, "alice", "/promote prod payment-app")
    await world.settle()
    (first,) = promotion_prs(world)
    world.fake.merge_pr(FLEET, first.number, by="alice", admin=True)
    await world.settle()
    world.fake.comment(FLEET, issue, "alice", "/promote prod payment-app")
    await world.settle()
    assert "nothing to promote" in bot_comments(world, issue)[-1]


async def test_comments_from_bots_are_ignored(world: Harness) -> None:
    issue = world.fake.create_issue(FLEET, "x", "", author="alice")
    world.fake.comment(FLEET, issue, "alice", "just a note")
    await world.settle()
    real = next(d for d in world.fake.deliveries if d.event == "issue_comment")
    payload = copy.deepcopy(real.payload)
    payload["comment"]["body"] = "/promote prod"
    payload["comment"]["user"]["type"] = "Bot"
    payload["comment"]["user"]["login"] = "other-app[bot]"
    payload["sender"] = payload["comment"]["user"]
    world.fake.reset_counters()
    status, _ = await world.send("issue_comment", payload)
    await world.settle()
    assert status == 202
    assert bot_comments(world, issue) == [] and promotion_prs(world) == []
    assert world.writes() == []


async def test_repeat_request_retries_when_the_branch_moved_meanwhile(world: Harness) -> None:
    bump = await merged_dev_bump(world, "v2.2.0")
    world.fake.comment(FLEET, bump, "alice", "/promote staging payment-app")
    await world.settle()
    (pr,) = promotion_prs(world)
    await merged_dev_bump_again(world, "v2.3.0")
    fault = world.fake.inject_fault(
        method="PATCH",
        path=r"/git/refs/heads/fleet-bot/promote/",
        status=422,
        times=1,
        body={"message": "Update is not a fast forward", "documentation_url": "x"},
    )
    world.fake.comment(FLEET, bump, "carol", "/promote staging payment-app")
    await world.settle()
    assert fault.times == 0
    assert b"payment:v2.3.0" in changed(world, pr.number)[path(STAGING)]
    assert "Updated" in bot_comments(world, bump)[-1]
