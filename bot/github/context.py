"""Long-lived services of the process, and the per-delivery context handlers receive."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import aiohttp
from cachetools import LRUCache, TTLCache

from bot.concurrency.locks import KeyedLocks, RepoLocks
from bot.github.archive import ArchiveLimits
from bot.github.auth import AppAuth
from bot.github.client import ApiStats, GitHubClient
from bot.github.gateway import Gateway, ObjectCache
from bot.github.objectstore import open_store
from bot.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AppIdentity:
    id: int
    slug: str

    @property
    def bot_login(self) -> str:
        return f"{self.slug}[bot]"


@dataclass
class Caches:
    """Caches of derived facts. Git is the state: every entry can be thrown away safely."""

    #: (installation, org, team) -> member logins (None: no such team)
    teams: TTLCache[tuple[int, str, str], frozenset[str] | None]
    #: installation -> {repo full name: default branch} of the fleet repos found
    fleet_repos: TTLCache[int, dict[str, str]] = field(
        default_factory=lambda: TTLCache(maxsize=10_000, ttl=3600)
    )
    #: repo -> whether it holds the policy file (one probe, for events of unknown repos)
    fleet_probes: TTLCache[str, bool] = field(
        default_factory=lambda: TTLCache(maxsize=100_000, ttl=600)
    )
    #: small derived values keyed by immutable inputs (verdict fingerprints, values at commits)
    derived: LRUCache[Any, Any] = field(default_factory=lambda: LRUCache(maxsize=200_000))
    #: parsed files by blob sha: a few KB each, so a few thousand (the dev inputs of a bump,
    #: the upstream inputs of a check)
    parsed: LRUCache[Any, Any] = field(default_factory=lambda: LRUCache(maxsize=5_000))
    #: (path, blob sha) -> the image value (or the reason the file cannot be read): what a
    #: fleet-wide view needs, in about a hundred bytes per file
    images: LRUCache[tuple[str, str], tuple[str | None, str | None]] = field(
        default_factory=lambda: LRUCache(maxsize=300_000)
    )


class Wakeups:
    """When the bot must look at a repository again by itself: the next instant a deploy
    window opens or closes, or a freeze starts or ends, for one of its open pull requests.

    The calendar's timer (``bot.handlers.calendar``) takes the repositories that are due on
    each tick, against the calendar clock (``Services.now``), so tests can move that clock
    instead of sleeping. This one lives in the process's memory: with one process that is the
    whole picture, and a cache like the others (lost on restart, where the resync at start
    judges every open pull request again and so sets them anew). With ``DATABASE_URL`` the
    replicas share theirs in PostgreSQL (``bot.service.postgres.PostgresWakeups``), so a
    replica that stops leaves its timers to the others.
    """

    def __init__(self) -> None:
        self._due: dict[tuple[int, str], tuple[datetime, str | None]] = {}
        self._poked = asyncio.Event()

    async def wake(self, installation_id: int, repo: str, at: datetime, branch: str | None) -> None:
        """Look at ``repo`` again at ``at`` (the earliest of all asks wins)."""
        key = (installation_id, repo)
        known = self._due.get(key)
        if known is None or at < known[0]:
            self._due[key] = (at, branch)

    async def due(self, now: datetime) -> list[tuple[int, str, str | None]]:
        """Take the repositories whose time has come; each is this caller's to judge again
        (then :meth:`done`). Looking again sets their next wake anew."""
        ready = [(key, value) for key, value in self._due.items() if value[0] <= now]
        for key, _value in ready:
            del self._due[key]
        return [(inst, repo, branch) for (inst, repo), (_at, branch) in ready]

    async def done(self, installation_id: int, repo: str) -> None:
        """The repository taken by :meth:`due` was judged again (or could not be)."""

    def poke(self) -> None:
        """Make the timer tick now (after moving the clock, or changing its interval)."""
        self._poked.set()

    async def sleep(self, seconds: float) -> bool:
        """Wait ``seconds``, or less when poked; True when poked."""
        poked = False
        with suppress(TimeoutError):
            await asyncio.wait_for(self._poked.wait(), timeout=seconds)
            poked = True
        self._poked.clear()
        return poked


class Notes(Protocol):
    """Small durable values the service keeps for itself (the store's ``meta``: SQLite under
    ``DATA_DIR``, or the shared PostgreSQL database), such as the text of each freeze issue
    the bot opened. Failures raise: callers that can do without a note catch them."""

    async def get_meta(self, key: str) -> str | None: ...

    async def set_meta(self, key: str, value: str) -> None: ...


class MemoryNotes:
    """Notes of one process's lifetime (services built without a store: tools, tests)."""

    def __init__(self) -> None:
        self._values: dict[str, str] = {}

    async def get_meta(self, key: str) -> str | None:
        return self._values.get(key)

    async def set_meta(self, key: str, value: str) -> None:
        self._values[key] = value


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Services:
    """What every delivery shares: one HTTP session, token cache, object caches, locks."""

    def __init__(
        self,
        settings: Settings,
        session: aiohttp.ClientSession,
        *,
        clock: Callable[[], float] = time.time,
        locks: RepoLocks | None = None,
        wakeups: Wakeups | None = None,
        notes: Notes | None = None,
    ) -> None:
        if not settings.has_credentials:
            raise ValueError("Services need APP_ID, PRIVATE_KEY and WEBHOOK_SECRET")
        assert settings.app_id is not None and settings.private_key is not None
        self.settings = settings
        self.session = session
        self.clock = clock
        self.auth = AppAuth(settings.app_id, settings.private_key, clock=clock)
        self.stats = ApiStats()
        self.semaphore = asyncio.Semaphore(settings.max_concurrent_requests)
        self.objects = ObjectCache(
            store=open_store(settings.data_dir, settings.cache_max_mb),
            archive_limits=ArchiveLimits(total_bytes=settings.archive_max_mb * 1024 * 1024),
        )
        #: One writer per repository (in this process, or across replicas on PostgreSQL),
        #: and periodic jobs run by one replica at a time.
        self.locks: RepoLocks = locks if locks is not None else KeyedLocks()
        self.caches = Caches(teams=TTLCache(maxsize=10_000, ttl=settings.team_cache_ttl))
        self._etags: LRUCache[int, LRUCache[str, Any]] = LRUCache(maxsize=1000)
        self._identity: AppIdentity | None = None
        self.retry_base = 0.5
        #: When the last delivery arrived (monotonic): the dispatcher lets acknowledgements go
        #: first during a burst.
        self.last_arrival = 0.0
        #: Set by the dispatcher: run a job later, coalescing repeats (debounce).
        self.defer: Callable[[str, float, Callable[[], Awaitable[None]]], bool] = _no_defer
        #: The clock of the change calendar (deploy windows, freezes); tests move it.
        self.now: Callable[[], datetime] = _utc_now
        #: When to judge a repository's open pull requests again by the calendar (in memory,
        #: or shared by the replicas in PostgreSQL).
        self.wakeups: Wakeups = wakeups if wakeups is not None else Wakeups()
        #: The service's own small durable records (freeze issues as the bot wrote them).
        self.notes: Notes = notes if notes is not None else MemoryNotes()

    # --- clients ----------------------------------------------------------------------------

    def app_client(self) -> GitHubClient:
        """A client authenticated as the app itself (JWT), for /app endpoints."""

        async def bearer() -> str:
            return f"bearer {self.auth.jwt()}"

        return GitHubClient(
            self.session,
            base_url=self.settings.github_api_url,
            auth=bearer,
            semaphore=self.semaphore,
            stats=self.stats,
            stats_key="app",
            retry_base=self.retry_base,
            timeout=self.settings.github_timeout,
        )

    def installation_client(self, installation_id: int, *, cached: bool = True) -> GitHubClient:
        """A client for one installation; ``cached=False`` skips ETag revalidation data."""

        async def token() -> str:
            value = await self.auth.token(installation_id, self._fetch_token)
            return f"token {value}"

        cache: LRUCache[str, Any] | None = None
        if cached:
            cache = self._etags.get(installation_id)
            if cache is None:
                cache = LRUCache(maxsize=5000)
                self._etags[installation_id] = cache
        return GitHubClient(
            self.session,
            base_url=self.settings.github_api_url,
            auth=token,
            on_unauthorized=lambda: self.auth.forget(installation_id),
            cache=cache,
            semaphore=self.semaphore,
            stats=self.stats,
            stats_key=f"installation:{installation_id}",
            retry_base=self.retry_base,
            timeout=self.settings.github_timeout,
        )

    def gateway(self, installation_id: int, *, cached: bool = True) -> Gateway:
        return Gateway(self.installation_client(installation_id, cached=cached), self.objects)

    async def _fetch_token(self, installation_id: int, jwt: str) -> dict[str, Any]:
        client = self.app_client()
        data: dict[str, Any] = await client.post(
            f"/app/installations/{installation_id}/access_tokens", data=b"", jwt=jwt
        )
        return data

    @property
    def app_id(self) -> int:
        """The app's id, as configured (APP_ID): no call."""
        assert self.settings.app_id is not None
        return int(self.settings.app_id)

    def learn_identity(self, app: Any) -> None:
        """The app's identity from an object GitHub attributes to it (a check run we created
        carries ``app``), so that a fresh process need not ask ``GET /app``."""
        if self._identity is not None or not isinstance(app, dict):
            return
        slug = app.get("slug")
        if app.get("id") == self.app_id and isinstance(slug, str) and slug:
            self._identity = AppIdentity(id=self.app_id, slug=slug)

    async def identity(self) -> AppIdentity:
        """The app's id and slug (GET /app), read once per process."""
        if self._identity is None:
            data = await self.app_client().getitem("/app")
            self._identity = AppIdentity(id=int(data["id"]), slug=str(data["slug"]))
        return self._identity

    async def installation_for(self, repo: str) -> int:
        """The installation id for a repository (for payloads that lack ``installation``)."""
        data = await self.app_client().getitem(f"/repos/{repo}/installation")
        return int(data["id"])


def _no_defer(key: str, delay: float, job: Callable[[], Awaitable[None]]) -> bool:
    del key, delay, job
    return False


@dataclass
class Context:
    """What a handler gets with each event: the delivery, a counted gateway, the services."""

    services: Services
    installation_id: int
    delivery_id: str
    event: str
    gateway: Gateway
    log: logging.LoggerAdapter[logging.Logger]
    #: True for explicit re-runs: read memberships and other cached facts afresh.
    fresh: bool = False

    @classmethod
    def background(cls, services: Services, installation_id: int, name: str, repo: str) -> Context:
        """A context for work the bot starts itself (a debounced refresh, a merge retry, the
        resync), with its own counted gateway."""
        adapter = logging.LoggerAdapter(
            logging.getLogger(f"bot.{name}"), {"delivery": name, "event": name, "repo": repo}
        )
        return cls(
            services=services,
            installation_id=installation_id,
            delivery_id=f"{name}-{repo}",
            event=name,
            gateway=services.gateway(installation_id),
            log=adapter,
        )

    def lock(self, repo: str) -> AbstractAsyncContextManager[None]:
        return self.services.locks.hold(repo)

    @property
    def settings(self) -> Settings:
        return self.services.settings

    async def identity(self) -> AppIdentity:
        return await self.services.identity()

    async def team_members(self, org: str, team: str) -> frozenset[str] | None:
        key = (self.installation_id, org.lower(), team.lower())
        if not self.fresh and key in self.services.caches.teams:
            return self.services.caches.teams[key]
        members = await self.gateway.team_members(org, team)
        self.services.caches.teams[key] = members
        return members

    def forget_teams(self, org: str) -> None:
        for key in list(self.services.caches.teams.keys()):
            if key[0] == self.installation_id and key[1] == org.lower():
                self.services.caches.teams.pop(key, None)
