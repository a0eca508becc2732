"""The application's commits in the ``promotion/lineage`` summary of any PR that moves an image
into an environment with an upstream (a ``/promote`` PR or one made by hand), issue 22.

The lineage verdict comes first and is never cut for this section: the section gets the room
the summary has left within GitHub's 65,535 characters, and is cut at a line (with a note)
when that is not enough.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from bot.fleet.layout import Fleet
from bot.fleet.policy import Policy
from bot.github.appcommits import app_changes
from bot.github.context import Context
from bot.github.facts import RepoFacts
from bot.rules.appchanges import ImageMove
from bot.rules.lineage import Change
from bot.rules.sources import PREFIX as SOURCE_PREFIX
from bot.texts import prtext
from bot.texts.summaries import TEXT_LIMIT, CheckOutput, truncate_markdown

__all__ = ["lineage_section", "with_section"]

#: Below this many characters of room the section is left out rather than cut to nothing.
MIN_ROOM = 1000


async def lineage_section(
    ctx: Context,
    facts: RepoFacts,
    fleet: Fleet,
    policy: Policy,
    images: Mapping[str, Sequence[Change]],
    head: str,
) -> str:
    """The "Application changes" Markdown for the image changes the lineage check traced
    (environment -> changes); "" when there is nothing to show."""
    moves = [
        ImageMove(change.item, change.old, change.new)
        for changes in images.values()
        for change in changes
        if not change.item.startswith(SOURCE_PREFIX)
    ]
    changes = await app_changes(ctx, facts, fleet, policy, moves, head)
    return prtext.app_changes_markdown(
        changes, web_url=ctx.settings.github_url, problem=changes.problem, limit=TEXT_LIMIT
    )


def with_section(output: CheckOutput, section: str, limit: int = TEXT_LIMIT) -> CheckOutput:
    """``output`` with ``section`` after its summary, cut to the room left."""
    if not section:
        return output
    room = limit - len(output.summary) - 2
    if room < MIN_ROOM:
        return output
    if len(section) > room:
        section = truncate_markdown(section, room)
    summary = output.summary.rstrip("\n") + "\n\n" + section.rstrip("\n")
    return CheckOutput(output.title, summary, output.text, output.annotations)
