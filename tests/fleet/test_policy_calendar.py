"""The change-calendar keys of the policy: windows, freezes, overrides; every error located."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.fleet.policy import (
    DEFAULT_POLICY,
    MAX_FREEZES,
    MAX_WINDOWS,
    Freeze,
    Overrides,
    PolicyError,
    Window,
    parse_policy,
)

ISSUE_EXAMPLE = """\
environments:
  - name: prod
    windows:                       # optional: when PRs into this environment may merge
      - days: [mon, tue, wed, thu] # optional, default every day; mon..sun
        from: "09:00"              # local wall-clock time, 24 h
        until: "16:00"             # until < from spans midnight
        timezone: Europe/Berlin    # IANA zone, default UTC; DST handled by the zone rules
    freezes:                       # optional: no merges into this environment in these periods
      - from: 2026-12-20T00:00:00Z
        until: 2027-01-05T00:00:00Z
        reason: winter holidays
overrides:                         # optional: who may let a change through (break-glass)
  team: incident-commanders
  count: 1                         # distinct members needed
"""


HOLIDAYS = "winter holidays"


def test_the_example_of_the_issue_parses() -> None:
    policy = parse_policy(ISSUE_EXAMPLE)
    prod = policy.environment("prod")
    assert prod is not None and prod.scheduled
    assert prod.windows == (Window((0, 1, 2, 3), 9 * 60, 16 * 60, "Europe/Berlin"),)
    assert prod.freezes == (
        Freeze(datetime(2026, 12, 20, tzinfo=UTC), datetime(2027, 1, 5, tzinfo=UTC), HOLIDAYS),
    )
    assert policy.overrides == Overrides("incident-commanders", 1)


def test_defaults_every_day_utc_no_calendar_and_admins_override() -> None:
    text = 'environments:\n  - name: a\n    windows: [{from: "22:00", until: "02:00"}]\n'
    policy = parse_policy(text)
    (window,) = policy.environments[0].windows
    assert window == Window(tuple(range(7)), 22 * 60, 2 * 60, "UTC") and window.spans_midnight
    assert not any(env.scheduled for env in DEFAULT_POLICY.environments)
    assert DEFAULT_POLICY.overrides == Overrides(None, 1)
    assert parse_policy("overrides: {count: 2}\n").overrides == Overrides(None, 2)


@pytest.mark.parametrize(
    ("text", "minutes"),
    [
        ("from: 09:00\n        until: 17:30", (540, 1050)),  # unquoted (a number in YAML 1.1)
        ('from: "9:05"\n        until: "24:00"', (545, 1440)),
        ('from: "18:00"\n        until: "00:00"', (1080, 1440)),  # until midnight
        ('from: "00:00"\n        until: "24:00"', (0, 1440)),  # the whole day
    ],
)
def test_times_are_24_hour_local_times(text: str, minutes: tuple[int, int]) -> None:
    policy = parse_policy(f"environments:\n  - name: a\n    windows:\n      - {text}\n")
    (window,) = policy.environments[0].windows
    assert (window.start, window.end) == minutes


def test_day_names_are_case_insensitive_and_may_be_spelled_out() -> None:
    policy = parse_policy(
        "environments:\n  - name: a\n    windows:\n      - days: [Monday, FRI, sun]\n"
        '        from: "09:00"\n        until: "10:00"\n'
    )
    assert policy.environments[0].windows[0].days == (0, 4, 6)


def test_freeze_times_are_converted_to_utc() -> None:
    policy = parse_policy(
        "environments:\n  - name: a\n    freezes:\n      - from: '2026-12-20T09:00:00+01:00'\n"
        "        until: 2026-12-21 00:00:00Z\n        reason: release  party\n"
    )
    (freeze,) = policy.environments[0].freezes
    assert freeze.start == datetime(2026, 12, 20, 8, tzinfo=UTC)
    assert freeze.end == datetime(2026, 12, 21, tzinfo=UTC)
    assert freeze.reason == "release party"


def _error(text: str) -> PolicyError:
    with pytest.raises(PolicyError) as info:
        parse_policy(text.encode(), "fleet/.github/promotion.yml")
    return info.value


W = "environments:\n  - name: a\n    windows:\n      - "
F = "environments:\n  - name: a\n    freezes:\n      - "
NINE = '\n        from: "09:00"\n        until: "10:00"\n'


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        (W + "days: [mon, tus]" + NINE, 4, "did you mean 'tue'?"),
        (W + "days: [mon, mon]" + NINE, 4, "listed twice"),
        (W + "days: []" + NINE, 4, "non-empty list of days"),
        (W + "days: mon" + NINE, 4, "non-empty list of days"),
        (W + 'from: "9am"\n        until: "10:00"\n', 4, "24-hour local time such as"),
        (W + 'from: "09:00"\n        until: "10:60"\n', 5, "24-hour local time"),
        (W + 'from: "25:00"\n        until: "10:00"\n', 4, "24-hour local time"),
        (W + 'from: "24:00"\n        until: "10:00"\n', 4, "24-hour local time"),
        (W + 'from: "24:30"\n        until: "10:00"\n', 4, "24-hour local time"),
        (W + 'from: "09:00"\n        until: "9:00"\n', 5, "has no length"),
        (W + 'from: "00:00"\n        until: "00:00"\n', 5, "until: '24:00'"),
        (W + 'until: "10:00"\n', 4, "this window has no `from`"),
        (W + 'from: "09:00"\n', 4, "this window has no `until`"),
        (
            W + 'from: "09:00"\n        until: "10:00"\n        timezone: Europe/Berln\n',
            6,
            "did you mean 'Europe/Berlin'?",
        ),
        (
            W + 'from: "09:00"\n        until: "10:00"\n        timezone: europe/berlin\n',
            6,
            "did you mean 'Europe/Berlin'?",
        ),
        (W + 'from: "09:00"\n        until: "10:00"\n        timezone: /etc/passwd\n', 6, "IANA"),
        (W + 'from: "09:00"\n        until: "10:00"\n        timezone: localtime\n', 6, "IANA"),
        (W + 'from: "09:00"\n        until: "10:00"\n        tz: UTC\n', 6, "unknown key 'tz'"),
        ("environments:\n  - name: a\n    windows: []\n", 3, "windows must be a non-empty list"),
        ("environments:\n  - name: a\n    windows: {from: 1}\n", 3, "non-empty list"),
        (
            F + "from: 2027-01-05T00:00:00Z\n        until: 2026-12-20T00:00:00Z\n"
            "        reason: x\n",
            5,
            "ends (2026-12-20T00:00:00Z) before it starts",
        ),
        (
            F + "from: 2027-01-05T00:00:00Z\n        until: 2027-01-05T00:00:00Z\n"
            "        reason: x\n",
            5,
            "until must be after from",
        ),
        (
            F + "from: 2026-12-20\n        until: 2027-01-05T00:00:00Z\n        reason: x\n",
            4,
            "e.g. 2026-12-20T00:00:00Z",
        ),
        (
            F + "from: 2026-12-20T00:00:00\n        until: 2027-01-05T00:00:00Z\n"
            "        reason: x\n",
            4,
            "has no time zone",
        ),
        (
            F + "from: next friday\n        until: 2027-01-05T00:00:00Z\n        reason: x\n",
            4,
            "is not a time",
        ),
        (
            F + "from: 2026-12-20T00:00:00Z\n        until: 2027-01-05T00:00:00Z\n",
            4,
            "this freeze has no `reason`",
        ),
        (
            F + "from: 2026-12-20T00:00:00Z\n        until: 2027-01-05T00:00:00Z\n"
            "        reason: ''\n",
            6,
            "non-empty string",
        ),
        (
            F + "from: 2026-12-20T00:00:00Z\n        until: 2027-01-05T00:00:00Z\n"
            "        reason: x\n        why: y\n",
            7,
            "unknown key 'why'",
        ),
        ("overrides: {team: ic, count: 0}\n", 1, "at least 1"),
        ("overrides: {team: ic, count: 21}\n", 1, "at most 20"),
        ("overrides: {team: 'a b'}\n", 1, "not a team slug"),
        ("overrides: {teams: ic}\n", 1, "did you mean 'team'?"),
        ("overrides: [ic]\n", 1, "overrides must be a mapping"),
    ],
)
def test_calendar_errors_name_the_file_line_and_fix(text: str, line: int, fragment: str) -> None:
    error = _error(text)
    assert error.path == "fleet/.github/promotion.yml"
    assert error.line == line, str(error)
    assert fragment in error.message, error.message


def test_windows_and_freezes_are_bounded() -> None:
    many = "".join('      - {from: "09:00", until: "10:00"}\n' for _ in range(MAX_WINDOWS + 1))
    error = _error("environments:\n  - name: a\n    windows:\n" + many)
    assert error.line == 4 + MAX_WINDOWS and f"at most {MAX_WINDOWS} windows" in error.message
    freezes = "".join(
        "      - {from: 2026-12-20T00:00:00Z, until: 2026-12-21T00:00:00Z, reason: x}\n"
        for _ in range(MAX_FREEZES + 1)
    )
    error = _error("environments:\n  - name: a\n    freezes:\n" + freezes)
    assert f"at most {MAX_FREEZES} freezes" in error.message
