"""The promotion gate: ``promotion/lineage`` and ``promotion/approvals`` on every fleet PR.

Each handler gathers facts through the gateway, asks the pure rules for verdicts, renders them,
and publishes the check runs. The policy is always read from the base branch, never from the PR,
so a PR cannot loosen the rules that judge it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from gidgethub import routing, sansio

from bot.fleet.inputs import InputError, TenantInput
from bot.fleet.layout import Fleet
from bot.fleet.policy import POLICY_PATH, Environment, Policy, PolicyError
from bot.github import discovery
from bot.github.checkruns import APPROVALS, FLEET, LINEAGE, WINDOW, DesiredCheck, publish
from bot.github.context import Context
from bot.github.facts import NotAFleetRepo, RepoFacts
from bot.handlers import appchanges, window
from bot.handlers.fleetcheck import fleet_check
from bot.handlers.payload import field as pfield
from bot.handlers.visibility import Seen, see_pull
from bot.rules import sources
from bot.rules.approvals import (
    ApprovalFacts,
    ApprovalVerdict,
    Review,
    combine_approvals,
    evaluate_approvals,
)
from bot.rules.gate import FileChange, InputChange, Scope, file_changes
from bot.rules.lineage import (
    Change,
    Deployment,
    LineageReport,
    UpstreamHistory,
    ValueAt,
    deployments_of,
    evaluate_lineage,
    exact_matcher,
    history_suffices,
    image_matcher,
    status_commits_needed,
)
from bot.rules.people import People, people_behind
from bot.rules.tracing import traced_value, value_changes, value_extractor
from bot.texts import markers
from bot.texts.summaries import (
    Annotation,
    CheckOutput,
    render_approvals,
    render_lineage,
    render_not_gated,
)

router = routing.Router()

PR_ACTIONS = ("opened", "synchronize", "reopened", "edited", "ready_for_review")
REVIEW_ACTIONS = ("submitted", "edited", "dismissed")


@dataclass
class GateOutcome:
    """What the gate concluded for one PR head (used by automatic merge)."""

    head_sha: str
    scope: Scope | None
    lineage: str | None = None  # "success" | "failure" | None (not evaluated)
    approvals: str | None = None  # "success" | "pending" | "failure" | None
    consistency: str | None = None
    window: str | None = None  # "success" | "failure" | None (not evaluated)
    policy: Policy | None = None
    fleet: Fleet | None = None
    notes: list[str] = field(default_factory=list)
    #: What the approvals check judged (for the review requests, handlers/reviewers.py).
    approval_verdicts: tuple[ApprovalVerdict, ...] = ()
    approval_facts: ApprovalFacts | None = None


# --- events ---------------------------------------------------------------------------------


@router.register("pull_request_review")
async def on_review(event: sansio.Event, ctx: Context) -> None:
    if event.data.get("action") not in REVIEW_ACTIONS:
        return
    pr = pfield(event.data, "pull_request", dict)
    # A review changes who approved, never what ran upstream: only approvals are re-evaluated.
    await gate_pull(ctx, facts_for(ctx, event.data), pr, parts=("approvals",))


@router.register("check_run", action="rerequested")
async def on_check_run_rerequested(event: sansio.Event, ctx: Context) -> None:
    run = pfield(event.data, "check_run", dict)
    if run.get("name") not in (LINEAGE, APPROVALS, WINDOW):
        return
    identity = await ctx.identity()
    if (run.get("app") or {}).get("id") not in (None, identity.id):
        return
    await regate_head(ctx, facts_for(ctx, event.data), pfield(run, "head_sha", str))


@router.register("check_suite", action="rerequested")
async def on_check_suite_rerequested(event: sansio.Event, ctx: Context) -> None:
    suite = pfield(event.data, "check_suite", dict)
    identity = await ctx.identity()
    if (suite.get("app") or {}).get("id") not in (None, identity.id):
        return
    await regate_head(ctx, facts_for(ctx, event.data), pfield(suite, "head_sha", str))


def facts_for(ctx: Context, data: dict[str, Any]) -> RepoFacts:
    repo = pfield(data, "repository.full_name", str)
    branch = pfield(data, "repository.default_branch", str, None)
    return RepoFacts(ctx, repo, default_branch=branch)


async def regate_head(ctx: Context, facts: RepoFacts, head_sha: str) -> None:
    """Re-evaluate, from fresh data, every open PR whose head is ``head_sha``."""
    ctx.fresh = True
    pulls = await ctx.gateway.open_pulls(facts.repo)
    for pr in pulls:
        if (pr.get("head") or {}).get("sha") == head_sha:
            await gate_pull(ctx, facts, pr)


async def regate_open_pulls(ctx: Context, facts: RepoFacts, parts: Sequence[str]) -> int:
    """Re-evaluate every open PR of a repository (after a push, a membership change...)."""
    pulls = await ctx.gateway.open_pulls(facts.repo)
    for pr in pulls:
        await gate_pull(ctx, facts, pr, parts=parts)
    return len(pulls)


# --- the gate -------------------------------------------------------------------------------


async def scope_for(ctx: Context, facts: RepoFacts, pr: dict[str, Any]) -> Scope | None:
    """What a PR touches (cheap, memoised); None when the repo is no fleet repo or its policy
    is broken."""
    base_head = await facts.head(pfield(pr, "base.ref", str))
    try:
        policy = await facts.policy(base_head)
    except (NotAFleetRepo, PolicyError):
        return None
    return (await see_pull(ctx, facts, pr, policy, base_head)).scope


async def gate_pull(
    ctx: Context,
    facts: RepoFacts,
    pr: dict[str, Any],
    *,
    parts: Sequence[str] = ("lineage", "approvals", "fleet", "window"),
) -> GateOutcome | None:
    """Evaluate and publish the gate's checks for one PR; None when the repo is no fleet repo."""
    if pr.get("state", "open") != "open":
        return None
    repo = facts.repo
    if not await discovery.is_fleet_repo(ctx, repo, facts.known_default_branch):
        return None
    head_sha = pfield(pr, "head.sha", str)
    base_ref = pfield(pr, "base.ref", str)
    base_head = await facts.head(base_ref)
    try:
        policy = await facts.policy(base_head)
    except NotAFleetRepo:
        return None
    except PolicyError as exc:
        await publish(ctx, repo, head_sha, policy_error_checks(exc, parts))
        return GateOutcome(
            head_sha, None, "failure", "failure", "failure", "failure", notes=[str(exc)]
        )
    seen = await see_pull(ctx, facts, pr, policy, base_head)
    outcome = GateOutcome(
        head_sha, seen.scope, policy=policy, fleet=seen.fleet, notes=list(seen.notes)
    )
    desired = await judge(ctx, facts, policy, pr, seen, base_head, base_head, parts, outcome)
    await publish(ctx, repo, head_sha, desired)
    return outcome


async def judge(
    ctx: Context,
    facts: RepoFacts,
    policy: Policy,
    pr: dict[str, Any],
    seen: Seen,
    base: str,
    pr_base: str,
    parts: Sequence[str],
    outcome: GateOutcome,
) -> list[DesiredCheck]:
    """The gate's verdicts on a change as ``seen`` against commit ``base``, with ``pr``'s
    reviews and overrides (its commits against ``pr_base``): a pull request's change, or a
    merge group's against its parent (``bot.handlers.mergequeue``). Recorded in ``outcome``."""
    files, fleet, scope = seen.files, seen.fleet, seen.scope
    desired: list[DesiredCheck] = []
    if "lineage" in parts:
        check = await lineage_check(ctx, facts, policy, fleet, scope, files, base, notes=seen.notes)
        check = await window.with_overrides(ctx, facts, policy, pr, "lineage", check)
        outcome.lineage = check.conclusion
        desired.append(check)
    if "approvals" in parts:
        check = await approvals_check(
            ctx, facts, policy, scope, pr, pr_base, outcome=outcome, notes=seen.notes
        )
        outcome.approvals = check.conclusion or "pending"
        desired.append(check)
    if "fleet" in parts:
        check = await fleet_check(facts, policy, fleet, scope, files, base)
        outcome.consistency = check.conclusion
        desired.append(check)
    if "window" in parts:
        check = await window.window_check(ctx, facts, policy, scope, pr)
        outcome.window = check.conclusion
        desired.append(check)
    return desired


async def pull_files(
    ctx: Context, repo: str, number: int, head_sha: str, base_sha: str
) -> tuple[FileChange, ...]:
    key = ("pr-files", repo, number, head_sha, base_sha)
    memo = ctx.services.caches.derived
    hit = memo.get(key)
    if hit is None:
        hit = file_changes(await ctx.gateway.pull_files(repo, number))
        memo[key] = hit
    assert isinstance(hit, tuple)
    return hit


def policy_error_checks(exc: PolicyError, parts: Sequence[str]) -> list[DesiredCheck]:
    """A broken policy stops the gate: both checks fail, naming the file, line and problem."""
    summary = (
        f"**The promotion policy cannot be read, so nothing in this repository is gated or "
        f"promoted until it is fixed.**\n\n`{exc.path}` line {exc.line or '?'}: {exc.message}\n\n"
        f"Fix `{POLICY_PATH}` on the default branch; the checks run again on the next push."
    )
    annotations: tuple[Annotation, ...] = ()
    if exc.line:
        annotations = (
            Annotation(exc.path, exc.line, exc.line, "failure", exc.message, "Invalid policy"),
        )
    output = CheckOutput("The promotion policy is invalid", summary, "", annotations)
    pairs = ((LINEAGE, "lineage"), (APPROVALS, "approvals"), (FLEET, "fleet"), (WINDOW, "window"))
    names = [n for n, part in pairs if part in parts]
    return [DesiredCheck(name, "failure", output) for name in names]


# --- lineage --------------------------------------------------------------------------------


async def lineage_check(
    ctx: Context,
    facts: RepoFacts,
    policy: Policy,
    fleet: Fleet,
    scope: Scope,
    files: Sequence[FileChange],
    base_head: str,
    *,
    notes: Sequence[str] = (),
) -> DesiredCheck:
    """``promotion/lineage``: every traced value of every environment with an upstream ran
    there first; fails on any blind spot, as nothing can vouch for what was not judged."""
    spots = scope.blind_spots
    envs = [
        policy.environment(name)
        for name in scope.environments
        if (e := policy.environment(name)) is not None and e.upstream is not None
    ]
    traced = [e for e in envs if e is not None]
    if not traced and not spots:
        reason = no_lineage_reason(scope)
        return DesiredCheck(LINEAGE, "success", render_not_gated(reason, notes=notes))
    default_head = await facts.head()
    images: dict[str, list[Change]] = {}
    for item in scope.inputs:
        env_name = item.environment
        if env_name is None or env_name not in {e.name for e in traced}:
            continue
        images.setdefault(env_name, []).extend(
            await value_changes_of(facts, item, base_head, policy.promote_keys)
        )
    reports = await lineage_reports(
        ctx,
        facts,
        fleet,
        traced,
        images,
        files,
        base_head,
        history_head=default_head,
        now=datetime.now(UTC),
    )
    repo_url = f"{ctx.settings.github_url}/{facts.repo}"
    if not reports and not spots:
        reason = (
            "No traced value or blueprint version changed in "
            + ", ".join(e.name for e in traced)
            + ": nothing to trace."
        )
        return DesiredCheck(LINEAGE, "success", render_not_gated(reason, notes=notes))
    output = render_lineage(reports, repo_url=repo_url, notes=notes, blind_spots=spots)
    moved = {env: [c for c in cs if c.key == "image"] for env, cs in images.items()}
    section = await appchanges.lineage_section(ctx, facts, fleet, policy, moved, default_head)
    output = appchanges.with_section(output, section)
    ok = all(r.ok for r in reports) and not spots
    return DesiredCheck(LINEAGE, "success" if ok else "failure", output)


def no_lineage_reason(scope: Scope) -> str:
    if not scope.environments:
        return "No environment changed: nothing to trace."
    return (
        "No environment with an upstream changed ("
        + ", ".join(scope.environments)
        + " only): nothing to trace."
    )


async def value_changes_of(
    facts: RepoFacts, item: InputChange, base_head: str, keys: Sequence[str]
) -> list[Change]:
    """The traced values (every ``promoteKeys`` entry of every provider document) a changed
    input moves. A file that cannot be read, or a value that cannot be traced, moves nothing
    here: :func:`bot.handlers.visibility.see_pull` made it a blind spot already."""
    old_input = await facts.tenant_input(base_head, item.path)
    old = old_input if isinstance(old_input, TenantInput) else None
    if item.status == "removed" or item.sha is None:
        if old is None:
            return []
        return [
            Change(item.cluster, item.tenant, item.path, None, old.image, None)
        ]  # a removal needs no lineage; one row says so
    new = await facts.input_by_blob(item.path, item.sha)
    if isinstance(new, InputError):
        return []
    changes, _ = value_changes(
        item.cluster, item.tenant, item.path, old, new, keys, added=item.status == "added"
    )
    return changes


async def input_change(
    facts: RepoFacts,
    item: InputChange,
    base_head: str,
    notes: list[str],
    broken: list[Annotation],
) -> Change | None:
    old_input = await facts.tenant_input(base_head, item.path)
    old = old_input.image if isinstance(old_input, TenantInput) else None
    if item.status == "removed" or item.sha is None:
        return Change(item.cluster, item.tenant, item.path, None, old, None)
    new_input = await facts.input_by_blob(item.path, item.sha)
    if isinstance(new_input, InputError):
        notes.append(f"`{item.path}` cannot be read: {new_input.message}")
        broken.append(
            Annotation(
                item.path,
                new_input.line or 1,
                new_input.line or 1,
                "failure",
                new_input.message,
                "This input file cannot be read",
            )
        )
        return None
    new = new_input.image
    if new == old and item.status != "added":
        return None  # the image did not change: other values need no lineage
    span = new_input.span("image")
    return Change(item.cluster, item.tenant, item.path, span.line if span else None, old, new)


async def lineage_reports(
    ctx: Context,
    facts: RepoFacts,
    fleet: Fleet,
    envs: Sequence[Environment],
    images: Mapping[str, Sequence[Change]],
    files: Sequence[FileChange],
    base_head: str,
    *,
    history_head: str,
    now: datetime,
) -> list[LineageReport]:
    """The lineage verdicts of a change: its image changes (``images``, per environment) and
    its Flux source changes (read from ``files`` against ``base_head``), judged against the
    upstream history up to ``history_head`` with the clock at ``now``. The check uses the
    default branch's head and the time now; the audit uses a merge's parent and its time."""
    reports: list[LineageReport] = []
    for env in envs:
        by_key: dict[str, list[Change]] = {}
        for change in images.get(env.name, ()):
            by_key.setdefault(change.key, []).append(change)
        for key, mine in sorted(by_key.items(), key=lambda item: item[0] != "image"):
            matcher = image_matcher if key == "image" else exact_matcher
            # First the history of the few upstream clusters that run the value now: that is
            # where evidence usually is, and a large fleet has hundreds of upstream clusters.
            # Only when that does not settle it is every upstream cluster's history read.
            narrow = env.upstream_clusters == "any"
            reading = Reading(env.min_soak, now)
            upstream = await upstream_histories(
                facts, fleet, env, mine, history_head, reading, narrow=narrow, key=key
            )
            report = await judge_lineage(ctx, facts, env, mine, upstream, matcher, now)
            if narrow and not report.ok:
                upstream = await upstream_histories(
                    facts, fleet, env, mine, history_head, reading, key=key
                )
                report = await judge_lineage(ctx, facts, env, mine, upstream, matcher, now)
            if _status_missing(report):
                # The newest runs lacked the status: an older run may have had it.
                whole = Reading(env.min_soak, now, whole=True)
                upstream = await upstream_histories(
                    facts, fleet, env, mine, history_head, whole, key=key
                )
                report = await judge_lineage(ctx, facts, env, mine, upstream, matcher, now)
            reports.append(replace(report, key=key))
        blueprints = await source_changes(facts, fleet, env, files, base_head)
        if blueprints:
            reading = Reading(env.min_soak, now)
            upstream = await source_histories(facts, fleet, env, blueprints, history_head, reading)
            report = await judge_lineage(ctx, facts, env, blueprints, upstream, exact_matcher, now)
            if _status_missing(report):
                whole = Reading(env.min_soak, now, whole=True)
                upstream = await source_histories(
                    facts, fleet, env, blueprints, history_head, whole
                )
                report = await judge_lineage(
                    ctx, facts, env, blueprints, upstream, exact_matcher, now
                )
            reports.append(report)
    return reports


@dataclass(frozen=True)
class Reading:
    """How far back an upstream file's history is read: until a run of the wanted value that
    lasted ``min_soak`` (at the clock ``now``) is complete, or (``whole``) to the limit."""

    min_soak: timedelta | None
    now: datetime
    whole: bool = False


def _status_missing(report: LineageReport) -> bool:
    return any(verdict.kind == "status-missing" for verdict in report.failures)


async def judge_lineage(
    ctx: Context,
    facts: RepoFacts,
    env: Environment,
    changes: Sequence[Change],
    upstream: dict[tuple[str, str], list[UpstreamHistory]],
    matcher: Callable[[str, str], bool],
    now: datetime,
) -> LineageReport:
    """The lineage rule for one environment, with the statuses it needs fetched first."""
    statuses = None
    if env.require_upstream_status is not None:
        upstream = await with_branch_commits(facts, upstream, now)
        needed = status_commits_needed(env, changes, upstream, matcher)
        statuses = await statuses_of(ctx, facts.repo, needed)
    return evaluate_lineage(env, env.upstream, changes, upstream, now, matcher, statuses)


async def source_changes(
    facts: RepoFacts,
    fleet: Fleet,
    env: Environment,
    files: Sequence[FileChange],
    base_head: str,
) -> list[Change]:
    """Flux sources whose tracked value (repository and tag) the PR changes in ``env``."""
    changes: list[Change] = []
    for change in files:
        if change.path not in sources.candidate_paths([change.path]):
            continue
        loc = fleet.locate(change.path)
        if loc is None or loc.environment != env.name:
            continue
        old = sources.sources_in(change.path, loc.cluster, await facts.file(base_head, change.path))
        new_data = None
        if change.sha is not None and change.status != "removed":
            new_data = await facts.gateway.blob(facts.repo, change.sha)
        new = sources.sources_in(change.path, loc.cluster, new_data)
        for sid in sorted(set(old) | set(new)):
            before = sources.value_of(old[sid]) if sid in old else None
            after = sources.value_of(new[sid]) if sid in new else None
            if before == after or (after is None and sid in new):
                continue  # unchanged, or not pinned by a tag (not promotable, not traced)
            line = _line_of_tag(new_data, new[sid].tag) if sid in new else None
            changes.append(
                Change(loc.cluster, sources.item_of(sid), change.path, line, before, after)
            )
    return changes


def _line_of_tag(data: bytes | None, tag: str | None) -> int | None:
    if data is None or tag is None:
        return None
    for number, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
        if line.strip().startswith(("tag:", "name:")) and tag in line:
            return number
    return None


async def source_histories(
    facts: RepoFacts,
    fleet: Fleet,
    env: Environment,
    changes: Sequence[Change],
    default_head: str,
    reading: Reading,
) -> dict[tuple[str, str], list[UpstreamHistory]]:
    """For each changed source, its history in every upstream cluster that has it."""
    assert env.upstream is not None
    upstream_clusters = set(fleet.clusters_of(env.upstream))
    tree = await facts.tree(default_head)
    paths = [
        p for p in sources.candidate_paths(tree.paths()) if p.split("/")[1] in upstream_clusters
    ]
    present = sources.collect(fleet, await facts.files(default_head, paths))
    result: dict[tuple[str, str], list[UpstreamHistory]] = {}
    for change in changes:
        sid = change.item.removeprefix(sources.PREFIX)
        wanted = [c.new for c in changes if c.item == change.item and c.new is not None]
        jobs = []
        for source in present.in_clusters(upstream_clusters):
            if source.id == sid:
                jobs.append(
                    _history(
                        facts,
                        source.cluster,
                        change.item,
                        source.path,
                        default_head,
                        wanted,
                        sources.extractor(sid),
                        exact_matcher,
                        sources.value_of(source),
                        reading,
                    )
                )
        result[(change.cluster, change.item)] = list(await asyncio.gather(*jobs))
    return result


#: With ``narrow``, how many upstream clusters running the value now have their history read.
NARROW_CLUSTERS = 3


async def upstream_histories(
    facts: RepoFacts,
    fleet: Fleet,
    env: Environment,
    changes: Sequence[Change],
    default_head: str,
    reading: Reading,
    *,
    narrow: bool = False,
    key: str = "image",
) -> dict[tuple[str, str], list[UpstreamHistory]]:
    """Each changed tenant's history of its ``key`` value in every upstream cluster that has
    it. ``narrow`` reads the history only of a few clusters that run a wanted value now; the
    others appear with their current value and no history (enough for ``upstreamClusters:
    any``)."""
    assert env.upstream is not None
    extract = value_extractor(key)
    matcher = image_matcher if key == "image" else exact_matcher
    upstream_clusters = fleet.clusters_of(env.upstream)
    by_tenant: dict[str, list[UpstreamHistory]] = {}
    result: dict[tuple[str, str], list[UpstreamHistory]] = {}
    for change in changes:
        if change.item not in by_tenant:
            wanted = [c.new for c in changes if c.item == change.item and c.new is not None]
            jobs = []
            picked = 0
            for cluster in upstream_clusters:
                path = fleet.input_path(cluster, change.item)
                if path is not None:
                    current = await facts.tenant_input(default_head, path)
                    now = current_value(current, key)
                    runs_it = now is not None and any(matcher(w, now) for w in wanted)
                    if narrow and (not runs_it or picked >= NARROW_CLUSTERS):
                        jobs.append(_known(cluster, change.item, now))
                        continue
                    picked += 1
                    jobs.append(
                        _history(
                            facts,
                            cluster,
                            change.item,
                            path,
                            default_head,
                            wanted,
                            extract,
                            matcher,
                            now,
                            reading,
                        )
                    )
            by_tenant[change.item] = list(await asyncio.gather(*jobs))
        result[(change.cluster, change.item)] = by_tenant[change.item]
    return result


def current_value(current: TenantInput | InputError | None, key: str) -> str | None:
    """A tenant's ``key`` value now, as lineage compares it (None: absent or unreadable)."""
    if not isinstance(current, TenantInput):
        return None
    return current.image if key == "image" else traced_value(current.values, key).text


async def _known(cluster: str, item: str, now: str | None) -> UpstreamHistory:
    """An upstream cluster whose history was not read: only what it runs now."""
    return UpstreamHistory(cluster, item, (), now)


async def _history(
    facts: RepoFacts,
    cluster: str,
    item: str,
    path: str,
    head: str,
    wanted: Sequence[str],
    extract: Callable[[str, bytes], str | None],
    matcher: Callable[[str, str], bool],
    current: str | None,
    reading: Reading,
) -> UpstreamHistory:
    def enough(seen: list[ValueAt]) -> bool:
        # Stop once a run of a wanted value that soaked long enough is complete.
        return history_suffices(seen, wanted, matcher, min_soak=reading.min_soak, now=reading.now)

    history = await facts.value_history(
        path, head, extract, enough=None if reading.whole else enough
    )
    return UpstreamHistory(cluster, item, deployments_of(history), current)


async def with_branch_commits(
    facts: RepoFacts, upstream: dict[tuple[str, str], list[UpstreamHistory]], now: datetime
) -> dict[tuple[str, str], list[UpstreamHistory]]:
    """Add every default-branch commit of each deployment's period: Flux posts its status on
    the revision it reconciled, which is the branch head at the time, not the file's commit."""
    out: dict[tuple[str, str], list[UpstreamHistory]] = {}
    for key, histories in upstream.items():
        enriched = []
        for h in histories:
            deployments = []
            for d in h.deployments:
                # a deployment still in place counts the commits up to ``now`` (the merge,
                # for the audit); its end stays open for the soak rule
                commits = await facts.branch_commits_between(d.since, d.until or now)
                extra = tuple(c for c in commits if c != d.commit_sha and c not in d.later_commits)
                deployments.append(
                    Deployment(
                        d.value,
                        d.commit_sha,
                        d.commit_url,
                        d.since,
                        d.until,
                        d.later_commits + extra,
                    )
                )
            enriched.append(UpstreamHistory(h.cluster, h.item, deployments, h.current))
        out[key] = enriched
    return out


async def statuses_of(ctx: Context, repo: str, commits: set[str]) -> dict[str, dict[str, str]]:
    async def one(sha: str) -> tuple[str, dict[str, str]]:
        data = await ctx.gateway.combined_status(repo, sha)
        return sha, {str(s.get("context")): str(s.get("state")) for s in data.get("statuses") or []}

    pairs = await asyncio.gather(*(one(sha) for sha in sorted(commits)))
    return dict(pairs)


# --- approvals ------------------------------------------------------------------------------


async def approvals_check(
    ctx: Context,
    facts: RepoFacts,
    policy: Policy,
    scope: Scope,
    pr: dict[str, Any],
    base_head: str,
    *,
    outcome: GateOutcome | None = None,
    notes: Sequence[str] = (),
) -> DesiredCheck:
    envs = [
        e for name in scope.gated if (e := policy.environment(name)) is not None and e.approvals
    ]
    if not envs:
        reason = "No approvals required: " + (
            ", ".join(scope.environments) + " only."
            if scope.environments
            else "no environment changed."
        )
        output = render_not_gated(
            reason, notes=[*scope_notes(scope), *notes], blind_spots=scope.blind_spots
        )
        return DesiredCheck(APPROVALS, "success", output)
    repo = facts.repo
    number = pfield(pr, "number", int)
    head_sha = pfield(pr, "head.sha", str)
    reviews_raw, (commits, unread) = await asyncio.gather(
        ctx.gateway.pull_reviews(repo, number),
        pull_commits(ctx, repo, number, head_sha, base_head),
    )
    identity = await ctx.identity()
    people = people_of(pr, commits, identity.bot_login, unread=unread)
    org = facts.owner
    teams = sorted({rule.team for env in envs for rule in env.approvals})
    members = await asyncio.gather(*(ctx.team_members(org, team) for team in teams))
    notes = list(notes)
    team_members: dict[str, frozenset[str]] = {}
    for team, who in zip(teams, members, strict=True):
        if who is None:
            notes.append(
                f"Team `@{org}/{team}` does not exist or the app cannot read it "
                "(it needs the Members: read permission): nobody can fill its slots."
            )
            who = frozenset()
        team_members[team] = who
    notes += scope_notes(scope)
    approval_facts = ApprovalFacts(
        head_sha=head_sha,
        reviews=[review_of(r) for r in reviews_raw],
        excluded=people.excluded,
        team_members=team_members,
        org=org,
        unattributed=people.unattributed,
        unread=people.unread,
    )
    verdicts: list[ApprovalVerdict] = [
        evaluate_approvals(env.name, env.approvals, approval_facts) for env in envs
    ]
    state = combine_approvals(verdicts)
    if outcome is not None:
        outcome.approval_verdicts, outcome.approval_facts = tuple(verdicts), approval_facts
    output = render_approvals(verdicts, org=org, notes=notes, blind_spots=scope.blind_spots)
    conclusion = {"success": "success", "failure": "failure"}.get(state)
    return DesiredCheck(APPROVALS, conclusion, output)  # type: ignore[arg-type]


def scope_notes(scope: Scope) -> list[str]:
    """Why every gate applies (or why some files need none), for the approvals summary."""
    notes: list[str] = []
    if scope.touches_policy:
        notes.append(
            "This pull request changes `.github/`: the approvals of every gated environment apply."
        )
    if scope.unassigned:
        notes.append(
            "Files in clusters that belong to no environment (every gate applies): "
            + _paths(scope.unassigned)
        )
    if scope.outside:
        notes.append(
            "Files outside `clusters/` (every gate applies: the bot cannot tell which clusters "
            "use them; name paths that need no gate under `ungated` in "
            f"`{POLICY_PATH}`): " + _paths(scope.outside)
        )
    if scope.ungated:
        notes.append("Files that need no gate (`ungated`): " + _paths(scope.ungated))
    return notes


def _paths(paths: Sequence[str], limit: int = 10) -> str:
    shown = ", ".join(f"`{p}`" for p in paths[:limit])
    return shown + (f" and {len(paths) - limit} more" if len(paths) > limit else "")


async def pull_commits(
    ctx: Context, repo: str, number: int, head_sha: str, base_sha: str
) -> tuple[list[dict[str, Any]], int]:
    """Every commit of the PR (against this base: a retargeted PR has other commits) and how
    many could not be read; memoised per head and base."""
    key = ("pr-commits", repo, number, head_sha, base_sha)
    memo = ctx.services.caches.derived
    hit = memo.get(key)
    if hit is None:
        hit = await ctx.gateway.all_pull_commits(repo, number, base_sha, head_sha)
        memo[key] = hit
    commits, unread = hit
    assert isinstance(commits, list) and isinstance(unread, int)
    return commits, unread


def people_of(
    pr: Mapping[str, Any],
    commits: Sequence[Mapping[str, Any]],
    bot_login: str,
    *,
    unread: int = 0,
) -> People:
    """Who never counts as an approver of ``pr``, and which commits nobody can be named for:
    the PR's author, commit authors and committers, the requester of a promotion."""
    author = (pr.get("user") or {}).get("login")
    body_requester = None
    if author and str(author).lower() == bot_login.lower():
        asked = markers.read_marker(pr.get("body")).get("requested_by")
        body_requester = asked if isinstance(asked, str) else None
    return people_behind(
        str(author) if author else None,
        [markers.commit_facts(commit) for commit in commits],
        bot_login,
        body_requester=body_requester,
        unread=unread,
    )


def review_of(raw: dict[str, Any]) -> Review:
    user = raw.get("user") or {}
    submitted = raw.get("submitted_at")
    return Review(
        id=int(raw.get("id") or 0),
        user=str(user.get("login") or "ghost"),
        user_type=str(user.get("type") or "User"),
        state=str(raw.get("state") or "COMMENTED"),
        commit_id=raw.get("commit_id"),
        submitted_at=(
            datetime.fromisoformat(str(submitted).replace("Z", "+00:00")) if submitted else None
        ),
        html_url=str(raw.get("html_url") or ""),
    )
