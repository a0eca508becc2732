"""``python -m bot check PATH [--base REF]``: the fleet rules on a local checkout.

For platform teams' own CI or pre-commit: the policy must be valid and every input readable;
with ``--base`` the lineage rule also runs on the change since REF (every ``promoteKeys``
value and every Flux source's tag, as the gate traces them), with the upstream history read
from the local git repository (``git log REF -- path``) as the bot reads it from GitHub.
Exit status 1 when there is an error.
"""

from __future__ import annotations

import dataclasses
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from bot.fleet.check import Finding, check_tree
from bot.fleet.inputs import TenantInput, read_input_cached
from bot.fleet.layout import Fleet, build_fleet
from bot.fleet.policy import (
    DEFAULT_POLICY,
    POLICY_PATH,
    Environment,
    Policy,
    PolicyError,
    parse_policy,
)
from bot.fleet.sources import repo_of_url
from bot.rules import kustomize, sources
from bot.rules.consistency import classify, consistency_findings
from bot.rules.gate import FileChange, PulledIn, Scope, scope_of, with_pulled_in
from bot.rules.lineage import (
    Change,
    LineageReport,
    UpstreamHistory,
    ValueAt,
    deployments_of,
    evaluate_lineage,
    exact_matcher,
    image_matcher,
)
from bot.rules.tracing import value_changes, value_extractor

Extract = Callable[[str, bytes], str | None]

SUFFIXES = (".yaml", ".yml")


class GitError(Exception):
    pass


def read_tree(root: Path) -> dict[str, bytes]:
    """The files the rules read: the policy and every YAML file under clusters/."""
    files: dict[str, bytes] = {}
    policy = root / POLICY_PATH
    if policy.is_file():
        files[POLICY_PATH] = policy.read_bytes()
    clusters = root / "clusters"
    if clusters.is_dir():
        for path in sorted(clusters.rglob("*")):
            if path.is_file() and path.suffix in SUFFIXES:
                files[path.relative_to(root).as_posix()] = path.read_bytes()
    return files


def _git(root: Path, *args: str) -> str:
    try:
        done = subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, check=True, text=False
        )
    except FileNotFoundError:
        raise GitError("git is not installed") from None
    except subprocess.CalledProcessError as exc:
        message = exc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise GitError(message[-1] if message else f"git {' '.join(args)} failed") from None
    return done.stdout.decode("utf-8", "replace")


def _show(root: Path, ref: str, path: str) -> bytes | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(root), "show", f"{ref}:{path}"], capture_output=True, check=False
        )
    except FileNotFoundError:
        raise GitError("git is not installed") from None
    return done.stdout if done.returncode == 0 else None


def _input(path: str, data: bytes | None) -> TenantInput | None:
    if data is None:
        return None
    parsed = read_input_cached(path, data)
    return parsed if isinstance(parsed, TenantInput) else None


def _files_at(root: Path, ref: str) -> dict[str, bytes]:
    """The YAML files under clusters/ at a git ref."""
    names = _git(root, "ls-tree", "-r", "--name-only", ref, "--", "clusters").splitlines()
    out: dict[str, bytes] = {}
    for name in names:
        if name.endswith(SUFFIXES):
            data = _show(root, ref, name)
            if data is not None:
                out[name] = data
    return out


def local_history(
    root: Path, ref: str, path: str, extract: Callable[[str, bytes], str | None]
) -> list[ValueAt]:
    """The traced value of ``path`` (``extract``) at each commit of ``ref`` that touched it,
    newest first."""
    out = _git(root, "log", "--format=%H%x09%cI", ref, "--", path)
    history: list[ValueAt] = []
    for line in out.splitlines():
        sha, _, stamp = line.partition("\t")
        data = _show(root, sha, path)
        value = extract(path, data) if data is not None else None
        history.append(ValueAt(sha, "", datetime.fromisoformat(stamp), value))
    return history


def _history(
    root: Path, base: str, cluster: str, item: str, path: str, extract: Extract
) -> UpstreamHistory:
    history = local_history(root, base, path, extract)
    data = _show(root, base, path)
    now_value = extract(path, data) if data is not None else None
    return UpstreamHistory(cluster, item, deployments_of(history), now_value)


def lineage_since(root: Path, base: str, files: dict[str, bytes], policy: Policy) -> list[str]:
    """Lineage failures (plain lines) of the working tree's changes since ``base``: every
    ``promoteKeys`` value of every provider document, and every Flux source's tag, traced as
    the bot traces them (:mod:`bot.rules.tracing`, :mod:`bot.rules.sources`), with the
    upstream history read from the local repository instead of GitHub."""
    status = _git(root, "diff", "--name-status", "--no-renames", base, "--", "clusters")
    changes: list[FileChange] = []
    for line in status.splitlines():
        code, _, path = line.partition("\t")
        kind = {"A": "added", "D": "removed"}.get(code[:1], "modified")
        changes.append(FileChange(path, kind, sha=None if kind == "removed" else "local"))
    base_paths = _git(root, "ls-tree", "-r", "--name-only", base).splitlines()
    fleet = build_fleet([*base_paths, *files], policy)
    scope = scope_of(changes, fleet, policy)
    scope, failures = _with_references(root, base, fleet, policy, scope)
    now = datetime.now(UTC)
    for env_name in scope.environments:
        env = policy.environment(env_name)
        if env is None or env.upstream is None:
            continue
        upstream_env: str = env.upstream
        if env.require_upstream_status is not None:
            failures.append(
                f"note: {env.name} requires upstream status {env.require_upstream_status!r}, "
                "which only the bot can see on GitHub; checked without it"
            )
            env = dataclasses.replace(env, require_upstream_status=None)
        by_key: dict[str, list[Change]] = {}
        for item in scope.inputs:
            if item.environment != env.name:
                continue
            old = _input(item.path, _show(root, base, item.path))
            if item.status == "removed":
                continue  # a removal needs no lineage
            new = _input(item.path, files.get(item.path))
            if new is None:
                continue  # check_tree reported the broken file
            moved, spots = value_changes(
                item.cluster,
                item.tenant,
                item.path,
                old,
                new,
                policy.promote_keys,
                added=item.status == "added",
            )
            failures += [f"{spot.path}: error: lineage: {spot.reason}" for spot in spots]
            for change in moved:
                by_key.setdefault(change.key, []).append(change)
        for key, picked in sorted(by_key.items(), key=lambda kv: kv[0] != "image"):
            extract = value_extractor(key)
            upstream: dict[tuple[str, str], list[UpstreamHistory]] = {}
            for change in picked:
                upstream[(change.cluster, change.item)] = [
                    _history(root, base, cluster, change.item, upath, extract)
                    for cluster in fleet.clusters_of(upstream_env)
                    if (upath := fleet.input_path(cluster, change.item)) is not None
                ]
            matcher = image_matcher if key == "image" else exact_matcher
            report = evaluate_lineage(env, upstream_env, picked, upstream, now, matcher)
            failures += _failures(report)
        failures += _source_lineage(root, base, files, fleet, env, changes, now)
    return failures


def _with_references(
    root: Path, base: str, fleet: Fleet, policy: Policy, scope: Scope
) -> tuple[Scope, list[str]]:
    """``scope`` with the changes since ``base`` that a gated cluster's kustomizations (or
    Flux Kustomizations) pull in counted in that cluster's environment, as the gate counts
    them (:mod:`bot.rules.kustomize`, on the working tree); a reference that cannot be
    placed is an error, as it is a blind spot at the gate."""
    gated = {e.name for e in policy.environments if e.gated}
    roots = kustomize.roots_of(fleet.clusters, gated)
    if not roots:
        return scope, []
    listed = _git(root, "ls-files", "--cached", "--others", "--exclude-standard", "-z")
    paths = sorted(p for p in listed.split("\0") if p and (root / p).is_file())

    def references(path: str) -> kustomize.FileReferences:
        return kustomize.read_references(path, (root / path).read_bytes())

    found = kustomize.reach(paths, references, roots, _own_repository(root))
    failures = [
        f"{u.path}:{u.line or 1}: error: {u.reason}; {u.environment} (cluster `{u.cluster}`) "
        "applies it, so which changes reach it cannot be told"
        for u in found.unresolved
    ]
    status = _git(root, "diff", "--name-status", "--no-renames", base)
    everywhere: list[FileChange] = []
    for line in status.splitlines():
        code, _, path = line.partition("\t")
        kind = {"A": "added", "D": "removed"}.get(code[:1], "modified")
        everywhere.append(FileChange(path, kind, sha=None if kind == "removed" else "local"))
    matches = kustomize.pulled_in([c.path for c in everywhere], found)
    pulled = [PulledIn(path, ref.environment, ref.via, None, ref.target) for path, ref in matches]
    return with_pulled_in(scope, everywhere, fleet, policy, pulled), failures


def _own_repository(root: Path) -> tuple[str, str, str] | None:
    """(host, owner, name) of the checkout's ``origin``, so that a remote reference to the
    fleet repository itself is followed like a path; None without one."""
    try:
        url = _git(root, "remote", "get-url", "origin").strip()
    except GitError:
        return None
    return repo_of_url(url)


def _source_lineage(
    root: Path,
    base: str,
    files: dict[str, bytes],
    fleet: Fleet,
    env: Environment,
    changes: list[FileChange],
    now: datetime,
) -> list[str]:
    """The Flux sources of ``env`` whose tag the working tree moves, traced upstream; sources
    that come to follow what cannot be traced (a branch, a commit, a semver range) fail."""
    assert env.upstream is not None
    failures: list[str] = []
    picked: list[Change] = []
    for change in changes:
        loc = fleet.locate(change.path)
        if loc is None or loc.environment != env.name:
            continue
        if change.path not in sources.candidate_paths([change.path]):
            continue
        old = sources.sources_in(change.path, loc.cluster, _show(root, base, change.path))
        new_data = None if change.status == "removed" else files.get(change.path)
        new = sources.sources_in(change.path, loc.cluster, new_data)
        for source, reason in sources.untraceable_moves(old, new, None):
            failures.append(f"{source.path}: error: lineage: {reason}")
        for sid in sorted(set(old) | set(new)):
            before = sources.value_of(old[sid]) if sid in old else None
            after = sources.value_of(new[sid]) if sid in new else None
            if before == after or after is None:
                continue
            item = sources.item_of(sid)
            picked.append(Change(loc.cluster, item, change.path, None, before, after))
    if not picked:
        return failures
    upstream_clusters = set(fleet.clusters_of(env.upstream))
    paths = _git(root, "ls-tree", "-r", "--name-only", base, "--", "clusters").splitlines()
    wanted = [p for p in sources.candidate_paths(paths) if p.split("/")[1] in upstream_clusters]
    present = sources.collect(
        fleet, {p: data for p in wanted if (data := _show(root, base, p)) is not None}
    )
    upstream: dict[tuple[str, str], list[UpstreamHistory]] = {}
    for moved in picked:
        sid = moved.item.removeprefix(sources.PREFIX)
        upstream[(moved.cluster, moved.item)] = [
            _history(root, base, s.cluster, moved.item, s.path, sources.extractor(sid))
            for s in present.in_clusters(upstream_clusters)
            if s.id == sid
        ]
    report = evaluate_lineage(env, env.upstream, picked, upstream, now, exact_matcher)
    return failures + _failures(report)


def _failures(report: LineageReport) -> list[str]:
    return [f"{v.change.path}: error: lineage: {v.reason}" for v in report.failures]


def run_check(root: Path, *, base: str | None, out: TextIO) -> int:
    if not root.is_dir():
        out.write(f"error: {root} is not a directory\n")
        return 2
    files = read_tree(root)
    policy_bytes = files.get(POLICY_PATH)
    findings: list[Finding] = check_tree(files, policy_bytes)
    try:
        policy = parse_policy(policy_bytes) if policy_bytes is not None else DEFAULT_POLICY
    except PolicyError:
        policy = DEFAULT_POLICY  # check_tree reported it
    consistency = consistency_findings(files, policy)
    if base is not None:
        try:
            before = consistency_findings(_files_at(root, base), policy)
        except GitError as exc:
            out.write(f"error: --base {base}: {exc}\n")
            return 2
        new_errors, listed = classify(before, consistency)
        consistency = [*new_errors, *listed]
    seen = {(f.path, f.message) for f in findings}
    findings += [f for f in consistency if (f.path, f.message) not in seen]
    findings.sort(key=lambda f: (f.path, f.line or 0))
    for finding in findings:
        out.write(f"{finding}\n")
    errors = sum(1 for f in findings if f.severity == "error")
    if base is not None:
        try:
            lines = lineage_since(root, base, files, policy)
        except GitError as exc:
            out.write(f"error: --base {base}: {exc}\n")
            return 2
        for line in lines:
            out.write(line + "\n")
        errors += sum(1 for line in lines if ": error: " in line)
    inputs = sum(1 for p in files if p.endswith(("/input.yaml", "/input.yml")))
    warnings = sum(1 for f in findings if f.severity == "warning")
    out.write(f"{inputs} input file(s) checked: {errors} error(s), {warnings} warning(s)\n")
    return 1 if errors else 0
