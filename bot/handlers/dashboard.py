"""The "Promotion dashboard" issue, kept current; ``/status [tenant]`` replies with its matrix.

Refreshes are debounced: pushes to the default branch and PR events ask for one, and many asks
within ``DASHBOARD_DEBOUNCE`` seconds make one refresh. The issue is found by its marker (never
by title alone, which anyone can copy), created once, and edited only when its text changes.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any

from gidgethub import routing, sansio

from bot.fleet.layout import Fleet, is_safe_name
from bot.fleet.policy import Policy, PolicyError
from bot.github import discovery
from bot.github.checkruns import APPROVALS, LINEAGE, WINDOW
from bot.github.context import Context
from bot.github.facts import NotAFleetRepo, RepoFacts
from bot.handlers import window
from bot.handlers.payload import field as pfield
from bot.rules import dashboard as board
from bot.rules.calendar import judge_environment
from bot.texts import calendar as caltext
from bot.texts import dashboard as dashtext
from bot.texts import markers

#: The gate's checks the dashboard shows for each open promotion.
GATE = (LINEAGE, APPROVALS, WINDOW)

router = routing.Router()
log = logging.getLogger("bot.dashboard")

PROMOTION_PREFIX = "fleet-bot/promote/"


@router.register("push")
async def on_push(event: sansio.Event, ctx: Context) -> None:
    branch = pfield(event.data, "repository.default_branch", str, None)
    if branch is None or event.data.get("ref") != f"refs/heads/{branch}":
        return
    request_refresh(ctx, pfield(event.data, "repository.full_name", str), branch)


@router.register("pull_request")
@router.register("pull_request_review")
async def on_pull_activity(event: sansio.Event, ctx: Context) -> None:
    """Only promotion PRs appear on the dashboard: other PRs' events change nothing there."""
    ref = pfield(event.data, "pull_request.head.ref", str, "")
    if not ref.startswith(PROMOTION_PREFIX):
        return
    repo = pfield(event.data, "repository.full_name", str)
    branch = pfield(event.data, "repository.default_branch", str, None)
    request_refresh(ctx, repo, branch)


def request_refresh(
    ctx: Context, repo: str, branch: str | None, *, delay: float | None = None
) -> None:
    """Ask for a refresh of ``repo``'s dashboard soon (coalesced with other asks)."""
    services = ctx.services
    installation = ctx.installation_id

    async def job() -> None:
        job_ctx = Context.background(services, installation, "dashboard", repo)
        async with job_ctx.lock(repo):
            await refresh(job_ctx, RepoFacts(job_ctx, repo, default_branch=branch))

    wait = ctx.settings.dashboard_debounce if delay is None else delay
    services.defer(f"dashboard:{repo}", wait, job)


#: When no archive can be had (see RepoFacts.images), input files a refresh may read blob by
#: blob, and per hour for the installation: a fifth of GitHub's hourly rate limit (5,000) at
#: most, so the dashboard of a large fleet then fills in over time.
READ_BUDGET = 500
READS_PER_HOUR = 1000


def _allowance(ctx: Context, wanted: int) -> int:
    """How many blob-by-blob reads the dashboard may make now (a token bucket per
    installation)."""
    key = ("dashboard-budget", ctx.installation_id)
    memo = ctx.services.caches.derived
    now = time.monotonic()
    tokens, then = memo.get(key, (float(READS_PER_HOUR), now))
    tokens = min(float(READS_PER_HOUR), tokens + (now - then) * READS_PER_HOUR / 3600.0)
    granted = int(min(tokens, wanted, READ_BUDGET))
    memo[key] = (tokens - granted, now)
    return granted


async def gather(
    ctx: Context, facts: RepoFacts, tenant: str | None = None
) -> tuple[Policy, Fleet, list[board.Row], int] | None:
    """Policy, fleet, the matrix on the default branch (for one tenant, or all) and how many
    inputs are not read yet; None when not a fleet repo."""
    if not await discovery.is_fleet_repo(ctx, facts.repo, facts.known_default_branch):
        return None
    head = await facts.head()
    try:
        policy = await facts.policy(head)
    except (NotAFleetRepo, PolicyError):
        return None
    fleet = await facts.fleet(head, policy)
    paths = [p for (_c, t), p in sorted(fleet.inputs.items()) if tenant is None or t == tenant]
    images, unread = await facts.images(head, paths, budget=lambda n: _allowance(ctx, n))
    if unread:
        # read the next share when the budget has refilled a little
        later = max(ctx.settings.dashboard_debounce, 3600.0 * READ_BUDGET / READS_PER_HOUR / 4)
        request_refresh(ctx, facts.repo, facts.known_default_branch, delay=later)
    return policy, fleet, board.matrix(fleet, policy, images), unread


async def refresh(ctx: Context, facts: RepoFacts) -> int | None:
    """Create or update the dashboard issue; its number (None when not a fleet repo)."""
    gathered = await gather(ctx, facts)
    if gathered is None:
        return None
    policy, _fleet, rows, unread = gathered
    pulls = await ctx.gateway.open_pulls(facts.repo)
    promotions = [
        await _promotion(ctx, facts.repo, pr)
        for pr in pulls
        if str((pr.get("head") or {}).get("ref", "")).startswith(PROMOTION_PREFIX)
    ]
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    calendar = await calendar_section(ctx, facts, policy)
    body = dashtext.render_dashboard(
        rows, policy, promotions, updated=stamp, unread=unread, calendar=calendar
    )
    issue = await find_issue(ctx, facts)
    if issue is None:
        created = await ctx.gateway.client.post(
            f"/repos/{facts.repo}/issues", data={"title": board.TITLE, "body": body}
        )
        number = int(created["number"])
        ctx.log.info("%s: created the promotion dashboard #%s", facts.repo, number)
    else:
        number = int(issue["number"])
        if _without_stamp(str(issue.get("body") or "")) != _without_stamp(body):
            await ctx.gateway.client.patch(
                f"/repos/{facts.repo}/issues/{number}", data={"body": body}
            )
    ctx.services.caches.derived[("dashboard", facts.repo)] = number
    return number


def _without_stamp(body: str) -> str:
    """The body without its "Updated" line, so a refresh that changes nothing writes nothing."""
    return "\n".join(line for line in body.splitlines() if not line.startswith("_Updated "))


async def calendar_section(ctx: Context, facts: RepoFacts, policy: Policy) -> list[str]:
    """The deploy calendar of every environment now (emergency freezes come from the same
    listing of the bot's issues that finds the dashboard: no extra call); the dashboard is
    refreshed again when the calendar next changes."""
    emergencies = await window.emergency_freezes(ctx, facts)
    now = ctx.services.now()
    verdicts = [judge_environment(env, emergencies, now) for env in policy.environments]
    await window.schedule(
        ctx, facts, min((v.next_change for v in verdicts if v.next_change), default=None)
    )
    return caltext.render_calendar_section(policy, verdicts, now=now)


async def find_issue(ctx: Context, facts: RepoFacts) -> dict[str, Any] | None:
    issues = await window.bot_issues(ctx, facts)
    for issue in issues:
        if "pull_request" in issue:
            continue
        if markers.read_marker(issue.get("body")).get("kind") == "dashboard":
            found: dict[str, Any] = issue
            return found
    return None


async def _promotion(ctx: Context, repo: str, pr: dict[str, Any]) -> board.OpenPromotion:
    head = str((pr.get("head") or {}).get("sha", ""))
    states: dict[str, str] = {}
    memo = ctx.services.caches.derived
    for name in GATE:
        hit = memo.get(("check", repo, head, name))
        if hit is not None:
            status, conclusion = hit[1][0], hit[1][1]
            states[name] = str(conclusion) if status == "completed" else "pending"
    if len(states) < len(GATE):
        identity = await ctx.identity()
        runs = await ctx.gateway.check_runs_for(repo, head, app_id=identity.id)
        for run in sorted(runs, key=lambda r: int(r.get("id", 0))):
            name = str(run.get("name"))
            if name in GATE:
                done = run.get("status") == "completed"
                states[name] = str(run.get("conclusion")) if done else "pending"
    return board.OpenPromotion(
        number=int(pr["number"]),
        title=str(pr.get("title") or ""),
        url=str(pr.get("html_url") or ""),
        lineage=states.get(LINEAGE, "missing"),
        approvals=states.get(APPROVALS, "missing"),
        window=states.get(WINDOW, "missing"),
    )


async def on_status_command(
    ctx: Context, facts: RepoFacts, number: int, login: str, argument: str | None
) -> None:
    """Reply to ``/status [tenant]`` with the matrix (for one tenant, or all)."""
    gathered = await gather(ctx, facts, argument)
    if gathered is None:
        return
    policy, fleet, rows, _unread = gathered
    if argument is not None:
        known = fleet.tenants()
        if not is_safe_name(argument) or argument not in known:
            shown = argument.replace("`", "'")[:80]
            await ctx.gateway.comment(
                facts.repo,
                number,
                f"@{login} There is no tenant `{shown}`. Tenants: "
                + ", ".join(f"`{t}`" for t in known)
                + ".",
            )
            return
    text = dashtext.render_status(rows, policy, argument)
    await ctx.gateway.comment(facts.repo, number, f"@{login}\n\n{text}")
