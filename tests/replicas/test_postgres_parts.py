"""The PostgreSQL parts on a real server, two "replicas" in one process: schema at start, one
taker per delivery, one holder per repository, one runner per job round, a sweep after a death."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import psycopg

from bot.service.inbox import Incoming
from bot.service.postgres import Database

ROOT = str(Path(__file__).resolve().parents[2])


async def replicas(url: str, n: int) -> list[Database]:
    dbs = [Database(url, pool_size=6) for _ in range(n)]
    await asyncio.gather(*(db.open() for db in dbs))  # all at once: one migrates, others wait
    return dbs


async def test_replicas_starting_together_migrate_once(database_url: str) -> None:
    dbs = await replicas(database_url, 4)
    try:
        assert len({db.replica for db in dbs}) == 4
        with psycopg.connect(database_url) as conn:
            assert conn.execute(
                "SELECT version FROM schema_migrations ORDER BY version"
            ).fetchall() == [(1,), (2,)]
    finally:
        await asyncio.gather(*(db.close() for db in dbs))


async def test_a_delivery_is_taken_by_exactly_one_replica(database_url: str) -> None:
    a, b = await replicas(database_url, 2)
    try:
        assert await a.store.add(Incoming("d1", "push", None, "acme/fleet", 1, b"{}"))
        assert not await b.store.add(
            Incoming("d1", "push", None, "acme/fleet", 1, b"{}")
        )  # same id
        taken = await asyncio.gather(a.store.start("d1"), b.store.start("d1"))
        assert sorted(t is not None for t in taken) == [False, True]
        # claim_due: SKIP LOCKED, every waiting delivery to exactly one of them
        for i in range(20):
            await a.store.add(Incoming(f"q{i}", "push", None, "acme/fleet", 1, b"{}"))
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("UPDATE deliveries SET received_at = received_at - 60")  # not fresh
        got = await asyncio.gather(*(db.store.claim_due(6) for db in (a, b, a, b)))
        ids = [d.id for batch in got for d in batch]
        assert len(ids) == len(set(ids)) == 20
        await a.store.mark_done("d1", duration=0.1, api_calls=1)  # owned by whoever took it
    finally:
        await asyncio.gather(a.close(), b.close())


async def test_one_holder_per_repository_across_replicas(database_url: str) -> None:
    a, b = await replicas(database_url, 2)
    try:
        order: list[str] = []

        async def work(db: Database, name: str) -> None:
            async with db.locks.hold("acme/fleet"):
                order.append(f"{name}+")
                async with db.locks.hold("acme/fleet"):  # re-entrant in the same task
                    await asyncio.sleep(0.2)
                order.append(f"{name}-")

        await asyncio.gather(work(a, "a"), work(b, "b"), work(a, "c"))
        pairs = [order[i : i + 2] for i in range(0, len(order), 2)]
        assert all(p[0][0] == p[1][0] and p[0][1] == "+" for p in pairs), order
        async with a.locks.hold("acme/other"), b.locks.hold("acme/fleet"):
            pass  # different repositories do not wait for each other

        ran: list[str] = []

        async def job(db: Database, name: str) -> None:
            async with db.locks.solo("resync", every=600) as mine:
                if mine:
                    ran.append(name)
                    await asyncio.sleep(0.2)

        await asyncio.gather(job(a, "a"), job(b, "b"))
        assert len(ran) == 1
        await job(b, "later")  # ran within the interval: skipped
        assert len(ran) == 1
    finally:
        await asyncio.gather(a.close(), b.close())


async def test_the_deliveries_of_a_dead_replica_are_put_back(database_url: str) -> None:
    a, b = await replicas(database_url, 2)
    try:
        await a.store.add(Incoming("d1", "push", None, "acme/fleet", 1, b"{}"))
        assert await a.store.start("d1") is not None
        assert await b.store.sweep() == 0  # a is alive
        assert a._live is not None
        await a._live.close()  # a's session ends (what a SIGKILL does)
        for _ in range(50):
            if await b.store.sweep():
                break
            await asyncio.sleep(0.05)
        again = await b.store.start("d1")
        assert again is not None and again.attempts == 2
        await a.store.mark_done("d1", duration=0.1, api_calls=1)  # too late: not a's any more
        assert (await b.store.get("d1")).status == "running"  # type: ignore[union-attr]
        await b.store.mark_done("d1", duration=0.1, api_calls=1)
        assert (await b.store.get("d1")).status == "done"  # type: ignore[union-attr]
    finally:
        await asyncio.gather(a.close(), b.close())


async def test_the_deliveries_command_reads_the_database(database_url: str) -> None:
    (a,) = await replicas(database_url, 1)
    try:
        await a.store.add(Incoming("d-cli", "pull_request", "opened", "acme/fleet", 1, b"{}"))
    finally:
        await a.close()
    env = {**os.environ, "DATABASE_URL": database_url, "PYTHONPATH": ROOT}
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "bot", "deliveries"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "d-cli" in done.stdout and "pull_request.opened" in done.stdout
