"""``python -m bot audit OWNER/REPO``: every change that reached an environment, judged again.

For an auditor: one record per merged pull request that changed the environment (who merged it,
what moved from which image to which, who asked for it, which approvals counted and which did not,
the upstream evidence), plus every commit that reached the environment without a pull request.
Records whose gate was not green at merge (an admin override, a direct push) come first.

Every verdict is re-derived with the gate's own pure rules and the gate's own fact gathering
(``bot.handlers.checks``), *as of the merge*: the policy at the merge commit's first parent,
reviews submitted before ``merged_at``, the upstream history up to that first parent, the clock
at ``merged_at``. Team membership is today's (GitHub keeps no history of it); the report says so.
Where the check run recorded on the merged head says something else, the record says so too.

Read-only: only GET requests (and, as the app, the installation token's POST).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO, TypeVar
from urllib.parse import quote

import aiohttp
import gidgethub
from cachetools import LRUCache, TTLCache

from bot.cli.auditreport import (
    AppLink,
    CheckAtMerge,
    FileRow,
    Format,
    Record,
    Rederived,
    Report,
    Requester,
    render,
)
from bot.fleet.inputs import InputError, TenantInput
from bot.fleet.layout import FileLocation, Fleet
from bot.fleet.policy import POLICY_PATH, Policy, PolicyError
from bot.github.appcommits import origins
from bot.github.auth import AppAuth
from bot.github.checkruns import APPROVALS, LINEAGE, WINDOW
from bot.github.client import ApiStats, GitHubClient, TransientGitHubError
from bot.github.context import AppIdentity, Caches, Context, Services
from bot.github.facts import NotAFleetRepo, RepoFacts
from bot.github.gateway import GatewayError, ObjectCache
from bot.handlers import window as windowfacts
from bot.handlers.checks import (
    input_change,
    lineage_reports,
    no_lineage_reason,
    people_of,
    pull_commits,
    review_of,
)
from bot.handlers.visibility import ChangeList, pull_change, reference_scope, see_files
from bot.rules.appchanges import ImageMove, comparison_url, plan
from bot.rules.approvals import ApprovalFacts, ApprovalVerdict, Review, combine_approvals
from bot.rules.approvals import evaluate_approvals as judge_approvals
from bot.rules.calendar import EmergencyFreeze, evaluate_calendar
from bot.rules.gate import BlindSpot, FileChange, InputChange, Scope, file_changes, scope_of
from bot.rules.lineage import (
    Change,
    LineageReport,
)
from bot.rules.overrides import Override, acknowledged, evaluate_overrides
from bot.rules.people import People
from bot.rules.tracing import value_changes
from bot.settings import (
    CREDENTIAL_NAMES,
    Settings,
    SettingsError,
    load_settings,
    private_key_from_env,
)
from bot.texts import calendar as caltext
from bot.texts import markers
from bot.texts.summaries import Annotation

__all__ = [
    "AuditError",
    "AuditServices",
    "Auditor",
    "check_at_merge",
    "chronological",
    "disagreements",
    "gate_exceptions",
    "main",
    "parse_when",
    "run",
]

log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")

#: Records judged at the same time (each is a dozen requests; GitHub allows 100 in flight).
PARALLEL = 8
#: Page size of the listings the audit walks (GitHub's maximum).
PER_PAGE = 100
#: GitHub's compare endpoint lists at most this many files.
COMPARE_FILE_LIMIT = 300
GATE_CHECKS = (LINEAGE, APPROVALS)
UNKNOWN_BOT = "(unknown app)"  # contains a space: matches no login, so no trailer is trusted

MEMBERSHIP_HINT = (
    "team membership is read as it is today, and a review dismissed after the merge no "
    "longer counts"
)
LINEAGE_HINT = (
    "the check last ran before the merge, on the default branch as it was then, or with an "
    "earlier version of the rules"
)


class AuditError(Exception):
    """A problem the person running the audit can act on (bad argument, no access...)."""


# --- pure helpers -------------------------------------------------------------------------------


def parse_when(text: str, *, end: bool = False) -> datetime:
    """``2026-03-01`` (the day's first second, or with ``end`` its last) or an ISO-8601 time;
    times without a zone are UTC."""
    raw = text.strip()
    try:
        if len(raw) == 10:
            day = datetime.strptime(raw, "%Y-%m-%d").replace(tzinfo=UTC)
            return day + timedelta(days=1, seconds=-1) if end else day
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise AuditError(f"{text!r} is not a date (YYYY-MM-DD) or an ISO-8601 time") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def github_time(value: Any) -> datetime | None:
    """A GitHub timestamp (``2026-03-01T12:00:00Z``) as an aware datetime; None when absent."""
    if not isinstance(value, str) or not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def check_at_merge(
    runs: Iterable[Mapping[str, Any]], name: str, merged_at: datetime, app_id: int | None
) -> CheckAtMerge:
    """What branch protection saw for ``name`` at ``merged_at``: the newest run of the trusted
    app (any app when ``app_id`` is None) started by then, and its conclusion if it had
    completed by then."""
    started = [
        run
        for run in runs
        if run.get("name") == name
        and (app_id is None or (run.get("app") or {}).get("id") == app_id)
        and (at := github_time(run.get("started_at"))) is not None
        and at <= merged_at
    ]
    if not started:
        return CheckAtMerge(name, "missing")
    run = max(started, key=lambda r: int(r.get("id") or 0))
    done = github_time(run.get("completed_at"))
    finished = run.get("status") == "completed" and done is not None and done <= merged_at
    state = str(run.get("conclusion") or "pending") if finished else "pending"
    return CheckAtMerge(
        name=name,
        state=state,
        run_id=int(run.get("id") or 0),
        app=(run.get("app") or {}).get("slug"),
        completed_at=done,
        title=str((run.get("output") or {}).get("title") or ""),
        url=str(run.get("html_url") or ""),
    )


def gate_exceptions(checks: Sequence[CheckAtMerge]) -> tuple[str, ...]:
    """Why a merged pull request is an exception; () when both checks were green at merge."""
    red = [f"{check.name} was {check.state} at merge" for check in checks if not check.green]
    return ("merged without a green gate", *red) if red else ()


def disagreements(checks: Sequence[CheckAtMerge], gate: Rederived) -> tuple[str, ...]:
    """Where a recorded check and the re-derived verdict differ, with the likely cause."""
    out = []
    for check in checks:
        again = gate.state_of(check.name)
        if check.state == "missing" or again is None or again == check.state:
            continue
        hint = MEMBERSHIP_HINT if check.name == APPROVALS else LINEAGE_HINT
        out.append(
            f"{check.name} said {check.state} at merge, but the rules re-derived as of the "
            f"merge say {again} ({hint})"
        )
    return tuple(out)


def requested_by(
    pr: Mapping[str, Any], commits: Sequence[Mapping[str, Any]], bot_login: str
) -> tuple[Requester, ...]:
    """Who asked for the change: the bot's ``Requested-by:`` trailer (what the gate trusts),
    else the bot's PR-body marker, else whoever opened the pull request."""
    trailer = sorted(markers.requesters(commits, bot_login))
    if trailer:
        return tuple(
            Requester(login, "Requested-by trailer on the bot's commit") for login in trailer
        )
    author = str((pr.get("user") or {}).get("login") or "")
    if author.lower() == bot_login.lower():
        asked = markers.read_marker(pr.get("body")).get("requested_by")
        if isinstance(asked, str):
            return (Requester(asked, "marker in the bot's pull request body"),)
    return (Requester(author, "opened the pull request"),) if author else ()


Fingerprint = tuple[str, str, str, str]


def fingerprint(commit: Mapping[str, Any]) -> Fingerprint:
    """What a rebase merge keeps of a commit (message, author and author date) but not its SHA."""
    meta = commit.get("commit") or {}
    author = meta.get("author") or {}
    return (
        str(meta.get("message") or "").strip(),
        str(author.get("name") or ""),
        str(author.get("email") or "").lower(),
        str(author.get("date") or ""),
    )


@dataclass
class Owners:
    """Which merged pull request brought a default-branch commit.

    A squash merge leaves ``merge_commit_sha``; a merge commit keeps the PR's own commits (which
    ``git log -- path`` shows instead of the merge); a rebase makes new commits with the PR
    commits' message, author and author date.
    """

    by_sha: dict[str, int] = field(default_factory=dict)
    by_print: dict[Fingerprint, int] = field(default_factory=dict)

    def add_pull(self, number: int, merge_sha: str) -> None:
        self.by_sha[merge_sha] = number

    def add_commits(self, number: int, commits: Iterable[Mapping[str, Any]]) -> None:
        for commit in commits:
            self.by_sha[str(commit.get("sha"))] = number
            self.by_print[fingerprint(commit)] = number

    def owner(self, commit: Mapping[str, Any]) -> int | None:
        number = self.by_sha.get(str(commit.get("sha")))
        return number if number is not None else self.by_print.get(fingerprint(commit))


def chronological(
    records: Iterable[Record], walk: Sequence[Mapping[str, Any]], owners: Owners
) -> tuple[Record, ...]:
    """Oldest first. GitHub's times are to the second, so a tie is broken by the walk, which
    lists children before their parents."""
    newest_first: dict[int | str, int] = {}
    for position, commit in enumerate(walk):
        number = owners.owner(commit)
        newest_first.setdefault(number if number is not None else str(commit["sha"]), position)

    def key(record: Record) -> tuple[datetime, int]:
        ident = record.number if record.number is not None else record.sha
        return record.at, -newest_first.get(ident, len(walk))

    return tuple(sorted(records, key=key))


# --- services for a one-shot, read-only run -----------------------------------------------------


class AuditServices(Services):
    """The service's :class:`Services` for one audit, as the app or with a personal token.

    ``Services.__init__`` demands the webhook secret, which an audit never uses, and knows only
    app credentials; this sets up exactly what the clients, :class:`RepoFacts` and the gate's
    helpers read (caches, object cache, settings, the app's auth when there is one).
    """

    def __init__(
        self, settings: Settings, session: aiohttp.ClientSession, *, token: str | None
    ) -> None:
        self.settings = settings
        self.session = session
        self.clock = time.time
        self.stats = ApiStats()
        self.semaphore = asyncio.Semaphore(settings.max_concurrent_requests)
        self.objects = ObjectCache()
        self.caches = Caches(teams=TTLCache(maxsize=1000, ttl=settings.team_cache_ttl))
        self._etags = LRUCache(maxsize=4)
        self._identity = None
        self.retry_base = 0.5
        self.token = token
        if token is None:
            if settings.app_id is None or settings.private_key is None:
                raise AuditError("APP_ID and PRIVATE_KEY are needed to read as the app")
            self.auth = AppAuth(settings.app_id, settings.private_key, clock=self.clock)

    def installation_client(self, installation_id: int, *, cached: bool = True) -> GitHubClient:
        if self.token is None:
            return super().installation_client(installation_id, cached=cached)
        credential = f"token {self.token}"

        async def auth() -> str:
            return credential

        return GitHubClient(
            self.session,
            base_url=self.settings.github_api_url,
            auth=auth,
            semaphore=self.semaphore,
            stats=self.stats,
            stats_key="token",
            retry_base=self.retry_base,
        )


async def open_context(services: AuditServices, repo: str) -> Context:
    """A context like a delivery's: the installation for ``repo`` as the app, else the token."""
    installation = 0
    if services.token is None:
        try:
            installation = await services.installation_for(repo)
        except gidgethub.BadRequest as exc:
            if exc.status_code == 404:
                raise AuditError(f"the app is not installed on {repo}") from None
            raise
    adapter = logging.LoggerAdapter(log, {"delivery": "audit", "event": "audit", "repo": repo})
    return Context(
        services=services,
        installation_id=installation,
        delivery_id=f"audit-{uuid.uuid4()}",
        event="audit",
        gateway=services.gateway(installation),
        log=adapter,
    )


# --- gathering ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PullFacts:
    """What the approval rule needs of a merged pull request, as of its merge."""

    head_sha: str
    reviews: tuple[Review, ...]
    people: People


@dataclass(frozen=True)
class Merged:
    """A merged PR that touched the environment, with its base and files as of the merge."""

    pr: dict[str, Any]
    base: str  # the merge commit's first parent: the default branch just before the merge
    files: tuple[FileChange, ...]
    clusters: frozenset[str]  # the environment's clusters it touched
    #: what the audit could not see of the change (a file list GitHub cut off and the trees
    #: could not complete): the change counts as reaching the environment, unverified
    blind_spots: tuple[BlindSpot, ...] = ()


@dataclass(frozen=True)
class Judged:
    """A change judged again: the verdicts, its files as rows, and what to note about them."""

    gate: Rederived
    rows: tuple[FileRow, ...]
    notes: tuple[str, ...]
    policy: Policy | None = None


class Auditor:
    """Finds the changes that reached one environment in a period and judges each again."""

    # Read from the default branch's head when the run starts.
    branch: str
    policy: Policy
    fleet: Fleet
    policy_blob: str | None

    def __init__(
        self,
        ctx: Context,
        repo: str,
        environment: str,
        *,
        since: datetime | None,
        until: datetime,
        app: AppIdentity | None,
        app_id: int | None,
        progress: Callable[[str], None],
    ) -> None:
        self.ctx = ctx
        self.repo = repo
        self.environment = environment
        self.since = since
        self.until = until
        self.app = app
        self.app_id = app.id if app is not None else app_id
        self.progress = progress
        self.facts = RepoFacts(ctx, repo)
        self.owners = Owners()
        self.org = self.facts.owner
        self._gate = asyncio.Semaphore(PARALLEL)
        self._freezes: dict[str, list[tuple[EmergencyFreeze, datetime, datetime | None]]] = {}
        self._freezes_lock = asyncio.Lock()

    @property
    def gateway(self) -> Any:
        return self.ctx.gateway

    async def run(self) -> Report:
        self.branch = branch = await self.facts.default_branch()
        head = await self.facts.head()
        self.policy = await self._current_policy(head)
        self.fleet = await self.facts.fleet(head, self.policy)
        self.policy_blob = (await self.facts.tree(head)).blobs.get(POLICY_PATH)
        pulls = await self._merged_pulls(branch)
        for pr in pulls:
            self.owners.add_pull(int(pr["number"]), str(pr.get("merge_commit_sha") or ""))
        in_range = [pr for pr in pulls if _merged_at(pr) <= self.until]
        self.progress(
            f"{len(in_range)} pull request(s) merged into {branch} in the period; "
            "reading their files"
        )
        touched = [t for t in await self._each(in_range, self._touching) if t is not None]
        self.progress(f"{len(touched)} of them changed {self.environment}; judging each")
        records = await self._each(touched, self._pull_record, announce=True)
        clusters = set(self.fleet.clusters_of(self.environment))
        clusters.update(cluster for merged in touched for cluster in merged.clusters)
        commits = await self._walk(branch, sorted(clusters))
        direct = await self._unowned(commits, [pr for pr in pulls if _merged_at(pr) > self.until])
        if direct:
            self.progress(f"{len(direct)} commit(s) reached {self.environment} without a PR")
        records += await self._each(direct, self._push_record, announce=True)
        return Report(
            repo=self.repo,
            environment=self.environment,
            since=self.since,
            until=self.until,
            records=chronological(records, commits, self.owners),
            notes=self._report_notes(sorted(clusters)),
        )

    async def _current_policy(self, head: str) -> Policy:
        try:
            policy = await self.facts.policy(head)
        except NotAFleetRepo:
            raise AuditError(f"{self.repo} has no {POLICY_PATH}: it is not a fleet repo") from None
        except PolicyError as exc:
            raise AuditError(f"the policy on the default branch cannot be read: {exc}") from None
        if policy.environment(self.environment) is None:
            names = ", ".join(env.name for env in policy.environments)
            raise AuditError(f"{self.repo} has no environment {self.environment!r} ({names})")
        return policy

    async def _each(
        self, items: Sequence[T], job: Callable[[T], Awaitable[R]], *, announce: bool = False
    ) -> list[R]:
        """``job`` over ``items``, at most PARALLEL at once, results in order; with
        ``announce``, one progress line per finished record."""
        done = 0

        async def one(item: T) -> R:
            nonlocal done
            async with self._gate:
                result = await job(item)
            done += 1
            if announce and isinstance(result, Record):
                self.progress(f"[{done}/{len(items)}] judged {result.label}")
            return result

        return list(await asyncio.gather(*(one(item) for item in items)))

    # --- finding the changes --------------------------------------------------------------------

    async def _merged_pulls(self, branch: str) -> list[dict[str, Any]]:
        """PRs merged into ``branch`` since ``since`` (also after ``until``: they may own
        commits the walk finds). Sorted by update, newest first, so the listing stops at the
        first PR last updated before ``since`` (a merge is an update)."""
        url = (
            f"/repos/{self.repo}/pulls?state=closed&base={quote(branch)}"
            f"&sort=updated&direction=desc&per_page={PER_PAGE}"
        )
        found: list[dict[str, Any]] = []
        async for pr in self.gateway.iterate(url):
            updated = github_time(pr.get("updated_at"))
            if self.since is not None and updated is not None and updated < self.since:
                break
            merged = github_time(pr.get("merged_at"))
            if merged is not None and (self.since is None or merged >= self.since):
                found.append(pr)
        return found

    async def _touching(self, pr: dict[str, Any]) -> Merged | None:
        """The PR as merged, if it touched the environment's clusters (or if the audit cannot
        see its whole change: then it counts as touching every one of them)."""
        head = str(pr["head"]["sha"])
        merge_sha = str(pr["merge_commit_sha"])
        commit = await self.gateway.get(f"/repos/{self.repo}/git/commits/{merge_sha}")
        base = str(commit["parents"][0]["sha"])
        change = await self._files_at_merge(pr, base, head)
        clusters = self._clusters_in(change.files)
        if change.blind_spots:
            clusters |= set(self.fleet.clusters_of(self.environment))
        if not clusters:
            clusters = await self._pulled_into(change.files, base)
        if not clusters:
            return None
        return Merged(pr, base, change.files, frozenset(clusters), change.blind_spots)

    async def _files_at_merge(self, pr: dict[str, Any], base: str, head: str) -> ChangeList:
        """The PR's files as the gate last judged them: the three-dot diff of the merge's base
        and the head. Compare lists at most 300 files; a bigger PR uses its own file list,
        which GitHub freezes at the merge and cuts at 3,000 files, completed from the trees of
        the merge base and the head as the gate does."""
        data = await self.gateway.get(f"/repos/{self.repo}/compare/{base}...{head}?per_page=1")
        files = data.get("files") or []
        if len(files) >= COMPARE_FILE_LIMIT:
            return await pull_change(self.ctx, self.facts, pr, base)
        return ChangeList(file_changes(files))

    async def _pulled_into(self, files: Sequence[FileChange], base: str) -> set[str]:
        """The environment's clusters whose kustomizations (as of ``base``, the merge's
        parent) pulled in one of ``files``, as the gate counts them (V17); every one of them
        when one of their references cannot be placed (the gate failed closed there)."""
        try:
            policy = await self.facts.policy(base)
        except (NotAFleetRepo, PolicyError):
            return set()
        if policy.environment(self.environment) is None:
            return set()
        fleet = await self.facts.fleet(base, policy, extra_paths=[f.path for f in files])
        scope = scope_of(files, fleet, policy)
        scope, spots, _ = await reference_scope(
            self.ctx, self.facts, fleet, policy, scope, files, base
        )
        mine = set(fleet.clusters_of(self.environment))
        if any(_cluster_of(spot.path) in mine for spot in spots):
            return mine
        found = {_cluster_of(p.via) for p in scope.pulled_in if p.environment == self.environment}
        return {cluster for cluster in found if cluster in mine}

    def _clusters_in(self, files: Iterable[FileChange]) -> set[str]:
        found = set()
        for change in files:
            for path in (change.path, change.previous_path):
                loc = self.fleet.locate(path) if path else None
                if loc is not None and loc.environment == self.environment:
                    found.add(loc.cluster)
        return found

    async def _walk(self, branch: str, clusters: Sequence[str]) -> list[dict[str, Any]]:
        """Default-branch commits in the period that touched any of ``clusters``."""
        query = f"sha={quote(branch)}&per_page={PER_PAGE}"
        if self.since is not None:
            query += f"&since={_github_time(self.since)}"
        query += f"&until={_github_time(self.until)}"
        self.progress(f"walking {branch}'s history of {len(clusters)} cluster(s)")
        lists = await asyncio.gather(
            *(
                self.gateway.collect(
                    f"/repos/{self.repo}/commits?{query}&path={quote('clusters/' + c)}"
                )
                for c in clusters
            )
        )
        seen: dict[str, dict[str, Any]] = {}
        for commits in lists:
            for commit in commits:
                seen.setdefault(str(commit["sha"]), commit)
        return list(seen.values())

    async def _unowned(
        self, commits: Sequence[dict[str, Any]], later: Sequence[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """Commits no merged PR brought. PRs merged after the period are read only while some
        commit is unexplained: their branch commits can predate the merge."""
        left = [c for c in commits if self.owners.owner(c) is None]
        for pr in later:
            if not left:
                break
            number = int(pr["number"])
            self.owners.add_commits(number, await self.gateway.pull_commits(self.repo, number))
            left = [c for c in left if self.owners.owner(c) is None]
        return left

    # --- records --------------------------------------------------------------------------------

    async def _pull_record(self, merged: Merged) -> Record:
        pr, base, files = merged.pr, merged.base, merged.files
        number = int(pr["number"])
        head = str(pr["head"]["sha"])
        merge_sha = str(pr["merge_commit_sha"])
        merged_at = _merged_at(pr)
        full, (commits, unread), raw_reviews, runs = await asyncio.gather(
            self.gateway.pull(self.repo, number),
            pull_commits(self.ctx, self.repo, number, head, base),
            self.gateway.pull_reviews(self.repo, number),
            self.gateway.collect(
                f"/repos/{self.repo}/commits/{head}/check-runs?per_page={PER_PAGE}&filter=all",
                key="check_runs",
            ),
        )
        self.owners.add_commits(number, commits)
        checks = tuple(check_at_merge(runs, name, merged_at, self.app_id) for name in GATE_CHECKS)
        window_run = check_at_merge(runs, WINDOW, merged_at, self.app_id)
        if window_run.state != "missing":  # merges from before the calendar have none
            checks += (window_run,)
        bot_login = self._bot_login(checks)
        reviews = tuple(review_of(r) for r in raw_reviews)
        before = tuple(r for r in reviews if r.submitted_at and r.submitted_at <= merged_at)
        pull = PullFacts(head, before, people_of(full, commits, bot_login, unread=unread))
        judged = await self._judge(
            base, files, merged_at, pull, merged.blind_spots, bot_login=bot_login, head=head
        )
        notes = list(judged.notes)
        overrides, override_exceptions = await self._overrides(
            number, head, merged_at, bot_login, checks, judged
        )
        if len(before) < len(reviews):
            notes.append(f"{len(reviews) - len(before)} review(s) submitted after the merge.")
        if any(r.state == "DISMISSED" for r in before):
            notes.append(
                "A dismissed review may have been dismissed after the merge: GitHub "
                "does not say when."
            )
        links = await self._app_links(judged.rows, base, bot_login)
        return Record(
            kind="pull_request",
            sha=merge_sha,
            url=str(pr.get("html_url") or ""),
            at=merged_at,
            by=(full.get("merged_by") or {}).get("login"),
            title=str(pr.get("title") or ""),
            changes=judged.rows,
            requested_by=requested_by(full, commits, bot_login),
            checks=checks,
            rederived=judged.gate,
            exceptions=(
                *gate_exceptions(checks),
                *override_exceptions,
                *calendar_exceptions(judged.gate, overridden=bool(overrides)),
            ),
            disagreements=disagreements(checks, judged.gate),
            notes=tuple(notes),
            org=self.org,
            number=number,
            overrides=overrides,
            author=(pr.get("user") or {}).get("login"),
            head_sha=head,
            base_sha=base,
            app_changes=links,
        )

    async def _push_record(self, commit: dict[str, Any]) -> Record:
        sha = str(commit["sha"])
        parents = [str(p["sha"]) for p in commit.get("parents") or []]
        meta = commit.get("commit") or {}
        at = github_time((meta.get("committer") or {}).get("date")) or self.until
        data = await self.gateway.get(f"/repos/{self.repo}/commits/{sha}")
        files = file_changes(data.get("files") or [])
        links: tuple[AppLink, ...] = ()
        if parents:
            bot_login = self.app.bot_login if self.app is not None else None
            judged = await self._judge(parents[0], files, at, None, bot_login=bot_login, head=sha)
            rows, gate, notes = judged.rows, judged.gate, judged.notes
            reason = f"pushed to {self.branch} without a pull request"
            reason = "; ".join((reason, *calendar_exceptions(gate, overridden=False)))
            links = await self._app_links(rows, parents[0], self._bot_login(()))
        else:
            rows, gate, notes = await self._first_rows(files, sha), None, ()
            reason = (
                f"the repository's first commit: the starting state of {self.environment}, "
                "never reviewed through a pull request"
            )
        return Record(
            kind="direct_push",
            sha=sha,
            url=str(commit.get("html_url") or ""),
            at=at,
            by=_login(commit, "committer"),
            title=next(iter(str(meta.get("message") or "").strip().splitlines()), ""),
            changes=rows,
            requested_by=(),
            checks=(),
            rederived=gate,
            exceptions=(reason,),
            disagreements=(),
            notes=notes,
            org=self.org,
            author=_login(commit, "author"),
            base_sha=parents[0] if parents else None,
            app_changes=links,
        )

    async def _app_links(
        self, rows: Sequence[FileRow], base: str, bot_login: str
    ) -> tuple[AppLink, ...]:
        """The application comparison of each image change in the audited environment: the
        link a promotion PR shows (issue 22), from the origins the app's dev bumps recorded up
        to ``base``. No comparison is read: the link is enough for an auditor."""
        moves = [
            ImageMove(row.tenant, row.old_image, row.new_image)
            for row in rows
            if row.image_changed and row.environment == self.environment and row.tenant
        ]
        if not any(m.old and m.new and m.old != m.new for m in moves):
            return ()
        known = await origins(
            self.ctx, self.facts, self.fleet, self.policy, moves, base, bot_login=bot_login
        )
        web = self.ctx.settings.github_url
        return tuple(
            AppLink(
                tenants=item.tenants,
                old_image=item.old,
                new_image=item.new,
                url=comparison_url(web, item.comparison) if item.comparison else "",
                reason=item.reason,
            )
            for item in plan(moves, known)
        )

    def _bot_login(self, checks: Sequence[CheckAtMerge]) -> str:
        """The bot whose ``Requested-by:`` trailers count: ours as the app; with a token, the
        app that posted the gate's checks."""
        if self.app is not None:
            return self.app.bot_login
        slug = next((c.app for c in checks if c.app), None)
        return f"{slug}[bot]" if slug else UNKNOWN_BOT

    # --- judging --------------------------------------------------------------------------------

    async def _judge(
        self,
        base: str,
        files: Sequence[FileChange],
        at: datetime,
        pull: PullFacts | None,
        blind_spots: Sequence[BlindSpot] = (),
        bot_login: str | None = None,
        head: str | None = None,
    ) -> Judged:
        """The gate's verdicts for ``files`` landing on ``base`` at ``at`` (as of commit
        ``head``: then placed as the gate places a change, with what gated clusters'
        kustomizations pull in, links and content it cannot judge). What could not be seen
        fails lineage and asks every gated environment's approvals, as at the gate."""
        notes: list[str] = [f"Could not be seen: {spot.reason}" for spot in blind_spots]
        try:
            policy = await self.facts.policy(base)
        except (NotAFleetRepo, PolicyError) as exc:
            scope = scope_of(files, self.fleet, self.policy)
            rows, _, _ = await self._changes(scope, files, self.fleet, base, notes)
            return Judged(_ungated(exc, pull is not None), rows, tuple(notes))
        fleet = await self.facts.fleet(base, policy, extra_paths=[f.path for f in files])
        if head is None:
            scope = scope_of(files, fleet, policy, blind_spots)
        else:
            scope, placed = await see_files(
                self.ctx, self.facts, policy, fleet, files, base, head, blind_spots
            )
            more = [spot for spot in scope.blind_spots if spot not in blind_spots]
            notes += [f"Could not be judged: {spot.reason}" for spot in more]
            notes += placed
        rows, changes, broken = await self._changes(
            scope, files, fleet, base, notes, policy.promote_keys
        )
        reports, lineage_note = await self._lineage(policy, fleet, scope, files, changes, base, at)
        ok = all(r.ok for r in reports) and not broken and not scope.blind_spots
        lineage = "success" if ok else "failure"
        if blind_spots:
            lineage_note = "the change could not be seen whole, so lineage cannot be verified"
        elif scope.blind_spots:
            lineage_note = "part of the change cannot be judged, so lineage cannot be verified"
        approvals: str | None = None
        verdicts: tuple[ApprovalVerdict, ...] = ()
        approvals_note = "no pull request, so no reviews"
        if pull is not None:
            approvals, verdicts, approvals_note = await self._approvals(policy, scope, pull, notes)
        if (await self.facts.tree(base)).blobs.get(POLICY_PATH) != self.policy_blob:
            notes.append(
                f"The policy has changed since: these verdicts apply {POLICY_PATH} as it was at "
                f"{base[:7]}, the base this change landed on."
            )
        window, window_note = await self._window(policy, scope, at, bot_login)
        gate = Rederived(
            lineage,
            reports,
            lineage_note,
            approvals,
            verdicts,
            approvals_note,
            window=window,
            window_note=window_note,
        )
        return Judged(gate, rows, tuple(notes), policy)

    # --- the calendar and overrides, as of the merge --------------------------------------------

    async def _window(
        self, policy: Policy, scope: Scope, at: datetime, bot_login: str | None
    ) -> tuple[str, str]:
        """``promotion/window`` as of ``at``: the policy at the base, and the ``/freeze``
        issues of the bot that were open then (created before, closed after or not yet)."""
        names = windowfacts.judged_environments(scope, policy)
        emergencies = [
            freeze
            for freeze, start, end in await self._freeze_periods(bot_login)
            if start <= at and (end is None or at < end)
        ]
        verdict = evaluate_calendar(policy, names, emergencies, at)
        if verdict.open:
            return "success", ""
        return "failure", "; ".join(_closed_because(v) for v in verdict.closed)

    async def _freeze_periods(
        self, bot_login: str | None
    ) -> list[tuple[EmergencyFreeze, datetime, datetime | None]]:
        """Every ``/freeze`` ever: the bot's freeze issues, open and closed (one listing)."""
        if bot_login is None or bot_login == UNKNOWN_BOT:
            return []
        async with self._freezes_lock:
            if bot_login not in self._freezes:
                issues = await self.gateway.issues_by(self.repo, bot_login, state="all")
                periods = []
                for issue in issues:
                    author = str((issue.get("user") or {}).get("login") or "")
                    if author.lower() != bot_login.lower() or "pull_request" in issue:
                        continue
                    if not windowfacts.is_freeze_issue(issue):
                        continue
                    start = github_time(issue.get("created_at"))
                    if start is None:
                        continue
                    freeze = caltext.read_freeze_issue(
                        number=int(issue["number"]),
                        title=str(issue.get("title") or ""),
                        body=issue.get("body"),
                        url=str(issue.get("html_url") or ""),
                        since=start,
                    )
                    periods.append((freeze, start, github_time(issue.get("closed_at"))))
                self._freezes[bot_login] = periods
        return self._freezes[bot_login]

    async def _overrides(
        self,
        number: int,
        head: str,
        merged_at: datetime,
        bot_login: str,
        checks: Sequence[CheckAtMerge],
        judged: Judged,
    ) -> tuple[tuple[Override, ...], tuple[str, ...]]:
        """Who let this merge through a failing check, when and why: the overrides the bot
        acknowledged on the merged head before the merge (read from the PR's comments, only
        when a check may have been overridden). Eligibility is today's, like team membership."""
        recorded = {c.name for c in checks if c.title.startswith("Overridden by")}
        gate = judged.gate
        failing = {LINEAGE: gate.lineage == "failure", WINDOW: gate.window == "failure"}
        wanted = [name for name, failed in failing.items() if failed or name in recorded]
        if not wanted or judged.policy is None:
            return (), ()
        comments = await self.gateway.comments(self.repo, number)
        posted = windowfacts.posted_comments(comments, bot_login)
        acks = [o for o in acknowledged(posted) if o.at <= merged_at]
        policy = judged.policy
        found: list[Override] = []
        lines: list[str] = []
        for name in wanted:
            check = name.removeprefix("promotion/")
            asked = [o for o in acks if o.check == check]
            allowed = await windowfacts.eligible(
                self.ctx, self.facts, policy, (o.login for o in asked)
            )
            verdict = evaluate_overrides(check, head, asked, allowed, policy.overrides.count)
            if verdict.granted:
                found += verdict.counted
                lines += [
                    f"{name} overridden by @{o.login} at {_github_time(o.at)}: {o.reason}"
                    for o in verdict.counted
                ]
            elif name in recorded:
                lines.append(
                    f"{name} was recorded as overridden, but the overrides cannot be confirmed "
                    "from the pull request's comments"
                )
        return tuple(found), tuple(lines)

    async def _changes(
        self,
        scope: Scope,
        files: Sequence[FileChange],
        fleet: Fleet,
        base: str,
        notes: list[str],
        keys: Sequence[str] = ("image",),
    ) -> tuple[tuple[FileRow, ...], dict[str, list[Change]], list[Annotation]]:
        """Rows for every file in a cluster (with its image), and the traced value changes
        per environment: every ``promoteKeys`` value, read the way the lineage check reads
        them; a value lineage cannot trace is a failure, as at the gate."""
        broken: list[Annotation] = []
        by_env: dict[str, list[Change]] = {}
        rows: list[FileRow] = []
        for item in scope.inputs:
            unreadable = len(broken)
            change = await input_change(self.facts, item, base, notes, broken)
            status = item.status if len(broken) == unreadable else f"{item.status}, unreadable"
            if item.environment is not None and len(broken) == unreadable:
                moved = await self._traced(item, base, keys, notes, broken)
                by_env.setdefault(item.environment, []).extend(moved)
            rows.append(
                FileRow(
                    environment=item.environment,
                    cluster=item.cluster,
                    tenant=item.tenant,
                    path=item.path,
                    status=status,
                    old_image=change.old if change else None,
                    new_image=change.new if change else None,
                    image_changed=change is not None,
                )
            )
        inputs = {item.path for item in scope.inputs}
        for f in files:
            loc = fleet.locate(f.path)
            if loc is not None and f.path not in inputs:
                rows.append(_row(loc, f, None))
        return tuple(rows), by_env, broken

    async def _traced(
        self,
        item: InputChange,
        base: str,
        keys: Sequence[str],
        notes: list[str],
        broken: list[Annotation],
    ) -> list[Change]:
        """The traced values a readable input change moves; what cannot be traced is noted
        and fails lineage (``broken``)."""
        old_input = await self.facts.tenant_input(base, item.path)
        old = old_input if isinstance(old_input, TenantInput) else None
        if item.status == "removed" or item.sha is None:
            if old is None:
                return []
            return [Change(item.cluster, item.tenant, item.path, None, old.image, None)]
        new = await self.facts.input_by_blob(item.path, item.sha)
        if isinstance(new, InputError):
            return []
        moved, spots = value_changes(
            item.cluster, item.tenant, item.path, old, new, keys, added=item.status == "added"
        )
        for spot in spots:
            notes.append(f"Could not be traced: {spot.reason}")
            line = spot.line or 1
            broken.append(
                Annotation(
                    spot.path or item.path, line, line, "failure", spot.reason, "Untraceable value"
                )
            )
        return moved

    async def _first_rows(self, files: Sequence[FileChange], sha: str) -> tuple[FileRow, ...]:
        """Rows of the repository's first commit in the environment, images as committed."""
        rows = []
        for f in files:
            loc = self.fleet.locate(f.path)
            if loc is None or loc.environment != self.environment:
                continue
            image = None
            if loc.kind == "input":
                parsed = await self.facts.tenant_input(sha, f.path)
                image = parsed.image if isinstance(parsed, TenantInput) else None
            rows.append(_row(loc, f, image))
        return tuple(rows)

    async def _lineage(
        self,
        policy: Policy,
        fleet: Fleet,
        scope: Scope,
        files: Sequence[FileChange],
        images: Mapping[str, Sequence[Change]],
        base: str,
        at: datetime,
    ) -> tuple[tuple[LineageReport, ...], str]:
        """``promotion/lineage`` as of ``at``, for images and blueprint tags as the check
        traces them: upstream history up to ``base``, soak measured to ``at``."""
        traced = [
            env
            for name in scope.environments
            if (env := policy.environment(name)) is not None and env.upstream is not None
        ]
        if not traced:
            return (), no_lineage_reason(scope)
        reports = await lineage_reports(
            self.ctx, self.facts, fleet, traced, images, files, base, history_head=base, now=at
        )
        if reports:
            return tuple(reports), ""
        names = ", ".join(env.name for env in traced)
        return (), f"No image or blueprint version changed in {names}: nothing to trace."

    async def _approvals(
        self, policy: Policy, scope: Scope, pull: PullFacts, notes: list[str]
    ) -> tuple[str, tuple[ApprovalVerdict, ...], str]:
        """``promotion/approvals`` with the reviews of the merge and today's team members."""
        envs = [
            env
            for name in scope.gated
            if (env := policy.environment(name)) is not None and env.approvals
        ]
        if not envs:
            touched = ", ".join(scope.environments) or "no environment"
            return "success", (), f"No approvals required ({touched})."
        members: dict[str, frozenset[str]] = {}
        for team in sorted({rule.team for env in envs for rule in env.approvals}):
            who = await self.ctx.team_members(self.org, team)
            if who is None:
                notes.append(
                    f"Team @{self.org}/{team} does not exist or cannot be read: nobody can fill "
                    "its slots."
                )
            members[team] = who or frozenset()
        facts = ApprovalFacts(
            head_sha=pull.head_sha,
            reviews=pull.reviews,
            excluded=pull.people.excluded,
            team_members=members,
            org=self.org,
            unattributed=pull.people.unattributed,
            unread=pull.people.unread,
        )
        verdicts = tuple(judge_approvals(env.name, env.approvals, facts) for env in envs)
        return combine_approvals(verdicts), verdicts, ""

    def _report_notes(self, clusters: Sequence[str]) -> tuple[str, ...]:
        notes = [
            "Verdicts are re-derived with the bot's own rules as of each merge: the policy at "
            "the merge commit's first parent, reviews submitted before the merge, the upstream "
            "history up to that parent.",
            "Team membership is read as it is today: GitHub keeps no history of team "
            "membership, so someone who joined or left a team since a merge is judged by "
            "today's membership.",
            "Direct pushes were looked for in the history of "
            + ", ".join(f"clusters/{c}" for c in clusters)
            + ".",
        ]
        if self.since is not None:
            notes.append(
                "Commits are selected by their committer date, which whoever pushes sets; an "
                "audit without --since also shows back-dated pushes."
            )
        if any(e.require_upstream_status for e in self.policy.environments):
            notes.append("Upstream statuses (requireUpstreamStatus) are read as they are today.")
        if self.app is None and self.app_id is None:
            notes.append(
                f"Read with a personal token: runs of {LINEAGE} and {APPROVALS} from any app "
                "were accepted; set APP_ID to accept only the bot's."
            )
        return tuple(notes)


def calendar_exceptions(gate: Rederived | None, *, overridden: bool) -> tuple[str, ...]:
    """A change that landed while its environment was closed is an exception (unless an
    override, listed on its own, let it through)."""
    if gate is None or gate.window != "failure" or overridden:
        return ()
    return (f"merged while closed: {gate.window_note}",)


def _closed_because(verdict: Any) -> str:
    reasons = [f"emergency freeze #{e.number} ({e.reason})" for e in verdict.emergencies]
    reasons += [f"frozen ({f.reason})" for f in verdict.freezes]
    if verdict.outside_windows:
        reasons.append("outside its deploy windows")
    return f"{verdict.environment} was {', '.join(reasons) or 'closed'}"


def _ungated(exc: Exception, has_pull: bool) -> Rederived:
    """Verdicts when the base had no usable policy: the gate acted on nothing, or failed."""
    if isinstance(exc, NotAFleetRepo):
        note = f"There was no {POLICY_PATH} at the base: nothing was gated."
        state = "success"
    else:
        note = f"The policy at the base could not be read ({exc}): the gate failed."
        state = "failure"
    return Rederived(state, (), note, state if has_pull else None, (), note)


def _row(loc: FileLocation, change: FileChange, added_image: str | None) -> FileRow:
    """A row for a file that is no tenant input of the change (or one the commit adds)."""
    return FileRow(
        environment=loc.environment,
        cluster=loc.cluster,
        tenant=loc.tenant,
        path=change.path,
        status=change.status,
        old_image=None,
        new_image=added_image,
        image_changed=added_image is not None,
    )


def _cluster_of(path: str | None) -> str | None:
    """The cluster of a path under ``clusters/`` (None elsewhere)."""
    parts = (path or "").split("/")
    return parts[1] if len(parts) > 2 and parts[0] == "clusters" else None


def _merged_at(pr: Mapping[str, Any]) -> datetime:
    moment = github_time(pr.get("merged_at"))
    assert moment is not None, "only merged pull requests are listed"
    return moment


def _login(commit: Mapping[str, Any], role: str) -> str | None:
    """The GitHub login of a commit's author or committer, else the name git recorded."""
    login = (commit.get(role) or {}).get("login")
    if login:
        return str(login)
    name = ((commit.get("commit") or {}).get(role) or {}).get("name")
    return str(name) if name else None


def _github_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- command line -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    repo: str
    environment: str
    since: datetime | None
    until: datetime
    format: Format


def options_of(args: argparse.Namespace, now: datetime) -> Options:
    repo = str(args.repo).strip()
    owner, _, name = repo.partition("/")
    if not owner or not name or "/" in name:
        raise AuditError(f"{repo!r} is not OWNER/REPO")
    since = parse_when(args.since) if args.since else None
    until = parse_when(args.until, end=True) if args.until else now
    if since is not None and since > until:
        raise AuditError("--since is after --until")
    return Options(repo, str(args.env), since, until, args.format)


def credentials(env: Mapping[str, str]) -> tuple[Settings, str | None, int | None]:
    """Settings, the personal token (None: read as the app), and the app id to trust.

    App credentials win when complete (APP_ID and a private key): the app's identity is what
    makes its check runs trustworthy. Otherwise GITHUB_TOKEN, with APP_ID, if set, naming the
    app whose check runs count.
    """
    try:
        plain = {k: v for k, v in env.items() if k not in (*CREDENTIAL_NAMES, "NODE_ENV")}
        settings = load_settings(plain)
        key = private_key_from_env(env)
    except SettingsError as exc:
        raise AuditError(str(exc)) from None
    app_id = env.get("APP_ID", "").strip()
    if app_id and not app_id.isdigit():
        raise AuditError("APP_ID must be the numeric App ID shown on the GitHub App's page")
    if app_id and key:
        return dataclasses.replace(settings, app_id=app_id, private_key=key), None, int(app_id)
    token = env.get("GITHUB_TOKEN", "").strip()
    if token:
        return settings, token, int(app_id) if app_id else None
    raise AuditError(
        "no credentials: set APP_ID and PRIVATE_KEY (or PRIVATE_KEY_PATH) to read as the "
        "GitHub App, or GITHUB_TOKEN to read with a personal access token"
    )


async def run(args: argparse.Namespace, *, env: Mapping[str, str], out: TextIO, err: TextIO) -> int:
    """The audit command: 0 with the report on ``out``, 2 for bad usage, 1 when GitHub fails."""

    def progress(message: str) -> None:
        print(f"audit: {message}", file=err, flush=True)

    try:
        options = options_of(args, datetime.now(UTC))
        settings, token, app_id = credentials(env)
    except AuditError as exc:
        print(f"error: {exc}", file=err)
        return 2
    async with aiohttp.ClientSession() as session:
        services = AuditServices(settings, session, token=token)
        try:
            ctx = await open_context(services, options.repo)
            app = await services.identity() if token is None else None
            auditor = Auditor(
                ctx,
                options.repo,
                options.environment,
                since=options.since,
                until=options.until,
                app=app,
                app_id=app_id,
                progress=progress,
            )
            report = await auditor.run()
        except AuditError as exc:
            print(f"error: {exc}", file=err)
            return 1
        except gidgethub.BadRequest as exc:
            print(
                f"error: GitHub answered {exc.status_code}: {_denied(exc, options.repo)}", file=err
            )
            return 1
        except (TransientGitHubError, GatewayError, aiohttp.ClientError) as exc:
            print(f"error: GitHub could not be read: {exc}", file=err)
            return 1
    progress(f"{ctx.gateway.calls} API calls")
    out.write(render(report, options.format))
    return 0


def _denied(exc: gidgethub.BadRequest, repo: str) -> str:
    status = int(exc.status_code)
    if status == 401:
        return "the credentials were refused"
    if status in (403, 404):
        return f"{repo} does not exist or these credentials cannot read it ({exc})"
    return str(exc)


def main(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    return asyncio.run(run(args, env=env, out=sys.stdout, err=sys.stderr))
