"""The promotion gate (issue 5): lineage and approvals checks on fleet PRs, end to end."""

from __future__ import annotations

from tests.e2e.gatekit import (
    DEV,
    PROD,
    STAGING,
    checks,
    land,
    open_change,
    path,
    summary,
    verdict,
    with_image,
)
from tests.harness import FLEET, Harness

LINEAGE, APPROVALS = "promotion/lineage", "promotion/approvals"
IMG = "registry.acme.com/payment"


async def prod_pr(
    world: Harness, image: str, branch: str = "to-prod", author: str = "alice"
) -> int:
    number = open_change(
        world,
        branch,
        {path(PROD): with_image(world, PROD, image)},
        author=author,
        title=f"prod: {image}",
    )
    await world.settle()
    return number


async def test_lineage_passes_for_a_tag_staging_runs(world: Harness) -> None:
    number = await prod_pr(world, f"{IMG}:v2.0.0")
    assert verdict(world, number, LINEAGE) == "success"
    text = summary(world, number, LINEAGE)
    assert "staging-use1-01" in text and "v2.0.0" in text
    assert verdict(world, number, APPROVALS) == "pending"


async def test_lineage_passes_for_a_rollback_to_an_older_staging_tag(world: Harness) -> None:
    land(world.fake, {path(STAGING): with_image(world, STAGING, f"{IMG}:v2.0.1")}, "staging 2.0.1")
    land(world.fake, {path(STAGING): with_image(world, STAGING, f"{IMG}:v2.0.2")}, "staging 2.0.2")
    await world.settle()
    number = await prod_pr(world, f"{IMG}:v2.0.1")
    assert verdict(world, number, LINEAGE) == "success", summary(world, number, LINEAGE)


async def test_lineage_fails_for_a_tag_staging_never_had(world: Harness) -> None:
    number = await prod_pr(world, f"{IMG}:v9.9.9")
    assert verdict(world, number, LINEAGE) == "failure"
    run = checks(world, number)[LINEAGE]
    text = summary(world, number, LINEAGE)
    assert "v9.9.9" in text and "v2.0.0" in text  # what staging has instead
    assert any(
        a["path"] == path(PROD) and a["annotation_level"] == "failure" for a in run.annotations
    )


async def test_lineage_fails_for_a_changed_repository(world: Harness) -> None:
    number = await prod_pr(world, "registry.acme.com/payment-fork:v2.0.0")
    assert verdict(world, number, LINEAGE) == "failure"
    assert "repository" in summary(world, number, LINEAGE).lower()


async def test_lineage_fails_for_a_new_tenant_input_with_an_unknown_tag(world: Harness) -> None:
    new = path(PROD, "ledger")
    body = with_image(world, PROD, "registry.acme.com/ledger:v1.0.0").replace(
        b"payment-app-inputs", b"ledger-inputs"
    )
    number = open_change(world, "new-tenant", {new: body}, title="prod: ledger")
    await world.settle()
    assert verdict(world, number, LINEAGE) == "failure"
    assert "ledger" in summary(world, number, LINEAGE)


async def test_dev_only_pr_gets_two_successful_checks(world: Harness) -> None:
    number = open_change(
        world, "dev", {path(DEV): with_image(world, DEV, f"{IMG}:v2.5.0")}, title="dev"
    )
    world.fake.set_required_checks(FLEET, "main", ["ci/build"])  # keep it open to look at
    await world.settle()
    assert verdict(world, number, LINEAGE) == "success"
    assert verdict(world, number, APPROVALS) == "success"


async def test_prod_approvals_need_three_distinct_people_from_the_right_teams(
    world: Harness,
) -> None:
    number = await prod_pr(world, f"{IMG}:v2.0.0")
    world.fake.review(FLEET, number, "bob", "APPROVE")  # sre
    await world.settle()
    assert verdict(world, number, APPROVALS) == "pending"
    text = summary(world, number, APPROVALS)
    assert "@acme/sre" in text and "@acme/tech-leads" in text
    world.fake.review(FLEET, number, "dana", "APPROVE")  # sre and tech lead
    await world.settle()
    assert verdict(world, number, APPROVALS) == "pending"  # two people cannot fill three slots
    world.fake.review(FLEET, number, "carol", "APPROVE")  # sre
    await world.settle()
    assert verdict(world, number, APPROVALS) == "success"
    text = summary(world, number, APPROVALS)
    assert "bob" in text and "carol" in text and "dana" in text


async def test_approval_before_the_latest_push_does_not_count(world: Harness) -> None:
    number = await prod_pr(world, f"{IMG}:v2.0.0")
    for who in ("bob", "carol", "erin"):
        world.fake.review(FLEET, number, who, "APPROVE")
    await world.settle()
    assert verdict(world, number, APPROVALS) == "success"
    world.fake.commit(
        FLEET, "to-prod", {"clusters/prod-use1-01/notes.txt": b"x\n"}, "note", author="alice"
    )
    await world.settle()
    assert verdict(world, number, APPROVALS) == "pending"
    assert "head" in summary(world, number, APPROVALS).lower()


async def test_author_and_commit_authors_do_not_count(world: Harness) -> None:
    number = await prod_pr(world, f"{IMG}:v2.0.0", author="bob")  # bob is sre, but the author
    for who in ("bob", "carol", "erin"):
        if who != "bob":
            world.fake.review(FLEET, number, who, "APPROVE")
    await world.settle()
    assert verdict(world, number, APPROVALS) == "pending"
    text = summary(world, number, APPROVALS)
    assert "1 more" in text or "1 from" in text


async def test_changes_requested_fails_and_dismissing_brings_back_pending(world: Harness) -> None:
    number = await prod_pr(world, f"{IMG}:v2.0.0")
    world.fake.review(FLEET, number, "bob", "APPROVE")
    rid = world.fake.review(FLEET, number, "frank", "REQUEST_CHANGES", body="not today")
    await world.settle()
    assert verdict(world, number, APPROVALS) == "failure"
    assert "frank" in summary(world, number, APPROVALS)
    world.fake.dismiss_review(FLEET, number, rid, by="alice", message="discussed")
    await world.settle()
    assert verdict(world, number, APPROVALS) == "pending"
    # one run per name is current; the re-opened one is newer than the failed one
    names = [
        r.name for r in world.fake.check_runs(FLEET, world.fake.repo(FLEET).prs[number].head_sha)
    ]
    assert names.count(APPROVALS) <= 2 and names.count(LINEAGE) == 1


async def test_staging_and_prod_together_must_satisfy_both(world: Harness) -> None:
    number = open_change(
        world,
        "both",
        {
            path(STAGING): with_image(world, STAGING, f"{IMG}:v2.1.0-rc1"),
            path(PROD): with_image(world, PROD, f"{IMG}:v2.0.0"),
        },
        title="staging + prod",
    )
    await world.settle()
    assert verdict(world, number, LINEAGE) == "success", summary(world, number, LINEAGE)
    world.fake.review(FLEET, number, "bob", "APPROVE")
    await world.settle()
    text = summary(world, number, APPROVALS)
    assert "staging" in text and "prod" in text
    assert verdict(world, number, APPROVALS) == "pending"  # staging is satisfied, prod is not
    world.fake.review(FLEET, number, "carol", "APPROVE")
    world.fake.review(FLEET, number, "erin", "APPROVE")
    await world.settle()
    assert verdict(world, number, APPROVALS) == "success"


async def test_policy_is_read_from_the_base_branch_not_the_pr(world: Harness) -> None:
    loosened = (
        b"environments:\n  - name: dev\n    autoMerge: true\n  - name: staging\n  - name: prod\n"
    )
    number = open_change(
        world,
        "loosen",
        {".github/promotion.yml": loosened, path(PROD): with_image(world, PROD, f"{IMG}:v9.9.9")},
        title="loosen the rules",
    )
    await world.settle()
    assert verdict(world, number, LINEAGE) == "failure"
    assert verdict(world, number, APPROVALS) == "pending"
    assert ".github" in summary(world, number, APPROVALS)


async def test_rerequested_check_is_evaluated_again(world: Harness) -> None:
    number = await prod_pr(world, f"{IMG}:v2.0.0")
    run = checks(world, number)[LINEAGE]  # completed: only those offer a re-run
    before = len(world.bot_requests())
    world.fake.rerequest_check_run(run.id, by="alice")
    await world.settle()
    assert len(world.bot_requests()) > before  # fresh facts were read
    assert verdict(world, number, APPROVALS) == "pending"


async def test_broken_policy_is_reported_on_the_checks(world: Harness) -> None:
    land(
        world.fake,
        {".github/promotion.yml": b"environments:\n  - name: dev\n    colour: blue\n"},
        "break the policy",
    )
    await world.settle()
    number = await prod_pr(world, f"{IMG}:v2.0.0")
    assert verdict(world, number, LINEAGE) == "failure"
    text = summary(world, number, LINEAGE)
    assert ".github/promotion.yml" in text and "colour" in text


async def test_membership_change_re_judges_approvals(world: Harness) -> None:
    number = await prod_pr(world, f"{IMG}:v2.0.0")
    for who in ("bob", "carol", "erin"):
        world.fake.review(FLEET, number, who, "APPROVE")
    await world.settle()
    assert verdict(world, number, APPROVALS) == "success"
    world.fake.remove_team_member("acme", "tech-leads", "erin")
    await world.settle()
    assert verdict(world, number, APPROVALS) == "pending"
    assert "erin" in summary(world, number, APPROVALS)


async def test_push_to_main_re_judges_lineage_of_open_prs(world: Harness) -> None:
    number = await prod_pr(world, f"{IMG}:v2.0.1")
    assert verdict(world, number, LINEAGE) == "failure"
    land(world.fake, {path(STAGING): with_image(world, STAGING, f"{IMG}:v2.0.1")}, "staging 2.0.1")
    await world.settle()
    assert verdict(world, number, LINEAGE) == "success", summary(world, number, LINEAGE)


async def test_a_review_costs_at_most_four_calls_on_a_warm_cache(world: Harness) -> None:
    number = await prod_pr(world, f"{IMG}:v2.0.0")
    world.fake.review(FLEET, number, "bob", "APPROVE")
    await world.settle()
    world.fake.reset_counters()
    world.fake.review(FLEET, number, "carol", "APPROVE")
    await world.settle()
    calls = world.bot_requests()
    assert 0 < len(calls) <= 4, [(r.method, r.path) for r in calls]
    assert verdict(world, number, APPROVALS) == "pending"


STRICT_PROD = b"""\
environments:
  - name: dev
    autoMerge: true
  - name: staging
    approvals: [{team: sre, count: 1}]
  - name: prod
    approvals: [{team: sre, count: 2}, {team: tech-leads, count: 1}]
    requireUpstreamStatus: "kustomization/*"
"""


async def test_require_upstream_status_needs_flux_success_on_the_upstream_commit(
    world: Harness,
) -> None:
    land(world.fake, {".github/promotion.yml": STRICT_PROD}, "prod needs Flux's word")
    bringing = land(
        world.fake, {path(STAGING): with_image(world, STAGING, f"{IMG}:v2.0.7")}, "staging 2.0.7"
    )
    await world.settle()
    number = await prod_pr(world, f"{IMG}:v2.0.7")
    assert verdict(world, number, LINEAGE) == "failure"
    assert "kustomization/\\*" in summary(world, number, LINEAGE)  # Markdown-escaped
    # Flux's notification-controller reports the reconciled revision on staging
    world.fake.set_status(FLEET, bringing, "kustomization/apps/1a2b3c", "success", by="ci-bot")
    run = checks(world, number)[LINEAGE]
    world.fake.rerequest_check_run(run.id, by="alice")
    await world.settle()
    assert verdict(world, number, LINEAGE) == "success", summary(world, number, LINEAGE)


async def test_min_soak_refuses_an_image_that_just_arrived_upstream(world: Harness) -> None:
    soak = STRICT_PROD.replace(b'requireUpstreamStatus: "kustomization/*"', b"minSoak: 24h")
    land(world.fake, {".github/promotion.yml": soak}, "prod needs a day in staging")
    land(world.fake, {path(STAGING): with_image(world, STAGING, f"{IMG}:v2.0.8")}, "staging 2.0.8")
    await world.settle()
    number = await prod_pr(world, f"{IMG}:v2.0.8")
    assert verdict(world, number, LINEAGE) == "failure"
    text = summary(world, number, LINEAGE)
    assert "24h" in text


async def test_other_repositories_cost_one_probe_and_nothing_else(world: Harness) -> None:
    world.fake.create_branch("acme/payment", "feature", by="alice")
    world.fake.commit(
        "acme/payment", "feature", {"src/app.py": b"print(1)\n"}, "code", author="alice"
    )
    number = world.fake.open_pr("acme/payment", "feature", title="code", author="alice")
    world.fake.comment("acme/payment", number, "alice", "/promote prod")
    world.fake.commit("acme/payment", "main", {"README.md": b"# payment\n"}, "docs", author="alice")
    await world.settle()
    paths = [r.path for r in world.bot_requests() if not r.path.endswith("/access_tokens")]
    assert paths == ["/repos/acme/payment/contents/.github/promotion.yml"], paths


async def test_lineage_reads_few_upstream_histories_when_any_cluster_will_do(
    world: Harness,
) -> None:
    staging = world.file(path(STAGING))
    assert staging is not None
    more = {path(f"staging-use1-{n:02d}"): staging for n in range(2, 9)}  # 8 staging clusters
    land(world.fake, more, "more staging clusters")
    await world.settle()
    world.fake.reset_counters()
    number = await prod_pr(world, f"{IMG}:v2.0.0")
    assert verdict(world, number, LINEAGE) == "success"
    # Upstream (staging) histories; the dev input's history is read once more for the
    # application's commits (issue 22: where the bot's bumps recorded each image's origin).
    histories = [
        r
        for r in world.bot_requests()
        if r.path.endswith("/commits") and "path=clusters/staging-" in r.query
    ]
    assert 0 < len(histories) <= 3, len(histories)
