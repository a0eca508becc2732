"""The repository-level operations the handlers need, over one counted ``GitHubClient``.

Everything here speaks GitHub's REST API as documented, and is shaped by what real GitHub does
that a naive client gets wrong: ``mergeable`` is null until GitHub has computed it, creating an
existing ref answers 422, lists are paginated, recursive trees are truncated past 100,000
entries. Immutable objects (blobs, trees, commits by SHA) are cached for the life of the process.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

import gidgethub
from cachetools import LRUCache

from bot.github.client import GitHubClient, TransientGitHubError

log = logging.getLogger(__name__)

BLOB_CACHE_BYTES = 64 * 1024 * 1024
TREE_CACHE_ENTRIES = 400_000
#: How often, and how long apart, to read a PR whose mergeability GitHub is still computing.
MERGEABLE_POLLS = 5
MERGEABLE_POLL_DELAY = 0.5


class GatewayError(Exception):
    """A GitHub answer that the caller must handle (not a transient failure)."""


@dataclass(frozen=True)
class RepoTree:
    """A commit's files: path -> blob SHA (regular files and symlinks; no submodules)."""

    commit_sha: str
    tree_sha: str
    blobs: Mapping[str, str]

    def paths(self) -> Iterable[str]:
        return self.blobs.keys()


def _sizeof_entries(value: tuple[tuple[str, str, str, str], ...]) -> int:
    return max(1, len(value))


def _sizeof_bytes(value: bytes) -> int:
    return max(1, len(value))


class ObjectCache:
    """Immutable git objects by SHA, shared by every delivery of the process."""

    def __init__(
        self, blob_bytes: int = BLOB_CACHE_BYTES, tree_entries: int = TREE_CACHE_ENTRIES
    ) -> None:
        self.blobs: LRUCache[str, bytes] = LRUCache(maxsize=blob_bytes, getsizeof=_sizeof_bytes)
        # tree sha -> recursive entries relative to that tree: (path, mode, type, sha)
        self.trees: LRUCache[str, tuple[tuple[str, str, str, str], ...]] = LRUCache(
            maxsize=tree_entries, getsizeof=_sizeof_entries
        )
        # commit sha -> tree sha
        self.commit_trees: LRUCache[str, str] = LRUCache(maxsize=100_000)


MergeOutcome = Literal["merged", "not_mergeable", "head_changed", "blocked", "already_merged"]


@dataclass(frozen=True)
class MergeResult:
    outcome: MergeOutcome
    message: str
    sha: str | None = None


class Gateway:
    """Operations on the repositories of one installation, all through one counted client."""

    def __init__(self, client: GitHubClient, objects: ObjectCache) -> None:
        self.client = client
        self.objects = objects

    @property
    def calls(self) -> int:
        return self.client.calls

    # --- generic --------------------------------------------------------------------------

    async def get(self, url: str, **kwargs: Any) -> Any:
        return await self.client.getitem(url, **kwargs)

    async def iterate(self, url: str, *, key: str | None = None) -> AsyncIterator[Any]:
        async for item in self.client.getiter(url, iterable_key=key):
            yield item

    async def collect(self, url: str, *, key: str | None = None, limit: int = 10_000) -> list[Any]:
        items: list[Any] = []
        async for item in self.client.getiter(url, iterable_key=key):
            items.append(item)
            if len(items) >= limit:
                break
        return items

    # --- repository and refs ----------------------------------------------------------------

    async def repository(self, repo: str) -> dict[str, Any]:
        data: dict[str, Any] = await self.client.getitem(f"/repos/{repo}")
        return data

    async def branch_sha(self, repo: str, branch: str) -> str | None:
        try:
            data = await self.client.getitem(f"/repos/{repo}/git/ref/heads/{_ref(branch)}")
        except gidgethub.BadRequest as exc:
            if exc.status_code == 404:
                return None
            raise
        obj = data.get("object") or {}
        return str(obj["sha"])

    async def create_branch(self, repo: str, branch: str, sha: str) -> bool:
        """Create ``refs/heads/branch``; False when it exists already (GitHub answers 422)."""
        try:
            await self.client.post(
                f"/repos/{repo}/git/refs", data={"ref": f"refs/heads/{branch}", "sha": sha}
            )
        except gidgethub.BadRequest as exc:
            if exc.status_code == 422 and "already exists" in str(exc).lower():
                return False
            raise
        return True

    async def update_branch(self, repo: str, branch: str, sha: str) -> bool:
        """Fast-forward a branch (never forced); False when GitHub refuses (not a fast forward)."""
        try:
            await self.client.patch(
                f"/repos/{repo}/git/refs/heads/{_ref(branch)}", data={"sha": sha, "force": False}
            )
        except gidgethub.BadRequest as exc:
            if exc.status_code == 422:
                return False
            raise
        return True

    async def delete_branch(self, repo: str, branch: str) -> bool:
        try:
            await self.client.delete(f"/repos/{repo}/git/refs/heads/{_ref(branch)}")
        except gidgethub.BadRequest as exc:
            if exc.status_code in (404, 422):
                return False
            raise
        return True

    # --- trees and blobs --------------------------------------------------------------------

    async def commit_tree(self, repo: str, commit_sha: str) -> str:
        cached = self.objects.commit_trees.get(commit_sha)
        if cached is not None:
            return cached
        data = await self.client.getitem(f"/repos/{repo}/git/commits/{commit_sha}")
        tree_sha = str(data["tree"]["sha"])
        self.objects.commit_trees[commit_sha] = tree_sha
        return tree_sha

    async def tree(self, repo: str, commit_sha: str) -> RepoTree:
        """All files of a commit, reusing cached subtrees (tree SHAs never change)."""
        root_sha = self.objects.commit_trees.get(commit_sha)
        if root_sha is None:
            # One call gives the root tree's SHA and, usually, everything below it.
            data = await self.client.getitem(f"/repos/{repo}/git/trees/{commit_sha}?recursive=1")
            root_sha = str(data["sha"])
            self.objects.commit_trees[commit_sha] = root_sha
            if not data.get("truncated"):
                self._remember_tree(root_sha, data["tree"])
        entries = await self._entries(repo, root_sha)
        blobs = {path: sha for path, _mode, kind, sha in entries if kind == "blob"}
        return RepoTree(commit_sha=commit_sha, tree_sha=root_sha, blobs=blobs)

    def _remember_tree(self, sha: str, raw: Sequence[Mapping[str, Any]]) -> None:
        entries = tuple(
            (str(e["path"]), str(e["mode"]), str(e["type"]), str(e["sha"])) for e in raw
        )
        self.objects.trees[sha] = entries
        # Every subtree of a recursive listing is known too: cache them for later diffs.
        subtrees = [(p, s) for p, _m, t, s in entries if t == "tree"]
        if len(subtrees) > 2000:
            return
        for prefix, sub_sha in subtrees:
            if sub_sha in self.objects.trees:
                continue
            start = prefix + "/"
            self.objects.trees[sub_sha] = tuple(
                (p[len(start) :], m, t, s) for p, m, t, s in entries if p.startswith(start)
            )

    async def _entries(self, repo: str, tree_sha: str) -> tuple[tuple[str, str, str, str], ...]:
        cached = self.objects.trees.get(tree_sha)
        if cached is not None:
            return cached
        data = await self.client.getitem(f"/repos/{repo}/git/trees/{tree_sha}?recursive=1")
        if not data.get("truncated"):
            self._remember_tree(tree_sha, data["tree"])
            return self.objects.trees[tree_sha]
        # Too big for one recursive listing: list this level, then each subtree on its own.
        level = await self.client.getitem(f"/repos/{repo}/git/trees/{tree_sha}")
        result: list[tuple[str, str, str, str]] = []
        subtrees: list[tuple[str, str]] = []
        for e in level["tree"]:
            path, mode, kind, sha = str(e["path"]), str(e["mode"]), str(e["type"]), str(e["sha"])
            result.append((path, mode, kind, sha))
            if kind == "tree":
                subtrees.append((path, sha))
        children = await asyncio.gather(*(self._entries(repo, sha) for _, sha in subtrees))
        for (prefix, _sha), sub in zip(subtrees, children, strict=True):
            result.extend((f"{prefix}/{p}", m, t, s) for p, m, t, s in sub)
        entries = tuple(result)
        self.objects.trees[tree_sha] = entries
        return entries

    async def blob(self, repo: str, sha: str) -> bytes:
        cached = self.objects.blobs.get(sha)
        if cached is not None:
            return cached
        data = await self.client.getitem(f"/repos/{repo}/git/blobs/{sha}")
        if data.get("encoding") == "base64":
            content = base64.b64decode(data.get("content") or "")
        else:
            content = str(data.get("content") or "").encode("utf-8")
        self.objects.blobs[sha] = content
        return content

    async def blobs(self, repo: str, shas: Iterable[str]) -> dict[str, bytes]:
        unique = list(dict.fromkeys(shas))
        contents = await asyncio.gather(*(self.blob(repo, sha) for sha in unique))
        return dict(zip(unique, contents, strict=True))

    async def file(self, repo: str, tree: RepoTree, path: str) -> bytes | None:
        sha = tree.blobs.get(path)
        if sha is None:
            return None
        return await self.blob(repo, sha)

    async def commit_files(
        self,
        repo: str,
        *,
        parent: str,
        changes: Mapping[str, bytes | None],
        message: str,
    ) -> str:
        """One commit on top of ``parent`` with ``changes`` (None deletes), via the Git Data API.

        Contents go inline in the tree request, so a commit of N files costs two calls, not N+2.
        """
        base_tree = await self.commit_tree(repo, parent)
        entries: list[dict[str, Any]] = []
        for path, content in sorted(changes.items()):
            if content is None:
                entries.append({"path": path, "mode": "100644", "type": "blob", "sha": None})
            else:
                entries.append(
                    {
                        "path": path,
                        "mode": "100644",
                        "type": "blob",
                        "content": content.decode("utf-8"),
                    }
                )
        tree = await self.client.post(
            f"/repos/{repo}/git/trees", data={"base_tree": base_tree, "tree": entries}
        )
        commit = await self.client.post(
            f"/repos/{repo}/git/commits",
            data={"message": message, "tree": tree["sha"], "parents": [parent]},
        )
        sha = str(commit["sha"])
        self.objects.commit_trees[sha] = str(tree["sha"])
        return sha

    # --- commits and statuses ---------------------------------------------------------------

    async def path_history(
        self, repo: str, path: str, *, sha: str, limit: int = 300
    ) -> list[dict[str, Any]]:
        """Commits that touched ``path`` reachable from ``sha``, newest first."""
        url = f"/repos/{repo}/commits?sha={sha}&path={quote(path)}&per_page=100"
        return await self.collect(url, limit=limit)

    async def combined_status(self, repo: str, ref: str) -> dict[str, Any]:
        data: dict[str, Any] = await self.client.getitem(
            f"/repos/{repo}/commits/{ref}/status?per_page=100"
        )
        return data

    async def check_runs_for(
        self, repo: str, ref: str, *, app_id: int | None = None, name: str | None = None
    ) -> list[dict[str, Any]]:
        query = "per_page=100"
        if app_id is not None:
            query += f"&app_id={app_id}"
        if name is not None:
            query += f"&check_name={quote(name)}"
        return await self.collect(
            f"/repos/{repo}/commits/{ref}/check-runs?{query}", key="check_runs"
        )

    async def required_contexts(self, repo: str, branch: str) -> tuple[str, ...]:
        """Status contexts / check names branch protection requires; () when unprotected."""
        try:
            data = await self.client.getitem(
                f"/repos/{repo}/branches/{_ref(branch)}/protection/required_status_checks"
            )
        except gidgethub.BadRequest as exc:
            if exc.status_code in (403, 404):
                # 404: not protected. 403: the app may not read protection; the merge call
                # itself will still be refused by GitHub if a requirement is unmet.
                return ()
            raise
        names: list[str] = [str(c) for c in data.get("contexts") or []]
        for check in data.get("checks") or []:
            context = str(check.get("context", ""))
            if context and context not in names:
                names.append(context)
        return tuple(names)

    # --- pull requests ----------------------------------------------------------------------

    async def pull(self, repo: str, number: int) -> dict[str, Any]:
        data: dict[str, Any] = await self.client.getitem(f"/repos/{repo}/pulls/{number}")
        return data

    async def pull_with_mergeable(self, repo: str, number: int) -> dict[str, Any]:
        """Read a PR until GitHub has computed ``mergeable`` (null on the first read)."""
        pr = await self.pull(repo, number)
        polls = 1
        while pr.get("mergeable") is None and pr.get("state") == "open" and polls < MERGEABLE_POLLS:
            await asyncio.sleep(MERGEABLE_POLL_DELAY * polls)
            pr = await self.pull(repo, number)
            polls += 1
        return pr

    async def open_pulls(self, repo: str, *, base: str | None = None) -> list[dict[str, Any]]:
        url = f"/repos/{repo}/pulls?state=open&per_page=100"
        if base:
            url += f"&base={quote(base)}"
        return await self.collect(url)

    async def find_pull(self, repo: str, owner: str, branch: str) -> dict[str, Any] | None:
        """The open PR whose head is ``owner:branch``, if any."""
        url = f"/repos/{repo}/pulls?state=open&head={quote(owner)}:{quote(branch)}&per_page=100"
        pulls = await self.collect(url)
        return pulls[0] if pulls else None

    async def create_pull(
        self, repo: str, *, head: str, base: str, title: str, body: str
    ) -> dict[str, Any] | None:
        """Open a PR; None when GitHub says one already exists for this head."""
        try:
            data: dict[str, Any] = await self.client.post(
                f"/repos/{repo}/pulls",
                data={"head": head, "base": base, "title": title, "body": body},
            )
        except gidgethub.BadRequest as exc:
            if exc.status_code == 422 and "already exists" in str(exc).lower():
                return None
            raise
        return data

    async def update_pull(self, repo: str, number: int, **fields: Any) -> dict[str, Any]:
        data: dict[str, Any] = await self.client.patch(f"/repos/{repo}/pulls/{number}", data=fields)
        return data

    async def pull_files(self, repo: str, number: int) -> list[dict[str, Any]]:
        return await self.collect(f"/repos/{repo}/pulls/{number}/files?per_page=100", limit=3000)

    async def pull_commits(self, repo: str, number: int) -> list[dict[str, Any]]:
        return await self.collect(f"/repos/{repo}/pulls/{number}/commits?per_page=100", limit=250)

    async def pull_reviews(self, repo: str, number: int) -> list[dict[str, Any]]:
        return await self.collect(f"/repos/{repo}/pulls/{number}/reviews?per_page=100")

    async def request_reviewers(
        self, repo: str, number: int, *, teams: Sequence[str] = (), users: Sequence[str] = ()
    ) -> None:
        try:
            await self.client.post(
                f"/repos/{repo}/pulls/{number}/requested_reviewers",
                data={"reviewers": list(users), "team_reviewers": list(teams)},
            )
        except gidgethub.BadRequest as exc:
            # A team without access to the repo is a setup problem, not a reason to fail.
            log.warning("could not request review on %s#%s: %s", repo, number, exc)

    async def merge(
        self, repo: str, number: int, *, sha: str, method: str = "squash", title: str | None = None
    ) -> MergeResult:
        """Merge at exactly ``sha``: a push racing the merge makes GitHub refuse it (409)."""
        data: dict[str, Any] = {"sha": sha, "merge_method": method}
        if title:
            data["commit_title"] = title
        try:
            result = await self.client.put(f"/repos/{repo}/pulls/{number}/merge", data=data)
        except gidgethub.BadRequest as exc:
            status = int(exc.status_code)
            if status == 409:
                return MergeResult("head_changed", str(exc))
            if status == 405:
                message = str(exc)
                if "not mergeable" in message.lower():
                    return MergeResult("not_mergeable", message)
                return MergeResult("blocked", message)
            if status == 422:
                return MergeResult("blocked", str(exc))
            raise
        return MergeResult("merged", str(result.get("message", "")), str(result.get("sha", "")))

    # --- issues, comments, reactions --------------------------------------------------------

    async def comment(self, repo: str, number: int, body: str) -> dict[str, Any]:
        data: dict[str, Any] = await self.client.post(
            f"/repos/{repo}/issues/{number}/comments", data={"body": body}
        )
        return data

    async def comments(self, repo: str, number: int) -> list[dict[str, Any]]:
        return await self.collect(f"/repos/{repo}/issues/{number}/comments?per_page=100")

    async def react(self, repo: str, comment_id: int, content: str) -> None:
        try:
            await self.client.post(
                f"/repos/{repo}/issues/comments/{comment_id}/reactions",
                data={"content": content},
                accept="application/vnd.github+json",
            )
        except gidgethub.BadRequest as exc:
            log.info("could not react to comment %s: %s", comment_id, exc)

    async def issue(self, repo: str, number: int) -> dict[str, Any]:
        data: dict[str, Any] = await self.client.getitem(f"/repos/{repo}/issues/{number}")
        return data

    async def labels(self, repo: str, number: int) -> list[str]:
        issue = await self.issue(repo, number)
        return [str(label["name"]) for label in issue.get("labels") or []]

    # --- people -----------------------------------------------------------------------------

    async def permission(self, repo: str, user: str) -> str:
        """The user's role on the repo: admin, maintain, write, triage, read or none."""
        try:
            data = await self.client.getitem(
                f"/repos/{repo}/collaborators/{quote(user)}/permission"
            )
        except gidgethub.BadRequest as exc:
            if exc.status_code == 404:
                return "none"
            raise
        return str(data.get("role_name") or data.get("permission") or "none")

    async def team_members(self, org: str, team: str) -> frozenset[str] | None:
        """Logins of a team's members (lower-case); None when the team does not exist."""
        try:
            members = await self.collect(
                f"/orgs/{quote(org)}/teams/{quote(team)}/members?per_page=100"
            )
        except gidgethub.BadRequest as exc:
            if exc.status_code == 404:
                return None
            raise
        return frozenset(str(m["login"]).lower() for m in members)


def _ref(name: str) -> str:
    """A branch name for a URL path: slashes stay, everything else unsafe is escaped."""
    return quote(name, safe="/")


__all__ = [
    "Gateway",
    "GatewayError",
    "MergeResult",
    "ObjectCache",
    "RepoTree",
    "TransientGitHubError",
]
