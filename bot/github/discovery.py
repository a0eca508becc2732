"""Which repositories of an installation are fleet repos (they hold .github/promotion.yml)."""

from __future__ import annotations

import asyncio
from typing import Any

import gidgethub

from bot.fleet.policy import POLICY_PATH
from bot.github.context import Context


async def fleet_repos(ctx: Context) -> dict[str, str]:
    """``{full name: default branch}`` of the installation's fleet repos, remembered.

    The cache is dropped on installation_repositories events and on pushes that touch the
    policy file, so a new fleet repo is found on its first event.

    The list of repositories is always read again (it changes while the bot is down). A
    repository whose tree the bot has read before (in this process or, after a restart, from
    the trees on disk) is not probed: whoever works on it reads its policy at the head it works
    on anyway, and does nothing where there is none (``NotAFleetRepo``). So a restart costs one
    call here, not one per fleet repo; a repository that stopped being a fleet repo while the
    bot was down costs one read of its tree, once.
    """
    cache = ctx.services.caches.fleet_repos
    known = cache.get(ctx.installation_id)
    if known is not None:
        return known
    repos: list[dict[str, Any]] = await ctx.gateway.collect(
        "/installation/repositories?per_page=100", key="repositories"
    )
    candidates = [r for r in repos if not r.get("archived") and not r.get("disabled")]

    async def probe(repo: dict[str, Any]) -> tuple[str, str] | None:
        name = str(repo["full_name"])
        branch = str(repo.get("default_branch") or "main")
        if await ctx.gateway.read_before(name):
            return name, branch
        try:
            await ctx.gateway.get(f"/repos/{name}/contents/{POLICY_PATH}?ref={branch}")
        except gidgethub.BadRequest as exc:
            if exc.status_code in (403, 404):
                return None
            raise
        return name, branch

    found = await asyncio.gather(*(probe(r) for r in candidates))
    result = dict(sorted(f for f in found if f is not None))
    cache[ctx.installation_id] = result
    return result


async def is_fleet_repo(ctx: Context, repo: str, branch: str | None) -> bool:
    """Whether ``repo`` is a fleet repo, from the installation's discovery when it is known,
    else from one cheap probe of the policy file (remembered for a while). Events of other
    repositories then cost one call, not a read of their whole tree."""
    known = ctx.services.caches.fleet_repos.get(ctx.installation_id)
    if known is not None:
        return repo in known
    probes = ctx.services.caches.fleet_probes
    if repo in probes:
        return bool(probes[repo])
    ref = f"?ref={branch}" if branch else ""
    try:
        await ctx.gateway.get(f"/repos/{repo}/contents/{POLICY_PATH}{ref}")
    except gidgethub.BadRequest as exc:
        if exc.status_code not in (403, 404):
            raise
        found = False
    else:
        found = True
    probes[repo] = found
    return found


def forget(ctx: Context, repo: str | None = None) -> None:
    """Drop what discovery knows (for the installation, and the probe of ``repo``)."""
    ctx.services.caches.fleet_repos.pop(ctx.installation_id, None)
    if repo is None:
        ctx.services.caches.fleet_probes.clear()
    else:
        ctx.services.caches.fleet_probes.pop(repo, None)


def not_a_fleet_repo(ctx: Context, repo: str) -> None:
    """``repo``'s default branch holds no policy (read by whoever worked on it): it is no
    fleet repo until a push adds one (which drops discovery's cache again)."""
    cache = ctx.services.caches.fleet_repos
    known = cache.get(ctx.installation_id)
    if known is not None and repo in known:
        # a new dict: callers may be iterating over the one they were given
        cache[ctx.installation_id] = {r: b for r, b in known.items() if r != repo}
    ctx.services.caches.fleet_probes[repo] = False
