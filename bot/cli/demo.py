"""``python -m bot demo``: the whole story on the built-in fake GitHub, no credentials needed.

The fake GitHub holds a fleet repo laid out as in the seed document; the real service runs
against it exactly as it would against GitHub (signed webhooks in, REST calls out), and every
chapter prints what the service did. Each story of the product adds its chapter here.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import logging
import secrets
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bot.cli.audit import run as run_audit
from bot.fake import ApiError, FakeGitHub, samples
from bot.service.app import STATE, create_app
from bot.settings import load_settings

ORG = "acme"
REPO = "acme-fleet-config"
FLEET = f"{ORG}/{REPO}"
APP = f"{ORG}/payment"  # the application repository (samples.seed)
PAY = "clusters/{}/tenants/payment-app/input.yaml"
DASHBOARD = "Promotion dashboard"


def say(text: str = "") -> None:
    print(text, flush=True)


@dataclass
class Demo:
    fake: FakeGitHub
    app: web.Application
    bot_url: str
    app_id: int
    secret: str

    async def settle(self) -> None:
        state = self.app[STATE]
        assert state.dispatcher is not None
        quiet = 0
        for _ in range(200):
            await self.fake.idle()
            await state.dispatcher.idle()
            await asyncio.sleep(0.01)
            before = len(self.fake.deliveries)
            await self.fake.idle()
            busy = state.dispatcher.in_flight or state.dispatcher.scheduled
            if not busy and len(self.fake.deliveries) == before:
                quiet += 1
                if quiet >= 2:
                    return
            else:
                quiet = 0

    def calls(self) -> int:
        return sum(
            1 for r in self.fake.requests if r.identity.startswith(("installation:", "app:"))
        )

    def pulls(self, prefix: str = "") -> list[Any]:
        prs = self.fake.repo(FLEET).prs.values()
        return sorted((p for p in prs if p.head_ref.startswith(prefix)), key=lambda p: p.number)

    def check(self, number: int, name: str) -> tuple[str, str]:
        pr = self.fake.repo(FLEET).prs[number]
        runs = [
            r
            for r in self.fake.check_runs(FLEET, pr.head_sha)
            if r.name == name and r.app.id == self.app_id
        ]
        if not runs:
            return "missing", ""
        run = max(runs, key=lambda r: r.id)
        state = run.conclusion if run.status == "completed" else "pending"
        return str(state), str(run.output.get("title", ""))

    def show_checks(self, number: int) -> None:
        marks = {"success": "✓", "failure": "✗", "pending": "…", "missing": "?"}
        for name in ("promotion/lineage", "promotion/approvals"):
            state, title = self.check(number, name)
            say(f"     {marks.get(state, state)} {name}: {state} — {title}")

    def bot_replies(self, number: int) -> list[str]:
        issue = self.fake.repo(FLEET).issues[number]
        return [c.body for c in issue.comments if c.user.login.endswith("[bot]")]

    def diff_lines(self, number: int) -> list[str]:
        repo = self.fake.repo(FLEET)
        out = []
        for f in self.fake.world.pull_files(repo, repo.prs[number]):
            out.append(f"     {f['filename']}")
            for line in str(f.get("patch", "")).splitlines():
                if line.startswith(("+", "-")) and not line.startswith(("+++", "---")):
                    out.append(f"       {line}")
        return out


async def _ch1_service(demo: Demo) -> None:
    say("1. The service: signed webhooks in, an authenticated GitHub App out")
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{demo.bot_url}/healthz") as resp:
            say(f"   GET /healthz -> {resp.status}")
        hook = f"{demo.bot_url}/api/github/webhooks"
        headers = {
            "X-GitHub-Event": "ping",
            "X-GitHub-Delivery": "demo-1",
            "Content-Type": "application/json",
        }
        async with session.post(hook, data=b'{"zen": "hi"}', headers=headers) as resp:
            say(f"   an unsigned delivery -> {resp.status} (nothing else happens)")
    say(
        f"   fleet repo {FLEET}: clusters {', '.join(samples.CLUSTERS)}; tenants payment-app"
        " (seed form), checkout (real Flux Operator form)"
    )


async def _ch2_bump(demo: Demo) -> int:
    say("\n2. A published image lands in dev")
    image = f"{samples.PAYMENT_IMAGE}:v2.2.0"
    built = demo.fake.commit(APP, "main", {"src/pay.py": b"v2.2\n"}, "Pay in euros", "alice")
    say(f"   CI announces {image}, built from {APP}@{built[:7]} (repository_dispatch)")
    before = demo.calls()
    demo.fake.dispatch(
        FLEET,
        "image-published",
        {"image": samples.PAYMENT_IMAGE, "tag": "v2.2.0", "source": APP, "revision": built},
        by="ci-bot",
    )
    await demo.settle()
    (pr,) = demo.pulls("fleet-bot/bump/")
    say(f'   -> #{pr.number} "{pr.title}" opened by {pr.user.login}, changing only the tag:')
    for line in demo.diff_lines(pr.number):
        say(line)
    demo.show_checks(pr.number)
    state = "merged" if pr.merged else pr.state
    say(
        f"   -> {state} by {pr.merged_by.login if pr.merged_by else '-'}; "
        f"{demo.calls() - before} GitHub API calls in all"
    )
    return int(pr.number)


async def _ch3_gate(demo: Demo) -> None:
    say("\n3. The gate: prod changes need lineage and approvals")
    prod = PAY.format("prod-use1-01")
    current = demo.fake.file(FLEET, "main", prod)
    assert current is not None
    bad = current.replace(b"payment:v1.9.0", b"payment:v9.9.9")
    demo.fake.create_branch(FLEET, "prod-v9.9.9", by="alice")
    demo.fake.commit(FLEET, "prod-v9.9.9", {prod: bad}, "prod: v9.9.9", author="alice")
    wrong = demo.fake.open_pr(FLEET, "prod-v9.9.9", title="prod: payment v9.9.9", author="alice")
    await demo.settle()
    say(f"   alice opens #{wrong}: prod payment-app -> v9.9.9 (staging never ran it)")
    demo.show_checks(wrong)
    try:
        demo.fake.merge_pr(FLEET, wrong, by="bob", method="squash", admin=False)
    except ApiError as exc:
        say(f"   bob tries to merge #{wrong}: GitHub refuses ({exc.status}: {exc.message})")
    demo.fake.close_pr(FLEET, wrong, by="alice")
    good = current.replace(b"payment:v1.9.0", b"payment:v2.0.0")
    demo.fake.create_branch(FLEET, "prod-v2.0.0", by="alice")
    demo.fake.commit(FLEET, "prod-v2.0.0", {prod: good}, "prod: v2.0.0", author="alice")
    right = demo.fake.open_pr(FLEET, "prod-v2.0.0", title="prod: payment v2.0.0", author="alice")
    await demo.settle()
    say(f"   alice opens #{right}: prod payment-app -> v2.0.0 (what staging runs)")
    demo.show_checks(right)
    for who in ("bob", "dana", "carol"):
        demo.fake.review(FLEET, right, who, "APPROVE")
        await demo.settle()
        role = samples.PEOPLE[who]
        say(f"   {who} ({role}) approves:")
        demo.show_checks(right)
    demo.fake.merge_pr(FLEET, right, by="bob", method="squash", admin=False)
    await demo.settle()
    say(f"   bob merges #{right}: prod runs v2.0.0")


async def _ch4_promote(demo: Demo, bump: int) -> None:
    say("\n4. /promote: promotion PRs on request")
    demo.fake.comment(FLEET, bump, "alice", "Works in dev.\n/promote staging")
    await demo.settle()
    say(f'   alice comments "/promote staging" on the merged bump #{bump}')
    say(f"   bot replies: {demo.bot_replies(bump)[-1].splitlines()[0]}")
    (staging,) = demo.pulls("fleet-bot/promote/staging/")
    teams = ", ".join(f"@{ORG}/{t.slug}" for t in staging.requested_teams)
    say(f'   -> #{staging.number} "{staging.title}", review requested from {teams}')
    for line in demo.diff_lines(staging.number):
        say(line)
    demo.fake.review(FLEET, staging.number, "bob", "APPROVE")
    await demo.settle()
    say("   bob (SRE) approves:")
    demo.show_checks(staging.number)
    demo.fake.merge_pr(FLEET, staging.number, by="bob", method="squash", admin=False)
    await demo.settle()
    say(f"   bob merges #{staging.number}: staging runs v2.2.0")
    issue = demo.fake.create_issue(FLEET, "Release payment v2.2.0", "", author="carol")
    demo.fake.comment(FLEET, issue, "carol", "/promote prod payment-app")
    await demo.settle()
    (prod,) = demo.pulls("fleet-bot/promote/prod/")
    say(f'   carol asks "/promote prod payment-app" on issue #{issue} -> #{prod.number}')
    demo.fake.review(FLEET, prod.number, "carol", "APPROVE")
    await demo.settle()
    say("   carol (SRE, but she asked for it) approves:")
    demo.show_checks(prod.number)
    for who in ("bob", "frank", "erin"):
        demo.fake.review(FLEET, prod.number, who, "APPROVE")
    await demo.settle()
    say("   bob, frank (SRE) and erin (tech lead) approve:")
    demo.show_checks(prod.number)
    demo.fake.merge_pr(FLEET, prod.number, by="erin", method="squash", admin=False)
    await demo.settle()
    say(f"   erin merges #{prod.number}: prod runs v2.2.0")


async def _ch_audit(demo: Demo) -> None:
    say("\n5. The audit: every change that reached prod, judged again as of its merge")
    app = demo.fake.world.state.apps[demo.app_id]
    env = {"APP_ID": str(app.id), "PRIVATE_KEY": app.private_key_pem}
    args = argparse.Namespace(repo=FLEET, env="prod", since=None, until=None, format="md")
    out = io.StringIO()
    before = len(demo.fake.requests)
    code = await run_audit(
        args, env={**env, "GITHUB_API_URL": demo.fake.api_url}, out=out, err=io.StringIO()
    )
    calls = demo.fake.requests[before:]
    writes = [r for r in calls if r.method != "GET" and not r.path.endswith("/access_tokens")]
    say(
        f"   $ python -m bot audit {FLEET} --env prod   "
        f"(exit {code}; {len(calls)} API calls, {len(writes)} writes)"
    )
    for line in out.getvalue().splitlines():
        say(f"   | {line}" if line else "   |")


async def _ch_dashboard(demo: Demo) -> None:
    say("\n6. The promotion dashboard: what runs where, what waits")
    repo = demo.fake.repo(FLEET)
    boards = [i for n, i in repo.issues.items() if n not in repo.prs and i.title == DASHBOARD]
    if not boards:
        say("   (no dashboard issue yet)")
        return
    board = boards[0]
    say(f'   issue #{board.number} "{board.title}", kept current by {board.user.login}:')
    body = board.body or ""
    table = [ln for ln in body.splitlines() if ln.startswith("|")]
    for line in table[:6]:
        say(f"   {line}")
    waiting = [ln for ln in body.splitlines() if ln.startswith("- **")]
    for line in waiting[:4]:
        say(f"   {line}")
    demo.fake.comment(FLEET, board.number, "erin", "/status checkout")
    await demo.settle()
    reply = demo.bot_replies(board.number)[-1]
    say('   erin comments "/status checkout"; the bot replies:')
    for line in reply.splitlines()[2:5]:
        say(f"   {line}")


async def _ch_blueprints(demo: Demo) -> None:
    say("\n7. A blueprint release travels like an image")
    demo.fake.create_release(
        f"{ORG}/platform-blueprints",
        tag="v1.3.0",
        body="Sidecar injection for every app.",
        by="bob",
    )
    await demo.settle()
    (bump,) = demo.pulls("fleet-bot/bump/source-")
    say(f"   bob publishes release v1.3.0 of {ORG}/platform-blueprints")
    say(f'   -> #{bump.number} "{bump.title}", changing only the tag:')
    for line in demo.diff_lines(bump.number):
        say(line)
    say(f"   -> {'merged' if bump.merged else bump.state} by the bot")
    demo.fake.comment(FLEET, bump.number, "alice", "/promote staging")
    await demo.settle()
    promo = demo.pulls("fleet-bot/promote/staging/")[-1]
    say(f'   alice: "/promote staging" on #{bump.number} -> #{promo.number} "{promo.title}"')
    demo.show_checks(promo.number)
    demo.fake.review(FLEET, promo.number, "frank", "APPROVE")
    await demo.settle()
    demo.fake.merge_pr(FLEET, promo.number, by="frank", method="squash", admin=False)
    await demo.settle()
    say(f"   frank (SRE) approves and merges #{promo.number}: staging follows blueprints v1.3.0")


async def _ch_app_changes(demo: Demo) -> None:
    say("\n8. What a promotion brings: the application's commits")
    titles = ["Refund API (#41)", "Retry card declines", "Upgrade the HTTP client (#43)"]
    for i, title in enumerate(titles):
        who = ("alice", "bob", "alice")[i]
        built = demo.fake.commit(APP, "main", {f"src/change{i}.py": b"x\n"}, title, who)
    say(f"   {len(titles)} commits land in {APP}; CI announces v2.3.0 built from {built[:7]}")
    demo.fake.dispatch(
        FLEET,
        "image-published",
        {"image": samples.PAYMENT_IMAGE, "tag": "v2.3.0", "source": APP, "revision": built},
        by="ci-bot",
    )
    await demo.settle()
    bump = demo.pulls("fleet-bot/bump/registry")[-1]
    demo.fake.comment(FLEET, bump.number, "alice", "/promote staging")
    await demo.settle()
    promo = demo.pulls("fleet-bot/promote/staging/")[-1]
    say(f'   alice: "/promote staging" on #{bump.number} -> #{promo.number}; its body says:')
    section = (promo.body or "").split("### Application changes", 1)[-1]
    for line in section.strip().splitlines():
        if line.startswith(("####", "| [", "3 commits")):
            say(f"     {line}")


Chapter = Callable[[Demo], Awaitable[None]]


async def run(verbose: bool = False) -> int:
    if verbose:
        logging.basicConfig(level=logging.INFO, format="   | %(name)s: %(message)s")
    else:
        logging.basicConfig(level=logging.CRITICAL)
    started = time.monotonic()
    say("Fleet promotion bot: the whole story on a built-in fake GitHub\n")
    fake = FakeGitHub()
    await fake.start()
    secret = secrets.token_hex(16)
    app_info = samples.seed(fake, org=ORG, repo=REPO, secret=secret)
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(
            {
                "APP_ID": str(app_info.id),
                "PRIVATE_KEY": app_info.private_key_pem,
                "WEBHOOK_SECRET": secret,
                "GITHUB_API_URL": fake.api_url,
                "DATA_DIR": str(Path(tmp) / "data"),
                "RESYNC_INTERVAL": "0",
                "DASHBOARD_DEBOUNCE": "0.05",
            }
        )
        app = create_app(settings)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        bot_url = f"http://127.0.0.1:{port}"
        fake.set_webhook_url(app_info, f"{bot_url}{settings.webhook_path}")
        # Branch protection as the README recommends: both checks required on main.
        fake.set_required_checks(FLEET, "main", ["promotion/lineage", "promotion/approvals"])
        demo = Demo(fake, app, bot_url, app_info.id, secret)
        say(f"fake GitHub: {fake.api_url}   service: {bot_url}\n")
        try:
            await _ch1_service(demo)
            bump = await _ch2_bump(demo)
            await _ch3_gate(demo)
            await _ch4_promote(demo, bump)
            await _ch_audit(demo)
            await _ch_dashboard(demo)
            await _ch_blueprints(demo)
            await _ch_app_changes(demo)
            state = app[STATE]
            assert state.inbox is not None
            counts = state.inbox.counts()
            say(
                f"\nDone in {time.monotonic() - started:.1f}s: "
                f"{sum(counts.values())} deliveries ({counts.get('done', 0)} done, "
                f"{counts.get('failed', 0)} failed), {demo.calls()} GitHub API calls."
            )
            return 0 if not counts.get("failed") else 1
        finally:
            await runner.cleanup()
            await fake.stop()


def main(verbose: bool = False) -> int:
    return asyncio.run(run(verbose))
