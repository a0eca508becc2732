"""Break-glass overrides (pure): only unedited, acknowledged, per-head requests of people who may
override count, each person once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.rules.overrides import (
    Override,
    PostedComment,
    acknowledged,
    digest,
    evaluate_overrides,
)

T0 = datetime(2026, 12, 1, 10, tzinfo=UTC)
HEAD, OLD = "a" * 40, "b" * 40


def request(cid: int, who: str, body: str, minutes: int = 0, edited: bool = False) -> PostedComment:
    return PostedComment(
        cid, who, False, body, T0 + timedelta(minutes=minutes), edited, f"u/{cid}", {}
    )


def ack(
    cid: int, of: PostedComment, *, head: str = HEAD, edited: bool = False, **overrides: object
) -> PostedComment:
    marker: dict[str, object] = {
        "kind": "override",
        "check": "window",
        "by": of.author,
        "reason": "incident 42",
        "head": head,
        "comment": of.id,
        "digest": digest(of.body),
    }
    marker.update(overrides)
    return PostedComment(cid, "fleet-bot[bot]", True, "ack", of.created_at, edited, "", marker)


def test_an_acknowledged_request_is_an_override() -> None:
    asked = request(1, "dana", "/override window incident 42")
    (found,) = acknowledged([asked, ack(2, asked)])
    assert found == Override("window", "dana", "incident 42", HEAD, T0, "u/1")


def test_edits_and_forgeries_count_for_nothing() -> None:
    asked = request(1, "dana", "/override window incident 42")
    assert acknowledged([asked]) == []  # no acknowledgement: a person's words alone
    assert acknowledged([asked, ack(2, asked, edited=True)]) == []  # the ack was edited
    edited = request(1, "dana", "/override window incident 42", edited=True)
    assert acknowledged([edited, ack(2, asked)]) == []  # the request was edited
    changed = request(1, "dana", "/override lineage yolo")
    assert acknowledged([changed, ack(2, asked)]) == []  # text differs from the digest
    assert acknowledged([asked, ack(2, asked, by="erin")]) == []  # names someone else
    assert acknowledged([asked, ack(2, asked, comment=99)]) == []  # names another comment
    human = PostedComment(3, "mallory", False, "x", T0, False, "", {"kind": "override"})
    assert acknowledged([asked, human]) == []  # only the bot's own comments carry markers


def test_count_distinct_eligible_people_on_this_head() -> None:
    dana, erin = request(1, "dana", "/override window a"), request(3, "Erin", "/override window b")
    again = request(5, "dana", "/override window again", minutes=2)
    old = request(7, "frank", "/override window older", minutes=-5)
    found = acknowledged(
        [dana, ack(2, dana), erin, ack(4, erin), again, ack(6, again), old, ack(8, old, head=OLD)]
    )
    verdict = evaluate_overrides("window", HEAD, found, {"dana", "erin", "frank"}, 2)
    assert verdict.granted and verdict.logins == ("dana", "Erin")
    assert [(o.login, why) for o, why in verdict.not_counted] == [
        ("frank", f"was for {OLD[:7]}; a push since reset the overrides")
    ]
    assert not evaluate_overrides("window", HEAD, found, {"dana", "erin"}, 3).granted
    assert not evaluate_overrides("lineage", HEAD, found, {"dana", "erin"}, 1).granted


def test_someone_no_longer_allowed_does_not_count() -> None:
    dana = request(1, "dana", "/override window a")
    verdict = evaluate_overrides("window", HEAD, acknowledged([dana, ack(2, dana)]), set(), 1)
    assert not verdict.granted
    assert "no longer override" in verdict.not_counted[0][1]


def test_an_override_written_before_the_freeze_that_holds_now_does_not_count() -> None:
    """S5: an override let through what held the change when it was written; a freeze that
    began after it stops the change again (the same second counts as after)."""
    dana = request(1, "dana", "/override window a")
    found = acknowledged([dana, ack(2, dana)])
    later = T0 + timedelta(minutes=1)
    verdict = evaluate_overrides("window", HEAD, found, {"dana"}, 1, not_before=later)
    assert not verdict.granted
    assert "before the freeze" in verdict.not_counted[0][1]
    assert evaluate_overrides("window", HEAD, found, {"dana"}, 1, not_before=T0).granted
    assert evaluate_overrides("window", HEAD, found, {"dana"}, 1, not_before=None).granted
