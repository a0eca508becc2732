"""What the bot writes about the change calendar: the ``promotion/window`` check, an overridden
check, the freeze issues of ``/freeze``, the replies to the calendar commands, and the
dashboard's calendar section. Pure: verdicts in, Markdown out (and the freeze issue read back).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime

from bot.fleet.policy import Environment, Freeze, Overrides, Policy, Window
from bot.rules.calendar import (
    LIFTED_KIND,
    CalendarVerdict,
    EmergencyFreeze,
    EnvironmentVerdict,
    zone,
)
from bot.rules.overrides import ACK_KIND, OverrideVerdict, digest
from bot.texts import markers
from bot.texts.summaries import (
    ANNOTATION_TITLE_LIMIT,
    CheckOutput,
    md_escape,
    truncate_markdown,
)

__all__ = [
    "FREEZE_KIND",
    "describe_days",
    "describe_window",
    "freeze_issue_body",
    "freeze_issue_title",
    "local",
    "overridden",
    "override_ack",
    "pending_overrides",
    "read_freeze_issue",
    "render_calendar_section",
    "render_window",
    "who_may",
]

FREEZE_KIND = "freeze"
FREEZE_TITLE = "Deploy freeze: "
_DAY_TITLES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


# --- times and rules in words ------------------------------------------------------------------


def utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def local(moment: datetime, zone_name: str) -> str:
    """``2027-01-05 08:00 UTC (09:00 CET in Europe/Berlin)``: UTC and the zone's local time."""
    if zone_name == "UTC":
        return utc(moment)
    here = moment.astimezone(zone(zone_name))
    same_day = here.date() == moment.astimezone(UTC).date()
    shown = here.strftime("%H:%M %Z" if same_day else "%Y-%m-%d %H:%M %Z")
    return f"{utc(moment)} ({shown} in {zone_name})"


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def describe_days(days: Sequence[int]) -> str:
    """``every day``, ``Mon–Thu``, ``Mon, Wed–Fri``."""
    if len(days) == 7:
        return "every day"
    runs: list[list[int]] = []
    for day in sorted(days):
        if runs and runs[-1][-1] == day - 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    parts = [
        _DAY_TITLES[r[0]] if len(r) == 1 else f"{_DAY_TITLES[r[0]]}–{_DAY_TITLES[r[-1]]}"
        for r in runs
    ]
    return ", ".join(parts)


def describe_window(window: Window) -> str:
    """``Mon–Thu 09:00–16:00 (Europe/Berlin)``; a window past midnight says so."""
    after = " the next day" if window.spans_midnight else ""
    return (
        f"{describe_days(window.days)} {_clock(window.start)}–{_clock(window.end)}{after} "
        f"({window.timezone})"
    )


def who_may(overrides: Overrides, org: str, repo: str) -> str:
    """The people the policy lets freeze, unfreeze and override."""
    if overrides.team is None:
        return f"people with admin rights on {repo}"
    return f"members of @{org}/{overrides.team}"


def lifted_note(login: str, environment: str) -> str:
    """The bot's record, on the freeze issue, that ``/unfreeze`` lifted it."""
    return f"Lifted by @{login} (`/unfreeze {environment}`).\n\n" + markers.marker(
        kind=LIFTED_KIND, by=login, environment=environment
    )


def unfreeze_too_old(environment: str, held: Sequence[EmergencyFreeze]) -> str:
    """The reply to an ``/unfreeze`` written before the freezes that hold now."""
    which = ", ".join(
        f"#{e.number} (by @{e.by or 'someone'}"
        + (f" at {utc(e.since)}" if e.since else "")
        + f": {e.reason})"
        for e in held
    )
    return (
        f"{environment} stays frozen: {which} was made after this comment was written (it was "
        "read late), so it was not what you meant to lift. Comment "
        f"`/unfreeze {environment}` again if it should be lifted now."
    )


# --- promotion/window --------------------------------------------------------------------------


def render_window(
    verdict: CalendarVerdict, *, overrides: Overrides, org: str, repo: str
) -> CheckOutput:
    """The ``promotion/window`` output: every closed environment, why, and when it opens."""
    closed = verdict.closed
    if not verdict.environments:
        return _plain("No environment changed: nothing is restricted.")
    if not verdict.restricted:
        names = ", ".join(v.environment for v in verdict.environments)
        return _plain(f"No deploy windows or freezes apply to {names}: not restricted.")
    lines: list[str] = []
    if closed:
        names = ", ".join(v.environment for v in closed)
        lines += [f"**Closed for merges now: {md_escape(names)}.**", ""]
        title = _closed_title(closed)
    else:
        lines += ["**Every environment this pull request changes is open for merges now.**", ""]
        title = "Open: " + ", ".join(v.environment for v in verdict.environments)
    for item in sorted(verdict.environments, key=lambda v: v.open):
        lines += _section(item, overrides, org, repo)
    if closed:
        lines += [
            f"The check turns green by itself when every environment is open. In an emergency, "
            f"{who_may(overrides, org, repo)} can let this change through with "
            f"`/override window <reason>` ({_people(overrides.count)} needed).",
            "",
        ]
    lines.append(f"_Judged at {utc(verdict.at)}._")
    return CheckOutput(
        title=_clip(title),
        summary=truncate_markdown("\n".join(lines)),
        text=truncate_markdown(_EXPLANATION),
        annotations=(),
    )


_EXPLANATION = (
    "### How the calendar is read\n"
    "An environment is open when no emergency freeze (`/freeze`) holds it, no freeze of the "
    "policy covers the moment, and, if it has deploy windows, one of them is open. A window is "
    "open while the local clock of its time zone shows a time from its `from` up to (not "
    "including) its `until` on one of its days; a window whose `until` is before its `from` "
    "runs past midnight into the next day. On a day the clocks change, the local clock decides: "
    "a time skipped by the change opens (or closes) the window when the clock jumps past it, and "
    "a time that happens twice is inside the window both times. The policy is read from the base "
    "branch, never from the pull request."
)


def _plain(reason: str) -> CheckOutput:
    return CheckOutput(_clip(reason), reason, "", ())


def _closed_title(closed: Sequence[EnvironmentVerdict]) -> str:
    if len(closed) > 1:
        return f"{len(closed)} environments closed: " + ", ".join(v.environment for v in closed)
    item = closed[0]
    if item.emergencies:
        first = item.emergencies[0]
        who = f" by @{first.by}" if first.by else ""
        return f"{item.environment} closed: emergency freeze{who}"
    if item.freezes:
        freeze = max(item.freezes, key=lambda f: f.end)
        return f"{item.environment} closed: frozen ({freeze.reason}) until {utc(freeze.end)}"
    when = f"; opens {utc(item.opens_at)}" if item.opens_at else ""
    return f"{item.environment} closed: outside its deploy windows{when}"


def _section(item: EnvironmentVerdict, overrides: Overrides, org: str, repo: str) -> list[str]:
    name = md_escape(item.environment)
    if item.open:
        if not item.restricted:
            return [f"### ✅ {name}: open (not restricted)", ""]
        lines = [f"### ✅ {name}: open", ""]
        lines += [f"- Deploy window: {md_escape(describe_window(w))}" for w in item.windows]
        if item.closes_at is not None:
            lines.append(f"- Closes {local(item.closes_at, item.zone)}.")
        return [*lines, ""]
    lines = [f"### ❌ {name}: closed", ""]
    for emergency in item.emergencies:
        lines.append(f"- 🚨 {_emergency_line(emergency)}")
    for freeze in item.freezes:
        lines.append(
            f"- ❄️ Frozen: {md_escape(freeze.reason)}, from {utc(freeze.start)} "
            f"until {utc(freeze.end)}."
        )
    if item.outside_windows:
        rules = "; ".join(md_escape(describe_window(w)) for w in item.windows)
        lines.append(f"- 🕘 Outside its deploy windows: {rules}.")
    if item.opens_at is not None:
        lines.append(f"- **Opens next: {local(item.opens_at, item.zone)}.**")
    elif item.emergencies:
        lines.append(
            f"- **Opens when {who_may(overrides, org, repo)} comment "
            f"`/unfreeze {item.environment}`.**"
        )
    return [*lines, ""]


def _emergency_line(emergency: EmergencyFreeze) -> str:
    who = f" by @{md_escape(emergency.by)}" if emergency.by else ""
    since = f" since {utc(emergency.since)}" if emergency.since else ""
    link = f" ([#{emergency.number}]({emergency.url}))" if emergency.url else ""
    if emergency.problem:
        return (
            f"Emergency freeze{link}: {md_escape(emergency.problem)}, so it holds every "
            "environment until it is lifted."
        )
    return f"Emergency freeze{who}{since}: {md_escape(emergency.reason)}{link}."


def _people(count: int) -> str:
    return "1 person" if count == 1 else f"{count} different people"


def _clip(text: str, limit: int = ANNOTATION_TITLE_LIMIT) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- overrides ---------------------------------------------------------------------------------


def overridden(output: CheckOutput, verdict: OverrideVerdict) -> CheckOutput:
    """A failing check's output, turned into the success an override grants: who and why in
    the title and the summary, what was overridden below, failure annotations as warnings."""
    people = ", ".join(f"@{o.login} ({o.reason})" for o in verdict.counted)
    head = (
        f"**Overridden by {md_escape(people)}** on `{verdict.head[:7]}` "
        f"({len(verdict.counted)} of {verdict.needed} needed). This check would otherwise "
        "fail; the override is recorded here and in the audit's exceptions, and a push "
        "resets it."
    )
    lines = [head, ""]
    for item in verdict.counted:
        lines.append(
            f"- @{md_escape(item.login)} at {utc(item.at)}: {md_escape(item.reason)} "
            f"([comment]({item.url}))"
        )
    lines += ["", "---", "", "**What was overridden:** " + output.title, "", output.summary]
    return CheckOutput(
        title=_clip(f"Overridden by {people}"),
        summary=truncate_markdown("\n".join(lines)),
        text=output.text,
        annotations=tuple(replace(a, annotation_level="warning") for a in output.annotations),
    )


def pending_overrides(output: CheckOutput, verdict: OverrideVerdict) -> CheckOutput:
    """A failing check with overrides that do not (yet) suffice: say who counted and who not."""
    if not verdict.counted and not verdict.not_counted:
        return output
    lines = [output.summary, "", "**Overrides**", ""]
    for item in verdict.counted:
        lines.append(f"- @{md_escape(item.login)}: {md_escape(item.reason)} (counted)")
    for item, why in verdict.not_counted:
        lines.append(f"- @{md_escape(item.login)}: not counted, {md_escape(why)}")
    lines.append(f"- {len(verdict.counted)} of {verdict.needed} needed.")
    return CheckOutput(
        output.title, truncate_markdown("\n".join(lines)), output.text, output.annotations
    )


def override_ack(
    *,
    login: str,
    check: str,
    reason: str,
    head: str,
    comment_id: int,
    body: str,
    counted: int,
    needed: int,
) -> str:
    """The bot's acknowledgement of an ``/override``: the record the gate trusts."""
    state = (
        "the check passes now"
        if counted >= needed
        else f"{needed - counted} more needed from different people"
    )
    mark = markers.marker(
        kind=ACK_KIND,
        check=check,
        by=login,
        reason=reason,
        head=head,
        comment=comment_id,
        digest=digest(body),
    )
    return (
        f"@{login} Override of `promotion/{check}` recorded for `{head[:7]}` "
        f"({counted} of {needed}; {state}). It is listed in the audit's exceptions, and a push "
        f"to this pull request resets it.\n\n{mark}"
    )


# --- freeze issues -----------------------------------------------------------------------------


def freeze_issue_title(environment: str) -> str:
    return f"{FREEZE_TITLE}{environment}"


def freeze_issue_body(environment: str, *, by: str, reason: str, comment_url: str, who: str) -> str:
    """The body of the issue that *is* an emergency freeze while it is open."""
    return (
        f"🚨 **{md_escape(environment)} is frozen**: no pull request into it merges (the "
        f"`promotion/window` check fails) until this freeze is lifted.\n\n"
        f"- Frozen by @{by} ([comment]({comment_url})): {md_escape(reason)}\n"
        f"- Lift it with `/unfreeze {environment}` in a comment on any issue or pull request "
        f"of this repository ({who} may). Closing or editing this issue by hand does not lift "
        "it: the bot reopens it.\n\n"
        + markers.marker(kind=FREEZE_KIND, environment=environment, by=by, reason=reason)
    )


def read_freeze_issue(
    *, number: int, title: str, body: str | None, url: str, since: datetime | None
) -> EmergencyFreeze:
    """An open freeze issue of the bot, read back. When its title and its hidden marker no
    longer agree on the environment (someone edited it), it holds every environment."""
    marker = markers.read_marker(body)
    named = title.removeprefix(FREEZE_TITLE).strip() if title.startswith(FREEZE_TITLE) else None
    env = marker.get("environment")
    by = marker.get("by")
    reason = marker.get("reason")
    if marker.get("kind") != FREEZE_KIND or not isinstance(env, str) or env != named:
        return EmergencyFreeze(
            environment=None,
            reason=str(reason) if isinstance(reason, str) else "",
            by=by if isinstance(by, str) else None,
            since=since,
            number=number,
            url=url,
            problem=f"freeze issue #{number} was edited and no longer says which environment "
            "it holds",
        )
    return EmergencyFreeze(
        environment=env,
        reason=str(reason) if isinstance(reason, str) else "",
        by=by if isinstance(by, str) else None,
        since=since,
        number=number,
        url=url,
    )


# --- the dashboard -----------------------------------------------------------------------------


def render_calendar_section(
    policy: Policy, verdicts: Sequence[EnvironmentVerdict], *, now: datetime
) -> list[str]:
    """The dashboard's "Deploy calendar": each scheduled or frozen environment now, its windows,
    its freezes to come, and every emergency freeze with who and why (nothing when no
    environment has windows or freezes)."""
    shown = [v for v in verdicts if v.restricted]
    if not shown:
        return []
    lines = ["| Environment | Now | Next change | Windows |", "|---|---|---|---|"]
    for item in shown:
        now_text = "✅ open" if item.open else "❌ closed"
        if item.emergencies:
            now_text = "🚨 emergency freeze"
        elif item.freezes:
            now_text = "❄️ frozen: " + md_escape(item.freezes[0].reason)
        change = local(item.next_change, item.zone) if item.next_change else "—"
        if item.emergencies:
            change = f"`/unfreeze {item.environment}`"
        windows = "<br>".join(md_escape(describe_window(w)) for w in item.windows) or "any time"
        lines.append(f"| {md_escape(item.environment)} | {now_text} | {change} | {windows} |")
    lines.append("")
    emergencies = {e.number: e for v in shown for e in v.emergencies}
    if emergencies:
        lines += [f"- 🚨 {_emergency_line(e)}" for e in emergencies.values()]
    upcoming = [
        (name, f)
        for name, f in _freezes(policy.environments)
        if f.end > now and name in {v.environment for v in shown}
    ]
    lines += [
        f"- ❄️ {md_escape(name)} frozen from {utc(f.start)} until {utc(f.end)}: "
        f"{md_escape(f.reason)}"
        for name, f in sorted(upcoming, key=lambda p: p[1].start)[:20]
    ]
    return lines


def _freezes(envs: Sequence[Environment]) -> list[tuple[str, Freeze]]:
    return [(env.name, f) for env in envs for f in env.freezes]
