"""End to end with a real round trip: API calls per story and the critical path in round trips.

The fake GitHub answers every API request after an injected delay (default 50 ms, like a real
round trip), in this process, with the service (``create_app``) on an ephemeral port. Stories:

- bump: image published (``repository_dispatch``) -> bump PR opened -> merged; cold (a fresh
  service), warm (right after), and after a push (someone changed an unrelated file on the
  default branch and the bot has not read that commit yet, as when the bump comes within the
  dashboard's debounce of the push: the bump reads the new tree as a comparison);
- review: a review submitted on a prod PR -> its ``promotion/approvals`` check updated.

Cold is a fresh service (new app instance: empty caches, no installation token); warm is the
same story again once the first one finished. The critical path is the longest chain of calls
whose time intervals do not overlap (each waited for the one before), from the event to the
milestone. Targets (warm): a bump opens its PR within 8 round trips and makes at most 10 + 1
per changed file calls; a review updates the check in at most 4 calls; after a push, the PR
opens after 6 round trips (ref -> comparison -> tree -> commit -> branch -> PR; the open PRs are
read beside the first two).

    python -m bench.e2e
    python -m bench.e2e --latency 0.01 --dev-clusters 3
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import common
from bench.common import Call, LocalBot, Story
from bot.fake import FakeGitHub, samples

BUMP_ROUND_TRIPS = 8
BUMP_AFTER_PUSH_ROUND_TRIPS = 6
BUMP_CALLS_BASE = 10
REVIEW_CALLS = 4
PROD_PAY = "clusters/prod-use1-01/tenants/payment-app/input.yaml"
DEV_PAY = "clusters/dev-use1-01/tenants/payment-app/input.yaml"


def calls_of(fake: FakeGitHub, since: float) -> list[Call]:
    rows = [
        Call(r.method, r.path, r.query, r.status, r.identity, r.started, r.duration)
        for r in fake.requests
    ]
    return common.bot_calls(rows, since=since)


async def story(
    fake: FakeGitHub, bot: LocalBot, act: Callable[[], object], milestones: dict[str, Any]
) -> dict[str, Any]:
    """Do ``act`` (the event), wait until everything settled, and measure. ``milestones``
    maps a name to (method, path regex, status) of the call that marks it, or to a callable
    choosing that call from the story's calls."""

    async def deliveries() -> int:
        await fake.idle()
        return len(fake.deliveries)

    started = time.time()
    act()
    await bot.settle(deliveries)
    settled = time.time() - started
    calls = calls_of(fake, started)
    marks: dict[str, Call | None] = {}
    for name, how in milestones.items():
        marks[name] = how(calls) if callable(how) else common.first_call(calls, *how)
    figures = Story(calls, started, bot.handled(started)).figures(marks)
    figures["settled_ms"] = settled * 1000
    return figures


def last_check_write(calls: list[Call]) -> Call | None:
    """The last write to a check run: what a review's work ends with."""
    writes = [c for c in calls if c.method in ("POST", "PATCH") and "/check-runs" in c.path]
    return max(writes, key=lambda c: c.end) if writes else None


async def run(latency: float, dev_clusters: int) -> dict[str, Any]:
    fake = FakeGitHub()
    await fake.start()
    try:
        return await _stories(fake, latency, dev_clusters)
    finally:
        await fake.stop()


async def _stories(fake: FakeGitHub, latency: float, dev_clusters: int) -> dict[str, Any]:
    app = samples.seed(fake, org=common.ORG, repo="fleet", secret=common.SECRET)
    repo = common.FLEET_REPO
    # More dev clusters: the same tenant input elsewhere, so a bump changes more files.
    extra = {
        DEV_PAY.replace("dev-use1-01", f"dev-use1-{n:02d}"): samples.fleet_files()[DEV_PAY]
        for n in range(2, dev_clusters + 1)
    }
    if extra:
        fake.commit(repo, "main", extra, "more dev clusters", author="alice")
    # Branch protection as the README recommends: the gate's checks required on main.
    fake.set_required_checks(repo, "main", ["promotion/lineage", "promotion/approvals"])
    fake.latency = latency
    bump_marks = {
        "pr_opened": ("POST", r"/pulls$", 201),
        "merged": ("PUT", r"/pulls/\d+/merge$", 200),
    }

    def publish(tag: str) -> Callable[[], object]:
        image = {"image": samples.PAYMENT_IMAGE, "tag": tag}
        return lambda: fake.dispatch(repo, "image-published", image, by="ci-bot")

    bot = await LocalBot.start(fake.api_url, app.id, app.private_key_pem)
    fake.set_webhook_url(app, bot.webhook_url)
    failed: list[str] = []
    try:
        cold_bump = await story(fake, bot, publish("v2.2.0"), bump_marks)
        warm_bump = await story(fake, bot, publish("v2.3.0"), bump_marks)
        _unseen_push(fake, app)
        pushed_bump = await story(fake, bot, publish("v2.4.0"), bump_marks)
        number = await _prod_pr(fake, bot)
        failed += bot.failed_deliveries()
    finally:
        await bot.stop()
    # A fresh service for the cold review: new app instance, empty caches.
    bot = await LocalBot.start(fake.api_url, app.id, app.private_key_pem)
    fake.set_webhook_url(app, bot.webhook_url)
    review_marks = {"check_updated": last_check_write}

    def review(login: str) -> Callable[[], object]:
        return lambda: fake.review(repo, number, login, "APPROVE")

    try:
        cold_review = await story(fake, bot, review("bob"), review_marks)
        warm_review = await story(fake, bot, review("carol"), review_marks)
        failed += bot.failed_deliveries()
    finally:
        await bot.stop()
    return {
        "latency_s": latency,
        "dev_clusters": dev_clusters,
        "changed_files": dev_clusters,
        "bump": {"cold": cold_bump, "warm": warm_bump, "after a push": pushed_bump},
        "review": {"cold": cold_review, "warm": warm_review},
        "failed_deliveries": failed,
    }


def _unseen_push(fake: FakeGitHub, app: Any) -> None:
    """Someone changes prod's replicas on the default branch: the head moves, no image does.
    Its push is not delivered, so the bot has not read the new head when the bump comes."""
    repo = common.FLEET_REPO
    current = fake.file(repo, "main", PROD_PAY)
    assert current is not None
    url = app.webhook_url
    fake.set_webhook_url(app, None)
    fake.commit(
        repo, "main", {PROD_PAY: current.replace(b"replicas: 4", b"replicas: 5")}, "prod: 5"
    )
    fake.set_webhook_url(app, url)


async def _prod_pr(fake: FakeGitHub, bot: LocalBot) -> int:
    """alice asks for prod to run what staging runs: lineage passes, 2 SRE + 1 TL needed."""
    repo = common.FLEET_REPO
    current = fake.file(repo, "main", PROD_PAY)
    assert current is not None
    fake.create_branch(repo, "prod-v2.0.0", by="alice")
    changed = current.replace(b"payment:v1.9.0", b"payment:v2.0.0")
    fake.commit(repo, "prod-v2.0.0", {PROD_PAY: changed}, "prod: payment v2.0.0", author="alice")
    number = fake.open_pr(repo, "prod-v2.0.0", title="prod: payment v2.0.0", author="alice")

    async def deliveries() -> int:
        await fake.idle()
        return len(fake.deliveries)

    await bot.settle(deliveries)
    return number


def report(result: dict[str, Any]) -> str:
    files = result["changed_files"]
    bump_target = BUMP_CALLS_BASE + files
    rows = []
    for cache in ("cold", "warm", "after a push"):
        s = result["bump"][cache]
        opened, merged = s["pr_opened"] or {}, s["merged"] or {}
        rows.append(
            [
                f"bump, {cache}",
                s["in_deliveries"] + s["as_app"],
                s["deferred"],
                opened.get("round_trips", "-"),
                merged.get("round_trips", "-"),
                opened.get("ms", float("nan")),
                merged.get("ms", float("nan")),
            ]
        )
    for cache in ("cold", "warm"):
        s = result["review"][cache]
        updated = s["check_updated"] or {}
        rows.append(
            [
                f"review, {cache}",
                s["in_deliveries"] + s["as_app"],
                s["deferred"],
                updated.get("round_trips", "-"),
                "",
                updated.get("ms", float("nan")),
                "",
            ]
        )
    text = common.table(
        ["story", "calls", "+dashboard", "RT to PR/check", "RT to merge", "ms to PR/check", "ms"],
        rows,
    )
    warm_bump = result["bump"]["warm"]
    warm_review = result["review"]["warm"]
    bump_calls = warm_bump["in_deliveries"] + warm_bump["as_app"]
    bump_rt = (warm_bump["pr_opened"] or {}).get("round_trips")
    pushed_rt = (result["bump"]["after a push"]["pr_opened"] or {}).get("round_trips")
    review_calls = warm_review["in_deliveries"] + warm_review["as_app"]
    lines = [
        text,
        "",
        f"{result['latency_s'] * 1000:.0f} ms per API request; {files} changed file(s) per bump",
        _verdict("warm bump calls", bump_calls, bump_target),
        _verdict("warm bump round trips to PR", bump_rt, BUMP_ROUND_TRIPS),
        _verdict("bump after a push, round trips to PR", pushed_rt, BUMP_AFTER_PUSH_ROUND_TRIPS),
        _verdict("warm review calls", review_calls, REVIEW_CALLS),
        f"the merge's dashboard refresh adds {warm_bump['deferred']} call(s) to a warm bump"
        " (debounced; shown apart)",
    ]
    return "\n".join(lines)


def _verdict(name: str, value: int | None, target: int) -> str:
    ok = value is not None and value <= target
    return f"{name}: {value} (target <= {target}) {'met' if ok else 'NOT MET'}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.e2e", description=__doc__)
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per API request")
    parser.add_argument("--dev-clusters", type=int, default=1, help="dev clusters bumped at once")
    parser.add_argument("--results", type=Path, default=None, help="directory for e2e.json")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    result = asyncio.run(run(args.latency, args.dev_clusters))
    print(report(result))
    if result["failed_deliveries"]:
        print(f"failed deliveries: {result['failed_deliveries']}")
    print(f"\nresults: {common.write_results('e2e', result, args.results)}")
    return 1 if result["failed_deliveries"] else 0


if __name__ == "__main__":
    sys.exit(main())
