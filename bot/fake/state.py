"""The fake GitHub's world: accounts, apps, installations, repositories and their objects.

Only data lives here, plus the small helpers that answer questions about it (who may see a
repository, which role a user has). Operations that change the world and emit webhooks are
in `world.py`, so the same rules apply whether a test calls the control API or the bot calls
the REST API.
"""

from __future__ import annotations

import base64
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from bot.fake.gitobjects import ObjectStore

ROLES = ("read", "triage", "write", "maintain", "admin")
LEVELS = {"none": 0, "read": 1, "write": 2, "admin": 3}
ZERO_SHA = "0" * 40


class ApiError(Exception):
    """An error GitHub would answer with: status, message and optional validation errors."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        errors: list[Any] | None = None,
        documentation_url: str = "https://docs.github.com/rest",
        status_in_body: bool = False,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {message}")
        self.status = status
        self.message = message
        self.errors = errors
        self.documentation_url = documentation_url
        self.status_in_body = status_in_body
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        """The JSON body GitHub sends for this error."""
        out: dict[str, Any] = {"message": self.message, "documentation_url": self.documentation_url}
        if self.errors is not None:
            out["errors"] = self.errors
        if self.status_in_body:
            out["status"] = str(self.status)
        return out


def not_found() -> ApiError:
    """GitHub's uniform 404, also used to hide what a caller may not see."""
    return ApiError(404, "Not Found")


def validation_failed(
    message: str = "Validation Failed", errors: list[Any] | None = None, doc: str | None = None
) -> ApiError:
    """A 422 with GitHub's `errors` list."""
    return ApiError(
        422,
        message,
        errors=errors if errors is not None else [],
        documentation_url=doc or "https://docs.github.com/rest",
    )


def iso(ts: float | None) -> str | None:
    """ISO-8601 with a `Z`, as GitHub formats every timestamp."""
    if ts is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def node_id(kind: str, ident: int | str) -> str:
    """A legacy-format global node id (base64 of `0<len>:<Kind><id>`), like `MDQ6VXNlcjE=`."""
    raw = f"0{len(kind)}:{kind}{ident}"
    return base64.b64encode(raw.encode()).decode()


class Ids:
    """Realistic, distinct integer ids per kind of object."""

    _BASES: ClassVar[dict[str, int]] = {
        "user": 1_000_000,
        "repo": 600_000_000,
        "app": 300_000,
        "installation": 40_000_000,
        "team": 8_000_000,
        "issue": 2_100_000_000,
        "pull": 1_700_000_000,
        "comment": 1_900_000_000,
        "review": 1_800_000_000,
        "reaction": 250_000_000,
        "label": 5_000_000_000,
        "check_suite": 20_000_000_000,
        "check_run": 28_000_000_000,
        "status": 30_000_000_000,
        "release": 150_000_000,
        "package": 9_000_000,
        "package_version": 300_000_000,
        "hook": 450_000_000,
        "ruleset": 4_000_000,
        "queue_entry": 90_000_000,
        "delivery": 70_000_000_000,
    }

    def __init__(self) -> None:
        self._next = dict(self._BASES)

    def new(self, kind: str) -> int:
        """The next id of a kind."""
        value = self._next[kind] + 1
        self._next[kind] = value
        return value


@dataclass(eq=False)
class Account:
    """A user, bot or organization: anything with a login."""

    id: int
    login: str
    type: str  # User | Bot | Organization
    name: str | None = None
    email: str | None = None
    created_at: float = field(default_factory=time.time)

    @property
    def node_id(self) -> str:
        """GraphQL id of the account."""
        kind = {"User": "User", "Bot": "Bot", "Organization": "Organization"}[self.type]
        return node_id(kind, self.id)

    @property
    def commit_email(self) -> str:
        """The email GitHub writes in commits this account makes (noreply when none)."""
        return self.email or f"{self.id}+{self.login}@users.noreply.github.com"


@dataclass(eq=False)
class User(Account):
    """A person or an app's bot user; `token` is a personal access token."""

    token: str = ""
    app: App | None = None


@dataclass(eq=False)
class Org(Account):
    """An organization: members with role `member` or `admin`."""

    members: dict[str, str] = field(default_factory=dict)
    teams: dict[str, Team] = field(default_factory=dict)


@dataclass(eq=False)
class Team:
    """An org team; members map login -> role (`member` or `maintainer`)."""

    id: int
    org: Org
    slug: str
    name: str
    description: str | None = None
    members: dict[str, str] = field(default_factory=dict)


@dataclass(eq=False)
class App:
    """A GitHub App with its RSA key pair, webhook configuration and permissions."""

    id: int
    slug: str
    name: str
    owner: Account
    private_key_pem: str
    public_key: rsa.RSAPublicKey
    webhook_url: str | None
    webhook_secret: str | None
    events: list[str]
    permissions: dict[str, str]
    bot: User
    hook_id: int
    client_id: str
    client_secret: str
    description: str = ""
    setup_url: str | None = None
    redirect_url: str | None = None
    created_at: float = field(default_factory=time.time)

    @property
    def bot_login(self) -> str:
        """Login of the app's bot user, e.g. `fleet-bot[bot]`."""
        return self.bot.login

    @property
    def node_id(self) -> str:
        """GraphQL id of the app."""
        return node_id("Integration", self.id)


def generate_key() -> tuple[str, rsa.RSAPublicKey]:
    """A fresh 2048-bit RSA key pair: PEM private key (PKCS#1, like GitHub's) and public key."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    return pem, key.public_key()


@dataclass(eq=False)
class Installation:
    """An app installed on an account, for all repositories or a selection."""

    id: int
    app: App
    account: Account
    repository_selection: str  # all | selected
    repo_ids: set[int] = field(default_factory=set)
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)

    @property
    def node_id(self) -> str:
        """GraphQL id of the installation."""
        return node_id("IntegrationInstallation", self.id)


@dataclass(eq=False)
class InstallationToken:
    """An installation access token, possibly narrowed to some repositories or permissions."""

    token: str
    installation: Installation
    expires_at: float
    permissions: dict[str, str]
    repo_ids: set[int] | None  # None: every repository of the installation


@dataclass(eq=False)
class Label:
    """A repository label."""

    id: int
    name: str
    color: str = "ededed"
    description: str | None = None
    default: bool = False


@dataclass(eq=False)
class Reaction:
    """A reaction on a comment."""

    id: int
    user: User
    content: str
    created_at: float = field(default_factory=time.time)


@dataclass(eq=False)
class Comment:
    """An issue (or pull request conversation) comment."""

    id: int
    issue_number: int
    user: User
    body: str
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    reactions: list[Reaction] = field(default_factory=list)
    performed_via_app: App | None = None


@dataclass(eq=False)
class Issue:
    """An issue; pull requests are issues too and share the number sequence."""

    id: int
    number: int
    title: str
    body: str | None
    user: User
    state: str = "open"
    state_reason: str | None = None
    labels: list[Label] = field(default_factory=list)
    assignees: list[User] = field(default_factory=list)
    comments: list[Comment] = field(default_factory=list)
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    closed_at: float | None = None
    closed_by: User | None = None
    locked: bool = False
    performed_via_app: App | None = None


@dataclass(eq=False)
class Review:
    """A pull request review. `state` is APPROVED, CHANGES_REQUESTED, COMMENTED or DISMISSED."""

    id: int
    user: User
    state: str
    body: str
    commit_id: str
    submitted_at: float = field(default_factory=time.time)
    dismissal_message: str | None = None


@dataclass(eq=False)
class PullRequest(Issue):
    """A pull request: an issue with a head and base branch."""

    pr_id: int = 0
    head_ref: str = ""
    head_sha: str = ""
    base_ref: str = ""
    base_sha: str = ""
    draft: bool = False
    merged: bool = False
    merged_at: float | None = None
    merged_by: User | None = None
    merge_commit_sha: str | None = None
    maintainer_can_modify: bool = False
    requested_reviewers: list[User] = field(default_factory=list)
    requested_teams: list[Team] = field(default_factory=list)
    reviews: list[Review] = field(default_factory=list)
    # (base sha, head sha) for which mergeability was last computed, and the result
    mergeable_key: tuple[str, str] | None = None
    mergeable_value: bool | None = None
    test_merge_sha: str | None = None


@dataclass(eq=False)
class CheckSuite:
    """An app's check suite for one head commit."""

    id: int
    app: App
    head_sha: str
    head_branch: str | None
    status: str = "queued"
    conclusion: str | None = None
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    run_ids: list[int] = field(default_factory=list)
    before: str | None = None
    after: str | None = None
    completed_notified: bool = False


@dataclass(eq=False)
class CheckRun:
    """One check run of a suite."""

    id: int
    suite: CheckSuite
    name: str
    head_sha: str
    status: str = "queued"
    conclusion: str | None = None
    started_at: float | None = None
    completed_at: float | None = None
    details_url: str | None = None
    external_id: str | None = None
    output: dict[str, Any] = field(default_factory=dict)
    annotations: list[dict[str, Any]] = field(default_factory=list)
    actions: list[dict[str, Any]] = field(default_factory=list)

    @property
    def app(self) -> App:
        """The app that owns this run."""
        return self.suite.app


@dataclass(eq=False)
class Status:
    """A commit status for one context."""

    id: int
    sha: str
    context: str
    state: str
    creator: User
    description: str | None = None
    target_url: str | None = None
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)


@dataclass(eq=False)
class Release:
    """A release for a tag."""

    id: int
    tag_name: str
    target_commitish: str
    name: str | None
    body: str | None
    draft: bool
    prerelease: bool
    author: User
    created_at: float = field(default_factory=time.time)
    published_at: float | None = None


@dataclass(eq=False)
class PackageVersion:
    """One published version (tag + digest) of a container package."""

    id: int
    name: str  # the digest for containers
    tags: list[str]
    created_at: float = field(default_factory=time.time)


@dataclass(eq=False)
class Package:
    """A container package owned by an account, optionally linked to a repository."""

    id: int
    name: str
    owner: Account
    package_type: str
    repo: Repo | None
    versions: list[PackageVersion] = field(default_factory=list)
    created_at: float = field(default_factory=time.time)


@dataclass(eq=False)
class Protection:
    """Branch protection: the required status check contexts."""

    contexts: list[str]
    strict: bool = False


@dataclass(eq=False)
class MergeQueueRule:
    """A ruleset rule requiring a merge queue on a branch (`merge_queue` and its parameters),
    with the ruleset's own required checks (besides the branch protection's)."""

    ruleset_id: int
    merge_method: str = "MERGE"  # MERGE | SQUASH | REBASE
    grouping_strategy: str = "ALLGREEN"
    required_checks: list[str] = field(default_factory=list)


@dataclass(eq=False)
class QueueEntry:
    """A pull request in a merge queue, and the merge group built for it (its changes on top
    of the entry ahead, or of the branch)."""

    id: int
    number: int
    head_sha: str  # the PR's head when it was queued
    enqueuer: User
    enqueued_at: float = field(default_factory=time.time)
    group_sha: str | None = None
    base_sha: str | None = None  # the group commit's parent
    ref: str | None = None  # refs/heads/gh-readonly-queue/<base>/pr-<n>-<base sha>


@dataclass(eq=False)
class Repo:
    """A repository: git objects, refs and everything hanging off them."""

    id: int
    owner: Account
    name: str
    default_branch: str
    private: bool
    objects: ObjectStore
    description: str | None = None
    refs: dict[str, str] = field(default_factory=dict)
    collaborators: dict[str, str] = field(default_factory=dict)
    protection: dict[str, Protection] = field(default_factory=dict)
    merge_queues: dict[str, MergeQueueRule] = field(default_factory=dict)  # branch -> rule
    queue: dict[str, list[QueueEntry]] = field(default_factory=dict)  # branch -> entries
    issues: dict[int, Issue] = field(default_factory=dict)
    labels: dict[str, Label] = field(default_factory=dict)
    check_suites: dict[int, CheckSuite] = field(default_factory=dict)
    check_runs: dict[int, CheckRun] = field(default_factory=dict)
    statuses: list[Status] = field(default_factory=list)
    releases: dict[int, Release] = field(default_factory=dict)
    next_number: int = 1
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    pushed_at: float = field(default_factory=time.time)

    @property
    def full_name(self) -> str:
        """`owner/name`."""
        return f"{self.owner.login}/{self.name}"

    @property
    def node_id(self) -> str:
        """GraphQL id of the repository."""
        return node_id("Repository", self.id)

    @property
    def prs(self) -> dict[int, PullRequest]:
        """The pull requests among the issues, by number."""
        return {n: i for n, i in self.issues.items() if isinstance(i, PullRequest)}

    def branch_sha(self, branch: str) -> str | None:
        """Tip of a branch, or None."""
        return self.refs.get(f"refs/heads/{branch}")

    def resolve(self, ref: str) -> str | None:
        """A commit SHA for a SHA, branch, tag, `heads/x` or `refs/...` name, or None."""
        for candidate in (ref, f"refs/{ref}", f"refs/heads/{ref}", f"refs/tags/{ref}"):
            if candidate in self.refs:
                return self.refs[candidate]
        if len(ref) == 40 and ref in self.objects.commits:
            return ref
        if 4 <= len(ref) < 40 and all(c in "0123456789abcdef" for c in ref):
            matches = [s for s in self.objects.commits if s.startswith(ref)]
            if len(matches) == 1:
                return matches[0]
        return None


def new_token(prefix: str) -> str:
    """A token in GitHub's format: prefix plus 36 base62-ish characters."""
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    return prefix + "".join(secrets.choice(alphabet) for _ in range(36))


@dataclass
class State:
    """Every object of the fake, indexed the way lookups need them."""

    ids: Ids = field(default_factory=Ids)
    users: dict[str, User] = field(default_factory=dict)  # lower login -> user (incl. bots)
    orgs: dict[str, Org] = field(default_factory=dict)  # lower login -> org
    apps: dict[int, App] = field(default_factory=dict)
    installations: dict[int, Installation] = field(default_factory=dict)
    tokens: dict[str, InstallationToken] = field(default_factory=dict)
    repos: dict[str, Repo] = field(default_factory=dict)  # lower full name -> repo
    packages: list[Package] = field(default_factory=list)

    def account(self, login: str) -> Account | None:
        """A user or org by login (case-insensitive)."""
        key = login.lower()
        return self.orgs.get(key) or self.users.get(key)

    def user(self, login: str) -> User | None:
        """A user (or bot) by login."""
        return self.users.get(login.lower())

    def repo(self, full_name: str) -> Repo | None:
        """A repository by `owner/name` (case-insensitive)."""
        return self.repos.get(full_name.lower())

    def user_by_email(self, email: str) -> User | None:
        """The user a commit email belongs to, as GitHub links commits to accounts."""
        for u in self.users.values():
            if email and email.lower() in {u.commit_email.lower(), (u.email or "").lower()}:
                return u
        return None

    def installations_for(self, repo: Repo) -> list[Installation]:
        """Installations whose repository selection includes `repo`."""
        return [
            inst
            for inst in self.installations.values()
            if inst.account is repo.owner
            and (inst.repository_selection == "all" or repo.id in inst.repo_ids)
        ]

    def installation_repos(self, inst: Installation) -> list[Repo]:
        """Repositories an installation can reach, in creation order."""
        return [
            r
            for r in self.repos.values()
            if r.owner is inst.account
            and (inst.repository_selection == "all" or r.id in inst.repo_ids)
        ]

    def role(self, repo: Repo, user: User) -> str | None:
        """A user's effective role on a repository: the highest grant, or None."""
        grants: list[str] = []
        if repo.owner is user:
            grants.append("admin")
        if isinstance(repo.owner, Org):
            org_role = repo.owner.members.get(user.login.lower())
            if org_role == "admin":
                grants.append("admin")
            elif org_role is not None:
                grants.append("read")
        explicit = repo.collaborators.get(user.login.lower())
        if explicit:
            grants.append(explicit)
        if not grants:
            return None
        return max(grants, key=ROLES.index)

    def can_read(self, repo: Repo, user: User) -> bool:
        """Public repositories are readable by anyone; private ones by those with a role."""
        return not repo.private or self.role(repo, user) is not None

    def can_write(self, repo: Repo, user: User) -> bool:
        """Write, maintain and admin may push and edit."""
        role = self.role(repo, user)
        return role is not None and ROLES.index(role) >= ROLES.index("write")
