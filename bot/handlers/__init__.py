"""The product's handlers: one gidgethub Router per concern, composed here.

Modules register on their own ``router``; this package composes them (as bedevere does) and
declares which events fan out to other repositories (those run without the delivery's
repository lock and take each target repository's lock themselves).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from gidgethub import routing

from bot.github.context import Services
from bot.handlers import (
    automerge,
    calendar,
    checks,
    commands,
    dashboard,
    images,
    installations,
    mergequeue,
    pulls,
    releases,
    resync,
)

#: A job the service runs beside the deliveries for as long as it runs (e.g. the resync).
BackgroundJob = Callable[[Services], Awaitable[None]]

router = routing.Router(
    installations.router,
    checks.router,
    pulls.router,
    automerge.router,
    mergequeue.router,
    images.router,
    commands.router,
    calendar.router,
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

#: Long-running jobs started with the service: the periodic resync, the calendar's timer.
BACKGROUND: tuple[BackgroundJob, ...] = (resync.resync_loop, calendar.calendar_loop)
