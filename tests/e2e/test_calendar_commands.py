"""The emergency stop and break-glass end to end: ``/freeze``, ``/unfreeze`` and ``/override`` in
comments, who may use them, freeze issues kept as the bot left them, overrides per head, and the
audit's exceptions."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from bot.fake import FakeGitHub
from bot.fake.state import iso
from bot.handlers.resync import resync
from bot.service.app import STATE
from tests.audit.kit import audit, by_label
from tests.e2e.calkit import (
    HOLIDAY_FREEZE,
    WINDOW,
    install_clock,
    policy,
    prod_pr,
    set_policy,
    utc,
    window,
    window_text,
)
from tests.e2e.gatekit import PROD, checks, land, path, summary, verdict, with_image
from tests.harness import FLEET, Harness, start_bot

LINEAGE = "promotion/lineage"
IC = "incident-commanders"
WITH_TEAM = f"overrides:\n  team: {IC}\n  count: 1\n"


async def with_commanders(world: Harness, extra: str = WITH_TEAM, prod: str = "") -> None:
    world.fake.create_team("acme", IC, members=["dana", "frank", "erin"])
    await set_policy(world, policy(prod=prod, extra=extra))


def issues(world: Harness) -> list:  # type: ignore[type-arg]
    return list(world.fake.repo(FLEET).issues.values())


def freeze_issues(world: Harness, state: str | None = "open") -> list:  # type: ignore[type-arg]
    return [
        i
        for i in issues(world)
        if i.title.startswith("Deploy freeze: ") and (state is None or i.state == state)
    ]


def replies(world: Harness, number: int) -> list[str]:
    return [c.body for c in world.fake.repo(FLEET).issues[number].comments]


async def say(world: Harness, number: int, who: str, body: str) -> int:
    comment = world.fake.comment(FLEET, number, who, body)
    await world.settle()
    return comment


async def override(world: Harness, number: int, who: str, body: str) -> int:
    """``who`` writes ``body`` once the bot has judged the PR's head, as a person would: in a
    later second than its first check run there (GitHub's times have whole seconds, and a
    comment of that very second may be older than the push: W7, R9)."""
    await after_the_head_was_judged(world, number)
    return await say(world, number, who, body)


async def after_the_head_was_judged(world: Harness, number: int) -> None:
    repo = world.fake.repo(FLEET)
    head = repo.prs[number].head_sha
    started = [r.started_at for r in repo.check_runs.values() if r.head_sha == head]
    first = min((t for t in started if t is not None), default=None)
    assert first is not None, "the bot has not judged the head"
    wait = int(first) + 1 - time.time()
    if wait > 0:
        await asyncio.sleep(wait)


def dashboard(world: Harness) -> str:
    (board,) = [i for i in issues(world) if i.title == "Promotion dashboard"]
    return board.body or ""


# --- /freeze and /unfreeze ------------------------------------------------------------------


async def test_freeze_closes_every_open_pr_at_once_and_unfreeze_opens_it(world: Harness) -> None:
    await with_commanders(world)
    number = await prod_pr(world)
    assert window(world, number) == "success"
    await say(world, number, "dana", "We are in an incident.\n\n/freeze prod incident 42 db down")
    (frozen,) = freeze_issues(world)
    assert frozen.user.login == "fleet-bot[bot]" and frozen.title == "Deploy freeze: prod"
    assert "incident 42 db down" in (frozen.body or "") and "@dana" in (frozen.body or "")
    assert window(world, number) == "failure"
    text = window_text(world, number)
    assert "prod closed: emergency freeze by @dana" in text
    assert "incident 42 db down" in text and f"#{frozen.number}" in text
    assert "`/unfreeze prod`" in text and f"members of @acme/{IC}" in text
    assert any("prod is frozen" in r for r in replies(world, number))
    assert "🚨 emergency freeze" in dashboard(world)
    # A new PR into prod is frozen as well; a dev-only change is not.
    second = await prod_pr(world, "v2.0.0", branch="another")
    assert window(world, second) == "failure"
    await say(world, number, "frank", "/unfreeze prod")
    assert freeze_issues(world) == [] and len(freeze_issues(world, "closed")) == 1
    assert window(world, number) == "success" and window(world, second) == "success"
    assert "emergency freeze" not in dashboard(world)


async def test_freeze_and_unfreeze_are_refused_to_others_with_who_may(world: Harness) -> None:
    await with_commanders(world)
    number = await prod_pr(world)
    await say(world, number, "alice", "/freeze prod because I can")
    assert freeze_issues(world) == []
    assert window(world, number) == "success"
    (answer,) = [r for r in replies(world, number) if r.startswith("@alice")]
    assert f"Only members of @acme/{IC} can freeze an environment" in answer
    await say(world, number, "dana", "/freeze prod incident")
    await say(world, number, "bob", "/unfreeze prod")
    assert len(freeze_issues(world)) == 1 and window(world, number) == "failure"
    assert any(r.startswith("@bob Only members of") for r in replies(world, number))


async def test_without_a_team_only_admins_may_freeze(world: Harness) -> None:
    await set_policy(world, policy())
    world.fake.set_collaborator(FLEET, "erin", "admin")
    number = await prod_pr(world)
    await say(world, number, "alice", "/freeze prod nope")
    assert freeze_issues(world) == []
    assert any("Only people with admin rights on acme/fleet" in r for r in replies(world, number))
    await say(world, number, "erin", "/freeze prod release of the century")
    assert len(freeze_issues(world)) == 1 and window(world, number) == "failure"


async def test_freeze_needs_a_known_environment_and_a_reason(world: Harness) -> None:
    await with_commanders(world)
    number = await prod_pr(world)
    await say(world, number, "dana", "/freeze prdo incident")
    await say(world, number, "dana", "/freeze prod")
    texts = replies(world, number)
    assert any("There is no environment `prdo`" in t for t in texts)
    assert any("needs an environment and a reason" in t for t in texts)
    assert freeze_issues(world) == []


async def test_a_freeze_lives_in_github_another_replica_sees_it(
    world: Harness, fake: FakeGitHub, tmp_path: Path
) -> None:
    await with_commanders(world)
    number = await prod_pr(world)
    await say(world, number, "dana", "/freeze prod incident 7")
    app = next(iter(fake.world.state.apps.values()))
    _, runner2, _url2 = await start_bot(fake, app.private_key_pem, app.id, tmp_path / "other")
    try:
        services = runner2.app[STATE].services
        assert services is not None
        # A fresh process (nothing in memory) judges every open PR: prod stays frozen.
        assert await resync(services) == {FLEET: 1}
        await world.settle()
        assert window(world, number) == "failure"
        assert "incident 7" in window_text(world, number)
    finally:
        await runner2.cleanup()


async def test_a_freeze_issue_closed_or_edited_by_hand_is_put_back(world: Harness) -> None:
    await with_commanders(world)
    number = await prod_pr(world)
    await say(world, number, "dana", "/freeze prod incident 42")
    (frozen,) = freeze_issues(world)
    world.fake.close_issue(FLEET, frozen.number, by="alice")
    await world.settle()
    assert frozen.state == "open"
    assert any("does not lift the freeze" in c.body for c in frozen.comments)
    assert window(world, number) == "failure"
    body = frozen.body
    world.fake.edit_issue(
        FLEET, frozen.number, by="alice", title="Deploy freeze: dev", body="nothing to see"
    )
    await world.settle()
    assert frozen.title == "Deploy freeze: prod" and frozen.body == body
    assert window(world, number) == "failure"


async def test_two_quick_edits_of_a_freeze_issue_are_both_undone(world: Harness) -> None:
    """R8: alice moves the freeze to dev, then edits again before the bot has read the first
    edit: the second edit's `changes.from` is her first edit. The bot puts back what it wrote
    (its own record of the freeze: who, why), not what the edit says was there."""
    await with_commanders(world)
    number = await prod_pr(world)
    await say(world, number, "dana", "/freeze prod incident 42")
    (frozen,) = freeze_issues(world)
    title, body = frozen.title, frozen.body
    app = next(iter(world.fake.world.state.apps.values()))
    app.webhook_url, url = None, app.webhook_url  # both edits happen before the bot reads one
    moved = body.replace("incident 42", "nothing").replace("prod", "dev")
    world.fake.edit_issue(FLEET, frozen.number, by="alice", title="Deploy freeze: dev", body=moved)
    world.fake.edit_issue(FLEET, frozen.number, by="alice", title="Deploy freeze: qa", body="x")
    edits = [d for d in world.fake.deliveries if d.event == "issues" and d.action == "edited"]
    app.webhook_url = url
    for edit in edits[-2:]:  # delivered late, in order
        world.fake.redeliver(edit)
        await world.settle()
    assert (frozen.title, frozen.body) == (title, body)
    assert window(world, number) == "failure"
    assert "prod closed: emergency freeze by @dana" in window_text(world, number)


async def test_a_freeze_issue_that_no_longer_says_its_environment_holds_every_one(
    world: Harness,
) -> None:
    await with_commanders(world)
    number = await prod_pr(world)
    await say(world, number, "dana", "/freeze staging maintenance")
    assert window(world, number) == "success"
    (frozen,) = freeze_issues(world)
    app = next(iter(world.fake.world.state.apps.values()))
    app.webhook_url, url = None, app.webhook_url  # the edit's event is lost
    world.fake.edit_issue(FLEET, frozen.number, by="alice", title="Deploy freeze: nothing")
    app.webhook_url = url
    land(world.fake, {"README.md": b"# touched\n"}, "unrelated push: PRs are judged again")
    await world.settle()
    assert window(world, number) == "failure"
    assert "no longer says which environment" in window_text(world, number)


# --- /override ------------------------------------------------------------------------------


async def frozen_prod_pr(world: Harness, extra: str = WITH_TEAM) -> int:
    await with_commanders(world, extra)
    number = await prod_pr(world)
    await say(world, number, "dana", "/freeze prod incident 42")
    assert window(world, number) == "failure"
    return number


async def test_an_override_reaching_count_turns_the_check_green(world: Harness) -> None:
    number = await frozen_prod_pr(world, f"overrides:\n  team: {IC}\n  count: 2\n")
    await override(world, number, "frank", "/override window hotfix for incident 42")
    assert window(world, number) == "failure"
    assert "1 of 2 needed" in window_text(world, number)
    assert any("(1 of 2; 1 more needed" in r for r in replies(world, number))
    await override(world, number, "frank", "/override window again")  # one person counts once
    assert window(world, number) == "failure"
    await override(world, number, "erin", "/override window agreed")
    assert window(world, number) == "success"
    run = checks(world, number)[WINDOW]
    assert run.output["title"] == "Overridden by @frank (hotfix for incident 42), @erin (agreed)"
    text = window_text(world, number)
    assert "**Overridden by @frank (hotfix for incident 42), @erin (agreed)**" in text
    assert "What was overridden:** prod closed: emergency freeze by @dana" in text
    # Approvals are untouched: the compliance rule still applies.
    assert verdict(world, number, "promotion/approvals") == "pending"


async def test_an_outsiders_override_is_ignored_with_a_reply(world: Harness) -> None:
    number = await frozen_prod_pr(world)
    await override(world, number, "alice", "/override window I know what I am doing")
    assert window(world, number) == "failure"
    assert any(
        r.startswith("@alice Only members of @acme/incident-commanders can override a check")
        and "Your override was ignored" in r
        for r in replies(world, number)
    )


async def test_approvals_are_never_overridable(world: Harness) -> None:
    number = await frozen_prod_pr(world)
    await override(world, number, "dana", "/override approvals we are in a hurry")
    assert any("Approvals are never overridable" in r for r in replies(world, number))
    assert verdict(world, number, "promotion/approvals") == "pending"


async def test_a_push_resets_the_overrides(world: Harness) -> None:
    number = await frozen_prod_pr(world)
    await override(world, number, "dana", "/override window hotfix")
    assert window(world, number) == "success"
    world.fake.commit(
        FLEET,
        "to-prod",
        {path(PROD): with_image(world, PROD, "registry.acme.com/payment:v2.0.1")},
        "another change",
        author="alice",
    )
    await world.settle()
    assert window(world, number) == "failure"
    text = window_text(world, number)
    assert "not counted, was for" in text and "a push since reset the overrides" in text


async def test_an_override_written_in_the_push_s_second_does_not_count_for_the_new_commit(
    world: Harness,
) -> None:
    """W7 at GitHub's resolution (R9): dana writes `/override` for the commit she saw; alice
    pushes within the same second; the bot reads the comment after judging the new commit.
    GitHub's times cannot tell the comment from a later one: the override is refused."""
    number = await frozen_prod_pr(world)
    app = next(iter(world.fake.world.state.apps.values()))
    app.webhook_url, url = None, app.webhook_url  # the comment's event arrives late
    comment_id = world.fake.comment(FLEET, number, "dana", "/override window hotfix")
    (late,) = [d for d in world.fake.deliveries if d.event == "issue_comment"][-1:]
    app.webhook_url = url
    world.fake.commit(
        FLEET,
        "to-prod",
        {path(PROD): with_image(world, PROD, "registry.acme.com/payment:v2.0.1")},
        "another change",
        author="alice",
    )
    await world.settle()
    head = world.fake.repo(FLEET).prs[number].head_sha
    started = [
        r.started_at for r in world.fake.repo(FLEET).check_runs.values() if r.head_sha == head
    ]
    # the bot's first check run on the new commit; the comment came first, in the same second
    second = float(int(min(t for t in started if t is not None)))
    (comment,) = [c for c in world.fake.repo(FLEET).issues[number].comments if c.id == comment_id]
    comment.created_at = comment.updated_at = second
    late.payload["comment"]["created_at"] = late.payload["comment"]["updated_at"] = iso(second)
    world.fake.redeliver(late)
    await world.settle()
    assert window(world, number) == "failure"
    assert any("which I had not judged yet" in r for r in replies(world, number))


async def test_an_edited_acknowledgement_counts_for_nothing(world: Harness) -> None:
    number = await frozen_prod_pr(world)
    await override(world, number, "dana", "/override window hotfix")
    assert window(world, number) == "success"
    (ack,) = [
        c
        for c in world.fake.repo(FLEET).issues[number].comments
        if c.user.login == "fleet-bot[bot]" and "Override of" in c.body
    ]
    world.fake.edit_comment(FLEET, ack.id, ack.body.replace("hotfix", "anything"), by="alice")
    ack.updated_at = ack.created_at + 5  # an edit some seconds later (GitHub counts seconds)
    land(world.fake, {"README.md": b"# touched\n"}, "a push: PRs are judged again")
    await world.settle()
    assert window(world, number) == "failure"


async def test_lineage_can_be_overridden_and_says_what_failed(world: Harness) -> None:
    await with_commanders(world)
    number = await prod_pr(world, "v9.9.9", branch="untested")
    assert verdict(world, number, LINEAGE) == "failure"
    await override(world, number, "dana", "/override lineage emergency patch, tested by hand")
    assert verdict(world, number, LINEAGE) == "success"
    text = summary(world, number, LINEAGE)
    assert "Overridden by @dana (emergency patch, tested by hand)" in text
    assert "v9.9.9" in text  # the failure that was overridden stays readable


async def test_the_audit_lists_every_overridden_merge_under_exceptions(world: Harness) -> None:
    number = await frozen_prod_pr(world)
    await override(world, number, "dana", "/override window hotfix for incident 42")
    assert window(world, number) == "success"
    for who in ("bob", "carol", "erin"):
        world.fake.review(FLEET, number, who, "APPROVE")
    await world.settle()
    world.fake.merge_pr(FLEET, number, by="bob", method="squash", admin=False)
    await world.settle()
    result = await audit(world)
    assert result.code == 0, result.err
    exceptions = result.out.partition("## Changes")[0]
    assert f"#{number}" in exceptions
    assert "promotion/window overridden by @dana at 20" in exceptions
    assert "hotfix for incident 42" in exceptions
    record = by_label((await audit(world, "--format", "json")).json())[f"#{number}"]
    assert record["exception"] is True
    (given,) = record["overrides"]
    assert given["by"] == "dana" and given["check"] == WINDOW
    assert given["reason"] == "hotfix for incident 42"
    assert record["window"] == {"state": "failure", "closed": record["window"]["closed"]}
    assert "emergency freeze" in record["window"]["closed"]


async def test_the_audit_lists_a_merge_while_frozen(world: Harness) -> None:
    number = await frozen_prod_pr(world)
    world.fake.merge_pr(FLEET, number, by="bob", method="squash", admin=True)
    await world.settle()
    result = await audit(world, "--format", "json")
    record = by_label(result.json())[f"#{number}"]
    assert record["exception"] is True
    assert any(
        r.startswith("merged while closed: prod was emergency freeze")
        for r in record["exception_reasons"]
    )
    assert any(r == "promotion/window was failure at merge" for r in record["exception_reasons"])


async def test_a_policy_freeze_and_an_override_on_the_calendar_clock(world: Harness) -> None:
    install_clock(world, utc(2026, 12, 21, 10))
    await with_commanders(world, prod=HOLIDAY_FREEZE)
    number = await prod_pr(world)
    assert window(world, number) == "failure"
    await override(world, number, "dana", "/override window year-end fix")
    assert window(world, number) == "success"


async def test_commands_in_code_quotes_or_html_comments_do_nothing(world: Harness) -> None:
    await with_commanders(world)
    number = await prod_pr(world)
    await say(world, number, "dana", "/freeze prod incident 42")
    hidden = (
        "To lift it later, someone will write:\n\n```\n/unfreeze prod\n```\n\n"
        "> /unfreeze prod\n\n    /unfreeze prod\n\n<!-- /unfreeze prod -->\n"
    )
    await say(world, number, "dana", hidden)
    assert len(freeze_issues(world)) == 1 and window(world, number) == "failure"
    await say(world, number, "dana", "Done.\n/UNFREEZE prod")
    assert freeze_issues(world) == [] and window(world, number) == "success"


async def test_a_deleted_freeze_issue_is_opened_again(world: Harness) -> None:
    await with_commanders(world)
    number = await prod_pr(world)
    await say(world, number, "dana", "/freeze prod incident 42")
    (frozen,) = freeze_issues(world)
    world.fake.set_collaborator(FLEET, "erin", "admin")
    world.fake.delete_issue(FLEET, frozen.number, by="erin")
    await world.settle()
    (again,) = freeze_issues(world)
    assert again.number != frozen.number and again.user.login == "fleet-bot[bot]"
    assert again.title == "Deploy freeze: prod" and again.body == frozen.body
    assert any("was deleted, which does not lift the freeze" in c.body for c in again.comments)
    assert window(world, number) == "failure"


async def bump(world: Harness, tag: str) -> int:
    world.fake.dispatch(
        FLEET, "image-published", {"image": "registry.acme.com/payment", "tag": tag}, by="ci-bot"
    )
    await world.settle()
    (pr,) = [p for p in world.pulls("open") if p.head_ref.startswith("fleet-bot/bump/")]
    return int(pr.number)


async def test_a_frozen_dev_holds_the_automatic_merges_until_unfreeze_or_override(
    world: Harness,
) -> None:
    await with_commanders(world)
    board = world.fake.create_issue(FLEET, "Ops", "where we talk", author="alice")
    await say(world, board, "dana", "/freeze dev image pipeline broken")
    first = await bump(world, "v2.2.0")

    def merged(number: int) -> bool:
        return bool(world.fake.repo(FLEET).prs[number].merged)

    assert not merged(first) and window(world, first) == "failure"
    await say(world, board, "dana", "/unfreeze dev")
    assert merged(first)  # judged again at once, and merged
    await say(world, board, "dana", "/freeze dev again")
    second = await bump(world, "v2.3.0")
    assert not merged(second)
    await override(world, second, "frank", "/override window this one is fine")
    assert merged(second)
