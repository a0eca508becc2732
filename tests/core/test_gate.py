"""Which environments and gates a PR's files touch."""

from __future__ import annotations

from bot.fake import samples
from bot.fleet.layout import build_fleet
from bot.fleet.policy import parse_policy
from bot.rules.gate import (
    BlindSpot,
    FileChange,
    Scope,
    file_changes,
    link_target,
    scope_of,
    through_links,
    tree_changes,
    with_blind_spots,
)

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
    # Outside clusters/, the bot cannot tell what includes a file: every gate (issue 16, 8).
    readme = scope("README.md")
    assert readme.outside == ("README.md",) and not readme.auto_merge
    assert readme.gated == ("staging", "prod")


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


# --- failing closed (issue 16) -------------------------------------------------------------


def test_ungated_paths_need_no_gate_but_are_never_merged_by_the_bot() -> None:
    policy = parse_policy(FILES[".github/promotion.yml"] + b'ungated: ["docs/**", "*.md"]\n')
    fleet = build_fleet(FILES, policy)
    docs = scope_of([FileChange("docs/runbook.md", "added", sha="1" * 40)], fleet, policy)
    assert docs.ungated == ("docs/runbook.md",) and docs.gated == () and not docs.auto_merge
    shared = scope_of(
        [FileChange("infrastructure/prod/kustomization.yaml", "modified", sha="1" * 40)],
        fleet,
        policy,
    )
    assert shared.outside and shared.gated == ("staging", "prod")
    # `*.md` never opens a file inside a cluster
    inside = scope_of(
        [FileChange("clusters/prod-use1-01/README.md", "modified", sha="1" * 40)], fleet, policy
    )
    assert inside.gated == ("prod",) and not inside.ungated


def test_a_blind_spot_makes_every_gate_apply_and_stops_the_automatic_merge() -> None:
    spot = BlindSpot("incomplete", "GitHub listed 3,000 of 3,001 files")
    dev = FileChange(
        "clusters/dev-use1-01/tenants/payment-app/input.yaml", "modified", sha="1" * 40
    )
    s = scope_of([dev], FLEET, POLICY, [spot])
    assert s.blind_spots == (spot,) and s.every_gate
    assert s.gated == ("staging", "prod") and not s.auto_merge and s.environments == ("dev",)
    plain = scope_of([dev], FLEET, POLICY)
    assert plain.auto_merge and with_blind_spots(plain, [spot], POLICY) == s
    assert with_blind_spots(s, [spot], POLICY) is s  # the same spot twice is one


def test_tree_changes_list_what_the_pull_files_api_would() -> None:
    old = {"a": "1", "b": "2", "c/d": "3"}
    new = {"a": "1", "b": "9", "c/e": "3"}
    got = [(c.path, c.status, c.sha) for c in tree_changes(old, new)]
    assert got == [("b", "modified", "9"), ("c/d", "removed", None), ("c/e", "added", "3")]


def test_symlink_targets_resolve_inside_the_repository_only() -> None:
    link = "clusters/prod-use1-01/tenants/x"
    assert link_target(link, b"../../dev-use1-01/tenants/x") == "clusters/dev-use1-01/tenants/x"
    assert link_target(link, b"/etc/passwd") is None
    assert link_target(link, b"../../../../outside") is None
    assert link_target("a", b"") is None


def test_a_change_shows_up_wherever_a_link_chain_points_at_it() -> None:
    targets = {
        "clusters/prod-use1-01/tenants/x": "clusters/staging-use1-01/tenants/x",
        "clusters/staging-use1-01/tenants/x": "clusters/dev-use1-01/tenants/x",
        "infra": None,
    }
    got = through_links(["clusters/dev-use1-01/tenants/x/input.yaml"], targets)
    assert [shown for shown, _, _ in got] == [
        "clusters/staging-use1-01/tenants/x/input.yaml",
        "clusters/prod-use1-01/tenants/x/input.yaml",
    ]
    assert through_links(["clusters/dev-use1-01/tenants/xy/input.yaml"], targets) == []
    loop = {"a": "b", "b": "a"}
    assert len(through_links(["a/f"], loop)) == 1  # a loop ends
