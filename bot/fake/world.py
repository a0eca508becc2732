"""Operations that change the fake's world, each emitting the webhooks GitHub would send.

Both the Python control API and the REST handlers call these, so a push made by a test and
a push made by the bot over HTTP have identical effects (push event, check suites, PR
synchronisation, mergeability reset).
"""

from __future__ import annotations

import secrets
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bot.fake.gitobjects import ChangeValue, GitError, ObjectStore, Signature, unified_patch
from bot.fake.shapes import Shapes, Urls
from bot.fake.state import (
    ZERO_SHA,
    Account,
    ApiError,
    App,
    CheckRun,
    CheckSuite,
    Comment,
    Installation,
    Issue,
    Label,
    Org,
    Package,
    PackageVersion,
    PullRequest,
    Reaction,
    Release,
    Repo,
    Review,
    State,
    Status,
    Team,
    User,
    generate_key,
    iso,
    new_token,
    validation_failed,
)
from bot.fake.webhooks import Dispatcher, Event

WEB_FLOW = Signature("GitHub", "noreply@github.com", 0)
PASSING = frozenset({"success", "neutral", "skipped"})
SUITE_PRIORITY = (
    "action_required",
    "cancelled",
    "timed_out",
    "failure",
    "stale",
    "success",
    "neutral",
    "skipped",
)
#: Keys of a check suite that the one embedded in `check_run` events does not have.
CHECK_SUITE_LONG_FORM = (
    "check_runs_url",
    "head_commit",
    "latest_check_runs_count",
    "rerequestable",
    "runs_rerequestable",
)
REACTIONS = frozenset({"+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes"})


@dataclass(frozen=True)
class CommitSpec:
    """One commit to push: its changes and message, and who it says wrote it. ``name`` and
    ``email`` are what the pusher typed into git (GitHub links a commit to the account whose
    email it carries, or to none); by default the account's own."""

    changes: Mapping[str, ChangeValue]
    message: str = "Update files"
    author: User | None = None  # whose identity (default: the pusher's)
    name: str | None = None
    email: str | None = None
    committer: User | None = None  # default: the same identity as the author
    date: float | None = None  # seconds since the epoch (default: now)


class World:
    """The state plus the rules for changing it."""

    def __init__(self, urls: Urls) -> None:
        self.state = State()
        self.urls = urls
        self.shapes = Shapes(self.state, urls)
        self.hooks = Dispatcher(self.state)
        self.objects = ObjectStore()  # one object store for all repositories, like a fork network
        # Hooks for behaviour kept in other modules (the merge queues, bot/fake/queue.py):
        #: after a status or check run changed on a commit: (repo, sha)
        self.after_checks: list[Callable[[Repo, str], None]] = []
        #: after a branch moved or was deleted: (repo, branch, new sha or None, pusher)
        self.after_branch_moves: list[Callable[[Repo, str, str | None, User], None]] = []
        #: after a pull request was closed without merging: (repo, pr, by)
        self.after_pull_closed: list[Callable[[Repo, PullRequest, User], None]] = []
        #: before a merge (REST or a person's button): raise ApiError to refuse (repo, pr, admin)
        self.merge_guards: list[Callable[[Repo, PullRequest, bool], None]] = []
        # GitHub's own account, the committer of what GitHub commits itself (merges, the web
        # editor): commits by "GitHub <noreply@github.com>" link to it.
        self.create_user("web-flow", "GitHub", WEB_FLOW.email)

    # ---- helpers ---------------------------------------------------------------------------
    def emit(
        self,
        name: str,
        action: str | None,
        body: dict[str, Any],
        *,
        sender: Account,
        repo: Repo | None = None,
        account: Account | None = None,
        only_app: App | None = None,
        permission: str | None = None,
        installation: Installation | None = None,
    ) -> None:
        """Complete a payload with repository, organization and sender, and dispatch it."""
        owner = repo.owner if repo is not None else account
        assert owner is not None
        payload: dict[str, Any] = {}
        if action is not None:
            payload["action"] = action
        payload.update(body)
        if repo is not None and "repository" not in payload:
            payload["repository"] = self.shapes.repo(repo, webhook_push=name == "push")
        if isinstance(owner, Org) and "organization" not in payload:
            payload["organization"] = self.shapes.org(owner)
        payload["sender"] = self.shapes.user(sender)
        self.hooks.emit(
            Event(
                name,
                action,
                payload,
                owner,
                repo=repo,
                only_app=only_app,
                permission=permission,
                installation=installation,
            )
        )

    def need_user(self, login: str) -> User:
        """A user by login, or a 404-style error."""
        user = self.state.user(login)
        if user is None:
            raise ApiError(404, f"user {login!r} does not exist")
        return user

    def need_repo(self, full_name: str) -> Repo:
        """A repository by `owner/name`, or a 404-style error."""
        repo = self.state.repo(full_name)
        if repo is None:
            raise ApiError(404, f"repository {full_name!r} does not exist")
        return repo

    def signature(self, user: Account, ts: float | None = None) -> Signature:
        """Commit signature of a user now."""
        return Signature(user.name or user.login, user.commit_email, int(ts or time.time()))

    # ---- accounts --------------------------------------------------------------------------
    def create_user(self, login: str, name: str | None = None, email: str | None = None) -> User:
        """A person with a personal access token."""
        if self.state.account(login) is not None:
            raise ApiError(422, f"login {login!r} is taken")
        user = User(
            id=self.state.ids.new("user"),
            login=login,
            type="User",
            name=name,
            email=email,
            token=new_token("ghp_"),
        )
        self.state.users[login.lower()] = user
        return user

    def create_org(self, login: str, name: str | None = None) -> Org:
        """An organization."""
        if self.state.account(login) is not None:
            raise ApiError(422, f"login {login!r} is taken")
        org = Org(id=self.state.ids.new("user"), login=login, type="Organization", name=name)
        self.state.orgs[login.lower()] = org
        return org

    def need_org(self, login: str) -> Org:
        """An organization by login."""
        org = self.state.orgs.get(login.lower())
        if org is None:
            raise ApiError(404, f"organization {login!r} does not exist")
        return org

    def add_org_member(self, org: Org, user: User, role: str = "member") -> None:
        """Make a user an org member (teams imply membership)."""
        org.members.setdefault(user.login.lower(), role)

    def create_team(self, org_login: str, slug: str, name: str | None, members: list[str]) -> Team:
        """A team; members become org members."""
        org = self.need_org(org_login)
        if slug in org.teams:
            raise ApiError(422, f"team {slug!r} exists")
        team = Team(id=self.state.ids.new("team"), org=org, slug=slug, name=name or slug)
        org.teams[slug] = team
        for login in members:
            user = self.need_user(login)
            self.add_org_member(org, user)
            team.members[user.login.lower()] = "member"
        return team

    def need_team(self, org_login: str, slug: str) -> Team:
        """A team by org and slug."""
        team = self.need_org(org_login).teams.get(slug)
        if team is None:
            raise ApiError(404, f"team {org_login}/{slug} does not exist")
        return team

    def set_team_membership(
        self, org_login: str, slug: str, login: str, member: bool, by: User | None
    ) -> None:
        """Add or remove a team member, emitting `membership` added/removed."""
        team = self.need_team(org_login, slug)
        user = self.need_user(login)
        key = user.login.lower()
        if member == (key in team.members):
            return
        if member:
            self.add_org_member(team.org, user)
            team.members[key] = "member"
        else:
            del team.members[key]
        self.emit(
            "membership",
            "added" if member else "removed",
            {"scope": "team", "member": self.shapes.user(user), "team": self.shapes.team(team)},
            sender=by or user,
            account=team.org,
            permission="members",
        )

    # ---- apps and installations ------------------------------------------------------------
    def create_app(
        self,
        slug: str,
        name: str,
        owner: Account | None,
        webhook_url: str | None,
        webhook_secret: str | None,
        events: list[str],
        permissions: dict[str, str],
    ) -> App:
        """An app with a fresh key pair and its bot user."""
        if any(a.slug == slug for a in self.state.apps.values()):
            raise ApiError(422, f"app {slug!r} exists")
        pem, public = generate_key()
        app_id = self.state.ids.new("app")
        bot = User(id=self.state.ids.new("user"), login=f"{slug}[bot]", type="Bot", name=name)
        if owner is None:
            owner = self.state.account("github-apps") or self.create_org("github-apps")
        app = App(
            id=app_id,
            slug=slug,
            name=name,
            owner=owner,
            private_key_pem=pem,
            public_key=public,
            webhook_url=webhook_url,
            webhook_secret=webhook_secret,
            events=list(events),
            permissions={"metadata": "read", **permissions},
            bot=bot,
            hook_id=self.state.ids.new("hook"),
            client_id="Iv1." + secrets.token_hex(8),
            client_secret=secrets.token_hex(20),
        )
        bot.app = app
        self.state.users[bot.login.lower()] = bot
        self.state.apps[app_id] = app
        return app

    def install(
        self, app: App, account_login: str, repositories: list[str] | str, by: User | None
    ) -> Installation:
        """Install an app (`installation.created`), or change an installation's repositories
        (`installation_repositories.added/removed`) when it is already installed there."""
        account = self.state.account(account_login)
        if account is None:
            raise ApiError(404, f"account {account_login!r} does not exist")
        selection = "all" if repositories == "all" else "selected"
        wanted = (
            set()
            if repositories == "all"
            else {self.need_repo(f"{account.login}/{name}").id for name in repositories}
        )
        existing = next(
            (i for i in self.state.installations.values() if i.app is app and i.account is account),
            None,
        )
        sender: Account = by or (account if isinstance(account, User) else app.owner)
        if existing is None:
            inst = Installation(
                id=self.state.ids.new("installation"),
                app=app,
                account=account,
                repository_selection=selection,
                repo_ids=wanted,
            )
            self.state.installations[inst.id] = inst
            repos = self.state.installation_repos(inst)
            self.emit(
                "installation",
                "created",
                {
                    "installation": self.shapes.installation(inst),
                    "repositories": [_repo_brief(r) for r in repos],
                    # `requester` only when someone else asked for the installation: absent,
                    # never null, as in GitHub's example payload
                },
                sender=sender,
                account=account,
                installation=inst,
            )
            return inst
        before = {r.id: r for r in self.state.installation_repos(existing)}
        existing.repository_selection = selection
        existing.repo_ids = wanted
        existing.updated_at = time.time()
        after = {r.id: r for r in self.state.installation_repos(existing)}
        added = [after[i] for i in after if i not in before]
        removed = [before[i] for i in before if i not in after]
        for action, repos in (("added", added), ("removed", removed)):
            if repos:
                self.emit(
                    "installation_repositories",
                    action,
                    {
                        "installation": self.shapes.installation(existing),
                        "repository_selection": selection,
                        "repositories_added": [_repo_brief(r) for r in added]
                        if action == "added"
                        else [],
                        "repositories_removed": [_repo_brief(r) for r in removed]
                        if action == "removed"
                        else [],
                        "requester": None,
                    },
                    sender=sender,
                    account=account,
                    installation=existing,
                )
        return existing

    # ---- repositories and git --------------------------------------------------------------
    def create_repo(
        self,
        owner_login: str,
        name: str,
        files: Mapping[str, ChangeValue],
        default_branch: str,
        author: User | None,
        private: bool,
        description: str | None = None,
    ) -> Repo:
        """A repository with one initial commit holding `files` (no webhooks, like a seed)."""
        owner = self.state.account(owner_login)
        if owner is None:
            raise ApiError(404, f"account {owner_login!r} does not exist")
        if self.state.repo(f"{owner_login}/{name}") is not None:
            raise ApiError(422, f"repository {owner_login}/{name} exists")
        repo = Repo(
            id=self.state.ids.new("repo"),
            owner=owner,
            name=name,
            default_branch=default_branch,
            private=private,
            objects=self.objects,
            description=description,
        )
        if files:
            sig = self.signature(author or owner)
            tree = self.objects.write_tree(files)
            sha = self.objects.put_commit(tree, [], sig, sig, "Initial commit")
            repo.refs[f"refs/heads/{default_branch}"] = sha
        self.state.repos[repo.full_name.lower()] = repo
        return repo

    def commit_files(
        self,
        repo: Repo,
        branch: str,
        changes: Mapping[str, ChangeValue],
        message: str,
        author: User,
        committer: User | None = None,
        identity: tuple[str, str] | None = None,
    ) -> str:
        """Commit changes on top of a branch (created from nothing if absent) and push it.

        ``identity`` (name, e-mail) writes that author and committer into the commit instead
        of ``author``'s, as ``git commit`` with any configured identity does (``author`` still
        pushes): GitHub links such a commit to an account only by its e-mail."""
        name, email = identity if identity is not None else (None, None)
        spec = CommitSpec(
            changes, message, author=author, name=name, email=email, committer=committer
        )
        return self.push_commits(repo, branch, [spec], pusher=committer or author)

    def push_commits(
        self, repo: Repo, branch: str, specs: Sequence[CommitSpec], *, pusher: User
    ) -> str:
        """Several commits on top of a branch in one push (one push event), as ``git push``
        after committing locally: each says who wrote it, which need not be the pusher."""
        ref = f"refs/heads/{branch}"
        sha = repo.refs.get(ref)
        for spec in specs:
            base_tree = self.objects.commits[sha].tree if sha else None
            try:
                tree = (
                    self.objects.apply_changes(base_tree, spec.changes)
                    if base_tree
                    else self.objects.write_tree(spec.changes)
                )
            except GitError as exc:
                raise ApiError(422, str(exc)) from None
            now = spec.date if spec.date is not None else time.time()
            author = self.signature(spec.author or pusher, now)
            if spec.name is not None or spec.email is not None:
                author = Signature(spec.name or author.name, spec.email or author.email, int(now))
            committer = self.signature(spec.committer, now) if spec.committer else author
            sha = self.objects.put_commit(
                tree, [sha] if sha else [], author, committer, spec.message
            )
        assert sha is not None
        self.set_ref(repo, ref, sha, pusher=pusher, force=False)
        return sha

    def set_ref(self, repo: Repo, ref: str, sha: str | None, *, pusher: User, force: bool) -> None:
        """Move, create or (sha None) delete a ref, with everything that follows a push."""
        old = repo.refs.get(ref)
        if sha is None:
            if old is None:
                raise ApiError(422, "Reference does not exist")
            del repo.refs[ref]
        else:
            if sha not in self.objects.commits:
                raise ApiError(422, "Object does not exist")
            if old is not None and not force and not self.objects.is_ancestor(old, sha):
                raise ApiError(422, "Update is not a fast forward")
            repo.refs[ref] = sha
        if old == sha:
            return
        repo.pushed_at = repo.updated_at = time.time()
        self.emit_push(
            repo,
            ref,
            old,
            sha,
            pusher,
            forced=bool(force and old and sha and not self.objects.is_ancestor(old, sha)),
        )
        if ref.startswith("refs/heads/"):
            branch = ref[len("refs/heads/") :]
            self.after_branch_moved(repo, branch, sha, pusher, old)

    def after_branch_moved(
        self, repo: Repo, branch: str, sha: str | None, pusher: User, old: str | None
    ) -> None:
        """Pull request and check bookkeeping after a branch moved or was deleted."""
        if sha is not None:
            self.request_check_suites(repo, branch, sha, old, pusher)
        for pr in list(repo.prs.values()):
            if pr.state != "open":
                continue
            if pr.head_ref == branch:
                if sha is None:
                    self.close_pull(repo, pr, pusher)
                else:
                    before = pr.head_sha
                    pr.head_sha = sha
                    pr.updated_at = time.time()
                    self.emit_pull(repo, pr, "synchronize", pusher, before=before, after=sha)
            if pr.base_ref == branch and sha is not None:
                pr.base_sha = sha
        for hook in self.after_branch_moves:
            hook(repo, branch, sha, pusher)

    def request_check_suites(
        self, repo: Repo, branch: str, sha: str, old: str | None, pusher: User
    ) -> None:
        """A new head commit gets a check suite per app with checks:write (`requested`)."""
        for inst in self.state.installations_for(repo):
            app = inst.app
            if app.permissions.get("checks") != "write":
                continue
            if any(s.app is app and s.head_sha == sha for s in repo.check_suites.values()):
                continue
            suite = CheckSuite(
                id=self.state.ids.new("check_suite"),
                app=app,
                head_sha=sha,
                head_branch=branch,
                before=old or ZERO_SHA,
                after=sha,
            )
            repo.check_suites[suite.id] = suite
            self.emit_suite(repo, suite, "requested", pusher)

    def emit_push(
        self, repo: Repo, ref: str, old: str | None, new: str | None, pusher: User, forced: bool
    ) -> None:
        """The `push` event with its commit list (at most 20, oldest first).

        As on GitHub, a new branch lists only the commits no other branch has: a branch made
        from main with one commit lists that one, not main's history."""
        store = self.objects
        commits: list[dict[str, Any]] = []
        if new is not None:
            known: set[str] = set()
            if old:
                known = store.ancestors(old)
            else:
                for name, sha in repo.refs.items():
                    if name != ref and name.startswith("refs/heads/") and sha not in known:
                        known |= store.ancestors(sha)
            fresh = [c for c in store.log([new]) if c.sha not in known]
            fresh.reverse()
            commits = [self.shapes.push_commit(repo, c, store) for c in fresh[-20:]]
        head = self.shapes.push_commit(repo, store.commits[new], store) if new else None
        web = f"{self.urls.web}/{repo.full_name}"
        if old and new:
            compare = f"{web}/compare/{old[:12]}...{new[:12]}"
        elif new:
            compare = f"{web}/commit/{new[:12]}"
        else:
            compare = f"{web}/compare/{(old or ZERO_SHA)[:12]}...{ZERO_SHA[:12]}"
        body = {
            "ref": ref,
            "before": old or ZERO_SHA,
            "after": new or ZERO_SHA,
            "repository": self.shapes.repo(repo, webhook_push=True),
            "pusher": {"name": pusher.login, "email": pusher.commit_email},
            "created": old is None,
            "deleted": new is None,
            "forced": forced,
            "base_ref": None,
            "compare": compare,
            "commits": commits,
            "head_commit": head,
        }
        self.emit("push", None, body, sender=pusher, repo=repo, permission="contents")

    # ---- pull requests ---------------------------------------------------------------------
    def pull_extra(self, repo: Repo, pr: PullRequest, *, observe: bool) -> dict[str, Any]:
        """Mergeability and size fields of a pull request.

        GitHub computes mergeability in the background: the first read after the head or base
        moved answers `mergeable: null`, a following read has the value. `observe=False`
        reports without starting that computation (webhook payloads, `fake.pr()`).
        """
        base_tip = repo.branch_sha(pr.base_ref) or pr.base_sha
        head = pr.head_sha
        stats = self.pull_size(repo, pr)
        if pr.state != "open":
            return {**stats, "mergeable": None, "mergeable_state": "unknown"}
        key = (base_tip, head)
        if pr.mergeable_key != key:
            if observe:
                pr.mergeable_key = key
                pr.mergeable_value, pr.test_merge_sha = self.test_merge(repo, pr)
            return {**stats, "mergeable": None, "mergeable_state": "unknown"}
        return {
            **stats,
            "mergeable": pr.mergeable_value,
            "mergeable_state": self.mergeable_state(repo, pr, pr.mergeable_value),
        }

    def pull_json(self, repo: Repo, pr: PullRequest, *, observe: bool) -> dict[str, Any]:
        """The full pull request JSON."""
        return self.shapes.pull(repo, pr, self.pull_extra(repo, pr, observe=observe))

    def pull_size(self, repo: Repo, pr: PullRequest) -> dict[str, int]:
        """commits / additions / deletions / changed_files of a pull request."""
        commits = self.pull_commits(repo, pr)
        adds = dels = 0
        files = self.pull_files(repo, pr, limit=sys.maxsize)
        for f in files:
            adds += f["additions"]
            dels += f["deletions"]
        return {
            "commits": len(commits),
            "additions": adds,
            "deletions": dels,
            "changed_files": len(files),
        }

    def pull_base_point(self, repo: Repo, pr: PullRequest) -> str | None:
        """The merge base of head and base (the PR's diff starts there). A closed or merged PR
        keeps the diff it had then, as GitHub does: its base is the one recorded at closing."""
        base = pr.base_sha if pr.state != "open" else repo.branch_sha(pr.base_ref) or pr.base_sha
        return self.objects.merge_base(base, pr.head_sha)

    def pull_commits(self, repo: Repo, pr: PullRequest) -> list[Any]:
        """Commits on head not on base, oldest first (at most 250, as GitHub)."""
        base = pr.base_sha if pr.merged else (repo.branch_sha(pr.base_ref) or pr.base_sha)
        known = self.objects.ancestors(base) if base else set()
        fresh = [c for c in self.objects.log([pr.head_sha]) if c.sha not in known]
        fresh.reverse()
        return fresh[:250]

    def pull_files(self, repo: Repo, pr: PullRequest, *, limit: int = 3000) -> list[dict[str, Any]]:
        """`diff-entry` items of the PR's changes (three-dot diff), at most 3000 (GitHub's
        limit on the list; the PR's `changed_files` counts them all)."""
        mb = self.pull_base_point(repo, pr)
        old_tree = self.objects.commits[mb].tree if mb else None
        new_tree = self.objects.commits[pr.head_sha].tree
        return self.diff_entries(repo, old_tree, new_tree, pr.head_sha)[:limit]

    def diff_entries(
        self, repo: Repo, old_tree: str | None, new_tree: str, ref: str
    ) -> list[dict[str, Any]]:
        """GitHub's file list for a diff: status, counts, patch, URLs."""
        out: list[dict[str, Any]] = []
        blobs = self.objects.blobs
        api = f"{self.urls.api}/repos/{repo.full_name}"
        web = f"{self.urls.web}/{repo.full_name}"
        for ch in self.objects.diff_trees(old_tree, new_tree):
            old = blobs.get(ch.old_sha) if ch.old_sha else None
            new = blobs.get(ch.new_sha) if ch.new_sha else None
            patch = unified_patch(old, new)
            entry: dict[str, Any] = {
                "sha": ch.new_sha or ch.old_sha,
                "filename": ch.path,
                "status": ch.status,
                "additions": patch.additions,
                "deletions": patch.deletions,
                "changes": patch.additions + patch.deletions,
                "blob_url": f"{web}/blob/{ref}/{ch.path}",
                "raw_url": f"{web}/raw/{ref}/{ch.path}",
                "contents_url": f"{api}/contents/{ch.path}?ref={ref}",
            }
            if patch.text is not None:
                entry["patch"] = patch.text
            if ch.previous_path is not None:
                entry["previous_filename"] = ch.previous_path
            out.append(entry)
        return out

    def test_merge(self, repo: Repo, pr: PullRequest) -> tuple[bool, str | None]:
        """Whether head merges cleanly into base, and the test merge commit when it does."""
        base = repo.branch_sha(pr.base_ref) or pr.base_sha
        mb = self.objects.merge_base(base, pr.head_sha)
        base_tree = self.objects.commits[mb].tree if mb else None
        result = self.objects.merge_trees(
            base_tree, self.objects.commits[base].tree, self.objects.commits[pr.head_sha].tree
        )
        if result.tree is None:
            return False, None
        sig = Signature(WEB_FLOW.name, WEB_FLOW.email, int(time.time()))
        sha = self.objects.put_commit(
            result.tree, [base, pr.head_sha], sig, sig, f"Merge {pr.head_sha} into {base}"
        )
        self.objects.signed.add(sha)
        return True, sha

    def mergeable_state(self, repo: Repo, pr: PullRequest, mergeable: bool | None) -> str:
        """clean | unstable | blocked | dirty | draft | unknown | behind."""
        if mergeable is None:
            return "unknown"
        if not mergeable:
            return "dirty"
        if pr.draft:
            return "draft"
        protection = repo.protection.get(pr.base_ref)
        if protection is not None:
            if self.missing_required_check(repo, protection.contexts, pr.head_sha) is not None:
                return "blocked"
            base = repo.branch_sha(pr.base_ref)
            if protection.strict and base and not self.objects.is_ancestor(base, pr.head_sha):
                return "behind"
        if self.combined_state(repo, pr.head_sha) in ("failure", "pending") and self.has_any_check(
            repo, pr.head_sha
        ):
            return "unstable"
        return "clean"

    def has_any_check(self, repo: Repo, sha: str) -> bool:
        """Whether any status or check run exists on a commit."""
        return any(s.sha == sha for s in repo.statuses) or any(
            r.head_sha == sha for r in repo.check_runs.values()
        )

    def combined_state(self, repo: Repo, sha: str) -> str:
        """failure if any latest status or completed run failed, pending if any is pending."""
        states = [s.state for s in self.latest_statuses(repo, sha)]
        for run in self.latest_runs(repo, sha):
            if run.status != "completed":
                states.append("pending")
            elif run.conclusion in PASSING:
                states.append("success")
            else:
                states.append("failure")
        if any(s in ("failure", "error") for s in states):
            return "failure"
        if not states or any(s == "pending" for s in states):
            return "pending"
        return "success"

    def latest_statuses(self, repo: Repo, sha: str) -> list[Status]:
        """The newest status per context on a commit."""
        latest: dict[str, Status] = {}
        for s in repo.statuses:
            if s.sha == sha:
                latest[s.context] = s
        return sorted(latest.values(), key=lambda s: s.id, reverse=True)

    def latest_runs(self, repo: Repo, sha: str) -> list[CheckRun]:
        """The newest check run per (app, name) on a commit."""
        latest: dict[tuple[int, str], CheckRun] = {}
        for run in repo.check_runs.values():
            if run.head_sha == sha:
                latest[(run.app.id, run.name)] = run
        return sorted(latest.values(), key=lambda r: r.id, reverse=True)

    def missing_required_check(self, repo: Repo, contexts: list[str], sha: str) -> str | None:
        """The first required context without a passing status or check run on `sha`."""
        statuses = {s.context: s.state for s in self.latest_statuses(repo, sha)}
        for context in contexts:
            if statuses.get(context) == "success":
                continue
            runs = [r for r in self.latest_runs(repo, sha) if r.name == context]
            if any(r.status == "completed" and r.conclusion in PASSING for r in runs):
                continue
            return context
        return None

    def emit_pull(
        self, repo: Repo, pr: PullRequest, action: str, sender: User, **extra: Any
    ) -> None:
        """A `pull_request` event."""
        body: dict[str, Any] = {"number": pr.number}
        body.update(extra)
        body["pull_request"] = self.pull_json(repo, pr, observe=False)
        self.emit(
            "pull_request", action, body, sender=sender, repo=repo, permission="pull_requests"
        )

    def open_pull(
        self,
        repo: Repo,
        head: str,
        base: str,
        title: str,
        body: str | None,
        author: User,
        draft: bool = False,
        via_app: App | None = None,
    ) -> PullRequest:
        """Open a pull request (422 as GitHub for missing branches, duplicates, no commits)."""
        if ":" in head:
            owner, _, head = head.partition(":")
            if owner.lower() != repo.owner.login.lower():
                raise validation_failed(
                    errors=[{"resource": "PullRequest", "field": "head", "code": "invalid"}]
                )
        head_sha = repo.branch_sha(head)
        base_sha = repo.branch_sha(base)
        if base_sha is None:
            raise validation_failed(
                errors=[{"resource": "PullRequest", "field": "base", "code": "invalid"}]
            )
        if head_sha is None:
            raise validation_failed(
                errors=[{"resource": "PullRequest", "field": "head", "code": "invalid"}]
            )
        for other in repo.prs.values():
            if other.state == "open" and other.head_ref == head and other.base_ref == base:
                raise validation_failed(
                    errors=[
                        {
                            "resource": "PullRequest",
                            "code": "custom",
                            "message": _already_exists(repo, head),
                        }
                    ]
                )
        if self.objects.is_ancestor(head_sha, base_sha):
            raise validation_failed(
                errors=[
                    {
                        "resource": "PullRequest",
                        "code": "custom",
                        "message": f"No commits between {base} and {head}",
                    }
                ]
            )
        if not title:
            raise validation_failed(
                errors=[{"resource": "PullRequest", "field": "title", "code": "missing_field"}]
            )
        number = repo.next_number
        repo.next_number += 1
        pr = PullRequest(
            id=self.state.ids.new("issue"),
            number=number,
            title=title,
            body=body,
            user=author,
            pr_id=self.state.ids.new("pull"),
            head_ref=head,
            head_sha=head_sha,
            base_ref=base,
            base_sha=base_sha,
            draft=draft,
            performed_via_app=via_app,
        )
        repo.issues[number] = pr
        self.emit_pull(repo, pr, "opened", author)
        return pr

    def need_pull(self, repo: Repo, number: int) -> PullRequest:
        """A pull request by number, else 404."""
        pr = repo.issues.get(number)
        if not isinstance(pr, PullRequest):
            raise ApiError(404, "Not Found")
        return pr

    def need_issue(self, repo: Repo, number: int) -> Issue:
        """An issue (or PR as issue) by number, else 404."""
        issue = repo.issues.get(number)
        if issue is None:
            raise ApiError(404, "Not Found")
        return issue

    def edit_pull(self, repo: Repo, pr: PullRequest, fields: dict[str, Any], by: User) -> None:
        """PATCH a pull request: title/body (`edited`), base (`edited`), state (closed/reopened)."""
        changes: dict[str, Any] = {}
        for key in ("title", "body"):
            if key in fields and fields[key] != getattr(pr, key):
                changes[key] = {"from": getattr(pr, key)}
                setattr(pr, key, fields[key])
        if "base" in fields and fields["base"] != pr.base_ref:
            new_base = repo.branch_sha(fields["base"])
            if new_base is None:
                raise validation_failed(
                    errors=[{"resource": "PullRequest", "field": "base", "code": "invalid"}]
                )
            changes["base"] = {"ref": {"from": pr.base_ref}, "sha": {"from": pr.base_sha}}
            pr.base_ref, pr.base_sha = fields["base"], new_base
        if "maintainer_can_modify" in fields:
            pr.maintainer_can_modify = bool(fields["maintainer_can_modify"])
        if changes:
            pr.updated_at = time.time()
            self.emit_pull(repo, pr, "edited", by, changes=changes)
        state = fields.get("state")
        if state == "closed" and pr.state == "open":
            self.close_pull(repo, pr, by)
        elif state == "open" and pr.state == "closed" and not pr.merged:
            self.reopen_pull(repo, pr, by)

    def close_pull(self, repo: Repo, pr: PullRequest, by: User) -> None:
        """Close without merging (`closed`, merged false)."""
        pr.state = "closed"
        pr.closed_at = pr.updated_at = time.time()
        pr.closed_by = by
        self.emit_pull(repo, pr, "closed", by)
        for hook in self.after_pull_closed:
            hook(repo, pr, by)

    def reopen_pull(self, repo: Repo, pr: PullRequest, by: User) -> None:
        """Reopen a closed pull request whose head branch still exists."""
        head = repo.branch_sha(pr.head_ref)
        if head is None:
            raise validation_failed(
                errors=[
                    {
                        "resource": "PullRequest",
                        "code": "custom",
                        "message": "state cannot be changed. The head branch was deleted.",
                    }
                ]
            )
        for other in repo.prs.values():
            if (
                other is not pr
                and other.state == "open"
                and other.head_ref == pr.head_ref
                and other.base_ref == pr.base_ref
            ):
                raise validation_failed(
                    errors=[
                        {
                            "resource": "PullRequest",
                            "code": "custom",
                            "message": _already_exists(repo, pr.head_ref),
                        }
                    ]
                )
        pr.state = "open"
        pr.head_sha = head
        pr.closed_at = None
        pr.closed_by = None
        pr.updated_at = time.time()
        self.emit_pull(repo, pr, "reopened", by)

    def set_draft(self, repo: Repo, pr: PullRequest, draft: bool, by: User) -> None:
        """`ready_for_review` / `converted_to_draft`."""
        if pr.draft == draft:
            return
        pr.draft = draft
        pr.updated_at = time.time()
        self.emit_pull(repo, pr, "converted_to_draft" if draft else "ready_for_review", by)

    def request_reviewers(
        self,
        repo: Repo,
        pr: PullRequest,
        logins: list[str],
        team_slugs: list[str],
        by: User,
        remove: bool = False,
    ) -> None:
        """Add (or remove) requested reviewers and teams, one event per reviewer."""
        not_collab = (
            "Reviews may only be requested from collaborators. One or more of the users or teams "
            f"you specified is not a collaborator of the {repo.full_name} repository."
        )
        users: list[User] = []
        for login in logins:
            user = self.state.user(login)
            if user is None or (not remove and self.state.role(repo, user) is None):
                raise validation_failed(not_collab)
            if not remove and user is pr.user:
                raise validation_failed("Review cannot be requested from pull request author.")
            users.append(user)
        teams: list[Team] = []
        for slug in team_slugs:
            team = repo.owner.teams.get(slug) if isinstance(repo.owner, Org) else None
            if team is None:
                raise validation_failed(not_collab)
            teams.append(team)
        for user in users:
            present = user in pr.requested_reviewers
            if remove and present:
                pr.requested_reviewers.remove(user)
                self.emit_pull(
                    repo,
                    pr,
                    "review_request_removed",
                    by,
                    requested_reviewer=self.shapes.user(user),
                )
            elif not remove and not present:
                pr.requested_reviewers.append(user)
                self.emit_pull(
                    repo, pr, "review_requested", by, requested_reviewer=self.shapes.user(user)
                )
        for team in teams:
            present = team in pr.requested_teams
            if remove and present:
                pr.requested_teams.remove(team)
                self.emit_pull(
                    repo, pr, "review_request_removed", by, requested_team=self.shapes.team(team)
                )
            elif not remove and not present:
                pr.requested_teams.append(team)
                self.emit_pull(
                    repo, pr, "review_requested", by, requested_team=self.shapes.team(team)
                )

    def submit_review(
        self, repo: Repo, pr: PullRequest, user: User, event: str, body: str, commit_id: str | None
    ) -> Review:
        """A review; the author may not approve or request changes on their own PR.

        `event` PENDING stores a draft review, as GitHub does when no event is given.
        """
        states = {
            "APPROVE": "APPROVED",
            "REQUEST_CHANGES": "CHANGES_REQUESTED",
            "COMMENT": "COMMENTED",
            "PENDING": "PENDING",
        }
        if event not in states:
            raise validation_failed(
                "Unprocessable Entity",
                errors=[f"Invalid event {event!r}: must be APPROVE, REQUEST_CHANGES or COMMENT"],
            )
        if user is pr.user and event == "APPROVE":
            raise validation_failed(
                "Unprocessable Entity", errors=["Can not approve your own pull request"]
            )
        if user is pr.user and event == "REQUEST_CHANGES":
            raise validation_failed(
                "Unprocessable Entity", errors=["Can not request changes on your own pull request"]
            )
        if event in ("REQUEST_CHANGES", "COMMENT") and not body:
            raise validation_failed(
                "Unprocessable Entity",
                errors=["Body is required when using REQUEST_CHANGES or COMMENT"],
            )
        if commit_id is not None and commit_id not in self.objects.commits:
            raise validation_failed(
                "Unprocessable Entity", errors=["Commit id is not part of the pull request"]
            )
        review = Review(
            id=self.state.ids.new("review"),
            user=user,
            state=states[event],
            body=body,
            commit_id=commit_id or pr.head_sha,
        )
        pr.reviews.append(review)
        if review.state == "PENDING":
            return review  # a draft review: visible to its author, no webhook
        if user in pr.requested_reviewers:
            pr.requested_reviewers.remove(user)
        pr.updated_at = time.time()
        self.emit(
            "pull_request_review",
            "submitted",
            self.review_event(repo, pr, review),
            sender=user,
            repo=repo,
            permission="pull_requests",
        )
        return review

    def review_event(self, repo: Repo, pr: PullRequest, review: Review) -> dict[str, Any]:
        """`review` and `pull_request` of a `pull_request_review` event: the review's state in
        lower case (`approved`; the REST API says `APPROVED`) and the simple pull request
        (no mergeability, counts or `merged`), as GitHub sends them."""
        shown = self.shapes.review(repo, pr, review)
        shown["state"] = str(shown["state"]).lower()
        return {"review": shown, "pull_request": self.shapes.pull_simple(repo, pr)}

    def need_review(self, pr: PullRequest, review_id: int) -> Review:
        """A review of a PR by id, else 404."""
        review = next((r for r in pr.reviews if r.id == review_id), None)
        if review is None:
            raise ApiError(404, "Not Found")
        return review

    def dismiss_review(
        self, repo: Repo, pr: PullRequest, review: Review, by: User, message: str
    ) -> None:
        """Dismiss an approval or change request (`dismissed`)."""
        if review.state not in ("APPROVED", "CHANGES_REQUESTED"):
            raise validation_failed(
                "Unprocessable Entity",
                errors=[f"Can not dismiss a {review.state.lower()} pull request review"],
            )
        review.state = "DISMISSED"
        review.dismissal_message = message
        self.emit(
            "pull_request_review",
            "dismissed",
            self.review_event(repo, pr, review),
            sender=by,
            repo=repo,
            permission="pull_requests",
        )

    def edit_review(self, repo: Repo, pr: PullRequest, review: Review, body: str, by: User) -> None:
        """Change a review's body (`edited`)."""
        old = review.body
        review.body = body
        self.emit(
            "pull_request_review",
            "edited",
            {"changes": {"body": {"from": old}}, **self.review_event(repo, pr, review)},
            sender=by,
            repo=repo,
            permission="pull_requests",
        )

    def merge_pull(
        self,
        repo: Repo,
        pr: PullRequest,
        by: User,
        method: str = "merge",
        sha: str | None = None,
        title: str | None = None,
        message: str | None = None,
        admin: bool = False,
    ) -> str:
        """Merge as GitHub's merge button does; returns the new base tip."""
        doc = "https://docs.github.com/rest/pulls/pulls#merge-a-pull-request"
        if method not in ("merge", "squash", "rebase"):
            raise validation_failed(
                errors=[{"resource": "PullRequest", "field": "merge_method", "code": "invalid"}],
                doc=doc,
            )
        if pr.state != "open":
            raise ApiError(405, "Pull Request is not mergeable", documentation_url=doc)
        if sha is not None and sha != pr.head_sha:
            raise ApiError(
                409,
                "Head branch was modified. Review and try the merge again.",
                documentation_url=doc,
            )
        if pr.draft:
            raise ApiError(405, "Pull Request is still a draft", documentation_url=doc)
        for guard in self.merge_guards:
            guard(repo, pr, admin)
        mergeable, _ = self.test_merge(repo, pr)
        if not mergeable:
            raise ApiError(405, "Pull Request is not mergeable", documentation_url=doc)
        protection = repo.protection.get(pr.base_ref)
        if protection is not None and not admin:
            missing = self.missing_required_check(repo, protection.contexts, pr.head_sha)
            if missing is not None:
                raise ApiError(
                    405,
                    f'Required status check "{missing}" is expected.',
                    documentation_url="https://docs.github.com/articles/about-protected-branches",
                )
            base_now = repo.branch_sha(pr.base_ref)
            if (
                protection.strict
                and base_now
                and not self.objects.is_ancestor(base_now, pr.head_sha)
            ):
                raise ApiError(
                    405,
                    "Head branch was modified. Review and try the merge again.",
                    documentation_url=doc,
                )
        new_tip = self._merge_commit(repo, pr, by, method, title, message)
        self.objects.signed.add(new_tip)  # GitHub signs the commits of its merges (web-flow)
        now = time.time()
        pr.merged = True
        pr.merged_at = pr.closed_at = pr.updated_at = now
        pr.merged_by = by
        pr.closed_by = by
        pr.merge_commit_sha = new_tip
        pr.base_sha = repo.branch_sha(pr.base_ref) or pr.base_sha
        pr.state = "closed"
        self.emit_pull(repo, pr, "closed", by)
        self.set_ref(repo, f"refs/heads/{pr.base_ref}", new_tip, pusher=by, force=False)
        return new_tip

    def _merge_commit(
        self,
        repo: Repo,
        pr: PullRequest,
        by: User,
        method: str,
        title: str | None,
        message: str | None,
    ) -> str:
        base = repo.branch_sha(pr.base_ref)
        assert base is not None
        store = self.objects
        now = int(time.time())
        committer = Signature(WEB_FLOW.name, WEB_FLOW.email, now)
        if method == "rebase":
            tip = base
            for c in self.pull_commits(repo, pr):
                parent_tree = store.commits[c.parents[0]].tree if c.parents else None
                merged = store.merge_trees(parent_tree, store.commits[tip].tree, c.tree)
                if merged.tree is None:
                    raise ApiError(405, "Pull Request is not mergeable")
                tip = store.put_commit(merged.tree, [tip], c.author, committer, c.message)
                store.signed.add(tip)
            return tip
        mb = store.merge_base(base, pr.head_sha)
        result = store.merge_trees(
            store.commits[mb].tree if mb else None,
            store.commits[base].tree,
            store.commits[pr.head_sha].tree,
        )
        assert result.tree is not None
        if method == "squash":
            commits = self.pull_commits(repo, pr)
            default_body = "\n\n".join(f"* {c.message.strip()}" for c in commits)
            body = message if message is not None else default_body
            text = f"{title or f'{pr.title} (#{pr.number})'}\n\n{body}"
            return store.put_commit(
                result.tree, [base], self.signature(pr.user, now), committer, text.rstrip() + "\n"
            )
        head_label = f"{repo.owner.login}/{pr.head_ref}"
        body = message if message is not None else pr.title
        text = f"{title or f'Merge pull request #{pr.number} from {head_label}'}\n\n{body}"
        return store.put_commit(
            result.tree,
            [base, pr.head_sha],
            self.signature(by, now),
            committer,
            text.rstrip() + "\n",
        )

    # ---- issues, comments, labels, reactions -----------------------------------------------
    def create_issue(
        self, repo: Repo, title: str, body: str | None, author: User, via_app: App | None = None
    ) -> Issue:
        """Open an issue (`issues.opened`)."""
        if not title:
            raise validation_failed(
                errors=[{"resource": "Issue", "field": "title", "code": "missing_field"}]
            )
        number = repo.next_number
        repo.next_number += 1
        issue = Issue(
            id=self.state.ids.new("issue"),
            number=number,
            title=title,
            body=body,
            user=author,
            performed_via_app=via_app,
        )
        repo.issues[number] = issue
        self.emit_issue(repo, issue, "opened", author)
        return issue

    def emit_issue(self, repo: Repo, issue: Issue, action: str, sender: User, **extra: Any) -> None:
        """An `issues` event."""
        body: dict[str, Any] = dict(extra)
        body["issue"] = self.shapes.issue(repo, issue, webhook=True)
        self.emit("issues", action, body, sender=sender, repo=repo, permission="issues")

    def edit_issue(self, repo: Repo, issue: Issue, fields: dict[str, Any], by: User) -> None:
        """PATCH an issue; for a PR this edits its issue side (events as GitHub sends)."""
        if isinstance(issue, PullRequest):
            self.edit_pull(
                repo,
                issue,
                {k: v for k, v in fields.items() if k in ("title", "body", "state")},
                by,
            )
            if "labels" in fields:
                self.set_labels(repo, issue, list(fields["labels"]), by)
            return
        changes: dict[str, Any] = {}
        for key in ("title", "body"):
            if key in fields and fields[key] != getattr(issue, key):
                changes[key] = {"from": getattr(issue, key)}
                setattr(issue, key, fields[key])
        if changes:
            issue.updated_at = time.time()
            self.emit_issue(repo, issue, "edited", by, changes=changes)
        if "labels" in fields:
            self.set_labels(repo, issue, list(fields["labels"]), by)
        state = fields.get("state")
        if state == "closed" and issue.state == "open":
            issue.state = "closed"
            issue.state_reason = fields.get("state_reason") or "completed"
            issue.closed_at = issue.updated_at = time.time()
            issue.closed_by = by
            self.emit_issue(repo, issue, "closed", by)
        elif state == "open" and issue.state == "closed":
            issue.state, issue.state_reason, issue.closed_at, issue.closed_by = (
                "open",
                "reopened",
                None,
                None,
            )
            issue.updated_at = time.time()
            self.emit_issue(repo, issue, "reopened", by)

    def delete_issue(self, repo: Repo, issue: Issue, by: User) -> None:
        """Delete an issue (GitHub has no REST endpoint for it; admins do it in the web UI or
        with GraphQL's ``deleteIssue``): gone from every listing, ``issues.deleted`` sent with
        the issue as it was."""
        if isinstance(issue, PullRequest):
            raise ApiError(422, "Pull requests cannot be deleted")
        self.emit_issue(repo, issue, "deleted", by)
        del repo.issues[issue.number]

    def add_comment(
        self, repo: Repo, issue: Issue, user: User, body: str, via_app: App | None = None
    ) -> Comment:
        """A conversation comment (`issue_comment.created`)."""
        if not body:
            raise validation_failed(
                errors=[{"resource": "IssueComment", "field": "body", "code": "missing_field"}]
            )
        now = time.time()  # one instant: a new comment's updated_at equals its created_at
        comment = Comment(
            id=self.state.ids.new("comment"),
            issue_number=issue.number,
            user=user,
            body=body,
            created_at=now,
            updated_at=now,
            performed_via_app=via_app,
        )
        issue.comments.append(comment)
        issue.updated_at = time.time()
        self.emit_comment(repo, issue, comment, "created", user)
        return comment

    def emit_comment(
        self, repo: Repo, issue: Issue, comment: Comment, action: str, sender: User, **extra: Any
    ) -> None:
        """An `issue_comment` event."""
        body: dict[str, Any] = dict(extra)
        body["issue"] = self.shapes.issue(repo, issue, webhook=True)
        body["comment"] = self.shapes.comment(repo, comment)
        self.emit("issue_comment", action, body, sender=sender, repo=repo)

    def find_comment(self, repo: Repo, comment_id: int) -> tuple[Issue, Comment]:
        """A comment of a repository by id, else 404."""
        for issue in repo.issues.values():
            for c in issue.comments:
                if c.id == comment_id:
                    return issue, c
        raise ApiError(404, "Not Found")

    def edit_comment(self, repo: Repo, comment_id: int, body: str, by: User) -> Comment:
        """Change a comment's body (`issue_comment.edited`)."""
        issue, comment = self.find_comment(repo, comment_id)
        old = comment.body
        comment.body = body
        comment.updated_at = time.time()
        self.emit_comment(repo, issue, comment, "edited", by, changes={"body": {"from": old}})
        return comment

    def add_reaction(
        self, repo: Repo, comment_id: int, user: User, content: str
    ) -> tuple[Reaction, bool]:
        """A reaction; the same user and content twice returns the existing one."""
        if content not in REACTIONS:
            raise validation_failed(
                errors=[{"resource": "Reaction", "field": "content", "code": "invalid"}]
            )
        _, comment = self.find_comment(repo, comment_id)
        for r in comment.reactions:
            if r.user is user and r.content == content:
                return r, False
        reaction = Reaction(id=self.state.ids.new("reaction"), user=user, content=content)
        comment.reactions.append(reaction)
        return reaction, True

    def label(self, repo: Repo, name: str) -> Label:
        """A repository label, created on first use (as the labels API does)."""
        key = name.lower()
        if key not in repo.labels:
            repo.labels[key] = Label(id=self.state.ids.new("label"), name=name)
        return repo.labels[key]

    def add_labels(self, repo: Repo, issue: Issue, names: list[str], by: User) -> None:
        """Add labels (`labeled` per new label)."""
        for name in names:
            label = self.label(repo, name)
            if label in issue.labels:
                continue
            issue.labels.append(label)
            issue.updated_at = time.time()
            self._emit_label(repo, issue, label, "labeled", by)

    def remove_label(self, repo: Repo, issue: Issue, name: str, by: User) -> None:
        """Remove a label (`unlabeled`); 404 when the issue does not have it."""
        label = next((lb for lb in issue.labels if lb.name.lower() == name.lower()), None)
        if label is None:
            raise ApiError(
                404,
                "Label does not exist",
                documentation_url="https://docs.github.com/rest/issues/labels#remove-a-label-from-an-issue",
            )
        issue.labels.remove(label)
        issue.updated_at = time.time()
        self._emit_label(repo, issue, label, "unlabeled", by)

    def set_labels(self, repo: Repo, issue: Issue, names: list[str], by: User) -> None:
        """Replace the label set."""
        wanted = {n.lower() for n in names}
        for label in list(issue.labels):
            if label.name.lower() not in wanted:
                self.remove_label(repo, issue, label.name, by)
        self.add_labels(repo, issue, names, by)

    def _emit_label(self, repo: Repo, issue: Issue, label: Label, action: str, by: User) -> None:
        if isinstance(issue, PullRequest):
            self.emit_pull(repo, issue, action, by, label=self.shapes.label(repo, label))
        else:
            self.emit_issue(repo, issue, action, by, label=self.shapes.label(repo, label))

    # ---- statuses and checks ---------------------------------------------------------------
    def set_status(
        self,
        repo: Repo,
        sha: str,
        context: str,
        state: str,
        by: User,
        description: str | None = None,
        target_url: str | None = None,
    ) -> Status:
        """A commit status (`status` event)."""
        if state not in ("error", "failure", "pending", "success"):
            raise validation_failed(
                errors=[
                    {
                        "resource": "Status",
                        "field": "state",
                        "code": "custom",
                        "message": "state is not included in the list",
                    }
                ]
            )
        if sha not in self.objects.commits:
            raise validation_failed(f"No commit found for SHA: {sha}")
        status = Status(
            id=self.state.ids.new("status"),
            sha=sha,
            context=context,
            state=state,
            creator=by,
            description=description,
            target_url=target_url,
        )
        repo.statuses.append(status)
        commit = self.objects.commits[sha]
        branches = [
            {
                "name": ref[len("refs/heads/") :],
                "commit": {
                    "sha": tip,
                    "url": f"{self.urls.api}/repos/{repo.full_name}/commits/{tip}",
                },
                "protected": ref[len("refs/heads/") :] in repo.protection,
            }
            for ref, tip in repo.refs.items()
            if ref.startswith("refs/heads/") and tip == sha
        ]
        body = {
            "id": status.id,
            "sha": sha,
            "name": repo.full_name,
            "target_url": target_url,
            "avatar_url": f"{self.urls.web}/avatars/u/{by.id}?v=4",
            "context": context,
            "description": description,
            "state": state,
            "commit": self.shapes.commit(repo, commit),
            "branches": branches,
            "created_at": _iso_offset(status.created_at),
            "updated_at": _iso_offset(status.updated_at),
        }
        self.emit("status", None, body, sender=by, repo=repo, permission="statuses")
        for hook in self.after_checks:
            hook(repo, sha)
        return status

    def prs_for_sha(self, repo: Repo, sha: str) -> list[PullRequest]:
        """Open pull requests whose head is `sha` (the `pull_requests` of checks)."""
        return [p for p in repo.prs.values() if p.state == "open" and p.head_sha == sha]

    def suite_json(self, repo: Repo, suite: CheckSuite, *, webhook: bool = False) -> dict[str, Any]:
        """A check suite as REST or webhook JSON."""
        out = self.shapes.check_suite(repo, suite, self.prs_for_sha(repo, suite.head_sha))
        if webhook:
            out.pop("repository", None)
        return out

    def run_json(self, repo: Repo, run: CheckRun, *, webhook: bool = False) -> dict[str, Any]:
        """A check run; webhooks carry the whole suite inside."""
        out = self.shapes.check_run(repo, run, self.prs_for_sha(repo, run.head_sha))
        if webhook:
            suite = self.suite_json(repo, run.suite, webhook=True)
            # the suite inside a check_run event is the short form (no counts, no head commit)
            for key in CHECK_SUITE_LONG_FORM:
                suite.pop(key, None)
            out["check_suite"] = suite
        return out

    def emit_suite(self, repo: Repo, suite: CheckSuite, action: str, sender: User) -> None:
        """A `check_suite` event, only to the app owning the suite."""
        self.emit(
            "check_suite",
            action,
            {"check_suite": self.suite_json(repo, suite, webhook=True)},
            sender=sender,
            repo=repo,
            only_app=suite.app,
            permission="checks",
        )

    def emit_run(
        self, repo: Repo, run: CheckRun, action: str, sender: User, only_owner: bool = False
    ) -> None:
        """A `check_run` event (rerequested only to the owning app)."""
        self.emit(
            "check_run",
            action,
            {"check_run": self.run_json(repo, run, webhook=True)},
            sender=sender,
            repo=repo,
            only_app=run.app if only_owner else None,
            permission="checks",
        )

    def suite_for(self, repo: Repo, app: App, head_sha: str) -> CheckSuite:
        """The app's suite for a commit, created when missing."""
        for suite in repo.check_suites.values():
            if suite.app is app and suite.head_sha == head_sha:
                return suite
        branch = next(
            (
                ref[len("refs/heads/") :]
                for ref, tip in repo.refs.items()
                if tip == head_sha and ref.startswith("refs/heads/")
            ),
            None,
        )
        suite = CheckSuite(
            id=self.state.ids.new("check_suite"),
            app=app,
            head_sha=head_sha,
            head_branch=branch,
            after=head_sha,
        )
        repo.check_suites[suite.id] = suite
        return suite

    def create_check_run(self, repo: Repo, app: App, fields: dict[str, Any]) -> CheckRun:
        """A check run from validated fields (`check_run.created`)."""
        suite = self.suite_for(repo, app, fields["head_sha"])
        run = CheckRun(
            id=self.state.ids.new("check_run"),
            suite=suite,
            name=fields["name"],
            head_sha=fields["head_sha"],
        )
        repo.check_runs[run.id] = run
        suite.run_ids.append(run.id)
        self._apply_run_fields(run, fields)
        self.emit_run(repo, run, "created", app.bot)
        self._refresh_suite(repo, suite, app.bot)
        for hook in self.after_checks:
            hook(repo, run.head_sha)
        return run

    def update_check_run(self, repo: Repo, run: CheckRun, fields: dict[str, Any]) -> None:
        """Update a run; `completed` is sent when it becomes completed, annotations append."""
        was_completed = run.status == "completed"
        self._apply_run_fields(run, fields)
        if run.status == "completed" and not was_completed:
            self.emit_run(repo, run, "completed", run.app.bot)
        self._refresh_suite(repo, run.suite, run.app.bot)
        for hook in self.after_checks:
            hook(repo, run.head_sha)

    def _apply_run_fields(self, run: CheckRun, fields: dict[str, Any]) -> None:
        now = time.time()
        for key in ("name", "details_url", "external_id"):
            if key in fields:
                setattr(run, key, fields[key])
        if "started_at" in fields:
            run.started_at = fields["started_at"]
        elif run.started_at is None:
            run.started_at = now
        if "status" in fields:
            run.status = fields["status"]
        if fields.get("conclusion") is not None:
            run.conclusion = fields["conclusion"]
            run.status = "completed"
        if run.status == "completed":
            run.completed_at = fields.get("completed_at") or run.completed_at or now
        else:
            run.conclusion = None
            run.completed_at = None
        output = fields.get("output")
        if output:
            for key in ("title", "summary", "text"):
                if key in output:
                    run.output[key] = output[key]
            run.annotations.extend(output.get("annotations") or [])
        if "actions" in fields:
            run.actions = list(fields["actions"] or [])

    def _refresh_suite(self, repo: Repo, suite: CheckSuite, sender: User) -> None:
        """Suite status follows its runs; `completed` goes out when the last run completes."""
        runs = [repo.check_runs[i] for i in suite.run_ids]
        suite.updated_at = time.time()
        if not runs:
            return
        if all(r.status == "completed" for r in runs):
            suite.status = "completed"
            conclusions = {r.conclusion for r in runs}
            suite.conclusion = next((c for c in SUITE_PRIORITY if c in conclusions), "success")
            if not suite.completed_notified:
                suite.completed_notified = True
                self.emit_suite(repo, suite, "completed", sender)
        else:
            suite.status = "queued" if all(r.status == "queued" for r in runs) else "in_progress"
            suite.conclusion = None
            suite.completed_notified = False

    def rerequest_run(self, repo: Repo, run: CheckRun, by: User) -> None:
        """A person (or the app) asks to re-run one check (`check_run.rerequested`). Only a
        completed run can be re-run (GitHub offers no re-run on one in progress; the REST
        endpoint answers 422 "not rerequestable")."""
        if run.status != "completed":
            raise validation_failed(
                "This check run is not rerequestable",
                errors=[{"resource": "CheckRun", "field": "status", "code": "invalid"}],
                doc="https://docs.github.com/rest/checks/runs#rerequest-a-check-run",
            )
        self.emit_run(repo, run, "rerequested", by, only_owner=True)

    def rerequest_suite(self, repo: Repo, suite: CheckSuite, by: User) -> None:
        """Re-run a whole suite (`check_suite.rerequested`, suite back to queued)."""
        suite.status = "queued"
        suite.conclusion = None
        suite.completed_notified = False
        suite.updated_at = time.time()
        self.emit_suite(repo, suite, "rerequested", by)

    # ---- dispatch, releases, packages ------------------------------------------------------
    def dispatch(
        self, repo: Repo, event_type: str, client_payload: dict[str, Any], by: User
    ) -> None:
        """`repository_dispatch` with the caller's event type as the action."""
        if not event_type or len(event_type) > 100:
            raise validation_failed(
                errors=[{"resource": "Repository", "field": "event_type", "code": "invalid"}]
            )
        self.emit(
            "repository_dispatch",
            event_type,
            {"branch": repo.default_branch, "client_payload": client_payload},
            sender=by,
            repo=repo,
            permission="contents",
        )

    def create_release(
        self,
        repo: Repo,
        tag: str,
        by: User,
        *,
        target: str | None = None,
        name: str | None = None,
        body: str | None = None,
        draft: bool = False,
        prerelease: bool = False,
    ) -> Release:
        """A release (and its tag when missing): `created`, then `published`/`prereleased`."""
        if any(r.tag_name == tag for r in repo.releases.values()):
            raise validation_failed(
                errors=[{"resource": "Release", "code": "already_exists", "field": "tag_name"}]
            )
        target_ref = target or repo.default_branch
        release = Release(
            id=self.state.ids.new("release"),
            tag_name=tag,
            target_commitish=target_ref,
            name=name or tag,
            body=body,
            draft=draft,
            prerelease=prerelease,
            author=by,
            published_at=None if draft else time.time(),
        )
        if not draft and f"refs/tags/{tag}" not in repo.refs:
            sha = repo.resolve(target_ref)
            if sha is None:
                raise validation_failed(
                    errors=[{"resource": "Release", "code": "invalid", "field": "target_commitish"}]
                )
            self.set_ref(repo, f"refs/tags/{tag}", sha, pusher=by, force=False)
        repo.releases[release.id] = release
        rel = self.shapes.release(repo, release)
        self.emit(
            "release", "created", {"release": rel}, sender=by, repo=repo, permission="contents"
        )
        if not draft:
            self.emit(
                "release",
                "published",
                {"release": rel},
                sender=by,
                repo=repo,
                permission="contents",
            )
            if prerelease:
                self.emit(
                    "release",
                    "prereleased",
                    {"release": rel},
                    sender=by,
                    repo=repo,
                    permission="contents",
                )
        return release

    def publish_package(
        self,
        owner: Account,
        name: str,
        tag: str | None,
        digest: str,
        repo: Repo | None,
        event: str,
        by: User,
        revision: str | None = None,
    ) -> Package:
        """A container image version pushed to GHCR: `registry_package` or `package` published.

        The payload follows the octokit examples: `package_version.container_metadata.tag`
        carries `name` (the tag, empty for untagged pushes) and `digest`. A `revision` (the
        commit the image was built from) appears as the examples show it: `package` events
        carry it as `target_oid`; `registry_package` events put the image digest there and
        the commit only in the OCI labels (`org.opencontainers.image.revision`).
        """
        if event not in ("registry_package", "package"):
            raise ValueError("event must be registry_package or package")
        package = next(
            (p for p in self.state.packages if p.owner is owner and p.name == name), None
        )
        if package is None:
            package = Package(
                id=self.state.ids.new("package"),
                name=name,
                owner=owner,
                package_type="CONTAINER",
                repo=repo,
            )
            self.state.packages.append(package)
        version = PackageVersion(
            id=self.state.ids.new("package_version"), name=digest, tags=[tag] if tag else []
        )
        package.versions.append(version)
        body = {event: self.package_json(package, version, tag or "", revision, event)}
        if repo is not None:
            self.emit(event, "published", body, sender=by, repo=repo, permission="packages")
        else:
            self.emit(event, "published", body, sender=by, account=owner, permission="packages")
        return package

    def package_json(
        self,
        package: Package,
        version: PackageVersion,
        tag: str,
        revision: str | None = None,
        event: str = "registry_package",
    ) -> dict[str, Any]:
        """The package object of package webhooks, for a container version."""
        owner = package.owner
        kind = "orgs" if isinstance(owner, Org) else "users"
        html = f"{self.urls.web}/{kind}/{owner.login}/packages/container/package/{package.name}"
        path = f"repositories/{owner.login.lower()}/{package.name}"
        ref = f"ghcr.io/{owner.login.lower()}/{package.name}:{tag}"
        source = f"{self.urls.web}/{package.repo.full_name}" if package.repo else ""
        labels: dict[str, str] = {"org.opencontainers.image.source": source} if source else {}
        if revision:
            labels["org.opencontainers.image.revision"] = revision
        # `package` events carry the commit as target_oid, `registry_package` the digest.
        digest_hex = version.name.removeprefix("sha256:")
        target_oid = (revision or "") if event == "package" else digest_hex
        return {
            "id": package.id,
            "name": package.name,
            "namespace": f"{owner.login}/{package.name}",
            "description": None,
            "ecosystem": "CONTAINER",
            "package_type": "CONTAINER",
            "html_url": html,
            "created_at": iso(package.created_at),
            "updated_at": iso(version.created_at),
            "owner": self.shapes.user(owner),
            "package_version": {
                "id": version.id,
                "version": version.name,
                "name": version.name,
                "description": "",
                "summary": "",
                "body": "",
                "manifest": "",
                "html_url": f"{html}/{version.id}",
                "target_commitish": package.repo.default_branch if package.repo else "",
                "target_oid": target_oid,
                "created_at": iso(version.created_at),
                "updated_at": iso(version.created_at),
                "metadata": [],
                "container_metadata": {
                    "tag": {"name": tag, "digest": version.name},
                    "labels": {
                        "description": "",
                        "source": source,
                        "revision": revision or "",
                        "image_url": source,
                        "licenses": "",
                        "all_labels": labels,
                    },
                    "manifest": {
                        "digest": version.name,
                        "media_type": "application/vnd.oci.image.manifest.v1+json",
                        "uri": f"{path}/manifests/{version.name}",
                        "size": 0,
                        "config": {},
                        "layers": [],
                    },
                },
                "package_files": [],
                "installation_command": f"docker pull {ref}",
                "package_url": ref,
            },
            "registry": {
                "about_url": "https://docs.github.com/packages/learn-github-packages/introduction-to-github-packages",
                "name": "GitHub CONTAINER registry",
                "type": "CONTAINER",
                "url": f"https://CONTAINER.pkg.github.com/{owner.login}",
                "vendor": "GitHub Inc",
            },
        }


def _repo_brief(repo: Repo) -> dict[str, Any]:
    """The short repository objects of installation payloads."""
    return {
        "id": repo.id,
        "node_id": repo.node_id,
        "name": repo.name,
        "full_name": repo.full_name,
        "private": repo.private,
    }


def _iso_offset(ts: float) -> str:
    """The `+00:00` timestamp style of `status` payloads."""
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(ts))


def _already_exists(repo: Repo, head: str) -> str:
    """GitHub's message for a second open PR from the same head."""
    return f"A pull request already exists for {repo.owner.login}:{head}."
