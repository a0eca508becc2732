"""Publish the bot's check runs: created once per (head, name), updated in place, written only
when their result or summary changed.

GitHub never lets a completed check run go back to in progress; when a verdict falls back to
pending on the same head (an approval dismissed), a new run with the same name is created, and
branch protection reads the newest run of each name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from bot.github.context import Context
from bot.texts.summaries import ANNOTATIONS_PER_REQUEST, CheckOutput

LINEAGE = "promotion/lineage"
APPROVALS = "promotion/approvals"
FLEET = "promotion/fleet"
WINDOW = "promotion/window"

Conclusion = Literal["success", "failure", "neutral", "action_required"]


@dataclass(frozen=True)
class DesiredCheck:
    name: str
    conclusion: Conclusion | None  # None: in progress (pending)
    output: CheckOutput
    details_url: str | None = None

    @property
    def status(self) -> str:
        return "in_progress" if self.conclusion is None else "completed"

    def fingerprint(self) -> tuple[str, str | None, str, str]:
        return (self.status, self.conclusion, self.output.title, self.output.summary)


def _fingerprint(run: dict[str, Any]) -> tuple[str, str | None, str, str]:
    output = run.get("output") or {}
    return (
        str(run.get("status")),
        run.get("conclusion"),
        str(output.get("title") or ""),
        str(output.get("summary") or ""),
    )


def _latest_by_name(runs: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    latest: dict[str, dict[str, Any]] = {}
    for run in runs:
        name = str(run.get("name"))
        best = latest.get(name)
        if best is None or int(run.get("id", 0)) > int(best.get("id", 0)):
            latest[name] = run
    return latest


def _remembered(entry: tuple[int, tuple[str, str | None, str, str]]) -> dict[str, Any]:
    """A check run as we last wrote it, in the shape GitHub lists it."""
    run_id, (status, conclusion, title, summary) = entry
    return {
        "id": run_id,
        "status": status,
        "conclusion": conclusion,
        "output": {"title": title, "summary": summary},
    }


async def publish(ctx: Context, repo: str, head_sha: str, desired: Sequence[DesiredCheck]) -> int:
    """Make the newest run of each desired name say what ``desired`` says; returns writes made.

    What we last wrote is remembered per (repo, head, name), so a repeated verdict (another
    review that changes nothing) costs no call at all. Re-runs (ctx.fresh) re-read GitHub.
    """
    memo = ctx.services.caches.derived
    pending = []
    for check in desired:
        key = ("check", repo, head_sha, check.name)
        hit = memo.get(key)
        if not ctx.fresh and hit is not None and hit[1] == check.fingerprint():
            continue
        pending.append(check)
    if not pending:
        return 0
    app_id = ctx.services.app_id
    known = {c.name: memo.get(("check", repo, head_sha, c.name)) for c in pending}
    if ("fresh-commit", repo, head_sha) in memo and not ctx.fresh:
        latest: dict[str, dict[str, Any]] = {}  # we made this commit a moment ago: no runs yet
    elif not ctx.fresh and all(v is not None for v in known.values()):
        # We wrote every one of these runs ourselves: their ids and states are known.
        latest = {name: _remembered(v) for name, v in known.items() if v is not None}
    else:
        runs = await ctx.gateway.check_runs_for(repo, head_sha, app_id=app_id)
        latest = _latest_by_name([r for r in runs if r.get("app", {}).get("id", app_id) == app_id])
    writes = 0
    for check in pending:
        key = ("check", repo, head_sha, check.name)
        run = latest.get(check.name)
        if run is not None and _fingerprint(run) == check.fingerprint():
            memo[key] = (int(run["id"]), check.fingerprint())
            continue
        body: dict[str, Any] = {
            "name": check.name,
            "status": check.status,
            "output": check.output.as_json(),
        }
        if check.conclusion is not None:
            body["conclusion"] = check.conclusion
        if check.details_url:
            body["details_url"] = check.details_url
        reopen = run is not None and run.get("status") == "completed" and check.conclusion is None
        if run is None or reopen:
            body["head_sha"] = head_sha
            created = await ctx.gateway.client.post(f"/repos/{repo}/check-runs", data=body)
            run_id = int(created["id"])
            ctx.services.learn_identity(created.get("app"))
        else:
            run_id = int(run["id"])
            await ctx.gateway.client.patch(f"/repos/{repo}/check-runs/{run_id}", data=body)
        writes += 1
        rest = check.output.annotations[ANNOTATIONS_PER_REQUEST:]
        while rest:
            # GitHub takes 50 annotations per request and appends each batch.
            batch, rest = rest[:ANNOTATIONS_PER_REQUEST], rest[ANNOTATIONS_PER_REQUEST:]
            await ctx.gateway.client.patch(
                f"/repos/{repo}/check-runs/{run_id}",
                data={
                    "output": {
                        "title": check.output.title,
                        "summary": check.output.summary,
                        "annotations": [a.as_json() for a in batch],
                    }
                },
            )
            writes += 1
        memo[key] = (run_id, check.fingerprint())
    memo.pop(("fresh-commit", repo, head_sha), None)
    return writes


def mark_fresh_commit(ctx: Context, repo: str, sha: str) -> None:
    """Tell :func:`publish` that ``sha`` was just created by us, so it has no check runs."""
    ctx.services.caches.derived[("fresh-commit", repo, sha)] = True
