"""The app's webhook delivery log: list (cursor pages, newest first), one delivery, redeliver.

GitHub keeps every attempt to post a webhook to the app's URL, with its outcome, for 3 days
(7 on GHES), and never retries a failed one by itself. All three endpoints take the app's JWT.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from bot.fake.server import IDENTITY, json_response
from bot.fake.state import ApiError, App, iso, not_found
from bot.fake.webhooks import Delivery

if TYPE_CHECKING:
    from bot.fake.server import Api

CURSOR_PREFIX = "v1_"


def item(d: Delivery) -> dict[str, Any]:
    """A ``hook-delivery-item``: the delivery without its request and response."""
    return {
        "id": d.log_id,
        "guid": d.delivery_id,
        "delivered_at": iso(d.delivered_at),
        "redelivery": d.redelivery,
        "duration": d.duration,
        "status": d.outcome,
        "status_code": d.status or 0,
        "event": d.event,
        "action": d.action,
        "installation_id": d.installation_id,
        "repository_id": d.repository_id,
        "throttled_at": None,
    }


def full(d: Delivery) -> dict[str, Any]:
    """A ``hook-delivery``: the item plus the URL, the request and the response."""
    out = item(d)
    out["url"] = d.url
    out["request"] = {"headers": dict(d.request_headers), "payload": d.payload}
    out["response"] = {
        "headers": dict(d.response_headers) or None,
        "payload": d.response_text,
    }
    return out


class HookRoutes:
    def __init__(self, api: Api) -> None:
        self.api = api
        self.hooks = api.world.hooks

    def register(self) -> None:
        add = self.api.add
        add("GET", "/app/hook/deliveries", self.list_deliveries, auth="jwt")
        add("GET", "/app/hook/deliveries/{id}", self.get_delivery, auth="jwt")
        add("POST", "/app/hook/deliveries/{id}/attempts", self.redeliver, auth="jwt")

    @staticmethod
    def app_of(request: web.Request) -> App:
        app = request[IDENTITY].app
        assert app is not None  # the routes take only the app's JWT
        return app

    def find(self, request: web.Request) -> Delivery:
        app = self.app_of(request)
        try:
            wanted = int(request.match_info["id"])
        except ValueError:
            raise not_found() from None
        for d in self.hooks.listed(app):
            if d.log_id == wanted:
                return d
        raise not_found()

    async def list_deliveries(self, request: web.Request) -> web.Response:
        """``GET /app/hook/deliveries?per_page=&cursor=``: newest first; the next page's
        cursor is in the ``Link`` header (there is no page number)."""
        app = self.app_of(request)
        try:
            per_page = int(request.query.get("per_page", "30"))
        except ValueError:
            per_page = 30
        per_page = max(1, min(per_page, 100))
        items = self.hooks.listed(app)
        cursor = request.query.get("cursor", "")
        if cursor:
            if not cursor.startswith(CURSOR_PREFIX) or not cursor[3:].isdigit():
                raise ApiError(422, "Invalid cursor")
            before = int(cursor[3:])
            items = [d for d in items if d.log_id < before]
        page = items[:per_page]
        headers: dict[str, str] = {}
        if len(items) > per_page:
            nxt = request.url.update_query(
                {"per_page": str(per_page), "cursor": f"{CURSOR_PREFIX}{page[-1].log_id}"}
            )
            headers["Link"] = f'<{nxt}>; rel="next"'
        return json_response([item(d) for d in page], headers=headers)

    async def get_delivery(self, request: web.Request) -> web.Response:
        """``GET /app/hook/deliveries/{delivery_id}``."""
        return json_response(full(self.find(request)))

    async def redeliver(self, request: web.Request) -> web.Response:
        """``POST /app/hook/deliveries/{delivery_id}/attempts``: 202; GitHub posts the same
        event again, with the same ``guid`` (``X-GitHub-Delivery``)."""
        self.hooks.redeliver(self.find(request))
        return json_response({}, status=202)


def register(api: Api) -> None:
    """Add the delivery-log routes."""
    HookRoutes(api).register()
