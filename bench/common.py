"""What the three benchmarks share: API call records and their critical path, percentiles,
tables, JSON results, the machine's description, a generated fleet, and the two ways of running
the pieces (the service in this process; the fake GitHub in a child process).

Nothing here imports the fake GitHub: ``bench.fleet`` measures this process's peak RSS as the
bot's, so the fake must live (and allocate) elsewhere.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import aiohttp
from aiohttp import web

from bot.fake import samples

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"
SECRET = "bench-webhook-secret-5d1c"
ORG = "acme"
DASHBOARD_DEBOUNCE = 0.05
FLEET_REPO = "acme/fleet"


# --- API calls as the fake GitHub recorded them ------------------------------------------------


@dataclass(frozen=True)
class Call:
    """One request the fake GitHub answered (its ``RecordedRequest``, in plain data)."""

    method: str
    path: str
    query: str
    status: int
    identity: str
    started: float  # wall clock (time.time()) when the request arrived
    duration: float  # seconds until the answer, injected latency included

    @property
    def end(self) -> float:
        return self.started + self.duration

    @property
    def by_bot(self) -> bool:
        """Made by the service: as the app (JWT) or as one of its installations."""
        return self.identity.startswith(("installation:", "app:"))

    @property
    def route(self) -> str:
        """``GET /repos/{repo}/git/trees/{sha}``-style name, for per-route counts."""
        path = re.sub(r"^/repos/[^/]+/[^/]+", "/repos/{repo}", self.path)
        path = re.sub(r"\b[0-9a-f]{40}\b", "{sha}", path)
        path = re.sub(r"/\d+(?=/|$)", "/{n}", path)
        path = re.sub(r"(/git/refs?/heads/).*", r"\1{branch}", path)
        return f"{self.method} {path}"

    def as_row(self) -> list[Any]:
        return [
            self.method,
            self.path,
            self.query,
            self.status,
            self.identity,
            self.started,
            self.duration,
        ]

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> Call:
        method, path, query, status, identity, started, duration = row
        return cls(
            str(method),
            str(path),
            str(query),
            int(status),
            str(identity),
            float(started),
            float(duration),
        )


def bot_calls(calls: Iterable[Call], since: float = 0.0, until: float = math.inf) -> list[Call]:
    """The service's calls that started at or after ``since`` and ended by ``until``."""
    return [c for c in calls if c.by_bot and c.started >= since and c.end <= until]


def longest_chain(calls: Iterable[Call]) -> int:
    """Sequential round trips: the most calls whose time intervals do not overlap.

    Calls made concurrently overlap and count once; calls that had to wait for each other
    (each needed the previous one's answer) do not, and each adds a round trip.
    """
    return len(chain(calls))


def chain(calls: Iterable[Call]) -> list[Call]:
    """A longest sequence of calls whose intervals do not overlap, in time order (choosing
    by earliest end is optimal for the maximum set of disjoint intervals)."""
    out: list[Call] = []
    free_from = -math.inf
    for call in sorted(calls, key=lambda c: c.end):
        if call.started >= free_from:
            out.append(call)
            free_from = call.end
    return out


def first_call(calls: Iterable[Call], method: str, pattern: str, status: int) -> Call | None:
    """The earliest call with that method, path regex and status."""
    rx = re.compile(pattern)
    hits = [c for c in calls if c.method == method and c.status == status and rx.search(c.path)]
    return min(hits, key=lambda c: c.end) if hits else None


@dataclass(frozen=True)
class Story:
    """The figures of one story (an event and the work it caused), from the fake's records."""

    calls: list[Call]  # the service's calls from the event until everything settled
    event_at: float  # wall clock when the event happened
    handled: list[tuple[str, int]]  # (event.action, API calls) of each delivery it caused

    def figures(self, milestones: dict[str, Call | None]) -> dict[str, Any]:
        """Calls in all and where they were made; for each milestone (the call that marks
        it, e.g. the PR's creation) the sequential round trips and the time from the event."""
        as_app = sum(1 for c in self.calls if c.identity.startswith("app:"))
        in_deliveries = sum(n for _, n in self.handled)
        out: dict[str, Any] = {
            "calls": len(self.calls),
            "in_deliveries": in_deliveries,
            "as_app": as_app,  # installation tokens, GET /app
            "deferred": len(self.calls) - as_app - in_deliveries,  # the dashboard refresh
            "deliveries": [list(d) for d in self.handled],
            "by_route": by_route(self.calls),
        }
        for name, call in milestones.items():
            if call is None:
                out[name] = None
                continue
            before = [c for c in self.calls if c.end <= call.end]
            path = chain(before)
            out[name] = {
                "calls": len(before),
                "round_trips": len(path),
                "ms": (call.end - self.event_at) * 1000,
                "path": [c.route for c in path],
            }
        return out


def by_route(calls: Iterable[Call]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for call in calls:
        counts[call.route] = counts.get(call.route, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


# --- figures and output ---------------------------------------------------------------------


def percentile(values: Sequence[float], p: float) -> float:
    """The ``p``-th percentile (0..100) with linear interpolation between closest ranks."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def latency_summary(seconds: Sequence[float], wall: float) -> dict[str, float]:
    """p50/p90/p99/max in milliseconds, and throughput over the run's wall time."""
    return {
        "n": len(seconds),
        "p50_ms": percentile(seconds, 50) * 1000,
        "p90_ms": percentile(seconds, 90) * 1000,
        "p99_ms": percentile(seconds, 99) * 1000,
        "max_ms": max(seconds) * 1000 if seconds else math.nan,
        "throughput_per_s": len(seconds) / wall if wall > 0 else math.nan,
    }


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A plain-text table: first column left-aligned, the others right-aligned."""
    text_rows = [[_cell(v) for v in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in text_rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))

    def line(cells: Sequence[str]) -> str:
        parts = [
            cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i])
            for i, cell in enumerate(cells)
        ]
        return "  ".join(parts).rstrip()

    out = [line(list(headers)), line(["-" * w for w in widths])]
    out.extend(line(row) for row in text_rows)
    return "\n".join(out)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        return f"{value:.1f}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def machine() -> dict[str, Any]:
    """Where the figures came from: cores, CPU model, Python."""
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def write_results(name: str, data: dict[str, Any], directory: Path | None = None) -> Path:
    """``bench/results/<name>.json`` (gitignored), with the machine it ran on."""
    target = directory or RESULTS_DIR
    target.mkdir(parents=True, exist_ok=True)
    path = target / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **data}, indent=2, default=str) + "\n")
    return path


def _status_mb(field: str) -> float | None:
    """A memory figure of /proc/self/status (Linux) in MB; None elsewhere."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def peak_rss_mb() -> float:
    """This process's peak resident set size (VmHWM on Linux, ru_maxrss elsewhere)."""
    peak = _status_mb("VmHWM")
    if peak is not None:
        return peak
    scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale / 1024


def rss_mb() -> float:
    """This process's current resident set size."""
    now = _status_mb("VmRSS")
    return now if now is not None else math.nan


# --- a generated fleet ------------------------------------------------------------------------


def cluster_names(count: int) -> list[str]:
    """``dev-0000``, ``staging-0001``, ...: a tenth dev, a fifth staging, the rest prod."""
    names = []
    for i in range(count):
        slot = i % 10
        env = "dev" if slot < 1 else "staging" if slot < 3 else "prod"
        names.append(f"{env}-{i:04d}")
    return names


def tenant_name(index: int) -> str:
    return f"team{index:02d}-app"


def tenant_image(index: int) -> str:
    """Every tenant runs its own image, so a published image moves one tenant's inputs."""
    return f"registry.acme.com/team{index:02d}/app"


def tenant_input(cluster: str, index: int, tag: str, replicas: int = 2) -> bytes:
    """An input.yaml in the real Flux Operator form (``spec.type: Static``)."""
    env = cluster.split("-", 1)[0]
    name = tenant_name(index)
    return (
        "apiVersion: fluxcd.controlplane.io/v1\n"
        "kind: ResourceSetInputProvider\n"
        "metadata:\n"
        f"  name: {name}-inputs\n"
        f"  namespace: team{index:02d}-{env}\n"
        "spec:\n"
        "  type: Static\n"
        "  defaultValues:\n"
        f"    appName: {name}\n"
        f"    image: {tenant_image(index)}:{tag}\n"
        f"    replicas: {replicas}\n"
        f"    cluster: {cluster}\n"
    ).encode()


def external_secrets(cluster: str, tenants: int) -> bytes:
    """The cluster's base/external-secrets.yaml: each tenant's Secret, from this environment's
    Vault path (so the fleet is clean: the consistency rules find nothing)."""
    env = cluster.split("-", 1)[0]
    docs = []
    for index in range(tenants):
        name = tenant_name(index)
        docs.append(
            "apiVersion: external-secrets.io/v1beta1\n"
            "kind: ExternalSecret\n"
            "metadata:\n"
            f"  name: {name}-secrets\n"
            f"  namespace: team{index:02d}-{env}\n"
            "spec:\n"
            "  secretStoreRef:\n"
            "    name: cluster-vault\n"
            "    kind: ClusterSecretStore\n"
            "  target:\n"
            f"    name: {name}-secrets\n"
            "  data:\n"
            "    - secretKey: db_password\n"
            "      remoteRef:\n"
            f"        key: secret/data/{name}/{env}\n"
            "        property: db_password\n"
        )
    return "---\n".join(docs).encode()


def input_path(cluster: str, index: int) -> str:
    return f"clusters/{cluster}/tenants/{tenant_name(index)}/input.yaml"


def generated_fleet(clusters: int, tenants: int, tag: str = "v1.0.0") -> dict[str, bytes]:
    """Policy, README; per cluster its ExternalSecrets, per (cluster, tenant) an input.yaml
    and a sync.yaml."""
    files: dict[str, bytes] = {
        ".github/promotion.yml": samples.POLICY,
        "README.md": b"# acme fleet (generated for the benchmark)\n",
    }
    for cluster in cluster_names(clusters):
        env = cluster.split("-", 1)[0]
        files[f"clusters/{cluster}/base/external-secrets.yaml"] = external_secrets(cluster, tenants)
        for index in range(tenants):
            name = tenant_name(index)
            files[input_path(cluster, index)] = tenant_input(cluster, index, tag)
            files[f"clusters/{cluster}/tenants/{name}/sync.yaml"] = samples.sync(name, env)
    return files


# --- the fake GitHub in a child process ---------------------------------------------------------


class RemoteFake(AbstractAsyncContextManager["RemoteFake"]):
    """``python -m bench.fakeserver`` in a child process, driven over its control API.

    The child prints one JSON line when it is ready: the API URL, the control URL and the
    app's credentials.
    """

    def __init__(
        self, *args: str, ready_timeout: float = 600.0, info: dict[str, Any] | None = None
    ) -> None:
        self.args = args
        self.ready_timeout = ready_timeout
        self.proc: asyncio.subprocess.Process | None = None
        self.info: dict[str, Any] = info or {}
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def attach(cls, info: dict[str, Any]) -> RemoteFake:
        """A fake another process started (its ready line): used, not started or stopped."""
        return cls(info=info)

    async def __aenter__(self) -> RemoteFake:
        if self.info:  # attached: the fake is already running
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600))
            return self
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.fakeserver",
            *self.args,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            limit=16 * 1024 * 1024,
        )
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), self.ready_timeout)
        if not line:
            raise RuntimeError(f"bench.fakeserver exited with {await self.proc.wait()}")
        self.info = json.loads(line)
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600))
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._session is not None:
            await self._session.close()
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()

    @property
    def api_url(self) -> str:
        return str(self.info["api_url"])

    @property
    def app_id(self) -> int:
        return int(self.info["app_id"])

    @property
    def private_key(self) -> str:
        return str(self.info["private_key"])

    async def call(self, method: str, name: str, body: Any = None, **query: Any) -> Any:
        assert self._session is not None
        url = f"{self.info['control_url']}/{name}"
        params = {k: str(v) for k, v in query.items()}
        async with self._session.request(method, url, json=body, params=params) as resp:
            data = await resp.json()
            if resp.status != 200:
                raise RuntimeError(f"fakeserver {name}: {resp.status} {data}")
            return data

    async def idle(self) -> int:
        """Wait until the fake has delivered every webhook; the number of deliveries so far."""
        data = await self.call("GET", "idle")
        return int(data["deliveries"])

    async def calls(self, since: int = 0) -> list[Call]:
        data = await self.call("GET", "requests", since=since)
        return [Call.from_row(row) for row in data["calls"]]

    async def request_count(self) -> int:
        return int((await self.call("GET", "requests", since=10**12))["total"])


# --- the service in this process ----------------------------------------------------------------


def bound_port(site: web.TCPSite) -> int:
    """The port a site started on port 0 listens on."""
    sockets = getattr(site._server, "sockets", None) or []
    if not sockets:
        raise RuntimeError("the site is not listening")
    port: int = sockets[0].getsockname()[1]
    return port


@dataclass
class LocalBot:
    """The real service (``create_app``) on an ephemeral port of this process."""

    app: web.Application
    runner: web.AppRunner
    url: str
    tmp: tempfile.TemporaryDirectory[str]

    @property
    def webhook_url(self) -> str:
        return f"{self.url}/api/github/webhooks"

    @classmethod
    async def start(
        cls, api_url: str, app_id: int, private_key: str, *, data_dir: Path | None = None
    ) -> LocalBot:
        """A fresh service: new process state, empty caches, its own data directory (or
        ``data_dir``, kept: a restart of a service that ran on it before)."""
        from bot.service.app import create_app
        from bot.settings import load_settings

        tmp = tempfile.TemporaryDirectory(prefix="bench-bot-")
        settings = load_settings(
            {
                "APP_ID": str(app_id),
                "PRIVATE_KEY": private_key,
                "WEBHOOK_SECRET": SECRET,
                "GITHUB_API_URL": api_url,
                "DATA_DIR": str(data_dir or Path(tmp.name) / "data"),
                "LOG_LEVEL": "WARNING",
                "RESYNC_INTERVAL": "0",
                "RECOVERY_INTERVAL": "0",
                # The dashboard refresh that a merge asks for is part of a story's cost:
                # run it within the story instead of 15 s later.
                "DASHBOARD_DEBOUNCE": str(DASHBOARD_DEBOUNCE),
            }
        )
        app = create_app(settings)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        return cls(app, runner, f"http://127.0.0.1:{bound_port(site)}", tmp)

    async def stop(self) -> None:
        await self.runner.cleanup()
        self.tmp.cleanup()

    async def settle(
        self, deliveries: Callable[[], Awaitable[int]], within: float = 1800.0
    ) -> None:
        """Wait until GitHub has delivered everything and the service has done all its work
        (each side's work can cause more work on the other): at most ``within`` seconds (the
        first dashboard refresh of a 100,000-input fleet parses every input: minutes)."""
        from bot.service.app import STATE

        state = self.app[STATE]
        dispatcher, worker = state.dispatcher, state.worker
        assert dispatcher is not None and worker is not None
        quiet = 0
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            before = await deliveries()
            await worker.idle()
            await asyncio.sleep(0.01)
            after = await deliveries()
            if dispatcher.in_flight == 0 and dispatcher.scheduled == 0 and before == after:
                quiet += 1
                if quiet >= 2:
                    return
            else:
                quiet = 0
        raise RuntimeError("the service and the fake GitHub did not settle")

    def handled(self, since: float) -> list[tuple[str, int]]:
        """(event.action, API calls) of each delivery received since ``since``, oldest first.

        The dispatcher counts each delivery's calls; what the fake saw beyond their sum was
        made outside deliveries: token fetches and deferred jobs (the dashboard refresh).
        """
        from bot.service.app import STATE

        inbox = self.app[STATE].inbox
        assert inbox is not None
        rows = [d for d in inbox.recent(100_000) if d.received_at >= since]
        return [
            (d.event + (f".{d.action}" if d.action else ""), d.api_calls or 0)
            for d in sorted(rows, key=lambda d: d.received_at)
        ]

    def failed_deliveries(self) -> list[str]:
        from bot.service.app import STATE

        inbox = self.app[STATE].inbox
        assert inbox is not None
        return [
            f"{d.event}.{d.action}: {d.last_error}"
            for d in inbox.recent(100_000)
            if d.status == "failed"
        ]
