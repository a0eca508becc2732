"""Repository archives as GitHub's codeload serves them: what ``git archive --format=tar.gz``
writes for a commit.

Layout (git's ``archive-tar.c``): a pax global header whose ``comment`` is the commit SHA, then
every tree entry depth first in git's order under the top folder ``<owner>-<repo>-<sha7>/``:
directories (and submodules) as directory entries with mode 0775, files 0664 (0775 when
executable), symbolic links with their target; owner ``root``; a name longer than the ustar
fields hold goes into a pax ``path`` record. Two zero blocks end it, padded to 10 KiB records;
gzip compresses it.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator

from bot.fake.gitobjects import MODE_COMMIT, MODE_EXEC, MODE_LINK, MODE_TREE, ObjectStore

BLOCK = 512
RECORD = 20 * BLOCK


def top_folder(full_name: str, sha: str) -> str:
    """``<owner>-<repo>-<7 char sha>``, GitHub's name for an archive's top folder."""
    owner, _, name = full_name.partition("/")
    return f"{owner}-{name}-{sha[:7]}"


def _octal(value: int, width: int) -> bytes:
    return b"%0*o\0" % (width - 1, value)


def header(
    name: str,
    *,
    kind: bytes,
    mode: int,
    size: int = 0,
    mtime: int = 0,
    linkname: str = "",
) -> bytes:
    """One tar header as git writes it (POSIX ustar); long names go into a pax header."""
    out = b""
    raw = name.encode("utf-8")
    link = linkname.encode("utf-8")
    prefix = b""
    records = b""
    if len(raw) > 100:
        cut = raw.rfind(b"/", 0, 156)
        if cut > 0 and len(raw) - cut - 1 <= 100:
            prefix, raw = raw[:cut], raw[cut + 1 :]
        else:
            records += pax_record("path", name)
            raw = b"long-name.data"
    if len(link) > 100:
        records += pax_record("linkpath", linkname)
        link = b""
    if records:
        out += header_block(b"pax-header", kind=b"x", mode=0o666, size=len(records), mtime=mtime)
        out += records + bytes(-len(records) % BLOCK)
    return out + header_block(
        raw, kind=kind, mode=mode, size=size, mtime=mtime, link=link, prefix=prefix
    )


def header_block(
    name: bytes,
    *,
    kind: bytes,
    mode: int,
    size: int,
    mtime: int,
    link: bytes = b"",
    prefix: bytes = b"",
) -> bytes:
    block = b"".join(
        (
            name.ljust(100, b"\0"),
            _octal(mode, 8),
            _octal(0, 8),
            _octal(0, 8),
            _octal(size, 12),
            _octal(mtime, 12),
            b" " * 8,
            kind,
            link.ljust(100, b"\0"),
            b"ustar\x0000",
            b"root".ljust(32, b"\0"),
            b"root".ljust(32, b"\0"),
            _octal(0, 8),
            _octal(0, 8),
            prefix.ljust(155, b"\0"),
            bytes(12),
        )
    )
    checksum = b"%07o\0" % sum(block)
    return block[:148] + checksum + block[156:]


def pax_record(key: str, value: str) -> bytes:
    """``"<length> key=value\\n"``, the length counting itself."""
    body = f" {key}={value}\n".encode()
    length = len(body) + 1
    while len(str(length).encode()) + len(body) != length:
        length += 1
    return str(length).encode() + body


def tar_blocks(objects: ObjectStore, full_name: str, commit_sha: str) -> Iterator[bytes]:
    """The uncompressed tar of a commit, piece by piece."""
    commit = objects.commits[commit_sha]
    mtime = commit.committer.timestamp
    comment = pax_record("comment", commit_sha)
    yield header_block(b"pax_global_header", kind=b"g", mode=0o666, size=len(comment), mtime=mtime)
    yield comment + bytes(-len(comment) % BLOCK)
    top = top_folder(full_name, commit_sha)
    yield header(top + "/", kind=b"5", mode=0o775, mtime=mtime)
    written = 2 * BLOCK + BLOCK
    for path, entry in objects.walk(commit.tree):
        name = f"{top}/{path}"
        if entry.mode in (MODE_TREE, MODE_COMMIT):
            piece = header(name + "/", kind=b"5", mode=0o775, mtime=mtime)
        elif entry.mode == MODE_LINK:
            target = objects.blobs[entry.sha].decode("utf-8", "replace")
            piece = header(name, kind=b"2", mode=0o777, mtime=mtime, linkname=target)
        else:
            data = objects.blobs[entry.sha]
            mode = 0o775 if entry.mode == MODE_EXEC else 0o664
            piece = header(name, kind=b"0", mode=mode, size=len(data), mtime=mtime)
            piece += data + bytes(-len(data) % BLOCK)
        written += len(piece)
        yield piece
    end = 2 * BLOCK
    yield bytes(end + (-(written + end) % RECORD))


def tarball_chunks(
    objects: ObjectStore, full_name: str, commit_sha: str, level: int = 6
) -> Iterator[bytes]:
    """The gzip-compressed archive of a commit, a piece at a time (as codeload streams it)."""
    z = zlib.compressobj(level, zlib.DEFLATED, 31)
    pending: list[bytes] = []
    size = 0
    for piece in tar_blocks(objects, full_name, commit_sha):
        pending.append(piece)
        size += len(piece)
        if size >= 1024 * 1024:
            chunk = z.compress(b"".join(pending))
            pending, size = [], 0
            if chunk:
                yield chunk
    yield z.compress(b"".join(pending)) + z.flush()


def tarball(objects: ObjectStore, full_name: str, commit_sha: str, level: int = 6) -> bytes:
    """The gzip-compressed archive of a commit."""
    return b"".join(tarball_chunks(objects, full_name, commit_sha, level))
