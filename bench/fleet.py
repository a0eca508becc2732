"""Fleet scale: a generated fleet repo of clusters x tenants, a cold bump, a warm one, peak RSS.

The fake GitHub (holding the fleet's git objects) runs in a child process, ``bench.fakeserver``;
the service runs in this process, so this process's peak RSS is the bot's (plus a small driver).
Each fleet size runs in a fresh child of this script, so sizes do not share caches or a peak.

Per size: the first bump of one tenant's image (cold: empty caches), one unrelated push (a
prod input's replicas), then the next bump of the same image (warm). Target: the warm bump's
API calls do not grow with the fleet, and peak RSS stays under 300 MB.

    python -m bench.fleet                       # 200 and 2,000 clusters x 50 tenants
    python -m bench.fleet --clusters 20 --tenants 5
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import aiohttp

from bench import common
from bench.common import Call, LocalBot, RemoteFake, Story

RSS_TARGET_MB = 300.0


def _no_dashboard() -> None:
    """The dashboard issue is not refreshed (it reads and parses every input of the fleet)."""
    from bot.handlers import dashboard

    dashboard.request_refresh = lambda ctx, repo, branch: None


def _no_fleet_check() -> None:
    """``promotion/fleet`` passes without judging (it parses every file of each touched
    cluster, before and after the change)."""
    from bot.github.checkruns import FLEET, DesiredCheck
    from bot.handlers import checks
    from bot.texts.summaries import render_fleet

    async def passed(*args: object) -> DesiredCheck:
        return DesiredCheck(FLEET, "success", render_fleet([], [], clusters=[]))

    setattr(checks, "fleet_check", passed)  # noqa: B010 (the module's own name is the seam)


ABLATIONS: dict[str, Callable[[], None]] = {
    "dashboard": _no_dashboard,
    "fleet-check": _no_fleet_check,
}
TENANT = 7  # whose image is published (modulo the number of tenants)


class AckProbe:
    """A signed delivery no handler takes, sent every ``interval`` while a story runs: how
    long the service takes to acknowledge while it works (GitHub gives up after 10 s).

    Latency is counted from when each probe was due, so a stalled event loop shows in full
    even though this probe shares the loop with the service."""

    def __init__(self, url: str, interval: float = 0.1) -> None:
        self.url = url
        self.interval = interval
        self.latencies: list[float] = []
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    async def __aenter__(self) -> AckProbe:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task

    async def _run(self) -> None:
        body = json.dumps({"action": "started", "repository": {"full_name": "acme/x"}}).encode()
        digest = hmac.new(common.SECRET.encode(), body, hashlib.sha256).hexdigest()
        headers = {
            "Content-Type": "application/json",
            "X-GitHub-Event": "watch",
            "X-Hub-Signature-256": f"sha256={digest}",
        }
        async with aiohttp.ClientSession() as session:
            due = time.perf_counter()
            while not self._stop.is_set():
                h = dict(headers, **{"X-GitHub-Delivery": str(uuid.uuid4())})
                async with session.post(self.url, data=body, headers=h) as resp:
                    await resp.read()
                self.latencies.append(time.perf_counter() - due)
                due += self.interval
                wait = due - time.perf_counter()
                if wait > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stop.wait(), wait)

    def figures(self) -> dict[str, float]:
        lat = self.latencies
        return {
            "n": len(lat),
            "p50_ms": common.percentile(lat, 50) * 1000,
            "p99_ms": common.percentile(lat, 99) * 1000,
            "max_ms": max(lat) * 1000 if lat else float("nan"),
        }


async def bump(fake: RemoteFake, bot: LocalBot, image: str, tag: str) -> dict[str, Any]:
    """Publish ``image:tag`` and measure until everything settled."""
    async with AckProbe(bot.webhook_url) as probe:
        out = await _bump(fake, bot, image, tag)
    out["ack_while_working"] = probe.figures()
    return out


async def _drive(
    fake: RemoteFake, bot: LocalBot, action: str, body: dict[str, Any]
) -> tuple[list[Call], float]:
    """Ask the fake to do ``action`` (it sends the webhooks), wait until the bot settled;
    the bot's calls since, and when it started."""
    mark = await fake.request_count()
    started = time.time()
    await fake.call("POST", action, {"repo": common.FLEET_REPO, **body})
    await bot.settle(fake.idle)
    return common.bot_calls(await fake.calls(mark), since=started), started


async def _bump(fake: RemoteFake, bot: LocalBot, image: str, tag: str) -> dict[str, Any]:
    cpu = time.process_time()
    calls, started = await _drive(
        fake,
        bot,
        "dispatch",
        {
            "event_type": "image-published",
            "client_payload": {"image": image, "tag": tag},
            "by": "ci-bot",
        },
    )
    wall = time.time() - started
    story = Story(calls, started, bot.handled(started))
    created = common.first_call(calls, "POST", r"/pulls$", 201)
    merged = common.first_call(calls, "PUT", r"/pulls/\d+/merge$", 200)
    out = story.figures({"pr_opened": created, "merged": merged})
    out["settled_s"] = wall
    out["cpu_s"] = time.process_time() - cpu
    return out


async def unrelated_push(fake: RemoteFake, bot: LocalBot, clusters: int) -> dict[str, Any]:
    """Someone changes a prod input's replicas: the default branch moves, no image does."""
    prod = [c for c in common.cluster_names(clusters) if c.startswith("prod-")]
    cluster = prod[len(prod) // 2] if prod else common.cluster_names(clusters)[-1]
    path = common.input_path(cluster, 0)
    text = common.tenant_input(cluster, 0, "v1.0.0", replicas=5).decode()
    calls, _ = await _drive(
        fake,
        bot,
        "commit",
        {
            "branch": "main",
            "changes": {path: text},
            "message": f"{cluster}: 5 replicas",
            "author": "bob",
        },
    )
    return {"calls": len(calls), "by_route": common.by_route(calls)}


async def run_size(
    clusters: int,
    tenants: int,
    tree_limit: int,
    latency: float,
    without: Sequence[str] = (),
) -> dict[str, Any]:
    """One fleet size in this process: seed, cold bump, unrelated push, warm bump.

    ``without`` names parts of the service to switch off (an ablation), to show what the
    rest costs: see :data:`ABLATIONS`."""
    for name in without:
        ABLATIONS[name]()
    args = ["--scenario", "fleet", "--clusters", str(clusters), "--tenants", str(tenants)]
    args += ["--tree-limit", str(tree_limit), "--latency", str(latency)]
    seeded = time.perf_counter()
    async with RemoteFake(*args) as fake:
        seed_s = time.perf_counter() - seeded
        rss_idle = common.rss_mb()
        bot = await LocalBot.start(fake.api_url, fake.app_id, fake.private_key)
        try:
            await fake.call("POST", "webhook", {"url": bot.webhook_url})
            image = common.tenant_image(TENANT % tenants)
            cold = await bump(fake, bot, image, "v1.1.0")
            push = await unrelated_push(fake, bot, clusters)
            warm = await bump(fake, bot, image, "v1.2.0")
            pulls = await fake.call("GET", "pulls", prefix="fleet-bot/bump/")
            failed = bot.failed_deliveries()
        finally:
            await bot.stop()
    dev = sum(1 for c in common.cluster_names(clusters) if c.startswith("dev-"))
    return {
        "clusters": clusters,
        "tenants": tenants,
        "input_files": clusters * tenants,
        "files": clusters * (2 * tenants + 1) + 2,
        "dev_clusters": dev,
        "tree_entry_limit": tree_limit,
        "without": list(without),
        "latency_s": latency,
        "seed_s": seed_s,
        "cold": cold,
        "push": push,
        "warm": warm,
        "merged_bumps": sum(1 for p in pulls if p["merged"]),
        "failed_deliveries": failed,
        "rss_before_bot_mb": rss_idle,
        "peak_rss_mb": common.peak_rss_mb(),
    }


def run_child(clusters: int, args: argparse.Namespace) -> dict[str, Any]:
    """One size in a fresh interpreter: its peak RSS is that size's alone."""
    command = [sys.executable, "-m", "bench.fleet", "--child", "--clusters", str(clusters)]
    command += ["--tenants", str(args.tenants), "--tree-limit", str(args.tree_limit)]
    command += ["--latency", str(args.latency)]
    for name in args.without:
        command += ["--without", name]
    done = subprocess.run(command, cwd=common.ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"fleet size {clusters} failed:\n{done.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def report(sizes: list[dict[str, Any]]) -> str:
    rows = []
    for s in sizes:
        label = f"{s['clusters']:,} x {s['tenants']} ({s['files']:,} files)"
        for name in ("cold", "warm"):
            story = s[name]
            merged = story["merged"] or {}
            rows.append(
                [
                    f"{label} {name}",
                    story["calls"],
                    story["in_deliveries"] + story["as_app"],
                    story["deferred"],
                    merged.get("ms", float("nan")),
                    story["cpu_s"],
                    story["ack_while_working"]["max_ms"],
                ]
            )
    calls = common.table(
        [
            "fleet, bump",
            "API calls",
            "bump",
            "dashboard",
            "ms to merge",
            "CPU s",
            "max ack ms",
        ],
        rows,
    )
    memory = common.table(
        ["fleet", "dev files/bump", "seed s", "push calls", "peak RSS MB", "target MB"],
        [
            [
                f"{s['clusters']:,} x {s['tenants']}",
                s["dev_clusters"],
                s["seed_s"],
                s["push"]["calls"],
                s["peak_rss_mb"],
                RSS_TARGET_MB,
            ]
            for s in sizes
        ],
    )
    warm = [s["warm"]["in_deliveries"] + s["warm"]["as_app"] for s in sizes]
    board = [s["warm"]["deferred"] for s in sizes]
    if len(sizes) < 2:
        flat = "(give two sizes to see whether they grow)"
    else:
        flat = "flat: target met" if len(set(warm)) == 1 else "NOT flat"
    peak = max(s["peak_rss_mb"] for s in sizes)
    lines = [
        calls,
        "",
        memory,
        "",
        f"warm bump calls by size: {warm} {flat}; the dashboard refresh after it: {board}",
        f"peak RSS {peak:.0f} MB (target < {RSS_TARGET_MB:.0f} MB) "
        + ("met" if peak < RSS_TARGET_MB else "NOT MET")
        + ": this process, the service and a small driver; the fake GitHub runs in its own",
        "max ack ms: a signed delivery every 100 ms while the bump runs, from when it was due",
    ]
    switched_off = sorted({name for s in sizes for name in s["without"]})
    if switched_off:
        lines.append("ablation, switched off: " + ", ".join(switched_off))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fleet", description=__doc__)
    parser.add_argument("--clusters", type=int, nargs="+", default=[200, 2000])
    parser.add_argument("--tenants", type=int, default=50)
    parser.add_argument("--tree-limit", type=int, default=100_000)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per API request")
    parser.add_argument(
        "--without",
        action="append",
        default=[],
        choices=sorted(ABLATIONS),
        help="ablation: switch a part off to show what the rest costs (repeatable)",
    )
    parser.add_argument("--results", type=Path, default=None, help="directory for fleet.json")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    if args.child:
        (clusters,) = args.clusters
        result = asyncio.run(
            run_size(clusters, args.tenants, args.tree_limit, args.latency, args.without)
        )
        print(json.dumps(result))
        return 0
    sizes = [run_child(n, args) for n in args.clusters]
    print(report(sizes))
    for s in sizes:
        if s["failed_deliveries"]:
            print(f"failed deliveries at {s['clusters']} clusters: {s['failed_deliveries']}")
    path = common.write_results("fleet", {"sizes": sizes}, args.results)
    print(f"\nresults: {path}")
    return 1 if any(s["failed_deliveries"] for s in sizes) else 0


if __name__ == "__main__":
    sys.exit(main())
