"""Webhook delivery: signed, ordered, shaped like GitHub's, only to subscribed installations."""

from __future__ import annotations

import json
import uuid

from gidgethub import sansio

from tests.fake.conftest import SECRET, Receiver, Seeded


async def test_deliveries_are_signed_and_carry_githubs_headers(gh: Seeded) -> None:
    gh.receiver.received.clear()
    sha = gh.fake.commit("acme/fleet", "main", {"x.txt": b"1"}, message="add x", author="alice")
    await gh.fake.idle()
    headers, body = gh.receiver.received[0]
    assert Receiver.valid_signature(headers, body)
    assert not Receiver.valid_signature(headers, body + b" ")
    event = sansio.Event.from_http(headers, body, secret=SECRET)  # raises on a bad signature
    assert event.event == "push" and event.data["after"] == sha
    assert headers["X-Hub-Signature"].startswith("sha1=")
    assert headers["User-Agent"].startswith("GitHub-Hookshot/")
    assert headers["X-GitHub-Hook-Installation-Target-Type"] == "integration"
    assert headers["X-GitHub-Hook-Installation-Target-ID"] == str(gh.app.id)
    assert uuid.UUID(headers["X-GitHub-Delivery"]).version == 4
    assert b", " not in body and b": " not in body  # compact JSON
    payload = json.loads(body)
    assert payload["installation"] == {"id": gh.inst.id, "node_id": gh.inst.node_id}
    assert payload["organization"]["login"] == "acme"
    assert payload["sender"]["login"] == "alice"
    assert payload["repository"]["full_name"] == "acme/fleet"
    assert isinstance(payload["repository"]["pushed_at"], int)  # push payloads use epoch ints
    assert payload["commits"][0]["added"] == ["x.txt"]
    delivery = gh.fake.deliveries[-1]
    assert (delivery.event, delivery.status, delivery.response_text) == ("check_suite", 202, "ok")


async def test_events_follow_action_order_and_subscription(gh: Seeded) -> None:
    silent = gh.fake.create_app(
        "silent",
        events=["issues"],
        webhook_url=gh.receiver.url,
        webhook_secret=SECRET,
        permissions={"contents": "read", "issues": "write"},
    )
    gh.fake.install(silent, "acme", repositories=["fleet"])
    await gh.fake.idle()
    gh.receiver.received.clear()
    gh.fake.create_branch("acme/fleet", "feature", by="alice")
    gh.fake.commit("acme/fleet", "feature", {"f": b"1"}, author="alice")
    await gh.fake.idle()
    events = gh.receiver.events()
    # silent subscribed to issues only: pushes and suites go to fleet-bot alone; the seed
    # commit had no suite yet, so the branch creation requests one for it too
    assert events == [
        ("push", None),
        ("check_suite", "requested"),
        ("push", None),
        ("check_suite", "requested"),
    ]
    created = json.loads(gh.receiver.received[0][1])
    assert created["created"] is True and created["ref"] == "refs/heads/feature"


async def test_installation_events(gh: Seeded) -> None:
    created = [d for d in gh.fake.deliveries if d.event == "installation"]
    assert [(d.action, [r["full_name"] for r in d.payload["repositories"]]) for d in created] == [
        ("created", ["acme/fleet"])
    ]
    full = created[0].payload["installation"]
    assert (full["id"], full["app_id"], full["account"]["login"]) == (gh.inst.id, gh.app.id, "acme")
    assert full["repository_selection"] == "selected" and "permissions" in full
    gh.fake.install(gh.app, "acme", repositories=["fleet", "other"])
    await gh.fake.idle()
    added = gh.fake.deliveries[-1]
    assert (added.event, added.action) == ("installation_repositories", "added")
    assert [r["full_name"] for r in added.payload["repositories_added"]] == ["acme/other"]
    gh.fake.install(gh.app, "acme", repositories=["other"])
    removed = gh.fake.deliveries[-1]
    assert removed.action == "removed"
    assert [r["name"] for r in removed.payload["repositories_removed"]] == ["fleet"]


async def test_failed_receiver_is_recorded_not_retried(gh: Seeded) -> None:
    gh.receiver.status = 500
    gh.receiver.received.clear()
    gh.fake.commit("acme/fleet", "main", {"y": b"1"}, author="alice")
    await gh.fake.idle()
    assert [d.status for d in gh.fake.deliveries[-2:]] == [500, 500]
    assert len(gh.receiver.received) == 2
    gh.fake.set_webhook_url(gh.app, "http://127.0.0.1:9/unreachable")
    gh.fake.commit("acme/fleet", "main", {"z": b"1"}, author="alice")
    await gh.fake.idle()
    last = gh.fake.deliveries[-1]
    assert last.status is None and last.error is not None


async def test_membership_events(gh: Seeded) -> None:
    gh.fake.create_user("carol")
    gh.fake.add_team_member("acme", "sre", "carol", by="alice")
    gh.fake.remove_team_member("acme", "sre", "bob", by="alice")
    await gh.fake.idle()
    got = [
        (d.action, d.payload["member"]["login"], d.payload["team"]["slug"])
        for d in gh.fake.deliveries
        if d.event == "membership"
    ]
    assert got == [("added", "carol", "sre"), ("removed", "bob", "sre")]


async def test_a_new_branch_lists_only_the_commits_no_other_branch_has(gh: Seeded) -> None:
    gh.fake.commit("acme/fleet", "main", {"x.txt": b"1"}, message="add x", author="alice")
    gh.fake.create_branch("acme/fleet", "topic", by="alice")
    await gh.fake.idle()
    gh.receiver.received.clear()
    sha = gh.fake.commit("acme/fleet", "topic", {"y.txt": b"2"}, message="add y", author="alice")
    gh.fake.create_branch("acme/fleet", "copy", from_ref="topic", by="alice")
    await gh.fake.idle()
    pushes = [
        json.loads(body)
        for headers, body in gh.receiver.received
        if headers["X-GitHub-Event"] == "push"
    ]
    topic, copy = pushes
    assert [c["id"] for c in topic["commits"]] == [sha]
    assert copy["created"] and copy["commits"] == []  # every commit is on topic already
    assert copy["head_commit"]["id"] == sha
