"""The fleet rules a platform team can run on a checkout: ``python -m bot check`` calls this.

The same judgement the bot makes before acting on a repo, as a list of findings: the policy must be
valid, every tenant input file readable, every image a valid reference. Warnings point at things the
bot will tolerate but a person should know (the seed's ``spec.values`` form, a cluster that no
environment claims). Pure: it takes the files' contents, the caller does the reading.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from bot.fleet.images import ImageRefError, parse_image
from bot.fleet.inputs import InputError, read_input
from bot.fleet.layout import build_fleet
from bot.fleet.policy import DEFAULT_POLICY, POLICY_PATH, PolicyError, parse_policy

__all__ = ["Finding", "check_tree"]


@dataclass(frozen=True)
class Finding:
    """One problem: where (``line`` 1-based, None for the whole file), how bad, what to do."""

    path: str
    line: int | None
    severity: Literal["error", "warning"]
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else self.path
        return f"{where}: {self.severity}: {self.message}"


def check_tree(files: Mapping[str, bytes], policy_bytes: bytes | None) -> list[Finding]:
    """Findings for a fleet tree (path -> content), sorted by path and line.

    ``policy_bytes`` is the content of ``.github/promotion.yml``, or None when the repo has none
    (then the bot would not treat it as a fleet repo; the inputs are still checked with the
    default policy). An invalid policy is an error, and the inputs are checked with the defaults.
    """
    findings: list[Finding] = []
    policy = DEFAULT_POLICY
    if policy_bytes is None:
        findings.append(
            Finding(
                POLICY_PATH,
                None,
                "warning",
                f"there is no {POLICY_PATH}, so the bot does not treat this repo as a fleet repo; "
                "add the file (it may be empty) to use the default policy",
            )
        )
    else:
        try:
            policy = parse_policy(policy_bytes, POLICY_PATH)
        except PolicyError as exc:
            findings.append(Finding(exc.path, exc.line, "error", exc.message))
    fleet = build_fleet(files, policy)
    for path in sorted(fleet.inputs.values()):
        findings.extend(_check_input(path, files[path]))
    for cluster, environment in fleet.clusters.items():
        if environment is None:
            findings.append(
                Finding(
                    f"clusters/{cluster}",
                    None,
                    "warning",
                    f"cluster {cluster!r} belongs to no environment of the policy, so the bot "
                    "ignores it; rename it '<environment>-...' or add it to an environment's "
                    "`clusters`",
                )
            )
    return sorted(findings, key=lambda f: (f.path, f.line or 0, f.severity, f.message))


def _check_input(path: str, data: bytes) -> list[Finding]:
    try:
        tenant_input = read_input(path, data)
    except InputError as exc:
        return [Finding(path, exc.line, "error", exc.message)]
    findings = [
        Finding(path, tenant_input.values_line, "warning", warning)
        for warning in tenant_input.warnings
    ]
    if tenant_input.image is not None:
        try:
            parse_image(tenant_input.image)
        except ImageRefError as exc:
            span = tenant_input.span("image")
            findings.append(Finding(path, span.line if span else None, "error", str(exc)))
    return findings
