"""``python -m bot serve`` as a separate process, the way a platform team runs it."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import aiohttp

from bot.service.inbox import Delivery, Inbox


def free_port() -> int:
    """A port nothing listens on now (the service is then started on it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class BotProcess:
    """One run of the service; its log (stderr) goes to a file the test can read."""

    cwd: Path
    port: int
    env: dict[str, str]
    proc: subprocess.Popen[bytes] = field(init=False)
    log_path: Path = field(init=False)
    _log: IO[bytes] = field(init=False)

    def __post_init__(self) -> None:
        runs = len(list(self.cwd.glob("service-*.log")))
        self.log_path = self.cwd / f"service-{runs}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bot", "serve"],
            cwd=self.cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def log_records(self) -> list[dict[str, Any]]:
        """The JSON log lines (LOG_FORMAT=json)."""
        records = []
        for line in self.log.splitlines():
            if line.startswith("{"):
                records.append(json.loads(line))
        return records

    async def wait_healthy(self, status: str, within: float = 30.0) -> None:
        """Poll /healthz until it answers with ``status``; fail with the log if it never does."""
        deadline = time.monotonic() + within
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise AssertionError(
                        f"the service exited ({self.proc.returncode}):\n{self.log}"
                    )
                try:
                    async with session.get(f"{self.url}/healthz") as resp:
                        if resp.status < 500 and (await resp.json()).get("status") == status:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
        raise AssertionError(f"/healthz never said {status!r}:\n{self.log}")

    def signal(self, sig: signal.Signals) -> None:
        self.proc.send_signal(sig)

    async def wait_exit(self, within: float = 45.0) -> int:
        deadline = time.monotonic() + within
        while self.proc.poll() is None:
            if time.monotonic() > deadline:
                self.proc.kill()
                raise AssertionError(f"the service did not exit within {within}s:\n{self.log}")
            await asyncio.sleep(0.05)
        self._log.close()
        return self.proc.returncode

    async def stop(self) -> int:
        """SIGTERM, as Docker, systemd and Kubernetes stop a container."""
        if self.proc.poll() is None:
            self.signal(signal.SIGTERM)
        return await self.wait_exit()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._log.close()


def service_env(tmp: Path, port: int, **settings: str) -> dict[str, str]:
    """A clean environment (nothing inherited that could carry credentials) plus settings."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp),
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "DATA_DIR": str(tmp / "data"),
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "INFO",
        "RESYNC_INTERVAL": "0",
        "RECOVERY_INTERVAL": "0",
    }
    env.update(settings)
    return env


def signed_headers(
    body: bytes, event: str, secret: str, delivery: str | None = None
) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
        "X-Hub-Signature-256": "sha256="
        + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest(),
        "User-Agent": "GitHub-Hookshot/test",
    }


async def post_webhook(
    url: str, event: str, payload: dict[str, Any], secret: str
) -> tuple[int, dict[str, Any]]:
    """POST a signed delivery as GitHub would."""
    body = json.dumps(payload).encode()
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=body, headers=signed_headers(body, event, secret)) as resp,
    ):
        return resp.status, await resp.json(content_type=None)


def inbox_rows(data_dir: Path) -> list[Delivery]:
    """What the service recorded (a second connection to its WAL database is safe)."""
    inbox = Inbox(data_dir / "inbox.sqlite3")
    try:
        return inbox.recent(1000)
    finally:
        inbox.close()


async def wait_inbox(
    data_dir: Path,
    event: str,
    statuses: tuple[str, ...],
    within: float = 30.0,
    action: str | None = None,
) -> Delivery:
    """Wait until a delivery of ``event`` (and ``action``, when given) is in one of
    ``statuses``."""
    deadline = time.monotonic() + within
    seen: list[Delivery] = []
    while time.monotonic() < deadline:
        seen = [
            d
            for d in inbox_rows(data_dir)
            if d.event == event and (action is None or d.action == action)
        ]
        for delivery in seen:
            if delivery.status in statuses:
                return delivery
        await asyncio.sleep(0.05)
    raise AssertionError(f"no {event} delivery became {statuses}: {[d.status for d in seen]}")
