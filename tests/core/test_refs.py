"""Branch names: always valid git refs, whatever version they carry (issue 16, item 9)."""

from __future__ import annotations

import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.rules.bump import bump_branch
from bot.rules.promote import promotion_branch
from bot.rules.refs import is_valid_branch, is_valid_ref, ref_component
from bot.rules.sources import source_branch

#: Docker's tag grammar: [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
DOCKER_TAG = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", fullmatch=True)


@pytest.mark.parametrize(
    ("ref", "valid"),
    [
        ("refs/heads/main", True),
        ("refs/heads/fleet-bot/bump/x/v1.2.3", True),
        ("refs/heads/v2.2..1", False),
        ("refs/heads/x.lock", False),
        ("refs/heads/x.lock/y", False),
        ("refs/heads/.hidden", False),
        ("refs/heads/a@{1}", False),
        ("refs/heads/a b", False),
        ("refs/heads/a\x01", False),
        ("refs/heads/a~1", False),
        ("refs/heads/a^", False),
        ("refs/heads/a:b", False),
        ("refs/heads/a?", False),
        ("refs/heads/a*", False),
        ("refs/heads/a[", False),
        ("refs/heads/a\\b", False),
        ("refs/heads/a.", False),
        ("refs/heads/a/", False),
        ("refs/heads//a", False),
        ("@", False),
    ],
)
def test_git_check_ref_format_rules(ref: str, valid: bool) -> None:
    assert is_valid_ref(ref) is valid


def test_agrees_with_git_itself() -> None:
    names = ["v2.2..1", "x.lock", ".x", "a@{b", "a b", "ok/v1", "v1.", "a//b", "a~b", "@"]
    for name in names:
        ours = is_valid_ref(f"refs/heads/{name}")
        git = subprocess.run(
            ["git", "check-ref-format", f"refs/heads/{name}"], capture_output=True, check=False
        )
        assert ours is (git.returncode == 0), name


@settings(max_examples=300, deadline=None)
@given(DOCKER_TAG, DOCKER_TAG)
def test_every_docker_tag_gives_a_valid_and_distinct_branch(a: str, b: str) -> None:
    one, two = bump_branch("registry.acme.com/payment", a), bump_branch("reg.io/x.lock", b)
    assert is_valid_branch(one) and is_valid_branch(two)
    if a != b:
        assert bump_branch("reg.io/app", a) != bump_branch("reg.io/app", b)


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1, max_size=80))
def test_any_text_becomes_one_valid_component(text: str) -> None:
    component = ref_component(text)
    assert "/" not in component and is_valid_branch(component)
    assert is_valid_branch(source_branch("flux-system/platform", text))
    assert is_valid_branch(promotion_branch("prod", [text]))


def test_plain_versions_are_kept_as_they_are() -> None:
    assert bump_branch("reg.io/app", "v1.2.3").endswith("/v1.2.3")
    assert bump_branch("reg.io/app", "v2.2..1").startswith("fleet-bot/bump/reg.io-app/v2.2.1-")
