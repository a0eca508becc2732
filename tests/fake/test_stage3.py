"""Dispatch, packages, releases, the manifest flow, faults, latency and rate limits."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlparse

import aiohttp
import pytest
from gidgethub import BadRequest, GitHubBroken, RateLimitExceeded
from gidgethub.aiohttp import GitHubAPI

from tests.fake.conftest import Seeded


@pytest.mark.contract_breach(r"\(repos/create-dispatch-event\) request body .*'event_type'")
async def test_dispatch_over_rest_and_control(gh: Seeded) -> None:
    bot = await gh.bot()
    await bot.post(
        "/repos/acme/fleet/dispatches",
        data={"event_type": "image-published", "client_payload": {"image": "payment", "tag": "v1"}},
    )
    gh.fake.dispatch("acme/fleet", "image-published", {"image": "api"}, by="bob")
    with pytest.raises(BadRequest) as exc:
        await bot.post("/repos/acme/fleet/dispatches", data={"client_payload": {}})
    assert exc.value.status_code == 422
    await gh.fake.idle()
    got = [
        (d.action, d.payload["client_payload"], d.payload["sender"]["login"], d.payload["branch"])
        for d in gh.fake.deliveries
        if d.event == "repository_dispatch"
    ]
    assert got == [
        ("image-published", {"image": "payment", "tag": "v1"}, "fleet-bot[bot]", "main"),
        ("image-published", {"image": "api"}, "bob", "main"),
    ]


@pytest.mark.parametrize("event", ["registry_package", "package"])
async def test_publish_package_payload_shape(gh: Seeded, event: str) -> None:
    gh.fake.create_repo("acme", "payment", author="alice")
    gh.fake.install(gh.app, "acme", repositories=["fleet", "payment"])
    digest = "sha256:" + "ab" * 32
    gh.fake.publish_package(
        owner="acme", name="payment", tag="v1.1.0", digest=digest, repo="acme/payment", event=event
    )
    await gh.fake.idle()
    delivery = gh.fake.deliveries[-1]
    assert (delivery.event, delivery.action, delivery.status) == (event, "published", 202)
    pkg = delivery.payload[event]
    version = pkg["package_version"]
    assert version["container_metadata"]["tag"] == {"name": "v1.1.0", "digest": digest}
    assert (pkg["name"], pkg["package_type"], pkg["owner"]["login"]) == (
        "payment",
        "CONTAINER",
        "acme",
    )
    assert delivery.payload["repository"]["full_name"] == "acme/payment"
    assert version["package_url"] == "ghcr.io/acme/payment:v1.1.0"


async def test_release_events_and_endpoints(gh: Seeded) -> None:
    gh.fake.create_repo("acme", "blueprints", author="alice")
    gh.fake.install(gh.app, "acme", repositories=["fleet", "blueprints"])
    rid = gh.fake.create_release(
        "acme/blueprints", tag="v1.2.0", body="notes", by="alice", prerelease=True
    )
    bot = await gh.bot()
    by_tag = await bot.getitem("/repos/acme/blueprints/releases/tags/v1.2.0")
    assert (by_tag["id"], by_tag["body"], by_tag["prerelease"]) == (rid, "notes", True)
    created = await bot.post("/repos/acme/blueprints/releases", data={"tag_name": "v1.3.0"})
    assert (await bot.getitem(f"/repos/acme/blueprints/releases/{created['id']}"))[
        "tag_name"
    ] == "v1.3.0"
    assert (await bot.getitem("/repos/acme/blueprints/releases/latest"))["tag_name"] == "v1.3.0"
    assert "refs/tags/v1.2.0" in gh.fake.repo("acme/blueprints").refs
    await gh.fake.idle()
    got = [
        (d.action, d.payload["release"]["tag_name"])
        for d in gh.fake.deliveries
        if d.event == "release"
    ]
    assert got == [
        ("created", "v1.2.0"),
        ("published", "v1.2.0"),
        ("prereleased", "v1.2.0"),
        ("created", "v1.3.0"),
        ("published", "v1.3.0"),
    ]


async def test_manifest_flow(gh: Seeded) -> None:
    manifest = {
        "name": "Fleet Promotion Bot",
        "url": "https://bot.example",
        "redirect_url": "http://localhost:1/done",
        "hook_attributes": {"url": "https://bot.example/api/github/webhooks"},
        "default_events": ["push", "pull_request"],
        "default_permissions": {"contents": "write"},
    }
    new = f"{gh.fake.web_url}/organizations/acme/settings/apps/new"
    async with gh.session.get(new, params={"state": "xyz"}) as resp:
        assert resp.status == 200 and "<form" in await resp.text()
    async with gh.session.post(
        new + "?state=xyz", data={"manifest": json.dumps(manifest)}, allow_redirects=False
    ) as resp:
        assert resp.status == 302
        location = urlparse(resp.headers["Location"])
    query = parse_qs(location.query)
    assert location.netloc == "localhost:1" and query["state"] == ["xyz"]
    code = query["code"][0]
    client = GitHubAPI(gh.session, "t", base_url=gh.fake.api_url)
    app = await client.post(f"/app-manifests/{code}/conversions", data={})
    assert (app["slug"], app["owner"]["login"]) == ("fleet-promotion-bot", "acme")
    assert app["pem"].startswith("-----BEGIN RSA PRIVATE KEY-----") and app["webhook_secret"]
    assert app["permissions"] == {"metadata": "read", "contents": "write"}
    with pytest.raises(BadRequest) as exc:
        await client.post(f"/app-manifests/{code}/conversions", data={})
    assert exc.value.status_code == 404  # single use
    page = f"{gh.fake.web_url}/apps/fleet-promotion-bot/installations/new"
    async with gh.session.post(page, data={"account": "acme", "repositories": "fleet"}) as resp:
        assert resp.status == 200
    inst = [
        i for i in gh.fake.world.state.installations.values() if i.app.slug == "fleet-promotion-bot"
    ]
    assert len(inst) == 1 and inst[0].repository_selection == "selected"


async def test_faults_status_reset_delay_and_consumption(gh: Seeded) -> None:
    bot = await gh.bot()
    gh.fake.inject_fault("GET", r"^/repos/[^/]+/[^/]+/git/trees", status=502, times=1)
    with pytest.raises(GitHubBroken) as exc:
        await bot.getitem("/repos/acme/fleet/git/trees/main")
    assert exc.value.status_code == 502
    assert (await bot.getitem("/repos/acme/fleet/git/trees/main"))["truncated"] is False
    gh.fake.inject_fault(None, r"/git/refs", reset=True, times=1)
    with pytest.raises(aiohttp.ClientError):
        await bot.post("/repos/acme/fleet/git/refs", data={"ref": "refs/heads/x", "sha": "0" * 40})
    gh.fake.inject_fault(
        "GET", r"^/repos/acme/fleet$", status=200, body={"custom": True}, delay=0.05
    )
    assert await bot.getitem("/repos/acme/fleet") == {"custom": True}
    faulted = [r for r in gh.fake.requests if r.path == "/repos/acme/fleet"][-1]
    assert faulted.duration >= 0.05
    assert "refs/heads/x" not in gh.fake.repo("acme/fleet").refs
    dropped = [r for r in gh.fake.requests if r.path.endswith("/git/refs")]
    assert [r.status for r in dropped] == [0]


async def test_secondary_rate_limit_and_latency(gh: Seeded) -> None:
    bot = await gh.bot()
    gh.fake.inject_secondary_rate_limit(r"/pulls$", retry_after=7, times=1)
    token = await gh.token()
    async with gh.session.get(
        f"{gh.fake.api_url}/repos/acme/fleet/pulls", headers={"Authorization": f"token {token}"}
    ) as resp:
        assert resp.status == 403 and resp.headers["Retry-After"] == "7"
        assert "secondary rate limit" in (await resp.json())["message"]
    assert await bot.getitem("/repos/acme/fleet/pulls") == []
    gh.fake.latency = 0.03
    await bot.getitem("/repos/acme/fleet")
    assert gh.fake.requests[-1].duration >= 0.03


async def test_primary_rate_limit(gh: Seeded) -> None:
    bot = await gh.bot()
    gh.fake.set_rate_limit(3, identity=f"installation:{gh.inst.id}")
    gh.fake.reset_counters()
    for _ in range(3):
        await bot.getitem("/repos/acme/fleet")
    with pytest.raises(RateLimitExceeded) as exc:
        await bot.getitem("/repos/acme/fleet")
    assert exc.value.rate_limit.remaining == 0
    assert f"installation ID {gh.inst.id}" in str(exc.value)
    status = await bot.getitem("/rate_limit")  # free, and still answers
    assert status["resources"]["core"]["remaining"] == 0
