"""Approval rules: which reviews count, and whether they fill an environment's slots.

Pure: the shell gathers reviews, exclusions and team memberships from GitHub; this module only
judges them. The verdict carries every reason (who counted for which slot, who did not and why,
who blocks), so the check summary is rendered from it and never re-derives the judgement.

A rule such as "2 from sre + 1 from tech-leads" becomes slots ``sre#1``, ``sre#2``,
``tech-leads#1``; each approver fills at most one slot. Assigning people to slots is a maximum
bipartite matching: a greedy pass could put someone who is in both teams into an sre slot and then
find no tech lead, where the matching finds the assignment that fills everything.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from bot.fleet.policy import ApprovalRule

__all__ = [
    "ApprovalFacts",
    "ApprovalState",
    "ApprovalVerdict",
    "Counted",
    "Missing",
    "NotCounted",
    "Review",
    "combine_approvals",
    "evaluate_approvals",
    "expand_slots",
    "max_matching",
]

ApprovalState = Literal["success", "pending", "failure"]

# Review states that replace a person's earlier vote; DISMISSED withdraws it.
_VOTES = frozenset({"APPROVED", "CHANGES_REQUESTED"})
_DISMISSED = "DISMISSED"


@dataclass(frozen=True)
class Review:
    """One pull request review as GitHub lists it."""

    id: int
    user: str
    user_type: str  # "User" | "Bot" | "Organization"
    state: str  # APPROVED | CHANGES_REQUESTED | COMMENTED | DISMISSED | PENDING
    commit_id: str | None
    submitted_at: datetime | None
    html_url: str = ""


@dataclass(frozen=True)
class ApprovalFacts:
    """Everything the approval rule needs to know about one pull request."""

    head_sha: str
    reviews: Sequence[Review]
    excluded: Mapping[str, str]  # login -> why they never count ("opened the pull request")
    team_members: Mapping[str, frozenset[str]]  # team slug -> member logins
    org: str  # for rendering teams as "@acme/sre"
    # Commits GitHub links to no account, and commits that could not be read: whoever pushed
    # them may be among the approvers, so the rule must hold without any one of them.
    unattributed: tuple[str, ...] = ()
    unread: int = 0


@dataclass(frozen=True)
class Counted:
    """An approval that fills a slot of ``team``."""

    user: str
    team: str
    review_id: int
    submitted_at: datetime | None
    commit_id: str | None
    html_url: str


@dataclass(frozen=True)
class NotCounted:
    """A reviewer whose review fills no slot; ``reason`` reads after the login ("@bob is a bot")."""

    user: str
    reason: str


@dataclass(frozen=True)
class Missing:
    """``count`` slots of ``team`` that nobody fills yet."""

    team: str
    count: int


@dataclass(frozen=True)
class ApprovalVerdict:
    """The judgement of one environment's approval rule, with every reason behind it."""

    environment: str
    state: ApprovalState
    rules: tuple[ApprovalRule, ...]
    counted: tuple[Counted, ...]
    not_counted: tuple[NotCounted, ...]
    missing: tuple[Missing, ...]
    blocking: tuple[NotCounted, ...]  # CHANGES_REQUESTED from members of required teams
    # Teams not in ``missing`` whose next approver would also fill a slot, because someone who is
    # in two teams can move over: "1 from tech-leads" is then not the only way forward.
    also_from: tuple[str, ...] = ()
    # With unattributed commits: the approvers the rule cannot do without, and what it would
    # lack without each ("without @bob: 1 from sre").
    irreplaceable: tuple[tuple[str, tuple[Missing, ...]], ...] = ()
    unattributed: tuple[str, ...] = ()
    unread: int = 0


def evaluate_approvals(
    environment: str, rules: Sequence[ApprovalRule], facts: ApprovalFacts
) -> ApprovalVerdict:
    """Judge ``rules`` against the reviews in ``facts``.

    Failure while a member of a required team requests changes; pending while a slot is empty;
    success otherwise.
    """
    slots = expand_slots(rules)
    judge = _Judge(facts, _unique(team for _, team in slots))
    eligible: dict[str, Review] = {}
    edges: dict[str, list[str]] = {}
    not_counted: list[NotCounted] = []
    blocking: list[NotCounted] = []
    for review in _latest_votes(facts.reviews):
        teams = judge.teams_of(review.user)
        if review.state == "CHANGES_REQUESTED" and teams and not _is_bot(review):
            objection = f"requested changes{_on(review.commit_id)} as a member of "
            blocking.append(NotCounted(review.user, objection + judge.names(teams)))
        elif (reason := judge.why_not_counted(review, teams)) is not None:
            not_counted.append(NotCounted(review.user, reason))
        else:
            eligible[review.user] = review
            edges[review.user] = [slot for slot, team in slots if team in teams]

    by_slot = {slot: person for person, slot in max_matching(edges, [s for s, _ in slots]).items()}
    counted = tuple(_counted(eligible[by_slot[s]], team) for s, team in slots if s in by_slot)
    matched = set(by_slot.values())
    robust = bool(facts.unattributed or facts.unread)
    for person in edges:
        if person not in matched:
            full = judge.names(judge.teams_of(person), "and")
            reason = f"approved, but the {full} slots are already filled"
            if robust:
                reason = (
                    f"approved as a spare for the {full} slots (needed while who pushed is unknown)"
                )
            not_counted.append(NotCounted(person, reason))

    missing = _missing(slots, by_slot)
    irreplaceable: tuple[tuple[str, tuple[Missing, ...]], ...] = ()
    if robust:
        irreplaceable = _irreplaceable(slots, edges, by_slot, missing)
        missing = _robust_missing(slots, missing, irreplaceable)
    helpful = _teams_that_can_add(slots, edges, by_slot)
    also_from = tuple(team for team in helpful if team not in {m.team for m in missing})
    state: ApprovalState = "failure" if blocking else "pending" if missing else "success"
    return ApprovalVerdict(
        environment=environment,
        state=state,
        rules=tuple(rules),
        counted=counted,
        not_counted=tuple(not_counted),
        missing=missing,
        blocking=tuple(blocking),
        also_from=also_from,
        irreplaceable=irreplaceable,
        unattributed=tuple(facts.unattributed),
        unread=facts.unread,
    )


class _Judge:
    """The facts of one evaluation, normalised once: GitHub compares logins case-insensitively."""

    def __init__(self, facts: ApprovalFacts, required: Sequence[str]) -> None:
        self.facts = facts
        self.required = required
        self.members = {
            team.lower(): frozenset(login.lower() for login in logins)
            for team, logins in facts.team_members.items()
        }
        self.excluded = {login.lower(): reason for login, reason in facts.excluded.items()}

    def teams_of(self, user: str) -> list[str]:
        """The required teams ``user`` is a member of, in rule order."""
        login = user.lower()
        return [team for team in self.required if login in self.members.get(team.lower(), ())]

    def names(self, teams: Sequence[str], conjunction: str = "and") -> str:
        """``@acme/sre``, ``@acme/sre and @acme/tech-leads``, ``@a/x, @a/y or @a/z``."""
        names = [f"@{self.facts.org}/{team}" for team in teams]
        if len(names) <= 1:
            return "".join(names)
        return f"{', '.join(names[:-1])} {conjunction} {names[-1]}"

    def why_not_counted(self, review: Review, teams: Sequence[str]) -> str | None:
        """Why this deciding review fills no slot, or None when it may fill one of ``teams``.

        Permanent reasons come before fixable ones: telling a bot or the PR author to re-approve
        after a push would be misleading.
        """
        head = self.facts.head_sha
        if review.state == _DISMISSED:
            return "had their review dismissed, so no vote"
        if _is_bot(review):
            return "is a bot"
        outsider = f"is not in {self.names(self.required, 'or')}"
        if review.state == "CHANGES_REQUESTED":
            return f"requested changes, but {outsider}, so it does not block"
        if review.user.lower() in self.excluded:
            return self.excluded[review.user.lower()]
        if not teams:
            return f"approved, but {outsider}"
        if review.commit_id is None:
            return f"approved an unknown commit, not the head {_short(head)}"
        if review.commit_id != head:
            return (
                f"approved {_short(review.commit_id)}, not the head {_short(head)} (pushed since)"
            )
        return None


def combine_approvals(verdicts: Sequence[ApprovalVerdict]) -> ApprovalState:
    """One state for several environments: every rule must hold (a PR touching staging and prod)."""
    states = {verdict.state for verdict in verdicts}
    if "failure" in states:
        return "failure"
    if "pending" in states:
        return "pending"
    return "success"


def expand_slots(rules: Sequence[ApprovalRule]) -> list[tuple[str, str]]:
    """``[(slot, team)]`` in rule order: "2 sre + 1 tech-leads" -> sre#1, sre#2, tech-leads#1.

    Numbering continues per team, so two rules naming the same team add up instead of colliding.
    """
    numbered: dict[str, int] = {}
    slots: list[tuple[str, str]] = []
    for rule in rules:
        for _ in range(rule.count):
            numbered[rule.team] = numbered.get(rule.team, 0) + 1
            slots.append((f"{rule.team}#{numbered[rule.team]}", rule.team))
    return slots


def max_matching(edges: Mapping[str, Sequence[str]], slots: Sequence[str]) -> dict[str, str]:
    """A maximum matching of people to slots: ``{person: slot}``, nobody in two slots.

    Augmenting paths (Kuhn's algorithm), trying people in the order of ``edges`` (the caller passes
    approvers oldest first) and each person's slots in the order given. Two properties follow and
    are relied on: the result is the same for the same input, and a person who is matched stays
    matched while later people are added, so the earliest approvers keep their slots and a later
    redundant approver is the one left over.
    Rules have a handful of slots, so the O(people x edges) bound is never a concern; the search
    stops as soon as every slot is filled.
    """
    valid = set(slots)
    holder: dict[str, str] = {}  # slot -> person

    def augment(person: str, seen: set[str]) -> bool:
        options = [slot for slot in edges[person] if slot in valid]
        free = next((slot for slot in options if slot not in holder), None)
        if free is not None:  # a free slot first: nobody is moved without need
            holder[free] = person
            return True
        for slot in options:
            if slot not in seen:
                seen.add(slot)
                if augment(holder[slot], seen):
                    holder[slot] = person
                    return True
        return False

    for person in edges:
        if len(holder) == len(valid):
            break
        augment(person, set())
    return {person: slot for slot, person in holder.items()}


def _latest_votes(reviews: Sequence[Review]) -> list[Review]:
    """Each reviewer's deciding review, ordered by when it was submitted.

    Reviews are replayed by submission time (then id, which GitHub hands out in order). APPROVED and
    CHANGES_REQUESTED replace the vote; DISMISSED withdraws it, and since an earlier approval was
    already replaced it does not come back; COMMENTED and PENDING leave it as it was. A withdrawn
    vote is kept as the DISMISSED review, so the summary can say why that person does not count.
    """
    vote: dict[str, Review] = {}
    for review in sorted(reviews, key=_review_order):
        login = review.user.lower()
        if review.state in _VOTES or review.state == _DISMISSED:
            vote[login] = review
    return sorted(vote.values(), key=_review_order)


def _review_order(review: Review) -> tuple[float, int]:
    """Sort key: submission time, then id; unsubmitted (pending) reviews last."""
    at = review.submitted_at.timestamp() if review.submitted_at is not None else math.inf
    return at, review.id


def _is_bot(review: Review) -> bool:
    """GitHub marks app accounts as type Bot; their logins also end in ``[bot]``."""
    return review.user_type == "Bot" or review.user.lower().endswith("[bot]")


def _unique(teams: Iterable[str]) -> list[str]:
    """Teams in first-seen order without repeats."""
    return list(dict.fromkeys(teams))


def _short(sha: str) -> str:
    return sha[:7]


def _on(commit_id: str | None) -> str:
    return f" on {_short(commit_id)}" if commit_id else ""


def _counted(review: Review, team: str) -> Counted:
    return Counted(
        user=review.user,
        team=team,
        review_id=review.id,
        submitted_at=review.submitted_at,
        commit_id=review.commit_id,
        html_url=review.html_url,
    )


def _teams_that_can_add(
    slots: Sequence[tuple[str, str]],
    edges: Mapping[str, Sequence[str]],
    by_slot: Mapping[str, str],
) -> list[str]:
    """Teams whose next approver would fill one more slot.

    A newcomer can take a slot that is free, or one whose holder can move to another slot that
    is free or again vacated the same way (an augmenting path); the fixpoint finds all of them.
    """
    reachable = {slot for slot, _ in slots if slot not in by_slot}
    grown = bool(reachable)
    while grown:
        grown = False
        for slot, person in by_slot.items():
            if slot not in reachable and any(other in reachable for other in edges[person]):
                reachable.add(slot)
                grown = True
    return _unique(team for slot, team in slots if slot in reachable)


def _irreplaceable(
    slots: Sequence[tuple[str, str]],
    edges: Mapping[str, Sequence[str]],
    by_slot: Mapping[str, str],
    missing: Sequence[Missing],
) -> tuple[tuple[str, tuple[Missing, ...]], ...]:
    """Matched approvers without whom more slots would be empty, each with what would be
    missing then (beyond what is missing anyway). Only a matched person can matter."""
    slot_ids = [slot for slot, _ in slots]
    already = {item.team: item.count for item in missing}
    out: list[tuple[str, tuple[Missing, ...]]] = []
    for person in dict.fromkeys(by_slot[slot] for slot in slot_ids if slot in by_slot):
        others = {p: e for p, e in edges.items() if p != person}
        again = {slot: p for p, slot in max_matching(others, slot_ids).items()}
        worse = tuple(
            item for item in _missing(slots, again) if item.count > already.get(item.team, 0)
        )
        if worse:
            out.append((person, worse))
    return tuple(out)


def _robust_missing(
    slots: Sequence[tuple[str, str]],
    missing: Sequence[Missing],
    irreplaceable: Sequence[tuple[str, tuple[Missing, ...]]],
) -> tuple[Missing, ...]:
    """Approvals still needed when the rule must hold without any one approver, per team in
    rule order: a team that is short needs one more than it lacks (a newcomer must be
    spareable too); otherwise as many as it would lack without its most needed approver."""
    need: dict[str, int] = {item.team: item.count + 1 for item in missing if item.count}
    for _, lacking in irreplaceable:
        for item in lacking:
            need[item.team] = max(need.get(item.team, 0), item.count)
    order = _unique(team for _, team in slots)
    return tuple(Missing(team, need[team]) for team in order if need.get(team))


def _missing(slots: Sequence[tuple[str, str]], by_slot: Mapping[str, str]) -> tuple[Missing, ...]:
    """Unfilled slots per team, in rule order."""
    open_count: dict[str, int] = {}
    for slot, team in slots:
        if slot not in by_slot:
            open_count[team] = open_count.get(team, 0) + 1
    return tuple(Missing(team, count) for team, count in open_count.items())
