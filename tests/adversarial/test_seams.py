"""Where the pieces meet: attacks on the combinations of the gate's parts (section S of
docs/threat-model.md).

The fail-closed gate, approvals, the change calendar, merge queues, application-commit
provenance, the archive and disk caches and delivery recovery were each attacked on their own.
These tests attack their seams, as an ordinary colleague would (push, comment, review, triage,
another app on the org): a signed webhook in, the in-package fake GitHub out.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

from bot.fake import samples
from bot.rules.bump import bump_branch
from bot.texts import markers
from tests.e2e.calkit import (
    OFFICE_HOURS,
    WINDOW,
    install_clock,
    policy,
    set_policy,
    tick,
    utc,
    window,
    window_text,
)
from tests.e2e.gatekit import DEV, PROD, open_change, path, verdict, with_image
from tests.e2e.test_appchanges import main_message
from tests.e2e.test_calendar_commands import (
    IC,
    WITH_TEAM,
    after_the_head_was_judged,
    freeze_issues,
    override,
    replies,
    say,
    with_commanders,
)
from tests.e2e.test_queue import approved_prod_pr, group_checks
from tests.harness import FLEET, Harness

LINEAGE, APPROVALS = "promotion/lineage", "promotion/approvals"


async def queued(world: Harness, number: int) -> str:
    """Put a PR whose CI passed into main's queue; its group waits for the group's CI."""
    head = world.fake.pr(FLEET, number)["head"]["sha"]
    world.fake.set_status(FLEET, head, "ci", "success", by="ci-bot")
    world.fake.enqueue_pr(FLEET, number, by="alice")
    [(_, group)] = world.fake.merge_queue(FLEET, "main")
    assert group is not None
    await world.settle()
    return group


# --- S1: the calendar and the merge queue ---------------------------------------------------


async def test_s1_a_freeze_stops_a_group_already_judged_in_the_queue(world: Harness) -> None:
    """S1: a prod PR's group passed the gate and waits in the queue for the group's CI; then
    prod is frozen for an incident. The freeze must stop it there too, not only the PRs."""
    await with_commanders(world)
    world.fake.require_merge_queue(
        FLEET, "main", required_checks=[LINEAGE, APPROVALS, WINDOW, "ci"]
    )
    number = await approved_prod_pr(world)
    group = await queued(world, number)
    assert group_checks(world, group)[WINDOW].conclusion == "success"
    board = world.fake.create_issue(FLEET, "Ops", "", author="dana")
    await say(world, board, "dana", "/freeze prod incident 42")
    assert window(world, number) == "failure"
    assert group_checks(world, group)[WINDOW].conclusion == "failure"
    world.fake.set_status(FLEET, group, "ci", "success", by="ci-bot")
    await world.settle()
    assert not world.fake.pr(FLEET, number)["merged"]
    assert world.fake.merge_queue(FLEET, "main") == []


async def test_s1_a_window_closing_stops_a_group_waiting_in_the_queue(world: Harness) -> None:
    """S1: the group passed at 15:59 Berlin time and waits for its CI; at 16:00 prod's window
    closes. The service's own timer judges the waiting group again, not only the PR."""
    clock = install_clock(world, utc(2026, 12, 7, 14, 50))  # Monday 15:50 in Berlin
    world.fake.create_team("acme", IC, members=["dana", "frank", "erin"])
    await set_policy(world, policy(prod=OFFICE_HOURS, extra=WITH_TEAM))
    world.fake.require_merge_queue(
        FLEET, "main", required_checks=[LINEAGE, APPROVALS, WINDOW, "ci"]
    )
    number = await approved_prod_pr(world)
    group = await queued(world, number)
    assert group_checks(world, group)[WINDOW].conclusion == "success"
    clock.set(utc(2026, 12, 7, 15, 0, 5))
    await tick(world)
    assert window(world, number) == "failure"
    run = group_checks(world, group)[WINDOW]
    assert run.conclusion == "failure", run.output
    world.fake.set_status(FLEET, group, "ci", "success", by="ci-bot")
    await world.settle()
    assert not world.fake.pr(FLEET, number)["merged"]


async def test_s1_a_github_that_lists_no_merge_queue_still_freezes(world: Harness) -> None:
    """GitHub Enterprise Server without merge queues (no ``mergeQueue`` in its GraphQL, or no
    answer there at all): a /freeze closes the PRs, its delivery does not fail, and the bot
    says in its log why it judged no queued group."""
    await with_commanders(world)
    number = await approved_prod_pr(world)
    world.fake.inject_fault(
        "POST", r"^/graphql$", status=404, times=None, body={"message": "Not Found"}
    )
    board = world.fake.create_issue(FLEET, "Ops", "", author="dana")
    await say(world, board, "dana", "/freeze prod incident 42")
    assert window(world, number) == "failure"
    assert not world.failed_deliveries()
    # A dismissed approval (which judges queued groups again) is judged on the PR as ever.
    review = next(r for r in world.fake.repo(FLEET).prs[number].reviews if r.user.login == "carol")
    world.fake.dismiss_review(FLEET, number, review.id, by="dana", message="not this one")
    await world.settle()
    assert verdict(world, number, APPROVALS) != "success"
    assert not world.failed_deliveries()


# --- S2: delivery recovery and the calendar --------------------------------------------------


@contextmanager
def bot_down(world: Harness) -> Iterator[None]:
    """GitHub cannot reach the service (a deploy, an outage): deliveries fail to connect and
    stay in GitHub's delivery log only."""
    app = world.fake.world.state.apps[world.app_id]
    url = app.webhook_url
    world.fake.set_webhook_url(app, "http://127.0.0.1:9/api/github/webhooks")
    try:
        yield
    finally:
        world.fake.set_webhook_url(app, url)


async def recover(world: Harness) -> int:
    """One round of the service's delivery recovery (GitHub's log read back), then its work."""
    taken = await world.state.recovery().round()
    await world.settle()
    return taken


async def test_s2_a_recovered_unfreeze_does_not_lift_a_freeze_made_after_it(
    world: Harness,
) -> None:
    """S2: erin writes `/unfreeze prod` while the service is down; the freeze is lifted by
    someone else meanwhile, and prod is frozen again for a new incident. When the service
    takes erin's old comment up from GitHub's delivery log, it must not lift the new freeze,
    which nobody has decided to lift."""
    await with_commanders(world)
    number = await approved_prod_pr(world)
    board = world.fake.create_issue(FLEET, "Ops", "", author="dana")
    await say(world, board, "dana", "/freeze prod incident 41")
    with bot_down(world):
        world.fake.comment(FLEET, board, "erin", "/unfreeze prod")
        await world.fake.idle()
    await say(world, board, "frank", "/unfreeze prod")
    assert freeze_issues(world) == [] and window(world, number) == "success"
    await asyncio.sleep(1.1)  # GitHub's times have whole seconds: the new freeze is later
    await say(world, board, "dana", "/freeze prod incident 42")
    [freeze] = freeze_issues(world)
    assert await recover(world) == 1
    assert freeze_issues(world) == [freeze], replies(world, board)[-1]
    assert window(world, number) == "failure"
    assert "made after this comment was written" in replies(world, board)[-1]


# --- S3: the freeze issue's keeper and the order of deliveries ------------------------------


async def test_s3_closing_and_reopening_a_freeze_issue_quickly_does_not_lift_it(
    world: Harness,
) -> None:
    """S3: a triager closes the bot's freeze issue and reopens it at once (or both events
    arrive late, taken up from GitHub's delivery log). The bot reads `closed` (reopens: a
    no-op) and then `reopened`, which it answers by closing "a lifted freeze" that nobody
    lifted. The freeze must hold."""
    await with_commanders(world)
    number = await approved_prod_pr(world)
    board = world.fake.create_issue(FLEET, "Ops", "", author="dana")
    await say(world, board, "dana", "/freeze prod incident 42")
    [frozen] = freeze_issues(world)
    world.fake.close_issue(FLEET, frozen.number, by="carol")
    world.fake.edit_issue(FLEET, frozen.number, by="carol", state="open")
    await world.settle()
    assert frozen.state == "open", [c.body for c in frozen.comments]
    assert window(world, number) == "failure"


async def test_s3_a_lifted_freeze_reopened_by_hand_is_closed_again(world: Harness) -> None:
    """S3 (the other way): a freeze lifted by `/unfreeze` does not come back by reopening its
    issue, nor by reopening and closing it in quick succession."""
    await with_commanders(world)
    number = await approved_prod_pr(world)
    board = world.fake.create_issue(FLEET, "Ops", "", author="dana")
    await say(world, board, "dana", "/freeze prod incident 42")
    [frozen] = freeze_issues(world)
    await say(world, board, "erin", "/unfreeze prod")
    world.fake.edit_issue(FLEET, frozen.number, by="carol", state="open")
    await world.settle()
    assert frozen.state == "closed" and window(world, number) == "success"
    world.fake.edit_issue(FLEET, frozen.number, by="carol", state="open")
    world.fake.close_issue(FLEET, frozen.number, by="carol")
    await world.settle()
    assert frozen.state == "closed" and window(world, number) == "success"


# --- S4: the bump's knowledge of its own change and a branch someone made first -------------


async def test_s4_a_bump_branch_made_first_by_a_person_is_judged_by_its_real_change(
    world: Harness,
) -> None:
    """S4: a writer knows the tag CI is about to publish and pushes the bump's branch first
    (its name is deterministic), holding a prod change of as many files as the bump. The bot
    finds the branch there ("a redelivery: reuse it"), opens its PR from it and must not
    take its own intended change (one dev file) for the PR's: the PR changes prod."""
    branch = bump_branch(samples.PAYMENT_IMAGE, "v2.2.0")
    world.fake.create_branch(FLEET, branch, by="alice")
    evil = f"{samples.PAYMENT_IMAGE}:v9.9.9-untested"
    world.fake.commit(
        FLEET, branch, {path(PROD): with_image(world, PROD, evil)}, "bump", author="alice"
    )
    before = world.file(path(PROD))
    world.fake.dispatch(
        FLEET, "image-published", {"image": samples.PAYMENT_IMAGE, "tag": "v2.2.0"}, by="ci-bot"
    )
    await world.settle()
    [pr] = [p for p in world.pulls() if p.head_ref == branch]
    assert not pr.merged, "a prod change merged as a dev bump"
    assert world.file(path(PROD)) == before
    assert verdict(world, pr.number, APPROVALS) != "success"


# --- S5: break-glass overrides and a later emergency freeze ---------------------------------


async def test_s5_an_override_given_before_a_freeze_does_not_carry_through_it(
    world: Harness,
) -> None:
    """S5: during incident 41 erin overrides prod's freeze for its fix, and the PR is queued.
    Incident 41 ends; incident 42 begins and dana freezes prod again. The override was a
    decision about freeze 41: it must not let the change merge through freeze 42 (the
    emergency stop "stops everything"), neither the PR nor its group in the queue."""
    await with_commanders(world)
    world.fake.require_merge_queue(
        FLEET, "main", required_checks=[LINEAGE, APPROVALS, WINDOW, "ci"]
    )
    number = await approved_prod_pr(world)
    board = world.fake.create_issue(FLEET, "Ops", "", author="dana")
    await say(world, board, "dana", "/freeze prod incident 41")
    assert window(world, number) == "failure"
    await override(world, number, "erin", "/override window the fix for incident 41")
    assert window(world, number) == "success"
    group = await queued(world, number)
    assert group_checks(world, group)[WINDOW].conclusion == "success"
    await say(world, board, "dana", "/unfreeze prod")
    await asyncio.sleep(1.1)  # GitHub's times have whole seconds: freeze 42 is later
    await say(world, board, "frank", "/freeze prod incident 42")
    assert window(world, number) == "failure", window_text(world, number)
    assert "written before the freeze" in window_text(world, number)
    world.fake.set_status(FLEET, group, "ci", "success", by="ci-bot")
    await world.settle()
    assert not world.fake.pr(FLEET, number)["merged"]
    # A decision about freeze 42 lets it through again.
    await override(world, number, "erin", "/override window also the fix for incident 42")
    assert window(world, number) == "success", window_text(world, number)


async def test_s5_an_override_taken_up_late_does_not_pass_a_freeze_made_after_it(
    world: Harness,
) -> None:
    """S5 with recovery: erin's `/override window` (for incident 41) is written while the
    service is down; by the time it is taken up from GitHub's delivery log, prod is frozen for
    incident 42. The bot acknowledges it (it was a valid request), but it was written before
    freeze 42 began and does not let the change through."""
    await with_commanders(world)
    number = await approved_prod_pr(world)
    board = world.fake.create_issue(FLEET, "Ops", "", author="dana")
    await say(world, board, "dana", "/freeze prod incident 41")
    await after_the_head_was_judged(world, number)
    with bot_down(world):
        world.fake.comment(FLEET, number, "erin", "/override window the fix for incident 41")
        await world.fake.idle()
    await say(world, board, "dana", "/unfreeze prod")
    await asyncio.sleep(1.1)  # GitHub's times have whole seconds: freeze 42 is later
    await say(world, board, "frank", "/freeze prod incident 42")
    assert await recover(world) == 1
    assert any("erin" in body for body in replies(world, number))  # acknowledged
    assert window(world, number) == "failure", window_text(world, number)
    assert "written before the freeze" in window_text(world, number)


# --- S6: delivery recovery and a command retracted before it was read -----------------------


async def test_s6_a_command_edited_away_before_recovery_runs_nothing(world: Harness) -> None:
    """S6: erin writes `/unfreeze prod` while the service is down, sees the incident is not
    over, and strikes it out (GitHub keeps the comment, edited). GitHub's delivery log holds
    the comment as it was created: taking that up must not lift the freeze (an edited comment
    runs nothing, C5), and it costs one read of the comment, for recovered comments only."""
    await with_commanders(world)
    number = await approved_prod_pr(world)
    board = world.fake.create_issue(FLEET, "Ops", "", author="dana")
    await say(world, board, "dana", "/freeze prod incident 42")
    with bot_down(world):
        comment = world.fake.comment(FLEET, board, "erin", "/unfreeze prod")
        await world.fake.idle()
        world.fake.edit_comment(FLEET, comment, "~~/unfreeze prod~~ not yet, sorry", by="erin")
        await world.fake.idle()
    world.fake.reset_counters()
    await recover(world)
    assert len(freeze_issues(world)) == 1, replies(world, board)[-1]
    assert window(world, number) == "failure"
    reads = [r.path for r in world.bot_requests() if "/issues/comments/" in r.path]
    assert reads == [f"/repos/{FLEET}/issues/comments/{comment}"], reads


# --- S7: the bot's merge of a person's dev PR and the Requested-by trailer -------------------


async def test_s7_the_bots_merge_does_not_launder_a_requested_by_a_person_typed(
    world: Harness,
) -> None:
    """S7: A5 believes `Requested-by:` only in commits GitHub attributes to the app. alice
    writes `Requested-by: @dana` and `@bob` into her dev change; the bot merges it with a commit
    GitHub attributes to the app, composed from her message. That commit must not carry her
    trailers as the app's own (they would exclude dana and bob wherever it is read)."""
    message = "dev tweak\n\nRequested-by: @dana\nrequested-by: bob"
    number = open_change(world, "dev-by-hand", {path(DEV): with_image(world, DEV, "x/y:v1")})
    world.fake.commit(FLEET, "dev-by-hand", {f"clusters/{DEV}/notes.txt": b"x\n"}, message, "alice")
    await world.settle()
    assert world.fake.repo(FLEET).prs[number].merged  # dev only: the bot merged it
    merged = main_message(world)
    assert "dev tweak" in merged
    assert markers.trailer_logins(merged) == (), merged
