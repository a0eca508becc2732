"""Image published -> one dev bump PR per fleet repo -> merged by the bot.

Events: ``registry_package`` / ``package`` ``published`` for container packages (GitHub
Container Registry), and ``repository_dispatch`` ``image-published`` that any CI can send for
any registry. The event fans out to every fleet repo of the installation that runs the image.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any
from urllib.parse import urlsplit

from gidgethub import routing, sansio

from bot.concurrency import cpu
from bot.fleet.images import ImageRef, ImageRefError, parse_image
from bot.github import discovery
from bot.github.appcommits import forget_misses
from bot.github.context import Context
from bot.github.facts import RepoFacts
from bot.handlers.payload import PayloadError
from bot.handlers.payload import field as pfield
from bot.handlers.proposals import Proposal, propose, target
from bot.rules.bump import (
    PublishedImage,
    bump_branch,
    bump_prefix,
    legacy_bump_prefix,
    plan_bump,
)
from bot.rules.provenance import BuiltFrom, parse_repository, parse_revision, repository_from_url
from bot.texts import prtext

router = routing.Router()

DISPATCH_ACTION = "image-published"
CONTAINER_TYPES = frozenset({"container", "docker"})


# --- reading the events ---------------------------------------------------------------------


def image_from_package(data: dict[str, Any], key: str) -> PublishedImage | None:
    """A GHCR image from a ``registry_package`` / ``package`` payload; None when not a tagged
    container image (npm packages, untagged pushes)."""
    package = pfield(data, key, dict)
    kind = str(package.get("package_type") or "").lower()
    ecosystem = str(package.get("ecosystem") or "").lower()
    if kind not in CONTAINER_TYPES and ecosystem not in CONTAINER_TYPES:
        return None
    version = pfield(package, "package_version", dict)
    meta = version.get("container_metadata") or {}
    tag_info = meta.get("tag") or {}
    tag = tag_info.get("name") if isinstance(tag_info, dict) else None
    if not isinstance(tag, str) or not tag:
        return None  # an untagged push: nothing to deploy (design decision)
    owner = pfield(package, "owner.login", str)
    name = pfield(package, "name", str)
    repository = f"ghcr.io/{owner}/{name}".lower()
    digest = tag_info.get("digest") if isinstance(tag_info, dict) else None
    if not isinstance(digest, str) or not digest:
        manifest = meta.get("manifest") or {}
        digest = manifest.get("digest") if isinstance(manifest, dict) else None
    image = _checked(repository, tag, digest if isinstance(digest, str) else None)
    html = version.get("html_url") or package.get("html_url")
    return PublishedImage(
        repository=image.repository,
        tag=tag,
        digest=image.digest,
        source=f"GitHub Packages ({key} published by {_login(data.get('sender'))})",
        link=html if isinstance(html, str) else None,
        built_from=built_from_package(data, version),
    )


OCI_REVISION = "org.opencontainers.image.revision"
OCI_SOURCE = "org.opencontainers.image.source"


def built_from_package(data: dict[str, Any], version: dict[str, Any]) -> BuiltFrom | None:
    """The repository and commit a GitHub Packages version was built from, as far as GitHub
    says: the event's ``repository`` (the package's repository) and the version's
    ``target_oid`` when that is a commit. ``package`` events carry the commit there;
    ``registry_package`` events carry the image digest there, and the commit only in the
    image's OCI labels, whose source label then names the repository (on the same host)."""
    repo = data.get("repository") if isinstance(data.get("repository"), dict) else {}
    assert isinstance(repo, dict)
    repository = parse_repository(repo.get("full_name"))
    if repository is None:
        return None
    revision = parse_revision(version.get("target_oid"))
    if revision is not None:
        return BuiltFrom(repository, revision)
    meta = version.get("container_metadata") or {}
    labels = meta.get("labels") if isinstance(meta, dict) else None
    if not isinstance(labels, dict):
        return BuiltFrom(repository, None)
    every = labels.get("all_labels") if isinstance(labels.get("all_labels"), dict) else {}
    assert isinstance(every, dict)
    revision = parse_revision(every.get(OCI_REVISION) or labels.get("revision"))
    host = urlsplit(str(repo.get("html_url") or "")).hostname
    labelled = repository_from_url(every.get(OCI_SOURCE) or labels.get("source"), host or "")
    if revision is None:
        return BuiltFrom(repository, None)
    return BuiltFrom(labelled or repository, revision)


def image_from_dispatch(data: dict[str, Any]) -> PublishedImage:
    """The image of a ``repository_dispatch`` ``image-published``; PayloadError explains what
    is wrong with ``client_payload`` so the sender can fix its CI step."""
    payload = data.get("client_payload")
    if not isinstance(payload, dict):
        raise PayloadError("client_payload must be an object with image and tag")
    text = payload.get("image")
    if not isinstance(text, str) or not text:
        raise PayloadError('client_payload.image is missing (e.g. "registry.acme.com/payment")')
    try:
        ref = parse_image(text)
    except ImageRefError as exc:
        raise PayloadError(f"client_payload.image: {exc}") from None
    tag = payload.get("tag", ref.tag)
    if tag is None:
        raise PayloadError("client_payload.tag is missing (or give image as repository:tag)")
    if not isinstance(tag, str):
        raise PayloadError("client_payload.tag must be a string")
    if ref.tag is not None and tag != ref.tag:
        raise PayloadError(f"client_payload.image says tag {ref.tag} but tag says {tag}")
    digest = payload.get("digest", ref.digest)
    if digest is not None and not isinstance(digest, str):
        raise PayloadError("client_payload.digest must be a string such as sha256:...")
    image = _checked(ref.repository, tag, digest or None)
    built_from = built_from_dispatch(payload)
    sender = _login(data.get("sender"))
    repo = (data.get("repository") or {}).get("full_name", "?")
    return PublishedImage(
        repository=image.repository,
        tag=tag,
        digest=image.digest,
        source=f"repository_dispatch to {repo} by {sender}",
        built_from=built_from,
    )


def built_from_dispatch(payload: dict[str, Any]) -> BuiltFrom | None:
    """The optional ``source`` (``owner/repo``) and ``revision`` (a full commit SHA) of an
    ``image-published`` payload; PayloadError for a value that is there but not valid, so a
    CI step with a typo hears about it instead of bumping without the link."""
    source, revision = payload.get("source"), payload.get("revision")
    repository = None
    if source is not None:
        repository = parse_repository(source)
        if repository is None:
            raise PayloadError(
                "client_payload.source must be the GitHub repository the image was built from, "
                f'as "owner/repo" (e.g. "acme/payment-service"), not {_shown(source)}'
            )
    commit = None
    if revision is not None:
        commit = parse_revision(revision)
        if commit is None:
            raise PayloadError(
                "client_payload.revision must be the full 40-character SHA of the commit the "
                f"image was built from (e.g. ${{{{ github.sha }}}}), not {_shown(revision)}"
            )
        if repository is None:
            raise PayloadError(
                "client_payload.revision needs client_payload.source: the repository that "
                "commit is in"
            )
    return BuiltFrom(repository, commit) if repository is not None else None


def _shown(value: Any) -> str:
    """A payload value in an error message: short, one line, its type when not a string."""
    if not isinstance(value, str):
        return f"a {type(value).__name__}"
    text = " ".join(value.split())
    return repr(text if len(text) <= 80 else text[:77] + "...")


def _login(user: Any) -> str:
    login = user.get("login") if isinstance(user, dict) else None
    return login if isinstance(login, str) else "?"


def _checked(repository: str, tag: str, digest: str | None) -> ImageRef:
    try:
        return parse_image(repository).with_version(tag, digest)
    except ImageRefError as exc:
        raise PayloadError(str(exc)) from None


# --- events ---------------------------------------------------------------------------------


@router.register("registry_package", action="published")
async def on_registry_package(event: sansio.Event, ctx: Context) -> None:
    image = image_from_package(event.data, "registry_package")
    if image is not None:
        await fan_out(ctx, image)


@router.register("package", action="published")
async def on_package(event: sansio.Event, ctx: Context) -> None:
    image = image_from_package(event.data, "package")
    if image is not None:
        await fan_out(ctx, image)


@router.register("repository_dispatch", action=DISPATCH_ACTION)
async def on_dispatch(event: sansio.Event, ctx: Context) -> None:
    await fan_out(ctx, image_from_dispatch(event.data))


async def fan_out(ctx: Context, image: PublishedImage) -> None:
    """Bump every fleet repo of the installation, each under its own repository lock."""
    repos = await discovery.fleet_repos(ctx)
    ctx.log.info("%s published; %d fleet repo(s) to look at", image.reference, len(repos))
    for repo, branch in repos.items():
        async with ctx.lock(repo):
            await bump(ctx, RepoFacts(ctx, repo, default_branch=branch), image)


# --- the bump -------------------------------------------------------------------------------


async def bump(ctx: Context, facts: RepoFacts, image: PublishedImage) -> int | None:
    """Open (or find) the bump PR for ``image`` in one fleet repo; its number, or None.

    The repository's open PRs are read while its tree is: the two reads do not depend on
    each other, and the PR opens one round trip sooner (the list is an ETag-revalidated read,
    free of rate limit when unchanged, so a bump that turns out not to be needed loses little).
    """
    pulls = asyncio.ensure_future(ctx.gateway.open_pulls(facts.repo))
    try:
        return await _bump(ctx, facts, image, pulls)
    finally:
        if pulls.done():
            if not pulls.cancelled():
                pulls.exception()  # retrieved: a failure here was raised where it was awaited
        else:
            pulls.cancel()


async def _bump(
    ctx: Context,
    facts: RepoFacts,
    image: PublishedImage,
    pulls: Awaitable[list[dict[str, Any]]],
) -> int | None:
    repo = facts.repo
    where = await target(ctx, facts)
    if where is None:
        return None
    base, head, fleet = where.base, where.head, where.fleet
    env = where.policy.first.name
    paths = [p for (c, _t), p in fleet.inputs.items() if fleet.environment_of(c) == env]
    files = await facts.files(head, paths)
    plan = await cpu.run(plan_bump, fleet, env, files, image)
    for skip in plan.skipped:
        ctx.log.info("%s: %s/%s left out: %s", repo, skip.cluster, skip.tenant, skip.reason)
    if plan.empty:
        if plan.moves or plan.current:
            ctx.log.info("%s: %s already runs %s in %s", repo, image.repository, image.tag, env)
        return None

    async def still_needed(newer: str) -> bool:
        again = await facts.files(newer, paths)
        plan_now = await cpu.run(plan_bump, fleet, env, again, image)
        return not plan_now.empty

    if image.built_from is not None:
        forget_misses(ctx, repo, image.reference)  # this bump records where it came from
    proposal = Proposal(
        still_needed=still_needed,
        branch=bump_branch(image.repository, image.tag),
        prefix=bump_prefix(image.repository),
        legacy_prefix=legacy_bump_prefix(image.repository),
        legacy_image=image.repository,
        tag=image.tag,
        changes=plan.changes,
        title=prtext.bump_title(plan),
        body=prtext.bump_body(plan),
        message=prtext.bump_commit_message(plan),
    )
    return await propose(ctx, facts, proposal, base=base, head=head, open_pulls=pulls)
