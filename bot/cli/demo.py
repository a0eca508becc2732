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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bot.cli.audit import run as run_audit
from bot.fake import ApiError, FakeGitHub, samples
from bot.fake.queue import MUST_QUEUE
from bot.service.app import STATE, create_app
from bot.settings import load_settings

ORG = "acme"
REPO = "acme-fleet-config"
FLEET = f"{ORG}/{REPO}"
APP = f"{ORG}/payment"  # the application repository (samples.seed)
PAY = "clusters/{}/tenants/payment-app/input.yaml"
DASHBOARD = "Promotion dashboard"
LINEAGE, APPROVALS = "promotion/lineage", "promotion/approvals"
FLEET_CHECK, WINDOW = "promotion/fleet", "promotion/window"


MARKS = {"success": "✓", "failure": "✗", "pending": "…", "missing": "?"}


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

    def latest_run(self, sha: str, name: str) -> Any:
        """The bot's newest check run ``name`` on a commit (None when there is none)."""
        runs = [
            r
            for r in self.fake.check_runs(FLEET, sha)
            if r.name == name and r.app.id == self.app_id
        ]
        return max(runs, key=lambda r: r.id) if runs else None

    def check_on(self, sha: str, name: str) -> tuple[str, str]:
        run = self.latest_run(sha, name)
        if run is None:
            return "missing", ""
        state = run.conclusion if run.status == "completed" else "pending"
        return str(state), str(run.output.get("title", ""))

    def check(self, number: int, name: str) -> tuple[str, str]:
        return self.check_on(self.fake.repo(FLEET).prs[number].head_sha, name)

    def summary(self, number: int, name: str) -> str:
        run = self.latest_run(self.fake.repo(FLEET).prs[number].head_sha, name)
        return str(run.output.get("summary", "")) if run is not None else ""

    def show_checks(self, number: int, names: tuple[str, ...] = (LINEAGE, APPROVALS)) -> None:
        self.show_checks_on(self.fake.repo(FLEET).prs[number].head_sha, names)

    def show_checks_on(self, sha: str, names: tuple[str, ...]) -> None:
        for name in names:
            state, title = self.check_on(sha, name)
            say(f"     {MARKS.get(state, state)} {name}: {state} — {title}")

    def bot_replies(self, number: int) -> list[str]:
        issue = self.fake.repo(FLEET).issues[number]
        return [c.body for c in issue.comments if c.user.login.endswith("[bot]")]

    def dashboard(self) -> int:
        repo = self.fake.repo(FLEET)
        (board,) = [n for n, i in repo.issues.items() if n not in repo.prs and i.title == DASHBOARD]
        return int(board)

    async def read_the_checks(self, number: int) -> None:
        """People read a pull request's checks before they act on them: wait, if need be, for
        the second after the bot first judged its head (GitHub's times have whole seconds, and
        an override of that very second is refused: it may be older than the push)."""
        repo = self.fake.repo(FLEET)
        head = repo.prs[number].head_sha
        started = [r.started_at for r in repo.check_runs.values() if r.head_sha == head]
        first = min((t for t in started if t is not None), default=time.time())
        await asyncio.sleep(max(0.0, int(first) + 1 - time.time()))

    def freeze_issues(self) -> list[Any]:
        """The bot's emergency freezes that hold now (its open "Deploy freeze: ..." issues)."""
        return [
            i
            for n, i in self.fake.repo(FLEET).issues.items()
            if n not in self.fake.repo(FLEET).prs
            and i.title.startswith("Deploy freeze: ")
            and i.user.login.endswith("[bot]")
            and i.state == "open"
        ]

    def show_window(self, number: int) -> None:
        """Why promotion/window holds the PR and when it opens, from the check's summary."""
        for line in self.summary(number, WINDOW).splitlines():
            if line.startswith(("- 🕘", "- ❄️", "- **Opens next")):
                say(f"       {line[2:].replace('**', '')}")

    def calendar_row(self, environment: str) -> str:
        """The environment's row of the dashboard's deploy calendar."""
        body = self.fake.repo(FLEET).issues[self.dashboard()].body or ""
        section = body.partition("## Deploy calendar")[2]
        row = next(ln for ln in section.splitlines() if ln.startswith(f"| {environment} |"))
        return row

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


@dataclass
class CalendarClock:
    """The service's calendar clock (``Services.now``), set by the demo as the e2e tests set it:
    windows are judged at known moments whatever the machine's date, and nothing sleeps."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now


FRIDAY_EVENING = datetime(2026, 12, 4, 16, 0, tzinfo=UTC)  # 17:00 in Berlin
MONDAY_MORNING = datetime(2026, 12, 7, 8, 0, 10, tzinfo=UTC)  # 09:00 in Berlin
COMMANDERS = "incident-commanders"
CALENDAR = b"""\
    windows:                          # prod changes in office hours, Berlin time
      - days: [mon, tue, wed, thu]
        from: "09:00"
        until: "16:00"
        timezone: Europe/Berlin
    freezes:
      - from: 2026-12-20T00:00:00Z
        until: 2027-01-05T00:00:00Z
        reason: winter holidays
"""
OVERRIDES = b"""\
overrides:                            # who may /freeze, /unfreeze and /override
  team: incident-commanders
  count: 2                            # break-glass takes two of them
"""


async def _ch_calendar(demo: Demo) -> None:
    say("\n9. The change calendar: deploy windows, the emergency stop, break-glass")
    services = demo.app[STATE].services
    assert services is not None
    clock = CalendarClock(FRIDAY_EVENING)
    services.now = clock
    say("   the service's calendar clock reads Friday 2026-12-04 16:00 UTC (17:00 in Berlin)")
    demo.fake.create_team(ORG, COMMANDERS, members=["dana", "frank", "erin"])
    say(f"   the org sets up the team @{ORG}/{COMMANDERS}: dana, frank, erin")
    policy_path = ".github/promotion.yml"
    current = demo.fake.file(FLEET, "main", policy_path)
    assert current is not None
    prod_rule = b"{team: tech-leads, count: 1}]\n"
    assert current.count(prod_rule) == 1
    policy = current.replace(prod_rule, prod_rule + CALENDAR) + OVERRIDES
    demo.fake.create_branch(FLEET, "prod-calendar", by="dana")
    demo.fake.commit(
        FLEET, "prod-calendar", {policy_path: policy}, "prod: office hours only", author="dana"
    )
    change = demo.fake.open_pr(
        FLEET, "prod-calendar", title="Prod deploys in office hours", author="dana"
    )
    await demo.settle()
    say(f"   dana opens #{change}, a policy change (gated like every environment it governs):")
    for line in demo.diff_lines(change):
        say(line)
    for who in ("bob", "carol", "erin"):
        demo.fake.review(FLEET, change, who, "APPROVE")
    await demo.settle()
    demo.fake.merge_pr(FLEET, change, by="bob", method="squash", admin=False)
    await demo.settle()
    say(f"   bob, carol (SRE) and erin (tech lead) approve; bob merges #{change}")

    board = demo.dashboard()
    demo.fake.comment(FLEET, board, "erin", "/promote prod checkout")
    await demo.settle()
    (promo,) = [p for p in demo.pulls("fleet-bot/promote/prod/") if p.state == "open"]
    number = int(promo.number)
    say(f'   erin, as the dashboard #{board} suggests: "/promote prod checkout" -> #{number}')
    for who in ("bob", "carol", "dana"):
        demo.fake.review(FLEET, number, who, "APPROVE")
    await demo.settle()
    say("   bob, carol (SRE) and dana (tech lead) approve:")
    demo.show_checks(number, (LINEAGE, APPROVALS, WINDOW))
    demo.show_window(number)
    try:
        demo.fake.merge_pr(FLEET, number, by="bob", method="squash", admin=False)
    except ApiError as exc:
        say(f"   bob tries to merge #{number}: GitHub refuses ({exc.status}: {exc.message})")

    incident = demo.fake.create_issue(FLEET, "Incident 123: checkout drops carts", "", "carol")
    freeze = "/freeze prod incident 123"
    demo.fake.comment(FLEET, incident, "frank", f"Stop all prod changes.\n{freeze}")
    await demo.settle()
    (frozen,) = demo.freeze_issues()
    say(f'   incident 123 (#{incident}): frank (SRE, incident commander): "{freeze}"')
    say(f'   -> #{frozen.number} "{frozen.title}" opened by {frozen.user.login}; on #{number}:')
    demo.show_checks(number, (WINDOW,))
    say(f"     dashboard: {demo.calendar_row('prod')}")
    await demo.read_the_checks(number)
    demo.fake.comment(FLEET, number, "alice", "/override window the fix cannot wait")
    await demo.settle()
    say('   alice (developer): "/override window the fix cannot wait"; the bot replies:')
    say(f"     {demo.bot_replies(number)[-1].splitlines()[0]}")
    for who, reason in (
        ("dana", "checkout v3.3.0 fixes incident 123"),
        ("frank", "agreed, ship the fix"),
    ):
        demo.fake.comment(FLEET, number, who, f"/override window {reason}")
        await demo.settle()
        reply = demo.bot_replies(number)[-1].split(". ", 1)[0]
        say(f'   {who}: "/override window {reason}"; the bot: {reply}.')
    demo.show_checks(number, (WINDOW,))
    demo.fake.merge_pr(FLEET, number, by="bob", method="squash", admin=False)
    await demo.settle()
    say(f"   bob merges #{number}: prod runs checkout v3.3.0, frozen and after hours")
    demo.fake.comment(FLEET, incident, "frank", "Resolved.\n/unfreeze prod")
    await demo.settle()
    say(f'   frank: "/unfreeze prod" -> #{frozen.number} {frozen.state}; prod keeps its windows:')
    say(f"     dashboard: {demo.calendar_row('prod')}")

    source = "source:flux-system/platform-blueprints"
    demo.fake.comment(FLEET, incident, "carol", f"/promote prod {source}")
    await demo.settle()
    (waiting,) = [p for p in demo.pulls("fleet-bot/promote/prod/") if p.state == "open"]
    say(f'   carol: "/promote prod {source}" -> #{waiting.number}:')
    demo.show_checks(waiting.number, (WINDOW,))
    clock.now = MONDAY_MORNING
    services.wakeups.poke()  # the service's own calendar timer ticks now, not in 30 s
    await demo.settle()
    say("   the clock moves to Monday 08:00 UTC (09:00 in Berlin); no event, the timer alone:")
    demo.show_checks(waiting.number, (WINDOW,))


async def _ch_merge_queue(demo: Demo) -> None:
    say("\n10. A merge queue on main")
    required = [LINEAGE, APPROVALS, WINDOW]
    demo.fake.require_merge_queue(FLEET, "main", required_checks=required)
    say(f"   an admin's ruleset: main merges only through a queue, requiring {', '.join(required)}")
    before, requests, deliveries = demo.calls(), len(demo.fake.requests), len(demo.fake.deliveries)
    demo.fake.dispatch(
        FLEET, "image-published", {"image": samples.PAYMENT_IMAGE, "tag": "v2.4.0"}, by="ci-bot"
    )
    await demo.settle()
    bump = demo.pulls("fleet-bot/bump/registry")[-1]
    say(f'   CI announces {samples.PAYMENT_IMAGE}:v2.4.0 -> #{bump.number} "{bump.title}"')
    calls = demo.fake.requests[requests:]
    merge = f"/pulls/{bump.number}/merge"
    for r in calls:
        if r.method == "PUT" and r.path.endswith(merge) and r.status == 405:
            say(f'   the bot tries to merge #{bump.number}: GitHub answers 405 "{MUST_QUEUE}"')
        elif r.method == "POST" and r.path == "/graphql":
            say(f"   so the bot adds #{bump.number} to the queue (GraphQL enqueuePullRequest)")
    for d in demo.fake.deliveries[deliveries:]:
        if d.event == "merge_group" and d.action == "checks_requested":
            group = d.payload["merge_group"]
            branch = str(group["head_ref"]).removeprefix("refs/heads/")
            sha = str(group["head_sha"])
            say(f"   the queue builds commit {sha[:7]} on {branch[:-33]}…")
            say("   merge_group checks_requested; the bot checks the group's commit:")
            demo.show_checks_on(sha, (LINEAGE, APPROVALS, FLEET_CHECK, WINDOW))
        elif d.event == "merge_group":
            say(f"   merge_group {d.action} ({d.payload.get('reason')})")
    main = str(demo.fake.repo(FLEET).branch_sha("main"))
    state = "merged" if bump.merged else bump.state
    say(
        f"   -> #{bump.number} {state} by {bump.merged_by.login if bump.merged_by else '-'}: "
        f"main is the group's commit {main[:7]}; {demo.calls() - before} GitHub API calls in all"
    )


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
        # Branch protection as the README recommends: the gate's three checks required on main.
        fake.set_required_checks(FLEET, "main", [LINEAGE, APPROVALS, WINDOW])
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
            await _ch_calendar(demo)
            await _ch_merge_queue(demo)
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
