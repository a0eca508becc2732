"""Fleet consistency: inputsFrom wiring, the expected secret, secret isolation, seed-form inputs."""

from __future__ import annotations

from collections.abc import Collection

import pytest

from bot.fake import samples
from bot.fleet.check import Finding
from bot.fleet.policy import DEFAULT_POLICY, Policy, parse_policy
from bot.rules.consistency import consistency_findings

DEV = "clusters/dev-1"
INPUT = f"{DEV}/tenants/shop/input.yaml"
SYNC = f"{DEV}/tenants/shop/sync.yaml"
BASE_ES = f"{DEV}/base/external-secrets.yaml"


def rsip(
    name: str = "shop-inputs",
    namespace: str | None = "shop",
    labels: str = "",
    values: str = "appName: shop\n    image: ghcr.io/acme/shop:v1",
) -> str:
    ns = f"\n  namespace: {namespace}" if namespace else ""
    labels_block = f"\n  labels: {labels}" if labels else ""
    return f"""\
apiVersion: fluxcd.controlplane.io/v1
kind: ResourceSetInputProvider
metadata:
  name: {name}{ns}{labels_block}
spec:
  type: Static
  defaultValues:
    {values}
"""


def resource_set(inputs_from: str = "- name: shop-inputs", namespace: str | None = "shop") -> str:
    ns = f"\n  namespace: {namespace}" if namespace else ""
    body = "\n".join(f"    {line}" for line in inputs_from.splitlines())
    return f"""\
apiVersion: fluxcd.controlplane.io/v1
kind: ResourceSet
metadata:
  name: shop-sync{ns}
spec:
  inputsFrom:
{body}
  resources: []
"""


def external_secret(
    target: str | None = "shop-secrets", key: str = "secret/data/shop/dev", name: str = "shop-es"
) -> str:
    target_block = f"\n  target:\n    name: {target}" if target else ""
    return f"""\
apiVersion: external-secrets.io/v1beta1
kind: ExternalSecret
metadata:
  name: {name}
spec:
  secretStoreRef: {{name: cluster-vault, kind: ClusterSecretStore}}{target_block}
  data:
    - secretKey: db_password
      remoteRef:
        key: {key}
        property: db_password
"""


def tree(*without: str) -> dict[str, bytes]:
    """A consistent one-tenant dev cluster, without the paths given."""
    files = {
        INPUT: rsip(),
        SYNC: resource_set(),
        BASE_ES: external_secret(),
        f"{DEV}/base/ingress.yaml": "apiVersion: v1\nkind: Namespace\nmetadata: {name: ingress}\n",
    }
    return {path: text.encode() for path, text in files.items() if path not in without}


def findings(
    files: dict[str, bytes],
    policy: Policy = DEFAULT_POLICY,
    changed: Collection[str] | None = None,
) -> list[Finding]:
    return consistency_findings(files, policy, changed)


def only(found: list[Finding]) -> Finding:
    assert len(found) == 1, found
    return found[0]


def line_of(files: dict[str, bytes], path: str, text: str) -> int:
    """The 1-based line of ``path`` that contains ``text`` (so tests do not hard-code lines)."""
    lines = files[path].decode().splitlines()
    return next(i for i, line in enumerate(lines, 1) if text in line)


# --- a consistent fleet ------------------------------------------------------------------------


def test_a_consistent_tenant_has_no_findings() -> None:
    assert findings(tree()) == []


def test_files_outside_clusters_and_non_yaml_files_are_ignored() -> None:
    files = tree()
    files["docs/example.yaml"] = external_secret(key="secret/data/shop/prod").encode()
    files[f"{DEV}/base/notes.txt"] = b"kind: ExternalSecret\n  : ["
    assert findings(files) == []


# --- rule 1: inputsFrom wiring --------------------------------------------------------------------


def test_an_inputs_from_name_that_matches_no_provider_is_an_error_with_the_fix() -> None:
    files = tree()
    files[SYNC] = resource_set("- kind: ResourceSetInputProvider\n  name: shop-input").encode()
    finding = only(findings(files))
    assert (finding.path, finding.line, finding.severity) == (
        SYNC,
        line_of(files, SYNC, "inputsFrom:"),
        "error",
    )
    assert "ResourceSet shop/shop-sync" in finding.message
    assert "'shop-input'" in finding.message
    assert "shop/shop-inputs" in finding.message
    assert "set the inputsFrom name to 'shop-inputs'" in finding.message


def test_the_provider_must_be_in_the_resource_sets_namespace() -> None:
    files = tree()
    files[INPUT] = rsip(namespace="shop-dev").encode()
    finding = only(findings(files))
    assert finding.path == SYNC
    assert "own namespace ('shop'" in finding.message
    assert "'shop-dev'" in finding.message


@pytest.mark.parametrize(
    ("rs_namespace", "rsip_namespace"),
    [(None, None), (None, "default"), ("default", None), ("shop", "shop")],
)
def test_a_missing_namespace_means_default_on_both_sides(
    rs_namespace: str | None, rsip_namespace: str | None
) -> None:
    files = tree()
    files[SYNC] = resource_set(namespace=rs_namespace).encode()
    files[INPUT] = rsip(namespace=rsip_namespace).encode()
    assert findings(files) == []


def test_a_namespace_given_only_on_one_side_is_a_mismatch() -> None:
    files = tree()
    files[SYNC] = resource_set(namespace=None).encode()
    finding = only(findings(files))
    assert "ResourceSet default/shop-sync" in finding.message
    assert "the provider is in 'shop'" in finding.message


def test_a_selector_matches_the_providers_labels() -> None:
    files = tree()
    files[INPUT] = rsip(name="whatever", labels="{app: shop, tier: web}").encode()
    files[SYNC] = resource_set("- selector:\n    matchLabels: {app: shop}").encode()
    assert findings(files) == []


def test_a_selector_that_matches_no_labels_is_an_error() -> None:
    files = tree()
    files[INPUT] = rsip(labels="{app: shop}").encode()
    files[SYNC] = resource_set("- selector:\n    matchLabels: {app: shop, tier: db}").encode()
    finding = only(findings(files))
    assert "the selector app=shop,tier=db" in finding.message
    assert "metadata.labels" in finding.message


@pytest.mark.parametrize(
    ("expression", "selected"),
    [
        ("{key: app, operator: In, values: [shop, cart]}", True),
        ("{key: app, operator: In, values: [cart]}", False),
        ("{key: app, operator: NotIn, values: [cart]}", True),
        ("{key: app, operator: NotIn, values: [shop]}", False),
        ("{key: app, operator: Exists}", True),
        ("{key: tier, operator: Exists}", False),
        ("{key: tier, operator: DoesNotExist}", True),
        ("{key: app, operator: DoesNotExist}", False),
        ("{key: app, operator: Like, values: [shop]}", False),
    ],
)
def test_selector_match_expressions(expression: str, selected: bool) -> None:
    files = tree()
    files[INPUT] = rsip(labels="{app: shop}").encode()
    files[SYNC] = resource_set(f"- selector:\n    matchExpressions: [{expression}]").encode()
    assert (findings(files) == []) is selected


def test_a_resource_set_without_inputs_from_is_an_error() -> None:
    files = tree()
    files[SYNC] = resource_set("[]").encode().replace(b"  inputsFrom:\n    []\n", b"")
    finding = only(findings(files))
    assert finding.line == 1
    assert "has no inputsFrom entry" in finding.message
    assert "name: shop-inputs" in finding.message


def test_an_entry_of_another_kind_does_not_wire_the_tenant() -> None:
    files = tree()
    files[SYNC] = resource_set("- kind: ConfigMap\n  name: shop-inputs").encode()
    assert "has no inputsFrom entry" in only(findings(files)).message


def test_a_sync_without_an_input_file_is_an_error() -> None:
    files = tree(INPUT)
    finding = only(findings(files))
    assert finding.path == SYNC
    assert "has no input.yaml" in finding.message
    assert "'shop-inputs'" in finding.message


def test_multi_document_files_each_resource_set_and_any_provider() -> None:
    files = tree()
    files[INPUT] = (rsip(name="other") + "---\n" + rsip()).encode()
    kustomization = (
        "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\n"
        "metadata: {name: shop}\nspec: {path: ./x}\n"
    )
    broken_rs = resource_set("- name: nope").replace("shop-sync", "shop-extra")
    files[SYNC] = "---\n".join([kustomization, resource_set(), broken_rs]).encode()
    finding = only(findings(files))
    assert "ResourceSet shop/shop-extra" in finding.message
    assert finding.line == line_of(files, SYNC, "name: shop-extra") + 3  # its inputsFrom key
    assert "shop/other, shop/shop-inputs" in finding.message


def test_a_sync_file_without_a_resource_set_is_not_judged() -> None:
    files = tree()
    files[SYNC] = b"apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\n"
    assert findings(files) == []


def test_unreadable_sync_and_input_files_are_skipped() -> None:
    files = tree()
    files[SYNC] = b"kind: ResourceSet\nspec: [\n"
    assert findings(files) == []
    files = tree()
    files[INPUT] = b"\xff\xfe not utf-8"
    assert findings(files) == []


def test_the_seed_form_input_is_wired_the_same_way() -> None:
    files = tree()
    files[INPUT] = rsip().replace("type: Static\n  defaultValues:", "values:").encode()
    assert [f.severity for f in findings(files)] == ["warning"]  # only the seed-form warning


# --- rule 2: the expected secret exists ---------------------------------------------------------


def test_the_seed_shaped_sample_fleet_names_the_secret_mismatch() -> None:
    files = samples.fleet_files()
    found = findings(files, parse_policy(samples.POLICY))
    errors = [f for f in found if f.severity == "error"]
    payment = [f for f in errors if "/payment-app/" in f.path]
    assert [f.path for f in payment] == [
        f"clusters/{cluster}/tenants/payment-app/input.yaml" for cluster in sorted(samples.CLUSTERS)
    ]
    for finding in payment:
        cluster = finding.path.split("/")[1]
        base = f"clusters/{cluster}/base/external-secrets.yaml"
        assert finding.line == line_of(files, finding.path, "appName:")
        assert "expects the Secret 'payment-processor-secrets'" in finding.message
        assert "appName 'payment-processor'" in finding.message
        target_line = line_of(files, base, "name: payment-app-secrets # The K8s")
        assert f"{base}:{target_line} creates 'payment-app-secrets'" in finding.message
        assert "set spec.target.name to 'payment-processor-secrets'" in finding.message
    # checkout is wired right in the sample: the seed's own mismatch is the only error
    assert {f.path for f in errors} == {f.path for f in payment}


def test_a_wrong_target_name_is_an_error_on_the_input_line_of_the_value() -> None:
    files = tree()
    files[BASE_ES] = external_secret(target="shop-app-secrets").encode()
    finding = only(findings(files))
    assert (finding.path, finding.line, finding.severity) == (
        INPUT,
        line_of(files, INPUT, "appName:"),
        "error",
    )
    assert "'shop-secrets'" in finding.message
    assert f"{BASE_ES}:{line_of(files, BASE_ES, 'name: shop-app-secrets')}" in finding.message


def test_without_target_name_eso_uses_the_metadata_name() -> None:
    files = tree()
    files[BASE_ES] = external_secret(target=None, name="shop-secrets").encode()
    assert findings(files) == []
    files[BASE_ES] = external_secret(target=None, name="shop-es").encode()
    assert "'shop-secrets'" in only(findings(files)).message


def test_an_external_secret_in_the_tenants_own_directory_counts() -> None:
    files = tree(BASE_ES)
    files[f"{DEV}/tenants/shop/secrets/es.yaml"] = external_secret().encode()
    assert findings(files) == []


@pytest.mark.parametrize(
    "path",
    [
        f"{DEV}/tenants/cart/es.yaml",  # another tenant's directory
        "clusters/dev-2/base/es.yaml",  # another cluster's base
        f"{DEV}/infra/es.yaml",  # the cluster, but neither base/ nor the tenant
    ],
)
def test_an_external_secret_elsewhere_does_not_count(path: str) -> None:
    files = tree(BASE_ES)
    files[path] = external_secret().encode()
    finding = only([f for f in findings(files) if f.path == INPUT])
    assert "add an ExternalSecret with `spec.target.name: shop-secrets`" in finding.message


def test_only_the_external_secrets_api_group_counts() -> None:
    files = tree()
    files[BASE_ES] = external_secret().replace("external-secrets.io", "example.com").encode()
    assert "no ExternalSecret" in only(findings(files)).message


def test_a_multi_document_external_secret_file() -> None:
    files = tree()
    other = external_secret(target="cart-secrets", name="cart-es", key="secret/cart/dev")
    files[BASE_ES] = ("---\n".join([other, external_secret()])).encode()
    assert findings(files) == []


def test_an_escaped_kind_is_still_an_external_secret() -> None:
    files = tree()
    files[BASE_ES] = (
        external_secret(key="secret/shop/prod")
        .replace("kind: ExternalSecret", 'kind: "External\\x53ecret"')
        .encode()
    )
    assert b"ExternalSecret" not in files[BASE_ES]
    finding = only(findings(files))
    assert (finding.path, finding.severity) == (BASE_ES, "error")  # read: isolation applies


def test_a_pattern_key_missing_from_the_values_is_a_warning() -> None:
    files = tree()
    files[INPUT] = rsip(values="image: ghcr.io/acme/shop:v1").encode()
    finding = only(findings(files))
    assert (finding.path, finding.severity) == (INPUT, "warning")
    assert finding.line == line_of(files, INPUT, "defaultValues:")
    assert "'{appName}-secrets' needs the value 'appName'" in finding.message


def test_a_custom_pattern_with_a_dotted_key() -> None:
    policy = parse_policy(b"secretName: '{app.name}-creds-{replicas}'\n")
    files = tree()
    files[INPUT] = rsip(values="app: {name: shop}\n    replicas: 2").encode()
    files[BASE_ES] = external_secret(target="shop-creds-2").encode()
    assert findings(files, policy) == []
    files[BASE_ES] = external_secret(target="shop-secrets").encode()
    assert "'shop-creds-2'" in only(findings(files, policy)).message


@pytest.mark.parametrize("pattern", ["{appName}-{flag}", "{}-secrets", "{appName-secrets"])
def test_a_pattern_that_cannot_be_resolved_is_a_warning(pattern: str) -> None:
    policy = parse_policy(f"secretName: '{pattern}'\n".encode())
    files = tree()
    files[INPUT] = rsip(values="appName: shop\n    flag: true").encode()
    finding = only(findings(files, policy))
    assert finding.severity == "warning"
    assert "cannot tell which Secret" in finding.message


def test_a_yaml_bomb_in_an_external_secret_file_is_skipped() -> None:
    bomb = ["apiVersion: external-secrets.io/v1beta1", "kind: ExternalSecret", "a0: &a0 [x, x]"]
    bomb += [f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}]" for i in range(1, 30)]
    files = tree()
    files[BASE_ES] = "\n".join(bomb).encode()
    finding = only(findings(files))
    assert finding.path == INPUT
    assert f"not read: {BASE_ES}" in finding.message


def test_an_oversized_manifest_is_skipped() -> None:
    files = tree()
    files[BASE_ES] = external_secret().encode() + b"#" * (2 * 1024 * 1024) + b"\n"
    assert f"not read: {BASE_ES}" in only(findings(files)).message


# --- rule 3: secret isolation --------------------------------------------------------------------


def test_a_dev_cluster_reading_a_prod_vault_path_is_an_error() -> None:
    files = tree()
    files[BASE_ES] = external_secret(key="secret/data/shop/prod").encode()
    finding = only(findings(files))
    assert (finding.path, finding.line, finding.severity) == (
        BASE_ES,
        line_of(files, BASE_ES, "key: secret/data/shop/prod"),
        "error",
    )
    assert "dev-1 is a dev cluster" in finding.message
    assert "a prod secret path" in finding.message
    assert "'secret/data/shop/dev'" in finding.message


@pytest.mark.parametrize(
    "key", ["secret/data/shop/dev", "secret/data/shop", "secret/data/production/shop"]
)
def test_own_environment_and_environment_free_paths_are_fine(key: str) -> None:
    files = tree()
    files[BASE_ES] = external_secret(key=key).encode()
    assert findings(files) == []


def test_data_from_extract_keys_are_checked_in_any_cluster_file() -> None:
    path = "clusters/prod-1/infra/es.yaml"
    files = tree()
    files[path] = (
        b"apiVersion: external-secrets.io/v1\nkind: ExternalSecret\nmetadata: {name: x}\n"
        b"spec:\n  dataFrom:\n    - extract: {key: secret/staging/shop}\n"
        b"    - extract: {key: secret/prod/shop}\n"
    )
    finding = only(findings(files))
    assert (finding.path, finding.line) == (path, 6)
    assert "prod-1 is a prod cluster" in finding.message
    assert "a staging secret path" in finding.message


def test_isolation_follows_the_policy() -> None:
    files = tree()
    files[BASE_ES] = external_secret(key="secret/data/shop/prod").encode()
    assert findings(files, parse_policy(b"secretIsolation: false\n")) == []
    qa_policy = parse_policy(b"environments: [{name: dev}, {name: qa}]\n")
    assert findings(files, qa_policy) == []  # prod is no environment of this policy
    files[BASE_ES] = external_secret(key="secret/qa/shop").encode()
    assert "a qa secret path" in only(findings(files, qa_policy)).message


def test_a_cluster_of_no_environment_is_not_judged_for_isolation() -> None:
    files = {
        "clusters/lab-1/base/es.yaml": external_secret(key="secret/prod/shop").encode(),
    }
    assert findings(files) == []


# --- rule 4: seed-form inputs ---------------------------------------------------------------------


def test_seed_form_values_get_a_warning_showing_the_real_form() -> None:
    files = tree()
    files[INPUT] = rsip().replace("type: Static\n  defaultValues:", "values:").encode()
    finding = only(findings(files))
    assert (finding.path, finding.line, finding.severity) == (
        INPUT,
        line_of(files, INPUT, "values:"),
        "warning",
    )
    assert "spec.values" in finding.message
    assert "type: Static\n  defaultValues:\n    image: ghcr.io/acme/shop:v1" in finding.message


# --- adoption: findings a PR did not cause ------------------------------------------------------


def broken() -> dict[str, bytes]:
    """Wiring, secret and isolation broken at once (and seed form for the warning)."""
    files = tree()
    seed_form = rsip(namespace="elsewhere").replace("type: Static\n  defaultValues:", "values:")
    files[INPUT] = seed_form.encode()
    files[BASE_ES] = external_secret(target="nope", key="secret/prod/shop").encode()
    return files


def test_without_changed_every_finding_keeps_its_severity() -> None:
    found = findings(broken())
    assert sorted(f.severity for f in found) == ["error", "error", "error", "warning"]
    assert not any(f.message.startswith("pre-existing") for f in found)


def test_findings_a_pr_did_not_touch_become_pre_existing_warnings() -> None:
    whole = findings(broken())
    found = findings(broken(), changed={f"{DEV}/base/ingress.yaml", "README.md"})
    assert len(found) == len(whole)
    assert all(f.severity == "warning" for f in found)
    assert [f.message for f in found] == ["pre-existing: " + w.message for w in whole]


def test_changing_the_input_makes_its_sync_and_secret_findings_the_prs() -> None:
    found = findings(broken(), changed={INPUT})
    new = {(f.path, f.severity) for f in found if not f.message.startswith("pre-existing")}
    assert new == {(SYNC, "error"), (INPUT, "error"), (INPUT, "warning")}
    isolation = only([f for f in found if f.path == BASE_ES])
    assert isolation.severity == "warning"
    assert isolation.message.startswith("pre-existing: ")


def test_changing_the_base_external_secret_makes_its_findings_the_prs() -> None:
    found = findings(broken(), changed={BASE_ES})
    errors = {f.path for f in found if f.severity == "error"}
    assert errors == {INPUT, BASE_ES}
    sync = only([f for f in found if f.path == SYNC])
    assert sync.message.startswith("pre-existing: ")


def test_deleting_the_external_secret_is_the_prs_finding() -> None:
    files = tree(BASE_ES)
    finding = only(findings(files, changed={BASE_ES}))
    assert (finding.path, finding.severity) == (INPUT, "error")
    # the tree no longer says what a deleted manifest held: it may have been the ExternalSecret
    finding = only(findings(files, changed={f"{DEV}/base/other-deleted.yaml"}))
    assert finding.severity == "error"
    finding = only(findings(files, changed={f"{DEV}/base/README.md"}))  # not a manifest
    assert finding.severity == "warning"
    finding = only(findings(files, changed={f"{DEV}/base/ingress.yaml"}))  # changed, not deleted
    assert finding.severity == "warning"


def test_changing_the_policy_makes_secret_findings_the_prs() -> None:
    files = tree()
    files[BASE_ES] = external_secret(target="nope", key="secret/prod/shop").encode()
    found = findings(files, changed={".github/promotion.yml"})
    assert {(f.path, f.severity) for f in found} == {(INPUT, "error"), (BASE_ES, "error")}


def test_a_large_fleet_reports_only_the_broken_tenant() -> None:
    files: dict[str, bytes] = {}
    for c in range(10):
        cluster = f"clusters/dev-{c}"
        files[f"{cluster}/base/es.yaml"] = "---\n".join(
            external_secret(target=f"t{t}-secrets", name=f"t{t}") for t in range(10)
        ).encode()
        for t in range(10):
            tenant = f"{cluster}/tenants/t{t}"
            files[f"{tenant}/input.yaml"] = rsip(name=f"t{t}", values=f"appName: t{t}").encode()
            files[f"{tenant}/sync.yaml"] = resource_set(f"- name: t{t}").encode()
            files[f"{tenant}/kustomization.yaml"] = b"resources: [input.yaml, sync.yaml]\n"
    files["clusters/dev-7/tenants/t3/sync.yaml"] = resource_set("- name: t4").encode()
    found = findings(files)
    assert [(f.path, f.severity) for f in found] == [
        ("clusters/dev-7/tenants/t3/sync.yaml", "error")
    ]
