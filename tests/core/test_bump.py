"""The pure dev-bump planner over the sample fleet."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.fake import samples
from bot.fleet.layout import build_fleet
from bot.fleet.policy import parse_policy
from bot.rules.bump import (
    BumpPlan,
    PublishedImage,
    bump_branch,
    bump_prefix,
    is_older,
    legacy_bump_prefix,
    plan_bump,
    version_key,
)
from bot.rules.refs import is_valid_branch

DEV = "clusters/dev-use1-01/tenants/payment-app/input.yaml"


def plan_for(files: dict[str, bytes], image: PublishedImage) -> BumpPlan:
    policy = parse_policy(files[".github/promotion.yml"])
    fleet = build_fleet(files, policy)
    return plan_bump(fleet, "dev", files, image)


def image(tag: str, digest: str | None = None, repo: str = samples.PAYMENT_IMAGE) -> PublishedImage:
    return PublishedImage(repository=repo, tag=tag, digest=digest, source="test")


def test_moves_only_dev_tenants_of_that_image_and_only_the_tag() -> None:
    files = samples.fleet_files()
    plan = plan_for(files, image("v2.2.0"))
    assert list(plan.changes) == [DEV]
    before, after = files[DEV], plan.changes[DEV]
    assert after == before.replace(b"payment:v2.1.0-rc1", b"payment:v2.2.0")
    (move,) = plan.moves
    assert (move.cluster, move.tenant, move.new) == (
        "dev-use1-01",
        "payment-app",
        "registry.acme.com/payment:v2.2.0",
    )


def test_two_dev_clusters_move_together() -> None:
    files = samples.fleet_files()
    second = DEV.replace("dev-use1-01", "dev-euw1-01")
    files[second] = files[DEV]
    plan = plan_for(files, image("v2.2.0"))
    assert sorted(plan.changes) == sorted([DEV, second])


def test_same_tag_is_a_no_op_and_older_version_is_skipped() -> None:
    files = samples.fleet_files()
    same = plan_for(files, image("v2.1.0-rc1"))
    assert same.empty and len(same.current) == 1
    older = plan_for(files, image("v2.0.0"))
    assert older.empty
    assert "newer than v2.0.0" in older.skipped[0].reason


def test_unused_image_plans_nothing() -> None:
    plan = plan_for(samples.fleet_files(), image("v1", repo="registry.acme.com/other"))
    assert plan.empty and not plan.uses_image


def test_broken_dev_input_is_left_out_and_named_others_move() -> None:
    files = samples.fleet_files()
    # broken, and it names the image: it may well run it, so it is named, not silently skipped
    files[DEV.replace("payment-app", "broken")] = b"spec: [unclosed, registry.acme.com/payment\n"
    # broken but about another image: not this bump's business
    files[DEV.replace("payment-app", "other")] = b"spec: [unclosed, ghcr.io/acme/other\n"
    second = DEV.replace("dev-use1-01", "dev-euw1-01")
    files[second] = files[DEV]
    plan = plan_for(files, image("v2.2.0"))
    assert sorted(plan.changes) == sorted([DEV, second])
    (skip,) = plan.skipped
    assert skip.tenant == "broken" and "tenants/broken/input.yaml" in skip.reason


def test_digest_written_when_given_and_required_when_pinned() -> None:
    files = samples.fleet_files()
    digest = "sha256:" + "a" * 64
    plan = plan_for(files, image("v2.2.0", digest))
    assert b"payment:v2.2.0@" + digest.encode() in plan.changes[DEV]
    files[DEV] = plan.changes[DEV]
    no_digest = plan_for(files, image("v2.3.0"))
    assert no_digest.empty and "pins a digest" in no_digest.skipped[0].reason


def test_real_form_input_with_comment_on_the_image_line() -> None:
    files = samples.fleet_files()
    path = "clusters/dev-use1-01/tenants/checkout/input.yaml"
    plan = plan_for(files, image("v3.5.0", repo=samples.CHECKOUT_IMAGE))
    assert plan.changes[path] == files[path].replace(b":v3.4.0  #", b":v3.5.0  #")


@pytest.mark.parametrize(
    ("a", "b", "older"),
    [
        ("v1.0.0", "v1.1.0", True),
        ("v1.1.0", "v1.0.0", False),
        ("v2.1.0-rc1", "v2.1.0", True),
        ("v2.1.0-rc.2", "v2.1.0-rc.10", True),
        ("1.2", "1.2.1", True),
        ("sha-abc", "v1.0.0", False),
        ("latest", "stable", False),
    ],
)
def test_version_order(a: str, b: str, older: bool) -> None:
    assert is_older(a, b) is older


def test_version_key_rejects_non_versions() -> None:
    assert version_key("main-20261201") is None


def test_branches_are_deterministic_and_share_a_prefix() -> None:
    a = bump_branch("registry.acme.com/Payment", "v1.1.0")
    assert a == bump_branch("registry.acme.com/payment", "v1.1.0")
    assert a.startswith(bump_prefix("registry.acme.com/payment"))
    odd = bump_branch("localhost:5000/app", "x.lock")
    assert is_valid_branch(odd) and odd != bump_branch("localhost:5000/app", "x.lock-")
    assert ":" not in bump_branch("localhost:5000/app", "v1")


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("reg.io/a/b", "reg.io/a-b"),
        ("reg.io:5000/app", "reg.io/5000/app"),
        ("reg.io/a--b", "reg.io/a-b"),
        ("source-flux/app", "source/flux/app"),
    ],
)
def test_different_images_never_share_a_bump_branch(a: str, b: str) -> None:
    assert bump_prefix(a) != bump_prefix(b)
    assert not bump_prefix(a).startswith(bump_prefix(b))
    assert not bump_prefix(b).startswith(bump_prefix(a))
    assert bump_branch(a, "v1") != bump_branch(b, "v1")


@given(
    st.lists(
        st.from_regex(r"[a-z0-9]{1,3}([._/-]{1,2}[a-z0-9]{1,3}){0,3}", fullmatch=True),
        min_size=2,
        max_size=2,
        unique=True,
    )
)
def test_bump_prefixes_are_injective_and_valid(names: list[str]) -> None:
    a, b = names
    assert bump_prefix(a) != bump_prefix(b)
    assert is_valid_branch(bump_branch(a, "v1.0.0")) and is_valid_branch(bump_branch(b, "v1"))


def test_readable_names_stay_readable() -> None:
    assert bump_prefix("registry.acme.com/payment") == "fleet-bot/bump/registry.acme.com-payment/"
    assert bump_prefix("reg.io/a-b").startswith("fleet-bot/bump/reg.io-a-b-")


def test_only_files_that_spell_the_repository_path_are_parsed() -> None:
    files = samples.fleet_files()
    repo = "registry.acme.com/team01/app"
    files[DEV] = files[DEV].replace(samples.PAYMENT_IMAGE.encode(), repo.encode())
    # broken, and mentions "app" but not "team01/app": it cannot run this image, so it is not
    # parsed (at fleet scale every input names some ".../app"; parsing them all took seconds)
    files[DEV.replace("payment-app", "broken")] = b"spec: [unclosed, ghcr.io/team02/app\n"
    plan = plan_for(files, image("v2.2.0", repo=repo))
    assert list(plan.changes) == [DEV]
    assert plan.skipped == ()


@pytest.mark.parametrize(
    ("written", "published"),
    [
        ("nginx", "docker.io/library/nginx"),
        ("docker.io/library/nginx", "nginx"),
        ("index.docker.io/library/nginx", "nginx"),
        ("Registry.Acme.com/Team01/App", "registry.acme.com/team01/app"),
    ],
)
def test_every_spelling_of_the_repository_still_moves(written: str, published: str) -> None:
    files = samples.fleet_files()
    files[DEV] = files[DEV].replace(samples.PAYMENT_IMAGE.encode(), written.encode())
    plan = plan_for(files, image("v2.2.0", repo=published))
    assert list(plan.changes) == [DEV]
    assert plan.changes[DEV] == files[DEV].replace(b":v2.1.0-rc1", b":v2.2.0")


def test_older_bumps_under_the_legacy_prefix_count_only_for_their_own_image() -> None:
    from bot.handlers.proposals import Proposal, _is_ours
    from bot.texts import markers

    def pr(ref: str, image: str) -> dict[str, object]:
        body = "x\n" + markers.marker(kind="bump", image=image, tag="v1", env="dev")
        return {"head": {"ref": ref}, "body": body}

    image = "reg.io/a-b"
    proposal = Proposal(
        branch=bump_branch(image, "v2"),
        prefix=bump_prefix(image),
        tag="v2",
        changes={},
        title="t",
        body="b",
        message="m",
        legacy_prefix=legacy_bump_prefix(image),
        legacy_image=image,
    )
    legacy = legacy_bump_prefix(image)
    assert legacy == "fleet-bot/bump/reg.io-a-b/" != proposal.prefix
    assert _is_ours(pr(proposal.branch, image), proposal)
    assert _is_ours(pr(legacy + "v1", image), proposal)  # opened before the upgrade
    assert not _is_ours(pr(legacy + "v1", "reg.io/a/b"), proposal)  # the other image's
