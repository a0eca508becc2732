"""Caches at fleet scale (what ``bench.fleet`` measures): truncated listings, calls only for
what changed, trees the bot made itself known without a call, a bounded number of fleets."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from bot.fleet.policy import POLICY_PATH, parse_policy
from bot.github.context import Context
from bot.github.facts import FLEETS_PER_REPO, RepoFacts
from bot.github.gateway import Gateway, ObjectCache, git_blob_sha
from bot.github.objectstore import SqliteObjectStore
from tests.harness import FLEET, Harness

REPO = "acme/big"


def files(clusters: int, tenants: int, tag: str = "v1") -> dict[str, bytes]:
    out = {"README.md": b"# big\n", ".github/promotion.yml": b"environments: []\n"}
    for c in range(clusters):
        for t in range(tenants):
            base = f"clusters/c{c}/tenants/t{t}"
            out[f"{base}/input.yaml"] = f"image: app{t}:{tag} # c{c}\n".encode()
            out[f"{base}/sync.yaml"] = f"tenant: t{t}\n".encode()
    return out


def gateway(world: Harness, objects: ObjectCache | None = None) -> Gateway:
    state = world.state
    assert state.services is not None
    (installation,) = world.fake.world.state.installations
    return Gateway(state.services.installation_client(installation), objects or ObjectCache())


async def read_main(world: Harness, clusters: int, tenants: int) -> tuple[Gateway, str]:
    """A fleet repo of ``clusters`` x ``tenants`` whose main the gateway has read once."""
    world.fake.create_repo("acme", "big", files=files(clusters, tenants), author="alice")
    gw = gateway(world)
    head = world.fake.repo(REPO).resolve("main")
    assert head is not None
    await gw.tree(REPO, head)
    return gw, head


def expected(world: Harness, ref: str) -> dict[str, str]:
    repo = world.fake.repo(REPO)
    sha = repo.resolve(ref)
    assert sha is not None
    flat = repo.objects.flatten(repo.objects.commits[sha].tree)
    return {path: blob for path, (_mode, blob) in flat.items()}


def downloads(world: Harness) -> list[str]:
    """Archive downloads from the archive host (not API calls)."""
    return [r.path for r in world.fake.requests if r.identity == "codeload"]


async def test_a_repo_read_for_the_first_time_is_read_from_its_archive_then_as_changes(
    world: Harness,
) -> None:
    world.fake.create_repo("acme", "big", files=files(6, 3), author="alice")
    world.fake.tree_entry_limit = 20  # the repo has 6 * 3 * 2 + 2 files: truncated
    gw = gateway(world)
    head = world.fake.repo(REPO).resolve("main")
    assert head is not None

    tree = await gw.tree(REPO, head)
    assert dict(tree.blobs) == expected(world, "main")
    # never read before: its archive, and beside it the commit (whose tree SHA the archive
    # must hash to); no listing (which GitHub would truncate for this repo)
    assert gw.client.calls_by_route == {
        f"GET /repos/{REPO}/tarball/{head}": 1,
        f"GET /repos/{REPO}/git/commits/{head}": 1,
    }
    assert len(downloads(world)) == 1
    # and the contents came with it: no blob is read
    cold = gw.calls
    assert await gw.blob(REPO, tree.blobs["clusters/c3/tenants/t2/input.yaml"]) == (
        b"image: app2:v1 # c3\n"
    )
    assert gw.calls == cold

    path = "clusters/c4/tenants/t1/input.yaml"
    moved = world.fake.commit(REPO, "main", {path: b"image: app1:v2\n"}, "one", author="bob")
    tree = await gw.tree(REPO, moved)
    assert dict(tree.blobs) == expected(world, "main")
    assert tree.blobs[path] == git_blob_sha(b"image: app1:v2\n")
    assert gw.calls - cold == 1  # one comparison with the commit read before
    assert len(downloads(world)) == 1


async def test_without_its_archive_a_truncated_repo_is_read_level_by_level(
    world: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    """As before archives: when the archive cannot be had, listings (GitHub truncates this
    repo's recursive one) level by level."""
    world.fake.create_repo("acme", "big", files=files(6, 3), author="alice")
    world.fake.tree_entry_limit = 20
    world.fake.serve_archive(REPO, status=502, times=None)  # the archive host fails
    gw = gateway(world)
    head = world.fake.repo(REPO).resolve("main")
    assert head is not None

    tree = await gw.tree(REPO, head)
    assert dict(tree.blobs) == expected(world, "main")
    cold = gw.calls
    # the archive and the commit (its download fails three times), then root recursive
    # (truncated), root level, .github, clusters (truncated), its level, 6 clusters
    assert cold == 13, cold
    assert len(downloads(world)) == 3
    assert "could not download the archive" in caplog.text and "token=" not in caplog.text

    path = "clusters/c4/tenants/t1/input.yaml"
    moved = world.fake.commit(REPO, "main", {path: b"image: app1:v2\n"}, "one", author="bob")
    gw.objects.last_read.clear()  # nothing to compare with: read the levels that changed
    tree = await gw.tree(REPO, moved)
    assert dict(tree.blobs) == expected(world, "main")
    assert tree.blobs[path] == git_blob_sha(b"image: app1:v2\n")
    # the root level (known large), the clusters level (known large), then c4 in one listing
    assert gw.calls - cold == 3

    again = world.fake.commit(REPO, "main", {path: b"image: app1:v3\n"}, "two", author="bob")
    before = gw.calls
    tree = await gw.tree(REPO, again)
    assert dict(tree.blobs) == expected(world, "main")
    assert gw.calls - before == 1  # one comparison with the commit read before


async def test_a_new_commit_is_read_as_a_comparison_whatever_it_changed(world: Harness) -> None:
    gw, _ = await read_main(world, 4, 3)
    world.fake.create_branch(REPO, "topic", by="alice")
    moved = world.fake.commit(
        REPO,
        "main",
        {
            "clusters/c0/tenants/t0/input.yaml": None,  # the directory keeps its sync.yaml
            "clusters/c1/tenants/t2/input.yaml": None,  # with its sibling: the directory goes
            "clusters/c1/tenants/t2/sync.yaml": None,
            "clusters/c9/tenants/new/input.yaml": b"image: new:v1\n",
            "README.md": b"# big, moved\n",
        },
        "main moves",
        author="bob",
    )
    before = gw.calls
    assert dict((await gw.tree(REPO, moved)).blobs) == expected(world, "main")
    assert gw.calls - before == 1
    # A branch that forked before main moved: the comparison is from their merge base.
    topic = world.fake.commit(
        REPO, "topic", {"clusters/c2/tenants/t1/sync.yaml": b"tenant: x\n"}, "topic", "alice"
    )
    before = gw.calls
    assert dict((await gw.tree(REPO, topic)).blobs) == expected(world, "topic")
    assert gw.calls - before <= 2


async def test_a_change_a_comparison_cannot_show_falls_back_to_reading(world: Harness) -> None:
    gw, _ = await read_main(world, 2, 2)
    path = "clusters/c1/tenants/t1/sync.yaml"
    executable = world.fake.commit(
        REPO, "main", {path: ("100755", b"tenant: t1\n")}, "chmod +x", author="bob"
    )
    before = gw.calls
    tree = await gw.tree(REPO, executable)
    assert dict(tree.blobs) == expected(world, "main")
    assert gw.calls - before == 2  # the comparison (its tree is not GitHub's), then the listing


async def test_a_tree_the_bot_committed_is_known_without_a_call(world: Harness) -> None:
    gw, head = await read_main(world, 3, 2)
    changes: dict[str, bytes | None] = {
        "clusters/c0/tenants/t0/input.yaml": b"image: app0:v9\n",  # changed
        "clusters/c1/tenants/t1/sync.yaml": None,  # deleted
        "clusters/c9/tenants/new/input.yaml": b"image: new:v1\n",  # new directories
        "clusters/c2/tenants/t0/input.yaml": None,  # with its sibling: the directory goes
        "clusters/c2/tenants/t0/sync.yaml": None,
    }
    commit = await gw.commit_files(REPO, parent=head, changes=changes, message="several")
    before = gw.calls
    world.fake.create_branch(REPO, "bump", from_ref=commit, by="alice")

    tree = await gw.tree(REPO, commit)
    assert gw.calls == before
    assert dict(tree.blobs) == expected(world, "bump")
    assert await gw.blob(REPO, tree.blobs["clusters/c9/tenants/new/input.yaml"]) == (
        b"image: new:v1\n"
    )
    assert gw.calls == before


async def test_a_cache_smaller_than_the_tree_still_gives_every_file(world: Harness) -> None:
    world.fake.create_repo("acme", "big", files=files(5, 4), author="alice")
    world.fake.tree_entry_limit = 10
    gw = gateway(world, ObjectCache(tree_entries=8))
    head = world.fake.repo(REPO).resolve("main")
    assert head is not None
    tree = await gw.tree(REPO, head)
    assert dict(tree.blobs) == expected(world, "main")


async def test_objects_named_by_sha_stay_out_of_the_etag_cache(world: Harness) -> None:
    world.fake.create_repo("acme", "big", files=files(1, 1), author="alice")
    gw = gateway(world)
    head = world.fake.repo(REPO).resolve("main")
    assert head is not None
    tree = await gw.tree(REPO, head)
    await gw.blob(REPO, tree.blobs["README.md"])
    await gw.open_pulls(REPO)
    etags = gw.client._cache
    assert etags is not None
    urls = list(etags)
    assert any("/pulls?" in url for url in urls), urls
    assert not any("/git/" in url for url in urls), urls


async def test_fleets_are_shared_by_equal_path_lists_and_bounded_per_repo(world: Harness) -> None:
    services = world.state.services
    assert services is not None
    (installation,) = world.fake.world.state.installations
    ctx = Context(
        services=services,
        installation_id=installation,
        delivery_id="test",
        event="test",
        gateway=services.gateway(installation),
        log=logging.LoggerAdapter(logging.getLogger("test"), {}),
    )
    facts = RepoFacts(ctx, FLEET)
    head = await facts.head("main")
    policy = parse_policy(world.fake.file(FLEET, "main", POLICY_PATH) or b"", POLICY_PATH)
    fleet = await facts.fleet(head, policy)
    existing = next(iter(fleet.inputs.values()))
    assert await facts.fleet(head, policy, extra_paths=[existing]) is fleet
    added = "clusters/dev-new-01/tenants/checkout/input.yaml"
    wider = await facts.fleet(head, policy, extra_paths=[added])
    assert wider is not fleet and wider.input_path("dev-new-01", "checkout") == added
    for n in range(FLEETS_PER_REPO + 1):
        sha = world.fake.commit(FLEET, "main", {f"notes/{n}.md": b"x\n"}, "note", "alice")
        await RepoFacts(ctx, FLEET).fleet(sha, policy)
    assert len(services.caches.derived[("fleets", FLEET)]) == FLEETS_PER_REPO


async def test_an_archive_that_cannot_be_had_costs_its_call_and_nothing_else(
    world: Harness,
) -> None:
    world.fake.create_repo("acme", "empty", empty=True)
    gw = gateway(world)
    # an empty repository: GitHub redirects, the archive host answers 404
    assert await gw.read_archive("acme/empty", "a" * 40, root="b" * 40) is None
    assert gw.calls == 1 and downloads(world) == ["/acme/empty/legacy.tar.gz/" + "a" * 40]
    # a commit the repository does not have: 404 from the API itself
    assert await gw.read_archive(FLEET, "c" * 40, root="b" * 40) is None
    assert gw.calls == 2 and len(downloads(world)) == 1
    # and neither is asked again by this process
    assert await gw.read_archive("acme/empty", "a" * 40) is None
    assert gw.calls == 2


async def test_a_restarted_process_reads_known_trees_from_disk_and_new_ones_as_changes(
    world: Harness, tmp_path: Path
) -> None:
    world.fake.create_repo("acme", "big", files=files(30, 3), author="alice")
    world.fake.tree_entry_limit = 50  # big: GitHub would truncate its listing
    store = SqliteObjectStore(tmp_path / "objects.sqlite3", max_bytes=100_000_000)
    try:
        first = gateway(world, ObjectCache(store=store))
        head = world.fake.repo(REPO).resolve("main")
        assert head is not None
        await first.tree(REPO, head)  # the archive
        path = "clusters/c17/tenants/t1/input.yaml"
        moved = world.fake.commit(REPO, "main", {path: b"image: app1:v2\n"}, "one", "bob")
        changed = await first.tree(REPO, moved)  # one comparison; new levels go to disk too
        await first.blob(REPO, changed.blobs[path])  # the changed file, read once
        await store.flush()

        restarted = gateway(world, ObjectCache(store=store))  # a new process, the same disk
        tree = await restarted.tree(REPO, moved)
        assert restarted.calls == 0
        assert dict(tree.blobs) == expected(world, "main")
        assert await restarted.blob(REPO, tree.blobs[path]) == b"image: app1:v2\n"
        unchanged = tree.blobs["clusters/c3/tenants/t2/input.yaml"]
        assert await restarted.blob(REPO, unchanged) == b"image: app2:v1 # c3\n"
        assert restarted.calls == 0

        again = world.fake.commit(REPO, "main", {path: b"image: app1:v3\n"}, "two", "bob")
        fresh = gateway(world, ObjectCache(store=store))  # and once more, for a newer commit
        tree = await fresh.tree(REPO, again)
        assert dict(tree.blobs) == expected(world, "main")
        assert fresh.calls == 1  # a comparison with the newest commit the disk knows
    finally:
        store.close()
