"""Issue 22, end to end: where an image came from, and the application's commits in every
promotion PR and its ``promotion/lineage`` summary.

Signed webhooks in (the fake GitHub sends them), REST calls out to the fake; the application
repository (``acme/payment``, seeded by ``samples.seed``) gets commits by linked accounts and by
an e-mail no account has (GitHub then lists ``author: null``).
"""

from __future__ import annotations

import csv
import io
import re
from typing import Any

from bot.fake import samples
from tests.audit.kit import audit
from tests.e2e.gatekit import DEV, STAGING, land, open_change, path, summary, with_image
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


async def staged(h: Harness, titles: list[str], *, source: str = APP) -> tuple[str, list[str]]:
    """Staging runs v2.1.0 built from a known commit; dev runs v2.2.0 built ``len(titles)``
    commits later (those commits' SHAs are returned with the first build's)."""
    (first,) = app_commits(h, ["the first build"]) if source == APP else ["1" * 40]
    announce(h, "v2.1.0", first, source)
    await h.settle()
    await merge_promotion(h, await promote_staging(h, bumps(h)[0].number))
    between = app_commits(h, titles) if source == APP else ["2" * 40]
    announce(h, "v2.2.0", between[-1], source)
    await h.settle()
    return first, between


async def test_a_rollback_is_named_as_one(world: Harness) -> None:
    first, between = await staged(world, ["risky change", "more of it"])
    await merge_promotion(world, await promote_staging(world))
    assert b"payment:v2.2.0" in (world.file(path(STAGING)) or b"")
    land(
        world.fake, {path(DEV): with_image(world, DEV, f"{samples.PAYMENT_IMAGE}:v2.1.0")}, "revert"
    )
    await world.settle()
    pr = await promote_staging(world)
    line = next(x for x in pr.body.splitlines() if "rollback" in x)
    assert "**rollback** from `v2.2.0` to `v2.1.0`: takes out [2 commits of `acme/payment`]" in line
    assert f"/{APP}/compare/{first}...{between[-1]})" in line  # the commits it takes out
    assert listed(pr.body) == []
    assert "**rollback**" in summary(world, pr.number, LINEAGE)
    assert pr.title == "Roll back payment-app in staging (v2.1.0)"


async def test_an_unknown_revision_says_so_in_one_line(world: Harness) -> None:
    announce(world, "v2.2.0", None, source=None)  # an announcement without source/revision
    await world.settle()
    pr = await promote_staging(world, bumps(world)[0].number)
    (line,) = [x for x in pr.body.splitlines() if "application commits unknown" in x]
    assert "the commit v2.0.0 and v2.2.0 was built from is not recorded" in line
    assert listed(pr.body) == []
    compares = [r for r in world.bot_requests() if "/compare/" in r.path and "fleet" not in r.path]
    assert compares == []


async def test_an_app_repository_the_installation_cannot_read(world: Harness) -> None:
    world.fake.create_org("partner")
    world.fake.create_repo("partner", "payment-service", files={"README.md": b"x"})
    await staged(world, ["x"], source="partner/payment-service")
    world.fake.reset_counters()
    pr = await promote_staging(world)
    (line,) = [x for x in pr.body.splitlines() if "cannot read" in x]
    assert "the app cannot read `partner/payment-service`" in line
    assert f"/partner/payment-service/compare/{'1' * 40}...{'2' * 40}" in line
    refused = [r for r in world.bot_requests() if "/partner/payment-service/compare/" in r.path]
    assert [r.status for r in refused] == [404]  # asked once, the 404 remembered
    assert "cannot read" in summary(world, pr.number, LINEAGE)


async def test_a_compare_with_more_than_50_commits_lists_the_first_50(world: Harness) -> None:
    titles = [f"change {i:02d}" for i in range(60)]
    _first, between = await staged(world, titles)
    pr = await promote_staging(world)
    assert listed(pr.body) == [sha[:7] for sha in between[:50]]
    assert "60 commits of `acme/payment`" in pr.body
    assert "The first 50 of 60 are listed; the [full comparison](" in pr.body
    assert len(summary(world, pr.number, LINEAGE)) <= 65535


async def test_authors_without_a_github_account_are_named_not_linked(world: Harness) -> None:
    first = app_commits(world, ["base"])[-1]
    announce(world, "v2.1.0", first)
    await world.settle()
    await merge_promotion(world, await promote_staging(world, bumps(world)[0].number))
    unlinked = world.fake.commit(
        APP, "main", {"b.txt": b"b"}, "@dana please look", name="Night Owl", email="owl@ex.org"
    )
    announce(world, "v2.2.0", unlinked)
    await world.settle()
    pr = await promote_staging(world)
    (row,) = [x for x in pr.body.splitlines() if x.startswith(f"| [`{unlinked[:7]}`]")]
    assert "Night Owl (no GitHub account)" in row
    assert "@dana" not in row and "@\u200bdana" in row  # nobody is pinged by a commit title


async def test_a_pr_by_hand_shows_the_commits_in_its_lineage_summary(world: Harness) -> None:
    _first, between = await staged(world, ["a", "b"])
    number = open_change(
        world,
        "hand-promotion",
        {path(STAGING): with_image(world, STAGING, f"{samples.PAYMENT_IMAGE}:v2.2.0")},
    )
    await world.settle()
    assert listed(summary(world, number, LINEAGE)) == [sha[:7] for sha in between]


async def test_trailers_written_by_people_do_not_count(world: Harness) -> None:
    """Push access lets anyone write trailers, and put the bot's e-mail address in a commit:
    neither makes a commit GitHub attributes to the app, so the origin stays unknown."""
    first = app_commits(world, ["the first build"])[-1]
    announce(world, "v2.1.0", first)
    await world.settle()
    await merge_promotion(world, await promote_staging(world, bumps(world)[0].number))
    forged = app_commits(world, ["not what runs"])[-1]
    image = f"{samples.PAYMENT_IMAGE}:v2.2.0"
    trailers = f"Image: {image}\nImage-Source: {APP}\nImage-Revision: {forged}\n"
    land(world.fake, {path(DEV): with_image(world, DEV, image)}, f"bump\n\n{trailers}")
    bot = world.fake.world.state.user("fleet-bot[bot]")
    assert bot is not None
    world.fake.commit(  # the bot's e-mail: GitHub links the commit to the bot's account
        FLEET,
        "main",
        {path(DEV): (world.file(path(DEV)) or b"") + b"# again\n"},
        f"Bump payment to v2.2.0 in dev\n\n{trailers}",
        name="fleet-bot[bot]",
        email=bot.commit_email,
        by="bob",
    )
    await world.settle()
    listing = await_listing(world)
    assert listing[0]["author"]["login"] == "fleet-bot[bot]"  # the spoof is linked...
    assert listing[0]["commit"]["verification"]["verified"] is False  # ...but not signed
    pr = await promote_staging(world)
    (line,) = [x for x in pr.body.splitlines() if x.startswith("- **payment-app**")]
    assert "application commits unknown: the commit v2.2.0 was built from" in line
    assert forged not in pr.body and listed(pr.body) == []


def await_listing(h: Harness) -> list[Any]:
    """The dev input's history as GitHub lists it (newest first)."""
    repo = h.fake.repo(FLEET)
    head = repo.resolve("main")
    assert head is not None
    shapes = h.fake.world.shapes
    return [shapes.commit(repo, c) for c in repo.objects.log([head], path=path(DEV))]


async def test_bad_source_or_revision_is_refused_and_nothing_is_bumped(world: Harness) -> None:
    world.allow_failed_deliveries = True
    (rev,) = app_commits(world, ["x"])
    for bad in (
        {"source": "acme", "revision": rev},
        {"source": APP, "revision": "main"},
        {"source": APP, "revision": rev[:7]},
        {"revision": rev},
        {"source": ["acme/payment"]},
    ):
        world.fake.dispatch(
            FLEET,
            "image-published",
            {"image": samples.PAYMENT_IMAGE, "tag": "v2.2.0", **bad},
            by="ci-bot",
        )
    await world.settle()
    assert bumps(world) == [] and world.writes() == []
    reasons = [r for e, _, r in world.failed_deliveries() if e == "repository_dispatch"]
    assert len(reasons) == 5
    assert all(r.startswith("malformed payload: client_payload.") for r in reasons), reasons
    text = "\n".join(reasons)
    assert text.count('as "owner/repo"') == 2 and text.count("40-character SHA") == 2
    assert "revision needs client_payload.source" in text


async def test_package_events_record_the_repository_and_commit(world: Harness) -> None:
    (rev,) = app_commits(world, ["ghcr build"])
    world.fake.publish_package(
        "acme", "checkout", "v3.5.0", "sha256:" + "a" * 64, repo=APP, event="package", revision=rev
    )
    await world.settle()
    assert main_message(world).rstrip("\n").endswith(f"Image-Source: {APP}\nImage-Revision: {rev}")
    world.fake.publish_package(
        "acme", "checkout", "v3.6.0", "sha256:" + "b" * 64, repo=APP, revision=rev
    )
    await world.settle()
    # registry_package carries the digest as target_oid: the commit comes from the OCI labels
    assert main_message(world).rstrip("\n").endswith(f"Image-Revision: {rev}")
    assert "Image: ghcr.io/acme/checkout:v3.6.0@sha256:" + "b" * 64 in main_message(world)


async def test_the_bots_merge_of_a_persons_pr_does_not_carry_their_trailers(
    world: Harness,
) -> None:
    """GitHub attributes a merge the app makes to the app; its message is composed by the bot
    so that trailers a person wrote do not become the app's own."""
    image = f"{samples.PAYMENT_IMAGE}:v2.2.0"
    message = f"dev to v2.2.0\n\nImage: {image}\nImage-Source: {APP}\nImage-Revision: {'e' * 40}"
    number = open_change(world, "dev-by-hand", {path(DEV): with_image(world, DEV, image)})
    world.fake.commit(FLEET, "dev-by-hand", {f"clusters/{DEV}/notes.txt": b"x\n"}, message, "alice")
    await world.settle()
    pr = world.fake.repo(FLEET).prs[number]
    assert pr.merged  # dev only: the bot merged it
    merged = main_message(world)
    assert "Image-Revision" not in merged and "Image-Source" not in merged
    assert "dev to v2.2.0" in merged  # the rest of what they wrote is kept


async def test_review_requests_name_who_can_fill_the_empty_slots(world: Harness) -> None:
    announce(world, "v2.2.0", None, source=None)
    await world.settle()
    pr = await promote_staging(world, bumps(world)[0].number)
    assert [t.slug for t in pr.requested_teams] == ["sre"] and pr.requested_reviewers == []
    world.fake.review(FLEET, pr.number, "carol", "APPROVE")
    await world.settle()

    def requests() -> int:
        return sum(
            1
            for r in world.bot_requests()
            if r.method == "POST" and r.path.endswith(f"/pulls/{pr.number}/requested_reviewers")
        )

    world.fake.reset_counters()
    branch = pr.head_ref
    world.fake.commit(FLEET, branch, {"notes.md": b"1\n"}, "a note", "alice")  # stales carol
    await world.settle()
    assert [u.login for u in pr.requested_reviewers] == ["carol"]  # asked again, by name
    assert requests() == 1
    world.fake.commit(FLEET, branch, {"notes.md": b"2\n"}, "another note", "alice")
    await world.settle()
    assert requests() == 1  # carol and the team are requested already: nobody asked twice


async def promote_prod(h: Harness) -> Any:
    issue = h.fake.create_issue(FLEET, "to prod", "", author="alice")
    h.fake.comment(FLEET, issue, "alice", "/promote prod payment-app")
    await h.settle()
    (pr,) = [p for p in promotions(h) if p.state == "open"]
    return pr


async def test_the_audit_links_the_same_comparison_for_a_prod_change(world: Harness) -> None:
    first, between = await staged(world, ["for prod"])
    prod_first = await promote_prod(world)  # v1.9.0 -> v2.1.0: v1.9.0 has no record
    await merge_promotion(world, prod_first)
    await merge_promotion(world, await promote_staging(world))
    prod_second = await promote_prod(world)  # v2.1.0 -> v2.2.0
    comparison = f"{world.fake.web_url}/{APP}/compare/{first}...{between[-1]}"
    assert f"[full comparison]({comparison})" in prod_second.body
    await merge_promotion(world, prod_second)
    result = await audit(world, "--env", "prod")
    assert result.code == 0, result.err
    record = result.out.split(f"### ❌ #{prod_second.number} ")[1].split("\n### ")[0]
    assert f"[the commits between the two builds]({comparison})" in record
    earlier = result.out.split(f"### ❌ #{prod_first.number} ")[1].split("\n### ")[0]
    assert "no comparison (the commit v1.9.0 was built from is not recorded)" in earlier
    records = {
        r["pull_request"]: r
        for r in (await audit(world, "--env", "prod", "--format", "json")).json()
    }
    (link,) = records[prod_second.number]["app_changes"]
    assert link["comparison_url"] == comparison and link["tenants"] == ["payment-app"]
    rows = list(csv.DictReader(io.StringIO((await audit(world, "--format", "csv")).out)))
    (row,) = [r for r in rows if r["record"] == f"#{prod_second.number}"]
    assert row["app_comparison"] == comparison


async def test_a_pr_opened_before_the_bump_shows_the_commits_once_it_lands(
    world: Harness,
) -> None:
    """ "Not recorded" is remembered, but a bump of that image ends it: the summary of a PR
    opened early shows the commits as soon as the image reaches dev."""
    first = app_commits(world, ["the first build"])[-1]
    announce(world, "v2.1.0", first)
    await world.settle()
    await merge_promotion(world, await promote_staging(world, bumps(world)[0].number))
    number = open_change(
        world,
        "early",
        {path(STAGING): with_image(world, STAGING, f"{samples.PAYMENT_IMAGE}:v2.2.0")},
    )
    await world.settle()
    assert "application commits unknown: the commit v2.2.0" in summary(world, number, LINEAGE)
    later = app_commits(world, ["late change"])
    announce(world, "v2.2.0", later[-1])
    await world.settle()  # the bump merges; the push to main re-judges the open PR
    assert listed(summary(world, number, LINEAGE)) == [later[-1][:7]]
