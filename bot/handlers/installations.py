"""Installation changes: forget what we knew about the installation's fleet repos."""

from __future__ import annotations

from gidgethub import routing, sansio

from bot.github import discovery
from bot.github.context import Context

router = routing.Router()


@router.register("installation_repositories")
@router.register("installation")
async def installation_changed(event: sansio.Event, ctx: Context) -> None:
    discovery.forget(ctx)
    ctx.log.info(
        "installation %s changed (%s): fleet repos will be looked up again",
        ctx.installation_id,
        event.data.get("action"),
    )
