"""The gate fails closed (issue 16): what the bot cannot see or judge never passes.

Each test is an attack by someone with push access, written as they would try it: a signed
webhook in, the in-package fake GitHub out. docs/threat-model.md (section V) names each attack,
who can try it, and the check that stops it.
"""

from __future__ import annotations

import io
from pathlib import Path

from bot.cli.check import run_check
from bot.fake import samples
from bot.rules.refs import is_valid_branch
from tests.e2e.gatekit import (
    DEV,
    PROD,
    STAGING,
    checks,
    land,
    open_change,
    path,
    summary,
    verdict,
    with_image,
)
from tests.harness import FLEET, Harness

LINEAGE, APPROVALS, FLEET_CHECK = "promotion/lineage", "promotion/approvals", "promotion/fleet"
IMG = samples.PAYMENT_IMAGE
SHOP = samples.CHECKOUT_IMAGE
POLICY = ".github/promotion.yml"
SOURCES = "clusters/{}/flux-system/sources.yaml"
LINK, SUBMODULE = "120000", "160000"


def merged(h: Harness, number: int) -> bool:
    return bool(h.fake.repo(FLEET).prs[number].merged)


def both(h: Harness, number: int) -> str:
    return summary(h, number, LINEAGE) + "\n" + summary(h, number, APPROVALS)


def prod_approvals_asked(h: Harness, number: int) -> bool:
    text = summary(h, number, APPROVALS)
    return verdict(h, number, APPROVALS) == "pending" and "@acme/tech-leads" in text


def policy_with(h: Harness, extra: bytes) -> bytes:
    current = h.file(POLICY)
    assert current is not None
    return current + extra


# --- item 1: the 3,000-file list ----------------------------------------------------------------


def notes(count: int) -> dict[str, bytes | None]:
    return {f"clusters/{DEV}/notes/n{i:04d}.txt": b"%d\n" % i for i in range(count)}


async def test_a_prod_change_past_the_3000th_file_is_seen_and_needs_prod_approvals(
    world: Harness,
) -> None:
    changes = notes(3000)
    changes[path(PROD)] = with_image(world, PROD, f"{IMG}:v9.9.9")  # never ran in staging
    number = open_change(world, "many-files", changes, title="notes (and a prod image)")
    await world.settle()
    assert not merged(world, number)
    assert verdict(world, number, LINEAGE) == "failure"
    assert "v9.9.9" in summary(world, number, LINEAGE)
    assert prod_approvals_asked(world, number)
    text = both(world, number)
    assert "3,001" in text and "comparing the trees" in text


async def test_a_change_the_trees_cannot_show_either_fails_closed(world: Harness) -> None:
    changes = notes(3000)
    changes[path(PROD)] = with_image(world, PROD, f"{IMG}:v2.0.0")  # ran in staging
    world.fake.tree_entry_limit = 2000  # GitHub truncates the 3,000-entry directory
    world.fake.serve_archive(FLEET, status=502, times=None)  # and no archive shows it whole
    number = open_change(world, "hidden", changes, title="notes")
    await world.settle()
    assert not merged(world, number)
    assert verdict(world, number, LINEAGE) == "failure"
    assert verdict(world, number, FLEET_CHECK) == "failure"
    assert prod_approvals_asked(world, number)
    for name in (LINEAGE, APPROVALS, FLEET_CHECK):
        text = summary(world, number, name)
        assert "could not see" in text and "3,000" in text, name


async def test_a_small_pr_costs_no_call_to_complete_its_file_list(world: Harness) -> None:
    world.fake.reset_counters()
    number = open_change(
        world, "small", {path(DEV): with_image(world, DEV, f"{IMG}:v2.5.0")}, title="dev"
    )
    await world.settle()
    assert merged(world, number)
    calls = world.bot_requests()
    # the list was complete: no merge base asked for, no count of the PR's files read
    assert not [r for r in calls if "/compare/" in r.path and "per_page=1" in r.query]
    lists = [r for r in calls if r.path.endswith(f"/pulls/{number}/files")]
    assert len(lists) == 1


# --- item 2: a digest beside a tag that ran ----------------------------------------------------


async def test_a_digest_added_to_a_tag_that_ran_upstream_is_not_verified(world: Harness) -> None:
    pinned = f"{IMG}:v2.0.0@sha256:" + "e" * 64  # staging ran v2.0.0, never this digest
    number = open_change(world, "digest", {path(PROD): with_image(world, PROD, pinned)})
    await world.settle()
    assert verdict(world, number, LINEAGE) == "failure"
    assert "never ran" in summary(world, number, LINEAGE)


async def test_a_digest_staging_pinned_passes(world: Harness) -> None:
    pinned = f"{IMG}:v2.0.0@sha256:" + "e" * 64
    land(world.fake, {path(STAGING): with_image(world, STAGING, pinned)}, "staging pins it")
    await world.settle()
    number = open_change(world, "digest", {path(PROD): with_image(world, PROD, pinned)})
    await world.settle()
    assert verdict(world, number, LINEAGE) == "success", summary(world, number, LINEAGE)


# --- item 3: Flux sources moved away from a tag ------------------------------------------------


def source_with(h: Harness, cluster: str, old: bytes, new: bytes) -> bytes:
    current = h.file(SOURCES.format(cluster))
    assert current is not None and old in current
    return current.replace(old, new)


async def test_a_prod_source_moved_from_a_tag_to_a_branch_fails_lineage(world: Harness) -> None:
    body = source_with(world, PROD, b"tag: v1.1.0", b"branch: main")
    number = open_change(world, "follow-main", {SOURCES.format(PROD): body})
    await world.settle()
    assert verdict(world, number, LINEAGE) == "failure"
    text = summary(world, number, LINEAGE)
    assert "branch main" in text and "tag v1.1.0" in text
    assert prod_approvals_asked(world, number)


async def test_a_commit_or_semver_written_beside_the_tag_fails_lineage(world: Harness) -> None:
    for key, value in (("commit", "0" * 40), ("semver", ">=1.0.0")):
        extra = f"tag: v1.1.0\n    {key}: '{value}'".encode()
        body = source_with(world, PROD, b"tag: v1.1.0", extra)
        number = open_change(world, f"beside-{key}", {SOURCES.format(PROD): body})
        await world.settle()
        assert verdict(world, number, LINEAGE) == "failure", key
        assert f"would follow {key} " in summary(world, number, LINEAGE)


async def test_a_prod_source_that_cannot_be_read_fails_lineage(world: Harness) -> None:
    body = source_with(world, PROD, b"tag: v1.1.0", b"tag: v1.1.0\n    tag: v9.9.9")
    number = open_change(world, "dup-tag", {SOURCES.format(PROD): body})
    await world.settle()
    assert verdict(world, number, LINEAGE) == "failure"
    assert "duplicate key 'tag'" in summary(world, number, LINEAGE)


async def test_a_source_following_the_fleet_repository_itself_is_the_gate(
    world: Harness,
) -> None:
    own = (
        b"apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata:\n"
        b"  name: flux-system\n  namespace: flux-system\nspec:\n"
        b"  url: " + f"{world.fake.web_url}/{FLEET}".encode() + b"\n  ref:\n    branch: main\n"
    )
    number = open_change(world, "bootstrap", {f"clusters/{PROD}/flux-system/gotk-sync.yaml": own})
    await world.settle()
    assert verdict(world, number, LINEAGE) == "success", summary(world, number, LINEAGE)


# --- item 4: duplicate keys, second documents ---------------------------------------------------


async def test_a_second_default_values_key_fails_closed(world: Harness) -> None:
    current = world.file(path(PROD, "checkout"))
    assert current is not None
    hidden = current + b"  defaultValues:\n    image: " + SHOP.encode() + b":v6.6.6\n"
    number = open_change(world, "dup", {path(PROD, "checkout"): hidden})
    await world.settle()
    assert verdict(world, number, LINEAGE) == "failure"
    text = summary(world, number, LINEAGE)
    assert "duplicate key 'defaultValues'" in text and "could not see" in text
    assert prod_approvals_asked(world, number)
    annotations = checks(world, number)[LINEAGE].annotations
    assert any(a["path"] == path(PROD, "checkout") and a["start_line"] > 1 for a in annotations)


async def test_a_second_provider_document_is_judged(world: Harness) -> None:
    current = world.file(path(PROD, "checkout"))
    assert current is not None
    second = current.replace(b"checkout-inputs", b"checkout-extra").replace(
        b"checkout:v3.2.0", b"checkout:v6.6.6"
    )
    number = open_change(world, "second", {path(PROD, "checkout"): current + b"---\n" + second})
    await world.settle()
    assert verdict(world, number, LINEAGE) == "failure"
    assert "v6.6.6" in summary(world, number, LINEAGE)


# --- item 5: every promoteKeys value ------------------------------------------------------------


async def test_every_promote_key_is_traced(world: Harness) -> None:
    land(
        world.fake,
        {
            POLICY: policy_with(world, b"").replace(
                b"promoteKeys: [image]", b"promoteKeys: [image, appName]"
            )
        },
        "promote the app name too",
    )
    await world.settle()
    current = world.file(path(PROD))
    assert current is not None
    renamed = current.replace(b'"payment-processor"', b'"payment-evil"')
    number = open_change(world, "rename-app", {path(PROD): renamed})
    await world.settle()
    assert verdict(world, number, LINEAGE) == "failure"
    text = summary(world, number, LINEAGE)
    assert "payment-evil" in text and "appName" in text
    # the staging value passes, with its evidence
    land(world.fake, {path(STAGING): with_image(world, STAGING, f"{IMG}:v2.0.0")}, "noop")
    staging = world.file(path(STAGING))
    assert staging is not None
    land(
        world.fake,
        {path(STAGING): staging.replace(b'"payment-processor"', b'"payment-evil"')},
        "staging renames the app",
    )
    await world.settle()
    assert verdict(world, number, LINEAGE) == "success", summary(world, number, LINEAGE)


async def test_a_promote_key_holding_a_mapping_cannot_be_traced(world: Harness) -> None:
    land(
        world.fake,
        {
            POLICY: policy_with(world, b"").replace(
                b"promoteKeys: [image]", b"promoteKeys: [image, appName]"
            )
        },
        "promote the app name too",
    )
    await world.settle()
    current = world.file(path(PROD))
    assert current is not None
    body = current.replace(b'appName: "payment-processor"', b"appName: {name: x}")
    number = open_change(world, "mapping", {path(PROD): body})
    await world.settle()
    assert verdict(world, number, LINEAGE) == "failure"
    assert "appName is a mapping" in summary(world, number, LINEAGE)


# --- item 8: files outside clusters/ ------------------------------------------------------------


async def test_a_shared_directory_outside_clusters_needs_every_gate(world: Harness) -> None:
    number = open_change(
        world, "infra", {"infrastructure/ingress/values.yaml": b"replicas: 1\n"}, title="infra"
    )
    await world.settle()
    assert not merged(world, number)
    assert prod_approvals_asked(world, number)
    assert "infrastructure/ingress/values.yaml" in summary(world, number, APPROVALS)


async def test_ungated_paths_need_no_approval_and_are_not_merged_by_the_bot(
    world: Harness,
) -> None:
    land(world.fake, {POLICY: policy_with(world, b'ungated: ["docs/**", "*.md"]\n')}, "docs")
    await world.settle()
    number = open_change(
        world, "docs", {"docs/runbook.md": b"# runbook\n", "README.md": b"# fleet\n"}
    )
    await world.settle()
    assert verdict(world, number, APPROVALS) == "success"
    assert verdict(world, number, LINEAGE) == "success"
    assert not merged(world, number)
    shared = open_change(world, "shared", {"infrastructure/x.yaml": b"a: 1\n"})
    await world.settle()
    assert prod_approvals_asked(world, shared)


# --- item 9: numbers and branch names -----------------------------------------------------------


async def test_a_policy_with_huge_numbers_is_reported_not_crashed_on(world: Harness) -> None:
    for bad, fragment in (
        (b"    minSoak: 1000000000d\n", "at most 365d"),
        (b"    approvals: [{team: sre, count: 1000000000}]\n", "at most 50"),
    ):
        policy = (
            b"environments:\n  - name: dev\n    autoMerge: true\n  - name: staging\n"
            b"  - name: prod\n" + bad
        )
        land(world.fake, {POLICY: policy}, "a policy nobody checked")
        await world.settle()
        number = open_change(
            world, f"p{len(bad)}", {path(PROD): with_image(world, PROD, f"{IMG}:v2.0.0")}
        )
        await world.settle()
        assert verdict(world, number, LINEAGE) == "failure"
        text = summary(world, number, LINEAGE)
        assert fragment in text and "line 6" in text


def test_the_check_command_reports_a_huge_number_with_its_line(tmp_path: Path) -> None:
    root = tmp_path / "fleet"
    for name, data in samples.fleet_files().items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    (root / POLICY).write_bytes(
        b"environments:\n  - name: dev\n  - name: prod\n    minSoak: 1000000000d\n"
        b"ungated: [clusters/**]\n"
    )
    out = io.StringIO()
    assert run_check(root, base=None, out=out) == 1
    assert "promotion.yml:4" in out.getvalue() and "at most 365d" in out.getvalue()
    (root / POLICY).write_bytes(b"environments:\n  - name: dev\nungated:\n  - clusters/**\n")
    out = io.StringIO()
    assert run_check(root, base=None, out=out) == 1
    assert "promotion.yml:4" in out.getvalue() and "always gated" in out.getvalue()


async def test_a_tag_git_refuses_as_a_branch_name_still_gets_its_bump(world: Harness) -> None:
    world.fake.dispatch(FLEET, "image-published", {"image": IMG, "tag": "v2.2..1"}, by="ci-bot")
    await world.settle()
    (pr,) = [p for p in world.pulls() if p.head_ref.startswith("fleet-bot/bump/")]
    assert is_valid_branch(pr.head_ref) and pr.merged
    assert b"payment:v2.2..1" in (world.file(path(DEV)) or b"")
    refused = [r for r in world.bot_requests() if r.status == 422]
    assert refused == []
    commits = [
        r for r in world.bot_requests() if r.method == "POST" and r.path.endswith("/git/commits")
    ]
    refs = [r for r in world.bot_requests() if r.method == "POST" and r.path.endswith("/git/refs")]
    assert len(commits) == len(refs) == 1  # every commit the bot made has its branch


# --- beyond the list: renames, re-added tenants, links, the policy -----------------------------


async def test_a_prod_input_renamed_to_another_name_is_not_left_untraced(world: Harness) -> None:
    current = with_image(world, PROD, f"{IMG}:v9.9.9")
    moved = f"clusters/{PROD}/tenants/payment-app/values.yaml"
    number = open_change(world, "rename", {path(PROD): None, moved: current})
    await world.settle()
    assert verdict(world, number, LINEAGE) == "failure"
    assert "input.yaml" in summary(world, number, LINEAGE)


async def test_a_dev_input_renamed_into_prod_is_traced_as_a_new_prod_value(world: Harness) -> None:
    dev = with_image(world, DEV, f"{IMG}:v2.1.0-rc1")  # what dev runs, never staging
    number = open_change(world, "promote-by-rename", {path(DEV): None, path(PROD, "ledger"): dev})
    await world.settle()
    assert verdict(world, number, LINEAGE) == "failure"
    assert prod_approvals_asked(world, number)


async def test_a_tenant_deleted_and_re_added_under_the_other_name_is_traced(
    world: Harness,
) -> None:
    yml = path(PROD).replace("input.yaml", "input.yml")
    number = open_change(
        world, "readd", {path(PROD): None, yml: with_image(world, PROD, f"{IMG}:v9.9.9")}
    )
    await world.settle()
    assert verdict(world, number, LINEAGE) == "failure"
    assert "v9.9.9" in summary(world, number, LINEAGE)


async def test_a_prod_tenant_linked_to_dev_makes_every_dev_change_a_prod_change(
    world: Harness,
) -> None:
    prod_dir = f"clusters/{PROD}/tenants/payment-app"
    land(
        world.fake,
        {f"{prod_dir}/input.yaml": None, f"{prod_dir}/sync.yaml": None},
        "prod payment-app goes",
    )
    land(
        world.fake,
        {prod_dir: (LINK, b"../../dev-use1-01/tenants/payment-app")},
        "prod follows dev",
    )
    await world.settle()
    number = open_change(
        world, "dev-only", {path(DEV): with_image(world, DEV, f"{IMG}:v9.9.9")}, title="dev"
    )
    await world.settle()
    assert not merged(world, number)
    assert verdict(world, number, LINEAGE) == "failure"
    assert prod_approvals_asked(world, number)
    assert "symlink" in summary(world, number, LINEAGE)


async def test_undoing_the_link_is_judged_like_any_prod_change(world: Harness) -> None:
    prod_dir = f"clusters/{PROD}/tenants/payment-app"
    before = world.file(f"{prod_dir}/input.yaml")
    assert before is not None
    land(world.fake, {f"{prod_dir}/input.yaml": None, f"{prod_dir}/sync.yaml": None}, "go")
    land(world.fake, {prod_dir: (LINK, b"../../dev-use1-01/tenants/payment-app")}, "link")
    await world.settle()
    world.fake.create_branch(FLEET, "unlink", by="alice")
    world.fake.commit(FLEET, "unlink", {prod_dir: None}, "unlink", author="alice")
    back = before.replace(b"payment:v1.9.0", b"payment:v2.0.0")  # what staging runs
    world.fake.commit(FLEET, "unlink", {f"{prod_dir}/input.yaml": back}, "back", author="alice")
    number = world.fake.open_pr(FLEET, "unlink", title="undo the link", author="alice")
    await world.settle()
    assert verdict(world, number, LINEAGE) == "success", summary(world, number, LINEAGE)
    assert "could not see" not in both(world, number)
    assert prod_approvals_asked(world, number)


async def test_a_link_inside_dev_leaves_dev_bumps_alone(world: Harness) -> None:
    land(
        world.fake,
        {f"clusters/{DEV}/tenants/payment-app/alias.yaml": (LINK, b"input.yaml")},
        "a harmless link",
    )
    await world.settle()
    number = open_change(
        world, "dev", {path(DEV): with_image(world, DEV, f"{IMG}:v2.5.0")}, title="dev"
    )
    await world.settle()
    assert merged(world, number)


async def test_a_symlink_or_submodule_added_in_prod_is_a_blind_spot(world: Harness) -> None:
    link = open_change(
        world,
        "link",
        {f"clusters/{PROD}/tenants/payment-app/extra.yaml": (LINK, b"../../../dev-use1-01/x")},
    )
    module = open_change(
        world, "module", {f"clusters/{PROD}/vendor/blueprints": (SUBMODULE, "ab" * 20)}
    )
    await world.settle()
    for number, word in ((link, "symlink"), (module, "submodule")):
        assert verdict(world, number, LINEAGE) == "failure", word
        assert word in summary(world, number, LINEAGE)
        assert prod_approvals_asked(world, number)


async def test_a_policy_change_with_a_dev_tenant_needs_every_gate(world: Harness) -> None:
    loose = (
        b"environments:\n  - name: dev\n    autoMerge: true\n  - name: staging\n  - name: prod\n"
    )
    number = open_change(
        world,
        "loosen",
        {POLICY: loose, path(DEV): with_image(world, DEV, f"{IMG}:v2.5.0")},
        title="dev bump (and a small policy tweak)",
    )
    await world.settle()
    assert not merged(world, number)
    assert prod_approvals_asked(world, number)
    assert ".github" in summary(world, number, APPROVALS)


# --- references of kustomizations (V17; was residual risk R6) -----------------------------------
#
# A prod kustomization (or a Flux Kustomization's spec.path) that names a dev directory makes
# every dev change a prod change, as a symlink would: each change under a directory a gated
# cluster pulls in counts in that cluster's environment too.

PROD_KUSTOMIZATION = f"clusters/{PROD}/kustomization.yaml"
DEV_PAYMENT = f"clusters/{DEV}/tenants/payment-app"


def kustomization(*entries: str, field: str = "resources") -> bytes:
    lines = "".join(f"  - {entry}\n" for entry in entries)
    return (
        f"apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n{field}:\n{lines}"
    ).encode()


def flux_kustomization(spec_path: str, source: str = "flux-system") -> bytes:
    return f"""\
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: apps
  namespace: flux-system
spec:
  interval: 10m
  path: {spec_path}
  prune: true
  sourceRef:
    kind: GitRepository
    name: {source}
""".encode()


async def pulled_in_by_prod(world: Harness, files: dict[str, bytes | None]) -> None:
    land(world.fake, files, "prod pulls in a dev directory")
    await world.settle()


async def dev_bump(world: Harness, image: str, branch: str = "dev-only") -> int:
    number = open_change(world, branch, {path(DEV): with_image(world, DEV, image)}, title="dev")
    await world.settle()
    return number


async def test_a_prod_kustomization_pulling_in_a_dev_tenant_makes_dev_changes_prod_changes(
    world: Harness,
) -> None:
    await pulled_in_by_prod(
        world,
        {PROD_KUSTOMIZATION: kustomization("tenants/checkout", f"../{DEV}/tenants/payment-app")},
    )
    number = await dev_bump(world, f"{IMG}:v9.9.9")  # never ran in staging
    assert not merged(world, number)
    assert verdict(world, number, LINEAGE) == "failure"
    assert "v9.9.9" in summary(world, number, LINEAGE)
    assert prod_approvals_asked(world, number)
    for name in (LINEAGE, APPROVALS):
        text = summary(world, number, name)
        assert PROD_KUSTOMIZATION in text and DEV_PAYMENT in text, name


async def test_a_dev_change_prod_pulls_in_needs_prod_approvals_even_when_its_lineage_holds(
    world: Harness,
) -> None:
    await pulled_in_by_prod(world, {PROD_KUSTOMIZATION: kustomization(f"../{DEV}/tenants")})
    number = await dev_bump(world, f"{IMG}:v2.0.0")  # what staging runs
    assert verdict(world, number, LINEAGE) == "success", summary(world, number, LINEAGE)
    assert prod_approvals_asked(world, number)
    assert not merged(world, number)
    assert "could not see" not in both(world, number)  # a known reach, not a blind spot


async def test_a_flux_kustomization_path_into_dev_makes_dev_changes_prod_changes(
    world: Harness,
) -> None:
    apps = f"clusters/{PROD}/flux-system/apps.yaml"
    await pulled_in_by_prod(world, {apps: flux_kustomization(f"./clusters/{DEV}/tenants")})
    number = await dev_bump(world, f"{IMG}:v9.9.9")
    assert not merged(world, number)
    assert verdict(world, number, LINEAGE) == "failure"
    assert prod_approvals_asked(world, number)
    assert apps in summary(world, number, APPROVALS)


async def test_a_flux_kustomization_of_another_repository_leaves_dev_bumps_alone(
    world: Harness,
) -> None:
    # spec.path is relative to the root of its source: here the blueprints repository
    apps = f"clusters/{PROD}/flux-system/apps.yaml"
    await pulled_in_by_prod(
        world, {apps: flux_kustomization(f"./clusters/{DEV}/tenants", "platform-blueprints")}
    )
    number = await dev_bump(world, f"{IMG}:v2.5.0")
    assert merged(world, number)


async def test_references_are_followed_through_other_kustomizations_and_cycles_end(
    world: Harness,
) -> None:
    await pulled_in_by_prod(
        world,
        {
            PROD_KUSTOMIZATION: kustomization(f"../{DEV}/apps"),
            f"clusters/{DEV}/apps/kustomization.yaml": kustomization(
                "../tenants/payment-app", ".", f"../../{PROD}", "../apps"
            ),
        },
    )
    number = await dev_bump(world, f"{IMG}:v9.9.9")
    assert not merged(world, number)
    assert verdict(world, number, LINEAGE) == "failure"
    assert prod_approvals_asked(world, number)
    assert PROD_KUSTOMIZATION in summary(world, number, APPROVALS)


async def test_patches_and_components_pull_in_what_they_name(world: Harness) -> None:
    text = (
        kustomization("tenants/checkout")
        + f"components:\n  - ../{DEV}/components/debug\n".encode()
        + f"patches:\n  - path: ../{DEV}/tenants/payment-app/input.yaml\n".encode()
    )
    await pulled_in_by_prod(world, {PROD_KUSTOMIZATION: text})
    number = await dev_bump(world, f"{IMG}:v9.9.9")
    assert not merged(world, number)
    assert verdict(world, number, LINEAGE) == "failure"
    component = open_change(
        world,
        "component",
        {f"clusters/{DEV}/components/debug/kustomization.yaml": b"kind: Component\n"},
    )
    await world.settle()
    assert not merged(world, component)
    assert prod_approvals_asked(world, component)


async def test_a_pr_adding_a_reference_and_the_dev_change_it_pulls_in_is_traced(
    world: Harness,
) -> None:
    number = open_change(
        world,
        "both",
        {
            PROD_KUSTOMIZATION: kustomization(f"../{DEV}/tenants/payment-app"),
            path(DEV): with_image(world, DEV, f"{IMG}:v9.9.9"),
        },
    )
    await world.settle()
    assert verdict(world, number, LINEAGE) == "failure"
    assert "v9.9.9" in summary(world, number, LINEAGE)
    assert prod_approvals_asked(world, number)


async def test_a_remote_base_naming_the_fleet_repository_itself_is_followed(
    world: Harness,
) -> None:
    remote = f"{world.fake.web_url}/{FLEET}//clusters/{DEV}/tenants?ref=main"
    await pulled_in_by_prod(world, {PROD_KUSTOMIZATION: kustomization(remote)})
    number = await dev_bump(world, f"{IMG}:v9.9.9")
    assert not merged(world, number)
    assert verdict(world, number, LINEAGE) == "failure"
    assert prod_approvals_asked(world, number)


async def test_a_remote_base_in_another_repository_leaves_dev_bumps_alone(world: Harness) -> None:
    remote = "https://github.com/kubernetes-sigs/kustomize//examples/helloWorld?ref=v3.3.1"
    await pulled_in_by_prod(world, {PROD_KUSTOMIZATION: kustomization(remote)})
    number = await dev_bump(world, f"{IMG}:v2.5.0")
    assert merged(world, number)


async def test_a_reference_the_bot_cannot_resolve_in_prod_fails_closed(world: Harness) -> None:
    broken = {
        "escapes": kustomization("../../../../etc/secrets"),
        "unparseable": b"resources:\n  - [unclosed\n",
        "unplaceable": kustomization(
            f"{world.fake.web_url}/{FLEET}/raw/main/{DEV_PAYMENT}/input.yaml"
        ),
        "not-a-path": kustomization("{name: x}"),
    }
    for branch, text in broken.items():
        land(world.fake, {PROD_KUSTOMIZATION: text}, branch)
        await world.settle()
        number = await dev_bump(world, f"{IMG}:v2.5.{len(branch)}", branch)
        assert not merged(world, number), branch
        assert verdict(world, number, LINEAGE) == "failure", branch
        assert prod_approvals_asked(world, number), branch
        text_seen = summary(world, number, LINEAGE)
        assert "could not see" in text_seen and PROD_KUSTOMIZATION in text_seen, branch
        world.fake.close_pr(FLEET, number)
        await world.settle()


async def test_kustomizations_inside_prod_leave_dev_bumps_alone_and_cost_no_call(
    world: Harness,
) -> None:
    await pulled_in_by_prod(
        world,
        {
            PROD_KUSTOMIZATION: kustomization("tenants/checkout", "tenants/payment-app", "base"),
            f"clusters/{PROD}/flux-system/apps.yaml": flux_kustomization(f"./clusters/{PROD}"),
            f"clusters/{DEV}/kustomization.yaml": kustomization(f"../{PROD}/tenants"),  # dev's own
        },
    )
    first = await dev_bump(world, f"{IMG}:v2.5.0", "first")
    assert merged(world, first)
    world.fake.reset_counters()
    number = await dev_bump(world, f"{IMG}:v2.5.1", "second")
    assert merged(world, number)
    blobs = [r.path for r in world.bot_requests() if "/git/blobs/" in r.path]
    assert len(blobs) == 1, blobs  # the changed input only: no kustomization read again


async def test_a_pr_mending_a_broken_reference_is_judged_as_it_will_be(world: Harness) -> None:
    land(world.fake, {PROD_KUSTOMIZATION: kustomization("../../../../etc")}, "broken")
    await world.settle()
    number = open_change(world, "mend", {PROD_KUSTOMIZATION: kustomization("tenants/checkout")})
    await world.settle()
    assert "could not see" not in both(world, number)
    assert verdict(world, number, LINEAGE) == "success", summary(world, number, LINEAGE)
    assert prod_approvals_asked(world, number)  # a prod change all the same


# --- V18: an API group or kind spelled so that a text search misses it -------------------------
# YAML's double-quoted escapes (and encodings other than UTF-8) spell the same value with other
# bytes: the cheap byte searches that skip files must not skip those.

ESCAPED_SOURCE = b'apiVersion: "source.toolkit.fluxcd\\x2eio/v1"'
ESCAPED_FLUX = b'apiVersion: "kustomize.toolkit.fluxcd\\x2eio/v1"'


async def test_v18_an_escaped_source_api_group_is_still_a_source(world: Harness) -> None:
    body = source_with(world, PROD, b"tag: v1.1.0", b"branch: main").replace(
        b"apiVersion: source.toolkit.fluxcd.io/v1", ESCAPED_SOURCE
    )
    assert ESCAPED_SOURCE in body
    number = open_change(world, "escaped-source", {SOURCES.format(PROD): body})
    await world.settle()
    assert verdict(world, number, LINEAGE) == "failure", summary(world, number, LINEAGE)
    assert "branch main" in summary(world, number, LINEAGE)


async def test_v18_an_escaped_flux_kustomization_still_pulls_in(world: Harness) -> None:
    apps = f"clusters/{PROD}/flux-system/apps.yaml"
    body = flux_kustomization(f"./clusters/{DEV}/tenants").replace(
        b"apiVersion: kustomize.toolkit.fluxcd.io/v1", ESCAPED_FLUX
    )
    assert ESCAPED_FLUX in body
    await pulled_in_by_prod(world, {apps: body})
    number = await dev_bump(world, f"{IMG}:v9.9.9")
    assert not merged(world, number)
    assert prod_approvals_asked(world, number)


async def test_v18_a_utf16_flux_kustomization_fails_closed(world: Harness) -> None:
    apps = f"clusters/{PROD}/flux-system/apps.yaml"
    body = flux_kustomization(f"./clusters/{DEV}/tenants").decode().encode("utf-16")
    await pulled_in_by_prod(world, {apps: body})
    number = await dev_bump(world, f"{IMG}:v2.5.0")
    assert not merged(world, number)
    assert apps in summary(world, number, LINEAGE)


async def test_v18_an_escaped_provider_kind_outside_an_input_is_judged(world: Harness) -> None:
    current = world.file(path(PROD, "checkout"))
    assert current is not None
    hidden = current.replace(b"checkout:v3.2.0", b"checkout:v6.6.6").replace(
        b"kind: ResourceSetInputProvider", b'kind: "ResourceSetInputProvide\\x72"'
    )
    assert b"ResourceSetInputProvider" not in hidden
    extra = f"clusters/{PROD}/tenants/checkout/extra.yaml"
    number = open_change(world, "escaped-kind", {extra: hidden})
    await world.settle()
    assert verdict(world, number, LINEAGE) == "failure", summary(world, number, LINEAGE)
