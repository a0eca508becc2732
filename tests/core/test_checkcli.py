"""``python -m bot check`` on a local git checkout."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

from bot.cli.check import run_check
from bot.fake import samples

PROD = "clusters/prod-use1-01/tenants/payment-app/input.yaml"
STAGING = "clusters/staging-use1-01/tenants/payment-app/input.yaml"


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)


def checkout(tmp_path: Path) -> Path:
    root = tmp_path / "fleet"
    for path, data in samples.fleet_files().items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(data)
    git(root, "init", "-q", "-b", "main")
    git(root, "-c", "user.name=t", "-c", "user.email=t@t", "add", ".")
    git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "seed")
    return root


def run(root: Path, base: str | None = None) -> tuple[int, str]:
    out = io.StringIO()
    code = run_check(root, base=base, out=out)
    return code, out.getvalue()


def test_sample_checkout_reports_the_seed_documents_secret_mismatch(tmp_path: Path) -> None:
    code, text = run(checkout(tmp_path))
    assert code == 1, text
    assert "warning" in text and "defaultValues" in text  # the seed form
    assert "payment-processor-secrets" in text  # the blueprint's secret nobody creates
    assert "6 input file(s) checked: 3 error(s)" in text


def test_with_base_only_new_consistency_errors_count(tmp_path: Path) -> None:
    root = checkout(tmp_path)
    code, text = run(root, base="main")
    assert code == 0, text
    assert "pre-existing: " in text
    secrets = root / "clusters/dev-use1-01/base/external-secrets.yaml"
    secrets.write_bytes(secrets.read_bytes().replace(b"payment-app/dev", b"payment-app/prod"))
    code, text = run(root, base="main")
    assert code == 1 and "prod" in text


def test_broken_input_is_an_error_with_its_line(tmp_path: Path) -> None:
    root = checkout(tmp_path)
    (root / PROD).write_text("spec:\n  values: [\n")
    code, text = run(root)
    assert code == 1
    assert f"{PROD}:" in text and "error" in text


def test_base_runs_lineage_on_the_change(tmp_path: Path) -> None:
    root = checkout(tmp_path)
    prod = (root / PROD).read_bytes()
    (root / PROD).write_bytes(prod.replace(b"payment:v1.9.0", b"payment:v9.9.9"))
    code, text = run(root, base="main")
    assert code == 1 and "lineage" in text and "v9.9.9" in text
    (root / PROD).write_bytes(prod.replace(b"payment:v1.9.0", b"payment:v2.0.0"))
    code, text = run(root, base="main")
    assert code == 0, text


def test_bad_base_is_reported(tmp_path: Path) -> None:
    code, text = run(checkout(tmp_path), base="no-such-ref")
    assert code == 2 and "--base no-such-ref" in text


def test_the_calendar_keys_are_validated_with_line_and_fix(tmp_path: Path) -> None:
    root = checkout(tmp_path)
    policy = root / ".github/promotion.yml"
    text = policy.read_text()
    bad = text.replace(
        "  - name: prod\n",
        '  - name: prod\n    windows:\n      - days: [mon, thu]\n        from: "09:00"\n'
        '        until: "16:00"\n        timezone: Europe/Berln\n',
    )
    assert bad != text
    policy.write_text(bad)
    code, out = run(root)
    assert code == 1
    assert ".github/promotion.yml:" in out and "did you mean 'Europe/Berlin'?" in out
    policy.write_text(bad.replace("Europe/Berln", "Europe/Berlin"))
    code, out = run(root)
    assert "promotion.yml" not in out, out  # the calendar is valid now


PROD_SOURCES = "clusters/prod-use1-01/flux-system/sources.yaml"
POLICY = ".github/promotion.yml"


def commit_all(root: Path, message: str) -> None:
    git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", message)


def test_base_traces_every_promote_key_as_the_gate_does(tmp_path: Path) -> None:
    """With ``promoteKeys: [image, appName]`` a prod appName that never ran in staging fails,
    as the bot's gate fails it; one that ran there passes."""
    root = checkout(tmp_path)
    policy = root / POLICY
    policy.write_text(policy.read_text().replace("[image]", "[image, appName]"))
    commit_all(root, "trace appName")
    prod = (root / PROD).read_text()
    (root / PROD).write_text(prod.replace('"payment-processor"', '"payment-untested"'))
    code, text = run(root, base="main")
    assert code == 1, text
    assert f"{PROD}: error: lineage:" in text and "payment-untested" in text
    # The value ran in staging (committed there first): it may go to prod.
    staging = (root / STAGING).read_text()
    (root / STAGING).write_text(staging.replace('"payment-processor"', '"payment-untested"'))
    (root / PROD).write_text(prod)
    commit_all(root, "staging runs it")
    (root / PROD).write_text(prod.replace('"payment-processor"', '"payment-untested"'))
    code, text = run(root, base="main")
    assert "lineage" not in text, text  # (the consistency rule still wants its secret name)


def test_base_fails_a_value_lineage_cannot_trace(tmp_path: Path) -> None:
    root = checkout(tmp_path)
    policy = root / POLICY
    policy.write_text(policy.read_text().replace("[image]", "[image, appName]"))
    commit_all(root, "trace appName")
    prod = (root / PROD).read_text()
    (root / PROD).write_text(prod.replace('appName: "payment-processor"', "appName: {a: 1}"))
    code, text = run(root, base="main")
    assert code == 1 and "appName is a mapping" in text, text


def test_base_traces_a_second_provider_document(tmp_path: Path) -> None:
    """A second ResourceSetInputProvider in the same file is applied too: its image is traced."""
    root = checkout(tmp_path)
    prod = (root / PROD).read_text()
    second = prod.replace("payment-app-inputs", "payment-app-extra").replace("v1.9.0", "v9.9.9")
    (root / PROD).write_text(prod + "---\n" + second)
    code, text = run(root, base="main")
    assert code == 1 and "v9.9.9" in text, text


def test_base_traces_flux_source_tags_and_refuses_untraceable_refs(tmp_path: Path) -> None:
    root = checkout(tmp_path)
    sources = (root / PROD_SOURCES).read_text()
    (root / PROD_SOURCES).write_text(sources.replace("tag: v1.1.0", "tag: v1.9.0"))
    code, text = run(root, base="main")
    assert code == 1 and f"{PROD_SOURCES}: error: lineage:" in text and "v1.9.0" in text, text
    (root / PROD_SOURCES).write_text(sources.replace("tag: v1.1.0", "tag: v1.2.0"))
    code, text = run(root, base="main")
    assert code == 0, text  # staging runs blueprints v1.2.0
    (root / PROD_SOURCES).write_text(sources.replace("tag: v1.1.0", "branch: main"))
    code, text = run(root, base="main")
    assert code == 1 and "would follow branch" in text, text


DEV_PAYMENT = "clusters/dev-use1-01/tenants/payment-app/input.yaml"
PROD_KUSTOMIZATION = "clusters/prod-use1-01/kustomization.yaml"


def test_base_counts_what_a_prod_kustomization_pulls_in_as_a_prod_change(tmp_path: Path) -> None:
    """prod's kustomization pulls in dev's payment-app: a dev image that never ran in staging
    fails lineage there, as the gate fails it (R6 / V17)."""
    root = checkout(tmp_path)
    (root / PROD_KUSTOMIZATION).write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        "resources:\n  - tenants/checkout\n  - ../dev-use1-01/tenants/payment-app\n"
    )
    git(root, "add", ".")
    commit_all(root, "prod pulls in dev's payment-app")
    dev = (root / DEV_PAYMENT).read_text()
    assert "payment:v2.1.0-rc1" in dev
    (root / DEV_PAYMENT).write_text(dev.replace("payment:v2.1.0-rc1", "payment:v9.9.9"))
    code, text = run(root, base="main")
    assert code == 1 and f"{DEV_PAYMENT}: error: lineage:" in text and "v9.9.9" in text, text
    (root / DEV_PAYMENT).write_text(dev.replace("payment:v2.1.0-rc1", "payment:v2.0.0"))
    code, text = run(root, base="main")
    assert "lineage" not in text, text  # staging runs v2.0.0


def test_base_fails_a_reference_a_gated_cluster_makes_that_cannot_be_placed(
    tmp_path: Path,
) -> None:
    root = checkout(tmp_path)
    (root / PROD_KUSTOMIZATION).write_text("resources:\n  - ../../../elsewhere\n")
    code, text = run(root, base="main")
    assert code == 1 and f"{PROD_KUSTOMIZATION}:2: error:" in text and "leaves" in text, text
