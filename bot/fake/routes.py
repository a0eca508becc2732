"""The fake's full application: the Api core (``server``) with every route module's routes.

The route modules depend on the server (its ``Api``, helpers and middleware); the server knows
none of them. This module composes them, in matching order (specific paths before catch-alls).
"""

from __future__ import annotations

from aiohttp import web

from bot.fake import (
    routes_archive,
    routes_core,
    routes_hooks,
    routes_misc,
    routes_pulls,
    routes_queue,
)
from bot.fake.queue import MergeQueues
from bot.fake.server import Api


def build_app(api: Api, queues: MergeQueues) -> web.Application:
    """Declare every API route on ``api`` and build its aiohttp application."""
    routes_core.register(api)
    routes_hooks.register(api)
    routes_pulls.register(api)
    routes_misc.register(api)
    routes_queue.register(api, queues)
    api.archives = routes_archive.register(api)
    routes_core.register_catchalls(api)
    return api.build(lambda app: routes_misc.register_web(api, app))
