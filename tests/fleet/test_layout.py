"""Layout: clusters, environments and tenants from the paths of the fleet repo's tree."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.fleet.layout import (
    FileLocation,
    Fleet,
    build_fleet,
    environment_for_cluster,
    is_safe_name,
)
from bot.fleet.policy import DEFAULT_POLICY, parse_policy

SEED_TREE = [
    "README.md",
    ".github/promotion.yml",
    "clusters/dev-use1-01/base/eso.yaml",
    "clusters/dev-use1-01/base/ingress/values.yaml",
    "clusters/dev-use1-01/flux-system/gotk-sync.yaml",
    "clusters/dev-use1-01/tenants/payment-app/input.yaml",
    "clusters/dev-use1-01/tenants/payment-app/sync.yaml",
    "clusters/dev-use1-01/tenants/payment-app/external-secret.yaml",
    "clusters/dev-euw1-01/tenants/payment-app/input.yml",
    "clusters/dev-euw1-01/tenants/search/input.yaml",
    "clusters/staging-use1-01/tenants/payment-app/input.yaml",
    "clusters/prod-use1-01/tenants/payment-app/input.yaml",
    "clusters/prod-use1-01/tenants/payment-app/sync.yaml",
    "clusters/prod-use1-02/tenants/search/input.yaml",
    "clusters/sandbox-01/tenants/payment-app/input.yaml",
    "clusters/prod-use1-02/tenants/only-sync/sync.yaml",
]


@pytest.fixture
def fleet() -> Fleet:
    return build_fleet(SEED_TREE, DEFAULT_POLICY)


def test_environment_is_the_cluster_name_up_to_the_first_dash(fleet: Fleet) -> None:
    assert fleet.clusters == {
        "dev-euw1-01": "dev",
        "dev-use1-01": "dev",
        "prod-use1-01": "prod",
        "prod-use1-02": "prod",
        "sandbox-01": None,
        "staging-use1-01": "staging",
    }
    assert fleet.environment_of("dev-use1-01") == "dev"
    assert fleet.environment_of("sandbox-01") is None


def test_environment_of_a_cluster_not_in_the_tree_follows_the_policy(fleet: Fleet) -> None:
    assert fleet.environment_of("prod-new-09") == "prod"
    assert fleet.environment_of("qa-1") is None
    assert Fleet(clusters={}, inputs={}).environment_of("prod-1") is None


def test_clusters_and_tenants_per_environment_are_sorted(fleet: Fleet) -> None:
    assert fleet.clusters_of("dev") == ("dev-euw1-01", "dev-use1-01")
    assert fleet.clusters_of("prod") == ("prod-use1-01", "prod-use1-02")
    assert fleet.clusters_of("nope") == ()
    assert fleet.tenants_of("dev") == ("payment-app", "search")
    assert fleet.tenants_of("staging") == ("payment-app",)
    assert fleet.tenants_of("prod") == ("payment-app", "search")
    assert fleet.tenants() == ("payment-app", "search")


def test_input_paths_accept_yml(fleet: Fleet) -> None:
    assert fleet.input_path("dev-use1-01", "payment-app") == (
        "clusters/dev-use1-01/tenants/payment-app/input.yaml"
    )
    assert fleet.input_path("dev-euw1-01", "payment-app") == (
        "clusters/dev-euw1-01/tenants/payment-app/input.yml"
    )
    assert fleet.input_path("prod-use1-02", "only-sync") is None
    assert fleet.input_path("nope", "payment-app") is None
    assert len(fleet.inputs) == 7


@pytest.mark.parametrize("order", [1, -1])
def test_input_yaml_wins_over_input_yml_in_any_order(order: int) -> None:
    paths = ["clusters/dev-1/tenants/a/input.yml", "clusters/dev-1/tenants/a/input.yaml"][::order]
    assert build_fleet(paths, DEFAULT_POLICY).input_path("dev-1", "a") == (
        "clusters/dev-1/tenants/a/input.yaml"
    )


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (
            "clusters/dev-use1-01/tenants/payment-app/input.yaml",
            ("dev-use1-01", "dev", "payment-app", "input"),
        ),
        (
            "clusters/dev-euw1-01/tenants/payment-app/input.yml",
            ("dev-euw1-01", "dev", "payment-app", "input"),
        ),
        (
            "clusters/prod-use1-01/tenants/payment-app/sync.yaml",
            ("prod-use1-01", "prod", "payment-app", "sync"),
        ),
        (
            "clusters/dev-use1-01/tenants/payment-app/external-secret.yaml",
            ("dev-use1-01", "dev", "payment-app", "tenant-file"),
        ),
        (
            "clusters/dev-use1-01/tenants/payment-app/nested/input.yaml",
            ("dev-use1-01", "dev", "payment-app", "tenant-file"),
        ),
        ("clusters/dev-use1-01/base/eso.yaml", ("dev-use1-01", "dev", None, "base")),
        ("clusters/dev-use1-01/base/ingress/values.yaml", ("dev-use1-01", "dev", None, "base")),
        (
            "clusters/dev-use1-01/flux-system/gotk-sync.yaml",
            ("dev-use1-01", "dev", None, "cluster-file"),
        ),
        ("clusters/staging-x/kustomization.yaml", ("staging-x", "staging", None, "cluster-file")),
        ("clusters/sandbox-01/base", ("sandbox-01", None, None, "cluster-file")),
        ("clusters/dev-1/tenants/x", ("dev-1", "dev", None, "cluster-file")),
    ],
)
def test_locate(fleet: Fleet, path: str, expected: tuple[str, str | None, str | None, str]) -> None:
    cluster, environment, tenant, kind = expected
    assert fleet.locate(path) == FileLocation(path, cluster, environment, tenant, kind)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "path",
    ["README.md", ".github/promotion.yml", "clusters/x", "clusters//a.yaml", "clusters/a//b"],
)
def test_locate_outside_clusters_is_none(fleet: Fleet, path: str) -> None:
    assert fleet.locate(path) is None


def test_cluster_globs_override_the_prefix_rule() -> None:
    policy = parse_policy(
        b"""\
environments:
  - name: dev
    clusters: ["sandbox-*", "dev-*"]
  - name: staging
  - name: prod
    clusters: ["prod-eu-*", "live-??"]
"""
    )
    assert environment_for_cluster("sandbox-01", policy) == "dev"
    assert environment_for_cluster("dev-use1-01", policy) == "dev"
    assert environment_for_cluster("staging-1", policy) == "staging"
    assert environment_for_cluster("prod-eu-1", policy) == "prod"
    assert environment_for_cluster("live-01", policy) == "prod"
    assert environment_for_cluster("live-001", policy) is None
    assert environment_for_cluster("prod-us-1", policy) is None  # globs replace the prefix rule
    assert environment_for_cluster("Dev-1", policy) is None  # directory names are case-sensitive


def test_first_matching_environment_wins() -> None:
    policy = parse_policy(
        b"environments:\n  - name: a\n    clusters: ['x-*']\n  - name: b\n    clusters: ['x-1']\n"
    )
    assert environment_for_cluster("x-1", policy) == "a"


def test_build_fleet_ignores_other_paths() -> None:
    fleet = build_fleet(
        ["clusters", "clusters/", "clustersx/dev-1/a", "docs/clusters/dev-1/a"], DEFAULT_POLICY
    )
    assert fleet.clusters == {}
    assert fleet.inputs == {}
    assert fleet.tenants() == ()


def test_build_fleet_takes_any_iterable() -> None:
    fleet = build_fleet(iter(SEED_TREE), DEFAULT_POLICY)
    assert fleet.tenants_of("dev") == ("payment-app", "search")


def test_build_fleet_handles_a_large_tree() -> None:
    paths = [
        f"clusters/{env}-r{r:02d}-{c:02d}/tenants/tenant-{t:03d}/input.yaml"
        for env in ("dev", "staging", "prod")
        for r in range(10)
        for c in range(10)
        for t in range(334)
    ]
    fleet = build_fleet(paths, DEFAULT_POLICY)
    assert len(fleet.inputs) == len(paths) == 100_200
    assert len(fleet.clusters_of("prod")) == 100
    assert len(fleet.tenants_of("staging")) == 334


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["dev", "staging", "prod", "qa"]),
            st.from_regex(r"[a-z0-9]{1,4}", fullmatch=True),
            st.from_regex(r"[a-z][a-z0-9-]{0,6}", fullmatch=True),
            st.sampled_from(["input.yaml", "input.yml", "sync.yaml", "x.yaml"]),
        ),
        max_size=30,
    )
)
def test_every_input_is_found_and_located(entries: list[tuple[str, str, str, str]]) -> None:
    paths = [f"clusters/{e}-{c}/tenants/{t}/{f}" for e, c, t, f in entries]
    fleet = build_fleet(paths, DEFAULT_POLICY)
    for (env, cluster, tenant, filename), path in zip(entries, paths, strict=True):
        name = f"{env}-{cluster}"
        expected_env = env if env != "qa" else None
        assert fleet.environment_of(name) == expected_env
        location = fleet.locate(path)
        assert location is not None
        assert (location.cluster, location.environment, location.tenant) == (
            name,
            expected_env,
            tenant,
        )
        if filename.startswith("input."):
            assert fleet.input_path(name, tenant) in {
                f"clusters/{name}/tenants/{tenant}/input.yaml",
                f"clusters/{name}/tenants/{tenant}/input.yml",
            }
            if expected_env is not None:
                assert tenant in fleet.tenants_of(expected_env)
                assert name in fleet.clusters_of(expected_env)


@pytest.mark.parametrize("name", ["payment-app", "dev-use1-01", "a", "A.b_c-9", "x" * 128, "0day"])
def test_safe_names(name: str) -> None:
    assert is_safe_name(name)


@pytest.mark.parametrize(
    "name",
    [
        "",
        ".",
        "..",
        "../prod",
        "a/b",
        "a\\b",
        "a..b",
        "-x",
        ".hidden",
        "_x",
        "pаyment",  # Cyrillic а
        "ｐayment",  # full-width p
        "a b",
        "a\n",
        "a\t",
        "dev-*",
        "dev-?",
        "dev-[12]",
        "x" * 129,
        "café",
    ],
)
def test_unsafe_names(name: str) -> None:
    assert not is_safe_name(name)


def test_non_strings_are_not_safe_names() -> None:
    assert not is_safe_name(None)  # type: ignore[arg-type]
