"""The change calendar (pure): windows in local time, DST, freezes, emergency freezes, and the
instant the answer changes next. Times are injected; nothing here reads a clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.fleet.policy import Environment, Freeze, Policy, Window
from bot.rules.calendar import (
    CHUNK,
    MAX_CHUNKS,
    EmergencyFreeze,
    environment_open,
    evaluate_calendar,
    judge_environment,
    next_change,
    window_open,
)

MON, TUE, WED, THU, FRI, SAT, SUN = range(7)
BERLIN = "Europe/Berlin"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def env(
    windows: tuple[Window, ...] = (), freezes: tuple[Freeze, ...] = (), name: str = "prod"
) -> Environment:
    return Environment(name, None, None, False, (), windows=windows, freezes=freezes)


def hm(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def win(days: tuple[int, ...], start: str, end: str, tz: str = "UTC") -> Window:
    return Window(days=days, start=hm(start), end=hm(end) or 1440, timezone=tz)


OFFICE = win((MON, TUE, WED, THU), "09:00", "16:00", BERLIN)
HOLIDAYS = Freeze(utc(2026, 12, 20), utc(2027, 1, 5), "winter holidays")
EMERGENCY = EmergencyFreeze("prod", "incident 42", "alice", utc(2026, 12, 1), 7, "https://x/7")


# --- windows ---------------------------------------------------------------------------------


def test_a_window_is_local_wall_clock_time_on_its_days() -> None:
    # 2026-12-01 is a Tuesday; Berlin is UTC+1 in winter.
    assert not window_open(OFFICE, utc(2026, 12, 1, 7, 59))  # 08:59 local
    assert window_open(OFFICE, utc(2026, 12, 1, 8, 0))  # 09:00 local
    assert window_open(OFFICE, utc(2026, 12, 1, 14, 59))
    assert not window_open(OFFICE, utc(2026, 12, 1, 15, 0))  # 16:00 local: until is exclusive
    assert not window_open(OFFICE, utc(2026, 12, 4, 10, 0))  # a Friday


def test_a_window_whose_until_is_before_its_from_spans_midnight() -> None:
    night = win((FRI,), "22:00", "02:00")  # Friday 22:00 to Saturday 02:00
    assert not window_open(night, utc(2026, 12, 4, 21, 59))
    assert window_open(night, utc(2026, 12, 4, 22, 0))
    assert window_open(night, utc(2026, 12, 5, 1, 59))  # Saturday: the part after midnight
    assert not window_open(night, utc(2026, 12, 5, 2, 0))
    assert not window_open(night, utc(2026, 12, 5, 22, 30))  # Saturday's own evening: no
    assert not window_open(night, utc(2026, 12, 4, 1, 0))  # Friday after Thursday: no


def test_until_midnight_and_the_whole_day() -> None:
    evening = win((MON,), "18:00", "00:00")
    assert evening.end == 1440 and not evening.spans_midnight
    assert window_open(evening, utc(2026, 11, 30, 23, 59))
    assert not window_open(evening, utc(2026, 12, 1, 0, 0))
    always = win(tuple(range(7)), "00:00", "24:00")
    assert all(window_open(always, utc(2026, 12, d, h)) for d in range(1, 8) for h in range(24))


def test_nine_o_clock_stays_nine_o_clock_across_the_dst_change() -> None:
    daily = win(tuple(range(7)), "09:00", "10:00", BERLIN)
    # Saturday 2026-03-28: CET (UTC+1); Sunday 2026-03-29: CEST (UTC+2) from 02:00 local.
    assert window_open(daily, utc(2026, 3, 28, 8, 0)) and not window_open(
        daily, utc(2026, 3, 28, 7, 0)
    )
    assert window_open(daily, utc(2026, 3, 29, 7, 0)) and not window_open(
        daily, utc(2026, 3, 29, 8, 0)
    )
    e = env((daily,))
    assert next_change(e, [], utc(2026, 3, 28, 12)) == utc(2026, 3, 29, 7, 0)
    # ... and back in autumn: Sunday 2026-10-25 returns to CET.
    assert next_change(e, [], utc(2026, 10, 24, 12)) == utc(2026, 10, 25, 8, 0)


def test_a_window_starting_in_the_spring_gap_opens_when_the_clock_jumps_past_it() -> None:
    # 02:30 does not exist in Berlin on 2026-03-29 (02:00 CET -> 03:00 CEST at 01:00 UTC).
    early = win((SUN,), "02:30", "04:00", BERLIN)
    e = env((early,))
    opened = next_change(e, [], utc(2026, 3, 28, 12))
    assert opened == utc(2026, 3, 29, 1, 0)  # 03:00 CEST, the first clock time past 02:30
    assert window_open(early, opened)
    assert next_change(e, [], opened) == utc(2026, 3, 29, 2, 0)  # 04:00 CEST
    # A normal Sunday: 02:30 CET.
    assert next_change(e, [], utc(2026, 3, 21, 12)) == utc(2026, 3, 22, 1, 30)


def test_a_window_ending_in_the_spring_gap_closes_at_the_jump() -> None:
    late = win((SUN,), "01:00", "02:30", BERLIN)
    e = env((late,))
    assert environment_open(e, [], utc(2026, 3, 29, 0, 30))  # 01:30 CET
    assert next_change(e, [], utc(2026, 3, 29, 0, 30)) == utc(2026, 3, 29, 1, 0)


def test_an_ambiguous_autumn_time_is_in_the_window_both_times_it_appears() -> None:
    # 2026-10-25: 03:00 CEST (01:00 UTC) -> 02:00 CET; 02:00-03:00 local happens twice.
    short = win((SUN,), "02:30", "02:45", BERLIN)
    e = env((short,))
    t = utc(2026, 10, 24, 23, 0)
    changes = []
    for _ in range(4):
        nxt = next_change(e, [], t)
        assert nxt is not None
        changes.append(nxt)
        t = nxt
    assert changes == [
        utc(2026, 10, 25, 0, 30),  # 02:30 CEST: opens
        utc(2026, 10, 25, 0, 45),  # 02:45 CEST: closes
        utc(2026, 10, 25, 1, 30),  # 02:30 CET: opens again
        utc(2026, 10, 25, 1, 45),  # 02:45 CET: closes
    ]


def test_the_clock_going_back_into_a_window_opens_it_at_the_jump() -> None:
    # 02:00-02:20 local: at 01:00 UTC the clock goes back from 03:00 CEST to 02:00 CET.
    w = win((SUN,), "02:00", "02:20", BERLIN)
    e = env((w,))
    assert next_change(e, [], utc(2026, 10, 25, 0, 30)) == utc(2026, 10, 25, 1, 0)


def test_southern_and_half_hour_zones() -> None:
    # Sydney leaves DST on 2026-04-05 (03:00 AEDT -> 02:00 AEST); Lord Howe moves by 30 min.
    sydney = env((win(tuple(range(7)), "09:00", "17:00", "Australia/Sydney"),))
    assert next_change(sydney, [], utc(2026, 4, 4, 12)) == utc(2026, 4, 4, 23, 0)  # 09:00 AEST
    howe = env((win(tuple(range(7)), "09:00", "17:00", "Australia/Lord_Howe"),))
    assert next_change(howe, [], utc(2026, 4, 4, 12)) == utc(2026, 4, 4, 22, 30)  # +10:30


# --- freezes and emergency freezes -----------------------------------------------------------


def test_a_freeze_closes_and_its_end_opens_at_the_next_window() -> None:
    e = env((OFFICE,), (HOLIDAYS,))
    verdict = judge_environment(e, [], utc(2026, 12, 21, 10))  # a Monday, inside the window
    assert not verdict.open and verdict.freezes == (HOLIDAYS,) and not verdict.outside_windows
    # The freeze ends on Tuesday 2027-01-05 00:00 UTC; the window opens at 09:00 CET.
    assert verdict.opens_at == utc(2027, 1, 5, 8, 0) and verdict.zone == BERLIN


def test_chained_freezes_are_skipped_together() -> None:
    second = Freeze(utc(2027, 1, 5), utc(2027, 1, 10), "inventory")
    e = env((), (HOLIDAYS, second))
    assert next_change(e, [], utc(2026, 12, 25)) == utc(2027, 1, 10)
    assert judge_environment(e, [], utc(2026, 12, 25)).zone == "UTC"


def test_an_open_environment_changes_at_its_next_freeze_or_window_end() -> None:
    frozen_later = env((), (HOLIDAYS,))
    verdict = judge_environment(frozen_later, [], utc(2026, 12, 1))
    assert verdict.open and verdict.restricted and verdict.closes_at == HOLIDAYS.start
    office = judge_environment(env((OFFICE,)), [], utc(2026, 12, 1, 10))
    assert office.open and office.closes_at == utc(2026, 12, 1, 15, 0)


def test_an_environment_without_windows_or_freezes_is_not_restricted() -> None:
    verdict = judge_environment(env(), [], utc(2026, 12, 1))
    assert verdict.open and not verdict.restricted and verdict.next_change is None


def test_an_emergency_freeze_closes_until_unfreeze_whatever_the_windows_say() -> None:
    e = env((OFFICE,))
    verdict = judge_environment(e, [EMERGENCY], utc(2026, 12, 1, 10))
    assert not verdict.open and verdict.emergencies == (EMERGENCY,)
    assert verdict.opens_at is None  # only /unfreeze opens it
    staging = judge_environment(env(name="staging"), [EMERGENCY], utc(2026, 12, 1, 10))
    assert staging.open and not staging.restricted


def test_a_freeze_issue_that_no_longer_names_its_environment_holds_every_one() -> None:
    unreadable = EmergencyFreeze(None, "?", None, None, 9, "u", problem="edited")
    for name in ("dev", "staging", "prod"):
        assert not judge_environment(env(name=name), [unreadable], utc(2026, 12, 1)).open


def test_the_verdict_of_a_pull_request_covers_each_environment_it_touches() -> None:
    policy = Policy(environments=(env(name="dev"), env((OFFICE,), (HOLIDAYS,))))
    verdict = evaluate_calendar(policy, ["dev", "prod", "nowhere"], [], utc(2026, 12, 21, 10))
    assert [v.environment for v in verdict.environments] == ["dev", "prod"]
    assert not verdict.open and [v.environment for v in verdict.closed] == ["prod"]
    assert verdict.next_change == utc(2027, 1, 5, 8, 0)


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError):
        environment_open(env(), [], datetime(2026, 12, 1))


# --- properties ------------------------------------------------------------------------------

ZONES = (
    "UTC",
    BERLIN,
    "America/New_York",
    "Australia/Sydney",
    "Australia/Lord_Howe",
    "America/St_Johns",
    "Asia/Kolkata",
)
#: Any minute, often one of the hours around 02:00 where clocks jump.
minutes = st.one_of(st.integers(0, 1439), st.integers(90, 210))


@st.composite
def windows(draw: st.DrawFn) -> Window:
    start = draw(minutes)
    end = draw(st.one_of(st.integers(1, 1440), st.integers(90, 210)).filter(lambda e: e != start))
    days = tuple(sorted(draw(st.sets(st.integers(0, 6), min_size=1))))
    return Window(days=days, start=start, end=end, timezone=draw(st.sampled_from(ZONES)))


#: Days the zones above change their clocks in 2026 (Europe, US, Sydney, Lord Howe, St John's).
DST_DAYS = (
    utc(2026, 3, 29),
    utc(2026, 10, 25),
    utc(2026, 3, 8),
    utc(2026, 11, 1),
    utc(2026, 4, 5),
    utc(2026, 10, 4),
)
anywhere = st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2030, 12, 31)).map(
    lambda d: d.replace(tzinfo=UTC)
)
near_dst = st.builds(
    lambda day, seconds: day + timedelta(seconds=seconds),
    st.sampled_from(DST_DAYS),
    st.integers(min_value=-3 * 86400, max_value=2 * 86400),
)
instants = st.one_of(anywhere, near_dst)


@st.composite
def freezes(draw: st.DrawFn) -> Freeze:
    start = draw(instants)
    length = draw(st.integers(min_value=60, max_value=40 * 86400))
    return Freeze(start, start + timedelta(seconds=length), "r")


environments = st.builds(
    lambda ws, fs: env(tuple(ws), tuple(fs)),
    st.lists(windows(), max_size=3),
    st.lists(freezes(), max_size=3),
)


@settings(max_examples=200, deadline=None)
@given(environments, instants, st.lists(st.floats(0, 1), max_size=12))
def test_the_next_change_is_a_change_and_nothing_changes_before_it(
    e: Environment, now: datetime, fractions: list[float]
) -> None:
    state = environment_open(e, [], now)
    change = next_change(e, [], now)
    if change is None:
        # nothing in the policy ever changes it: open for good (no windows, no later freeze)
        assert state and not e.windows and all(f.start <= now for f in e.freezes)
        return
    assert change > now
    horizon = change - now >= CHUNK * MAX_CHUNKS
    assert environment_open(e, [], change) != state or horizon
    before = change - timedelta(microseconds=1)
    if before > now:
        assert environment_open(e, [], before) == state
    for fraction in fractions:
        probe = now + (change - now) * fraction
        if now <= probe < change:
            assert environment_open(e, [], probe) == state, probe


@settings(max_examples=80, deadline=None)
@given(environments, instants)
def test_when_closed_the_next_opening_is_open(e: Environment, now: datetime) -> None:
    verdict = judge_environment(e, [], now)
    if verdict.open or verdict.opens_at is None:
        return
    if verdict.opens_at - now < CHUNK * MAX_CHUNKS:
        assert environment_open(e, [], verdict.opens_at)
        if verdict.zone != "UTC" or e.windows:
            assert any(
                window_open(w, verdict.opens_at) for w in e.windows if w.timezone == verdict.zone
            ) or not any(window_open(w, verdict.opens_at) for w in e.windows)


def test_an_unfreeze_lifts_only_freezes_in_force_when_it_was_written() -> None:
    """S2: a command read late (taken up from GitHub's delivery log) must not lift a freeze
    made after it was written; unknown times lift nothing; the same second counts as after."""
    since = EMERGENCY.since
    assert since is not None
    assert EMERGENCY.lifted_by("prod", since + timedelta(minutes=5))
    assert EMERGENCY.lifted_by("prod", since)
    assert not EMERGENCY.lifted_by("prod", since - timedelta(seconds=1))
    assert not EMERGENCY.lifted_by("staging", since + timedelta(minutes=5))
    assert not EMERGENCY.lifted_by("prod", None)
    unknown = EmergencyFreeze("prod", "?", None, None, 9, "u")
    assert not unknown.lifted_by("prod", since)


def test_a_freeze_is_lifted_only_by_the_bot_s_unedited_note() -> None:
    """S3: the record of a lift is the bot's own note, not the issue's state; a person's
    copy of it, or an edited note, is no lift."""
    from bot.rules.calendar import LIFTED_KIND, freeze_lifted
    from bot.rules.overrides import PostedComment

    def note(by_bot: bool, edited: bool, kind: str = LIFTED_KIND) -> PostedComment:
        at = utc(2026, 12, 1)
        return PostedComment(1, "bot", by_bot, "Lifted", at, edited, "u", {"kind": kind})

    assert freeze_lifted([note(True, False)])
    assert not freeze_lifted([])
    assert not freeze_lifted([note(False, False)])
    assert not freeze_lifted([note(True, True)])
    assert not freeze_lifted([note(True, False, kind="override")])
