"""Fault injection (issue 8): GitHub failing in every way it does, and the bot still ends with
the right PRs and checks, and no duplicates."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.fake import FakeGitHub, samples
from tests.harness import FLEET, Harness, seed_world, start_bot

DEV_PAY = "clusters/dev-use1-01/tenants/payment-app/input.yaml"

# Every kind of call a bump makes, with the regex of its path (without the API prefix).
CALLS = {
    "token": ("POST", r"/app/installations/\d+/access_tokens$"),
    "repos": ("GET", r"^/installation/repositories$"),
    "policy probe": ("GET", r"/contents/\.github/promotion\.yml$"),
    "ref": ("GET", r"/git/ref/heads/main$"),
    "archive": ("GET", r"/tarball/"),
    "commit": ("GET", r"/git/commits/[0-9a-f]{40}$"),
    "pull list": ("GET", r"/repos/acme/fleet/pulls$"),
    "freeze list": ("GET", r"/repos/acme/fleet/issues$"),
    "create tree": ("POST", r"/git/trees$"),
    "create commit": ("POST", r"/git/commits$"),
    "create ref": ("POST", r"/git/refs$"),
    "create pull": ("POST", r"/repos/acme/fleet/pulls$"),
    "create check": ("POST", r"/check-runs$"),
    "merge": ("PUT", r"/pulls/\d+/merge$"),
}
# What a bump reads instead when no archive can be had.
WITHOUT_ARCHIVE = {
    "tree": ("GET", r"/git/trees/"),
    "blob": ("GET", r"/git/blobs/"),
}


@pytest.fixture
async def faulty(fake: FakeGitHub, tmp_path: Path) -> AsyncIterator[Harness]:
    app = seed_world(fake)
    bot_app, runner, url = await start_bot(
        fake, app.private_key_pem, app.id, tmp_path, extra={"GITHUB_TIMEOUT": "1"}
    )
    fake.set_webhook_url(app, f"{url}/api/github/webhooks")
    h = Harness(fake=fake, bot_url=url, runner=runner, app=bot_app, tmp=tmp_path, app_id=app.id)
    await h.settle()
    fake.reset_counters()
    try:
        yield h
    finally:
        await runner.cleanup()


async def bump_and_check(h: Harness) -> None:
    h.fake.dispatch(
        FLEET, "image-published", {"image": samples.PAYMENT_IMAGE, "tag": "v2.2.0"}, by="ci-bot"
    )
    await h.settle()
    prs = [p for p in h.pulls() if p.head_ref.startswith("fleet-bot/bump/")]
    assert len(prs) == 1, [p.number for p in prs]
    (pr,) = prs
    assert pr.merged
    text = h.file(DEV_PAY)
    assert text is not None and b"payment:v2.2.0" in text
    names = Counter(r.name for r in h.fake.check_runs(FLEET, pr.head_sha) if r.app.id == h.app_id)
    assert names == Counter(
        {
            "promotion/lineage": 1,
            "promotion/approvals": 1,
            "promotion/fleet": 1,
            "promotion/window": 1,
        }
    )
    assert h.failed_deliveries() == []


@pytest.mark.parametrize("kind", sorted(CALLS))
async def test_502_on_the_first_attempt_of_each_call(faulty: Harness, kind: str) -> None:
    method, path = CALLS[kind]
    fault = faulty.fake.inject_fault(method=method, path=path, status=502, times=1)
    await bump_and_check(faulty)
    assert fault.times == 0, f"the fault on {kind} was never hit"


@pytest.mark.parametrize("kind", sorted(WITHOUT_ARCHIVE))
async def test_502_on_the_first_attempt_of_each_read_without_an_archive(
    faulty: Harness, kind: str
) -> None:
    faulty.fake.serve_archive(FLEET, status=502, times=None)  # the archive host fails
    method, path = WITHOUT_ARCHIVE[kind]
    fault = faulty.fake.inject_fault(method=method, path=path, status=502, times=1)
    await bump_and_check(faulty)
    assert fault.times == 0, f"the fault on {kind} was never hit"


async def test_a_failed_archive_download_is_tried_again(faulty: Harness) -> None:
    faulty.fake.serve_archive(FLEET, status=502, times=1)
    await bump_and_check(faulty)
    downloads = [r.status for r in faulty.fake.requests if r.identity == "codeload"]
    assert downloads == [502, 200]
    assert not [r for r in faulty.bot_requests() if "/git/blobs/" in r.path]


@pytest.mark.parametrize("kind", ["ref", "archive", "create commit", "create pull", "merge"])
async def test_connection_reset_on_the_first_attempt(faulty: Harness, kind: str) -> None:
    method, path = CALLS[kind]
    fault = faulty.fake.inject_fault(method=method, path=path, reset=True, times=1)
    await bump_and_check(faulty)
    assert fault.times == 0


async def test_secondary_rate_limit_with_retry_after(faulty: Harness) -> None:
    fault = faulty.fake.inject_secondary_rate_limit(
        r"/git/trees$", retry_after=1, times=1, method="POST"
    )
    await bump_and_check(faulty)
    assert fault.times == 0
    statuses = [
        r.status
        for r in faulty.fake.requests
        if r.path.endswith("/git/trees") and r.method == "POST"
    ]
    assert statuses == [403, 201]


async def test_a_call_slower_than_the_client_timeout_is_retried(faulty: Harness) -> None:
    fault = faulty.fake.inject_fault(
        method="GET", path=r"/tarball/", status=200, delay=3.0, times=1
    )
    await bump_and_check(faulty)
    assert fault.times == 0
    services = faulty.state.services
    assert services is not None
    # the slow answer was not waited for: the client gave up on it and asked again
    assert services.stats.by_status["TimeoutError"] == 1, services.stats.by_status


async def test_github_down_for_a_while_then_back(faulty: Harness) -> None:
    """More failures than one request's retries: the delivery goes back to the inbox and
    succeeds on a later attempt."""
    fault = faulty.fake.inject_fault(method="POST", path=r"/git/commits$", status=503, times=6)
    faulty.fake.dispatch(
        FLEET, "image-published", {"image": samples.PAYMENT_IMAGE, "tag": "v2.2.0"}, by="ci-bot"
    )
    await faulty.settle()
    assert fault.times == 0
    inbox = faulty.state.inbox
    assert inbox is not None
    dispatch = next(d for d in inbox.recent(100) if d.event == "repository_dispatch")
    assert dispatch.status == "done" and dispatch.attempts >= 2
    prs = [p for p in faulty.pulls() if p.head_ref.startswith("fleet-bot/bump/")]
    assert len(prs) == 1 and prs[0].merged


async def test_a_permanent_error_is_recorded_with_its_reason(faulty: Harness) -> None:
    faulty.allow_failed_deliveries = True
    faulty.fake.inject_fault(
        method="POST",
        path=r"/git/trees$",
        status=422,
        times=None,
        body={"message": "tree.sha is invalid", "documentation_url": "x"},
    )
    faulty.fake.dispatch(
        FLEET, "image-published", {"image": samples.PAYMENT_IMAGE, "tag": "v2.2.0"}, by="ci-bot"
    )
    await faulty.settle()
    faulty.fake.clear_faults()
    failed = faulty.failed_deliveries()
    assert [(e, a) for e, a, _ in failed] == [("repository_dispatch", "image-published")]
    assert "422" in failed[0][2] and "tree.sha is invalid" in failed[0][2]
