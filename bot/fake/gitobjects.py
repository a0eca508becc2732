"""A real git object model: blobs, trees and commits with git's own SHA-1s.

The fake GitHub stores repository content the way git does, so that SHAs seen by the bot
(tree SHAs, blob SHAs, commit SHAs) behave exactly like GitHub's: equal content means equal
SHA, and caches keyed by SHA are valid forever. Trees are kept parsed (a tuple of entries)
next to their SHA so that walking a 100,000-file repository never re-parses bytes.
"""

from __future__ import annotations

import difflib
import hashlib
import heapq
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

MODE_FILE = "100644"
MODE_EXEC = "100755"
MODE_TREE = "040000"
MODE_LINK = "120000"
MODE_COMMIT = "160000"
BLOB_MODES = frozenset({MODE_FILE, MODE_EXEC, MODE_LINK})
ALL_MODES = frozenset({MODE_FILE, MODE_EXEC, MODE_TREE, MODE_LINK, MODE_COMMIT})

EMPTY_TREE_SHA = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"


class GitError(Exception):
    """Raised for malformed input to the object model (bad path, unknown object)."""


@dataclass(frozen=True, slots=True)
class TreeEntry:
    """One line of a tree: a name with its mode and the SHA of the object it names."""

    name: str
    mode: str
    sha: str

    @property
    def type(self) -> str:
        """The object type as GitHub reports it (`blob`, `tree` or `commit`)."""
        if self.mode == MODE_TREE:
            return "tree"
        if self.mode == MODE_COMMIT:
            return "commit"
        return "blob"


@dataclass(frozen=True, slots=True)
class Signature:
    """An author or committer line: `Name <email> epoch +0000`."""

    name: str
    email: str
    timestamp: int
    tz: str = "+0000"

    def line(self) -> str:
        """The signature exactly as git writes it into a commit object."""
        return f"{self.name} <{self.email}> {self.timestamp} {self.tz}"


@dataclass(frozen=True, slots=True)
class Commit:
    """A parsed commit object."""

    sha: str
    tree: str
    parents: tuple[str, ...]
    author: Signature
    committer: Signature
    message: str


@dataclass(frozen=True, slots=True)
class Change:
    """One path that differs between two trees."""

    path: str
    status: str  # added | modified | removed | renamed
    old_mode: str | None
    new_mode: str | None
    old_sha: str | None
    new_sha: str | None
    previous_path: str | None = None


@dataclass(frozen=True, slots=True)
class MergeResult:
    """Outcome of a three-way merge: a tree when clean, else the conflicting paths."""

    tree: str | None
    conflicts: tuple[str, ...]


def hash_object(kind: str, data: bytes) -> str:
    """Git's object id: SHA-1 over `<kind> <size>\\0<data>`."""
    h = hashlib.sha1(f"{kind} {len(data)}\0".encode())
    h.update(data)
    return h.hexdigest()


def _sort_key(entry: TreeEntry) -> bytes:
    """Git orders tree entries by name bytes, with directories compared as `name/`."""
    raw = entry.name.encode()
    return raw + b"/" if entry.mode == MODE_TREE else raw


def serialize_tree(entries: Iterable[TreeEntry]) -> bytes:
    """A tree in git's binary format (entries must already be sorted)."""
    parts: list[bytes] = []
    for e in entries:
        mode = "40000" if e.mode == MODE_TREE else e.mode
        parts.append(f"{mode} {e.name}\0".encode() + bytes.fromhex(e.sha))
    return b"".join(parts)


def serialize_commit(
    tree: str, parents: Iterable[str], author: Signature, committer: Signature, message: str
) -> bytes:
    """A commit in git's text format."""
    lines = [f"tree {tree}"]
    lines += [f"parent {p}" for p in parents]
    lines.append(f"author {author.line()}")
    lines.append(f"committer {committer.line()}")
    return ("\n".join(lines) + "\n\n" + message).encode()


def split_path(path: str) -> list[str]:
    """Split a repository path into components, rejecting empty or dot components."""
    parts = path.strip("/").split("/")
    if not path.strip("/") or any(p in ("", ".", "..") for p in parts):
        raise GitError(f"invalid path {path!r}")
    return parts


# A change value: bytes (a regular file), (mode, bytes) or (mode, sha) for an existing object,
# or None to delete the path.
ChangeValue = bytes | tuple[str, bytes] | tuple[str, str] | None


@dataclass
class ObjectStore:
    """Content-addressed storage for one repository network (shared by forks and the fake)."""

    blobs: dict[str, bytes] = field(default_factory=dict)
    trees: dict[str, tuple[TreeEntry, ...]] = field(default_factory=dict)
    commits: dict[str, Commit] = field(default_factory=dict)
    #: Commits GitHub signed itself (web-flow): merges it made, and what an app committed
    #: through the API without a custom author or committer. Pushed commits are unsigned.
    signed: set[str] = field(default_factory=set)
    _flat_cache: dict[str, dict[str, tuple[str, str]]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.trees.setdefault(EMPTY_TREE_SHA, ())

    # ---- writing -------------------------------------------------------------------------
    def put_blob(self, data: bytes) -> str:
        """Store a blob and return its SHA."""
        sha = hash_object("blob", data)
        self.blobs.setdefault(sha, data)
        return sha

    def put_tree(self, entries: Iterable[TreeEntry]) -> str:
        """Store a tree (entries in any order; duplicates rejected) and return its SHA."""
        ordered = tuple(sorted(entries, key=_sort_key))
        names = [e.name for e in ordered]
        if len(set(names)) != len(names):
            raise GitError("duplicate entry names in tree")
        sha = hash_object("tree", serialize_tree(ordered))
        self.trees.setdefault(sha, ordered)
        return sha

    def put_commit(
        self,
        tree: str,
        parents: Iterable[str],
        author: Signature,
        committer: Signature | None,
        message: str,
    ) -> str:
        """Store a commit and return its SHA; tree and parents must exist."""
        parent_list = tuple(parents)
        if tree not in self.trees:
            raise GitError(f"tree {tree} does not exist")
        for p in parent_list:
            if p not in self.commits:
                raise GitError(f"parent {p} does not exist")
        committer = committer or author
        sha = hash_object("commit", serialize_commit(tree, parent_list, author, committer, message))
        self.commits.setdefault(sha, Commit(sha, tree, parent_list, author, committer, message))
        return sha

    def write_tree(self, files: Mapping[str, ChangeValue]) -> str:
        """Build a whole tree from `{path: content}` (None values are ignored)."""
        return self.apply_changes(EMPTY_TREE_SHA, files)

    def apply_changes(self, tree_sha: str, changes: Mapping[str, ChangeValue]) -> str:
        """Return a new tree: `tree_sha` with paths added, replaced or (None) deleted.

        Only directories on changed paths are rebuilt; directories left empty are pruned,
        as git has no empty trees inside a tree.
        """
        nested: dict[str, object] = {}
        for path, value in changes.items():
            parts = split_path(path)
            node = nested
            for part in parts[:-1]:
                child = node.setdefault(part, {})
                if not isinstance(child, dict):
                    raise GitError(f"path {path!r} is both a file and a directory")
                node = child
            if isinstance(node.get(parts[-1]), dict):
                raise GitError(f"path {path!r} is both a file and a directory")
            node[parts[-1]] = _Leaf(value)
        result = self._apply(tree_sha, nested)
        return result if result is not None else EMPTY_TREE_SHA

    def _leaf_entry(self, name: str, value: ChangeValue) -> TreeEntry | None:
        if value is None:
            return None
        if isinstance(value, bytes):
            return TreeEntry(name, MODE_FILE, self.put_blob(value))
        mode, payload = value
        if mode not in ALL_MODES:
            raise GitError(f"invalid mode {mode!r}")
        if isinstance(payload, bytes):
            return TreeEntry(name, mode, self.put_blob(payload))
        return TreeEntry(name, mode, payload)

    def _apply(self, tree_sha: str | None, nested: dict[str, object]) -> str | None:
        current = {e.name: e for e in self.trees[tree_sha]} if tree_sha else {}
        for name, sub in nested.items():
            if isinstance(sub, _Leaf):
                entry = self._leaf_entry(name, sub.value)
                if entry is None:
                    current.pop(name, None)
                else:
                    current[name] = entry
                continue
            assert isinstance(sub, dict)
            existing = current.get(name)
            base = existing.sha if existing is not None and existing.mode == MODE_TREE else None
            new_sha = self._apply(base, sub)
            if new_sha is None:
                current.pop(name, None)
            else:
                current[name] = TreeEntry(name, MODE_TREE, new_sha)
        if not current:
            return None
        return self.put_tree(current.values())

    # ---- reading -------------------------------------------------------------------------
    def tree_entries(self, tree_sha: str) -> tuple[TreeEntry, ...]:
        """Entries of one tree, raising GitError when it does not exist."""
        try:
            return self.trees[tree_sha]
        except KeyError:
            raise GitError(f"tree {tree_sha} does not exist") from None

    def walk(self, tree_sha: str, prefix: str = "") -> Iterator[tuple[str, TreeEntry]]:
        """Every entry below a tree, depth first in git order, with its full path."""
        for e in self.tree_entries(tree_sha):
            path = prefix + e.name
            yield path, e
            if e.mode == MODE_TREE:
                yield from self.walk(e.sha, path + "/")

    def flatten(self, tree_sha: str) -> dict[str, tuple[str, str]]:
        """`{path: (mode, sha)}` for every non-tree entry; memoised, trees are immutable."""
        cached = self._flat_cache.get(tree_sha)
        if cached is not None:
            return cached
        flat: dict[str, tuple[str, str]] = {}
        for e in self.tree_entries(tree_sha):
            if e.mode == MODE_TREE:
                for sub_path, value in self.flatten(e.sha).items():
                    flat[f"{e.name}/{sub_path}"] = value
            else:
                flat[e.name] = (e.mode, e.sha)
        self._flat_cache[tree_sha] = flat
        return flat

    def lookup(self, tree_sha: str, path: str) -> TreeEntry | None:
        """The entry at `path` below a tree (a file or a directory), or None."""
        if path.strip("/") == "":
            return TreeEntry("", MODE_TREE, tree_sha)
        entries = self.tree_entries(tree_sha)
        parts = split_path(path)
        found: TreeEntry | None = None
        for i, part in enumerate(parts):
            found = next((e for e in entries if e.name == part), None)
            if found is None:
                return None
            if i < len(parts) - 1:
                if found.mode != MODE_TREE:
                    return None
                entries = self.trees[found.sha]
        return found

    def read_file(self, tree_sha: str, path: str) -> bytes | None:
        """Contents of a blob at `path`, or None if absent or not a blob."""
        entry = self.lookup(tree_sha, path)
        if entry is None or entry.mode not in BLOB_MODES:
            return None
        return self.blobs[entry.sha]

    # ---- comparing -----------------------------------------------------------------------
    def diff_trees(
        self, old: str | None, new: str | None, detect_renames: bool = True
    ) -> list[Change]:
        """Paths that differ between two trees, sorted by path; skips equal subtrees."""
        changes: list[Change] = []
        self._diff(old, new, "", changes)
        if detect_renames:
            changes = _pair_renames(changes)
        changes.sort(key=lambda c: c.path)
        return changes

    def _diff(self, old: str | None, new: str | None, prefix: str, out: list[Change]) -> None:
        if old == new:
            return
        a = {e.name: e for e in self.trees[old]} if old else {}
        b = {e.name: e for e in self.trees[new]} if new else {}
        for name in sorted(a.keys() | b.keys()):
            ea, eb = a.get(name), b.get(name)
            path = prefix + name
            if ea is not None and eb is not None and ea.sha == eb.sha and ea.mode == eb.mode:
                continue
            a_tree = ea.sha if ea is not None and ea.mode == MODE_TREE else None
            b_tree = eb.sha if eb is not None and eb.mode == MODE_TREE else None
            if a_tree or b_tree:
                self._diff(a_tree, b_tree, path + "/", out)
            a_file = ea if ea is not None and ea.mode != MODE_TREE else None
            b_file = eb if eb is not None and eb.mode != MODE_TREE else None
            if a_file and b_file:
                out.append(
                    Change(path, "modified", a_file.mode, b_file.mode, a_file.sha, b_file.sha)
                )
            elif a_file:
                out.append(Change(path, "removed", a_file.mode, None, a_file.sha, None))
            elif b_file:
                out.append(Change(path, "added", None, b_file.mode, None, b_file.sha))

    # ---- history -------------------------------------------------------------------------
    def commit(self, sha: str) -> Commit:
        """A commit by SHA, raising GitError when unknown."""
        try:
            return self.commits[sha]
        except KeyError:
            raise GitError(f"commit {sha} does not exist") from None

    def ancestors(self, sha: str) -> set[str]:
        """All commits reachable from `sha`, itself included."""
        seen: set[str] = set()
        stack = [sha]
        while stack:
            cur = stack.pop()
            if cur in seen:
                continue
            seen.add(cur)
            stack.extend(self.commits[cur].parents)
        return seen

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        """True when `ancestor` is reachable from `descendant` (or equal to it)."""
        return ancestor in self.ancestors(descendant)

    def merge_base(self, a: str, b: str) -> str | None:
        """The best common ancestor of two commits (as `git merge-base`), or None."""
        reach_a = self.ancestors(a)
        candidates: set[str] = set()
        seen: set[str] = set()
        stack = [b]
        while stack:
            cur = stack.pop()
            if cur in seen:
                continue
            seen.add(cur)
            if cur in reach_a:
                candidates.add(cur)
                continue
            stack.extend(self.commits[cur].parents)
        best = [
            c for c in candidates if not any(o != c and c in self.ancestors(o) for o in candidates)
        ]
        if not best:
            return None
        return max(best, key=lambda s: self.commits[s].committer.timestamp)

    def log(self, heads: Iterable[str], path: str | None = None) -> Iterator[Commit]:
        """Commits reachable from `heads`, newest committer date first (`git log [-- path]`).

        With a path, a commit is shown when the entry at that path differs from every
        parent, and history follows only a parent it is unchanged against (git's default
        history simplification).
        """
        heap: list[tuple[int, int, str]] = []
        seen: set[str] = set()
        counter = 0

        def push(sha: str) -> None:
            nonlocal counter
            if sha not in seen:
                seen.add(sha)
                counter += 1
                heapq.heappush(heap, (-self.commits[sha].committer.timestamp, counter, sha))

        for h in heads:
            push(h)
        while heap:
            _, _, sha = heapq.heappop(heap)
            c = self.commits[sha]
            if path is None:
                yield c
                for p in c.parents:
                    push(p)
                continue
            mine = self._entry_id(c.tree, path)
            same = [p for p in c.parents if self._entry_id(self.commits[p].tree, path) == mine]
            if same:
                push(same[0])
                continue
            if mine is not None or c.parents:
                yield c
            for p in c.parents:
                push(p)

    def _entry_id(self, tree: str, path: str) -> tuple[str, str] | None:
        entry = self.lookup(tree, path)
        return None if entry is None else (entry.mode, entry.sha)

    def merge_trees(self, base: str | None, ours: str, theirs: str) -> MergeResult:
        """Three-way merge at file level: a path changed differently on both sides conflicts."""
        conflicts: list[str] = []
        tree = self._merge(base, ours, theirs, "", conflicts)
        if conflicts:
            return MergeResult(None, tuple(sorted(conflicts)))
        return MergeResult(tree or EMPTY_TREE_SHA, ())

    def _merge(
        self,
        base: str | None,
        ours: str | None,
        theirs: str | None,
        prefix: str,
        conflicts: list[str],
    ) -> str | None:
        if ours == theirs:
            return ours
        if ours == base:
            return theirs
        if theirs == base:
            return ours
        b = {e.name: e for e in self.trees[base]} if base else {}
        o = {e.name: e for e in self.trees[ours]} if ours else {}
        t = {e.name: e for e in self.trees[theirs]} if theirs else {}
        merged: list[TreeEntry] = []
        for name in sorted(b.keys() | o.keys() | t.keys()):
            eb, eo, et = b.get(name), o.get(name), t.get(name)
            picked = _pick(eb, eo, et)
            if picked is not _CONFLICT:
                if picked is not None:
                    assert isinstance(picked, TreeEntry)
                    merged.append(picked)
                continue
            trees = [e for e in (eb, eo, et) if e is not None]
            if all(e.mode == MODE_TREE for e in trees):
                sub = self._merge(
                    eb.sha if eb else None,
                    eo.sha if eo else None,
                    et.sha if et else None,
                    prefix + name + "/",
                    conflicts,
                )
                if sub is not None:
                    merged.append(TreeEntry(name, MODE_TREE, sub))
            else:
                conflicts.append(prefix + name)
        if not merged:
            return None
        return self.put_tree(merged)


@dataclass(frozen=True, slots=True)
class _Leaf:
    value: ChangeValue


_CONFLICT = object()


def _pick(eb: TreeEntry | None, eo: TreeEntry | None, et: TreeEntry | None) -> object:
    """Resolve one name of a three-way merge, or return _CONFLICT."""
    if eo == et:
        return eo
    if eo == eb:
        return et
    if et == eb:
        return eo
    return _CONFLICT


def _pair_renames(changes: list[Change]) -> list[Change]:
    """Turn an added and a removed path with the same blob into one rename (exact renames)."""
    removed = {c.old_sha: c for c in changes if c.status == "removed"}
    out: list[Change] = []
    used: set[str] = set()
    for c in changes:
        if c.status == "added" and c.new_sha in removed and removed[c.new_sha].path not in used:
            old = removed[c.new_sha]
            used.add(old.path)
            out.append(
                Change(
                    c.path, "renamed", old.old_mode, c.new_mode, old.old_sha, c.new_sha, old.path
                )
            )
        else:
            out.append(c)
    return [c for c in out if not (c.status == "removed" and c.path in used)]


@dataclass(frozen=True, slots=True)
class Patch:
    """A unified diff of one file as GitHub reports it in `files[]`."""

    text: str | None
    additions: int
    deletions: int


def unified_patch(old: bytes | None, new: bytes | None) -> Patch:
    """Hunks only (no ---/+++ header), like the `patch` field of GitHub's diff entries."""
    a = old or b""
    b = new or b""
    if b"\0" in a or b"\0" in b:
        return Patch(None, 0, 0)
    a_lines = a.decode("utf-8", "replace").splitlines()
    b_lines = b.decode("utf-8", "replace").splitlines()
    lines = list(difflib.unified_diff(a_lines, b_lines, lineterm="", n=3))[2:]
    adds = sum(1 for line in lines if line.startswith("+"))
    dels = sum(1 for line in lines if line.startswith("-"))
    return Patch("\n".join(lines) if lines else None, adds, dels)
