"""The HTTP client every GitHub call goes through: auth, retries, rate limits, counting.

A ``GitHubClient`` is cheap; one is made per delivery so that the delivery's API calls can be
counted, while the aiohttp session, the token cache and the per-installation ETag cache are
shared for the life of the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import gidgethub
from gidgethub import aiohttp as gh_aiohttp

log = logging.getLogger(__name__)

USER_AGENT = "fleet-promotion-bot"
#: Seconds to wait for one HTTP exchange with GitHub before treating it as lost.
REQUEST_TIMEOUT = 20.0
#: Attempts for one logical request on transient failures (5xx, resets, timeouts).
MAX_ATTEMPTS = 4
#: Longest wait we do inline; longer waits go back to the inbox as a scheduled retry.
MAX_INLINE_WAIT = 30.0

AuthProvider = Callable[[], Awaitable[str | None]]
#: Archive endpoints answer 302 to a URL on another host (codeload): the client reads the
#: redirect itself and downloads without credentials (see :meth:`GitHubClient.download`).
_ARCHIVE_URL = re.compile(r"/repos/[^/]+/[^/]+/(?:tarball|zipball)(?:/|$|\?)")


class TransientGitHubError(Exception):
    """GitHub could not answer now; the whole delivery should be retried later."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass
class ApiStats:
    """Process-wide counters, exported on /metrics."""

    by_status: Counter[str] = field(default_factory=Counter)
    rate_limit_remaining: dict[str, int] = field(default_factory=dict)
    retries: int = 0

    def record(self, status: int | str, headers: Mapping[str, str] | None, key: str) -> None:
        self.by_status[str(status)] += 1
        if headers is not None and "x-ratelimit-remaining" in headers:
            with contextlib.suppress(ValueError):
                self.rate_limit_remaining[key] = int(headers["x-ratelimit-remaining"])


def backoff(attempt: int, base: float, cap: float = 20.0) -> float:
    """Capped exponential backoff with full jitter (attempt is 1-based)."""
    return float(random.uniform(0, min(cap, base * (2 ** (attempt - 1)))))


def _is_secondary_limit(exc: gidgethub.HTTPException) -> bool:
    if exc.status_code not in (403, 429):
        return False
    if "retry-after" in exc.headers:
        return True
    return "secondary rate limit" in str(exc).lower()


def _is_primary_limit(exc: gidgethub.HTTPException) -> bool:
    return exc.status_code in (403, 429) and exc.headers.get("x-ratelimit-remaining") == "0"


class GitHubClient(gh_aiohttp.GitHubAPI):
    """gidgethub's aiohttp client plus what a production bot needs around each request."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        base_url: str,
        auth: AuthProvider,
        on_unauthorized: Callable[[], None] | None = None,
        cache: MutableMapping[str, Any] | None = None,
        semaphore: asyncio.Semaphore | None = None,
        stats: ApiStats | None = None,
        stats_key: str = "app",
        retry_base: float = 0.5,
        timeout: float = REQUEST_TIMEOUT,
    ) -> None:
        super().__init__(session, USER_AGENT, cache=cache, base_url=base_url)
        self._auth = auth
        self._on_unauthorized = on_unauthorized
        self._semaphore = semaphore
        self._stats = stats
        self._stats_key = stats_key
        self._retry_base = retry_base
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self.calls = 0
        self.calls_by_route: Counter[str] = Counter()
        self.round_trips: list[tuple[float, float]] = []

    async def _request(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes = b""
    ) -> tuple[int, Mapping[str, str], bytes]:
        attempt = 0
        while True:
            attempt += 1
            request_headers = dict(headers)
            credential = await self._auth()
            if credential:
                request_headers["authorization"] = credential
            started = time.monotonic()
            self.calls += 1
            self.calls_by_route[f"{method} {_route(url)}"] += 1
            try:
                if self._semaphore is not None:
                    async with self._semaphore:
                        result = await self._send(method, url, request_headers, body)
                else:
                    result = await self._send(method, url, request_headers, body)
            except (aiohttp.ClientError, TimeoutError) as exc:
                if self._stats is not None:
                    self._stats.record(type(exc).__name__, None, self._stats_key)
                if attempt >= MAX_ATTEMPTS:
                    raise TransientGitHubError(
                        f"{method} {_route(url)}: {type(exc).__name__} after {attempt} attempts"
                    ) from None
                if self._stats is not None:
                    self._stats.retries += 1
                await self.sleep(backoff(attempt, self._retry_base))
                continue
            finally:
                self.round_trips.append((started, time.monotonic()))
            status, response_headers, _ = result
            if self._stats is not None:
                self._stats.record(status, response_headers, self._stats_key)
            return result

    async def _send(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, Mapping[str, str], bytes]:
        async with self._session.request(
            method,
            url,
            headers=headers,
            data=body,
            timeout=self._timeout,
            allow_redirects=_ARCHIVE_URL.search(url) is None,
        ) as response:
            return response.status, response.headers, await response.read()

    @contextlib.asynccontextmanager
    async def download(self, url: str) -> AsyncIterator[aiohttp.ClientResponse]:
        """GET a URL an archive endpoint redirected to, streamed, with no credentials: the
        installation token never goes to another host (the URL carries its own short-lived
        token). Each read may take ``GITHUB_TIMEOUT``; the whole download has no time limit."""
        seconds = self._timeout.total
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=seconds, sock_read=seconds)
        async with self._session.get(
            url,
            headers={"User-Agent": USER_AGENT},
            timeout=timeout,
            allow_redirects=True,
            max_redirects=3,
        ) as response:
            yield response

    async def query(self, query: str, **variables: Any) -> Any:
        """A GraphQL call (gidgethub's ``graphql``, at the endpoint beside ``base_url``): a
        revoked token is renewed once, GitHub's 5xx become a TransientGitHubError. GraphQL
        errors (answered with HTTP 200) come back as ``gidgethub.QueryError``."""
        endpoint = graphql_url(self.base_url)
        for attempt in (1, 2):
            try:
                return await self.graphql(query, endpoint=endpoint, **variables)
            except gidgethub.GraphQLAuthorizationFailure:
                if attempt == 2 or self._on_unauthorized is None:
                    raise
                self._on_unauthorized()
            except gidgethub.GitHubBroken as exc:
                raise TransientGitHubError(f"POST /graphql: {exc}") from None
        raise AssertionError("unreachable")

    async def handle_rate_limit_error(
        self,
        *,
        method: str,
        url: str,
        exception: gidgethub.HTTPException,
        attempt: int,
    ) -> bool:
        """Decide whether gidgethub should send the request again (we do the waiting here)."""
        status = int(exception.status_code)
        if status == 401 and attempt == 1 and self._on_unauthorized is not None:
            # The cached token was revoked or expired early: fetch a new one once.
            self._on_unauthorized()
            return True
        if _is_secondary_limit(exception) or _is_primary_limit(exception):
            wait = _limit_wait(exception)
            if wait > MAX_INLINE_WAIT or attempt >= MAX_ATTEMPTS:
                raise TransientGitHubError(
                    f"{method} {_route(url)}: rate limited for {wait:.0f}s", retry_after=wait
                ) from None
            log.warning("rate limited on %s %s; waiting %.1fs", method, _route(url), wait)
            await self.sleep(wait)
            return True
        if status >= 500:
            if attempt >= MAX_ATTEMPTS:
                raise TransientGitHubError(
                    f"{method} {_route(url)}: GitHub answered {status} {attempt} times"
                ) from None
            if self._stats is not None:
                self._stats.retries += 1
            await self.sleep(backoff(attempt, self._retry_base))
            return True
        return False


def graphql_url(base_url: str) -> str:
    """GitHub's GraphQL endpoint beside a REST base URL: ``https://api.github.com/graphql``,
    and ``https://HOST/api/graphql`` for GitHub Enterprise Server's ``https://HOST/api/v3``."""
    base = base_url.rstrip("/")
    if base.endswith("/api/v3"):
        return base.removesuffix("/v3") + "/graphql"
    return base + "/graphql"


def _limit_wait(exc: gidgethub.HTTPException) -> float:
    headers = exc.headers
    retry_after = headers.get("retry-after")
    if retry_after is not None:
        try:
            return max(0.0, float(retry_after))
        except ValueError:
            pass
    reset = headers.get("x-ratelimit-reset")
    if headers.get("x-ratelimit-remaining") == "0" and reset is not None:
        try:
            return max(0.0, float(reset) - time.time()) + 1.0
        except ValueError:
            pass
    # GitHub's advice for a secondary limit without headers: wait at least a minute.
    return 60.0


def _route(url: str) -> str:
    """A URL without host and query, for logs and per-route counters (no secrets in URLs)."""
    path = url.split("://", 1)[-1]
    path = path[path.find("/") :] if "/" in path else "/"
    return path.split("?", 1)[0]
