"""The automatic merge refuses what it must refuse before it asks GitHub anything."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from bot.handlers.automerge import consider
from bot.handlers.checks import GateOutcome
from bot.rules.gate import Scope


def scope(auto: bool = True) -> Scope:
    return Scope(("dev",), (), False, (), (), (), auto)


def pr(**extra: Any) -> dict[str, Any]:
    base = {
        "number": 7,
        "state": "open",
        "draft": False,
        "labels": [],
        "title": "t",
        "head": {"sha": "a" * 40, "ref": "dev", "repo": {"full_name": "acme/fleet"}},
        "base": {"ref": "main"},
    }
    base.update(extra)
    return base


async def decide(payload: dict[str, Any], outcome: GateOutcome | None = None) -> str:
    facts = SimpleNamespace(repo="acme/fleet")
    gate = outcome or GateOutcome("a" * 40, scope(), "success", "success", "success")
    # ctx is never touched on these paths: None proves no API call is made
    return await consider(None, facts, payload, gate)  # type: ignore[arg-type]


async def test_refusals_come_before_any_call() -> None:
    assert await decide(pr(draft=True)) == "draft"
    fork = pr(head={"sha": "a" * 40, "ref": "dev", "repo": {"full_name": "mallory/fleet"}})
    assert await decide(fork) == "from a fork"
    assert await decide(pr(labels=[{"name": "Do-Not-Merge"}])) == "labelled do-not-merge"
    assert await decide(pr(), GateOutcome("a" * 40, scope(False))) == "not auto-mergeable"
    pending = GateOutcome("a" * 40, scope(), "success", "pending", "success")
    assert await decide(pr(), pending) == "gate not green"
    broken = GateOutcome("a" * 40, scope(), "success", "success", "failure")
    assert await decide(pr(), broken) == "gate not green"
    assert await decide(pr(state="closed")) == "closed"
