"""Plan a dev bump: which tenant inputs of the first environment move to a published image.

Pure: the shell reads the files, this decides and edits, the shell commits. A tenant whose input
cannot be read is named and left out; the others still move. Tags never go backwards by
accident: the same tag is a no-op, and an older version (when both tags are versions) is skipped.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from bot.fleet.images import DEFAULT_REGISTRY, ImageRef, ImageRefError, parse_image, same_repository
from bot.fleet.inputs import InputError, read_input_cached, set_image
from bot.fleet.layout import Fleet
from bot.rules.provenance import BuiltFrom
from bot.rules.refs import is_valid_ref, ref_component, safe_slug


@dataclass(frozen=True)
class PublishedImage:
    """An image that CI (or GitHub Packages) says now exists."""

    repository: str  # "registry.acme.com/payment", "ghcr.io/acme/payment"
    tag: str
    digest: str | None
    source: str  # where the news came from, for the PR body
    link: str | None = None
    #: The application repository and commit the image was built from, when the news says so
    #: (recorded in the bump commit's trailers).
    built_from: BuiltFrom | None = None

    @property
    def ref(self) -> ImageRef:
        return parse_image(self.reference)

    @property
    def reference(self) -> str:
        digest = f"@{self.digest}" if self.digest else ""
        return f"{self.repository}:{self.tag}{digest}"


@dataclass(frozen=True)
class Move:
    cluster: str
    tenant: str
    path: str
    old: str
    new: str


@dataclass(frozen=True)
class Skip:
    cluster: str
    tenant: str
    path: str
    reason: str


@dataclass(frozen=True)
class BumpPlan:
    image: PublishedImage
    environment: str
    changes: Mapping[str, bytes] = field(default_factory=dict)
    moves: tuple[Move, ...] = ()
    skipped: tuple[Skip, ...] = ()
    current: tuple[Move, ...] = ()  # tenants already at this tag

    @property
    def empty(self) -> bool:
        return not self.changes

    @property
    def uses_image(self) -> bool:
        return bool(self.moves or self.current or any(s.reason for s in self.skipped))


_VERSION_RE = re.compile(
    r"v?(?P<major>0|[1-9]\d*)\.(?P<minor>0|[1-9]\d*)(?:\.(?P<patch>0|[1-9]\d*))?"
    r"(?:-(?P<pre>[0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?"
)


def version_key(tag: str) -> tuple[int, int, int, tuple[tuple[int, int | str], ...]] | None:
    """A sort key for semver-like tags (``v1.2.3``, ``1.2``, ``v2.1.0-rc1``); None otherwise.

    Pre-releases sort before their release, identifiers compare as SemVer 2.0 says.
    """
    m = _VERSION_RE.fullmatch(tag)
    if m is None:
        return None
    pre: tuple[tuple[int, int | str], ...]
    if m["pre"] is None:
        pre = ((2, 0),)  # a release sorts after every pre-release of it
    else:
        pre = tuple((0, int(part)) if part.isdigit() else (1, part) for part in m["pre"].split("."))
    return (int(m["major"]), int(m["minor"]), int(m["patch"] or 0), pre)


def is_older(candidate: str, current: str) -> bool:
    """True only when both tags are versions and ``candidate`` is the lower one."""
    a, b = version_key(candidate), version_key(current)
    return a is not None and b is not None and a < b


def plan_bump(
    fleet: Fleet,
    environment: str,
    files: Mapping[str, bytes],
    image: PublishedImage,
) -> BumpPlan:
    """Decide every tenant input of ``environment`` against ``image``.

    ``files`` holds the input files of that environment (path -> bytes); a path of the fleet
    that is missing from it is treated as unreadable.
    """
    published = image.ref
    # Any reference to the repository spells its path (case aside; Docker Hub's ``library/``
    # may be left out): files without it cannot use the image, and need no parsing.
    needle = _needle(published)
    changes: dict[str, bytes] = {}
    moves: list[Move] = []
    skipped: list[Skip] = []
    current: list[Move] = []
    in_environment = set(fleet.clusters_of(environment))
    for (cluster, tenant), path in sorted(fleet.inputs.items()):
        if cluster not in in_environment:
            continue
        data = files.get(path)
        if data is None:
            skipped.append(Skip(cluster, tenant, path, "the file could not be read"))
            continue
        if needle not in data.lower():
            continue
        parsed = read_input_cached(path, data)
        if isinstance(parsed, InputError):
            skipped.append(Skip(cluster, tenant, path, str(parsed)))
            continue
        value = parsed.image
        if value is None:
            continue
        try:
            ref = parse_image(value)
        except ImageRefError as exc:
            skipped.append(Skip(cluster, tenant, path, f"{path}: {exc}"))
            continue
        if not same_repository(ref, published):
            continue
        kind, detail = _decide(ref, image)
        if kind == "current":
            current.append(Move(cluster, tenant, path, value, value))
            continue
        if kind == "skip":
            skipped.append(Skip(cluster, tenant, path, detail))
            continue
        try:
            changes[path] = set_image(path, data, detail)
        except InputError as exc:
            skipped.append(Skip(cluster, tenant, path, str(exc)))
            continue
        moves.append(Move(cluster, tenant, path, value, detail))
    return BumpPlan(
        image=image,
        environment=environment,
        changes=changes,
        moves=tuple(moves),
        skipped=tuple(skipped),
        current=tuple(current),
    )


def _needle(published: ImageRef) -> bytes:
    """What every spelling of the repository of ``published`` contains, lowercased."""
    _registry, _, path = published.canonical_repository.partition("/")
    if _registry == DEFAULT_REGISTRY:
        path = path.removeprefix("library/")
    return path.encode()


def _decide(ref: ImageRef, image: PublishedImage) -> tuple[str, str]:
    """("move", new value), ("current", "") or ("skip", a sentence saying why)."""
    if ref.tag == image.tag and (image.digest is None or ref.digest == image.digest):
        return "current", ""
    if ref.tag is not None and is_older(image.tag, ref.tag):
        return "skip", f"runs {ref.tag}, newer than {image.tag}: not moved backwards"
    if ref.digest is not None and image.digest is None:
        return "skip", (
            f"pins a digest, and the event for {image.tag} carried none: "
            "publish again with the digest, or bump it by hand"
        )
    return "move", ref.with_version(image.tag, image.digest).format()


def bump_branch(repository: str, tag: str) -> str:
    """Deterministic branch for (image, tag): a redelivered event finds the same branch."""
    return f"{bump_prefix(repository)}{ref_component(tag)}"


def bump_prefix(repository: str) -> str:
    """The branch prefix shared by every bump of one image (used to find older bumps).

    Different images never share one: the readable slug (``/`` written as ``-``) is used alone
    only when it can be read back (lower-case letters, digits, ``.``, ``_`` and ``/``, no
    ``-``); otherwise a hash of the repository follows it, so ``reg.io/a/b`` and ``reg.io/a-b``
    get different branches."""
    repository = repository.lower()  # registry hosts are case-insensitive, paths lower-case
    slug = _legacy_slug(repository)
    if re.fullmatch(r"[a-z0-9._/]+", repository) and is_valid_ref(slug):
        return f"fleet-bot/bump/{slug}/"
    digest = hashlib.sha256(repository.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"fleet-bot/bump/{safe_slug(f'{slug}-{digest}', repository)}/"


def legacy_bump_prefix(repository: str) -> str:
    """The prefix versions before 0.2 used (lossy: ``reg.io/a-b`` and ``reg.io/a/b`` shared
    it): older open bumps under it are still found and superseded."""
    return f"fleet-bot/bump/{safe_slug(_legacy_slug(repository), repository)}/"


def _legacy_slug(repository: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", repository.lower()).strip("-.")
    return re.sub(r"\.{2,}", ".", slug)
