"""What a gated cluster pulls in from outside its directory through kustomizations (pure).

A cluster applies more than its own directory. A kustomization (``kustomization.yaml``,
``kustomization.yml`` or ``Kustomization``) names other paths relative to its own directory
(``resources``, ``components``, ``bases``, patches, generators, ...), and a Flux
``kustomize.toolkit.fluxcd.io`` ``Kustomization`` names a ``spec.path`` relative to the root of
its source (this repository for Flux's own ``flux-system`` source). When such a path leaves the
cluster's directory (``../../dev-use1-01/tenants/x``), every change under it reaches the
cluster, as through a symlink.

:func:`read_references` turns one file into what it names (plain data, cached by blob SHA by
the shell); :func:`reach` follows the references of every gated cluster, transitively (the
kustomizations and Flux Kustomizations of a directory pulled in are followed in turn), bounded
in depth, references and files read; :func:`pulled_in` says which changed paths reach a gated
cluster that way. A reference the bot cannot place (a path escaping the repository, an absolute
path, a value that is not a path, a file that does not parse, a URL naming this repository in a
form it cannot follow) is :class:`Unresolved`: the gate fails closed on it.

URLs that name another repository (``https://github.com/org/other//dir?ref=v1``, an HTTP file
on another host) are not in this repository: they are left alone, like a Flux source of another
repository (whose pins lineage judges, V5). A Flux Kustomization whose ``sourceRef`` is not a
``GitRepository``, or names a ``GitRepository`` that the cluster defines with another
repository's URL, reads that source, not this repository.
"""

from __future__ import annotations

import bisect
import posixpath
import re
from collections import deque
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from bot.fleet.layout import INPUT_NAMES
from bot.fleet.sources import repo_of_url
from bot.fleet.yamlsafe import (
    MappingNode,
    Node,
    ScalarNode,
    SequenceNode,
    YamlProblem,
    compose_documents,
    decode_utf8,
    line_of,
    mapping_get,
    may_hold,
)

__all__ = [
    "KUSTOMIZATION_NAMES",
    "MAX_DEPTH",
    "MAX_FILES",
    "MAX_REFERENCES",
    "NOTHING",
    "Entry",
    "FileReferences",
    "Reach",
    "Reference",
    "Unresolved",
    "candidates",
    "is_candidate",
    "pulled_in",
    "reach",
    "read_references",
    "roots_of",
]

KUSTOMIZATION_NAMES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
#: How many references deep a chain is followed (a kustomization naming one naming one ...).
MAX_DEPTH = 8
#: References of all gated clusters together; with more, the reach is a blind spot.
MAX_REFERENCES = 1000
#: Files read to follow references out of the gated clusters; with more, a blind spot.
MAX_FILES = 50_000
#: Largest file read as a kustomization.
MAX_BYTES = 1_000_000

_YAML = (".yaml", ".yml")
_FLUX_MARK = b"kustomize.toolkit.fluxcd.io"
_SOURCE_MARK = b"source.toolkit.fluxcd.io"
_FLUX_GROUP = "kustomize.toolkit.fluxcd.io"
_SOURCE_GROUP = "source.toolkit.fluxcd.io"
#: Kustomize fields holding a list of paths (an entry with a line break is an inline patch).
_PATH_LISTS = (
    "resources",
    "components",
    "bases",
    "patchesStrategicMerge",
    "crds",
    "configurations",
    "generators",
    "transformers",
    "validators",
)
#: Kustomize fields holding a list of mappings with a ``path``.
_PATH_ITEMS = ("patches", "patchesJson6902", "replacements")
#: Generators: ``files`` (``[key=]path``), ``envs`` and ``env`` hold paths.
_GENERATORS = ("configMapGenerator", "secretGenerator", "helmChartInflationGenerator")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_KNOWN_HOSTS = ("github.com/", "gitlab.com/", "bitbucket.org/")

Base = Literal["file", "root"]


@dataclass(frozen=True)
class Entry:
    """One path a file names. ``value`` None: the entry is not a single path."""

    field: str  # "resources", "patches", "spec.path", ...
    value: str | None
    line: int
    base: Base = "file"  # relative to the file's directory, or to the repository root
    source: tuple[str, str] | None = None  # a Flux Kustomization's sourceRef (kind, name)


@dataclass(frozen=True)
class FileReferences:
    """What one file names: its entries, the Flux GitRepositories it defines (name -> URL),
    or why it cannot be read (``problem``, ``line``)."""

    entries: tuple[Entry, ...] = ()
    git_sources: tuple[tuple[str, str], ...] = ()
    problem: str | None = None
    line: int | None = None


NOTHING = FileReferences()


@dataclass(frozen=True)
class Reference:
    """``target`` (a directory or file; ``""`` is the whole repository) reaches ``cluster``
    of ``environment``: ``via`` (in the cluster) names it, or names what names it
    (``through``, at ``line``)."""

    environment: str
    cluster: str
    via: str
    target: str
    through: str
    line: int


@dataclass(frozen=True)
class Unresolved:
    """A reference of a gated cluster the bot cannot place, and why."""

    environment: str
    cluster: str
    path: str
    line: int | None
    reason: str
    kind: Literal["unreadable", "unknown"] = "unknown"


@dataclass(frozen=True)
class Reach:
    references: tuple[Reference, ...] = ()
    unresolved: tuple[Unresolved, ...] = ()
    wanted: tuple[str, ...] = ()  # files still to read before the answer is whole


@dataclass(frozen=True)
class Unplaced:
    reason: str


# --- reading one file ---------------------------------------------------------------------------


def is_candidate(path: str) -> bool:
    """May ``path`` name references: a kustomization, or YAML that may hold a Flux
    Kustomization (tenant inputs hold provider documents only and are never read here)."""
    name = posixpath.basename(path)
    if name in KUSTOMIZATION_NAMES:
        return True
    if not name.endswith(_YAML):
        return False
    parts = path.split("/")
    is_input = (
        len(parts) == 5
        and parts[0] == "clusters"
        and parts[2] == "tenants"
        and parts[4] in INPUT_NAMES
    )
    return not is_input


def read_references(path: str, data: bytes) -> FileReferences:
    """What ``data`` (the file at ``path``) names. Never raises: a problem is the result."""
    kustomization = posixpath.basename(path) in KUSTOMIZATION_NAMES
    if not kustomization and not may_hold(data, _FLUX_MARK, _SOURCE_MARK):
        return NOTHING  # the common case: no parse at all
    try:
        text, _ = decode_utf8(data, MAX_BYTES)
        docs = compose_documents(text)
    except YamlProblem as exc:
        if kustomization or may_hold(data, _FLUX_MARK):
            return FileReferences(problem=exc.message, line=exc.line)
        return NOTHING  # a file with sources only: V5 judges its sources
    entries: list[Entry] = []
    git_sources: list[tuple[str, str]] = []
    for index, doc in enumerate(docs):
        if kustomization and index == 0:
            if doc is not None and not isinstance(doc, MappingNode):
                return FileReferences(problem="a kustomization must be a mapping", line=1)
            entries += _kustomize_entries(doc)
            continue
        api, kind = _text(doc, "apiVersion"), _text(doc, "kind")
        group = (api or "").split("/", 1)[0]
        if group == _FLUX_GROUP and kind == "Kustomization":
            entries += _flux_entries(doc)
        elif group == _SOURCE_GROUP and kind == "GitRepository":
            name = _text(_get(_get(doc, "metadata"), "name"), None)
            url = _text(_get(doc, "spec"), "url")
            if name is not None and url is not None:
                git_sources.append((name, url))
    return FileReferences(tuple(entries), tuple(git_sources))


def _get(node: Node | None, key: str) -> Node | None:
    found = mapping_get(node, key) if node is not None else None
    return found[1] if found is not None else None


def _is_text(node: Node | None) -> bool:
    return isinstance(node, ScalarNode) and str(node.tag or "").endswith(":str")


def _text(node: Node | None, key: str | None) -> str | None:
    value = _get(node, key) if key is not None else node
    if isinstance(value, ScalarNode) and _is_text(value):
        return str(value.value)
    return None


def _path_entry(field: str, node: Node) -> Entry:
    if isinstance(node, ScalarNode) and _is_text(node):
        return Entry(field, str(node.value), line_of(node))
    return Entry(field, None, line_of(node))


def _kustomize_entries(doc: Node | None) -> list[Entry]:
    out: list[Entry] = []
    if doc is None:
        return out
    for field in _PATH_LISTS:
        items = _get(doc, field)
        if items is None:
            continue
        if not isinstance(items, SequenceNode):
            out.append(Entry(field, None, line_of(items)))
            continue
        for item in items.value:
            if isinstance(item, ScalarNode) and "\n" in str(item.value):
                continue  # an inline patch or generator, not a path
            if field in ("generators", "transformers", "validators") and isinstance(
                item, MappingNode
            ):
                continue  # an inline plugin configuration
            out.append(_path_entry(field, item))
    for field in _PATH_ITEMS:
        items = _get(doc, field)
        if not isinstance(items, SequenceNode):
            continue
        for item in items.value:
            found = _get(item, "path")
            if found is not None:
                out.append(_path_entry(f"{field}.path", found))
    for field in _GENERATORS:
        items = _get(doc, field)
        if not isinstance(items, SequenceNode):
            continue
        for item in items.value:
            for key in ("files", "envs"):
                values = _get(item, key)
                if isinstance(values, SequenceNode):
                    for value in values.value:
                        entry = _path_entry(f"{field}.{key}", value)
                        if entry.value is not None and "=" in entry.value:
                            entry = Entry(entry.field, entry.value.split("=", 1)[1], entry.line)
                        out.append(entry)
            env = _get(item, "env")
            if env is not None:
                out.append(_path_entry(f"{field}.env", env))
    return out


def _flux_entries(doc: Node) -> list[Entry]:
    """``spec.path`` (relative to the source's root; the root itself when absent) and
    ``spec.components`` (relative to ``spec.path``) of a Flux Kustomization."""
    spec = _get(doc, "spec")
    node = _get(spec, "path")
    source = _get(spec, "sourceRef")
    ref = (_text(source, "kind") or "", _text(source, "name") or "")
    if node is None:  # Flux applies the source's root when no path is given
        entry = Entry("spec.path", "./", line_of(spec or doc), "root", ref)
    else:
        found = _path_entry("spec.path", node)
        entry = Entry(found.field, found.value, found.line, "root", ref)
    out = [entry]
    components = _get(spec, "components")
    if isinstance(components, SequenceNode):
        for item in components.value:
            part = _path_entry("spec.components", item)
            value = None
            if part.value is not None and entry.value is not None:
                value = posixpath.join(entry.value, part.value)
            out.append(Entry(part.field, value, part.line, "root", ref))
    elif components is not None:
        out.append(Entry("spec.components", None, line_of(components), "root", ref))
    return out


# --- following references -----------------------------------------------------------------------


def roots_of(
    clusters: Mapping[str, str | None], gated: Collection[str]
) -> dict[str, tuple[str, str]]:
    """``clusters/<cluster>`` -> (cluster, environment) for every cluster of a gated
    environment."""
    return {
        f"clusters/{cluster}": (cluster, env)
        for cluster, env in sorted(clusters.items())
        if env is not None and env in gated
    }


def _under(paths: Sequence[str], prefix: str) -> list[str]:
    """The sorted ``paths`` equal to ``prefix`` or below it (``""``: all)."""
    if not prefix:
        return list(paths)
    out = []
    start = bisect.bisect_left(paths, prefix)
    if start < len(paths) and paths[start] == prefix:
        out.append(prefix)
        start += 1
    lead = prefix + "/"
    start = max(start, bisect.bisect_left(paths, lead))
    for path in paths[start:]:
        if not path.startswith(lead):
            break
        out.append(path)
    return out


def candidates(paths: Sequence[str], under: str) -> list[str]:
    """The files of sorted ``paths`` at or below ``under`` that may name references."""
    return [p for p in _under(paths, under) if is_candidate(p)]


def _inside(path: str, root: str) -> bool:
    return bool(root) and (path == root or path.startswith(root + "/"))


def _remote(value: str) -> bool:
    return bool(
        _SCHEME.match(value)
        or value.startswith(("git::", "git@"))
        or value.startswith(_KNOWN_HOSTS)
    )


def _resolve_remote(value: str, own: tuple[str, str, str] | None) -> str | Unplaced | None:
    """A remote reference: the path of this repository it names, None for another
    repository's content, or why it cannot be placed."""
    text = value.removeprefix("git::").split("?", 1)[0]
    if not _SCHEME.match(text) and not text.startswith("git@"):
        text = "https://" + text
    scheme_end = text.find("://") + 3 if "://" in text else 0
    repo_part, sep, sub = text[scheme_end:].partition("//")
    repo = repo_of_url(text[:scheme_end] + repo_part) if sep else None
    if own is None:
        return Unplaced("a remote reference, and the bot does not know this repository's URL")
    host, owner, name = (own[0].lower(), own[1].lower(), own[2].lower())
    if repo is not None:
        same = (repo[0], repo[1].lower(), repo[2].lower().removesuffix(".git")) == (
            host,
            owner,
            name,
        )
        if not same:
            return None
        resolved = posixpath.normpath(sub) if sub else "."
        if resolved.startswith(("/", "..")):
            return Unplaced(f"`{value}` leaves this repository")
        return "" if resolved == "." else resolved
    parts = [p.lower().removesuffix(".git") for p in re.split(r"[/:]", text[scheme_end:]) if p]
    names_own = any(parts[i : i + 2] == [owner, name] for i in range(len(parts) - 1))
    if names_own:
        return Unplaced(
            f"`{value}` names this repository in a form the bot cannot follow; write a "
            "relative path, or `<repository URL>//<directory>?ref=<ref>`"
        )
    return None  # another host or repository: not in this repository


def _resolve(
    entry: Entry,
    file: str,
    own: tuple[str, str, str] | None,
    git_sources: Mapping[str, tuple[str, ...]],
) -> str | Unplaced | None:
    """The repository path an entry names ("" for the whole repository), None when it is
    not in this repository, or why it cannot be placed."""
    if entry.value is None:
        return Unplaced(f"`{entry.field}` holds an entry that is not a path")
    value = entry.value.strip()
    if entry.base == "root" and entry.source is not None:
        kind, name = entry.source
        if kind and kind != "GitRepository":
            return None  # an OCIRepository or Bucket: another source's content
        urls = git_sources.get(name, ())
        if urls and own is not None and all(_other_repository(url, own) for url in urls):
            return None
    if _remote(value):
        return _resolve_remote(value, own)
    if value.startswith("/"):
        return Unplaced(f"`{value}` is an absolute path")
    start = "" if entry.base == "root" else posixpath.dirname(file)
    resolved = posixpath.normpath(posixpath.join(start, value) if start else value)
    if resolved == ".." or resolved.startswith("../"):
        return Unplaced(f"`{value}` leaves the repository")
    return "" if resolved == "." else resolved


def _other_repository(url: str, own: tuple[str, str, str]) -> bool:
    repo = repo_of_url(url)
    if repo is None:
        return False
    return (repo[0], repo[1].lower(), repo[2].lower().removesuffix(".git")) != (
        own[0].lower(),
        own[1].lower(),
        own[2].lower(),
    )


def reach(
    paths: Sequence[str],
    files: Callable[[str], FileReferences | None],
    roots: Mapping[str, tuple[str, str]],
    own: tuple[str, str, str] | None = None,
) -> Reach:
    """Every path outside a gated cluster's directory that the cluster pulls in.

    ``paths``: the tree's files, sorted. ``files``: what a file read so far names (None for
    a candidate not read yet: it is ``wanted``; read it and ask again). ``roots``: from
    :func:`roots_of`. ``own``: (host, owner, name) of this repository. Each root's own
    candidates are followed, then the candidates under every directory they pull in, up to
    :data:`MAX_DEPTH` steps; a cycle ends where it closes.
    """
    references: list[Reference] = []
    unresolved: list[Unresolved] = []
    wanted: dict[str, None] = {}
    budget = MAX_FILES  # files pulled in from outside the gated clusters, all roots together
    for root, (cluster, env) in sorted(roots.items()):
        start = candidates(paths, root)
        queue: deque[tuple[str, str, int]] = deque((p, p, 0) for p in start)
        seen_files = set(start)
        seen_targets: set[str] = set()
        git_sources: dict[str, tuple[str, ...]] = {}
        for p in start:
            for name, url in (files(p) or NOTHING).git_sources:
                git_sources[name] = (*git_sources.get(name, ()), url)
        while queue:
            file, via, depth = queue.popleft()
            found = files(file)
            if found is None:
                wanted[file] = None
                continue
            if found.problem is not None:
                reason = f"`{file}` cannot be read as a kustomization: {found.problem}"
                unresolved.append(Unresolved(env, cluster, file, found.line, reason, "unreadable"))
                continue
            for entry in found.entries:
                target = _resolve(entry, file, own, git_sources)
                if target is None:
                    continue
                if isinstance(target, Unplaced):
                    reason = f"`{file}` line {entry.line}: {target.reason}"
                    unresolved.append(Unresolved(env, cluster, file, entry.line, reason))
                    continue
                if _inside(target, root) or target in seen_targets:
                    continue
                seen_targets.add(target)
                references.append(Reference(env, cluster, via, target, file, entry.line))
                if len(references) > MAX_REFERENCES:
                    reason = (
                        f"the gated clusters' kustomizations name more than {MAX_REFERENCES} "
                        "paths outside their clusters: the bot cannot tell where a change "
                        "shows up"
                    )
                    return Reach((), (Unresolved(env, cluster, file, None, reason),))
                more = [p for p in candidates(paths, target) if p not in seen_files]
                if more and depth + 1 > MAX_DEPTH:
                    reason = (
                        f"`{via}` pulls in paths through more than {MAX_DEPTH} kustomizations "
                        f"(the last: `{file}` naming `{target}`): the bot follows {MAX_DEPTH}"
                    )
                    unresolved.append(Unresolved(env, cluster, via, None, reason))
                    continue
                budget -= len(more)
                if budget < 0:
                    reason = (
                        f"following the gated clusters' kustomizations needs more than "
                        f"{MAX_FILES} files read: the bot cannot tell where a change shows up"
                    )
                    return Reach((), (Unresolved(env, cluster, via, None, reason),))
                seen_files.update(more)
                queue.extend((p, via, depth + 1) for p in more)
    return Reach(tuple(references), tuple(unresolved), tuple(wanted))


def pulled_in(changed: Iterable[str], found: Reach) -> list[tuple[str, Reference]]:
    """``(path, reference)`` for every changed path that reaches a gated cluster through a
    reference (one reference per path and environment: the first in order)."""
    out: list[tuple[str, Reference]] = []
    for path in sorted(set(changed)):
        environments: set[str] = set()
        for ref in found.references:
            if ref.environment in environments:
                continue
            if ref.target == "" or path == ref.target or path.startswith(ref.target + "/"):
                if path.startswith(f"clusters/{ref.cluster}/"):
                    continue  # in the cluster itself: counted there already
                environments.add(ref.environment)
                out.append((path, ref))
    return out
