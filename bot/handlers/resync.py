"""The level-triggered safety net: GitHub does not redeliver a webhook it failed to send.

At start and every ``RESYNC_INTERVAL`` seconds, every open PR of every fleet repo of every
installation is judged again, and mergeable dev PRs are merged. Since the checks are written only
when they change and immutable facts are cached, a quiet resync costs a few calls per repo.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from bot.github import discovery
from bot.github.context import Context, Services
from bot.github.facts import RepoFacts
from bot.handlers import automerge
from bot.handlers.checks import gate_pull

log = logging.getLogger("bot.resync")


async def resync_loop(services: Services) -> None:
    interval = services.settings.resync_interval
    if interval <= 0:
        return
    while True:
        try:
            # one replica a round (on PostgreSQL the others skip it)
            async with services.locks.solo("resync", every=interval) as mine:
                if mine:
                    await resync(services)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("resync failed; trying again in %.0fs", interval)
        await asyncio.sleep(interval)


async def resync(services: Services) -> dict[str, int]:
    """Judge every open PR of every fleet repo again; returns PRs seen per repo."""
    started = time.monotonic()
    app = services.app_client()
    installations: list[dict[str, Any]] = []
    async for item in app.getiter("/app/installations?per_page=100", iterable_key=None):
        installations.append(item)
    seen: dict[str, int] = {}
    for installation in installations:
        inst = int(installation["id"])
        ctx = Context.background(services, inst, "resync", f"installation:{inst}")
        discovery.forget(ctx)  # find repos that became fleet repos without telling us
        for repo, branch in (await discovery.fleet_repos(ctx)).items():
            async with ctx.lock(repo):
                facts = RepoFacts(ctx, repo, default_branch=branch)
                pulls = await ctx.gateway.open_pulls(repo)
                for pr in pulls:
                    outcome = await gate_pull(ctx, facts, pr)
                    if outcome is not None:
                        await automerge.consider(ctx, facts, pr, outcome)
                seen[repo] = len(pulls)
        log.info(
            "resync of installation %s: %d fleet repo(s), %d open PR(s), %d API calls, %.1fs",
            inst,
            len(seen),
            sum(seen.values()),
            ctx.gateway.calls,
            time.monotonic() - started,
        )
    return seen
