"""``python -m bot audit`` (issue 10) end to end against the fake GitHub: a gated promotion, an
admin override past a failing check, a push straight to main, in every format."""

from __future__ import annotations

import csv
import io

from bot.cli.auditreport import CSV_COLUMNS
from tests.audit.kit import (
    FORCED_TITLE,
    IMG,
    audit,
    by_label,
    tell_story,
)
from tests.e2e.gatekit import PROD, path
from tests.harness import FLEET, Harness


async def test_markdown_puts_exceptions_first_and_explains_each_change(world: Harness) -> None:
    story = await tell_story(world)
    head = world.fake.repo(FLEET).prs[story.gated].head_sha
    result = await audit(world)
    assert result.code == 0, result.err
    md = result.out
    exceptions, _, changes = md.partition("## Changes")
    assert "## Exceptions" in exceptions
    # The admin override, the direct push and the unreviewed first commit are exceptions...
    assert f'#{story.forced} “prod v9.9.9, "urgent" \\*now\\*”' in exceptions
    assert "promotion/lineage was failure at merge" in exceptions
    assert "promotion/approvals was pending at merge" in exceptions
    assert f"direct push {story.pushed[:7]}" in exceptions
    assert "pushed to main without a pull request" in exceptions
    assert "the repository's first commit" in exceptions
    # ...the gated promotion is not, and its record carries the evidence.
    assert f"#{story.gated}" not in exceptions
    gated = changes.split(f"### #{story.gated} ")[1].split("\n### ")[0]
    assert "by @bob" in gated and "opened by @alice" in gated
    assert "Requested by: @alice (opened the pull request)" in gated
    assert f"`{IMG}:v1.9.0` → `{IMG}:v2.0.0`" in gated
    for who, slot in (("bob", "sre#1"), ("carol", "sre#2"), ("erin", "tech-leads#1")):
        assert f"@{who} filled @acme/{slot}: [approved]" in gated
        assert f"`{head[:7]}` at 20" in gated
    assert "- ➖ @rita approved, but is not in @acme/sre or @acme/tech-leads" in gated
    assert "ran in staging-use1-01 since" in gated
    assert "| promotion/lineage | ✅ success" in gated
    assert "| promotion/approvals | ✅ success" in gated
    assert "Team membership is read as it is today" in md
    # The direct push of an image staging ran passes lineage, and is still an exception.
    pushed = changes.split(f"### ❌ Direct push {story.pushed[:7]}")[1].split("\n### ")[0]
    assert "committed by @bob" in pushed and "No pull request, so no reviews." in pushed
    assert "✅ prod-use1-01 / payment-app" in pushed
    # Oldest first: the first commit, the promotion, the override, the push.
    order = [changes.index(s) for s in ("Initial commit", f"#{story.gated} ", f"#{story.forced} ")]
    assert order == sorted(order) and order[-1] < changes.index(story.pushed[:7])
    assert "audit: " in result.err and "audit: " not in md  # progress goes to stderr only


async def test_json_is_a_list_of_records_with_every_field(world: Harness) -> None:
    story = await tell_story(world)
    pr = world.fake.repo(FLEET).prs[story.gated]
    result = await audit(world, "--format", "json")
    assert result.code == 0, result.err
    records = result.json()
    assert [r["exception"] for r in records] == sorted(
        (r["exception"] for r in records), reverse=True
    ), "exceptions come first"
    labels = by_label(records)
    gated = labels[f"#{story.gated}"]
    assert gated["exception"] is False and gated["exception_reasons"] == []
    assert gated["kind"] == "pull_request" and gated["by"] == "bob"
    assert gated["commit"] == pr.merge_commit_sha and gated["head_sha"] == pr.head_sha
    (change,) = gated["changes"]
    assert change == {
        "environment": "prod",
        "cluster": "prod-use1-01",
        "tenant": "payment-app",
        "path": path(PROD),
        "status": "modified",
        "from_image": f"{IMG}:v1.9.0",
        "to_image": f"{IMG}:v2.0.0",
        "image_changed": True,
    }
    assert {c["name"]: (c["at_merge"], c["rederived"]) for c in gated["checks"]} == {
        "promotion/lineage": ("success", "success"),
        "promotion/approvals": ("success", "success"),
        "promotion/window": ("success", "success"),
    }
    (prod,) = gated["approvals"]["environments"]
    assert [(c["user"], c["slot"], c["commit_id"]) for c in prod["counted"]] == [
        ("bob", "sre#1", pr.head_sha),
        ("carol", "sre#2", pr.head_sha),
        ("erin", "tech-leads#1", pr.head_sha),
    ]
    assert all(c["submitted_at"] <= gated["at"] for c in prod["counted"])
    (lineage,) = gated["lineage"]["environments"]
    (verdict,) = lineage["changes"]
    (evidence,) = verdict["evidence"]
    first = next(r for r in records if "first commit" in " ".join(r["exception_reasons"]))
    assert (lineage["upstream"], verdict["ok"]) == ("staging", True)
    assert (evidence["cluster"], evidence["commit"]) == ("staging-use1-01", first["commit"])
    forced = labels[f"#{story.forced}"]
    assert forced["title"] == FORCED_TITLE
    assert forced["exception_reasons"] == [
        "merged without a green gate",
        "promotion/lineage was failure at merge",
        "promotion/approvals was pending at merge",
    ]
    assert forced["lineage"]["environments"][0]["changes"][0]["kind"] == "never-ran"
    pushed = labels[f"direct push {story.pushed[:7]}"]
    assert pushed["kind"] == "direct_push" and pushed["pull_request"] is None
    assert pushed["approvals"] is None and pushed["checks"] == []
    assert pushed["lineage"]["state"] == "success"
    assert pushed["exception_reasons"] == ["pushed to main without a pull request"]
    # The override's branch commit reached main through its merge commit: not a direct push.
    assert sum(r["kind"] == "direct_push" for r in records) == 2
    assert list(records[0]) == sorted(records[0]), "stable, sorted keys"


async def test_csv_has_a_header_and_one_row_per_change(world: Harness) -> None:
    story = await tell_story(world)
    result = await audit(world, "--format", "csv")
    assert result.code == 0, result.err
    assert "\r\n" in result.out  # RFC 4180 line ends
    reader = csv.reader(io.StringIO(result.out, newline=""))
    header = next(reader)
    assert tuple(header) == CSV_COLUMNS
    rows = [dict(zip(header, row, strict=True)) for row in reader]
    forced = [r for r in rows if r["record"] == f"#{story.forced}"]
    assert [(r["title"], r["exception"], r["to_image"]) for r in forced] == [
        (FORCED_TITLE, "yes", f"{IMG}:v9.9.9")
    ]
    assert forced[0]["lineage_recorded"] == "failure" == forced[0]["lineage_rederived"]
    (gated,) = [r for r in rows if r["record"] == f"#{story.gated}"]
    assert gated["exception"] == "no" and gated["by"] == "bob"
    assert gated["approvals_counted"].split("; ")[0].startswith("bob sre#1 ")
    assert gated["lineage"].startswith("ok: staging-use1-01 since ")
    # The first commit: one row per tenant (and one for the cluster's base) of prod.
    first = {r["tenant"]: r for r in rows if "first commit" in r["exception_reasons"]}
    assert sorted(first) == ["", "checkout", "payment-app"]
    assert first["payment-app"]["path"].split("; ") == [
        path(PROD),
        path(PROD).replace("input.yaml", "sync.yaml"),
    ]
    assert (first["payment-app"]["from_image"], first["payment-app"]["to_image"]) == (
        "",
        f"{IMG}:v1.9.0",
    )
    assert {r["environment"] for r in first.values()} == {"prod"}
    assert rows[-1]["record"] == f"#{story.gated}", "exceptions first, the clean record last"


async def test_an_empty_range_says_so_in_every_format(world: Harness) -> None:
    await tell_story(world)
    window = ("--since", "2001-01-01", "--until", "2001-01-31")
    md = await audit(world, *window)
    assert md.code == 0, md.err
    assert "No change reached prod in this period." in md.out
    assert "## Exceptions" not in md.out and "2001-01-31T23:59:59Z" in md.out
    as_json = await audit(world, *window, "--format", "json")
    assert as_json.json() == []
    as_csv = await audit(world, *window, "--format", "csv")
    assert list(csv.reader(io.StringIO(as_csv.out))) == [list(CSV_COLUMNS)]


async def test_the_audit_never_writes(world: Harness) -> None:
    await tell_story(world)
    world.fake.reset_counters()
    result = await audit(world, "--format", "json")
    assert result.code == 0, result.err
    audit_calls = list(world.fake.requests)
    assert len(audit_calls) > 10
    writes = [
        (r.method, r.path)
        for r in audit_calls
        if r.method != "GET" and not r.path.endswith("/access_tokens")
    ]
    assert writes == []
    assert any(r.path == f"/repos/{FLEET}/installation" for r in audit_calls)
