"""The disk side of the object caches: what is put is readable at once and after a restart,
bounded in size (least recently used first), and never trusted beyond its SHA."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.github import objectstore
from bot.github.gateway import ObjectCache
from bot.github.gitobj import git_blob_sha, git_tree_body, git_tree_sha, pack_levels
from bot.github.objectstore import BLOB, IMAGE, TREE, NullObjectStore, SqliteObjectStore, open_store


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "objects.sqlite3"


@pytest.fixture
def store(path: Path) -> Iterator[SqliteObjectStore]:
    s = SqliteObjectStore(path, max_bytes=10_000_000)
    yield s
    s.close()


async def test_what_is_put_is_read_at_once_and_after_a_restart(path: Path) -> None:
    first = SqliteObjectStore(path, max_bytes=10_000_000)
    first.put(BLOB, [("a" * 40, b"one"), ("b" * 40, b"two")])
    first.put(TREE, [("a" * 40, b"a tree")])  # kinds do not mix
    first.put_commit("acme/Fleet", "c" * 40, "d" * 40)
    assert await first.get(BLOB, ["a" * 40, "e" * 40]) == {"a" * 40: b"one"}  # queued, readable
    first.close()

    second = SqliteObjectStore(path, max_bytes=10_000_000)
    try:
        assert await second.get(BLOB, ["a" * 40, "b" * 40]) == {"a" * 40: b"one", "b" * 40: b"two"}
        assert await second.get(TREE, ["a" * 40]) == {"a" * 40: b"a tree"}
        assert await second.has(BLOB, ["a" * 40, "f" * 40]) == {"a" * 40}
        assert await second.commit_trees(["c" * 40, "9" * 40]) == {"c" * 40: "d" * 40}
        assert await second.recent_commits("acme/fleet") == [("c" * 40, "d" * 40)]
    finally:
        second.close()


async def test_the_store_keeps_to_its_bound_dropping_the_least_recently_used(
    path: Path,
) -> None:
    store = SqliteObjectStore(path, max_bytes=10_000)
    try:
        store.put(BLOB, [(f"{n:040x}", bytes(1000)) for n in range(8)])
        await store.flush()
        # a restart later, the oldest rows were not used since: mark them old, read one
        age(path, 3600)
        assert await store.get(BLOB, [f"{0:040x}"])  # used again now
        await store.flush()
        store.put(BLOB, [(f"{n:040x}", bytes(1000)) for n in range(8, 14)])
        await store.flush()
        kept = await store.has(BLOB, [f"{n:040x}" for n in range(14)])
        total = sum(1000 for _ in kept)
        assert total <= 10_000
        assert f"{0:040x}" in kept  # read a moment ago
        assert f"{13:040x}" in kept  # the newest
        assert f"{1:040x}" not in kept  # old and unused: gone first
    finally:
        store.close()


async def test_a_damaged_database_is_replaced_by_an_empty_one(
    path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    damage(path)
    with caplog.at_level(logging.WARNING):
        store = open_store(path.parent, 10)
    try:
        assert isinstance(store, SqliteObjectStore)
        assert "not usable" in caplog.text
        store.put(BLOB, [("a" * 40, b"x")])
        await store.flush()
        assert await store.get(BLOB, ["a" * 40]) == {"a" * 40: b"x"}
    finally:
        store.close()


def test_a_zero_bound_keeps_nothing_on_disk(tmp_path: Path) -> None:
    store = open_store(tmp_path, 0)
    assert isinstance(store, NullObjectStore)
    assert not list(tmp_path.iterdir())


async def test_objects_read_back_are_checked_against_their_sha(
    store: SqliteObjectStore, caplog: pytest.LogCaptureFixture
) -> None:
    cache = ObjectCache(store=store)
    good, bad = b"image: pay:v1\n", b"image: pay:v2\n"
    level = (("input.yaml", "100644", "blob", git_blob_sha(good)),)
    tree = git_tree_sha(level)
    cache.remember_blobs([(git_blob_sha(good), good)])
    store.put(BLOB, [(git_blob_sha(bad), b"image: evil:v6\n")])  # damaged (or tampered)
    cache.remember_levels({tree: level})
    store.put(TREE, [("f" * 40, pack_levels({tree: level}))])  # a level under another SHA
    store.put(TREE, [("e" * 40, git_tree_body(level))])  # not a pack at all
    await store.flush()
    fresh = ObjectCache(store=store)
    with caplog.at_level(logging.WARNING):
        blobs = await fresh.stored_blobs([git_blob_sha(good), git_blob_sha(bad)])
        levels = await fresh.stored_levels([tree, "f" * 40, "e" * 40])
    assert blobs == {git_blob_sha(good): good}
    assert levels == {tree: level}
    assert "damaged" in caplog.text


async def test_writes_of_a_closed_store_are_dropped_and_closing_twice_is_fine(path: Path) -> None:
    store = SqliteObjectStore(path, max_bytes=1_000_000)
    store.close()
    store.close()
    store.put(IMAGE, [("k", b"v")])
    store.put_commit("a/b", "c" * 40, "d" * 40)
    await store.flush()  # returns at once
    db = sqlite3.connect(path)
    try:
        assert db.execute("SELECT COUNT(*) FROM objects").fetchone() == (0,)
    finally:
        db.close()


def age(path: Path, seconds: int) -> None:
    """Make every row look ``seconds`` older (as after a long pause or a restart)."""
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("UPDATE objects SET used = used - ?", (seconds,))
    finally:
        db.close()


def damage(path: Path) -> None:
    path.parent.mkdir(parents=True)
    path.write_bytes(b"this is not an SQLite database" * 100)


def test_the_kinds_are_distinct() -> None:
    assert len({objectstore.BLOB, objectstore.TREE, objectstore.IMAGE}) == 3
