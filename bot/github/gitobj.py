"""Git's object ids, computed as git computes them: blobs, tree levels, a whole tree from files.

The gateway caches trees one level per SHA; these let it prove what it computed (a tree made by
a commit of its own, the levels of an archive) against the SHA GitHub reports: equal root SHAs
prove every level and blob below them.
"""

from __future__ import annotations

import hashlib
import math
import sys
from collections.abc import Callable, Mapping, Sequence

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

    A path given twice, or out of git's order, is refused (ValueError). Anything else that
    differs from the commit (a missing file, another mode) makes another root SHA: what the
    builder made is proven only by comparing its root with the commit's tree.
    """

    def __init__(self) -> None:
        self.levels: Levels = {}
        #: What the disk cache keeps: packs of levels (see :func:`pack_levels`), by the SHA of
        #: the subtree each holds whole (a subtree of at most PACK_ENTRIES entries is one pack).
        self.packs: dict[str, bytes] = {}
        # open directories, outermost first: [path, entries, body parts, last name's key]
        self._open: list[_OpenDir] = [_OpenDir("")]
        self._modes: dict[str, tuple[str, bytes]] = {}
        self.root: str | None = None

    def add(self, path: str, mode: str, sha: str) -> None:
        parent, _, name = path.rpartition("/")
        stack = self._open
        top = stack[-1].path
        if parent != top:
            while top and parent != top and not parent.startswith(top + "/"):
                self._close()
                top = stack[-1].path
            rest = parent[len(top) + 1 :] if top else parent
            if rest:
                for part in rest.split("/"):
                    top = f"{top}/{part}" if top else part
                    stack.append(_OpenDir(top))
        known = self._modes.get(mode)
        if known is None:
            known = self._modes[mode] = (sys.intern(mode), mode.lstrip("0").encode())
        here = stack[-1]
        if name <= here.last:  # each entry after the one before (see _OpenDir.follows)
            here.follows(name, path)
        here.last = name
        here.entries.append((sys.intern(name), known[0], "blob", sha))
        here.parts.append(b"%s %s\0%s" % (known[1], name.encode(), bytes.fromhex(sha)))

    def _close(self) -> str:
        here = self._open.pop()
        raw = b"".join(here.parts)
        digest = hashlib.sha1(b"tree %d\0" % len(raw) + raw, usedforsecurity=False).digest()
        sha = digest.hex()
        self.levels[sha] = tuple(here.entries)
        record = _record(digest, raw)
        size = here.size + len(here.entries)
        if size <= PACK_ENTRIES:
            pack: bytes | None = record + b"".join(here.packs.values())
        else:  # too big to go whole into one pack: its small subtrees are packs of their own
            self.packs.update(here.packs)
            self.packs[sha] = record
            pack = None
        if self._open:
            name = here.path.rpartition("/")[2]
            parent = self._open[-1]
            parent.follows(name + "/", here.path)
            parent.entries.append((sys.intern(name), TREE_MODE, "tree", sha))
            parent.parts.append(b"40000 %s\0%s" % (name.encode(), digest))
            parent.size += size
            if pack is not None:
                parent.packs[sha] = pack
        elif pack is not None:
            self.packs[sha] = pack
        return sha

    def finish(self) -> str:
        """Close every directory; the root tree's SHA."""
        if self.root is None:
            while len(self._open) > 1:
                self._close()
            self.root = self._close()
        return self.root


#: Entries of the tree levels one pack may hold (a fleet cluster's subtree: ~150).
PACK_ENTRIES = 2_000


def _record(digest: bytes, body: bytes) -> bytes:
    return digest + len(body).to_bytes(4, "big") + body


def pack_levels(levels: Mapping[str, Sequence[Entry]]) -> bytes:
    """Tree levels as one value: (20-byte SHA, 4-byte length, tree object body) each."""
    return b"".join(_record(bytes.fromhex(sha), git_tree_body(lv)) for sha, lv in levels.items())


def packs_of(
    made: Mapping[str, Sequence[Entry]], known: Callable[[str], Sequence[Entry] | None]
) -> dict[str, bytes]:
    """How to keep ``made`` levels on disk so that a walk from any root down finds every
    level: a level whose subtree is small (at most PACK_ENTRIES entries) goes whole into one
    pack under its own SHA, unless a made parent's pack holds it already; a bigger level goes
    alone (its children are then packs, or big levels, of their own: archives are packed the
    same way). ``known`` gives the levels made earlier (the unchanged parts of a subtree)."""
    sizes: dict[str, float] = {}

    def level_of(sha: str) -> Sequence[Entry] | None:
        level = made.get(sha)
        return level if level is not None else known(sha)

    def size(sha: str) -> float:
        """Entries of the subtree, all levels down (inf past the bound, or when unknown)."""
        hit = sizes.get(sha)
        if hit is not None:
            return hit
        level = level_of(sha)
        total: float = math.inf if level is None else len(level)
        for _name, _mode, kind, child in level or ():
            if total > PACK_ENTRIES:
                break
            if kind == "tree":
                total += size(child)
        sizes[sha] = total if total <= PACK_ENTRIES else math.inf
        return sizes[sha]

    parent: dict[str, str] = {}
    for sha, level in made.items():
        for _name, _mode, kind, child in level:
            if kind == "tree" and child in made:
                parent[child] = sha
    out: dict[str, bytes] = {}
    for sha, level in made.items():
        if size(sha) > PACK_ENTRIES:
            out[sha] = pack_levels({sha: level})
            continue
        up = parent.get(sha)
        if up is not None and size(up) <= PACK_ENTRIES:
            continue  # inside the parent's pack
        subtree: dict[str, Sequence[Entry]] = {}
        todo = [sha]
        while todo:
            at = todo.pop()
            here = level_of(at)
            assert here is not None  # size() found every level of a small subtree
            subtree[at] = here
            todo.extend(c for _n, _m, k, c in here if k == "tree" and c not in subtree)
        out[sha] = pack_levels(subtree)
    return out


def unpack_levels(data: bytes) -> list[tuple[str, bytes]]:
    """(SHA, tree object body) of each level of a pack; ValueError when it is cut short."""
    out: list[tuple[str, bytes]] = []
    pos = 0
    while pos < len(data):
        if pos + 24 > len(data):
            raise ValueError("a pack of tree levels is cut short")
        sha = data[pos : pos + 20].hex()
        size = int.from_bytes(data[pos + 20 : pos + 24], "big")
        body = data[pos + 24 : pos + 24 + size]
        if len(body) != size:
            raise ValueError("a pack of tree levels is cut short")
        out.append((sha, body))
        pos += 24 + size
    return out


class _OpenDir:
    """A directory whose entries are still arriving."""

    __slots__ = ("entries", "last", "packs", "parts", "path", "size")

    def __init__(self, path: str) -> None:
        self.path = path
        self.entries: list[Entry] = []
        self.parts: list[bytes] = []
        self.last = ""
        self.size = 0  # entries of the closed subdirectories, all levels down
        self.packs: dict[str, bytes] = {}  # closed subdirectories small enough to pack

    def follows(self, key: str, path: str) -> None:
        """Entries come in git's order (a subtree's name as if it ended with "/"): each
        after the one before, never twice (comparing str compares code points, which is
        UTF-8's byte order)."""
        if key <= self.last:
            raise ValueError(f"{path} appears twice, or out of git's order")
        self.last = key
