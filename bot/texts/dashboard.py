"""The Promotion dashboard and ``/status`` replies in Markdown, from the pure matrix of
``bot.rules.dashboard``."""

from __future__ import annotations

from collections.abc import Sequence

from bot.fleet.images import ImageRefError, parse_image
from bot.fleet.policy import Policy
from bot.rules.dashboard import (
    MAX_BODY,
    MAX_ROWS,
    Cell,
    OpenPromotion,
    Row,
    drift,
    images_of,
    waiting,
)
from bot.texts import markers


def short(image: str | None) -> str:
    """The tag (and a short digest) of an image, the whole value when it does not parse."""
    if image is None:
        return "–"
    try:
        ref = parse_image(image)
    except ImageRefError:
        return image
    text = ref.tag or ""
    if ref.digest:
        text += f"@{ref.digest[7:19]}"
    return text or image


def _cell_text(cells: Sequence[Cell]) -> str:
    images = images_of(cells)
    problems = [c for c in cells if c.problem]
    if len(images) == 1 and not problems:
        return f"`{short(next(iter(images)))}`"
    parts = [
        f"{c.cluster}: " + (f"⚠ {c.problem}" if c.problem else f"`{short(c.image)}`") for c in cells
    ]
    mark = " ⚠ drift" if len(images) > 1 else ""
    return "<br>".join(parts) + mark


def render_matrix(rows: Sequence[Row], policy: Policy) -> list[str]:
    envs = [e.name for e in policy.environments]
    lines = ["| Tenant | " + " | ".join(envs) + " |", "|---" * (len(envs) + 1) + "|"]
    for row in rows[:MAX_ROWS]:
        cells = [_cell_text(row.cells[e]) if e in row.cells else "" for e in envs]
        lines.append(f"| {row.tenant} | " + " | ".join(cells) + " |")
    if len(rows) > MAX_ROWS:
        lines.append(f"\n… {len(rows) - MAX_ROWS} more tenants not shown.")
    return lines


def render_dashboard(
    rows: Sequence[Row],
    policy: Policy,
    promotions: Sequence[OpenPromotion],
    *,
    updated: str,
    unread: int = 0,
    calendar: Sequence[str] = (),
) -> str:
    """The dashboard issue's body; ``calendar`` is the deploy calendar section (lines), shown
    when an environment has windows or freezes or is frozen."""
    marks = {"success": "✅", "failure": "❌", "pending": "⏳"}
    lines = [
        "This issue is kept current by the fleet promotion bot: what runs where, what waits to "
        "be promoted, and the promotions under review. Comment `/promote <env> [tenant ...]` "
        "here to open a promotion, or `/status <tenant>` for one tenant.",
        "",
        "## Where each image runs",
        "",
        *render_matrix(rows, policy),
        *(
            [f"\n_{unread} input files are not read yet; they fill in over the next refreshes._"]
            if unread
            else []
        ),
        "",
        *(["## Deploy calendar", "", *calendar, ""] if calendar else []),
        "## Waiting to be promoted",
        "",
    ]
    pending = waiting(rows, policy)
    if pending:
        for w in pending:
            now = ", ".join(f"`{short(c)}`" for c in w.current) or "nothing"
            lines.append(
                f"- **{w.tenant}**: {w.upstream} runs `{short(w.upstream_image)}`, {w.environment} "
                f"runs {now}: `/promote {w.environment} {w.tenant}`"
            )
    else:
        lines.append("Nothing: every environment runs what its upstream runs.")
    lines += ["", "## Open promotions", ""]
    if promotions:
        lines += ["| PR | Lineage | Approvals | Window |", "|---|---|---|---|"]
        for p in promotions:
            cells = [f"{marks.get(v, v)} {v}" for v in (p.lineage, p.approvals, p.window)]
            lines.append(f"| [#{p.number} {p.title}]({p.url}) | " + " | ".join(cells) + " |")
    else:
        lines.append("None open.")
    lines += ["", "## Drift", ""]
    drifting = drift(rows)
    if drifting:
        for d in drifting:
            shown = ", ".join(f"{c}: `{short(i)}`" for c, i in d.images.items())
            lines.append(f"- **{d.tenant}** in {d.environment}: {shown}")
    else:
        lines.append("None: the clusters of each environment agree.")
    lines += ["", f"_Updated {updated}._", "", markers.marker(kind="dashboard")]
    text = "\n".join(lines)
    return text if len(text) <= MAX_BODY else text[: MAX_BODY - 40] + "\n\n… (truncated)"


def render_status(rows: Sequence[Row], policy: Policy, tenant: str | None) -> str:
    chosen = [r for r in rows if tenant is None or r.tenant == tenant]
    lines = render_matrix(chosen, policy)
    behind = waiting(chosen, policy)
    if behind:
        lines.append("")
        lines += [
            f"- {w.environment} is behind {w.upstream} (`{short(w.upstream_image)}`): "
            f"`/promote {w.environment} {w.tenant}`"
            for w in behind
        ]
    return "\n".join(lines)
