"""Flux sources: what pins them (Flux's precedence), tag bumps that keep every other byte."""

from __future__ import annotations

import pytest

from bot.fleet.inputs import InputError
from bot.fleet.sources import SourceRef, read_sources, repo_of_url, set_source_tag

PATH = "clusters/dev-use1-01/flux-system/blueprints.yaml"

SOURCES = b"""\
# Blueprints from Repo A, pinned to a release
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata:
  name: platform-blueprints
  namespace: flux-system
spec:
  interval: 5m
  url: https://github.com/acme/acme-platform-blueprints.git
  ref:
    tag: "v1.2.0"   # release
---
apiVersion: source.toolkit.fluxcd.io/v1beta2
kind: OCIRepository
metadata: {name: bundle}
spec:
  url: oci://ghcr.io/acme/bundle
  ref: {tag: v3.0.0}
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: apps, namespace: flux-system}
spec:
  sourceRef: {kind: GitRepository, name: platform-blueprints}
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: HelmRepository
metadata: {name: charts}
spec: {url: https://charts.example.com}
"""


def _git(ref: str, kind: str = "GitRepository", api: str = "source.toolkit.fluxcd.io/v1") -> bytes:
    return (
        f"apiVersion: {api}\nkind: {kind}\nmetadata:\n  name: src\n"
        f"spec:\n  url: https://github.com/acme/x\n{ref}"
    ).encode()


def test_reads_git_and_oci_sources_and_skips_other_kinds() -> None:
    git, oci = read_sources(PATH, "dev-use1-01", SOURCES)
    assert git == SourceRef(
        path=PATH,
        cluster="dev-use1-01",
        kind="GitRepository",
        namespace="flux-system",
        name="platform-blueprints",
        url="https://github.com/acme/acme-platform-blueprints.git",
        tag="v1.2.0",
        pinned_by="tag",
        ref="v1.2.0",
    )
    assert git.id == "flux-system/platform-blueprints" and git.pin == "tag v1.2.0"
    assert (oci.kind, oci.namespace, oci.name, oci.tag, oci.pinned_by) == (
        "OCIRepository",
        "default",
        "bundle",
        "v3.0.0",
        "tag",
    )
    assert oci.id == "default/bundle"


@pytest.mark.parametrize(
    ("ref", "kind", "pinned_by", "tag", "pin"),
    [
        ("  ref: {branch: main}\n", "GitRepository", "branch", None, "branch main"),
        ("  ref: {branch: main, tag: v1}\n", "GitRepository", "tag", "v1", "tag v1"),
        (
            "  ref: {tag: v1, semver: '>=1.0.0'}\n",
            "GitRepository",
            "semver",
            "v1",
            "semver >=1.0.0",
        ),
        (
            "  ref: {semver: '>=1.0.0', name: refs/tags/v2}\n",
            "GitRepository",
            "tag",
            "v2",
            "tag v2",
        ),
        (
            "  ref: {name: refs/heads/main, tag: v1}\n",
            "GitRepository",
            "branch",
            "v1",
            "branch refs/heads/main",
        ),
        ("  ref: {commit: abc123, tag: v1}\n", "GitRepository", "commit", "v1", "commit abc123"),
        ("", "GitRepository", "none", None, "the default branch"),
        ("  ref: {}\n", "GitRepository", "none", None, "the default branch"),
        (
            "  ref: {digest: 'sha256:abc', tag: v1}\n",
            "OCIRepository",
            "digest",
            "v1",
            "digest sha256:abc",
        ),
        ("  ref: {semver: '1.x', tag: v1}\n", "OCIRepository", "semver", "v1", "semver 1.x"),
        ("  ref: {tag: latest}\n", "OCIRepository", "tag", "latest", "tag latest"),
        ("", "OCIRepository", "none", None, "the latest tag"),
    ],
)
def test_pinned_by_follows_flux_precedence(
    ref: str, kind: str, pinned_by: str, tag: str | None, pin: str
) -> None:
    (source,) = read_sources(PATH, "c", _git(ref, kind))
    assert (source.pinned_by, source.tag, source.pin) == (pinned_by, tag, pin)


def test_other_api_groups_are_not_sources() -> None:
    assert read_sources(PATH, "c", _git("", api="example.com/v1")) == ()
    assert read_sources(PATH, "c", b"kind: GitRepository\n") == ()
    assert read_sources(PATH, "c", b"") == ()


@pytest.mark.parametrize(
    ("data", "line", "fragment"),
    [
        (
            b"apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nspec: {url: x}\n",
            1,
            "no metadata.name",
        ),
        (
            b"apiVersion: source.toolkit.fluxcd.io/v1\nkind: OCIRepository\nmetadata: {name: a}\n",
            1,
            "no spec.url",
        ),
        (
            b"apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\n"
            b"metadata: {name: [a]}\n",
            3,
            "must be a string",
        ),
        (
            b"apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata: {name: 5}\n",
            3,
            "must be a string",
        ),
        (b"a: [\n", 2, "YAML syntax error"),
    ],
)
def test_read_errors(data: bytes, line: int, fragment: str) -> None:
    with pytest.raises(InputError) as info:
        read_sources(PATH, "c", data)
    assert info.value.line == line
    assert fragment in info.value.message


def test_set_source_tag_changes_only_the_tag_characters() -> None:
    result = set_source_tag(PATH, SOURCES, "flux-system", "platform-blueprints", "v1.3.0")
    assert result == SOURCES.replace(b'"v1.2.0"', b'"v1.3.0"')
    result = set_source_tag(PATH, SOURCES, "default", "bundle", "v3.1.0")
    assert result == SOURCES.replace(b"{tag: v3.0.0}", b"{tag: v3.1.0}")


def test_set_source_tag_keeps_crlf_and_bom() -> None:
    data = b"\xef\xbb\xbf" + SOURCES.replace(b"\n", b"\r\n")
    result = set_source_tag(PATH, data, "flux-system", "platform-blueprints", "v1.3.0")
    assert result == data.replace(b"v1.2.0", b"v1.3.0")


def test_set_source_tag_through_a_tag_ref_name() -> None:
    data = _git("  ref:\n    name: refs/tags/v2   # pinned\n")
    assert set_source_tag(PATH, data, "default", "src", "v3") == data.replace(b"/v2", b"/v3")


@pytest.mark.parametrize(
    ("ref", "fragment"),
    [
        ("  ref: {semver: '>=1', tag: v1}\n", "pinned by semver"),
        ("  ref: {commit: abc, tag: v1}\n", "pinned by commit"),
        ("  ref: {branch: main}\n", "pinned by branch"),
        ("", "pinned by none"),
    ],
)
def test_set_source_tag_refuses_sources_not_following_a_tag(ref: str, fragment: str) -> None:
    with pytest.raises(InputError, match=fragment):
        set_source_tag(PATH, _git(ref), "default", "src", "v2")


def test_set_source_tag_refuses_unknown_sources_and_bad_tags() -> None:
    with pytest.raises(InputError, match="no GitRepository or OCIRepository flux-system/nope"):
        set_source_tag(PATH, SOURCES, "flux-system", "nope", "v1")
    with pytest.raises(InputError, match="not a valid tag"):
        set_source_tag(PATH, SOURCES, "flux-system", "platform-blueprints", "v1 2")
    with pytest.raises(InputError, match="not a valid tag"):
        set_source_tag(PATH, SOURCES, "flux-system", "platform-blueprints", "a..b")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://github.com/acme/blueprints", ("github.com", "acme", "blueprints")),
        ("https://github.com/acme/blueprints.git", ("github.com", "acme", "blueprints")),
        ("https://github.com/acme/blueprints/", ("github.com", "acme", "blueprints")),
        ("https://x-access-token@GitHub.com/Acme/bp.git", ("github.com", "Acme", "bp")),
        ("http://ghe.example.com:8080/acme/bp", ("ghe.example.com", "acme", "bp")),
        ("ssh://git@github.com/acme/blueprints.git", ("github.com", "acme", "blueprints")),
        ("ssh://git@github.com:22/acme/blueprints", ("github.com", "acme", "blueprints")),
        ("git@github.com:acme/blueprints.git", ("github.com", "acme", "blueprints")),
        ("git@github.com:acme/blueprints", ("github.com", "acme", "blueprints")),
        ("oci://ghcr.io/acme/bundle", ("ghcr.io", "acme", "bundle")),
        ("oci://registry.acme.com:5000/acme/bundle", ("registry.acme.com", "acme", "bundle")),
        ("https://github.com/acme", None),
        ("https://github.com/acme/bp/tree/main", None),
        ("oci://ghcr.io/acme/team/bundle", None),
        ("ftp://github.com/acme/bp", None),
        ("github.com/acme/bp", None),
        ("", None),
    ],
)
def test_repo_of_url(url: str, expected: tuple[str, str, str] | None) -> None:
    assert repo_of_url(url) == expected
