"""State the bot keeps in GitHub itself: hidden markers in PR bodies, trailers in commits.

Git is the state (design.md): who asked for a promotion survives restarts because it is written
in the promotion PR. The commit trailer is the one the gate trusts, because a commit cannot be
edited without a push (which makes every approval stale), while a PR body can be edited by anyone
with write access; and only in commits GitHub attributes to the app (its bot account, a signature
GitHub verified), never in a commit whose author name or email a person typed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from bot.rules.people import CommitFacts, from_app

MARKER_RE = re.compile(r"<!--\s*fleet-bot:\s*(\{.*?\})\s*-->", re.S)
TRAILER = "Requested-by"
TRAILER_RE = re.compile(rf"^{TRAILER}:\s*@?([A-Za-z0-9](?:[A-Za-z0-9-]{{0,38}}))\s*$", re.M)


def marker(**fields: Any) -> str:
    """A hidden HTML comment carrying ``fields`` as JSON (invisible in the rendered body)."""
    return f"<!-- fleet-bot: {json.dumps(fields, sort_keys=True)} -->"


def read_marker(body: str | None) -> dict[str, Any]:
    if not body:
        return {}
    m = MARKER_RE.search(body)
    if m is None:
        return {}
    try:
        data = json.loads(m.group(1))
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def trailer(login: str) -> str:
    return f"{TRAILER}: @{login}"


def trailer_logins(message: str) -> tuple[str, ...]:
    """Logins named by ``Requested-by:`` trailers in a commit message, lower-case."""
    return tuple(m.group(1).lower() for m in TRAILER_RE.finditer(message))


def commit_facts(commit: Mapping[str, Any]) -> CommitFacts:
    """A REST ``commit`` object as the approval rules see it: the accounts GitHub links it to,
    whether GitHub verified its signature, and the trailers it carries."""
    meta = commit.get("commit") or {}
    return CommitFacts(
        sha=str(commit.get("sha") or ""),
        author=_login(commit.get("author")),
        committer=_login(commit.get("committer")),
        verified=(meta.get("verification") or {}).get("verified") is True,
        requested_by=trailer_logins(str(meta.get("message") or "")),
    )


def requesters(commits: Iterable[Mapping[str, Any]], bot_login: str) -> set[str]:
    """Logins named by ``Requested-by:`` trailers in commits the app itself made: linked to
    its bot account by GitHub and signed as GitHub verifies. A name, an email or a trailer a
    person typed into a commit of their own is never believed."""
    found: set[str] = set()
    for commit in commits:
        facts = commit_facts(commit)
        if from_app(facts, bot_login):
            found.update(facts.requested_by)
    return found


def _login(account: Any) -> str | None:
    login = account.get("login") if isinstance(account, Mapping) else None
    return str(login) if login else None
