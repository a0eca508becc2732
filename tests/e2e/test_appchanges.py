"""Issue 22, end to end: where an image came from, and the application's commits in every
promotion PR and its ``promotion/lineage`` summary.

Signed webhooks in (the fake GitHub sends them), REST calls out to the fake; the application
repository (``acme/payment``, seeded by ``samples.seed``) gets commits by linked accounts and by
an e-mail no account has (GitHub then lists ``author: null``).
"""

from __future__ import annotations

import re
from typing import Any

from bot import samples
from tests.e2e.gatekit import DEV, STAGING, land, path, summary, with_image
from tests.harness import FLEET, Harness

APP = "acme/payment"
LINEAGE = "promotion/lineage"


def app_commits(h: Harness, titles: list[str], *, author: str = "alice") -> list[str]:
    """Commits on the application's main branch, one file each; their SHAs in order."""
    shas = []
    for i, title in enumerate(titles):
        shas.append(
            h.fake.commit(APP, "main", {f"src/{title}-{i}.txt": title.encode()}, title, author)
        )
    return shas


def announce(h: Harness, tag: str, revision: str | None, source: str | None = APP) -> None:
    payload: dict[str, Any] = {"image": samples.PAYMENT_IMAGE, "tag": tag}
    if source is not None:
        payload["source"] = source
    if revision is not None:
        payload["revision"] = revision
    h.fake.dispatch(FLEET, "image-published", payload, by="ci-bot")


def bumps(h: Harness) -> list[Any]:
    return [p for p in h.pulls() if p.head_ref.startswith("fleet-bot/bump/")]


def promotions(h: Harness) -> list[Any]:
    return [p for p in h.pulls() if p.head_ref.startswith("fleet-bot/promote/")]


def main_message(h: Harness) -> str:
    repo = h.fake.repo(FLEET)
    sha = repo.resolve("main")
    assert sha is not None
    return repo.objects.commits[sha].message


async def promote_staging(h: Harness, on: int | None = None) -> Any:
    """``/promote staging`` (on a bump PR, or on a fresh issue) and the open promotion PR."""
    if on is None:
        on = h.fake.create_issue(FLEET, "promote", "", author="alice")
        h.fake.comment(FLEET, on, "alice", "/promote staging payment-app")
    else:
        h.fake.comment(FLEET, on, "alice", "/promote staging")
    await h.settle()
    (pr,) = [p for p in promotions(h) if p.state == "open"]
    return pr


async def merge_promotion(h: Harness, pr: Any) -> None:
    h.fake.merge_pr(FLEET, pr.number, "bob", method="squash", admin=True)
    await h.settle()


def listed(body: str) -> list[str]:
    """Short SHAs of the commits a body lists in its application-changes tables."""
    return re.findall(r"^\| \[`([0-9a-f]{7})`\]", body, flags=re.M)


async def test_dispatch_with_source_and_revision_is_recorded_in_the_bump_commit(
    world: Harness,
) -> None:
    (rev,) = app_commits(world, ["first feature"])
    announce(world, "v2.2.0", rev)
    await world.settle()
    (bump,) = bumps(world)
    assert bump.merged
    message = main_message(world)
    trailers = message.rstrip("\n").split("\n\n")[-1].splitlines()
    assert trailers == [
        f"Image: {samples.PAYMENT_IMAGE}:v2.2.0",
        f"Image-Source: {APP}",
        f"Image-Revision: {rev}",
    ]
    assert f"Built from {APP}@{rev}." in bump.body


async def test_promote_staging_lists_exactly_the_commits_in_between(world: Harness) -> None:
    before = app_commits(world, ["setup", "old feature"])
    announce(world, "v2.1.0", before[-1])
    await world.settle()
    first = await promote_staging(world, bumps(world)[0].number)
    assert "application commits unknown" in first.body  # staging's v2.0.0 has no record
    await merge_promotion(world, first)
    between = app_commits(world, ["fix rounding (#12)", "new checkout flow", "bump deps"])
    app_commits(world, ["after the build"])
    announce(world, "v2.2.0", between[-1])
    await world.settle()
    world.fake.reset_counters()
    pr = await promote_staging(world)
    assert listed(pr.body) == [sha[:7] for sha in between]
    assert "3 commits of `acme/payment`" in pr.body
    assert f"/{APP}/compare/{before[-1]}...{between[-1]}" in pr.body
    assert f"[#12]({world.fake.web_url}/{APP}/pull/12)" in pr.body
    assert listed(summary(world, pr.number, LINEAGE)) == [sha[:7] for sha in between]
    compares = [r for r in world.bot_requests() if "/compare/" in r.path and APP in r.path]
    assert len(compares) == 1  # one per (repository, from, to), however often it is shown
