"""The audit's harder cases end to end: judging as of the merge when things changed since,
who asked for a promotion, range boundaries, a personal token, and clear failures."""

from __future__ import annotations

import asyncio
import io
import json
import math
import os
import sys
import time
from pathlib import Path

import pytest

from bot.__main__ import build_parser
from bot.cli import audit as audit_module
from bot.cli.audit import run
from bot.fake import samples
from tests.adversarial.test_visibility import DEV_PAYMENT, PROD_KUSTOMIZATION, kustomization
from tests.audit.kit import GATE, IMG, app_env, audit, by_label, gated_promotion, token_env
from tests.e2e.gatekit import DEV, PROD, land, open_change, path, with_image
from tests.harness import FLEET, ORG, Harness

STRICTER = samples.POLICY.replace(
    b"[{team: sre, count: 2}, {team: tech-leads, count: 1}]",
    b"[{team: sre, count: 3}, {team: tech-leads, count: 1}]",
)


async def next_second() -> str:
    """Sleep into the next wall-clock second (GitHub's times have one-second resolution) and
    return it as an ISO time."""
    await asyncio.sleep(math.ceil(time.time()) - time.time() + 0.05)
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


async def test_judged_with_the_policy_of_the_merge_even_after_it_tightened(
    world: Harness,
) -> None:
    number = await gated_promotion(world, "v2.0.0", "prod-v2.0.0")
    assert STRICTER != samples.POLICY
    world.fake.commit(FLEET, "main", {".github/promotion.yml": STRICTER}, "3 SREs", author="bob")
    await world.settle()
    record = by_label((await audit(world, "--format", "json")).json())[f"#{number}"]
    assert record["approvals"]["state"] == "success"  # 2 SREs were enough at the merge
    assert record["exception"] is False and record["disagreements"] == []
    assert any("The policy has changed since" in note for note in record["notes"])


async def test_a_membership_change_since_the_merge_is_reported_as_a_disagreement(
    world: Harness,
) -> None:
    number = await gated_promotion(world, "v2.0.0", "prod-v2.0.0")
    world.fake.remove_team_member(ORG, "tech-leads", "erin")
    await world.settle()
    result = await audit(world)
    assert result.code == 0, result.err
    exceptions, _, rest = result.out.partition("## Where the recorded checks")
    assert f"#{number}" not in exceptions.split("## Exceptions")[1]
    assert (
        f"#{number}: promotion/approvals said success at merge, but the rules re-derived as of "
        "the merge say pending (team membership is read as it is today"
    ) in rest
    record = by_label((await audit(world, "--format", "json")).json())[f"#{number}"]
    (prod,) = record["approvals"]["environments"]
    assert prod["missing"] == [{"team": "tech-leads", "count": 1}]


async def test_reviews_after_the_merge_do_not_count(world: Harness) -> None:
    world.fake.set_required_checks(FLEET, "main", GATE)
    number = open_change(
        world, "prod-v2.0.0", {path(PROD): with_image(world, PROD, f"{IMG}:v2.0.0")}
    )
    await world.settle()
    world.fake.merge_pr(FLEET, number, by="bob", method="squash", admin=True)
    await world.settle()
    await next_second()  # a review in the merge's own second would count as before it
    for who in ("bob", "carol", "erin"):
        world.fake.review(FLEET, number, who, "APPROVE")
    await world.settle()
    record = by_label((await audit(world, "--format", "json")).json())[f"#{number}"]
    assert record["approvals"]["state"] == "pending"
    assert record["exception_reasons"][1:] == ["promotion/approvals was pending at merge"]
    assert "3 review(s) submitted after the merge." in record["notes"]


async def test_a_promotion_names_who_asked_and_does_not_count_their_approval(
    world: Harness,
) -> None:
    issue = world.fake.create_issue(FLEET, "Release payment v2.0.0", "", author="alice")
    world.fake.comment(FLEET, issue, "carol", "/promote prod payment-app")
    await world.settle()
    (pr,) = [p for p in world.pulls() if p.head_ref.startswith("fleet-bot/promote/prod/")]
    for who in ("carol", "bob", "frank", "erin"):
        world.fake.review(FLEET, pr.number, who, "APPROVE")
    await world.settle()
    world.fake.merge_pr(FLEET, pr.number, by="erin", method="squash", admin=False)
    await world.settle()
    record = by_label((await audit(world, "--format", "json")).json())[f"#{pr.number}"]
    assert record["requested_by"] == [
        {"login": "carol", "how": "Requested-by trailer on the bot's commit"}
    ]
    assert record["author"] == "fleet-bot[bot]" and record["by"] == "erin"
    (prod,) = record["approvals"]["environments"]
    assert {c["user"] for c in prod["counted"]} == {"bob", "frank", "erin"}
    assert {"user": "carol", "reason": "asked for this promotion with /promote"} in prod[
        "not_counted"
    ]
    assert record["exception"] is False


async def test_since_and_until_select_by_merge_time(world: Harness) -> None:
    world.fake.set_required_checks(FLEET, "main", GATE)
    number = open_change(
        world, "prod-v2.0.0", {path(PROD): with_image(world, PROD, f"{IMG}:v2.0.0")}
    )
    await world.settle()
    for who in ("bob", "carol", "erin"):
        world.fake.review(FLEET, number, who, "APPROVE")
    await world.settle()
    before = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())  # the branch commit's second
    merged = await next_second()
    world.fake.merge_pr(FLEET, number, by="bob", method="merge", admin=False)
    await world.settle()
    # Until before the merge: the PR is out, and its branch commit (older than the merge,
    # brought to main by the merge commit) is no direct push.
    early = (await audit(world, "--until", before, "--format", "json")).json()
    assert [r["label"] for r in early] == [early[0]["label"]]
    assert "first commit" in early[0]["exception_reasons"][0]
    # Since the merge: only the PR, and a clean period says so in one line.
    late = await audit(world, "--since", merged)
    assert late.code == 0, late.err
    assert "1 change reached prod; 0 exceptions." in late.out
    assert (
        "None: every change to prod went through a pull request whose gate was green at merge."
        in late.out
    )
    assert f"### #{number} " in late.out


async def test_a_personal_token_reads_the_same_report(world: Harness) -> None:
    number = await gated_promotion(world, "v2.0.0", "prod-v2.0.0")
    world.fake.reset_counters()
    result = await audit(world, "--format", "json", env=token_env(world, "bob"))
    assert result.code == 0, result.err
    # every API call with bob's token (the archive host gets none: it is another origin)
    assert {r.identity for r in world.fake.requests} - {"codeload"} == {"user:bob"}
    record = by_label(result.json())[f"#{number}"]
    assert record["exception"] is False
    assert [c["app"] for c in record["checks"]] == ["fleet-bot"] * 3  # lineage, approvals, window
    md = await audit(world, env=token_env(world, "bob"))
    assert "Read with a personal token: runs of promotion/lineage" in md.out
    trusting = await audit(world, env={**token_env(world, "bob"), "APP_ID": "999"})
    assert f"#{number} " in trusting.out.split("## Changes")[0], "no run of app 999: exception"
    assert "promotion/lineage was missing at merge" in trusting.out


async def test_mistakes_get_one_clear_line(world: Harness) -> None:
    world.fake.create_org("other")
    world.fake.create_repo("other", "fleet", files=samples.fleet_files(), author="alice")
    cases = [
        (["--env", "qa"], app_env(world), 1, "acme/fleet has no environment 'qa' (dev, staging"),
        (["--since", "yesterday"], app_env(world), 2, "'yesterday' is not a date"),
        (["--since", "2030-01-02", "--until", "2030-01-01"], app_env(world), 2, "after --until"),
        ([], {"GITHUB_API_URL": world.fake.api_url}, 2, "no credentials: set APP_ID"),
        ([], {"GITHUB_TOKEN": "nope", "GITHUB_API_URL": world.fake.api_url}, 1, "refused"),
    ]
    for argv, env, code, message in cases:
        result = await audit(world, *argv, env=env)
        assert (result.code, result.out) == (code, ""), argv
        assert message in result.err, (argv, result.err)
    for repo, message in (
        ("other/fleet", "the app is not installed on other/fleet"),
        (f"{ORG}/payment", "acme/payment has no .github/promotion.yml: it is not a fleet repo"),
        ("acme", "'acme' is not OWNER/REPO"),
    ):
        out, err = io.StringIO(), io.StringIO()
        args = build_parser().parse_args(["audit", repo])
        assert await run(args, env=app_env(world), out=out, err=err) in (1, 2)
        assert message in err.getvalue() and out.getvalue() == ""


async def test_python_dash_m_bot_audit(world: Harness, tmp_path: Path) -> None:
    number = await gated_promotion(world, "v2.0.0", "prod-v2.0.0")
    env = {**app_env(world), "PATH": os.environ.get("PATH", ""), "PYTHONPATH": os.getcwd()}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "audit",
        FLEET,
        "--env",
        "prod",
        "--format",
        "json",
        cwd=tmp_path,  # no .env of the developer's
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    assert f"#{number}" in {r["label"] for r in json.loads(out)}
    assert b"audit: " in err


async def test_pages_of_one_give_the_same_report(
    world: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    await gated_promotion(world, "v2.0.0", "prod-v2.0.0")
    await gated_promotion(world, "v1.9.0", "prod-back", method="merge")
    whole = (await audit(world, "--format", "json")).json()
    monkeypatch.setattr(audit_module, "PER_PAGE", 1)
    world.fake.reset_counters()
    paged = await audit(world, "--format", "json")
    assert paged.json() == whole and len(whole) == 3
    pages = [r for r in world.fake.requests if "page=" in r.query.replace("per_page=", "")]
    assert {r.path for r in pages} >= {f"/repos/{FLEET}/pulls", f"/repos/{FLEET}/commits"}


async def test_a_secondary_rate_limit_is_waited_out(world: Harness) -> None:
    number = await gated_promotion(world, "v2.0.0", "prod-v2.0.0")
    world.fake.inject_secondary_rate_limit(path=f"/repos/{FLEET}/pulls$", retry_after=1)
    result = await audit(world, "--format", "json")
    assert result.code == 0, result.err
    assert f"#{number}" in {r["label"] for r in result.json()}
    assert any(r.status == 403 and r.path.endswith("/pulls") for r in world.fake.requests)


async def test_an_exhausted_rate_limit_ends_with_one_line(world: Harness) -> None:
    await gated_promotion(world, "v2.0.0", "prod-v2.0.0")
    world.fake.set_rate_limit(3, identity="installation")
    result = await audit(world)
    assert (result.code, result.out) == (1, "")
    assert "error: GitHub could not be read: " in result.err and "rate limited" in result.err


async def test_an_ungated_environment_is_audited_too(world: Harness) -> None:
    world.fake.dispatch(
        FLEET, "image-published", {"image": samples.PAYMENT_IMAGE, "tag": "v2.2.0"}, by="ci-bot"
    )
    await world.settle()
    (bump,) = [p for p in world.pulls() if p.head_ref.startswith("fleet-bot/bump/")]
    assert bump.merged
    record = by_label((await audit(world, "--env", "dev", "--format", "json")).json())[
        f"#{bump.number}"
    ]
    assert record["by"] == "fleet-bot[bot]" and record["exception"] is False
    assert record["lineage"] == {
        "state": "success",
        "note": "No environment with an upstream changed (dev only): nothing to trace.",
        "environments": [],
    }
    assert record["approvals"]["state"] == "success"
    assert record["approvals"]["note"] == "No approvals required (dev)."


async def test_a_policy_broken_at_the_base_failed_the_gate(world: Harness) -> None:
    world.fake.commit(FLEET, "main", {".github/promotion.yml": b"environments: ["}, "oops")
    await world.settle()
    number = open_change(
        world, "prod-v2.0.0", {path(PROD): with_image(world, PROD, f"{IMG}:v2.0.0")}
    )
    await world.settle()
    world.fake.merge_pr(FLEET, number, by="bob", method="squash", admin=True)
    world.fake.commit(FLEET, "main", {".github/promotion.yml": samples.POLICY}, "fix policy")
    await world.settle()
    record = by_label((await audit(world, "--format", "json")).json())[f"#{number}"]
    assert [c["at_merge"] for c in record["checks"]] == ["failure", "failure", "failure"]
    assert (record["lineage"]["state"], record["approvals"]["state"]) == ("failure", "failure")
    assert record["lineage"]["note"].startswith("The policy at the base could not be read (")
    assert record["disagreements"] == [] and record["exception"] is True
    assert record["changes"][0]["to_image"] == f"{IMG}:v2.0.0"


async def test_blueprint_tags_are_traced_as_the_check_traces_them(world: Harness) -> None:
    sources = "clusters/prod-use1-01/flux-system/sources.yaml"
    current = world.file(sources)
    assert current is not None and b"tag: v1." in current
    tag = current.split(b"tag: ")[1].split(b"\n")[0]
    bad = open_change(world, "bp-v9", {sources: current.replace(b"tag: " + tag, b"tag: v9.0.0")})
    await world.settle()
    world.fake.merge_pr(FLEET, bad, by="bob", method="squash", admin=True)
    await world.settle()
    good = await gated_promotion(world, "v2.0.0", "prod-v2.0.0")
    records = by_label((await audit(world, "--format", "json")).json())
    forced = records[f"#{bad}"]
    assert [c["at_merge"] for c in forced["checks"]] == ["failure", "pending", "success"]
    assert forced["lineage"]["state"] == "failure" and forced["disagreements"] == []
    (report,) = forced["lineage"]["environments"]
    (verdict,) = report["changes"]
    assert (verdict["item"], verdict["ok"]) == ("source:flux-system/platform-blueprints", False)
    assert verdict["to"].endswith("/acme/platform-blueprints:v9.0.0")
    assert records[f"#{good}"]["disagreements"] == []


def _many_dev_notes(count: int) -> dict[str, bytes | None]:
    return {f"clusters/dev-use1-01/notes/n{i:04d}.txt": b"%d\n" % i for i in range(count)}


@pytest.mark.parametrize("trees_readable", [True, False])
async def test_a_prod_change_past_the_3000th_file_of_a_merged_pr_is_audited(
    world: Harness, trees_readable: bool
) -> None:
    """GitHub lists 3,000 files of a PR; a prod change past them was left out of the audit
    (the PR looked dev-only). It is found from the trees, or, when those cannot show it
    either, the PR counts as reaching prod unverified."""
    changes = _many_dev_notes(3000)
    changes[path(PROD)] = with_image(world, PROD, f"{IMG}:v9.9.9")  # never ran in staging
    number = open_change(world, "hidden-prod", changes, title="notes")
    await world.settle()
    world.fake.merge_pr(FLEET, number, by="bob", method="merge", admin=True)
    await world.settle()
    if not trees_readable:
        # the notes go again (the fleet today reads fine); the PR's own trees stay too big
        world.fake.commit(FLEET, "main", dict.fromkeys(_many_dev_notes(3000)), author="bob")
        await world.settle()
        world.fake.tree_entry_limit = 2000  # GitHub truncates the 3,000-entry directory
        world.fake.serve_archive(FLEET, status=502, times=None)  # no archive shows it whole
    records = by_label((await audit(world, "--format", "json")).json())
    record = records[f"#{number}"]
    assert record["lineage"]["state"] == "failure"
    if trees_readable:
        assert any("v9.9.9" in json.dumps(change) for change in record["changes"])
    else:
        assert any("Could not be seen" in note and "3,000" in note for note in record["notes"])


TRACE_APPNAME = samples.POLICY.replace(b"promoteKeys: [image]", b"promoteKeys: [image, appName]")


@pytest.mark.parametrize(
    ("value", "reason"),
    [(b'"payment-untested"', "payment-untested"), (b"{a: 1}", "appName is a mapping")],
)
async def test_every_promote_key_is_audited_as_the_check_traces_it(
    world: Harness, value: bytes, reason: str
) -> None:
    """With ``promoteKeys: [image, appName]``, an admin merge of a prod appName that never ran
    in staging (or one lineage cannot trace at all) is an exception in the audit, as the gate
    would have failed it; the image alone was traced before."""
    assert TRACE_APPNAME != samples.POLICY
    world.fake.commit(
        FLEET, "main", {".github/promotion.yml": TRACE_APPNAME}, "appName", author="bob"
    )
    await world.settle()
    current = world.file(path(PROD))
    assert current is not None and b'"payment-processor"' in current
    changed = current.replace(b'"payment-processor"', value)
    number = open_change(world, "prod-appname", {path(PROD): changed}, title="rename")
    await world.settle()
    world.fake.merge_pr(FLEET, number, by="bob", method="squash", admin=True)
    await world.settle()
    record = by_label((await audit(world, "--format", "json")).json())[f"#{number}"]
    assert record["lineage"]["state"] == "failure", record
    assert record["exception"] is True
    assert reason in json.dumps(record)


async def test_a_dev_change_prod_pulls_in_is_audited_as_a_prod_change(world: Harness) -> None:
    """prod's kustomization pulls in dev's payment-app (V17): an admin merge of a dev image that
    never ran in staging reached prod unverified, and the audit says so, naming the
    reference."""
    land(
        world.fake,
        {PROD_KUSTOMIZATION: kustomization("tenants/checkout", f"../{DEV}/tenants/payment-app")},
        "prod pulls in dev's payment-app",
    )
    await world.settle()
    number = open_change(world, "dev-v9", {path(DEV): with_image(world, DEV, f"{IMG}:v9.9.9")})
    await world.settle()
    world.fake.merge_pr(FLEET, number, by="bob", method="squash", admin=True)
    await world.settle()
    record = by_label((await audit(world, "--format", "json")).json())[f"#{number}"]
    assert record["lineage"]["state"] == "failure", record
    assert record["exception"] is True
    text = json.dumps(record)
    assert "v9.9.9" in text and PROD_KUSTOMIZATION in text and DEV_PAYMENT in text
