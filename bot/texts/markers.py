"""State the bot keeps in GitHub itself: hidden markers in PR bodies, trailers in commits.

Git is the state (design.md): who asked for a promotion survives restarts because it is written
in the promotion PR. The commit trailer is the one the gate trusts, because a commit cannot be
edited without a push (which makes every approval stale and the pusher a non-counting author),
while a PR body can be edited by anyone with write access.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

MARKER_RE = re.compile(r"<!--\s*fleet-bot:\s*(\{.*?\})\s*-->", re.S)
TRAILER = "Requested-by"
TRAILER_RE = re.compile(rf"^{TRAILER}:\s*@?([A-Za-z0-9](?:[A-Za-z0-9-]{{0,38}}))\s*$", re.M)


def marker(**fields: Any) -> str:
    """A hidden HTML comment carrying ``fields`` as JSON (invisible in the rendered body)."""
    # ``<`` and ``>`` as JSON escapes: text a person wrote (a reason) cannot end the comment.
    data = json.dumps(fields, sort_keys=True).replace("<", "\\u003c").replace(">", "\\u003e")
    return f"<!-- fleet-bot: {data} -->"


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


def requesters(commits: Iterable[Mapping[str, Any]], bot_login: str) -> set[str]:
    """Logins named by ``Requested-by:`` trailers in commits the bot itself authored."""
    found: set[str] = set()
    for commit in commits:
        login = (commit.get("author") or {}).get("login")
        name = ((commit.get("commit") or {}).get("author") or {}).get("name")
        if str(login or name or "").lower() != bot_login.lower():
            continue
        message = str((commit.get("commit") or {}).get("message") or "")
        found.update(m.group(1).lower() for m in TRAILER_RE.finditer(message))
    return found
