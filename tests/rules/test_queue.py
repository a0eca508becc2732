"""Merge groups, pure: the branch name's pull request, a group's change against its PR's."""

from __future__ import annotations

from bot.rules.gate import FileChange
from bot.rules.queue import GroupRef, parse_group_ref, unexplained

SHA = "a" * 40


def test_group_ref_names_base_pull_request_and_parent() -> None:
    ref = parse_group_ref(f"refs/heads/gh-readonly-queue/main/pr-104-{SHA}", "refs/heads/main")
    assert ref == GroupRef("main", 104, SHA)
    nested = parse_group_ref(
        f"refs/heads/gh-readonly-queue/release/2.x/pr-7-{SHA}", "refs/heads/release/2.x"
    )
    assert nested == GroupRef("release/2.x", 7, SHA)


def test_group_refs_that_do_not_say_which_pr_or_name_another_base_are_refused() -> None:
    for head_ref, base_ref in [
        ("refs/heads/gh-readonly-queue/main/whatever", "refs/heads/main"),
        (f"refs/heads/gh-readonly-queue/main/pr-1-{SHA}", "refs/heads/prod"),
        (f"refs/heads/gh-readonly-queue/main/pr-0-{SHA}", "refs/heads/main"),
        (f"refs/heads/feature/pr-1-{SHA}", "refs/heads/main"),
        (f"refs/heads/gh-readonly-queue/main/pr-1-{SHA[:7]}", "refs/heads/main"),
    ]:
        assert parse_group_ref(head_ref, base_ref) is None, head_ref


def test_a_group_is_explained_only_by_its_prs_own_changes() -> None:
    pull = (
        FileChange("prod/in.yaml", "modified", sha="new"),
        FileChange("gone.yaml", "removed"),
        FileChange("moved/to.yaml", "renamed", previous_path="moved/from.yaml", sha="m"),
    )
    same = (
        FileChange("gone.yaml", "removed"),
        FileChange("moved/from.yaml", "removed"),
        FileChange("moved/to.yaml", "added", sha="m"),
        FileChange("prod/in.yaml", "modified", sha="new"),
    )
    assert unexplained(same, pull) == ()
    # part of the PR already on the base: the group changes less, which is fine
    assert unexplained(same[:1], pull) == ()
    smuggled = (*same, FileChange("prod/other.yaml", "modified", sha="x"))
    assert unexplained(smuggled, pull) == ("prod/other.yaml",)
    other_content = (FileChange("prod/in.yaml", "modified", sha="pushed-later"),)
    assert unexplained(other_content, pull) == ("prod/in.yaml",)
    revived = (FileChange("gone.yaml", "modified", sha="back"),)
    assert unexplained(revived, pull) == ("gone.yaml",)
    # a tree comparison marks a symlink's blob; GitHub's file list does not
    link = (FileChange("l", "added", sha="s"),)
    assert unexplained((FileChange("l", "added", sha="s:link"),), link) == ()
