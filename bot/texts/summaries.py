"""Markdown for GitHub's check-run page, rendered from verdicts only.

The rules (``bot.rules``) decide and say why; this module only lays their reasons out so that a
reviewer sees at a glance what is missing and an auditor can follow every decision to its
evidence (the review, the upstream commit). Everything returned stays inside GitHub's documented
limits: summary and text at most 65,535 characters (cut at a line with a visible note), annotation
titles at most 255 characters and messages at most 64 KB, at most 50 annotations per request.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from bot.fleet.check import Finding
from bot.fleet.images import ImageRefError, parse_image
from bot.fleet.policy import ApprovalRule
from bot.rules.approvals import ApprovalVerdict, Counted
from bot.rules.gate import BlindSpot
from bot.rules.lineage import (
    NEVER_RAN_KINDS,
    ChangeVerdict,
    Evidence,
    LineageReport,
    describe_item,
    format_duration,
)

__all__ = [
    "ANNOTATIONS_PER_REQUEST",
    "ANNOTATION_MESSAGE_BYTES",
    "ANNOTATION_TITLE_LIMIT",
    "TEXT_LIMIT",
    "Annotation",
    "CheckOutput",
    "render_approvals",
    "render_lineage",
    "render_not_gated",
    "truncate_markdown",
]

TEXT_LIMIT = 65535  # output.summary and output.text, in characters
ANNOTATION_TITLE_LIMIT = 255  # characters
ANNOTATION_MESSAGE_BYTES = 64 * 1024
ANNOTATIONS_PER_REQUEST = 50

AnnotationLevel = Literal["notice", "warning", "failure"]

_STATE_MARK = {"success": "✅", "pending": "⏳", "failure": "❌"}
_FENCE_RE = re.compile(r" {0,3}(`{3,}|~{3,})")
_ESCAPED = re.compile(r"([\\`*_\[\]<>~])")


@dataclass(frozen=True)
class Annotation:
    """A note on one line of a file in the pull request's diff (plain text, not Markdown)."""

    path: str
    start_line: int
    end_line: int
    annotation_level: AnnotationLevel
    message: str
    title: str

    def as_json(self) -> dict[str, Any]:
        """GitHub's annotation object."""
        return {
            "path": self.path,
            "start_line": self.start_line,
            "end_line": self.end_line,
            "annotation_level": self.annotation_level,
            "message": self.message,
            "title": self.title,
        }


@dataclass(frozen=True)
class CheckOutput:
    """The ``output`` of a check run: a title, a Markdown summary and text, annotations."""

    title: str
    summary: str
    text: str
    annotations: tuple[Annotation, ...]

    def as_json(self) -> dict[str, Any]:
        """GitHub's output object with the first 50 annotations; the caller sends the rest in
        later updates (GitHub appends them), ``ANNOTATIONS_PER_REQUEST`` at a time."""
        return {
            "title": self.title,
            "summary": self.summary,
            "text": self.text,
            "annotations": [a.as_json() for a in self.annotations[:ANNOTATIONS_PER_REQUEST]],
        }


# --- lineage -----------------------------------------------------------------------------------


def render_lineage(
    reports: Sequence[LineageReport],
    *,
    repo_url: str,
    notes: Sequence[str] = (),
    blind_spots: Sequence[BlindSpot] = (),
) -> CheckOutput:
    """The ``promotion/lineage`` output: what could not be judged first, then one table per
    environment (and traced key), failures first.

    ``repo_url`` (``https://github.com/owner/repo``) links evidence whose commit URL is unknown.
    ``notes`` are Markdown lines from the caller (skipped clusters, policy problems).
    """
    verdicts = [verdict for report in reports for verdict in report.verdicts]
    failures = [verdict for verdict in verdicts if not verdict.ok]
    lines = [f"**{_lineage_headline(len(verdicts), len(failures))}**", ""]
    if blind_spots:
        lines = [
            f"**Lineage cannot pass: the bot could not judge {_n(len(blind_spots), 'part')} "
            "of this change.**",
            "",
        ]
        if verdicts:
            lines += [_lineage_headline(len(verdicts), len(failures)), ""]
    lines += render_blind_spots(blind_spots)
    for report in reports:
        lines += _lineage_section(report, repo_url.rstrip("/"))
    lines += _notes(notes)
    title = _lineage_title(reports, len(verdicts), failures)
    if blind_spots:
        title = f"Could not judge {_n(len(blind_spots), 'part')} of the change"
        if failures:
            title += f"; {_lineage_title(reports, len(verdicts), failures)}"
    return CheckOutput(
        title=_clip(title, ANNOTATION_TITLE_LIMIT),
        summary=truncate_markdown("\n".join(lines)),
        text=truncate_markdown(_lineage_explanation(reports)),
        annotations=blind_spot_annotations(blind_spots)
        + tuple(
            _lineage_annotation(verdict, report.upstream)
            for report in reports
            for verdict in report.failures
        ),
    )


# --- blind spots ------------------------------------------------------------------------------


def render_blind_spots(spots: Sequence[BlindSpot]) -> list[str]:
    """The section every check shows when the bot could not see or judge part of a change."""
    if not spots:
        return []
    lines = [
        "### ⚠️ What the bot could not see",
        "",
        "The gate fails closed: this pull request counts as touching every gated environment, "
        "the approvals of each apply, lineage cannot pass, and the bot never merges it by "
        "itself.",
        "",
    ]
    for spot in spots[:50]:
        where = ""
        if spot.path is not None:
            where = md_code(f"{spot.path}:{spot.line}" if spot.line else spot.path) + ": "
        lines.append(f"- {where}{md_escape(spot.reason)}")
    if len(spots) > 50:
        lines.append(f"- … and {len(spots) - 50} more")
    lines.append("")
    return lines


def blind_spot_annotations(spots: Sequence[BlindSpot]) -> tuple[Annotation, ...]:
    """A failure annotation on each blind spot that has a file."""
    return tuple(
        Annotation(
            spot.path,
            spot.line or 1,
            spot.line or 1,
            "failure",
            _clip_bytes(spot.reason, ANNOTATION_MESSAGE_BYTES),
            "The gate could not judge this",
        )
        for spot in spots
        if spot.path is not None
    )


def _lineage_title(
    reports: Sequence[LineageReport], total: int, failures: Sequence[ChangeVerdict]
) -> str:
    if not failures:
        return (
            "No lineage to verify" if total == 0 else f"Lineage verified for {_n(total, 'change')}"
        )
    upstreams = {report.upstream or "" for report in reports if report.failures}
    where = f"in {upstreams.pop()}" if len(upstreams) == 1 else "upstream"
    noun = _value_noun([verdict.change.item for verdict in failures])
    if all(verdict.kind in NEVER_RAN_KINDS for verdict in failures):
        return f"{_n(len(failures), noun)} never ran {where}"
    return f"{_n(len(failures), noun)} not verified {where}"


def _lineage_headline(total: int, failed: int) -> str:
    if total == 0:
        return "No changed value in an environment with an upstream."
    if failed == 0:
        return f"Every changed value ran upstream first ({_n(total, 'change')})."
    return f"{failed} of {_n(total, 'change')} without upstream evidence; each is annotated."


def _lineage_section(report: LineageReport, repo_url: str) -> list[str]:
    if report.upstream is None:
        count = _n(len(report.verdicts), "change")
        return [
            f"### {md_escape(report.environment)}",
            f"No upstream environment: lineage not required ({count}).",
            "",
        ]
    mark = _STATE_MARK["success" if report.ok else "failure"]
    key = "" if report.key == "image" else f" · {md_code(report.key)}"
    lines = [
        f"### {mark} {md_escape(report.environment)} ← {md_escape(report.upstream)}{key}",
        "",
        "| Tenant | Cluster | Change (old → new) | Evidence |",
        "| --- | --- | --- | --- |",
    ]
    ordered = sorted(report.verdicts, key=lambda verdict: verdict.ok)  # failures first, stable
    for verdict in ordered:
        change = verdict.change
        item = describe_item(change.item) if change.item.startswith("source:") else change.item
        cells = [
            md_escape(item),
            md_escape(change.cluster),
            f"{_value(change.old, 'new')} → {_value(change.new, 'removed')}",
            _lineage_evidence(verdict, repo_url),
        ]
        lines.append("| " + " | ".join(md_cell(cell) for cell in cells) + " |")
    lines.append("")
    return lines


def _lineage_evidence(verdict: ChangeVerdict, repo_url: str) -> str:
    if verdict.kind in ("removed", "not-required"):
        return f"— {md_escape(verdict.reason)}"
    if verdict.ok:
        return "<br>".join(f"✅ {_evidence(item, repo_url)}" for item in verdict.evidence)
    now = "; ".join(
        f"{md_escape(cluster)} has {_value(value, 'none')}"
        for cluster, value in verdict.upstream_now.items()
    )
    return f"❌ {md_escape(verdict.reason)}." + (f"<br>Now: {now}" if now else "")


def _evidence(item: Evidence, repo_url: str) -> str:
    """One deployment, e.g. `v1.2.0` in staging-use1-01 since 2026-11-30 14:02 UTC ([1a2b3c4])."""
    url = item.commit_url or f"{repo_url}/commit/{item.commit_sha}"
    if item.until is None:
        period = f"since {_when(item.since)}"
    else:
        period = f"from {_when(item.since)} until {_when(item.until)}"
    status = f", status {md_code(item.status_context)} success" if item.status_context else ""
    return (
        f"{md_code(_version(item.value))} in {md_escape(item.cluster)} {period} "
        f"([{item.commit_sha[:7]}]({url})){status}"
    )


def _lineage_annotation(verdict: ChangeVerdict, upstream: str | None) -> Annotation:
    noun = _value_noun([verdict.change.item])
    what = "never ran" if verdict.kind in NEVER_RAN_KINDS else "not verified"
    now = [f"{cluster} has {value or '(none)'}" for cluster, value in verdict.upstream_now.items()]
    message = f"{verdict.reason}." + (f"\nNow: {'; '.join(now)}." if now else "")
    line = verdict.change.line or 1
    return Annotation(
        path=verdict.change.path,
        start_line=line,
        end_line=line,
        annotation_level="failure",
        message=_clip_bytes(message, ANNOTATION_MESSAGE_BYTES),
        title=_clip(f"{noun.capitalize()} {what} in {upstream}", ANNOTATION_TITLE_LIMIT),
    )


def _lineage_explanation(reports: Sequence[LineageReport]) -> str:
    """How the rule was applied, for the auditor who asks why a change passed."""
    lines = [
        "### How lineage is checked",
        "A changed value passes when the same artifact (image repository and tag, and the digest "
        "when either side pins one) was in place upstream on the default branch, now or "
        "earlier; the evidence is the commit that brought it there. Every `promoteKeys` value "
        "of every provider document is traced (other keys than the image by their exact "
        "value). The policy is read from the base branch, never from the pull request.",
        "",
    ]
    for report in reports:
        if report.upstream is not None:
            lines.append(f"- {md_escape(report.environment)}: {_lineage_rule(report)}")
    return "\n".join(lines)


def _lineage_rule(report: LineageReport) -> str:
    """The rule in words: in any staging cluster that has the tenant; for at least 24h; ..."""
    scope = "every" if report.upstream_clusters == "all" else "any"
    parts = [f"in {scope} {md_escape(report.upstream or '')} cluster that has the tenant"]
    if report.min_soak is not None:
        parts.append(f"for at least {format_duration(report.min_soak)}")
    if report.require_upstream_status is not None:
        pattern = md_code(report.require_upstream_status)
        parts.append(f"with a success status matching {pattern} on a commit of that deployment")
    return "; ".join(parts)


# --- approvals ---------------------------------------------------------------------------------


def render_approvals(
    verdicts: Sequence[ApprovalVerdict],
    *,
    org: str,
    notes: Sequence[str] = (),
    blind_spots: Sequence[BlindSpot] = (),
) -> CheckOutput:
    """The ``promotion/approvals`` output: per environment, who is still needed, who counted,
    whose review did not count and why, and who blocks."""
    lines = [f"**{_approvals_headline(verdicts, org)}**", ""]
    lines += render_blind_spots(blind_spots)
    for verdict in verdicts:
        lines += _approvals_section(verdict, org)
    lines += _notes(notes)
    return CheckOutput(
        title=_approvals_title(verdicts),
        summary=truncate_markdown("\n".join(lines)),
        text=truncate_markdown(
            "### How approvals are counted\n"
            "Each reviewer's latest review decides; a comment does not change it and a dismissed "
            "review is no vote. Only approvals of the head commit count. The pull request's "
            "author, the authors and committers of its commits, whoever asked for the promotion, "
            "and bots never count. Each person fills at most one slot. A request for changes from "
            "a member of a required team fails the check until it is dismissed or replaced. "
            "When a commit names no GitHub account (or cannot be read), whoever pushed it is "
            "unknown: the approvals must then suffice without any one approver."
        ),
        annotations=(),
    )


def _approvals_title(verdicts: Sequence[ApprovalVerdict]) -> str:
    blockers = _unique(item.user for verdict in verdicts for item in verdict.blocking)
    if blockers:
        who = f"@{blockers[0]}" if len(blockers) == 1 else f"{len(blockers)} reviewers"
        return f"Changes requested by {who}"
    missing = sum(item.count for verdict in verdicts for item in verdict.missing)
    if missing:
        return f"Waiting for {_n(missing, 'approval')}"
    approvers = _unique(item.user for verdict in verdicts for item in verdict.counted)
    return f"Approved by {_n(len(approvers), 'reviewer')}" if approvers else "No approvals required"


def _approvals_headline(verdicts: Sequence[ApprovalVerdict], org: str) -> str:
    if not verdicts:
        return "No environment that needs approvals changed."
    pending = [verdict for verdict in verdicts if verdict.missing]
    if any(verdict.blocking for verdict in verdicts):
        return "Blocked by a request for changes from a required team."
    if pending:
        needed = "; ".join(
            f"{md_escape(verdict.environment)}: {_still_needed(verdict, org)}"
            for verdict in pending
        )
        return f"Still needed: {needed}."
    return "Every required approval is in place."


def _approvals_section(verdict: ApprovalVerdict, org: str) -> list[str]:
    mark = _STATE_MARK[verdict.state]
    state = {"success": "approved", "pending": "waiting", "failure": "changes requested"}
    lines = [
        f"### {mark} {md_escape(verdict.environment)}: {state[verdict.state]}",
        "",
        _rule_sentence(verdict.rules, org),
        "",
    ]
    if verdict.blocking:
        lines += ["**Blocking**", ""]
        lines += [
            f"- ❌ @{md_escape(item.user)} {md_escape(item.reason)}" for item in verdict.blocking
        ]
        lines += ["", "The check fails until these reviews are dismissed or replaced.", ""]
    if verdict.missing:
        lines += [f"**Still needed:** {_still_needed(verdict, org)}", ""]
    lines += _unknown_pushers(verdict, org)
    if verdict.counted:
        lines += ["**Counted**", "", "| Reviewer | Slot | Approved |", "| --- | --- | --- |"]
        lines += [_counted_row(item, verdict, org) for item in verdict.counted]
        lines.append("")
    if verdict.not_counted:
        lines += ["**Not counted**", ""]
        lines += [
            f"- @{md_escape(item.user)} {md_escape(item.reason)}" for item in verdict.not_counted
        ]
        lines.append("")
    return lines


def _unknown_pushers(verdict: ApprovalVerdict, org: str) -> list[str]:
    """Why the rule must hold without any one approver: commits nobody can be named for."""
    if not verdict.unattributed and not verdict.unread:
        return []
    parts = []
    if verdict.unattributed:
        shas = ", ".join(f"`{sha[:7]}`" for sha in verdict.unattributed[:10])
        more = len(verdict.unattributed) - 10
        shas += f" and {more} more" if more > 0 else ""
        parts.append(
            f"{_n(len(verdict.unattributed), 'commit')} ({shas}) name no GitHub account as "
            "author or committer (an email no account has)"
        )
    if verdict.unread:
        parts.append(f"{_n(verdict.unread, 'commit')} of this pull request could not be read")
    lines = [
        "**Who pushed is unknown:** "
        + "; ".join(parts)
        + ". Whoever pushed them may be one of the approvers, so the approvals must suffice "
        "without any one of them.",
        "",
    ]
    for person, lacking in verdict.irreplaceable:
        what = ", ".join(f"{item.count} from {_team(org, item.team)}" for item in lacking)
        lines.append(f"- Without @{md_escape(person)}: {what} would be missing.")
    if verdict.irreplaceable:
        lines.append("")
    return lines


def _rule_sentence(rules: Sequence[ApprovalRule], org: str) -> str:
    parts = [f"{rule.count} from {_team(org, rule.team)}" for rule in rules if rule.count > 0]
    if not parts:
        return "No approvals required."
    distinct = ", each from a different person" if sum(r.count for r in rules) > 1 else ""
    return f"Requires {_join(parts)}{distinct}."


def _still_needed(verdict: ApprovalVerdict, org: str) -> str:
    """Who is missing, e.g. 1 more from @acme/sre, 1 from @acme/tech-leads."""
    have = {item.team for item in verdict.counted}
    needed = ", ".join(
        f"{item.count} {'more ' if item.team in have else ''}from {_team(org, item.team)}"
        for item in verdict.missing
    )
    if not verdict.also_from:
        return needed
    others = " or ".join(_team(org, team) for team in verdict.also_from)
    return f"{needed} (or from {others}: an approver in two teams can move over)"


def _counted_row(item: Counted, verdict: ApprovalVerdict, org: str) -> str:
    same_team = [other for other in verdict.counted if other.team == item.team]
    total = sum(rule.count for rule in verdict.rules if rule.team == item.team)
    slot = f"{_team(org, item.team)} ({same_team.index(item) + 1} of {total})"
    when = _when(item.submitted_at) if item.submitted_at is not None else "—"
    approved = f"[{when}]({item.html_url})" if item.html_url else when
    cells = [f"@{md_escape(item.user)}", slot, approved]
    return "| " + " | ".join(md_cell(cell) for cell in cells) + " |"


# --- not gated ---------------------------------------------------------------------------------


def render_not_gated(
    reason: str, *, notes: Sequence[str] = (), blind_spots: Sequence[BlindSpot] = ()
) -> CheckOutput:
    """A one-line success for pull requests no rule applies to, e.g. "No gated environment
    changed: dev only.", so that branch protection can require both checks everywhere."""
    first = reason.strip().splitlines()[0] if reason.strip() else "Nothing to check."
    extra = [*render_blind_spots(blind_spots), *_notes(notes)]
    summary = reason if not extra else "\n".join([reason, "", *extra])
    return CheckOutput(
        title=_clip(first, ANNOTATION_TITLE_LIMIT),
        summary=truncate_markdown(summary),
        text="",
        annotations=(),
    )


# --- fleet consistency ------------------------------------------------------------------------


def render_fleet(
    new_errors: Sequence[Finding],
    warnings: Sequence[Finding],
    *,
    clusters: Sequence[str],
    blind_spots: Sequence[BlindSpot] = (),
) -> CheckOutput:
    """The ``promotion/fleet`` output: what this PR breaks (fails the check), then what was
    already there or is only worth knowing (listed, does not fail)."""
    scope = _join(list(clusters)) if clusters else "no cluster"
    if new_errors:
        title = f"{_n(len(new_errors), 'consistency error')} introduced"
        head = f"**This pull request introduces {_n(len(new_errors), 'consistency error')}.**"
    elif warnings:
        title = f"Consistent; {_n(len(warnings), 'warning')}"
        head = "**No new consistency errors.** Warnings below do not fail the check."
    else:
        title = "Consistent"
        head = "**No consistency findings.**"
    lines = [head, "", f"Checked: {scope}.", "", *render_blind_spots(blind_spots)]
    if any(spot.kind == "incomplete" for spot in blind_spots):
        title = "The whole change could not be checked"
    if new_errors:
        lines += ["### ❌ Errors this pull request introduces", ""]
        lines += [f"- {md_code(_where(f))}: {md_escape(f.message)}" for f in new_errors]
        lines.append("")
    if warnings:
        lines += ["### ⚠️ Warnings", ""]
        lines += [f"- {md_code(_where(f))}: {md_escape(f.message)}" for f in warnings]
        lines.append("")
    return CheckOutput(
        title=_clip(title, ANNOTATION_TITLE_LIMIT),
        summary=truncate_markdown("\n".join(lines)),
        text=truncate_markdown(
            "### What is checked\n"
            "Each tenant's sync.yaml must take its inputs from the ResourceSetInputProvider in "
            "its input.yaml (same namespace); the Secret the blueprint expects must be created by "
            "an ExternalSecret in the tenant's or the cluster's base directory; an ExternalSecret "
            "must not read another environment's Vault path; inputs in the seed's spec.values "
            "form never reach the cluster. Only problems this pull request introduces fail."
        ),
        annotations=tuple(
            Annotation(
                f.path,
                f.line or 1,
                f.line or 1,
                "failure",
                _clip_bytes(f.message, ANNOTATION_MESSAGE_BYTES),
                "Fleet consistency",
            )
            for f in new_errors
        ),
    )


def _where(finding: Finding) -> str:
    return f"{finding.path}:{finding.line}" if finding.line else finding.path


# --- truncation --------------------------------------------------------------------------------


def truncate_markdown(text: str, limit: int = TEXT_LIMIT) -> str:
    """``text`` if it fits in ``limit`` characters; otherwise whole lines that fit, an open code
    block closed, a blank line (which also ends an open table), and
    "… N more lines not shown (limit 65,535 characters)"."""
    if len(text) <= limit:
        return text
    lines = text.splitlines(keepends=True)
    longest_fence = max((len(m.group(1)) for m in map(_FENCE_RE.match, lines) if m), default=0)
    reserve = len(_footer(len(lines), limit)) + longest_fence + 4
    if reserve >= limit:
        raise ValueError(f"a limit of {limit} characters leaves no room for the truncation note")
    kept: list[str] = []
    size = 0
    fence: str | None = None
    for line in lines:
        if size + len(line) > limit - reserve:
            break
        kept.append(line)
        size += len(line)
        fence = _fence_after(line, fence)
    hidden = len(lines) - len(kept)
    if not kept:  # an overlong first line: show its start rather than nothing
        kept, hidden = [lines[0][: limit - reserve]], len(lines) - 1
    body = "".join(kept).rstrip("\n") + "\n"
    if fence is not None:
        body += fence + "\n"
    return body + "\n" + _footer(hidden, limit)


def _footer(hidden: int, limit: int) -> str:
    return f"… {_n(hidden, 'more line')} not shown (limit {limit:,} characters)"


def _fence_after(line: str, fence: str | None) -> str | None:
    """The open code fence after ``line`` (``None`` outside a code block), per CommonMark: a fence
    closes on a line of at least as many of the same character and nothing else."""
    match = _FENCE_RE.match(line)
    if match is None:
        return fence
    run = match.group(1)
    if fence is None:
        return run
    if run[0] == fence[0] and len(run) >= len(fence) and not line[match.end() :].strip():
        return None
    return fence


# --- small helpers -----------------------------------------------------------------------------


def _notes(notes: Sequence[str]) -> list[str]:
    if not notes:
        return []
    return ["**Notes**", "", *(f"- {note}" for note in notes), ""]


def _when(moment: datetime) -> str:
    """``2026-11-30 14:02 UTC``; a naive time is taken to be UTC already."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _version(value: str) -> str:
    """What distinguishes one image from its neighbours: ``v1.2.0``, ``v1@sha256:0123456…``."""
    try:
        ref = parse_image(value)
    except ImageRefError:
        return value
    digest = f"@{ref.digest[:19]}…" if ref.digest is not None else ""
    return f"{ref.tag or ''}{digest}" or value


def _value(value: str | None, absent: str) -> str:
    return md_code(value) if value is not None else f"*({absent})*"


def _value_noun(items: Iterable[str]) -> str:
    kinds = {"source tag" if item.startswith("source:") else "image" for item in items}
    return kinds.pop() if len(kinds) == 1 else "change"


def _team(org: str, team: str) -> str:
    return f"@{org}/{team}"


def md_code(text: str) -> str:
    """An inline code span that survives backticks inside ``text``."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    ticks = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def md_escape(text: str) -> str:
    """Plain text for Markdown: no accidental emphasis, links or HTML, and one line."""
    return _ESCAPED.sub(r"\\\1", " ".join(text.split()))


def md_cell(text: str) -> str:
    """A table cell: a pipe would end the cell (even inside code), a newline the row."""
    return text.replace("|", "\\|").replace("\n", " ")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _clip_bytes(text: str, limit: int) -> str:
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    return data[: limit - 3].decode("utf-8", errors="ignore") + "…"


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _join(parts: Sequence[str]) -> str:
    return parts[0] if len(parts) == 1 else f"{', '.join(parts[:-1])} and {parts[-1]}"


def _unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))
