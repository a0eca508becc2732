"""The change calendar in motion: the timer that flips ``promotion/window`` when a window opens or
closes, the emergency stop (``/freeze``, ``/unfreeze``) and break-glass (``/override``).

- **The timer.** Judging a pull request's window tells :class:`~bot.github.context.Wakeups`
  when its answer changes next. A background loop ticks every ``TICK`` seconds on the calendar
  clock (``Services.now``) and re-judges the repositories that are due, through the
  dispatcher's deferred jobs (so shutdown waits for them), with no event from GitHub. Dev pull
  requests waiting for dev's window are merged when it opens.
- **Freezes live in GitHub.** ``/freeze prod <reason>`` opens an issue authored by the bot's own
  account ("Deploy freeze: prod"); while it is open, prod is closed. ``/unfreeze prod`` closes
  it. Only issues the bot authored count, so a look-alike issue does nothing; one the bot
  authored but someone closed, reopened or edited by hand is put back as it was (``issues``
  events), and one whose environment can no longer be read holds every environment.
- **Overrides** are acknowledged by the bot in a reply that names the request and the head, and
  judged by ``bot.rules.overrides``.

Who may freeze, unfreeze and override: the ``overrides`` team of the policy, or the repository's
admins when it names none. Everyone else gets a reply saying who may. Which lines of a comment
are commands is decided by ``bot.rules.commands.extract_commands``, and ``handlers.commands``
dispatches them here (:func:`run_command`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from gidgethub import routing, sansio

from bot.fleet.policy import POLICY_PATH, Policy, PolicyError
from bot.github.context import Context, Services
from bot.github.facts import NotAFleetRepo, RepoFacts
from bot.handlers import automerge, dashboard, mergequeue, window
from bot.handlers.checks import facts_for, gate_pull, scope_for
from bot.handlers.payload import field as pfield
from bot.rules.calendar import freeze_lifted
from bot.rules.overrides import NEVER_OVERRIDABLE, OVERRIDABLE, acknowledged
from bot.texts import calendar as caltext

router = routing.Router()
log = logging.getLogger("bot.calendar")

#: Seconds between two looks at the calendar: a window that opens flips its checks within this.
TICK = 30.0


# --- the timer ---------------------------------------------------------------------------------


async def calendar_loop(services: Services) -> None:
    """Tick for as long as the service runs (a background job of the service).

    One replica ticks at a time, like the other periodic jobs: a timed tick is skipped when
    another replica ticked within ``TICK``; a poked one (the clock moved) always runs. The
    wakes themselves are taken atomically from the store, so each is judged once anyway.
    """
    while True:
        poked = await services.wakeups.sleep(TICK)
        try:
            async with services.locks.solo("calendar", every=0.0 if poked else TICK) as mine:
                if mine:
                    await tick(services)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("calendar tick failed")


async def tick(services: Services, now: datetime | None = None) -> list[str]:
    """Start a re-judgement of every repository whose calendar changed by ``now`` (default:
    the calendar clock); returns those repositories."""
    moment = services.now() if now is None else now
    started = []
    for installation, repo, branch in await services.wakeups.due(moment):
        services.defer(f"calendar:{repo}", 0.0, _rejudge_job(services, installation, repo, branch))
        started.append(repo)
    return started


def _rejudge_job(
    services: Services, installation: int, repo: str, branch: str | None
) -> Callable[[], Awaitable[None]]:
    async def job() -> None:
        try:
            ctx = Context.background(services, installation, "calendar", repo)
            async with ctx.lock(repo):
                facts = RepoFacts(ctx, repo, default_branch=branch)
                count = await rejudge(ctx, facts)
                ctx.log.info("calendar: %s judged again (%d open PRs)", repo, count)
                dashboard.request_refresh(ctx, repo, facts.known_default_branch)
        finally:
            # Taken by this replica until now: its next wake is what judging set anew.
            await services.wakeups.done(installation, repo)

    return job


async def rejudge(ctx: Context, facts: RepoFacts) -> int:
    """Judge the calendar of every open pull request again, and merge the dev ones it frees.

    Only ``promotion/window`` is re-published, except for pull requests the bot would merge:
    those are judged whole first, as before any automatic merge.
    """
    pulls = await ctx.gateway.open_pulls(facts.repo)
    for pr in pulls:
        await rejudge_pull(ctx, facts, pr, ("window",))
    await rejudge_queue(ctx, facts)
    return len(pulls)


async def rejudge_queue(ctx: Context, facts: RepoFacts) -> None:
    """The groups already waiting in the default branch's merge queue were judged before the
    calendar changed: judge them again, or a freeze (or a window closing) would stop the pull
    requests but not the commits the queue is about to merge. One call when nothing waits."""
    await mergequeue.regate_groups(ctx, facts, await facts.default_branch())


async def rejudge_pull(
    ctx: Context, facts: RepoFacts, pr: dict[str, Any], parts: tuple[str, ...]
) -> None:
    """Publish ``parts`` of the gate for one pull request again; one the bot would merge is
    judged whole and merged if it may be now."""
    scope = await scope_for(ctx, facts, pr)
    if scope is None:
        return
    if scope.auto_merge:
        outcome = await gate_pull(ctx, facts, pr)
        if outcome is not None:
            await automerge.consider(ctx, facts, pr, outcome)
    else:
        await gate_pull(ctx, facts, pr, parts=parts)


# --- freeze issues kept as the bot left them ---------------------------------------------------


@router.register("issues")
async def on_issue(event: sansio.Event, ctx: Context) -> None:
    """Someone closed, reopened, edited, deleted or transferred a freeze issue by hand: put it
    back as it was (a deleted or transferred one is opened again, as the bot wrote it).

    A freeze is lifted by ``/unfreeze`` from someone allowed to, not by closing its issue;
    a lifted one comes back only through ``/freeze``; its environment is not edited away.
    Whether it was lifted is the bot's own note on the issue (read once per close or reopen),
    not the event's action: a close and a reopen in quick succession arrive as two events,
    and the second must not undo a freeze nobody lifted.
    """
    data = event.data
    action = data.get("action")
    if action not in ("closed", "reopened", "edited", "deleted", "transferred"):
        return
    issue = pfield(data, "issue", dict)
    sender = data.get("sender") or {}
    identity = await ctx.identity()
    login = identity.bot_login
    if str(sender.get("login") or "").lower() == login.lower():
        return  # our own doing
    author = pfield(issue, "user.login", str, "")
    if author.lower() != login.lower() or "pull_request" in issue:
        return  # not the bot's issue: it means nothing to the calendar
    changes = data.get("changes") or {}
    before_title = ((changes.get("title") or {}).get("from")) if action == "edited" else None
    before_body = ((changes.get("body") or {}).get("from")) if action == "edited" else None
    facts = facts_for(ctx, data)
    number = pfield(issue, "number", int)
    # What the bot wrote (who froze, why): the text to put back. Without a record (a freeze
    # opened before the bot kept them, or a store that was lost), the edit's `from`.
    record = await window.freeze_record(ctx, facts.repo, number)
    was_freeze = (
        record is not None
        or window.is_freeze_issue(issue)
        or window.is_freeze_issue({"title": before_title or "", "body": before_body})
    )
    if not was_freeze:
        return
    who = str(sender.get("login") or "someone")
    if action in ("deleted", "transferred"):
        if issue.get("state") != "open":
            return  # a lifted freeze: nothing holds
        title, body = record or (str(issue.get("title") or ""), str(issue.get("body") or ""))
        again = await ctx.gateway.create_issue(facts.repo, title, body)
        number = int(again["number"])
        await window.remember_freeze(ctx, facts.repo, number, title, body)
        note = (
            f"@{who} The freeze issue #{pfield(issue, 'number', int)} was {action}, which does "
            "not lift the freeze: this issue holds it now. Comment `/unfreeze <environment>` "
            f"instead (only {await _who(ctx, facts)} may)."
        )
    elif action in ("closed", "reopened") and await lifted(ctx, facts, number) == (
        action == "closed"
    ):
        # A lifted freeze closed, or a standing one reopened: the event agrees with the
        # record (the second of a close and a reopen in quick succession, or events read
        # late). The bot writes only toward the record (the "Lifted by" note), never toward
        # the event, so the order the events arrive in cannot lift a freeze.
        await regate_all(ctx, facts)
        return
    elif action == "closed":
        await ctx.gateway.update_issue(facts.repo, number, state="open")
        note = (
            f"@{who} Closing this issue does not lift the freeze; it was reopened. "
            f"Comment `/unfreeze <environment>` instead (only {await _who(ctx, facts)} may)."
        )
    elif action == "reopened":
        await ctx.gateway.update_issue(facts.repo, number, state="closed")
        note = (
            f"@{who} Reopening this issue does not freeze again; it was closed. "
            f"Comment `/freeze <environment> <reason>` instead (only {await _who(ctx, facts)} "
            "may)."
        )
    else:
        restore = _restore(issue, record, before_title, before_body)
        if not restore:
            return
        await ctx.gateway.update_issue(facts.repo, number, **restore)
        note = f"@{who} This freeze issue is kept by the bot; the edit was undone."
    await ctx.gateway.comment(facts.repo, number, note)
    await regate_all(ctx, facts)


def _restore(
    issue: dict[str, Any], record: tuple[str, str] | None, title: Any, body: Any
) -> dict[str, Any]:
    """The fields to write back after a hand edit: those that differ from the bot's record,
    or without one, those the edit changed (to their `from`)."""
    if record is not None:
        wanted = {"title": record[0], "body": record[1]}
        return {k: v for k, v in wanted.items() if (issue.get(k) or "") != v}
    restore: dict[str, Any] = {}
    if isinstance(title, str):
        restore["title"] = title
    if isinstance(body, str):
        restore["body"] = body
    return restore


async def lifted(ctx: Context, facts: RepoFacts, number: int) -> bool:
    """Whether ``/unfreeze`` lifted freeze issue ``number`` (the bot's note on it; one call)."""
    login = (await ctx.identity()).bot_login
    return freeze_lifted(
        window.posted_comments(await ctx.gateway.comments(facts.repo, number), login)
    )


async def _who(ctx: Context, facts: RepoFacts) -> str:
    try:
        policy = await facts.policy(await facts.head())
    except (NotAFleetRepo, PolicyError):
        return "the people the promotion policy names under `overrides`"
    return caltext.who_may(policy.overrides, facts.owner, facts.repo)


async def regate_all(ctx: Context, facts: RepoFacts) -> None:
    """Freezes changed: judge every open pull request's window at once, refresh the dashboard."""
    window.forget_issues(facts)
    await rejudge(ctx, facts)
    dashboard.request_refresh(ctx, facts.repo, facts.known_default_branch)


# --- /freeze, /unfreeze, /override -------------------------------------------------------------


#: The calendar's commands (found in comments by ``bot.rules.commands``, dispatched by
#: ``handlers.commands``) and what they let someone do, for the reply to others.
COMMANDS = {
    "freeze": "freeze an environment",
    "unfreeze": "lift a freeze",
    "override": "override a check",
}
USAGES = {
    "freeze": "Usage: `/freeze <environment> <reason>`, e.g. `/freeze prod incident 42`.",
    "unfreeze": "Usage: `/unfreeze <environment>`, e.g. `/unfreeze prod`.",
    "override": "Usage: `/override <check> <reason>` with `window` or `lineage`.",
}


async def run_command(
    ctx: Context, facts: RepoFacts, data: dict[str, Any], login: str, name: str, args: list[str]
) -> str | None:
    """Carry out one of :data:`COMMANDS` written by ``login``; returns the reply to post."""
    try:
        policy = await facts.policy(await facts.head())
    except NotAFleetRepo:
        return None
    except PolicyError as exc:
        return f"The promotion policy is invalid, so nothing was changed: {exc}"
    if not await allowed(ctx, facts, policy, login):
        who = caltext.who_may(policy.overrides, facts.owner, facts.repo)
        ignored = " Your override was ignored." if name == "override" else ""
        return (
            f"Only {who} can {COMMANDS[name]} (`overrides` in `{POLICY_PATH}`).{ignored} "
            "Nothing was changed."
        )
    await ctx.gateway.react(facts.repo, pfield(data, "comment.id", int), "eyes")
    if name == "freeze":
        url = str((data.get("comment") or {}).get("html_url") or "")
        return await freeze(ctx, facts, policy, login, args, url)
    if name == "unfreeze":
        written = window.github_time((data.get("comment") or {}).get("created_at"))
        return await unfreeze(ctx, facts, policy, login, args, written)
    return await override(ctx, facts, policy, data, login, args)


async def allowed(ctx: Context, facts: RepoFacts, policy: Policy, login: str) -> bool:
    """May ``login`` freeze, unfreeze and override? Read afresh: a rare, weighty question."""
    team = policy.overrides.team
    if team is not None:
        members = await ctx.gateway.team_members(facts.owner, team)
        return members is not None and login.lower() in members
    return await ctx.gateway.permission(facts.repo, login) == "admin"


async def freeze(
    ctx: Context, facts: RepoFacts, policy: Policy, login: str, args: list[str], comment_url: str
) -> str:
    """``/freeze <environment> <reason>``; returns the reply."""
    usage = USAGES["freeze"]
    if len(args) < 2:
        return f"`/freeze` needs an environment and a reason. {usage}"
    env = policy.environment(args[0].lower())
    if env is None:
        known = ", ".join(f"`{e.name}`" for e in policy.environments)
        return f"There is no environment `{_shown(args[0])}`; the policy has {known}. {usage}"
    reason = " ".join(" ".join(args[1:]).split())[:300]
    for existing in await window.emergency_freezes(ctx, facts):
        if existing.environment == env.name:
            return (
                f"{env.name} is already frozen by @{existing.by or 'someone'} since "
                f"{caltext.utc(existing.since) if existing.since else 'earlier'}: "
                f"{existing.reason} ({existing.url})."
            )
    who = caltext.who_may(policy.overrides, facts.owner, facts.repo)
    title = caltext.freeze_issue_title(env.name)
    body = caltext.freeze_issue_body(
        env.name, by=login, reason=reason, comment_url=comment_url, who=who
    )
    issue = await ctx.gateway.create_issue(facts.repo, title, body)
    await window.remember_freeze(ctx, facts.repo, int(issue["number"]), title, body)
    await regate_all(ctx, facts)
    return (
        f"{env.name} is frozen: no pull request into it merges until `/unfreeze {env.name}`. "
        f"The freeze is {issue.get('html_url') or '#' + str(issue.get('number'))}."
    )


async def unfreeze(
    ctx: Context,
    facts: RepoFacts,
    policy: Policy,
    login: str,
    args: list[str],
    written: datetime | None,
) -> str:
    """``/unfreeze <environment>`` written at ``written``; returns the reply. Only freezes in
    force when the comment was written are lifted (the command may be read late)."""
    if len(args) != 1:
        return USAGES["unfreeze"]
    name = args[0].lower()
    if policy.environment(name) is None:
        known = ", ".join(f"`{e.name}`" for e in policy.environments)
        return f"There is no environment `{_shown(args[0])}`; the policy has {known}."
    holding = [e for e in await window.emergency_freezes(ctx, facts) if e.holds(name)]
    if not holding:
        return f"{name} is not frozen."
    lifted = [e for e in holding if e.lifted_by(name, written)]
    if not lifted:
        return caltext.unfreeze_too_old(name, holding)
    for item in lifted:
        await ctx.gateway.comment(facts.repo, item.number, caltext.lifted_note(login, name))
        await ctx.gateway.update_issue(facts.repo, item.number, state="closed")
    await regate_all(ctx, facts)
    numbers = ", ".join(f"#{item.number}" for item in lifted)
    later = [e for e in holding if e not in lifted]
    if later:
        return f"Closed {numbers}. " + caltext.unfreeze_too_old(name, later)
    return f"{name} is open again (closed {numbers}); its pull requests were judged again."


async def override(
    ctx: Context,
    facts: RepoFacts,
    policy: Policy,
    data: dict[str, Any],
    login: str,
    args: list[str],
) -> str | None:
    """``/override <check> <reason>`` on a pull request; returns the reply (None: the bot's
    acknowledgement was the reply)."""
    usage = USAGES["override"]
    if not (data.get("issue") or {}).get("pull_request"):
        return f"`/override` works on a pull request only. {usage}"
    check = args[0].lower() if args else ""
    if check in NEVER_OVERRIDABLE or check == "promotion/approvals":
        return (
            "Approvals are never overridable: the required reviews still apply. Nothing was "
            "changed."
        )
    check = check.removeprefix("promotion/")
    if check not in OVERRIDABLE:
        return f"`{_shown(check) or '(nothing)'}` cannot be overridden. {usage}"
    reason = " ".join(" ".join(args[1:]).split())[:300]
    if not reason:
        return f"Say why: `/override {check} <reason>`. The reason goes into the audit."
    number = pfield(data, "issue.number", int)
    comment = pfield(data, "comment", dict)
    pr = await ctx.gateway.pull(facts.repo, number)
    if pr.get("state") != "open":
        return "This pull request is not open; there is nothing to override."
    head = pfield(pr, "head.sha", str)
    written = window.github_time(comment.get("created_at"))
    seen = await _head_seen(ctx, facts, head)
    # GitHub's times have whole seconds: a comment of the same second as the first judgement
    # of the head may have been written before the push, so it does not count (fail closed).
    # (Comment and check-run ids cannot order them: they are numbered apart.)
    if written is None or seen is None or seen >= written:
        return (
            f"The pull request's head is `{head[:7]}`, which I had not judged yet when you "
            "wrote this (a push came in between, or in the same second). Look at the new "
            "commit and override again if it should go through."
        )
    bot_login = (await ctx.identity()).bot_login
    comments = window.posted_comments(await window.pull_comments(ctx, facts, number), bot_login)
    # A window override written before the newest freeze began counts no more (S5). The
    # freezes are read by the window check that follows anyway (memoised): no extra call.
    freezes = await window.emergency_freezes(ctx, facts) if check == "window" else ()
    newest = max((e.since for e in freezes if e.since is not None), default=None)
    done = [
        o
        for o in acknowledged(comments)
        if o.check == check and o.head == head and (newest is None or o.at >= newest)
    ]
    people = {o.login.lower() for o in done}
    if login.lower() in people:
        return f"Your override of `promotion/{check}` on `{head[:7]}` is already counted."
    counted = len(people) + 1
    await ctx.gateway.comment(
        facts.repo,
        number,
        caltext.override_ack(
            login=login,
            check=check,
            reason=reason,
            head=head,
            comment_id=pfield(comment, "id", int),
            body=str(comment.get("body") or ""),
            counted=counted,
            needed=policy.overrides.count,
        ),
    )
    window.forget_comments(facts, number)
    await rejudge_pull(ctx, facts, pr, (check,))
    return None


async def _head_seen(ctx: Context, facts: RepoFacts, head: str) -> datetime | None:
    """When the bot first judged ``head`` (its earliest check run there), as GitHub recorded
    it; None when it has not yet. An override written before then was for an older commit."""
    identity = await ctx.identity()
    runs = await ctx.gateway.check_runs_for(facts.repo, head, app_id=identity.id)
    times = [
        t
        for run in runs
        if (run.get("app") or {}).get("id", identity.id) == identity.id
        and (t := window.github_time(run.get("started_at"))) is not None
    ]
    return min(times, default=None)


def _shown(text: str) -> str:
    return text.replace("`", "'")[:60]
