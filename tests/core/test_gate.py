"""Which environments and gates a PR's files touch."""

from __future__ import annotations

from bot.fake import samples
from bot.fleet.layout import build_fleet
from bot.fleet.policy import parse_policy
from bot.rules.gate import FileChange, Scope, file_changes, scope_of

FILES = samples.fleet_files()
POLICY = parse_policy(FILES[".github/promotion.yml"])
FLEET = build_fleet(FILES, POLICY)


def scope(*paths: str, status: str = "modified") -> Scope:
    return scope_of([FileChange(p, status, sha="1" * 40) for p in paths], FLEET, POLICY)


def test_dev_only_is_auto_mergeable_and_not_gated() -> None:
    s = scope("clusters/dev-use1-01/tenants/payment-app/input.yaml")
    assert s.environments == ("dev",) and s.gated == () and s.auto_merge


def test_staging_and_prod_are_gated_in_policy_order() -> None:
    s = scope(
        "clusters/prod-use1-01/tenants/payment-app/input.yaml",
        "clusters/staging-use1-01/tenants/checkout/input.yaml",
    )
    assert s.gated == ("staging", "prod") and not s.auto_merge
    assert {(i.cluster, i.tenant) for i in s.inputs} == {
        ("prod-use1-01", "payment-app"),
        ("staging-use1-01", "checkout"),
    }


def test_policy_change_needs_every_gate() -> None:
    s = scope(".github/promotion.yml")
    assert s.touches_policy and s.gated == ("staging", "prod") and not s.auto_merge


def test_unknown_cluster_needs_every_gate_and_files_outside_are_not_auto_merged() -> None:
    s = scope("clusters/qa-use1-01/tenants/x/input.yaml")
    assert s.unassigned and s.gated == ("staging", "prod")
    readme = scope("README.md")
    assert readme.outside == ("README.md",) and not readme.auto_merge and not readme.gated


def test_rename_out_of_prod_counts_in_both_places() -> None:
    change = FileChange(
        "clusters/dev-use1-01/tenants/x/input.yaml",
        "renamed",
        previous_path="clusters/prod-use1-01/tenants/x/input.yaml",
        sha="2" * 40,
    )
    s = scope_of([change], FLEET, POLICY)
    assert s.gated == ("prod",) and not s.auto_merge
    removed = [i for i in s.inputs if i.environment == "prod"]
    assert removed[0].status == "removed" and removed[0].sha is None


def test_file_changes_from_rest_items() -> None:
    items = [
        {"filename": "a", "status": "modified", "sha": "abc"},
        {"filename": "b", "status": "removed", "sha": "def"},
        {"status": "weird"},
    ]
    got = file_changes(items)
    assert [(c.path, c.sha) for c in got] == [("a", "abc"), ("b", None)]
