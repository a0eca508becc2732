"""JSON shapes of GitHub objects, shared by the REST API and webhook payloads.

Field names follow GitHub's OpenAPI schemas (every `required` field where it is cheap) so
clients written against the fake read the real service without surprises. URLs are built
from the fake's API and web base URLs, which are only known once the server listens.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from bot.fake.gitobjects import MODE_TREE, Commit, ObjectStore, Signature
from bot.fake.state import (
    Account,
    App,
    CheckRun,
    CheckSuite,
    Comment,
    Installation,
    Issue,
    Label,
    Org,
    PullRequest,
    Reaction,
    Release,
    Repo,
    Review,
    State,
    Status,
    Team,
    User,
    iso,
    node_id,
)

JSON = dict[str, Any]


@dataclass
class Urls:
    """Base URLs: `api` includes the GHES prefix when there is one, `web` never does."""

    api: str = "http://127.0.0.1"
    web: str = "http://127.0.0.1"


class Shapes:
    """Renders state objects as GitHub JSON."""

    def __init__(self, state: State, urls: Urls) -> None:
        self.state = state
        self.urls = urls

    # ---- accounts --------------------------------------------------------------------------
    def user(self, account: Account | None) -> JSON | None:
        """`simple-user` (also used for organizations and bots, as GitHub does)."""
        if account is None:
            return None
        api = f"{self.urls.api}/users/{account.login}"
        return {
            "login": account.login,
            "id": account.id,
            "node_id": account.node_id,
            "avatar_url": f"{self.urls.web}/avatars/u/{account.id}?v=4",
            "gravatar_id": "",
            "url": api,
            "html_url": f"{self.urls.web}/{_web_login(account)}",
            "followers_url": f"{api}/followers",
            "following_url": f"{api}/following{{/other_user}}",
            "gists_url": f"{api}/gists{{/gist_id}}",
            "starred_url": f"{api}/starred{{/owner}}{{/repo}}",
            "subscriptions_url": f"{api}/subscriptions",
            "organizations_url": f"{api}/orgs",
            "repos_url": f"{api}/repos",
            "events_url": f"{api}/events{{/privacy}}",
            "received_events_url": f"{api}/received_events",
            "type": account.type,
            "user_view_type": "public",
            "site_admin": False,
        }

    def user_full(self, account: Account) -> JSON:
        """`GET /users/{u}`: the simple user plus profile fields."""
        out = self.user(account)
        assert out is not None
        out.update(
            {
                "name": account.name,
                "email": account.email,
                "company": None,
                "blog": "",
                "location": None,
                "bio": None,
                "public_repos": sum(1 for r in self.state.repos.values() if r.owner is account),
                "followers": 0,
                "following": 0,
                "created_at": iso(account.created_at),
                "updated_at": iso(account.created_at),
            }
        )
        return out

    def org(self, org: Org) -> JSON:
        """`organization-simple`, as in webhook payloads."""
        api = f"{self.urls.api}/orgs/{org.login}"
        return {
            "login": org.login,
            "id": org.id,
            "node_id": org.node_id,
            "url": api,
            "repos_url": f"{api}/repos",
            "events_url": f"{api}/events",
            "hooks_url": f"{api}/hooks",
            "issues_url": f"{api}/issues",
            "members_url": f"{api}/members{{/member}}",
            "public_members_url": f"{api}/public_members{{/member}}",
            "avatar_url": f"{self.urls.web}/avatars/u/{org.id}?v=4",
            "description": None,
        }

    def team(self, team: Team) -> JSON:
        """`team` (simple form plus `parent`)."""
        api = f"{self.urls.api}/organizations/{team.org.id}/team/{team.id}"
        return {
            "id": team.id,
            "node_id": node_id("Team", team.id),
            "url": api,
            "html_url": f"{self.urls.web}/orgs/{team.org.login}/teams/{team.slug}",
            "name": team.name,
            "slug": team.slug,
            "description": team.description,
            "privacy": "closed",
            "notification_setting": "notifications_enabled",
            "permission": "pull",
            "members_url": f"{api}/members{{/member}}",
            "repositories_url": f"{api}/repos",
            "type": "organization",
            "parent": None,
        }

    def app(self, app: App) -> JSON:
        """`integration` (the app object in /app and check runs)."""
        return {
            "id": app.id,
            "slug": app.slug,
            "node_id": app.node_id,
            "client_id": app.client_id,
            "owner": self.user(app.owner),
            "name": app.name,
            "description": app.description,
            "external_url": f"{self.urls.web}/apps/{app.slug}",
            "html_url": f"{self.urls.web}/apps/{app.slug}",
            "created_at": iso(app.created_at),
            "updated_at": iso(app.created_at),
            "permissions": dict(app.permissions),
            "events": list(app.events),
        }

    def installation(self, inst: Installation) -> JSON:
        """`installation`."""
        account = inst.account
        settings = (
            f"organizations/{account.login}/settings" if isinstance(account, Org) else "settings"
        )
        return {
            "id": inst.id,
            "client_id": inst.app.client_id,
            "account": self.user(account),
            "repository_selection": inst.repository_selection,
            "access_tokens_url": f"{self.urls.api}/app/installations/{inst.id}/access_tokens",
            "repositories_url": f"{self.urls.api}/installation/repositories",
            "html_url": f"{self.urls.web}/{settings}/installations/{inst.id}",
            "app_id": inst.app.id,
            "app_slug": inst.app.slug,
            "target_id": account.id,
            "target_type": account.type,
            "permissions": dict(inst.app.permissions),
            "events": list(inst.app.events),
            "created_at": iso(inst.created_at),
            "updated_at": iso(inst.updated_at),
            "single_file_name": None,
            "has_multiple_single_files": False,
            "single_file_paths": [],
            "suspended_by": None,
            "suspended_at": None,
        }

    # ---- repositories ----------------------------------------------------------------------
    def repo(self, repo: Repo, *, webhook_push: bool = False) -> JSON:
        """`repository`; in push payloads GitHub writes epoch ints for two timestamps."""
        api = f"{self.urls.api}/repos/{repo.full_name}"
        html = f"{self.urls.web}/{repo.full_name}"
        open_issues = sum(1 for i in repo.issues.values() if i.state == "open")
        out: JSON = {
            "id": repo.id,
            "node_id": repo.node_id,
            "name": repo.name,
            "full_name": repo.full_name,
            "private": repo.private,
            "owner": self.user(repo.owner),
            "html_url": html,
            "description": repo.description,
            "fork": False,
            "url": api,
            "archive_url": f"{api}/{{archive_format}}{{/ref}}",
            "assignees_url": f"{api}/assignees{{/user}}",
            "blobs_url": f"{api}/git/blobs{{/sha}}",
            "branches_url": f"{api}/branches{{/branch}}",
            "collaborators_url": f"{api}/collaborators{{/collaborator}}",
            "comments_url": f"{api}/comments{{/number}}",
            "commits_url": f"{api}/commits{{/sha}}",
            "compare_url": f"{api}/compare/{{base}}...{{head}}",
            "contents_url": f"{api}/contents/{{+path}}",
            "contributors_url": f"{api}/contributors",
            "deployments_url": f"{api}/deployments",
            "downloads_url": f"{api}/downloads",
            "events_url": f"{api}/events",
            "forks_url": f"{api}/forks",
            "git_commits_url": f"{api}/git/commits{{/sha}}",
            "git_refs_url": f"{api}/git/refs{{/sha}}",
            "git_tags_url": f"{api}/git/tags{{/sha}}",
            "git_url": f"git://{_host(self.urls.web)}/{repo.full_name}.git",
            "hooks_url": f"{api}/hooks",
            "issue_comment_url": f"{api}/issues/comments{{/number}}",
            "issue_events_url": f"{api}/issues/events{{/number}}",
            "issues_url": f"{api}/issues{{/number}}",
            "keys_url": f"{api}/keys{{/key_id}}",
            "labels_url": f"{api}/labels{{/name}}",
            "languages_url": f"{api}/languages",
            "merges_url": f"{api}/merges",
            "milestones_url": f"{api}/milestones{{/number}}",
            "notifications_url": f"{api}/notifications{{?since,all,participating}}",
            "pulls_url": f"{api}/pulls{{/number}}",
            "releases_url": f"{api}/releases{{/id}}",
            "ssh_url": f"git@{_host(self.urls.web)}:{repo.full_name}.git",
            "stargazers_url": f"{api}/stargazers",
            "statuses_url": f"{api}/statuses/{{sha}}",
            "subscribers_url": f"{api}/subscribers",
            "subscription_url": f"{api}/subscription",
            "tags_url": f"{api}/tags",
            "teams_url": f"{api}/teams",
            "trees_url": f"{api}/git/trees{{/sha}}",
            "clone_url": f"{html}.git",
            "mirror_url": None,
            "svn_url": html,
            "homepage": None,
            "language": None,
            "forks_count": 0,
            "forks": 0,
            "stargazers_count": 0,
            "watchers_count": 0,
            "watchers": 0,
            "size": 0,
            "default_branch": repo.default_branch,
            "open_issues_count": open_issues,
            "open_issues": open_issues,
            "is_template": False,
            "topics": [],
            "has_issues": True,
            "has_projects": True,
            "has_wiki": True,
            "has_pages": False,
            "has_downloads": True,
            "has_discussions": False,
            "archived": False,
            "disabled": False,
            "visibility": "private" if repo.private else "public",
            "license": None,
            "allow_forking": True,
            "web_commit_signoff_required": False,
            "custom_properties": {},
            "created_at": iso(repo.created_at),
            "updated_at": iso(repo.updated_at),
            "pushed_at": iso(repo.pushed_at),
        }
        if webhook_push:
            out["created_at"] = int(repo.created_at)
            out["pushed_at"] = int(repo.pushed_at)
            out["master_branch"] = repo.default_branch
            out["stargazers"] = 0
            owner = out["owner"]
            owner["name"] = repo.owner.login
            owner["email"] = repo.owner.email
        return out

    def repo_minimal(self, repo: Repo) -> JSON:
        """`{id, url, name}`: the repository reference inside minimal pull requests."""
        return {"id": repo.id, "url": f"{self.urls.api}/repos/{repo.full_name}", "name": repo.name}

    def ref(self, repo: Repo, ref: str) -> JSON:
        """`git-ref`."""
        sha = repo.refs[ref]
        api = f"{self.urls.api}/repos/{repo.full_name}"
        return {
            "ref": ref,
            "node_id": node_id("Ref", f"{repo.id}:{ref}"),
            "url": f"{api}/git/{ref}",
            "object": {"type": "commit", "sha": sha, "url": f"{api}/git/commits/{sha}"},
        }

    # ---- git objects -----------------------------------------------------------------------
    def git_signature(self, sig: Signature) -> JSON:
        """Author/committer object inside git commits."""
        return {"name": sig.name, "email": sig.email, "date": iso(sig.timestamp)}

    def git_commit(self, repo: Repo, c: Commit) -> JSON:
        """`git-commit` (Git Database API)."""
        api = f"{self.urls.api}/repos/{repo.full_name}"
        return {
            "sha": c.sha,
            "node_id": node_id("Commit", f"{repo.id}:{c.sha}"),
            "url": f"{api}/git/commits/{c.sha}",
            "html_url": f"{self.urls.web}/{repo.full_name}/commit/{c.sha}",
            "author": self.git_signature(c.author),
            "committer": self.git_signature(c.committer),
            "message": c.message,
            "tree": {"sha": c.tree, "url": f"{api}/git/trees/{c.tree}"},
            "parents": [
                {
                    "sha": p,
                    "url": f"{api}/git/commits/{p}",
                    "html_url": f"{self.urls.web}/{repo.full_name}/commit/{p}",
                }
                for p in c.parents
            ],
            "verification": _verification(c.sha in repo.objects.signed),
        }

    def commit(self, repo: Repo, c: Commit) -> JSON:
        """`commit` (REST commits API): the git commit plus linked GitHub users."""
        api = f"{self.urls.api}/repos/{repo.full_name}"
        author = self.state.user_by_email(c.author.email)
        committer = self.state.user_by_email(c.committer.email)
        return {
            "sha": c.sha,
            "node_id": node_id("Commit", f"{repo.id}:{c.sha}"),
            "url": f"{api}/commits/{c.sha}",
            "html_url": f"{self.urls.web}/{repo.full_name}/commit/{c.sha}",
            "comments_url": f"{api}/commits/{c.sha}/comments",
            "commit": {
                "url": f"{api}/git/commits/{c.sha}",
                "author": self.git_signature(c.author),
                "committer": self.git_signature(c.committer),
                "message": c.message,
                "tree": {"sha": c.tree, "url": f"{api}/git/trees/{c.tree}"},
                "comment_count": 0,
                "verification": _verification(c.sha in repo.objects.signed),
            },
            "author": self.user(author),
            "committer": self.user(committer),
            "parents": [
                {
                    "sha": p,
                    "url": f"{api}/commits/{p}",
                    "html_url": f"{self.urls.web}/{repo.full_name}/commit/{p}",
                }
                for p in c.parents
            ],
        }

    def push_commit(self, repo: Repo, c: Commit, store: ObjectStore) -> JSON:
        """A commit inside a push payload, with added/removed/modified paths."""
        parent_tree = store.commits[c.parents[0]].tree if c.parents else None
        added: list[str] = []
        removed: list[str] = []
        modified: list[str] = []
        for ch in store.diff_trees(parent_tree, c.tree, detect_renames=False):
            {"added": added, "removed": removed}.get(ch.status, modified).append(ch.path)

        def person(sig: Signature) -> JSON:
            out: JSON = {"name": sig.name, "email": sig.email}
            u = self.state.user_by_email(sig.email)
            if u is not None:
                out["username"] = u.login
            return out

        return {
            "id": c.sha,
            "tree_id": c.tree,
            "distinct": True,
            "message": c.message,
            "timestamp": iso(c.committer.timestamp),
            "url": f"{self.urls.web}/{repo.full_name}/commit/{c.sha}",
            "author": person(c.author),
            "committer": person(c.committer),
            "added": added,
            "removed": removed,
            "modified": modified,
        }

    def tree(self, repo: Repo, sha: str, recursive: bool, limit: int) -> JSON:
        """`git-tree`, recursive or not, truncated past `limit` entries."""
        store = repo.objects
        api = f"{self.urls.api}/repos/{repo.full_name}"
        entries: list[JSON] = []
        truncated = False
        source = store.walk(sha) if recursive else ((e.name, e) for e in store.tree_entries(sha))
        blobs = store.blobs
        for path, e in source:
            if len(entries) >= limit:
                truncated = True
                break
            kind = e.type
            item: JSON = {"path": path, "mode": e.mode, "type": kind, "sha": e.sha}
            if kind == "blob":
                item["size"] = len(blobs[e.sha])
                item["url"] = f"{api}/git/blobs/{e.sha}"
            elif e.mode == MODE_TREE:
                item["url"] = f"{api}/git/trees/{e.sha}"
            entries.append(item)
        return {
            "sha": sha,
            "url": f"{api}/git/trees/{sha}",
            "tree": entries,
            "truncated": truncated,
        }

    def blob(self, repo: Repo, sha: str) -> JSON:
        """`blob`, always base64 as GitHub sends it (wrapped at 60 columns like GitHub)."""
        data = repo.objects.blobs[sha]
        return {
            "sha": sha,
            "node_id": node_id("Blob", f"{repo.id}:{sha}"),
            "size": len(data),
            "url": f"{self.urls.api}/repos/{repo.full_name}/git/blobs/{sha}",
            "content": b64_wrapped(data),
            "encoding": "base64",
        }

    def content_entry(self, repo: Repo, path: str, mode: str, sha: str, ref: str) -> JSON:
        """One item of a contents directory listing (or the metadata of a file)."""
        api = f"{self.urls.api}/repos/{repo.full_name}"
        kind = {"040000": "dir", "120000": "symlink", "160000": "submodule"}.get(mode, "file")
        html_kind = "tree" if kind == "dir" else "blob"
        git_url = f"{api}/git/{'trees' if kind == 'dir' else 'blobs'}/{sha}"
        html_url = f"{self.urls.web}/{repo.full_name}/{html_kind}/{ref}/{path}"
        url = f"{api}/contents/{path}?ref={ref}"
        size = len(repo.objects.blobs[sha]) if kind in ("file", "symlink") else 0
        return {
            "type": "file" if kind == "submodule" else kind,
            "size": size,
            "name": path.rsplit("/", 1)[-1],
            "path": path,
            "sha": sha,
            "url": url,
            "git_url": git_url,
            "html_url": html_url,
            "download_url": f"{self.urls.web}/{repo.full_name}/raw/{ref}/{path}"
            if kind == "file"
            else None,
            "_links": {"self": url, "git": git_url, "html": html_url},
        }

    # ---- pull requests and issues ----------------------------------------------------------
    def label(self, repo: Repo, label: Label) -> JSON:
        """`label`."""
        return {
            "id": label.id,
            "node_id": node_id("Label", label.id),
            "url": f"{self.urls.api}/repos/{repo.full_name}/labels/{label.name}",
            "name": label.name,
            "color": label.color,
            "default": label.default,
            "description": label.description,
        }

    def author_association(self, repo: Repo, user: User) -> str:
        """OWNER, MEMBER, COLLABORATOR or NONE."""
        if repo.owner is user:
            return "OWNER"
        if isinstance(repo.owner, Org) and user.login.lower() in repo.owner.members:
            return "MEMBER"
        if user.login.lower() in repo.collaborators:
            return "COLLABORATOR"
        return "NONE"

    def issue(self, repo: Repo, issue: Issue, *, webhook: bool = False) -> JSON:
        """`issue`; pull requests carry a `pull_request` key as in the issues API. Webhooks
        carry no `closed_by` (only the REST issue has it)."""
        api = f"{self.urls.api}/repos/{repo.full_name}"
        is_pr = isinstance(issue, PullRequest)
        html = f"{self.urls.web}/{repo.full_name}/{'pull' if is_pr else 'issues'}/{issue.number}"
        out: JSON = {
            "url": f"{api}/issues/{issue.number}",
            "repository_url": api,
            "labels_url": f"{api}/issues/{issue.number}/labels{{/name}}",
            "comments_url": f"{api}/issues/{issue.number}/comments",
            "events_url": f"{api}/issues/{issue.number}/events",
            "html_url": html,
            "id": issue.id,
            "node_id": node_id("Issue", issue.id),
            "number": issue.number,
            "title": issue.title,
            "user": self.user(issue.user),
            "labels": [self.label(repo, lb) for lb in issue.labels],
            "state": issue.state,
            "locked": issue.locked,
            "assignee": self.user(issue.assignees[0]) if issue.assignees else None,
            "assignees": [self.user(a) for a in issue.assignees],
            "milestone": None,
            "comments": len(issue.comments),
            "created_at": iso(issue.created_at),
            "updated_at": iso(issue.updated_at),
            "closed_at": iso(issue.closed_at),
            "author_association": self.author_association(repo, issue.user),
            "active_lock_reason": None,
            "body": issue.body,
            "state_reason": issue.state_reason,
            "reactions": _reaction_rollup([], f"{api}/issues/{issue.number}/reactions"),
            "timeline_url": f"{api}/issues/{issue.number}/timeline",
            "performed_via_github_app": self.app(issue.performed_via_app)
            if issue.performed_via_app
            else None,
        }
        if not webhook:
            out["closed_by"] = self.user(issue.closed_by)
        if isinstance(issue, PullRequest):
            out["draft"] = issue.draft
            out["pull_request"] = {
                "url": f"{api}/pulls/{issue.number}",
                "html_url": html,
                "diff_url": f"{html}.diff",
                "patch_url": f"{html}.patch",
                "merged_at": iso(issue.merged_at),
            }
        return out

    def comment(self, repo: Repo, c: Comment) -> JSON:
        """`issue-comment`."""
        api = f"{self.urls.api}/repos/{repo.full_name}"
        issue = repo.issues[c.issue_number]
        kind = "pull" if isinstance(issue, PullRequest) else "issues"
        web = f"{self.urls.web}/{repo.full_name}"
        return {
            "id": c.id,
            "node_id": node_id("IssueComment", c.id),
            "url": f"{api}/issues/comments/{c.id}",
            "html_url": f"{web}/{kind}/{c.issue_number}#issuecomment-{c.id}",
            "issue_url": f"{api}/issues/{c.issue_number}",
            "body": c.body,
            "user": self.user(c.user),
            "created_at": iso(c.created_at),
            "updated_at": iso(c.updated_at),
            "author_association": self.author_association(repo, c.user),
            "performed_via_github_app": self.app(c.performed_via_app)
            if c.performed_via_app
            else None,
            "reactions": _reaction_rollup(c.reactions, f"{api}/issues/comments/{c.id}/reactions"),
        }

    def reaction(self, r: Reaction) -> JSON:
        """`reaction`."""
        return {
            "id": r.id,
            "node_id": node_id("Reaction", r.id),
            "user": self.user(r.user),
            "content": r.content,
            "created_at": iso(r.created_at),
        }

    def pr_branch(self, repo: Repo, pr: PullRequest, which: str) -> JSON:
        """`head` / `base` of a pull request."""
        ref = pr.head_ref if which == "head" else pr.base_ref
        sha = pr.head_sha if which == "head" else pr.base_sha
        return {
            "label": f"{repo.owner.login}:{ref}",
            "ref": ref,
            "sha": sha,
            "user": self.user(repo.owner),
            "repo": self.repo(repo),
        }

    def pull(self, repo: Repo, pr: PullRequest, extra: JSON | None = None) -> JSON:
        """`pull-request` (full); `extra` carries the computed mergeability fields."""
        api = f"{self.urls.api}/repos/{repo.full_name}"
        html = f"{self.urls.web}/{repo.full_name}/pull/{pr.number}"
        stats = extra or {}
        out: JSON = {
            "url": f"{api}/pulls/{pr.number}",
            "id": pr.pr_id,
            "node_id": node_id("PullRequest", pr.pr_id),
            "html_url": html,
            "diff_url": f"{html}.diff",
            "patch_url": f"{html}.patch",
            "issue_url": f"{api}/issues/{pr.number}",
            "commits_url": f"{api}/pulls/{pr.number}/commits",
            "review_comments_url": f"{api}/pulls/{pr.number}/comments",
            "review_comment_url": f"{api}/pulls/comments{{/number}}",
            "comments_url": f"{api}/issues/{pr.number}/comments",
            "statuses_url": f"{api}/statuses/{pr.head_sha}",
            "number": pr.number,
            "state": pr.state,
            "locked": pr.locked,
            "title": pr.title,
            "user": self.user(pr.user),
            "body": pr.body,
            "labels": [self.label(repo, lb) for lb in pr.labels],
            "milestone": None,
            "active_lock_reason": None,
            "created_at": iso(pr.created_at),
            "updated_at": iso(pr.updated_at),
            "closed_at": iso(pr.closed_at),
            "merged_at": iso(pr.merged_at),
            "merge_commit_sha": pr.merge_commit_sha or pr.test_merge_sha,
            "assignee": self.user(pr.assignees[0]) if pr.assignees else None,
            "assignees": [self.user(a) for a in pr.assignees],
            "requested_reviewers": [self.user(u) for u in pr.requested_reviewers],
            "requested_teams": [self.team(t) for t in pr.requested_teams],
            "head": self.pr_branch(repo, pr, "head"),
            "base": self.pr_branch(repo, pr, "base"),
            "_links": {
                "self": {"href": f"{api}/pulls/{pr.number}"},
                "html": {"href": html},
                "issue": {"href": f"{api}/issues/{pr.number}"},
                "comments": {"href": f"{api}/issues/{pr.number}/comments"},
                "review_comments": {"href": f"{api}/pulls/{pr.number}/comments"},
                "review_comment": {"href": f"{api}/pulls/comments{{/number}}"},
                "commits": {"href": f"{api}/pulls/{pr.number}/commits"},
                "statuses": {"href": f"{api}/statuses/{pr.head_sha}"},
            },
            "author_association": self.author_association(repo, pr.user),
            "auto_merge": None,
            "draft": pr.draft,
            "merged": pr.merged,
            "mergeable": stats.get("mergeable"),
            "rebaseable": stats.get("mergeable"),
            "mergeable_state": stats.get("mergeable_state", "unknown"),
            "merged_by": self.user(pr.merged_by),
            "comments": len(pr.comments),
            "review_comments": 0,
            "maintainer_can_modify": pr.maintainer_can_modify,
            "commits": stats.get("commits", 0),
            "additions": stats.get("additions", 0),
            "deletions": stats.get("deletions", 0),
            "changed_files": stats.get("changed_files", 0),
        }
        return out

    def pull_simple(self, repo: Repo, pr: PullRequest) -> JSON:
        """`pull-request-simple` (list items): no mergeability or counts."""
        out = self.pull(repo, pr)
        for key in (
            "merged",
            "mergeable",
            "rebaseable",
            "mergeable_state",
            "merged_by",
            "comments",
            "review_comments",
            "maintainer_can_modify",
            "commits",
            "additions",
            "deletions",
            "changed_files",
        ):
            out.pop(key, None)
        return out

    def pull_minimal(self, repo: Repo, pr: PullRequest) -> JSON:
        """The `pull_requests[]` items of check runs and suites."""
        return {
            "url": f"{self.urls.api}/repos/{repo.full_name}/pulls/{pr.number}",
            "id": pr.pr_id,
            "number": pr.number,
            "head": {"ref": pr.head_ref, "sha": pr.head_sha, "repo": self.repo_minimal(repo)},
            "base": {"ref": pr.base_ref, "sha": pr.base_sha, "repo": self.repo_minimal(repo)},
        }

    def review(self, repo: Repo, pr: PullRequest, r: Review) -> JSON:
        """`pull-request-review`."""
        api = f"{self.urls.api}/repos/{repo.full_name}/pulls/{pr.number}"
        html = f"{self.urls.web}/{repo.full_name}/pull/{pr.number}#pullrequestreview-{r.id}"
        return {
            "id": r.id,
            "node_id": node_id("PullRequestReview", r.id),
            "user": self.user(r.user),
            "body": r.body,
            "state": r.state,
            "html_url": html,
            "pull_request_url": api,
            "_links": {"html": {"href": html}, "pull_request": {"href": api}},
            "submitted_at": iso(r.submitted_at),
            "commit_id": r.commit_id,
            "author_association": self.author_association(repo, r.user),
        }

    # ---- checks and statuses ---------------------------------------------------------------
    def check_suite(self, repo: Repo, suite: CheckSuite, prs: list[PullRequest]) -> JSON:
        """`check-suite`."""
        api = f"{self.urls.api}/repos/{repo.full_name}"
        c = repo.objects.commits.get(suite.head_sha)
        return {
            "id": suite.id,
            "node_id": node_id("CheckSuite", suite.id),
            "head_branch": suite.head_branch,
            "head_sha": suite.head_sha,
            "status": suite.status,
            "conclusion": suite.conclusion,
            "url": f"{api}/check-suites/{suite.id}",
            "before": suite.before,
            "after": suite.after,
            "pull_requests": [self.pull_minimal(repo, p) for p in prs],
            "app": self.app(suite.app),
            "repository": self.repo(repo),
            "created_at": iso(suite.created_at),
            "updated_at": iso(suite.updated_at),
            "rerequestable": True,
            "runs_rerequestable": True,
            "latest_check_runs_count": len(suite.run_ids),
            "check_runs_url": f"{api}/check-suites/{suite.id}/check-runs",
            "head_commit": simple_commit(c) if c else None,
        }

    def check_run(self, repo: Repo, run: CheckRun, prs: list[PullRequest]) -> JSON:
        """`check-run`."""
        api = f"{self.urls.api}/repos/{repo.full_name}"
        output = run.output
        return {
            "id": run.id,
            "node_id": node_id("CheckRun", run.id),
            "head_sha": run.head_sha,
            "external_id": run.external_id or "",
            "url": f"{api}/check-runs/{run.id}",
            "html_url": f"{self.urls.web}/{repo.full_name}/runs/{run.id}",
            "details_url": run.details_url or f"{self.urls.web}/apps/{run.app.slug}",
            "status": run.status,
            "conclusion": run.conclusion,
            "started_at": iso(run.started_at),
            "completed_at": iso(run.completed_at),
            "output": {
                "title": output.get("title"),
                "summary": output.get("summary"),
                "text": output.get("text"),
                "annotations_count": len(run.annotations),
                "annotations_url": f"{api}/check-runs/{run.id}/annotations",
            },
            "name": run.name,
            "check_suite": {"id": run.suite.id},
            "app": self.app(run.app),
            "pull_requests": [self.pull_minimal(repo, p) for p in prs],
            # `deployment` only for runs a deployment made (GitHub omits it, never null)
        }

    def status(self, repo: Repo, s: Status) -> JSON:
        """`status` (a single commit status)."""
        return {
            "url": f"{self.urls.api}/repos/{repo.full_name}/statuses/{s.sha}",
            "avatar_url": f"{self.urls.web}/avatars/u/{s.creator.id}?v=4",
            "id": s.id,
            "node_id": node_id("StatusContext", s.id),
            "state": s.state,
            "description": s.description,
            "target_url": s.target_url,
            "context": s.context,
            "created_at": iso(s.created_at),
            "updated_at": iso(s.updated_at),
            "creator": self.user(s.creator),
        }

    def release(self, repo: Repo, r: Release) -> JSON:
        """`release`."""
        api = f"{self.urls.api}/repos/{repo.full_name}"
        html = f"{self.urls.web}/{repo.full_name}/releases/tag/{r.tag_name}"
        return {
            "url": f"{api}/releases/{r.id}",
            "html_url": html,
            "assets_url": f"{api}/releases/{r.id}/assets",
            "upload_url": f"{api}/releases/{r.id}/assets{{?name,label}}",
            "tarball_url": f"{api}/tarball/{r.tag_name}",
            "zipball_url": f"{api}/zipball/{r.tag_name}",
            "id": r.id,
            "node_id": node_id("Release", r.id),
            "tag_name": r.tag_name,
            "target_commitish": r.target_commitish,
            "name": r.name,
            "body": r.body,
            "draft": r.draft,
            "prerelease": r.prerelease,
            "immutable": False,
            "created_at": iso(r.created_at),
            "published_at": iso(r.published_at),
            "author": self.user(r.author),
            "assets": [],
        }


def simple_commit(c: Commit) -> JSON:
    """GitHub's "simple commit" of webhook payloads (a check suite's or a merge group's
    ``head_commit``)."""
    return {
        "id": c.sha,
        "tree_id": c.tree,
        "message": c.message,
        "timestamp": iso(c.committer.timestamp),
        "author": {"name": c.author.name, "email": c.author.email},
        "committer": {"name": c.committer.name, "email": c.committer.email},
    }


def b64_wrapped(data: bytes) -> str:
    """Base64 with a newline every 60 characters, as the contents and blobs APIs send it."""
    raw = base64.b64encode(data).decode()
    return "".join(raw[i : i + 60] + "\n" for i in range(0, len(raw), 60))


def _verification(signed: bool) -> JSON:
    """GitHub's `verification` object: verified for the commits GitHub signed itself."""
    if signed:
        return {
            "verified": True,
            "reason": "valid",
            "signature": "-----BEGIN PGP SIGNATURE-----\n(web-flow)\n-----END PGP SIGNATURE-----",
            "payload": None,
            "verified_at": None,
        }
    return _unsigned()


def _unsigned() -> JSON:
    return {
        "verified": False,
        "reason": "unsigned",
        "signature": None,
        "payload": None,
        "verified_at": None,
    }


def _reaction_rollup(reactions: list[Reaction], url: str) -> JSON:
    counts = {k: 0 for k in ("+1", "-1", "laugh", "hooray", "confused", "heart", "rocket", "eyes")}
    for r in reactions:
        counts[r.content] += 1
    return {"url": url, "total_count": len(reactions), **counts}


def _host(url: str) -> str:
    return url.split("://", 1)[-1].split("/", 1)[0]


def _web_login(account: Account) -> str:
    if account.type == "Bot" and isinstance(account, User) and account.app is not None:
        return f"apps/{account.app.slug}"
    return account.login
