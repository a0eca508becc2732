"""check_tree: the findings behind ``python -m bot check``."""

from __future__ import annotations

from bot.fleet.check import Finding, check_tree

GOOD = b"""\
apiVersion: fluxcd.controlplane.io/v1
kind: ResourceSetInputProvider
metadata: {name: app, namespace: apps}
spec:
  type: Static
  defaultValues:
    image: registry.acme.com/app:v1.0.0
"""

SEED = b"""\
apiVersion: fluxcd.controlplane.io/v1
kind: ResourceSetInputProvider
metadata: {name: app}
spec:
  values:
    image: registry.acme.com/app:v1.0.0
"""


def _tree(**inputs: bytes) -> dict[str, bytes]:
    files = {"README.md": b"# fleet\n", "clusters/dev-1/base/eso.yaml": b"kind: X\n"}
    for key, data in inputs.items():
        cluster, tenant = key.split("__")
        files[f"clusters/{cluster.replace('_', '-')}/tenants/{tenant}/input.yaml"] = data
    return files


def test_a_clean_tree_has_no_findings() -> None:
    assert check_tree(_tree(dev_1__app=GOOD, prod_1__app=GOOD), b"") == []


def test_a_bad_policy_is_an_error_with_its_line() -> None:
    findings = check_tree(
        _tree(dev_1__app=GOOD), b"environments:\n  - name: dev\n    aprovals: []\n"
    )
    assert findings == [
        Finding(
            ".github/promotion.yml",
            3,
            "error",
            "an environment has an unknown key 'aprovals'; did you mean 'approvals'?",
        )
    ]
    assert str(findings[0]).startswith(".github/promotion.yml:3: error: ")


def test_a_missing_policy_is_a_warning_and_inputs_are_still_checked() -> None:
    findings = check_tree(_tree(dev_1__app=b"kind: ResourceSetInputProvider\nspec: [\n"), None)
    assert [(f.path, f.severity) for f in findings] == [
        (".github/promotion.yml", "warning"),
        ("clusters/dev-1/tenants/app/input.yaml", "error"),
    ]
    assert "no .github/promotion.yml" in findings[0].message
    assert findings[1].line == 3


def test_unreadable_inputs_are_errors_with_lines() -> None:
    broken = b"kind: ResourceSetInputProvider\nspec:\n  defaultValues:\n    image: 5\n"
    findings = check_tree(_tree(dev_1__app=GOOD, dev_1__broken=broken), b"")
    assert findings == [
        Finding(
            "clusters/dev-1/tenants/broken/input.yaml",
            4,
            "error",
            "spec.defaultValues.image is 5 (int); it must be a string such as "
            "registry.example.com/app:v1.2.3",
        )
    ]


def test_an_invalid_image_reference_is_an_error_at_its_line() -> None:
    bad = GOOD.replace(b"registry.acme.com/app:v1.0.0", b"'registry.acme.com/app:'")
    (finding,) = check_tree(_tree(dev_1__app=bad), b"")
    assert (finding.path, finding.line, finding.severity) == (
        "clusters/dev-1/tenants/app/input.yaml",
        7,
        "error",
    )
    assert "invalid tag" in finding.message


def test_seed_form_is_a_warning_at_the_values_line() -> None:
    (finding,) = check_tree(_tree(dev_1__app=SEED), b"")
    assert (finding.line, finding.severity) == (5, "warning")
    assert "spec.values" in finding.message and "defaultValues" in finding.message


def test_clusters_without_environment_are_warned_about() -> None:
    findings = check_tree(_tree(dev_1__app=GOOD, qa_1__app=GOOD), b"")
    assert [(f.path, f.severity) for f in findings] == [("clusters/qa-1", "warning")]
    assert "'qa-1' belongs to no environment" in findings[0].message


def test_the_policy_decides_environments() -> None:
    policy = b"environments:\n  - name: qa\n  - name: live\n"
    findings = check_tree(_tree(qa_1__app=GOOD, dev_1__app=GOOD), policy)
    assert [f.path for f in findings] == ["clusters/dev-1"]


def test_findings_are_sorted_by_path_and_line() -> None:
    broken = b"kind: ResourceSetInputProvider\nspec: 3\n"
    findings = check_tree(_tree(prod_1__z=broken, dev_1__a=SEED, dev_1__b=broken), b"")
    keys = [(f.path, f.line or 0) for f in findings]
    assert keys == sorted(keys)
    assert len(findings) == 3
