"""Lineage rules: a value enters an environment only after it ran upstream, with evidence."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.fleet.policy import ApprovalRule, Environment
from bot.rules.lineage import (
    Change,
    ChangeVerdict,
    Deployment,
    Evidence,
    LineageReport,
    UpstreamHistory,
    ValueAt,
    deployments_of,
    describe_item,
    evaluate_lineage,
    exact_matcher,
    format_duration,
    history_suffices,
    image_matcher,
    status_commits_needed,
)

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
REPO = "registry.acme.com/payment"
PATH = "clusters/prod-use1-01/tenants/payment-app/input.yaml"


def prod(
    *,
    mode: Literal["any", "all"] = "any",
    min_soak: timedelta | None = None,
    status: str | None = None,
) -> Environment:
    return Environment(
        name="prod",
        upstream="staging",
        clusters=None,
        auto_merge=False,
        approvals=(ApprovalRule("sre", 2),),
        upstream_clusters=mode,
        min_soak=min_soak,
        require_upstream_status=status,
    )


def change(
    new: str | None, old: str | None = f"{REPO}:v2.0.0", item: str = "payment-app"
) -> Change:
    return Change(cluster="prod-use1-01", item=item, path=PATH, line=9, old=old, new=new)


def deployed(
    value: str, sha: str, *, hours_ago: float, until_hours_ago: float | None = None
) -> Deployment:
    return Deployment(
        value=value,
        commit_sha=sha,
        commit_url=f"https://github.com/acme/fleet/commit/{sha}",
        since=NOW - timedelta(hours=hours_ago),
        until=None if until_hours_ago is None else NOW - timedelta(hours=until_hours_ago),
    )


def history(
    cluster: str, *deployments: Deployment, current: str | None = "", item: str = "payment-app"
) -> UpstreamHistory:
    """Newest deployment first; ``current`` defaults to the newest deployment's value."""
    if current == "":
        current = deployments[0].value if deployments else None
    return UpstreamHistory(cluster=cluster, item=item, deployments=deployments, current=current)


# staging-use1-01 ran v2.0.0 (3 days), then v2.1.0 since 48h; staging-euw1-01 only v2.0.0.
USE1 = history(
    "staging-use1-01",
    deployed(f"{REPO}:v2.1.0", "b" * 40, hours_ago=48),
    deployed(f"{REPO}:v2.0.0", "a" * 40, hours_ago=120, until_hours_ago=48),
)
EUW1 = history("staging-euw1-01", deployed(f"{REPO}:v2.0.0", "c" * 40, hours_ago=100))


def judge(
    new: str | None,
    *histories: UpstreamHistory,
    environment: Environment | None = None,
    old: str | None = f"{REPO}:v2.0.0",
    statuses: Mapping[str, Mapping[str, str]] | None = None,
) -> ChangeVerdict:
    report = evaluate_lineage(
        environment or prod(),
        "staging",
        [change(new, old)],
        {("prod-use1-01", "payment-app"): histories},
        NOW,
        statuses=statuses,
    )
    (verdict,) = report.verdicts
    return verdict


# --- the end-to-end stories --------------------------------------------------------------------


def test_tag_staging_runs_now_passes_with_the_commit_that_brought_it() -> None:
    verdict = judge(f"{REPO}:v2.1.0", USE1, EUW1)
    assert verdict.ok
    assert verdict.kind == "verified"
    assert verdict.evidence == (
        Evidence(
            cluster="staging-use1-01",
            value=f"{REPO}:v2.1.0",
            commit_sha="b" * 40,
            commit_url="https://github.com/acme/fleet/commit/" + "b" * 40,
            since=NOW - timedelta(hours=48),
            until=None,
            status_context=None,
        ),
    )
    assert verdict.reason == f"{REPO}:v2.1.0 ran in staging-use1-01"


def test_older_tag_staging_had_passes_as_a_rollback() -> None:
    newer = history("staging-use1-01", *USE1.deployments)
    verdict = judge(f"{REPO}:v2.0.0", newer, old=f"{REPO}:v2.1.0")
    assert verdict.ok
    (evidence,) = verdict.evidence
    assert evidence.commit_sha == "a" * 40
    assert evidence.until == NOW - timedelta(hours=48)
    assert "rollback" in verdict.reason


def test_tag_staging_never_had_fails_and_shows_what_upstream_has() -> None:
    verdict = judge(f"{REPO}:v9.9.9", USE1, EUW1)
    assert not verdict.ok
    assert verdict.kind == "never-ran"
    assert verdict.reason == f"{REPO}:v9.9.9 never ran in staging"
    assert verdict.evidence == ()
    assert verdict.upstream_now == {
        "staging-use1-01": f"{REPO}:v2.1.0",
        "staging-euw1-01": f"{REPO}:v2.0.0",
    }


def test_changed_repository_fails_and_says_so() -> None:
    verdict = judge("registry.acme.com/payments-fork:v2.1.0", USE1)
    assert not verdict.ok
    assert verdict.kind == "repository-changed"
    assert "repository changed from registry.acme.com/payment to " in verdict.reason
    assert "registry.acme.com/payments-fork" in verdict.reason


def test_changed_repository_that_ran_upstream_passes() -> None:
    moved = history("staging-use1-01", deployed("ghcr.io/acme/payment:v3", "d" * 40, hours_ago=5))
    assert judge("ghcr.io/acme/payment:v3", moved).ok


def test_new_tenant_input_with_an_unknown_tag_fails() -> None:
    verdict = judge(f"{REPO}:v7.0.0", USE1, old=None)
    assert not verdict.ok
    assert verdict.kind == "never-ran"


def test_new_tenant_input_with_a_staging_tag_passes() -> None:
    assert judge(f"{REPO}:v2.1.0", USE1, old=None).ok


def test_removed_value_needs_no_lineage() -> None:
    verdict = judge(None)
    assert verdict.ok
    assert verdict.kind == "removed"
    assert "needs no lineage" in verdict.reason


def test_no_upstream_cluster_with_the_tenant_fails() -> None:
    verdict = judge(f"{REPO}:v2.1.0")
    assert not verdict.ok
    assert verdict.kind == "item-not-upstream"
    assert verdict.reason == "no staging cluster has tenant payment-app"


def test_environment_without_upstream_requires_nothing() -> None:
    report = evaluate_lineage(prod(), None, [change(f"{REPO}:v1")], {}, NOW)
    assert report.ok
    assert report.upstream is None
    assert report.verdicts[0].kind == "not-required"


# --- what counts as the same image -------------------------------------------------------------


DIGEST = "sha256:" + "ab" * 32
OTHER_DIGEST = "sha256:" + "cd" * 32


@pytest.mark.parametrize(
    ("new", "upstream", "same"),
    [
        (f"{REPO}:v1", f"{REPO}:v1", True),
        (f"{REPO}:v1", f"{REPO}:v2", False),
        (f"{REPO}:v1", f"{REPO}:V1", False),  # tags are case-sensitive
        ("ghcr.io/acme/app:v1", "ghcr.io/Acme/App:v1", True),  # repositories are not
        ("nginx:1.27", "docker.io/library/nginx:1.27", True),
        (f"{REPO}:v1", "registry.acme.com/other:v1", False),
        (f"{REPO}:v1@{DIGEST}", f"{REPO}:v1@{DIGEST}", True),
        (f"{REPO}:v1@{DIGEST.upper().replace('SHA256', 'sha256')}", f"{REPO}:v1@{DIGEST}", True),
        (f"{REPO}:v1", f"{REPO}:v1@{DIGEST}", False),  # upstream pinned a digest
        (f"{REPO}:v1@{OTHER_DIGEST}", f"{REPO}:v1@{DIGEST}", False),
        # what runs is the digest: the tag ran upstream, that digest may not have (issue 16)
        (f"{REPO}:v1@{DIGEST}", f"{REPO}:v1", False),
        ("not an image", "not an image", False),
        (f"{REPO}:v1", "", False),
    ],
)
def test_image_matcher(new: str, upstream: str, same: bool) -> None:
    assert image_matcher(new, upstream) is same


def test_exact_matcher_compares_characters() -> None:
    assert exact_matcher("v1.2.0", "v1.2.0")
    assert not exact_matcher("v1.2.0", "V1.2.0")


def test_digest_pinned_upstream_requires_the_same_digest() -> None:
    pinned = history("staging-use1-01", deployed(f"{REPO}:v3@{DIGEST}", "e" * 40, hours_ago=9))
    assert judge(f"{REPO}:v3@{DIGEST}", pinned).ok
    assert not judge(f"{REPO}:v3", pinned).ok
    assert not judge(f"{REPO}:v3@{OTHER_DIGEST}", pinned).ok


def test_source_tags_use_the_exact_matcher_and_no_repository_wording() -> None:
    item = "source:flux-system/platform"
    upstream = history("staging-use1-01", deployed("v1.2.0", "f" * 40, hours_ago=10), item=item)
    changes = [
        Change("prod-use1-01", item, "clusters/prod-use1-01/sources.yaml", 12, "v1.1.0", "v1.2.0"),
        Change("prod-use1-01", item, "clusters/prod-use1-01/sources.yaml", 12, "v1.1.0", "v1.3.0"),
    ]
    report = evaluate_lineage(
        prod(), "staging", changes, {("prod-use1-01", item): [upstream]}, NOW, exact_matcher
    )
    passed, failed = report.verdicts
    assert passed.ok
    assert failed.kind == "never-ran"
    assert failed.reason == "v1.3.0 never ran in staging"


def test_missing_source_is_described_as_a_source() -> None:
    item = "source:flux-system/platform"
    report = evaluate_lineage(
        prod(), "staging", [Change("prod-use1-01", item, "s.yaml", 1, None, "v1")], {}, NOW
    )
    assert report.verdicts[0].reason == "no staging cluster has source flux-system/platform"


# --- upstreamClusters: any | all ----------------------------------------------------------------


def test_any_needs_one_upstream_cluster_and_cites_every_one_that_ran_it() -> None:
    verdict = judge(f"{REPO}:v2.0.0", USE1, EUW1)
    assert verdict.ok
    assert [item.cluster for item in verdict.evidence] == ["staging-use1-01", "staging-euw1-01"]


def test_all_fails_when_one_upstream_cluster_never_ran_it() -> None:
    verdict = judge(f"{REPO}:v2.1.0", USE1, EUW1, environment=prod(mode="all"))
    assert not verdict.ok
    assert verdict.kind == "not-everywhere"
    assert "ran in staging-use1-01 but not in staging-euw1-01" in verdict.reason


def test_all_passes_when_every_upstream_cluster_ran_it() -> None:
    verdict = judge(f"{REPO}:v2.0.0", USE1, EUW1, environment=prod(mode="all"))
    assert verdict.ok
    assert len(verdict.evidence) == 2


def test_all_ignores_a_cluster_that_no_longer_has_the_tenant() -> None:
    dropped = history(
        "staging-apse1-01",
        deployed(f"{REPO}:v1.0.0", "9" * 40, hours_ago=900, until_hours_ago=800),
        current=None,
    )
    verdict = judge(f"{REPO}:v2.0.0", USE1, EUW1, dropped, environment=prod(mode="all"))
    assert verdict.ok


def test_a_cluster_that_dropped_the_tenant_still_vouches_for_what_it_ran() -> None:
    dropped = history(
        "staging-apse1-01",
        deployed(f"{REPO}:v1.5.0", "9" * 40, hours_ago=900, until_hours_ago=800),
        current=None,
    )
    verdict = judge(f"{REPO}:v1.5.0", USE1, dropped)
    assert verdict.ok
    assert verdict.upstream_now["staging-apse1-01"] is None


# --- minSoak ------------------------------------------------------------------------------------


def test_min_soak_fails_when_the_image_stayed_too_briefly() -> None:
    fresh = history("staging-use1-01", deployed(f"{REPO}:v3", "1" * 40, hours_ago=3))
    verdict = judge(f"{REPO}:v3", fresh, environment=prod(min_soak=timedelta(hours=24)))
    assert not verdict.ok
    assert verdict.kind == "soak-too-short"
    assert "3h" in verdict.reason
    assert "24h" in verdict.reason


def test_min_soak_counts_a_running_deployment_up_to_now() -> None:
    running = history("staging-use1-01", deployed(f"{REPO}:v3", "1" * 40, hours_ago=25))
    assert judge(f"{REPO}:v3", running, environment=prod(min_soak=timedelta(hours=24))).ok


def test_min_soak_counts_a_replaced_deployment_up_to_its_end() -> None:
    brief = history(
        "staging-use1-01",
        deployed(f"{REPO}:v4", "2" * 40, hours_ago=100),
        deployed(f"{REPO}:v3", "1" * 40, hours_ago=110, until_hours_ago=100),
    )
    verdict = judge(f"{REPO}:v3", brief, environment=prod(min_soak=timedelta(hours=24)))
    assert verdict.kind == "soak-too-short"
    assert "10h" in verdict.reason


def test_min_soak_uses_any_long_enough_period_of_the_same_image() -> None:
    # v3 ran briefly lately, but earlier for two days: that earlier period is the evidence.
    again = history(
        "staging-use1-01",
        deployed(f"{REPO}:v3", "3" * 40, hours_ago=1),
        deployed(f"{REPO}:v2", "2" * 40, hours_ago=50, until_hours_ago=1),
        deployed(f"{REPO}:v3", "1" * 40, hours_ago=100, until_hours_ago=50),
    )
    verdict = judge(f"{REPO}:v3", again, environment=prod(min_soak=timedelta(hours=24)))
    assert verdict.ok
    assert verdict.evidence[0].commit_sha == "1" * 40


def test_newest_matching_deployment_is_the_evidence() -> None:
    again = history(
        "staging-use1-01",
        deployed(f"{REPO}:v3", "3" * 40, hours_ago=1),
        deployed(f"{REPO}:v3", "1" * 40, hours_ago=100, until_hours_ago=50),
    )
    assert judge(f"{REPO}:v3", again).evidence[0].commit_sha == "3" * 40


# --- requireUpstreamStatus ----------------------------------------------------------------------


PATTERN = "kustomization/*"
RECONCILED = "kustomization/flux-system/3f0a"


def test_required_status_on_the_bringing_commit_passes_and_is_cited() -> None:
    statuses = {"b" * 40: {RECONCILED: "success", "ci/lint": "failure"}}
    verdict = judge(f"{REPO}:v2.1.0", USE1, environment=prod(status=PATTERN), statuses=statuses)
    assert verdict.ok
    assert verdict.evidence[0].status_context == RECONCILED


def test_required_status_on_a_later_commit_of_the_same_deployment_passes() -> None:
    later = Deployment(
        f"{REPO}:v5", "4" * 40, "https://x/4", NOW - timedelta(hours=5), None, ("5" * 40,)
    )
    statuses = {"5" * 40: {RECONCILED: "success"}}
    verdict = judge(
        f"{REPO}:v5",
        history("staging-use1-01", later),
        environment=prod(status=PATTERN),
        statuses=statuses,
    )
    assert verdict.ok


@pytest.mark.parametrize(
    "statuses",
    [
        {},
        {"b" * 40: {RECONCILED: "failure"}},
        {"b" * 40: {RECONCILED: "pending"}},
        {"b" * 40: {"ci/flux-reconciled": "success"}},  # does not match the pattern
        {"a" * 40: {RECONCILED: "success"}},  # a commit of another deployment
    ],
)
def test_required_status_missing_fails(statuses: Mapping[str, Mapping[str, str]]) -> None:
    verdict = judge(f"{REPO}:v2.1.0", USE1, environment=prod(status=PATTERN), statuses=statuses)
    assert not verdict.ok
    assert verdict.kind == "status-missing"
    assert PATTERN in verdict.reason


def test_required_status_without_statuses_is_a_caller_error() -> None:
    with pytest.raises(ValueError, match="status_commits_needed"):
        judge(f"{REPO}:v2.1.0", USE1, environment=prod(status=PATTERN))


def test_status_commits_needed_lists_the_commits_of_matching_deployments() -> None:
    later = history(
        "staging-use1-01",
        Deployment(f"{REPO}:v5", "4" * 40, "u", NOW, None, ("5" * 40, "6" * 40)),
        deployed(f"{REPO}:v4", "7" * 40, hours_ago=10, until_hours_ago=1),
    )
    upstream = {("prod-use1-01", "payment-app"): [later, EUW1]}
    changes = [change(f"{REPO}:v5"), change(None)]
    needed = status_commits_needed(prod(status=PATTERN), changes, upstream)
    assert needed == {"4" * 40, "5" * 40, "6" * 40}
    assert status_commits_needed(prod(), changes, upstream) == set()


# --- unknown history, reports, helpers ----------------------------------------------------------


def test_upstream_running_it_without_history_fails_for_want_of_a_commit() -> None:
    unknown = UpstreamHistory("staging-use1-01", "payment-app", (), f"{REPO}:v2.1.0")
    verdict = judge(f"{REPO}:v2.1.0", unknown)
    assert not verdict.ok
    assert verdict.kind == "history-unknown"
    assert "staging-use1-01 runs it now" in verdict.reason


def test_upstream_running_it_beyond_the_known_history_fails_the_same_way() -> None:
    truncated = history(
        "staging-use1-01", deployed(f"{REPO}:v1", "1" * 40, hours_ago=9), current=f"{REPO}:v2"
    )
    assert judge(f"{REPO}:v2", truncated).kind == "history-unknown"


def test_report_lists_failures_in_order() -> None:
    changes = [change(f"{REPO}:v2.1.0"), change(f"{REPO}:v9"), change(None), change(f"{REPO}:v8")]
    upstream: dict[tuple[str, str], Sequence[UpstreamHistory]] = {
        ("prod-use1-01", "payment-app"): [USE1]
    }
    report = evaluate_lineage(prod(), "staging", changes, upstream, NOW)
    assert isinstance(report, LineageReport)
    assert report.environment == "prod"
    assert not report.ok
    assert [v.change.new for v in report.failures] == [f"{REPO}:v9", f"{REPO}:v8"]


def test_report_states_the_rule_it_applied() -> None:
    environment = prod(mode="all", min_soak=timedelta(hours=24), status=PATTERN)
    report = evaluate_lineage(environment, "staging", [], {}, NOW, statuses={})
    assert (report.upstream_clusters, report.min_soak, report.require_upstream_status) == (
        "all",
        timedelta(hours=24),
        PATTERN,
    )
    assert report.ok


def test_report_of_passing_changes_is_ok() -> None:
    upstream = {("prod-use1-01", "payment-app"): [USE1]}
    report = evaluate_lineage(prod(), "staging", [change(f"{REPO}:v2.1.0")], upstream, NOW)
    assert report.ok
    assert report.failures == ()


def test_describe_item() -> None:
    assert describe_item("payment-app") == "tenant payment-app"
    assert describe_item("source:flux-system/platform") == "source flux-system/platform"


@pytest.mark.parametrize(
    ("duration", "text"),
    [
        (timedelta(0), "0s"),
        (timedelta(seconds=30), "30s"),
        (timedelta(minutes=45), "45m"),
        (timedelta(hours=3, minutes=12, seconds=5), "3h 12m"),
        (timedelta(hours=24), "24h"),
        (timedelta(hours=47, minutes=59), "47h 59m"),
        (timedelta(days=2, hours=4, minutes=1), "2d 4h"),
        (timedelta(days=3, minutes=5), "3d"),
        (timedelta(seconds=-5), "0s"),
    ],
)
def test_format_duration(duration: timedelta, text: str) -> None:
    assert format_duration(duration) == text


# --- how far back a history must be read (issue 16, item 10) ----------------------------------


def values_at(*values: tuple[str | None, float]) -> list[ValueAt]:
    """A file's history, newest first, from ``(value, hours ago)``."""
    return [
        ValueAt(f"{i:040x}", "", NOW - timedelta(hours=hours), value)
        for i, (value, hours) in enumerate(values)
    ]


def test_reading_stops_at_a_complete_run_that_soaked() -> None:
    seen = values_at(("v3", 1), ("v1", 5), ("v2", 100))  # v1 ran 4h, complete
    assert history_suffices(seen, ["v1"], exact_matcher, min_soak=None, now=NOW)
    assert not history_suffices(seen, ["v1"], exact_matcher, min_soak=timedelta(hours=24), now=NOW)
    older = [*seen, ValueAt("e" * 40, "", NOW - timedelta(hours=200), "v1")]
    assert not history_suffices(older, ["v1"], exact_matcher, min_soak=timedelta(days=1), now=NOW)
    complete = [*older, ValueAt("f" * 40, "", NOW - timedelta(hours=300), "v0")]
    assert history_suffices(complete, ["v1"], exact_matcher, min_soak=timedelta(days=1), now=NOW)


def test_the_oldest_run_read_is_not_complete() -> None:
    seen = values_at(("v1", 1), ("v1", 50))  # began at 50h ago or earlier: unknown
    assert not history_suffices(seen, ["v1"], exact_matcher, min_soak=None, now=NOW)
    assert history_suffices(
        [*seen, *values_at((None, 60))[:1]], ["v1"], exact_matcher, min_soak=None, now=NOW
    )


histories = st.lists(
    st.tuples(st.sampled_from(["v1", "v2", "v3", None]), st.integers(1, 30)),
    min_size=1,
    max_size=12,
)


@settings(max_examples=300, deadline=None)
@given(steps=histories, soak_hours=st.sampled_from([None, 1, 12, 24, 72]))
def test_reading_less_never_changes_the_soak_verdict(
    steps: list[tuple[str | None, int]], soak_hours: int | None
) -> None:
    """Cutting the history where history_suffices says so judges exactly like the whole."""
    ago, full = 0, []
    for i, (value, gap) in enumerate(steps):
        ago += gap
        full.append(ValueAt(f"{i:040x}", "", NOW - timedelta(hours=ago), value))
    soak = None if soak_hours is None else timedelta(hours=soak_hours)
    cut = next(
        (
            full[: n + 1]
            for n in range(len(full))
            if history_suffices(full[: n + 1], ["v1"], exact_matcher, min_soak=soak, now=NOW)
        ),
        full,
    )

    def judge(seen: list[ValueAt]) -> bool:
        up = history("staging-use1-01", *deployments_of(seen), current=full[0].value)
        report = evaluate_lineage(
            prod(min_soak=soak),
            "staging",
            [change("v1")],
            {("prod-use1-01", "payment-app"): [up]},
            NOW,
            exact_matcher,
        )
        return report.ok

    assert judge(cut) == judge(full)
