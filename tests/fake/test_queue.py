"""The merge queue of the fake: rules, the 405 on REST merges, enqueuePullRequest over GraphQL,
the queue branches, merge_group events, the merge once the group's checks pass."""

from __future__ import annotations

from typing import Any

import pytest
from gidgethub import BadRequest, QueryError
from gidgethub.aiohttp import GitHubAPI

from bot.fake import QueueError
from tests.fake.conftest import PROD_INPUT, Seeded

FLEET = "acme/fleet"
ENQUEUE = """
mutation($pr: ID!, $head: GitObjectID!) {
  enqueuePullRequest(input: {pullRequestId: $pr, expectedHeadOid: $head}) {
    mergeQueueEntry { id position state }
  }
}
"""


def change(
    gh: Seeded, branch: str, content: bytes, path: str = PROD_INPUT, ci: str | None = "success"
) -> int:
    """A PR changing one file; CI (`ci`) reports ``ci`` on its head."""
    gh.fake.create_branch(FLEET, branch, by="alice")
    sha = gh.fake.commit(FLEET, branch, {path: content}, message=branch, author="alice")
    if ci is not None:
        gh.fake.set_status(FLEET, sha, "ci", ci, by="alice")
    return gh.fake.open_pr(FLEET, branch, title=branch, author="alice")


async def enqueue(gh: Seeded, bot: GitHubAPI, number: int, head: str | None = None) -> Any:
    pr = gh.fake.pr(FLEET, number)
    return await bot.graphql(
        ENQUEUE,
        endpoint=gh.fake.api_url + "/graphql",
        pr=pr["node_id"],
        head=head or pr["head"]["sha"],
    )


def events(gh: Seeded, name: str) -> list[dict[str, Any]]:
    return [d.payload for d in gh.fake.deliveries if d.event == name]


async def test_without_required_checks_a_queued_pr_merges_at_once(gh: Seeded) -> None:
    gh.fake.require_merge_queue(FLEET, "main")
    number = change(gh, "promo", b"image: v2\n")
    gh.fake.enqueue_pr(FLEET, number, by="alice")
    await gh.fake.idle()
    assert gh.fake.pr(FLEET, number)["merged"] is True
    assert [p["action"] for p in events(gh, "merge_group")] == ["checks_requested", "destroyed"]


async def test_a_queue_branch_refuses_rest_merges_and_says_so_in_its_rules(gh: Seeded) -> None:
    gh.fake.require_merge_queue(FLEET, "main")
    number = change(gh, "promo", b"image: v2\n")
    bot = await gh.bot()
    with pytest.raises(BadRequest) as exc:
        await bot.put(f"/repos/{FLEET}/pulls/{number}/merge", data={"merge_method": "squash"})
    assert exc.value.status_code == 405
    assert str(exc.value) == "Changes must be made through the merge queue"
    rules = await bot.getitem(f"/repos/{FLEET}/rules/branches/main")
    assert [r["type"] for r in rules] == ["merge_queue"]
    assert rules[0]["parameters"]["merge_method"] == "MERGE"
    assert await bot.getitem(f"/repos/{FLEET}/rules/branches/other") == []


async def test_enqueued_pr_gets_a_group_and_merges_when_its_checks_pass(gh: Seeded) -> None:
    gh.fake.require_merge_queue(FLEET, "main")
    gh.fake.set_required_checks(FLEET, "main", ["ci"])
    number = change(gh, "promo", b"image: v2\n")
    head = gh.fake.pr(FLEET, number)["head"]["sha"]
    main_before = gh.fake.repo(FLEET).branch_sha("main")
    bot = await gh.bot()
    gh.fake.reset_counters()
    data = await enqueue(gh, bot, number)
    entry = data["enqueuePullRequest"]["mergeQueueEntry"]
    assert (entry["position"], entry["state"]) == (1, "AWAITING_CHECKS")
    [(queued, group)] = gh.fake.merge_queue(FLEET, "main")
    assert queued == number and group is not None
    ref = f"refs/heads/gh-readonly-queue/main/pr-{number}-{main_before}"
    assert gh.fake.repo(FLEET).refs[ref] == group
    await gh.fake.idle()
    [requested] = events(gh, "merge_group")
    # the keys of octokit's example payload (@octokit/webhooks-examples merge_group), exactly
    assert set(requested) == {
        "action",
        "merge_group",
        "repository",
        "organization",
        "sender",
        "installation",
    }
    assert set(requested["merge_group"]) == {
        "head_sha",
        "head_ref",
        "base_sha",
        "base_ref",
        "head_commit",
    }
    assert set(requested["merge_group"]["head_commit"]) == {
        "id",
        "tree_id",
        "message",
        "timestamp",
        "author",
        "committer",
    }
    assert requested["action"] == "checks_requested"
    assert requested["merge_group"]["head_sha"] == group
    assert requested["merge_group"]["head_ref"] == ref
    assert requested["merge_group"]["base_sha"] == main_before
    assert requested["merge_group"]["base_ref"] == "refs/heads/main"
    assert requested["merge_group"]["head_commit"]["id"] == group
    assert [(p["action"], p["number"]) for p in events(gh, "pull_request")] == [
        ("enqueued", number)
    ]
    # the group's commit merges the PR onto main, as the merge method MERGE writes it
    parents = gh.fake.world.objects.commits[group].parents
    assert list(parents) == [main_before, head]
    assert gh.fake.file(FLEET, group, PROD_INPUT) == b"image: v2\n"
    # a required check on the PR is not one on the group
    assert gh.fake.merge_queue(FLEET, "main") == [(number, group)]
    gh.fake.set_status(FLEET, group, "ci", "success", by="alice")
    await gh.fake.idle()
    assert gh.fake.repo(FLEET).branch_sha("main") == group
    assert ref not in gh.fake.repo(FLEET).refs
    merged = gh.fake.pr(FLEET, number)
    assert (merged["merged"], merged["merge_commit_sha"]) == (True, group)
    destroyed = events(gh, "merge_group")[-1]
    assert (destroyed["action"], destroyed["reason"]) == ("destroyed", "merged")
    assert gh.fake.merge_queue(FLEET, "main") == []


async def test_a_failing_check_takes_the_pr_out_and_rebuilds_the_groups_behind(
    gh: Seeded,
) -> None:
    gh.fake.require_merge_queue(FLEET, "main", required_checks=["ci"])
    first = change(gh, "one", b"image: v2\n")
    second = change(gh, "two", b"x\n", path="clusters/dev/b.yaml")
    bot = await gh.bot()
    await enqueue(gh, bot, first)
    await enqueue(gh, bot, second)
    [(_, group1), (_, group2)] = gh.fake.merge_queue(FLEET, "main")
    assert group1 is not None and group2 is not None
    assert gh.fake.world.objects.commits[group2].parents[0] == group1  # stacked
    gh.fake.set_status(FLEET, group1, "ci", "failure", by="alice")
    await gh.fake.idle()
    [(left, rebuilt)] = gh.fake.merge_queue(FLEET, "main")
    main = gh.fake.repo(FLEET).branch_sha("main")
    assert left == second and rebuilt not in (None, group2)
    assert gh.fake.world.objects.commits[rebuilt or ""].parents[0] == main
    groups = [
        (p["action"], p.get("reason"), p["merge_group"]["head_sha"])
        for p in events(gh, "merge_group")
    ]
    assert groups == [
        ("checks_requested", None, group1),
        ("checks_requested", None, group2),
        ("destroyed", "dequeued", group1),
        ("destroyed", "invalidated", group2),
        ("checks_requested", None, rebuilt),
    ]
    dequeued = [p for p in events(gh, "pull_request") if p["action"] == "dequeued"]
    assert [(p["number"], p["reason"]) for p in dequeued] == [(first, "CI_FAILURE")]
    assert gh.fake.pr(FLEET, first)["state"] == "open"


async def test_a_push_to_a_queued_pr_takes_it_out(gh: Seeded) -> None:
    gh.fake.require_merge_queue(FLEET, "main", required_checks=["ci"])
    number = change(gh, "promo", b"image: v2\n")
    await enqueue(gh, await gh.bot(), number)
    pushed = gh.fake.commit(FLEET, "promo", {PROD_INPUT: b"v3\n"}, message="more", author="alice")
    gh.fake.set_status(FLEET, pushed, "ci", "success", by="alice")
    await gh.fake.idle()
    assert gh.fake.merge_queue(FLEET, "main") == []
    assert events(gh, "merge_group")[-1]["reason"] == "dequeued"


async def test_enqueue_errors_in_githubs_graphql_shape(gh: Seeded) -> None:
    number = change(gh, "promo", b"image: v2\n")
    bot = await gh.bot()
    with pytest.raises(QueryError) as exc:
        await enqueue(gh, bot, number)  # no queue on main
    assert exc.value.response["errors"][0]["type"] == "UNPROCESSABLE"
    assert exc.value.response["data"] == {"enqueuePullRequest": None}
    gh.fake.require_merge_queue(FLEET, "main", required_checks=["ci"])
    with pytest.raises(QueryError, match="does not match"):
        await enqueue(gh, bot, number, head="0" * 40)
    with pytest.raises(QueryError) as missing:
        await bot.graphql(
            ENQUEUE, endpoint=gh.fake.api_url + "/graphql", pr="PR_nope", head="0" * 40
        )
    assert missing.value.response["errors"][0]["type"] == "NOT_FOUND"
    waiting = change(gh, "waiting", b"x\n", path="clusters/dev/w.yaml", ci="pending")
    with pytest.raises(QueryError, match='Required status check "ci" is expected'):
        await enqueue(gh, bot, waiting)  # the branch's checks must pass on the PR first
    await enqueue(gh, bot, number)
    with pytest.raises(QueryError, match="already in the merge queue"):
        await enqueue(gh, bot, number)
    with pytest.raises(QueueError, match="already"):
        gh.fake.enqueue_pr(FLEET, number, by="alice")


async def test_enqueue_takes_the_merge_queues_permission(gh: Seeded) -> None:
    gh.fake.require_merge_queue(FLEET, "main", required_checks=["ci"])
    number = change(gh, "promo", b"image: v2\n")
    token = await gh.bot()
    narrowed = await gh.session.post(
        f"{gh.fake.api_url}/app/installations/{gh.inst.id}/access_tokens",
        headers={"Authorization": f"Bearer {_jwt(gh)}", "Accept": "application/json"},
        json={"permissions": {"pull_requests": "write", "contents": "write"}},
    )
    body = await narrowed.json()
    weak = GitHubAPI(gh.session, "t", oauth_token=body["token"], base_url=gh.fake.api_url)
    with pytest.raises(QueryError) as exc:
        await enqueue(gh, weak, number)
    assert exc.value.response["errors"][0]["type"] == "FORBIDDEN"
    assert gh.fake.merge_queue(FLEET, "main") == []
    await enqueue(gh, token, number)
    assert [n for n, _ in gh.fake.merge_queue(FLEET, "main")] == [number]


async def test_graphql_beside_ghes_api_v3(ghes: Seeded) -> None:
    ghes.fake.require_merge_queue(FLEET, "main", required_checks=["ci"])
    number = change(ghes, "promo", b"image: v2\n")
    bot = await ghes.bot()
    pr = ghes.fake.pr(FLEET, number)
    endpoint = ghes.fake.api_url.removesuffix("/v3") + "/graphql"
    data = await bot.graphql(ENQUEUE, endpoint=endpoint, pr=pr["node_id"], head=pr["head"]["sha"])
    assert data["enqueuePullRequest"]["mergeQueueEntry"]["position"] == 1


def _jwt(gh: Seeded) -> str:
    from gidgethub import apps

    return apps.get_jwt(app_id=str(gh.app.id), private_key=gh.app.private_key_pem)


QUEUE = """
query($owner: String!, $name: String!, $branch: String!) {
  repository(owner: $owner, name: $name) {
    mergeQueue(branch: $branch) {
      entries(first: 100) {
        nodes { position headCommit { oid } baseCommit { oid } pullRequest { number } }
      }
    }
  }
}
"""


async def test_the_queue_lists_its_entries_over_graphql(gh: Seeded) -> None:
    bot = await gh.bot()
    endpoint = gh.fake.api_url + "/graphql"
    none = await bot.graphql(QUEUE, endpoint=endpoint, owner="acme", name="fleet", branch="main")
    assert none == {"repository": {"mergeQueue": None}}
    gh.fake.require_merge_queue(FLEET, "main", required_checks=["ci"])
    number = change(gh, "promo", b"image: v2\n")
    main = gh.fake.repo(FLEET).branch_sha("main")
    gh.fake.enqueue_pr(FLEET, number, by="alice")
    [(_, group)] = gh.fake.merge_queue(FLEET, "main")
    data = await bot.graphql(QUEUE, endpoint=endpoint, owner="acme", name="fleet", branch="main")
    [node] = data["repository"]["mergeQueue"]["entries"]["nodes"]
    assert node["position"] == 1 and node["pullRequest"] == {"number": number}
    assert (node["headCommit"]["oid"], node["baseCommit"]["oid"]) == (group, main)
    with pytest.raises(QueryError) as exc:
        await bot.graphql(QUEUE, endpoint=endpoint, owner="acme", name="secret", branch="main")
    assert exc.value.response["errors"][0]["type"] == "NOT_FOUND"
