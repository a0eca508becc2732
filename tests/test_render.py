"""Check-run rendering: what a reviewer and an auditor need, always inside GitHub's limits."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.fleet.policy import ApprovalRule, Environment
from bot.rules.approvals import ApprovalFacts, ApprovalVerdict, Review, evaluate_approvals
from bot.rules.lineage import (
    Change,
    ChangeVerdict,
    Deployment,
    LineageReport,
    UpstreamHistory,
    evaluate_lineage,
    exact_matcher,
)
from bot.texts.summaries import (
    ANNOTATION_MESSAGE_BYTES,
    ANNOTATION_TITLE_LIMIT,
    TEXT_LIMIT,
    Annotation,
    CheckOutput,
    _fence_after,
    render_approvals,
    render_lineage,
    render_not_gated,
    truncate_markdown,
)

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
REPO = "registry.acme.com/payment"
REPO_URL = "https://github.com/acme/fleet"
B = "b" * 40
A = "a" * 40


PROD = Environment("prod", "staging", None, False, ())


USE1 = UpstreamHistory(
    "staging-use1-01",
    "payment-app",
    (
        Deployment(
            f"{REPO}:v2.1.0",
            B,
            f"{REPO_URL}/commit/{B}",
            datetime(2026, 11, 30, 14, 2, tzinfo=UTC),
            None,
        ),
        Deployment(
            f"{REPO}:v2.0.0",
            A,
            "",
            NOW - timedelta(days=5),
            datetime(2026, 11, 30, 14, 2, tzinfo=UTC),
        ),
    ),
    f"{REPO}:v2.1.0",
)


def change(
    new: str | None,
    *,
    cluster: str = "prod-use1-01",
    line: int | None = 9,
    old: str | None = f"{REPO}:v2.0.0",
) -> Change:
    path = f"clusters/{cluster}/tenants/payment-app/input.yaml"
    return Change(cluster, "payment-app", path, line, old, new)


def lineage(
    changes: Sequence[Change],
    environment: Environment = PROD,
    statuses: Mapping[str, Mapping[str, str]] | None = None,
) -> LineageReport:
    histories = {(c.cluster, c.item): [USE1] for c in changes}
    return evaluate_lineage(environment, "staging", changes, histories, NOW, statuses=statuses)


def rows(markdown: str) -> list[list[str]]:
    """Table rows (header excluded) split on unescaped pipes."""
    found = []
    for line in markdown.splitlines():
        if line.startswith("| ") and not line.startswith(("| Tenant", "| ---", "| Reviewer")):
            found.append([cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]])
    return found


# --- lineage -----------------------------------------------------------------------------------


def test_lineage_success_lists_each_change_with_linked_evidence() -> None:
    report = lineage([change(f"{REPO}:v2.1.0"), change(f"{REPO}:v2.1.0", cluster="prod-euw1-01")])
    output = render_lineage([report], repo_url=REPO_URL)
    assert output.title == "Lineage verified for 2 changes"
    assert "| Tenant | Cluster | Change (old → new) | Evidence |" in output.summary
    first, second = rows(output.summary)
    assert first[:3] == [
        "payment-app",
        "prod-use1-01",
        f"`{REPO}:v2.0.0` → `{REPO}:v2.1.0`",
    ]
    link = f"([bbbbbbb]({REPO_URL}/commit/{B}))"
    assert first[3] == f"✅ `v2.1.0` in staging-use1-01 since 2026-11-30 14:02 UTC {link}"
    assert second[1] == "prod-euw1-01"
    assert output.annotations == ()


def test_lineage_rollback_evidence_shows_the_period_and_falls_back_to_the_repo_url() -> None:
    report = lineage([change(f"{REPO}:v2.0.0", old=f"{REPO}:v2.1.0")])
    (row,) = rows(render_lineage([report], repo_url=REPO_URL + "/").summary)
    assert (
        "`v2.0.0` in staging-use1-01 from 2026-11-26 12:00 UTC until 2026-11-30 14:02 UTC" in row[3]
    )
    assert f"([aaaaaaa]({REPO_URL}/commit/{A}))" in row[3]


def test_lineage_evidence_names_the_required_status() -> None:
    context = "kustomization/flux-system/3f0a"
    report = lineage(
        [change(f"{REPO}:v2.1.0")],
        replace(PROD, require_upstream_status="kustomization/*"),
        statuses={B: {context: "success"}},
    )
    output = render_lineage([report], repo_url=REPO_URL)
    assert f"status `{context}` success" in output.summary
    assert "with a success status matching `kustomization/*`" in output.text


def test_lineage_failure_shows_the_reason_and_what_upstream_has_now() -> None:
    report = lineage([change(f"{REPO}:v2.1.0"), change(f"{REPO}:v9.9.9")])
    output = render_lineage([report], repo_url=REPO_URL)
    assert output.title == "1 image never ran in staging"
    failed, passed = rows(output.summary)  # failures first
    assert failed[2].endswith(f"`{REPO}:v9.9.9`")
    assert failed[3] == (
        f"❌ {REPO}:v9.9.9 never ran in staging.<br>Now: staging-use1-01 has `{REPO}:v2.1.0`"
    )
    assert passed[3].startswith("✅")
    assert "1 of 2 changes without upstream evidence" in output.summary


def test_each_lineage_failure_is_an_annotation_on_its_line() -> None:
    report = lineage([change(f"{REPO}:v9", line=12), change(f"{REPO}:v8", line=None)])
    first, second = render_lineage([report], repo_url=REPO_URL).annotations
    assert first == Annotation(
        path="clusters/prod-use1-01/tenants/payment-app/input.yaml",
        start_line=12,
        end_line=12,
        annotation_level="failure",
        message=f"{REPO}:v9 never ran in staging.\nNow: staging-use1-01 has {REPO}:v2.1.0.",
        title="Image never ran in staging",
    )
    assert (second.start_line, second.end_line) == (1, 1)  # no line known: the file's first


def test_lineage_title_for_other_failures_and_sources() -> None:
    soak = lineage([change(f"{REPO}:v2.1.0")], replace(PROD, min_soak=timedelta(days=7)))
    output = render_lineage([soak], repo_url=REPO_URL)
    assert output.title == "1 image not verified in staging"
    assert "less than the minimum soak of 7d" in output.summary
    assert output.annotations[0].title == "Image not verified in staging"

    item = "source:flux-system/platform"
    source_change = Change(
        "prod-use1-01", item, "clusters/prod-use1-01/sources.yaml", 4, "v1", "v2"
    )
    sources = evaluate_lineage(PROD, "staging", [source_change], {}, NOW, exact_matcher)
    output = render_lineage([sources], repo_url=REPO_URL)
    assert output.title == "1 source tag never ran in staging"
    assert rows(output.summary)[0][0] == "source flux-system/platform"


def test_lineage_new_and_removed_values() -> None:
    report = lineage([change(f"{REPO}:v2.1.0", old=None), change(None)])
    new_row, removed_row = rows(render_lineage([report], repo_url=REPO_URL).summary)
    assert new_row[2] == f"*(new)* → `{REPO}:v2.1.0`"
    assert removed_row[2] == f"`{REPO}:v2.0.0` → *(removed)*"
    assert removed_row[3].startswith("— ")
    assert "needs no lineage" in removed_row[3]


def test_lineage_sections_per_environment_with_notes() -> None:
    dev = evaluate_lineage(
        replace(PROD, name="dev", upstream=None), None, [change(f"{REPO}:v3")], {}, NOW
    )
    staged = lineage([change(f"{REPO}:v2.1.0")])
    output = render_lineage([dev, staged], repo_url=REPO_URL, notes=["Skipped `prod-apse1-01`."])
    assert "### dev\nNo upstream environment: lineage not required (1 change)." in output.summary
    assert "### ✅ prod ← staging" in output.summary
    assert output.summary.rstrip().endswith("- Skipped `prod-apse1-01`.")
    assert output.title == "Lineage verified for 2 changes"
    assert "- prod: in any staging cluster that has the tenant" in output.text


def test_lineage_without_changes() -> None:
    output = render_lineage([], repo_url=REPO_URL)
    assert output.title == "No lineage to verify"
    assert "No changed value" in output.summary


def test_table_cells_escape_pipes_and_markdown() -> None:
    weird = "v1|*x*"
    source_change = Change("prod-use1-01", "source:ns/a_b", "s.yaml", 1, None, weird)
    report = evaluate_lineage(PROD, "staging", [source_change], {}, NOW, exact_matcher)
    (row,) = rows(render_lineage([report], repo_url=REPO_URL).summary)
    assert len(row) == 4
    assert row[2] == "*(new)* → `v1\\|*x*`"
    assert "source ns/a\\_b" in row[3]


def test_lineage_output_as_json_caps_annotations_at_fifty() -> None:
    report = lineage([change(f"{REPO}:v9.{i}", line=i + 1) for i in range(120)])
    output = render_lineage([report], repo_url=REPO_URL)
    assert len(output.annotations) == 120
    payload = output.as_json()
    assert set(payload) == {"title", "summary", "text", "annotations"}
    assert len(payload["annotations"]) == 50
    assert payload["annotations"][0] == {
        "path": "clusters/prod-use1-01/tenants/payment-app/input.yaml",
        "start_line": 1,
        "end_line": 1,
        "annotation_level": "failure",
        "message": output.annotations[0].message,
        "title": "Image never ran in staging",
    }


def test_huge_lineage_stays_inside_githubs_limits() -> None:
    report = lineage([change(f"{REPO}:v9.{i}", line=i + 1) for i in range(3000)])
    output = render_lineage([report], repo_url=REPO_URL)
    assert output.title == "3000 images never ran in staging"
    assert len(output.summary) <= TEXT_LIMIT
    assert len(output.text) <= TEXT_LIMIT
    assert re.search(r"… [\d,]+ more lines not shown \(limit 65,535 characters\)$", output.summary)
    assert rows(output.summary)[-1][0] == "payment-app"  # the cut is at a whole row


def test_huge_reason_is_clipped_in_the_annotation() -> None:
    huge = change("x" * 10)
    verdict = ChangeVerdict(huge, False, "é" * 100_000, (), {"s": "y" * 300}, "never-ran")
    report = LineageReport("prod" * 80, "staging" * 80, (verdict,))
    output = render_lineage([report], repo_url=REPO_URL)
    (annotation,) = output.annotations
    assert len(annotation.message.encode()) <= ANNOTATION_MESSAGE_BYTES
    assert annotation.message.endswith("…")
    assert len(annotation.title) <= ANNOTATION_TITLE_LIMIT
    assert len(output.summary) <= TEXT_LIMIT


# --- approvals ---------------------------------------------------------------------------------

HEAD = "5d6e7f8" + "0" * 33
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
TEAMS = {"sre": frozenset({"alice", "bob", "dana"}), "tech-leads": frozenset({"carol", "dana"})}
PROD_RULES = (ApprovalRule("sre", 2), ApprovalRule("tech-leads", 1))


def review(number: int, user: str, state: str = "APPROVED", commit: str = HEAD) -> Review:
    return Review(
        number,
        user,
        "Bot" if user.endswith("[bot]") else "User",
        state,
        commit,
        T0 + timedelta(minutes=number),
        f"{REPO_URL}/pull/7#pullrequestreview-{number}",
    )


def approvals(
    reviews: Sequence[Review],
    environment: str = "prod",
    rules: Sequence[ApprovalRule] = PROD_RULES,
    excluded: dict[str, str] | None = None,
) -> ApprovalVerdict:
    facts = ApprovalFacts(HEAD, reviews, excluded or {}, TEAMS, "acme")
    return evaluate_approvals(environment, rules, facts)


def test_pending_approvals_name_who_is_still_needed_and_who_did_not_count() -> None:
    verdict = approvals(
        [review(1, "alice"), review(2, "bob", commit="1a2b3c4" + "0" * 33), review(3, "erin")],
        excluded={"carol": "opened the pull request"},
    )
    output = render_approvals([verdict], org="acme")
    assert output.title == "Waiting for 2 approvals"
    assert "**Still needed:** 1 more from @acme/sre, 1 from @acme/tech-leads" in output.summary
    assert (
        "Requires 2 from @acme/sre and 1 from @acme/tech-leads, each from a different person."
        in (output.summary)
    )
    assert rows(output.summary) == [
        [
            "@alice",
            "@acme/sre (1 of 2)",
            f"[2026-12-01 09:01 UTC]({REPO_URL}/pull/7#pullrequestreview-1)",
        ]
    ]
    assert "- @bob approved 1a2b3c4, not the head 5d6e7f8 (pushed since)" in output.summary
    assert "- @erin approved, but is not in @acme/sre or @acme/tech-leads" in output.summary
    assert "### ⏳ prod: waiting" in output.summary
    assert "Only approvals of the head commit count" in output.text


def test_success_lists_every_counted_approver_by_slot() -> None:
    verdict = approvals([review(1, "alice"), review(2, "bob"), review(3, "carol")])
    output = render_approvals([verdict], org="acme")
    assert output.title == "Approved by 3 reviewers"
    assert [row[:2] for row in rows(output.summary)] == [
        ["@alice", "@acme/sre (1 of 2)"],
        ["@bob", "@acme/sre (2 of 2)"],
        ["@carol", "@acme/tech-leads (1 of 1)"],
    ]
    assert "Still needed" not in output.summary
    assert "### ✅ prod: approved" in output.summary


def test_changes_requested_is_shown_as_blocking() -> None:
    verdict = approvals([review(1, "alice"), review(2, "carol", "CHANGES_REQUESTED")])
    output = render_approvals([verdict], org="acme")
    assert output.title == "Changes requested by @carol"
    assert "**Blocking**" in output.summary
    assert (
        "- ❌ @carol requested changes on 5d6e7f8 as a member of @acme/tech-leads" in output.summary
    )
    assert "### ❌ prod: changes requested" in output.summary


def test_alternatives_are_named_when_a_flexible_approver_can_move() -> None:
    verdict = approvals([review(1, "alice"), review(2, "dana")])
    summary = render_approvals([verdict], org="acme").summary
    assert (
        "1 from @acme/tech-leads (or from @acme/sre: an approver in two teams can move over)"
        in summary
    )


def test_several_environments_each_get_a_section() -> None:
    staging = approvals([review(1, "alice")], "staging", (ApprovalRule("sre", 1),))
    prod_verdict = approvals([review(1, "alice")])
    output = render_approvals([staging, prod_verdict], org="acme", notes=["The policy changed."])
    assert output.title == "Waiting for 2 approvals"
    assert "### ✅ staging: approved" in output.summary
    assert "### ⏳ prod: waiting" in output.summary
    assert "Still needed: prod: 1 more from @acme/sre, 1 from @acme/tech-leads." in output.summary
    assert "- The policy changed." in output.summary


def test_bot_logins_are_escaped() -> None:
    verdict = approvals([review(1, "renovate[bot]")])
    assert "- @renovate\\[bot\\] is a bot" in render_approvals([verdict], org="acme").summary


def test_no_approvals_required() -> None:
    output = render_approvals([], org="acme")
    assert output.title == "No approvals required"
    assert output.annotations == ()


def test_huge_approvals_are_truncated_under_the_limit() -> None:
    reviews = [review(i, f"user-{i}-" + "x" * 30) for i in range(4000)]
    output = render_approvals([approvals(reviews)], org="acme")
    assert len(output.summary) <= TEXT_LIMIT
    assert output.summary.endswith("(limit 65,535 characters)")


# --- not gated ---------------------------------------------------------------------------------


def test_not_gated_is_one_line() -> None:
    output = render_not_gated("No gated environment changed: dev only.")
    assert output == CheckOutput(
        "No gated environment changed: dev only.", "No gated environment changed: dev only.", "", ()
    )


# --- truncation --------------------------------------------------------------------------------


def test_short_text_is_unchanged() -> None:
    assert truncate_markdown("a\nb\n", 10) == "a\nb\n"


def test_truncation_cuts_whole_lines_and_counts_the_rest() -> None:
    text = "".join(f"line {i:03}\n" for i in range(100))
    cut = truncate_markdown(text, 300)
    assert len(cut) <= 300
    body, footer = cut.rsplit("\n\n", 1)
    shown = body.splitlines()
    assert shown == [f"line {i:03}" for i in range(len(shown))]
    assert footer == f"… {100 - len(shown)} more lines not shown (limit 300 characters)"


def test_truncation_closes_an_open_code_block() -> None:
    text = "intro\n````yaml\n" + "key: value\n" * 500 + "````\nafter\n"
    cut = truncate_markdown(text, 1000)
    assert len(cut) <= 1000
    assert cut.count("````") == 2
    assert cut.endswith(
        f"````\n\n… {cut_hidden(text, cut)} more lines not shown (limit 1,000 characters)"
    )


def cut_hidden(text: str, cut: str) -> int:
    kept = cut.split("\n\n… ")[0].splitlines()[:-1]  # without the closing fence
    return len(text.splitlines()) - len(kept)


def test_truncation_ends_an_open_table_before_the_note() -> None:
    text = "| a | b |\n| --- | --- |\n" + "| 1 | 2 |\n" * 400
    cut = truncate_markdown(text, 500)
    assert "| 1 | 2 |\n\n… " in cut


def test_truncation_of_a_single_overlong_line() -> None:
    cut = truncate_markdown("x" * 2000 + "\nend\n", 500)
    assert len(cut) <= 500
    assert cut.startswith("xxx")
    assert cut.endswith("… 1 more line not shown (limit 500 characters)")


def test_truncation_limit_must_leave_room_for_the_note() -> None:
    with pytest.raises(ValueError, match="no room"):
        truncate_markdown("x" * 100, 20)


_LINES = st.one_of(
    st.text(alphabet="ab |`~*\t", max_size=40),
    st.sampled_from(["```", "```python", "~~~", "````", "| x | y |", "| --- | --- |", ""]),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(_LINES, max_size=200), st.integers(150, 3000))
def test_truncation_always_fits_and_closes_fences(lines: list[str], limit: int) -> None:
    text = "\n".join(lines)
    cut = truncate_markdown(text, limit)
    assert len(cut) <= limit
    if len(text) <= limit:
        assert cut == text
        return
    assert re.search(rf"… \d+ more lines? not shown \(limit {limit:,} characters\)$", cut)
    fence: str | None = None
    for line in cut.splitlines(keepends=True):
        fence = _fence_after(line, fence)
    assert fence is None
    shown = cut.rsplit("\n\n… ", 1)[0].split("\n")
    # What is shown is the start of the text, plus perhaps the fence that closes a code block.
    assert text.startswith("\n".join(shown)) or text.startswith("\n".join(shown[:-1]))
