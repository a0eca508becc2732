"""The calendar's timers on PostgreSQL (R10): the next wake of each repository is a row of the
shared database, so a replica that stops leaves its timers to the others.

Two services run in this process on one real database (``tests/postgres.py``), each with its
own calendar clock that the test moves (never slept through), as ``tests/e2e/calkit.py`` does.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import psycopg
import pytest

from bot.fake import FakeGitHub
from bot.service.postgres import Database
from tests.e2e.calkit import OFFICE_HOURS, install_clock, policy, prod_pr, set_policy, utc, window
from tests.e2e.test_calendar_commands import freeze_issues, say, with_commanders
from tests.harness import FLEET, Harness, seed_world, start_bot


async def service(fake: FakeGitHub, app: object, tmp: Path, name: str, url: str) -> Harness:
    home = tmp / name
    home.mkdir()
    pem, app_id = app.private_key_pem, app.id  # type: ignore[attr-defined]
    bot_app, runner, bot_url = await start_bot(fake, pem, app_id, home, {"DATABASE_URL": url})
    return Harness(fake=fake, bot_url=bot_url, runner=runner, app=bot_app, tmp=home, app_id=app_id)


@pytest.fixture
async def two(
    fake: FakeGitHub, tmp_path: Path, database_url: str
) -> AsyncIterator[tuple[Harness, Harness]]:
    app = seed_world(fake)
    await fake.idle()
    a = await service(fake, app, tmp_path, "a", database_url)
    b = await service(fake, app, tmp_path, "b", database_url)
    fake.set_webhook_url(app, a.webhook_url)  # every event goes to a
    await a.settle()
    try:
        yield a, b
    finally:
        await b.runner.cleanup()
        await a.runner.cleanup()


def rows(url: str) -> list[tuple[str, datetime, int | None]]:
    with psycopg.connect(url) as conn:
        found = conn.execute("SELECT repo, at, owner FROM wakeups ORDER BY repo").fetchall()
    return [(str(r), at, o) for r, at, o in found]


async def test_the_replica_that_judged_stops_and_another_flips_the_window(
    two: tuple[Harness, Harness], database_url: str
) -> None:
    a, b = two
    # Friday 2026-12-04 17:00 Berlin: prod is closed until Monday 09:00 CET (08:00 UTC).
    install_clock(a, utc(2026, 12, 4, 16))
    clock_b = install_clock(b, utc(2026, 12, 4, 16))
    await set_policy(a, policy(prod=OFFICE_HOURS))
    number = await prod_pr(a)
    assert window(a, number) == "failure"
    # The wake is in the shared database, not only in a's memory.
    assert rows(database_url) == [(FLEET, utc(2026, 12, 7, 8), None)]

    await a.runner.cleanup()  # the replica that judged the pull request stops
    a.fake.set_webhook_url(next(iter(a.fake.world.state.apps.values())), b.webhook_url)
    a.fake.reset_counters()
    clock_b.set(utc(2026, 12, 7, 8, 0, 10))  # the window opened
    services = b.state.services
    assert services is not None
    services.wakeups.poke()  # b's own timer ticks now (not in 30 s)
    for _ in range(400):
        await asyncio.sleep(0.02)
        await b.settle()
        if window(b, number) == "success":
            break
    assert window(b, number) == "success"
    # b judged again, and set the next wake: the window closes at 16:00 CET (15:00 UTC).
    assert rows(database_url) == [(FLEET, utc(2026, 12, 7, 15), None)]
    # The tick ran as a periodic job of the replicas (one at a time, its round recorded).
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT 1 FROM meta WHERE key='job:calendar'").fetchone() == (1,)
    calls = [r for r in b.bot_requests() if not r.path.endswith("/access_tokens")]
    print("calendar re-judgement on the other replica:", len(calls), "calls")
    print([f"{r.method} {r.path}" for r in calls])


async def replicas(url: str, n: int) -> list[Database]:
    dbs = [Database(url, pool_size=4) for _ in range(n)]
    await asyncio.gather(*(db.open() for db in dbs))
    return dbs


async def test_each_wake_is_taken_once_and_a_dead_replica_s_are_taken_again(
    database_url: str,
) -> None:
    a, b = await replicas(database_url, 2)
    monday, later, tuesday = utc(2026, 12, 7, 8), utc(2026, 12, 7, 9), utc(2026, 12, 8, 8)
    try:
        await a.wakeups.wake(1, "acme/fleet", later, "main")
        await b.wakeups.wake(1, "acme/fleet", monday, None)  # the earliest ask wins
        await b.wakeups.wake(1, "acme/fleet", tuesday, None)
        await a.wakeups.wake(1, "acme/other", tuesday, "main")
        assert await a.wakeups.due(utc(2026, 12, 7, 7, 59)) == []
        moment = utc(2026, 12, 7, 8, 0, 1)
        taken = await asyncio.gather(a.wakeups.due(moment), b.wakeups.due(moment))
        assert sorted(taken, key=len) == [[], [(1, "acme/fleet", "main")]]
        assert await a.wakeups.due(tuesday) == [(1, "acme/other", "main")]  # fleet is taken

        # judged again: the row's next time is the earliest ask made meanwhile
        await a.wakeups.done(1, "acme/other")  # no ask: the row goes
        taker = a if taken[0] else b
        for judge in (a, b):  # whoever judges (the delivery of a PR, or the timer's job)
            await judge.wakeups.wake(1, "acme/fleet", tuesday, "main")
        await a.wakeups.wake(1, "acme/fleet", later, "main")
        assert [r[1:] for r in rows(database_url)] == [(monday, taker.replica)]  # still due
        await taker.wakeups.done(1, "acme/fleet")
        assert rows(database_url) == [("acme/fleet", later, None)]

        # a takes fleet's wake and dies before judging it: b takes it up, and an ask that
        # came meanwhile (a delivery judging one PR) does not make the due wake be forgotten
        assert await a.wakeups.due(later) == [(1, "acme/fleet", "main")]
        assert await b.wakeups.due(later) == []  # a is alive and judging it
        assert a._live is not None
        await a._live.close()  # a's session ends (what a SIGKILL does)
        await b.wakeups.wake(1, "acme/fleet", tuesday, "main")
        for _ in range(50):
            again = await b.wakeups.due(later)
            if again:
                break
            await asyncio.sleep(0.05)
        assert again == [(1, "acme/fleet", "main")]
        await b.wakeups.done(1, "acme/fleet")
        assert rows(database_url) == [("acme/fleet", tuesday, None)]
        assert await b.wakeups.due(tuesday) == [(1, "acme/fleet", "main")]
        await b.wakeups.done(1, "acme/fleet")
        assert rows(database_url) == []
    finally:
        await asyncio.gather(a.close(), b.close())


async def test_a_freeze_opened_on_one_replica_is_put_back_by_another(
    two: tuple[Harness, Harness], database_url: str
) -> None:
    """The freeze issue's record (R8) is in the shared database: the replica that opened the
    freeze stops, and two quick hand edits are both undone by the other one."""
    a, b = two
    await with_commanders(a)
    number = await prod_pr(a)
    await say(a, number, "dana", "/freeze prod incident 42")
    (frozen,) = freeze_issues(a)
    title, body = frozen.title, frozen.body
    await a.runner.cleanup()
    fake = a.fake
    app = next(iter(fake.world.state.apps.values()))
    app.webhook_url = None  # both edits happen before a replica reads one
    fake.edit_issue(FLEET, frozen.number, by="alice", title="Deploy freeze: dev", body="moved")
    fake.edit_issue(FLEET, frozen.number, by="alice", title="Deploy freeze: qa", body="x")
    edits = [d for d in fake.deliveries if d.event == "issues" and d.action == "edited"]
    fake.set_webhook_url(app, b.webhook_url)
    for edit in edits[-2:]:
        fake.redeliver(edit)
        await b.settle()
    assert (frozen.title, frozen.body) == (title, body)
    assert window(b, number) == "failure"
