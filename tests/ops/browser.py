"""A real headless Chromium driven over the Chrome DevTools protocol, with aiohttp only.

Just enough of the protocol for a person's steps: open a page, type into a field, click a
button with the mouse, wait for where the browser ends up. No selenium or playwright: the
protocol is JSON over one WebSocket.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

import aiohttp

CHROMIUM = "/usr/bin/chromium"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--no-proxy-server",
    "--window-size=1280,900",
)


class BrowserError(AssertionError):
    """The browser could not be started or did not do what the test asked."""


def _installed() -> str | None:
    return shutil.which("chromium") or (CHROMIUM if Path(CHROMIUM).exists() else None)


def _install() -> str:
    """The test setup installs Debian's chromium when it can (root with apt-get), as CI does."""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return "not root, or no apt-get"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]):
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            return f"{' '.join(command)} failed: {done.stderr.strip()[-300:]}"
    return ""


def chromium_path() -> str:
    """Debian's chromium, installed first when missing; a clear failure (never a skip) when it
    cannot be."""
    path = _installed()
    if path is None:
        why = _install()
        path = _installed()
        if path is None:
            raise BrowserError(
                "Chromium is not installed and the test could not install it "
                f"({why}): run `apt-get install -y chromium`"
            )
    return path


class Page:
    """One tab, spoken to over its DevTools WebSocket."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.events: list[dict[str, Any]] = []
        self._reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        async for msg in self.ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            data = json.loads(msg.data)
            future = self._waiting.pop(data.get("id", -1), None)
            if future is not None and not future.done():
                future.set_result(data)
            elif "method" in data:
                self.events.append(data)
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(BrowserError("the browser closed the connection"))

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        """Call a protocol method; raise with the browser's message when it fails."""
        msg_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[msg_id] = future
        await self.ws.send_str(json.dumps({"id": msg_id, "method": method, "params": params}))
        reply = await asyncio.wait_for(future, timeout=15)
        if "error" in reply:
            raise BrowserError(f"{method}: {reply['error']}")
        result: dict[str, Any] = reply.get("result", {})
        return result

    async def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (awaited if it is a promise)."""
        result = await self.send(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression!r} threw: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def goto(self, url: str) -> None:
        await self.send("Page.navigate", url=url)
        await self.wait_for("document.readyState === 'complete' && location.href !== 'about:blank'")

    async def wait_for(self, condition: str, within: float = 15.0) -> Any:
        """Poll a JavaScript condition until it is truthy (pages change under navigation)."""
        deadline = time.monotonic() + within
        last: Any = None
        while time.monotonic() < deadline:
            with suppress(BrowserError):  # the context may be gone mid-navigation
                last = await self.evaluate(condition)
                if last:
                    return last
            await asyncio.sleep(0.05)
        url = await self.evaluate("location.href")
        raise BrowserError(f"timed out waiting for {condition!r} (last {last!r}) at {url}")

    async def type_into(self, selector: str, text: str) -> None:
        """Focus a field, clear it, and type as a keyboard would (input events fire)."""
        await self.evaluate(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
            " e.focus(); e.select(); return true; })()"
        )
        await self.send("Input.insertText", text=text)

    async def click(self, selector: str) -> None:
        """Scroll an element into view, then press and release the left mouse button over it."""
        box = await self.evaluate(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
            " e.scrollIntoView({block: 'center'}); const r = e.getBoundingClientRect();"
            " return [r.x + r.width / 2, r.y + r.height / 2]; })()"
        )
        x, y = box
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            await self.send(
                "Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1
            )


@asynccontextmanager
async def chromium() -> AsyncIterator[Page]:
    """Start headless Chromium on a private profile and yield its first tab."""
    binary = chromium_path()
    profile = Path(tempfile.mkdtemp(prefix="fleetbot-chromium-"))
    proc = await asyncio.create_subprocess_exec(
        binary,
        *FLAGS,
        f"--user-data-dir={profile}",
        "--remote-debugging-port=0",
        "about:blank",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        port = await _devtools_port(profile, proc)
        async with aiohttp.ClientSession() as session:
            targets = await _targets(session, port)
            page_target = next(t for t in targets if t.get("type") == "page")
            async with session.ws_connect(
                page_target["webSocketDebuggerUrl"], max_msg_size=0
            ) as ws:
                page = Page(ws)
                await page.send("Page.enable")
                await page.send("Runtime.enable")
                yield page
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        shutil.rmtree(profile, ignore_errors=True)


async def _devtools_port(profile: Path, proc: asyncio.subprocess.Process) -> int:
    """Chromium writes the port it picked to DevToolsActivePort in the profile."""
    marker = profile / "DevToolsActivePort"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.returncode is not None:
            err = (await proc.stderr.read()).decode(errors="replace") if proc.stderr else ""
            raise BrowserError(f"chromium exited with {proc.returncode}: {err[-2000:]}")
        if marker.exists():
            first = marker.read_text().splitlines()[:1]
            if first and first[0].isdigit():
                return int(first[0])
        await asyncio.sleep(0.05)
    raise BrowserError("chromium did not open its DevTools port within 30 s")


async def _targets(session: aiohttp.ClientSession, port: int) -> list[dict[str, Any]]:
    for _ in range(100):
        async with session.get(f"http://127.0.0.1:{port}/json/list") as resp:
            targets: list[dict[str, Any]] = await resp.json()
        if any(t.get("type") == "page" for t in targets):
            return targets
        await asyncio.sleep(0.05)
    raise BrowserError("chromium has no page target")
