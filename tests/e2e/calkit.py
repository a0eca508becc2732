"""Helpers for the change-calendar tests: a movable calendar clock, policies with windows and
freezes, and the ``promotion/window`` check of a PR."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bot.handlers import calendar
from tests.e2e.gatekit import PROD, land, open_change, path, summary, verdict, with_image
from tests.harness import Harness

WINDOW = "promotion/window"
IMG = "registry.acme.com/payment"

BASE_POLICY = """\
environments:
  - name: dev
    autoMerge: true
{dev}
  - name: staging
    approvals: [{{team: sre, count: 1}}]
  - name: prod
    approvals: [{{team: sre, count: 2}}, {{team: tech-leads, count: 1}}]
{prod}
promoteKeys: [image]
{extra}"""


def policy(prod: str = "", dev: str = "", extra: str = "") -> bytes:
    return BASE_POLICY.format(prod=prod, dev=dev, extra=extra).encode()


HOLIDAY_FREEZE = """\
    freezes:
      - from: 2026-12-20T00:00:00Z
        until: 2027-01-05T00:00:00Z
        reason: winter holidays"""

OFFICE_HOURS = """\
    windows:
      - days: [mon, tue, wed, thu]
        from: "09:00"
        until: "16:00"
        timezone: Europe/Berlin"""


@dataclass
class Clock:
    """The calendar clock of the running service, moved by the test (never slept through)."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def set(self, moment: datetime) -> None:
        self.now = moment

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def install_clock(world: Harness, moment: datetime) -> Clock:
    clock = Clock(moment)
    services = world.state.services
    assert services is not None
    services.now = clock
    return clock


async def set_policy(world: Harness, text: bytes) -> None:
    land(world.fake, {".github/promotion.yml": text}, "calendar policy")
    await world.settle()


async def prod_pr(world: Harness, tag: str = "v2.0.0", branch: str = "to-prod") -> int:
    number = open_change(
        world, branch, {path(PROD): with_image(world, PROD, f"{IMG}:{tag}")}, title=f"prod {tag}"
    )
    await world.settle()
    return number


async def tick(world: Harness) -> list[str]:
    """One tick of the service's calendar timer, then everything it started."""
    services = world.state.services
    assert services is not None
    started = await calendar.tick(services)
    await world.settle()
    return started


def window(world: Harness, number: int) -> str:
    return verdict(world, number, WINDOW)


def window_text(world: Harness, number: int) -> str:
    return summary(world, number, WINDOW)
