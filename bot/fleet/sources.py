"""Flux sources (``source.toolkit.fluxcd.io`` GitRepository and OCIRepository) in fleet files.

A cluster that pins its blueprints to a release does so with ``spec.ref`` on a source. Reading
tells which ref wins (Flux's precedence: for Git ``commit`` > ``name`` > ``semver`` > ``tag`` >
``branch``; for OCI ``digest`` > ``semver`` > ``tag``), so that a bump of ``spec.ref.tag`` is only
proposed where the tag is what Flux actually follows. Editing is byte-preserving, like input.yaml.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from bot.fleet.inputs import InputError, edit_scalars
from bot.fleet.yamlsafe import (
    Node,
    ScalarNode,
    YamlProblem,
    compose_documents,
    construct,
    decode_utf8,
    line_of,
    mapping_get,
)

__all__ = [
    "MAX_SOURCE_BYTES",
    "SOURCE_API_GROUP",
    "SourceRef",
    "read_sources",
    "repo_of_url",
    "set_source_tag",
]

SOURCE_API_GROUP = "source.toolkit.fluxcd.io"
MAX_SOURCE_BYTES = 1 * 1024 * 1024
_TAG_NAME_PREFIX = "refs/tags/"
_REF_KEYS = ("commit", "name", "semver", "tag", "branch", "digest")
_TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._+/-]{0,254}")

PinnedBy = Literal["tag", "semver", "branch", "commit", "digest", "none"]
SourceKind = Literal["GitRepository", "OCIRepository"]

_HOST = r"(?P<host>[A-Za-z0-9.-]+)(?::\d+)?"
_OWNER_REPO = r"(?P<owner>[A-Za-z0-9_.-]+)/(?P<repo>[A-Za-z0-9_.-]+?)"
_URL_RES = (
    re.compile(rf"https?://(?:[^@/]+@)?{_HOST}/{_OWNER_REPO}(?:\.git)?/?"),
    re.compile(rf"ssh://(?:[^@/]+@)?{_HOST}/{_OWNER_REPO}(?:\.git)?/?"),
    re.compile(rf"[^@/:]+@(?P<host>[A-Za-z0-9.-]+):/?{_OWNER_REPO}(?:\.git)?/?"),
    re.compile(rf"oci://{_HOST}/{_OWNER_REPO}/?"),
)


@dataclass(frozen=True)
class SourceRef:
    """One Flux source and what pins it; ``tag`` is the tag it follows, if one is written."""

    path: str
    cluster: str
    kind: SourceKind
    namespace: str
    name: str
    url: str
    tag: str | None
    pinned_by: PinnedBy
    ref: str | None = None  # the value of the ref Flux follows (the ``pinned_by`` key)
    line: int | None = field(default=None, compare=False)  # where the document starts

    @property
    def pin(self) -> str:
        """What the source follows, in words: ``tag v1.2.0``, ``branch main``, ``the default
        branch``."""
        if self.pinned_by == "none":
            return "the default branch" if self.kind == "GitRepository" else "the latest tag"
        return f"{self.pinned_by} {self.ref}"

    @property
    def id(self) -> str:
        """``namespace/name``, the way Flux names the object."""
        return f"{self.namespace}/{self.name}"


def read_sources(path: str, cluster: str, data: bytes) -> tuple[SourceRef, ...]:
    """Every GitRepository and OCIRepository document in a file, in file order.

    A source without ``metadata.namespace`` is in namespace ``default``, as Kubernetes does when
    the object is applied without one (Flux's Kustomization may override it with
    ``targetNamespace``; that is not visible from the file). Raises :class:`InputError`.
    """
    documents = _documents(path, data)
    return tuple(
        _source(path, cluster, doc, kind) for doc in documents if (kind := _kind(doc)) is not None
    )


def set_source_tag(path: str, data: bytes, namespace: str, name: str, tag: str) -> bytes:
    """``data`` with the tag of source ``namespace/name`` set to ``tag``; no other byte changes.

    The tag must be what Flux follows: a source pinned by commit, digest or semver (which take
    precedence over a tag) or by branch alone is refused, and no key is ever added.
    """
    if not _TAG_RE.fullmatch(tag) or ".." in tag:
        raise InputError(path, None, f"{tag!r} is not a valid tag name")
    documents = _documents(path, data)
    for index, doc in enumerate(documents):
        kind = _kind(doc)
        if kind is None:
            continue
        source = _source(path, "", doc, kind)
        if (source.namespace, source.name) != (namespace, name):
            continue
        if source.pinned_by != "tag":
            raise InputError(
                path,
                line_of(doc),
                f"{kind} {source.id} is pinned by {source.pinned_by}, not by a tag; "
                "change spec.ref by hand if it should follow a tag",
            )
        if _scalar(path, doc, ("spec", "ref", "tag")) is not None:
            return edit_scalars(path, data, index, {("spec", "ref", "tag"): tag})
        return edit_scalars(path, data, index, {("spec", "ref", "name"): _TAG_NAME_PREFIX + tag})
    raise InputError(
        path, None, f"the file has no GitRepository or OCIRepository {namespace}/{name}"
    )


def repo_of_url(url: str) -> tuple[str, str, str] | None:
    """(host, owner, repo) of a Git or OCI URL, or None when it is not ``host/owner/repo``.

    Accepts ``https://host/o/r(.git)``, ``ssh://git@host/o/r(.git)``, ``git@host:o/r.git`` and
    ``oci://host/o/r``. The host is lower-cased and any port or user is dropped.
    """
    for pattern in _URL_RES:
        match = pattern.fullmatch(url.strip())
        if match is not None:
            return match["host"].lower(), match["owner"], match["repo"]
    return None


def _documents(path: str, data: bytes) -> list[Node]:
    try:
        text, _ = decode_utf8(data, MAX_SOURCE_BYTES)
        return compose_documents(text, merge_keys=False)
    except YamlProblem as exc:
        raise InputError(path, exc.line, exc.message) from None


def _kind(doc: Node) -> SourceKind | None:
    api = mapping_get(doc, "apiVersion")
    kind = mapping_get(doc, "kind")
    if api is None or kind is None or not isinstance(api[1].value, str):
        return None
    if api[1].value.split("/", 1)[0] != SOURCE_API_GROUP:
        return None
    value = kind[1].value
    if value == "GitRepository":
        return "GitRepository"
    return "OCIRepository" if value == "OCIRepository" else None


def _scalar(path: str, doc: Node, keys: tuple[str, ...]) -> str | None:
    """The string at ``keys`` below ``doc``, None when absent; non-strings are an error."""
    node = doc
    for key in keys:
        found = mapping_get(node, key)
        if found is None:
            return None
        node = found[1]
    if not isinstance(node, ScalarNode):
        raise InputError(path, line_of(node), f"{'.'.join(keys)} must be a string")
    try:
        value = construct(node)
    except YamlProblem as exc:
        raise InputError(path, exc.line, exc.message) from None
    if value is None:
        return None
    if not isinstance(value, str):
        raise InputError(path, line_of(node), f"{'.'.join(keys)} is {value!r}; it must be a string")
    return value


def _source(path: str, cluster: str, doc: Node, kind: SourceKind) -> SourceRef:
    name = _scalar(path, doc, ("metadata", "name"))
    url = _scalar(path, doc, ("spec", "url"))
    if not name or not url:
        missing = "metadata.name" if not name else "spec.url"
        raise InputError(path, line_of(doc), f"this {kind} has no {missing}")
    pinned_by, tag, value = _pin(
        kind, {key: _scalar(path, doc, ("spec", "ref", key)) for key in _REF_KEYS}
    )
    return SourceRef(
        path=path,
        cluster=cluster,
        kind=kind,
        namespace=_scalar(path, doc, ("metadata", "namespace")) or "default",
        name=name,
        url=url,
        tag=tag,
        pinned_by=pinned_by,
        ref=value,
        line=line_of(doc),
    )


def _pin(kind: SourceKind, ref: dict[str, str | None]) -> tuple[PinnedBy, str | None, str | None]:
    """Which ref Flux follows (its precedence order), the tag when a tag is written, and the
    value of the ref followed."""
    if kind == "OCIRepository":
        order: tuple[PinnedBy, ...] = ("digest", "semver", "tag")
    elif ref["commit"]:
        return "commit", ref["tag"], ref["commit"]
    elif ref["name"]:
        git_ref = ref["name"]
        if git_ref.startswith(_TAG_NAME_PREFIX):
            tag = git_ref[len(_TAG_NAME_PREFIX) :]
            return "tag", tag, tag
        return "branch", ref["tag"], git_ref
    else:
        order = ("semver", "tag", "branch")
    pinned: PinnedBy = next((key for key in order if ref[key]), "none")
    return pinned, ref["tag"], ref[pinned] if pinned != "none" else None
