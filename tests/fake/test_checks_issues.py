"""Checks, statuses, issues, comments, reactions, labels, teams, collaborators, protection."""

from __future__ import annotations

from typing import Any

import pytest
from gidgethub import BadRequest, InvalidField

from tests.fake.conftest import Seeded


async def test_check_run_lifecycle_and_suite_events(gh: Seeded) -> None:
    bot = await gh.bot()
    sha = gh.fake.commit("acme/fleet", "main", {"x": b"1"}, author="alice")
    await gh.fake.idle()
    requested = gh.fake.deliveries[-1]
    assert (requested.event, requested.action) == ("check_suite", "requested")
    suite_id = requested.payload["check_suite"]["id"]
    run = await bot.post(
        "/repos/acme/fleet/check-runs",
        data={"name": "promotion/lineage", "head_sha": sha, "status": "in_progress"},
    )
    assert run["check_suite"]["id"] == suite_id and run["status"] == "in_progress"
    annotations = [
        {
            "path": "x",
            "start_line": 1,
            "end_line": 1,
            "annotation_level": "warning",
            "message": f"m{i}",
        }
        for i in range(50)
    ]
    await bot.patch(
        f"/repos/acme/fleet/check-runs/{run['id']}",
        data={"output": {"title": "t", "summary": "s", "annotations": annotations}},
    )
    done = await bot.patch(
        f"/repos/acme/fleet/check-runs/{run['id']}",
        data={
            "conclusion": "success",
            "output": {"title": "t", "summary": "s", "annotations": annotations[:5]},
        },
    )
    assert (done["status"], done["conclusion"], done["output"]["annotations_count"]) == (
        "completed",
        "success",
        55,
    )
    listed = await bot.getitem(
        f"/repos/acme/fleet/commits/{sha}/check-runs?check_name=promotion/lineage"
    )
    assert listed["total_count"] == 1 and listed["check_runs"][0]["id"] == run["id"]
    suites = await bot.getitem(f"/repos/acme/fleet/commits/{sha}/check-suites")
    assert [(s["id"], s["status"], s["conclusion"]) for s in suites["check_suites"]] == [
        (suite_id, "completed", "success")
    ]
    await gh.fake.idle()
    tail = [(d.event, d.action) for d in gh.fake.deliveries[-3:]]
    assert tail == [
        ("check_run", "created"),
        ("check_run", "completed"),
        ("check_suite", "completed"),
    ]
    gh.fake.rerequest_check_run(run["id"], by="alice")
    gh.fake.rerequest_check_suite(suite_id, by="alice")
    await gh.fake.idle()
    assert [(d.action, d.payload["sender"]["login"]) for d in gh.fake.deliveries[-2:]] == [
        ("rerequested", "alice"),
        ("rerequested", "alice"),
    ]
    # a new run on the same commit: filter=latest keeps the newest per name
    again = await bot.post(
        "/repos/acme/fleet/check-runs", data={"name": "promotion/lineage", "head_sha": sha}
    )
    latest = await bot.getitem(f"/repos/acme/fleet/commits/{sha}/check-runs")
    assert [r["id"] for r in latest["check_runs"]] == [again["id"]]
    everything = await bot.getitem(f"/repos/acme/fleet/commits/{sha}/check-runs?filter=all")
    assert everything["total_count"] == 2


@pytest.mark.contract_breach(r"\(checks/create\) request body")
@pytest.mark.parametrize(
    "body",
    [
        {"head_sha": "HEAD"},
        {"name": "x", "head_sha": "HEAD", "status": "done"},
        {"name": "x", "head_sha": "HEAD", "status": "completed"},
        {"name": "x", "head_sha": "HEAD", "conclusion": "great"},
        {"name": "x", "head_sha": "HEAD", "output": {"title": "t", "summary": "s" * 65536}},
        {
            "name": "x",
            "head_sha": "HEAD",
            "output": {
                "title": "t",
                "summary": "s",
                "annotations": [
                    {
                        "path": "a",
                        "start_line": 1,
                        "end_line": 1,
                        "annotation_level": "notice",
                        "message": "m",
                    }
                ]
                * 51,
            },
        },
        {
            "name": "x",
            "head_sha": "HEAD",
            "output": {
                "title": "t",
                "summary": "s",
                "annotations": [
                    {
                        "path": "a",
                        "start_line": 1,
                        "end_line": 1,
                        "annotation_level": "fatal",
                        "message": "m",
                    }
                ],
            },
        },
        {"name": "x", "head_sha": "0" * 40},
    ],
)
async def test_check_run_validation(gh: Seeded, body: dict[str, Any]) -> None:
    bot = await gh.bot()
    head = gh.fake.repo("acme/fleet").branch_sha("main")
    data = {k: (head if v == "HEAD" else v) for k, v in body.items()}
    with pytest.raises(BadRequest) as exc:
        await bot.post("/repos/acme/fleet/check-runs", data=data)
    assert exc.value.status_code == 422


async def test_only_apps_create_and_only_owners_update_runs(gh: Seeded) -> None:
    head = gh.fake.repo("acme/fleet").branch_sha("main")
    with pytest.raises(BadRequest) as exc:
        await gh.person(gh.alice).post(
            "/repos/acme/fleet/check-runs", data={"name": "x", "head_sha": head}
        )
    assert exc.value.status_code == 403
    bot = await gh.bot()
    run = await bot.post("/repos/acme/fleet/check-runs", data={"name": "x", "head_sha": head})
    other = gh.fake.create_app("other-ci")
    inst = gh.fake.install(other, "acme", repositories=["fleet"])
    other_bot = await gh.bot(inst, app=other)
    with pytest.raises(BadRequest) as exc:
        await other_bot.patch(
            f"/repos/acme/fleet/check-runs/{run['id']}",
            data={"status": "completed", "conclusion": "success"},
        )
    assert exc.value.status_code == 403


@pytest.mark.contract_breach("create-commit-status\\) request body state: 'great'")
async def test_statuses_and_combined_status(gh: Seeded) -> None:
    bot = await gh.bot()
    sha = gh.fake.repo("acme/fleet").branch_sha("main")
    assert (await bot.getitem(f"/repos/acme/fleet/commits/{sha}/status"))["state"] == "pending"
    await bot.post(
        f"/repos/acme/fleet/statuses/{sha}", data={"state": "pending", "context": "ci/build"}
    )
    gh.fake.set_status("acme/fleet", "main", "ci/build", "success", by="bob")
    gh.fake.set_status("acme/fleet", "main", "ci/lint", "success", by="bob")
    combined = await bot.getitem("/repos/acme/fleet/commits/main/status")
    assert combined["state"] == "success" and combined["total_count"] == 2
    assert sorted(s["context"] for s in combined["statuses"]) == ["ci/build", "ci/lint"]
    all_statuses = await bot.getitem(f"/repos/acme/fleet/commits/{sha}/statuses")
    assert [s["state"] for s in all_statuses] == ["success", "success", "pending"]
    with pytest.raises(BadRequest):
        await bot.post(f"/repos/acme/fleet/statuses/{sha}", data={"state": "great"})
    await gh.fake.idle()
    status = [d for d in gh.fake.deliveries if d.event == "status"][-1]
    assert (status.payload["context"], status.payload["state"], status.payload["sha"]) == (
        "ci/lint",
        "success",
        sha,
    )
    assert status.payload["branches"][0]["name"] == "main"


async def test_issues_comments_reactions_labels(gh: Seeded) -> None:
    bot = await gh.bot()
    issue = await bot.post(
        "/repos/acme/fleet/issues", data={"title": "Drift", "body": "b", "labels": ["bug"]}
    )
    assert (issue["number"], [lb["name"] for lb in issue["labels"]]) == (1, ["bug"])
    gh.fake.create_branch("acme/fleet", "p", by="alice")
    gh.fake.commit("acme/fleet", "p", {"p": b"1"}, author="alice")
    n = gh.fake.open_pr("acme/fleet", "p", title="PR", author="alice")
    assert n == 2  # issues and PRs share one sequence
    cid = gh.fake.comment("acme/fleet", n, "alice", "/promote staging")
    reply = await bot.post(f"/repos/acme/fleet/issues/{n}/comments", data={"body": "On it"})
    assert reply["user"]["login"] == "fleet-bot[bot]" and reply["user"]["type"] == "Bot"
    assert reply["performed_via_github_app"]["slug"] == "fleet-bot"
    first = await bot.post(
        f"/repos/acme/fleet/issues/comments/{cid}/reactions", data={"content": "eyes"}
    )
    again = await bot.post(
        f"/repos/acme/fleet/issues/comments/{cid}/reactions", data={"content": "eyes"}
    )
    assert first["id"] == again["id"]
    raw_status = [r.status for r in gh.fake.requests if r.path.endswith("/reactions")]
    assert raw_status == [201, 200]
    edited = await bot.patch(
        f"/repos/acme/fleet/issues/comments/{reply['id']}", data={"body": "Done"}
    )
    assert edited["body"] == "Done"
    with pytest.raises(BadRequest) as exc:
        await bot.patch(f"/repos/acme/fleet/issues/comments/{cid}", data={"body": "hijack"})
    assert exc.value.status_code == 403
    labels = await bot.post(
        f"/repos/acme/fleet/issues/{n}/labels", data={"labels": ["promotion", "prod"]}
    )
    assert [lb["name"] for lb in labels] == ["promotion", "prod"]
    token = await gh.token()
    async with gh.session.delete(
        f"{gh.fake.api_url}/repos/acme/fleet/issues/{n}/labels/prod",
        headers={"Authorization": f"token {token}"},
    ) as resp:
        assert [lb["name"] for lb in await resp.json()] == ["promotion"]
    assert [lb.name for lb in gh.fake.repo("acme/fleet").issues[n].labels] == ["promotion"]
    with pytest.raises(BadRequest) as exc:
        await bot.delete(f"/repos/acme/fleet/issues/{n}/labels/prod")
    assert (exc.value.status_code, str(exc.value)) == (404, "Label does not exist")
    open_items = [i async for i in bot.getiter("/repos/acme/fleet/issues")]
    assert [("pull_request" in i) for i in open_items] == [True, False]
    only_bug = [i["number"] async for i in bot.getiter("/repos/acme/fleet/issues?labels=bug")]
    assert only_bug == [1]
    await bot.patch("/repos/acme/fleet/issues/1", data={"state": "closed"})
    await gh.fake.idle()
    got = [
        (d.event, d.action) for d in gh.fake.deliveries if d.event in ("issues", "issue_comment")
    ]
    assert got == [
        ("issues", "opened"),
        ("issues", "labeled"),
        ("issue_comment", "created"),
        ("issue_comment", "created"),
        ("issue_comment", "edited"),
        ("issues", "closed"),
    ]
    labeled = [
        d.payload["label"]["name"]
        for d in gh.fake.deliveries
        if d.event == "pull_request" and d.action in ("labeled", "unlabeled")
    ]
    assert labeled == ["promotion", "prod", "prod"]


async def test_teams_collaborators_and_protection(gh: Seeded) -> None:
    bot = await gh.bot()
    teams = [t["slug"] async for t in bot.getiter("/orgs/acme/teams")]
    assert teams == ["sre"]
    members = [m["login"] async for m in bot.getiter("/orgs/acme/teams/sre/members")]
    assert members == ["alice", "bob"]
    ok = await bot.getitem("/orgs/acme/teams/sre/memberships/bob")
    assert (ok["state"], ok["role"]) == ("active", "member")
    gh.fake.create_user("carol")
    with pytest.raises(BadRequest) as exc:
        await bot.getitem("/orgs/acme/teams/sre/memberships/carol")
    assert exc.value.status_code == 404
    gh.fake.set_collaborator("acme/fleet", "carol", "maintain")
    perm = await bot.getitem("/repos/acme/fleet/collaborators/carol/permission")
    assert (perm["permission"], perm["role_name"], perm["user"]["login"]) == (
        "write",
        "maintain",
        "carol",
    )
    gh.fake.set_collaborator("acme/fleet", "carol", "triage")
    assert (await bot.getitem("/repos/acme/fleet/collaborators/carol/permission"))[
        "permission"
    ] == "read"
    gh.fake.set_collaborator("acme/fleet", "carol", None)
    assert (await bot.getitem("/repos/acme/fleet/collaborators/carol/permission"))[
        "permission"
    ] == "none"
    with pytest.raises(BadRequest) as exc:
        await bot.getitem("/repos/acme/fleet/branches/main/protection/required_status_checks")
    assert (exc.value.status_code, str(exc.value)) == (404, "Branch not protected")
    gh.fake.set_required_checks("acme/fleet", "main", ["ci/build"], strict=True)
    checks = await bot.getitem("/repos/acme/fleet/branches/main/protection/required_status_checks")
    assert (checks["contexts"], checks["strict"]) == (["ci/build"], True)
    branch = await bot.getitem("/repos/acme/fleet/branches/main")
    assert branch["protected"] is True
    with pytest.raises(InvalidField):
        await bot.post("/repos/acme/fleet/issues", data={"title": ""})
