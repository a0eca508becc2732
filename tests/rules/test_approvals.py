"""Approval rules: review state, exclusions, staleness, and the matching of people to slots."""

from __future__ import annotations

import itertools
import random
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.fleet.policy import ApprovalRule
from bot.rules.approvals import (
    ApprovalFacts,
    ApprovalVerdict,
    Counted,
    Missing,
    NotCounted,
    Review,
    combine_approvals,
    evaluate_approvals,
    expand_slots,
    max_matching,
)

HEAD = "5d6e7f8a9b0c1d2e3f405162738495a6b7c8d9e0"
OLD = "1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d"
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
PROD = (ApprovalRule("sre", 2), ApprovalRule("tech-leads", 1))
TEAMS = {
    "sre": frozenset({"alice", "bob", "dana"}),
    "tech-leads": frozenset({"carol", "dana"}),
}

_ids = itertools.count(100)


def review(
    user: str,
    state: str = "APPROVED",
    *,
    minute: int = 0,
    commit: str | None = HEAD,
    user_type: str = "User",
) -> Review:
    """A review submitted ``minute`` minutes after T0 (ids increase like GitHub's)."""
    review_id = next(_ids)
    return Review(
        id=review_id,
        user=user,
        user_type=user_type,
        state=state,
        commit_id=commit,
        submitted_at=None if state == "PENDING" else T0 + timedelta(minutes=minute),
        html_url=f"https://github.com/acme/fleet/pull/7#pullrequestreview-{review_id}",
    )


def evaluate(
    reviews: Sequence[Review],
    *,
    rules: Sequence[ApprovalRule] = PROD,
    excluded: Mapping[str, str] | None = None,
    teams: Mapping[str, frozenset[str]] = TEAMS,
) -> ApprovalVerdict:
    facts = ApprovalFacts(
        head_sha=HEAD,
        reviews=reviews,
        excluded=excluded or {},
        team_members=teams,
        org="acme",
    )
    return evaluate_approvals("prod", rules, facts)


def reasons(verdict: ApprovalVerdict) -> dict[str, str]:
    return {item.user: item.reason for item in verdict.not_counted}


def counted_users(verdict: ApprovalVerdict) -> dict[str, str]:
    return {item.user: item.team for item in verdict.counted}


# --- the end-to-end stories of the issue -------------------------------------------------------


def test_three_distinct_approvers_from_the_right_teams_pass() -> None:
    verdict = evaluate([review("alice"), review("bob", minute=1), review("carol", minute=2)])
    assert verdict.state == "success"
    assert counted_users(verdict) == {"alice": "sre", "bob": "sre", "carol": "tech-leads"}
    assert verdict.missing == ()
    assert verdict.blocking == ()
    assert verdict.rules == PROD


def test_two_people_where_one_is_in_both_teams_do_not_pass() -> None:
    verdict = evaluate([review("dana"), review("alice", minute=1)])
    assert verdict.state == "pending"
    assert len(verdict.counted) == 2
    assert sum(item.count for item in verdict.missing) == 1


def test_missing_names_approvals_that_would_complete_the_rule() -> None:
    reviews = [review("dana"), review("alice", minute=1)]
    (missing,) = evaluate(reviews).missing
    newcomer = {**TEAMS, missing.team: TEAMS[missing.team] | {"zed"}}
    assert evaluate([*reviews, review("zed", minute=2)], teams=newcomer).state == "success"


def test_a_person_in_two_teams_can_move_so_the_other_team_also_helps() -> None:
    verdict = evaluate([review("alice"), review("dana", minute=1)])
    assert verdict.missing == (Missing("tech-leads", 1),)
    assert verdict.also_from == ("sre",)
    completed = evaluate([review("alice"), review("dana", minute=1), review("bob", minute=2)])
    assert completed.state == "success"


def test_no_alternative_when_nobody_can_move() -> None:
    verdict = evaluate([review("alice"), review("bob", minute=1)])
    assert verdict.missing == (Missing("tech-leads", 1),)
    assert verdict.also_from == ()


def test_person_in_both_teams_takes_the_slot_nobody_else_can_fill() -> None:
    # Greedy would seat dana (first) in an sre slot and leave tech-leads empty.
    verdict = evaluate([review("dana"), review("alice", minute=1), review("bob", minute=2)])
    assert verdict.state == "success"
    assert counted_users(verdict) == {"dana": "tech-leads", "alice": "sre", "bob": "sre"}


def test_counted_carries_the_review_that_fills_the_slot() -> None:
    approval = review("carol", minute=5)
    verdict = evaluate([approval], rules=[ApprovalRule("tech-leads", 1)])
    assert verdict.counted == (
        Counted(
            user="carol",
            team="tech-leads",
            review_id=approval.id,
            submitted_at=T0 + timedelta(minutes=5),
            commit_id=HEAD,
            html_url=approval.html_url,
        ),
    )


def test_approval_before_the_latest_push_is_stale() -> None:
    verdict = evaluate([review("alice", commit=OLD), review("bob"), review("carol")])
    assert verdict.state == "pending"
    assert reasons(verdict) == {"alice": "approved 1a2b3c4, not the head 5d6e7f8 (pushed since)"}
    assert verdict.missing == (Missing("sre", 1),)


def test_approval_without_a_commit_does_not_count() -> None:
    verdict = evaluate([review("carol", commit=None)], rules=[ApprovalRule("tech-leads", 1)])
    assert verdict.state == "pending"
    assert "not the head 5d6e7f8" in reasons(verdict)["carol"]


def test_reapproval_on_the_head_counts_again() -> None:
    verdict = evaluate(
        [review("carol", commit=OLD), review("carol", minute=3)],
        rules=[ApprovalRule("tech-leads", 1)],
    )
    assert verdict.state == "success"
    assert verdict.not_counted == ()


def test_author_and_promote_requester_never_count_and_say_why() -> None:
    excluded = {
        "alice": "opened the pull request",
        "carol": "asked for this promotion with /promote",
    }
    verdict = evaluate([review("alice"), review("bob"), review("carol")], excluded=excluded)
    assert verdict.state == "pending"
    assert counted_users(verdict) == {"bob": "sre"}
    assert reasons(verdict) == excluded
    assert verdict.missing == (Missing("sre", 1), Missing("tech-leads", 1))


def test_exclusion_is_reported_before_staleness() -> None:
    verdict = evaluate([review("alice", commit=OLD)], excluded={"alice": "authored commit 1a2b3c4"})
    assert reasons(verdict) == {"alice": "authored commit 1a2b3c4"}


def test_changes_requested_by_a_required_team_member_fails() -> None:
    verdict = evaluate(
        [review("alice"), review("bob", minute=1), review("carol", "CHANGES_REQUESTED", minute=2)]
    )
    assert verdict.state == "failure"
    assert verdict.blocking == (
        NotCounted("carol", "requested changes on 5d6e7f8 as a member of @acme/tech-leads"),
    )
    assert verdict.missing == (Missing("tech-leads", 1),)


def test_changes_requested_blocks_even_when_every_slot_is_filled() -> None:
    verdict = evaluate(
        [review("alice"), review("bob"), review("carol"), review("dana", "CHANGES_REQUESTED")]
    )
    assert verdict.missing == ()
    assert verdict.state == "failure"


def test_changes_requested_on_an_old_commit_still_blocks() -> None:
    verdict = evaluate([review("alice", "CHANGES_REQUESTED", commit=OLD)])
    assert verdict.state == "failure"
    assert "on 1a2b3c4" in verdict.blocking[0].reason


def test_dismissing_the_changes_request_brings_back_pending() -> None:
    verdict = evaluate([review("alice"), review("bob"), review("carol", "DISMISSED", minute=2)])
    assert verdict.state == "pending"
    assert verdict.blocking == ()
    assert reasons(verdict) == {"carol": "had their review dismissed, so no vote"}


def test_dismissed_review_never_brings_back_an_older_approval() -> None:
    # carol approved, then requested changes; that request was dismissed. No vote remains.
    verdict = evaluate(
        [review("carol"), review("carol", "DISMISSED", minute=1)],
        rules=[ApprovalRule("tech-leads", 1)],
    )
    assert verdict.state == "pending"
    assert verdict.counted == ()


def test_dismissed_approval_does_not_count() -> None:
    verdict = evaluate([review("carol", "DISMISSED")], rules=[ApprovalRule("tech-leads", 1)])
    assert verdict.counted == ()
    assert verdict.state == "pending"


def test_approval_after_a_dismissal_counts() -> None:
    verdict = evaluate(
        [review("carol", "DISMISSED"), review("carol", minute=4)],
        rules=[ApprovalRule("tech-leads", 1)],
    )
    assert verdict.state == "success"


def test_approval_replaces_an_earlier_changes_request() -> None:
    verdict = evaluate(
        [review("carol", "CHANGES_REQUESTED"), review("carol", minute=1)],
        rules=[ApprovalRule("tech-leads", 1)],
    )
    assert verdict.state == "success"
    assert verdict.blocking == ()


def test_changes_request_replaces_an_earlier_approval() -> None:
    verdict = evaluate(
        [review("carol"), review("carol", "CHANGES_REQUESTED", minute=1)],
        rules=[ApprovalRule("tech-leads", 1)],
    )
    assert verdict.state == "failure"
    assert verdict.counted == ()


@pytest.mark.parametrize("state", ["COMMENTED", "PENDING"])
def test_comment_or_pending_review_does_not_change_the_vote(state: str) -> None:
    approved = evaluate(
        [review("carol"), review("carol", state, minute=1)], rules=[ApprovalRule("tech-leads", 1)]
    )
    assert approved.state == "success"
    blocked = evaluate(
        [review("carol", "CHANGES_REQUESTED"), review("carol", state, minute=1)],
        rules=[ApprovalRule("tech-leads", 1)],
    )
    assert blocked.state == "failure"


def test_comment_only_reviewers_are_not_listed() -> None:
    verdict = evaluate([review("alice", "COMMENTED")])
    assert verdict.not_counted == ()
    assert verdict.counted == ()


def test_latest_review_is_decided_by_submission_time_not_list_order() -> None:
    later_approval = review("carol", minute=10)
    earlier_request = review("carol", "CHANGES_REQUESTED", minute=1)
    verdict = evaluate([later_approval, earlier_request], rules=[ApprovalRule("tech-leads", 1)])
    assert verdict.state == "success"


def test_same_submission_time_is_ordered_by_review_id() -> None:
    first = Review(1, "carol", "User", "CHANGES_REQUESTED", HEAD, T0)
    second = Review(2, "carol", "User", "APPROVED", HEAD, T0)
    verdict = evaluate([second, first], rules=[ApprovalRule("tech-leads", 1)])
    assert verdict.state == "success"


def test_changes_request_from_outside_the_required_teams_does_not_block() -> None:
    verdict = evaluate([review("mallory", "CHANGES_REQUESTED")])
    assert verdict.state == "pending"
    assert verdict.blocking == ()
    assert reasons(verdict) == {
        "mallory": "requested changes, but is not in @acme/sre or @acme/tech-leads, "
        "so it does not block"
    }


def test_approval_from_outside_the_required_teams_does_not_count() -> None:
    verdict = evaluate([review("mallory")])
    assert reasons(verdict) == {
        "mallory": "approved, but is not in @acme/sre or @acme/tech-leads",
    }


def test_bots_never_count_and_never_block() -> None:
    teams = {"sre": frozenset({"deploy-bot[bot]", "renovate"}), "tech-leads": frozenset()}
    verdict = evaluate(
        [review("renovate", user_type="Bot"), review("deploy-bot[bot]", "CHANGES_REQUESTED")],
        rules=[ApprovalRule("sre", 1)],
        teams=teams,
    )
    assert verdict.state == "pending"
    assert reasons(verdict) == {"renovate": "is a bot", "deploy-bot[bot]": "is a bot"}


def test_logins_compare_case_insensitively() -> None:
    teams = {"SRE": frozenset({"Alice"}), "tech-leads": frozenset({"CAROL"})}
    verdict = evaluate(
        [review("alice"), review("Carol"), review("BOB")],
        rules=[ApprovalRule("sre", 1), ApprovalRule("tech-leads", 1)],
        excluded={"bob": "opened the pull request"},
        teams=teams,
    )
    assert verdict.state == "success"
    assert counted_users(verdict) == {"alice": "sre", "Carol": "tech-leads"}
    assert reasons(verdict) == {"BOB": "opened the pull request"}


def test_excluded_lookup_is_case_insensitive() -> None:
    verdict = evaluate([review("Alice")], excluded={"ALICE": "opened the pull request"})
    assert reasons(verdict) == {"Alice": "opened the pull request"}


def test_one_person_fills_one_slot_even_with_several_reviews() -> None:
    verdict = evaluate([review("alice"), review("alice", minute=1), review("alice", minute=2)])
    assert counted_users(verdict) == {"alice": "sre"}
    assert verdict.missing == (Missing("sre", 1), Missing("tech-leads", 1))


def test_surplus_approver_is_the_latest_and_says_why() -> None:
    verdict = evaluate(
        [review("bob", minute=2), review("alice", minute=1), review("dana", minute=3)],
        rules=[ApprovalRule("sre", 2)],
    )
    assert verdict.state == "success"
    assert set(counted_users(verdict)) == {"alice", "bob"}
    assert reasons(verdict) == {"dana": "approved, but the @acme/sre slots are already filled"}


def test_unknown_team_leaves_its_slots_missing() -> None:
    verdict = evaluate([review("alice")], rules=[ApprovalRule("platform", 1)])
    assert verdict.state == "pending"
    assert verdict.missing == (Missing("platform", 1),)
    assert reasons(verdict) == {"alice": "approved, but is not in @acme/platform"}


def test_no_required_approvals_is_success() -> None:
    verdict = evaluate([], rules=[])
    assert verdict.state == "success"
    assert (verdict.counted, verdict.missing, verdict.not_counted) == ((), (), ())


def test_same_facts_in_any_order_give_the_same_verdict() -> None:
    reviews = [
        review("dana"),
        review("alice", minute=1),
        review("bob", minute=2),
        review("carol", minute=3),
        review("alice", "COMMENTED", minute=4),
    ]
    expected = evaluate(reviews)
    rng = random.Random(7)
    for _ in range(20):
        shuffled = reviews[:]
        rng.shuffle(shuffled)
        assert evaluate(shuffled) == expected


# --- combining environments --------------------------------------------------------------------


def _verdict(state: str) -> ApprovalVerdict:
    rules = [ApprovalRule("tech-leads", 1)]
    reviews = {
        "success": [review("carol")],
        "pending": [],
        "failure": [review("carol", "CHANGES_REQUESTED")],
    }[state]
    verdict = evaluate(reviews, rules=rules)
    assert verdict.state == state
    return verdict


@pytest.mark.parametrize(
    ("states", "expected"),
    [
        ((), "success"),
        (("success",), "success"),
        (("success", "pending"), "pending"),
        (("pending", "failure", "success"), "failure"),
        (("success", "success"), "success"),
    ],
)
def test_combine_approvals_requires_every_rule(states: tuple[str, ...], expected: str) -> None:
    assert combine_approvals([_verdict(state) for state in states]) == expected


# --- slots and matching ------------------------------------------------------------------------


def test_expand_slots_numbers_per_team_across_rules() -> None:
    rules = [ApprovalRule("sre", 2), ApprovalRule("tech-leads", 1), ApprovalRule("sre", 1)]
    assert expand_slots(rules) == [
        ("sre#1", "sre"),
        ("sre#2", "sre"),
        ("tech-leads#1", "tech-leads"),
        ("sre#3", "sre"),
    ]


def test_expand_slots_ignores_zero_counts() -> None:
    assert expand_slots([ApprovalRule("sre", 0)]) == []


def test_max_matching_reroutes_along_an_augmenting_path() -> None:
    edges = {"dana": ["a#1", "b#1"], "alice": ["a#1"]}
    assert max_matching(edges, ["a#1", "b#1"]) == {"dana": "b#1", "alice": "a#1"}


def test_max_matching_ignores_edges_to_unknown_slots() -> None:
    assert max_matching({"alice": ["x#1", "a#1"]}, ["a#1"]) == {"alice": "a#1"}


def test_max_matching_keeps_earlier_people_matched() -> None:
    edges = {"first": ["a#1"], "second": ["a#1"]}
    assert max_matching(edges, ["a#1"]) == {"first": "a#1"}


def _oracle(edges: Mapping[str, Sequence[str]], slots: Sequence[str]) -> int:
    """Largest matching by exhaustive search: each person takes a free slot or none."""
    people = list(edges)

    def best(index: int, used: frozenset[str]) -> int:
        if index == len(people):
            return 0
        result = best(index + 1, used)
        for slot in edges[people[index]]:
            if slot in slots and slot not in used:
                result = max(result, 1 + best(index + 1, used | {slot}))
        return result

    return best(0, frozenset())


_PEOPLE = [f"p{i}" for i in range(6)]
_TEAM_NAMES = [f"t{i}" for i in range(4)]


@st.composite
def _cases(draw: st.DrawFn) -> tuple[list[ApprovalRule], dict[str, frozenset[str]], list[str]]:
    """<= 5 slots over <= 4 teams, <= 6 approvers with random memberships."""
    teams = draw(st.lists(st.sampled_from(_TEAM_NAMES), min_size=1, max_size=4, unique=True))
    counts = draw(st.lists(st.integers(0, 3), min_size=len(teams), max_size=len(teams)))
    while sum(counts) > 5:
        counts[counts.index(max(counts))] -= 1
    rules = [ApprovalRule(team, count) for team, count in zip(teams, counts, strict=True)]
    people = draw(st.lists(st.sampled_from(_PEOPLE), max_size=6, unique=True))
    members = {
        team: frozenset(draw(st.lists(st.sampled_from(_PEOPLE), unique=True)))
        for team in _TEAM_NAMES
    }
    return rules, members, people


@settings(max_examples=300, deadline=None)
@given(_cases())
def test_matching_is_maximum_and_respects_membership(
    case: tuple[list[ApprovalRule], dict[str, frozenset[str]], list[str]],
) -> None:
    rules, members, people = case
    slots = expand_slots(rules)
    edges = {person: [slot for slot, team in slots if person in members[team]] for person in people}
    slot_names = [slot for slot, _ in slots]
    assignment = max_matching(edges, slot_names)

    assert len(assignment) == _oracle(edges, slot_names)
    assert len(set(assignment.values())) == len(assignment)  # one person per slot
    assert all(slot in edges[person] for person, slot in assignment.items())

    verdict = evaluate([review(person) for person in people], rules=rules, teams=members)
    assert len(verdict.counted) == len(assignment)
    assert len({item.user for item in verdict.counted}) == len(verdict.counted)
    assert all(item.user in members[item.team] for item in verdict.counted)
    assert sum(item.count for item in verdict.missing) == len(slots) - len(assignment)
    assert verdict.state == ("success" if len(assignment) == len(slots) else "pending")

    # Exactly the teams in missing and also_from are those whose next approver fills a slot.
    for team in _TEAM_NAMES:
        grown_team = {**members, team: members[team] | {"newcomer"}}
        reviews = [review(person) for person in people] + [review("newcomer", minute=1)]
        helped = len(evaluate(reviews, rules=rules, teams=grown_team).counted) > len(assignment)
        named = {m.team for m in verdict.missing} | set(verdict.also_from)
        assert helped == (team in named), team

    # What the verdict says is missing is enough: newcomers from exactly those teams complete it.
    newcomers = [(f"new-{m.team}-{i}", m.team) for m in verdict.missing for i in range(m.count)]
    grown = {
        team: logins | {n for n, t in newcomers if t == team} for team, logins in members.items()
    }
    reviews = [review(person) for person in people] + [review(n, minute=1) for n, _ in newcomers]
    assert evaluate(reviews, rules=rules, teams=grown).state == "success"


# --- commits nobody can be named for (threat A3) -----------------------------------------------


def evaluate_unattributed(
    reviews: Sequence[Review],
    *,
    rules: Sequence[ApprovalRule] = PROD,
    teams: Mapping[str, frozenset[str]] = TEAMS,
    unread: int = 0,
) -> ApprovalVerdict:
    facts = ApprovalFacts(
        head_sha=HEAD,
        reviews=reviews,
        excluded={},
        team_members=teams,
        org="acme",
        unattributed=() if unread else ("f" * 40,),
        unread=unread,
    )
    return evaluate_approvals("prod", rules, facts)


def test_an_unattributed_commit_needs_approvals_that_do_without_any_one() -> None:
    three = [review("alice"), review("bob", minute=1), review("carol", minute=2)]
    assert evaluate(three).state == "success"
    verdict = evaluate_unattributed(three)
    assert verdict.state == "pending"
    assert verdict.missing == (Missing("sre", 1), Missing("tech-leads", 1))
    assert dict(verdict.irreplaceable) == {
        "alice": (Missing("sre", 1),),
        "bob": (Missing("sre", 1),),
        "carol": (Missing("tech-leads", 1),),
    }
    # dana is in both teams: the one spare both teams need
    verdict = evaluate_unattributed([*three, review("dana", minute=3)])
    assert verdict.state == "success" and verdict.irreplaceable == ()
    assert verdict.unattributed == ("f" * 40,)


def test_unread_commits_count_like_unattributed_ones() -> None:
    three = [review("alice"), review("bob", minute=1), review("carol", minute=2)]
    verdict = evaluate_unattributed(three, unread=4)
    assert verdict.state == "pending" and verdict.unread == 4


def test_a_spare_approver_is_named_as_one() -> None:
    teams = {"sre": frozenset({"alice", "bob", "dana"})}
    reviews = [review("alice"), review("bob", minute=1), review("dana", minute=2)]
    verdict = evaluate_unattributed(reviews, rules=(ApprovalRule("sre", 2),), teams=teams)
    assert verdict.state == "success"
    assert "spare" in reasons(verdict)["dana"]


@settings(max_examples=300, deadline=None)
@given(_cases())
def test_with_unattributed_commits_success_means_any_one_approver_can_be_spared(
    case: tuple[list[ApprovalRule], dict[str, frozenset[str]], list[str]],
) -> None:
    rules, members, people = case
    slots = expand_slots(rules)
    slot_names = [slot for slot, _ in slots]
    edges = {person: [slot for slot, team in slots if person in members[team]] for person in people}
    robust = _oracle(edges, slot_names) == len(slots) and all(
        _oracle({p: e for p, e in edges.items() if p != gone}, slot_names) == len(slots)
        for gone in people
    )
    reviews = [review(person) for person in people]
    verdict = evaluate_unattributed(reviews, rules=rules, teams=members)
    assert verdict.state == ("success" if robust else "pending")
    # what it says is missing is enough: newcomers from exactly those teams complete it
    newcomers = [(f"new-{m.team}-{i}", m.team) for m in verdict.missing for i in range(m.count)]
    grown = {
        team: logins | {n for n, t in newcomers if t == team} for team, logins in members.items()
    }
    more = reviews + [review(n, minute=1) for n, _ in newcomers]
    assert evaluate_unattributed(more, rules=rules, teams=grown).state == "success"
