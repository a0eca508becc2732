"""The GitHub App manifest flow: register the bot on an org from a web page, write ``.env``.

``python -m bot serve`` without credentials (and without ``--production``) serves this instead of
the webhook service, as Probot does: a page asks for the org and the public webhook URL and
posts the manifest (``app.yml`` plus those URLs) to
``<GITHUB_URL>/organizations/<org>/settings/apps/new``; GitHub creates the app and redirects
back with a one-hour ``code``; the callback exchanges it (``POST
/app-manifests/{code}/conversions``) for the app id, private key and webhook secret, and writes
them to ``.env`` (mode 0600) for the next start.

Unlike Probot, every round trip carries a ``state`` this process issued (unguessable, single-use,
short-lived): a callback with any other state is refused, so nobody can plant the credentials of
an app of their own choosing by sending someone a crafted callback link.
"""

from __future__ import annotations

import html
import json
import logging
import os
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import gidgethub
from aiohttp import web
from gidgethub.aiohttp import GitHubAPI

from bot.settings import DEFAULT_API_URL, Settings, load_dotenv, web_url_for

log = logging.getLogger("bot.setup")

MANIFEST_FILE = "app.yml"
START_PATH = "/setup/start"
CALLBACK_PATH = "/setup/callback"
#: How long a started setup may take on GitHub's page before its state is refused.
STATE_TTL = 15 * 60.0
#: Bound on started-but-unfinished setups kept in memory (the oldest are dropped first).
MAX_PENDING = 100
#: GitHub logins: alphanumerics and single hyphens, at most 39 characters.
LOGIN_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}")
#: GitHub limits app names to 34 characters.
MAX_APP_NAME = 34
CODE_RE = re.compile(r"[A-Za-z0-9_-]{1,200}")
CREDENTIAL_KEYS = ("APP_ID", "PRIVATE_KEY", "PRIVATE_KEY_PATH", "WEBHOOK_SECRET")
URL_KEYS = ("GITHUB_API_URL", "GITHUB_URL")


class SetupError(Exception):
    """Something a person must fix or retry; ``str()`` is shown on the page as it is."""


# --- the manifest -------------------------------------------------------------------------


def find_manifest(cwd: Path | None = None) -> Path:
    """``app.yml`` of the working directory (Probot's convention, so an org can adapt it),
    else the one shipped beside the ``bot`` package in a source checkout or the Docker image."""
    here = (cwd or Path.cwd()) / MANIFEST_FILE
    if here.is_file():
        return here
    shipped = Path(__file__).resolve().parents[2] / MANIFEST_FILE
    if shipped.is_file():
        return shipped
    raise SetupError(
        f"{MANIFEST_FILE} was not found in {here.parent} nor beside the bot package; "
        "run the service from the project's directory"
    )


def load_manifest(path: Path) -> dict[str, Any]:
    """Parse and check ``app.yml``: a name, a list of events and a map of permissions."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        data = YAML(typ="safe", pure=True).load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, YAMLError) as exc:
        raise SetupError(f"{path} cannot be read as YAML: {exc}") from None
    if not isinstance(data, dict):
        raise SetupError(f"{path} must be a mapping of manifest keys")
    if not isinstance(data.get("name"), str) or not data["name"].strip():
        raise SetupError(f"{path} needs a name")
    events = data.get("default_events")
    if not isinstance(events, list) or not all(isinstance(e, str) for e in events):
        raise SetupError(f"{path}: default_events must be a list of event names")
    permissions = data.get("default_permissions")
    if not isinstance(permissions, dict) or not all(
        isinstance(k, str) and v in ("read", "write") for k, v in permissions.items()
    ):
        raise SetupError(f"{path}: default_permissions must map permissions to read or write")
    return data


def build_manifest(
    base: Mapping[str, Any], *, name: str, webhook_url: str, redirect_url: str
) -> dict[str, Any]:
    """The manifest GitHub receives: ``app.yml`` with this deployment's name and URLs."""
    manifest = dict(base)
    manifest["name"] = name
    manifest["hook_attributes"] = {"url": webhook_url, "active": True}
    manifest["redirect_url"] = redirect_url
    parts = urlsplit(webhook_url)
    manifest.setdefault("url", f"{parts.scheme}://{parts.netloc}")
    return manifest


def creation_url(github_url: str, org: str) -> str:
    """GitHub's "register a new app" page of an org (the form action of the manifest flow)."""
    return f"{github_url.rstrip('/')}/organizations/{org}/settings/apps/new"


# --- state ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PendingSetup:
    org: str
    expires_at: float


@dataclass
class StateStore:
    """States this process issued; each is accepted once, and only before it expires."""

    ttl: float = STATE_TTL
    limit: int = MAX_PENDING
    clock: Callable[[], float] = time.time
    _pending: OrderedDict[str, PendingSetup] = field(default_factory=OrderedDict)

    def issue(self, org: str) -> str:
        state = secrets.token_urlsafe(32)
        self._pending[state] = PendingSetup(org, self.clock() + self.ttl)
        while len(self._pending) > self.limit:
            self._pending.popitem(last=False)
        return state

    def take(self, state: str) -> PendingSetup | None:
        """The setup a state belongs to, consuming it; None when unknown, used or expired."""
        pending = self._pending.pop(state, None)
        if pending is None or pending.expires_at < self.clock():
            return None
        return pending


# --- .env -----------------------------------------------------------------------------------


def env_values(conversion: Mapping[str, Any], settings: Settings) -> dict[str, str]:
    """What the service needs from the conversion, in the form ``load_settings`` reads.

    The key's newlines become a literal ``\\n`` (Probot's convention), so it fits on one line;
    the GitHub URLs are written only when they are not the defaults, so a GHES setup keeps
    talking to GHES after the restart even without the variables set.
    """
    try:
        app_id = int(conversion["id"])
        pem = str(conversion["pem"]).replace("\r\n", "\n").strip()
        secret = str(conversion["webhook_secret"])
    except (KeyError, TypeError, ValueError):
        raise SetupError("GitHub's answer lacks the app id, key or webhook secret") from None
    if "PRIVATE KEY-----" not in pem or not secret:
        raise SetupError("GitHub's answer lacks the app id, key or webhook secret")
    values = {
        "APP_ID": str(app_id),
        "PRIVATE_KEY": pem.replace("\n", "\\n"),
        "WEBHOOK_SECRET": secret,
    }
    if settings.github_api_url != DEFAULT_API_URL:
        values["GITHUB_API_URL"] = settings.github_api_url
    if settings.github_url != web_url_for(settings.github_api_url):
        values["GITHUB_URL"] = settings.github_url
    return values


def write_env(path: Path, values: Mapping[str, str], comment: str = "") -> None:
    """Merge ``values`` into the ``.env`` at ``path``, atomically and readable only by its owner.

    Other lines (say ``WEBHOOK_PROXY_URL`` or ``LOG_LEVEL``) are kept; earlier credentials and
    URLs are replaced, since half of an old set next to a new one would be a broken pair.
    """
    for key, value in values.items():
        if "\n" in value or "\r" in value or value != value.strip():
            raise SetupError(f"{key} cannot be written to {path.name} on one line")
    replaced = set(values) | set(CREDENTIAL_KEYS) | set(URL_KEYS)
    kept: list[str] = []
    try:
        old = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        old = []
    for line in old:
        key = line.partition("=")[0].strip().removeprefix("export ").strip()
        if "=" in line and not line.lstrip().startswith("#") and key in replaced:
            continue
        kept.append(line)
    lines = [*kept]
    if comment:
        lines.append(f"# {comment}")
    lines.extend(f"{key}={value}" for key, value in values.items())
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write("\n".join(lines) + "\n")
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


# --- pages ----------------------------------------------------------------------------------

STYLE = """
body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem;
color:#1f2328}
h1{font-size:1.5rem}label{display:block;margin-top:1rem;font-weight:600}
input{width:100%;padding:.4rem;font:inherit;box-sizing:border-box}
button,a.button{margin-top:1.5rem;padding:.5rem 1rem;font:inherit;background:#1f883d;color:#fff;
border:0;border-radius:6px;text-decoration:none;display:inline-block;cursor:pointer}
.hint{color:#59636e;font-size:.9rem;margin:.2rem 0 0}.error{color:#d1242f;font-weight:600}
code{background:#eff2f5;padding:0 .2rem;border-radius:3px}
"""


def _page(
    title: str, body: str, *, status: int, nonce: str | None, github_origin: str
) -> web.Response:
    """A page that runs no script but the one carrying ``nonce``, and posts forms only here or
    to GitHub, so that nothing injected into it could send the manifest elsewhere."""
    script_src = f"'nonce-{nonce}'" if nonce else "'none'"
    return web.Response(
        status=status,
        content_type="text/html",
        charset="utf-8",
        text=(
            f'<!doctype html><html lang="en"><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width,initial-scale=1">'
            f"<title>{html.escape(title)}</title><style>{STYLE}</style>"
            f"<body><h1>{html.escape(title)}</h1>{body}</body></html>"
        ),
        headers={
            "Cache-Control": "no-store",
            "Referrer-Policy": "no-referrer",
            "X-Frame-Options": "DENY",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": (
                f"default-src 'none'; style-src 'unsafe-inline'; script-src {script_src}; "
                f"form-action 'self' {github_origin}; frame-ancestors 'none'; base-uri 'none'"
            ),
        },
    )


def _public_origin(request: web.Request) -> str:
    """The origin the browser used, as a reverse proxy reports it when there is one."""
    scheme = request.headers.get("X-Forwarded-Proto", request.scheme).split(",")[0].strip()
    host = request.headers.get("X-Forwarded-Host", request.host).split(",")[0].strip()
    return f"{scheme}://{host}"


@dataclass
class SetupState:
    settings: Settings
    manifest: dict[str, Any]
    env_path: Path
    webhook_proxy_url: str | None
    states: StateStore
    #: ``(name, html_url)`` of the app this process registered, once it has.
    registered: tuple[str, str] | None = None
    session: aiohttp.ClientSession | None = None


class SetupPages:
    """The request handlers; one instance per application."""

    def __init__(self, state: SetupState) -> None:
        self.state = state

    def respond(
        self, title: str, body: str, status: int = 200, nonce: str | None = None
    ) -> web.Response:
        github = urlsplit(self.state.settings.github_url)
        origin = f"{github.scheme}://{github.netloc}"
        return _page(title, body, status=status, nonce=nonce, github_origin=origin)

    def form(
        self,
        request: web.Request,
        *,
        org: str = "",
        webhook_url: str | None = None,
        name: str | None = None,
        error: str | None = None,
    ) -> web.Response:
        if self.state.registered is not None:
            return self.done_page()
        default_hook = self.state.webhook_proxy_url or (
            _public_origin(request) + self.state.settings.webhook_path
        )
        github = html.escape(self.state.settings.github_url)
        fields = {
            "org": html.escape(org),
            "hook": html.escape(webhook_url or default_hook),
            "name": html.escape(name or str(self.state.manifest["name"])),
        }
        problem = f'<p class="error" role="alert">{html.escape(error)}</p>' if error else ""
        body = (
            f"<p>This service has no GitHub App credentials yet. Register the app on your "
            f"organization at <code>{github}</code>: GitHub creates it with the permissions "
            f"and events of <code>{MANIFEST_FILE}</code>, and this page stores its credentials "
            f"in <code>{html.escape(str(self.state.env_path))}</code>.</p>{problem}"
            f'<form method="post" action="{START_PATH}">'
            f'<label for="org">Organization</label>'
            f'<input id="org" name="org" value="{fields["org"]}" required autofocus '
            f'autocomplete="off" placeholder="acme">'
            f'<p class="hint">You need to be an owner of it (or an app manager).</p>'
            f'<label for="webhook_url">Public webhook URL</label>'
            f'<input id="webhook_url" name="webhook_url" type="url" value="{fields["hook"]}" '
            "required>"
            f'<p class="hint">Where GitHub will send events: this service as the internet '
            f"reaches it (or a webhook proxy such as smee.io, via WEBHOOK_PROXY_URL).</p>"
            f'<label for="name">App name</label>'
            f'<input id="name" name="name" value="{fields["name"]}" required '
            f'maxlength="{MAX_APP_NAME}">'
            f'<p class="hint">Unique on GitHub; you can still change it on the next page.</p>'
            f'<button type="submit">Register on GitHub</button></form>'
        )
        return self.respond("Set up the fleet promotion bot", body, 400 if error else 200)

    def done_page(self) -> web.Response:
        assert self.state.registered is not None
        name, html_url = self.state.registered
        install = html.escape(f"{html_url.rstrip('/')}/installations/new")
        body = (
            f"<p><b>{html.escape(name)}</b> is registered, and its credentials are in "
            f"<code>{html.escape(str(self.state.env_path))}</code> (readable only by the user "
            f"running this service).</p>"
            f"<ol><li><b>Restart the service</b> (<code>python -m bot serve</code>): it reads "
            f"the credentials at start, and then serves webhooks instead of this page.</li>"
            f"<li>Install the app on the organization, for the fleet repositories (or all):"
            f'<br><a class="button" id="install" href="{install}">Install {html.escape(name)}'
            f"</a></li></ol>"
        )
        return self.respond("The GitHub App is registered", body)

    def failure(self, message: str, status: int) -> web.Response:
        body = (
            f'<p class="error" role="alert">{html.escape(message)}</p>'
            f'<p><a href="/">Start again</a></p>'
        )
        return self.respond("The setup did not finish", body, status)

    async def index(self, request: web.Request) -> web.Response:
        return self.form(request)

    async def start(self, request: web.Request) -> web.Response:
        """Check the form, issue a state, and hand the browser a form that posts to GitHub."""
        if self.state.registered is not None:
            return self.done_page()
        if _cross_site(request):
            # Another site's form could otherwise start a registration with its own webhook URL
            # in the browser of an org owner who happens to have this page's address.
            log.warning("refused a setup form sent from another site")
            return self.failure("This form can only be sent from the setup page itself.", 403)
        form = await request.post()
        org = str(form.get("org", "")).strip()
        hook = str(form.get("webhook_url", "")).strip()
        name = str(form.get("name", "")).strip() or str(self.state.manifest["name"])
        error = _form_error(org, hook, name)
        if error:
            return self.form(request, org=org, webhook_url=hook, name=name, error=error)
        state = self.state.states.issue(org)
        manifest = build_manifest(
            self.state.manifest,
            name=name,
            webhook_url=hook,
            redirect_url=_public_origin(request) + CALLBACK_PATH,
        )
        action = f"{creation_url(self.state.settings.github_url, org)}?state={state}"
        nonce = secrets.token_urlsafe(16)
        body = (
            f'<form id="to-github" method="post" action="{html.escape(action)}">'
            f'<input type="hidden" name="manifest" value="{html.escape(json.dumps(manifest))}">'
            f"<p>Taking you to GitHub to create <b>{html.escape(name)}</b> on "
            f"<b>{html.escape(org)}</b>…</p>"
            f'<button type="submit">Continue to GitHub</button></form>'
            f'<script nonce="{nonce}">document.getElementById("to-github").submit()</script>'
        )
        log.info("setup started for the organization %s; waiting for GitHub's redirect", org)
        return self.respond("Registering the GitHub App", body, nonce=nonce)

    async def callback(self, request: web.Request) -> web.Response:
        """Check the state, exchange the code, write ``.env``."""
        if self.state.registered is not None:
            return self.failure(
                "This service already registered an app; restart it to use the credentials.", 409
            )
        pending = self.state.states.take(request.query.get("state", ""))
        if pending is None:
            log.warning("refused a setup callback with an unknown, used or expired state")
            return self.failure(
                "This link was not issued by this setup page, was already used, or expired "
                f"(after {int(STATE_TTL // 60)} minutes). No credentials were written.",
                400,
            )
        code = request.query.get("code", "")
        if not CODE_RE.fullmatch(code):
            return self.failure("GitHub's redirect carried no valid code.", 400)
        try:
            conversion = await self.exchange(code)
            values = env_values(conversion, self.state.settings)
        except SetupError as exc:
            log.warning("setup for %s failed: %s", pending.org, exc)
            return self.failure(str(exc), 502)
        _redact_in_logs([values["WEBHOOK_SECRET"], str(conversion["pem"])])
        name = str(conversion.get("name") or conversion.get("slug") or "the app")
        html_url = str(conversion.get("html_url") or "")
        try:
            write_env(
                self.state.env_path,
                values,
                comment=f"GitHub App {name} (id {values['APP_ID']}), from the setup page",
            )
        except (OSError, SetupError) as exc:
            log.error("could not write %s: %s", self.state.env_path, exc)
            return self.failure(
                f"The app was created on GitHub but {self.state.env_path} could not be written "
                f"({exc}). Delete the app in the organization's settings and start again.",
                500,
            )
        self.state.registered = (name, html_url)
        log.info(
            "registered GitHub App %s (id %s) on %s; credentials written to %s. "
            "Restart the service, then install the app: %s/installations/new",
            name,
            values["APP_ID"],
            pending.org,
            self.state.env_path,
            html_url,
        )
        # Off the URL that carries the (now used) code, so a reload asks GitHub for nothing.
        raise web.HTTPSeeOther("/", headers={"Cache-Control": "no-store"})

    async def exchange(self, code: str) -> dict[str, Any]:
        """``POST /app-manifests/{code}/conversions`` (no authentication: the code is the key).

        gidgethub joins the path to ``GITHUB_API_URL`` keeping a GHES ``/api/v3`` prefix.
        """
        assert self.state.session is not None
        gh = GitHubAPI(
            self.state.session,
            "fleet-promotion-bot-setup",
            base_url=self.state.settings.github_api_url,
        )
        try:
            data = await gh.post(
                "/app-manifests/{code}/conversions", url_vars={"code": code}, data={}
            )
        except gidgethub.BadRequest as exc:
            if exc.status_code == 404:
                raise SetupError(
                    "GitHub does not know this code any more (codes work once, for an hour)."
                ) from None
            raise SetupError(f"GitHub refused the code ({int(exc.status_code)}: {exc}).") from None
        except gidgethub.HTTPException as exc:
            raise SetupError(f"GitHub answered {int(exc.status_code)}; try again.") from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise SetupError(
                f"GitHub could not be reached at {self.state.settings.github_api_url} ({exc})."
            ) from None
        if not isinstance(data, dict):
            raise SetupError("GitHub's answer lacks the app id, key or webhook secret")
        return data

    async def healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "setup"})

    async def webhook(self, request: web.Request) -> web.Response:
        # GitHub pings the new app before the restart: say so; the delivery can be redelivered.
        return web.json_response(
            {"error": "not set up yet: finish the setup page, then restart the service"},
            status=503,
        )


def _cross_site(request: web.Request) -> bool:
    """True when the browser says the POST comes from a page of another origin.

    ``Sec-Fetch-Site`` is the browser's own word; older browsers send only ``Origin``, which is
    ``null`` under this page's ``no-referrer`` policy, so only a real other origin counts.
    """
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None:
        return site not in ("same-origin", "none")
    origin = request.headers.get("Origin", "null")
    return origin != "null" and origin != _public_origin(request)


def _form_error(org: str, hook: str, name: str) -> str | None:
    if not LOGIN_RE.fullmatch(org):
        return "Enter the organization's login, as in github.com/<login> (letters, digits, -)."
    parts = urlsplit(hook)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return "The webhook URL must be an http(s) URL that GitHub can reach."
    if len(name) > MAX_APP_NAME:
        return f"GitHub allows app names of at most {MAX_APP_NAME} characters."
    return None


def _redact_in_logs(values: Iterable[str]) -> None:
    """Add new secrets to the redaction filter installed by :func:`bot.logs.configure`."""
    from bot.service.logs import Redactor

    new = {v for v in values if len(v) >= 4}
    for handler in logging.getLogger().handlers:
        for flt in handler.filters:
            if isinstance(flt, Redactor):
                flt.secrets = sorted(set(flt.secrets) | new, key=len, reverse=True)


def create_setup_app(
    settings: Settings,
    *,
    env_path: Path | None = None,
    manifest_path: Path | None = None,
    webhook_proxy_url: str | None = None,
    states: StateStore | None = None,
) -> web.Application:
    """The setup service: ``/`` (form), ``/setup/start``, ``/setup/callback``, ``/healthz``.

    ``env_path`` defaults to ``.env`` of the working directory, the file ``python -m bot``
    reads at start; ``manifest_path`` to :func:`find_manifest`.
    """
    manifest = load_manifest(manifest_path or find_manifest())
    state = SetupState(
        settings=settings,
        manifest=manifest,
        env_path=(env_path or Path(".env")).absolute(),
        webhook_proxy_url=webhook_proxy_url or None,
        states=states or StateStore(),
    )
    pages = SetupPages(state)
    app = web.Application()
    app.router.add_get("/", pages.index)
    app.router.add_post(START_PATH, pages.start)
    app.router.add_get(CALLBACK_PATH, pages.callback)
    app.router.add_get("/healthz", pages.healthz)
    app.router.add_post(settings.webhook_path, pages.webhook)

    async def open_session(app: web.Application) -> None:
        state.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))

    async def close_session(app: web.Application) -> None:
        if state.session is not None:
            await state.session.close()

    app.on_startup.append(open_session)
    app.on_cleanup.append(close_session)
    return app


def run_setup(settings: Settings) -> int:
    """Serve the setup pages until stopped (``python -m bot serve`` without credentials)."""
    env: dict[str, str] = dict(os.environ)
    load_dotenv(Path(".env"), env)
    try:
        app = create_setup_app(settings, webhook_proxy_url=env.get("WEBHOOK_PROXY_URL"))
    except SetupError as exc:
        log.error("%s", exc)
        return 2
    shown = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    log.warning(
        "no GitHub App credentials: serving the setup page on http://%s:%d/ "
        "(set APP_ID, PRIVATE_KEY and WEBHOOK_SECRET, or use --production, to skip it)",
        shown,
        settings.port,
    )
    web.run_app(app, host=settings.host, port=settings.port, print=None, access_log=None)
    return 0
