"""The calendar's words: rules and instants as people read them, freeze issues read back."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.fleet.policy import Window
from bot.texts.calendar import (
    describe_days,
    describe_window,
    freeze_issue_body,
    freeze_issue_title,
    local,
    read_freeze_issue,
)


def test_days_are_grouped_into_runs() -> None:
    assert describe_days(range(7)) == "every day"  # type: ignore[arg-type]
    assert describe_days((0, 1, 2, 3)) == "Mon–Thu"
    assert describe_days((0, 2, 3, 4, 6)) == "Mon, Wed–Fri, Sun"


def test_windows_and_instants_in_words() -> None:
    assert (
        describe_window(Window((4,), 22 * 60, 120, "UTC")) == "Fri 22:00–02:00 the next day (UTC)"
    )
    assert describe_window(Window((0,), 18 * 60, 1440, "UTC")) == "Mon 18:00–24:00 (UTC)"
    moment = datetime(2027, 1, 5, 8, tzinfo=UTC)
    assert local(moment, "UTC") == "2027-01-05 08:00 UTC"
    assert local(moment, "Europe/Berlin") == "2027-01-05 08:00 UTC (09:00 CET in Europe/Berlin)"
    late = datetime(2027, 1, 5, 23, 30, tzinfo=UTC)
    assert local(late, "Asia/Tokyo") == "2027-01-05 23:30 UTC (2027-01-06 08:30 JST in Asia/Tokyo)"


def test_a_freeze_issue_reads_back_and_an_edited_one_holds_everything() -> None:
    body = freeze_issue_body("prod", by="dana", reason="db <!-- --> down", comment_url="u", who="w")
    freeze = read_freeze_issue(
        number=7, title=freeze_issue_title("prod"), body=body, url="x", since=None
    )
    assert (freeze.environment, freeze.by, freeze.reason) == ("prod", "dana", "db <!-- --> down")
    for title, text in (("Deploy freeze: dev", body), (freeze_issue_title("prod"), "gone")):
        edited = read_freeze_issue(number=7, title=title, body=text, url="x", since=None)
        assert edited.environment is None and edited.problem is not None
