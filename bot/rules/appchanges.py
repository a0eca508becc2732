"""Where an image was built from, and which application commits a promotion brings (pure).

An image announcement may say which repository and commit it was built from. The dev bump
records that in its commit as trailers (``bot.texts.markers``), so the fleet repo keeps it and
the bot keeps nothing. A promotion moves a tenant from the image its target environment runs
to the one upstream runs; when the commits of both images are known and in the same
repository, what the promotion changes in the application is GitHub's comparison of those two
commits.

This module validates announced values, plans the comparisons (one per repository and pair of
commits, however many tenants share it), reads GitHub's answer into a few fields, and judges
each move: application changes, a rollback, no change, or why nothing can be shown.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from bot.fleet.images import ImageRefError, parse_image, same_repository
from bot.rules.bump import is_older
from bot.rules.promote import PromotionPlan
from bot.rules.provenance import BuiltFrom

__all__ = [
    "MAX_COMMITS",
    "AppChange",
    "AppCommit",
    "BuiltFrom",
    "Compared",
    "Comparison",
    "Found",
    "ImageMove",
    "Planned",
    "built_from_of",
    "comparison_url",
    "judge",
    "linked_pull",
    "plan",
    "promotion_moves",
    "reduce_comparison",
    "same_image",
]

#: Commits listed per comparison; the link to the full comparison shows the rest.
MAX_COMMITS = 50

# What GitHub writes in the titles of the commits it makes when merging a pull request.
_SQUASH_RE = re.compile(r"\(#([1-9][0-9]{0,9})\)\s*$")
_MERGE_RE = re.compile(r"^Merge pull request #([1-9][0-9]{0,9}) from \S+")


def same_image(a: str, b: str) -> bool:
    """The same image: same repository and tag, and the same digest when both name one."""
    try:
        ra, rb = parse_image(a), parse_image(b)
    except ImageRefError:
        return False
    if not same_repository(ra, rb) or ra.tag != rb.tag:
        return False
    return ra.digest is None or rb.digest is None or ra.digest.lower() == rb.digest.lower()


def built_from_of(value: str, known: Mapping[str, BuiltFrom | None]) -> BuiltFrom | None:
    """What ``known`` (image -> origin) says about ``value``, matching images as
    :func:`same_image` does (a value pinned by digest matches the announcement of its tag)."""
    if value in known:
        return known[value]
    for image, origin in known.items():
        if origin is not None and same_image(value, image):
            return origin
    return None


# --- planning -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageMove:
    """A tenant's image in the target environment (``old``) and the one it moves to."""

    tenant: str
    old: str | None
    new: str | None


@dataclass(frozen=True)
class Comparison:
    """One question for GitHub: the commits of ``repository`` from ``base`` to ``head``."""

    repository: str
    base: str
    head: str


@dataclass(frozen=True)
class Planned:
    """The tenants that make the same move, and what is known about it before any call."""

    tenants: tuple[str, ...]
    old: str
    new: str
    old_from: BuiltFrom | None
    new_from: BuiltFrom | None
    comparison: Comparison | None  # None: nothing to ask (see ``reason``)
    reason: str = ""


def promotion_moves(promotion: PromotionPlan) -> list[ImageMove]:
    """The image moves of a promotion, one per tenant and cluster."""
    return [
        ImageMove(m.tenant, _text(m.old), _text(m.new)) for m in promotion.moves if m.key == "image"
    ]


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def plan(moves: Iterable[ImageMove], known: Mapping[str, BuiltFrom | None]) -> list[Planned]:
    """Group moves by (old image, new image) and decide which need a comparison.

    ``known`` maps image values to what the fleet's history recorded about them (None: nothing).
    """
    groups: dict[tuple[str, str], list[str]] = {}
    for move in moves:
        if move.old is None or move.new is None or move.old == move.new:
            continue  # nothing ran before, or nothing changes: no application change to show
        tenants = groups.setdefault((move.old, move.new), [])
        if move.tenant not in tenants:
            tenants.append(move.tenant)
    out: list[Planned] = []
    for (old, new), tenants in groups.items():
        old_from, new_from = built_from_of(old, known), built_from_of(new, known)
        comparison, reason = _comparison(old, new, old_from, new_from)
        out.append(Planned(tuple(tenants), old, new, old_from, new_from, comparison, reason))
    return out


def _comparison(
    old: str, new: str, old_from: BuiltFrom | None, new_from: BuiltFrom | None
) -> tuple[Comparison | None, str]:
    unknown = [
        _version(value)
        for value, origin in ((old, old_from), (new, new_from))
        if origin is None or origin.revision is None
    ]
    if unknown:
        which = " and ".join(unknown)
        return None, f"the commit {which} was built from is not recorded"
    assert old_from is not None and new_from is not None
    assert old_from.revision is not None and new_from.revision is not None
    if old_from.repository.lower() != new_from.repository.lower():
        return None, (
            f"built from different repositories ({old_from.repository} and {new_from.repository})"
        )
    if old_from.revision == new_from.revision:
        return None, f"both were built from {new_from.short}"
    return Comparison(new_from.repository, old_from.revision, new_from.revision), ""


# --- GitHub's comparison ------------------------------------------------------------------------


@dataclass(frozen=True)
class AppCommit:
    sha: str
    title: str  # the first line of the message, as written (escape before showing it)
    url: str
    author_login: str | None  # the GitHub account, when GitHub links the commit to one
    author_name: str  # the name in the commit, when it does not
    pull: int | None  # the pull request GitHub's merge title names


@dataclass(frozen=True)
class Compared:
    """GitHub's comparison of two commits, reduced to what is shown."""

    status: str  # ahead | behind | diverged | identical
    ahead_by: int
    behind_by: int
    total_commits: int
    commits: tuple[AppCommit, ...]  # the first MAX_COMMITS, oldest first
    html_url: str


def linked_pull(title: str) -> int | None:
    """The pull request a commit title names the way GitHub writes merge titles: ``Title (#12)``
    (squash) or ``Merge pull request #12 from owner/branch`` (merge commit). Free text such as
    "fixes #12" is not a link GitHub made, so it is not one here."""
    match = _SQUASH_RE.search(title) or _MERGE_RE.match(title)
    return int(match.group(1)) if match else None


def reduce_comparison(data: Mapping[str, Any], limit: int = MAX_COMMITS) -> Compared:
    """The fields shown from a ``GET /repos/{o}/{r}/compare/{base}...{head}`` answer."""
    commits: list[AppCommit] = []
    for raw in list(data.get("commits") or [])[:limit]:
        if not isinstance(raw, Mapping):
            continue
        meta = raw.get("commit") if isinstance(raw.get("commit"), Mapping) else {}
        assert isinstance(meta, Mapping)
        message = str(meta.get("message") or "")
        title = message.strip().splitlines()[0] if message.strip() else ""
        account = raw.get("author") if isinstance(raw.get("author"), Mapping) else None
        git_author = meta.get("author") if isinstance(meta.get("author"), Mapping) else {}
        assert isinstance(git_author, Mapping)
        login = account.get("login") if account is not None else None
        commits.append(
            AppCommit(
                sha=str(raw.get("sha") or ""),
                title=title,
                url=str(raw.get("html_url") or ""),
                author_login=str(login) if isinstance(login, str) and login else None,
                author_name=str(git_author.get("name") or ""),
                pull=linked_pull(title),
            )
        )
    return Compared(
        status=str(data.get("status") or ""),
        ahead_by=_count(data.get("ahead_by")),
        behind_by=_count(data.get("behind_by")),
        total_commits=_count(data.get("total_commits")),
        commits=tuple(commits),
        html_url=str(data.get("html_url") or ""),
    )


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def comparison_url(web_url: str, comparison: Comparison) -> str:
    """The web page of a comparison, as GitHub's ``html_url`` spells it."""
    c = comparison
    return f"{web_url.rstrip('/')}/{c.repository}/compare/{c.base}...{c.head}"


# --- judging ------------------------------------------------------------------------------------

Kind = Literal["changes", "rollback", "identical", "unknown", "unreadable", "elsewhere"]


@dataclass(frozen=True)
class AppChange:
    """What one move (shared by ``tenants``) changes in the application, or why that is not
    known. ``url`` is the full comparison (for a rollback: the commits it takes out)."""

    tenants: tuple[str, ...]
    old: str
    new: str
    kind: Kind
    repository: str | None = None
    comparison: Comparison | None = None
    compared: Compared | None = None
    url: str = ""
    reason: str = ""

    @property
    def rollback(self) -> bool:
        return self.kind == "rollback"


#: What the shell found for a comparison: GitHub's answer, or "unreadable" (404: the
#: repository does not exist or the installation cannot read it).
Found = Compared | Literal["unreadable"]


def judge(
    planned: Sequence[Planned], found: Mapping[Comparison, Found], web_url: str
) -> list[AppChange]:
    """Each planned move with GitHub's answer: commits, a rollback, or one line why not."""
    out: list[AppChange] = []
    for item in planned:
        comparison = item.comparison
        backwards = _older(item.new, item.old)
        if comparison is None:
            kind: Kind = "unknown"
            if item.reason.startswith("both were built"):
                kind = "identical"
            elif backwards:
                kind = "rollback"
            elif item.reason.startswith("built from different"):
                kind = "elsewhere"
            repo = item.new_from.repository if item.new_from is not None else None
            out.append(_change(item, kind, repository=repo, reason=item.reason))
            continue
        answer = found.get(comparison, "unreadable")
        url = comparison_url(web_url, comparison)
        if not isinstance(answer, Compared):
            out.append(
                _change(
                    item,
                    "rollback" if backwards else "unreadable",
                    repository=comparison.repository,
                    comparison=comparison,
                    url=url,
                    reason=f"the app cannot read {comparison.repository}",
                )
            )
            continue
        url = answer.html_url or url
        if answer.status == "identical":
            kind = "identical"
        elif answer.status == "behind":
            kind = "rollback"
            back = Comparison(comparison.repository, comparison.head, comparison.base)
            url = comparison_url(_web_of(answer.html_url, web_url, comparison), back)
        else:
            kind = "changes"
        out.append(
            _change(
                item,
                kind,
                repository=comparison.repository,
                comparison=comparison,
                compared=answer,
                url=url,
            )
        )
    return out


def _change(
    item: Planned,
    kind: Kind,
    *,
    repository: str | None = None,
    comparison: Comparison | None = None,
    compared: Compared | None = None,
    url: str = "",
    reason: str = "",
) -> AppChange:
    return AppChange(
        tenants=item.tenants,
        old=item.old,
        new=item.new,
        kind=kind,
        repository=repository,
        comparison=comparison,
        compared=compared,
        url=url,
        reason=reason,
    )


def _web_of(html_url: str, fallback: str, comparison: Comparison) -> str:
    """The web origin of GitHub's ``html_url`` (so a rollback link is on the same host)."""
    suffix = f"/{comparison.repository}/compare/"
    if suffix in html_url:
        return html_url.split(suffix, 1)[0]
    return fallback


def _older(new: str, old: str) -> bool:
    """The new image's tag is a lower version than the old one's (both versions)."""
    try:
        new_tag, old_tag = parse_image(new).tag, parse_image(old).tag
    except ImageRefError:
        return False
    return new_tag is not None and old_tag is not None and is_older(new_tag, old_tag)


def _version(value: str) -> str:
    try:
        ref = parse_image(value)
    except ImageRefError:
        return value
    return ref.tag or value
