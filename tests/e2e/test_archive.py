"""A cold start on a big fleet reads the repository as one archive, not blob by blob; a restart
with the same DATA_DIR reads neither; a hostile archive is refused and the bot reads as before.

Signed webhooks in, the in-package fake GitHub out; the archive comes from the fake's archive
host (another origin), which refuses requests carrying the installation token.
"""

from __future__ import annotations

import gzip
import logging
import zlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from bot.fake import FakeGitHub, samples
from bot.fake.archives import BLOCK, header
from tests.e2e.gatekit import DEV, PROD, land, open_change, path, summary, verdict, with_image
from tests.harness import FLEET, Harness, seed_world, start_bot

COPIES = 40  # clusters per environment: 240 inputs, 80 of them in dev


def big_fleet() -> dict[str, bytes]:
    """The sample fleet with each cluster copied COPIES times (each file names its cluster, so
    no two blobs are the same): 120 clusters, 240 tenant inputs."""
    base = samples.fleet_files()
    files = dict(base)
    for file, data in base.items():
        if not file.startswith("clusters/"):
            continue
        _, cluster, rest = file.split("/", 2)
        env, region, _n = cluster.split("-")
        for n in range(1, COPIES + 1):
            name = f"{env}-{region}-{n:02d}"
            files[f"clusters/{name}/{rest}"] = data + f"# {name}\n".encode()
    return files


async def start(fake: FakeGitHub, tmp: Path, app_id: int) -> Harness:
    """The service on ``tmp``'s DATA_DIR (a second call is a restart: new process state, the
    same files), receiving the app's webhooks."""
    app = fake.world.state.apps[app_id]
    bot_app, runner, url = await start_bot(fake, app.private_key_pem, app.id, tmp)
    fake.set_webhook_url(app, f"{url}/api/github/webhooks")
    harness = Harness(fake=fake, bot_url=url, runner=runner, app=bot_app, tmp=tmp, app_id=app.id)
    await harness.settle()
    return harness


@pytest.fixture
async def big(fake: FakeGitHub, tmp_path: Path) -> AsyncIterator[Harness]:
    app = seed_world(fake, big_fleet())
    harness = await start(fake, tmp_path, app.id)
    fake.reset_counters()
    try:
        yield harness
        assert not harness.failed_deliveries()
    finally:
        await harness.runner.cleanup()


def publish(h: Harness, tag: str) -> None:
    h.fake.dispatch(
        FLEET, "image-published", {"image": samples.PAYMENT_IMAGE, "tag": tag}, by="ci-bot"
    )


def reads(h: Harness) -> dict[str, int]:
    """The bot's calls by kind of read, and downloads from the archive host."""
    out = {"tarball": 0, "blobs": 0, "trees": 0, "calls": 0, "downloads": 0}
    for r in h.fake.requests:
        if r.identity == "codeload":
            out["downloads"] += 1
            continue
        if not r.identity.startswith(("installation:", "app:")):
            continue
        out["calls"] += 1
        if "/tarball" in r.path:
            out["tarball"] += 1
        elif "/git/blobs/" in r.path and r.method == "GET":
            out["blobs"] += 1
        elif "/git/trees/" in r.path and r.method == "GET":
            out["trees"] += 1
    out["routes"] = sorted(  # type: ignore[assignment]
        f"{r.method} {r.path}" for r in h.fake.requests if r.identity != "codeload"
    )
    return out


def merged_bump(h: Harness, tag: str) -> Any:
    (pr,) = [p for p in h.pulls() if p.head_ref.endswith(f"/{tag}")]
    assert pr.merged, f"#{pr.number} was not merged"
    files = h.fake.world.pull_files(h.fake.repo(FLEET), pr)
    assert len(files) == COPIES  # every dev cluster's payment input, nothing else
    return pr


async def test_a_cold_bump_on_a_big_fleet_reads_the_archive_once_and_no_blob(big: Harness) -> None:
    publish(big, "v2.2.0")
    await big.settle()
    merged_bump(big, "v2.2.0")
    seen = reads(big)
    assert seen["tarball"] == 1 and seen["downloads"] == 1, seen
    assert seen["blobs"] == 0, seen
    assert seen["trees"] <= 1, seen  # the one listing (the repo is small enough to list)
    assert big.fake.archive_auth_leaks == 0


async def test_a_restart_with_the_same_data_dir_reads_no_archive_and_no_blob(
    big: Harness,
) -> None:
    publish(big, "v2.2.0")
    await big.settle()
    merged_bump(big, "v2.2.0")
    data = big.tmp / "data"
    assert (data / "objects.sqlite3").exists()

    await big.runner.cleanup()  # the process stops (its object cache is written)...
    restarted = await start(big.fake, big.tmp, big.app_id)  # ...and a new one starts
    big.runner = restarted.runner  # the fixture stops this one
    big.app = restarted.app
    big.fake.reset_counters()
    publish(restarted, "v2.3.0")
    await restarted.settle()
    merged_bump(restarted, "v2.3.0")
    after_restart = reads(restarted)
    assert after_restart["tarball"] == after_restart["downloads"] == 0, after_restart
    assert after_restart["blobs"] == 0, after_restart

    restarted.fake.reset_counters()
    publish(restarted, "v2.4.0")
    await restarted.settle()
    merged_bump(restarted, "v2.4.0")
    warm = reads(restarted)
    # What a restart costs over a warm bump: a new installation token, the app's identity
    # (GET /app: the gate lists the bot's own /freeze issues by its login before any check run
    # could tell it), and the installation's repositories (discovery reads the list again);
    # never the fleet's contents, nor the fleet repo's policy file: its tree is on disk, and
    # the bump reads the policy at the head it works on anyway. The installation's two other
    # repositories (never read) are probed for a policy file, one call each.
    state = restarted.fake.world.state
    (installation,) = state.installations.values()
    repos = len(state.installation_repos(installation))
    assert repos == 3
    probes = [r for r in after_restart["routes"] if "/contents/.github/promotion.yml" in r]
    assert len(probes) == repos - 1 and not any(f"/{FLEET}/" in r for r in probes), probes
    assert after_restart["calls"] <= warm["calls"] + 3 + (repos - 1), (
        after_restart["routes"],
        warm["routes"],
    )


async def test_a_repo_that_stopped_being_a_fleet_repo_while_the_bot_was_down_is_left_alone(
    big: Harness,
) -> None:
    """Discovery does not probe a repository whose tree is on disk; one whose policy was
    removed meanwhile is found out by the bump's own read of its policy, and dropped."""
    publish(big, "v2.2.0")
    await big.settle()
    merged_bump(big, "v2.2.0")
    await big.runner.cleanup()
    # While the bot is down the policy goes (its push is never delivered: recovery is off).
    land(big.fake, {".github/promotion.yml": None}, "no more promotions")
    restarted = await start(big.fake, big.tmp, big.app_id)
    big.runner, big.app = restarted.runner, restarted.app
    before = len(big.pulls())
    publish(restarted, "v2.3.0")
    await restarted.settle()
    assert len(big.pulls()) == before  # no bump where there is no policy
    restarted.fake.reset_counters()
    publish(restarted, "v2.4.0")
    await restarted.settle()
    assert len(big.pulls()) == before
    # Known now as no fleet repo: the next announcement does not read its tree again.
    routes = reads(restarted)["routes"]
    assert not any(f"/repos/{FLEET}/" in r for r in routes), routes


def with_entry(entry: Callable[[str], bytes]) -> Callable[[bytes], bytes]:
    """The real archive with one more entry (made for its top folder) before its end."""

    def tamper(real: bytes) -> bytes:
        raw = zlib.decompress(real, wbits=31)
        # the pax global header and its record take two blocks; the top folder comes next
        top = raw[2 * BLOCK : 2 * BLOCK + 100].split(b"\0")[0].decode().rstrip("/")
        end = len(raw.rstrip(b"\0"))
        end += -end % BLOCK
        return gzip.compress(raw[:end] + entry(top) + bytes(2 * BLOCK))

    return tamper


def evil(top: str) -> bytes:
    data = b"pwned: true\n"
    name = f"{top}/../../../../evil.yaml"
    return header(name, kind=b"0", mode=0o664, size=len(data)) + data + bytes(-len(data) % BLOCK)


HOSTILE: dict[str, tuple[Callable[[bytes], bytes], str]] = {
    "a ../ path": (with_entry(evil), "component"),
    "a link": (
        with_entry(
            lambda top: header(
                f"{top}/clusters/x.yaml", kind=b"2", mode=0o777, linkname="/etc/passwd"
            )
        ),
        "symbolic link",
    ),
    "an entry past the size limit": (
        with_entry(lambda top: header(f"{top}/big.iso", kind=b"0", mode=0o664, size=2**30)),
        "the limit is",
    ),
    "a truncated gzip": (lambda real: real[: len(real) // 2], "truncated"),
}


@pytest.mark.parametrize("kind", sorted(HOSTILE))
async def test_a_hostile_archive_is_refused_and_the_bump_reads_blobs_instead(
    big: Harness, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    tamper, reason = HOSTILE[kind]
    head = big.fake.repo(FLEET).resolve("main")
    assert head is not None
    big.fake.serve_archive(FLEET, tamper, times=None)
    publish(big, "v2.2.0")
    await big.settle()
    merged_bump(big, "v2.2.0")  # the bump is made all the same...
    seen = reads(big)
    assert seen["downloads"] >= 1 and seen["blobs"] > 0, seen  # ...from blobs, as before
    refusals = [r.getMessage() for r in caplog.records if "refused the archive" in r.getMessage()]
    # (the dashboard refresh after the merge tries the new head's archive: refused too)
    assert refusals and all(reason in r and "acme/fleet" in r for r in refusals), refusals
    assert head[:7] in refusals[0]
    assert "token=" not in caplog.text  # the archive URL's own token is never logged
    # Nothing was written anywhere but the service's own files.
    assert not escaped(big.tmp.parent), "a file named in the archive was written"
    assert data_files(big.tmp / "data") <= {"inbox.sqlite3", "objects.sqlite3"}


def escaped(root: Path) -> list[Path]:
    """Files named ``evil*`` anywhere under ``root`` (the hostile entry's name)."""
    return [p for p in root.rglob("evil*")]


def data_files(data: Path) -> set[str]:
    """The databases under DATA_DIR (their -wal and -shm companions counted with them)."""
    return {p.name.split("-")[0] for p in data.iterdir()}


async def test_a_change_past_the_listed_files_in_a_tree_github_truncates_is_seen_whole(
    world: Harness,
) -> None:
    """A PR of 3,001 files whose directory GitHub lists only in part (the recursive tree is
    truncated, a level of 3,000 entries is cut short): without the archive the gate could not
    see the prod change and failed closed; with it, the trees are read whole and the change is
    judged like any other (the image ran in staging: lineage passes, prod approvals asked)."""
    changes: dict[str, bytes | None] = {
        f"clusters/{DEV}/notes/n{i:04d}.txt": b"%d\n" % i for i in range(3000)
    }
    changes[path(PROD)] = with_image(world, PROD, f"{samples.PAYMENT_IMAGE}:v2.0.0")
    world.fake.tree_entry_limit = 2000
    number = open_change(world, "many-notes", changes, title="notes")
    await world.settle()
    assert not world.fake.repo(FLEET).prs[number].merged
    lineage = summary(world, number, "promotion/lineage")
    assert verdict(world, number, "promotion/lineage") == "success", lineage
    assert "could not see" not in lineage
    assert verdict(world, number, "promotion/approvals") == "pending"
    assert "@acme/tech-leads" in summary(world, number, "promotion/approvals")
    assert any(r.identity == "codeload" for r in world.fake.requests)
