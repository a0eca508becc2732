"""Titles and bodies of the pull requests the bot opens, and its replies (Markdown)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from bot.fleet.images import ImageRefError, parse_image
from bot.rules.appchanges import AppChange, AppCommit
from bot.rules.bump import BumpPlan, is_older
from bot.rules.promote import PromotionPlan
from bot.rules.provenance import BuiltFrom
from bot.texts import markers
from bot.texts.summaries import md_cell, md_code, md_escape, truncate_markdown

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
    lines += ["", f"Source: {source}."]
    if image.built_from is not None:
        lines.append(built_from_line(image.built_from))
    lines += [
        "",
        "",
        f"Changes only {plan.environment} clusters, so the bot merges it as soon as the required"
        " checks pass. Label it `do-not-merge` to stop that.",
        "",
        markers.marker(kind="bump", image=image.repository, tag=image.tag, env=plan.environment),
    ]
    return "\n".join(lines)[:MAX_BODY]


def bump_commit_message(plan: BumpPlan) -> str:
    body = "\n".join(f"- {m.cluster}/{m.tenant}: {m.old} -> {m.new}" for m in plan.moves)
    text = f"{bump_title(plan)}\n\n{body}\n\nSource: {plan.image.source}\n"
    if plan.image.built_from is not None:
        # Git is the state: the trailers are how a later promotion knows what this image is.
        text += "\n" + markers.provenance_trailers(plan.image.reference, plan.image.built_from)
        text += "\n"
    return text


def built_from_line(built_from: BuiltFrom) -> str:
    """``Built from acme/payment-service@<sha>`` (GitHub links ``owner/repo@sha`` itself)."""
    if built_from.revision is None:
        return f"Built from `{built_from.repository}` (commit not given)."
    return f"Built from {built_from.repository}@{built_from.revision}."


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


def rolled_back(plan: PromotionPlan, app_changes: Sequence[AppChange] = ()) -> list[str]:
    """The tenants a promotion moves backwards: to an older version (both tags versions), or
    to a build whose commits GitHub says are behind the running one."""
    out = {t for change in app_changes if change.rollback for t in change.tenants}
    for move in plan.moves:
        if move.key != "image" or move.old is None or move.new is None:
            continue
        old, new = version_of(str(move.old)), version_of(str(move.new))
        if old and new and is_older(new, old):
            out.add(move.tenant)
    return sorted(out)


def promotion_title(plan: PromotionPlan, app_changes: Sequence[AppChange] = ()) -> str:
    """``Promote x to prod (v2)``; a promotion that goes backwards says so first, so that a
    rollback is never mistaken for an ordinary promotion in a list of PRs."""
    tenants = plan.promoted
    back = rolled_back(plan, app_changes)
    if len(tenants) == 1:
        version = _promoted_version(plan, tenants[0])
        suffix = f" ({version})" if version else ""
        verb = "Roll back" if back else "Promote"
        return f"{verb} {tenants[0]} {'in' if back else 'to'} {plan.environment}{suffix}"
    text = f"Promote {len(tenants)} tenants to {plan.environment}: {', '.join(tenants)}"
    if back:
        text = f"Rollback of {', '.join(back)}: " + text
    return text[:250]


def promotion_body(
    plan: PromotionPlan,
    evidence: Mapping[tuple[str, str], tuple[str, str]],
    requester: str,
    comment_url: str,
    app_changes: Sequence[AppChange] = (),
    *,
    web_url: str = "",
    app_problem: str = "",
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
    tail = [
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
    end = "\n" + "\n".join(tail)
    head = "\n".join(lines)[: MAX_BODY - len(end)]
    # The application's commits take the room left, so the marker at the end always fits.
    room = MAX_BODY - len(head) - len(end) - 2
    if room > 1000:
        section = app_changes_markdown(
            app_changes, web_url=web_url, problem=app_problem, limit=room
        )
        if section:
            head += "\n\n" + section.rstrip("\n")
    return head + end


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


# --- application changes (issue 22) -------------------------------------------------------------

APP_CHANGES_HEADING = "### Application changes"
_TITLE_CHARS = 120


def app_changes_markdown(
    changes: Sequence[AppChange], *, web_url: str, problem: str = "", limit: int = MAX_BODY
) -> str:
    """What a promotion changes in the application, per tenant: the commits between the image
    running in the target environment and the one promoted (the first 50, and a link to the
    full comparison), or one line saying why not (revision unknown, repository not readable,
    no change), with a rollback named as such. Empty when there is nothing to say. Cut at a
    line, with a note, to fit ``limit`` characters.

    Everything a commit author wrote (titles, names) is escaped and defused: it must not
    format, link or mention anyone in the fleet repository.
    """
    if not changes and not problem:
        return ""
    web = web_url.rstrip("/")
    lines = [APP_CHANGES_HEADING, ""]
    if problem:
        lines += [f"The application's commits are not shown: {md_escape(problem)}.", ""]
    for change in changes:
        lines += _app_change(change, web)
    text = "\n".join(lines).rstrip("\n") + "\n"
    return truncate_markdown(text, limit) if len(text) > limit else text


def _app_change(change: AppChange, web: str) -> list[str]:
    who = ", ".join(f"**{md_escape(t)}**" for t in change.tenants)
    old, new = md_code(version_of(change.old)), md_code(version_of(change.new))
    repo = md_code(change.repository) if change.repository else "the application"
    reason = _defused(md_escape(change.reason)) if change.reason else ""
    if change.kind == "rollback":
        if change.compared is not None:
            taken = change.compared.behind_by
            what = f"[{_n(taken, 'commit')} of {repo}]({change.url})"
            return [f"- ↩️ {who}: **rollback** from {old} to {new}: takes out {what}.", ""]
        return [
            f"- ↩️ {who}: **rollback** from {old} to {new} (an older version); the commits it "
            f"takes out are not shown: {reason}.",
            "",
        ]
    if change.kind == "identical":
        return [f"- {who}: {old} → {new}: no application change ({reason or 'same commit'}).", ""]
    if change.kind == "unknown":
        return [
            f'- {who}: {old} → {new}: application commits unknown: {reason} (see "How CI '
            "announces an image\" in the bot's README: `source` and `revision`).",
            "",
        ]
    if change.kind == "unreadable":
        link = f" ([the comparison]({change.url}), for those who can read it)" if change.url else ""
        return [
            f"- {who}: {old} → {new}: application commits not shown: the app cannot read {repo} "
            f"(not installed there, or no such repository or commit){link}.",
            "",
        ]
    if change.kind == "elsewhere":
        return [f"- {who}: {old} → {new}: {reason}; no comparison.", ""]
    compared = change.compared
    assert compared is not None
    total = compared.total_commits
    lines = [
        f"#### {who}: {old} → {new}",
        "",
        f"{_n(total, 'commit')} of {repo} ([full comparison]({change.url})):",
        "",
    ]
    if compared.status == "diverged":
        lines[-2] += (
            f" The running image has {_n(compared.behind_by, 'commit')} the promoted one does "
            "not: they leave with this promotion."
        )
    if compared.commits:
        lines += ["| Commit | Title | Author | Pull request |", "| --- | --- | --- | --- |"]
        lines += [_commit_row(c, change.repository or "", web) for c in compared.commits]
        lines.append("")
    if total > len(compared.commits):
        lines += [
            f"The first {len(compared.commits)} of {total} are listed; the "
            f"[full comparison]({change.url}) has them all.",
            "",
        ]
    return lines


def _commit_row(commit: AppCommit, repository: str, web: str) -> str:
    title = commit.title
    if commit.pull is not None:  # the pull request has its own column
        title = re.sub(r"\s*\(#[0-9]+\)\s*$", "", title) or title
    title = title if len(title) <= _TITLE_CHARS else title[: _TITLE_CHARS - 1] + "…"
    sha = f"[`{commit.sha[:7]}`]({commit.url})" if commit.url else f"`{commit.sha[:7]}`"
    if commit.author_login:
        login = commit.author_login
        page = f"apps/{login[:-5]}" if login.endswith("[bot]") else login
        author = f"[{md_escape(login)}]({web}/{page})"
    else:
        author = f"{_defused(md_escape(commit.author_name or 'unknown'))} (no GitHub account)"
    pull = f"[#{commit.pull}]({web}/{repository}/pull/{commit.pull})" if commit.pull else "—"
    cells = [sha, _defused(md_escape(title)), author, pull]
    return "| " + " | ".join(md_cell(c) for c in cells) + " |"


def _defused(text: str) -> str:
    """No mention, team mention or issue reference from text someone else wrote: a zero-width
    space after ``@`` and ``#`` keeps the characters and stops GitHub's links and pings."""
    return text.replace("@", "@\u200b").replace("#", "#\u200b")


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count:,} {noun}s"
