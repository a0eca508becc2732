"""GitHub App authentication: the app JWT and installation tokens, both cached.

bedevere and miss-islington fetch a new installation token for every delivery; a token lives an
hour, so we keep it until a few minutes before it expires and save one API call per event.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cachetools import TLRUCache
from gidgethub.apps import get_jwt

#: A token is renewed when less than this many seconds of its life remain.
REFRESH_MARGIN = 300.0
#: GitHub accepts JWTs that live at most 10 minutes; we sign for 9 and renew after 7.
JWT_LIFETIME = 9 * 60
JWT_RENEW_AFTER = 7 * 60

# (method, url, jwt) -> response body of POST /app/installations/{id}/access_tokens
TokenFetcher = Callable[[int, str], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class InstallationToken:
    token: str
    expires_at: float  # epoch seconds
    permissions: dict[str, str]

    def __repr__(self) -> str:  # never show the token itself
        return f"InstallationToken(expires_at={self.expires_at!r})"


def _ttu(_key: int, value: InstallationToken, now: float) -> float:
    # TLRUCache calls this with its timer's "now"; we use wall-clock epoch seconds throughout.
    return value.expires_at - REFRESH_MARGIN


class AppAuth:
    """Signs app JWTs and hands out installation tokens from a time-aware cache."""

    def __init__(
        self,
        app_id: str,
        private_key: str,
        *,
        clock: Callable[[], float] = time.time,
        maxsize: int = 4096,
    ) -> None:
        self.app_id = app_id
        self._private_key = private_key
        self._clock = clock
        self._jwt: str | None = None
        self._jwt_renew_at = 0.0
        self._tokens: TLRUCache[int, InstallationToken] = TLRUCache(
            maxsize=maxsize, ttu=_ttu, timer=clock
        )
        self._locks: dict[int, asyncio.Lock] = {}
        self.tokens_fetched = 0

    def __repr__(self) -> str:
        return f"AppAuth(app_id={self.app_id!r})"

    def jwt(self) -> str:
        now = self._clock()
        if self._jwt is None or now >= self._jwt_renew_at:
            self._jwt = get_jwt(
                app_id=self.app_id, private_key=self._private_key, expiration=JWT_LIFETIME
            )
            self._jwt_renew_at = now + JWT_RENEW_AFTER
        return self._jwt

    def cached(self, installation_id: int) -> InstallationToken | None:
        return self._tokens.get(installation_id)

    def forget(self, installation_id: int) -> None:
        """Drop a token GitHub rejected (401), so the next call fetches a fresh one."""
        self._tokens.pop(installation_id, None)

    async def token(self, installation_id: int, fetch: TokenFetcher) -> str:
        """The installation's token, fetched at most once at a time per installation."""
        hit = self._tokens.get(installation_id)
        if hit is not None:
            return hit.token
        lock = self._locks.setdefault(installation_id, asyncio.Lock())
        async with lock:
            hit = self._tokens.get(installation_id)
            if hit is not None:
                return hit.token
            body = await fetch(installation_id, self.jwt())
            token = InstallationToken(
                token=str(body["token"]),
                expires_at=parse_timestamp(str(body["expires_at"])),
                permissions=dict(body.get("permissions") or {}),
            )
            self._tokens[installation_id] = token
            self.tokens_fetched += 1
            return token.token


def parse_timestamp(text: str) -> float:
    """GitHub's ISO-8601 timestamps ('2016-07-11T22:14:10Z') as epoch seconds."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()
