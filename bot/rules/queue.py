"""Merge groups: which pull request a group holds, and whether the group's change is that pull
request's change (pure; the handler in ``bot.handlers.mergequeue`` gathers the facts).

A merge queue checks each pull request again on a commit of its own: the pull request merged on
top of the group ahead of it (or of the branch), on the branch
``gh-readonly-queue/<base>/pr-<number>-<parent sha>``. The gate judges that commit's change
against its parent with the pull request's reviews. What the group changes beyond the pull
request (another pull request grouped into the same commit, a push after queueing) has no
approvals of its own: the group fails closed and says which files.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from bot.rules.gate import FileChange

QUEUE_REF = re.compile(
    r"refs/heads/gh-readonly-queue/(?P<base>.+)/pr-(?P<number>\d+)-(?P<sha>[0-9a-f]{40})"
)


@dataclass(frozen=True)
class GroupRef:
    """What a merge group's branch name says: its base branch, pull request and parent."""

    base: str
    number: int
    parent_sha: str


def parse_group_ref(head_ref: str, base_ref: str) -> GroupRef | None:
    """The group's pull request from its head ref; None when the name does not have GitHub's
    form or names another base branch than ``base_ref``."""
    m = QUEUE_REF.fullmatch(head_ref)
    if m is None or f"refs/heads/{m.group('base')}" != base_ref:
        return None
    number = int(m.group("number"))
    if number <= 0:
        return None
    return GroupRef(m.group("base"), number, m.group("sha"))


def unexplained(group: Sequence[FileChange], pull: Sequence[FileChange]) -> tuple[str, ...]:
    """Paths the group changes that the pull request does not change the same way (a removal
    for a removal, the same new content otherwise)."""
    theirs: dict[str, str | None] = {}
    for change in pull:
        theirs[change.path] = _content(change)
        if change.previous_path and change.previous_path != change.path:
            theirs.setdefault(change.previous_path, None)  # a rename removes its old path
    return tuple(c.path for c in group if c.path not in theirs or theirs[c.path] != _content(c))


def _content(change: FileChange) -> str | None:
    """What a change leaves at its path: None for a removal, else the object's SHA (a tree
    comparison marks a symlink's blob ``<sha>:link``; GitHub's file list does not)."""
    if change.status == "removed" or change.sha is None:
        return None
    return change.sha.removesuffix(":link")
