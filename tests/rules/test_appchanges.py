"""Issue 22, the pure parts: validating origins, trailers, planning and judging comparisons,
review requests, and the Markdown (escaped, within GitHub's limits)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from bot.fleet.policy import ApprovalRule
from bot.handlers.appchanges import with_section
from bot.rules.appchanges import (
    AppChange,
    Compared,
    Comparison,
    ImageMove,
    judge,
    linked_pull,
    plan,
    reduce_comparison,
    same_image,
)
from bot.rules.approvals import ApprovalFacts, Review, evaluate_approvals
from bot.rules.provenance import BuiltFrom, parse_repository, parse_revision, repository_from_url
from bot.rules.reviewers import reviewers_to_request
from bot.texts import markers
from bot.texts.prtext import app_changes_markdown
from bot.texts.summaries import TEXT_LIMIT, CheckOutput

A, B, C = "a" * 40, "b" * 40, "c" * 40
IMG = "registry.acme.com/payment"
WEB = "https://github.com"


def test_repositories_and_revisions_are_validated() -> None:
    assert parse_repository("acme/payment-service") == "acme/payment-service"
    for bad in ("acme", "acme/", "/x", "a/b/c", "-acme/x", "acme-/x", "ac--me/x", "acme/..", 5):
        assert parse_repository(bad) is None, bad
    assert parse_revision(A.upper()) == A
    for bad in ("main", A[:7], A + "0", "g" * 40, None):
        assert parse_revision(bad) is None, bad
    assert repository_from_url("https://github.com/acme/app.git", "github.com") == "acme/app"
    assert repository_from_url("https://evil.example/acme/app", "github.com") is None
    assert repository_from_url("https://github.com/acme/app?x=1", "github.com") is None


def test_trailers_round_trip_and_only_a_clean_trailer_block_counts() -> None:
    origin = BuiltFrom("acme/payment", A)
    trailers = markers.provenance_trailers(f"{IMG}:v1", origin)
    message = f"Bump payment to v1 in dev\n\n- dev/payment: x -> y\n\n{trailers}\n"
    assert markers.read_provenance(message) == (f"{IMG}:v1", origin)
    assert markers.read_provenance(trailers) is None  # a title alone has no trailers
    assert markers.read_provenance(f"t\n\n{trailers}\nnot a trailer") is None
    assert markers.read_provenance(f"t\n\n{trailers}\n\nlater text") is None
    assert markers.read_provenance(f"t\n\n{trailers}\nImage-Revision: {B}") is None  # twice
    bad = trailers.replace(A, "main")
    assert markers.read_provenance(f"t\n\n{bad}") is None
    only_source = markers.provenance_trailers(f"{IMG}:v1", BuiltFrom("acme/payment", None))
    assert markers.read_provenance(f"t\n\n{only_source}") == (
        f"{IMG}:v1",
        BuiltFrom("acme/payment", None),
    )
    assert "Image-Source" not in markers.strip_app_trailers(message)


def _commit(login: str | None, verified: bool) -> dict[str, Any]:
    return {
        "author": {"login": login} if login else None,
        "commit": {"verification": {"verified": verified}, "author": {"name": "fleet-bot[bot]"}},
    }


def test_only_signed_commits_of_the_bot_account_are_the_bots() -> None:
    bot = "fleet-bot[bot]"
    assert markers.is_bot_commit(_commit(bot, True), bot)
    assert markers.is_bot_commit(_commit("FLEET-BOT[bot]", True), bot)
    assert not markers.is_bot_commit(_commit(bot, False), bot)  # linked by e-mail, unsigned
    assert not markers.is_bot_commit(_commit("alice", True), bot)  # signed web commit of alice
    assert not markers.is_bot_commit(_commit(None, True), bot)  # the name alone: no account


def test_same_image_matches_tags_and_digests_when_both_have_one() -> None:
    digest = "sha256:" + "1" * 64
    assert same_image(f"{IMG}:v1", f"{IMG.upper()}:v1@{digest}")
    assert not same_image(f"{IMG}:v1@{digest}", f"{IMG}:v1@sha256:" + "2" * 64)
    assert not same_image(f"{IMG}:v1", f"{IMG}:v2")
    assert not same_image("not an image!", f"{IMG}:v1")


def test_linked_pull_requests_are_the_ones_github_titles_name() -> None:
    assert linked_pull("Fix rounding (#12)") == 12
    assert linked_pull("Merge pull request #7 from acme/feature") == 7
    assert linked_pull("fixes #12 and (#13) later") is None
    assert linked_pull("Fix (#0)") is None


def _known() -> dict[str, BuiltFrom | None]:
    return {
        f"{IMG}:v1": BuiltFrom("acme/payment", A),
        f"{IMG}:v2": BuiltFrom("acme/payment", B),
        f"{IMG}:v3": BuiltFrom("acme/other", C),
        f"{IMG}:v4": None,
        f"{IMG}:v5": BuiltFrom("acme/payment", B),
    }


def test_planning_groups_moves_and_asks_one_comparison_per_pair() -> None:
    moves = [
        ImageMove("payment", f"{IMG}:v1", f"{IMG}:v2"),
        ImageMove("payment", f"{IMG}:v1", f"{IMG}:v2"),  # a second cluster
        ImageMove("payment-eu", f"{IMG}:v1", f"{IMG}:v2"),
        ImageMove("a", f"{IMG}:v1", f"{IMG}:v3"),
        ImageMove("b", f"{IMG}:v4", f"{IMG}:v2"),
        ImageMove("c", f"{IMG}:v2", f"{IMG}:v5"),
        ImageMove("d", None, f"{IMG}:v2"),
        ImageMove("e", f"{IMG}:v2", f"{IMG}:v2"),
    ]
    planned = plan(moves, _known())
    assert [(p.tenants, p.comparison) for p in planned] == [
        (("payment", "payment-eu"), Comparison("acme/payment", A, B)),
        (("a",), None),
        (("b",), None),
        (("c",), None),
    ]
    assert "different repositories" in planned[1].reason
    assert planned[2].reason == "the commit v4 was built from is not recorded"
    assert planned[3].reason == "both were built from acme/payment@bbbbbbb"


def _compared(status: str, ahead: int, behind: int = 0) -> dict[str, Any]:
    commits = [
        {
            "sha": f"{i:040x}",
            "html_url": f"{WEB}/acme/payment/commit/{i:040x}",
            "commit": {"message": f"change {i} (#{i + 1})\n\nbody", "author": {"name": "N"}},
            "author": {"login": "alice"} if i % 2 else None,
        }
        for i in range(min(ahead, 250))
    ]
    return {
        "status": status,
        "ahead_by": ahead,
        "behind_by": behind,
        "total_commits": ahead,
        "commits": commits,
        "html_url": f"{WEB}/acme/payment/compare/{A}...{B}",
    }


def test_reduce_keeps_the_first_50_with_authors_and_linked_prs() -> None:
    reduced = reduce_comparison(_compared("ahead", 60))
    assert reduced.total_commits == 60 and len(reduced.commits) == 50
    assert reduced.commits[0].pull == 1 and reduced.commits[0].author_login is None
    assert reduced.commits[1].author_login == "alice" and reduced.commits[0].author_name == "N"


def test_judging_names_rollbacks_and_says_why_nothing_is_shown() -> None:
    forward = plan([ImageMove("p", f"{IMG}:v1", f"{IMG}:v2")], _known())
    back = plan([ImageMove("p", f"{IMG}:v2", f"{IMG}:v1")], _known())
    ahead = reduce_comparison(_compared("ahead", 3))
    behind = Compared("behind", 0, 3, 0, (), f"{WEB}/acme/payment/compare/{B}...{A}")
    (change,) = judge(forward, {Comparison("acme/payment", A, B): ahead}, WEB)
    assert change.kind == "changes" and change.url.endswith(f"{A}...{B}")
    (rollback,) = judge(back, {Comparison("acme/payment", B, A): behind}, WEB)
    assert rollback.kind == "rollback" and rollback.url.endswith(f"/compare/{A}...{B}")
    (unreadable,) = judge(forward, {}, WEB)
    assert unreadable.kind == "unreadable" and "cannot read acme/payment" in unreadable.reason
    unknown = plan([ImageMove("p", f"{IMG}:v4", f"{IMG}:v2")], _known())
    assert judge(unknown, {}, WEB)[0].kind == "unknown"
    # Without an answer from GitHub, version order still names a rollback.
    versions = {f"{IMG}:v2.0.0": BuiltFrom("acme/payment", B), f"{IMG}:v1.0.0": None}
    back_unknown = plan([ImageMove("p", f"{IMG}:v2.0.0", f"{IMG}:v1.0.0")], versions)
    assert judge(back_unknown, {}, WEB)[0].kind == "rollback"
    versions[f"{IMG}:v1.0.0"] = BuiltFrom("acme/payment", A)
    back_unreadable = plan([ImageMove("p", f"{IMG}:v2.0.0", f"{IMG}:v1.0.0")], versions)
    (older,) = judge(back_unreadable, {}, WEB)
    assert older.kind == "rollback" and "cannot read" in older.reason


def _change(kind: str, **extra: Any) -> AppChange:
    return AppChange(tenants=("payment",), old=f"{IMG}:v1", new=f"{IMG}:v2", kind=kind, **extra)


def test_markdown_escapes_what_commit_authors_wrote() -> None:
    data = _compared("ahead", 1)
    data["commits"][0]["commit"]["message"] = "@acme/sre look at #4 <b>*now*</b> (#9)"
    data["commits"][0]["author"] = None
    data["commits"][0]["commit"]["author"]["name"] = "[x](http://evil)"
    compared = reduce_comparison(data)
    text = app_changes_markdown(
        [_change("changes", repository="acme/payment", compared=compared, url="u")], web_url=WEB
    )
    row = next(line for line in text.splitlines() if line.startswith("| [`"))
    assert "@\u200bacme/sre" in row and "#\u200b4" in row
    assert "\\<b\\>\\*now\\*\\</b\\>" in row and "(#9)" not in row
    assert "\\[x\\](http://evil) (no GitHub account)" in row
    assert f"[#9]({WEB}/acme/payment/pull/9)" in row


def test_the_section_fits_github_limits_however_many_tenants() -> None:
    compared = reduce_comparison(_compared("ahead", 60))
    many = [
        AppChange(
            tenants=(f"tenant-{i}",),
            old=f"{IMG}:v1.{i}",
            new=f"{IMG}:v2.{i}",
            kind="changes",
            repository="acme/payment",
            compared=compared,
            url="u",
        )
        for i in range(40)
    ]
    text = app_changes_markdown(many, web_url=WEB, limit=TEXT_LIMIT)
    assert len(text) <= TEXT_LIMIT and "more lines not shown" in text
    lineage = CheckOutput("t", "x" * 60_000, "", ())
    merged = with_section(lineage, text)
    assert len(merged.summary) <= TEXT_LIMIT and merged.summary.startswith("x" * 60_000)
    full = CheckOutput("t", "x" * 65_000, "", ())
    assert with_section(full, text) is full  # no room: the verdict is never cut for it


def _review(user: str, commit: str, at: int, state: str = "APPROVED") -> Review:
    return Review(at, user, "User", state, commit, datetime(2026, 1, 1, 0, at, tzinfo=UTC))


def test_review_requests_name_who_can_fill_what_is_empty() -> None:
    rules = (ApprovalRule("sre", 2), ApprovalRule("tech-leads", 1))
    facts = ApprovalFacts(
        head_sha="new",
        reviews=[_review("bob", "old", 1), _review("carol", "new", 2), _review("erin", "old", 3)],
        excluded={"alice": "asked for this promotion"},
        team_members={"sre": frozenset({"alice", "bob", "carol"}), "tech-leads": frozenset()},
        org="acme",
    )
    verdict = evaluate_approvals("prod", rules, facts)
    request = reviewers_to_request([verdict], facts)
    # bob approved before the push and can fill the empty sre slot; erin is in no team; the
    # tech-leads team has nobody who could approve; alice asked for it.
    assert request.users == ("bob",) and request.teams == ("sre",)
    again = reviewers_to_request([verdict], facts, requested_users=["BOB"], requested_teams=["sre"])
    assert again.empty


@pytest.mark.parametrize("kind", ["unknown", "unreadable", "identical", "elsewhere"])
def test_each_reason_is_one_line(kind: str) -> None:
    text = app_changes_markdown(
        [_change(kind, repository="acme/payment", url="u", reason="r")], web_url=WEB
    )
    body = [line for line in text.splitlines() if line and not line.startswith("###")]
    assert len(body) == 1 and body[0].startswith("- **payment**")
