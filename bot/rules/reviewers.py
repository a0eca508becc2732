"""Whom to ask for a review: the people and teams that can fill the approval slots still empty.

Pure: the approval verdicts say which slots are empty; this decides whom a review request names.
A team is asked for when one of its members could still fill a slot (a team whose only members
are excluded, say the person who asked for the promotion, would be asked in vain). After a push,
the approvals of the earlier head no longer count: the people who gave them are asked again by
name, since they already know the change. Whoever GitHub lists as requested already is not asked
again, so a repeat of the same event makes no request at all.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from bot.rules.approvals import ApprovalFacts, ApprovalVerdict, Review

__all__ = ["ReviewRequest", "reviewers_to_request"]


@dataclass(frozen=True)
class ReviewRequest:
    users: tuple[str, ...] = ()
    teams: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.users and not self.teams


def reviewers_to_request(
    verdicts: Sequence[ApprovalVerdict],
    facts: ApprovalFacts,
    *,
    requested_users: Iterable[str] = (),
    requested_teams: Iterable[str] = (),
) -> ReviewRequest:
    """The users and team slugs to add to the PR's review requests.

    ``requested_users`` / ``requested_teams`` are who GitHub lists as requested now (logins and
    team slugs); nobody among them is asked again.
    """
    members = {team.lower(): {m.lower() for m in who} for team, who in facts.team_members.items()}
    excluded = {login.lower() for login in facts.excluded}
    counted = {item.user.lower() for verdict in verdicts for item in verdict.counted}
    empty_teams: list[str] = []
    for verdict in verdicts:
        for missing in verdict.missing:
            if missing.team not in empty_teams:
                empty_teams.append(missing.team)

    def can_fill(login: str, team: str) -> bool:
        person = login.lower()
        return (
            person in members.get(team.lower(), set())
            and person not in excluded
            and person not in counted
            and not person.endswith("[bot]")
        )

    asked_users = {login.lower() for login in requested_users}
    asked_teams = {slug.lower() for slug in requested_teams}
    teams = tuple(
        team
        for team in empty_teams
        if team.lower() not in asked_teams
        and any(can_fill(m, team) for m in members.get(team.lower(), set()))
    )
    stale = [
        review.user
        for review in _latest_votes(facts.reviews)
        if review.state == "APPROVED"
        and review.commit_id != facts.head_sha
        and review.user_type != "Bot"
        and any(can_fill(review.user, team) for team in empty_teams)
    ]
    users = tuple(dict.fromkeys(u for u in stale if u.lower() not in asked_users))
    return ReviewRequest(users=users, teams=teams)


def _latest_votes(reviews: Sequence[Review]) -> list[Review]:
    """Each reviewer's deciding review (approve, request changes, or a dismissal), in order."""

    def order(review: Review) -> tuple[float, int]:
        at = review.submitted_at.timestamp() if review.submitted_at is not None else math.inf
        return at, review.id

    vote: dict[str, Review] = {}
    for review in sorted(reviews, key=order):
        if review.state in ("APPROVED", "CHANGES_REQUESTED", "DISMISSED"):
            vote[review.user.lower()] = review
    return sorted(vote.values(), key=order)
