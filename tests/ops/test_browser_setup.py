"""A platform engineer's first day, in a real headless Chromium against the fake GitHub:

``python -m bot serve`` without credentials serves the setup page; they type the org, click,
GitHub creates the app and sends them back; ``.env`` holds the credentials; they restart the
service, click the installation link, install the app on the org; GitHub's signed deliveries
are then verified and processed with the credentials the flow wrote.
"""

from __future__ import annotations

import json
import shutil
import stat
from pathlib import Path

from bot.fake import FakeGitHub
from bot.settings import load_dotenv, load_settings
from tests.ops.browser import chromium
from tests.ops.conftest import APP_YML, manifest
from tests.ops.procs import (
    BotProcess,
    free_port,
    inbox_rows,
    post_webhook,
    service_env,
    wait_inbox,
)


async def test_manifest_flow_in_chromium_then_the_service_serves_signed_webhooks(
    fake: FakeGitHub, tmp_path: Path
) -> None:
    fake.create_org("acme")
    # The deployment directory: app.yml beside where .env will be written.
    shutil.copy(APP_YML, tmp_path / "app.yml")
    port = free_port()
    env = service_env(tmp_path, port, GITHUB_API_URL=fake.api_url)
    setup = BotProcess(tmp_path, port, env)
    try:
        await setup.wait_healthy("setup")
        async with chromium() as page:
            await page.goto(f"{setup.url}/")
            prefilled = await page.evaluate("document.querySelector('#webhook_url').value")
            assert prefilled == f"{setup.url}/api/github/webhooks"
            await page.type_into("#org", "acme")
            await page.click("button[type=submit]")
            # our start page -> GitHub's "new app" form post -> 302 -> our callback -> 303 /
            install = await page.wait_for("document.querySelector('#install')?.href")
            assert await page.evaluate("location.href") == f"{setup.url}/"
            heading = await page.evaluate("document.querySelector('h1').textContent")
            assert heading == "The GitHub App is registered"

            app = next(iter(fake.world.state.apps.values()))
            assert install == f"{fake.web_url}/apps/{app.slug}/installations/new"
            assert app.events == manifest()["default_events"]
            assert app.permissions == manifest()["default_permissions"]
            assert app.webhook_url == prefilled
            assert app.owner is not None and app.owner.login == "acme"

            dotenv = tmp_path / ".env"
            assert stat.S_IMODE(dotenv.stat().st_mode) == 0o600
            written: dict[str, str] = {}
            load_dotenv(dotenv, written)
            assert written["APP_ID"] == str(app.id)
            assert written["WEBHOOK_SECRET"] == app.webhook_secret
            assert (
                written["PRIVATE_KEY"].replace("\\n", "\n").strip() == app.private_key_pem.strip()
            )
            assert load_settings(written).has_credentials

            assert await setup.stop() == 0
            assert app.webhook_secret not in setup.log
            assert app.private_key_pem.strip().splitlines()[1] not in setup.log

            # "Restart the service": same directory, same port, the .env is read at start.
            service = BotProcess(tmp_path, port, env)
            try:
                await service.wait_healthy("ok")
                # "Install the app": the link, then GitHub's installation form.
                await page.goto(install)
                await page.type_into("input[name=account]", "acme")
                await page.click("button[type=submit]")
                await page.wait_for("document.body.innerText.startsWith('Installed')")

                await fake.idle()
                created = [d for d in fake.deliveries if d.event == "installation"]
                assert [d.status for d in created] == [202]  # signature verified
                done = await wait_inbox(tmp_path / "data", "installation", ("done",))
                assert done.action == "created"

                secret = written["WEBHOOK_SECRET"]
                ping = {"zen": "Design for failure.", "hook_id": 1, "hook": {"app_id": app.id}}
                assert await post_webhook(
                    f"{service.url}/api/github/webhooks", "ping", ping, secret
                ) == (200, {"msg": "pong"})
                status, _ = await post_webhook(
                    f"{service.url}/api/github/webhooks", "ping", ping, "not-the-secret"
                )
                assert status == 401
                assert [d.event for d in inbox_rows(tmp_path / "data")] == ["installation"]
                assert await service.stop() == 0
                lines = [json.loads(x) for x in service.log.splitlines() if x.startswith("{")]
                assert any(r.get("event") == "installation" for r in lines)
                assert secret not in service.log
            finally:
                service.kill()
    finally:
        setup.kill()
