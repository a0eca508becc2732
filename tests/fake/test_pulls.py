"""Pull requests over HTTP: creation rules, mergeability, reviews and the merge button."""

from __future__ import annotations

from typing import Any

import pytest
from gidgethub import BadRequest, InvalidField, ValidationError
from gidgethub.aiohttp import GitHubAPI

from tests.fake.conftest import DEV_INPUT, PROD_INPUT, Seeded

DOC = "https://docs.github.com/rest/pulls/pulls#merge-a-pull-request"


def promo_branch(gh: Seeded, name: str = "promo", content: bytes = b"image: v1.1.0\n") -> str:
    gh.fake.create_branch("acme/fleet", name, by="alice")
    return gh.fake.commit(
        "acme/fleet", name, {PROD_INPUT: content}, message="promote", author="alice"
    )


async def merge_error(bot: GitHubAPI, path: str, data: dict[str, Any]) -> BadRequest:
    with pytest.raises(BadRequest) as exc:
        await bot.put(path, data=data)
    return exc.value


async def test_create_pull_and_duplicate_and_empty(gh: Seeded) -> None:
    head = promo_branch(gh)
    bot = await gh.bot()
    pr = await bot.post(
        "/repos/acme/fleet/pulls",
        data={"title": "Promote", "head": "promo", "base": "main", "body": "b"},
    )
    assert (pr["number"], pr["head"]["sha"], pr["user"]["login"]) == (1, head, "fleet-bot[bot]")
    assert pr["mergeable"] is None and pr["state"] == "open"
    with pytest.raises(ValidationError) as exc:
        await bot.post(
            "/repos/acme/fleet/pulls", data={"title": "again", "head": "acme:promo", "base": "main"}
        )
    assert "A pull request already exists for acme:promo." in str(exc.value)
    gh.fake.create_branch("acme/fleet", "empty", by="alice")
    with pytest.raises(ValidationError) as exc:
        await bot.post(
            "/repos/acme/fleet/pulls", data={"title": "e", "head": "empty", "base": "main"}
        )
    assert "No commits between main and empty" in str(exc.value)
    with pytest.raises(InvalidField):
        await bot.post(
            "/repos/acme/fleet/pulls", data={"title": "x", "head": "nope", "base": "main"}
        )
    listed = [p async for p in bot.getiter("/repos/acme/fleet/pulls?head=acme:promo")]
    assert [p["number"] for p in listed] == [1]
    await gh.fake.idle()
    opened = [d for d in gh.fake.deliveries if d.event == "pull_request"]
    assert [(d.action, d.payload["number"]) for d in opened] == [("opened", 1)]
    assert opened[0].payload["pull_request"]["user"]["type"] == "Bot"  # the app hears its own PR


async def test_mergeable_is_null_on_first_read_after_change(gh: Seeded) -> None:
    promo_branch(gh)
    n = gh.fake.open_pr("acme/fleet", "promo", "main", title="Promote", author="bob")
    bot = await gh.bot()
    first = await bot.getitem(f"/repos/acme/fleet/pulls/{n}")
    assert (first["mergeable"], first["mergeable_state"]) == (None, "unknown")
    second = await bot.getitem(f"/repos/acme/fleet/pulls/{n}")
    assert (second["mergeable"], second["mergeable_state"]) == (True, "clean")
    assert second["merge_commit_sha"] is not None
    assert (second["commits"], second["changed_files"], second["additions"]) == (1, 1, 1)
    gh.fake.commit("acme/fleet", "main", {"other.txt": b"x"}, author="alice")  # base moved
    assert (await bot.getitem(f"/repos/acme/fleet/pulls/{n}"))["mergeable"] is None
    assert (await bot.getitem(f"/repos/acme/fleet/pulls/{n}"))["mergeable"] is True
    gh.fake.commit("acme/fleet", "main", {PROD_INPUT: b"image: conflicting\n"}, author="alice")
    assert gh.fake.pr("acme/fleet", n)["mergeable"] is None  # the control API does not observe
    assert (await bot.getitem(f"/repos/acme/fleet/pulls/{n}"))["mergeable"] is None
    conflicted = await bot.getitem(f"/repos/acme/fleet/pulls/{n}")
    assert (conflicted["mergeable"], conflicted["mergeable_state"]) == (False, "dirty")
    err = await merge_error(bot, f"/repos/acme/fleet/pulls/{n}/merge", {})
    assert (err.status_code, str(err)) == (405, "Pull Request is not mergeable")


async def test_merge_rules_draft_sha_required_checks(gh: Seeded) -> None:
    head = promo_branch(gh)
    gh.fake.set_required_checks("acme/fleet", "main", ["ci/build", "promotion/lineage"])
    n = gh.fake.open_pr("acme/fleet", "promo", "main", title="Promote", author="bob", draft=True)
    bot = await gh.bot()
    path = f"/repos/acme/fleet/pulls/{n}/merge"
    err = await merge_error(bot, path, {"sha": head})
    assert (err.status_code, str(err)) == (405, "Pull Request is still a draft")
    gh.fake.ready_for_review("acme/fleet", n, by="bob")
    err = await merge_error(bot, path, {"sha": "0" * 40})
    assert (err.status_code, str(err)) == (
        409,
        "Head branch was modified. Review and try the merge again.",
    )
    err = await merge_error(bot, path, {"sha": head})
    assert (err.status_code, str(err)) == (405, 'Required status check "ci/build" is expected.')
    gh.fake.set_status("acme/fleet", head, "ci/build", "failure", by="bob")
    await bot.getitem(f"/repos/acme/fleet/pulls/{n}")
    assert (await bot.getitem(f"/repos/acme/fleet/pulls/{n}"))["mergeable_state"] == "blocked"
    gh.fake.set_status("acme/fleet", head, "ci/build", "success", by="bob")
    err = await merge_error(bot, path, {"sha": head})
    assert str(err) == 'Required status check "promotion/lineage" is expected.'
    run = await bot.post(
        "/repos/acme/fleet/check-runs",
        data={
            "name": "promotion/lineage",
            "head_sha": head,
            "status": "completed",
            "conclusion": "neutral",
            "output": {"title": "ok", "summary": "fine"},
        },
    )
    assert run["app"]["slug"] == "fleet-bot" and run["conclusion"] == "neutral"
    base_before = gh.fake.repo("acme/fleet").branch_sha("main")
    await gh.fake.idle()
    gh.fake.reset_counters()
    merged = await bot.put(path, data={"sha": head, "merge_method": "merge"})
    assert merged["merged"] is True and merged["message"] == "Pull Request successfully merged"
    repo = gh.fake.repo("acme/fleet")
    assert repo.branch_sha("main") == merged["sha"]
    merge_commit = repo.objects.commits[merged["sha"]]
    assert merge_commit.parents == (base_before, head)
    assert merge_commit.message.startswith(f"Merge pull request #{n} from acme/promo")
    assert gh.fake.file("acme/fleet", "main", PROD_INPUT) == b"image: v1.1.0\n"
    await gh.fake.idle()
    events = [(d.event, d.action) for d in gh.fake.deliveries]
    assert events[:2] == [("pull_request", "closed"), ("push", None)]
    closed = gh.fake.deliveries[0].payload["pull_request"]
    assert (closed["merged"], closed["merge_commit_sha"], closed["merged_by"]["login"]) == (
        True,
        merged["sha"],
        "fleet-bot[bot]",
    )
    err = await merge_error(bot, path, {})
    assert (err.status_code, str(err)) == (405, "Pull Request is not mergeable")


async def test_squash_and_rebase_methods(gh: Seeded) -> None:
    promo_branch(gh, "a")
    gh.fake.commit("acme/fleet", "a", {"two": b"2"}, message="second", author="alice")
    gh.fake.create_branch("acme/fleet", "b", by="alice")
    gh.fake.commit("acme/fleet", "b", {"b1": b"1"}, message="b one", author="bob")
    gh.fake.commit("acme/fleet", "b", {"b2": b"2"}, message="b two", author="bob")
    na = gh.fake.open_pr("acme/fleet", "a", "main", title="Squash me", author="alice")
    nb = gh.fake.open_pr("acme/fleet", "b", "main", title="Rebase me", author="bob")
    squashed = gh.fake.merge_pr("acme/fleet", na, by="bob", method="squash")
    repo = gh.fake.repo("acme/fleet")
    commit = repo.objects.commits[squashed]
    assert len(commit.parents) == 1 and commit.message.startswith(f"Squash me (#{na})")
    assert commit.author.email == "alice@acme.test"
    tip = gh.fake.merge_pr("acme/fleet", nb, by="alice", method="rebase")
    replayed = repo.objects.commits[tip]
    assert (
        replayed.message == "b two" and repo.objects.commits[replayed.parents[0]].message == "b one"
    )
    assert set(repo.objects.flatten(replayed.tree)) >= {"two", "b1", "b2", PROD_INPUT}


async def test_reviews_dismissals_and_requested_reviewers(gh: Seeded) -> None:
    promo_branch(gh)
    n = gh.fake.open_pr("acme/fleet", "promo", "main", title="Promote", author="alice")
    alice = gh.person(gh.alice)
    with pytest.raises(ValidationError) as exc:
        await alice.post(f"/repos/acme/fleet/pulls/{n}/reviews", data={"event": "APPROVE"})
    assert "Can not approve your own pull request" in str(exc.value)
    bot = await gh.bot()
    await bot.post(
        f"/repos/acme/fleet/pulls/{n}/requested_reviewers",
        data={"reviewers": ["bob"], "team_reviewers": ["sre"]},
    )
    with pytest.raises(InvalidField) as unknown:
        await bot.post(
            f"/repos/acme/fleet/pulls/{n}/requested_reviewers", data={"team_reviewers": ["ghosts"]}
        )
    assert unknown.value.status_code == 422
    requested = await bot.getitem(f"/repos/acme/fleet/pulls/{n}/requested_reviewers")
    assert [u["login"] for u in requested["users"]] == ["bob"]
    assert [t["slug"] for t in requested["teams"]] == ["sre"]
    rid = gh.fake.review("acme/fleet", n, "bob", "APPROVE")
    reviews = [r async for r in bot.getiter(f"/repos/acme/fleet/pulls/{n}/reviews")]
    assert [(r["id"], r["state"], r["commit_id"]) for r in reviews] == [
        (rid, "APPROVED", gh.fake.repo("acme/fleet").branch_sha("promo"))
    ]
    assert (await bot.getitem(f"/repos/acme/fleet/pulls/{n}/requested_reviewers"))["users"] == []
    dismissed = await bot.put(
        f"/repos/acme/fleet/pulls/{n}/reviews/{rid}/dismissals",
        data={"message": "stale", "event": "DISMISS"},
    )
    assert dismissed["state"] == "DISMISSED"
    await gh.fake.idle()
    got = [(d.event, d.action) for d in gh.fake.deliveries if d.event.startswith("pull_request")]
    assert got[-4:] == [
        ("pull_request", "review_requested"),
        ("pull_request", "review_requested"),
        ("pull_request_review", "submitted"),
        ("pull_request_review", "dismissed"),
    ]
    # webhooks write the review state in lower case (the REST API: DISMISSED)
    assert gh.fake.deliveries[-1].payload["review"]["state"] == "dismissed"


async def test_head_branch_events_synchronize_and_delete_closes(gh: Seeded) -> None:
    promo_branch(gh)
    n = gh.fake.open_pr("acme/fleet", "promo", "main", title="Promote", author="alice")
    before = gh.fake.pr("acme/fleet", n)["head"]["sha"]
    after = gh.fake.commit("acme/fleet", "promo", {"more": b"1"}, author="alice")
    await gh.fake.idle()
    sync = [d for d in gh.fake.deliveries if d.action == "synchronize"]
    assert [(d.payload["before"], d.payload["after"]) for d in sync] == [(before, after)]
    bot = await gh.bot()
    edited = await bot.patch(f"/repos/acme/fleet/pulls/{n}", data={"title": "Promote payment"})
    assert edited["title"] == "Promote payment"
    await bot.delete("/repos/acme/fleet/git/refs/heads/promo")
    assert gh.fake.pr("acme/fleet", n)["state"] == "closed"
    await gh.fake.idle()
    actions = [d.action for d in gh.fake.deliveries if d.event == "pull_request"]
    assert actions[-2:] == ["edited", "closed"]
    deleted = [d for d in gh.fake.deliveries if d.event == "push"][-1]
    assert deleted.payload["deleted"] is True and deleted.payload["after"] == "0" * 40


async def test_pull_files_and_commits_lists(gh: Seeded) -> None:
    gh.fake.create_branch("acme/fleet", "many", by="alice")
    for i in range(35):
        gh.fake.commit(
            "acme/fleet", "many", {f"f/{i:02}": f"{i}\n".encode()}, message=f"c{i}", author="bob"
        )
    gh.fake.commit("acme/fleet", "many", {DEV_INPUT: None}, message="rm", author="bob")
    n = gh.fake.open_pr("acme/fleet", "many", "main", title="Many", author="bob")
    bot = await gh.bot()
    files = [f async for f in bot.getiter(f"/repos/acme/fleet/pulls/{n}/files")]
    assert len(files) == 36
    removed = [f for f in files if f["status"] == "removed"]
    assert [f["filename"] for f in removed] == [DEV_INPUT] and removed[0]["deletions"] == 1
    commits = [c async for c in bot.getiter(f"/repos/acme/fleet/pulls/{n}/commits")]
    assert [c["commit"]["message"] for c in commits][:2] == ["c0", "c1"] and len(commits) == 36
    assert commits[0]["author"]["login"] == "bob"


async def test_the_file_list_stops_at_3000_and_changed_files_counts_them_all(gh: Seeded) -> None:
    gh.fake.create_branch("acme/fleet", "huge", by="alice")
    gh.fake.commit(
        "acme/fleet",
        "huge",
        {f"notes/n{i:04}.txt": b"%d\n" % i for i in range(3002)},
        message="notes",
        author="bob",
    )
    n = gh.fake.open_pr("acme/fleet", "huge", "main", title="Huge", author="bob")
    bot = await gh.bot()
    files = [f async for f in bot.getiter(f"/repos/acme/fleet/pulls/{n}/files?per_page=100")]
    assert len(files) == 3000 and files[-1]["filename"] == "notes/n2999.txt"
    pr = await bot.getitem(f"/repos/acme/fleet/pulls/{n}")
    assert pr["changed_files"] == 3002


async def test_merged_pr_keeps_its_files_after_the_base_moves(gh: Seeded) -> None:
    promo_branch(gh)
    number = gh.fake.open_pr("acme/fleet", "promo", title="p", author="alice")
    gh.fake.merge_pr("acme/fleet", number, by="alice", method="merge")
    gh.fake.commit("acme/fleet", "main", {"README.md": b"later\n"}, "later", author="alice")
    bot = await gh.bot()
    files = [f async for f in bot.getiter(f"/repos/acme/fleet/pulls/{number}/files")]
    assert [f["filename"] for f in files] == [PROD_INPUT]
