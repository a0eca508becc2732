"""The fleet repo's layout: from the paths of its tree, which clusters, environments and tenants.

The layout is the seed's: ``clusters/<cluster>/tenants/<tenant>/input.yaml`` (``input.yml`` is
accepted too). A cluster belongs to the first policy environment whose ``clusters`` globs match its
directory name; environments without ``clusters`` claim the clusters whose name up to the first
``-`` is their name (``dev-use1-01`` -> ``dev``). Globs *override* the prefix rule for their
environment: ``prod`` with ``clusters: [prod-eu-*]`` does not also claim ``prod-us-01``. A tenant
is the same tenant in every cluster where its directory name appears.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from functools import cached_property
from sys import intern
from typing import Literal

from bot.fleet.policy import Policy

__all__ = [
    "INPUT_NAMES",
    "FileLocation",
    "Fleet",
    "build_fleet",
    "environment_for_cluster",
    "is_safe_name",
]

INPUT_NAMES = ("input.yaml", "input.yml")  # in order of preference when a tenant has both
_SYNC_NAMES = ("sync.yaml", "sync.yml")
_SAFE_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}", re.ASCII)

FileKind = Literal["input", "sync", "tenant-file", "base", "cluster-file"]


@dataclass(frozen=True)
class FileLocation:
    """What a path in the fleet repo is: which cluster (and environment, tenant) it belongs to."""

    path: str
    cluster: str
    environment: str | None
    tenant: str | None
    kind: FileKind


@dataclass(frozen=True)
class Fleet:
    """Clusters with their environment, and the input file of every (cluster, tenant)."""

    clusters: Mapping[str, str | None]
    inputs: Mapping[tuple[str, str], str]
    policy: Policy | None = field(default=None, repr=False, compare=False)

    def environment_of(self, cluster: str) -> str | None:
        """The environment of a cluster; for one not in the tree, what the policy would say."""
        if cluster in self.clusters:
            return self.clusters[cluster]
        return environment_for_cluster(cluster, self.policy) if self.policy else None

    def clusters_of(self, environment: str) -> tuple[str, ...]:
        """The clusters of ``environment``, sorted."""
        return self._clusters_by_environment.get(environment, ())

    def tenants_of(self, environment: str) -> tuple[str, ...]:
        """The tenants with an input file in at least one cluster of ``environment``, sorted."""
        return self._tenants_by_environment.get(environment, ())

    def tenants(self) -> tuple[str, ...]:
        """Every tenant with an input file somewhere, sorted."""
        return tuple(sorted({tenant for _, tenant in self.inputs}))

    def input_path(self, cluster: str, tenant: str) -> str | None:
        """The path of the tenant's input file in that cluster, or None."""
        return self.inputs.get((cluster, tenant))

    def locate(self, path: str) -> FileLocation | None:
        """What ``path`` is; None for files outside ``clusters/<cluster>/``."""
        parts = path.split("/")
        if len(parts) < 3 or parts[0] != "clusters" or not parts[1] or not all(parts[2:]):
            return None
        cluster = parts[1]
        environment = self.environment_of(cluster)
        if parts[2] == "tenants" and len(parts) >= 5:
            tenant = parts[3]
            kind: FileKind = "tenant-file"
            if len(parts) == 5 and parts[4] in INPUT_NAMES:
                kind = "input"
            elif len(parts) == 5 and parts[4] in _SYNC_NAMES:
                kind = "sync"
            return FileLocation(path, cluster, environment, tenant, kind)
        kind = "base" if parts[2] == "base" and len(parts) > 3 else "cluster-file"
        return FileLocation(path, cluster, environment, None, kind)

    @cached_property
    def _clusters_by_environment(self) -> dict[str, tuple[str, ...]]:
        grouped: dict[str, list[str]] = {}
        for cluster, environment in self.clusters.items():
            if environment is not None:
                grouped.setdefault(environment, []).append(cluster)
        return {env: tuple(sorted(names)) for env, names in grouped.items()}

    @cached_property
    def _tenants_by_environment(self) -> dict[str, tuple[str, ...]]:
        grouped: dict[str, set[str]] = {}
        for cluster, tenant in self.inputs:
            environment = self.clusters.get(cluster)
            if environment is not None:
                grouped.setdefault(environment, set()).add(tenant)
        return {env: tuple(sorted(names)) for env, names in grouped.items()}


def build_fleet(paths: Iterable[str], policy: Policy) -> Fleet:
    """The fleet described by the tree's file paths (blob paths, as the git tree API lists them)."""
    cluster_names: set[str] = set()
    inputs: dict[tuple[str, str], str] = {}
    for path in paths:
        if not path.startswith("clusters/"):
            continue
        parts = path.split("/")
        if len(parts) < 3 or not parts[1]:
            continue
        cluster_names.add(parts[1])
        if len(parts) == 5 and parts[2] == "tenants" and parts[4] in INPUT_NAMES and parts[3]:
            # one string per cluster and tenant name, not one per file: at 100,000 inputs
            # that is most of a fleet's memory
            key = (intern(parts[1]), intern(parts[3]))
            # input.yaml wins over input.yml whatever order the tree lists them in
            if key not in inputs or parts[4] == INPUT_NAMES[0]:
                inputs[key] = path
    clusters = {name: environment_for_cluster(name, policy) for name in sorted(cluster_names)}
    return Fleet(clusters=clusters, inputs=inputs, policy=policy)


def environment_for_cluster(cluster: str, policy: Policy) -> str | None:
    """The environment of a cluster directory under ``policy`` (rules: module docstring)."""
    for env in policy.environments:
        if env.clusters is not None and any(fnmatchcase(cluster, g) for g in env.clusters):
            return env.name
    by_prefix = policy.environment(cluster.split("-", 1)[0])
    if by_prefix is not None and by_prefix.clusters is None:
        return by_prefix.name
    return None


def is_safe_name(name: str) -> bool:
    """True when ``name`` (typed by a person: a cluster, tenant or environment) is a plain name.

    Letters, digits, ``.``, ``_`` and ``-`` (ASCII only, so no look-alikes), starting with a letter
    or digit, at most 128 characters, and no ``..``: nothing that could be a path, a glob, or a
    different directory that merely looks the same.
    """
    return isinstance(name, str) and _SAFE_NAME_RE.fullmatch(name) is not None and ".." not in name
