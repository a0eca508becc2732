"""Review requests that can finish the job (issue 22): on a gated PR, ask the teams whose
approval slots are still empty, and after a push the people whose approvals it made stale.

Called by the gate (``checks.on_pull_request``) when a PR is opened, reopened, marked ready
or pushed to, with the approval facts the gate has just gathered: no extra read. GitHub lists
who is requested already in the PR itself, so a repeated event asks nobody twice; the one
write happens only when someone is to be added.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bot.github.context import Context
from bot.handlers.payload import field as pfield
from bot.rules.approvals import ApprovalFacts, ApprovalVerdict
from bot.rules.reviewers import ReviewRequest, reviewers_to_request

__all__ = ["ACTIONS", "ask_reviewers"]

#: The pull_request actions after which reviewers are asked for.
ACTIONS = frozenset({"opened", "reopened", "ready_for_review", "synchronize"})


async def ask_reviewers(
    ctx: Context,
    repo: str,
    pr: Mapping[str, Any],
    verdicts: Sequence[ApprovalVerdict],
    facts: ApprovalFacts | None,
) -> ReviewRequest:
    """Request reviews from whoever can fill the empty slots and is not requested yet."""
    if facts is None or not verdicts or pr.get("draft") or pr.get("state", "open") != "open":
        return ReviewRequest()
    if facts.head_sha != pfield(pr, "head.sha", str):
        return ReviewRequest()  # judged another head meanwhile: the next event asks
    users = [str(u.get("login")) for u in pr.get("requested_reviewers") or [] if u.get("login")]
    teams = [str(t.get("slug")) for t in pr.get("requested_teams") or [] if t.get("slug")]
    request = reviewers_to_request(verdicts, facts, requested_users=users, requested_teams=teams)
    if request.empty:
        return request
    number = pfield(pr, "number", int)
    await ctx.gateway.request_reviewers(
        repo, number, users=list(request.users), teams=list(request.teams)
    )
    ctx.log.info(
        "%s#%s: asked %s for a review",
        repo,
        number,
        ", ".join([*(f"@{u}" for u in request.users), *(f"team {t}" for t in request.teams)]),
    )
    return request
