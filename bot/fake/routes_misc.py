"""REST routes for dispatch and releases, the app-manifest conversion, and the web pages of
the manifest flow and app installation (served on the web origin, without API prefix)."""

from __future__ import annotations

import html
import json
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from bot.fake.server import Api, json_response, read_json
from bot.fake.state import ApiError, Org, Release, Repo, not_found, validation_failed

CODE_TTL = 3600  # manifest codes expire after one hour
WebHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class MiscRoutes:
    """Dispatch, releases and the GitHub App manifest flow."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.world = api.world
        self.state = api.state
        self.shapes = api.shapes

    def register(self) -> None:
        """API routes."""
        add = self.api.add
        r = "/repos/{owner}/{repo}"
        add("POST", r + "/dispatches", self.dispatch, perm=("contents", "write"))
        add("POST", r + "/releases", self.create_release, perm=("contents", "write"))
        add("GET", r + "/releases", self.list_releases, perm=("contents", "read"))
        add("GET", r + "/releases/latest", self.latest_release, perm=("contents", "read"))
        add("GET", r + "/releases/tags/{tag:.+}", self.release_by_tag, perm=("contents", "read"))
        add("GET", r + r"/releases/{id:\d+}", self.get_release, perm=("contents", "read"))
        add("POST", "/app-manifests/{code}/conversions", self.convert_manifest, auth="none")

    def register_web(self, app: web.Application) -> None:
        """Web routes (no API prefix, no API middleware behaviour)."""
        for path in ("/organizations/{org}/settings/apps/new", "/settings/apps/new"):
            app.router.add_get(path, _web(self.manifest_form))
            app.router.add_post(path, _web(self.manifest_submit))
        app.router.add_get("/apps/{slug}/installations/new", _web(self.install_form))
        app.router.add_post("/apps/{slug}/installations/new", _web(self.install_submit))

    # ---- dispatch and releases -------------------------------------------------------------
    async def dispatch(self, request: web.Request) -> web.Response:
        """`POST /dispatches`: 204 and `repository_dispatch` (at most 10 payload keys)."""
        repo = self.api.repo_of(request)
        body = await read_json(request)
        event_type = body.get("event_type")
        payload = body.get("client_payload") or {}
        if not isinstance(event_type, str) or not event_type:
            raise validation_failed(
                errors=[{"resource": "Repository", "field": "event_type", "code": "missing_field"}]
            )
        if not isinstance(payload, dict):
            raise validation_failed(
                errors=[{"resource": "Repository", "field": "client_payload", "code": "invalid"}]
            )
        if len(payload) > 10:
            raise validation_failed("client_payload can not have more than 10 top-level properties")
        self.world.dispatch(repo, event_type, payload, self.api.actor(request))
        return web.Response(status=204)

    def release_json(self, repo: Repo, release: Release) -> dict[str, Any]:
        return self.shapes.release(repo, release)

    async def create_release(self, request: web.Request) -> web.Response:
        """`POST /releases`."""
        repo = self.api.repo_of(request)
        body = await read_json(request)
        tag = body.get("tag_name")
        if not isinstance(tag, str) or not tag:
            raise validation_failed(
                errors=[{"resource": "Release", "field": "tag_name", "code": "missing_field"}]
            )
        release = self.world.create_release(
            repo,
            tag,
            self.api.actor(request),
            target=body.get("target_commitish"),
            name=body.get("name"),
            body=body.get("body"),
            draft=bool(body.get("draft")),
            prerelease=bool(body.get("prerelease")),
        )
        out = self.release_json(repo, release)
        return json_response(out, 201, headers={"Location": out["url"]})

    async def list_releases(self, request: web.Request) -> web.Response:
        """`GET /releases` (newest first)."""
        repo = self.api.repo_of(request)
        releases = sorted(repo.releases.values(), key=lambda r: r.id, reverse=True)
        page, headers = self.api.paginate(request, releases)
        return json_response([self.release_json(repo, r) for r in page], headers=headers)

    async def latest_release(self, request: web.Request) -> web.Response:
        """`GET /releases/latest`: the newest published non-prerelease."""
        repo = self.api.repo_of(request)
        published = [r for r in repo.releases.values() if not r.draft and not r.prerelease]
        if not published:
            raise not_found()
        return json_response(self.release_json(repo, max(published, key=lambda r: r.id)))

    async def release_by_tag(self, request: web.Request) -> web.Response:
        """`GET /releases/tags/{tag}`."""
        repo = self.api.repo_of(request)
        tag = request.match_info["tag"]
        found = next((r for r in repo.releases.values() if r.tag_name == tag and not r.draft), None)
        if found is None:
            raise not_found()
        return json_response(self.release_json(repo, found))

    async def get_release(self, request: web.Request) -> web.Response:
        """`GET /releases/{id}`."""
        repo = self.api.repo_of(request)
        found = repo.releases.get(int(request.match_info["id"]))
        if found is None:
            raise not_found()
        return json_response(self.release_json(repo, found))

    # ---- manifest flow ---------------------------------------------------------------------
    async def manifest_form(self, request: web.Request) -> web.Response:
        """The "Create GitHub App" page: a form posting the manifest back here."""
        org = request.match_info.get("org")
        if org is not None and org.lower() not in self.state.orgs:
            return web.Response(status=404, text="Not Found")
        state = html.escape(request.query.get("state", ""))
        manifest = html.escape(request.query.get("manifest", ""))
        page = (
            "<!doctype html><title>Create GitHub App</title>"
            f'<form method="post" action="?state={state}">'
            f'<textarea name="manifest">{manifest}</textarea>'
            '<button type="submit">Create GitHub App</button></form>'
        )
        return web.Response(text=page, content_type="text/html")

    async def manifest_submit(self, request: web.Request) -> web.StreamResponse:
        """Create the app from the manifest and redirect to `redirect_url?code=&state=`."""
        form = await request.post()
        raw = form.get("manifest") or request.query.get("manifest")
        state = form.get("state") or request.query.get("state") or ""
        try:
            manifest = json.loads(str(raw))
        except (TypeError, ValueError):
            return web.Response(status=422, text="Invalid manifest: not JSON")
        if not isinstance(manifest, dict) or not manifest.get("url"):
            return web.Response(status=422, text="Invalid manifest: url is required")
        org_login = request.match_info.get("org")
        owner = self.state.orgs.get(org_login.lower()) if org_login else None
        if org_login and owner is None:
            return web.Response(status=404, text="Not Found")
        name = str(manifest.get("name") or "github-app")
        slug = _slugify(name)
        while any(a.slug == slug for a in self.state.apps.values()):
            slug += "-" + secrets.token_hex(2)
        hook = manifest.get("hook_attributes") or {}
        app = self.world.create_app(
            slug,
            name,
            owner,
            hook.get("url") if hook.get("active", True) else None,
            secrets.token_hex(20),
            list(manifest.get("default_events") or []),
            dict(manifest.get("default_permissions") or {}),
        )
        app.description = str(manifest.get("description") or "")
        app.setup_url = manifest.get("setup_url")
        app.redirect_url = manifest.get("redirect_url")
        code = secrets.token_hex(20)
        self.api.settings.manifest_codes[code] = (time.time() + CODE_TTL, {"app_id": app.id})
        target = app.redirect_url or f"{self.shapes.urls.web}/apps/{app.slug}"
        sep = "&" if "?" in target else "?"
        raise web.HTTPFound(f"{target}{sep}{urlencode({'code': code, 'state': state})}")

    async def convert_manifest(self, request: web.Request) -> web.Response:
        """`POST /app-manifests/{code}/conversions`: the new app with its secrets, once."""
        code = request.match_info["code"]
        entry = self.api.settings.manifest_codes.pop(code, None)
        if entry is None or entry[0] < time.time():
            raise not_found()
        app = self.state.apps[int(entry[1]["app_id"])]
        out = self.shapes.app(app)
        out.update(
            {
                "pem": app.private_key_pem,
                "webhook_secret": app.webhook_secret,
                "client_id": app.client_id,
                "client_secret": app.client_secret,
            }
        )
        return json_response(out, 201)

    # ---- installation pages ----------------------------------------------------------------
    async def install_form(self, request: web.Request) -> web.Response:
        """A minimal "Install app" page."""
        app = next(
            (a for a in self.state.apps.values() if a.slug == request.match_info["slug"]), None
        )
        if app is None:
            return web.Response(status=404, text="Not Found")
        page = (
            f"<!doctype html><title>Install {html.escape(app.name)}</title>"
            '<form method="post"><input name="account"><input name="repositories" value="all">'
            '<button type="submit">Install</button></form>'
        )
        return web.Response(text=page, content_type="text/html")

    async def install_submit(self, request: web.Request) -> web.StreamResponse:
        """Install on `account` for `repositories` ("all" or comma-separated names)."""
        app = next(
            (a for a in self.state.apps.values() if a.slug == request.match_info["slug"]), None
        )
        if app is None:
            return web.Response(status=404, text="Not Found")
        form = await request.post()
        account = str(form.get("account") or "")
        repos_field = str(form.get("repositories") or "all")
        repositories: list[str] | str = (
            "all"
            if repos_field == "all"
            else [r.strip() for r in repos_field.split(",") if r.strip()]
        )
        try:
            inst = self.world.install(app, account, repositories, None)
        except ApiError as err:
            return web.Response(status=err.status, text=err.message)
        if app.setup_url:
            query = urlencode({"installation_id": inst.id, "setup_action": "install"})
            raise web.HTTPFound(f"{app.setup_url}?{query}")
        kind = "organizations/" + account if isinstance(inst.account, Org) else "settings"
        return web.Response(
            text=f"Installed {app.slug} on {account} ({kind})", content_type="text/plain"
        )


def _web(handler: WebHandler) -> WebHandler:
    """Mark a handler as a web page so the API middleware leaves it alone."""

    async def page(request: web.Request) -> web.StreamResponse:
        return await handler(request)

    page.web_route = True  # type: ignore[attr-defined]
    return page


def _slugify(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "app"


def register(api: Api) -> None:
    """Add dispatch, release and manifest conversion routes."""
    MiscRoutes(api).register()


def register_web(api: Api, app: web.Application) -> None:
    """Add the web pages."""
    MiscRoutes(api).register_web(app)
