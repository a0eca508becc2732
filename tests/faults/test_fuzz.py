"""Thousands of signed random and mutated real payloads: never a 500, always healthy, and every
failure recorded is a plain "malformed payload" or a GitHub answer, never a crash."""

from __future__ import annotations

import asyncio
import copy
import json
import random
from collections import Counter
from typing import Any

import aiohttp

from bot.fake import samples
from tests.e2e.gatekit import PROD, open_change, path, with_image
from tests.harness import FLEET, SECRET, Harness

DELIVERIES = 2000
JUNK: list[Any] = [
    None,
    True,
    0,
    -1,
    2**70,
    "",
    "x" * 300,
    "../../etc",
    [],
    {},
    [{}],
    1.5,
    "\u202e",
    {"login": None},
    ["a", 1],
]


def mutate(rng: random.Random, payload: Any) -> Any:
    """Change one to three things deep inside a payload: drop, retype or replace a value."""
    data = copy.deepcopy(payload)
    for _ in range(rng.randint(1, 3)):
        node = data
        for _depth in range(rng.randint(0, 4)):
            if isinstance(node, dict) and node:
                child = node[rng.choice(list(node))]
                if isinstance(child, dict | list) and child:
                    node = child
            elif isinstance(node, list) and node:
                child = rng.choice(node)
                if isinstance(child, dict | list) and child:
                    node = child
        if isinstance(node, dict) and node:
            key = rng.choice(list(node))
            if rng.random() < 0.3:
                del node[key]
            else:
                node[key] = copy.deepcopy(rng.choice(JUNK))
        elif isinstance(node, list) and node:
            node[rng.randrange(len(node))] = copy.deepcopy(rng.choice(JUNK))
    return data


def random_payload(rng: random.Random) -> Any:
    def value(depth: int) -> Any:
        if depth > 3 or rng.random() < 0.4:
            return copy.deepcopy(rng.choice(JUNK))
        if rng.random() < 0.5:
            return [value(depth + 1) for _ in range(rng.randint(0, 3))]
        keys = [
            "action",
            "repository",
            "installation",
            "pull_request",
            "comment",
            "issue",
            "sender",
            "client_payload",
            "check_run",
            "ref",
            "number",
        ]
        return {rng.choice(keys): value(depth + 1) for _ in range(rng.randint(0, 4))}

    return value(0)


async def sign_and_send(
    session: aiohttp.ClientSession, url: str, event: str, body: bytes, n: int
) -> int:
    import hashlib
    import hmac

    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": f"fuzz-{n}",
        "X-Hub-Signature-256": "sha256="
        + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest(),
    }
    async with session.post(url, data=body, headers=headers) as resp:
        await resp.read()
        return resp.status


async def test_fuzzed_deliveries_never_crash_the_service(world: Harness) -> None:
    world.allow_failed_deliveries = True
    # real payloads of every kind the bot handles, from a real flow
    world.fake.dispatch(
        FLEET, "image-published", {"image": samples.PAYMENT_IMAGE, "tag": "v2.2.0"}, by="ci-bot"
    )
    number = open_change(
        world, "prod", {path(PROD): with_image(world, PROD, f"{samples.PAYMENT_IMAGE}:v2.0.0")}
    )
    world.fake.review(FLEET, number, "bob", "APPROVE")
    world.fake.comment(FLEET, number, "alice", "/promote prod")
    world.fake.publish_package(
        owner="acme",
        name="checkout",
        tag="v3.5.0",
        digest="sha256:" + "c" * 64,
        repo="acme/payment",
    )
    await world.settle()
    real = [(d.event, d.payload) for d in world.fake.deliveries]
    kinds = Counter(e for e, _ in real)
    assert {
        "pull_request",
        "push",
        "issue_comment",
        "pull_request_review",
        "repository_dispatch",
        "check_run",
        "registry_package",
    } <= set(kinds)

    # keep the mutants from writing anything real: they all target a repo the app cannot see
    rng = random.Random(20261201)
    url = world.webhook_url
    statuses: Counter[int] = Counter()
    sem = asyncio.Semaphore(20)

    async def one(session: aiohttp.ClientSession, n: int) -> None:
        if rng.random() < 0.8:
            event, payload = rng.choice(real)
            body = mutate(rng, payload)
        else:
            event, body = rng.choice(list(kinds)), random_payload(rng)
        raw = json.dumps(body).encode()
        if rng.random() < 0.05:
            raw = raw[: rng.randrange(max(1, len(raw)))]  # truncated JSON
        async with sem:
            statuses[await sign_and_send(session, url, event, raw, n)] += 1

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(one(session, n) for n in range(DELIVERIES)))
    assert statuses[500] == 0 and set(statuses) <= {200, 202, 400}, statuses
    await world.settle(rounds=400)
    async with aiohttp.ClientSession() as s, s.get(f"{world.bot_url}/healthz") as resp:
        assert resp.status == 200
    crashes = [
        (event, reason)
        for event, _action, reason in world.failed_deliveries()
        if not reason.startswith(("malformed payload: ", "GitHub answered ", "GitHub: "))
    ]
    assert crashes == [], crashes[:10]
