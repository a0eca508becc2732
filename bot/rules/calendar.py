"""The change calendar: is an environment open for merges now, why not, and when it opens (pure).

An environment is *open* at an instant when no emergency freeze (``/freeze``) holds it, no
policy freeze covers the instant, and, if it has windows, one of them is open. A window is open
when the local wall clock of its zone reads a time in ``[from, until)`` on one of its days; a
window whose ``until`` is before its ``from`` runs past midnight, and that part belongs to the day
it started on. Everything takes ``now`` from the caller: nothing here reads a clock.

Daylight-saving time follows from that wall-clock rule, with no special cases:

- On the day the clocks go forward, a local time in the gap (02:30 in Europe/Berlin on the last
  Sunday of March) never appears on the clock. A window *starting* in the gap opens when the
  clock jumps past it (03:00 local); one *ending* in the gap closes at the jump.
- On the day the clocks go back, the hour after the jump appears twice. A window open at the
  first 02:30 is open at the second one too; a window 02:30-02:45 is open twice that night.
- So a window "09:00-16:00" is always 09:00-16:00 on the local clock: on a DST-change day it is
  at a different UTC time than the day before, which is what people mean by a local time.

Verdicts carry their reasons and the next instant the answer changes, so the caller can show
"opens 2027-01-05 08:00 UTC (09:00 CET)" and re-judge exactly then, without any event.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.fleet.policy import Environment, Freeze, Policy, Window
from bot.rules.overrides import PostedComment

__all__ = [
    "LIFTED_KIND",
    "CalendarVerdict",
    "EmergencyFreeze",
    "EnvironmentVerdict",
    "environment_open",
    "evaluate_calendar",
    "freeze_lifted",
    "judge_environment",
    "next_change",
    "window_open",
    "zone",
]

#: The span scanned at a time for the next change of a window (a little over a week, so every
#: weekday appears), and how many spans at most before the answer is "look again then".
CHUNK = timedelta(days=8)
MAX_CHUNKS = 60
#: How finely the zone's offset is sampled to find its transitions (no zone changes its offset
#: twice within an hour).
SAMPLE = timedelta(hours=1)
#: The hidden marker of the bot's "Lifted by" comment on a freeze issue (``/unfreeze``).
LIFTED_KIND = "unfreeze"


@dataclass(frozen=True)
class EmergencyFreeze:
    """A ``/freeze`` in force: an open freeze issue the bot itself opened.

    ``environment`` None means every environment: the issue no longer says which one it holds
    (it was edited), so it holds them all until someone lifts it.
    """

    environment: str | None
    reason: str
    by: str | None
    since: datetime | None
    number: int
    url: str
    problem: str | None = None

    def holds(self, environment: str) -> bool:
        return self.environment is None or self.environment == environment

    def lifted_by(self, environment: str, written: datetime | None) -> bool:
        """Whether ``/unfreeze <environment>`` written at ``written`` (GitHub's time of the
        comment) lifts this freeze: only a freeze it could have been meant for, one in force
        when it was written. A command read late (a delivery taken up from GitHub's log, a
        slow redelivery) must not lift a freeze made after it. Unknown times lift nothing."""
        if not self.holds(environment) or written is None or self.since is None:
            return False
        return self.since <= written  # whole seconds: the same second counts as before


def freeze_lifted(comments: Sequence[PostedComment]) -> bool:
    """Whether a freeze issue was lifted by ``/unfreeze``: the bot said so on it, in a comment of
    its own account that nobody edited. The issue's state is not the record (anyone who can
    triage opens and closes issues, and its events can arrive late or out of order)."""
    return any(c.by_bot and not c.edited and c.marker.get("kind") == LIFTED_KIND for c in comments)


@dataclass(frozen=True)
class EnvironmentVerdict:
    """Whether one environment is open at ``at``, why not, and when that changes."""

    environment: str
    at: datetime
    open: bool
    #: False: no windows, no freezes and no emergency freeze apply ("not restricted")
    restricted: bool
    emergencies: tuple[EmergencyFreeze, ...]  # holding it now
    freezes: tuple[Freeze, ...]  # policy freezes covering ``at``
    outside_windows: bool  # it has windows and none is open at ``at``
    windows: tuple[Window, ...]
    #: When closed: the next instant it is open (None: only ``/unfreeze`` opens it). When open
    #: and restricted: the next instant it closes (None: never, as far as the policy says).
    next_change: datetime | None
    #: The zone of the window that is open at ``next_change`` (or the first window's), for
    #: showing that instant in local time; UTC without windows.
    zone: str

    @property
    def opens_at(self) -> datetime | None:
        return None if self.open else self.next_change

    @property
    def closes_at(self) -> datetime | None:
        return self.next_change if self.open else None


@dataclass(frozen=True)
class CalendarVerdict:
    """The environments a pull request touches, each judged at the same instant."""

    at: datetime
    environments: tuple[EnvironmentVerdict, ...]

    @property
    def open(self) -> bool:
        return all(v.open for v in self.environments)

    @property
    def closed(self) -> tuple[EnvironmentVerdict, ...]:
        return tuple(v for v in self.environments if not v.open)

    @property
    def restricted(self) -> bool:
        return any(v.restricted for v in self.environments)

    @property
    def next_change(self) -> datetime | None:
        """The first instant any environment's answer changes: when to judge again."""
        return min((v.next_change for v in self.environments if v.next_change), default=None)


# --- the rules -------------------------------------------------------------------------------


@functools.lru_cache(maxsize=256)
def zone(name: str) -> ZoneInfo:
    """The IANA zone (validated by the policy parser)."""
    return ZoneInfo(name)


def _aware(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise ValueError("the calendar needs aware datetimes (UTC)")
    return at.astimezone(UTC)


def window_open(window: Window, at: datetime) -> bool:
    """True when the local clock of ``window``'s zone reads a time inside it at ``at``."""
    local = _aware(at).astimezone(zone(window.timezone))
    minute = local.hour * 60 + local.minute + (local.second + local.microsecond / 1e6) / 60
    day = local.weekday()
    if not window.spans_midnight:
        return day in window.days and window.start <= minute < window.end
    if day in window.days and minute >= window.start:
        return True
    return (day - 1) % 7 in window.days and minute < window.end


def _freezes_at(env: Environment, at: datetime) -> tuple[Freeze, ...]:
    return tuple(f for f in env.freezes if f.start <= at < f.end)


def environment_open(
    env: Environment, emergencies: Sequence[EmergencyFreeze], at: datetime
) -> bool:
    """The whole rule: no emergency freeze, no policy freeze, and a window (if any) open."""
    at = _aware(at)
    if any(e.holds(env.name) for e in emergencies):
        return False
    if _freezes_at(env, at):
        return False
    return not env.windows or any(window_open(w, at) for w in env.windows)


def _exists(local: datetime) -> bool:
    """Whether a wall-clock time (with its fold) appears on the zone's clock."""
    back = local.astimezone(UTC).astimezone(local.tzinfo)
    return back.replace(tzinfo=None, fold=0) == local.replace(tzinfo=None, fold=0)


def _transitions(tz: ZoneInfo, start: datetime, end: datetime) -> list[datetime]:
    """Instants in (start, end] where the zone's UTC offset changes (to the second)."""
    found: list[datetime] = []
    t = start
    offset = t.astimezone(tz).utcoffset()
    while t < end:
        nxt = min(t + SAMPLE, end)
        other = nxt.astimezone(tz).utcoffset()
        if other != offset:
            # offset(low) is the old one, offset(high) not: halve, in whole microseconds
            low, high = _micros(t), _micros(nxt)
            while high - low > 1:
                mid = (low + high) // 2
                if _instant(mid).astimezone(tz).utcoffset() == offset:
                    low = mid
                else:
                    high = mid
            found.append(_instant(high))
            offset = other
        t = nxt
    return found


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _micros(at: datetime) -> int:
    return (at - _EPOCH) // timedelta(microseconds=1)


def _instant(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


def _boundaries(env: Environment, start: datetime, end: datetime) -> list[datetime]:
    """Every instant in (start, end] where the environment's answer may change.

    Between two of these, the answer is constant: a window's membership changes only when the
    wall clock passes its ``from``, its ``until`` or midnight (each at both folds on the day the
    clocks go back), or when the clock jumps (a DST transition); a policy freeze at its ends.
    """
    points: set[datetime] = set()
    for freeze in env.freezes:
        points.update(p for p in (freeze.start, freeze.end) if start < p <= end)
    zones = {w.timezone for w in env.windows}
    for name in zones:
        tz = zone(name)
        minutes = {m % 1440 for w in env.windows if w.timezone == name for m in (w.start, w.end)}
        minutes.add(0)
        first = start.astimezone(tz).date() - timedelta(days=1)
        last = end.astimezone(tz).date() + timedelta(days=1)
        day: date = first
        while day <= last:
            for minute in minutes:
                for fold in (0, 1):
                    local = datetime.combine(
                        day, time(minute // 60, minute % 60), tzinfo=tz
                    ).replace(fold=fold)
                    if _exists(local):
                        instant = local.astimezone(UTC)
                        if start < instant <= end:
                            points.add(instant)
            day += timedelta(days=1)
        points.update(_transitions(tz, start, end))
    return sorted(points)


def next_change(
    env: Environment, emergencies: Sequence[EmergencyFreeze], now: datetime
) -> datetime | None:
    """The first instant after ``now`` at which :func:`environment_open` answers differently.

    None when nothing in the policy changes it: an environment held by an emergency freeze (only
    ``/unfreeze`` opens it), or one that is open and never closes. When no change is found
    within the horizon (``MAX_CHUNKS`` spans), the horizon itself is returned: "look again then".
    """
    now = _aware(now)
    state = environment_open(env, emergencies, now)
    if not state and any(e.holds(env.name) for e in emergencies):
        return None
    if not env.windows:
        for point in _boundaries(env, now, datetime.max.replace(tzinfo=UTC)):
            if environment_open(env, emergencies, point) != state:
                return point
        return None
    t = now
    for _ in range(MAX_CHUNKS):
        if not state:
            # Inside a policy freeze nothing opens: skip to its end (and past chained ones).
            covering = _freezes_at(env, t)
            while covering:
                t = max(f.end for f in covering)
                covering = _freezes_at(env, t)
            if t > now and environment_open(env, emergencies, t):
                return t
        end = t + CHUNK
        for point in _boundaries(env, t, end):
            if environment_open(env, emergencies, point) != state:
                return point
        t = end
    return t


def _zone_at(env: Environment, at: datetime | None) -> str:
    if not env.windows:
        return "UTC"
    if at is not None:
        for window in env.windows:
            if window_open(window, at):
                return window.timezone
    return env.windows[0].timezone


def judge_environment(
    env: Environment, emergencies: Sequence[EmergencyFreeze], now: datetime
) -> EnvironmentVerdict:
    """One environment at ``now``: open or closed, every reason, and when that changes."""
    now = _aware(now)
    holding = tuple(e for e in emergencies if e.holds(env.name))
    freezes = _freezes_at(env, now)
    outside = bool(env.windows) and not any(window_open(w, now) for w in env.windows)
    is_open = not holding and not freezes and not outside
    restricted = bool(holding) or env.scheduled
    change = next_change(env, emergencies, now) if restricted else None
    return EnvironmentVerdict(
        environment=env.name,
        at=now,
        open=is_open,
        restricted=restricted,
        emergencies=holding,
        freezes=freezes,
        outside_windows=outside,
        windows=env.windows,
        next_change=change,
        zone=_zone_at(env, change if not is_open else now),
    )


def evaluate_calendar(
    policy: Policy,
    environments: Iterable[str],
    emergencies: Sequence[EmergencyFreeze],
    now: datetime,
) -> CalendarVerdict:
    """The calendar verdict of the environments a pull request touches (unknown names skipped)."""
    now = _aware(now)
    verdicts = tuple(
        judge_environment(env, emergencies, now)
        for name in dict.fromkeys(environments)
        if (env := policy.environment(name)) is not None
    )
    return CalendarVerdict(now, verdicts)
