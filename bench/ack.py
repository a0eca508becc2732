"""Acknowledgement latency: signed deliveries at a fixed concurrency, the service vs a floor.

Three processes besides this one (the load generator): the service (``python -m bot serve``,
a temporary ``DATA_DIR``), the floor (a bare aiohttp app that only verifies the signature and
answers 202) and the fake GitHub (``bench.fakeserver``) that the service's background work
talks to. Each target gets a warm-up, then the same number of deliveries in the same run:

- floor: the signature check alone;
- service, handled: a ``pull_request.opened`` of a repository that is no fleet repo; the
  service verifies it, stores it in its inbox, answers 202, and works on it in the background;
- service, ignored: an event no handler takes (``watch``): verified and answered, not stored.

Target: the service's p99 within 2x of the floor's.

    python -m bench.ack
    python -m bench.ack --deliveries 200 --concurrency 10
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bench import common
from bench.common import RemoteFake

P99_RATIO_TARGET = 2.0
WEBHOOK_PATH = "/api/github/webhooks"
STARTUP_S = 60.0
DRAIN_S = 600.0


# --- the floor --------------------------------------------------------------------------------


def floor_app(secret: str) -> web.Application:
    """What any webhook receiver must do at least: read the body, check its HMAC, answer."""
    key = secret.encode()

    async def receive(request: web.Request) -> web.Response:
        body = await request.read()
        expected = "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()
        given = request.headers.get("X-Hub-Signature-256", "")
        if not hmac.compare_digest(given.encode(), expected.encode()):
            return web.json_response({"error": "bad signature"}, status=401)
        return web.json_response({"status": "accepted"}, status=202)

    app = web.Application(client_max_size=25 * 1024 * 1024)
    app.router.add_post(WEBHOOK_PATH, receive)
    return app


# --- the load -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    event: str
    body: bytes
    signature: str


def signed(event: str, payload: Any, secret: str) -> Delivery:
    body = json.dumps(payload).encode()
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return Delivery(event, body, f"sha256={digest}")


async def load(
    url: str, delivery: Delivery, count: int, concurrency: int, expect: str | None = None
) -> tuple[list[float], float, dict[int, int]]:
    """POST ``count`` copies (each with its own delivery id) with ``concurrency`` in flight;
    per-request latencies (s), the wall time, and the statuses seen."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    remaining = iter(range(count))
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": delivery.event,
        "X-Hub-Signature-256": delivery.signature,
        "User-Agent": "GitHub-Hookshot/bench",
    }
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            for _ in remaining:
                h = dict(headers, **{"X-GitHub-Delivery": str(uuid.uuid4())})
                t0 = time.perf_counter()
                async with session.post(url, data=delivery.body, headers=h) as resp:
                    text = await resp.text()
                latencies.append(time.perf_counter() - t0)
                statuses[resp.status] = statuses.get(resp.status, 0) + 1
                if expect is not None and expect not in text:
                    raise RuntimeError(f"unexpected answer {resp.status}: {text[:200]}")

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - started
    return latencies, wall, statuses


# --- the processes ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def wait_healthy(url: str, proc: subprocess.Popen[bytes]) -> None:
    """Poll ``url`` until the process answers (within STARTUP_S)."""
    async with asyncio.timeout(STARTUP_S), aiohttp.ClientSession() as session:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}")
            try:
                async with session.get(url) as resp:
                    if resp.status in (200, 404, 405):
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)


async def wait_drained(service_url: str) -> float:
    """Wait until the service has no delivery in flight (its /metrics says so); seconds."""
    started = time.monotonic()
    async with asyncio.timeout(DRAIN_S), aiohttp.ClientSession() as session:
        while True:
            async with session.get(f"{service_url}/metrics") as resp:
                text = await resp.text()
            m = re.search(r"^fleetbot_in_flight (\d+)", text, re.M)
            if m and m.group(1) == "0":
                return time.monotonic() - started
            await asyncio.sleep(0.1)


def spawn(args: Sequence[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, *args],
            cwd=common.ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --- the run ------------------------------------------------------------------------------------


async def run(deliveries: int, concurrency: int, warmup: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-ack-") as tmp:
        async with RemoteFake("--scenario", "ack") as fake:
            payload = await fake.call("GET", "payload", event="pull_request")
            service_port, floor_port = free_port(), free_port()
            env = dict(
                os.environ,
                APP_ID=str(fake.app_id),
                PRIVATE_KEY=fake.private_key,
                WEBHOOK_SECRET=common.SECRET,
                GITHUB_API_URL=fake.api_url,
                DATA_DIR=str(Path(tmp) / "data"),
                PORT=str(service_port),
                HOST="127.0.0.1",
                LOG_LEVEL="WARNING",
                RESYNC_INTERVAL="0",
            )
            service = spawn(["-m", "bot", "serve"], env, Path(tmp) / "service.log")
            floor = spawn(
                ["-m", "bench.ack", "--serve-floor", str(floor_port)],
                dict(os.environ, WEBHOOK_SECRET=common.SECRET),
                Path(tmp) / "floor.log",
            )
            try:
                service_url = f"http://127.0.0.1:{service_port}"
                floor_url = f"http://127.0.0.1:{floor_port}"
                await wait_healthy(f"{service_url}/healthz", service)
                await wait_healthy(f"{floor_url}{WEBHOOK_PATH}", floor)
                return await _measure(
                    (service_url, service.pid),
                    (floor_url, floor.pid),
                    payload,
                    deliveries,
                    concurrency,
                    warmup,
                )
            except Exception:
                for name in ("service.log", "floor.log"):
                    sys.stderr.write(f"--- {name}\n{(Path(tmp) / name).read_text()[-4000:]}\n")
                raise
            finally:
                stop(service)
                stop(floor)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc; NaN elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _measure(
    service: tuple[str, int],
    floor: tuple[str, int],
    payload: Any,
    deliveries: int,
    concurrency: int,
    warmup: int,
) -> dict[str, Any]:
    handled = signed("pull_request", payload, common.SECRET)
    ignored = signed(
        "watch",
        {"action": "started", "repository": payload["repository"], "sender": payload["sender"]},
        common.SECRET,
    )
    service_url = service[0]
    targets = [
        ("floor", floor, handled, "accepted"),
        ("service, handled (stored)", service, handled, "queued"),
        ("service, ignored", service, ignored, "ignored"),
    ]
    results: dict[str, Any] = {}
    for name, (base, pid), delivery, expect in targets:
        url = f"{base}{WEBHOOK_PATH}"
        await load(url, delivery, warmup, min(concurrency, max(1, warmup)), expect)
        if base == service_url:
            await wait_drained(service_url)
        cpu = cpu_seconds(pid)
        latencies, wall, statuses = await load(url, delivery, deliveries, concurrency, expect)
        summary: dict[str, Any] = common.latency_summary(latencies, wall)
        summary["statuses"] = statuses
        if base == service_url:
            summary["background_drain_s"] = await wait_drained(service_url)
        # CPU per delivery, background work included: what bounds throughput at a fixed
        # concurrency, and so the latency (about concurrency / throughput).
        summary["cpu_ms_per_delivery"] = (cpu_seconds(pid) - cpu) * 1000 / deliveries
        results[name] = summary
    return {
        "deliveries": deliveries,
        "concurrency": concurrency,
        "payload_bytes": len(handled.body),
        "targets": results,
    }


def report(result: dict[str, Any]) -> str:
    targets = result["targets"]
    floor_p99 = targets["floor"]["p99_ms"]
    rows = []
    for name, s in targets.items():
        ratio = s["p99_ms"] / floor_p99 if floor_p99 else float("nan")
        rows.append(
            [
                name,
                s["n"],
                s["p50_ms"],
                s["p90_ms"],
                s["p99_ms"],
                s["max_ms"],
                s["throughput_per_s"],
                s["cpu_ms_per_delivery"],
                "-" if name == "floor" else f"{ratio:.2f}x",
            ]
        )
    text = common.table(
        ["target", "n", "p50 ms", "p90 ms", "p99 ms", "max ms", "per s", "CPU ms", "p99/floor"],
        rows,
    )
    handled = targets["service, handled (stored)"]
    ratio = handled["p99_ms"] / floor_p99 if floor_p99 else float("nan")
    verdict = "met" if ratio <= P99_RATIO_TARGET else "NOT MET"
    return (
        f"{text}\n\n{result['deliveries']} deliveries of {result['payload_bytes']:,} bytes at "
        f"concurrency {result['concurrency']}; handled p99 {ratio:.2f}x the floor's (target <= "
        f"{P99_RATIO_TARGET:.0f}x) {verdict}; the service finished their background work "
        f"{handled['background_drain_s']:.1f}s after the last acknowledgement"
    )


def serve_floor(port: int) -> int:
    web.run_app(
        floor_app(os.environ["WEBHOOK_SECRET"]),
        host="127.0.0.1",
        port=port,
        print=None,
        access_log=None,
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ack", description=__doc__)
    parser.add_argument("--deliveries", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=100, help="unmeasured deliveries first")
    parser.add_argument("--results", type=Path, default=None, help="directory for ack.json")
    parser.add_argument("--serve-floor", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_floor is not None:
        return serve_floor(args.serve_floor)
    result = asyncio.run(run(args.deliveries, args.concurrency, args.warmup))
    print(report(result))
    print(f"\nresults: {common.write_results('ack', result, args.results)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
