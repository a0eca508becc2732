"""The audit report as data, and how it is written for people (Markdown) and machines (CSV, JSON).

Pure: ``bot.audit`` gathers the facts and the verdicts (re-derived with the gate's own rules);
this module only lays them out. Exceptions come first in every format that has an order, so an
auditor reads the problems before the routine.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from bot.rules.approvals import ApprovalVerdict, Counted
from bot.rules.lineage import (
    ChangeVerdict,
    Evidence,
    LineageReport,
    describe_item,
    format_duration,
)
from bot.rules.overrides import Override
from bot.texts.summaries import md_cell, md_code, md_escape

__all__ = [
    "GREEN",
    "AppLink",
    "CheckAtMerge",
    "FileRow",
    "Format",
    "Record",
    "Rederived",
    "Report",
    "Requester",
    "per_tenant",
    "render",
    "render_csv",
    "render_json",
    "render_markdown",
    "slot_labels",
]

Format = Literal["md", "csv", "json"]
RecordKind = Literal["pull_request", "direct_push"]

#: Conclusions branch protection treats as passing.
GREEN = frozenset({"success", "neutral", "skipped"})


@dataclass(frozen=True)
class FileRow:
    """One file of a change inside ``clusters/``, with the image before and after for inputs."""

    environment: str | None
    cluster: str
    tenant: str | None
    path: str
    status: str  # added | modified | removed | renamed ...
    old_image: str | None
    new_image: str | None
    image_changed: bool


@dataclass(frozen=True)
class CheckAtMerge:
    """What a gate check said when the pull request was merged.

    ``state`` is the run's conclusion if it had completed by the merge, ``pending`` if it had
    started but not completed, ``missing`` if no run of the trusted app existed yet.
    """

    name: str
    state: str
    run_id: int | None = None
    app: str | None = None
    completed_at: datetime | None = None
    title: str = ""
    url: str = ""

    @property
    def green(self) -> bool:
        return self.state in GREEN


@dataclass(frozen=True)
class Requester:
    """Who asked for the change, and how we know."""

    login: str
    how: str


@dataclass(frozen=True)
class Rederived:
    """The gate's verdicts, re-derived from GitHub data as of the merge with the same rules."""

    lineage: str  # success | failure
    lineage_reports: tuple[LineageReport, ...]
    lineage_note: str  # why nothing needed tracing, when nothing did
    approvals: str | None  # success | pending | failure; None without a pull request
    approval_verdicts: tuple[ApprovalVerdict, ...]
    approvals_note: str
    window: str | None = None  # success | failure; None where the calendar was not judged
    window_note: str = ""  # why the environment was closed

    def state_of(self, check: str) -> str | None:
        if check.endswith("/window"):
            return self.window
        return self.lineage if check.endswith("/lineage") else self.approvals


@dataclass(frozen=True)
class AppLink:
    """What a change of images means for the application (issue 22): the link to GitHub's
    comparison of the commits the two images were built from, or why there is none."""

    tenants: tuple[str, ...]
    old_image: str
    new_image: str
    url: str  # "" when the comparison cannot be made (see ``reason``)
    reason: str = ""


@dataclass(frozen=True)
class Record:
    """One change that reached the environment: a merged pull request or a direct push."""

    kind: RecordKind
    sha: str  # the commit on the default branch (merge commit, or the pushed commit)
    url: str
    at: datetime  # merged_at, or the pushed commit's committer date
    by: str | None  # merged_by, or the pushed commit's committer
    title: str
    changes: tuple[FileRow, ...]
    requested_by: tuple[Requester, ...]
    checks: tuple[CheckAtMerge, ...]
    rederived: Rederived | None  # None: nothing to judge against (the repository's first commit)
    exceptions: tuple[str, ...]
    disagreements: tuple[str, ...]
    notes: tuple[str, ...]
    org: str
    number: int | None = None
    author: str | None = None
    head_sha: str | None = None
    base_sha: str | None = None
    #: who let the change through a failing check (break-glass), when and why
    overrides: tuple[Override, ...] = ()
    app_changes: tuple[AppLink, ...] = ()

    @property
    def label(self) -> str:
        """``#12`` or ``direct push 1a2b3c4``."""
        return f"#{self.number}" if self.number is not None else f"direct push {self.sha[:7]}"


@dataclass(frozen=True)
class Report:
    repo: str
    environment: str
    since: datetime | None
    until: datetime
    records: tuple[Record, ...]  # oldest first
    notes: tuple[str, ...]

    @property
    def exceptions(self) -> tuple[Record, ...]:
        return tuple(r for r in self.records if r.exceptions)

    @property
    def period(self) -> str:
        start = f"from {_iso(self.since)}" if self.since is not None else "from the beginning"
        return f"{start} to {_iso(self.until)}"


def render(report: Report, fmt: Format) -> str:
    return {"md": render_markdown, "csv": render_csv, "json": render_json}[fmt](report)


def slot_labels(verdict: ApprovalVerdict) -> list[str]:
    """``sre#1``, ``sre#2``, ``tech-leads#1`` for ``verdict.counted`` (which is in slot order)."""
    seen: dict[str, int] = {}
    labels = []
    for item in verdict.counted:
        seen[item.team] = seen.get(item.team, 0) + 1
        labels.append(f"{item.team}#{seen[item.team]}")
    return labels


# --- Markdown -----------------------------------------------------------------------------------


def render_markdown(report: Report) -> str:
    env = md_escape(report.environment)
    lines = [f"# Audit of {env} in {md_escape(report.repo)}", ""]
    lines.append(
        f"Period {report.period} (UTC). "
        + _count(len(report.records), "change")
        + f" reached {env}; "
        + _count(len(report.exceptions), "exception")
        + "."
    )
    lines.append("")
    if not report.records:
        lines += [f"No change reached {env} in this period.", ""]
        return "\n".join(lines + _md_notes(report.notes))
    lines += ["## Exceptions", ""]
    if report.exceptions:
        lines += [_exception_line(r) for r in report.exceptions]
    else:
        lines.append(
            f"None: every change to {env} went through a pull request whose gate was green "
            "at merge."
        )
    lines.append("")
    disagreeing = [r for r in report.records if r.disagreements]
    if disagreeing:
        lines += ["## Where the recorded checks and the re-derived verdicts differ", ""]
        lines += [f"- {r.label}: {md_escape(d)}" for r in disagreeing for d in r.disagreements]
        lines.append("")
    lines += ["## Changes", ""]
    for record in report.records:
        lines += _md_record(record)
    return "\n".join(lines + _md_notes(report.notes))


def _exception_line(record: Record) -> str:
    what = f"{record.label} {_quote(record.title)}" if record.title else record.label
    verb = "merged" if record.kind == "pull_request" else "pushed"
    by = f" by @{md_escape(record.by)}" if record.by else ""
    reasons = "; ".join(md_escape(reason) for reason in record.exceptions)
    return f"- ❌ **{what}**, {verb} {_iso(record.at)}{by}: {reasons}."


def _md_record(record: Record) -> list[str]:
    mark = "❌ " if record.exceptions else ""
    if record.kind == "pull_request":
        lines = [f"### {mark}#{record.number} {md_escape(record.title)}", ""]
        link = f" ([pull request]({record.url}))" if record.url else ""
        lines.append(
            f"Merged {_iso(record.at)} by {_who(record.by)} as `{record.sha[:7]}` "
            f"(head `{(record.head_sha or '')[:7]}`, base `{(record.base_sha or '')[:7]}`); "
            f"opened by {_who(record.author)}{link}."
        )
    else:
        lines = [f"### {mark}Direct push {record.sha[:7]}: {md_escape(record.title)}", ""]
        lines.append(
            f"Pushed {_iso(record.at)}: committed by {_who(record.by)}, authored by "
            f"{_who(record.author)} ({_short_link(record)}). No pull request, so no reviews."
        )
    lines.append("")
    if record.requested_by:
        asked = ", ".join(
            f"@{md_escape(r.login)} ({md_escape(r.how)})" for r in record.requested_by
        )
        lines += [f"Requested by: {asked}.", ""]
    if record.exceptions:
        lines += ["**Exception:** " + "; ".join(md_escape(e) for e in record.exceptions) + ".", ""]
    if record.overrides:
        lines += ["**Overridden (break-glass):**", ""]
        lines += [
            f"- `promotion/{o.check}` by @{md_escape(o.login)} at {_iso(o.at)} on "
            f"`{o.head[:7]}`: {md_escape(o.reason)}" + (f" ([comment]({o.url}))" if o.url else "")
            for o in record.overrides
        ]
        lines.append("")
    lines += _md_changes(record.changes)
    lines += _md_app_changes(record.app_changes)
    if record.checks:
        lines += _md_checks(record)
    if record.rederived is not None:
        lines += _md_approvals(record.rederived, record.org)
        lines += _md_lineage(record.rederived)
    lines += _md_notes(record.notes, heading="**Notes**")
    return lines


def _md_changes(rows: Sequence[FileRow]) -> list[str]:
    lines = ["| Environment | Cluster | Tenant | File | Image |", "| --- | --- | --- | --- | --- |"]
    for row in rows:
        if row.image_changed:
            image = f"{_image(row.old_image, 'none')} → {_image(row.new_image, 'removed')}"
        elif row.path.rsplit("/", 1)[-1].startswith("input."):
            image = "unchanged (other values)"
        else:
            image = "—"
        cells = [
            md_escape(row.environment or "(none)"),
            md_escape(row.cluster),
            md_escape(row.tenant or "—"),
            f"{md_code(row.path)} ({md_escape(row.status)})",
            image,
        ]
        lines.append("| " + " | ".join(md_cell(c) for c in cells) + " |")
    return [*lines, ""]


def _md_app_changes(links: Sequence[AppLink]) -> list[str]:
    """One line per image change: the application's commits between the two builds."""
    if not links:
        return []
    lines = ["**Application changes:**", ""]
    for link in links:
        who = ", ".join(md_escape(t) for t in link.tenants)
        move = f"{_image(link.old_image, 'none')} → {_image(link.new_image, 'none')}"
        if link.url:
            lines.append(f"- {who}: {move}: [the commits between the two builds]({link.url})")
        else:
            lines.append(f"- {who}: {move}: no comparison ({md_escape(link.reason)})")
    return [*lines, ""]


def _md_checks(record: Record) -> list[str]:
    lines = [
        "| Check on the merged head | At merge | Re-derived as of the merge |",
        "| --- | --- | --- |",
    ]
    for check in record.checks:
        at_merge = f"{_mark(check.state)} {check.state}"
        if check.run_id is not None:
            done = f", completed {_iso(check.completed_at)}" if check.completed_at else ""
            by = f" by {md_escape(check.app)}" if check.app else ""
            at_merge += f" ([run {check.run_id}]({check.url}){by}{done})"
        rederived = record.rederived.state_of(check.name) if record.rederived else None
        again = f"{_mark(rederived)} {rederived}" if rederived else "—"
        lines.append("| " + " | ".join(md_cell(c) for c in (check.name, at_merge, again)) + " |")
    return [*lines, ""]


def _md_approvals(gate: Rederived, org: str) -> list[str]:
    if gate.approvals is None:
        return []
    if not gate.approval_verdicts:
        return [f"**Approvals:** {md_escape(gate.approvals_note)}", ""]
    lines: list[str] = []
    for verdict in gate.approval_verdicts:
        rule = " and ".join(f"{r.count} from @{org}/{r.team}" for r in verdict.rules)
        lines += [
            f"**Approvals for {md_escape(verdict.environment)}** ({verdict.state}; requires "
            f"{md_escape(rule)}):",
            "",
        ]
        for item, slot in zip(verdict.counted, slot_labels(verdict), strict=True):
            lines.append(f"- ✅ {_approval(item, slot, org)}")
        lines += [f"- ⛔ @{md_escape(b.user)} {md_escape(b.reason)}" for b in verdict.blocking]
        lines += [f"- ➖ @{md_escape(n.user)} {md_escape(n.reason)}" for n in verdict.not_counted]
        lines += [f"- ⏳ {m.count} from @{org}/{m.team} missing" for m in verdict.missing]
        lines.append("")
    return lines


def _approval(item: Counted, slot: str, org: str) -> str:
    when = _iso(item.submitted_at) if item.submitted_at else "an unknown time"
    commit = (item.commit_id or "an unknown commit")[:7]
    return (
        f"@{md_escape(item.user)} filled @{org}/{md_escape(slot)}: "
        f"[approved]({item.html_url}) `{commit}` at {when}"
    )


def _md_lineage(gate: Rederived) -> list[str]:
    if not gate.lineage_reports:
        return [f"**Lineage:** {md_escape(gate.lineage_note)}", ""]
    lines: list[str] = []
    for report in gate.lineage_reports:
        lines += [
            f"**Lineage of {md_escape(report.environment)} from "
            f"{md_escape(report.upstream or '(none)')}** ({_lineage_rule(report)}):",
            "",
        ]
        for verdict in report.verdicts:
            lines.append(f"- {'✅' if verdict.ok else '❌'} {_lineage_line(verdict)}")
        lines.append("")
    return lines


def _lineage_line(verdict: ChangeVerdict) -> str:
    change = verdict.change
    item = describe_item(change.item) if change.item.startswith("source:") else change.item
    head = f"{md_escape(change.cluster)} / {md_escape(item)} → {_image(change.new, 'removed')}: "
    if not verdict.evidence:
        return head + md_escape(verdict.reason)
    return head + "; ".join(_evidence(e) for e in verdict.evidence)


def _evidence(item: Evidence) -> str:
    period = f"since {_iso(item.since)}"
    if item.until is not None:
        period = f"from {_iso(item.since)} until {_iso(item.until)}"
    status = f", Flux status {md_code(item.status_context)} success" if item.status_context else ""
    link = f"[{item.commit_sha[:7]}]({item.commit_url})" if item.commit_url else item.commit_sha[:7]
    return f"ran in {md_escape(item.cluster)} {period} (landed in {link}){status}"


def _lineage_rule(report: LineageReport) -> str:
    scope = "every" if report.upstream_clusters == "all" else "any"
    parts = [f"in {scope} {md_escape(report.upstream or '')} cluster"]
    if report.min_soak is not None:
        parts.append(f"minSoak {format_duration(report.min_soak)}")
    if report.require_upstream_status is not None:
        parts.append(f"requireUpstreamStatus {md_code(report.require_upstream_status)}")
    return ", ".join(parts)


def _md_notes(notes: Sequence[str], heading: str = "## Notes") -> list[str]:
    if not notes:
        return []
    return [heading, "", *(f"- {md_escape(n)}" for n in notes), ""]


# --- CSV ----------------------------------------------------------------------------------------

CSV_COLUMNS = (
    "record",
    "kind",
    "commit",
    "at",
    "by",
    "pull_request",
    "title",
    "exception",
    "exception_reasons",
    "environment",
    "cluster",
    "tenant",
    "path",
    "status",
    "from_image",
    "to_image",
    "requested_by",
    "approvals_counted",
    "approvals_not_counted",
    "lineage",
    "lineage_recorded",
    "lineage_rederived",
    "approvals_recorded",
    "approvals_rederived",
    "disagreements",
    "overrides",
    "app_comparison",
)


def render_csv(report: Report) -> str:
    """One row per (record, tenant, cluster) change, exceptions first; RFC 4180 quoting."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    ordered = sorted(report.records, key=lambda r: not r.exceptions)  # stable: by time within
    for record in ordered:
        for row in per_tenant(record.changes):
            writer.writerow(_csv_row(record, row))
    return out.getvalue()


def per_tenant(rows: Sequence[FileRow]) -> list[FileRow]:
    """The files of one (environment, cluster, tenant) as one row: paths and statuses joined,
    the image change of its input file."""
    groups: dict[tuple[str | None, str, str | None], list[FileRow]] = {}
    for row in rows:
        groups.setdefault((row.environment, row.cluster, row.tenant), []).append(row)
    merged = []
    for (environment, cluster, tenant), files in groups.items():
        image = next((f for f in files if f.image_changed), None)
        merged.append(
            FileRow(
                environment=environment,
                cluster=cluster,
                tenant=tenant,
                path="; ".join(f.path for f in files),
                status="; ".join(f.status for f in files),
                old_image=image.old_image if image else None,
                new_image=image.new_image if image else None,
                image_changed=image is not None,
            )
        )
    return merged


def _csv_row(record: Record, row: FileRow) -> list[str]:
    gate = record.rederived
    recorded = {c.name: c.state for c in record.checks}
    counted, not_counted = _approvals_flat(gate)
    return [
        record.label,
        record.kind,
        record.sha,
        _iso(record.at),
        record.by or "",
        str(record.number) if record.number is not None else "",
        record.title,
        "yes" if record.exceptions else "no",
        "; ".join(record.exceptions),
        row.environment or "",
        row.cluster,
        row.tenant or "",
        row.path,
        row.status,
        row.old_image or "",
        row.new_image or "",
        "; ".join(f"{r.login} ({r.how})" for r in record.requested_by),
        counted,
        not_counted,
        _lineage_of(gate, row),
        recorded.get("promotion/lineage", ""),
        gate.lineage if gate else "",
        recorded.get("promotion/approvals", ""),
        (gate.approvals or "") if gate else "",
        "; ".join(record.disagreements),
        "; ".join(
            f"promotion/{o.check} by {o.login} at {_iso(o.at)}: {o.reason}"
            for o in record.overrides
        ),
        _comparison_of(record, row),
    ]


def _comparison_of(record: Record, row: FileRow) -> str:
    """The application comparison of this row's image change, if the record has one."""
    for link in record.app_changes:
        if (
            row.tenant in link.tenants
            and row.old_image == link.old_image
            and row.new_image == link.new_image
        ):
            return link.url
    return ""


def _approvals_flat(gate: Rederived | None) -> tuple[str, str]:
    if gate is None:
        return "", ""
    counted = []
    not_counted = []
    for verdict in gate.approval_verdicts:
        for item, slot in zip(verdict.counted, slot_labels(verdict), strict=True):
            when = _iso(item.submitted_at) if item.submitted_at else "?"
            counted.append(f"{item.user} {slot} {when} {(item.commit_id or '?')[:7]}")
        not_counted += [f"{n.user}: {n.reason}" for n in (*verdict.blocking, *verdict.not_counted)]
    return "; ".join(counted), "; ".join(not_counted)


def _lineage_of(gate: Rederived | None, row: FileRow) -> str:
    """The lineage verdict of this row's change, in one line."""
    if gate is None:
        return ""
    for report in gate.lineage_reports:
        for verdict in report.verdicts:
            change = verdict.change
            if change.path in row.path.split("; "):
                evidence = "; ".join(
                    f"{e.cluster} since {_iso(e.since)} ({e.commit_sha[:7]})"
                    + (f" status {e.status_context}" if e.status_context else "")
                    for e in verdict.evidence
                )
                return f"{'ok' if verdict.ok else 'failed'}: {evidence or verdict.reason}"
    return ""


# --- JSON ---------------------------------------------------------------------------------------


def render_json(report: Report) -> str:
    """A list of records, exceptions first, every field; keys sorted so output is stable."""
    ordered = sorted(report.records, key=lambda r: not r.exceptions)
    return json.dumps([record_json(r) for r in ordered], indent=2, sort_keys=True) + "\n"


def record_json(record: Record) -> dict[str, Any]:
    gate = record.rederived
    return {
        "kind": record.kind,
        "label": record.label,
        "commit": record.sha,
        "url": record.url,
        "at": _iso(record.at),
        "by": record.by,
        "title": record.title,
        "author": record.author,
        "pull_request": record.number,
        "head_sha": record.head_sha,
        "base_sha": record.base_sha,
        "exception": bool(record.exceptions),
        "exception_reasons": list(record.exceptions),
        "changes": [
            {
                "environment": row.environment,
                "cluster": row.cluster,
                "tenant": row.tenant,
                "path": row.path,
                "status": row.status,
                "from_image": row.old_image,
                "to_image": row.new_image,
                "image_changed": row.image_changed,
            }
            for row in record.changes
        ],
        "requested_by": [{"login": r.login, "how": r.how} for r in record.requested_by],
        "checks": [_check_json(c, gate) for c in record.checks],
        "approvals": _approvals_json(gate),
        "lineage": _lineage_json(gate),
        "disagreements": list(record.disagreements),
        "overrides": [
            {
                "check": f"promotion/{o.check}",
                "by": o.login,
                "at": _iso(o.at),
                "reason": o.reason,
                "head_sha": o.head,
                "comment_url": o.url,
            }
            for o in record.overrides
        ],
        "window": (
            {"state": gate.window, "closed": gate.window_note} if gate and gate.window else None
        ),
        "notes": list(record.notes),
        "app_changes": [
            {
                "tenants": list(link.tenants),
                "from_image": link.old_image,
                "to_image": link.new_image,
                "comparison_url": link.url or None,
                "reason": link.reason or None,
            }
            for link in record.app_changes
        ],
    }


def _check_json(check: CheckAtMerge, gate: Rederived | None) -> dict[str, Any]:
    return {
        "name": check.name,
        "at_merge": check.state,
        "run_id": check.run_id,
        "app": check.app,
        "completed_at": _iso(check.completed_at) if check.completed_at else None,
        "title": check.title,
        "url": check.url,
        "rederived": gate.state_of(check.name) if gate else None,
    }


def _approvals_json(gate: Rederived | None) -> dict[str, Any] | None:
    if gate is None or gate.approvals is None:
        return None
    return {
        "state": gate.approvals,
        "note": gate.approvals_note,
        "environments": [
            {
                "environment": v.environment,
                "state": v.state,
                "rules": [{"team": r.team, "count": r.count} for r in v.rules],
                "counted": [
                    {
                        "user": c.user,
                        "team": c.team,
                        "slot": slot,
                        "review_id": c.review_id,
                        "submitted_at": _iso(c.submitted_at) if c.submitted_at else None,
                        "commit_id": c.commit_id,
                        "url": c.html_url,
                    }
                    for c, slot in zip(v.counted, slot_labels(v), strict=True)
                ],
                "not_counted": [{"user": n.user, "reason": n.reason} for n in v.not_counted],
                "blocking": [{"user": b.user, "reason": b.reason} for b in v.blocking],
                "missing": [{"team": m.team, "count": m.count} for m in v.missing],
            }
            for v in gate.approval_verdicts
        ],
    }


def _lineage_json(gate: Rederived | None) -> dict[str, Any] | None:
    if gate is None:
        return None
    return {
        "state": gate.lineage,
        "note": gate.lineage_note,
        "environments": [
            {
                "environment": report.environment,
                "upstream": report.upstream,
                "upstream_clusters": report.upstream_clusters,
                "min_soak": format_duration(report.min_soak) if report.min_soak else None,
                "require_upstream_status": report.require_upstream_status,
                "changes": [_verdict_json(v) for v in report.verdicts],
            }
            for report in gate.lineage_reports
        ],
    }


def _verdict_json(verdict: ChangeVerdict) -> dict[str, Any]:
    change = verdict.change
    return {
        "cluster": change.cluster,
        "item": change.item,  # a tenant, or source:<namespace>/<name>
        "path": change.path,
        "from": change.old,
        "to": change.new,
        "ok": verdict.ok,
        "kind": verdict.kind,
        "reason": verdict.reason,
        "upstream_now": dict(verdict.upstream_now),
        "evidence": [
            {
                "cluster": e.cluster,
                "value": e.value,
                "commit": e.commit_sha,
                "commit_url": e.commit_url,
                "since": _iso(e.since),
                "until": _iso(e.until) if e.until else None,
                "status_context": e.status_context,
            }
            for e in verdict.evidence
        ],
    }


# --- small helpers ------------------------------------------------------------------------------


def _iso(moment: datetime | None) -> str:
    """``2026-11-30T14:02:05Z``: GitHub's own spelling, to the second, always UTC."""
    if moment is None:
        return ""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _who(login: str | None) -> str:
    return f"@{md_escape(login)}" if login else "an unknown account"


def _quote(text: str) -> str:
    return f"“{md_escape(text)}”"


def _image(value: str | None, absent: str) -> str:
    return md_code(value) if value else f"*({absent})*"


def _mark(state: str | None) -> str:
    if state in GREEN:
        return "✅"
    return {"pending": "⏳", "missing": "❔"}.get(state or "", "❌")


def _short_link(record: Record) -> str:
    return f"[{record.sha[:7]}]({record.url})" if record.url else f"`{record.sha[:7]}`"
