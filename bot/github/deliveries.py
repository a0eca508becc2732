"""The app's webhook delivery log on GitHub (app JWT): what was sent, and how it went.

``GET /app/hook/deliveries`` lists every attempt, newest first, a cursor page at a time (the
next page only through the ``Link`` header); ``GET /app/hook/deliveries/{id}`` adds the request
GitHub sent (headers and payload). GitHub keeps them 3 days (github.com, GHE.com), 7 on GHES.
"""

from __future__ import annotations

import calendar
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from bot.github.client import GitHubClient

DAY = 24 * 3600.0


def retention(api_url: str) -> float:
    """How far back GitHub lists deliveries: 3 days on github.com and GHE.com, 7 on GHES."""
    host = urlsplit(api_url).hostname or ""
    if host == "api.github.com" or host.endswith(".ghe.com"):
        return 3 * DAY
    return 7 * DAY


def parse_time(value: Any) -> float:
    """GitHub's ``2021-05-12T20:33:44Z`` as epoch seconds (0 when missing or malformed)."""
    if not isinstance(value, str):
        return 0.0
    try:
        return float(calendar.timegm(time.strptime(value[:19], "%Y-%m-%dT%H:%M:%S")))
    except ValueError:
        return 0.0


@dataclass(frozen=True)
class Attempt:
    """One entry of the log (``hook-delivery-item``)."""

    id: int
    guid: str
    delivered_at: float
    status_code: int
    event: str
    action: str | None
    redelivery: bool

    @property
    def ok(self) -> bool:
        """GitHub handed it over: the endpoint answered 2xx in time."""
        return 200 <= self.status_code < 300

    @classmethod
    def from_json(cls, item: Any) -> Attempt | None:
        if not isinstance(item, dict):
            return None
        try:
            return cls(
                id=int(item["id"]),
                guid=str(item["guid"]),
                delivered_at=parse_time(item.get("delivered_at")),
                status_code=int(item.get("status_code") or 0),
                event=str(item["event"]),
                action=item["action"] if isinstance(item.get("action"), str) else None,
                redelivery=bool(item.get("redelivery")),
            )
        except (KeyError, TypeError, ValueError):
            return None


async def attempts_since(client: GitHubClient, since: float) -> AsyncIterator[Attempt]:
    """Attempts newest first, down to ``since`` (epoch seconds): pages stop being read once
    an attempt older than that appears."""
    async for item in client.getiter("/app/hook/deliveries?per_page=100", iterable_key=None):
        attempt = Attempt.from_json(item)
        if attempt is None:
            continue
        if attempt.delivered_at < since:
            return
        yield attempt


async def request_of(client: GitHubClient, delivery_id: int) -> tuple[dict[str, Any], Any]:
    """The headers and payload GitHub sent with one attempt."""
    data = await client.getitem(f"/app/hook/deliveries/{delivery_id}")
    request = data.get("request") if isinstance(data, dict) else None
    if not isinstance(request, dict):
        return {}, None
    headers = request.get("headers")
    return (headers if isinstance(headers, dict) else {}), request.get("payload")
