"""The git object model: SHAs identical to real git, tree algebra, merge-base, merges, history."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from bot.fake.gitobjects import (
    EMPTY_TREE_SHA,
    MODE_EXEC,
    MODE_LINK,
    ChangeValue,
    GitError,
    ObjectStore,
    Signature,
    hash_object,
    unified_patch,
)

GIT = shutil.which("git")


def git(
    repo: Path, *args: str, stdin: bytes | None = None, env: dict[str, str] | None = None
) -> str:
    result = subprocess.run(
        ["git", "-C", str(repo), *args], input=stdin, capture_output=True, check=True, env=env
    )
    return result.stdout.decode().strip()


@pytest.fixture
def gitrepo(tmp_path: Path) -> Path:
    if GIT is None:
        pytest.fail("git is required for these tests")
    git(tmp_path, "init", "-q")
    return tmp_path


def sig(ts: int, name: str = "Alice") -> Signature:
    return Signature(name, f"{name.lower()}@acme.test", ts)


def test_blob_sha_matches_git_hash_object(gitrepo: Path) -> None:
    for data in (b"", b"hello\n", bytes(range(256)) * 3):
        expected = git(gitrepo, "hash-object", "-w", "--stdin", stdin=data)
        assert ObjectStore().put_blob(data) == expected


def test_tree_and_commit_shas_match_git(gitrepo: Path) -> None:
    store = ObjectStore()
    files: dict[str, ChangeValue] = {
        "a.txt": b"a\n",
        "a-b/x": b"dash\n",  # '-' sorts before '/', so 'a-b' precedes 'a/' in git order
        "a/nested/deep.txt": b"deep\n",
        "run.sh": (MODE_EXEC, b"#!/bin/sh\n"),
        "link": (MODE_LINK, b"a.txt"),
        "a.": b"dot\n",
    }
    tree = store.write_tree(files)

    # Build the same tree with git plumbing: write blobs, then mktree bottom-up.
    def mktree(prefix: str) -> str:
        names: dict[str, str] = {}
        for path, value in files.items():
            if not path.startswith(prefix):
                continue
            rest = path[len(prefix) :]
            head, _, tail = rest.partition("/")
            if tail:
                names[head] = "tree"
            else:
                mode, data = value if isinstance(value, tuple) else ("100644", value)
                assert isinstance(data, bytes)
                sha = git(gitrepo, "hash-object", "-w", "--stdin", stdin=data)
                names[head] = f"{mode} blob {sha}"
        lines = []
        for name, spec in names.items():
            if spec == "tree":
                lines.append(f"040000 tree {mktree(prefix + name + '/')}\t{name}")
            else:
                lines.append(f"{spec}\t{name}")
        return git(gitrepo, "mktree", stdin=("\n".join(lines) + "\n").encode())

    assert tree == mktree("")
    env = {
        "GIT_AUTHOR_NAME": "Alice",
        "GIT_AUTHOR_EMAIL": "alice@acme.test",
        "GIT_AUTHOR_DATE": "1700000000 +0000",
        "GIT_COMMITTER_NAME": "Bob",
        "GIT_COMMITTER_EMAIL": "bob@acme.test",
        "GIT_COMMITTER_DATE": "1700000100 +0000",
        "PATH": "/usr/bin:/bin",
    }
    root = git(gitrepo, "commit-tree", tree, "-m", "first", env=env)
    child = git(gitrepo, "commit-tree", tree, "-p", root, "-m", "second\n\nbody", env=env)
    mine_root = store.put_commit(tree, [], sig(1700000000), sig(1700000100, "Bob"), "first\n")
    mine_child = store.put_commit(
        tree, [mine_root], sig(1700000000), sig(1700000100, "Bob"), "second\n\nbody\n"
    )
    assert (mine_root, mine_child) == (root, child)
    assert hash_object("tree", b"") == EMPTY_TREE_SHA


def test_flatten_apply_and_diff() -> None:
    store = ObjectStore()
    t1 = store.write_tree({"a/b/c.txt": b"1", "a/d.txt": b"2", "e.txt": b"3"})
    assert set(store.flatten(t1)) == {"a/b/c.txt", "a/d.txt", "e.txt"}
    t2 = store.apply_changes(t1, {"a/b/c.txt": None, "a/d.txt": b"22", "f/g.txt": b"4"})
    flat = store.flatten(t2)
    assert set(flat) == {"a/d.txt", "e.txt", "f/g.txt"}
    assert store.lookup(t2, "a/b") is None  # emptied directory pruned
    assert store.read_file(t2, "a/d.txt") == b"22"
    changes = {(c.path, c.status) for c in store.diff_trees(t1, t2)}
    assert changes == {("a/b/c.txt", "removed"), ("a/d.txt", "modified"), ("f/g.txt", "added")}
    # unchanged subtree shared by SHA; a no-op change gives the same tree
    assert store.apply_changes(t2, {"e.txt": b"3"}) == t2
    t3 = store.apply_changes(t2, {"e.txt": None, "moved/e.txt": b"3"})
    renamed = [c for c in store.diff_trees(t2, t3) if c.status == "renamed"]
    assert [(c.previous_path, c.path) for c in renamed] == [("e.txt", "moved/e.txt")]
    with pytest.raises(GitError):
        store.apply_changes(t1, {"../x": b"1"})
    with pytest.raises(GitError):
        store.apply_changes(t1, {"q": b"1", "q/r": b"2"})


def test_merge_base_and_three_way_merge() -> None:
    store = ObjectStore()
    base_tree = store.write_tree({"a": b"1\n", "b": b"1\n", "dir/c": b"1\n"})
    root = store.put_commit(base_tree, [], sig(100), None, "root")
    ours = store.put_commit(
        store.apply_changes(base_tree, {"a": b"ours\n"}), [root], sig(200), None, "o"
    )
    theirs = store.put_commit(
        store.apply_changes(base_tree, {"b": b"theirs\n", "dir/new": b"n\n"}),
        [root],
        sig(300),
        None,
        "t",
    )
    assert store.merge_base(ours, theirs) == root
    assert store.merge_base(ours, root) == root
    clean = store.merge_trees(base_tree, store.commits[ours].tree, store.commits[theirs].tree)
    assert clean.conflicts == ()
    assert clean.tree is not None
    assert store.flatten(clean.tree).keys() == {"a", "b", "dir/c", "dir/new"}
    assert store.read_file(clean.tree, "a") == b"ours\n"
    assert store.read_file(clean.tree, "b") == b"theirs\n"
    conflicting = store.apply_changes(base_tree, {"a": b"other\n", "dir/c": None})
    theirs2 = store.apply_changes(base_tree, {"dir/c": b"changed\n"})
    result = store.merge_trees(base_tree, conflicting, theirs2)
    assert result.tree is None
    assert result.conflicts == ("dir/c",)
    # a merge commit's merge base with a later commit on one side is the side's tip
    merge = store.put_commit(clean.tree, [ours, theirs], sig(400), None, "merge")
    later = store.put_commit(clean.tree, [theirs], sig(500), None, "later")
    assert store.merge_base(merge, later) == theirs


def test_history_walk_with_path_filter() -> None:
    store = ObjectStore()
    t0 = store.write_tree({"app/x.yaml": b"1", "other": b"1"})
    c0 = store.put_commit(t0, [], sig(100), None, "c0")
    t1 = store.apply_changes(t0, {"other": b"2"})
    c1 = store.put_commit(t1, [c0], sig(200), None, "c1")
    t2 = store.apply_changes(t1, {"app/x.yaml": b"2"})
    c2 = store.put_commit(t2, [c1], sig(300), None, "c2")
    t3 = store.apply_changes(t2, {"app/x.yaml": None})
    c3 = store.put_commit(t3, [c2], sig(400), None, "c3")
    assert [c.sha for c in store.log([c3])] == [c3, c2, c1, c0]
    assert [c.sha for c in store.log([c3], path="app/x.yaml")] == [c3, c2, c0]
    assert [c.sha for c in store.log([c3], path="app")] == [c3, c2, c0]
    assert [c.sha for c in store.log([c3], path="other")] == [c1, c0]
    # newest committer date first across branches
    side = store.put_commit(
        store.apply_changes(t0, {"app/x.yaml": b"s"}), [c0], sig(250), None, "side"
    )
    assert [c.sha for c in store.log([c3, side])] == [c3, c2, side, c1, c0]


def test_unified_patch_counts_lines() -> None:
    patch = unified_patch(b"a\nb\nc\n", b"a\nB\nc\nd\n")
    assert (patch.additions, patch.deletions) == (2, 1)
    assert patch.text is not None and patch.text.startswith("@@ -1,3 +1,4 @@")
    assert unified_patch(b"\0bin", b"\0other").text is None


def test_large_tree_walk_reaches_every_entry() -> None:
    store = ObjectStore()
    files = {
        f"clusters/c{i % 50}/tenants/t{i}/input.yaml": f"n: {i}\n".encode() for i in range(20_000)
    }
    tree = store.write_tree(files)
    assert len(store.flatten(tree)) == 20_000
    # clusters/ + 50 cN/ + 50 tenants/ + 20,000 tN/ + 20,000 files
    assert sum(1 for _ in store.walk(tree)) == 1 + 50 + 50 + 20_000 + 20_000
