"""The change calendar end to end: ``promotion/window`` from the policy's windows and freezes,
flipped by the service's own timer (a movable clock, never slept through), and dev merges that
wait for dev's window."""

from __future__ import annotations

import asyncio

from bot.fake import samples
from tests.e2e.calkit import (
    HOLIDAY_FREEZE,
    OFFICE_HOURS,
    WINDOW,
    install_clock,
    policy,
    prod_pr,
    set_policy,
    tick,
    utc,
    window,
    window_text,
)
from tests.e2e.gatekit import checks
from tests.harness import FLEET, Harness

DEV_PAY = "clusters/dev-use1-01/tenants/payment-app/input.yaml"


async def test_every_fleet_pr_gets_the_window_check_not_restricted_by_default(
    world: Harness,
) -> None:
    number = await prod_pr(world)
    assert window(world, number) == "success"
    assert "not restricted" in window_text(world, number)


async def test_a_pr_opened_in_a_freeze_fails_with_the_reason_and_the_end(world: Harness) -> None:
    install_clock(world, utc(2026, 12, 21, 10))
    await set_policy(world, policy(prod=HOLIDAY_FREEZE))
    number = await prod_pr(world)
    assert window(world, number) == "failure"
    text = window_text(world, number)
    assert "prod closed: frozen (winter holidays) until 2027-01-05 00:00 UTC" in text
    assert "winter holidays" in text and "Opens next: 2027-01-05 00:00 UTC" in text
    # The other checks are judged as always: the calendar is a check of its own.
    assert {"promotion/lineage", "promotion/approvals", WINDOW} <= set(checks(world, number))


async def test_the_freeze_ends_and_the_check_turns_green_with_no_event(world: Harness) -> None:
    clock = install_clock(world, utc(2027, 1, 4, 23, 59))
    await set_policy(world, policy(prod=HOLIDAY_FREEZE))
    number = await prod_pr(world)
    assert window(world, number) == "failure"
    deliveries = len(world.fake.deliveries)
    assert await tick(world) == []  # nothing is due yet
    clock.set(utc(2027, 1, 5, 0, 0, 30))
    assert await tick(world) == [FLEET]
    assert window(world, number) == "success"
    # No person did anything: every delivery since was caused by the bot's own writes.
    senders = {d.payload["sender"]["login"] for d in world.fake.deliveries[deliveries:]}
    assert senders <= {"fleet-bot[bot]"}, senders


async def test_a_window_opens_while_the_pr_waits_then_closes_on_it(world: Harness) -> None:
    # Friday 2026-12-04 17:00 Berlin: closed until Monday 09:00 CET (08:00 UTC).
    clock = install_clock(world, utc(2026, 12, 4, 16))
    await set_policy(world, policy(prod=OFFICE_HOURS))
    number = await prod_pr(world)
    assert window(world, number) == "failure"
    text = window_text(world, number)
    assert "Outside its deploy windows: Mon–Thu 09:00–16:00 (Europe/Berlin)" in text
    assert "Opens next: 2026-12-07 08:00 UTC (09:00 CET in Europe/Berlin)" in text
    clock.set(utc(2026, 12, 7, 7, 59))
    await tick(world)
    assert window(world, number) == "failure"
    clock.set(utc(2026, 12, 7, 8, 0, 10))
    await tick(world)
    assert window(world, number) == "success"
    assert "Closes 2026-12-07 15:00 UTC (16:00 CET in Europe/Berlin)" in window_text(world, number)
    clock.set(utc(2026, 12, 7, 15, 0, 5))
    await tick(world)
    assert window(world, number) == "failure"


async def test_the_running_service_flips_the_check_by_its_own_timer(world: Harness) -> None:
    clock = install_clock(world, utc(2026, 12, 4, 16))
    await set_policy(world, policy(prod=OFFICE_HOURS))
    number = await prod_pr(world)
    assert window(world, number) == "failure"
    from bot.handlers import calendar

    services = world.state.services
    assert services is not None
    old_tick = calendar.TICK
    calendar.TICK = 0.02  # the loop reads it on every wait; poke it out of its current one
    try:
        services.wakeups.poke()
        clock.set(utc(2026, 12, 7, 8, 1))
        for _ in range(200):
            await asyncio.sleep(0.02)
            await world.settle()
            if window(world, number) == "success":
                break
        assert window(world, number) == "success"
    finally:
        calendar.TICK = old_tick


async def test_a_window_spanning_midnight(world: Harness) -> None:
    night = """\
    windows:
      - days: [fri]
        from: "22:00"
        until: "02:00"
        timezone: UTC"""
    clock = install_clock(world, utc(2026, 12, 4, 21, 30))  # Friday 21:30
    await set_policy(world, policy(prod=night))
    number = await prod_pr(world)
    assert window(world, number) == "failure"
    assert "Fri 22:00–02:00 the next day" in window_text(world, number)
    clock.set(utc(2026, 12, 4, 22, 0))
    await tick(world)
    assert window(world, number) == "success"
    clock.set(utc(2026, 12, 5, 1, 30))  # Saturday, still Friday's window
    await tick(world)
    assert window(world, number) == "success"
    clock.set(utc(2026, 12, 5, 2, 0))
    await tick(world)
    assert window(world, number) == "failure"
    assert "Opens next: 2026-12-11 22:00 UTC" in window_text(world, number)


async def test_a_window_across_the_dst_change_keeps_local_time(world: Harness) -> None:
    early = """\
    windows:
      - days: [sun]
        from: "02:30"
        until: "04:00"
        timezone: Europe/Berlin"""
    # Berlin skips 02:00-03:00 on Sunday 2026-03-29: the window opens at 03:00 CEST (01:00 UTC).
    clock = install_clock(world, utc(2026, 3, 28, 12))
    await set_policy(world, policy(prod=early))
    number = await prod_pr(world)
    assert "Opens next: 2026-03-29 01:00 UTC (03:00 CEST in Europe/Berlin)" in window_text(
        world, number
    )
    clock.set(utc(2026, 3, 29, 0, 59))
    await tick(world)
    assert window(world, number) == "failure"
    clock.set(utc(2026, 3, 29, 1, 0))
    await tick(world)
    assert window(world, number) == "success"
    assert "Closes 2026-03-29 02:00 UTC (04:00 CEST in Europe/Berlin)" in window_text(world, number)


async def test_a_broken_calendar_fails_every_check_with_file_and_line(world: Harness) -> None:
    bad = """\
    windows:
      - days: [mon, tus]
        from: "09:00"
        until: "16:00\""""
    await set_policy(world, policy(prod=bad))
    number = await prod_pr(world)
    assert window(world, number) == "failure"
    text = window_text(world, number)
    assert ".github/promotion.yml" in text and "did you mean 'tue'?" in text


async def test_dev_merges_wait_for_dev_s_window(world: Harness) -> None:
    dev_hours = """\
    windows:
      - from: "10:00"
        until: "12:00\""""
    clock = install_clock(world, utc(2026, 12, 1, 8))
    await set_policy(world, policy(dev=dev_hours))
    world.fake.dispatch(
        FLEET,
        "image-published",
        {"image": "registry.acme.com/payment", "tag": "v2.2.0"},
        by="ci-bot",
    )
    await world.settle()
    (pr,) = [p for p in world.pulls() if p.head_ref.startswith("fleet-bot/bump/")]
    assert pr.state == "open" and not pr.merged
    assert window(world, pr.number) == "failure"
    clock.set(utc(2026, 12, 1, 10, 0, 1))
    await tick(world)
    assert world.fake.repo(FLEET).prs[pr.number].merged
    assert b"v2.2.0" in (world.file(DEV_PAY) or b"")


async def test_a_freeze_starting_closes_the_window_on_an_open_pr(world: Harness) -> None:
    clock = install_clock(world, utc(2026, 12, 19, 23))
    await set_policy(world, policy(prod=HOLIDAY_FREEZE))
    number = await prod_pr(world)
    assert window(world, number) == "success"
    clock.set(utc(2026, 12, 20, 0, 0, 1))
    await tick(world)
    assert window(world, number) == "failure"


async def test_a_policy_change_is_judged_against_every_environment_s_calendar(
    world: Harness,
) -> None:
    install_clock(world, utc(2026, 12, 21, 10))
    await set_policy(world, policy(prod=HOLIDAY_FREEZE))
    from tests.e2e.gatekit import open_change

    number = open_change(
        world,
        "loosen",
        {".github/promotion.yml": policy()},
        title="end the freeze early",
    )
    await world.settle()
    assert window(world, number) == "failure"
    assert "winter holidays" in window_text(world, number)


async def test_the_dashboard_shows_the_calendar(world: Harness) -> None:
    install_clock(world, utc(2026, 12, 21, 10))
    await set_policy(world, policy(prod=HOLIDAY_FREEZE + "\n" + OFFICE_HOURS))
    await world.settle()
    repo = world.fake.repo(FLEET)
    (board,) = [i for i in repo.issues.values() if i.title == "Promotion dashboard"]
    body = board.body or ""
    assert "## Deploy calendar" in body
    assert "frozen: winter holidays" in body and "Mon–Thu 09:00–16:00" in body


__all__ = ["samples"]


async def test_a_look_alike_freeze_issue_opened_by_a_person_does_nothing(world: Harness) -> None:
    from bot.texts.calendar import freeze_issue_body, freeze_issue_title

    body = freeze_issue_body("prod", by="dana", reason="fake", comment_url="", who="x")
    world.fake.create_issue(FLEET, freeze_issue_title("prod"), body, author="alice")
    await world.settle()
    number = await prod_pr(world)
    assert window(world, number) == "success"
    assert "not restricted" in window_text(world, number)
