"""An in-process fake of GitHub: REST API, signed webhooks and real git objects.

Tests and `python -m bot demo` drive it through the Python control API below (every action
emits the webhooks GitHub would send) and point the bot at `fake.api_url`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiohttp import web

from bot.fake.contract import Contract
from bot.fake.gitobjects import ChangeValue
from bot.fake.queue import MergeQueues, QueueError
from bot.fake.routes import build_app
from bot.fake.routes_archive import ArchiveOverride
from bot.fake.server import SECONDARY, Api, Fault, RecordedRequest, Settings
from bot.fake.shapes import Urls
from bot.fake.state import (
    ROLES,
    ApiError,
    App,
    CheckRun,
    Installation,
    Org,
    Protection,
    Repo,
    Team,
    User,
)
from bot.fake.webhooks import Delivery
from bot.fake.world import CommitSpec, World

__all__ = [
    "ApiError",
    "Delivery",
    "FakeCommit",
    "FakeGitHub",
    "Fault",
    "QueueError",
    "RecordedRequest",
]


@dataclass(frozen=True)
class FakeCommit:
    """A commit for :meth:`FakeGitHub.push_commits`: who it says wrote it, by login, or the
    name and email typed into git."""

    changes: Mapping[str, ChangeValue]
    message: str = "Update files"
    author: str | None = None
    name: str | None = None
    email: str | None = None
    committer: str | None = None
    date: float | datetime | None = None


DEFAULT_EVENTS = [
    "check_run",
    "check_suite",
    "issue_comment",
    "issues",
    "membership",
    "merge_group",
    "package",
    "pull_request",
    "pull_request_review",
    "push",
    "registry_package",
    "release",
    "repository_dispatch",
    "status",
]
#: What the product's app.yml asks for (tests/ops/test_manifest.py keeps them equal), so that
#: tests cannot pass on a permission the real installation would not have.
DEFAULT_PERMISSIONS = {
    "checks": "write",
    "contents": "write",
    "issues": "write",
    "members": "read",
    "merge_queues": "write",
    "metadata": "read",
    "packages": "read",
    "pull_requests": "write",
    "statuses": "read",
}


class FakeGitHub:
    """The fake GitHub: start it, seed it through these methods, point a client at it."""

    def __init__(self, base_path: str = "", contract: Contract | None = None) -> None:
        """``contract``: check every request, response and webhook against GitHub's published
        descriptions (default: the one ``FAKE_GITHUB_CONTRACT`` names, if set)."""
        self.settings = Settings(base_path=base_path.rstrip("/"))
        self.settings.contract = contract or Contract.from_environment()
        self.urls = Urls()
        self.world = World(self.urls)
        self.world.hooks.contract = self.settings.contract
        self.queues = MergeQueues(self.world)
        self.api = Api(self.world, self.settings)
        if self.settings.base_path:  # GHES keeps its delivery log for 7 days
            self.world.hooks.retention = 7 * 24 * 3600.0
        self._runner: web.AppRunner | None = None
        self._codeload: web.AppRunner | None = None

    # ---- lifecycle -------------------------------------------------------------------------
    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen and start delivering webhooks; returns the API base URL."""
        app = build_app(self.api, self.queues)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        server = site._server
        assert server is not None
        sockets = getattr(server, "sockets", None) or []
        bound = sockets[0].getsockname()[1] if sockets else port
        self.urls.web = f"http://{host}:{bound}"
        self.urls.api = self.urls.web + self.settings.base_path
        # The archive host: another listener, so another origin, as codeload is on github.com.
        self._codeload = web.AppRunner(
            self.api.archives.codeload_app(), access_log=None, handle_signals=False
        )
        await self._codeload.setup()
        codeload = web.TCPSite(self._codeload, host, 0)
        await codeload.start()
        assert codeload._server is not None
        port = codeload._server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        self.settings.codeload_url = f"http://{host}:{port}"
        await self.world.hooks.start()
        return self.urls.api

    async def stop(self) -> None:
        """Stop serving and delivering."""
        await self.world.hooks.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._codeload is not None:
            await self._codeload.cleanup()
            self._codeload = None

    async def idle(self) -> None:
        """Wait until every queued webhook delivery has been posted and answered."""
        await self.world.hooks.idle()

    @property
    def api_url(self) -> str:
        """Base URL of the REST API (with the GHES prefix when there is one)."""
        return self.urls.api

    @property
    def web_url(self) -> str:
        """Origin of the web UI (no API prefix)."""
        return self.urls.web

    @property
    def latency(self) -> float:
        """Delay injected before answering each API request, in seconds."""
        return self.settings.latency

    @latency.setter
    def latency(self, value: float) -> None:
        self.settings.latency = value

    @property
    def token_ttl(self) -> int:
        """Lifetime of new installation tokens, in seconds."""
        return self.settings.token_ttl

    @token_ttl.setter
    def token_ttl(self, value: int) -> None:
        self.settings.token_ttl = value

    @property
    def tree_entry_limit(self) -> int:
        """Entries returned by a recursive tree read before `truncated` is set."""
        return self.settings.tree_entry_limit

    @tree_entry_limit.setter
    def tree_entry_limit(self, value: int) -> None:
        self.settings.tree_entry_limit = value

    # ---- accounts and apps -----------------------------------------------------------------
    def create_user(self, login: str, name: str | None = None, email: str | None = None) -> User:
        """A person; `user.token` is a personal access token usable over HTTP."""
        return self.world.create_user(login, name, email)

    def create_org(self, login: str, name: str | None = None) -> Org:
        """An organization."""
        return self.world.create_org(login, name)

    def add_org_member(self, org: str, login: str, role: str = "member") -> None:
        """Make a user an org member (`member` or `admin`)."""
        self.world.add_org_member(self.world.need_org(org), self.world.need_user(login), role)

    def create_team(
        self,
        org: str,
        slug: str,
        members: list[str] | tuple[str, ...] = (),
        name: str | None = None,
    ) -> Team:
        """A team of an org; members become org members."""
        return self.world.create_team(org, slug, name, list(members))

    def add_team_member(self, org: str, slug: str, login: str, by: str | None = None) -> None:
        """Add a member (`membership.added`)."""
        self.world.set_team_membership(org, slug, login, True, self._user(by) if by else None)

    def remove_team_member(self, org: str, slug: str, login: str, by: str | None = None) -> None:
        """Remove a member (`membership.removed`)."""
        self.world.set_team_membership(org, slug, login, False, self._user(by) if by else None)

    def create_app(
        self,
        slug: str,
        name: str | None = None,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        events: list[str] | None = None,
        permissions: dict[str, str] | None = None,
        owner: str | None = None,
    ) -> App:
        """A GitHub App with a fresh RSA key (`app.private_key_pem`) and bot user."""
        return self.world.create_app(
            slug,
            name or slug,
            self.world.state.account(owner) if owner else None,
            webhook_url,
            webhook_secret,
            DEFAULT_EVENTS if events is None else events,
            DEFAULT_PERMISSIONS if permissions is None else permissions,
        )

    def set_webhook_url(self, app: App, url: str | None, secret: str | None = None) -> None:
        """Where the app's deliveries go (and optionally a new secret)."""
        app.webhook_url = url
        if secret is not None:
            app.webhook_secret = secret

    def install(
        self, app: App, account: str, repositories: list[str] | str = "all", by: str | None = None
    ) -> Installation:
        """Install (`installation.created`) or change repositories (`installation_repositories`)."""
        return self.world.install(app, account, repositories, self._user(by) if by else None)

    def expire_tokens(self) -> None:
        """Make every installation token issued so far expired (401 Bad credentials)."""
        for token in self.world.state.tokens.values():
            token.expires_at = min(token.expires_at, time.time() - 1)

    # ---- repositories ----------------------------------------------------------------------
    def create_repo(
        self,
        owner: str,
        name: str,
        files: Mapping[str, ChangeValue] | None = None,
        default_branch: str = "main",
        author: str | None = None,
        private: bool = True,
        description: str | None = None,
        empty: bool = False,
    ) -> Repo:
        """A repository with one initial commit of `files` on the default branch (a README
        when none are given), or with no commit at all when `empty`."""
        who = self._user(author) if author else None
        return self.world.create_repo(
            owner,
            name,
            {} if empty else files or {"README.md": b"# " + name.encode() + b"\n"},
            default_branch,
            who,
            private,
            description,
        )

    def set_collaborator(self, repo: str, login: str, role: str | None) -> None:
        """Grant a role (admin|maintain|write|triage|read), or remove with None."""
        r = self.world.need_repo(repo)
        user = self.world.need_user(login)
        if role is None:
            r.collaborators.pop(user.login.lower(), None)
            return
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}")
        r.collaborators[user.login.lower()] = role

    def set_required_checks(
        self, repo: str, branch: str, contexts: list[str] | None, strict: bool = False
    ) -> None:
        """Protect a branch with required status checks (None removes protection)."""
        r = self.world.need_repo(repo)
        if contexts is None:
            r.protection.pop(branch, None)
        else:
            r.protection[branch] = Protection(list(contexts), strict)

    def require_merge_queue(
        self,
        repo: str,
        branch: str,
        merge_method: str = "MERGE",
        required_checks: list[str] | None = None,
    ) -> None:
        """A ruleset requiring a merge queue on ``branch`` (MERGE | SQUASH | REBASE). Groups
        wait for ``required_checks`` and the branch protection's contexts
        (``set_required_checks``); a REST merge into the branch answers 405."""
        self.queues.require(self.world.need_repo(repo), branch, merge_method, required_checks)

    def enqueue_pr(self, repo: str, number: int, by: str) -> None:
        """A person clicks "Merge when ready" (raises QueueError when GitHub would refuse)."""
        r = self.world.need_repo(repo)
        self.queues.enqueue(r, self.world.need_pull(r, number), self._user(by))

    def dequeue_pr(self, repo: str, number: int, by: str) -> None:
        """A person removes a pull request from its merge queue."""
        r = self.world.need_repo(repo)
        pr = self.world.need_pull(r, number)
        for entry in list(r.queue.get(pr.base_ref, [])):
            if entry.number == number:
                self.queues.dequeue(r, pr.base_ref, entry, "MANUAL", self._user(by))

    def merge_queue(self, repo: str, branch: str) -> list[tuple[int, str | None]]:
        """(PR number, group head SHA) of each queued pull request, front first."""
        return [(e.number, e.group_sha) for e in self.world.need_repo(repo).queue.get(branch, [])]

    def commit(
        self,
        repo: str,
        branch: str,
        changes: Mapping[str, ChangeValue],
        message: str = "Update files",
        author: str | None = None,
        *,
        name: str | None = None,
        email: str | None = None,
        committer: str | None = None,
        date: float | datetime | None = None,
        by: str | None = None,
    ) -> str:
        """Commit `{path: bytes | None}` on a branch as a person and push it; returns the SHA.

        ``name``/``email`` are what the pusher typed into git instead of the account's own
        (an email no account has gives `author: null`, as on GitHub); ``committer`` another
        account as committer; ``date`` the author and committer date; ``by`` who pushes
        (default: the author)."""
        spec = FakeCommit(changes, message, author, name, email, committer, date)
        return self.push_commits(repo, branch, [spec], by=by or author)

    def push_commits(
        self, repo: str, branch: str, commits: Sequence[FakeCommit], by: str | None = None
    ) -> str:
        """Several commits in one push (one `push` event, one `synchronize`); returns the head."""
        r = self.world.need_repo(repo)
        specs = [
            CommitSpec(
                c.changes,
                c.message,
                author=self._user(c.author) if c.author else None,
                name=c.name,
                email=c.email,
                committer=self._user(c.committer) if c.committer else None,
                date=c.date.timestamp() if isinstance(c.date, datetime) else c.date,
            )
            for c in commits
        ]
        return self.world.push_commits(r, branch, specs, pusher=self._author(r, by))

    def create_branch(
        self, repo: str, name: str, from_ref: str | None = None, by: str | None = None
    ) -> str:
        """Create a branch at another ref or SHA (a push with `created: true`)."""
        r = self.world.need_repo(repo)
        sha = r.resolve(from_ref or r.default_branch)
        if sha is None:
            raise ApiError(422, f"ref {from_ref!r} does not exist")
        if f"refs/heads/{name}" in r.refs:
            raise ApiError(422, "Reference already exists")
        self.world.set_ref(r, f"refs/heads/{name}", sha, pusher=self._author(r, by), force=False)
        return sha

    def delete_branch(self, repo: str, name: str, by: str | None = None) -> None:
        """Delete a branch (closes open PRs from it)."""
        r = self.world.need_repo(repo)
        self.world.set_ref(r, f"refs/heads/{name}", None, pusher=self._author(r, by), force=True)

    def force_push(self, repo: str, branch: str, sha: str, by: str | None = None) -> None:
        """Point a branch at any commit (a forced push)."""
        r = self.world.need_repo(repo)
        self.world.set_ref(r, f"refs/heads/{branch}", sha, pusher=self._author(r, by), force=True)

    # ---- pull requests, reviews, issues ----------------------------------------------------
    def open_pr(
        self,
        repo: str,
        head: str,
        base: str | None = None,
        title: str = "",
        body: str | None = "",
        author: str | None = None,
        draft: bool = False,
    ) -> int:
        """Open a pull request as a person (`pull_request.opened`); returns its number."""
        r = self.world.need_repo(repo)
        pr = self.world.open_pull(
            r, head, base or r.default_branch, title or head, body, self._author(r, author), draft
        )
        return pr.number

    def pr(self, repo: str, number: int) -> dict[str, Any]:
        """The PR as `GET /pulls/{n}` would show it, without starting a mergeability check."""
        r = self.world.need_repo(repo)
        return self.world.pull_json(r, self.world.need_pull(r, number), observe=False)

    def edit_pr(self, repo: str, number: int, by: str | None = None, **fields: Any) -> None:
        """Change title/body/base/state as a person (`edited`, `closed`, `reopened`)."""
        r = self.world.need_repo(repo)
        self.world.edit_pull(r, self.world.need_pull(r, number), fields, self._author(r, by))

    def close_pr(self, repo: str, number: int, by: str | None = None) -> None:
        """Close without merging."""
        self.edit_pr(repo, number, by, state="closed")

    def reopen_pr(self, repo: str, number: int, by: str | None = None) -> None:
        """Reopen a closed, unmerged pull request."""
        self.edit_pr(repo, number, by, state="open")

    def ready_for_review(self, repo: str, number: int, by: str | None = None) -> None:
        """Mark a draft ready (`ready_for_review`)."""
        r = self.world.need_repo(repo)
        self.world.set_draft(r, self.world.need_pull(r, number), False, self._author(r, by))

    def convert_to_draft(self, repo: str, number: int, by: str | None = None) -> None:
        """Turn a PR back into a draft (`converted_to_draft`)."""
        r = self.world.need_repo(repo)
        self.world.set_draft(r, self.world.need_pull(r, number), True, self._author(r, by))

    def request_review(
        self,
        repo: str,
        number: int,
        reviewers: list[str] | tuple[str, ...] = (),
        teams: list[str] | tuple[str, ...] = (),
        by: str | None = None,
    ) -> None:
        """Request reviewers or teams (`review_requested` each)."""
        r = self.world.need_repo(repo)
        pr = self.world.need_pull(r, number)
        self.world.request_reviewers(r, pr, list(reviewers), list(teams), self._author(r, by))

    def review(
        self,
        repo: str,
        number: int,
        login: str,
        event: str,
        body: str = "",
        commit_id: str | None = None,
    ) -> int:
        """Submit a review (APPROVE | REQUEST_CHANGES | COMMENT); returns the review id."""
        r = self.world.need_repo(repo)
        pr = self.world.need_pull(r, number)
        if event in ("REQUEST_CHANGES", "COMMENT") and not body:
            body = "Review by " + login
        return self.world.submit_review(r, pr, self._user(login), event, body, commit_id).id

    def dismiss_review(
        self, repo: str, number: int, review_id: int, by: str, message: str = ""
    ) -> None:
        """Dismiss an approval or change request (`pull_request_review.dismissed`)."""
        r = self.world.need_repo(repo)
        pr = self.world.need_pull(r, number)
        review = self.world.need_review(pr, review_id)
        self.world.dismiss_review(r, pr, review, self._user(by), message)

    def edit_review(self, repo: str, number: int, review_id: int, body: str, by: str) -> None:
        """Change a review's body (`pull_request_review.edited`)."""
        r = self.world.need_repo(repo)
        pr = self.world.need_pull(r, number)
        self.world.edit_review(r, pr, self.world.need_review(pr, review_id), body, self._user(by))

    def merge_pr(
        self,
        repo: str,
        number: int,
        by: str,
        method: str = "merge",
        admin: bool = True,
        sha: str | None = None,
    ) -> str:
        """Merge as a person clicking the button (`admin` may bypass required checks)."""
        r = self.world.need_repo(repo)
        pr = self.world.need_pull(r, number)
        return self.world.merge_pull(r, pr, self._user(by), method=method, sha=sha, admin=admin)

    def create_issue(self, repo: str, title: str, body: str = "", author: str | None = None) -> int:
        """Open an issue (`issues.opened`); returns its number."""
        r = self.world.need_repo(repo)
        return self.world.create_issue(r, title, body, self._author(r, author)).number

    def edit_issue(self, repo: str, number: int, by: str | None = None, **fields: Any) -> None:
        """Change title/body/state/labels of an issue (`issues.edited`/`closed`/`reopened`)."""
        r = self.world.need_repo(repo)
        self.world.edit_issue(r, self.world.need_issue(r, number), fields, self._author(r, by))

    def delete_issue(self, repo: str, number: int, by: str | None = None) -> None:
        """Delete an issue, as an admin can in the web UI (`issues.deleted`)."""
        r = self.world.need_repo(repo)
        self.world.delete_issue(r, self.world.need_issue(r, number), self._author(r, by))

    def close_issue(self, repo: str, number: int, by: str | None = None) -> None:
        """Close an issue (or a PR through its issue)."""
        self.edit_issue(repo, number, by, state="closed")

    def comment(self, repo: str, number: int, login: str, body: str) -> int:
        """Comment on an issue or PR (`issue_comment.created`); returns the comment id."""
        r = self.world.need_repo(repo)
        issue = self.world.need_issue(r, number)
        return self.world.add_comment(r, issue, self._user(login), body).id

    def edit_comment(self, repo: str, comment_id: int, body: str, by: str) -> None:
        """Edit a comment (`issue_comment.edited`)."""
        self.world.edit_comment(self.world.need_repo(repo), comment_id, body, self._user(by))

    def react(self, repo: str, comment_id: int, login: str, content: str) -> None:
        """Add a reaction to a comment."""
        self.world.add_reaction(self.world.need_repo(repo), comment_id, self._user(login), content)

    def add_labels(self, repo: str, number: int, labels: list[str], by: str | None = None) -> None:
        """Label an issue or PR (`labeled` per new label)."""
        r = self.world.need_repo(repo)
        self.world.add_labels(r, self.world.need_issue(r, number), labels, self._author(r, by))

    def remove_label(self, repo: str, number: int, label: str, by: str | None = None) -> None:
        """Remove a label (`unlabeled`)."""
        r = self.world.need_repo(repo)
        self.world.remove_label(r, self.world.need_issue(r, number), label, self._author(r, by))

    # ---- statuses and checks ---------------------------------------------------------------
    def set_status(
        self,
        repo: str,
        sha: str,
        context: str,
        state: str,
        by: str | None = None,
        description: str | None = None,
        target_url: str | None = None,
    ) -> int:
        """A commit status as a CI user (`status` event); returns the status id."""
        r = self.world.need_repo(repo)
        commit = r.resolve(sha)
        if commit is None:
            raise ApiError(422, f"No commit found for SHA: {sha}")
        status = self.world.set_status(
            r, commit, context, state, self._author(r, by), description, target_url
        )
        return status.id

    def rerequest_check_run(self, run_id: int, by: str | None = None) -> None:
        """A person clicks "Re-run" on one check (`check_run.rerequested` to its app)."""
        repo, run = self._find_run(run_id)
        self.world.rerequest_run(repo, run, self._author(repo, by))

    def rerequest_check_suite(self, suite_id: int, by: str | None = None) -> None:
        """A person clicks "Re-run all checks" (`check_suite.rerequested` to its app)."""
        for repo in self.world.state.repos.values():
            suite = repo.check_suites.get(suite_id)
            if suite is not None:
                self.world.rerequest_suite(repo, suite, self._author(repo, by))
                return
        raise ApiError(404, f"check suite {suite_id} does not exist")

    def check_runs(self, repo: str, sha: str | None = None) -> list[CheckRun]:
        """Check runs of a repository (optionally of one commit), oldest first."""
        r = self.world.need_repo(repo)
        return [run for run in r.check_runs.values() if sha is None or run.head_sha == sha]

    def _find_run(self, run_id: int) -> tuple[Repo, CheckRun]:
        for repo in self.world.state.repos.values():
            run = repo.check_runs.get(run_id)
            if run is not None:
                return repo, run
        raise ApiError(404, f"check run {run_id} does not exist")

    # ---- dispatch, releases, packages ------------------------------------------------------
    def dispatch(
        self,
        repo: str,
        event_type: str,
        client_payload: dict[str, Any] | None = None,
        by: str | None = None,
    ) -> None:
        """`repository_dispatch` as a CI user would trigger it."""
        r = self.world.need_repo(repo)
        self.world.dispatch(r, event_type, dict(client_payload or {}), self._author(r, by))

    def create_release(
        self,
        repo: str,
        tag: str,
        draft: bool = False,
        prerelease: bool = False,
        body: str | None = None,
        by: str | None = None,
        name: str | None = None,
        target: str | None = None,
    ) -> int:
        """A release (tag created at `target` or the default branch); returns its id."""
        r = self.world.need_repo(repo)
        release = self.world.create_release(
            r,
            tag,
            self._author(r, by),
            target=target,
            name=name,
            body=body,
            draft=draft,
            prerelease=prerelease,
        )
        return release.id

    def publish_package(
        self,
        owner: str,
        name: str,
        tag: str | None,
        digest: str,
        repo: str | None = None,
        event: str = "registry_package",
        by: str | None = None,
        revision: str | None = None,
    ) -> None:
        """A container version pushed to GHCR (`registry_package` or `package` published);
        `revision` is the commit of `repo` the image was built from."""
        account = self.world.state.account(owner)
        if account is None:
            raise ApiError(404, f"account {owner!r} does not exist")
        r = self.world.need_repo(repo) if repo else None
        sender = self._user(by) if by else (self._author(r, None) if r else self._ghost())
        self.world.publish_package(account, name, tag, digest, r, event, sender, revision)

    def set_rate_limit(self, limit: int, identity: str | None = None) -> None:
        """Primary rate limit per hour for an identity label (`installation:<id>`) or a kind
        (`installation`, `user`, `app`, `anonymous`); default for every identity when None."""
        keys = [identity] if identity else ["installation", "user", "app", "anonymous"]
        for key in keys:
            self.settings.rate_limits[key] = limit

    # ---- inspection ------------------------------------------------------------------------
    @property
    def requests(self) -> list[RecordedRequest]:
        """Every API request seen, in arrival order."""
        return self.settings.requests

    @property
    def deliveries(self) -> list[Delivery]:
        """Every webhook delivery made, in event order."""
        return self.world.hooks.deliveries

    @property
    def delivery_log(self) -> list[Delivery]:
        """The apps' webhook delivery log (every attempt posted, with its outcome), oldest
        first; ``GET /app/hook/deliveries`` lists it newest first. Kept by ``reset_counters``."""
        return self.world.hooks.log

    @property
    def webhook_timeout(self) -> float:
        """Seconds an endpoint has to answer before the delivery fails (GitHub: 10)."""
        return self.world.hooks.timeout

    @webhook_timeout.setter
    def webhook_timeout(self, value: float) -> None:
        self.world.hooks.timeout = value

    def redeliver(self, delivery: Delivery) -> Delivery:
        """What ``POST /app/hook/deliveries/{id}/attempts`` does: post it again, same guid."""
        return self.world.hooks.redeliver(delivery)

    def repo(self, full_name: str) -> Repo:
        """The repository state object (refs, issues, prs, check_runs ...)."""
        return self.world.need_repo(full_name)

    def file(self, repo: str, ref: str, path: str) -> bytes | None:
        """A file's bytes at a ref, or None."""
        r = self.world.need_repo(repo)
        sha = r.resolve(ref)
        if sha is None:
            return None
        return r.objects.read_file(r.objects.commits[sha].tree, path)

    def reset_counters(self) -> None:
        """Forget recorded requests, deliveries and rate-limit usage."""
        self.settings.requests.clear()
        self.world.hooks.deliveries.clear()
        self.settings.rate.clear()

    def inject_fault(
        self,
        method: str | None = "GET",
        path: str = ".*",
        status: int = 502,
        times: int | None = 1,
        body: Any = None,
        headers: dict[str, str] | None = None,
        reset: bool = False,
        delay: float = 0.0,
    ) -> Fault:
        """Fail matching API requests (path regex without prefix); consumed per request."""
        fault = Fault(
            method=method,
            path=re.compile(path),
            status=status,
            times=times,
            body=body,
            headers=dict(headers or {}),
            reset=reset,
            delay=delay,
        )
        self.settings.faults.append(fault)
        return fault

    def inject_secondary_rate_limit(
        self,
        path: str = ".*",
        retry_after: int = 1,
        times: int | None = 1,
        method: str | None = None,
    ) -> Fault:
        """GitHub's secondary rate limit: 403 with its message and `Retry-After`."""
        return self.inject_fault(
            method=method,
            path=path,
            status=403,
            times=times,
            body={
                "message": SECONDARY,
                "documentation_url": "https://docs.github.com/free-pro-team@latest/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits",
            },
            headers={"Retry-After": str(retry_after)},
        )

    def clear_faults(self) -> None:
        """Remove every injected fault."""
        self.settings.faults.clear()

    # ---- archives --------------------------------------------------------------------------
    @property
    def codeload_url(self) -> str:
        """Origin of the archive host the tarball endpoint redirects to."""
        return self.settings.codeload_url

    @property
    def archive_auth_leaks(self) -> int:
        """Downloads from the archive host that carried an Authorization header (should be 0)."""
        return self.settings.archive_auth_leaks

    async def archive(self, repo: str, ref: str | None = None) -> bytes:
        """The tar.gz the archive host serves for a ref (built once per commit, then kept)."""
        r = self.world.need_repo(repo)
        sha = r.resolve(ref or r.default_branch)
        if sha is None:
            raise ApiError(404, f"no commit for {ref!r}")
        body: bytes = await self.api.archives.build(r, sha)
        return body

    def serve_archive(
        self,
        repo: str,
        body: bytes | Callable[[bytes], bytes] | None = None,
        *,
        times: int | None = 1,
        status: int = 200,
    ) -> None:
        """The next ``times`` archive downloads of ``repo`` (None: all) serve ``body`` (or
        ``body(real archive)``), or answer ``status``: a tampered, hostile or failing archive."""
        self.settings.archive_overrides[repo.lower()] = ArchiveOverride(
            body if body is not None else b"", times, status
        )

    # ---- helpers ---------------------------------------------------------------------------
    def _user(self, login: str) -> User:
        return self.world.need_user(login)

    def _author(self, repo: Repo, login: str | None) -> User:
        """The named user, else the repository's owning user, else the `ghost` user."""
        if login:
            return self._user(login)
        if isinstance(repo.owner, User):
            return repo.owner
        return self._ghost()

    def _ghost(self) -> User:
        """GitHub's placeholder account, the actor when a test names nobody."""
        return self.world.state.user("ghost") or self.world.create_user("ghost", "Deleted user")
