"""The product's handlers: one gidgethub Router per concern, composed here.

Modules register on their own ``router``; this package composes them (as bedevere does) and
declares which events fan out to other repositories (those run without the delivery's
repository lock and take each target repository's lock themselves).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gidgethub import routing

from bot.handlers import (
    automerge,
    checks,
    commands,
    dashboard,
    images,
    installations,
    releases,
    resync,
)

if TYPE_CHECKING:
    from bot.app import BackgroundJob

router = routing.Router(
    installations.router,
    checks.router,
    automerge.router,
    images.router,
    commands.router,
    dashboard.router,
    releases.router,
)

#: Events whose work lands in other repositories than the one in the payload.
FANOUT_EVENTS: frozenset[str] = frozenset(
    {
        "installation",
        "installation_repositories",
        "membership",
        "team",
        "registry_package",
        "package",
        "repository_dispatch",
        "release",
    }
)

#: Long-running jobs started with the service (e.g. the periodic resync).
BACKGROUND: tuple[BackgroundJob, ...] = (resync.resync_loop,)
