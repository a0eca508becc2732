"""Who is behind a pull request, as far as GitHub can say (pure).

The approval rule must not count the people who made the change. GitHub names them in two
ways a pusher cannot forge: the account that opened the pull request, and the accounts GitHub
links each commit's author and committer to. Everything else in a commit (its author *name*,
its message, a ``Requested-by:`` trailer) is text the pusher typed.

So:

- the PR's author and every linked commit author and committer are excluded from approving;
- ``Requested-by:`` trailers are believed only in commits the app itself made: GitHub links
  their author to the app's bot account *and* verified their signature (GitHub signs a commit an
  app creates through the API; a person who writes the bot's name or noreply email into a commit
  gets the link, never the signature);
- a commit whose author or committer GitHub links to no account (``author: null``: an email no
  account has) could have been pushed by anyone with push access, including one of the
  approvers. Nobody can be excluded for it, so the rule that follows (in
  :mod:`bot.rules.approvals`) is that the approvals must still suffice without any one of the
  approvers. The same holds for commits the bot could not read at all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

__all__ = ["CommitFacts", "People", "people_behind"]


@dataclass(frozen=True)
class CommitFacts:
    """One commit of a pull request, as GitHub attributes it."""

    sha: str
    author: str | None  # the login GitHub links the author to; None: no account
    committer: str | None  # the same for the committer
    verified: bool  # GitHub verified the commit's signature
    requested_by: tuple[str, ...] = ()  # logins in the message's Requested-by: trailers


@dataclass(frozen=True)
class People:
    """The people behind a pull request, and what could not be attributed."""

    excluded: Mapping[str, str] = field(default_factory=dict)  # login (lower) -> why
    unattributed: tuple[str, ...] = ()  # SHAs of commits with no account behind them
    unread: int = 0  # commits of the PR that could not be read at all

    @property
    def unknown_pushers(self) -> bool:
        """Whether someone may have pushed to the PR without GitHub saying who."""
        return bool(self.unattributed) or self.unread > 0


def from_app(commit: CommitFacts, bot_login: str) -> bool:
    """A commit the app made itself: linked to its bot account and signed as GitHub verifies."""
    return commit.verified and (commit.author or "").lower() == bot_login.lower()


def people_behind(
    pr_author: str | None,
    commits: Sequence[CommitFacts],
    bot_login: str,
    *,
    body_requester: str | None = None,
    unread: int = 0,
) -> People:
    """Who never counts as an approver of this pull request, and why.

    ``body_requester`` is the requester named in the bot's hidden PR-body marker: believed only
    on a PR the bot opened (a fallback; the trailer on the bot's commit is what counts).
    """
    excluded: dict[str, str] = {}
    if pr_author:
        excluded[pr_author.lower()] = "opened the pull request"
    unattributed: list[str] = []
    asked: set[str] = set()
    for commit in commits:
        short = commit.sha[:7]
        for login, verb in ((commit.author, "authored"), (commit.committer, "committed")):
            if login and login.lower() not in excluded:
                excluded[login.lower()] = f"{verb} commit {short}"
        if commit.author is None or commit.committer is None:
            unattributed.append(commit.sha)
        if from_app(commit, bot_login):
            asked.update(login.lower() for login in commit.requested_by)
    if pr_author and pr_author.lower() == bot_login.lower() and body_requester:
        asked.add(body_requester.lower())
    for login in sorted(asked):
        excluded[login] = "asked for this promotion with /promote"
    return People(excluded=excluded, unattributed=tuple(unattributed), unread=unread)
