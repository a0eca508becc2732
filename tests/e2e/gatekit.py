"""Helpers for gate tests: open PRs as people, read the bot's latest check runs."""

from __future__ import annotations

from typing import Any

from bot.fake import FakeGitHub, samples
from tests.harness import FLEET, Harness

PAY = "clusters/{cluster}/tenants/payment-app/input.yaml"
SHOP = "clusters/{cluster}/tenants/checkout/input.yaml"
DEV, STAGING, PROD = "dev-use1-01", "staging-use1-01", "prod-use1-01"


def path(cluster: str, tenant: str = "payment-app") -> str:
    return f"clusters/{cluster}/tenants/{tenant}/input.yaml"


def with_image(h: Harness, cluster: str, image: str, tenant: str = "payment-app") -> bytes:
    """The current input of a tenant with its image value replaced (everything else kept)."""
    current = h.file(path(cluster, tenant))
    assert current is not None
    old = next(
        line.split("image:", 1)[1].strip().split()[0].strip('"')
        for line in current.decode().splitlines()
        if "image:" in line
    )
    return current.replace(old.encode(), image.encode())


def open_change(
    h: Harness,
    branch: str,
    changes: dict[str, bytes | None],
    *,
    author: str = "alice",
    title: str = "change",
) -> int:
    h.fake.create_branch(FLEET, branch, by=author)
    h.fake.commit(FLEET, branch, changes, title, author=author)
    return h.fake.open_pr(FLEET, branch, title=title, author=author)


def land(fake: FakeGitHub, changes: dict[str, bytes | None], message: str) -> str:
    """A change straight on main (as a merged PR would leave it)."""
    return fake.commit(FLEET, "main", changes, message, author="bob")


def checks(h: Harness, number: int) -> dict[str, Any]:
    """The newest run of each bot check on the PR's head, by name."""
    pr = h.fake.repo(FLEET).prs[number]
    runs = [r for r in h.fake.check_runs(FLEET, pr.head_sha) if r.app.id == h.app_id]
    latest: dict[str, Any] = {}
    for run in runs:
        if run.name not in latest or run.id > latest[run.name].id:
            latest[run.name] = run
    return latest


def verdict(h: Harness, number: int, name: str) -> str:
    run = checks(h, number)[name]
    return run.conclusion if run.status == "completed" else "pending"


def summary(h: Harness, number: int, name: str) -> str:
    run = checks(h, number)[name]
    return f"{run.output.get('title', '')}\n{run.output.get('summary', '')}"


__all__ = ["DEV", "PROD", "STAGING", "samples"]
