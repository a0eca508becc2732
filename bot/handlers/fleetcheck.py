"""``promotion/fleet``: is the fleet still wired right after this PR?

The consistency rules are local (a tenant's files, its cluster's base directory, the policy),
so only what a PR touches is judged: the changed tenants' directories with their cluster's base
directory, a whole cluster when its base or its own files change, everything when the policy
does; on the base branch and on base + the PR's changes. A finding present on both is
pre-existing (listed, does not fail): the rule can be adopted on a fleet that is not clean
yet. Only what the PR introduces fails the check.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from bot.concurrency import cpu
from bot.fleet.check import Finding
from bot.fleet.layout import Fleet
from bot.fleet.policy import Policy
from bot.github.checkruns import FLEET, DesiredCheck
from bot.github.facts import RepoFacts
from bot.rules.consistency import classify, consistency_findings
from bot.rules.gate import FileChange, Scope
from bot.texts.summaries import render_fleet

YAML = (".yaml", ".yml")


def touched_clusters(changes: Sequence[FileChange], fleet: Fleet, scope: Scope) -> list[str]:
    if scope.touches_policy:
        return sorted(fleet.clusters)  # the policy's secretName or environments may have moved
    clusters: set[str] = set()
    for change in changes:
        for path in (change.path, change.previous_path):
            loc = fleet.locate(path) if path else None
            if loc is not None:
                clusters.add(loc.cluster)
    return sorted(clusters)


def judged_prefixes(changes: Sequence[FileChange], fleet: Fleet, scope: Scope) -> tuple[str, ...]:
    """The directories whose files the rules must read for this PR."""
    if scope.touches_policy:
        return ("clusters/",)
    prefixes: set[str] = set()
    for change in changes:
        for path in (change.path, change.previous_path):
            loc = fleet.locate(path) if path else None
            if loc is None:
                continue
            if loc.tenant is not None:
                prefixes.add(f"clusters/{loc.cluster}/tenants/{loc.tenant}/")
                prefixes.add(f"clusters/{loc.cluster}/base/")
            else:  # a base file (shared secrets) or the cluster's own: all its tenants
                prefixes.add(f"clusters/{loc.cluster}/")
    return tuple(sorted(prefixes))


async def scoped_files(facts: RepoFacts, commit: str, prefixes: Sequence[str]) -> dict[str, bytes]:
    """Every YAML file under ``prefixes`` at ``commit`` (blobs are cached by SHA)."""
    tree = await facts.tree(commit)
    wanted = tuple(prefixes)
    paths = [p for p in tree.blobs if p.startswith(wanted) and p.endswith(YAML)]
    return await facts.files(commit, paths)


async def apply_changes(
    facts: RepoFacts,
    base: Mapping[str, bytes],
    changes: Sequence[FileChange],
    prefixes: Sequence[str],
) -> dict[str, bytes]:
    """The files as the merge would leave them: the base plus the PR's changes."""
    prefixes = tuple(prefixes)
    head = dict(base)
    wanted: list[FileChange] = []
    for change in changes:
        if change.previous_path and change.previous_path != change.path:
            head.pop(change.previous_path, None)
        if not change.path.startswith(prefixes) or not change.path.endswith(YAML):
            continue
        if change.status == "removed" or change.sha is None:
            head.pop(change.path, None)
        else:
            wanted.append(change)
    blobs = await facts.gateway.blobs(facts.repo, [c.sha for c in wanted if c.sha is not None])
    for change in wanted:
        if change.sha is not None:
            head[change.path] = blobs[change.sha]
    return head


async def fleet_check(
    facts: RepoFacts,
    policy: Policy,
    fleet: Fleet,
    scope: Scope,
    changes: Sequence[FileChange],
    base_head: str,
) -> DesiredCheck:
    clusters = touched_clusters(changes, fleet, scope)
    prefixes = judged_prefixes(changes, fleet, scope)
    base = await scoped_files(facts, base_head, prefixes)
    head = await apply_changes(facts, base, changes, prefixes)
    memo = facts.ctx.services.caches.derived
    tree = await facts.tree(base_head)
    base_key = ("consistency", tree.tree_sha, prefixes, id(policy))
    before: list[Finding] | None = memo.get(base_key)
    if before is None:
        # Parsing every file of the touched clusters is CPU work: in a thread, and once per
        # base tree (the base side is the same for every PR and every re-run).
        before = await cpu.run(consistency_findings, base, policy)
        memo[base_key] = before
    after = await cpu.run(consistency_findings, head, policy)
    new_errors, warnings = classify(before, after)
    output = render_fleet(new_errors, warnings, clusters=clusters, blind_spots=scope.blind_spots)
    # Consistency is judged on the files seen; a change not seen whole cannot pass.
    unseen = any(spot.kind == "incomplete" for spot in scope.blind_spots)
    return DesiredCheck(FLEET, "failure" if new_errors or unseen else "success", output)
