"""The demo is the product's story end to end; it must keep working as chapters are added."""

from __future__ import annotations

import pytest

from bot.cli.demo import run


async def test_demo_tells_the_whole_story(capsys: pytest.CaptureFixture[str]) -> None:
    code = await run()
    out = capsys.readouterr().out
    assert code == 0, out
    assert "-> merged by fleet-bot[bot]" in out
    assert '+    image: "registry.acme.com/payment:v2.2.0"' in out
    assert "✗ promotion/lineage: failure" in out
    assert "GitHub refuses (405" in out
    assert "✓ promotion/approvals: success — Approved by 3 reviewers" in out
    assert "review requested from @acme/sre" in out
    assert "erin merges" in out and "prod runs v2.2.0" in out
    audit = out.split("5. The audit")[1]
    assert "(exit 0; " in audit and " API calls, 0 writes)" in audit
    assert "3 changes reached prod; 1 exception." in audit  # only the unreviewed first commit
    assert "Requested by: @carol (Requested-by trailer on the bot's commit)." in audit
    assert "@carol asked for this promotion with /promote" in audit
    assert "issue #" in out and "Promotion dashboard" in out
    assert "| payment-app | `v2.2.0` | `v2.2.0` | `v2.2.0` |" in out
    assert "+    tag: v1.3.0" in out
    assert "staging follows blueprints v1.3.0" in out
    assert "built from acme/payment@" in out
    brings = out.split("8. What a promotion brings")[1]
    assert "#### **payment-app**: `v2.2.0` → `v2.3.0`" in brings
    assert "3 commits of `acme/payment`" in brings and "| Retry card declines | [bob](" in brings
    assert "0 failed" in out
    calendar = out.split("9. The change calendar")[1].split("10. A merge queue")[0]
    assert "✗ promotion/window: failure — prod closed: outside its deploy windows" in calendar
    assert 'Required status check "promotion/window" is expected' in calendar
    assert '"Deploy freeze: prod" opened by fleet-bot[bot]' in calendar
    assert "emergency freeze by @frank" in calendar
    assert "Only members of @acme/incident-commanders can override" in calendar
    assert "(1 of 2; 1 more needed" in calendar and "(2 of 2; the check passes now)" in calendar
    assert "-> #" in calendar and " closed; prod keeps its windows" in calendar
    timer = calendar.split("no event, the timer alone:")[1]
    assert "✓ promotion/window: success" in timer
    queue = out.split("10. A merge queue on main")[1]
    assert 'GitHub answers 405 "Changes must be made through the merge queue"' in queue
    assert "GraphQL enqueuePullRequest" in queue
    assert "merge_group checks_requested" in queue
    assert queue.count(": success") == 4 and "merge_group destroyed (merged)" in queue
    assert "merged by fleet-bot[bot]: main is the group's commit" in queue
