"""Automatic merge of dev: any open, non-draft PR whose changes all lie in ``autoMerge``
environments, once GitHub reports it mergeable and the base branch's required checks pass.

Merges name the head SHA the bot evaluated, so a push racing the merge makes GitHub refuse it
(409) instead of merging unchecked code. A conflict is reported once, in a comment.

Where the base branch requires a merge queue, GitHub refuses the REST merge (405); the PR is
added to the queue instead (GraphQL ``enqueuePullRequest`` with the evaluated head as
``expectedHeadOid``), and the queue merges it once the group's checks pass (the bot judges the
group too: ``bot.handlers.mergequeue``). That a branch takes a queue is learnt from that 405, or
from the branch's rules when the 405 does not say so, once per branch: later PRs go straight to
the queue (one call).
"""

from __future__ import annotations

from typing import Any

from gidgethub import routing, sansio

from bot.github.context import Context
from bot.github.facts import RepoFacts
from bot.github.gateway import MergeResult
from bot.handlers.checks import GateOutcome, facts_for, gate_pull, scope_for
from bot.handlers.payload import field as pfield
from bot.texts import markers

router = routing.Router()

DO_NOT_MERGE = "do-not-merge"
PASSING = frozenset({"success", "neutral", "skipped"})
MERGE_METHODS = ("squash", "merge", "rebase")


async def consider(ctx: Context, facts: RepoFacts, pr: dict[str, Any], outcome: GateOutcome) -> str:
    """Merge ``pr`` if it qualifies now; returns what happened, for logs and tests."""
    repo = facts.repo
    number = pfield(pr, "number", int)
    scope = outcome.scope
    if scope is None or not scope.auto_merge:
        return "not auto-mergeable"
    if pr.get("draft"):
        return "draft"
    head_repo = ((pr.get("head") or {}).get("repo") or {}).get("full_name")
    if head_repo is not None and head_repo != repo:
        # Anyone can open a PR from a fork; only branches of the fleet repo itself (which take
        # write access to push) are merged without a person.
        return "from a fork"
    if any(str(label.get("name")).lower() == DO_NOT_MERGE for label in pr.get("labels") or []):
        return "labelled do-not-merge"
    if "failure" in (outcome.lineage, outcome.consistency, outcome.window) or outcome.approvals in (
        "failure",
        "pending",
    ):
        return "gate not green"
    if pr.get("state", "open") != "open":
        return "closed"
    head = outcome.head_sha
    base_ref = pfield(pr, "base.ref", str)
    if ctx.services.caches.derived.get(("merge-queue", repo, base_ref)) is True:
        return await enqueue(ctx, repo, pr, head)
    title = f"{pr.get('title')} (#{number})"
    message = await merge_message(ctx, repo, number, head)
    # GitHub's merge endpoint is the authority on mergeability and required checks: ask it
    # directly (one call), and read the PR only to tell a conflict from "not computed yet".
    result = await _merge(ctx, repo, number, head, title, message)
    if result.outcome == "not_mergeable":
        current = await ctx.gateway.pull_with_mergeable(repo, number)
        if current.get("state") != "open" or pfield(current, "head.sha", str) != head:
            return "head changed"
        mergeable = current.get("mergeable")
        if mergeable is False or current.get("mergeable_state") == "dirty":
            await report_conflict(ctx, repo, number, head)
            return "conflict"
        if mergeable is None:
            # GitHub is still computing; no event may follow, so come back by ourselves.
            retry_later(ctx, facts, number, head)
            return "mergeability unknown"
        missing = await unmet_required_checks(ctx, repo, pfield(current, "base.ref", str), head)
        if missing:
            ctx.log.info("%s#%s waits for %s", repo, number, ", ".join(missing))
            return "waiting for " + ", ".join(missing)
        result = await _merge(ctx, repo, number, head, title, message)
    if result.outcome in ("queue_required", "blocked") and await takes_queue(
        ctx, repo, base_ref, result
    ):
        return await enqueue(ctx, repo, pr, head)
    if result.outcome == "merged":
        ctx.log.info("merged %s#%s at %s", repo, number, head[:7])
        remember_merged(ctx, repo, number)
        ref = pfield(pr, "head.ref", str)
        same_repo = ((pr.get("head") or {}).get("repo") or {}).get("full_name") == repo
        if ref.startswith("fleet-bot/") and same_repo:
            await ctx.gateway.delete_branch(repo, ref)
        return "merged"
    if result.outcome == "not_mergeable":
        retry_later(ctx, facts, number, head)
        return "not mergeable yet"
    ctx.log.info("merge of %s#%s not possible now: %s", repo, number, result.message)
    return result.outcome


async def takes_queue(ctx: Context, repo: str, branch: str, refused: MergeResult) -> bool:
    """Whether ``branch`` requires a merge queue, after GitHub refused a REST merge: the 405
    says so, or else the branch's rules do (read once per branch and process)."""
    memo = ctx.services.caches.derived
    key = ("merge-queue", repo, branch)
    if refused.outcome == "queue_required":
        memo[key] = True
    elif key not in memo:
        memo[key] = await ctx.gateway.requires_merge_queue(repo, branch)
    return memo[key] is True


async def enqueue(ctx: Context, repo: str, pr: dict[str, Any], head: str) -> str:
    """Add ``pr`` to its merge queue at the head the gate judged."""
    number = pfield(pr, "number", int)
    if ctx.services.caches.derived.get(("enqueued", repo, number)) == head:
        return "queued"  # already there at this head: nothing to ask GitHub
    result = await ctx.gateway.enqueue(pfield(pr, "node_id", str), head)
    if result.outcome in ("queued", "already_queued"):
        ctx.services.caches.derived[("enqueued", repo, number)] = head
        ctx.log.info("%s#%s in the merge queue at %s (%s)", repo, number, head[:7], result.outcome)
        return "queued"
    ctx.log.info("%s#%s cannot enter the merge queue now: %s", repo, number, result.message)
    current = await ctx.gateway.pull_with_mergeable(repo, number)
    if current.get("state") == "open" and current.get("mergeable") is False:
        await report_conflict(ctx, repo, number, head)
        return "conflict"
    return "not queued"


@router.register("pull_request", action="closed")
async def on_closed(event: sansio.Event, ctx: Context) -> None:
    """A PR the bot put in a merge queue was merged by the queue: its bump branch goes, as
    after a merge of the bot's own."""
    pr = pfield(event.data, "pull_request", dict)
    repo = pfield(event.data, "repository.full_name", str)
    number = pfield(pr, "number", int)
    if not pr.get("merged") or ("enqueued", repo, number) not in ctx.services.caches.derived:
        return
    del ctx.services.caches.derived[("enqueued", repo, number)]
    remember_merged(ctx, repo, number)
    ref = pfield(pr, "head.ref", str)
    same_repo = ((pr.get("head") or {}).get("repo") or {}).get("full_name") == repo
    if ref.startswith("fleet-bot/") and same_repo:
        await ctx.gateway.delete_branch(repo, ref)


RETRIES = 5
RETRY_DELAY = 3.0


def retry_later(ctx: Context, facts: RepoFacts, number: int, head: str) -> None:
    """Look at a PR again in a few seconds (at most RETRIES times per head), for the case
    where GitHub has not finished computing mergeability and nothing else will wake us."""
    memo = ctx.services.caches.derived
    key = ("merge-retry", facts.repo, number, head)
    count = int(memo.get(key, 0))
    if count >= RETRIES:
        ctx.log.info(
            "%s#%s still not mergeable after %d tries; the resync will look again",
            facts.repo,
            number,
            count,
        )
        return
    memo[key] = count + 1
    services, installation, repo = ctx.services, ctx.installation_id, facts.repo
    branch = facts.known_default_branch

    async def again() -> None:
        job = Context.background(services, installation, "merge-retry", repo)
        async with job.lock(repo):
            retry_facts = RepoFacts(job, repo, default_branch=branch)
            pr = await job.gateway.pull(repo, number)
            if pr.get("state") != "open" or (pr.get("head") or {}).get("sha") != head:
                return
            outcome = await gate_pull(job, retry_facts, pr)
            if outcome is not None:
                await consider(job, retry_facts, pr, outcome)

    services.defer(f"merge-retry:{repo}#{number}", RETRY_DELAY * (count + 1), again)


def remember_merged(ctx: Context, repo: str, number: int) -> None:
    """Webhooks about a PR we merged a moment ago (its ``opened`` arrives late) need no work."""
    ctx.services.caches.derived[("merged", repo, number)] = True


def known_merged(ctx: Context, repo: str, number: int) -> bool:
    return ("merged", repo, number) in ctx.services.caches.derived


async def _merge(
    ctx: Context, repo: str, number: int, head: str, title: str, message: str
) -> MergeResult:
    result = MergeResult("blocked", "no merge method allowed")
    for method in MERGE_METHODS:
        result = await ctx.gateway.merge(
            repo, number, sha=head, method=method, title=title, message=message
        )
        if result.outcome == "blocked" and "not allowed" in result.message.lower():
            continue  # the repository disallows this merge method: try the next one
        break
    return result


async def unmet_required_checks(ctx: Context, repo: str, branch: str, sha: str) -> list[str]:
    """Required contexts of ``branch`` that have no passing status or check run on ``sha``."""
    required = await ctx.gateway.required_contexts(repo, branch)
    if not required:
        return []
    combined = await ctx.gateway.combined_status(repo, sha)
    passing = {
        str(s.get("context")) for s in combined.get("statuses") or [] if s.get("state") == "success"
    }
    runs = await ctx.gateway.check_runs_for(repo, sha)
    latest: dict[str, dict[str, Any]] = {}
    for run in runs:
        name = str(run.get("name"))
        if name not in latest or int(run.get("id", 0)) > int(latest[name].get("id", 0)):
            latest[name] = run
    for name, run in latest.items():
        if run.get("status") == "completed" and run.get("conclusion") in PASSING:
            passing.add(name)
    return [c for c in required if c not in passing]


async def report_conflict(ctx: Context, repo: str, number: int, head: str) -> None:
    """Say once per PR that it cannot be merged automatically, and why."""
    comments = await ctx.gateway.comments(repo, number)
    identity = await ctx.identity()
    for comment in comments:
        author = (comment.get("user") or {}).get("login")
        kind = markers.read_marker(comment.get("body")).get("kind")
        if author == identity.bot_login and kind == "conflict":
            return
    body = (
        "This pull request has a merge conflict with its base branch, so it cannot be merged "
        "automatically. Resolve the conflict (or close this PR; a newer bump replaces it), and "
        "it will be merged once its checks pass.\n\n" + markers.marker(kind="conflict", head=head)
    )
    await ctx.gateway.comment(repo, number, body)


# --- events that can make a waiting PR mergeable ---------------------------------------------


@router.register("check_suite", action="completed")
async def on_check_suite(event: sansio.Event, ctx: Context) -> None:
    suite = pfield(event.data, "check_suite", dict)
    if await _ours(ctx, suite):
        return  # our own checks: whoever published them has already considered the merge
    numbers = [int(p["number"]) for p in suite.get("pull_requests") or [] if "number" in p]
    await retry_for_head(ctx, event.data, pfield(suite, "head_sha", str), numbers)


@router.register("check_run", action="completed")
async def on_check_run(event: sansio.Event, ctx: Context) -> None:
    run = pfield(event.data, "check_run", dict)
    if await _ours(ctx, run):
        return
    numbers = [int(p["number"]) for p in run.get("pull_requests") or [] if "number" in p]
    await retry_for_head(ctx, event.data, pfield(run, "head_sha", str), numbers)


@router.register("status")
async def on_status(event: sansio.Event, ctx: Context) -> None:
    if event.data.get("state") != "success":
        return  # only a success can unblock a merge
    await retry_for_head(ctx, event.data, pfield(event.data, "sha", str), [])


async def _ours(ctx: Context, obj: dict[str, Any]) -> bool:
    app_id = (obj.get("app") or {}).get("id")
    return app_id is not None and app_id == (await ctx.identity()).id


async def retry_for_head(
    ctx: Context, data: dict[str, Any], head_sha: str, numbers: list[int]
) -> None:
    facts = facts_for(ctx, data)
    pulls = await ctx.gateway.open_pulls(facts.repo)
    for pr in pulls:
        if (pr.get("head") or {}).get("sha") != head_sha:
            continue
        if numbers and int(pr["number"]) not in numbers:
            continue
        scope = await scope_for(ctx, facts, pr)
        if scope is None or not scope.auto_merge:
            continue  # only dev-only PRs are merged by the bot; nothing else to do here
        outcome = await gate_pull(ctx, facts, pr)
        if outcome is not None:
            await consider(ctx, facts, pr, outcome)


# --- the merge commit's message (issue 22) ------------------------------------------------------


def remember_commit_message(ctx: Context, repo: str, sha: str, message: str) -> None:
    """The message of a commit the bot just made (a bump): its merge copies it at no cost."""
    ctx.services.caches.derived[("bot-commit-message", repo, sha)] = message


async def merge_message(ctx: Context, repo: str, number: int, head: str) -> str:
    """The body of the merge commit the bot makes: what GitHub would write (the commits'
    messages), composed here because GitHub attributes that commit to the app. Trailers someone
    wrote in their own commit (``Image-Source:``, ``Requested-by:``...) would read as the app's
    own there, so they are taken out of every commit the app did not make."""
    known = ctx.services.caches.derived.get(("bot-commit-message", repo, head))
    if isinstance(known, str):
        return _body(known)  # our own bump, its only commit: kept as it is
    key = ("pr-commits", repo, number, head)
    commits = ctx.services.caches.derived.get(key)
    if not isinstance(commits, list):
        commits = await ctx.gateway.pull_commits(repo, number)
        ctx.services.caches.derived[key] = commits
    bot_login = (await ctx.identity()).bot_login
    messages = []
    for commit in commits:
        text = str((commit.get("commit") or {}).get("message") or "")
        if not markers.is_bot_commit(commit, bot_login):
            text = markers.strip_app_trailers(text)
        messages.append(text.strip())
    if len(messages) == 1:
        return _body(messages[0])
    return "\n\n".join(f"* {text}" for text in messages)


def _body(message: str) -> str:
    """A commit message without its title line (the merge has its own title)."""
    _title, _sep, rest = message.strip().partition("\n")
    return rest.strip()
