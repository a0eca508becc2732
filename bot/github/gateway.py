"""The repository-level operations the handlers need, over one counted ``GitHubClient``.

Everything here speaks GitHub's REST API as documented, and is shaped by what real GitHub does
that a naive client gets wrong: ``mergeable`` is null until GitHub has computed it, creating an
existing ref answers 422, lists are paginated, recursive trees are truncated past 100,000
entries, archive endpoints redirect to another host. Immutable objects (blobs, trees, commits
by SHA) are cached in memory and on disk (``DATA_DIR/objects.sqlite3``), and a commit with more
to read than a few dozen files is read whole, as its archive, in one call.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import re
import sys
import time
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote, urlsplit

import aiohttp
import gidgethub
from cachetools import LRUCache

from bot.concurrency import cpu
from bot.concurrency.aio import map_bounded
from bot.fleet.policy import POLICY_PATH
from bot.github import objectstore
from bot.github.archive import ArchiveFiles, ArchiveLimits, ArchiveReader, ArchiveRefused, Kept
from bot.github.client import GitHubClient, TransientGitHubError
from bot.github.gitobj import (
    FILE_MODE,
    TREE_MODE,
    Entry,
    Levels,
    git_blob_sha,
    git_tree_sha,
    packs_of,
    parse_tree_body,
    tree_sha_of_body,
    unpack_levels,
)
from bot.github.gitobj import git_order as _git_order
from bot.github.objectstore import NullObjectStore, ObjectStore

log = logging.getLogger(__name__)

BLOB_CACHE_BYTES = 64 * 1024 * 1024
#: Entries of tree levels kept (about 160 bytes each): a 200,000-file fleet repo needs ~300,000.
TREE_CACHE_ENTRIES = 600_000
#: How often, and how long apart, to read a PR whose mergeability GitHub is still computing.
MERGEABLE_POLLS = 5
MERGEABLE_POLL_DELAY = 0.5

#: A file change for a tree computed locally: (mode, None keeps the old one; blob SHA) or None
#: for a deletion.
FileChange = tuple[str | None, str] | None
#: A comparison lists at most this many files; a longer one may be cut short.
COMPARE_FILES_LIMIT = 300
#: Past this many blobs to read (or directories to list) at one commit, its archive is read
#: instead: one call rather than one each ("a few dozen").
ARCHIVE_MIN_BLOBS = 48
ARCHIVE_MIN_DIRS = 48
#: Compressed bytes handed to the archive reader at a time (a thread hop each).
ARCHIVE_CHUNK = 256 * 1024
#: Downloads of one archive before giving up on it (connection failures, 5xx).
ARCHIVE_ATTEMPTS = 3


def archive_wanted(path: str) -> bool:
    """What the bot reads of an archive: the policy and the YAML under ``clusters/``."""
    return path == POLICY_PATH or (path.startswith("clusters/") and path.endswith(_YAML))


_YAML = (".yaml", ".yml")


class _DownloadFailed(Exception):
    """The archive host answered something other than the archive."""


#: GitHub lists at most this many commits of a pull request.
PULL_COMMITS_LIMIT = 250
#: Past that, commits are read from a comparison, up to this many (then: "could not be read").
COMPARE_COMMITS_LIMIT = 2_500

#: GETs of objects named by SHA: never revalidated, so never worth an ETag-cache slot.
_IMMUTABLE_URL = re.compile(
    r"/git/(?:trees|blobs|commits)/[0-9a-f]{40}(?:\?|$)|/contents/[^?]*\?(?:.*&)?ref=[0-9a-f]{40}(?:&|$)"
)


class GatewayError(Exception):
    """A GitHub answer that the caller must handle (not a transient failure)."""


@dataclass(frozen=True)
class RepoTree:
    """A commit's files: path -> blob SHA (regular files and symlinks; no submodules).

    ``links`` names the symlinks among them (path -> blob SHA, whose content is the target),
    ``submodules`` the gitlinks (path -> commit SHA in another repository): both are rare, and
    the gate must know them, as a link makes one path show another's content.
    """

    commit_sha: str
    tree_sha: str
    blobs: Mapping[str, str]
    links: Mapping[str, str] = field(default_factory=dict)
    submodules: Mapping[str, str] = field(default_factory=dict)

    def paths(self) -> Iterable[str]:
        return self.blobs.keys()


def _sizeof_level(value: tuple[Entry, ...]) -> int:
    return max(1, len(value))


def _sizeof_bytes(value: bytes) -> int:
    return max(1, len(value))


class ObjectCache:
    """Immutable git objects by SHA, shared by every delivery of the process.

    Trees are kept one level per SHA, so a subtree shared by many commits is stored once, and
    a new commit costs only the levels that changed: reading it walks the cached levels and
    asks GitHub for the missing ones alone.

    Behind the memory caches, ``store`` keeps the same immutable objects on disk (blobs, tree
    levels, commit -> tree), so a restarted process is warm: see :mod:`bot.github.objectstore`.
    """

    def __init__(
        self,
        blob_bytes: int = BLOB_CACHE_BYTES,
        tree_entries: int = TREE_CACHE_ENTRIES,
        *,
        store: ObjectStore | None = None,
        archive_limits: ArchiveLimits | None = None,
    ) -> None:
        self.blobs: LRUCache[str, bytes] = LRUCache(maxsize=blob_bytes, getsizeof=_sizeof_bytes)
        # tree sha -> the entries of that level
        self.trees = LevelCache(tree_entries)
        # commit sha -> tree sha
        self.commit_trees: LRUCache[str, str] = LRUCache(maxsize=100_000)
        # (repo, directory path; "" is the root) whose recursive listing GitHub truncates:
        # read those one level at a time instead of paying for a truncated listing again
        self.large_dirs: LRUCache[tuple[str, str], bool] = LRUCache(maxsize=10_000)
        # repo -> the commit whose tree was read last: a new commit is read as a diff to it
        self.last_read: LRUCache[str, str] = LRUCache(maxsize=10_000)
        #: The disk side (blobs, levels, commit -> tree); NullObjectStore keeps nothing.
        self.store: ObjectStore = store if store is not None else NullObjectStore()
        self.archive_limits = archive_limits or ArchiveLimits()
        # (repo, commit) whose archive this process read or tried: never twice
        self.archives: LRUCache[tuple[str, str], bool] = LRUCache(maxsize=1_000)
        # repositories this process has read a tree or an archive of
        self.repos_read: LRUCache[str, bool] = LRUCache(maxsize=10_000)
        # archive reads in flight, so that concurrent readers share one download
        self.archive_reads: dict[tuple[str, str], asyncio.Future[bool]] = {}

    @property
    def durable(self) -> bool:
        return not isinstance(self.store, NullObjectStore)

    def remember_blobs(self, items: Iterable[tuple[str, bytes]], *, memory: bool = True) -> None:
        """Blob contents by their SHA, in memory (unless ``memory`` is False) and on disk."""
        items = list(items)
        if memory or not self.durable:
            for sha, content in items:
                self.blobs[sha] = content
        self.store.put(objectstore.BLOB, items)

    def remember_levels(
        self,
        levels: Mapping[str, tuple[Entry, ...]],
        packs: Mapping[str, bytes] | None = None,
    ) -> None:
        """Tree levels by SHA, in memory and on disk, as packs of small whole subtrees (a row
        per subtree, not per level: see :func:`bot.github.gitobj.packs_of`); ``packs`` when
        the caller made them already (an archive's tree builder)."""
        self.trees.add_many(levels)
        if not self.durable:
            return
        if packs is None:
            packs = packs_of(levels, self.trees.get)
        self.store.put(objectstore.TREE, packs.items())

    def remember_commit(self, repo: str, commit: str, tree: str) -> None:
        self.commit_trees[commit] = tree
        self.store.put_commit(repo, commit, tree)

    async def stored_blobs(self, shas: Sequence[str], *, keep: bool = True) -> dict[str, bytes]:
        """Blobs read back from disk (kept in memory too, unless not ``keep``), each checked
        against its SHA."""
        if not shas or not self.durable:
            return {}
        found = await self.store.get(objectstore.BLOB, shas)
        good = {sha: data for sha, data in found.items() if git_blob_sha(data) == sha}
        if len(good) != len(found):
            log.warning("object cache: %d damaged blob(s) on disk ignored", len(found) - len(good))
        if keep:
            for sha, content in good.items():
                self.blobs[sha] = content
        return good

    async def stored_levels(self, shas: Sequence[str]) -> dict[str, tuple[Entry, ...]]:
        """Tree levels read back from disk (kept in memory too), each checked against its
        SHA; a pack brings the levels of its whole subtree."""
        if not shas or not self.durable:
            return {}
        found = await self.store.get(objectstore.TREE, shas)
        if not found:
            return {}
        # checking and parsing a big tree's levels is CPU work: on the worker, not the loop
        out, damaged = await cpu.run(_read_packs, found)
        for key, reason in damaged:
            log.warning("object cache: damaged tree %s on disk ignored (%s)", key, reason)
        self.trees.add_many(out)
        return out

    async def stored_root(self, commit: str) -> str | None:
        if not self.durable:
            return None
        found = await self.store.commit_trees([commit])
        tree = found.get(commit)
        if tree is not None:
            self.commit_trees[commit] = tree
        return tree


def _read_packs(
    packs: Mapping[str, bytes],
) -> tuple[dict[str, tuple[Entry, ...]], list[tuple[str, str]]]:
    """The levels of packs read from disk, each checked against its SHA; and the packs
    refused (key, why)."""
    out: dict[str, tuple[Entry, ...]] = {}
    damaged: list[tuple[str, str]] = []
    for key, pack in packs.items():
        try:
            records = unpack_levels(pack)
            if not records or records[0][0] != key:
                raise ValueError("the pack does not start with its own level")
            levels = {}
            for sha, body in records:
                if tree_sha_of_body(body) != sha:
                    raise ValueError(f"level {sha} does not hash to its SHA")
                levels[sha] = parse_tree_body(body)
        except (ValueError, UnicodeDecodeError) as exc:
            damaged.append((key, str(exc)))
            continue
        out.update(levels)
    return out, damaged


class LevelCache(dict[str, tuple[Entry, ...]]):
    """Tree levels by SHA, at most ``maxsize`` entries in all, the oldest levels dropped first.

    A dict, so that the walks over a 300,000-entry tree read it at dict speed; levels never
    change, and whatever is dropped is on disk (or read again), so first in, first out serves
    as well as least recently used, without the bookkeeping on every read."""

    def __init__(self, maxsize: int) -> None:
        super().__init__()
        self.maxsize = maxsize
        self.currsize = 0

    def __setitem__(self, sha: str, level: tuple[Entry, ...]) -> None:
        self.add_many({sha: level})

    def add_many(self, levels: Mapping[str, tuple[Entry, ...]]) -> None:
        put = super().__setitem__
        for sha, level in levels.items():
            if sha not in self:
                put(sha, level)
                self.currsize += _sizeof_level(level)
        while self.currsize > self.maxsize and self:
            self.currsize -= _sizeof_level(self.pop(next(iter(self))))


class _MutableOnly(MutableMapping[str, Any]):
    """gidgethub's ETag cache without objects named by SHA (gidgethub keys its cache by URL
    and has no per-request opt-out). Their contents live in :class:`ObjectCache` already;
    a copy of a 100,000-entry tree listing here would only cost memory and evict the
    entries that do save calls (lists of PRs, refs)."""

    def __init__(self, inner: MutableMapping[str, Any]) -> None:
        self.inner = inner

    def __getitem__(self, key: str) -> Any:
        return self.inner[key]

    def __setitem__(self, key: str, value: Any) -> None:
        if _IMMUTABLE_URL.search(key) is None:
            self.inner[key] = value

    def __delitem__(self, key: str) -> None:
        del self.inner[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.inner)

    def __len__(self) -> int:
        return len(self.inner)


MergeOutcome = Literal[
    "merged", "not_mergeable", "head_changed", "blocked", "already_merged", "queue_required"
]


@dataclass(frozen=True)
class MergeResult:
    outcome: MergeOutcome
    message: str
    sha: str | None = None


EnqueueOutcome = Literal["queued", "already_queued", "refused"]


@dataclass(frozen=True)
class EnqueueResult:
    outcome: EnqueueOutcome
    message: str
    position: int | None = None


@dataclass(frozen=True)
class QueuedGroup:
    """A pull request in a merge queue and its group's commit (head) and parent (base)."""

    number: int
    head_sha: str
    base_sha: str


#: The entries of a branch's merge queue, front first.
QUEUE_ENTRIES = """
query($owner: String!, $name: String!, $branch: String!) {
  repository(owner: $owner, name: $name) {
    mergeQueue(branch: $branch) {
      entries(first: 100) {
        nodes { position headCommit { oid } baseCommit { oid } pullRequest { number } }
      }
    }
  }
}
"""

#: Adds a pull request to its base branch's merge queue, only while its head is the commit the
#: bot judged (GitHub has no REST endpoint for this).
ENQUEUE = """
mutation($pullRequestId: ID!, $expectedHeadOid: GitObjectID!) {
  enqueuePullRequest(input: {pullRequestId: $pullRequestId, expectedHeadOid: $expectedHeadOid}) {
    mergeQueueEntry { id position state }
  }
}
"""

#: Every GraphQL document the bot sends, by name (the test suite checks them, and each request
#: made with them, against GitHub's GraphQL schema: ``scripts/graphql_subset.py``).
GRAPHQL_DOCUMENTS = {"QUEUE_ENTRIES": QUEUE_ENTRIES, "ENQUEUE": ENQUEUE}


class Gateway:
    """Operations on the repositories of one installation, all through one counted client."""

    def __init__(self, client: GitHubClient, objects: ObjectCache) -> None:
        self.client = client
        self.objects = objects
        #: Read a repository never read before as its archive (see ``_never_read``).
        self.archive_first = True
        # commit -> its files as an archive read for tree() gave them (taken by tree())
        self._archived: dict[str, RepoTree] = {}
        etags = client._cache
        if etags is not None and not isinstance(etags, _MutableOnly):
            client._cache = _MutableOnly(etags)

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
        if cached is None:
            cached = await self.objects.stored_root(commit_sha)
        if cached is not None:
            return cached
        data = await self.client.getitem(f"/repos/{repo}/git/commits/{commit_sha}")
        tree_sha = str(data["tree"]["sha"])
        self.objects.remember_commit(repo, commit_sha, tree_sha)
        return tree_sha

    async def tree(self, repo: str, commit_sha: str) -> RepoTree:
        """All files of a commit. Only tree levels never seen before cost calls: a tree SHA
        names its whole content, so an unchanged directory is not read again, and reading a
        commit that changed one file of a huge repo costs one call per changed level."""
        # Levels read by this call, in case the cache cannot hold them all at once.
        read: dict[str, tuple[Entry, ...]] = {}
        root = self.objects.commit_trees.get(commit_sha)
        if root is None:
            root = await self.objects.stored_root(commit_sha)
        if root is None:
            root = await self._root_by_compare(repo, commit_sha)
        if root is None and await self._never_read(repo):
            root = await self.read_archive(repo, commit_sha, read=read)
        if root is None:
            root = await self._root_of(repo, commit_sha, read)
        tried: set[str] = set()
        while True:
            archived = self._archived.pop(commit_sha, None)
            if archived is not None and archived.tree_sha == root:
                self.objects.last_read[repo] = commit_sha
                self.objects.repos_read[repo] = True
                return archived  # an archive with links or submodules is never proven
            blobs, missing, special = self._flatten(root, read)
            if not missing:
                self.objects.last_read[repo] = commit_sha
                self.objects.repos_read[repo] = True
                links = {p: sha for p, (mode, sha) in special.items() if mode == LINK_MODE}
                modules = {p: sha for p, (mode, sha) in special.items() if mode != LINK_MODE}
                return RepoTree(commit_sha, root, blobs, links, modules)
            if await self._levels_without_listing(repo, commit_sha, root, missing, tried, read):
                continue
            await map_bounded(lambda item: self._read_dir(repo, item[0], item[1], read), missing)

    async def _root_by_compare(self, repo: str, commit_sha: str) -> str | None:
        """The root tree of a commit from its comparison with the commit read last: one call
        whose size is the change, not the repository, then the new levels computed locally.

        None (read the tree instead) when there is no earlier commit, when more files changed
        than a comparison lists, or when the computed tree is not GitHub's (a mode change, a
        submodule): the root SHA must match, which proves every level under it.
        """
        base = self.objects.last_read.get(repo)
        base_root = self.objects.commit_trees.get(base) if base is not None else None
        if base is None or base_root is None:
            base, base_root = await self._stored_base(repo)
        if base is None or base_root is None or not await self._level_known(base_root):
            return None
        try:
            data = await self.client.getitem(f"/repos/{repo}/compare/{base}...{commit_sha}")
        except gidgethub.BadRequest as exc:
            if exc.status_code in (404, 422):  # the earlier commit is gone (a force push)
                return None
            raise
        files = data.get("files")
        merge_base = (data.get("merge_base_commit") or {}).get("commit") or {}
        base_tree = (merge_base.get("tree") or {}).get("sha")
        if not isinstance(files, list) or len(files) >= COMPARE_FILES_LIMIT or not base_tree:
            return None
        changes = _compared_changes(files)
        await self._load_levels_along(str(base_tree), changes)
        root, made = self._levels_after(str(base_tree), changes)
        if root is None:
            return None
        commits = data.get("commits") or []
        if commits and commits[-1].get("sha") == commit_sha:
            head_tree = str(commits[-1]["commit"]["tree"]["sha"])
        else:
            head_tree = await self.commit_tree(repo, commit_sha)
        if root != head_tree:
            log.info("%s: computed tree %s, GitHub has %s; reading it", repo, root, head_tree)
            return None
        self.objects.remember_levels(made)
        self.objects.remember_commit(repo, commit_sha, root)
        return root

    async def _root_of(self, repo: str, commit_sha: str, read: Levels) -> str:
        """The root tree of a commit, in one call that usually also lists everything below."""
        if (repo, "") in self.objects.large_dirs:
            data = await self.client.getitem(f"/repos/{repo}/git/trees/{commit_sha}")
            self._remember_level(repo, str(data["sha"]), data, read)
        else:
            data = await self.client.getitem(f"/repos/{repo}/git/trees/{commit_sha}?recursive=1")
            if data.get("truncated"):
                self.objects.large_dirs[(repo, "")] = True
            else:
                self._remember_recursive(str(data["sha"]), data["tree"], read)
        root = str(data["sha"])
        self.objects.remember_commit(repo, commit_sha, root)
        return root

    async def _read_dir(self, repo: str, path: str, sha: str, read: Levels) -> None:
        """Cache directory ``path`` (tree ``sha``): all of it in one recursive listing, or,
        when GitHub truncates that (more than 100,000 entries), its own level only."""
        if (repo, path) not in self.objects.large_dirs:
            data = await self.client.getitem(f"/repos/{repo}/git/trees/{sha}?recursive=1")
            if not data.get("truncated"):
                self._remember_recursive(sha, data["tree"], read)
                return
            self.objects.large_dirs[(repo, path)] = True
        level = await self.client.getitem(f"/repos/{repo}/git/trees/{sha}")
        self._remember_level(repo, sha, level, read)

    def _flatten(
        self, root: str, read: Levels
    ) -> tuple[dict[str, str], list[tuple[str, str]], dict[str, tuple[str, str]]]:
        """Blob SHAs by path under ``root`` as far as levels are known (in git's order),
        ``(path, sha)`` of each directory whose level is not, and ``path -> (mode, sha)`` of
        every symlink and submodule."""
        trees = self.objects.trees
        blobs: dict[str, str] = {}
        missing: dict[str, str] = {}
        special: dict[str, tuple[str, str]] = {}

        def walk(prefix: str, sha: str) -> None:
            level = read.get(sha)
            if level is None:
                level = trees.get(sha)
            if level is None:
                missing.setdefault(sha, prefix[:-1])
                return
            for name, mode, kind, entry in level:
                if kind == "blob":
                    blobs[prefix + name] = entry
                    if mode == LINK_MODE:
                        special[prefix + name] = (mode, entry)
                elif kind == "tree":
                    walk(f"{prefix}{name}/", entry)
                else:  # a submodule ("commit")
                    special[prefix + name] = (mode, entry)

        walk("", root)
        return blobs, [(path, sha) for sha, path in missing.items()], special

    def _remember_recursive(
        self, root: str, raw: Sequence[Mapping[str, Any]], read: Levels
    ) -> None:
        """Split a complete recursive listing into its levels (every subtree is known now)."""
        levels: dict[str, list[Entry]] = {"": []}
        shas = {"": root}
        for e in raw:
            path = str(e["path"])
            parent, _, name = path.rpartition("/")
            entry = _entry(name, e)
            levels.setdefault(parent, []).append(entry)
            if entry[2] == "tree":
                shas[path] = entry[3]
                levels.setdefault(path, [])
        made = {shas[path]: tuple(entries) for path, entries in levels.items() if path in shas}
        read.update(made)
        self.objects.remember_levels(made)

    def _remember_level(self, repo: str, sha: str, data: Mapping[str, Any], read: Levels) -> None:
        if data.get("truncated"):
            raise GatewayError(
                f"a directory of {repo} has more entries than GitHub lists (tree {sha})"
            )
        read[sha] = level = tuple(_entry(str(e["path"]), e) for e in data["tree"])
        self.objects.remember_levels({sha: level})

    def _levels_after(
        self, base: str, changes: Mapping[str, FileChange]
    ) -> tuple[str | None, dict[str, tuple[Entry, ...]]]:
        """The root tree SHA that ``base`` with ``changes`` has, computed as git does, and
        each new level; (None, {}) when a level it needs is not cached."""
        made: dict[str, tuple[Entry, ...]] = {}

        def build(sha: str | None, edits: Mapping[str, FileChange]) -> str | None:
            entries: dict[str, tuple[str, str, str]] = {}
            if sha is not None:
                level = self.objects.trees.get(sha)
                if level is None:
                    raise KeyError(sha)
                entries = {name: (mode, kind, s) for name, mode, kind, s in level}
            nested: dict[str, dict[str, FileChange]] = {}
            for path, change in edits.items():
                head, sep, rest = path.partition("/")
                if sep:
                    nested.setdefault(head, {})[rest] = change
                elif change is None:
                    entries.pop(head, None)
                else:
                    mode, blob = change
                    old = entries.get(head)
                    kept = old[0] if old is not None and old[1] == "blob" else FILE_MODE
                    entries[head] = (mode or kept, "blob", blob)
            for name, sub in nested.items():
                old = entries.get(name)
                child = build(old[2] if old is not None and old[1] == "tree" else None, sub)
                if child is None:
                    entries.pop(name, None)  # git keeps no empty directories
                else:
                    entries[name] = (TREE_MODE, "tree", child)
            if not entries:
                return None
            level = tuple(
                sorted(((n, m, k, s) for n, (m, k, s) in entries.items()), key=_git_order)
            )
            new = git_tree_sha(level)
            made[new] = level
            return new

        try:
            return build(base, changes), made
        except KeyError:
            return None, {}

    async def blob(self, repo: str, sha: str) -> bytes:
        cached = self.objects.blobs.get(sha)
        if cached is not None:
            return cached
        stored = await self.objects.stored_blobs([sha])
        if sha in stored:
            return stored[sha]
        return await self._fetch_blob(repo, sha)

    async def _fetch_blob(self, repo: str, sha: str, *, keep: bool = True) -> bytes:
        data = await self.client.getitem(f"/repos/{repo}/git/blobs/{sha}")
        if data.get("encoding") == "base64":
            content = base64.b64decode(data.get("content") or "")
        else:
            content = str(data.get("content") or "").encode("utf-8")
        self.objects.remember_blobs([(sha, content)], memory=keep)
        return content

    async def blobs(
        self, repo: str, shas: Iterable[str], *, commit: str | None = None, keep: bool = True
    ) -> dict[str, bytes]:
        """Contents by blob SHA: from memory, then disk, then GitHub. With the ``commit``
        they come from, more than a few dozen missing ones are read as the commit's archive
        (one call) instead of one call each. ``keep=False``: read once (a fleet-wide view),
        not worth a place in memory."""
        unique = list(dict.fromkeys(shas))
        found, rest = self._cached_blobs(unique)
        if rest:
            found.update(await self.objects.stored_blobs(rest, keep=keep))
            rest = [sha for sha in rest if sha not in found]
        if commit is not None and len(rest) > ARCHIVE_MIN_BLOBS:
            await self.read_archive(repo, commit)
            more, rest = self._cached_blobs(rest)
            found.update(more)
            found.update(await self.objects.stored_blobs(rest, keep=keep))
            rest = [sha for sha in rest if sha not in found]
        if rest:
            contents = await map_bounded(lambda sha: self._fetch_blob(repo, sha, keep=keep), rest)
            found.update(zip(rest, contents, strict=True))
        return {sha: found[sha] for sha in unique}

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
                entries.append({"path": path, "mode": FILE_MODE, "type": "blob", "sha": None})
            else:
                entries.append(
                    {
                        "path": path,
                        "mode": FILE_MODE,
                        "type": "blob",
                        "content": content.decode("utf-8"),
                    }
                )
        tree = await self.client.post(
            f"/repos/{repo}/git/trees", data={"base_tree": base_tree, "tree": entries}
        )
        self._remember_commit_tree(base_tree, changes, str(tree["sha"]))
        commit = await self.client.post(
            f"/repos/{repo}/git/commits",
            data={"message": message, "tree": tree["sha"], "parents": [parent]},
        )
        sha = str(commit["sha"])
        self.objects.remember_commit(repo, sha, str(tree["sha"]))
        return sha

    def _remember_commit_tree(
        self, base: str, changes: Mapping[str, bytes | None], tree_sha: str
    ) -> None:
        """Cache the levels of a tree we just made, computed locally: reading this commit (or
        the squash merge that has the same tree) then costs nothing. The computed root must
        equal GitHub's, which proves every level and blob SHA under it."""
        computed: dict[str, FileChange] = {
            path: None if content is None else (FILE_MODE, git_blob_sha(content))
            for path, content in changes.items()
        }
        root, made = self._levels_after(base, computed)
        if root != tree_sha:
            if root is not None:
                log.warning("computed tree %s, GitHub made %s: not cached", root, tree_sha)
            return
        self.objects.remember_levels(made)
        self.objects.remember_blobs(
            (git_blob_sha(content), content) for content in changes.values() if content is not None
        )

    # --- archives and the disk cache (issue 18) -------------------------------------------------
    # A cold read of a big repository is one archive download, not one call per blob or per
    # directory; what was read once stays on disk (``ObjectCache.store``) across restarts.

    def _cached_blobs(self, shas: Sequence[str]) -> tuple[dict[str, bytes], list[str]]:
        found: dict[str, bytes] = {}
        rest: list[str] = []
        for sha in shas:
            content = self.objects.blobs.get(sha)
            if content is None:
                rest.append(sha)
            else:
                found[sha] = content
        return found, rest

    async def available_blobs(self, repo: str, commit: str, shas: Iterable[str]) -> set[str]:
        """Which of these blobs of ``commit`` can be had without a call per blob (memory or
        disk), after reading the commit's archive when more than a few dozen are missing."""
        unique = list(dict.fromkeys(shas))
        _, rest = self._cached_blobs(unique)
        stored = await self.objects.store.has(objectstore.BLOB, rest) if rest else set()
        rest = [sha for sha in rest if sha not in stored]
        if len(rest) > ARCHIVE_MIN_BLOBS:
            # contents are kept by their SHA even when the archive's tree is not the commit's
            await self.read_archive(repo, commit)
            _, rest = self._cached_blobs(rest)
            stored |= await self.objects.store.has(objectstore.BLOB, rest) if rest else set()
            rest = [sha for sha in rest if sha not in stored]
        missing = set(rest)
        return {sha for sha in unique if sha not in missing}

    async def first_read(self, repo: str, tree: RepoTree, sha: str) -> None:
        """Before reading blob ``sha`` of ``tree`` (the policy, which every story reads first):
        when it is unknown here and the tree holds more than a few dozen files the bot reads,
        this is a cold start on a big repository, and the stories read many of them next:
        read the commit's archive now, one call, instead of the blob now and the rest later."""
        if sha in self.objects.blobs or await self.objects.store.has(objectstore.BLOB, [sha]):
            return
        wanted = 0
        for path in tree.paths():
            if archive_wanted(path):
                wanted += 1
                if wanted > ARCHIVE_MIN_BLOBS:
                    await self.read_archive(repo, tree.commit_sha, root=tree.tree_sha)
                    return

    async def _stored_base(self, repo: str) -> tuple[str | None, str | None]:
        """A commit of ``repo`` whose tree is on disk, to compare a new commit with after a
        restart (the newest one stored)."""
        for commit, tree in await self.objects.store.recent_commits(repo, 1):
            self.objects.commit_trees[commit] = tree
            return commit, tree
        return None, None

    async def read_before(self, repo: str) -> bool:
        """Whether the bot has read a tree of ``repo`` (in this process, or one stored on disk
        by an earlier one): only fleet repositories' trees are read."""
        if repo in self.objects.repos_read:
            return True
        return bool(await self.objects.store.recent_commits(repo, 1))

    async def _never_read(self, repo: str) -> bool:
        """Nothing of ``repo`` is known, in memory or on disk: its first read is its archive
        (one round trip for the tree and every file the bot reads, where a listing is one call
        for the tree, or many past GitHub's 100,000 entries, and then a call per file)."""
        if repo in self.objects.repos_read or not self.archive_first:
            return False
        return not await self.objects.store.recent_commits(repo, 1)

    async def _level_known(self, sha: str) -> bool:
        return sha in self.objects.trees or sha in await self.objects.stored_levels([sha])

    async def _load_levels_along(self, base: str, changes: Mapping[str, FileChange]) -> None:
        """Bring the levels ``_levels_after`` walks (each directory of a changed path, from
        ``base`` down) into memory from disk, one batch per depth."""
        wanted: dict[str, dict[str, FileChange]] = {base: dict(changes)}
        while wanted:
            absent = [sha for sha in wanted if sha not in self.objects.trees]
            await self.objects.stored_levels(absent)
            deeper: dict[str, dict[str, FileChange]] = {}
            for sha, edits in wanted.items():
                level = self.objects.trees.get(sha)
                if level is None:
                    continue
                subtrees = {name: s for name, _mode, kind, s in level if kind == "tree"}
                for path, change in edits.items():
                    head, sep, rest = path.partition("/")
                    if sep and head in subtrees:
                        deeper.setdefault(subtrees[head], {})[rest] = change
            wanted = deeper

    async def _levels_without_listing(
        self,
        repo: str,
        commit_sha: str,
        root: str,
        missing: Sequence[tuple[str, str]],
        tried: set[str],
        read: Levels,
    ) -> bool:
        """Fill missing levels without listing them: from disk, or, for a repository too big
        to list at once (GitHub truncates its recursive tree) when most of it is unknown, from
        the commit's archive. False when only listing them is left."""
        untried = [sha for _path, sha in missing if sha not in tried]
        if untried:
            tried.update(untried)
            found = await self.objects.stored_levels(untried)
            if found:
                read.update(found)
                return True
        cold = any(path == "" for path, _sha in missing) or len(missing) > ARCHIVE_MIN_DIRS
        if cold and (repo, "") in self.objects.large_dirs and "archive" not in tried:
            tried.add("archive")
            return await self.read_archive(repo, commit_sha, root=root, read=read) is not None
        return False

    async def read_archive(
        self, repo: str, commit_sha: str, *, root: str | None = None, read: Levels | None = None
    ) -> str | None:
        """Read the commit's archive (once per process and commit): every wanted file's
        content goes to the blob cache under its blob SHA, and when the files hash to the
        commit's tree SHA, every level of the tree is cached too; that tree SHA, or None.

        Contents are cached under the SHA they hash to, so they are right whatever the archive
        is; only the path -> blob mapping needs the proof of the matching root. An archive
        that cannot be had (404: an empty repository; a 5xx after retries) or is refused (see
        :mod:`bot.github.archive`) costs only its call: the caller reads as before.
        """
        key = (repo.lower(), commit_sha)
        if key in self.objects.archives:
            proven = self.objects.archives[key]
            return self.objects.commit_trees.get(commit_sha) if proven else None
        running = self.objects.archive_reads.get(key)
        if running is not None:
            proven = await asyncio.shield(running)
            return self.objects.commit_trees.get(commit_sha) if proven else None
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.objects.archive_reads[key] = future
        self.objects.repos_read[repo] = True
        proven_root: str | None = None
        try:
            proven_root = await self._read_archive(repo, commit_sha, root, read)
        finally:
            self.objects.archive_reads.pop(key, None)
            self.objects.archives[key] = proven_root is not None
            future.set_result(proven_root is not None)
        return proven_root

    async def _read_archive(
        self, repo: str, commit_sha: str, root: str | None, read: Levels | None
    ) -> str | None:
        started = time.monotonic()
        if root is None:
            root = self.objects.commit_trees.get(commit_sha)
        if root is None:
            root = await self.objects.stored_root(commit_sha)
        if root is None:
            location, root = await asyncio.gather(
                self._archive_location(repo, commit_sha), self.commit_tree(repo, commit_sha)
            )
        else:
            location = await self._archive_location(repo, commit_sha)
        if location is None or root is None:
            return None
        files = await self._download_archive(repo, commit_sha, location)
        if files is None:
            return None
        if files.lfs_pointers:
            shown = ", ".join(files.lfs_pointers[:5])
            more = len(files.lfs_pointers) - 5
            log.warning(
                "%s: %s%s: Git LFS pointer, not YAML (the file's content is kept in Git LFS; "
                "keep fleet YAML in git itself)",
                repo,
                shown,
                f" and {more} more" if more > 0 else "",
            )
        computed, levels = files.root, files.levels
        seconds = time.monotonic() - started
        if computed != root:
            log.info(
                "%s: the archive of %s does not hash to its tree (export-ignore or export-subst "
                "in .gitattributes, a submodule, LFS content?): its contents are cached by their "
                "SHA, the tree is read from the API",
                repo,
                commit_sha[:7],
            )
            return None
        self.objects.remember_levels(levels, files.packs)
        self.objects.remember_commit(repo, commit_sha, root)
        if read is not None:
            # for tree(): every path's blob SHA as the archive gave it (no walk of the levels)
            read.update(levels)
            self._archived[commit_sha] = RepoTree(commit_sha, root, files.blobs)
        log.info(
            "%s: read the archive of %s: %s files, %.1f MB, in %.1f s",
            repo,
            commit_sha[:7],
            f"{files.files:,}",
            files.compressed_bytes / 1e6,
            seconds,
        )
        return root

    async def _archive_location(self, repo: str, commit_sha: str) -> str | None:
        """Where GitHub redirects ``GET /tarball/{sha}`` (one API call); None when there is no
        archive to read (logged)."""
        try:
            await self.client.getitem(f"/repos/{repo}/tarball/{commit_sha}")
        except gidgethub.RedirectionException as exc:
            location = str(exc.headers.get("Location") or "")
            scheme = urlsplit(location).scheme
            api_scheme = urlsplit(self.client.base_url).scheme
            if scheme == "https" or (scheme == "http" and api_scheme == "http"):
                return location
            log.warning("%s: GitHub's archive redirect is not to an http(s) URL", repo)
            return None
        except gidgethub.BadRequest as exc:
            log.info(
                "%s: no archive of %s (%s); reading the tree and blobs",
                repo,
                commit_sha[:7],
                exc.status_code,
            )
            return None
        except TransientGitHubError as exc:
            log.warning(
                "%s: no archive of %s (%s); reading the tree and blobs", repo, commit_sha[:7], exc
            )
            return None
        log.warning("%s: GitHub answered the archive request without a redirect", repo)
        return None

    async def _download_archive(
        self, repo: str, commit_sha: str, location: str
    ) -> ArchiveFiles | None:
        """Stream and check the archive at ``location`` (never with the installation token);
        None (logged) when it cannot be had or is refused."""
        for attempt in range(1, ARCHIVE_ATTEMPTS + 1):
            reader = ArchiveReader(repo, commit_sha, archive_wanted, self.objects.archive_limits)
            try:
                async with self.client.download(location) as response:
                    if response.status == 404:
                        log.info("%s: the archive of %s is empty (404)", repo, commit_sha[:7])
                        return None
                    if response.status != 200:
                        raise _DownloadFailed(f"the archive host answered {response.status}")
                    async for chunk in response.content.iter_chunked(ARCHIVE_CHUNK):
                        self._keep_archived(await cpu.run(self._feed, reader, chunk))
                        await self.objects.store.settle()
                files = await cpu.run(reader.close)
                self._keep_archived(self._feed(reader, None))
                return files
            except ArchiveRefused as exc:
                log.warning(
                    "%s: refused the archive of %s: %s; reading the tree and blobs instead",
                    repo,
                    commit_sha[:7],
                    exc,
                )
                return None
            except (aiohttp.ClientError, TimeoutError, _DownloadFailed) as exc:
                # never str() of a client error: it may hold the URL, and its token
                reason = str(exc) if isinstance(exc, _DownloadFailed) else type(exc).__name__
                if attempt == ARCHIVE_ATTEMPTS or (
                    isinstance(exc, _DownloadFailed) and "answered 4" in reason
                ):
                    log.warning(
                        "%s: could not download the archive of %s (%s); reading the tree "
                        "and blobs instead",
                        repo,
                        commit_sha[:7],
                        reason,
                    )
                    return None
                await asyncio.sleep(self.client._retry_base * attempt)
        return None

    def _feed(self, reader: ArchiveReader, chunk: bytes | None) -> list[Kept]:
        """On the CPU worker: read a chunk; its wanted files go to the disk cache from here
        (the store takes them from any thread); without a disk, they are returned."""
        kept = reader.feed(chunk) if chunk is not None else reader.take_kept()
        if not self.objects.durable:
            return kept
        self.objects.store.put(objectstore.BLOB, ((sha, content) for _p, sha, content in kept))
        return []

    def _keep_archived(self, kept: list[Kept]) -> None:
        """Without a disk cache, archived contents go to memory (on the event loop: the
        memory caches are not thread-safe)."""
        if kept:
            self.objects.remember_blobs((sha, content) for _path, sha, content in kept)

    # --- commits and statuses ---------------------------------------------------------------

    async def merge_base(self, repo: str, base: str, head: str) -> str:
        """The commit a pull request's changes are counted from (``base...head``)."""
        data = await self.client.getitem(f"/repos/{repo}/compare/{base}...{head}?per_page=1")
        merge_base = (data.get("merge_base_commit") or {}).get("sha")
        if not isinstance(merge_base, str):
            raise GatewayError(f"GitHub named no merge base of {base[:7]} and {head[:7]}")
        return merge_base

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
        """The PR's commits as GitHub lists them: at most the first 250."""
        return await self.collect(
            f"/repos/{repo}/pulls/{number}/commits?per_page=100", limit=PULL_COMMITS_LIMIT
        )

    async def all_pull_commits(
        self, repo: str, number: int, base: str, head: str
    ) -> tuple[list[dict[str, Any]], int]:
        """Every commit of a pull request, oldest first, and how many could not be read.

        GitHub lists at most 250 commits of a pull request; past that the complete list comes
        from the comparison of its base and head (paginated, up to COMPARE_COMMITS_LIMIT).
        """
        listed = await self.pull_commits(repo, number)
        if len(listed) < PULL_COMMITS_LIMIT:
            return listed, 0
        commits: list[dict[str, Any]] = []
        total = len(listed) + 1  # at least one more, until GitHub says how many
        page = 1
        while len(commits) < min(total, COMPARE_COMMITS_LIMIT):
            try:
                data = await self.client.getitem(
                    f"/repos/{repo}/compare/{base}...{head}?per_page=100&page={page}"
                )
            except gidgethub.BadRequest as exc:
                if exc.status_code not in (404, 422):
                    raise
                break  # the base is gone or unrelated: what was listed is all we know
            total = int(data.get("total_commits") or 0)
            chunk = data.get("commits") or []
            if not chunk:
                break
            commits.extend(chunk)
            page += 1
        if total <= len(listed):
            return listed, 0  # exactly as many as GitHub lists: it listed them all
        if len(commits) <= len(listed):
            return listed, total - len(listed)
        commits = commits[:COMPARE_COMMITS_LIMIT]
        return commits, max(0, total - len(commits))

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
        self,
        repo: str,
        number: int,
        *,
        sha: str,
        method: str = "squash",
        title: str | None = None,
        message: str | None = None,
    ) -> MergeResult:
        """Merge at exactly ``sha``: a push racing the merge makes GitHub refuse it (409).
        ``message`` replaces the body GitHub would compose for the merge commit."""
        data: dict[str, Any] = {"sha": sha, "merge_method": method}
        if title:
            data["commit_title"] = title
        if message is not None:
            data["commit_message"] = message
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
                if "merge queue" in message.lower():
                    # "Changes must be made through the merge queue" (wording not documented;
                    # any other 405 is confirmed by reading the branch's rules)
                    return MergeResult("queue_required", message)
                return MergeResult("blocked", message)
            if status == 422:
                return MergeResult("blocked", str(exc))
            raise
        return MergeResult("merged", str(result.get("message", "")), str(result.get("sha", "")))

    async def requires_merge_queue(self, repo: str, branch: str) -> bool:
        """Whether an active ruleset makes merges into ``branch`` go through a merge queue
        (``GET /rules/branches/{branch}``: one call, the Metadata permission)."""
        rules = await self.collect(f"/repos/{repo}/rules/branches/{_ref(branch)}?per_page=100")
        return any(rule.get("type") == "merge_queue" for rule in rules)

    async def queue_entries(self, repo: str, branch: str) -> list[QueuedGroup]:
        """The pull requests in ``branch``'s merge queue with their groups, as GitHub's queue
        lists them (GraphQL ``mergeQueue``; one call). Not the ``gh-readonly-queue/`` branches:
        anyone with write access can push a branch of that name."""
        owner, name = repo.split("/", 1)
        data = await self.client.query(QUEUE_ENTRIES, owner=owner, name=name, branch=branch)
        queue = ((data or {}).get("repository") or {}).get("mergeQueue") or {}
        out = []
        for node in (queue.get("entries") or {}).get("nodes") or []:
            head = (node.get("headCommit") or {}).get("oid")
            base = (node.get("baseCommit") or {}).get("oid")
            number = (node.get("pullRequest") or {}).get("number")
            if isinstance(head, str) and isinstance(base, str) and isinstance(number, int):
                out.append(QueuedGroup(number, head, base))
        return out

    async def enqueue(self, node_id: str, head_sha: str) -> EnqueueResult:
        """Add a pull request (its GraphQL node id) to its merge queue at ``head_sha``."""
        try:
            data = await self.client.query(ENQUEUE, pullRequestId=node_id, expectedHeadOid=head_sha)
        except gidgethub.QueryError as exc:
            errors = exc.response.get("errors") or [{}]
            message = "; ".join(str(e.get("message") or "") for e in errors) or str(exc)
            if "already" in message.lower() and "queue" in message.lower():
                return EnqueueResult("already_queued", message)
            return EnqueueResult("refused", message)
        entry = ((data or {}).get("enqueuePullRequest") or {}).get("mergeQueueEntry") or {}
        position = entry.get("position")
        return EnqueueResult(
            "queued", str(entry.get("state") or ""), position if isinstance(position, int) else None
        )

    # --- issues, comments, reactions --------------------------------------------------------

    async def comment(self, repo: str, number: int, body: str) -> dict[str, Any]:
        data: dict[str, Any] = await self.client.post(
            f"/repos/{repo}/issues/{number}/comments", data={"body": body}
        )
        return data

    async def comments(self, repo: str, number: int) -> list[dict[str, Any]]:
        return await self.collect(f"/repos/{repo}/issues/{number}/comments?per_page=100")

    async def issue_comment(self, repo: str, comment_id: int) -> dict[str, Any] | None:
        """One conversation comment as it is now; None when it is gone (deleted: 404)."""
        try:
            data = await self.client.getitem(f"/repos/{repo}/issues/comments/{comment_id}")
        except gidgethub.BadRequest as exc:
            if exc.status_code in (404, 410):
                return None
            raise
        return data if isinstance(data, dict) else None

    async def react(self, repo: str, comment_id: int, content: str) -> None:
        try:
            await self.client.post(
                f"/repos/{repo}/issues/comments/{comment_id}/reactions",
                data={"content": content},
                accept="application/vnd.github+json",
            )
        except gidgethub.BadRequest as exc:
            log.info("could not react to comment %s: %s", comment_id, exc)

    async def issues_by(
        self, repo: str, creator: str, *, state: str = "open"
    ) -> list[dict[str, Any]]:
        """Issues (and pull requests: they carry ``pull_request``) opened by ``creator``."""
        url = f"/repos/{repo}/issues?state={state}&creator={quote(creator)}&per_page=100"
        return await self.collect(url)

    async def create_issue(self, repo: str, title: str, body: str) -> dict[str, Any]:
        data: dict[str, Any] = await self.client.post(
            f"/repos/{repo}/issues", data={"title": title, "body": body}
        )
        return data

    async def update_issue(self, repo: str, number: int, **fields: Any) -> dict[str, Any]:
        data: dict[str, Any] = await self.client.patch(
            f"/repos/{repo}/issues/{number}", data=fields
        )
        return data

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


LINK_MODE = "120000"


def _entry(name: str, raw: Mapping[str, Any]) -> Entry:
    """A level entry; names, modes and types repeat across a fleet's levels: store each once."""
    intern = sys.intern
    return (intern(name), intern(str(raw["mode"])), intern(str(raw["type"])), str(raw["sha"]))


def _compared_changes(files: Sequence[Mapping[str, Any]]) -> dict[str, FileChange]:
    """A comparison's file list as changes: renames delete the old path, modes are kept."""
    changes: dict[str, FileChange] = {}
    for f in files:
        name = str(f["filename"])
        if f.get("status") == "removed":
            changes[name] = None
            continue
        previous = f.get("previous_filename")
        if previous and previous != name:
            changes.setdefault(str(previous), None)
        changes[name] = (None, str(f["sha"]))
    return changes


def _ref(name: str) -> str:
    """A branch name for a URL path: slashes stay, everything else unsafe is escaped."""
    return quote(name, safe="/")


__all__ = [
    "EnqueueResult",
    "Gateway",
    "GatewayError",
    "MergeResult",
    "ObjectCache",
    "QueuedGroup",
    "RepoTree",
    "TransientGitHubError",
]
