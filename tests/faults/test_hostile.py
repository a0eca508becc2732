"""Hostile and broken input (issue 8): a clear error, no change, and the service stays up."""

from __future__ import annotations

import json
import re
from typing import Any

import aiohttp

from bot.fake import samples
from tests.e2e.gatekit import PROD, open_change, path, summary, verdict
from tests.harness import FLEET, SECRET, Harness

MB = 1024 * 1024


async def healthy(h: Harness) -> bool:
    async with aiohttp.ClientSession() as s, s.get(f"{h.bot_url}/healthz") as resp:
        return resp.status == 200


async def test_bodies_up_to_25_mb_are_accepted_larger_refused(world: Harness) -> None:
    def body(size: int) -> bytes:
        head = b'{"zen": "x", "pad": "'
        tail = b'"}'
        return head + b"a" * (size - len(head) - len(tail)) + tail

    status, _ = await world.send("ping", body(25 * MB))
    assert status == 200
    status, _ = await world.send("ping", body(25 * MB + 1))
    assert status == 413
    assert await healthy(world)


async def test_signed_but_malformed_payloads_never_500_and_change_nothing(world: Harness) -> None:
    world.allow_failed_deliveries = True
    cases: list[tuple[str, Any]] = [
        (
            "pull_request",
            {"action": "opened", "repository": {"full_name": FLEET}, "installation": {"id": 1}},
        ),
        (
            "pull_request",
            {
                "action": "opened",
                "pull_request": "not an object",
                "repository": {"full_name": FLEET},
                "installation": {"id": 1},
            },
        ),
        (
            "repository_dispatch",
            {
                "action": "image-published",
                "client_payload": {"tag": 5},
                "repository": {"full_name": FLEET},
                "installation": {"id": 1},
            },
        ),
        (
            "repository_dispatch",
            {
                "action": "image-published",
                "client_payload": {"image": "UPPER CASE!", "tag": "v1"},
                "repository": {"full_name": FLEET},
                "installation": {"id": 1},
            },
        ),
        (
            "issue_comment",
            {
                "action": "created",
                "comment": {"body": "/promote prod"},
                "repository": {"full_name": FLEET},
                "installation": {"id": 1},
            },
        ),
        ("pull_request", {"action": "no-such-action", "repository": {"full_name": FLEET}}),
        ("push", [1, 2, 3]),
    ]
    installation = next(iter(world.fake.world.state.installations.values())).id
    for event, payload in cases:
        if isinstance(payload, dict) and "installation" in payload:
            payload["installation"] = {"id": installation}
        status, _ = await world.send(event, payload)
        assert status in (202, 400), (event, status)
    status, _ = await world.send("push", b"{not json")
    assert status == 400
    await world.settle()
    assert world.writes() == []
    reasons = [reason for _, _, reason in world.failed_deliveries()]
    assert reasons and all(r.startswith("malformed payload: ") for r in reasons), reasons
    assert any("client_payload.image" in r for r in reasons)
    assert await healthy(world)


async def test_names_from_comments_must_be_exact_plain_names(world: Harness) -> None:
    issue = world.fake.create_issue(FLEET, "x", "", author="alice")
    for bad in ("../prod", "/etc/passwd", "payment-*", "p\u0430yment-app", "prod\u200b"):
        world.fake.comment(FLEET, issue, "alice", f"/promote prod {bad}")
    world.fake.comment(FLEET, issue, "alice", "/promote pr\u043ed payment-app")  # Cyrillic o
    await world.settle()
    replies = [
        c.body
        for c in world.fake.repo(FLEET).issues[issue].comments
        if c.user.login.endswith("[bot]")
    ]
    assert len(replies) == 6
    assert all("not a plain name" in r or "no environment" in r for r in replies), replies
    assert [p for p in world.pulls() if p.head_ref.startswith("fleet-bot/")] == []


async def test_yaml_bomb_and_huge_inputs_are_refused_with_a_reason(world: Harness) -> None:
    bomb = b"a: &a [x, x, x, x, x, x, x, x, x]\n" + b"".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
        f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
        f"*{chr(97 + i)}]\n".encode()
        for i in range(8)
    )
    deep = b"spec:\n" + b"".join(b"  " * (i + 1) + b"k:\n" for i in range(200))
    huge = b"# " + b"x" * (2 * MB) + b"\n"
    number = open_change(
        world,
        "hostile",
        {
            path(PROD): bomb,
            path(PROD, "checkout"): deep,
            path(PROD, "ledger"): huge,
        },
    )
    await world.settle()
    assert verdict(world, number, "promotion/lineage") == "failure"
    text = summary(world, number, "promotion/lineage")
    assert text.count("cannot be read") >= 3 or len(re.findall(r"cannot", text)) >= 3, text
    assert await healthy(world)


async def test_no_loops_a_bump_ends_in_a_bounded_number_of_events(world: Harness) -> None:
    world.fake.dispatch(
        FLEET, "image-published", {"image": samples.PAYMENT_IMAGE, "tag": "v2.2.0"}, by="ci-bot"
    )
    await world.settle()
    first = len(world.fake.deliveries)
    await world.settle()
    assert len(world.fake.deliveries) == first  # nothing keeps going by itself
    assert first < 30


async def test_wrong_secret_payload_is_not_parsed(world: Harness) -> None:
    status, _ = await world.send("push", json.dumps({"boom": 1}).encode(), secret=SECRET[::-1])
    assert status == 401
    assert world.state.inbox is not None and world.state.inbox.recent() == []


async def test_json_nested_thousands_deep_is_refused_with_400(world: Harness) -> None:
    """A signed body nested deeper than Python's recursion limit (``json.loads`` raises
    RecursionError): 400 with a message, counted as refused, nothing recorded, still up."""
    for depth in (5_000, 100_000):
        for body in (b"[" * depth + b"]" * depth, b'{"a":' * depth + b"1" + b"}" * depth):
            status, text = await world.send("pull_request", body, delivery=f"deep-{depth}")
            assert status == 400, text
            assert "nested too deeply" in json.loads(text)["error"]
    assert await healthy(world)
    assert world.state.inbox is not None and world.state.inbox.recent() == []
    async with aiohttp.ClientSession() as s, s.get(f"{world.bot_url}/metrics") as resp:
        metrics = await resp.text()
    assert 'fleetbot_deliveries_refused_total{reason="too deep"} 4.0' in metrics
    status, _ = await world.send("ping", {"zen": "still here"})
    assert status == 200
