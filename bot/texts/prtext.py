"""Titles and bodies of the pull requests the bot opens, and its replies (Markdown)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from bot.fleet.images import ImageRefError, parse_image
from bot.rules.bump import BumpPlan
from bot.rules.promote import PromotionPlan
from bot.texts import markers

MAX_BODY = 60_000  # GitHub's limit on PR bodies is 65,536 characters


def short_name(repository: str) -> str:
    """``registry.acme.com/team/payment`` -> ``payment``."""
    return repository.rstrip("/").rsplit("/", 1)[-1]


def bump_title(plan: BumpPlan) -> str:
    return f"Bump {short_name(plan.image.repository)} to {plan.image.tag} in {plan.environment}"


def bump_body(plan: BumpPlan) -> str:
    image = plan.image
    lines = [
        f"A new image was published: **`{image.reference}`**.",
        f"This moves every {plan.environment} tenant that runs `{image.repository}` to it.",
        "",
        "| Tenant | Cluster | From | To |",
        "|---|---|---|---|",
    ]
    for move in plan.moves:
        old, new = version_of(move.old), version_of(move.new)
        lines.append(f"| {move.tenant} | {move.cluster} | `{old}` | `{new}` |")
    if plan.current:
        lines += [
            "",
            "Already at this version: " + _tenant_list((m.tenant, m.cluster) for m in plan.current),
        ]
    if plan.skipped:
        lines += ["", "**Left out** (fix these and publish again, or bump them by hand):"]
        lines += [f"- {s.tenant} in {s.cluster}: {s.reason}" for s in plan.skipped]
    source = f"[{image.source}]({image.link})" if image.link else image.source
    lines += [
        "",
        f"Source: {source}.",
        "",
        f"Changes only {plan.environment} clusters, so the bot merges it as soon as the required"
        " checks pass. Label it `do-not-merge` to stop that.",
        "",
        markers.marker(kind="bump", image=image.repository, tag=image.tag, env=plan.environment),
    ]
    return "\n".join(lines)[:MAX_BODY]


def bump_commit_message(plan: BumpPlan) -> str:
    body = "\n".join(f"- {m.cluster}/{m.tenant}: {m.old} -> {m.new}" for m in plan.moves)
    return f"{bump_title(plan)}\n\n{body}\n\nSource: {plan.image.source}\n"


def superseded_comment(new_number: int, new_tag: str) -> str:
    return (
        f"Superseded by #{new_number} ({new_tag}): a newer image was published while this "
        "pull request was open. Closing it and deleting its branch."
    )


def version_of(value: str) -> str:
    """What follows the repository: ``v1.2.0``, ``v1.2.0@sha256:3da19…`` (shortened digest)."""
    try:
        ref = parse_image(value)
    except ImageRefError:
        return value
    digest = f"@{ref.digest[:19]}…" if ref.digest else ""
    return f"{ref.tag or ''}{digest}" or value


def _tenant_list(items: Iterable[tuple[str, str]]) -> str:
    return ", ".join(f"{tenant} ({cluster})" for tenant, cluster in items)


# --- promotions ---------------------------------------------------------------------------------


def _promoted_version(plan: PromotionPlan, tenant: str) -> str:
    values = {
        version_of(str(m.new)) if m.key == "image" else str(m.new)
        for m in plan.moves
        if m.tenant == tenant and m.key in ("image", "ref.tag")
    }
    return ", ".join(sorted(values))


def promotion_title(plan: PromotionPlan) -> str:
    tenants = plan.promoted
    if len(tenants) == 1:
        version = _promoted_version(plan, tenants[0])
        suffix = f" ({version})" if version else ""
        return f"Promote {tenants[0]} to {plan.environment}{suffix}"
    return f"Promote {len(tenants)} tenants to {plan.environment}: {', '.join(tenants)}"[:250]


def promotion_body(
    plan: PromotionPlan,
    evidence: Mapping[tuple[str, str], tuple[str, str]],
    requester: str,
    comment_url: str,
) -> str:
    asked = f"[asked]({comment_url})" if comment_url else "asked"
    lines = [
        f"@{requester} {asked} to promote "
        + ", ".join(f"**{t}**" for t in plan.promoted)
        + f" from **{plan.upstream}** to **{plan.environment}**.",
        "",
        "| Tenant | Cluster | Value | From | To |",
        "|---|---|---|---|---|",
    ]
    for m in plan.moves:
        old = version_of(str(m.old)) if m.key == "image" else str(m.old)
        new = version_of(str(m.new)) if m.key == "image" else str(m.new)
        lines.append(f"| {m.tenant} | {m.cluster} | `{m.key}` | `{old}` | `{new}` |")
    lines += ["", f"**Upstream evidence** (what {plan.upstream} runs on the default branch):"]
    for tenant in plan.promoted:
        for cluster in plan.sources.get(tenant, ()):
            sha_url = evidence.get((tenant, cluster))
            where = f" since [{sha_url[0][:7]}]({sha_url[1]})" if sha_url and sha_url[1] else ""
            lines.append(f"- {tenant}: {cluster}{where}")
    for tenant, clusters in plan.missing_clusters.items():
        if tenant in plan.promoted:
            lines.append(
                f"- {tenant} is not in {', '.join(clusters)}: skipped (a promotion never "
                "creates a tenant)."
            )
    extra = _plan_notes(plan)
    if extra:
        lines += ["", *extra]
    lines += [
        "",
        f"The `promotion/lineage` and `promotion/approvals` checks gate this PR. @{requester} "
        "asked for it, so their approval does not count.",
        "",
        markers.marker(
            kind="promotion",
            env=plan.environment,
            tenants=list(plan.tenants),
            requested_by=requester,
        ),
    ]
    return "\n".join(lines)[:MAX_BODY]


def promotion_commit_message(plan: PromotionPlan, requester: str) -> str:
    moves = "\n".join(f"- {m.cluster}/{m.tenant} {m.key}: {m.old} -> {m.new}" for m in plan.moves)
    return f"{promotion_title(plan)}\n\n{moves}\n\n{markers.trailer(requester)}\n"


def promotion_opened(plan: PromotionPlan, pr: Mapping[str, Any]) -> str:
    text = f"Opened #{pr['number']}: {pr.get('title', '')}."
    extra = _plan_notes(plan)
    return text + ("\n\n" + "\n".join(extra) if extra else "")


def nothing_to_promote(plan: PromotionPlan) -> str:
    notes = _plan_notes(plan)
    if plan.up_to_date and not notes:
        return (
            f"{', '.join(plan.up_to_date)} already run{'s' if len(plan.up_to_date) == 1 else ''} "
            f"in {plan.environment} what {plan.upstream} runs: nothing to promote."
        )
    return "Nothing was promoted.\n\n" + "\n".join(notes)


def _plan_notes(plan: PromotionPlan) -> list[str]:
    notes: list[str] = []
    for tenant, values in plan.disagreements.items():
        shown = "; ".join(
            f"{cluster}: " + ", ".join(f"{k}={v}" for k, v in vals.items())
            for cluster, vals in values.items()
        )
        notes.append(
            f"- **{tenant}** not promoted: the {plan.upstream} clusters disagree ({shown}). "
            f"Bring them to one value first."
        )
    for tenant in plan.not_upstream:
        notes.append(f"- **{tenant}** not promoted: no {plan.upstream} cluster has it.")
    for problem in plan.problems:
        notes.append(f"- not promoted: {problem}")
    if plan.up_to_date and plan.changes:
        notes.append(f"- already up to date: {', '.join(plan.up_to_date)}")
    return notes
