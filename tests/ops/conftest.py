"""Fixtures for the operations suite: the app registered with exactly ``app.yml``'s events and
permissions, so that every end-to-end test here also proves the manifest asks for enough."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bot.fake import FakeGitHub, samples
from bot.fake.state import App
from bot.service.setup import load_manifest
from tests.harness import FLEET, ORG, SECRET

REPO_ROOT = Path(__file__).resolve().parents[2]
APP_YML = REPO_ROOT / "app.yml"


def manifest() -> dict[str, Any]:
    return load_manifest(APP_YML)


def seed_with_manifest(fake: FakeGitHub, webhook_url: str | None = None) -> App:
    """The sample org, people, teams and fleet repo, with the app holding exactly app.yml's
    events and permissions (the fake enforces both), installed on the org."""
    app: App = samples.seed(fake, org=ORG, repo="fleet", secret=SECRET)
    m = manifest()
    app.events = list(m["default_events"])
    app.permissions = dict(m["default_permissions"])
    if webhook_url is not None:
        fake.set_webhook_url(app, webhook_url)
    return app


STAGING_INPUT = "clusters/staging-use1-01/tenants/payment-app/input.yaml"


def open_staging_promotion(fake: FakeGitHub, branch: str = "promote-staging") -> int:
    """A person's PR promoting dev's payment image to staging (lineage holds, approvals due)."""
    fake.create_branch(FLEET, branch, by="alice")
    fake.commit(
        FLEET,
        branch,
        {STAGING_INPUT: samples.payment_input("staging", "v2.1.0-rc1", 2, "INFO")},
        message="Promote payment v2.1.0-rc1 to staging",
        author="alice",
    )
    return fake.open_pr(FLEET, branch, title="Promote payment to staging", author="alice")


#: What the gate concludes on that PR: lineage holds, approvals still due (no conclusion yet).
GATED = {"promotion/lineage": "success", "promotion/approvals": None}


def gate_checks(fake: FakeGitHub, number: int) -> dict[str, str | None]:
    """The promotion gate's check runs on the PR's head: name -> conclusion (None: running)."""
    head = fake.pr(FLEET, number)["head"]["sha"]
    runs = {run.name: run.conclusion for run in fake.check_runs(FLEET, head)}
    return {name: conclusion for name, conclusion in runs.items() if name in GATED}
