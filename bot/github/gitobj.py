"""Git's object ids, computed as git computes them: blobs, tree levels, a whole tree from files.

The gateway caches trees one level per SHA; these let it prove what it computed (a tree made by
a commit of its own, the levels of an archive) against the SHA GitHub reports: equal root SHAs
prove every level and blob below them.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Mapping, Sequence

#: One level of a git tree: (name, mode, type, sha). Names, not paths: a subtree is its SHA.
Entry = tuple[str, str, str, str]
Levels = dict[str, tuple[Entry, ...]]

FILE_MODE = "100644"
TREE_MODE = "040000"
_KINDS = {"40000": "tree", "040000": "tree", "160000": "commit"}


def git_order(entry: Entry) -> bytes:
    """Git sorts a tree's entries by name, a subtree's name as if it ended with a slash."""
    name, _mode, kind, _sha = entry
    return (name + "/" if kind == "tree" else name).encode("utf-8")


def git_blob_sha(content: bytes) -> str:
    """Git's object id of a blob."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content, usedforsecurity=False).hexdigest()


def git_tree_body(level: Sequence[Entry]) -> bytes:
    """A tree object's body (entries in git's order; modes without leading 0)."""
    return b"".join(
        f"{mode.lstrip('0')} {name}".encode() + b"\0" + bytes.fromhex(sha)
        for name, mode, _kind, sha in level
    )


def git_tree_sha(level: Sequence[Entry]) -> str:
    """Git's object id of a tree level."""
    body = git_tree_body(level)
    return hashlib.sha1(b"tree %d\0" % len(body) + body, usedforsecurity=False).hexdigest()


def tree_sha_of_body(body: bytes) -> str:
    return hashlib.sha1(b"tree %d\0" % len(body) + body, usedforsecurity=False).hexdigest()


def parse_tree_body(body: bytes) -> tuple[Entry, ...]:
    """The entries of a tree object's body (as :func:`git_tree_body` writes it), in the
    gateway's form: modes as GitHub's API spells them (``040000`` for a tree)."""
    intern = sys.intern
    out: list[Entry] = []
    pos = 0
    while pos < len(body):
        space = body.index(b" ", pos)
        nul = body.index(b"\0", space)
        mode = body[pos:space].decode()
        name = body[space + 1 : nul].decode("utf-8")
        sha = body[nul + 1 : nul + 21].hex()
        if len(sha) != 40:
            raise ValueError("a tree entry is cut short")
        kind = _KINDS.get(mode, "blob")
        spelled = TREE_MODE if kind == "tree" else mode
        out.append((intern(name), intern(spelled), intern(kind), sha))
        pos = nul + 21
    return tuple(out)


def levels_of_files(files: Mapping[str, tuple[str, str]]) -> tuple[str | None, Levels]:
    """The root tree SHA and every level of the tree holding exactly ``files`` (path ->
    (mode, blob SHA)); (None, {}) when the paths cannot form a tree (a name that is both a
    file and a directory)."""
    intern = sys.intern
    children: dict[str, dict[str, tuple[str, str, str]]] = {"": {}}
    for path, (mode, sha) in files.items():
        parent, _, name = path.rpartition("/")
        entries = children.get(parent)
        if entries is None:
            # a new directory: make sure each ancestor lists it (as a tree, filled in below)
            entries = children[parent] = {}
            child = parent
            while child:
                up, _, dirname = child.rpartition("/")
                known = up in children
                siblings = children.setdefault(up, {})
                if dirname in siblings and siblings[dirname][1] != "tree":
                    return None, {}
                siblings[dirname] = (TREE_MODE, "tree", "")
                if known:
                    break
                child = up
        if name in entries:
            return None, {}
        entries[intern(name)] = (intern(mode), "blob", sha)
    levels: Levels = {}
    shas: dict[str, str] = {}
    modes: dict[str, bytes] = {}
    sha1 = hashlib.sha1
    fromhex = bytes.fromhex
    for directory in sorted(children, key=lambda d: d.count("/") + (d != ""), reverse=True):
        rows: list[tuple[str, str, str, str, str]] = []
        for name, (mode, kind, sha) in children[directory].items():
            if kind == "tree":
                sha = shas[f"{directory}/{name}" if directory else name]
                rows.append((name + "/", name, mode, kind, sha))
            else:
                rows.append((name, name, mode, kind, sha))
        rows.sort()  # git's order: a subtree's name as if it ended with "/" (UTF-8 order is
        # code point order, so comparing str is comparing bytes)
        body = b"".join(
            b"%s %s\0%s"
            % (
                modes.get(mode) or modes.setdefault(mode, mode.lstrip("0").encode()),
                name.encode(),
                fromhex(sha),
            )
            for _key, name, mode, _kind, sha in rows
        )
        sha = sha1(b"tree %d\0" % len(body) + body, usedforsecurity=False).hexdigest()
        shas[directory] = sha
        levels[sha] = tuple((name, mode, kind, s) for _key, name, mode, kind, s in rows)
    return shas[""], levels


class TreeBuilder:
    """Every level of a tree from its files given in git's order, as ``git archive`` writes
    them (each directory's entries together, sorted as git sorts them): one pass, no sorting.

    Files given in another order make other levels, and so a root SHA that is not the
    commit's tree: the order is proven with everything else when the root is compared.
    """

    def __init__(self) -> None:
        self.levels: Levels = {}
        #: Each level's tree object body (what the disk cache keeps), by SHA.
        self.bodies: dict[str, bytes] = {}
        # open directories, outermost first: (path, entries, tree body parts)
        self._open: list[tuple[str, list[Entry], list[bytes]]] = [("", [], [])]
        self._modes: dict[str, bytes] = {}
        self.root: str | None = None

    def add(self, path: str, mode: str, sha: str) -> None:
        parent, _, name = path.rpartition("/")
        stack = self._open
        top = stack[-1][0]
        if parent != top:
            while top and not parent.startswith(top + "/") and parent != top:
                self._close()
                top = stack[-1][0]
            rest = parent[len(top) + 1 :] if top else parent
            if rest:
                for part in rest.split("/"):
                    top = f"{top}/{part}" if top else part
                    stack.append((top, [], []))
        spelled = self._modes.get(mode)
        if spelled is None:
            spelled = self._modes[mode] = mode.lstrip("0").encode()
        entries, body = stack[-1][1], stack[-1][2]
        entries.append((sys.intern(name), sys.intern(mode), "blob", sha))
        body.append(b"%s %s\0%s" % (spelled, name.encode(), bytes.fromhex(sha)))

    def _close(self) -> str:
        path, entries, body = self._open.pop()
        raw = b"".join(body)
        sha = hashlib.sha1(b"tree %d\0" % len(raw) + raw, usedforsecurity=False).hexdigest()
        self.levels[sha] = tuple(entries)
        self.bodies[sha] = raw
        if self._open:
            name = path.rpartition("/")[2]
            _parent, siblings, parts = self._open[-1]
            siblings.append((sys.intern(name), TREE_MODE, "tree", sha))
            parts.append(b"40000 %s\0%s" % (name.encode(), bytes.fromhex(sha)))
        return sha

    def finish(self) -> str:
        """Close every directory; the root tree's SHA."""
        if self.root is None:
            while len(self._open) > 1:
                self._close()
            self.root = self._close()
        return self.root
