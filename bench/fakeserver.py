"""The fake GitHub in its own process, seeded for a benchmark and driven over a control API.

``bench.ack`` and ``bench.fleet`` run the fake here so that its work (and, for the fleet, its
memory: it holds every git object of a 200,000-file repo) is not counted as the bot's. When the
fake is listening it prints one JSON line: ``api_url``, ``control_url``, ``app_id``,
``private_key`` (of the fake's throwaway app), ``repo``. SIGTERM stops it.

Control API (JSON over HTTP on ``control_url``)::

    POST /webhook   {"url"}                                  deliveries go to the service
    POST /latency   {"seconds"}                              delay per API request
    POST /dispatch  {"repo", "event_type", "client_payload", "by"}
    POST /commit    {"repo", "branch", "changes": {path: text | null}, "message", "author"}
    GET  /idle                                   -> {"deliveries": n} once all are delivered
    GET  /requests?since=i                       -> {"total": n, "calls": [[...], ...]}
    GET  /pulls?repo=&prefix=                    -> [{"number", "head_ref", "state", "merged"}]
    GET  /payload?event=                         -> the newest delivery payload of that event
    POST /archive   {"repo"}                     the head's archive built (and kept) now
    GET  /issues?repo=                           -> [{"number", "title", "body"}] open issues
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from typing import Any

from aiohttp import web

from bench import common
from bot.fake import FakeGitHub, samples
from bot.fake.state import App, PullRequest


def seed_people(fake: FakeGitHub) -> App:
    """The sample org's people and teams, and the bot's app (not installed yet)."""
    app = fake.create_app("fleet-bot", name="Fleet Bot", webhook_secret=common.SECRET)
    fake.create_org(common.ORG)
    for login in samples.PEOPLE:
        fake.create_user(login, name=login.title(), email=f"{login}@{common.ORG}.test")
    for team, members in samples.TEAMS.items():
        fake.create_team(common.ORG, team, members=list(members))
    return app


def seed_fleet(fake: FakeGitHub, clusters: int, tenants: int) -> App:
    """A generated fleet repo (clusters x tenants) and a service repo, the app on the org."""
    app = seed_people(fake)
    name = common.FLEET_REPO.split("/", 1)[1]
    fake.create_repo(
        common.ORG, name, files=common.generated_fleet(clusters, tenants), author="alice"
    )
    for login in samples.PEOPLE:
        fake.set_collaborator(common.FLEET_REPO, login, "read" if login == "rita" else "write")
    fake.install(app, common.ORG, "all")
    return app


def seed_ack(fake: FakeGitHub) -> App:
    """The sample fleet plus a pull request on a repo that is no fleet repo: its
    ``pull_request.opened`` payload is what ``bench.ack`` sends (handled, cheap, stored)."""
    app = samples.seed(fake, org=common.ORG, repo="fleet", secret=common.SECRET)
    assert isinstance(app, App)
    fake.create_branch(f"{common.ORG}/payment", "feature", by="alice")
    fake.commit(
        f"{common.ORG}/payment", "feature", {"app.py": b"print('hi')\n"}, "feature", "alice"
    )
    fake.open_pr(f"{common.ORG}/payment", "feature", title="A feature", author="alice")
    return app


class Control:
    """The control API's handlers over one started fake."""

    def __init__(self, fake: FakeGitHub, app: App) -> None:
        self.fake = fake
        self.app = app

    def build(self) -> web.Application:
        web_app = web.Application(client_max_size=256 * 1024 * 1024)
        web_app.router.add_post("/webhook", self.webhook)
        web_app.router.add_post("/latency", self.latency)
        web_app.router.add_post("/dispatch", self.dispatch)
        web_app.router.add_post("/commit", self.commit)
        web_app.router.add_get("/idle", self.idle)
        web_app.router.add_get("/requests", self.requests)
        web_app.router.add_get("/pulls", self.pulls)
        web_app.router.add_get("/payload", self.payload)
        web_app.router.add_post("/archive", self.archive)
        web_app.router.add_get("/issues", self.issues)
        return web_app

    async def webhook(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.fake.set_webhook_url(self.app, body["url"])
        return web.json_response({})

    async def latency(self, request: web.Request) -> web.Response:
        self.fake.latency = float((await request.json())["seconds"])
        return web.json_response({})

    async def dispatch(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.fake.dispatch(
            body["repo"], body["event_type"], body.get("client_payload"), by=body.get("by")
        )
        return web.json_response({})

    async def commit(self, request: web.Request) -> web.Response:
        body = await request.json()
        changes = {
            path: None if text is None else str(text).encode()
            for path, text in body["changes"].items()
        }
        sha = self.fake.commit(
            body["repo"], body["branch"], changes, body.get("message", "Update"), body.get("author")
        )
        return web.json_response({"sha": sha})

    async def idle(self, request: web.Request) -> web.Response:
        await self.fake.idle()
        return web.json_response({"deliveries": len(self.fake.deliveries)})

    async def requests(self, request: web.Request) -> web.Response:
        since = int(request.query.get("since", "0"))
        recorded = self.fake.requests
        rows = [
            [r.method, r.path, r.query, r.status, r.identity, r.started, r.duration]
            for r in recorded[since:]
        ]
        return web.json_response({"total": len(recorded), "calls": rows})

    async def pulls(self, request: web.Request) -> web.Response:
        repo = self.fake.repo(request.query.get("repo", common.FLEET_REPO))
        prefix = request.query.get("prefix", "")
        out = [
            {"number": p.number, "head_ref": p.head_ref, "state": p.state, "merged": p.merged}
            for p in sorted(repo.prs.values(), key=lambda p: p.number)
            if p.head_ref.startswith(prefix)
        ]
        return web.json_response(out)

    async def archive(self, request: web.Request) -> web.Response:
        """Build the archive of the repo's head now: the fake makes archives in Python, far
        slower than GitHub's codeload; a benchmark asks for it before the story it measures."""
        body = await request.json()
        data = await self.fake.archive(body["repo"])
        return web.json_response({"bytes": len(data)})

    async def issues(self, request: web.Request) -> web.Response:
        repo = self.fake.repo(request.query.get("repo", common.FLEET_REPO))
        out = [
            {"number": i.number, "title": i.title, "body": i.body}
            for i in sorted(repo.issues.values(), key=lambda i: i.number)
            if i.state == "open" and not isinstance(i, PullRequest)
        ]
        return web.json_response(out)

    async def payload(self, request: web.Request) -> web.Response:
        event = request.query["event"]
        for delivery in reversed(self.fake.deliveries):
            if delivery.event == event:
                return web.json_response(delivery.payload)
        return web.json_response({"error": f"no {event} delivery"}, status=404)


async def serve(args: argparse.Namespace) -> None:
    fake = FakeGitHub()
    await fake.start()
    fake.tree_entry_limit = args.tree_limit
    if args.scenario == "fleet":
        app = seed_fleet(fake, args.clusters, args.tenants)
    else:
        app = seed_ack(fake)
    fake.latency = args.latency
    # GitHub allows an installation 5,000 calls an hour; a cold start on a big fleet needs more
    # (the benchmark reports how many), so the fake does not stop the run at the limit.
    fake.set_rate_limit(args.rate_limit)
    runner = web.AppRunner(Control(fake, app).build(), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = common.bound_port(site)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    ready: dict[str, Any] = {
        "api_url": fake.api_url,
        "control_url": f"http://127.0.0.1:{port}",
        "app_id": app.id,
        "private_key": app.private_key_pem,
        "repo": common.FLEET_REPO,
    }
    sys.stdout.write(json.dumps(ready) + "\n")
    sys.stdout.flush()
    await stop.wait()
    await runner.cleanup()
    await fake.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fakeserver", description=__doc__)
    parser.add_argument("--scenario", choices=("fleet", "ack"), default="fleet")
    parser.add_argument("--clusters", type=int, default=2000)
    parser.add_argument("--tenants", type=int, default=50)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per API request")
    parser.add_argument(
        "--tree-limit", type=int, default=100_000, help="entries before a tree is truncated"
    )
    parser.add_argument(
        "--rate-limit", type=int, default=10**9, help="API calls per hour per identity"
    )
    asyncio.run(serve(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
