"""Who did what, and when: the people half of docs/threat-model.md, end to end.

Each test names the threat it covers (``C1``, ``A3``...: the ids of the threat model). Signed
webhooks go in, HTTP calls go out to the in-package fake GitHub; the attacker is an ordinary
colleague with the rights the threat model gives them, never an org owner.
"""

from __future__ import annotations

import time

import pytest

from bot.fake import FakeCommit
from bot.github import gateway
from tests.bench.test_caches import gateway as reader
from tests.e2e.gatekit import PROD, STAGING, land, open_change, path, summary, verdict, with_image
from tests.e2e.test_promote import bot_comments, promotion_prs
from tests.harness import FLEET, Harness

LINEAGE, APPROVALS = "promotion/lineage", "promotion/approvals"
IMG = "registry.acme.com/payment"


# --- C: comments and commands ---------------------------------------------------------------


async def test_c1_commands_hidden_from_readers_do_not_run(world: Harness) -> None:
    """C1: a /promote that the rendered thread does not show as a line of text."""
    issue = world.fake.create_issue(FLEET, "notes", "", author="alice")
    hidden = [
        "How to ask for it:\n\n```\n/promote prod\n```",
        "~~~~ text\n/promote prod payment-app\n~~~~",
        "Example:\n\n    /promote prod",
        "Nothing to see here <!--\n/promote prod\n-->",
        "<!--\n\n/promote prod checkout\n\n-->",
        "> /promote prod",
        "~~/promote prod~~ not yet",
    ]
    for body in hidden:
        world.fake.comment(FLEET, issue, "alice", body)
    await world.settle()
    assert promotion_prs(world) == []
    assert bot_comments(world, issue) == []


async def test_c2_every_command_of_a_comment_is_taken_in_order(world: Harness) -> None:
    """C2: a second command in one comment is neither dropped nor run silently."""
    issue = world.fake.create_issue(FLEET, "release train", "", author="alice")
    world.fake.comment(
        FLEET, issue, "alice", "Both, please:\n/promote staging payment-app\n/PROMOTE PROD checkout"
    )
    await world.settle()
    prs = promotion_prs(world)
    assert sorted(p.head_ref.split("/")[2] for p in prs) == ["prod", "staging"]
    replies = bot_comments(world, issue)
    assert len(replies) == 2
    assert "`/promote staging payment-app`" in replies[0]
    assert "`/promote PROD checkout`" in replies[1]
    staging = next(p for p in prs if "/staging/" in p.head_ref)
    assert f"#{staging.number}" in replies[0]


async def test_c2_too_many_commands_run_none_and_say_so(world: Harness) -> None:
    """C2: a pasted list of commands is refused as a whole, with a reply."""
    issue = world.fake.create_issue(FLEET, "x", "", author="alice")
    world.fake.comment(FLEET, issue, "alice", "\n".join(["/promote prod checkout"] * 6))
    await world.settle()
    assert promotion_prs(world) == []
    (reply,) = bot_comments(world, issue)
    assert "6 commands" in reply and "none" in reply


async def test_c3_command_and_environment_names_are_case_insensitive(world: Harness) -> None:
    """C3: /PROMOTE PROD is /promote prod."""
    issue = world.fake.create_issue(FLEET, "x", "", author="alice")
    world.fake.comment(FLEET, issue, "alice", "/PROMOTE PROD checkout")
    await world.settle()
    (pr,) = promotion_prs(world)
    assert pr.head_ref == "fleet-bot/promote/prod/checkout"


async def test_c4_no_replies_to_ordinary_words_or_to_typos_from_readers(world: Harness) -> None:
    """C4: nobody can make the bot spam a thread; typos get help only from writers."""
    issue = world.fake.create_issue(FLEET, "x", "", author="alice")
    world.fake.comment(FLEET, issue, "alice", "/promoted yesterday, /statuses are green")
    world.fake.comment(FLEET, issue, "rita", "/promte prod")  # rita can only read
    await world.settle()
    assert bot_comments(world, issue) == []
    world.fake.comment(FLEET, issue, "rita", "/promote prod\n/promote staging\n/promote prod x")
    await world.settle()
    (refusal,) = bot_comments(world, issue)  # one refusal per comment, not one per line
    assert "write access" in refusal
    world.fake.comment(FLEET, issue, "alice", "/promte prod")
    await world.settle()
    reply = bot_comments(world, issue)[1]
    assert reply.startswith("@alice") and "Did you mean `/promote`" in reply


async def test_c5_an_edited_comment_runs_nothing(world: Harness) -> None:
    """C5: editing an old comment into a command (or a reader's into a writer's) runs nothing."""
    issue = world.fake.create_issue(FLEET, "x", "", author="alice")
    cid = world.fake.comment(FLEET, issue, "alice", "later")
    await world.settle()
    world.fake.edit_comment(FLEET, cid, "/promote prod checkout", by="alice")
    await world.settle()
    assert promotion_prs(world) == [] and bot_comments(world, issue) == []


# --- helpers for the approval threats -------------------------------------------------------


async def prod_pr(world: Harness, image: str = f"{IMG}:v2.0.0", author: str = "alice") -> int:
    number = open_change(
        world, "to-prod", {path(PROD): with_image(world, PROD, image)}, author=author
    )
    await world.settle()
    assert verdict(world, number, LINEAGE) == "success", summary(world, number, LINEAGE)
    return number


def approve(world: Harness, number: int, *people: str) -> None:
    for who in people:
        world.fake.review(FLEET, number, who, "APPROVE")


def bot_email(world: Harness) -> str:
    bot = world.fake.world.state.user("fleet-bot[bot]")
    assert bot is not None
    return bot.commit_email


# --- A: approvals ---------------------------------------------------------------------------


async def test_a5_a_requested_by_trailer_typed_by_a_person_is_not_believed(
    world: Harness,
) -> None:
    """A5: alice writes the bot's name, then its noreply email, into her own commits with
    Requested-by trailers naming every SRE, so that none of them could approve."""
    number = await prod_pr(world)
    trailers = "\n".join(f"Requested-by: @{who}" for who in ("bob", "carol", "dana", "frank"))
    world.fake.commit(
        FLEET,
        "to-prod",
        {"clusters/prod-use1-01/notes.txt": b"a\n"},
        f"note\n\n{trailers}\n",
        author="alice",
        name="fleet-bot[bot]",
    )
    world.fake.commit(
        FLEET,
        "to-prod",
        {"clusters/prod-use1-01/notes.txt": b"b\n"},
        f"note\n\n{trailers}\n",
        author="alice",
        name="fleet-bot[bot]",
        email=bot_email(world),  # GitHub links this one to the bot's account, unsigned
    )
    await world.settle()
    approve(world, number, "bob", "carol", "erin")
    await world.settle()
    assert verdict(world, number, APPROVALS) == "success", summary(world, number, APPROVALS)
    assert "/promote" not in summary(world, number, APPROVALS)


async def test_a3_a_commit_without_an_account_needs_approvals_that_do_without_anyone(
    world: Harness,
) -> None:
    """A3: bob pushes onto alice's prod PR a commit with an email no account has (author:
    null), then approves it himself. Whoever pushed is unknown, so the approvals must hold
    without any one approver: a spare for each team makes it."""
    number = await prod_pr(world)
    sha = world.fake.commit(
        FLEET,
        "to-prod",
        {path(PROD): with_image(world, PROD, f"{IMG}:v2.0.0").replace(b"info", b"debug")},
        "turn up logging",
        author="bob",
        name="Bob",
        email="bob@laptop.local",
    )
    await world.settle()
    approve(world, number, "bob", "carol", "erin")
    await world.settle()
    assert verdict(world, number, APPROVALS) == "pending"
    text = summary(world, number, APPROVALS)
    assert "Who pushed is unknown" in text and sha[:7] in text
    assert "Without @bob" in text and "@acme/sre" in text
    approve(world, number, "frank")  # a spare SRE; erin is still the only tech lead
    await world.settle()
    assert verdict(world, number, APPROVALS) == "pending"
    assert "Without @erin" in summary(world, number, APPROVALS)
    approve(world, number, "dana")
    await world.settle()
    assert verdict(world, number, APPROVALS) == "success", summary(world, number, APPROVALS)


async def test_a2_the_committer_of_a_commit_does_not_count(world: Harness) -> None:
    """A2: bob commits alice's change (author alice, committer bob) and approves it."""
    number = await prod_pr(world)
    world.fake.commit(
        FLEET,
        "to-prod",
        {"clusters/prod-use1-01/notes.txt": b"x\n"},
        "note",
        author="alice",
        committer="bob",
        by="bob",
    )
    await world.settle()
    approve(world, number, "bob", "carol", "erin")
    await world.settle()
    assert verdict(world, number, APPROVALS) == "pending"
    assert "committed commit" in summary(world, number, APPROVALS)


def many_commits(count: int, special: int, author: str) -> list[FakeCommit]:
    return [
        FakeCommit(
            {f"clusters/prod-use1-01/notes/{i:04d}.txt": b"x\n"},
            f"note {i}",
            author=author if i == special else "alice",
        )
        for i in range(count)
    ]


async def test_a4_commits_past_the_250th_are_read(world: Harness) -> None:
    """A4: erin's commit is the 256th of alice's PR, past what GitHub lists for a PR."""
    world.fake.create_branch(FLEET, "big", by="alice")
    world.fake.push_commits(FLEET, "big", many_commits(260, 255, "erin"), by="alice")
    world.fake.commit(
        FLEET, "big", {path(PROD): with_image(world, PROD, f"{IMG}:v2.0.0")}, "prod", author="alice"
    )
    number = world.fake.open_pr(FLEET, "big", title="big", author="alice")
    await world.settle()
    approve(world, number, "bob", "carol", "erin")
    await world.settle()
    assert verdict(world, number, APPROVALS) == "pending"
    text = summary(world, number, APPROVALS)
    assert "@erin authored commit" in text.replace("\\", "")


async def test_a4_the_commit_list_is_complete_at_and_past_githubs_limit(world: Harness) -> None:
    """A4: exactly 250 commits are all listed (nothing unknown); one more comes from the
    comparison of base and head, oldest first."""
    world.fake.create_branch(FLEET, "big", by="alice")
    world.fake.push_commits(FLEET, "big", many_commits(250, -1, "erin"), by="alice")
    number = world.fake.open_pr(FLEET, "big", title="big", author="alice")
    await world.settle()
    gw = reader(world)
    main = world.fake.repo(FLEET).refs["refs/heads/main"]
    head = world.fake.repo(FLEET).prs[number].head_sha
    commits, unread = await gw.all_pull_commits(FLEET, number, main, head)
    assert (len(commits), unread) == (250, 0)
    head = world.fake.commit(FLEET, "big", {"clusters/x.txt": b"x\n"}, "251", author="erin")
    await world.settle()
    commits, unread = await gw.all_pull_commits(FLEET, number, main, head)
    assert (len(commits), unread) == (251, 0) and commits[-1]["sha"] == head


async def test_a4_commits_that_cannot_be_read_at_all_fail_closed(
    world: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A4: past what even the comparison gives, the unread commits' pushers are unknown."""
    monkeypatch.setattr(gateway, "COMPARE_COMMITS_LIMIT", 250)
    world.fake.create_branch(FLEET, "big", by="alice")
    world.fake.push_commits(FLEET, "big", many_commits(260, 255, "erin"), by="alice")
    world.fake.commit(
        FLEET, "big", {path(PROD): with_image(world, PROD, f"{IMG}:v2.0.0")}, "prod", author="alice"
    )
    number = world.fake.open_pr(FLEET, "big", title="big", author="alice")
    await world.settle()
    approve(world, number, "bob", "carol", "dana")
    await world.settle()
    assert verdict(world, number, APPROVALS) == "pending"
    assert "11 commits of this pull request could not be read" in summary(world, number, APPROVALS)
    approve(world, number, "erin", "frank")
    await world.settle()
    assert verdict(world, number, APPROVALS) == "success", summary(world, number, APPROVALS)


async def test_a7_a_force_push_makes_earlier_approvals_stale(world: Harness) -> None:
    """A7: approvals were for the old head; after a force push to other content (a rewritten
    commit, so the approved one is no longer in the PR) they do not count."""
    number = await prod_pr(world)
    approved = world.fake.repo(FLEET).prs[number].head_sha
    approve(world, number, "bob", "carol", "erin")
    await world.settle()
    assert verdict(world, number, APPROVALS) == "success"
    world.fake.create_branch(FLEET, "rewrite", by="alice")
    other = world.fake.commit(
        FLEET,
        "rewrite",
        {path(PROD): with_image(world, PROD, f"{IMG}:v2.0.0").replace(b"info", b"debug")},
        "rewritten",
        author="alice",
    )
    world.fake.force_push(FLEET, "to-prod", other, by="alice")
    await world.settle()
    assert verdict(world, number, APPROVALS) == "pending"
    text = summary(world, number, APPROVALS)
    assert f"approved {approved[:7]}, not the head {other[:7]}" in text


async def test_a7_a_force_push_back_to_the_approved_commit_restores_its_approvals(
    world: Harness,
) -> None:
    """A7, decided: the approvals of a commit count whenever that exact commit is the head.
    A SHA names its content and history, so what merges is exactly what was approved."""
    number = await prod_pr(world)
    approved = world.fake.repo(FLEET).prs[number].head_sha
    approve(world, number, "bob", "carol", "erin")
    await world.settle()
    world.fake.commit(
        FLEET, "to-prod", {"clusters/prod-use1-01/notes.txt": b"x\n"}, "more", author="alice"
    )
    await world.settle()
    assert verdict(world, number, APPROVALS) == "pending"
    world.fake.force_push(FLEET, "to-prod", approved, by="alice")
    await world.settle()
    assert world.fake.repo(FLEET).prs[number].head_sha == approved
    assert verdict(world, number, APPROVALS) == "success", summary(world, number, APPROVALS)


async def test_a8_a_dismissed_approval_is_no_vote(world: Harness) -> None:
    """A8: a dismissed approval removes that person's vote, and an approval never returns
    by itself."""
    number = await prod_pr(world)
    approve(world, number, "bob", "carol")
    rid = world.fake.review(FLEET, number, "erin", "APPROVE")
    await world.settle()
    assert verdict(world, number, APPROVALS) == "success"
    world.fake.dismiss_review(FLEET, number, rid, by="bob", message="not like this")
    await world.settle()
    assert verdict(world, number, APPROVALS) == "pending"
    assert "erin had their review dismissed" in summary(world, number, APPROVALS).replace("\\", "")
    world.fake.review(FLEET, number, "erin", "COMMENT", body="ok, looking again")
    await world.settle()
    assert verdict(world, number, APPROVALS) == "pending"


async def test_a9_membership_is_judged_when_the_rule_is_evaluated(world: Harness) -> None:
    """A9: an approval counts for the teams its author is in now: joining the team later
    makes it count, leaving it makes it stop counting (membership events re-judge at once)."""
    number = await prod_pr(world)
    approve(world, number, "bob", "carol", "frank")  # no tech lead yet
    await world.settle()
    assert verdict(world, number, APPROVALS) == "pending"
    world.fake.add_team_member("acme", "tech-leads", "frank")
    await world.settle()
    assert verdict(world, number, APPROVALS) == "success", summary(world, number, APPROVALS)
    world.fake.remove_team_member("acme", "tech-leads", "frank")
    await world.settle()
    assert verdict(world, number, APPROVALS) == "pending"


LOOSE = b"""\
environments:
  - name: dev
    autoMerge: true
  - name: staging
  - name: prod
    approvals: [{team: sre, count: 1}]
"""


async def test_a10_a_retargeted_pull_request_is_judged_against_its_new_base(
    world: Harness,
) -> None:
    """A10: frank keeps a branch with a looser policy and his own commit; alice's prod change
    is opened against it, where frank's approval is enough. Retargeted to main, the PR is
    judged by main's policy, and frank's commit is now part of it: he cannot approve."""
    world.fake.create_branch(FLEET, "loose", by="frank")
    world.fake.commit(FLEET, "loose", {".github/promotion.yml": LOOSE}, "loosen", author="frank")
    world.fake.create_branch(FLEET, "to-prod", from_ref="loose", by="alice")
    world.fake.commit(
        FLEET,
        "to-prod",
        {path(PROD): with_image(world, PROD, f"{IMG}:v2.0.0")},
        "prod",
        author="alice",
    )
    number = world.fake.open_pr(FLEET, "to-prod", base="loose", title="prod", author="alice")
    await world.settle()
    approve(world, number, "frank")
    await world.settle()
    assert verdict(world, number, APPROVALS) == "success", summary(world, number, APPROVALS)
    world.fake.edit_pr(FLEET, number, by="alice", base="main")
    await world.settle()
    assert verdict(world, number, APPROVALS) == "pending"
    approve(world, number, "carol", "erin")
    await world.settle()
    assert verdict(world, number, APPROVALS) == "pending"
    text = summary(world, number, APPROVALS)
    assert "frank authored commit" in text.replace("\\", "") and ".github" in text
    approve(world, number, "bob")
    await world.settle()
    assert verdict(world, number, APPROVALS) == "success", summary(world, number, APPROVALS)


# --- L: when a value ran upstream -----------------------------------------------------------

SOAK = b"""\
environments:
  - name: dev
    autoMerge: true
  - name: staging
    approvals: [{team: sre, count: 1}]
  - name: prod
    approvals: [{team: sre, count: 2}, {team: tech-leads, count: 1}]
    minSoak: 24h
"""
STATUS = SOAK.replace(b"minSoak: 24h", b'requireUpstreamStatus: "e2e/*"')
DAY = 86_400.0


def staging_runs(world: Harness, *runs: tuple[str, float]) -> dict[str, str]:
    """Land staging values at explicit dates (seconds ago); returns {tag: first commit}."""
    now = time.time()
    first: dict[str, str] = {}
    for tag, ago in runs:
        sha = world.fake.commit(
            FLEET,
            "main",
            {path(STAGING): with_image(world, STAGING, f"{IMG}:{tag}")},
            f"staging {tag}",
            author="bob",
            date=now - ago,
        )
        first.setdefault(tag, sha)
    return first


async def test_l1_an_older_run_that_soaked_counts(world: Harness) -> None:
    """L1: v2.0.5 soaked three days in staging a week ago, then came back for an hour. The
    newest run is too short; the older one is what the soak rule asks for."""
    land(world.fake, {".github/promotion.yml": SOAK}, "prod needs a day in staging")
    staging_runs(
        world,
        ("v2.0.5", 10 * DAY),
        ("v2.0.6", 7 * DAY),
        ("v2.0.5", 2 * DAY),
        ("v2.0.7", 2 * DAY - 3600),
    )
    await world.settle()
    number = open_change(world, "to-prod", {path(PROD): with_image(world, PROD, f"{IMG}:v2.0.5")})
    await world.settle()
    assert verdict(world, number, LINEAGE) == "success", summary(world, number, LINEAGE)
    # and a value whose every run was short still fails
    world.fake.commit(
        FLEET,
        "to-prod",
        {path(PROD): with_image(world, PROD, f"{IMG}:v2.0.6")},
        "v2.0.6",
        author="alice",
    )
    await world.settle()
    assert verdict(world, number, LINEAGE) == "success", summary(world, number, LINEAGE)
    world.fake.commit(
        FLEET,
        "to-prod",
        {path(PROD): with_image(world, PROD, f"{IMG}:v2.0.7")},
        "v2.0.7",
        author="alice",
    )
    await world.settle()
    assert verdict(world, number, LINEAGE) == "success"  # 2 days minus an hour, still going


async def test_l1_short_runs_do_not_add_up(world: Harness) -> None:
    """L1: two one-hour runs of a value are not a day of soak."""
    land(world.fake, {".github/promotion.yml": SOAK}, "prod needs a day in staging")
    staging_runs(
        world,
        ("v2.0.5", 3 * DAY),
        ("v2.0.6", 3 * DAY - 3600),
        ("v2.0.5", 2 * DAY),
        ("v2.0.7", 2 * DAY - 3600),
    )
    await world.settle()
    number = open_change(world, "to-prod", {path(PROD): with_image(world, PROD, f"{IMG}:v2.0.5")})
    await world.settle()
    assert verdict(world, number, LINEAGE) == "failure"
    assert "24h" in summary(world, number, LINEAGE)


async def test_l2_an_older_run_with_the_status_counts(world: Harness) -> None:
    """L2: Flux reported success on the run of v2.0.5 a week ago, not on its newest run."""
    land(world.fake, {".github/promotion.yml": STATUS}, "prod needs Flux's word")
    first = staging_runs(
        world, ("v2.0.5", 10 * DAY), ("v2.0.6", 7 * DAY), ("v2.0.5", 2 * DAY), ("v2.0.7", DAY)
    )
    world.fake.set_status(FLEET, first["v2.0.5"], "e2e/staging", "success", by="ci-bot")
    await world.settle()
    number = open_change(world, "to-prod", {path(PROD): with_image(world, PROD, f"{IMG}:v2.0.5")})
    await world.settle()
    assert verdict(world, number, LINEAGE) == "success", summary(world, number, LINEAGE)
