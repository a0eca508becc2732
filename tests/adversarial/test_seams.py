"""Where the pieces meet: attacks on the combinations of the gate's parts (section S of
docs/threat-model.md).

The fail-closed gate, approvals, the change calendar, merge queues, application-commit
provenance, the archive and disk caches and delivery recovery were each attacked on their own.
These tests attack their seams, as an ordinary colleague would (push, comment, review, triage,
another app on the org): a signed webhook in, the in-package fake GitHub out.
"""

from __future__ import annotations

from tests.e2e.calkit import (
    OFFICE_HOURS,
    WINDOW,
    install_clock,
    policy,
    set_policy,
    tick,
    utc,
    window,
)
from tests.e2e.gatekit import verdict
from tests.e2e.test_calendar_commands import IC, WITH_TEAM, say, with_commanders
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
