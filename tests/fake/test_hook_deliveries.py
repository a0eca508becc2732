"""The app's webhook delivery log: every attempt with its outcome, GitHub's three endpoints."""

from __future__ import annotations

import json
import re
import socket
import time
from typing import Any

import aiohttp
from gidgethub import apps

from tests.fake.conftest import Seeded


def jwt(gh: Seeded) -> dict[str, str]:
    token = apps.get_jwt(app_id=str(gh.app.id), private_key=gh.app.private_key_pem)
    return {"Authorization": f"Bearer {token}", "Accept": "application/vnd.github+json"}


async def get(gh: Seeded, url: str, headers: dict[str, str]) -> tuple[int, Any, str]:
    if url.startswith("/"):
        url = gh.fake.api_url + url
    async with gh.session.get(url, headers=headers) as resp:
        return resp.status, await resp.json(), resp.headers.get("Link", "")


def next_link(link: str) -> str | None:
    match = re.search(r'<([^>]+)>; rel="next"', link)
    return match.group(1) if match else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_every_attempt_is_listed_newest_first_with_cursor_pages(gh: Seeded) -> None:
    for n in range(5):
        gh.fake.commit("acme/fleet", "main", {f"f{n}": b"1"}, author="alice")
    await gh.fake.idle()
    made = [d for d in gh.fake.delivery_log if d.app is gh.app]
    assert len(made) >= 10  # a push and a check suite per commit
    seen: list[dict[str, Any]] = []
    url: str | None = "/app/hook/deliveries?per_page=3"
    pages = 0
    while url is not None:
        status, page, link = await get(gh, url, jwt(gh))
        assert status == 200 and len(page) <= 3
        assert "&page=" not in link and "?page=" not in link  # cursors, no page numbers
        seen += page
        pages += 1
        url = next_link(link)
    assert pages == -(-len(made) // 3)
    assert [d["id"] for d in seen] == sorted((d.log_id for d in made), reverse=True)
    first = seen[0]
    assert set(first) == {
        "id", "guid", "delivered_at", "redelivery", "duration", "status", "status_code",
        "event", "action", "installation_id", "repository_id", "throttled_at",
    }  # fmt: skip
    newest = made[-1]
    assert first["guid"] == newest.delivery_id and first["event"] == newest.event
    assert (first["status"], first["status_code"], first["redelivery"]) == ("OK", 202, False)
    assert first["installation_id"] == gh.inst.id
    assert first["repository_id"] == gh.fake.repo("acme/fleet").id
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", first["delivered_at"])
    status, _, _ = await get(gh, "/app/hook/deliveries?cursor=nonsense", jwt(gh))
    assert status == 422


async def test_failures_are_recorded_with_githubs_status_texts(gh: Seeded) -> None:
    gh.receiver.status = 503
    gh.fake.commit("acme/fleet", "main", {"a": b"1"}, author="alice")
    await gh.fake.idle()
    gh.receiver.status = 202
    gh.fake.set_webhook_url(gh.app, f"http://127.0.0.1:{free_port()}/hook")
    gh.fake.commit("acme/fleet", "main", {"b": b"1"}, author="alice")
    await gh.fake.idle()
    gh.fake.set_webhook_url(gh.app, gh.receiver.url)
    gh.receiver.delay = 1.0
    gh.fake.webhook_timeout = 0.2
    gh.fake.commit("acme/fleet", "main", {"c": b"1"}, author="alice")
    await gh.fake.idle()
    _, page, _ = await get(gh, "/app/hook/deliveries?per_page=6", jwt(gh))
    outcomes = [(d["event"], d["status"], d["status_code"]) for d in reversed(page)]
    assert outcomes == [
        ("push", "Invalid HTTP Response: 503", 503),
        ("check_suite", "Invalid HTTP Response: 503", 503),
        ("push", "failed to connect", 0),
        ("check_suite", "failed to connect", 0),
        ("push", "timed out", 0),
        ("check_suite", "timed out", 0),
    ]
    assert not any(d.ok for d in gh.fake.delivery_log[-6:])


async def test_one_delivery_carries_request_and_response(gh: Seeded) -> None:
    gh.fake.commit("acme/fleet", "main", {"a": b"1"}, author="alice")
    await gh.fake.idle()
    made = gh.fake.delivery_log[-1]
    status, one, _ = await get(gh, f"/app/hook/deliveries/{made.log_id}", jwt(gh))
    assert status == 200
    assert one["id"] == made.log_id and one["guid"] == made.delivery_id
    assert one["url"] == gh.receiver.url
    headers = one["request"]["headers"]
    assert headers["X-GitHub-Delivery"] == made.delivery_id
    assert headers["X-GitHub-Event"] == made.event
    assert headers["X-Hub-Signature-256"].startswith("sha256=")
    assert one["request"]["payload"] == json.loads(made.body)
    assert one["response"]["payload"] == "ok"
    assert isinstance(one["response"]["headers"], dict)
    status, _, _ = await get(gh, "/app/hook/deliveries/999", jwt(gh))
    assert status == 404


async def test_redelivery_posts_the_same_guid_again(gh: Seeded) -> None:
    gh.fake.set_webhook_url(gh.app, f"http://127.0.0.1:{free_port()}/hook")
    gh.fake.commit("acme/fleet", "main", {"a": b"1"}, author="alice")
    await gh.fake.idle()
    failed = gh.fake.delivery_log[-1]
    gh.fake.set_webhook_url(gh.app, gh.receiver.url)
    gh.receiver.received.clear()
    url = f"{gh.fake.api_url}/app/hook/deliveries/{failed.log_id}/attempts"
    async with gh.session.post(url, headers=jwt(gh)) as resp:
        assert resp.status == 202
    await gh.fake.idle()
    headers, body = gh.receiver.received[-1]
    assert headers["X-GitHub-Delivery"] == failed.delivery_id
    assert json.loads(body) == failed.payload
    _, page, _ = await get(gh, "/app/hook/deliveries?per_page=2", jwt(gh))
    assert page[0]["guid"] == failed.delivery_id and page[0]["id"] != failed.log_id
    assert (page[0]["redelivery"], page[0]["status"]) == (True, "OK")
    assert (page[1]["id"], page[1]["redelivery"], page[1]["status"]) == (
        failed.log_id,
        False,
        "failed to connect",
    )


async def test_only_the_apps_jwt_reads_the_log(gh: Seeded) -> None:
    token = await gh.token()
    status, _, _ = await get(gh, "/app/hook/deliveries", {"Authorization": f"token {token}"})
    assert status == 401
    status, _, _ = await get(gh, "/app/hook/deliveries", {})
    assert status == 401
    other = gh.fake.create_app("other-app", webhook_url=gh.receiver.url)
    gh.fake.commit("acme/fleet", "main", {"a": b"1"}, author="alice")
    await gh.fake.idle()
    mine = gh.fake.delivery_log[-1]
    async with aiohttp.ClientSession() as session:
        theirs = apps.get_jwt(app_id=str(other.id), private_key=other.private_key_pem)
        url = f"{gh.fake.api_url}/app/hook/deliveries/{mine.log_id}"
        async with session.get(url, headers={"Authorization": f"Bearer {theirs}"}) as resp:
            assert resp.status == 404  # another app's log


async def test_deliveries_older_than_the_retention_are_gone(gh: Seeded) -> None:
    gh.fake.commit("acme/fleet", "main", {"a": b"1"}, author="alice")
    await gh.fake.idle()
    old = gh.fake.delivery_log[-1]
    old.delivered_at = time.time() - 3 * 24 * 3600 - 60
    _, page, _ = await get(gh, "/app/hook/deliveries?per_page=100", jwt(gh))
    assert old.log_id not in [d["id"] for d in page]
    status, _, _ = await get(gh, f"/app/hook/deliveries/{old.log_id}", jwt(gh))
    assert status == 404


async def test_ghes_keeps_its_log_for_seven_days(ghes: Seeded) -> None:
    ghes.fake.commit("acme/fleet", "main", {"a": b"1"}, author="alice")
    await ghes.fake.idle()
    old = ghes.fake.delivery_log[-1]
    old.delivered_at = time.time() - 6 * 24 * 3600
    status, one, _ = await get(ghes, f"/app/hook/deliveries/{old.log_id}", jwt(ghes))
    assert status == 200 and one["guid"] == old.delivery_id
