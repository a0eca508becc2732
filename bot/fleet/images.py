"""Container image references: ``registry[:port]/path[:tag][@algo:hex]``.

The fleet repo stores images as people wrote them, so an :class:`ImageRef` keeps every component
*as written* (``format()`` gives the original text back, which is what keeps diffs to the tag
characters). Comparison of repositories goes through :attr:`ImageRef.canonical_repository`,
which applies Docker's normalisation (default registry ``docker.io``, ``library/`` for official
images) and lower-cases, because registry hosts are case-insensitive and GitHub payloads spell
GHCR owners in mixed case (``ghcr.io/Codertocat/hello-world``) while images are stored lower-case.

The grammar follows ``distribution/reference`` (Docker's reference parser), with one deliberate
relaxation: upper-case letters are accepted in path components, for the GHCR case above.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

__all__ = [
    "DEFAULT_REGISTRY",
    "ImageRef",
    "ImageRefError",
    "parse_image",
    "same_repository",
]

DEFAULT_REGISTRY = "docker.io"
# Spellings of Docker Hub that all mean the default registry.
_DOCKER_HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
# Docker's limit on the length of the name (registry and path, without tag or digest).
_NAME_MAX = 255

_DOMAIN_COMPONENT = r"(?:[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9])"
_IPV6 = r"\[[0-9A-Fa-f:.]+\]"
_REGISTRY_RE = re.compile(
    rf"(?:{_IPV6}|{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*)(?::[0-9]+)?",
)
_PATH_COMPONENT_RE = re.compile(r"[A-Za-z0-9]+(?:(?:[._]|__|-+)[A-Za-z0-9]+)*")
_TAG_RE = re.compile(r"[\w][\w.-]{0,127}", re.ASCII)
_DIGEST_RE = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9A-Fa-f]{32,}")
# Registered algorithms have a fixed length; a sha256 digest of 40 characters is a typo.
_DIGEST_HEX_LENGTH = {"sha256": 64, "sha384": 96, "sha512": 128}


class ImageRefError(ValueError):
    """An image reference that Docker would not accept; the message says what is wrong."""


@dataclass(frozen=True)
class ImageRef:
    """One parsed image reference; every field holds the characters as written."""

    registry: str | None
    path: str
    tag: str | None
    digest: str | None

    @property
    def repository(self) -> str:
        """Registry and path as written, e.g. ``registry.acme.com/payment`` or ``nginx``."""
        return f"{self.registry}/{self.path}" if self.registry is not None else self.path

    @property
    def canonical_repository(self) -> str:
        """The repository normalised for comparison: ``nginx`` -> ``docker.io/library/nginx``."""
        registry = (self.registry or DEFAULT_REGISTRY).lower()
        path = self.path.lower()
        if registry in _DOCKER_HUB_ALIASES:
            registry = DEFAULT_REGISTRY
            if "/" not in path:
                path = f"library/{path}"
        return f"{registry}/{path}"

    @property
    def version(self) -> str:
        """The characters after the repository (``:v1@sha256:...``); empty when neither is set."""
        tag = f":{self.tag}" if self.tag is not None else ""
        digest = f"@{self.digest}" if self.digest is not None else ""
        return tag + digest

    def format(self) -> str:
        """The reference as text; ``parse_image(s).format() == s`` for every valid ``s``."""
        return self.repository + self.version

    def with_version(self, tag: str | None, digest: str | None) -> ImageRef:
        """The same repository at another tag and/or digest (validated like a parsed one)."""
        if tag is not None:
            _check_tag(tag, self.format())
        if digest is not None:
            _check_digest(digest, self.format())
        return replace(self, tag=tag, digest=digest)

    def __str__(self) -> str:
        return self.format()


def parse_image(text: str) -> ImageRef:
    """Parse ``text`` with Docker's rules; raise :class:`ImageRefError` with a plain sentence."""
    if not isinstance(text, str):
        raise ImageRefError(f"An image reference must be a string, not {type(text).__name__}.")
    if not text:
        raise ImageRefError("The image reference is empty.")
    if text != text.strip() or any(ch.isspace() for ch in text):
        raise ImageRefError(f"The image reference {text!r} contains whitespace; remove it.")

    name, at, digest_text = text.partition("@")
    digest: str | None = None
    if at:
        _check_digest(digest_text, text)
        digest = digest_text

    tag: str | None = None
    last_colon = name.rfind(":")
    if last_colon > name.rfind("/"):
        tag = name[last_colon + 1 :]
        name = name[:last_colon]
        _check_tag(tag, text)

    registry, path = _split_registry(name)
    _check_name(registry, path, text)
    return ImageRef(registry=registry, path=path, tag=tag, digest=digest)


def same_repository(a: ImageRef, b: ImageRef) -> bool:
    """True when both references name the same repository (registry defaults, case-insensitive)."""
    return a.canonical_repository == b.canonical_repository


def _split_registry(name: str) -> tuple[str | None, str]:
    """Docker's rule: the first component is a registry if it has ``.`` or ``:`` or is localhost."""
    first, slash, rest = name.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        return first, rest
    return None, name


def _check_name(registry: str | None, path: str, text: str) -> None:
    if registry is not None and not _REGISTRY_RE.fullmatch(registry):
        raise ImageRefError(
            f"The image reference {text!r} has an invalid registry {registry!r}; "
            "expected a host name with an optional :port."
        )
    if not path:
        raise ImageRefError(f"The image reference {text!r} has no repository name.")
    for component in path.split("/"):
        if not _PATH_COMPONENT_RE.fullmatch(component):
            raise ImageRefError(
                f"The image reference {text!r} has an invalid path component {component!r}; "
                "use letters and digits separated by '.', '_', '__' or '-'."
            )
    length = len(path) + (len(registry) + 1 if registry is not None else 0)
    if length > _NAME_MAX:
        raise ImageRefError(
            f"The image name in {text[:40]!r}... is {length} characters long; "
            f"the limit is {_NAME_MAX}."
        )


def _check_tag(tag: str, text: str) -> None:
    if not _TAG_RE.fullmatch(tag):
        raise ImageRefError(
            f"The image reference {text!r} has an invalid tag {tag!r}; a tag is 1 to 128 "
            "letters, digits, '_', '.' or '-', and does not start with '.' or '-'."
        )


def _check_digest(digest: str, text: str) -> None:
    if not _DIGEST_RE.fullmatch(digest):
        raise ImageRefError(
            f"The image reference {text!r} has an invalid digest {digest!r}; "
            "expected 'sha256:' followed by 64 hex digits."
        )
    algorithm, _, hex_part = digest.partition(":")
    expected = _DIGEST_HEX_LENGTH.get(algorithm)
    if expected is not None and len(hex_part) != expected:
        raise ImageRefError(
            f"The image reference {text!r} has a {algorithm} digest of {len(hex_part)} hex "
            f"digits; a {algorithm} digest has exactly {expected}."
        )
