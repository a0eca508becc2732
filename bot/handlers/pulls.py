"""A pull request changed, or its base moved: judge it at the gate, then consider merging it.

The gate (``checks``) publishes the verdicts; automatic merge (``automerge``) acts on them.
This module is where the two meet for the events that need both, so that neither imports the
other's events.
"""

from __future__ import annotations

from gidgethub import routing, sansio

from bot.fleet.policy import POLICY_PATH
from bot.github import discovery
from bot.github.context import Context
from bot.handlers import automerge, reviewers
from bot.handlers.automerge import DO_NOT_MERGE
from bot.handlers.checks import PR_ACTIONS, facts_for, gate_pull
from bot.handlers.payload import field as pfield

router = routing.Router()


@router.register("pull_request")
async def on_pull_request(event: sansio.Event, ctx: Context) -> None:
    action = event.data.get("action")
    if action == "unlabeled":
        label = (event.data.get("label") or {}).get("name")
        if str(label).lower() != DO_NOT_MERGE:
            return  # only lifting do-not-merge can change what happens next
    elif action not in PR_ACTIONS:
        return
    if action == "edited" and "base" not in (event.data.get("changes") or {}):
        return  # a title or body edit changes no verdict
    pr = pfield(event.data, "pull_request", dict)
    facts = facts_for(ctx, event.data)
    if automerge.known_merged(ctx, facts.repo, pfield(pr, "number", int)):
        return  # we merged it ourselves a moment ago; this event is stale
    outcome = await gate_pull(ctx, facts, pr)
    if outcome is not None:
        if action in reviewers.ACTIONS:
            verdicts, judged = outcome.approval_verdicts, outcome.approval_facts
            await reviewers.ask_reviewers(ctx, facts.repo, pr, verdicts, judged)
        await automerge.consider(ctx, facts, pr, outcome)


@router.register("push")
async def on_push(event: sansio.Event, ctx: Context) -> None:
    """A push to the default branch can change any open PR's lineage, base or policy."""
    data = event.data
    facts = facts_for(ctx, data)
    branch = await facts.default_branch()
    if data.get("ref") != f"refs/heads/{branch}" or data.get("deleted"):
        return
    touched = {
        path
        for commit in data.get("commits") or []
        for key in ("added", "modified", "removed")
        for path in commit.get(key) or []
    }
    if POLICY_PATH in touched:
        discovery.forget(ctx, facts.repo)
    elif not await discovery.is_fleet_repo(ctx, facts.repo, branch):
        return
    after = data.get("after")
    if isinstance(after, str):
        facts.seed_head(branch, after)
    for pr in await ctx.gateway.open_pulls(facts.repo):
        outcome = await gate_pull(ctx, facts, pr)
        if outcome is not None:
            await automerge.consider(ctx, facts, pr, outcome)
