"""Blueprint releases travel like images: Flux sources pinned to a tag, bumped in dev on a
release, traced by lineage, promoted on request (pure).

A source is identified across clusters by ``namespace/name``; its tracked value is the
normalised repository and tag (``github.com/acme/platform-blueprints:v1.2.0``), so a change of
repository is a change of value, whatever URL spelling a cluster uses.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from bot.fleet.inputs import InputError
from bot.fleet.layout import Fleet, is_safe_name
from bot.fleet.sources import SOURCE_API_GROUP, SourceRef, read_sources, repo_of_url, set_source_tag
from bot.fleet.yamlsafe import may_hold
from bot.rules.bump import is_older
from bot.rules.promote import PromotionPlan, ValueMove
from bot.rules.refs import ref_component, safe_slug

PREFIX = "source:"
YAML = (".yaml", ".yml")
_MARK = SOURCE_API_GROUP.encode()


def item_of(source_id: str) -> str:
    return f"{PREFIX}{source_id}"


def is_source_item(item: str) -> bool:
    return item.startswith(PREFIX)


def parse_source_arg(text: str) -> str | None:
    """``source:<namespace>/<name>`` -> ``namespace/name``; None when not of that form (each
    part must be an exact plain name)."""
    if not text.startswith(PREFIX):
        return None
    namespace, slash, name = text[len(PREFIX) :].partition("/")
    if not slash or not is_safe_name(namespace) or not is_safe_name(name):
        return None
    return f"{namespace}/{name}"


def candidate_paths(paths: Iterable[str]) -> list[str]:
    """YAML files under clusters/ that may hold sources (tenant inputs never do)."""
    out = []
    for path in paths:
        if not path.startswith("clusters/") or not path.endswith(YAML):
            continue
        if path.endswith(("/input.yaml", "/input.yml")) and "/tenants/" in path:
            continue
        out.append(path)
    return out


def value_of(source: SourceRef) -> str | None:
    """The lineage value: normalised repository and tag; None when not pinned by a tag."""
    if source.pinned_by != "tag" or source.tag is None:
        return None
    repo = repo_of_url(source.url)
    where = "/".join((repo[0], repo[1].lower(), repo[2].lower())) if repo else source.url
    return f"{where}:{source.tag}"


def tag_of_value(value: str) -> str:
    return value.rsplit(":", 1)[-1]


@dataclass(frozen=True)
class FleetSources:
    """Every readable source of the fleet: (cluster, id) -> SourceRef, and unreadable files."""

    by_key: Mapping[tuple[str, str], SourceRef]
    problems: Mapping[str, str]

    def in_clusters(self, clusters: Iterable[str]) -> list[SourceRef]:
        wanted = set(clusters)
        return [s for (c, _), s in sorted(self.by_key.items()) if c in wanted]

    def get(self, cluster: str, source_id: str) -> SourceRef | None:
        return self.by_key.get((cluster, source_id))


def collect(fleet: Fleet, files: Mapping[str, bytes]) -> FleetSources:
    by_key: dict[tuple[str, str], SourceRef] = {}
    problems: dict[str, str] = {}
    for path, data in sorted(files.items()):
        if not is_source_file(data):
            continue  # cheap: most files are no sources
        loc = fleet.locate(path)
        if loc is None:
            continue
        try:
            found = read_sources(path, loc.cluster, data)
        except InputError as exc:
            problems[path] = str(exc)
            continue
        for source in found:
            by_key.setdefault((loc.cluster, source.id), source)
    return FleetSources(by_key, problems)


def is_source_file(data: bytes) -> bool:
    """Cheap: may ``data`` hold a Flux source (it names the source API group, or could spell
    it otherwise: :func:`~bot.fleet.yamlsafe.may_hold`)?"""
    return may_hold(data, _MARK)


def sources_in(path: str, cluster: str, data: bytes | None) -> dict[str, SourceRef]:
    if data is None or not is_source_file(data):
        return {}
    try:
        return {s.id: s for s in read_sources(path, cluster, data)}
    except InputError:
        return {}


def untraceable_moves(
    old: Mapping[str, SourceRef], new: Mapping[str, SourceRef], own: tuple[str, str, str] | None
) -> list[tuple[SourceRef, str]]:
    """Sources of a changed file that now follow what lineage cannot trace, with why.

    Only a tag names one release that can have run upstream. A source that comes to follow a
    branch, a commit, a semver range or a digest (which win over a tag in Flux: a ``commit:``
    written beside ``tag:`` is what Flux checks out), or whose repository changes while it
    follows one, would move the environment with no promotion at all. A source that points at
    ``own`` (host, owner, repo: the fleet repository itself, as Flux's own ``flux-system``
    does) is the gate itself and is left alone.
    """
    out: list[tuple[SourceRef, str]] = []
    for sid, source in sorted(new.items()):
        if value_of(source) is not None:
            continue  # a tag: traced like an image
        before = old.get(sid)
        if before is not None and (before.pin, before.url) == (source.pin, source.url):
            continue  # unchanged
        if own is not None and _points_at(source, own):
            continue
        was = f" (was {before.pin})" if before is not None else ""
        out.append(
            (
                source,
                f"{source.kind} {sid} would follow {source.pin}{was}: only a tag names a "
                "release that can have run upstream, so lineage cannot vouch for it; pin "
                "`spec.ref.tag` and promote it",
            )
        )
    return out


def _points_at(source: SourceRef, own: tuple[str, str, str]) -> bool:
    repo = repo_of_url(source.url)
    if repo is None:
        return False
    host, owner, name = repo
    return (host, owner.lower(), name.lower().removesuffix(".git")) == (
        own[0].lower(),
        own[1].lower(),
        own[2].lower(),
    )


def extractor(source_id: str) -> Callable[[str, bytes], str | None]:
    """A value extractor for one source id, for RepoFacts.value_history."""

    def extract(path: str, data: bytes) -> str | None:
        found = sources_in(path, "", data).get(source_id)
        return value_of(found) if found is not None else None

    extract.__name__ = f"source-{source_id}"
    return extract


# --- release -> dev bump ---------------------------------------------------------------------


@dataclass(frozen=True)
class Release:
    repository: str  # owner/name
    host: str  # github.com, or the GHES host
    tag: str
    url: str
    name: str
    notes: str
    prerelease: bool = False


@dataclass(frozen=True)
class SourceMove:
    cluster: str
    source_id: str
    path: str
    old: str
    new: str


@dataclass(frozen=True)
class SourceBumpPlan:
    release: Release
    environment: str
    source_id: str
    changes: Mapping[str, bytes] = field(default_factory=dict)
    moves: tuple[SourceMove, ...] = ()
    not_promotable: tuple[tuple[str, str], ...] = ()  # (cluster, why)
    current: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.changes


def same_repository(source: SourceRef, release: Release) -> bool:
    repo = repo_of_url(source.url)
    if repo is None:
        return False
    host, owner, name = repo
    r_owner, _, r_name = release.repository.partition("/")
    hosts = {release.host.lower()}
    if source.kind == "OCIRepository":
        return (owner.lower(), name.lower()) == (r_owner.lower(), r_name.lower())
    return host in hosts and (owner.lower(), name.lower()) == (r_owner.lower(), r_name.lower())


@dataclass
class _Draft:
    changes: dict[str, bytes] = field(default_factory=dict)
    moves: list[SourceMove] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)
    current: list[str] = field(default_factory=list)


def plan_source_bumps(
    fleet: Fleet, environment: str, files: Mapping[str, bytes], release: Release
) -> list[SourceBumpPlan]:
    """One plan per source id of ``environment`` that follows ``release``'s repository."""
    found = collect(fleet, files)
    drafts: dict[str, _Draft] = {}
    for source in found.in_clusters(fleet.clusters_of(environment)):
        if not same_repository(source, release):
            continue
        draft = drafts.setdefault(source.id, _Draft())
        if source.pinned_by != "tag" or source.tag is None:
            draft.refused.append(
                (source.cluster, f"pinned by {source.pinned_by}, not a tag: not promotable")
            )
            continue
        if source.tag == release.tag:
            draft.current.append(source.cluster)
            continue
        if is_older(release.tag, source.tag):
            draft.refused.append(
                (source.cluster, f"runs {source.tag}, newer than {release.tag}: not moved back")
            )
            continue
        data = draft.changes.get(source.path, files[source.path])
        try:
            draft.changes[source.path] = set_source_tag(
                source.path, data, source.namespace, source.name, release.tag
            )
        except InputError as exc:
            draft.refused.append((source.cluster, str(exc)))
            continue
        draft.moves.append(
            SourceMove(source.cluster, source.id, source.path, source.tag, release.tag)
        )
    return [
        SourceBumpPlan(
            release=release,
            environment=environment,
            source_id=sid,
            changes=d.changes,
            moves=tuple(d.moves),
            not_promotable=tuple(d.refused),
            current=tuple(d.current),
        )
        for sid, d in sorted(drafts.items())
    ]


def source_branch(source_id: str, tag: str) -> str:
    return f"{source_prefix(source_id)}{ref_component(tag)}"


def source_prefix(source_id: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", source_id.replace("/", "-")).strip("-.")
    return f"fleet-bot/bump/{safe_slug(f'source-{slug}', f'source-{source_id}')}/"


# --- promotion -------------------------------------------------------------------------------


def plan_source_promotion(
    fleet: Fleet,
    environment: str,
    upstream: str,
    source_ids: Iterable[str],
    files: Mapping[str, bytes],
) -> PromotionPlan:
    """Copy each source's tag from the (agreeing) upstream clusters to the target clusters."""
    found = collect(fleet, files)
    ids = tuple(source_ids)
    changes: dict[str, bytes] = {}
    moves: list[ValueMove] = []
    up_to_date: list[str] = []
    disagreements: dict[str, dict[str, object]] = {}
    missing: dict[str, tuple[str, ...]] = {}
    not_upstream: list[str] = []
    problems: list[str] = [f"{p}: {m}" for p, m in found.problems.items()]
    sources: dict[str, tuple[str, ...]] = {}
    for sid in ids:
        item = item_of(sid)
        ups = {c: s for c in fleet.clusters_of(upstream) if (s := found.get(c, sid)) is not None}
        values = {c: value_of(s) for c, s in ups.items()}
        if not ups:
            not_upstream.append(item)
            continue
        if any(v is None for v in values.values()):
            pins = ", ".join(f"{c}: {s.pinned_by}" for c, s in ups.items())
            problems.append(f"{item}: the {upstream} source is not pinned by a tag ({pins})")
            continue
        if len(set(values.values())) > 1:
            disagreements[item] = {c: tag_of_value(str(v)) for c, v in values.items()}
            continue
        wanted = next(iter(values.values()))
        assert wanted is not None
        tag = tag_of_value(wanted)
        sources[item] = tuple(ups)
        targets = {c: s for c in fleet.clusters_of(environment) if (s := found.get(c, sid))}
        lacking = tuple(c for c in fleet.clusters_of(environment) if c not in targets)
        if lacking:
            missing[item] = lacking
        moved = False
        for cluster, source in targets.items():
            if value_of(source) == wanted:
                continue
            data = changes.get(source.path, files[source.path])
            try:
                changes[source.path] = set_source_tag(
                    source.path, data, source.namespace, source.name, tag
                )
            except InputError as exc:
                problems.append(f"{item}: {exc}")
                continue
            moves.append(ValueMove(item, cluster, source.path, "ref.tag", source.tag, tag))
            moved = True
        if not moved and not any(p.startswith(f"{item}:") for p in problems):
            up_to_date.append(item)
    return PromotionPlan(
        environment=environment,
        upstream=upstream,
        tenants=tuple(item_of(s) for s in ids),
        changes=changes,
        moves=tuple(moves),
        up_to_date=tuple(up_to_date),
        disagreements=disagreements,
        missing_clusters=missing,
        not_upstream=tuple(not_upstream),
        problems=tuple(problems),
        sources=sources,
    )
