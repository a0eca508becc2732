"""Image references: Docker's grammar, as-written formatting, case-insensitive comparison."""

from __future__ import annotations

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from bot.fleet.images import ImageRef, ImageRefError, parse_image, same_repository

DIGEST = "sha256:" + "0123456789abcdef" * 4


@pytest.mark.parametrize(
    ("text", "registry", "path", "tag", "digest"),
    [
        ("nginx", None, "nginx", None, None),
        ("nginx:1.25", None, "nginx", "1.25", None),
        ("library/nginx:latest", None, "library/nginx", "latest", None),
        (
            "registry.acme.com/payment:v2.1.0-rc1",
            "registry.acme.com",
            "payment",
            "v2.1.0-rc1",
            None,
        ),
        ("localhost/app", "localhost", "app", None, None),
        ("localhost:5000/team/app:dev", "localhost:5000", "team/app", "dev", None),
        ("registry:5000/app", "registry:5000", "app", None, None),
        ("ghcr.io/Codertocat/hello-world", "ghcr.io", "Codertocat/hello-world", None, None),
        ("acme/team/app@" + DIGEST, None, "acme/team/app", None, DIGEST),
        ("r.io/a:v1@" + DIGEST, "r.io", "a", "v1", DIGEST),
        ("[::1]:5000/app:t", "[::1]:5000", "app", "t", None),
        ("a__b/c--d/e.f_g:_x", None, "a__b/c--d/e.f_g", "_x", None),
    ],
)
def test_parse_splits_components_as_written(
    text: str, registry: str | None, path: str, tag: str | None, digest: str | None
) -> None:
    ref = parse_image(text)
    assert (ref.registry, ref.path, ref.tag, ref.digest) == (registry, path, tag, digest)
    assert ref.format() == text
    assert str(ref) == text


def test_first_component_without_dot_colon_or_localhost_is_a_path() -> None:
    ref = parse_image("acme/app:v1")
    assert ref.registry is None
    assert ref.repository == "acme/app"
    assert ref.canonical_repository == "docker.io/acme/app"


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("nginx", "docker.io/library/nginx"),
        ("docker.io/nginx", "docker.io/library/nginx"),
        ("index.docker.io/library/nginx:1", "docker.io/library/nginx"),
        ("Docker.IO/acme/App", "docker.io/acme/app"),
        ("GHCR.io/Codertocat/Hello-World:1", "ghcr.io/codertocat/hello-world"),
        ("localhost:5000/x", "localhost:5000/x"),
    ],
)
def test_canonical_repository(text: str, canonical: str) -> None:
    assert parse_image(text).canonical_repository == canonical


def test_same_repository_ignores_case_defaults_and_version() -> None:
    assert same_repository(parse_image("nginx:1"), parse_image("docker.io/library/nginx@" + DIGEST))
    assert same_repository(
        parse_image("ghcr.io/Codertocat/hello-world:1"),
        parse_image("ghcr.io/codertocat/hello-world"),
    )
    assert not same_repository(parse_image("ghcr.io/a/b"), parse_image("ghcr.io/a/c"))
    assert not same_repository(parse_image("r1.io/a"), parse_image("r2.io/a"))
    assert not same_repository(parse_image("acme/app"), parse_image("quay.io/acme/app"))


def test_repository_and_version_properties() -> None:
    ref = parse_image("registry.acme.com/payment:v2@" + DIGEST)
    assert ref.repository == "registry.acme.com/payment"
    assert ref.version == ":v2@" + DIGEST
    assert parse_image("nginx").version == ""


def test_with_version_keeps_the_repository_as_written() -> None:
    ref = parse_image("Registry.Acme.com:443/Team/App:v1")
    assert ref.with_version("v2", None).format() == "Registry.Acme.com:443/Team/App:v2"
    assert ref.with_version(None, DIGEST).format() == "Registry.Acme.com:443/Team/App@" + DIGEST
    assert ref.with_version("v3", DIGEST).format() == "Registry.Acme.com:443/Team/App:v3@" + DIGEST
    assert ref.with_version(None, None).format() == "Registry.Acme.com:443/Team/App"


@pytest.mark.parametrize(
    ("tag", "digest"),
    [("bad tag", None), ("-v1", None), ("x" * 129, None), (None, "sha256:abc"), (None, "md5")],
)
def test_with_version_validates(tag: str | None, digest: str | None) -> None:
    with pytest.raises(ImageRefError):
        parse_image("app:v1").with_version(tag, digest)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty"),
        ("app:v1 ", "whitespace"),
        ("my app", "whitespace"),
        ("app:", "invalid tag ''"),
        ("ghcr.io/Codertocat/hello-world:", "invalid tag"),
        ("app:.hidden", "invalid tag"),
        ("app:" + "x" * 129, "invalid tag"),
        ("app@sha256:abc", "invalid digest"),
        ("app@sha256:" + "a" * 40, "exactly 64"),
        ("app@" + DIGEST.upper().replace("SHA256", "1sha"), "invalid digest"),
        (":v1", "no repository name"),
        ("a//b", "invalid path component ''"),
        ("-app", "invalid path component"),
        ("app-/x", "invalid path component"),
        ("bad_host!.io/app", "invalid registry"),
        ("-bad.io/app", "invalid registry"),
        ("r.io/" + "a" * 260, "the limit is 255"),
    ],
)
def test_invalid_references_say_why(text: str, fragment: str) -> None:
    with pytest.raises(ImageRefError) as info:
        parse_image(text)
    assert fragment in str(info.value)


def test_non_string_is_refused() -> None:
    with pytest.raises(ImageRefError, match="must be a string"):
        parse_image(42)  # type: ignore[arg-type]


def test_tag_with_unicode_word_characters_is_refused() -> None:
    with pytest.raises(ImageRefError, match="invalid tag"):
        parse_image("app:vé")


# --- property: any valid reference round-trips -------------------------------------------------

_alnum = st.text(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=1, max_size=6
)
_separator = st.sampled_from([".", "_", "__", "-", "--"])


@st.composite
def _path_component(draw: st.DrawFn) -> str:
    parts = [draw(_alnum)]
    for _ in range(draw(st.integers(0, 2))):
        parts += [draw(_separator), draw(_alnum)]
    return "".join(parts)


@st.composite
def _registry(draw: st.DrawFn) -> str | None:
    kind = draw(st.sampled_from(["none", "domain", "localhost"]))
    if kind == "none":
        return None
    host = "localhost"
    if kind == "domain":
        labels = draw(
            st.lists(
                st.from_regex(r"[a-zA-Z0-9]([a-zA-Z0-9-]{0,4}[a-zA-Z0-9])?", fullmatch=True),
                min_size=2,
                max_size=3,
            )
        )
        host = ".".join(labels)
    port = draw(st.none() | st.integers(1, 65535))
    return host if port is None else f"{host}:{port}"


@st.composite
def image_refs(draw: st.DrawFn) -> ImageRef:
    registry = draw(_registry())
    path = "/".join(draw(st.lists(_path_component(), min_size=1, max_size=3)))
    tag = draw(st.none() | st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}", fullmatch=True))
    digest = draw(st.none() | st.from_regex(r"sha256:[0-9a-f]{64}", fullmatch=True))
    return ImageRef(registry, path, tag, digest)


@settings(max_examples=300, deadline=None)
@given(image_refs())
def test_any_valid_reference_round_trips(ref: ImageRef) -> None:
    # Without a registry, a first component with "." would itself be read as a registry.
    assume(ref.registry is not None or "." not in ref.path.split("/")[0] or "/" not in ref.path)
    text = ref.format()
    parsed = parse_image(text)
    assert parsed == ref
    assert parsed.format() == text


@settings(max_examples=200, deadline=None)
@given(image_refs(), image_refs())
def test_same_repository_is_equality_of_canonical_forms(a: ImageRef, b: ImageRef) -> None:
    assert same_repository(a, b) == (a.canonical_repository == b.canonical_repository)
    assert same_repository(a, a.with_version("other", None))
    swapped = ImageRef(
        a.registry.swapcase() if a.registry else None, a.path.swapcase(), a.tag, a.digest
    )
    assert same_repository(a, swapped)
