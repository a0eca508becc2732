"""What a pull request touches, in the fleet's terms: environments, tenants, the policy.

From this the handlers know which rules apply: lineage for changed inputs of environments with
an upstream, approvals for every gated environment touched, automatic merge only when every
file lies in clusters of ``autoMerge`` environments.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bot.fleet.layout import Fleet
from bot.fleet.policy import Policy

POLICY_DIR = ".github/"


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


@dataclass(frozen=True)
class Scope:
    environments: tuple[str, ...]  # every environment with a changed file, policy order
    gated: tuple[str, ...]  # environments whose rules apply, policy order
    touches_policy: bool  # anything under .github/
    unassigned: tuple[str, ...]  # files in clusters that belong to no environment
    outside: tuple[str, ...]  # files outside clusters/ and .github/
    inputs: tuple[InputChange, ...]
    auto_merge: bool  # every file inside clusters of autoMerge environments

    @property
    def needs_gate(self) -> bool:
        return bool(self.gated)


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


def scope_of(changes: Sequence[FileChange], fleet: Fleet, policy: Policy) -> Scope:
    """Classify a PR's files. A rename counts in both its old and its new place."""
    touched: set[str] = set()
    unassigned: list[str] = []
    outside: list[str] = []
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
                outside.append(path)
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
    if touches_policy or unassigned:
        # The rules themselves, or clusters no rule covers: every gate applies together.
        gated = tuple(n for n in order if n in gated_names)
    else:
        gated = tuple(n for n in environments if n in gated_names)
    return Scope(
        environments=environments,
        gated=gated,
        touches_policy=touches_policy,
        unassigned=tuple(unassigned),
        outside=tuple(outside),
        inputs=tuple(inputs),
        auto_merge=auto and bool(changes),
    )
