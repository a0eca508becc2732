"""Who a commit is attributed to, as GitHub says it: linked accounts, `author: null`, signatures."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bot.fake import FakeCommit
from tests.fake.conftest import Seeded


async def commit_json(gh: Seeded, sha: str) -> dict[str, Any]:
    bot = await gh.bot()
    data: dict[str, Any] = await bot.getitem(f"/repos/acme/fleet/commits/{sha}")
    return data


async def test_an_email_no_account_has_gives_author_null(gh: Seeded) -> None:
    sha = gh.fake.commit(
        "acme/fleet", "main", {"a.txt": b"a\n"}, "x", author="bob", email="bob@laptop.local"
    )
    data = await commit_json(gh, sha)
    assert data["author"] is None and data["committer"] is None
    assert data["commit"]["author"] == {
        "name": "Bob",
        "email": "bob@laptop.local",
        "date": data["commit"]["author"]["date"],
    }
    assert data["commit"]["verification"]["reason"] == "unsigned"


async def test_a_typed_email_links_to_whoever_has_it(gh: Seeded) -> None:
    """GitHub links by email: bob writing alice's email gets a commit "by alice", unsigned."""
    sha = gh.fake.commit(
        "acme/fleet", "main", {"a.txt": b"b\n"}, "x", author="bob", email="alice@acme.test"
    )
    data = await commit_json(gh, sha)
    assert data["author"]["login"] == "alice"
    assert data["commit"]["verification"]["verified"] is False


async def test_commits_the_app_makes_through_the_api_are_signed_by_github(gh: Seeded) -> None:
    bot = await gh.bot()
    head = (await bot.getitem("/repos/acme/fleet/git/ref/heads/main"))["object"]["sha"]
    tree = (await bot.getitem(f"/repos/acme/fleet/git/commits/{head}"))["tree"]["sha"]
    plain = await bot.post(
        "/repos/acme/fleet/git/commits", data={"message": "m", "tree": tree, "parents": [head]}
    )
    assert plain["verification"]["verified"] is True
    assert plain["verification"]["reason"] == "valid"
    data = await commit_json(gh, plain["sha"])
    assert data["author"]["login"] == "fleet-bot[bot]" and data["author"]["type"] == "Bot"
    assert data["commit"]["verification"]["verified"] is True
    # with a custom author GitHub does not sign: "signature verification for bots"
    custom = await bot.post(
        "/repos/acme/fleet/git/commits",
        data={
            "message": "m",
            "tree": tree,
            "parents": [head],
            "author": {"name": "Alice", "email": "alice@acme.test"},
        },
    )
    assert custom["verification"]["verified"] is False
    # a signature copied from a signed commit does not verify on another
    copied = await bot.post(
        "/repos/acme/fleet/git/commits",
        data={
            "message": "other",
            "tree": tree,
            "parents": [head],
            "signature": plain["verification"]["signature"],
        },
    )
    assert copied["verification"]["verified"] is False


async def test_github_commits_its_merges_as_web_flow(gh: Seeded) -> None:
    gh.fake.create_branch("acme/fleet", "topic", by="alice")
    gh.fake.commit("acme/fleet", "topic", {"t.txt": b"t\n"}, "topic", author="alice")
    number = gh.fake.open_pr("acme/fleet", "topic", author="alice")
    merged = gh.fake.merge_pr("acme/fleet", number, by="bob", admin=True)
    data = await commit_json(gh, str(merged))
    assert data["committer"]["login"] == "web-flow"
    assert data["author"]["login"] == "bob"
    assert data["commit"]["verification"]["verified"] is True


async def test_several_commits_in_one_push_with_their_own_dates(gh: Seeded) -> None:
    gh.fake.create_branch("acme/fleet", "many", by="alice")
    events = len(gh.fake.deliveries)
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    head = gh.fake.push_commits(
        "acme/fleet",
        "many",
        [
            FakeCommit({"1.txt": b"1\n"}, "one", author="alice", date=when),
            FakeCommit({"2.txt": b"2\n"}, "two", author="bob", date=when.timestamp() + 60),
        ],
        by="alice",
    )
    await gh.fake.idle()
    pushes = [d for d in gh.fake.deliveries[events:] if d.event == "push"]
    assert len(pushes) == 1 and len(pushes[0].payload["commits"]) == 2
    data = await commit_json(gh, head)
    assert data["author"]["login"] == "bob"
    assert data["commit"]["author"]["date"] == "2026-01-02T03:05:05Z"
