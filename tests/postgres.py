"""A throwaway PostgreSQL server for the tests: ``initdb`` + ``pg_ctl`` in a temporary directory.

The server binaries are found through ``pg_config --bindir`` or ``/usr/lib/postgresql/*/bin``
(Debian's ``postgresql`` package; ``.ci/run`` installs it when missing, and so does this module
when it runs as root with apt-get). ``initdb`` refuses to run as root, so as root the server runs
as the unprivileged ``postgres`` account the Debian package creates (``runuser -u postgres``),
in a directory owned by that account. It listens on 127.0.0.1 on a free port, its Unix socket
in its own directory, with ``trust`` authentication: loopback only, thrown away after the run.
Durability settings are off (``fsync``): a crash of the machine is not what these tests test;
a crash of the service is.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

ACCOUNT = "postgres"


class PostgresUnavailable(AssertionError):
    """The server could not be found, installed or started (a failure, never a skip)."""


def _bindir() -> Path | None:
    candidates: list[str] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        done = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        if done.returncode == 0:
            candidates.append(done.stdout.strip())
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)  # newest first
    for c in candidates:
        if (Path(c) / "initdb").exists() and (Path(c) / "pg_ctl").exists():
            return Path(c)
    return None


def _install() -> str:
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return "not root, or no apt-get"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "postgresql"],
    ):
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            return f"{' '.join(command)} failed: {done.stderr.strip()[-300:]}"
    return ""


def bindir() -> Path:
    found = _bindir()
    if found is None:
        why = _install()
        found = _bindir()
        if found is None:
            raise PostgresUnavailable(
                "PostgreSQL's server binaries (initdb, pg_ctl) are not installed and the test "
                f"could not install them ({why}): run `apt-get install -y postgresql`"
            )
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PostgresServer:
    """One server; ``stop``/``start`` take it away and bring it back (same data, same port)."""

    bindir: Path
    root: Path
    port: int
    user: str | None  # run the server binaries as this account (None: as ourselves)
    _databases: int = field(default=0, init=False)

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root / "socket"

    def _run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        command = [str(self.bindir / args[0]), *args[1:]]
        if self.user is not None:
            command = ["runuser", "-u", self.user, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
        if done.returncode != 0:
            raise PostgresUnavailable(
                f"{args[0]} failed ({done.returncode}): {(done.stderr or done.stdout)[-800:]}"
            )
        return done

    def init(self) -> None:
        self.socket_dir.mkdir()
        if self.user is not None:
            account = pwd.getpwnam(self.user)
            os.chown(self.socket_dir, account.pw_uid, account.pw_gid)
        self._run(
            "initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust",
            "--encoding=UTF8", "--locale=C", "--no-sync",
        )  # fmt: skip
        conf = self.data / "postgresql.conf"
        with conf.open("a", encoding="utf-8") as f:
            f.write(
                f"listen_addresses = '127.0.0.1'\nport = {self.port}\n"
                f"unix_socket_directories = '{self.socket_dir}'\n"
                "max_connections = 300\nfsync = off\nsynchronous_commit = off\n"
                "full_page_writes = off\nshared_buffers = 32MB\n"
            )

    def start(self) -> None:
        log = self.root / "server.log"
        try:
            self._run(
                "pg_ctl", "-D", str(self.data), "-l", str(log), "-w", "-t", "60", "start"
            )  # fmt: skip
        except PostgresUnavailable as exc:
            tail = log.read_text(errors="replace")[-1500:] if log.exists() else ""
            raise PostgresUnavailable(f"{exc}\nserver log:\n{tail}") from None

    def stop(self, mode: str = "fast") -> None:
        """``fast`` disconnects every client (what a failover or a restart looks like to
        them); ``immediate`` is a crash of the server."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """A fresh, empty database on this server; its URL."""
        self._databases += 1
        name = f"t{os.getpid()}_{self._databases}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def destroy(self) -> None:
        with contextlib.suppress(PostgresUnavailable):
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


def start_server() -> PostgresServer:
    """Start a throwaway server (as the ``postgres`` account when we are root)."""
    bins = bindir()
    user: str | None = None
    root = Path(tempfile.mkdtemp(prefix="fleetbot-pg-"))
    if os.geteuid() == 0:
        try:
            account = pwd.getpwnam(ACCOUNT)
        except KeyError:
            shutil.rmtree(root, ignore_errors=True)
            raise PostgresUnavailable(
                f"running as root and there is no {ACCOUNT!r} account for the server "
                "(Debian's postgresql package creates it): run `apt-get install -y postgresql` "
                f"or `useradd --system {ACCOUNT}`"
            ) from None
        os.chown(root, account.pw_uid, account.pw_gid)
        user = ACCOUNT
    server = PostgresServer(bindir=bins, root=root, port=free_port(), user=user)
    try:
        server.init()
        server.start()
    except BaseException:
        server.destroy()
        raise
    return server


def wait_until_up(url: str, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while True:
        try:
            with psycopg.connect(url, connect_timeout=2):
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
