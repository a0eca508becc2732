"""Blueprint releases through the same pipeline (issue 12), end to end."""

from __future__ import annotations

from typing import Any

from tests.e2e.gatekit import open_change, summary, verdict
from tests.harness import FLEET, Harness

BLUEPRINTS = "acme/platform-blueprints"
SRC = "clusters/{}/flux-system/sources.yaml"
DEV, STAGING, PROD = "dev-use1-01", "staging-use1-01", "prod-use1-01"


def source_prs(h: Harness, kind: str = "bump") -> list[Any]:
    prefix = "fleet-bot/bump/source-" if kind == "bump" else "fleet-bot/promote/"
    return [p for p in h.pulls() if p.head_ref.startswith(prefix)]


def changed(h: Harness, number: int) -> list[str]:
    repo = h.fake.repo(FLEET)
    return sorted(f["filename"] for f in h.fake.world.pull_files(repo, repo.prs[number]))


def with_tag(h: Harness, cluster: str, tag: str) -> bytes:
    current = h.file(SRC.format(cluster))
    assert current is not None
    old = next(ln.split("tag:")[1].strip() for ln in current.decode().splitlines() if "tag:" in ln)
    return current.replace(f"tag: {old}".encode(), f"tag: {tag}".encode())


async def test_release_bumps_dev_sources_only_and_merges(world: Harness) -> None:
    before = world.file(SRC.format(DEV))
    assert before is not None
    world.fake.create_release(BLUEPRINTS, tag="v1.3.0", body="New: sidecar injection", by="bob")
    await world.settle()
    (pr,) = source_prs(world)
    assert pr.merged
    assert changed(world, pr.number) == [SRC.format(DEV)]
    assert world.file(SRC.format(DEV)) == before.replace(b"tag: v1.2.0", b"tag: v1.3.0")
    assert "sidecar injection" in pr.body and "v1.3.0" in pr.body
    assert world.file(SRC.format(STAGING)) is not None
    assert b"tag: v1.2.0" in (world.file(SRC.format(STAGING)) or b"")


async def test_draft_release_and_branch_pinned_source_change_nothing(world: Harness) -> None:
    world.fake.create_release(BLUEPRINTS, tag="v1.4.0", draft=True, by="bob")
    await world.settle()
    assert source_prs(world) == []
    current = world.file(SRC.format(DEV))
    assert current is not None
    world.fake.commit(
        FLEET,
        "main",
        {SRC.format(DEV): current.replace(b"tag: v1.2.0", b"branch: main")},
        "dev follows main",
        author="bob",
    )
    await world.settle()
    world.fake.reset_counters()
    world.fake.create_release(BLUEPRINTS, tag="v1.5.0", by="bob")
    await world.settle()
    assert source_prs(world) == []
    assert world.writes() == []


async def test_prerelease_only_when_the_policy_says_so(world: Harness) -> None:
    world.fake.create_release(BLUEPRINTS, tag="v1.3.0-rc1", prerelease=True, by="bob")
    await world.settle()
    assert source_prs(world) == []
    policy = world.file(".github/promotion.yml")
    assert policy is not None
    world.fake.commit(
        FLEET,
        "main",
        {".github/promotion.yml": policy + b"prereleases: true\n"},
        "take pre-releases",
        author="bob",
    )
    await world.settle()
    world.fake.create_release(BLUEPRINTS, tag="v1.3.0-rc2", prerelease=True, by="bob")
    await world.settle()
    (pr,) = source_prs(world)
    assert pr.merged and "v1.3.0-rc2" in pr.title


async def test_prod_source_lineage_fails_for_a_tag_staging_never_ran(world: Harness) -> None:
    number = open_change(
        world,
        "bp-prod",
        {SRC.format(PROD): with_tag(world, PROD, "v9.0.0")},
        title="prod blueprints v9",
    )
    await world.settle()
    assert verdict(world, number, "promotion/lineage") == "failure"
    text = summary(world, number, "promotion/lineage")
    assert "flux-system/platform-blueprints" in text and "v9.0.0" in text
    good = open_change(
        world,
        "bp-prod-ok",
        {SRC.format(PROD): with_tag(world, PROD, "v1.2.0")},
        title="prod blueprints v1.2.0",
    )
    await world.settle()
    assert verdict(world, good, "promotion/lineage") == "success", summary(
        world, good, "promotion/lineage"
    )
    assert verdict(world, good, "promotion/approvals") == "pending"
    for who in ("bob", "carol", "erin"):
        world.fake.review(FLEET, good, who, "APPROVE")
    await world.settle()
    assert verdict(world, good, "promotion/approvals") == "success"


async def test_promote_staging_source_opens_the_right_pr(world: Harness) -> None:
    world.fake.create_release(BLUEPRINTS, tag="v1.3.0", by="bob")
    await world.settle()
    issue = world.fake.create_issue(FLEET, "blueprints", "", author="alice")
    world.fake.comment(
        FLEET, issue, "alice", "/promote staging source:flux-system/platform-blueprints"
    )
    await world.settle()
    (pr,) = source_prs(world, "promote")
    assert changed(world, pr.number) == [SRC.format(STAGING)]
    head = world.fake.repo(FLEET).prs[pr.number].head_sha
    staged = world.fake.file(FLEET, head, SRC.format(STAGING))
    assert staged is not None and b"tag: v1.3.0" in staged
    assert verdict(world, pr.number, "promotion/lineage") == "success"


async def test_promote_on_a_merged_blueprint_bump_pr(world: Harness) -> None:
    world.fake.create_release(BLUEPRINTS, tag="v1.3.0", by="bob")
    await world.settle()
    (bump,) = source_prs(world)
    world.fake.comment(FLEET, bump.number, "alice", "/promote staging")
    await world.settle()
    (pr,) = source_prs(world, "promote")
    assert changed(world, pr.number) == [SRC.format(STAGING)]
