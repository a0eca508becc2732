"""Repository archives from the network: what ``git archive`` writes is read; anything else
(path tricks, links, devices, sizes past the bounds, a cut stream) is refused, whole."""

from __future__ import annotations

import gzip
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.fake.archives import BLOCK, header, header_block, pax_record, tarball
from bot.fake.gitobjects import ObjectStore, Signature
from bot.github.archive import ArchiveFiles, ArchiveLimits, ArchiveReader, ArchiveRefused
from bot.github.gitobj import git_blob_sha, levels_of_files

REPO = "acme/fleet"
LFS = b"version https://git-lfs.github.com/spec/v1\noid sha256:" + b"a" * 64 + b"\nsize 12\n"
FILES: dict[str, object] = {
    ".github/promotion.yml": b"environments: []\n",
    "README.md": b"# fleet\n",
    "bin/check.sh": ("100755", b"#!/bin/sh\nexit 0\n"),
    "clusters/dev-1/tenants/pay/input.yaml": b"image: pay:v1\n",
    "clusters/dev-1/tenants/pay/sync.yaml": b"tenant: pay\n",
    "clusters/dev-1/tenants/pay/notes.txt": b"not yaml\n",
    "clusters/dev-1/tenants/big/input.yaml": b"x: " + b"y" * 5000 + b"\n",
    "clusters/dev-1/tenants/lfs/input.yaml": LFS,
    # longer than a ustar name: the ustar prefix field, then a pax path record
    "clusters/" + "d" * 90 + "/tenants/t/input.yaml": b"image: long:v1\n",
    "clusters/" + "e" * 200 + "/input.yaml": b"image: longer:v1\n",
}


def wanted(path: str) -> bool:
    return path == ".github/promotion.yml" or (
        path.startswith("clusters/") and path.endswith(".yaml")
    )


def commit() -> tuple[ObjectStore, str, str]:
    objects = ObjectStore()
    tree = objects.write_tree(FILES)  # type: ignore[arg-type]
    sig = Signature("Alice", "alice@acme.test", 1_700_000_000)
    return objects, objects.put_commit(tree, [], sig, sig, "fleet"), tree


def read(
    body: bytes, sha: str, *, chunk: int = 4096, limits: ArchiveLimits | None = None
) -> tuple[ArchiveFiles, dict[str, bytes]]:
    reader = ArchiveReader(REPO, sha, wanted, limits)
    kept: dict[str, bytes] = {}
    for start in range(0, len(body), chunk):
        kept.update(
            (path, content) for path, _, content in reader.feed(body[start : start + chunk])
        )
    files = reader.close()
    kept.update((path, content) for path, _, content in reader.take_kept())
    return files, kept


def flat(files: ArchiveFiles) -> dict[str, tuple[str, str]]:
    """path -> (mode, blob SHA) of the tree the archive's files make."""
    out: dict[str, tuple[str, str]] = {}

    def walk(prefix: str, sha: str) -> None:
        for name, mode, kind, entry in files.levels[sha]:
            if kind == "tree":
                walk(f"{prefix}{name}/", entry)
            else:
                out[prefix + name] = (mode, entry)

    walk("", files.root)
    return out


def tar_gz(sha: str, *entries: bytes, top: str | None = None, end: bool = True) -> bytes:
    """An archive as git writes it (pax comment, top folder), with ``entries`` inside."""
    top = top if top is not None else f"acme-fleet-{sha[:7]}"
    comment = pax_record("comment", sha)
    parts = [
        header_block(b"pax_global_header", kind=b"g", mode=0o666, size=len(comment), mtime=0),
        comment + bytes(-len(comment) % BLOCK),
        header(top + "/", kind=b"5", mode=0o775),
        *entries,
    ]
    if end:
        parts.append(bytes(2 * BLOCK))
    return gzip.compress(b"".join(parts))


def file_entry(name: str, data: bytes, mode: int = 0o664) -> bytes:
    return header(name, kind=b"0", mode=mode, size=len(data)) + data + bytes(-len(data) % BLOCK)


SHA = "0123456789abcdef0123456789abcdef01234567"
TOP = "acme-fleet-0123456"


def test_a_real_archive_gives_every_file_with_its_blob_sha_and_proves_the_tree() -> None:
    objects, sha, tree = commit()
    files, kept = read(tarball(objects, REPO, sha), sha)
    expected = objects.flatten(tree)
    assert flat(files) == expected  # every path, git's mode and blob SHA
    assert files.root == tree  # the whole tree hashes to the commit's
    assert levels_of_files(expected) == (tree, files.levels)
    assert files.commit == sha and files.files == len(FILES)
    assert set(kept) == {p for p in FILES if wanted(p)}
    for path, content in kept.items():
        assert git_blob_sha(content) == expected[path][1]
    assert files.lfs_pointers == ["clusters/dev-1/tenants/lfs/input.yaml"]


def test_a_wanted_file_past_the_kept_size_is_hashed_not_kept() -> None:
    objects, sha, tree = commit()
    files, kept = read(tarball(objects, REPO, sha), sha, limits=ArchiveLimits(kept_bytes=1000))
    assert "clusters/dev-1/tenants/big/input.yaml" not in kept
    assert files.root == tree


@settings(max_examples=25, deadline=None)
@given(st.integers(min_value=1, max_value=3000))
def test_any_chunking_reads_the_same(chunk: int) -> None:
    objects, sha, tree = commit()
    files, kept = read(tarball(objects, REPO, sha), sha, chunk=chunk)
    assert files.root == tree and flat(files) == objects.flatten(tree)
    assert set(kept) == {p for p in FILES if wanted(p)}


HOSTILE: dict[str, tuple[bytes, str]] = {
    "dot-dot": (tar_gz(SHA, file_entry(f"{TOP}/../../etc/cron.d/x", b"x")), "component"),
    "dot-dot inside": (tar_gz(SHA, file_entry(f"{TOP}/clusters/../x.yaml", b"x")), "component"),
    "absolute": (tar_gz(SHA, file_entry("/etc/passwd", b"x")), "absolute"),
    "outside the top folder": (tar_gz(SHA, file_entry("other/x.yaml", b"x")), "top folder"),
    "symbolic link": (
        tar_gz(SHA, header(f"{TOP}/clusters/l.yaml", kind=b"2", mode=0o777, linkname="/etc")),
        "symbolic link",
    ),
    "hard link": (
        tar_gz(SHA, header(f"{TOP}/clusters/h.yaml", kind=b"1", mode=0o664, linkname="/etc")),
        "hard link",
    ),
    "device": (tar_gz(SHA, header(f"{TOP}/dev", kind=b"3", mode=0o664)), "character device"),
    "fifo": (tar_gz(SHA, header(f"{TOP}/fifo", kind=b"6", mode=0o664)), "FIFO"),
    "entry past the size limit": (
        tar_gz(SHA, header(f"{TOP}/huge.bin", kind=b"0", mode=0o664, size=200 * 1024 * 1024)),
        "the limit is",
    ),
    "another repository's top folder": (
        tar_gz(SHA, file_entry("evil-fleet-0123456/x.yaml", b"x"), top="evil-fleet-0123456"),
        "top folder",
    ),
    "another commit's top folder": (
        tar_gz(SHA, file_entry("acme-fleet-fffffff/x.yaml", b"x"), top="acme-fleet-fffffff"),
        "top folder",
    ),
    "the same path twice": (
        tar_gz(SHA, file_entry(f"{TOP}/a.yaml", b"1"), file_entry(f"{TOP}/a.yaml", b"2")),
        "twice",
    ),
    "a link in a pax header": (
        tar_gz(
            SHA,
            header(f"{TOP}/clusters/" + "l" * 120, kind=b"2", mode=0o777, linkname="/" * 150),
        ),
        "link",
    ),
    "out of git's order": (
        tar_gz(SHA, file_entry(f"{TOP}/b.yaml", b"1"), file_entry(f"{TOP}/a.yaml", b"2")),
        "order",
    ),
    "no end of archive": (tar_gz(SHA, file_entry(f"{TOP}/a.yaml", b"1"), end=False), "ends early"),
    "not gzip": (b"PK\x03\x04 a zip file, not a tarball" * 10, "gzip"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_a_hostile_archive_is_refused(name: str) -> None:
    body, reason = HOSTILE[name]
    with pytest.raises(ArchiveRefused, match=reason):
        read(body, SHA)


def test_a_truncated_gzip_is_refused() -> None:
    objects, sha, _ = commit()
    body = tarball(objects, REPO, sha)
    with pytest.raises(ArchiveRefused, match="truncated"):
        read(body[: len(body) // 2], sha)


def test_an_archive_of_another_commit_is_refused() -> None:
    objects, sha, _ = commit()
    other = "f" * 40
    with pytest.raises(ArchiveRefused, match="is of commit"):
        read(tarball(objects, REPO, sha), other)


def test_a_gzip_bomb_stops_at_the_total_size_bound() -> None:
    zeros = bytes(4 * 1024 * 1024)  # compresses to a few KB
    body = tar_gz(SHA, file_entry(f"{TOP}/a.bin", zeros))
    assert len(body) < 10_000
    with pytest.raises(ArchiveRefused, match="once unpacked"):
        read(body, SHA, limits=ArchiveLimits(total_bytes=1024 * 1024))


def test_too_many_entries_are_refused() -> None:
    entries = [file_entry(f"{TOP}/f{n}.yaml", b"x") for n in range(20)]
    with pytest.raises(ArchiveRefused, match="entries"):
        read(tar_gz(SHA, *entries), SHA, limits=ArchiveLimits(entries=10))


def test_the_compressed_size_is_bounded() -> None:
    entries = [file_entry(f"{TOP}/f{n}.yaml", bytes(range(256)) * 40) for n in range(20)]
    body = tar_gz(SHA, *entries)
    with pytest.raises(ArchiveRefused, match="compressed"):
        read(body, SHA, limits=ArchiveLimits(compressed_bytes=len(body) // 2))


def test_a_damaged_gzip_is_refused() -> None:
    objects, sha, _ = commit()
    body = bytearray(tarball(objects, REPO, sha))
    body[len(body) // 2] ^= 0xFF
    with pytest.raises(ArchiveRefused):
        read(bytes(body), sha)


def test_concatenated_gzip_members_are_one_stream() -> None:
    objects, sha, tree = commit()
    raw = zlib.decompress(tarball(objects, REPO, sha), wbits=31)
    half = len(raw) // 2
    body = gzip.compress(raw[:half]) + gzip.compress(raw[half:])
    files, _ = read(body, sha)
    assert files.root == tree
