"""Pure rules for blueprint sources: values, release bumps and promotions."""

from __future__ import annotations

from bot.fake import samples
from bot.fleet.layout import build_fleet
from bot.fleet.policy import parse_policy
from bot.fleet.sources import read_sources
from bot.rules.sources import (
    Release,
    parse_source_arg,
    plan_source_bumps,
    plan_source_promotion,
    source_branch,
    value_of,
)

FILES = samples.fleet_files()
FLEET = build_fleet(FILES, parse_policy(FILES[".github/promotion.yml"]))
SRC = "clusters/{}/flux-system/sources.yaml"
RELEASE = Release(
    "acme/platform-blueprints", "github.com", "v1.3.0", "https://x/r", "v1.3.0", "notes"
)


def test_value_is_normalised_repository_and_tag() -> None:
    (src,) = read_sources(
        SRC.format("dev-use1-01"), "dev-use1-01", FILES[SRC.format("dev-use1-01")]
    )
    assert value_of(src) == "github.com/acme/platform-blueprints:v1.2.0"
    ssh = FILES[SRC.format("dev-use1-01")].replace(
        b"https://github.com/acme/platform-blueprints",
        b"ssh://git@github.com/acme/platform-blueprints.git",
    )
    (other,) = read_sources("x.yaml", "dev-use1-01", ssh)
    assert value_of(other) == value_of(src)


def test_release_bumps_only_dev_and_only_the_tag() -> None:
    (plan,) = plan_source_bumps(FLEET, "dev", FILES, RELEASE)
    path = SRC.format("dev-use1-01")
    assert list(plan.changes) == [path]
    assert plan.changes[path] == FILES[path].replace(b"tag: v1.2.0", b"tag: v1.3.0")
    other = Release("acme/other", "github.com", "v9", "", "v9", "")
    assert plan_source_bumps(FLEET, "dev", FILES, other) == []
    ghes = Release("acme/platform-blueprints", "ghe.example", "v1.3.0", "", "", "")
    assert plan_source_bumps(FLEET, "dev", FILES, ghes) == []  # another host


def test_branch_pinned_and_older_tags_are_not_changed() -> None:
    files = dict(FILES)
    path = SRC.format("dev-use1-01")
    files[path] = files[path].replace(b"tag: v1.2.0", b"branch: main")
    (plan,) = plan_source_bumps(FLEET, "dev", files, RELEASE)
    assert plan.empty and "pinned by branch" in plan.not_promotable[0][1]
    older = Release("acme/platform-blueprints", "github.com", "v1.0.0", "", "", "")
    (plan,) = plan_source_bumps(FLEET, "dev", FILES, older)
    assert plan.empty and "newer than v1.0.0" in plan.not_promotable[0][1]


def test_promotion_copies_the_upstream_tag() -> None:
    plan = plan_source_promotion(
        FLEET, "prod", "staging", ["flux-system/platform-blueprints"], FILES
    )
    path = SRC.format("prod-use1-01")
    assert plan.changes[path] == FILES[path].replace(b"tag: v1.1.0", b"tag: v1.2.0")
    same = plan_source_promotion(
        FLEET, "staging", "dev", ["flux-system/platform-blueprints"], FILES
    )
    assert same.empty and same.up_to_date == ("source:flux-system/platform-blueprints",)
    unknown = plan_source_promotion(FLEET, "prod", "staging", ["flux-system/nope"], FILES)
    assert unknown.not_upstream == ("source:flux-system/nope",)


def test_source_arguments_and_branches() -> None:
    assert parse_source_arg("source:flux-system/platform-blueprints") == (
        "flux-system/platform-blueprints"
    )
    assert parse_source_arg("source:../x") is None
    assert parse_source_arg("source:a/b/c") is None
    assert parse_source_arg("platform-blueprints") is None
    assert source_branch("flux-system/platform-blueprints", "v1.3.0") == (
        "fleet-bot/bump/source-flux-system-platform-blueprints/v1.3.0"
    )


# --- sources lineage cannot trace (issue 16, item 3) --------------------------------------------


def _source(ref: str, url: str = "https://github.com/acme/platform-blueprints") -> bytes:
    return (
        "apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata:\n"
        f"  name: platform\n  namespace: flux-system\nspec:\n  url: {url}\n  ref:\n{ref}"
    ).encode()


def _moves(old: bytes | None, new: bytes) -> list[str]:
    from bot.rules.sources import sources_in, untraceable_moves

    path = "clusters/prod-use1-01/flux-system/sources.yaml"
    before = sources_in(path, "prod-use1-01", old)
    after = sources_in(path, "prod-use1-01", new)
    return [why for _, why in untraceable_moves(before, after, ("github.com", "acme", "fleet"))]


def test_moving_away_from_a_tag_cannot_be_traced() -> None:
    tagged = _source("    tag: v1.1.0\n")
    assert _moves(tagged, _source("    tag: v1.2.0\n")) == []  # a tag: traced as a value
    (why,) = _moves(tagged, _source("    branch: main\n"))
    assert "branch main (was tag v1.1.0)" in why
    (why,) = _moves(tagged, _source("    tag: v1.1.0\n    commit: abc\n"))
    assert "commit abc" in why
    (why,) = _moves(None, _source("    semver: '>=1'\n"))  # a new source
    assert "semver >=1" in why


def test_an_unchanged_branch_pin_and_the_fleet_repo_itself_pass() -> None:
    main = _source("    branch: main\n")
    assert _moves(main, main.replace(b"ref:", b"interval: 1m\n  ref:")) == []
    assert _moves(main, main.replace(b"platform-blueprints", b"other")) != []  # repo changed
    own = _source("    branch: main\n", url="https://github.com/Acme/fleet.git")
    assert _moves(None, own) == []
