"""Slash commands in issue and PR comments: ``/promote <env> [tenant ...]``, ``/status``, and the
calendar's ``/freeze``, ``/unfreeze`` and ``/override`` (carried out by ``handlers.calendar``).

Which lines of a comment are commands is decided by :func:`bot.rules.commands.extract_commands`
(the lines of its visible text). Every command of a comment runs, in order, each with its own
reply; more than :data:`MAX_COMMANDS` in one comment run none. ``/promote`` needs write,
maintain or admin on the fleet repo; a near miss (``/promte``) is answered only for those
people. Feedback goes where the request was made: an eyes reaction when work starts, then a
reply with the PR or a plain reason. A new command adds its name to
:data:`bot.rules.commands.KNOWN`, its usage to :data:`USAGES` and a branch to
:func:`run_command`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gidgethub import routing, sansio

from bot.concurrency.aio import map_bounded
from bot.fleet.inputs import InputError, TenantInput
from bot.fleet.layout import Fleet
from bot.fleet.policy import Policy, PolicyError
from bot.github import discovery
from bot.github.appcommits import app_changes
from bot.github.checkruns import mark_fresh_commit
from bot.github.context import Context
from bot.github.facts import NotAFleetRepo, RepoFacts, image_of
from bot.handlers import calendar, dashboard
from bot.handlers.checks import facts_for, gate_pull, pull_files
from bot.handlers.payload import field as pfield
from bot.rules import sources
from bot.rules.appchanges import promotion_moves
from bot.rules.commands import Command, extract_commands
from bot.rules.gate import scope_of
from bot.rules.promote import (
    USAGE,
    CommandError,
    PromoteRequest,
    PromotionPlan,
    check_tenants,
    differing_tenants,
    merge_plans,
    plan_promotion,
    promote_request,
    promotion_branch,
    resolve_environment,
)
from bot.texts import prtext

router = routing.Router()

WRITERS = frozenset({"admin", "maintain", "write"})


#: More commands than this in one comment are refused as a whole, with a reply saying so: a
#: pasted list or a script should not open a dozen PRs, and taking only some would be a guess.
MAX_COMMANDS = 5

STATUS_USAGE = "Usage: `/status [tenant]`, for example `/status` or `/status payment-app`."
USAGES = {"promote": USAGE, "status": STATUS_USAGE, **calendar.USAGES}


@router.register("issue_comment", action="created")
async def on_comment(event: sansio.Event, ctx: Context) -> None:
    data = event.data
    comment = pfield(data, "comment", dict)
    author = pfield(comment, "user", dict)
    sender = data.get("sender") or {}
    if author.get("type") == "Bot" or sender.get("type") == "Bot":
        return  # never act on bots' comments (our own replies included): no loops
    commands = extract_commands(str(comment.get("body") or ""))
    if not commands:
        return
    facts = facts_for(ctx, data)
    if not await _is_fleet_repo(facts):
        return
    asked = Asked(ctx, facts, data, pfield(author, "login", str), pfield(data, "issue.number", int))
    if len(commands) > MAX_COMMANDS:
        await asked.reply(
            f"This comment holds {len(commands)} commands; I take at most {MAX_COMMANDS} from "
            "one comment, so I ran none of them. Split them over several comments."
        )
        return
    several = len(commands) > 1
    for command in commands:
        text = await run_command(asked, command)
        if text is not None:
            await asked.reply(f"`{_shown(command.shown)}`: {text}" if several else text)


class Asked:
    """One comment's requests: who asked where, with their role read once and only if needed."""

    def __init__(
        self, ctx: Context, facts: RepoFacts, data: dict[str, Any], login: str, number: int
    ) -> None:
        self.ctx, self.facts, self.data = ctx, facts, data
        self.login, self.number = login, number
        self._role: str | None = None
        self._reacted = False
        self.refused = False  # told already that they may not run commands

    async def role(self) -> str:
        if self._role is None:
            self._role = await self.ctx.gateway.permission(self.facts.repo, self.login)
        return self._role

    async def may_run(self) -> bool:
        return await self.role() in WRITERS

    async def reply(self, text: str) -> None:
        await reply(self.ctx, self.facts.repo, self.number, self.login, text)

    async def react(self) -> None:
        if not self._reacted:
            self._reacted = True
            comment_id = pfield(self.data, "comment.id", int)
            await self.ctx.gateway.react(self.facts.repo, comment_id, "eyes")


async def run_command(asked: Asked, command: Command) -> str | None:
    """Carry out one command; returns the reply to post (None: nothing, or already posted)."""
    if command.suggestion is not None:
        # A typo gets help only from people who may run commands: nobody else is answered.
        if not await asked.may_run():
            return None
        return f"Did you mean `/{command.suggestion}`? {USAGES.get(command.suggestion, '')}"
    if command.name == "status":
        if len(command.args) > 1:
            return f"`/status` takes at most one tenant. {STATUS_USAGE}"
        argument = command.args[0] if command.args else None
        await dashboard.on_status_command(
            asked.ctx, asked.facts, asked.number, asked.login, argument
        )
        return None
    if command.name == "promote":
        return await run_promote(asked, command)
    if command.name in calendar.COMMANDS:
        return await calendar.run_command(
            asked.ctx, asked.facts, asked.data, asked.login, command.name, list(command.args)
        )
    return None


async def run_promote(asked: Asked, command: Command) -> str | None:
    ctx, facts = asked.ctx, asked.facts
    try:
        request = promote_request(command)
    except CommandError as exc:
        return str(exc)
    head = await facts.head()
    try:
        policy = await facts.policy(head)
    except NotAFleetRepo:
        return None
    except PolicyError as exc:
        return f"The promotion policy is invalid: {exc}"
    if not await asked.may_run():
        if asked.refused:
            return None  # one refusal per comment is enough
        asked.refused = True
        return (
            f"Only people with write access to {facts.repo} can ask for promotions "
            f"(you have {await asked.role()}). Nothing was changed."
        )
    await asked.react()
    try:
        return await promote(ctx, facts, policy, head, request, asked.data, asked.login)
    except CommandError as exc:
        return str(exc)


def _shown(text: str) -> str:
    return text.replace("`", "'")[:120]


async def _is_fleet_repo(facts: RepoFacts) -> bool:
    return await discovery.is_fleet_repo(facts.ctx, facts.repo, facts.known_default_branch)


async def reply(ctx: Context, repo: str, number: int, login: str, text: str) -> None:
    await ctx.gateway.comment(repo, number, f"@{login} {text}")


async def promote(
    ctx: Context,
    facts: RepoFacts,
    policy: Policy,
    head: str,
    command: PromoteRequest,
    data: dict[str, Any],
    login: str,
) -> str:
    """Open or update the promotion PR; returns the reply to post."""
    env, upstream = resolve_environment(policy, command.environment)
    fleet = await facts.fleet(head, policy)
    source_ids: tuple[str, ...] = ()
    if command.tenants:
        source_ids = tuple(
            sid for t in command.tenants if (sid := sources.parse_source_arg(t)) is not None
        )
        tenants = tuple(t for t in command.tenants if not sources.is_source_item(t))
        check_tenants(fleet, env, tenants)
    elif (data.get("issue") or {}).get("pull_request"):
        tenants, source_ids = await _items_of_pull(ctx, facts, fleet, policy, data, upstream)
        if not tenants and not source_ids:
            raise CommandError(
                f"This pull request changes no {upstream} tenant, so there is nothing to "
                f"promote from it. Name the tenants: `/promote {env} <tenant>`."
            )
    else:
        inputs = await _inputs(facts, head, fleet, fleet.tenants_of(env), (env, upstream))
        tenants = differing_tenants(fleet, policy, env, upstream, inputs)
        if not tenants:
            return f"Every {env} tenant already runs what {upstream} runs: nothing to promote."
    selection = Selection(env, upstream, tuple(tenants), source_ids)
    plan = await plan_at(facts, fleet, policy, selection, target=head, upstream_at=head)
    tenants = selection.items
    if plan.empty:
        return prtext.nothing_to_promote(plan)
    evidence = await _evidence(facts, fleet, plan, head)
    branch = promotion_branch(env, tenants)
    owner = facts.repo.split("/", 1)[0]
    comment_url = str((data.get("comment") or {}).get("html_url") or "")
    existing = await ctx.gateway.find_pull(facts.repo, owner, branch)
    changes = await app_changes(ctx, facts, fleet, policy, promotion_moves(plan), head)
    title = prtext.promotion_title(plan, changes)
    body = prtext.promotion_body(
        plan,
        evidence,
        login,
        comment_url,
        changes,
        web_url=ctx.settings.github_url,
        app_problem=changes.problem,
    )
    message = prtext.promotion_commit_message(plan, login)
    if existing is not None:
        return await _update(ctx, facts, fleet, policy, existing, selection, login, body)
    commit = await ctx.gateway.commit_files(
        facts.repo, parent=head, changes=dict(plan.changes), message=message
    )
    if not await ctx.gateway.create_branch(facts.repo, branch, commit):
        # Left over from an earlier, closed promotion: it is ours, start it afresh.
        await ctx.gateway.delete_branch(facts.repo, branch)
        await ctx.gateway.create_branch(facts.repo, branch, commit)
    mark_fresh_commit(ctx, facts.repo, commit)
    base = await facts.default_branch()
    pr = await ctx.gateway.create_pull(facts.repo, head=branch, base=base, title=title, body=body)
    if pr is None:
        pr = await ctx.gateway.find_pull(facts.repo, owner, branch)
        if pr is None:
            raise CommandError("GitHub refused to open the promotion pull request; try again.")
    # Reviewers are asked for by the gate (handlers/reviewers.py) once the PR is judged.
    await gate_pull(ctx, facts, pr)
    return prtext.promotion_opened(plan, pr)


@dataclass(frozen=True)
class Selection:
    """What one promotion request covers."""

    environment: str
    upstream: str
    tenants: tuple[str, ...]
    source_ids: tuple[str, ...]

    @property
    def items(self) -> tuple[str, ...]:
        return (*self.tenants, *(sources.item_of(s) for s in self.source_ids))


async def plan_at(
    facts: RepoFacts,
    fleet: Fleet,
    policy: Policy,
    selection: Selection,
    *,
    target: str,
    upstream_at: str,
) -> PromotionPlan:
    """The promotion of ``selection``: upstream values read at ``upstream_at`` (the default
    branch), target files at ``target`` (the default branch, or an open PR's branch)."""
    env, upstream, tenants = selection.environment, selection.upstream, selection.tenants
    inputs = {
        **await _inputs(facts, target, fleet, tenants, (env,)),
        **await _inputs(facts, upstream_at, fleet, tenants, (upstream,)),
    }
    target_paths = [
        p for c in fleet.clusters_of(env) for t in tenants if (p := fleet.input_path(c, t))
    ]
    files = await facts.files(target, target_paths)
    plan = plan_promotion(fleet, policy, env, upstream, tenants, inputs, files)
    if not selection.source_ids:
        return plan
    tree = await facts.tree(upstream_at)
    candidates = sources.candidate_paths(tree.paths())
    ups = set(fleet.clusters_of(upstream))
    downs = set(fleet.clusters_of(env))
    source_files = {
        **await facts.files(upstream_at, [p for p in candidates if p.split("/")[1] in ups]),
        **await facts.files(target, [p for p in candidates if p.split("/")[1] in downs]),
    }
    return merge_plans(
        plan,
        sources.plan_source_promotion(fleet, env, upstream, selection.source_ids, source_files),
    )


async def _update(
    ctx: Context,
    facts: RepoFacts,
    fleet: Fleet,
    policy: Policy,
    existing: dict[str, Any],
    selection: Selection,
    login: str,
    body: str,
) -> str:
    """A repeat request: bring the open PR's branch to the wanted values, or point to it.

    The branch moves only by fast-forward; if someone pushed to it meanwhile (GitHub answers
    422), it is read again and the update retried once on top of the new head.
    """
    number = int(existing["number"])
    branch = str(existing["head"]["ref"])
    branch_head = str(existing["head"]["sha"])
    main = await facts.head()
    for attempt in range(2):
        again = await plan_at(facts, fleet, policy, selection, target=branch_head, upstream_at=main)
        if again.empty:
            return f"#{number} already promotes this; it is waiting for its checks and approvals."
        commit = await ctx.gateway.commit_files(
            facts.repo,
            parent=branch_head,
            changes=dict(again.changes),
            message=prtext.promotion_commit_message(again, login),
        )
        if await ctx.gateway.update_branch(facts.repo, branch, commit):
            await ctx.gateway.update_pull(facts.repo, number, body=body)
            return f"Updated #{number} to the values {selection.upstream} runs now."
        if attempt == 0:
            fresh = await ctx.gateway.pull(facts.repo, number)
            branch_head = pfield(fresh, "head.sha", str)
    raise CommandError(f"#{number} keeps changing while I update it; ask again in a moment.")


async def _items_of_pull(
    ctx: Context,
    facts: RepoFacts,
    fleet: Fleet,
    policy: Policy,
    data: dict[str, Any],
    upstream: str,
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(tenants, source ids) the PR changed in the upstream environment."""
    number = pfield(data, "issue.number", int)
    pr = await ctx.gateway.pull(facts.repo, number)
    files = await pull_files(
        ctx, facts.repo, number, pfield(pr, "head.sha", str), pfield(pr, "base.sha", str)
    )
    scope = scope_of(files, fleet, policy)
    tenants = tuple(sorted({i.tenant for i in scope.inputs if i.environment == upstream and i.sha}))
    ids: set[str] = set()
    for change in files:
        loc = fleet.locate(change.path)
        if loc is None or loc.environment != upstream or change.sha is None:
            continue
        if change.path not in sources.candidate_paths([change.path]):
            continue
        data_at = await ctx.gateway.blob(facts.repo, change.sha)
        found = sources.sources_in(change.path, loc.cluster, data_at)
        ids.update(sid for sid, src in found.items() if sources.value_of(src) is not None)
    return tenants, tuple(sorted(ids))


async def _inputs(
    facts: RepoFacts,
    commit: str,
    fleet: Fleet,
    tenants: tuple[str, ...] | list[str],
    environments: tuple[str, ...],
) -> dict[str, TenantInput | InputError]:
    paths = [
        p
        for env in environments
        for c in fleet.clusters_of(env)
        for t in tenants
        if (p := fleet.input_path(c, t)) is not None
    ]
    parsed = await map_bounded(lambda p: facts.tenant_input(commit, p), paths)
    return {p: v for p, v in zip(paths, parsed, strict=True) if v is not None}


async def _evidence(
    facts: RepoFacts, fleet: Fleet, plan: PromotionPlan, head: str
) -> dict[tuple[str, str], tuple[str, str]]:
    """(tenant, upstream cluster) -> (commit sha, url) that brought the promoted image there."""
    out: dict[tuple[str, str], tuple[str, str]] = {}
    for tenant in plan.promoted:
        for cluster in plan.sources.get(tenant, ()):
            path = fleet.input_path(cluster, tenant)
            if path is None:
                continue

            def enough(seen: list[Any]) -> bool:
                return len({s.value for s in seen}) > 1

            history = await facts.value_history(path, head, image_of, enough=enough, limit=100)
            if not history:
                continue
            first = history[0]
            for at in history:
                if at.value != first.value:
                    break
                first = at
            out[(tenant, cluster)] = (first.commit_sha, first.commit_url)
    return out
