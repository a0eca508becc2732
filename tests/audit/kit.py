"""Helpers for audit tests: a story on the fake GitHub, and the audit run in-process."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import Any

from bot.__main__ import build_parser
from bot.cli.audit import run
from tests.e2e.gatekit import PROD, land, open_change, path, with_image
from tests.harness import FLEET, Harness

IMG = "registry.acme.com/payment"
GATE = ["promotion/lineage", "promotion/approvals"]
#: A title that needs RFC 4180 quoting (comma, double quotes) and Markdown escaping.
FORCED_TITLE = 'prod v9.9.9, "urgent" *now*'


@dataclass(frozen=True)
class Story:
    gated: int  # a promotion merged with both checks green (squash)
    forced: int  # merged by an admin past a failing lineage check (merge commit)
    pushed: str  # a commit pushed straight to main


@dataclass(frozen=True)
class Outcome:
    code: int
    out: str
    err: str

    def json(self) -> list[dict[str, Any]]:
        data = json.loads(self.out)
        assert isinstance(data, list)
        return data


def app_env(h: Harness) -> dict[str, str]:
    """What an operator sets to audit as the GitHub App (no webhook secret needed)."""
    app = h.fake.world.state.apps[h.app_id]
    return {
        "APP_ID": str(h.app_id),
        "PRIVATE_KEY": app.private_key_pem,
        "GITHUB_API_URL": h.fake.api_url,
    }


def token_env(h: Harness, login: str) -> dict[str, str]:
    """What an auditor with a personal access token sets."""
    user = h.fake.world.state.users[login]
    return {"GITHUB_TOKEN": user.token, "GITHUB_API_URL": h.fake.api_url}


async def audit(h: Harness, *argv: str, env: dict[str, str] | None = None) -> Outcome:
    """``python -m bot audit acme/fleet ARGV...`` in-process, as the CLI parses it."""
    args = build_parser().parse_args(["audit", FLEET, *argv])
    out, err = io.StringIO(), io.StringIO()
    code = await run(args, env=env if env is not None else app_env(h), out=out, err=err)
    return Outcome(code, out.getvalue(), err.getvalue())


async def gated_promotion(h: Harness, tag: str, branch: str, method: str = "squash") -> int:
    """A prod PR to an image staging ran, approved by 2 SREs and a tech lead (and by rita, who
    is in neither team), merged green."""
    number = open_change(
        h, branch, {path(PROD): with_image(h, PROD, f"{IMG}:{tag}")}, title=f"prod {tag}"
    )
    await h.settle()
    for who in ("rita", "bob", "carol", "erin"):
        h.fake.review(FLEET, number, who, "APPROVE")
    await h.settle()
    h.fake.merge_pr(FLEET, number, by="bob", method=method, admin=False)
    await h.settle()
    return number


async def tell_story(h: Harness) -> Story:
    """A gated promotion, an admin override past a failing check, a direct push to prod."""
    h.fake.set_required_checks(FLEET, "main", GATE)
    gated = await gated_promotion(h, "v2.0.0", "prod-v2.0.0")
    forced = open_change(
        h, "prod-v9.9.9", {path(PROD): with_image(h, PROD, f"{IMG}:v9.9.9")}, title=FORCED_TITLE
    )
    await h.settle()
    h.fake.merge_pr(FLEET, forced, by="bob", method="merge", admin=True)
    await h.settle()
    pushed = land(h.fake, {path(PROD): with_image(h, PROD, f"{IMG}:v2.0.0")}, "hotfix: back")
    await h.settle()
    return Story(gated, forced, pushed)


def by_label(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["label"]: r for r in records}
