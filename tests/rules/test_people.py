"""Who is behind a pull request (bot/rules/people.py)."""

from __future__ import annotations

from bot.rules.people import CommitFacts, from_app, people_behind
from bot.texts import markers

BOT = "fleet-bot[bot]"


def commit(
    sha: str,
    author: str | None,
    committer: str | None = "",
    *,
    verified: bool = False,
    asked: tuple[str, ...] = (),
) -> CommitFacts:
    return CommitFacts(sha * 40, author, author if committer == "" else committer, verified, asked)


def test_the_author_and_every_linked_commit_person_are_excluded() -> None:
    people = people_behind("alice", [commit("a", "alice"), commit("b", "carol", "bob")], BOT)
    assert people.excluded == {
        "alice": "opened the pull request",
        "carol": "authored commit bbbbbbb",
        "bob": "committed commit bbbbbbb",
    }
    assert not people.unknown_pushers


def test_trailers_count_only_on_the_apps_verified_commits() -> None:
    own = commit("a", BOT, verified=True, asked=("bob",))
    typed = commit("b", BOT, verified=False, asked=("carol",))  # the bot's email, unsigned
    human = commit("c", "alice", verified=True, asked=("dana",))  # a signed human commit
    people = people_behind(BOT, [own, typed, human], BOT)
    assert people.excluded["bob"] == "asked for this promotion with /promote"
    assert "carol" not in people.excluded
    assert "dana" not in people.excluded
    assert from_app(own, BOT) and not from_app(typed, BOT) and not from_app(human, BOT)


def test_the_body_marker_counts_only_on_the_bots_own_pull_request() -> None:
    assert "erin" in people_behind(BOT, [], BOT, body_requester="erin").excluded
    assert "erin" not in people_behind("alice", [], BOT, body_requester="erin").excluded


def test_commits_without_an_account_are_unattributed() -> None:
    people = people_behind(
        "alice", [commit("a", None, "bob"), commit("b", "carol", None), commit("c", "dana")], BOT
    )
    assert people.unattributed == ("a" * 40, "b" * 40)
    assert people.unknown_pushers and "bob" in people.excluded
    assert people_behind("alice", [], BOT, unread=3).unknown_pushers


def test_commit_facts_read_the_rest_shape() -> None:
    raw = {
        "sha": "9" * 40,
        "author": None,
        "committer": {"login": "web-flow"},
        "commit": {
            "message": "promote\n\nRequested-by: @Bob\n",
            "verification": {"verified": True, "reason": "valid"},
        },
    }
    facts = markers.commit_facts(raw)
    assert facts == CommitFacts("9" * 40, None, "web-flow", True, ("bob",))
