"""The fake's aiohttp application: GitHub's REST routes plus the cross-cutting behaviour.

One middleware does what GitHub does around every API call (latency, injected faults,
authentication, rate limits, ETags, request recording); each route declares which kind of
credential it takes and which app permission it needs, and the wrapper enforces both before
the handler runs.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import jwt
from aiohttp import web

from bot.fake.contract import FAULTED, Contract
from bot.fake.gitobjects import (
    GitError,
    Signature,
    split_path,
)
from bot.fake.state import (
    LEVELS,
    ApiError,
    App,
    Installation,
    InstallationToken,
    Org,
    Repo,
    User,
    not_found,
    validation_failed,
)
from bot.fake.world import World

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
DOCS = "https://docs.github.com/rest"
NOT_ACCESSIBLE = "Resource not accessible by integration"
JWT_UNDECODABLE = "A JSON web token could not be decoded"
JWT_EXPIRED = (
    "'Expiration time' claim ('exp') must be a numeric value representing the future time at "
    "which the assertion expires"
)
JWT_TOO_FAR = "'Expiration time' claim ('exp') is too far in the future"
JWT_IAT = (
    "'Issued at' claim ('iat') must be an Integer representing the time that the assertion "
    "was issued"
)
GRAPHQL = "/graphql"  # a route path declared as this is served at graphql_path()
SECONDARY = (
    "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
)


@dataclass
class Identity:
    """Who is calling: an app (JWT), an installation (token), a user (PAT) or nobody."""

    kind: str  # app | installation | user | anonymous
    app: App | None = None
    token: InstallationToken | None = None
    user: User | None = None

    @property
    def label(self) -> str:
        """`app:<id>`, `installation:<id>`, `user:<login>` or `anonymous`."""
        if self.kind == "app" and self.app is not None:
            return f"app:{self.app.id}"
        if self.kind == "installation" and self.token is not None:
            return f"installation:{self.token.installation.id}"
        if self.kind == "user" and self.user is not None:
            return f"user:{self.user.login}"
        return "anonymous"

    @property
    def actor(self) -> User | None:
        """The account that authors writes: the app's bot for installations."""
        if self.token is not None:
            return self.token.installation.app.bot
        return self.user

    @property
    def installation(self) -> Installation | None:
        """The installation behind a token."""
        return self.token.installation if self.token is not None else None


IDENTITY = web.RequestKey("identity", Identity)
REPO = web.RequestKey("repo", Repo)


@dataclass
class RecordedRequest:
    """One API call as the fake saw it."""

    method: str
    path: str
    query: str
    status: int
    identity: str
    started: float
    duration: float


@dataclass
class Fault:
    """An injected failure for requests matching method and path regex."""

    method: str | None
    path: re.Pattern[str]
    status: int
    times: int | None
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    reset: bool = False
    delay: float = 0.0

    def matches(self, method: str, path: str) -> bool:
        """Whether this fault applies to a request."""
        if self.times is not None and self.times <= 0:
            return False
        if self.method is not None and self.method.upper() != method.upper():
            return False
        return self.path.search(path) is not None


@dataclass
class RateWindow:
    """Primary rate limit accounting for one identity."""

    limit: int
    used: int = 0
    reset: int = 0


@dataclass
class Settings:
    """Knobs of the fake that tests turn."""

    base_path: str = ""
    latency: float = 0.0
    token_ttl: int = 3600
    tree_entry_limit: int = 100_000
    faults: list[Fault] = field(default_factory=list)
    requests: list[RecordedRequest] = field(default_factory=list)
    rate: dict[str, RateWindow] = field(default_factory=dict)
    rate_limits: dict[str, int] = field(default_factory=dict)  # identity label or kind -> limit
    manifest_codes: dict[str, tuple[float, dict[str, Any]]] = field(default_factory=dict)
    #: Origin of the archive host (codeload), a listener of its own.
    codeload_url: str = "http://127.0.0.1"
    #: Requests to the archive host that carried an Authorization header (a leaked token).
    archive_auth_leaks: int = 0
    #: repo (lower case) -> what its archive downloads serve instead (tests).
    archive_overrides: dict[str, Any] = field(default_factory=dict)
    #: GitHub's published contract, checked on every request and response when set.
    contract: Contract | None = None


@dataclass(frozen=True)
class Route:
    """How a route authenticates: `auth` is jwt | any | token | none; `perm` an app permission."""

    auth: str
    perm: tuple[str, str] | None
    handler: Handler


def json_response(
    data: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """A JSON response with GitHub's content type."""
    return web.Response(
        body=json.dumps(data).encode(),
        status=status,
        headers=headers,
        content_type="application/json",
        charset="utf-8",
    )


def error_response(err: ApiError) -> web.Response:
    """An error in GitHub's shape."""
    if err.status == 304:
        return web.Response(status=304)
    return json_response(err.body(), err.status, headers=err.headers)


async def read_json(request: web.Request) -> dict[str, Any]:
    """The JSON object body of a request; GitHub answers 400 "Problems parsing JSON" otherwise."""
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        raise ApiError(400, "Problems parsing JSON") from None
    if not isinstance(data, dict):
        raise ApiError(400, "Problems parsing JSON")
    return data


def parse_time(value: Any, field_name: str) -> float:
    """An ISO-8601 timestamp from a request body, or 422."""
    if not isinstance(value, str):
        raise validation_failed(errors=[{"field": field_name, "code": "invalid"}])
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise validation_failed(errors=[{"field": field_name, "code": "invalid"}]) from None


def etag_of(body: bytes) -> str:
    """A weak ETag over the body bytes."""
    return 'W/"' + hashlib.sha1(body).hexdigest() + '"'


def etag_matches(header: str, etag: str) -> bool:
    """If-None-Match semantics with weak comparison."""
    bare = etag.removeprefix("W/")
    for candidate in header.split(","):
        c = candidate.strip()
        if c == "*" or c.removeprefix("W/") == bare:
            return True
    return False


class Api:
    """Route handlers over a World, plus the middleware that wraps them."""

    def __init__(self, world: World, settings: Settings) -> None:
        self.world = world
        self.state = world.state
        self.shapes = world.shapes
        self.settings = settings
        self.routes: list[tuple[str, str, Route]] = []
        #: The archive routes (``bot.fake.routes_archive``), which also serve the codeload host.
        self.archives: Any = None

    # ---- application -----------------------------------------------------------------------
    def build(
        self, register_web: Callable[[web.Application], None] | None = None
    ) -> web.Application:
        """The aiohttp application with every declared API route (the route modules declare
        them with ``add`` before: see ``bot.fake.routes``) and the web routes."""
        middlewares = [self.middleware]
        if self.settings.contract is not None:
            middlewares.insert(0, self.settings.contract.middleware(self.api_path))
        app = web.Application(middlewares=middlewares, client_max_size=100 * 1024 * 1024)
        prefix = self.settings.base_path
        for method, path, route in self.routes:
            full = self.graphql_path() if path == GRAPHQL else prefix + path
            app.router.add_route(method, full, self.wrap(route), name=None)
        if register_web is not None:
            register_web(app)
        return app

    def graphql_path(self) -> str:
        """Where GraphQL is served: ``/graphql``, or ``/api/graphql`` beside GHES's ``/api/v3``."""
        base = self.settings.base_path
        return base.removesuffix("/v3") + "/graphql" if base.endswith("/v3") else base + GRAPHQL

    def add(
        self,
        method: str,
        path: str,
        handler: Handler,
        auth: str = "any",
        perm: tuple[str, str] | None = None,
    ) -> None:
        """Declare an API route."""
        self.routes.append((method, path, Route(auth, perm, handler)))

    # ---- middleware ------------------------------------------------------------------------
    def api_path(self, request: web.Request) -> str:
        """The request path without the GHES prefix."""
        prefix = self.settings.base_path
        path = request.path
        return path[len(prefix) :] if prefix and path.startswith(prefix) else path

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Latency, faults, auth, rate limit, ETag and recording around every API call."""
        if getattr(handler, "web_route", False):
            return await handler(request)
        started = time.time()
        t0 = time.perf_counter()
        path = self.api_path(request)
        identity = Identity("anonymous")
        status = 500
        try:
            if self.settings.latency:
                await asyncio.sleep(self.settings.latency)
            fault = next((f for f in self.settings.faults if f.matches(request.method, path)), None)
            if fault is not None:
                request[FAULTED] = True  # a test wrote this answer: no contract applies
                faulted = await self.apply_fault(request, fault)
                status = 0 if fault.reset else faulted.status  # 0: no response was sent
                return faulted
            response: web.StreamResponse
            try:
                identity = self.authenticate(request)
                request[IDENTITY] = identity
                window = self.rate_window(identity)
                if window.used >= window.limit and path != "/rate_limit":
                    raise self.rate_exceeded(identity, window)
                response = await handler(request)
            except ApiError as err:
                response = error_response(err)
            except web.HTTPException as exc:
                response = self.http_exception(exc)
            response = self.conditional(request, response)
            if response.status not in (304, 401) and path != "/rate_limit":
                self.rate_window(identity).used += 1
            self.rate_headers(response, identity)
            status = response.status
            return response
        finally:
            self.settings.requests.append(
                RecordedRequest(
                    request.method,
                    path,
                    request.query_string,
                    status,
                    identity.label,
                    started,
                    time.perf_counter() - t0,
                )
            )

    def http_exception(self, exc: web.HTTPException) -> web.Response:
        """aiohttp's own 404/405 for unknown routes, in GitHub's shape."""
        if exc.status == 404:
            return json_response({"message": "Not Found", "documentation_url": DOCS}, 404)
        return json_response({"message": exc.reason, "documentation_url": DOCS}, exc.status)

    async def apply_fault(self, request: web.Request, fault: Fault) -> web.Response:
        """Answer with the injected fault (or drop the connection)."""
        if fault.times is not None:
            fault.times -= 1
        if fault.delay:
            await asyncio.sleep(fault.delay)
        if fault.reset:
            # Drop the TCP connection: the client sees a disconnect, never a response.
            transport = request.transport
            if transport is not None:
                transport.abort()
            return web.Response(status=fault.status)  # never reaches the client
        body = fault.body
        if body is None:
            body = {"message": _reason(fault.status), "documentation_url": DOCS}
        headers = dict(fault.headers)
        if isinstance(body, (bytes, str)):
            raw = body.encode() if isinstance(body, str) else body
            return web.Response(body=raw, status=fault.status, headers=headers)
        return json_response(body, fault.status, headers)

    def conditional(self, request: web.Request, response: web.StreamResponse) -> web.StreamResponse:
        """ETag on successful GETs; 304 when If-None-Match matches."""
        if (
            request.method != "GET"
            or response.status != 200
            or not isinstance(response, web.Response)
        ):
            return response
        body = response.body
        if not isinstance(body, bytes):
            return response
        etag = etag_of(body)
        response.headers["ETag"] = etag
        inm = request.headers.get("If-None-Match")
        if inm and etag_matches(inm, etag):
            not_modified = web.Response(status=304)
            not_modified.headers["ETag"] = etag
            return not_modified
        return response

    # ---- rate limits -----------------------------------------------------------------------
    def rate_window(self, identity: Identity) -> RateWindow:
        """The identity's current hourly window."""
        key = identity.label
        now = int(time.time())
        window = self.settings.rate.get(key)
        limit = self.settings.rate_limits.get(
            key,
            self.settings.rate_limits.get(
                identity.kind, 60 if identity.kind == "anonymous" else 5000
            ),
        )
        if window is None or now >= window.reset:
            window = RateWindow(limit=limit, reset=now + 3600)
            self.settings.rate[key] = window
        window.limit = limit
        return window

    def rate_headers(self, response: web.StreamResponse, identity: Identity) -> None:
        """x-ratelimit-* headers on every API response."""
        w = self.rate_window(identity)
        response.headers["x-ratelimit-limit"] = str(w.limit)
        response.headers["x-ratelimit-remaining"] = str(max(0, w.limit - w.used))
        response.headers["x-ratelimit-used"] = str(w.used)
        response.headers["x-ratelimit-reset"] = str(w.reset)
        response.headers["x-ratelimit-resource"] = "core"
        response.headers["x-github-api-version-selected"] = "2022-11-28"
        response.headers["x-github-media-type"] = "github.v3; format=json"

    def rate_exceeded(self, identity: Identity, window: RateWindow) -> ApiError:
        """GitHub's primary rate limit answer."""
        if identity.kind == "installation" and identity.installation is not None:
            who = f"installation ID {identity.installation.id}"
        elif identity.kind == "user" and identity.user is not None:
            who = f"user ID {identity.user.id}"
        else:
            who = "this client"
        return ApiError(
            403,
            f"API rate limit exceeded for {who}.",
            documentation_url="https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
        )

    # ---- authentication --------------------------------------------------------------------
    def authenticate(self, request: web.Request) -> Identity:
        """Parse the Authorization header into an identity (401 for bad credentials)."""
        header = request.headers.get("Authorization")
        if not header:
            return Identity("anonymous")
        scheme, _, credential = header.partition(" ")
        credential = credential.strip()
        if scheme.lower() not in ("token", "bearer") or not credential:
            raise ApiError(401, "Bad credentials")
        if credential.count(".") == 2:
            return Identity("app", app=self.verify_jwt(credential))
        token = self.state.tokens.get(credential)
        if token is not None:
            if token.expires_at <= time.time():
                raise ApiError(401, "Bad credentials")
            return Identity("installation", token=token)
        for user in self.state.users.values():
            if user.token and user.token == credential:
                return Identity("user", user=user)
        raise ApiError(401, "Bad credentials")

    def verify_jwt(self, credential: str) -> App:
        """Verify an app JWT: RS256, signed by a known app, not expired, exp <= 10 minutes."""
        try:
            header = jwt.get_unverified_header(credential)
            claims = jwt.decode(credential, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise ApiError(401, JWT_UNDECODABLE, status_in_body=True) from None
        if header.get("alg") != "RS256":
            raise ApiError(401, JWT_UNDECODABLE, status_in_body=True)
        try:
            app = self.state.apps.get(int(claims["iss"]))
        except (KeyError, TypeError, ValueError):
            app = None
        if app is None:
            raise ApiError(401, JWT_UNDECODABLE, status_in_body=True)
        try:
            jwt.decode(
                credential,
                app.public_key,
                algorithms=["RS256"],
                options={"verify_exp": False, "verify_iat": False, "verify_iss": False},
            )
        except jwt.PyJWTError:
            raise ApiError(401, JWT_UNDECODABLE, status_in_body=True) from None
        now = time.time()
        exp, iat = claims.get("exp"), claims.get("iat")
        if not isinstance(iat, (int, float)) or iat > now + 60:
            raise ApiError(401, JWT_IAT, status_in_body=True)
        if not isinstance(exp, (int, float)) or exp <= now:
            raise ApiError(401, JWT_EXPIRED, status_in_body=True)
        if exp > now + 600 + 1 or exp - iat > 600 + 60:
            raise ApiError(401, JWT_TOO_FAR, status_in_body=True)
        return app

    # ---- authorisation ---------------------------------------------------------------------
    def wrap(self, route: Route) -> Handler:
        """Enforce the route's credential kind and permission, then run it."""

        async def handler(request: web.Request) -> web.StreamResponse:
            identity = request[IDENTITY]
            if (
                route.auth != "none"
                and identity.kind == "anonymous"
                and (route.auth in ("jwt", "token") or request.method != "GET")
            ):
                raise ApiError(401, "Requires authentication")
            if route.auth == "jwt" and identity.kind != "app":
                raise ApiError(401, JWT_UNDECODABLE, status_in_body=True)
            if route.auth != "jwt" and identity.kind == "app":
                raise ApiError(403, NOT_ACCESSIBLE)
            if route.auth == "token" and identity.kind != "installation":
                raise ApiError(403, NOT_ACCESSIBLE)
            if (
                "owner" in request.match_info
                and "repo" in request.match_info
                and route.auth != "jwt"
            ):
                request[REPO] = self.authorize_repo(request, identity, route.perm)
            return await route.handler(request)

        return handler

    def authorize_repo(
        self, request: web.Request, identity: Identity, perm: tuple[str, str] | None
    ) -> Repo:
        """The repository of the path, if the identity may see it and has the permission."""
        repo = self.state.repo(f"{request.match_info['owner']}/{request.match_info['repo']}")
        if repo is None:
            raise not_found()
        if identity.kind == "installation":
            token = identity.token
            assert token is not None
            if repo not in self.token_repos(token):
                raise not_found()
            if perm is not None:
                self.require_permission(token.permissions, perm)
        elif identity.kind == "user":
            user = identity.user
            assert user is not None
            if not self.state.can_read(repo, user):
                raise not_found()
            if perm is not None and perm[1] != "read" and not self.state.can_write(repo, user):
                raise ApiError(403, "Resource not accessible by personal access token")
        else:
            if repo.private:
                raise not_found()
        return repo

    def require_permission(self, granted: dict[str, str], perm: tuple[str, str]) -> None:
        """403 unless `granted` holds the permission at the level (alternatives with `|`)."""
        names, level = perm
        for name in names.split("|"):
            if LEVELS.get(granted.get(name, "none"), 0) >= LEVELS[level]:
                return
        raise ApiError(403, NOT_ACCESSIBLE)

    def token_repos(self, token: InstallationToken) -> list[Repo]:
        """Repositories a token reaches (installation selection, narrowed by the token)."""
        repos = self.state.installation_repos(token.installation)
        if token.repo_ids is not None:
            repos = [r for r in repos if r.id in token.repo_ids]
        return repos

    def actor(self, request: web.Request) -> User:
        """Who performs a write: the installation's bot or the PAT's user."""
        identity = request[IDENTITY]
        actor = identity.actor
        if actor is None:
            raise ApiError(401, "Requires authentication")
        return actor

    def via_app(self, request: web.Request) -> App | None:
        """The app acting, for `performed_via_github_app`."""
        identity = request[IDENTITY]
        inst = identity.installation
        return inst.app if inst is not None else None

    def installation_org_check(self, request: web.Request, org: Org, perm: tuple[str, str]) -> None:
        """An installation reaches org resources only on its own account, with the permission."""
        identity = request[IDENTITY]
        if identity.kind == "installation":
            token = identity.token
            assert token is not None
            if token.installation.account is not org:
                raise ApiError(403, NOT_ACCESSIBLE)
            self.require_permission(token.permissions, perm)
        elif identity.kind == "user":
            user = identity.user
            assert user is not None
            if user.login.lower() not in org.members:
                raise not_found()

    # ---- helpers for handlers --------------------------------------------------------------
    def paginate(
        self, request: web.Request, items: list[Any], *, default: int = 30, maximum: int = 100
    ) -> tuple[list[Any], dict[str, str]]:
        """Slice by `per_page`/`page` and build the RFC 5988 Link header (absolute URLs)."""
        per_page = _int_param(request, "per_page", default)
        per_page = max(1, min(per_page, maximum))
        page = max(1, _int_param(request, "page", 1))
        total = len(items)
        last = max(1, -(-total // per_page))
        chunk = items[(page - 1) * per_page : page * per_page]
        links: list[str] = []

        def url(n: int) -> str:
            return str(request.url.update_query({"page": str(n), "per_page": str(per_page)}))

        if page > 1:
            links.append(f'<{url(page - 1)}>; rel="prev"')
        if page < last:
            links.append(f'<{url(page + 1)}>; rel="next"')
            links.append(f'<{url(last)}>; rel="last"')
        if page > 1:
            links.append(f'<{url(1)}>; rel="first"')
        return chunk, ({"Link": ", ".join(links)} if links else {})

    def repo_of(self, request: web.Request) -> Repo:
        """The authorised repository of this request."""
        return request[REPO]

    def resolve_commit(self, repo: Repo, ref: str, *, status: int = 404) -> str:
        """A commit SHA for a ref, or GitHub's "No commit found" error."""
        sha = repo.resolve(ref)
        if sha is None:
            if status == 422:
                raise ApiError(422, f"No commit found for SHA: {ref}")
            raise ApiError(404, f"No commit found for the ref {ref}")
        return sha

    def signature_from(self, body: Any, fallback: User, name: str) -> Signature:
        """An author/committer object from a request body, defaulting to the caller."""
        if body is None:
            return self.world.signature(fallback)
        if not isinstance(body, dict) or not body.get("name") or not body.get("email"):
            raise validation_failed(
                errors=[{"resource": "Commit", "field": name, "code": "missing_field"}]
            )
        ts = parse_time(body["date"], f"{name}.date") if body.get("date") else time.time()
        return Signature(str(body["name"]), str(body["email"]), int(ts))

    def check_paths(self, paths: list[str]) -> None:
        """Reject invalid repository paths."""
        for p in paths:
            try:
                split_path(p)
            except GitError:
                raise validation_failed(
                    errors=[{"field": "path", "code": "invalid", "value": p}]
                ) from None


def _int_param(request: web.Request, name: str, default: int) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        return default


def _reason(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def decode_content(content: Any, encoding: str) -> bytes:
    """Blob content from a request in utf-8 or base64, or 422."""
    if not isinstance(content, str):
        raise validation_failed(
            errors=[{"resource": "Blob", "field": "content", "code": "missing_field"}]
        )
    if encoding in ("utf-8", "utf8"):
        return content.encode()
    if encoding == "base64":
        try:
            return base64.b64decode(content, validate=False)
        except (binascii.Error, ValueError):
            raise validation_failed(
                errors=[{"resource": "Blob", "field": "content", "code": "invalid"}]
            ) from None
    raise validation_failed(
        f"encoding must be one of utf-8 or base64, got {encoding!r}",
        errors=[{"resource": "Blob", "field": "encoding", "code": "invalid"}],
    )
