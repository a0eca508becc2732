"""The pre-commit hook fleet repos use: a valid manifest whose entry really checks a checkout."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

from pre_commit.clientlib import load_manifest

from tests.core.test_checkcli import checkout, git

ROOT = Path(__file__).resolve().parents[2]
HOOKS = ROOT / ".pre-commit-hooks.yaml"


def hook() -> dict[str, object]:
    hooks = load_manifest(str(HOOKS))  # pre-commit's own schema: fails on a bad manifest
    (found,) = [h for h in hooks if h["id"] == "fleet-check"]
    return dict(found)


def run_entry(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    entry = shlex.split(str(hook()["entry"]))
    script = Path(sys.executable).parent / entry[0]
    assert script.is_file(), f"{entry[0]} is not installed beside {sys.executable}"
    return subprocess.run(
        [str(script), *entry[1:], *args], cwd=root, capture_output=True, text=True, timeout=120
    )


def test_the_manifest_follows_pre_commits_conventions() -> None:
    found = hook()
    assert found["language"] == "python" and found["pass_filenames"] is False
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert shlex.split(str(found["entry"]))[0] in scripts  # installed with the package
    files = re.compile(str(found["files"]))
    assert files.search("clusters/prod-use1-01/tenants/app/input.yaml")
    assert files.search(".github/promotion.yml")
    assert not files.search("README.md") and not files.search("docs/clusters.md")


def test_the_entry_passes_a_good_change_and_fails_a_broken_input(tmp_path: Path) -> None:
    root = checkout(tmp_path)
    good = run_entry(root, "--base", "main")
    assert good.returncode == 0, good.stdout + good.stderr
    broken = root / "clusters/staging-use1-01/tenants/payment-app/input.yaml"
    broken.write_text("spec: [unclosed\n")
    git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "break")
    bad = run_entry(root, "--base", "main")
    assert bad.returncode == 1
    assert "clusters/staging-use1-01/tenants/payment-app/input.yaml" in bad.stdout
