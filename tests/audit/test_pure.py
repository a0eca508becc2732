"""The audit's pure parts: reading check runs as of a merge, exceptions, disagreements, which PR
owns a commit, ordering, who asked, credentials, and the three renderings."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.cli.audit import (
    AuditError,
    Owners,
    check_at_merge,
    chronological,
    credentials,
    disagreements,
    gate_exceptions,
    parse_when,
    requested_by,
)
from bot.cli.auditreport import (
    CSV_COLUMNS,
    CheckAtMerge,
    FileRow,
    Record,
    Rederived,
    Report,
    render,
)
from bot.fake.state import generate_key
from bot.texts import markers

MERGED = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
APP = {"id": 7, "slug": "fleet-bot"}


def stamp(delta: int) -> str:
    return (MERGED + timedelta(seconds=delta)).strftime("%Y-%m-%dT%H:%M:%SZ")


def run(
    run_id: int,
    start: int,
    done: int | None,
    conclusion: str | None = "success",
    name: str = "promotion/lineage",
    app: dict[str, Any] = APP,
) -> dict[str, Any]:
    return {
        "id": run_id,
        "name": name,
        "app": app,
        "status": "completed" if done is not None else "in_progress",
        "conclusion": conclusion if done is not None else None,
        "started_at": stamp(start),
        "completed_at": stamp(done) if done is not None else None,
        "output": {"title": f"run {run_id}"},
        "html_url": f"https://github.test/runs/{run_id}",
    }


# --- dates --------------------------------------------------------------------------------------


def test_a_day_means_its_first_or_its_last_second() -> None:
    assert parse_when("2026-03-01") == datetime(2026, 3, 1, tzinfo=UTC)
    assert parse_when("2026-03-01", end=True) == datetime(2026, 3, 1, 23, 59, 59, tzinfo=UTC)


def test_times_keep_their_zone_and_default_to_utc() -> None:
    assert parse_when("2026-03-01T10:00:00Z") == datetime(2026, 3, 1, 10, tzinfo=UTC)
    assert parse_when("2026-03-01T10:00:00") == datetime(2026, 3, 1, 10, tzinfo=UTC)
    assert parse_when("2026-03-01T12:00:00+02:00") == datetime(2026, 3, 1, 10, tzinfo=UTC)
    with pytest.raises(AuditError, match="'last week' is not a date"):
        parse_when("last week")


# --- what the checks said at the merge ----------------------------------------------------------


def test_no_run_before_the_merge_is_missing() -> None:
    assert check_at_merge([], "promotion/lineage", MERGED, 7).state == "missing"
    late = [run(1, start=5, done=6)]
    assert check_at_merge(late, "promotion/lineage", MERGED, 7).state == "missing"


def test_a_run_completed_after_the_merge_was_pending_at_it() -> None:
    check = check_at_merge([run(1, start=-5, done=3)], "promotion/lineage", MERGED, 7)
    assert (check.state, check.run_id, check.green) == ("pending", 1, False)


def test_the_newest_run_started_before_the_merge_decides() -> None:
    runs = [run(1, -9, -8, "failure"), run(2, -5, -4, "success"), run(3, 2, 3, "failure")]
    check = check_at_merge(runs, "promotion/lineage", MERGED, 7)
    assert (check.state, check.run_id, check.app, check.title) == (
        "success",
        2,
        "fleet-bot",
        "run 2",
    )
    assert check.completed_at == MERGED - timedelta(seconds=4) and check.green


def test_only_the_trusted_apps_runs_count() -> None:
    impostor = run(9, -3, -2, "success", app={"id": 99, "slug": "impostor"})
    mine = run(1, -5, -4, "failure")
    assert check_at_merge([impostor, mine], "promotion/lineage", MERGED, 7).state == "failure"
    assert check_at_merge([impostor, mine], "promotion/lineage", MERGED, None).run_id == 9
    other_name = run(2, -5, -4, "success", name="promotion/approvals")
    assert check_at_merge([other_name], "promotion/lineage", MERGED, 7).state == "missing"


def test_exceptions_name_every_check_that_was_not_green() -> None:
    green = CheckAtMerge("promotion/lineage", "success")
    neutral = CheckAtMerge("promotion/approvals", "neutral")  # branch protection passes it
    assert gate_exceptions([green, neutral]) == ()
    red = CheckAtMerge("promotion/approvals", "missing")
    assert gate_exceptions([green, red]) == (
        "merged without a green gate",
        "promotion/approvals was missing at merge",
    )


def gate(lineage: str = "success", approvals: str | None = "success") -> Rederived:
    return Rederived(lineage, (), "", approvals, (), "")


def test_disagreements_say_what_differs_and_why_it_may() -> None:
    checks = [
        CheckAtMerge("promotion/lineage", "success"),
        CheckAtMerge("promotion/approvals", "success"),
    ]
    assert disagreements(checks, gate()) == ()
    (approvals,) = disagreements(checks, gate(approvals="pending"))
    assert approvals.startswith("promotion/approvals said success at merge, but the rules")
    assert "team membership is read as it is today" in approvals
    (lineage,) = disagreements(checks, gate(lineage="failure"))
    assert "promotion/lineage said success" in lineage and "before the merge" in lineage
    missing = [CheckAtMerge("promotion/lineage", "missing")]
    assert disagreements(missing, gate(lineage="failure")) == ()  # an exception, not a dispute


# --- which pull request brought a commit --------------------------------------------------------


def commit(sha: str, message: str = "change", date: str = "2026-03-01T11:00:00Z") -> dict[str, Any]:
    author = {"name": "Alice", "email": "alice@acme.test", "date": date}
    return {"sha": sha, "commit": {"message": message, "author": author}}


def test_a_commit_belongs_to_the_pr_that_merged_it_in_any_merge_style() -> None:
    owners = Owners()
    owners.add_pull(4, "squashed")
    owners.add_commits(5, [commit("branch-1", "prod v2"), commit("branch-2", "fix typo")])
    assert owners.owner(commit("squashed")) == 4
    assert owners.owner(commit("branch-2", "fix typo")) == 5  # merge commit: the PR's own
    assert owners.owner(commit("rebased-1", "prod v2\n")) == 5  # rebase: same message/author
    assert owners.owner(commit("rebased-1", "prod v2", "2026-03-01T11:00:01Z")) is None
    assert owners.owner(commit("pushed", "hotfix")) is None


def record(
    sha: str, at: datetime, number: int | None = None, exceptions: tuple[str, ...] = ()
) -> Record:
    return Record(
        kind="pull_request" if number else "direct_push",
        sha=sha,
        url="",
        at=at,
        by="bob",
        title=f"title of {sha}",
        changes=(
            FileRow(
                "prod", "prod-1", "app", f"clusters/prod-1/{sha}", "modified", None, None, False
            ),
        ),
        requested_by=(),
        checks=(),
        rederived=None,
        exceptions=exceptions,
        disagreements=(),
        notes=(),
        org="acme",
        number=number,
    )


def test_records_run_oldest_first_and_ties_follow_the_history() -> None:
    child, parent, older = (
        record("c" * 40, MERGED),
        record("p" * 40, MERGED, 3),
        record("o" * 40, MERGED - timedelta(1)),
    )
    owners = Owners()
    owners.add_pull(3, "m" * 40)
    walk = [{"sha": "c" * 40}, {"sha": "m" * 40}, {"sha": "o" * 40}]  # newest first
    assert chronological([child, parent, older], walk, owners) == (older, parent, child)


def test_who_asked_the_trailer_then_the_marker_then_the_author() -> None:
    bot = "fleet-bot[bot]"
    message = f"promote\n\n{markers.trailer('carol')}\n"
    trailer: dict[str, Any] = {
        "author": {"login": bot},
        "commit": {"message": message, "author": {"name": bot}, "verification": {"verified": True}},
    }
    by_bot = {"user": {"login": bot}, "body": markers.marker(requested_by="dana")}
    assert [r.login for r in requested_by(by_bot, [trailer], bot)] == ["carol"]
    assert requested_by(by_bot, [], bot)[0].login == "dana"
    by_person = {"user": {"login": "alice"}, "body": markers.marker(requested_by="dana")}
    (alice,) = requested_by(by_person, [], bot)
    assert (alice.login, alice.how) == ("alice", "opened the pull request")
    forged = {"author": {"login": "mallory"}, "commit": {"message": message}}
    assert requested_by(by_person, [forged], bot)[0].login == "alice"
    # the bot's noreply email typed into a person's commit: linked to the bot, but unsigned
    spoofed = {"author": {"login": bot}, "commit": {"message": message, "author": {"name": bot}}}
    assert requested_by(by_person, [spoofed], bot)[0].login == "alice"


# --- credentials --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pem() -> str:
    return generate_key()[0]


def test_app_credentials_win_and_need_no_webhook_secret(pem: str) -> None:
    env = {"APP_ID": "42", "PRIVATE_KEY": pem, "GITHUB_TOKEN": "ghp_x", "NODE_ENV": "production"}
    settings, token, app_id = credentials({**env, "GITHUB_API_URL": "https://ghe.test/api/v3"})
    assert (settings.app_id, token, app_id) == ("42", None, 42)
    assert settings.github_api_url == "https://ghe.test/api/v3"
    assert settings.github_url == "https://ghe.test"


def test_a_token_reads_alone_or_with_the_app_to_trust(tmp_path: Path) -> None:
    settings, token, app_id = credentials({"GITHUB_TOKEN": " ghp_x "})
    assert (token, app_id, settings.github_api_url) == ("ghp_x", None, "https://api.github.com")
    assert credentials({"GITHUB_TOKEN": "ghp_x", "APP_ID": "42"})[1:] == ("ghp_x", 42)
    with pytest.raises(AuditError, match="no credentials: set APP_ID and PRIVATE_KEY"):
        credentials({"APP_ID": "42"})
    with pytest.raises(AuditError, match="APP_ID must be the numeric App ID"):
        credentials({"APP_ID": "fleet-bot", "GITHUB_TOKEN": "x"})
    with pytest.raises(AuditError, match="PRIVATE_KEY_PATH names a file that cannot be read"):
        credentials({"APP_ID": "42", "PRIVATE_KEY_PATH": str(tmp_path / "none.pem")})
    with pytest.raises(AuditError, match="GITHUB_API_URL must be an http"):
        credentials({"GITHUB_TOKEN": "x", "GITHUB_API_URL": "api.github.com"})


# --- renderings ---------------------------------------------------------------------------------


def report(*records: Record) -> Report:
    return Report("acme/fleet", "prod", MERGED - timedelta(days=1), MERGED, records, ("a note",))


def test_a_clean_period_says_so_in_one_line() -> None:
    empty = render(report(), "md")
    assert "No change reached prod in this period." in empty
    assert "## Exceptions" not in empty and "- a note" in empty
    clean = render(report(record("a" * 40, MERGED, 3)), "md")
    assert "None: every change to prod went through a pull request whose gate was green" in clean


def test_titles_are_escaped_in_markdown_and_quoted_in_csv() -> None:
    nasty = dataclasses.replace(
        record("a" * 40, MERGED, 3, ("merged without a green gate",)), title='a, "b" *c* <d>'
    )
    md = render(report(nasty), "md")
    assert '#3 “a, "b" \\*c\\* \\<d\\>”' in md
    rows = list(csv.reader(io.StringIO(render(report(nasty), "csv"), newline="")))
    assert rows[0] == list(CSV_COLUMNS)
    assert rows[1][CSV_COLUMNS.index("title")] == 'a, "b" *c* <d>'
    assert rows[1][CSV_COLUMNS.index("exception")] == "yes"


def test_json_lists_exceptions_first_with_sorted_keys() -> None:
    clean, bad = record("a" * 40, MERGED, 3), record("b" * 40, MERGED, 4, ("x",))
    text = render(report(clean, bad), "json")
    data = json.loads(text)
    assert [r["label"] for r in data] == ["#4", "#3"]
    assert list(data[0]) == sorted(data[0])
    assert data[0]["changes"][0]["path"] == "clusters/prod-1/" + "b" * 40
