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
from bot.rules.provenance import BuiltFrom, parse_repository, parse_revision

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


# --- where an image was built from (issue 22) ---------------------------------------------------

IMAGE_TRAILER = "Image"
SOURCE_TRAILER = "Image-Source"
REVISION_TRAILER = "Image-Revision"
_PROVENANCE_KEYS = (IMAGE_TRAILER, SOURCE_TRAILER, REVISION_TRAILER)
_TRAILER_LINE_RE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9-]*):[ \t]*(\S(?:.*\S)?)[ \t]*$")


def is_bot_commit(commit: Mapping[str, Any], bot_login: str) -> bool:
    """True for a commit GitHub attributes to the app: its author *account* is the app's bot
    user and GitHub verified its signature (GitHub signs what an app commits through the API
    and the merges it makes). Names, e-mail addresses and message text are what a pusher
    writes, so none of them counts; neither does an account linked by e-mail alone, since
    anyone can put the bot's no-reply address in a commit they push."""
    return from_app(commit_facts(commit), bot_login)


def provenance_trailers(image: str, built_from: BuiltFrom) -> str:
    """The trailers a dev bump commit carries: which image, and what it was built from."""
    lines = [f"{IMAGE_TRAILER}: {image}", f"{SOURCE_TRAILER}: {built_from.repository}"]
    if built_from.revision is not None:
        lines.append(f"{REVISION_TRAILER}: {built_from.revision}")
    return "\n".join(lines)


def read_provenance(message: str) -> tuple[str, BuiltFrom] | None:
    """(image, what it was built from) from the trailers of a dev bump commit's message.

    Only the message's last paragraph is its trailer block (git's rule), and every line of it
    must be a ``Key: value`` trailer; the image and a valid repository must be there, and a
    revision, when present, must be a full SHA. Anything else reads as nothing.
    """
    paragraphs = [p for p in re.split(r"\n[ \t]*\n", message.strip()) if p.strip()]
    if len(paragraphs) < 2:
        return None  # a title alone has no trailers
    found: dict[str, str] = {}
    for line in paragraphs[-1].splitlines():
        match = _TRAILER_LINE_RE.match(line.strip())
        if match is None:
            return None
        key, value = match.group(1), match.group(2)
        for name in _PROVENANCE_KEYS:
            if key.lower() == name.lower():
                if name in found:
                    return None  # said twice: ambiguous
                found[name] = value
    image = found.get(IMAGE_TRAILER)
    repository = parse_repository(found.get(SOURCE_TRAILER))
    if image is None or repository is None:
        return None
    revision = None
    if REVISION_TRAILER in found:
        revision = parse_revision(found[REVISION_TRAILER])
        if revision is None:
            return None
    return image, BuiltFrom(repository, revision)


def strip_app_trailers(message: str) -> str:
    """``message`` without lines that look like the trailers believed only in the app's own
    commits (provenance, ``Requested-by:``): for text the bot copies into a commit of its own
    from commits it did not make (a merge it performs)."""
    keys = tuple(k.lower() + ":" for k in (*_PROVENANCE_KEYS, TRAILER))
    kept = [line for line in message.splitlines() if not line.strip().lower().startswith(keys)]
    return "\n".join(kept)
