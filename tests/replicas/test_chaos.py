"""Three replicas on one PostgreSQL database behind a round-robin sender: 50 image events and
every event their bump PRs cause, one replica SIGKILLed in the middle of a bump and restarted.

Every event is handled once, every image gets exactly one bump PR (merged), no PR is opened and
closed again, and no delivery is left unfinished.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
import pytest
from aiohttp import web
from gidgethub import sansio

from bot import handlers
from bot.fake import FakeGitHub
from tests.harness import FLEET, seed_world
from tests.replicas.kit import Cluster, Replica, eventually

IMAGES = 50
REGISTRY = "registry.acme.com"


def tenant_input(n: int, tag: str) -> bytes:
    return f"""\
apiVersion: fluxcd.controlplane.io/v1
kind: ResourceSetInputProvider
metadata:
  name: svc-{n:02d}-inputs
  namespace: svc-{n:02d}-dev
spec:
  type: Static
  defaultValues:
    appName: svc-{n:02d}
    image: {REGISTRY}/svc-{n:02d}:{tag}
""".encode()


def path(n: int) -> str:
    return f"clusters/dev-use1-01/tenants/svc-{n:02d}/input.yaml"


class RoundRobin:
    """The load balancer in front of the replicas: each delivery to the next replica; a replica
    that refuses the connection is skipped (as a proxy retries another upstream)."""

    def __init__(self, replicas: list[Replica]) -> None:
        self.replicas = replicas
        self.turn = 0
        self.sent: list[str] = []

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() != "host"}
        last: Exception | None = None
        async with aiohttp.ClientSession() as session:
            for _ in range(len(self.replicas)):
                replica = self.replicas[self.turn % len(self.replicas)]
                self.turn += 1
                try:
                    async with session.post(replica.webhook_url, data=body, headers=headers) as r:
                        self.sent.append(replica.name)
                        return web.Response(status=r.status, body=await r.read())
                except aiohttp.ClientConnectorError as exc:
                    last = exc
                    continue
                except aiohttp.ClientError as exc:  # died while answering: GitHub sees a failure
                    return web.Response(status=502, text=str(exc))
        return web.Response(status=502, text=f"no replica answered: {last}")


@pytest.fixture
async def balanced(
    fake: FakeGitHub, tmp_path: Path, database_url: str
) -> AsyncIterator[tuple[Cluster, RoundRobin, str]]:
    files = {path(n): tenant_input(n, "v1.0.0") for n in range(IMAGES)}
    app = seed_world(fake, files)
    await fake.idle()
    cluster = Cluster(fake, app, tmp_path)
    replicas = [
        cluster.replica(f"r{i}", DATABASE_URL=database_url, RECOVERY_INTERVAL="3", LOG_LEVEL="INFO")
        for i in range(3)
    ]
    balancer = RoundRobin(replicas)
    server = web.Application()
    server.router.add_post("/hook", balancer.handle)
    runner = web.AppRunner(server, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    fake.set_webhook_url(app, f"http://127.0.0.1:{port}/hook")
    try:
        yield cluster, balancer, database_url
    finally:
        cluster.close()
        await runner.cleanup()


def replica_key(replica: Replica) -> int:
    assert replica.proc is not None
    found = re.findall(r"using PostgreSQL \(replica (\d+)\)", replica.proc.log)
    return int(found[-1])


async def test_three_replicas_one_killed_mid_bump(
    balanced: tuple[Cluster, RoundRobin, str],
) -> None:
    cluster, balancer, url = balanced
    fake = cluster.fake
    # started at once: they migrate the empty database under one lock, the others wait
    await asyncio.gather(*(r.start() for r in cluster.replicas))
    fake.latency = 0.01  # bumps take long enough to be caught in the middle

    for n in range(IMAGES):
        fake.dispatch(
            FLEET,
            "image-published",
            {"image": f"{REGISTRY}/svc-{n:02d}", "tag": "v2.0.0"},
            by="ci-bot",
        )

    def merged() -> int:
        return sum(1 for p in cluster.bump_prs() if p.merged)

    await eventually(lambda: merged() >= 10, within=120, what="ten bumps merged")

    # the replica working on a bump right now (it holds the running image delivery)
    def running_owner() -> int | None:
        with psycopg.connect(url) as conn:
            row = conn.execute(
                "SELECT owner FROM deliveries WHERE status='running'"
                " AND event='repository_dispatch' LIMIT 1"
            ).fetchone()
        return int(row[0]) if row else None

    victim: Replica | None = None
    for _ in range(2000):
        owner = running_owner()
        if owner is not None:
            victim = next((r for r in cluster.replicas if replica_key(r) == owner), None)
            if victim is not None:
                break
        await asyncio.sleep(0.005)
    assert victim is not None, "never caught a replica in the middle of a bump"
    victim.kill()
    kills = 1
    await victim.start()

    await eventually(lambda: merged() == IMAGES, within=240, what="every image bumped")
    fake.latency = 0.0

    def settled() -> bool:
        with psycopg.connect(url) as conn:
            open_rows = conn.execute(
                "SELECT count(*) FROM deliveries WHERE status <> 'done'"
            ).fetchone()
        return open_rows == (0,) and not fake.world.hooks._pending

    await eventually(settled, within=120, what="every delivery finished")
    await fake.idle()
    await eventually(settled, within=60, what="every delivery finished")

    # every image: exactly one bump PR, merged; none opened and closed again
    prs = cluster.bump_prs()
    per_image: dict[str, int] = {}
    for pr in prs:
        files = [n for n in range(IMAGES) if f"svc-{n:02d}" in pr.head_ref]
        assert len(files) == 1, pr.head_ref
        per_image[files[0]] = per_image.get(files[0], 0) + 1  # type: ignore[index]
    assert len(prs) == IMAGES and all(p.merged for p in prs)
    assert set(per_image.values()) == {1}
    for n in range(IMAGES):
        text = fake.file(FLEET, "main", path(n))
        assert text is not None and f"svc-{n:02d}:v2.0.0".encode() in text

    # every event the service acts on was recorded once and finished
    handled = [
        d
        for d in fake.deliveries
        if d.log_id  # posted (the seed's events went out before there was a URL)
        and handlers.router.fetch(sansio.Event(d.payload, event=d.event, delivery_id="x"))
    ]
    with psycopg.connect(url) as conn:
        rows = dict(conn.execute("SELECT id, status FROM deliveries").fetchall())
        attempts = conn.execute("SELECT count(*) FROM deliveries WHERE attempts > 1").fetchone()
    missing = [(d.event, d.action) for d in handled if d.delivery_id not in rows]
    assert not missing, f"deliveries never recorded: {missing}"
    assert set(rows.values()) == {"done"}
    failed_attempts = [d for d in fake.delivery_log if not d.ok]
    numbers: dict[str, Any] = {
        "image_events": IMAGES,
        "deliveries_sent": len(fake.deliveries),
        "deliveries_handled": len(rows),
        "failed_attempts_in_githubs_log": len(failed_attempts),
        "deliveries_taken_more_than_once": attempts[0] if attempts else None,
        "kills": kills,
        "bump_prs": len(prs),
        "duplicate_prs": len(prs) - len(per_image),
        "prs_closed_unmerged": sum(1 for p in prs if not p.merged),
        "sent_to": {r.name: balancer.sent.count(r.name) for r in cluster.replicas},
    }
    print("chaos:", json.dumps(numbers))
    assert numbers["duplicate_prs"] == 0 and numbers["prs_closed_unmerged"] == 0
