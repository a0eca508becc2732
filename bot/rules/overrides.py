"""Break-glass: which ``/override <check> <reason>`` requests count for a PR's head (pure).

An override counts only when GitHub itself vouches for every part of it:

- a person wrote ``/override`` in a comment (the comment's author is GitHub's, not the text's);
- the bot acknowledged it at once in a reply of its own, naming that comment, a digest of its
  text and the head commit the pull request had then (the bot checked, before replying, that
  the person may override and that the head did not change after the comment was written);
- neither comment was changed since: anyone with write access can edit a comment, so an edited
  acknowledgement, or a request whose text no longer matches the digest, counts for nothing;
- the acknowledged head is the pull request's head now: a push resets every override;
- the person is still allowed (a member of the ``overrides`` team, or an admin without one).

``count`` distinct people must have done so. Approvals are never overridable.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = [
    "NEVER_OVERRIDABLE",
    "OVERRIDABLE",
    "Override",
    "OverrideVerdict",
    "PostedComment",
    "acknowledged",
    "digest",
    "evaluate_overrides",
]

#: The checks a person may let a change through (``/override window ...``).
OVERRIDABLE = ("window", "lineage")
#: Checks that no override touches: the compliance rule itself (2 SRE + 1 tech lead).
NEVER_OVERRIDABLE = ("approvals",)
ACK_KIND = "override"


@dataclass(frozen=True)
class PostedComment:
    """A conversation comment as GitHub reports it; ``marker`` is its hidden bot marker."""

    id: int
    author: str
    by_bot: bool  # written by the bot's own account
    body: str
    created_at: datetime
    edited: bool  # GitHub's updated_at differs from created_at
    url: str
    marker: Mapping[str, Any]


@dataclass(frozen=True)
class Override:
    """One person's acknowledged ``/override`` of ``check`` on ``head``."""

    check: str
    login: str
    reason: str
    head: str
    at: datetime
    url: str


@dataclass(frozen=True)
class OverrideVerdict:
    check: str
    head: str
    needed: int
    counted: tuple[Override, ...]
    not_counted: tuple[tuple[Override, str], ...]

    @property
    def granted(self) -> bool:
        return len(self.counted) >= self.needed

    @property
    def logins(self) -> tuple[str, ...]:
        return tuple(o.login for o in self.counted)


def digest(body: str) -> str:
    """What the acknowledgement pins of the request: its text, exactly."""
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def acknowledged(comments: Sequence[PostedComment]) -> list[Override]:
    """The overrides the bot acknowledged and nobody changed since, oldest first."""
    requests = {c.id: c for c in comments if not c.by_bot}
    found: list[Override] = []
    for ack in comments:
        marker = ack.marker
        if not ack.by_bot or ack.edited or marker.get("kind") != ACK_KIND:
            continue
        request = requests.get(_int(marker.get("comment")) or 0)
        by, check, head = marker.get("by"), marker.get("check"), marker.get("head")
        if request is None or not all(isinstance(v, str) for v in (by, check, head)):
            continue
        if request.edited or request.author.lower() != str(by).lower():
            continue
        if marker.get("digest") != digest(request.body):
            continue
        reason = marker.get("reason")
        found.append(
            Override(
                check=str(check),
                login=request.author,
                reason=reason if isinstance(reason, str) else "",
                head=str(head),
                at=request.created_at,
                url=request.url,
            )
        )
    return sorted(found, key=lambda o: o.at)


def evaluate_overrides(
    check: str,
    head: str,
    overrides: Sequence[Override],
    eligible: Collection[str],
    needed: int,
    not_before: datetime | None = None,
) -> OverrideVerdict:
    """Which overrides of ``check`` count for ``head``: distinct people, each still eligible
    (``eligible``: lower-case logins), for this very head, written at or after ``not_before``
    (when the newest emergency freeze holding the change began: an override let through what
    held it then, and a freeze made after it stops everything again)."""
    counted: list[Override] = []
    not_counted: list[tuple[Override, str]] = []
    allowed = {login.lower() for login in eligible}
    for item in overrides:
        if item.check != check:
            continue
        if item.head != head:
            not_counted.append((item, f"was for {item.head[:7]}; a push since reset the overrides"))
        elif not_before is not None and item.at < not_before:
            not_counted.append((item, "was written before the freeze that holds it now began"))
        elif item.login.lower() not in allowed:
            not_counted.append((item, "may no longer override (not in the overrides team)"))
        elif any(c.login.lower() == item.login.lower() for c in counted):
            continue  # one person counts once
        else:
            counted.append(item)
    return OverrideVerdict(check, head, max(needed, 1), tuple(counted), tuple(not_counted))


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
