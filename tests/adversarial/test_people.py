"""Who did what, and when: the people half of docs/threat-model.md, end to end.

Each test names the threat it covers (``C1``, ``A3``...: the ids of the threat model). Signed
webhooks go in, HTTP calls go out to the in-package fake GitHub; the attacker is an ordinary
colleague with the rights the threat model gives them, never an org owner.
"""

from __future__ import annotations

from tests.e2e.gatekit import PROD, STAGING, open_change, path, summary, verdict, with_image
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
    world.fake.comment(FLEET, issue, "alice", "/promte prod")
    await world.settle()
    (reply,) = bot_comments(world, issue)
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


__all__ = ["STAGING", "approve", "prod_pr"]
