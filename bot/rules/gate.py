"""What a pull request touches, in the fleet's terms: environments, tenants, the policy.

From this the handlers know which rules apply: lineage for changed inputs of environments with
an upstream, approvals for every gated environment touched, automatic merge only when every
file lies in clusters of ``autoMerge`` environments.

The gate fails closed. Whatever the bot cannot place or cannot see makes every gate apply at
once: the policy itself, clusters no environment claims, files outside ``clusters/`` that the
policy does not name as ``ungated``, and every :class:`BlindSpot` (a change it could not see
whole, a file it could not read, a value it cannot trace). A blind spot also fails lineage
(nothing can vouch for what was not seen) and is listed in every check's summary.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from bot.fleet.layout import Fleet
from bot.fleet.policy import Policy

POLICY_DIR = ".github/"
#: How many links deep a change is followed (a link to a link to ...).
LINK_DEPTH = 8


@dataclass(frozen=True)
class FileChange:
    """One file of a PR, as ``GET /pulls/{n}/files`` lists it."""

    path: str
    status: str  # added | removed | modified | renamed | copied | changed | unchanged
    previous_path: str | None = None
    sha: str | None = None  # blob sha of the new content (None when removed)


@dataclass(frozen=True)
class InputChange:
    """A tenant input file the PR adds, changes or removes."""

    cluster: str
    tenant: str
    environment: str | None
    path: str
    status: str
    sha: str | None


BlindKind = Literal["incomplete", "unreadable", "link", "untraceable", "unknown"]


@dataclass(frozen=True)
class BlindSpot:
    """Part of a change the bot could not see or could not judge, and why.

    One is enough for the gate to fail closed: the PR counts as touching every gated
    environment, lineage fails, it is never merged automatically, and every check summary
    lists the blind spots. ``kind``: ``incomplete`` (the change could not be read whole),
    ``unreadable`` (a file that does not parse), ``link`` (a symlink or submodule),
    ``untraceable`` (a value lineage has no way to trace), ``unknown`` (anything else).
    """

    kind: BlindKind
    reason: str  # a sentence a person can act on
    path: str | None = None
    line: int | None = None


@dataclass(frozen=True)
class PulledIn:
    """A changed path that reaches ``environment`` because ``via`` (a kustomization or Flux
    Kustomization of one of its clusters, at ``line``) pulls in ``target``, which holds it."""

    path: str
    environment: str
    via: str
    line: int | None
    target: str  # the directory or file pulled in ("" is the whole repository)


@dataclass(frozen=True)
class Scope:
    environments: tuple[str, ...]  # every environment with a changed file, policy order
    gated: tuple[str, ...]  # environments whose rules apply, policy order
    touches_policy: bool  # anything under .github/
    unassigned: tuple[str, ...]  # files in clusters that belong to no environment
    outside: tuple[str, ...]  # files outside clusters/ and .github/ (gated: not ``ungated``)
    inputs: tuple[InputChange, ...]
    auto_merge: bool  # every file inside clusters of autoMerge environments
    ungated: tuple[str, ...] = ()  # files outside clusters/ the policy names ``ungated``
    blind_spots: tuple[BlindSpot, ...] = ()
    pulled_in: tuple[PulledIn, ...] = ()  # changes a gated cluster's kustomizations pull in

    @property
    def needs_gate(self) -> bool:
        return bool(self.gated)

    @property
    def every_gate(self) -> bool:
        """True when the rules of every gated environment apply (see the module docstring)."""
        return bool(self.touches_policy or self.unassigned or self.outside or self.blind_spots)


def with_blind_spots(scope: Scope, spots: Iterable[BlindSpot], policy: Policy) -> Scope:
    """``scope`` with more blind spots: every gate applies and nothing merges by itself."""
    new = tuple(spot for spot in spots if spot not in scope.blind_spots)
    if not new:
        return scope
    return replace(
        scope,
        blind_spots=scope.blind_spots + new,
        gated=tuple(e.name for e in policy.environments if e.gated),
        auto_merge=False,
    )


def tree_changes(old: Mapping[str, str], new: Mapping[str, str]) -> tuple[FileChange, ...]:
    """The changes from one tree's files (path -> blob SHA) to another's, sorted by path.

    What ``GET /pulls/{n}/files`` would list without its 3,000-file limit, except that a rename
    is a removal and an addition (each counts in its place, as a rename does).
    """
    out = [
        FileChange(path, "modified" if path in old else "added", sha=sha)
        for path, sha in new.items()
        if old.get(path) != sha
    ]
    out += [FileChange(path, "removed") for path in old if path not in new]
    return tuple(sorted(out, key=lambda change: change.path))


def file_changes(files: Iterable[Mapping[str, Any]]) -> tuple[FileChange, ...]:
    """``GET /pulls/{n}/files`` items as FileChange (unknown shapes are skipped)."""
    out: list[FileChange] = []
    for f in files:
        path = f.get("filename")
        if not isinstance(path, str):
            continue
        previous = f.get("previous_filename")
        sha = f.get("sha")
        out.append(
            FileChange(
                path=path,
                status=str(f.get("status") or "modified"),
                previous_path=previous if isinstance(previous, str) else None,
                sha=sha if isinstance(sha, str) and f.get("status") != "removed" else None,
            )
        )
    return tuple(out)


def scope_of(
    changes: Sequence[FileChange],
    fleet: Fleet,
    policy: Policy,
    blind_spots: Iterable[BlindSpot] = (),
) -> Scope:
    """Classify a PR's files. A rename counts in both its old and its new place."""
    touched: set[str] = set()
    unassigned: list[str] = []
    outside: list[str] = []
    ungated: list[str] = []
    inputs: list[InputChange] = []
    touches_policy = False
    auto = True
    for change in changes:
        paths = [change.path]
        if change.previous_path and change.previous_path != change.path:
            paths.append(change.previous_path)
        for path in paths:
            if path.startswith(POLICY_DIR):
                touches_policy = True
                auto = False
                continue
            loc = fleet.locate(path)
            if loc is None:
                (ungated if policy.is_ungated(path) else outside).append(path)
                auto = False
                continue
            if loc.environment is None:
                unassigned.append(path)
                auto = False
                continue
            touched.add(loc.environment)
            env = policy.environment(loc.environment)
            if env is None or not env.auto_merge:
                auto = False
            if loc.kind == "input" and loc.tenant is not None:
                removed = change.status == "removed" or path != change.path
                inputs.append(
                    InputChange(
                        cluster=loc.cluster,
                        tenant=loc.tenant,
                        environment=loc.environment,
                        path=path,
                        status="removed" if removed else change.status,
                        sha=None if removed else change.sha,
                    )
                )
    order = [e.name for e in policy.environments]
    environments = tuple(n for n in order if n in touched)
    gated_names = {e.name for e in policy.environments if e.gated}
    scope = Scope(
        environments=environments,
        gated=tuple(n for n in environments if n in gated_names),
        touches_policy=touches_policy,
        unassigned=tuple(unassigned),
        outside=tuple(outside),
        inputs=tuple(inputs),
        auto_merge=auto and bool(changes),
        ungated=tuple(ungated),
    )
    if scope.every_gate:
        # The rules themselves, clusters no rule covers, files whose reach the bot cannot
        # tell (a shared directory prod includes): every gate applies together.
        scope = replace(scope, gated=tuple(n for n in order if n in gated_names))
    return with_blind_spots(scope, blind_spots, policy)


def with_pulled_in(
    scope: Scope,
    changes: Sequence[FileChange],
    fleet: Fleet,
    policy: Policy,
    pulled: Iterable[PulledIn],
) -> Scope:
    """``scope`` with the changes that also reach other environments through their clusters'
    kustomizations counted there: those environments' gates apply (a changed tenant input is
    traced as theirs too), and nothing merges by itself."""
    new = tuple(p for p in pulled if p not in scope.pulled_in)
    if not new:
        return scope
    order = [e.name for e in policy.environments]
    gated_names = {e.name for e in policy.environments if e.gated}
    touched = set(scope.environments) | {p.environment for p in new}
    gated = set(scope.gated) | {p.environment for p in new if p.environment in gated_names}
    by_path: dict[str, FileChange] = {}
    for change in changes:
        by_path.setdefault(change.path, change)
        if change.previous_path:
            by_path.setdefault(change.previous_path, change)
    inputs = list(scope.inputs)
    known = {(i.environment, i.path) for i in inputs}
    for item in new:
        loc = fleet.locate(item.path)
        found = by_path.get(item.path)
        if loc is None or loc.kind != "input" or loc.tenant is None or found is None:
            continue
        if (item.environment, item.path) in known:
            continue
        known.add((item.environment, item.path))
        removed = found.status == "removed" or item.path != found.path
        inputs.append(
            InputChange(
                cluster=loc.cluster,
                tenant=loc.tenant,
                environment=item.environment,
                path=item.path,
                status="removed" if removed else found.status,
                sha=None if removed else found.sha,
            )
        )
    return replace(
        scope,
        environments=tuple(n for n in order if n in touched),
        gated=tuple(n for n in order if n in gated),
        inputs=tuple(inputs),
        auto_merge=False,
        pulled_in=scope.pulled_in + new,
    )


# --- symlinks -------------------------------------------------------------------------------


def link_target(path: str, content: bytes) -> str | None:
    """The repository path a symlink at ``path`` points to; None outside the repository."""
    text = content.decode("utf-8", "replace")
    if not text or text.startswith("/"):
        return None
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(path), text))
    if resolved == ".." or resolved.startswith("../") or resolved == ".":
        return None
    return resolved


def through_links(
    changed: Iterable[str], targets: Mapping[str, str | None]
) -> list[tuple[str, str, str]]:
    """``(path, link, target)`` for every path where a changed file also shows up, because a
    symlink (or a chain of them, up to :data:`LINK_DEPTH`) points at it or a directory above."""
    out: list[tuple[str, str, str]] = []
    seen = set(changed)
    frontier = sorted(seen)
    for _ in range(LINK_DEPTH):
        found: list[str] = []
        for path in frontier:
            for link, target in targets.items():
                if target is None or not (path == target or path.startswith(target + "/")):
                    continue
                shown = link + path[len(target) :]
                if shown not in seen:
                    seen.add(shown)
                    found.append(shown)
                    out.append((shown, link, target))
        if not found:
            break
        frontier = found
    return out
