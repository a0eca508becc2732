"""``python -m bot check PATH [--base REF]``: the fleet rules on a local checkout.

For platform teams' own CI or pre-commit: the policy must be valid and every input readable;
with ``--base`` the lineage rule also runs on the change since REF, with the upstream history
read from the local git repository (``git log REF -- path``), exactly as the bot reads it from
GitHub. Exit status 1 when there is an error.
"""

from __future__ import annotations

import dataclasses
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from bot.fleet.check import Finding, check_tree
from bot.fleet.inputs import InputError, read_input
from bot.fleet.layout import build_fleet
from bot.fleet.policy import DEFAULT_POLICY, POLICY_PATH, Policy, PolicyError, parse_policy
from bot.rules.consistency import classify, consistency_findings
from bot.rules.gate import FileChange, scope_of
from bot.rules.lineage import (
    Change,
    LineageReport,
    UpstreamHistory,
    ValueAt,
    deployments_of,
    evaluate_lineage,
    image_matcher,
)

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


def _image(path: str, data: bytes | None) -> str | None:
    if data is None:
        return None
    try:
        return read_input(path, data).image
    except InputError:
        return None


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


def local_history(root: Path, ref: str, path: str) -> list[ValueAt]:
    """The image in ``path`` at each commit of ``ref`` that touched it, newest first."""
    out = _git(root, "log", "--format=%H%x09%cI", ref, "--", path)
    history: list[ValueAt] = []
    for line in out.splitlines():
        sha, _, stamp = line.partition("\t")
        value = _image(path, _show(root, sha, path))
        history.append(ValueAt(sha, "", datetime.fromisoformat(stamp), value))
    return history


def lineage_since(root: Path, base: str, files: dict[str, bytes], policy: Policy) -> list[str]:
    """Lineage failures (plain lines) of the working tree's changes since ``base``."""
    status = _git(root, "diff", "--name-status", "--no-renames", base, "--", "clusters")
    changes: list[FileChange] = []
    for line in status.splitlines():
        code, _, path = line.partition("\t")
        kind = {"A": "added", "D": "removed"}.get(code[:1], "modified")
        changes.append(FileChange(path, kind, sha=None if kind == "removed" else "local"))
    base_paths = _git(root, "ls-tree", "-r", "--name-only", base).splitlines()
    fleet = build_fleet([*base_paths, *files], policy)
    scope = scope_of(changes, fleet, policy)
    failures: list[str] = []
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
        picked: list[Change] = []
        for item in scope.inputs:
            if item.environment != env.name:
                continue
            old = _image(item.path, _show(root, base, item.path))
            new = None if item.status == "removed" else _image(item.path, files.get(item.path))
            if new == old and item.status != "added":
                continue
            picked.append(Change(item.cluster, item.tenant, item.path, None, old, new))
        upstream: dict[tuple[str, str], list[UpstreamHistory]] = {}
        for change in picked:
            histories = []
            for cluster in fleet.clusters_of(upstream_env):
                upath = fleet.input_path(cluster, change.item)
                if upath is None:
                    continue
                history = local_history(root, base, upath)
                now_value = _image(upath, _show(root, base, upath))
                histories.append(
                    UpstreamHistory(cluster, change.item, deployments_of(history), now_value)
                )
            upstream[(change.cluster, change.item)] = histories
        report: LineageReport = evaluate_lineage(
            env, upstream_env, picked, upstream, now, image_matcher
        )
        for verdict in report.failures:
            failures.append(f"{verdict.change.path}: error: lineage: {verdict.reason}")
    return failures


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
