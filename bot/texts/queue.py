"""What the gate's checks say on a merge group's commit."""

from __future__ import annotations

from collections.abc import Sequence

from bot.texts.summaries import CheckOutput, md_code, truncate_markdown

#: Said when a verdict still waiting on a pull request (approvals missing) is final in a queue.
FINAL_IN_QUEUE = (
    "In the merge queue nothing more can arrive for this commit, so what is still missing fails "
    "the group and the queue takes the pull request out. Once it has what it needs, put it back "
    "in the queue."
)


def in_group(output: CheckOutput, number: int, parent_sha: str, *, final: bool) -> CheckOutput:
    """A pull request's verdict as published on its merge group: which pull request and which
    parent it was judged for, and (``final``) why a pending verdict fails here."""
    lead = (
        f"Merge queue: pull request #{number} merged onto `{parent_sha[:7]}`, judged with "
        "the pull request's reviews and the lineage on the default branch."
    )
    parts = [lead, ""]
    if final:
        parts += [f"**{FINAL_IN_QUEUE}**", ""]
    parts.append(output.summary)
    title = output.title if not final else f"{output.title} (fails in the merge queue)"
    return CheckOutput(
        title=title[:255],
        summary=truncate_markdown("\n".join(parts)),
        text=output.text,
        annotations=output.annotations,
    )


def unjudged(reason: str, paths: Sequence[str] = ()) -> CheckOutput:
    """The group cannot be judged: every check fails, and says why."""
    lines = [f"**The gate cannot judge this merge group, so it fails.** {reason}"]
    if paths:
        shown = ", ".join(md_code(p) for p in paths[:20])
        more = f" and {len(paths) - 20} more" if len(paths) > 20 else ""
        lines += [
            "",
            f"Changed by the group but not (in the same way) by the pull request: {shown}{more}.",
        ]
    lines += [
        "",
        "Each pull request needs its own merge group (the queue's grouping strategy "
        "`ALLGREEN`), made of exactly its own changes.",
    ]
    return CheckOutput(
        title="This merge group cannot be judged",
        summary=truncate_markdown("\n".join(lines)),
        text="",
        annotations=(),
    )
