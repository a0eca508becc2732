"""The promotion policy: defaults, every option, and every error with its line."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.fleet.policy import (
    DEFAULT_POLICY,
    POLICY_PATH,
    ApprovalRule,
    Environment,
    Policy,
    PolicyError,
    parse_policy,
)

DEFAULTS_AS_YAML = """\
environments:              # promotion order; the first receives new images
  - name: dev
    autoMerge: true
  - name: staging          # `from` defaults to the environment listed before
    approvals: [{team: sre, count: 1}]
  - name: prod
    approvals: [{team: sre, count: 2}, {team: tech-leads, count: 1}]
promoteKeys: [image]       # values a promotion copies from the upstream environment
"""


@pytest.mark.parametrize("data", [None, b"", "", b"# nothing here\n\n# at all\n", b"---\n", b"~\n"])
def test_absent_empty_or_comment_only_file_gives_the_defaults(data: bytes | str | None) -> None:
    assert parse_policy(data) == DEFAULT_POLICY


def test_defaults_are_what_the_issue_says() -> None:
    dev, staging, prod = DEFAULT_POLICY.environments
    assert dev == Environment("dev", None, None, True, ())
    assert staging == Environment("staging", "dev", None, False, (ApprovalRule("sre", 1),))
    assert prod == Environment(
        "prod", "staging", None, False, (ApprovalRule("sre", 2), ApprovalRule("tech-leads", 1))
    )
    assert DEFAULT_POLICY.promote_keys == ("image",)
    assert DEFAULT_POLICY.secret_name == "{appName}-secrets"
    assert DEFAULT_POLICY.secret_isolation is True
    assert DEFAULT_POLICY.prereleases is False


def test_the_documented_default_file_parses_to_the_defaults() -> None:
    assert parse_policy(DEFAULTS_AS_YAML) == DEFAULT_POLICY
    assert parse_policy(DEFAULTS_AS_YAML.encode()) == DEFAULT_POLICY


def test_listing_environments_replaces_the_defaults_and_auto_merge_defaults_to_false() -> None:
    policy = parse_policy(b"environments:\n  - name: qa\n  - name: live\n")
    assert [e.name for e in policy.environments] == ["qa", "live"]
    assert policy.environment("qa") == Environment("qa", None, None, False, ())
    live = policy.environment("live")
    assert live is not None and live.upstream == "qa" and not live.auto_merge
    assert policy.environment("dev") is None


def test_other_top_level_keys_keep_the_default_environments() -> None:
    policy = parse_policy(
        b"promoteKeys: [image, app.version]\nsecretName: '{appName}-creds'\n"
        b"secretIsolation: false\nprereleases: true\n"
    )
    assert policy.environments == DEFAULT_POLICY.environments
    assert policy.promote_keys == ("image", "app.version")
    assert policy.secret_name == "{appName}-creds"
    assert policy.secret_isolation is False
    assert policy.prereleases is True


def test_every_environment_option() -> None:
    policy = parse_policy(
        b"""\
environments:
  - name: dev
    clusters: ["dev-*", "sandbox-??"]
    autoMerge: true
  - name: staging
    upstreamClusters: all
    minSoak: 1h30m
    requireUpstreamStatus: "e2e/*"
  - name: prod
    from: dev
    approvals:
      - {team: "@acme/SRE", count: 2}
      - team: acme/tech-leads
      - team: security
        count: 1
"""
    )
    dev, staging, prod = policy.environments
    assert dev.clusters == ("dev-*", "sandbox-??")
    assert dev.auto_merge is True
    assert staging.upstream_clusters == "all"
    assert staging.min_soak == timedelta(hours=1, minutes=30)
    assert staging.require_upstream_status == "e2e/*"
    assert staging.upstream == "dev"
    assert prod.upstream == "dev"
    assert prod.approvals == (
        ApprovalRule("sre", 2),
        ApprovalRule("tech-leads", 1),
        ApprovalRule("security", 1),
    )
    assert (dev.upstream_clusters, dev.min_soak, dev.require_upstream_status) == ("any", None, None)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30m", timedelta(minutes=30)),
        ("24h", timedelta(hours=24)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("2d", timedelta(days=2)),
        ("1d2h3m4s", timedelta(days=1, hours=2, minutes=3, seconds=4)),
        ("90s", timedelta(seconds=90)),
    ],
)
def test_durations(text: str, expected: timedelta) -> None:
    policy = parse_policy(f"environments:\n  - name: a\n    minSoak: {text}\n")
    assert policy.environments[0].min_soak == expected


def test_from_null_starts_a_second_chain() -> None:
    policy = parse_policy(b"environments:\n  - name: dev\n  - name: hotfix\n    from: null\n")
    assert policy.environment("hotfix") == Environment("hotfix", None, None, False, ())
    assert policy.first.name == "dev"


def test_first_is_the_first_environment_without_upstream() -> None:
    policy = parse_policy(
        b"environments:\n  - name: prod\n    from: dev\n  - name: dev\n    from: null\n"
    )
    assert policy.first.name == "dev"
    assert DEFAULT_POLICY.first.name == "dev"


def test_downstream_of_lists_direct_successors_in_order() -> None:
    policy = parse_policy(
        b"environments:\n  - name: dev\n  - name: qa\n    from: dev\n"
        b"  - name: staging\n    from: dev\n  - name: prod\n"
    )
    assert [e.name for e in policy.downstream_of("dev")] == ["qa", "staging"]
    assert [e.name for e in policy.downstream_of("staging")] == ["prod"]
    assert policy.downstream_of("prod") == ()
    assert policy.downstream_of("nope") == ()


def test_gated() -> None:
    dev, staging, prod = DEFAULT_POLICY.environments
    assert not dev.gated
    assert staging.gated and prod.gated
    assert Environment("x", None, None, False, (ApprovalRule("sre", 1),)).gated
    assert Environment("y", "x", None, True, ()).gated


def test_a_policy_needs_environments() -> None:
    with pytest.raises(ValueError):
        Policy(environments=())


# --- errors: each with its line and a plain sentence ------------------------------------------


def _error(text: str) -> PolicyError:
    with pytest.raises(PolicyError) as info:
        parse_policy(text.encode(), "fleet/.github/promotion.yml")
    return info.value


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("environments:\n  - name: dev\n    aprovals: []\n", 3, "did you mean 'approvals'?"),
        ("enviroments: []\n", 1, "did you mean 'environments'?"),
        ("environments:\n  - name: dev\n    zzz: 1\n", 3, "known keys are: name, from"),
        (
            "environments:\n  - name: a\n    approvals: [{team: sre, cuont: 1}]\n",
            3,
            "did you mean 'count'?",
        ),
        ("- a\n", 1, "the top level must be a mapping"),
        ("environments: [a\n", 2, "YAML syntax error"),
        ("a: b\n c: d\n", 2, "YAML syntax error"),
        ("environments:\n  - name: dev\n  - name: dev\n", 3, "listed twice (first on line 2)"),
        ("environments:\n  - name: dev\n  - name: prod\n    from: qa\n", 4, "'qa', which is not"),
        ("environments:\n  - name: dev\n    from: prod\n  - name: prod\n", 3, "cycle"),
        ("environments:\n  - name: dev\n    from: dev\n", 3, "cycle (dev -> dev)"),
        (
            "environments:\n  - name: a\n    from: c\n  - name: b\n  - name: c\n",
            3,
            "cycle (a -> c -> b -> a)",
        ),
        ("environments:\n  - name: a\n    approvals: [{team: sre, count: 0}]\n", 3, "at least 1"),
        (
            "environments:\n  - name: a\n    approvals:\n    - team: sre\n      count: 1.5\n",
            5,
            "count",
        ),
        (
            "environments:\n  - name: a\n    approvals:\n    - team: sre\n      count: '2'\n",
            5,
            "count",
        ),
        (
            "environments:\n  - name: a\n    approvals:\n    - team: sre\n      count: true\n",
            5,
            "count",
        ),
        ("environments:\n  - name: a\n    minSoak: 3x\n", 3, "write a duration"),
        ("environments:\n  - name: a\n    minSoak: 30\n", 3, "write a duration"),
        ("environments:\n  - name: a\n    upstreamClusters: most\n", 3, "use 'any' or 'all'"),
        ("environments:\n  - name: Dev\n", 2, "name 'Dev' is not allowed"),
        ("environments:\n  - name: dev/eu\n", 2, "is not allowed"),
        ("environments:\n  - name: -dev\n", 2, "is not allowed"),
        ("environments:\n  - autoMerge: true\n", 2, "has no name"),
        ("environments:\n  - name: a\n    autoMerge: yes\n", 3, "must be true or false"),
        ("environments: []\n", 1, "non-empty list"),
        ("environments: {dev: {}}\n", 1, "non-empty list"),
        ("environments:\n  - dev\n", 2, "an environment must be a mapping"),
        ("environments:\n  - name: a\n    clusters: dev-*\n", 3, "non-empty list of strings"),
        ("environments:\n  - name: a\n    approvals: {team: sre}\n", 3, "must be a list"),
        ("environments:\n  - name: a\n    approvals: [{count: 1}]\n", 3, "has no team"),
        ("environments:\n  - name: a\n    approvals: [{team: 'a b'}]\n", 3, "not a team slug"),
        (
            "environments:\n  - name: a\n    approvals: [{team: sre}, {team: '@x/SRE'}]\n",
            3,
            "listed twice",
        ),
        ("promoteKeys: image\n", 1, "non-empty list of strings"),
        ("promoteKeys: [image, image]\n", 1, "twice"),
        ("promoteKeys: [app..version]\n", 1, "app.version"),
        ("promoteKeys:\n  - 3\n", 2, "non-empty string"),
        ("secretName: ''\n", 1, "non-empty string"),
        ("prereleases: 1\n", 1, "true or false"),
        ("environments: []\nenvironments: []\n", 2, "appears twice"),
        ("a: 1\n---\nb: 2\n", 3, "several YAML documents"),
        ("x: &a [*a]\n", 1, "recursive"),
        (
            "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]\n",
            1,
            "32",
        ),
    ],
)
def test_errors_name_the_file_line_and_fix(text: str, line: int, fragment: str) -> None:
    error = _error(text)
    assert error.path == "fleet/.github/promotion.yml"
    assert error.line == line
    assert fragment in error.message
    assert str(error) == f"fleet/.github/promotion.yml:{line}: {error.message}"


def test_file_too_large_has_no_line() -> None:
    error = _error("# " + "x" * (256 * 1024))
    assert error.line is None
    assert "limit is 262144 bytes" in error.message
    assert str(error) == f"fleet/.github/promotion.yml: {error.message}"


def test_alias_bomb_is_refused_quickly() -> None:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        prev, cur = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [" + ", ".join([f"*{prev}"] * 10) + "]")
    error = _error("\n".join(lines) + "\n")
    assert "alias bomb" in error.message
    assert error.line is not None and error.line <= 9


def test_invalid_utf8_is_an_error_with_line() -> None:
    with pytest.raises(PolicyError) as info:
        parse_policy(b"environments:\n  - name: \xff\n")
    assert info.value.line == 2
    assert "UTF-8" in info.value.message
    assert info.value.path == POLICY_PATH


def test_aliases_within_budget_are_fine() -> None:
    policy = parse_policy(
        b"environments:\n  - name: staging\n    approvals: &two [{team: sre, count: 2}]\n"
        b"  - name: prod\n    approvals: *two\n"
    )
    assert policy.environments[0].approvals == policy.environments[1].approvals


# --- bounds (issue 16, item 9) and ungated paths (item 8) -------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("environments:\n  - name: a\n    minSoak: 1000000000d\n", 3, "at most 365d"),
        ("environments:\n  - name: a\n    minSoak: 366d\n", 3, "at most 365d"),
        ("environments:\n  - name: a\n    minSoak: 8761h\n", 3, "at most 365d"),
        ("environments:\n  - name: a\n    minSoak: " + "9" * 5000 + "s\n", 3, "at most 365d"),
        (
            "environments:\n  - name: a\n    approvals: [{team: sre, count: 1000000000}]\n",
            3,
            "at most 50",
        ),
        (
            "environments:\n  - name: a\n    approvals:\n      - {team: a, count: 30}\n"
            "      - {team: b, count: 30}\n",
            5,
            "add up to 60",
        ),
        ("environments:\n" + "  - name: e\n" * 51, 52, "at most 50"),
        ("promoteKeys: [" + ", ".join(f"k{i}" for i in range(201)) + "]\n", 1, "at most 200"),
        ("ungated: docs\n", 1, "non-empty list of strings"),
        ("ungated:\n  - docs/**\n  - clusters/**\n", 3, "always gated"),
        ("ungated:\n  - .github/**\n", 2, "always gated"),
        ("ungated:\n  - /docs/**\n", 2, "leading '/'"),
        ("ungated:\n  - 'docs/[ab]*'\n", 2, "*, ** and ? only"),
        ("ungated: [3]\n", 1, "non-empty string"),
    ],
)
def test_numbers_and_lists_are_bounded_with_a_located_error(
    text: str, line: int, fragment: str
) -> None:
    error = _error(text)
    assert error.line == line, error
    assert fragment in error.message, error.message
    assert len(error.message) < 300  # a huge value is shown shortened


def test_the_largest_allowed_values_are_read() -> None:
    policy = parse_policy(
        b"environments:\n  - name: a\n    minSoak: 365d\n    approvals: [{team: sre, count: 50}]\n"
    )
    env = policy.environments[0]
    assert env.min_soak == timedelta(days=365)
    assert env.approvals[0].count == 50


def test_ungated_globs_match_like_gitignore_and_never_inside_clusters() -> None:
    policy = parse_policy(b'ungated: ["docs/**", "*.md", "tools/?.txt", "site/"]\n')
    assert policy.ungated == ("docs/**", "*.md", "tools/?.txt", "site/")
    yes = ["docs/a.txt", "docs/x/y/z.png", "README.md", "infra/notes.md", "tools/a.txt"]
    yes += ["site/index.html"]
    no = ["infrastructure/base.yaml", "tools/ab.txt", "docs", "doc/a.txt", "sites/x"]
    no += ["clusters/prod-use1-01/README.md", ".github/CODEOWNERS.md", "clusters/README.md"]
    assert [p for p in yes if not policy.is_ungated(p)] == []
    assert [p for p in no if policy.is_ungated(p)] == []
    assert not DEFAULT_POLICY.is_ungated("docs/a.md")  # nothing is ungated by default
