"""The gate in the merge queue: ``merge_group`` ``checks_requested`` gets the bot's checks on the
group's commit, judged from the pull request the group holds.

The queue merges a commit the pull request's own checks never saw: the pull request merged onto
the group ahead of it (or the branch). The branch's required checks (``promotion/lineage``,
``promotion/approvals``, ``promotion/fleet``) must pass on that commit, so the bot judges it
again: the group's change against its parent, with the pull request's reviews as they are now
and the lineage on the default branch. A pull request that passed keeps passing; one whose
approvals were withdrawn since it was queued fails, and the queue takes it out. What cannot be
judged (a branch name without a pull request, a group changing files its pull request does not,
a pull request whose complete change cannot be read) fails closed; the group's own change is
seen as a pull request's is (links, submodules, unreadable content: ``visibility.see_change``).
A dismissed approval, a request for changes or a team change judges the queued groups again (as
GitHub's queue lists them: its ``gh-readonly-queue/`` branches could be pushed by anyone with
write access). ``destroyed`` needs nothing: the group's checks went with its commit.
"""

from __future__ import annotations

from typing import Any

import gidgethub
from gidgethub import routing, sansio

from bot.fleet.policy import PolicyError
from bot.github import discovery
from bot.github.checkruns import APPROVALS, FLEET, LINEAGE, WINDOW, DesiredCheck, publish
from bot.github.context import Context
from bot.github.facts import NotAFleetRepo, RepoFacts
from bot.handlers.checks import (
    GateOutcome,
    facts_for,
    judge,
    policy_error_checks,
    regate_open_pulls,
)
from bot.handlers.payload import field as pfield
from bot.handlers.visibility import pull_change, see_change
from bot.rules import queue
from bot.texts import queue as texts

router = routing.Router()

ALL_PARTS = ("lineage", "approvals", "fleet", "window")
GATE_CHECKS = (LINEAGE, APPROVALS, FLEET, WINDOW)


@router.register("merge_group", action="checks_requested")
async def on_checks_requested(event: sansio.Event, ctx: Context) -> None:
    facts = facts_for(ctx, event.data)
    if not await discovery.is_fleet_repo(ctx, facts.repo, facts.known_default_branch):
        return
    verdict = await gate_group(ctx, facts, pfield(event.data, "merge_group", dict))
    ctx.log.info("merge group of %s: %s", facts.repo, verdict)


@router.register("merge_group", action="destroyed")
async def on_destroyed(event: sansio.Event, ctx: Context) -> None:
    """Merged, dequeued or invalidated: nothing to undo (a rebuilt group is a new commit with
    its own ``checks_requested``)."""
    group = pfield(event.data, "merge_group", dict)
    ctx.log.debug("merge group %s destroyed (%s)", group.get("head_ref"), event.data.get("reason"))


@router.register("pull_request_review")
async def on_review(event: sansio.Event, ctx: Context) -> None:
    """A dismissed approval, or a request for changes, can turn a group that passed into one
    that must not merge: judge the PR's queued group again."""
    action = event.data.get("action")
    state = pfield(event.data, "review.state", str, "").lower()
    if action != "dismissed" and not (action == "submitted" and state == "changes_requested"):
        return
    pr = pfield(event.data, "pull_request", dict)
    facts = facts_for(ctx, event.data)
    await regate_groups(ctx, facts, pfield(pr, "base.ref", str), pfield(pr, "number", int))


@router.register("membership")
@router.register("team")
async def on_membership(event: sansio.Event, ctx: Context) -> None:
    """Team members changed: drop the cached memberships, then judge the approvals of every
    open PR and every queued group of the org's fleet repos again (in that order, under one
    lock: the groups are judged with the memberships read afresh)."""
    org = pfield(event.data, "organization.login", str, None)
    if org is None:
        return
    ctx.forget_teams(org)
    for repo, branch in (await discovery.fleet_repos(ctx)).items():
        if repo.split("/", 1)[0].lower() != org.lower():
            continue
        async with ctx.lock(repo):
            facts = RepoFacts(ctx, repo, default_branch=branch)
            await regate_open_pulls(ctx, facts, ("approvals",))
            await regate_groups(ctx, facts, branch)


async def regate_groups(
    ctx: Context, facts: RepoFacts, branch: str, number: int | None = None
) -> int:
    """Judge again the groups in ``branch``'s merge queue (of PR ``number`` only, if given),
    as GitHub's queue lists them: one call, then each group as on ``checks_requested``."""
    judged = 0
    try:
        entries = await ctx.gateway.queue_entries(facts.repo, branch)
    except gidgethub.GraphQLException as exc:
        # No GraphQL answer about the queue (GitHub Enterprise Server without merge queues has
        # no ``mergeQueue`` field): there is no queued group to judge that the bot can know of.
        ctx.log.warning("merge queue of %s/%s not listed: %s", facts.repo, branch, exc)
        return 0
    for entry in entries:
        if number is not None and entry.number != number:
            continue
        group = {
            "head_sha": entry.head_sha,
            "head_ref": f"refs/heads/gh-readonly-queue/{branch}/pr-{entry.number}-{entry.base_sha}",
            "base_sha": entry.base_sha,
            "base_ref": f"refs/heads/{branch}",
        }
        ctx.log.info("queued #%s: %s", entry.number, await gate_group(ctx, facts, group))
        judged += 1
    return judged


async def gate_group(ctx: Context, facts: RepoFacts, group: dict[str, Any]) -> str:
    """Publish the gate's checks on a merge group's head commit; returns a word for the log."""
    repo = facts.repo
    head_sha = pfield(group, "head_sha", str)
    base_sha = pfield(group, "base_sha", str)
    ref = queue.parse_group_ref(pfield(group, "head_ref", str), pfield(group, "base_ref", str))
    if ref is None:
        reason = (
            f"Its branch `{group.get('head_ref')}` does not name a pull request the way "
            "GitHub's merge queue names its branches (`gh-readonly-queue/<base>/pr-<n>-<sha>`)."
        )
        await fail_all(ctx, repo, head_sha, texts.unjudged(reason))
        return "unjudged: no pull request in the branch name"
    pr = await ctx.gateway.pull(repo, ref.number)
    if pr.get("state") != "open" or pfield(pr, "base.ref", str) != ref.base:
        reason = f"Pull request #{ref.number} is not open against `{ref.base}`."
        await fail_all(ctx, repo, head_sha, texts.unjudged(reason))
        return f"unjudged: #{ref.number} not open against {ref.base}"
    base_head = await facts.head(ref.base)
    try:
        policy = await facts.policy(base_head)  # the rules in force: the branch's own
    except NotAFleetRepo:
        return "not a fleet repository"
    except PolicyError as exc:
        await publish(ctx, repo, head_sha, policy_error_checks(exc, ALL_PARTS))
        return "policy broken"
    seen = await see_change(ctx, facts, policy, base_sha, head_sha)
    changes = seen.files
    pulled = await pull_change(ctx, facts, pr, base_head)
    if pulled.blind_spots:
        reason = (
            f"The complete change of pull request #{ref.number} cannot be read, so the group's "
            "change cannot be matched against it: "
            + "; ".join(spot.reason for spot in pulled.blind_spots)
            + "."
        )
        await fail_all(ctx, repo, head_sha, texts.unjudged(reason))
        return f"unjudged: the change of #{ref.number} cannot be read"
    stray = queue.unexplained(changes, pulled.files)
    if stray:
        reason = (
            f"It changes files that pull request #{ref.number} does not change (or not in the "
            "same way): another pull request grouped into the same commit, or a push after "
            "the pull request was queued. Those changes carry no approvals of their own."
        )
        await fail_all(ctx, repo, head_sha, texts.unjudged(reason, stray))
        return f"unjudged: {len(stray)} file(s) beyond #{ref.number}"
    outcome = GateOutcome(head_sha, seen.scope, policy=policy, fleet=seen.fleet)
    judged = await judge(ctx, facts, policy, pr, seen, base_sha, base_head, ALL_PARTS, outcome)
    desired = [in_queue(check, ref.number, base_sha) for check in judged]
    await publish(ctx, repo, head_sha, desired)
    return ", ".join(f"{c.name} {c.conclusion}" for c in desired)


def in_queue(check: DesiredCheck, number: int, parent_sha: str) -> DesiredCheck:
    """A verdict as it stands on a group: nothing more arrives for that commit, so a verdict
    still waiting (approvals missing) is a failure there."""
    final = check.conclusion is None
    output = texts.in_group(check.output, number, parent_sha, final=final)
    return DesiredCheck(check.name, "failure" if final else check.conclusion, output)


async def fail_all(ctx: Context, repo: str, head_sha: str, output: Any) -> None:
    await publish(ctx, repo, head_sha, [DesiredCheck(n, "failure", output) for n in GATE_CHECKS])
