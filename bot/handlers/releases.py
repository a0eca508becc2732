"""Blueprint releases: a published release of a repository the fleet's Flux sources follow
opens one dev bump PR per (fleet repo, source, tag), merged like an image bump."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from gidgethub import routing, sansio

from bot.concurrency import cpu
from bot.github import discovery
from bot.github.context import Context
from bot.github.facts import RepoFacts
from bot.handlers.payload import field as pfield
from bot.handlers.proposals import Proposal, propose, target
from bot.rules.sources import (
    Release,
    SourceBumpPlan,
    candidate_paths,
    plan_source_bumps,
    source_branch,
    source_prefix,
)
from bot.texts import markers

router = routing.Router()


@router.register("release", action="published")
async def on_release(event: sansio.Event, ctx: Context) -> None:
    data = event.data
    release = pfield(data, "release", dict)
    if release.get("draft"):
        return  # a draft is not a release yet
    found = Release(
        repository=pfield(data, "repository.full_name", str),
        host=urlsplit(ctx.settings.github_url).hostname or "github.com",
        tag=pfield(release, "tag_name", str),
        url=str(release.get("html_url") or ""),
        name=str(release.get("name") or release.get("tag_name")),
        notes=str(release.get("body") or ""),
        prerelease=bool(release.get("prerelease")),
    )
    repos = await discovery.fleet_repos(ctx)
    for repo, branch in repos.items():
        async with ctx.lock(repo):
            await bump_sources(ctx, RepoFacts(ctx, repo, default_branch=branch), found)


async def bump_sources(ctx: Context, facts: RepoFacts, release: Release) -> list[int]:
    repo = facts.repo
    where = await target(ctx, facts)
    if where is None:
        return []
    base, head, policy, fleet = where.base, where.head, where.policy, where.fleet
    if release.prerelease and not policy.prereleases:
        ctx.log.info("%s: %s is a pre-release; the policy does not take them", repo, release.tag)
        return []
    env = policy.first.name
    tree = await facts.tree(head)
    dev = set(fleet.clusters_of(env))
    paths = [p for p in candidate_paths(tree.paths()) if p.split("/")[1] in dev]
    files = await facts.files(head, paths)
    opened: list[int] = []

    def still_needed_for(source_id: str) -> Callable[[str], Awaitable[bool]]:
        async def still_needed(newer: str) -> bool:
            again = await facts.files(newer, paths)
            plans = await cpu.run(plan_source_bumps, fleet, env, again, release)
            return any(p.source_id == source_id and not p.empty for p in plans)

        return still_needed

    for plan in await cpu.run(plan_source_bumps, fleet, env, files, release):
        for cluster, why in plan.not_promotable:
            ctx.log.info("%s: source %s in %s: %s", repo, plan.source_id, cluster, why)
        if plan.empty:
            continue
        proposal = Proposal(
            still_needed=still_needed_for(plan.source_id),
            branch=source_branch(plan.source_id, release.tag),
            prefix=source_prefix(plan.source_id),
            tag=release.tag,
            changes=plan.changes,
            title=f"Bump {plan.source_id} to {release.tag} in {env}",
            body=release_body(plan),
            message=(
                f"Bump {plan.source_id} to {release.tag} in {env}\n\n"
                + "\n".join(f"- {m.cluster}: {m.old} -> {m.new}" for m in plan.moves)
                + f"\n\nRelease: {release.url}\n"
            ),
        )
        number = await propose(ctx, facts, proposal, base=base, head=head)
        if number is not None:
            opened.append(number)
    return opened


def release_body(plan: SourceBumpPlan) -> str:
    release = plan.release
    link = (
        f"[{release.repository} {release.name}]({release.url})"
        if release.url
        else (f"{release.repository} {release.name}")
    )
    lines = [
        f"A new blueprint release was published: **{link}**.",
        f"This moves the Flux source `{plan.source_id}` in every {plan.environment} cluster "
        f"that follows `{release.repository}` by tag to `{release.tag}`.",
        "",
        "| Cluster | File | From | To |",
        "|---|---|---|---|",
        *(f"| {m.cluster} | `{m.path}` | `{m.old}` | `{m.new}` |" for m in plan.moves),
    ]
    if plan.not_promotable:
        lines += ["", "**Not changed:**"]
        lines += [f"- {cluster}: {why}" for cluster, why in plan.not_promotable]
    notes = release.notes.strip()
    if notes:
        quoted = "\n".join(f"> {line}" for line in notes.splitlines()[:60])
        lines += ["", "### Release notes", "", quoted]
    lines += [
        "",
        f"Changes only {plan.environment} clusters, so the bot merges it once the required "
        "checks pass. Label it `do-not-merge` to stop that.",
        "",
        markers.marker(kind="bump", source=plan.source_id, tag=release.tag, env=plan.environment),
    ]
    return "\n".join(lines)[:60_000]
