"""Proposing a change as a bot PR: the shared tail of every bump (images, blueprint releases).

One deterministic branch per (artifact, version) makes a redelivered event a no-op; an open PR
for a newer version stops an older event (events arrive out of order); older open PRs of the same
artifact are superseded: closed with a link to the new one and their branches deleted.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from bot.fleet.layout import Fleet
from bot.fleet.policy import Policy, PolicyError
from bot.github import discovery
from bot.github.checkruns import mark_fresh_commit
from bot.github.context import Context
from bot.github.facts import NotAFleetRepo, RepoFacts
from bot.handlers import automerge
from bot.handlers.checks import gate_pull
from bot.rules.bump import is_older
from bot.rules.gate import FileChange
from bot.rules.refs import is_valid_branch
from bot.texts import markers, prtext


@dataclass(frozen=True)
class Target:
    """A fleet repo's default branch as a bump sees it."""

    base: str  # the default branch
    head: str  # its head commit
    policy: Policy
    fleet: Fleet


async def target(ctx: Context, facts: RepoFacts) -> Target | None:
    """The default branch, its head, policy and fleet; None (logged) when the repo is no
    fleet repo or its policy is broken: then nothing is bumped there."""
    base = await facts.default_branch()
    head = await facts.head(base)
    try:
        policy = await facts.policy(head)
    except NotAFleetRepo:
        discovery.not_a_fleet_repo(ctx, facts.repo)
        return None
    except PolicyError as exc:
        ctx.log.warning("%s: not bumping, the policy is invalid: %s", facts.repo, exc)
        return None
    return Target(base, head, policy, await facts.fleet(head, policy))


@dataclass(frozen=True)
class Proposal:
    branch: str  # deterministic: prefix + version
    prefix: str  # shared by every proposal of the same artifact
    tag: str  # the version proposed (compared with other open proposals)
    changes: Mapping[str, bytes]
    title: str
    body: str
    message: str
    #: Given a newer head of the default branch: is the change still needed there? Asked only
    #: when the default branch moved while the PR was being made (a second replica, or a
    #: person, may have applied the same change meanwhile).
    still_needed: Callable[[str], Awaitable[bool]] | None = None
    #: Older versions named branches under this prefix, which other artifacts could share:
    #: open PRs under it count as ours only when their marker names ``legacy_image``.
    legacy_prefix: str | None = None
    legacy_image: str | None = None


async def propose(
    ctx: Context,
    facts: RepoFacts,
    proposal: Proposal,
    *,
    base: str,
    head: str,
    open_pulls: Awaitable[list[dict[str, Any]]] | None = None,
) -> int | None:
    """Open (or find) the PR for ``proposal``, supersede older ones, gate and merge it.
    ``open_pulls``: the repository's open PRs, when the caller started reading them already."""
    repo = facts.repo
    pulls = await (open_pulls if open_pulls is not None else ctx.gateway.open_pulls(repo))
    ours = [p for p in pulls if _is_ours(p, proposal)]
    existing = next((p for p in ours if _head_ref(p) == proposal.branch), None)
    newer = [p for p in ours if p is not existing and is_older(proposal.tag, tag_of(p))]
    if newer:
        ctx.log.info(
            "%s: not proposing %s, #%s proposes the newer %s",
            repo,
            proposal.tag,
            newer[0]["number"],
            tag_of(newer[0]),
        )
        return None
    if existing is None:
        existing = await _open(ctx, facts, proposal, base, head)
        if existing is None:
            return None
    number = int(existing["number"])
    for old in ours:
        if old is not existing and _head_ref(old) != proposal.branch:
            await supersede(ctx, repo, old, number, proposal.tag)
    outcome = await gate_pull(ctx, facts, existing)
    if outcome is not None:
        await automerge.consider(ctx, facts, existing, outcome)
    return number


def _is_ours(pr: Mapping[str, Any], proposal: Proposal) -> bool:
    ref = _head_ref(pr)
    if ref.startswith(proposal.prefix):
        return True
    legacy = proposal.legacy_prefix
    if legacy is None or legacy == proposal.prefix or not ref.startswith(legacy):
        return False
    return markers.read_marker(pr.get("body")).get("image") == proposal.legacy_image


def _head_ref(pr: Mapping[str, Any]) -> str:
    return str((pr.get("head") or {}).get("ref", ""))


async def _open(
    ctx: Context, facts: RepoFacts, proposal: Proposal, base: str, head: str
) -> dict[str, Any] | None:
    repo = facts.repo
    branch = proposal.branch
    if not is_valid_branch(branch):
        # Checked before anything is written: GitHub would refuse the ref (422) after the
        # commit was made, and leave that commit behind, reachable from nothing.
        ctx.log.warning("%s: %r is not a valid branch name; not proposing it", repo, branch)
        return None
    commit = await ctx.gateway.commit_files(
        repo, parent=head, changes=dict(proposal.changes), message=proposal.message
    )
    created = await ctx.gateway.create_branch(repo, branch, commit)
    if created:
        mark_fresh_commit(ctx, repo, commit)
        automerge.remember_commit_message(ctx, repo, commit, proposal.message)
    else:
        # A redelivery, or a crash after the branch was made: the branch already holds this
        # proposal (the name is deterministic). Reuse it as it is; never force-push.
        ctx.log.info("%s: branch %s exists already", repo, branch)
    owner = repo.split("/", 1)[0]
    pr = await ctx.gateway.create_pull(
        repo, head=branch, base=base, title=proposal.title, body=proposal.body
    )
    if pr is None:
        pr = await ctx.gateway.find_pull(repo, owner, branch)
        if pr is None:
            ctx.log.warning("%s: GitHub says a PR for %s exists but none is open", repo, branch)
            return None
    else:
        moved = str((pr.get("base") or {}).get("sha") or head)
        needed = proposal.still_needed
        if moved != head and needed is not None and not await needed(moved):
            await _withdraw(ctx, repo, pr, branch)
            return None
        # We know exactly what this PR changes when its head is the commit we just made:
        # spare the gate a files listing. A branch found there already (a redelivery, or one
        # a person pushed first under the deterministic name), or pushed to since, holds
        # whatever it holds: the gate reads it.
        if str((pr.get("head") or {}).get("sha") or "") == commit:
            _seed_files(ctx, repo, pr, proposal.changes)
        ctx.log.info("%s: opened #%s %s", repo, pr["number"], pr.get("title"))
    return pr


async def _withdraw(ctx: Context, repo: str, pr: dict[str, Any], branch: str) -> None:
    """Close a PR made moments ago whose change reached the default branch meanwhile."""
    number = int(pr["number"])
    await ctx.gateway.comment(
        repo,
        number,
        "The default branch already has this change (it landed while this pull request was "
        "being opened, e.g. by another replica of the bot): nothing to do, closing.",
    )
    await ctx.gateway.update_pull(repo, number, state="closed")
    await ctx.gateway.delete_branch(repo, branch)
    ctx.log.info("%s: withdrew #%s, its change is on the default branch already", repo, number)


def _seed_files(ctx: Context, repo: str, pr: dict[str, Any], contents: Mapping[str, bytes]) -> None:
    changes = tuple(
        FileChange(path=path, status="modified", sha=git_blob_sha(content))
        for path, content in sorted(contents.items())
    )
    base_sha = (pr.get("base") or {}).get("sha")
    head_sha = (pr.get("head") or {}).get("sha")
    if isinstance(base_sha, str) and isinstance(head_sha, str):
        key = ("pr-files", repo, int(pr["number"]), head_sha, base_sha)
        ctx.services.caches.derived[key] = changes
    for content in contents.values():
        ctx.services.objects.blobs[git_blob_sha(content)] = content


def git_blob_sha(content: bytes) -> str:
    """Git's object id of a blob: what GitHub will report as the file's ``sha``."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content, usedforsecurity=False).hexdigest()


def tag_of(pr: Mapping[str, Any]) -> str:
    tag = markers.read_marker(pr.get("body")).get("tag")
    if isinstance(tag, str):
        return tag
    return _head_ref(pr).rsplit("/", 1)[-1]


async def supersede(
    ctx: Context, repo: str, old: dict[str, Any], new_number: int, new_tag: str
) -> None:
    number = int(old["number"])
    await ctx.gateway.comment(repo, number, prtext.superseded_comment(new_number, new_tag))
    await ctx.gateway.update_pull(repo, number, state="closed")
    ref = _head_ref(old)
    if ref.startswith("fleet-bot/"):
        await ctx.gateway.delete_branch(repo, ref)
    ctx.log.info("%s: closed #%s, superseded by #%s", repo, number, new_number)
