"""Repository archives the way GitHub serves them: the API redirects, another host serves.

``GET /repos/{owner}/{repo}/tarball/{ref}`` answers ``302`` with a ``Location`` on the
codeload host (here a second listener, on its own port: another origin, as on github.com),
``/{owner}/{repo}/legacy.tar.gz/{sha}?token=...``, the token valid for five minutes. The codeload
host serves the commit's tar.gz (``bot.fake.archives``) streamed, ``404`` for an empty
repository or a bad token, and refuses a request that carries an ``Authorization`` header: a
client that forwards the installation token to it is counted in ``Settings.archive_auth_leaks``,
so a test fails on the leak even when the client recovers.

The API call counts against the rate limit like any other; the download does not.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import web

from bot.fake.archives import tarball, tarball_chunks
from bot.fake.server import RecordedRequest, json_response
from bot.fake.state import Repo, not_found

if TYPE_CHECKING:
    from bot.fake.server import Api

#: How long a codeload URL works (GitHub: "expire after five minutes" for private repos).
TOKEN_TTL = 300.0
#: Archives kept built (per commit), as codeload caches them.
CACHED_ARCHIVES = 4
CHUNK = 64 * 1024


@dataclass
class ArchiveOverride:
    """A test's stand-in for a repository's archive: bytes, or a function of the real ones."""

    body: bytes | Callable[[bytes], bytes]
    times: int | None = 1
    status: int = 200


@dataclass(frozen=True)
class _Grant:
    repo: str
    sha: str
    expires: float


class ArchiveRoutes:
    """The API's archive endpoint and the codeload host's download route."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.world = api.world
        self.settings = api.settings
        self._grants: dict[str, _Grant] = {}
        self._built: dict[str, bytes] = {}

    def register(self) -> None:
        repo = "/repos/{owner}/{repo}"
        self.api.add("GET", repo + "/tarball/{ref:.+}", self.redirect, perm=("contents", "read"))

    # ---- the API ---------------------------------------------------------------------------
    async def redirect(self, request: web.Request) -> web.Response:
        """``302`` to a short-lived codeload URL; ``404`` for a ref the repo does not have."""
        repo = self.api.repo_of(request)
        ref = request.match_info["ref"]
        empty = not any(name.startswith("refs/heads/") for name in repo.refs)
        sha = repo.resolve(ref)
        if sha is None:
            if not empty:
                raise not_found()
            sha = ref  # GitHub redirects; the download of an empty repository is a 404
        token = secrets.token_urlsafe(24)
        self._grants[token] = _Grant(repo.full_name.lower(), sha, time.time() + TOKEN_TTL)
        url = f"{self.settings.codeload_url}/{repo.full_name}/legacy.tar.gz/{sha}?token={token}"
        return web.Response(status=302, headers={"Location": url})

    # ---- the codeload host -----------------------------------------------------------------
    def codeload_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/{owner}/{repo}/legacy.tar.gz/{sha}", self.download)
        return app

    async def download(self, request: web.Request) -> web.StreamResponse:
        started = time.time()
        t0 = time.perf_counter()
        status = 500
        try:
            if self.settings.latency:
                await asyncio.sleep(self.settings.latency)
            response = await self._download(request)
            status = response.status
            return response
        finally:
            self.settings.requests.append(
                RecordedRequest(
                    request.method,
                    request.path,
                    "token=…" if "token" in request.query else "",
                    status,
                    "codeload",
                    started,
                    time.perf_counter() - t0,
                )
            )

    async def _download(self, request: web.Request) -> web.StreamResponse:
        if "Authorization" in request.headers:
            self.settings.archive_auth_leaks += 1
            return json_response({"message": "credentials sent to the archive host"}, 403)
        full = f"{request.match_info['owner']}/{request.match_info['repo']}"
        sha = request.match_info["sha"]
        grant = self._grants.get(request.query.get("token", ""))
        if (
            grant is None
            or grant.expires < time.time()
            or grant.repo != full.lower()
            or grant.sha != sha
        ):
            return web.Response(status=404, text="Not Found")
        repo = self.world.state.repo(full)
        if repo is None or sha not in repo.objects.commits:
            return web.Response(status=404, text="Not Found")
        override = self.settings.archive_overrides.get(repo.full_name.lower())
        if override is not None and override.times is not None:
            override.times -= 1
            if override.times <= 0:
                del self.settings.archive_overrides[repo.full_name.lower()]
        if override is not None and override.status != 200:
            return web.Response(status=override.status, text="archive unavailable")
        name = f"{repo.owner.login}-{repo.name}-{sha[:7]}.tar.gz"
        response = web.StreamResponse(
            status=200,
            headers={
                "Content-Type": "application/x-gzip",
                "Content-Disposition": f"attachment; filename={name}",
            },
        )
        if override is not None:
            body = await self.build(repo, sha)
            body = override.body if isinstance(override.body, bytes) else override.body(body)
            await response.prepare(request)
            for start in range(0, len(body), CHUNK):
                await response.write(body[start : start + CHUNK])
        else:
            await response.prepare(request)
            async for chunk in self.chunks(repo, sha):
                await response.write(chunk)
        await response.write_eof()
        return response

    async def chunks(self, repo: Repo, sha: str) -> AsyncIterator[bytes]:
        """The commit's tar.gz as it is made (off the event loop), or as it was kept."""
        key = f"{repo.full_name.lower()}@{sha}"
        body = self._built.get(key)
        if body is not None:
            for start in range(0, len(body), CHUNK):
                yield body[start : start + CHUNK]
            return
        loop = asyncio.get_running_loop()
        made: asyncio.Queue[bytes | BaseException | None] = asyncio.Queue()

        def make() -> None:
            try:
                for chunk in tarball_chunks(repo.objects, repo.full_name, sha):
                    loop.call_soon_threadsafe(made.put_nowait, chunk)
            except BaseException as exc:  # handed to the request, which fails with it
                loop.call_soon_threadsafe(made.put_nowait, exc)
            else:
                loop.call_soon_threadsafe(made.put_nowait, None)

        worker = loop.run_in_executor(None, make)
        parts: list[bytes] = []
        while True:
            item = await made.get()
            if item is None:
                break
            if isinstance(item, BaseException):
                raise item
            parts.append(item)
            yield item
        await worker
        self._keep(key, b"".join(parts))

    def _keep(self, key: str, body: bytes) -> None:
        self._built[key] = body
        while len(self._built) > CACHED_ARCHIVES:
            del self._built[next(iter(self._built))]

    async def build(self, repo: Repo, sha: str) -> bytes:
        """The commit's tar.gz, built off the event loop and kept for the next download."""
        key = f"{repo.full_name.lower()}@{sha}"
        body = self._built.get(key)
        if body is None:
            body = await asyncio.to_thread(tarball, repo.objects, repo.full_name, sha)
            self._keep(key, body)
        return body


def register(api: Api) -> ArchiveRoutes:
    """Add the archive endpoint to an Api; the returned routes also serve the codeload host."""
    routes = ArchiveRoutes(api)
    routes.register()
    return routes
