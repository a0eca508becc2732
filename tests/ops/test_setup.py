"""The manifest flow's server side against the fake GitHub, over HTTP, without a browser: the
form, the state checks, the code exchange, ``.env`` and what never reaches the log."""

from __future__ import annotations

import json
import logging
import stat
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.fake import FakeGitHub
from bot.service.logs import Redactor
from bot.service.setup import (
    SetupError,
    StateStore,
    create_setup_app,
    find_manifest,
    load_manifest,
    write_env,
)
from bot.settings import Settings, load_dotenv, load_settings
from tests.ops.conftest import APP_YML, manifest


class Forms(HTMLParser):
    """The forms of a page: action, method and their inputs' values."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "form":
            self.forms.append({"action": a.get("action"), "method": a.get("method"), "inputs": {}})
        elif tag == "input" and self.forms and a.get("name"):
            self.forms[-1]["inputs"][a["name"]] = a.get("value") or ""


@dataclass
class Flow:
    fake: FakeGitHub
    client: TestClient[Any, Any]
    env_path: Path
    states: StateStore
    settings: Settings

    @property
    def origin(self) -> str:
        return str(self.client.make_url("")).rstrip("/")

    async def start(self, org: str = "acme", **fields: str) -> dict[str, Any]:
        data = {"org": org, "webhook_url": self.origin + "/api/github/webhooks", **fields}
        resp = await self.client.post("/setup/start", data=data)
        assert resp.status == 200, await resp.text()
        return dict(Forms(await resp.text()).forms[0])

    async def to_github(self, form: dict[str, Any]) -> str:
        """What the browser does with the start page's form: POST it, get GitHub's redirect."""
        async with (
            aiohttp.ClientSession() as session,
            session.post(form["action"], data=form["inputs"], allow_redirects=False) as resp,
        ):
            assert resp.status == 302, await resp.text()
            return resp.headers["Location"]

    async def callback(self, location: str) -> tuple[int, str]:
        """GitHub's redirect to our callback; a success sends the browser on to ``/``."""
        assert location.startswith(self.origin + "/setup/callback?")
        resp = await self.client.get(location[len(self.origin) :], allow_redirects=False)
        if resp.status == 303:
            assert resp.headers["Location"] == "/"
            resp = await self.client.get("/")
        return resp.status, await resp.text()


async def _flow(fake: FakeGitHub, tmp_path: Path, env: dict[str, str]) -> AsyncIterator[Flow]:
    await fake.start()
    fake.create_org("acme")
    settings = load_settings({"GITHUB_API_URL": fake.api_url, **env})
    states = StateStore()
    env_path = tmp_path / ".env"
    app = create_setup_app(settings, env_path=env_path, manifest_path=APP_YML, states=states)
    client: TestClient[Any, Any] = TestClient(TestServer(app))
    await client.start_server()
    try:
        yield Flow(fake, client, env_path, states, settings)
    finally:
        await client.close()
        await fake.stop()


@pytest.fixture
async def flow(tmp_path: Path) -> AsyncIterator[Flow]:
    async for f in _flow(FakeGitHub(), tmp_path, {}):
        yield f


@pytest.fixture
async def ghes_flow(tmp_path: Path) -> AsyncIterator[Flow]:
    async for f in _flow(FakeGitHub(base_path="/api/v3"), tmp_path, {}):
        yield f


def read_env(path: Path) -> dict[str, str]:
    env: dict[str, str] = {}
    load_dotenv(path, env)
    return env


async def test_index_prefills_the_webhook_url_from_the_host(flow: Flow) -> None:
    resp = await flow.client.get("/")
    assert resp.status == 200
    form = Forms(await resp.text()).forms[0]
    assert form["action"] == "/setup/start"
    assert form["inputs"]["webhook_url"] == flow.origin + "/api/github/webhooks"
    assert form["inputs"]["name"] == manifest()["name"]
    assert "org" in form["inputs"]

    behind_proxy = await flow.client.get(
        "/", headers={"X-Forwarded-Proto": "https", "X-Forwarded-Host": "bot.acme.com"}
    )
    proxied = Forms(await behind_proxy.text()).forms[0]
    assert proxied["inputs"]["webhook_url"] == "https://bot.acme.com/api/github/webhooks"


async def test_webhook_proxy_url_is_the_default_when_set(tmp_path: Path) -> None:
    settings = load_settings({})
    app = create_setup_app(
        settings,
        env_path=tmp_path / ".env",
        manifest_path=APP_YML,
        webhook_proxy_url="https://smee.io/abc123",
    )
    async with TestClient(TestServer(app)) as client:
        page = await (await client.get("/")).text()
    assert Forms(page).forms[0]["inputs"]["webhook_url"] == "https://smee.io/abc123"


async def test_start_posts_the_manifest_to_the_orgs_new_app_page_with_a_state(flow: Flow) -> None:
    resp = await flow.client.post(
        "/setup/start",
        data={"org": "acme", "webhook_url": "https://bot.acme.com/hooks", "name": "Acme Fleet Bot"},
    )
    text = await resp.text()
    form = Forms(text).forms[0]
    base, _, query = form["action"].partition("?")
    assert base == f"{flow.fake.web_url}/organizations/acme/settings/apps/new"
    assert form["method"] == "post"
    state = query.removeprefix("state=")
    assert len(state) >= 40 and state in flow.states._pending
    sent = json.loads(form["inputs"]["manifest"])
    expected = manifest()
    assert sent["default_events"] == expected["default_events"]
    assert sent["default_permissions"] == expected["default_permissions"]
    assert sent["name"] == "Acme Fleet Bot"
    assert sent["hook_attributes"] == {"url": "https://bot.acme.com/hooks", "active": True}
    assert sent["redirect_url"] == flow.origin + "/setup/callback"
    assert sent["url"] == "https://bot.acme.com"
    # The page submits itself with the one script its policy allows, and posts nowhere else.
    csp = resp.headers["Content-Security-Policy"]
    nonce = csp.split("'nonce-")[1].split("'")[0]
    assert f'<script nonce="{nonce}">' in text
    assert f"form-action 'self' {flow.fake.web_url};" in csp


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"org": ""}, "organization"),
        ({"org": "acme/../evil"}, "organization"),
        ({"org": "-acme"}, "organization"),
        ({"org": "acme", "webhook_url": "ftp://x"}, "webhook URL"),
        ({"org": "acme", "name": "x" * 35}, "34 characters"),
    ],
)
async def test_start_refuses_bad_fields_and_issues_no_state(
    flow: Flow, fields: dict[str, str], message: str
) -> None:
    data = {"webhook_url": "https://bot.acme.com/hooks", **fields}
    resp = await flow.client.post("/setup/start", data=data)
    assert resp.status == 400
    assert message in await resp.text()
    assert flow.states._pending == {}


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Sec-Fetch-Site": "cross-site", "Origin": "null"},
        {"Sec-Fetch-Site": "same-site"},
    ],
)
async def test_start_refuses_a_form_sent_from_another_site(
    flow: Flow, headers: dict[str, str]
) -> None:
    data = {"org": "acme", "webhook_url": "https://evil.example/hooks"}
    resp = await flow.client.post("/setup/start", data=data, headers=headers)
    assert resp.status == 403
    assert flow.states._pending == {}
    same = await flow.client.post(
        "/setup/start",
        data=data,
        headers={"Origin": "null", "Sec-Fetch-Site": "same-origin"},  # as Chromium sends it
    )
    assert same.status == 200 and len(flow.states._pending) == 1
    legacy = await flow.client.post("/setup/start", data=data, headers={"Origin": flow.origin})
    assert legacy.status == 200 and len(flow.states._pending) == 2


async def test_the_whole_flow_writes_a_private_env_the_service_can_start_with(flow: Flow) -> None:
    location = await flow.to_github(await flow.start())
    status, page = await flow.callback(location)
    assert status == 200, page
    app = next(a for a in flow.fake.world.state.apps.values())
    mode = stat.S_IMODE(flow.env_path.stat().st_mode)
    assert mode == 0o600
    env = read_env(flow.env_path)
    assert env["APP_ID"] == str(app.id)
    assert env["WEBHOOK_SECRET"] == app.webhook_secret
    assert "\n" not in env["PRIVATE_KEY"]
    assert env["PRIVATE_KEY"].replace("\\n", "\n").strip() == app.private_key_pem.strip()
    assert env["GITHUB_API_URL"] == flow.fake.api_url  # not the default, so it is kept
    assert "GITHUB_URL" not in env  # derived from the API URL again
    settings = load_settings(env)
    assert settings.has_credentials and settings.app_id == str(app.id)
    # the page links to the installation page and says to restart; it shows no secret
    assert f'href="{flow.fake.web_url}/apps/{app.slug}/installations/new"' in page
    assert "Restart the service" in page
    assert app.webhook_secret not in page and "PRIVATE KEY" not in page
    # done: the setup page now says so instead of offering a second registration
    again = await (await flow.client.get("/")).text()
    assert "is registered" in again and "/setup/start" not in again


async def test_a_callback_with_a_state_not_issued_here_is_refused(flow: Flow) -> None:
    location = await flow.to_github(await flow.start())
    forged = location.split("state=")[0] + "state=forged-by-someone-else"
    status, page = await flow.callback(forged)
    assert status == 400 and "not issued by this setup page" in page
    assert not flow.env_path.exists()
    # The real state still works afterwards: the refusal consumed nothing.
    status, _ = await flow.callback(location)
    assert status == 200 and flow.env_path.exists()


async def test_a_state_works_once(flow: Flow) -> None:
    first = await flow.to_github(await flow.start())
    second = await flow.to_github(await flow.start())
    state_of_first = first.split("state=")[1]
    replay = second.split("state=")[0] + "state=" + state_of_first
    # use the first state with the second code: fine once ...
    assert (await flow.callback(replay))[0] == 200
    flow.env_path.unlink()
    # ... and never again, even after the configuration is gone
    fresh = create_setup_app(
        flow.settings, env_path=flow.env_path, manifest_path=APP_YML, states=flow.states
    )
    async with TestClient(TestServer(fresh)) as client:
        resp = await client.get("/setup/callback?" + first.split("?", 1)[1])
        assert resp.status == 400
    assert not flow.env_path.exists()


def test_state_store_expires_consumes_and_bounds() -> None:
    now = [1000.0]
    store = StateStore(ttl=60, limit=3, clock=lambda: now[0])
    a = store.issue("acme")
    assert store.take(a) is not None
    assert store.take(a) is None  # single use
    b = store.issue("acme")
    now[0] += 61
    assert store.take(b) is None  # expired
    states = [store.issue(f"org{i}") for i in range(4)]
    assert store.take(states[0]) is None  # the oldest was dropped past the limit
    assert all(store.take(s) is not None for s in states[1:])
    assert store.take("") is None


async def test_a_used_or_expired_code_is_explained_and_writes_nothing(flow: Flow) -> None:
    location = await flow.to_github(await flow.start())
    code = location.split("code=")[1].split("&")[0]
    async with aiohttp.ClientSession() as session:  # someone else exchanged it first
        await session.post(f"{flow.fake.api_url}/app-manifests/{code}/conversions")
    status, page = await flow.callback(location)
    assert status == 502
    assert "codes work once, for an hour" in page
    assert not flow.env_path.exists()


async def test_a_malformed_code_is_not_sent_to_github(flow: Flow) -> None:
    location = await flow.to_github(await flow.start())
    state = location.split("state=")[1]
    status, _ = await flow.callback(f"{flow.origin}/setup/callback?code=../../x&state={state}")
    assert status == 400
    assert not any("conversions" in r.path for r in flow.fake.requests)


async def test_ghes_form_goes_to_the_web_host_and_the_exchange_keeps_api_v3(
    ghes_flow: Flow,
) -> None:
    form = await ghes_flow.start()
    assert form["action"].startswith(f"{ghes_flow.fake.web_url}/organizations/acme/settings/")
    assert "/api/v3" not in form["action"]
    status, page = await ghes_flow.callback(await ghes_flow.to_github(form))
    assert status == 200, page
    exchanges = [r for r in ghes_flow.fake.requests if r.path.endswith("/conversions")]
    assert [r.status for r in exchanges] == [201]  # reached the route under the prefix
    env = read_env(ghes_flow.env_path)
    assert env["GITHUB_API_URL"] == ghes_flow.fake.api_url
    assert env["GITHUB_API_URL"].endswith("/api/v3")


async def test_no_secret_reaches_the_log(flow: Flow, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    status, _ = await flow.callback(await flow.to_github(await flow.start()))
    assert status == 200
    app = next(a for a in flow.fake.world.state.apps.values())
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "registered GitHub App" in text
    key_body = app.private_key_pem.strip().splitlines()[1]
    assert app.webhook_secret and app.webhook_secret not in text
    assert key_body not in text


async def test_new_secrets_are_added_to_the_log_redaction(flow: Flow) -> None:
    redactor = Redactor()
    handler = logging.StreamHandler()
    handler.addFilter(redactor)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        status, _ = await flow.callback(await flow.to_github(await flow.start()))
    finally:
        root.removeHandler(handler)
    assert status == 200
    app = next(a for a in flow.fake.world.state.apps.values())
    assert redactor.redact(f"oops {app.webhook_secret}") == "oops [redacted]"


async def test_webhooks_are_refused_until_set_up_and_health_says_setup(flow: Flow) -> None:
    hook = await flow.client.post("/api/github/webhooks", data=b"{}")
    assert hook.status == 503
    health = await flow.client.get("/healthz")
    assert health.status == 200 and (await health.json()) == {"status": "setup"}


def test_write_env_keeps_other_settings_and_replaces_old_credentials(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text(
        "# my settings\nWEBHOOK_PROXY_URL=https://smee.io/x\nAPP_ID=1\n"
        "PRIVATE_KEY_PATH=/old.pem\nexport LOG_LEVEL=DEBUG\n"
    )
    path.chmod(0o644)
    write_env(path, {"APP_ID": "42", "WEBHOOK_SECRET": "s3cret"}, comment="new app")
    text = path.read_text()
    assert text.splitlines() == [
        "# my settings",
        "WEBHOOK_PROXY_URL=https://smee.io/x",
        "export LOG_LEVEL=DEBUG",
        "# new app",
        "APP_ID=42",
        "WEBHOOK_SECRET=s3cret",
    ]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind
    with pytest.raises(SetupError):
        write_env(path, {"WEBHOOK_SECRET": "two\nlines"})


def test_manifest_of_the_working_directory_wins(tmp_path: Path) -> None:
    (tmp_path / "app.yml").write_text(
        "name: Acme's own\ndefault_events: [push]\ndefault_permissions: {contents: read}\n"
    )
    found = find_manifest(tmp_path)
    assert found == tmp_path / "app.yml"
    assert load_manifest(found)["name"] == "Acme's own"


@pytest.mark.parametrize(
    "text",
    [
        "name: [unclosed\n",
        "- just a list\n",
        "default_events: [push]\ndefault_permissions: {contents: read}\n",
        "name: x\ndefault_events: push\ndefault_permissions: {contents: read}\n",
        "name: x\ndefault_events: [push]\ndefault_permissions: {contents: admin}\n",
    ],
)
def test_a_broken_manifest_is_a_clear_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "app.yml"
    path.write_text(text)
    with pytest.raises(SetupError, match=r"app\.yml"):
        load_manifest(path)


def test_production_without_credentials_refuses_to_start(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8"}
    run = subprocess.run(
        [sys.executable, "-m", "bot", "serve", "--production"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2
    assert "APP_ID is not set" in run.stderr
