"""What the gate can see of a pull request, and what it cannot: the shell side of failing closed.

:func:`see_pull` gathers through the gateway everything the pure core needs to place a change:

- the complete change. ``GET /pulls/{n}/files`` stops at 3,000 files; when a PR changes more
  (its ``changed_files``), the trees of the merge base and the head are compared instead (trees
  by SHA, cached). When even that fails, the change is a blind spot.
- links. A symlink makes one path show another's content: a change to the target is a change
  where the link sits (``clusters/prod-…/tenants/x`` -> ``../../dev-…/tenants/x`` turns every
  dev change into a prod change). Symlinks and submodules a PR adds where a gate applies are
  blind spots too: the bot does not judge content it would have to follow elsewhere.
- references. A gated cluster applies what its kustomizations and Flux Kustomizations pull
  in from outside its directory (``resources: [../../dev-…/tenants/x]``): a change there counts
  in the cluster's environment too, and a reference the bot cannot place is a blind spot.
- content. In environments with an upstream, every changed input and Flux source must be read
  and its values traceable; a file that does not parse, a value that is not a single value, a
  source that comes to follow a branch, commit, semver range or digest, or a provider document
  outside a tenant's ``input.yaml``, is a blind spot.

The pure core (:mod:`bot.rules.gate`) turns blind spots into a scope where every gate applies.
Everything read here is read by SHA and cached, so a second look (a review) costs no call.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import gidgethub

from bot.concurrency import cpu
from bot.fleet.inputs import RSIP_KIND, InputError, TenantInput, provider_lines
from bot.fleet.layout import Fleet
from bot.fleet.policy import Policy
from bot.fleet.sources import read_sources
from bot.fleet.yamlsafe import may_hold
from bot.github.context import Context
from bot.github.facts import RepoFacts
from bot.github.gateway import GatewayError, RepoTree
from bot.handlers.payload import field as pfield
from bot.rules import kustomize, sources
from bot.rules.gate import (
    BlindSpot,
    FileChange,
    PulledIn,
    Scope,
    file_changes,
    link_target,
    scope_of,
    through_links,
    tree_changes,
    with_blind_spots,
    with_pulled_in,
)
from bot.rules.tracing import value_changes

#: GitHub's limit on ``GET /pulls/{n}/files``: "Responses include a maximum of 3000 files."
LIST_LIMIT = 3000
#: Symlinks of one tree whose targets are read (each a blob, once per SHA); with more, the bot
#: cannot tell where a change shows up, and every PR has a blind spot.
MAX_LINKS = 1000


@dataclass(frozen=True)
class ChangeList:
    """A PR's changed files, and what is known about their completeness."""

    files: tuple[FileChange, ...]
    notes: tuple[str, ...] = ()
    blind_spots: tuple[BlindSpot, ...] = ()


@dataclass(frozen=True)
class Seen:
    """A PR as the gate sees it: its files, the fleet they are placed in, and the scope."""

    files: tuple[FileChange, ...]
    fleet: Fleet
    scope: Scope
    notes: tuple[str, ...]


async def see_pull(
    ctx: Context, facts: RepoFacts, pr: dict[str, Any], policy: Policy, base_head: str
) -> Seen:
    """Everything the gate needs to place ``pr`` (against ``base_head`` and ``policy``)."""
    head = pfield(pr, "head.sha", str)
    change = await pull_change(ctx, facts, pr, base_head)
    fleet = await facts.fleet(base_head, policy, extra_paths=[c.path for c in change.files])
    scope, notes = await see_files(
        ctx, facts, policy, fleet, change.files, base_head, head, change.blind_spots
    )
    return Seen(change.files, fleet, scope, (*change.notes, *notes))


async def see_change(ctx: Context, facts: RepoFacts, policy: Policy, base: str, head: str) -> Seen:
    """The change from commit ``base`` to ``head`` (a merge group against its parent) as the
    gate sees it: both trees compared (files, links and submodules), the same blind spots as a
    pull request's."""
    old, new = await facts.tree(base), await facts.tree(head)
    files = tree_changes(_entries(old), _entries(new))
    fleet = await facts.fleet(base, policy, extra_paths=[c.path for c in files])
    scope, notes = await see_files(ctx, facts, policy, fleet, files, base, head)
    return Seen(files, fleet, scope, notes)


async def see_files(
    ctx: Context,
    facts: RepoFacts,
    policy: Policy,
    fleet: Fleet,
    files: Sequence[FileChange],
    base: str,
    head: str,
    blind_spots: Sequence[BlindSpot] = (),
) -> tuple[Scope, tuple[str, ...]]:
    """The scope of ``files`` (landing on ``base``, as of commit ``head``) as the gate sees it:
    what gated clusters' kustomizations pull in, symlinks and submodules into gated places,
    content that cannot be judged; with a note per pulled-in change. The check of a pull
    request, of a merge group, and the audit of a merge all place a change this way."""
    scope = scope_of(files, fleet, policy, blind_spots)
    scope, spots, notes = await reference_scope(ctx, facts, fleet, policy, scope, files, base)
    spots += await link_spots(facts, fleet, policy, scope, files, base, head)
    spots += await content_spots(ctx, facts, fleet, policy, scope, files, base)
    return with_blind_spots(scope, spots, policy), notes


# --- the complete change --------------------------------------------------------------------


async def pull_change(
    ctx: Context, facts: RepoFacts, pr: dict[str, Any], base_head: str
) -> ChangeList:
    """The PR's changed files: GitHub's list, or the trees' comparison when the list is cut
    short. Memoised per head and base (a PR the bot made itself is known without a call)."""
    repo = facts.repo
    number = pfield(pr, "number", int)
    head = pfield(pr, "head.sha", str)
    memo = ctx.services.caches.derived
    key = ("pr-change", repo, number, head, base_head)
    hit = memo.get(key)
    if isinstance(hit, ChangeList):
        return hit
    files_key = ("pr-files", repo, number, head, base_head)
    seeded = memo.get(files_key)
    if isinstance(seeded, tuple) and len(seeded) < LIST_LIMIT:
        # known complete: a PR the bot made (its files are what it committed), or a listing
        # shorter than GitHub's limit
        result = ChangeList(seeded)
    else:
        listed = file_changes(await ctx.gateway.pull_files(repo, number))
        result = ChangeList(listed)
        if len(listed) >= LIST_LIMIT:
            result = await _complete(ctx, facts, pr, listed, base_head)
        memo[files_key] = result.files
    memo[key] = result
    return result


async def _complete(
    ctx: Context,
    facts: RepoFacts,
    pr: dict[str, Any],
    listed: tuple[FileChange, ...],
    base_head: str,
) -> ChangeList:
    """The change GitHub's list cut off, from the merge base's tree and the head's."""
    repo, number, head = facts.repo, pfield(pr, "number", int), pfield(pr, "head.sha", str)
    total = pr.get("changed_files")
    if not isinstance(total, int):  # list items and some payloads leave the counts out
        total = (await ctx.gateway.pull(repo, number)).get("changed_files")
    if isinstance(total, int) and total <= len(listed):
        return ChangeList(listed)
    count = f"{total:,}" if isinstance(total, int) else f"more than {LIST_LIMIT:,}"
    try:
        base = await ctx.gateway.merge_base(repo, base_head, head)
        old, new = await facts.tree(base), await facts.tree(head)
    except (GatewayError, gidgethub.BadRequest) as exc:
        reason = (
            f"GitHub lists only the first {LIST_LIMIT:,} of the {count} files this pull request "
            f"changes, and the rest could not be read from the trees either ({exc}): the bot "
            "cannot tell what else it changes"
        )
        return ChangeList(listed, blind_spots=(BlindSpot("incomplete", reason),))
    files = tree_changes(_entries(old), _entries(new))
    note = (
        f"GitHub lists at most {LIST_LIMIT:,} files of a pull request and this one changes "
        f"{len(files):,}: the bot read the complete change by comparing the trees of "
        f"{base[:7]} (the merge base) and {head[:7]}."
    )
    return ChangeList(files, notes=(note,))


def _entries(tree: RepoTree) -> dict[str, str]:
    """Every path of a tree with what it holds; a symlink differs from a file with the same
    content, a submodule is its commit."""
    out = dict(tree.blobs)
    out.update((path, f"{sha}:link") for path, sha in tree.links.items())
    out.update(tree.submodules)
    return out


# --- references of kustomizations ---------------------------------------------------------


async def reference_scope(
    ctx: Context,
    facts: RepoFacts,
    fleet: Fleet,
    policy: Policy,
    scope: Scope,
    files: Sequence[FileChange],
    base_head: str,
) -> tuple[Scope, list[BlindSpot], tuple[str, ...]]:
    """``scope`` with the changes that gated clusters pull in through their kustomizations
    counted in those clusters' environments, the references the bot cannot place (blind
    spots), and a note per pulled-in change naming the file that pulls it in."""
    gated = {e.name for e in policy.environments if e.gated}
    roots = kustomize.roots_of(fleet.clusters, gated)
    if not roots:
        return scope, [], ()
    tree = await facts.tree(base_head)
    own = _own_repository(ctx, facts.repo)
    found = await _reach(facts, tree, roots, own, {}, base_head)
    changed = {c.path for c in files} | {c.previous_path for c in files if c.previous_path}
    # The PR's own changes to files the reach reads (in a gated cluster, or under a path one
    # pulls in) count as they will be after the merge: a PR that adds a reference and the
    # change it pulls in is judged whole, and one that mends a broken reference is not blind.
    reached = [*roots, *(r.target for r in found.references)]
    overlay = {
        path: _new_sha(files, path)
        for path in sorted(changed)
        if kustomize.is_candidate(path) and any(_below(path, top) for top in reached)
    }
    if overlay:
        after = await _reach(facts, tree, roots, own, overlay, base_head)
        found = kustomize.Reach(
            tuple(dict.fromkeys((*found.references, *after.references))), after.unresolved
        )
    spots = [
        BlindSpot(
            u.kind,
            f"{u.reason}; {u.environment} (cluster `{u.cluster}`) applies it, so the bot cannot "
            "tell which changes reach it",
            u.path,
            u.line,
        )
        for u in found.unresolved
    ]
    matches = kustomize.pulled_in(changed, found)
    pulled = [
        PulledIn(
            path, ref.environment, ref.via, ref.line if ref.through == ref.via else None, ref.target
        )
        for path, ref in matches
    ]
    return with_pulled_in(scope, files, fleet, policy, pulled), spots, _pulled_notes(matches)


def _new_sha(files: Sequence[FileChange], path: str) -> str | None:
    """The blob ``path`` has after the PR (None: removed or renamed away)."""
    for change in files:
        if change.path == path:
            return None if change.status == "removed" else change.sha
    return None


def _below(path: str, top: str) -> bool:
    return not top or path == top or path.startswith(top + "/")


def _pulled_notes(matches: Sequence[tuple[str, kustomize.Reference]]) -> tuple[str, ...]:
    """One note per reference that pulls changed files in, naming the file that does."""
    grouped: dict[kustomize.Reference, list[str]] = {}
    for path, ref in matches:
        grouped.setdefault(ref, []).append(path)
    notes: list[str] = []
    for ref, paths in grouped.items():
        shown = ", ".join(f"`{p}`" for p in paths[:3])
        if len(paths) > 3:
            shown += f" and {len(paths) - 3} more"
        target = f"`{ref.target}`" if ref.target else "the whole repository"
        through = "" if ref.through == ref.via else f", through `{ref.through}`"
        notes.append(
            f"{shown} {'counts' if len(paths) == 1 else 'count'} in {ref.environment} too: "
            f"`{ref.via}` (cluster `{ref.cluster}`{through}, line {ref.line}) pulls in "
            f"{target}, so the gates of {ref.environment} apply."
        )
    return tuple(notes)


async def _reach(
    facts: RepoFacts,
    tree: RepoTree,
    roots: dict[str, tuple[str, str]],
    own: tuple[str, str, str] | None,
    overlay: dict[str, str | None],
    commit: str,
) -> kustomize.Reach:
    """What the gated clusters pull in, in ``tree`` changed by ``overlay`` (path -> new blob
    SHA, None: removed). Kept per tree; what a file names is kept per repository by blob SHA
    (identical files, such as every cluster's copy of a tenant's sync.yaml, are one entry), so
    a new tree reads only blobs never seen, and a warm event nothing. The walk over the tree
    runs on the CPU worker, not on the event loop."""
    memo = facts.ctx.services.caches.derived
    key = ("kustomize-reach", facts.repo, tree.tree_sha, tuple(roots), own)
    if not overlay:
        hit = memo.get(key)
        if isinstance(hit, kustomize.Reach):
            return hit
    view: Mapping[str, str] = tree.blobs
    if overlay:
        changed = dict(tree.blobs)
        for path, sha in overlay.items():
            if sha is None:
                changed.pop(path, None)
            else:
                changed[path] = sha
        view = changed
    index = memo.get(("kustomize-index", facts.repo))
    if not isinstance(index, dict):
        index = memo[("kustomize-index", facts.repo)] = {}
    unread: dict[str, kustomize.FileReferences] = {}  # not kept: read again next time
    paths: list[str] | None = None
    found = kustomize.Reach()
    for _ in range(kustomize.MAX_DEPTH + 2):
        paths, found = await cpu.run(_reach_round, view, paths, index, unread, roots, own)
        if not found.wanted:
            break
        blobs = {_refs_key(p, view[p]): p for p in found.wanted}
        for blob, result in (
            await _references(facts, blobs, commit if not overlay else None)
        ).items():
            if (result.problem or "").startswith(_UNREAD):
                unread.update((p, result) for p in found.wanted if _refs_key(p, view[p]) == blob)
            else:
                index[blob] = result
    if not overlay:
        memo[key] = found
    return found


def _reach_round(
    view: Mapping[str, str],
    paths: list[str] | None,
    index: Mapping[tuple[str, str], kustomize.FileReferences],
    unread: Mapping[str, kustomize.FileReferences],
    roots: dict[str, tuple[str, str]],
    own: tuple[str, str, str] | None,
) -> tuple[list[str], kustomize.Reach]:
    """One round of :func:`kustomize.reach` over ``view`` with what is known (CPU worker)."""
    if paths is None:
        paths = sorted(view)

    def lookup(path: str) -> kustomize.FileReferences | None:
        hit = unread.get(path)
        if hit is not None:
            return hit
        sha = view.get(path)
        return index.get(_refs_key(path, sha)) if sha is not None else None

    return paths, kustomize.reach(paths, lookup, roots, own)


def _refs_key(path: str, sha: str) -> tuple[str, str]:
    """What a file names depends on its content and on whether its name is a kustomization's."""
    name = path.rsplit("/", 1)[-1]
    return ("kustomization" if name in kustomize.KUSTOMIZATION_NAMES else "yaml", sha)


async def _references(
    facts: RepoFacts, blobs: dict[tuple[str, str], str], commit: str | None
) -> dict[tuple[str, str], kustomize.FileReferences]:
    """What each blob (kind, SHA -> a path it has) names. Contents come from the blob caches
    (the fleet's archive keeps every YAML under ``clusters/``), else in one archive or one call
    per blob; a blob that cannot be read is a problem (the caller does not keep it)."""
    out: dict[tuple[str, str], kustomize.FileReferences] = {}
    keys = list(blobs)
    for start in range(0, len(keys), _REFS_PER_BATCH):  # a share at a time: less held
        batch = keys[start : start + _REFS_PER_BATCH]
        try:
            contents = await facts.gateway.blobs(
                facts.repo, [sha for _, sha in batch], commit=commit, keep=commit is None
            )
        except (GatewayError, gidgethub.BadRequest) as exc:
            problem = f"{_UNREAD} ({exc})"
            out.update((k, kustomize.FileReferences(problem=problem)) for k in batch)
            continue
        pairs = [(blobs[k], contents[k[1]]) for k in batch]
        results = await cpu.run(_read_all, pairs)
        out.update(zip(batch, results, strict=True))
    return out


_UNREAD = "the file could not be read"
#: Files whose contents are held at once while their references are read.
_REFS_PER_BATCH = 2_000


def _read_all(pairs: list[tuple[str, bytes]]) -> list[kustomize.FileReferences]:
    return [kustomize.read_references(path, data) for path, data in pairs]


# --- links ----------------------------------------------------------------------------------


async def link_spots(
    facts: RepoFacts,
    fleet: Fleet,
    policy: Policy,
    scope: Scope,
    files: Sequence[FileChange],
    base_head: str,
    head_sha: str,
) -> list[BlindSpot]:
    """Symlinks and submodules that reach a gated place: those the PR adds there, and those
    through which a change elsewhere shows up there."""
    changed = {c.path for c in files} | {c.previous_path for c in files if c.previous_path}
    tree = await facts.tree(base_head)
    spots: list[BlindSpot] = []
    head: RepoTree | None = None
    if scope.needs_gate or scope.every_gate:
        # Only a PR that needs a gate is worth its head's tree (a dev bump never is; a PR the
        # bot made has its tree cached already).
        try:
            head = await facts.tree(head_sha)
        except (GatewayError, gidgethub.BadRequest) as exc:
            reason = f"the files of the pull request's head could not be listed ({exc})"
            return [BlindSpot("incomplete", reason)]
        tree = head  # the links as they will be after the merge
        for path in sorted(changed):
            if path in head.submodules and _gated_place(path, fleet, policy):
                spots.append(
                    BlindSpot(
                        "link",
                        f"`{path}` is a submodule (another repository's commit "
                        f"{head.submodules[path][:7]}): the bot does not judge content that "
                        "lives elsewhere",
                        path,
                    )
                )
    links = dict(tree.links)
    if not links:
        return spots
    if len(links) > MAX_LINKS:
        reason = (
            f"the repository holds {len(links)} symlinks; the bot follows at most {MAX_LINKS}, "
            "so it cannot tell where this change shows up"
        )
        return [*spots, BlindSpot("link", reason)]
    blobs = await facts.gateway.blobs(facts.repo, links.values())
    targets = {path: link_target(path, blobs[sha]) for path, sha in links.items()}
    added = changed & set(head.links) if head is not None else set()
    for path in sorted(added):
        if _gated_place(path, fleet, policy):
            spots.append(
                BlindSpot(
                    "link",
                    f"`{path}` is a symlink to `{targets[path] or 'outside the repository'}`: "
                    "the bot does not judge content it would have to follow elsewhere",
                    path,
                )
            )
    for seen, link, target in through_links(changed, targets):
        if _gated_place(seen, fleet, policy):
            spots.append(
                BlindSpot(
                    "link",
                    f"`{seen}` changes too: `{link}` is a symlink to `{target}`, which this pull "
                    "request changes, so the gate cannot judge it where it shows up",
                    seen,
                )
            )
    return spots


def _gated_place(path: str, fleet: Fleet, policy: Policy) -> bool:
    """Does a change at ``path`` need a gate (a gated or unknown environment, the policy, a
    file outside clusters/ that is not ``ungated``)?"""
    loc = fleet.locate(path)
    if loc is None:
        return not policy.is_ungated(path)
    env = policy.environment(loc.environment) if loc.environment is not None else None
    return env is None or env.gated


# --- content --------------------------------------------------------------------------------


async def content_spots(
    ctx: Context,
    facts: RepoFacts,
    fleet: Fleet,
    policy: Policy,
    scope: Scope,
    files: Sequence[FileChange],
    base_head: str,
) -> list[BlindSpot]:
    """What lineage could not judge among the changed files of environments with an upstream:
    unreadable files, untraceable values and pins, providers outside a tenant's input."""
    traced = {e.name for e in policy.environments if e.upstream is not None}
    spots: list[BlindSpot] = []
    inputs = set()
    for item in scope.inputs:
        if item.environment not in traced or item.sha is None or item.status == "removed":
            continue
        inputs.add(item.path)
        new = await _input(facts, item.path, item.sha)
        if isinstance(new, BlindSpot):
            spots.append(new)
            continue
        old = await facts.tenant_input(base_head, item.path)
        _, untraceable = value_changes(
            item.cluster,
            item.tenant,
            item.path,
            old if isinstance(old, TenantInput) else None,
            new,
            policy.promote_keys,
        )
        spots += untraceable
    own = _own_repository(ctx, facts.repo)
    for change in files:
        loc = fleet.locate(change.path)
        if loc is None or loc.environment not in traced or change.path in inputs:
            continue
        if change.sha is None or change.status == "removed":
            continue
        if not change.path.endswith(sources.YAML):
            continue
        data = await _blob(facts, change.path, change.sha)
        if isinstance(data, BlindSpot):
            spots.append(data)
            continue
        spots += await _file_spots(facts, change, loc.cluster, data, base_head, own)
    spots += await _pulled_in_spots(facts, scope, files, traced, inputs)
    return spots


async def _pulled_in_spots(
    facts: RepoFacts,
    scope: Scope,
    files: Sequence[FileChange],
    traced: set[str],
    inputs: set[str],
) -> list[BlindSpot]:
    """Changed YAML that an environment with an upstream pulls in from another cluster's
    directory: its tenant inputs are traced there (:func:`with_pulled_in`); a Flux source or a
    provider document anywhere else in it cannot be traced where it lands."""
    by_path = {c.path: c for c in files if c.sha is not None and c.status != "removed"}
    spots: list[BlindSpot] = []
    done: set[str] = set()
    for item in scope.pulled_in:
        change = by_path.get(item.path)
        if item.environment not in traced or change is None or item.path in done:
            continue
        if item.path in inputs or not item.path.endswith(sources.YAML):
            continue
        if any(i.path == item.path for i in scope.inputs):
            continue  # a tenant input: traced in every environment it reaches
        done.add(item.path)
        data = await _blob(facts, item.path, str(change.sha))
        if isinstance(data, BlindSpot):
            spots.append(data)
        elif sources.is_source_file(data) or may_hold(data, RSIP_KIND.encode()):
            spots.append(
                BlindSpot(
                    "untraceable",
                    f"`{item.path}` holds Flux sources or input providers and reaches "
                    f"{item.environment} through `{item.via}`: lineage traces them only in "
                    "their own cluster's place, so it cannot vouch for them there",
                    item.path,
                )
            )
    return spots


async def _input(facts: RepoFacts, path: str, sha: str) -> TenantInput | BlindSpot:
    try:
        parsed = await facts.input_by_blob(path, sha)
    except gidgethub.BadRequest as exc:
        return _no_content(path, exc)
    if isinstance(parsed, InputError):
        return BlindSpot(
            "unreadable", f"`{path}` cannot be read: {parsed.message}", path, parsed.line
        )
    return parsed


async def _blob(facts: RepoFacts, path: str, sha: str) -> bytes | BlindSpot:
    try:
        data: bytes = await facts.gateway.blob(facts.repo, sha)
    except gidgethub.BadRequest as exc:
        return _no_content(path, exc)
    return data


def _no_content(path: str, exc: Exception) -> BlindSpot:
    return BlindSpot(
        "unreadable",
        f"`{path}` has no content GitHub can give (a submodule?): {exc}",
        path,
    )


async def _file_spots(
    facts: RepoFacts,
    change: FileChange,
    cluster: str,
    data: bytes,
    base_head: str,
    own: tuple[str, str, str] | None,
) -> list[BlindSpot]:
    """A changed YAML file of a traced environment: its Flux sources must be readable and
    pinned by a tag; a provider document belongs in a tenant's input.yaml."""
    path, sha = change.path, str(change.sha)
    spots: list[BlindSpot] = []
    if sources.is_source_file(data):
        try:
            new = {s.id: s for s in read_sources(path, cluster, data)}
        except InputError as exc:
            return [
                BlindSpot("unreadable", f"`{path}` cannot be read: {exc.message}", path, exc.line)
            ]
        old = sources.sources_in(path, cluster, await facts.file(base_head, path))
        for source, reason in sources.untraceable_moves(old, new, own):
            spots.append(BlindSpot("untraceable", f"`{path}`: {reason}", path, source.line))
    if may_hold(data, RSIP_KIND.encode()):
        found = await facts.parsed_blob(
            ("providers", path, sha), sha, lambda blob: provider_lines(path, blob)
        )
        if isinstance(found, InputError):
            spots.append(
                BlindSpot(
                    "unreadable", f"`{path}` cannot be read: {found.message}", path, found.line
                )
            )
        elif isinstance(found, tuple) and found:
            spots.append(
                BlindSpot(
                    "unknown",
                    f"`{path}` holds a ResourceSetInputProvider, but lineage traces values only "
                    "in a tenant's `clusters/<cluster>/tenants/<tenant>/input.yaml`",
                    path,
                    found[0],
                )
            )
    return spots


def _own_repository(ctx: Context, repo: str) -> tuple[str, str, str] | None:
    """(host, owner, name) of the fleet repository, as a Flux source URL would name it."""
    host = urlsplit(ctx.settings.github_url).hostname
    owner, _, name = repo.partition("/")
    return (host, owner, name) if host and name else None
