"""The application side of a promotion: what each image was built from, and the commits between
two builds (issue 22). Facts only; ``bot.rules.appchanges`` judges them.

Two kinds of calls, both cached by what makes them immutable:

- **Origins.** The bot's dev bumps record an image's repository and commit as trailers in the
  bump commit (``bot.texts.markers``). They are read from the history of the tenant's input file in
  the first environment: one listing of up to 100 commits per page, messages included, so no
  commit is read on its own. Only commits GitHub attributes to the app count
  (:func:`bot.texts.markers.is_bot_commit`): anyone with push access can write trailers. The history
  at a given head never changes, nor does what a commit says: both are kept.
- **Comparisons.** One ``GET /repos/{app}/compare/{base}...{head}?per_page=50`` per
  (repository, base, head), kept for good (commits are immutable). A 404 or 403 (no such
  repository or commit, or the installation cannot read it) is remembered for ten minutes.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

import gidgethub

from bot.fleet.layout import Fleet
from bot.fleet.policy import Policy
from bot.github.client import TransientGitHubError
from bot.github.context import Context
from bot.github.facts import RepoFacts
from bot.github.gateway import GatewayError
from bot.rules.appchanges import (
    MAX_COMMITS,
    AppChange,
    Compared,
    Comparison,
    Found,
    ImageMove,
    judge,
    plan,
    reduce_comparison,
    same_image,
)
from bot.rules.provenance import BuiltFrom
from bot.texts import markers

__all__ = ["AppChanges", "app_changes", "compare", "forget_misses", "origins"]

#: Commits of one input file's history read when looking for origins (two listings at most).
HISTORY_LIMIT = 200
#: How long a comparison GitHub refused (404/403) is not asked again, in seconds.
REFUSED_TTL = 600.0
#: How long "the history of this input records nothing about this image" is kept, in seconds.
NOT_FOUND_TTL = 3600.0


class AppChanges(list[AppChange]):
    """The application changes of a promotion; ``problem`` says why they could not be read."""

    problem: str = ""


async def app_changes(
    ctx: Context,
    facts: RepoFacts,
    fleet: Fleet,
    policy: Policy,
    moves: Iterable[ImageMove],
    head: str,
) -> AppChanges:
    """What each move changes in the application (grouped by identical moves), for the PR
    body and the lineage summary. Informational: when GitHub fails, it says so instead."""
    wanted = [m for m in moves if m.old is not None and m.new is not None and m.old != m.new]
    out = AppChanges()
    if not wanted:
        return out
    try:
        known = await origins(ctx, facts, fleet, policy, wanted, head)
        planned = plan(wanted, known)
        found: dict[Comparison, Found] = {}
        for item in planned:
            if item.comparison is not None and item.comparison not in found:
                found[item.comparison] = await compare(ctx, item.comparison)
    except (TransientGitHubError, GatewayError, gidgethub.GitHubException) as exc:
        ctx.log.warning("%s: application commits not read: %s", facts.repo, exc)
        out.problem = "GitHub did not answer while the application's commits were read"
        return out
    out.extend(judge(planned, found, ctx.settings.github_url))
    return out


async def origins(
    ctx: Context,
    facts: RepoFacts,
    fleet: Fleet,
    policy: Policy,
    moves: Sequence[ImageMove],
    head: str,
    *,
    bot_login: str | None = None,
) -> dict[str, BuiltFrom | None]:
    """Image value -> what the app's dev bumps recorded about it (None: nothing found).

    Each tenant's input in the first environment is where its bumps landed; its history is read
    only while some value is still unknown, newest first, so a re-published tag takes the
    newest record.
    """
    if bot_login is None:
        bot_login = (await ctx.identity()).bot_login
    memo = ctx.services.caches.derived
    values = list(dict.fromkeys(v for m in moves for v in (m.old, m.new) if v is not None))
    found: dict[str, BuiltFrom | None] = {}
    for value in values:
        hit = memo.get(("image-origin", facts.repo, value))
        if isinstance(hit, BuiltFrom):
            found[value] = hit
    first = policy.first.name
    now = time.monotonic()
    for tenant in dict.fromkeys(m.tenant for m in moves):
        path = next(
            (p for c in fleet.clusters_of(first) if (p := fleet.input_path(c, tenant))), None
        )
        if path is None:
            continue
        # A value is promoted only after it ran in the first environment, so its bump is in
        # the history already: not finding it there stays true (re-read after an hour).
        misses = _misses(ctx, facts.repo)
        pending = [
            v
            for v in values
            if v not in found and now - misses.get((path, v), -NOT_FOUND_TTL) >= NOT_FOUND_TTL
        ]
        if not pending:
            continue
        for image, origin in await _recorded(facts, path, head, bot_login):
            for value in pending:
                if value not in found and same_image(value, image):
                    found[value] = origin
                    memo[("image-origin", facts.repo, value)] = origin
        for value in pending:
            if value not in found:
                misses[(path, value)] = now
    return {value: found.get(value) for value in values}


def _misses(ctx: Context, repo: str) -> dict[tuple[str, str], float]:
    """(input path, image) -> when its history was found to record nothing about the image."""
    key = ("image-origin-none", repo)
    known = ctx.services.caches.derived.get(key)
    if not isinstance(known, dict):
        known = {}
        ctx.services.caches.derived[key] = known
    return known


def forget_misses(ctx: Context, repo: str, image: str) -> None:
    """A bump of ``image`` is being made: earlier "nothing recorded" answers about it end."""
    misses = _misses(ctx, repo)
    for entry in [e for e in misses if same_image(e[1], image)]:
        del misses[entry]


async def _recorded(
    facts: RepoFacts, path: str, head: str, bot_login: str
) -> tuple[tuple[str, BuiltFrom], ...]:
    """(image, origin) recorded by the app's commits in the history of ``path`` up to
    ``head``, newest first. The listing is the one the lineage check reads of the same file
    (shared within the delivery); what it says is kept for good, keyed by the head SHA."""
    key = ("bot-origins", facts.repo, path, head, bot_login)
    memo = facts.ctx.services.caches.derived
    hit = memo.get(key)
    if isinstance(hit, tuple):
        return hit
    commits = await facts.path_history(path, head, limit=HISTORY_LIMIT)
    records: list[tuple[str, BuiltFrom]] = []
    for commit in commits:
        if not markers.is_bot_commit(commit, bot_login):
            continue
        message = str((commit.get("commit") or {}).get("message") or "")
        record = markers.read_provenance(message)
        if record is not None:
            records.append(record)
    result = tuple(records)
    memo[key] = result
    return result


async def compare(ctx: Context, comparison: Comparison) -> Found:
    """GitHub's comparison of two commits of an application repository (the first
    MAX_COMMITS commits, oldest first), or "unreadable"."""
    memo = ctx.services.caches.derived
    key = ("app-compare", comparison.repository.lower(), comparison.base, comparison.head)
    hit = memo.get(key)
    if isinstance(hit, Compared):
        return hit
    refused = memo.get(("app-compare-refused", *key[1:]))
    if isinstance(refused, float) and time.monotonic() - refused < REFUSED_TTL:
        return "unreadable"
    c = comparison
    url = f"/repos/{c.repository}/compare/{c.base}...{c.head}?per_page={MAX_COMMITS}"
    try:
        data: Any = await ctx.gateway.get(url)
    except gidgethub.BadRequest as exc:
        if exc.status_code not in (403, 404, 422):
            raise
        ctx.log.info("%s: compare %s...%s refused (%s)", c.repository, c.base, c.head, exc)
        memo[("app-compare-refused", *key[1:])] = time.monotonic()
        return "unreadable"
    answer = reduce_comparison(data if isinstance(data, dict) else {})
    memo[key] = answer
    return answer
