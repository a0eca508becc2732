"""What a gated cluster pulls in through kustomizations (V17, was R6): the pure resolver."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.fake import samples
from bot.fleet.layout import build_fleet
from bot.fleet.policy import parse_policy
from bot.rules import kustomize
from bot.rules.gate import FileChange, PulledIn, scope_of, with_pulled_in
from bot.rules.kustomize import NOTHING, FileReferences, Reach, read_references

PROD, DEV, STAGING = "clusters/prod-1", "clusters/dev-1", "clusters/staging-1"
OWN = ("github.example", "acme", "fleet")
ROOTS = {PROD: ("prod-1", "prod"), STAGING: ("staging-1", "staging")}


def kust(*resources: str, field: str = "resources") -> bytes:
    lines = "".join(f"  - {r}\n" for r in resources)
    return f"kind: Kustomization\n{field}:\n{lines}".encode()


def flux(path: str | None, kind: str = "GitRepository", name: str = "flux-system") -> bytes:
    spec_path = f"  path: {path}\n" if path is not None else ""
    return (
        "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n"
        f"  name: apps\nspec:\n{spec_path}  sourceRef:\n    kind: {kind}\n    name: {name}\n"
    ).encode()


def resolve(tree: dict[str, bytes], roots: dict[str, tuple[str, str]] = ROOTS) -> Reach:
    """The pure loop the shell runs: read what is wanted, ask again."""
    paths = sorted(tree)
    files: dict[str, FileReferences] = {}
    for _ in range(kustomize.MAX_DEPTH + 3):
        found = kustomize.reach(paths, files.get, roots, OWN)
        if not found.wanted:
            return found
        files.update((p, read_references(p, tree[p])) for p in found.wanted)
    raise AssertionError("the reach never settled")


def targets(found: Reach) -> set[tuple[str, str, str]]:
    return {(r.environment, r.via, r.target) for r in found.references}


def test_relative_resources_components_bases_and_patches_leaving_the_cluster() -> None:
    text = (
        kust("tenants/a", "../dev-1/tenants/b")
        + b"components:\n  - ../dev-1/components/c\n"
        + b"bases:\n  - ../../shared\n"
        + b"patches:\n  - path: ../dev-1/patch.yaml\n  - patch: |-\n      inline\n"
        + b"patchesStrategicMerge:\n  - ../dev-1/psm.yaml\n  - |-\n    apiVersion: v1\n"
        + b"configMapGenerator:\n  - name: x\n    files:\n      - key=../dev-1/f.txt\n"
    )
    found = resolve({f"{PROD}/kustomization.yaml": text, f"{PROD}/tenants/a/x.yaml": b""})
    via = f"{PROD}/kustomization.yaml"
    assert targets(found) == {
        ("prod", via, "clusters/dev-1/tenants/b"),
        ("prod", via, "clusters/dev-1/components/c"),
        ("prod", via, "shared"),
        ("prod", via, "clusters/dev-1/patch.yaml"),
        ("prod", via, "clusters/dev-1/psm.yaml"),
        ("prod", via, "clusters/dev-1/f.txt"),
    }
    assert found.unresolved == ()


def test_flux_spec_path_is_relative_to_the_repository_root() -> None:
    tree = {f"{PROD}/flux-system/apps.yaml": flux("./clusters/dev-1/apps")}
    assert targets(resolve(tree)) == {
        ("prod", f"{PROD}/flux-system/apps.yaml", "clusters/dev-1/apps")
    }


def test_flux_components_are_relative_to_the_spec_path() -> None:
    text = flux("./clusters/prod-1/apps") + b"  components:\n    - ../../dev-1/debug\n"
    found = resolve({f"{PROD}/flux-system/apps.yaml": text})
    assert [r.target for r in found.references] == ["clusters/dev-1/debug"]


def test_flux_without_a_path_applies_the_whole_repository() -> None:
    found = resolve({f"{PROD}/apps.yaml": flux(None)})
    assert [r.target for r in found.references] == [""]
    matched = kustomize.pulled_in(["clusters/dev-1/tenants/x/input.yaml"], found)
    assert [(p, r.environment) for p, r in matched] == [
        ("clusters/dev-1/tenants/x/input.yaml", "prod")
    ]


def test_the_cluster_s_own_paths_are_not_references() -> None:
    tree = {
        f"{PROD}/kustomization.yaml": kust("tenants", "./base", "../prod-1/extra"),
        f"{PROD}/flux-system/sync.yaml": flux("./clusters/prod-1"),
    }
    assert resolve(tree).references == ()


def test_flux_sources_of_other_repositories_are_not_in_this_one() -> None:
    blueprints = (
        b"apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata:\n"
        b"  name: blueprints\nspec:\n  url: https://github.example/acme/blueprints\n"
    )
    tree = {
        f"{PROD}/sources.yaml": blueprints,
        f"{PROD}/a.yaml": flux("./clusters/dev-1", name="blueprints"),
        f"{PROD}/b.yaml": flux("./clusters/dev-1/x", kind="OCIRepository", name="oci"),
    }
    assert resolve(tree).references == ()
    # an unknown GitRepository may be this repository: followed
    tree[f"{PROD}/c.yaml"] = flux("./clusters/dev-1/y", name="unknown")
    assert [r.target for r in resolve(tree).references] == ["clusters/dev-1/y"]


def test_references_are_followed_transitively_and_cycles_end() -> None:
    tree = {
        f"{PROD}/kustomization.yaml": kust("../dev-1/apps"),
        f"{DEV}/apps/kustomization.yaml": kust("../tenants/a", ".", "../apps", "../../prod-1"),
        f"{DEV}/tenants/a/kustomization.yaml": kust("../../apps", "../b"),
        f"{DEV}/tenants/b/flux.yaml": flux("./shared"),
    }
    found = resolve(tree)
    assert {r.target for r in found.references} == {
        "clusters/dev-1/apps",
        "clusters/dev-1/tenants/a",
        "clusters/dev-1/tenants/b",
        "shared",
    }
    assert {r.via for r in found.references} == {f"{PROD}/kustomization.yaml"}
    deep = next(r for r in found.references if r.target == "shared")
    assert deep.through == f"{DEV}/tenants/b/flux.yaml"


def test_a_chain_deeper_than_the_bound_is_unresolved() -> None:
    tree = {f"{PROD}/kustomization.yaml": kust("../dev-1/d0")}
    for i in range(kustomize.MAX_DEPTH + 2):
        tree[f"{DEV}/d{i}/kustomization.yaml"] = kust(f"../d{i + 1}")
    found = resolve(tree)
    assert any(str(kustomize.MAX_DEPTH) in u.reason for u in found.unresolved)


def test_too_many_references_are_one_blind_spot(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kustomize, "MAX_REFERENCES", 3)
    tree = {f"{PROD}/kustomization.yaml": kust(*(f"../dev-1/t{i}" for i in range(5)))}
    found = resolve(tree)
    assert found.references == ()
    assert len(found.unresolved) == 1 and "more than 3" in found.unresolved[0].reason


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        ("../../../etc", "leaves the repository"),
        ("/etc/passwd", "absolute path"),
        ("{name: x}", "not a path"),
        ("https://github.example/acme/fleet/raw/main/x.yaml", "cannot follow"),
        ("git@github.example:acme/fleet.git//../../x", "leaves this repository"),
    ],
)
def test_references_the_bot_cannot_place_are_unresolved(entry: str, reason: str) -> None:
    found = resolve({f"{PROD}/kustomization.yaml": kust(entry)})
    assert found.references == ()
    assert len(found.unresolved) == 1
    spot = found.unresolved[0]
    assert reason in spot.reason and spot.path == f"{PROD}/kustomization.yaml"
    assert spot.environment == "prod" and spot.line == 3


def test_an_unparseable_kustomization_is_unreadable() -> None:
    found = resolve({f"{STAGING}/kustomization.yml": b"resources:\n  - [x\n"})
    assert [(u.kind, u.environment) for u in found.unresolved] == [("unreadable", "staging")]


@pytest.mark.parametrize(
    "url",
    [
        "https://github.example/acme/fleet//clusters/dev-1?ref=main",
        "git::https://github.example/acme/fleet.git//clusters/dev-1?ref=v1",
        "ssh://git@github.example/acme/fleet//clusters/dev-1",
        "git@github.example:acme/fleet.git//clusters/dev-1",
    ],
)
def test_a_remote_url_of_this_repository_is_followed(url: str) -> None:
    found = resolve({f"{PROD}/kustomization.yaml": kust(url)})
    assert [r.target for r in found.references] == ["clusters/dev-1"]


@pytest.mark.parametrize(
    "url",
    [
        "https://github.com/kubernetes-sigs/kustomize//examples/helloWorld?ref=v3.3.1",
        "github.com/acme/other/deploy?ref=v1",
        "https://example.com/manifests/app.yaml",
    ],
)
def test_a_remote_url_of_another_repository_is_left_alone(url: str) -> None:
    found = resolve({f"{PROD}/kustomization.yaml": kust(url)})
    assert found.references == () and found.unresolved == ()


def test_only_gated_clusters_are_followed_and_tenant_inputs_never_read() -> None:
    tree = {
        f"{DEV}/kustomization.yaml": kust("../prod-1/tenants"),
        f"{PROD}/tenants/a/input.yaml": flux("./clusters/dev-1"),  # an input is never read
        f"{PROD}/tenants/a/sync.yaml": b"kind: ResourceSet\n",
    }
    paths = sorted(tree)
    first = kustomize.reach(paths, {}.get, ROOTS, OWN)
    assert first.wanted == (f"{PROD}/tenants/a/sync.yaml",)
    assert resolve(tree).references == ()


def test_files_without_the_flux_group_are_not_parsed() -> None:
    assert read_references("clusters/p/x.yaml", b"not: [valid") is NOTHING
    assert read_references("clusters/p/kustomization.yaml", b"not: [valid").problem


def test_pulled_in_changes_count_in_the_referencing_environment() -> None:
    policy = parse_policy(samples.POLICY)
    dev_input = "clusters/dev-1/tenants/a/input.yaml"
    fleet = build_fleet([dev_input, "clusters/prod-1/tenants/b/input.yaml"], policy)
    changes = [FileChange(dev_input, "modified", sha="1" * 40)]
    scope = scope_of(changes, fleet, policy)
    assert scope.auto_merge and scope.gated == ()
    found = resolve({f"{PROD}/kustomization.yaml": kust("../dev-1/tenants")})
    pulled = [
        PulledIn(p, r.environment, r.via, r.line, r.target)
        for p, r in kustomize.pulled_in([dev_input], found)
    ]
    after = with_pulled_in(scope, changes, fleet, policy, pulled)
    assert after.environments == ("dev", "prod") and after.gated == ("prod",)
    assert not after.auto_merge
    traced = [(i.environment, i.path, i.tenant) for i in after.inputs]
    assert traced == [("dev", dev_input, "a"), ("prod", dev_input, "a")]
    assert not after.every_gate  # a known reach: prod's gates, not every gate


_segment = st.sampled_from(["a", "b", "..", ".", "dev-1", "prod-1", "tenants"])


@given(st.lists(st.lists(_segment, min_size=1, max_size=6), max_size=8))
def test_the_reach_always_settles_and_never_points_outside(entries: list[list[str]]) -> None:
    tree = {f"{PROD}/kustomization.yaml": kust(*("/".join(e) for e in entries))}
    for i, e in enumerate(entries):
        tree[
            f"{DEV}/{'/'.join(x for x in e if x not in ('.', '..')) or 'r'}/k{i}/kustomization.yaml"
        ] = kust("/".join(e))
    found = resolve(tree)
    for ref in found.references:
        assert not ref.target.startswith(("..", "/"))
        assert not ref.target.startswith(PROD + "/") and ref.target != PROD
