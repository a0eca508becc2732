"""``promotion/window`` and break-glass overrides: the calendar's part of the gate.

The facts come from GitHub (the policy on the base branch, the open freeze issues the bot itself
opened, the pull request's comments), the verdicts from the pure core (``bot.rules.calendar``,
``bot.rules.overrides``), the words from ``bot.texts.calendar``. Judging also tells the timer
when to look again: the next instant a window opens or closes or a freeze starts or ends.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from bot.fleet.policy import Policy
from bot.github.checkruns import LINEAGE, WINDOW, DesiredCheck
from bot.github.context import Context
from bot.github.facts import RepoFacts
from bot.handlers.payload import field as pfield
from bot.rules.calendar import EmergencyFreeze, evaluate_calendar
from bot.rules.gate import Scope
from bot.rules.overrides import OverrideVerdict, PostedComment, acknowledged, evaluate_overrides
from bot.texts import calendar as caltext
from bot.texts import markers

__all__ = [
    "CHECK_NAMES",
    "bot_issues",
    "eligible",
    "emergency_freezes",
    "freeze_record",
    "judged_environments",
    "posted_comments",
    "pull_comments",
    "remember_freeze",
    "schedule",
    "window_check",
    "with_overrides",
]

#: ``/override <check>`` -> the check run it turns green.
CHECK_NAMES = {"window": WINDOW, "lineage": LINEAGE}


def github_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


# --- facts -------------------------------------------------------------------------------------


async def bot_issues(ctx: Context, facts: RepoFacts) -> list[dict[str, Any]]:
    """Open issues the bot's own account opened (the dashboard, the freezes), once a delivery.

    Only the author is trusted, never a title or a marker: anyone can open an issue that
    looks like a freeze, and only the bot's account can open one that is.
    """
    key = ("bot-issues",)
    if key not in facts.memo:
        login = (await ctx.identity()).bot_login
        issues = await ctx.gateway.issues_by(facts.repo, login)
        facts.memo[key] = [
            issue
            for issue in issues
            if "pull_request" not in issue
            and str((issue.get("user") or {}).get("login") or "").lower() == login.lower()
            and (issue.get("user") or {}).get("type", "Bot") == "Bot"
        ]
    found: list[dict[str, Any]] = facts.memo[key]
    return found


def is_freeze_issue(issue: dict[str, Any]) -> bool:
    title = str(issue.get("title") or "")
    kind = markers.read_marker(issue.get("body")).get("kind")
    return kind == caltext.FREEZE_KIND or title.startswith(caltext.FREEZE_TITLE)


async def emergency_freezes(ctx: Context, facts: RepoFacts) -> tuple[EmergencyFreeze, ...]:
    """Every ``/freeze`` in force in the repository."""
    return tuple(
        caltext.read_freeze_issue(
            number=int(issue["number"]),
            title=str(issue.get("title") or ""),
            body=issue.get("body"),
            url=str(issue.get("html_url") or ""),
            since=github_time(issue.get("created_at")),
        )
        for issue in await bot_issues(ctx, facts)
        if is_freeze_issue(issue)
    )


def _record_key(repo: str, number: int) -> str:
    return f"freeze:{repo}#{number}"


async def remember_freeze(ctx: Context, repo: str, number: int, title: str, body: str) -> None:
    """Keep the freeze issue's text as the bot wrote it (who froze, why): an edit by hand is
    undone to this, never to what the edit event says was there before (R8)."""
    record = json.dumps({"title": title, "body": body})
    try:
        await ctx.services.notes.set_meta(_record_key(repo, number), record)
    except Exception as exc:  # the store is down: edits are undone from their `from` then
        ctx.log.warning("freeze issue #%d of %s not recorded: %s", number, repo, exc)


async def freeze_record(ctx: Context, repo: str, number: int) -> tuple[str, str] | None:
    """The title and body the bot wrote for freeze issue ``number`` (None: no record)."""
    try:
        raw = await ctx.services.notes.get_meta(_record_key(repo, number))
    except Exception as exc:
        ctx.log.warning("freeze issue #%d of %s: record not read: %s", number, repo, exc)
        return None
    if raw is None:
        return None
    value = json.loads(raw)
    return str(value["title"]), str(value["body"])


def forget_issues(facts: RepoFacts) -> None:
    facts.memo.pop(("bot-issues",), None)


async def pull_comments(ctx: Context, facts: RepoFacts, number: int) -> list[dict[str, Any]]:
    key = ("comments", number)
    if key not in facts.memo:
        facts.memo[key] = await ctx.gateway.comments(facts.repo, number)
    found: list[dict[str, Any]] = facts.memo[key]
    return found


def forget_comments(facts: RepoFacts, number: int) -> None:
    facts.memo.pop(("comments", number), None)


def posted_comments(raw: Iterable[dict[str, Any]], bot_login: str) -> list[PostedComment]:
    """GitHub's comments as the override rule reads them (author and times are GitHub's)."""
    out: list[PostedComment] = []
    for comment in raw:
        user = comment.get("user") or {}
        created = github_time(comment.get("created_at"))
        if created is None or not isinstance(comment.get("id"), int):
            continue
        login = str(user.get("login") or "")
        by_bot = login.lower() == bot_login.lower() and user.get("type", "Bot") == "Bot"
        body = str(comment.get("body") or "")
        out.append(
            PostedComment(
                id=int(comment["id"]),
                author=login,
                by_bot=by_bot,
                body=body,
                created_at=created,
                edited=comment.get("updated_at") != comment.get("created_at"),
                url=str(comment.get("html_url") or ""),
                marker=markers.read_marker(body) if by_bot else {},
            )
        )
    return out


async def eligible(
    ctx: Context, facts: RepoFacts, policy: Policy, logins: Iterable[str]
) -> frozenset[str]:
    """Of ``logins``, who may freeze, unfreeze and override (lower-case): the ``overrides``
    team's members, or without a team the people with admin rights on the repository."""
    wanted = {login.lower() for login in logins}
    team = policy.overrides.team
    if team is not None:
        members = await ctx.team_members(facts.owner, team) or frozenset()
        return frozenset(wanted & members)
    admins = set()
    for login in sorted(wanted):
        if await ctx.gateway.permission(facts.repo, login) == "admin":
            admins.add(login)
    return frozenset(admins)


# --- the check ---------------------------------------------------------------------------------


def judged_environments(scope: Scope, policy: Policy) -> tuple[str, ...]:
    """The environments whose calendar applies: those the PR changes and those whose gates it
    takes on; a change to the policy, to clusters no environment claims, to gated files outside
    ``clusters/``, or one the bot cannot see whole takes them all (fail closed)."""
    if scope.every_gate:
        return tuple(env.name for env in policy.environments)
    touched = {*scope.environments, *scope.gated}
    return tuple(env.name for env in policy.environments if env.name in touched)


async def schedule(ctx: Context, facts: RepoFacts, at: datetime | None) -> None:
    """Judge this repository's pull requests again at ``at``, by the service's own clock."""
    if at is not None:
        await ctx.services.wakeups.wake(
            ctx.installation_id, facts.repo, at, facts.known_default_branch
        )


async def window_check(
    ctx: Context, facts: RepoFacts, policy: Policy, scope: Scope, pr: dict[str, Any]
) -> DesiredCheck:
    """``promotion/window``: success when every environment the PR touches is open now."""
    names = judged_environments(scope, policy)
    # Freezes are read only when an environment is touched: any of them may be frozen.
    emergencies = await emergency_freezes(ctx, facts) if names else ()
    verdict = evaluate_calendar(policy, names, emergencies, ctx.services.now())
    await schedule(ctx, facts, verdict.next_change)
    output = caltext.render_window(
        verdict, overrides=policy.overrides, org=facts.owner, repo=facts.repo
    )
    check = DesiredCheck(WINDOW, "success" if verdict.open else "failure", output)
    if verdict.open:
        return check
    # An override counts only if written after every emergency freeze holding the change
    # began (an unknown start: none counts).
    starts = [e.since or verdict.at for v in verdict.closed for e in v.emergencies]
    not_before = max(starts, default=None)
    return await with_overrides(ctx, facts, policy, pr, "window", check, not_before)


async def with_overrides(
    ctx: Context,
    facts: RepoFacts,
    policy: Policy,
    pr: dict[str, Any],
    check: str,
    desired: DesiredCheck,
    not_before: datetime | None = None,
) -> DesiredCheck:
    """A failing check, unless enough people overrode it on this head (then success), at or
    after ``not_before``."""
    if desired.conclusion == "success":
        return desired
    verdict = await override_verdict(ctx, facts, policy, pr, check, not_before)
    if verdict is None:
        return desired
    if verdict.granted:
        return DesiredCheck(desired.name, "success", caltext.overridden(desired.output, verdict))
    output = caltext.pending_overrides(desired.output, verdict)
    return DesiredCheck(desired.name, desired.conclusion, output, desired.details_url)


async def override_verdict(
    ctx: Context,
    facts: RepoFacts,
    policy: Policy,
    pr: dict[str, Any],
    check: str,
    not_before: datetime | None = None,
) -> OverrideVerdict | None:
    """The overrides of ``check`` on the PR's head; None when nobody asked for one."""
    number = pfield(pr, "number", int)
    login = (await ctx.identity()).bot_login
    comments = posted_comments(await pull_comments(ctx, facts, number), login)
    asked = [o for o in acknowledged(comments) if o.check == check]
    if not asked:
        return None
    allowed = await eligible(ctx, facts, policy, (o.login for o in asked))
    head = pfield(pr, "head.sha", str)
    return evaluate_overrides(check, head, asked, allowed, policy.overrides.count, not_before)
