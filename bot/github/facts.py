"""Facts about one repository, fetched lazily and memoised (policy-bot's "pull context").

Handlers ask for what they need (the default branch's head, its tree, the policy, the fleet, a
file, the history of a value) and each fact costs at most one round of API calls per delivery;
immutable facts (anything keyed by a SHA) are reused across deliveries.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import gidgethub

from bot.concurrency import cpu
from bot.fleet.inputs import InputError, TenantInput, read_input
from bot.fleet.layout import Fleet, build_fleet
from bot.fleet.policy import POLICY_PATH, Policy, PolicyError, parse_policy
from bot.fleet.yamlsafe import FileProblem
from bot.github import objectstore
from bot.github.context import Context
from bot.github.gateway import GatewayError, RepoTree
from bot.rules.lineage import ValueAt

#: How far back the history of one upstream file is read when looking for evidence.
HISTORY_LIMIT = 200
#: Fleets (the layout of a tree) kept per repository: the newest tree's, as nearly every
#: delivery asks for that one (a PR that adds paths makes its own, rebuilt when asked again).
FLEETS_PER_REPO = 1


class NotAFleetRepo(Exception):
    """The repository has no .github/promotion.yml on its default branch."""


class RepoFacts:
    def __init__(self, ctx: Context, repo: str, *, default_branch: str | None = None) -> None:
        self.ctx = ctx
        self.repo = repo
        self._default_branch = default_branch
        self._heads: dict[str, str | None] = {}
        self._trees: dict[str, RepoTree] = {}
        #: Mutable facts read once per delivery (a PR's comments, the open freeze issues).
        self.memo: dict[tuple[Any, ...], Any] = {}
        # (path, commit) -> (limit read, commits): a history at a commit never changes, and
        # the lineage check and the application changes both read the upstream one
        self._histories: dict[tuple[str, str], tuple[int, list[dict[str, Any]]]] = {}
        self._lock = asyncio.Lock()

    @property
    def known_default_branch(self) -> str | None:
        """The default branch if it is already known (from the payload), without a call."""
        return self._default_branch

    @property
    def gateway(self) -> Any:
        return self.ctx.gateway

    @property
    def owner(self) -> str:
        return self.repo.split("/", 1)[0]

    async def default_branch(self) -> str:
        if self._default_branch is None:
            data = await self.ctx.gateway.repository(self.repo)
            self._default_branch = str(data.get("default_branch") or "main")
        return self._default_branch

    async def head(self, branch: str | None = None) -> str:
        """The commit a branch (default: the default branch) points at now."""
        name = branch or await self.default_branch()
        if name not in self._heads:
            self._heads[name] = await self.ctx.gateway.branch_sha(self.repo, name)
        sha = self._heads[name]
        if sha is None:
            raise GatewayError(f"branch {name} of {self.repo} does not exist")
        return sha

    def seed_head(self, branch: str, sha: str) -> None:
        """A head known from the payload (a push's ``after``) saves a call."""
        self._heads[branch] = sha

    def forget_head(self, branch: str) -> None:
        self._heads.pop(branch, None)

    async def tree(self, commit: str) -> RepoTree:
        if commit not in self._trees:
            self._trees[commit] = await self.ctx.gateway.tree(self.repo, commit)
        return self._trees[commit]

    async def file(self, commit: str, path: str) -> bytes | None:
        tree = await self.tree(commit)
        return await self.ctx.gateway.file(self.repo, tree, path)

    async def files(self, commit: str, paths: Iterable[str]) -> dict[str, bytes]:
        tree = await self.tree(commit)
        wanted = {p: tree.blobs[p] for p in paths if p in tree.blobs}
        contents = await self.ctx.gateway.blobs(self.repo, wanted.values(), commit=commit)
        return {p: contents[sha] for p, sha in wanted.items()}

    async def policy(self, commit: str) -> Policy:
        """The policy at a commit; NotAFleetRepo without the file, PolicyError when invalid."""
        tree = await self.tree(commit)
        sha = tree.blobs.get(POLICY_PATH)
        if sha is None:
            raise NotAFleetRepo(f"{self.repo} has no {POLICY_PATH}")
        if ("policy", sha) not in self.ctx.services.caches.parsed:
            await self.ctx.gateway.first_read(self.repo, tree, sha)
        hit = await self._parsed(("policy", sha), sha, lambda data: parse_policy(data, POLICY_PATH))
        if isinstance(hit, PolicyError):
            raise hit
        assert isinstance(hit, Policy)
        return hit

    async def fleet(self, commit: str, policy: Policy, extra_paths: Iterable[str] = ()) -> Fleet:
        """The fleet at ``commit``, with ``extra_paths`` (files a PR adds) counted in.

        Built once per tree and kept for the newest few trees of the repository only: a
        fleet holds every input path (tens of MB at 100,000 inputs), and new trees replace
        old ones. Extra paths already in the tree change nothing, so they share the entry.
        """
        tree = await self.tree(commit)
        extra = tuple(sorted({p for p in extra_paths if p not in tree.blobs}))
        derived = self.ctx.services.caches.derived
        recent = derived.get(("fleets", self.repo))
        if not isinstance(recent, list):
            recent = []
            derived[("fleets", self.repo)] = recent
        for tree_sha, extras, known in recent:
            if tree_sha == tree.tree_sha and extras == extra and known.policy is policy:
                assert isinstance(known, Fleet)
                return known
        fleet = build_fleet([*tree.blobs.keys(), *extra], policy)
        recent.insert(0, (tree.tree_sha, extra, fleet))
        del recent[FLEETS_PER_REPO:]
        return fleet

    async def tenant_input(self, commit: str, path: str) -> TenantInput | InputError | None:
        """A parsed input file at a commit (parsed once per blob), None when absent."""
        tree = await self.tree(commit)
        sha = tree.blobs.get(path)
        if sha is None:
            return None
        return await self.input_by_blob(path, sha)

    async def input_by_blob(self, path: str, sha: str) -> TenantInput | InputError:
        hit = await self._parsed(("input", path, sha), sha, lambda data: read_input(path, data))
        assert isinstance(hit, TenantInput | InputError)
        return hit

    async def parsed_blob(
        self, key: tuple[str, ...], sha: str, parse: Callable[[bytes], object]
    ) -> object:
        """``parse(blob)`` remembered by ``key`` (which must name the SHA) for the life of the
        process; a :class:`FileProblem` is the result, not raised."""
        return await self._parsed(key, sha, parse)

    async def _parsed(
        self, key: tuple[str, ...], sha: str, parse: Callable[[bytes], object]
    ) -> object:
        """A blob parsed once for the life of the process (blobs never change); a located
        parse error is remembered as the result too, so a broken file is not read again."""
        parsed = self.ctx.services.caches.parsed
        if key in parsed:
            hit: object = parsed[key]
            return hit
        data = await self.ctx.gateway.blob(self.repo, sha)
        try:
            # YAML parsing is the CPU-heavy part of the bot: in a thread, so that webhook
            # acknowledgements are answered meanwhile.
            result = await cpu.run(parse, data)
        except FileProblem as exc:
            result = exc
        parsed[key] = result
        return result

    async def images(
        self, commit: str, paths: Sequence[str], *, budget: Callable[[int], int]
    ) -> tuple[dict[str, Image], int]:
        """(image, problem) of each input file at ``commit`` (problem: why it cannot be read),
        and how many were left unread.

        Kept compactly by path and blob SHA, in memory and on disk, so a fleet-wide view (the
        dashboard) parses each file once, ever. What is not known yet is parsed in batches from
        the blob cache; when more than a few dozen contents are missing, the commit's archive
        brings them in one call. Only when no archive can be had are blobs read one by one,
        ``budget(n)`` of ``n`` now (the rest are left unread for later).
        """
        tree = await self.tree(commit)
        gateway = self.ctx.gateway
        cache = self.ctx.services.caches.images
        store = self.ctx.services.objects.store
        out: dict[str, Image] = {}
        shas: dict[str, str] = {}
        for path in paths:
            sha = tree.blobs.get(path)
            if sha is None:
                out[path] = (None, "absent")
                continue
            hit = cache.get((path, sha))
            if hit is None:
                shas[path] = sha
            else:
                out[path] = hit
        pending = list(shas.items())
        for start in range(0, len(pending), IMAGES_PER_READ):  # a share at a time: less held
            share = pending[start : start + IMAGES_PER_READ]
            stored = await store.get(objectstore.IMAGE, [_image_key(p, s) for p, s in share])
            decoded = await cpu.run(_images_from_json, stored) if stored else {}
            for path, sha in share:
                value = decoded.get(_image_key(path, sha))
                if value is not None:
                    out[path] = cache[(path, sha)] = value
                    del shas[path]
        if not shas:
            return out, 0
        available = await gateway.available_blobs(self.repo, commit, shas.values())
        missing = [p for p, sha in shas.items() if sha not in available]
        allowed = budget(len(missing)) if missing else 0
        todo = [p for p, sha in shas.items() if sha in available] + missing[:allowed]
        parsed = self.ctx.services.caches.parsed
        for start in range(0, len(todo), IMAGES_PER_BATCH):
            batch = todo[start : start + IMAGES_PER_BATCH]
            contents = await gateway.blobs(self.repo, [shas[p] for p in batch], keep=False)
            known = [parsed.get(("input", p, shas[p])) for p in batch]
            values = await cpu.run(
                _images_of, [(p, contents[shas[p]], k) for p, k in zip(batch, known, strict=True)]
            )
            for path, value in zip(batch, values, strict=True):
                out[path] = cache[(path, shas[path])] = value
            store.put(
                objectstore.IMAGE,
                (
                    (_image_key(p, shas[p]), _image_json(v))
                    for p, v in zip(batch, values, strict=True)
                ),
            )
        return out, len(missing) - allowed

    # --- history ----------------------------------------------------------------------------

    async def value_history(
        self,
        path: str,
        head: str,
        extract: Callable[[str, bytes], str | None],
        *,
        enough: Callable[[list[ValueAt]], bool] | None = None,
        limit: int = HISTORY_LIMIT,
    ) -> list[ValueAt]:
        """The value in ``path`` at each commit that touched it, newest first.

        Reading stops early once ``enough(history_so_far)`` is true: evidence is usually near
        the top, and each older commit costs a call the first time (then it is cached).
        """
        commits = await self.path_history(path, head, limit=limit)
        out: list[ValueAt] = []
        for commit in commits:
            sha = str(commit["sha"])
            meta = commit.get("commit") or {}
            stamp = (meta.get("committer") or {}).get("date") or (meta.get("author") or {}).get(
                "date"
            )
            date = _parse_date(str(stamp)) if stamp else datetime.fromtimestamp(0, UTC)
            value = await self._value_at(path, sha, extract)
            out.append(ValueAt(sha, str(commit.get("html_url") or ""), date, value))
            if enough is not None and enough(out):
                break
        return out

    async def path_history(
        self, path: str, head: str, *, limit: int = HISTORY_LIMIT
    ) -> list[dict[str, Any]]:
        """Commits that touched ``path`` up to ``head`` (a SHA), newest first, as GitHub lists
        them (messages included); read once per delivery however many ask."""
        known = self._histories.get((path, head))
        if known is not None and (known[0] >= limit or len(known[1]) < known[0]):
            return known[1][:limit]
        commits = await self.ctx.gateway.path_history(self.repo, path, sha=head, limit=limit)
        self._histories[(path, head)] = (limit, commits)
        return commits

    async def _value_at(
        self, path: str, commit: str, extract: Callable[[str, bytes], str | None]
    ) -> str | None:
        key = ("value-at", self.repo, path, commit, getattr(extract, "__name__", ""))
        derived = self.ctx.services.caches.derived
        if key in derived:
            cached: str | None = derived[key]
            return cached
        value: str | None
        # The file's blob at that commit is remembered apart from what was extracted from it:
        # another value of the same file (a second promoteKeys entry) then costs no call.
        blob_key = ("blob-at", self.repo, path, commit)
        known = derived.get(blob_key)
        if isinstance(known, str):
            content: bytes | None = await self.ctx.gateway.blob(self.repo, known)
        elif blob_key in derived:
            content = None  # absent at that commit (or not a file)
        else:
            try:
                data = await self.ctx.gateway.get(
                    f"/repos/{self.repo}/contents/{quote(path)}?ref={commit}"
                )
            except gidgethub.BadRequest as exc:
                if exc.status_code != 404:
                    raise
                data = None
            content = await self._content_of(data) if data is not None else None
            sha = data.get("sha") if isinstance(data, dict) and content is not None else None
            derived[blob_key] = sha if isinstance(sha, str) else None
        value = extract(path, content) if content is not None else None
        derived[key] = value
        return value

    async def _content_of(self, data: Any) -> bytes | None:
        if not isinstance(data, dict) or data.get("type") != "file":
            return None
        sha = str(data.get("sha") or "")
        cached = self.ctx.services.objects.blobs.get(sha) if sha else None
        if cached is not None:
            return cached
        if data.get("encoding") == "base64" and data.get("content") is not None:
            import base64

            content = base64.b64decode(str(data["content"]))
            if sha:
                self.ctx.services.objects.blobs[sha] = content
            return content
        if sha:  # larger than 1 MB: the contents API leaves the content out
            blob: bytes = await self.ctx.gateway.blob(self.repo, sha)
            return blob
        return None

    async def branch_commits_between(
        self, since: datetime, until: datetime | None, *, limit: int = 100
    ) -> list[str]:
        """SHAs of default-branch commits in [since, until): where a Flux status may sit."""
        branch = await self.default_branch()
        url = f"/repos/{self.repo}/commits?sha={quote(branch)}&since={_iso(since)}&per_page=100"
        if until is not None:
            url += f"&until={_iso(until)}"
        commits = await self.ctx.gateway.collect(url, limit=limit)
        return [str(c["sha"]) for c in commits]


#: (image, problem) of an input file: what the dashboard shows of it.
Image = tuple[str | None, str | None]
#: Input files parsed per job on the CPU worker (about a millisecond each).
IMAGES_PER_BATCH = 200
#: Images read back from disk per query.
IMAGES_PER_READ = 5_000


def _images_of(items: Sequence[tuple[str, bytes, object]]) -> list[Image]:
    """(image, problem) of each (path, content, parse already known or None)."""
    out: list[Image] = []
    for path, data, known in items:
        if known is None:
            try:
                known = read_input(path, data)
            except InputError as exc:
                known = exc
        if isinstance(known, InputError):
            out.append((None, known.message))
        else:
            assert isinstance(known, TenantInput)
            out.append((known.image, None))
    return out


def _image_key(path: str, sha: str) -> str:
    return f"{sha}:{path}"


def _image_json(value: Image) -> bytes:
    return json.dumps(list(value)).encode()


def _images_from_json(stored: dict[str, bytes]) -> dict[str, Image]:
    out: dict[str, Image] = {}
    for key, raw in stored.items():
        value = _image_from_json(raw)
        if value is not None:
            out[key] = value
    return out


def _image_from_json(raw: bytes) -> Image | None:
    try:
        image, problem = json.loads(raw)
    except (ValueError, TypeError):
        return None
    if not all(v is None or isinstance(v, str) for v in (image, problem)):
        return None
    return image, problem


def image_of(path: str, data: bytes) -> str | None:
    """The image value of an input file's content, None when absent or unreadable."""
    try:
        return read_input(path, data).image
    except InputError:
        return None


def _parse_date(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _iso(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")
