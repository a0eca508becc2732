"""Lineage: a value may enter an environment only after it ran in the environment upstream.

Pure: the shell reads the changed values from the pull request and the history of the same item
in every upstream cluster from the default branch; this module decides, and every verdict carries
its reason and the upstream deployments that justify it, so the check summary and the annotations
are rendered from the verdict.

The tracked value is generic: an image string for tenant inputs, a Flux source ``ref.tag`` for
sources. A :data:`Matcher` says whether a new value is the same artifact as an upstream one.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from bot.fleet.images import ImageRefError, parse_image, same_repository
from bot.fleet.policy import Environment

__all__ = [
    "Change",
    "ChangeVerdict",
    "Deployment",
    "Evidence",
    "LineageReport",
    "Matcher",
    "UpstreamHistory",
    "ValueAt",
    "VerdictKind",
    "deployments_of",
    "describe_item",
    "evaluate_lineage",
    "exact_matcher",
    "format_duration",
    "history_suffices",
    "image_matcher",
    "status_commits_needed",
]

Matcher = Callable[[str, str], bool]
"""``(new_value, upstream_value) -> same artifact?``"""

VerdictKind = Literal[
    "verified",  # ran upstream, with evidence
    "removed",  # the value was removed: nothing to trace
    "not-required",  # the environment has no upstream
    "item-not-upstream",  # no upstream cluster has the tenant / source
    "never-ran",  # the upstream never had the value
    "repository-changed",  # a different image repository that never ran upstream
    "not-everywhere",  # upstreamClusters: all, and some cluster never had it
    "soak-too-short",  # ran upstream, but not for minSoak
    "status-missing",  # ran upstream, but no successful requireUpstreamStatus status
    "history-unknown",  # the upstream runs it, but no commit history vouches for it
]

# Kinds of failure where the value simply was not upstream (the title says "never ran").
NEVER_RAN_KINDS: frozenset[VerdictKind] = frozenset(
    {"item-not-upstream", "never-ran", "repository-changed", "not-everywhere"}
)


@dataclass(frozen=True)
class Change:
    """One tracked value changed by the pull request in one cluster."""

    cluster: str
    item: str  # tenant name, or "source:<namespace>/<name>"
    path: str  # the file holding the value
    line: int | None  # 1-based line of the value, for annotations
    old: str | None  # None: a new tenant input
    new: str | None  # None: removed
    key: str = "image"  # which value of the tenant's input (a promoteKeys entry)


@dataclass(frozen=True)
class Deployment:
    """One period during which a value was in place upstream on the default branch."""

    value: str
    commit_sha: str  # the commit that brought it there
    commit_url: str
    since: datetime  # that commit's date
    until: datetime | None  # when a later commit replaced it; None = still there
    later_commits: tuple[str, ...] = ()  # other commits while it stayed (status evidence)


@dataclass(frozen=True)
class UpstreamHistory:
    """What one upstream cluster had for an item over time."""

    cluster: str
    item: str
    deployments: Sequence[Deployment]  # newest first; empty when the history is unknown
    current: str | None  # the value on the default branch now; None: the cluster lacks the item


@dataclass(frozen=True)
class Evidence:
    """An upstream deployment that vouches for a change."""

    cluster: str
    value: str
    commit_sha: str
    commit_url: str
    since: datetime
    until: datetime | None
    status_context: str | None  # the successful status that satisfied requireUpstreamStatus


@dataclass(frozen=True)
class ChangeVerdict:
    """The judgement of one change, with a plain sentence either way."""

    change: Change
    ok: bool
    reason: str
    evidence: tuple[Evidence, ...]  # one per upstream cluster that counts
    upstream_now: Mapping[str, str | None]  # upstream cluster -> its value now
    kind: VerdictKind


@dataclass(frozen=True)
class LineageReport:
    """All changes of one environment, judged against its upstream environment.

    The rule's parameters travel with the verdicts so the summary can state the rule applied.
    """

    environment: str
    upstream: str | None
    verdicts: tuple[ChangeVerdict, ...]
    upstream_clusters: Literal["any", "all"] = "any"
    min_soak: timedelta | None = None
    require_upstream_status: str | None = None
    key: str = "image"  # the value traced (a promoteKeys entry; sources: their tag)

    @property
    def ok(self) -> bool:
        return all(verdict.ok for verdict in self.verdicts)

    @property
    def failures(self) -> tuple[ChangeVerdict, ...]:
        return tuple(verdict for verdict in self.verdicts if not verdict.ok)


def image_matcher(new: str, upstream: str) -> bool:
    """Same image: same repository (canonical, case-insensitive) and tag, and the same digest
    whenever either value pins one. What runs is the digest: ``app:v1@sha256:e…`` did not run
    upstream because ``app:v1`` did (the tag may have named another digest there), only where
    upstream pinned that very digest. A value that does not parse as an image matches nothing."""
    try:
        new_ref, upstream_ref = parse_image(new), parse_image(upstream)
    except ImageRefError:
        return False
    if not same_repository(new_ref, upstream_ref) or new_ref.tag != upstream_ref.tag:
        return False
    if new_ref.digest is None and upstream_ref.digest is None:
        return True
    if new_ref.digest is None or upstream_ref.digest is None:
        return False
    return new_ref.digest.lower() == upstream_ref.digest.lower()


def exact_matcher(new: str, upstream: str) -> bool:
    """Same characters: for values without structure, such as a Git tag."""
    return new == upstream


def evaluate_lineage(
    environment: Environment,
    upstream_env: str | None,
    changes: Sequence[Change],
    upstream: Mapping[tuple[str, str], Sequence[UpstreamHistory]],
    now: datetime,
    matcher: Matcher = image_matcher,
    statuses: Mapping[str, Mapping[str, str]] | None = None,
) -> LineageReport:
    """Judge every change of ``environment`` against the histories of its upstream clusters.

    ``upstream`` maps the (cluster, item) of a change to the histories of that item in every
    upstream cluster that has it. ``statuses`` (commit sha -> {context: state}) must be given when
    the environment requires an upstream status; :func:`status_commits_needed` says for which
    commits.
    """
    if environment.require_upstream_status is not None and statuses is None:
        raise ValueError(
            f"{environment.name} requires upstream status {environment.require_upstream_status!r}:"
            " pass the statuses of status_commits_needed()"
        )
    judge = _Judge(environment, upstream_env, now, matcher, statuses or {})
    verdicts = tuple(
        judge.change(change, upstream.get((change.cluster, change.item), ())) for change in changes
    )
    return LineageReport(
        environment=environment.name,
        upstream=upstream_env,
        verdicts=verdicts,
        upstream_clusters=environment.upstream_clusters,
        min_soak=environment.min_soak,
        require_upstream_status=environment.require_upstream_status,
    )


def status_commits_needed(
    environment: Environment,
    changes: Sequence[Change],
    upstream: Mapping[tuple[str, str], Sequence[UpstreamHistory]],
    matcher: Matcher = image_matcher,
) -> set[str]:
    """The upstream commits whose statuses :func:`evaluate_lineage` will look at: those of every
    deployment of a changed value. Empty when the environment requires no status."""
    if environment.require_upstream_status is None:
        return set()
    needed: set[str] = set()
    for change in changes:
        if change.new is None:
            continue
        for history in upstream.get((change.cluster, change.item), ()):
            for deployment in history.deployments:
                if matcher(change.new, deployment.value):
                    needed.add(deployment.commit_sha)
                    needed.update(deployment.later_commits)
    return needed


def describe_item(item: str) -> str:
    """``tenant payment-app`` or ``source flux-system/platform`` (from ``source:<ns>/<name>``)."""
    if item.startswith("source:"):
        return f"source {item.removeprefix('source:')}"
    return f"tenant {item}"


def format_duration(duration: timedelta) -> str:
    """``45m``, ``3h 12m``, ``24h``, ``2d 4h``: the two largest units, in the policy's spelling.

    Days start at two, so a ``minSoak: 24h`` reads back as ``24h``.
    """
    seconds = max(int(duration.total_seconds()), 0)
    days, hours = (seconds // 86400, seconds % 86400 // 3600)
    if days < 2:
        days, hours = 0, seconds // 3600
    parts = [(days, "d"), (hours, "h"), (seconds % 3600 // 60, "m"), (seconds % 60, "s")]
    while len(parts) > 1 and parts[0][0] == 0:
        parts.pop(0)
    shown = [f"{amount}{unit}" for amount, unit in parts[:2] if amount]
    return " ".join(shown) or "0s"


@dataclass(frozen=True)
class _Finding:
    """What one upstream cluster says about a new value: evidence, or why not."""

    cluster: str
    evidence: Evidence | None
    kind: VerdictKind
    detail: str  # a clause about this cluster, empty for plain "never ran"


class _Judge:
    """One environment's lineage rule with the clock and statuses fixed."""

    def __init__(
        self,
        environment: Environment,
        upstream_env: str | None,
        now: datetime,
        matcher: Matcher,
        statuses: Mapping[str, Mapping[str, str]],
    ) -> None:
        self.environment = environment
        self.upstream_env = upstream_env
        self.now = now
        self.matcher = matcher
        self.statuses = statuses

    def change(self, change: Change, histories: Sequence[UpstreamHistory]) -> ChangeVerdict:
        upstream_now = {history.cluster: history.current for history in histories}

        def verdict(
            kind: VerdictKind, reason: str, evidence: Sequence[Evidence] = ()
        ) -> ChangeVerdict:
            ok = kind in ("verified", "removed", "not-required")
            return ChangeVerdict(change, ok, reason, tuple(evidence), upstream_now, kind)

        if change.new is None:
            return verdict("removed", f"{change.old} was removed; a removal needs no lineage")
        if self.upstream_env is None:
            reason = f"{self.environment.name} has no upstream environment; nothing to trace"
            return verdict("not-required", reason)
        present = [h for h in histories if h.current is not None or h.deployments]
        if not present:
            reason = f"no {self.upstream_env} cluster has {describe_item(change.item)}"
            return verdict("item-not-upstream", reason)

        findings = [self._search(change.new, history) for history in present]
        evidence = [f.evidence for f in findings if f.evidence is not None]
        if self.environment.upstream_clusters == "all":
            # Clusters that dropped the item long ago do not vote; if none has it now, all do.
            holders = {h.cluster for h in present if h.current is not None}
            required = [f for f in findings if f.cluster in holders] or findings
        else:
            required = findings
        lacking = [f for f in required if f.evidence is None]
        satisfied = not lacking if self.environment.upstream_clusters == "all" else bool(evidence)
        if satisfied:
            return verdict("verified", self._success(change.new, evidence), evidence)
        return verdict(*self._failure(change, findings, lacking, bool(evidence)))

    def _search(self, new: str, history: UpstreamHistory) -> _Finding:
        """The newest deployment of ``new`` in this cluster that meets soak and status rules."""
        cluster = history.cluster
        matches = [d for d in history.deployments if self.matcher(new, d.value)]
        if not matches:
            # Runs there now but no recorded deployment brought it: the history is incomplete.
            if history.current is not None and self.matcher(new, history.current):
                detail = f"{cluster} runs it now, but no commit in its known history brought it"
                return _Finding(cluster, None, "history-unknown", detail)
            return _Finding(cluster, None, "never-ran", "")
        soaked = [d for d in matches if self._soaked(d)]
        if not soaked:
            longest = max(self._lasted(d) for d in matches)
            minimum = format_duration(self.environment.min_soak or timedelta())
            detail = (
                f"its longest run in {cluster} lasted {format_duration(longest)}, "
                f"less than the minimum soak of {minimum}"
            )
            return _Finding(cluster, None, "soak-too-short", detail)
        for deployment in soaked:
            context = self._status(deployment)
            if context is not None or self.environment.require_upstream_status is None:
                return _Finding(cluster, _evidence(cluster, deployment, context), "verified", "")
        detail = (
            f"no commit that kept it in {cluster} has a successful status "
            f"matching {self.environment.require_upstream_status}"
        )
        return _Finding(cluster, None, "status-missing", detail)

    def _lasted(self, deployment: Deployment) -> timedelta:
        return (deployment.until or self.now) - deployment.since

    def _soaked(self, deployment: Deployment) -> bool:
        minimum = self.environment.min_soak
        return minimum is None or self._lasted(deployment) >= minimum

    def _status(self, deployment: Deployment) -> str | None:
        """The first context matching requireUpstreamStatus in state success, on any commit of the
        deployment (the one that brought the value, or a later one while it stayed)."""
        pattern = self.environment.require_upstream_status
        if pattern is None:
            return None
        for sha in (deployment.commit_sha, *deployment.later_commits):
            for context, state in sorted(self.statuses.get(sha, {}).items()):
                if state == "success" and fnmatch.fnmatchcase(context, pattern):
                    return context
        return None

    def _success(self, new: str, evidence: Sequence[Evidence]) -> str:
        clusters = _join([item.cluster for item in evidence])
        if all(item.until is not None for item in evidence):
            return f"{new} ran in {clusters} before (a rollback to a value {self.upstream_env} had)"
        return f"{new} ran in {clusters}"

    def _failure(
        self,
        change: Change,
        findings: Sequence[_Finding],
        lacking: Sequence[_Finding],
        partly: bool,
    ) -> tuple[VerdictKind, str]:
        """The kind and sentence of a failure, most specific first."""
        new = change.new
        up = self.upstream_env
        details = [f.detail for f in lacking if f.detail]
        specific = next((f.kind for f in lacking if f.kind != "never-ran"), None)
        if partly:
            reason = (
                f"{new} ran in {_join([f.cluster for f in findings if f.evidence])} but not in "
                f"{_join([f.cluster for f in lacking])}, and upstreamClusters is all"
            )
            return specific or "not-everywhere", _with_details(reason, details)
        if specific is not None:
            return specific, _with_details(f"{new} did not qualify in {up}", details)
        changed = self._repository_change(change.old, new)
        if changed is not None:
            reason = f"the image repository changed from {changed}, and {new} never ran in {up}"
            return "repository-changed", reason
        return "never-ran", f"{new} never ran in {up}"

    def _repository_change(self, old: str | None, new: str | None) -> str | None:
        """``a to b`` when both values are images of different repositories; the notion of a
        repository only exists for images, so only the image matcher asks."""
        if self.matcher is not image_matcher or old is None or new is None:
            return None
        try:
            old_ref, new_ref = parse_image(old), parse_image(new)
        except ImageRefError:
            return None
        if same_repository(old_ref, new_ref):
            return None
        return f"{old_ref.repository} to {new_ref.repository}"


def _evidence(cluster: str, deployment: Deployment, context: str | None) -> Evidence:
    return Evidence(
        cluster=cluster,
        value=deployment.value,
        commit_sha=deployment.commit_sha,
        commit_url=deployment.commit_url,
        since=deployment.since,
        until=deployment.until,
        status_context=context,
    )


def _join(names: Sequence[str]) -> str:
    if len(names) <= 1:
        return "".join(names)
    return f"{', '.join(names[:-1])} and {names[-1]}"


def _with_details(reason: str, details: Sequence[str]) -> str:
    return f"{reason}: {'; '.join(details)}" if details else reason


@dataclass(frozen=True)
class ValueAt:
    """The value of an item in one commit of its file's history (None: absent or unreadable)."""

    commit_sha: str
    commit_url: str
    date: datetime
    value: str | None


def history_suffices(
    seen: Sequence[ValueAt],
    wanted: Sequence[str],
    matcher: Matcher,
    *,
    min_soak: timedelta | None,
    now: datetime,
) -> bool:
    """Whether a file's history read so far (newest first) already holds the evidence the soak
    rule can use, so that older commits need not be read: a *complete* run of a wanted value
    (an older commit with another value shows where it began) that lasted at least
    ``min_soak``. A run that was too short does not settle it: an older run of the same value
    may have soaked. (Whether a run had a required status is only known once the statuses are
    read; the caller reads the whole history when that rule fails.)"""
    if not seen:
        return False
    deployments = deployments_of(seen)
    oldest_value = seen[-1].value
    for i, deployment in enumerate(deployments):
        last = i == len(deployments) - 1
        if last and deployment.value == oldest_value:
            break  # the run that reaches the oldest commit read may have begun earlier
        if not any(matcher(w, deployment.value) for w in wanted):
            continue
        lasted = (deployment.until or now) - deployment.since
        if min_soak is None or lasted >= min_soak:
            return True
    return False


def deployments_of(history: Sequence[ValueAt]) -> list[Deployment]:
    """Group a file's history (newest first) into periods of one value, newest first."""
    runs: list[list[ValueAt]] = []
    for at in history:
        if runs and runs[-1][0].value == at.value:
            runs[-1].append(at)
        else:
            runs.append([at])
    deployments: list[Deployment] = []
    for i, run in enumerate(runs):
        value = run[0].value
        if value is None:
            continue
        first = run[-1]  # the oldest commit of the run brought the value
        until = runs[i - 1][-1].date if i > 0 else None
        deployments.append(
            Deployment(
                value=value,
                commit_sha=first.commit_sha,
                commit_url=first.commit_url,
                since=first.date,
                until=until,
                later_commits=tuple(at.commit_sha for at in run[:-1]),
            )
        )
    return deployments
