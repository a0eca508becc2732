"""REST routes for apps, installations, repositories, contents, git data, commits and users."""

from __future__ import annotations

import base64
import binascii
import re
import time
from typing import Any

from aiohttp import web

from bot.fake.gitobjects import (
    ALL_MODES,
    BLOB_MODES,
    MODE_COMMIT,
    MODE_LINK,
    MODE_TREE,
    ChangeValue,
    GitError,
)
from bot.fake.server import IDENTITY, Api, decode_content, json_response, parse_time, read_json
from bot.fake.shapes import b64_wrapped
from bot.fake.state import (
    LEVELS,
    ApiError,
    InstallationToken,
    Repo,
    iso,
    new_token,
    not_found,
    validation_failed,
)

DOC_REFS = "https://docs.github.com/rest/git/refs"
DOC_TREES = "https://docs.github.com/rest/git/trees#create-a-tree"
DOC_CONTENTS = "https://docs.github.com/rest/repos/contents#create-or-update-file-contents"


class CoreRoutes:
    """Handlers; each reads the authorised repository from the request when it has one."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.world = api.world
        self.state = api.state
        self.shapes = api.shapes

    def register(self) -> None:
        """Declare the routes (specific before catch-all patterns)."""
        add = self.api.add
        repo = "/repos/{owner}/{repo}"
        add("GET", "/app", self.get_app, auth="jwt")
        add("GET", "/app/installations", self.list_installations, auth="jwt")
        add("GET", "/app/installations/{id}", self.get_installation, auth="jwt")
        add("POST", "/app/installations/{id}/access_tokens", self.create_token, auth="jwt")
        add("GET", repo + "/installation", self.repo_installation, auth="jwt")
        add("GET", "/orgs/{org}/installation", self.org_installation, auth="jwt")
        add("GET", "/users/{user}/installation", self.user_installation, auth="jwt")
        add("GET", "/installation/repositories", self.installation_repos, auth="token")
        add("GET", "/rate_limit", self.rate_limit)
        add("GET", "/users/{user}", self.get_user)
        add("GET", repo, self.get_repo, perm=("metadata", "read"))
        add("GET", repo + "/contents", self.get_contents, perm=("contents", "read"))
        add("GET", repo + "/contents/{path:.*}", self.get_contents, perm=("contents", "read"))
        add("PUT", repo + "/contents/{path:.+}", self.put_contents, perm=("contents", "write"))
        add("GET", repo + "/git/ref/{ref:.+}", self.get_ref, perm=("contents", "read"))
        add(
            "GET",
            repo + "/git/matching-refs/{ref:.*}",
            self.matching_refs,
            perm=("contents", "read"),
        )
        add("GET", repo + "/git/refs", self.list_refs, perm=("contents", "read"))
        add("GET", repo + "/git/refs/{ref:.+}", self.list_refs, perm=("contents", "read"))
        add("POST", repo + "/git/refs", self.create_ref, perm=("contents", "write"))
        add("PATCH", repo + "/git/refs/{ref:.+}", self.update_ref, perm=("contents", "write"))
        add("DELETE", repo + "/git/refs/{ref:.+}", self.delete_ref, perm=("contents", "write"))
        add("GET", repo + "/git/trees/{sha:.+}", self.get_tree, perm=("contents", "read"))
        add("POST", repo + "/git/trees", self.create_tree, perm=("contents", "write"))
        add("POST", repo + "/git/blobs", self.create_blob, perm=("contents", "write"))
        add("GET", repo + "/git/blobs/{sha}", self.get_blob, perm=("contents", "read"))
        add("POST", repo + "/git/commits", self.create_commit, perm=("contents", "write"))
        add("GET", repo + "/git/commits/{sha}", self.get_git_commit, perm=("contents", "read"))
        add("GET", repo + "/commits", self.list_commits, perm=("contents", "read"))
        add("GET", repo + "/compare/{basehead:.+}", self.compare, perm=("contents", "read"))

    def register_catchalls(self) -> None:
        """Patterns that would shadow more specific routes (`/commits/{ref}/status`,
        `/branches/{b}/protection/...`) are registered after every other module."""
        repo = "/repos/{owner}/{repo}"
        self.api.add("GET", repo + "/commits/{ref:.+}", self.get_commit, perm=("contents", "read"))
        self.api.add(
            "GET", repo + "/branches/{branch:.+}", self.get_branch, perm=("contents", "read")
        )

    # ---- apps ------------------------------------------------------------------------------
    def jwt_app(self, request: web.Request) -> Any:
        identity = request[IDENTITY]
        return identity.app

    async def get_app(self, request: web.Request) -> web.Response:
        """`GET /app`."""
        app = self.jwt_app(request)
        out = self.shapes.app(app)
        out["installations_count"] = sum(
            1 for i in self.state.installations.values() if i.app is app
        )
        return json_response(out)

    async def list_installations(self, request: web.Request) -> web.Response:
        """`GET /app/installations` (paginated array)."""
        app = self.jwt_app(request)
        insts = [i for i in self.state.installations.values() if i.app is app]
        page, headers = self.api.paginate(request, insts)
        return json_response([self.shapes.installation(i) for i in page], headers=headers)

    def app_installation(self, request: web.Request) -> Any:
        app = self.jwt_app(request)
        try:
            inst = self.state.installations.get(int(request.match_info["id"]))
        except ValueError:
            inst = None
        if inst is None or inst.app is not app:
            raise not_found()
        return inst

    async def get_installation(self, request: web.Request) -> web.Response:
        """`GET /app/installations/{id}`."""
        return json_response(self.shapes.installation(self.app_installation(request)))

    async def create_token(self, request: web.Request) -> web.Response:
        """`POST /app/installations/{id}/access_tokens`: optionally narrowed tokens."""
        inst = self.app_installation(request)
        body = await read_json(request)
        reachable = self.state.installation_repos(inst)
        repo_ids: set[int] | None = None
        names = body.get("repositories")
        ids = body.get("repository_ids")
        if names is not None or ids is not None:
            by_name = {r.name.lower(): r for r in reachable}
            by_id = {r.id: r for r in reachable}
            chosen: set[int] = set()
            for name in names or []:
                r = by_name.get(str(name).lower())
                if r is None:
                    raise validation_failed(
                        "There is at least one repository that does not exist or is not accessible"
                        " to the parent installation."
                    )
                chosen.add(r.id)
            for rid in ids or []:
                if rid not in by_id:
                    raise validation_failed(
                        "There is at least one repository that does not exist or is not accessible"
                        " to the parent installation."
                    )
                chosen.add(rid)
            if len(chosen) > 500:
                raise validation_failed("Too many repositories: at most 500 may be listed.")
            repo_ids = chosen
        granted = dict(inst.app.permissions)
        wanted = body.get("permissions")
        if wanted is not None:
            if not isinstance(wanted, dict):
                raise validation_failed(errors=[{"field": "permissions", "code": "invalid"}])
            for name, level in wanted.items():
                if LEVELS.get(str(level), 99) > LEVELS.get(granted.get(name, "none"), 0):
                    raise validation_failed(
                        "The permissions requested are not granted to this installation."
                    )
            granted = {str(k): str(v) for k, v in wanted.items()}
        token = InstallationToken(
            token=new_token("ghs_"),
            installation=inst,
            expires_at=time.time() + self.api.settings.token_ttl,
            permissions=granted,
            repo_ids=repo_ids,
        )
        self.state.tokens[token.token] = token
        out: dict[str, Any] = {
            "token": token.token,
            "expires_at": iso(token.expires_at),
            "permissions": granted,
            "repository_selection": "selected"
            if repo_ids is not None
            else inst.repository_selection,
        }
        if repo_ids is not None:
            out["repositories"] = [self.shapes.repo(r) for r in reachable if r.id in repo_ids]
        return json_response(out, 201)

    async def repo_installation(self, request: web.Request) -> web.Response:
        """`GET /repos/{o}/{r}/installation`."""
        app = self.jwt_app(request)
        repo = self.state.repo(f"{request.match_info['owner']}/{request.match_info['repo']}")
        inst = None
        if repo is not None:
            inst = next((i for i in self.state.installations_for(repo) if i.app is app), None)
        if inst is None:
            raise not_found()
        return json_response(self.shapes.installation(inst))

    def account_installation(self, request: web.Request, login: str, kind: str) -> web.Response:
        app = self.jwt_app(request)
        account = self.state.account(login)
        inst = next(
            (
                i
                for i in self.state.installations.values()
                if i.app is app
                and i.account is account
                and (account is not None and account.type != "Organization") == (kind == "user")
            ),
            None,
        )
        if inst is None:
            raise not_found()
        return json_response(self.shapes.installation(inst))

    async def org_installation(self, request: web.Request) -> web.Response:
        """`GET /orgs/{org}/installation`."""
        return self.account_installation(request, request.match_info["org"], "org")

    async def user_installation(self, request: web.Request) -> web.Response:
        """`GET /users/{user}/installation`."""
        return self.account_installation(request, request.match_info["user"], "user")

    async def installation_repos(self, request: web.Request) -> web.Response:
        """`GET /installation/repositories`: `{total_count, repositories}` paginated."""
        identity = request[IDENTITY]
        token = identity.token
        assert token is not None
        repos = self.api.token_repos(token)
        page, headers = self.api.paginate(request, repos)
        selection = (
            "selected" if token.repo_ids is not None else token.installation.repository_selection
        )
        body = {
            "total_count": len(repos),
            "repository_selection": selection,
            "repositories": [self.shapes.repo(r) for r in page],
        }
        return json_response(body, headers=headers)

    async def rate_limit(self, request: web.Request) -> web.Response:
        """`GET /rate_limit` (does not count against the limit)."""
        identity = request[IDENTITY]
        w = self.api.rate_window(identity)
        core = {
            "limit": w.limit,
            "remaining": max(0, w.limit - w.used),
            "used": w.used,
            "reset": w.reset,
            "resource": "core",
        }
        # `search` is required in GitHub's answer; the fake keeps no search budget
        search = {"limit": 30, "remaining": 30, "used": 0, "reset": w.reset, "resource": "search"}
        return json_response({"resources": {"core": core, "search": search}, "rate": core})

    async def get_user(self, request: web.Request) -> web.Response:
        """`GET /users/{user}`."""
        account = self.state.account(request.match_info["user"])
        if account is None:
            raise not_found()
        return json_response(self.shapes.user_full(account))

    # ---- repositories and contents ---------------------------------------------------------
    async def get_repo(self, request: web.Request) -> web.Response:
        """`GET /repos/{o}/{r}` (with `permissions` for user callers)."""
        repo = self.api.repo_of(request)
        out = self.shapes.repo(repo)
        out.update(network_count=0, subscribers_count=0)  # `full-repository` only
        identity = request[IDENTITY]
        if identity.user is not None:
            role = self.state.role(repo, identity.user) or ("read" if not repo.private else None)
            order = ("read", "triage", "write", "maintain", "admin")
            idx = order.index(role) if role else -1
            out["permissions"] = {
                "admin": idx >= 4,
                "maintain": idx >= 3,
                "push": idx >= 2,
                "triage": idx >= 1,
                "pull": idx >= 0,
            }
        return json_response(out)

    async def get_contents(self, request: web.Request) -> web.StreamResponse:
        """`GET /contents/{path}`: a file (base64), a directory listing, symlink or submodule."""
        repo = self.api.repo_of(request)
        path = request.match_info.get("path", "").strip("/")
        ref = request.query.get("ref") or repo.default_branch
        sha = self.api.resolve_commit(repo, ref)
        tree = self.world.objects.commits[sha].tree
        try:
            entry = self.world.objects.lookup(tree, path)
        except GitError:
            entry = None
        if entry is None:
            raise not_found()
        store = self.world.objects
        path, entry = self.follow_link(tree, path, entry)
        if entry.mode == MODE_TREE:
            items = [
                self.shapes.content_entry(
                    repo, f"{path}/{e.name}" if path else e.name, e.mode, e.sha, ref
                )
                for e in store.tree_entries(entry.sha)
            ][:1000]
            return json_response(items)
        accept = request.headers.get("Accept", "")
        if entry.mode in BLOB_MODES and "raw" in accept:
            return web.Response(
                body=store.blobs[entry.sha], content_type="application/vnd.github.raw"
            )
        out = self.shapes.content_entry(repo, path, entry.mode, entry.sha, ref)
        if entry.mode == MODE_LINK:
            out["target"] = store.blobs[entry.sha].decode("utf-8", "replace")
        elif entry.mode == MODE_COMMIT:
            out["type"] = "submodule"
            out["submodule_git_url"] = None
        else:
            data = store.blobs[entry.sha]
            out["content"] = b64_wrapped(data) if len(data) <= 1024 * 1024 else ""
            out["encoding"] = "base64" if len(data) <= 1024 * 1024 else "none"
        return json_response(out)

    def follow_link(self, tree: str, path: str, entry: Any) -> tuple[str, Any]:
        """GitHub: "If the requested path points to a symlink, and the symlink's target is a
        normal file in the repository, then the API responds with the content of the file."
        Any other symlink (a directory, outside the repository, dangling) is answered as one."""
        store = self.world.objects
        seen = 0
        current_path, current = path, entry
        while current.mode == MODE_LINK and seen < 40:
            seen += 1
            target = store.blobs[current.sha].decode("utf-8", "replace")
            if target.startswith("/"):
                return path, entry  # absolute: outside the repository
            parts = current_path.split("/")[:-1]
            for part in target.split("/"):
                if part in ("", "."):
                    continue
                if part == "..":
                    if not parts:
                        return path, entry  # outside the repository
                    parts.pop()
                else:
                    parts.append(part)
            resolved = "/".join(parts)
            try:
                found = store.lookup(tree, resolved)
            except GitError:
                found = None
            if found is None or found.mode in (MODE_TREE, MODE_COMMIT):
                return path, entry
            current_path, current = resolved, found
        return (current_path, current) if current.mode != MODE_LINK else (path, entry)

    async def put_contents(self, request: web.Request) -> web.Response:
        """`PUT /contents/{path}`: create or update one file with GitHub's `sha` rules."""
        repo = self.api.repo_of(request)
        path = request.match_info["path"].strip("/")
        self.api.check_paths([path])
        body = await read_json(request)
        message, content = body.get("message"), body.get("content")
        if not isinstance(message, str) or not message:
            raise validation_failed(
                errors=[{"resource": "Commit", "field": "message", "code": "missing_field"}],
                doc=DOC_CONTENTS,
            )
        if not isinstance(content, str):
            raise validation_failed(
                errors=[{"resource": "Commit", "field": "content", "code": "missing_field"}],
                doc=DOC_CONTENTS,
            )
        try:
            data = base64.b64decode(content, validate=True)
        except (binascii.Error, ValueError):
            raise ApiError(
                422, "content is not valid Base64", documentation_url=DOC_CONTENTS
            ) from None
        branch = body.get("branch") or repo.default_branch
        parent = repo.branch_sha(branch)
        if parent is None:
            raise ApiError(404, f"Branch {branch} not found", documentation_url=DOC_CONTENTS)
        store = self.world.objects
        existing = store.lookup(store.commits[parent].tree, path)
        given = body.get("sha")
        if existing is not None and existing.mode in BLOB_MODES:
            if not given:
                raise ApiError(
                    422,
                    'Invalid request.\n\n"sha" wasn\'t supplied.',
                    documentation_url=DOC_CONTENTS,
                )
            if given != existing.sha:
                raise ApiError(
                    409, f"{path} does not match {given}", documentation_url=DOC_CONTENTS
                )
        actor = self.api.actor(request)
        committer = self.api.signature_from(body.get("committer"), actor, "committer")
        author = (
            self.api.signature_from(body.get("author"), actor, "author")
            if body.get("author")
            else committer
        )
        changes: dict[str, ChangeValue] = {
            path: (existing.mode if existing and existing.mode in BLOB_MODES else "100644", data)
        }
        try:
            tree = store.apply_changes(store.commits[parent].tree, changes)
        except GitError as exc:
            raise validation_failed(str(exc), doc=DOC_CONTENTS) from None
        sha = store.put_commit(tree, [parent], author, committer, message)
        if not body.get("author") and not body.get("committer"):
            store.signed.add(sha)  # GitHub signs what it commits for the caller
        self.world.set_ref(repo, f"refs/heads/{branch}", sha, pusher=actor, force=False)
        entry = store.lookup(tree, path)
        assert entry is not None
        out = {
            "content": self.shapes.content_entry(repo, path, entry.mode, entry.sha, branch),
            "commit": self.shapes.git_commit(repo, store.commits[sha]),
        }
        return json_response(out, 200 if existing is not None else 201)

    async def get_branch(self, request: web.Request) -> web.Response:
        """`GET /branches/{branch}`."""
        repo = self.api.repo_of(request)
        name = request.match_info["branch"]
        sha = repo.branch_sha(name)
        if sha is None:
            raise ApiError(
                404,
                "Branch not found",
                documentation_url="https://docs.github.com/rest/branches/branches#get-a-branch",
            )
        api = f"{self.shapes.urls.api}/repos/{repo.full_name}"
        protection = repo.protection.get(name)
        out = {
            "name": name,
            "commit": self.shapes.commit(repo, self.world.objects.commits[sha]),
            "_links": {
                "self": f"{api}/branches/{name}",
                "html": f"{self.shapes.urls.web}/{repo.full_name}/tree/{name}",
            },
            "protected": protection is not None,
            "protection": {
                "enabled": protection is not None,
                "required_status_checks": {
                    "enforcement_level": "non_admins" if protection else "off",
                    "contexts": list(protection.contexts) if protection else [],
                    "checks": [
                        {"context": c, "app_id": None}
                        for c in (protection.contexts if protection else [])
                    ],
                },
            },
            "protection_url": f"{api}/branches/{name}/protection",
        }
        return json_response(out)

    # ---- refs ------------------------------------------------------------------------------
    def ref_list(self, repo: Repo, prefix: str) -> list[str]:
        return sorted(r for r in repo.refs if r.startswith(prefix))

    async def get_ref(self, request: web.Request) -> web.Response:
        """`GET /git/ref/{ref}` (`heads/x`, `tags/x`)."""
        repo = self.api.repo_of(request)
        ref = "refs/" + request.match_info["ref"]
        if ref not in repo.refs:
            raise ApiError(404, "Not Found", documentation_url=f"{DOC_REFS}#get-a-reference")
        return json_response(self.shapes.ref(repo, ref))

    async def matching_refs(self, request: web.Request) -> web.Response:
        """`GET /git/matching-refs/{ref}`: every ref starting with the prefix."""
        repo = self.api.repo_of(request)
        refs = self.ref_list(repo, "refs/" + request.match_info["ref"])
        page, headers = self.api.paginate(request, refs)
        return json_response([self.shapes.ref(repo, r) for r in page], headers=headers)

    async def list_refs(self, request: web.Request) -> web.Response:
        """Legacy `GET /git/refs[/{ref}]`: the ref itself or a list of matches."""
        repo = self.api.repo_of(request)
        sub = request.match_info.get("ref", "")
        exact = "refs/" + sub
        if sub and exact in repo.refs:
            return json_response(self.shapes.ref(repo, exact))
        refs = self.ref_list(repo, exact.rstrip("/") + "/" if sub else "refs/")
        if not refs:
            raise not_found()
        page, headers = self.api.paginate(request, refs)
        return json_response([self.shapes.ref(repo, r) for r in page], headers=headers)

    async def create_ref(self, request: web.Request) -> web.Response:
        """`POST /git/refs` (422 "Reference already exists", "Object does not exist")."""
        repo = self.api.repo_of(request)
        body = await read_json(request)
        doc = f"{DOC_REFS}#create-a-reference"
        ref, sha = body.get("ref"), body.get("sha")
        if not isinstance(ref, str) or not isinstance(sha, str):
            raise validation_failed(
                errors=[
                    {
                        "resource": "Reference",
                        "field": "ref" if not isinstance(ref, str) else "sha",
                        "code": "missing_field",
                    }
                ],
                doc=doc,
            )
        if not ref.startswith("refs/") or ref.count("/") < 2 or not valid_ref_name(ref):
            raise ApiError(422, f"{ref} is not a valid ref name.", documentation_url=doc)
        if ref in repo.refs:
            raise ApiError(422, "Reference already exists", documentation_url=doc)
        if sha not in self.world.objects.commits:
            raise ApiError(422, "Object does not exist", documentation_url=doc)
        self.world.set_ref(repo, ref, sha, pusher=self.api.actor(request), force=False)
        out = self.shapes.ref(repo, ref)
        return json_response(out, 201, headers={"Location": out["url"]})

    async def update_ref(self, request: web.Request) -> web.Response:
        """`PATCH /git/refs/{ref}`: fast-forward only unless `force`."""
        repo = self.api.repo_of(request)
        body = await read_json(request)
        doc = f"{DOC_REFS}#update-a-reference"
        ref = "refs/" + request.match_info["ref"]
        sha = body.get("sha")
        if not isinstance(sha, str):
            raise validation_failed(
                errors=[{"resource": "Reference", "field": "sha", "code": "missing_field"}], doc=doc
            )
        if ref not in repo.refs:
            raise ApiError(422, "Reference does not exist", documentation_url=doc)
        try:
            self.world.set_ref(
                repo, ref, sha, pusher=self.api.actor(request), force=bool(body.get("force"))
            )
        except ApiError as err:
            err.documentation_url = doc
            raise
        return json_response(self.shapes.ref(repo, ref))

    async def delete_ref(self, request: web.Request) -> web.Response:
        """`DELETE /git/refs/{ref}`: 204; closes open PRs whose head it was."""
        repo = self.api.repo_of(request)
        doc = f"{DOC_REFS}#delete-a-reference"
        ref = "refs/" + request.match_info["ref"]
        if ref not in repo.refs:
            raise ApiError(422, "Reference does not exist", documentation_url=doc)
        if ref == f"refs/heads/{repo.default_branch}":
            raise ApiError(422, "Cannot delete the default branch", documentation_url=doc)
        self.world.set_ref(repo, ref, None, pusher=self.api.actor(request), force=True)
        return web.Response(status=204)

    # ---- trees, blobs, commits -------------------------------------------------------------
    async def get_tree(self, request: web.Request) -> web.Response:
        """`GET /git/trees/{sha|ref}[?recursive=1]`, truncated past the entry limit."""
        repo = self.api.repo_of(request)
        key = request.match_info["sha"]
        store = self.world.objects
        tree: str | None = key if key in store.trees else None
        if tree is None:
            commit = repo.resolve(key)
            tree = store.commits[commit].tree if commit else None
        if tree is None:
            raise not_found()
        recursive = "recursive" in request.query
        return json_response(
            self.shapes.tree(repo, tree, recursive, self.api.settings.tree_entry_limit)
        )

    async def create_tree(self, request: web.Request) -> web.Response:
        """`POST /git/trees`: entries by sha or inline content; `sha: null` deletes."""
        repo = self.api.repo_of(request)
        body = await read_json(request)
        entries = body.get("tree")
        if not isinstance(entries, list):
            raise validation_failed(
                errors=[{"resource": "Tree", "field": "tree", "code": "missing_field"}],
                doc=DOC_TREES,
            )
        store = self.world.objects
        base = body.get("base_tree")
        if base is not None and base not in store.trees:
            commit = store.commits.get(base) if isinstance(base, str) else None
            if commit is None:
                raise ApiError(
                    422, "base_tree is not a valid tree oid", documentation_url=DOC_TREES
                )
            base = commit.tree
        base_flat = store.flatten(base) if base else {}
        changes: dict[str, ChangeValue] = {}
        for i, e in enumerate(entries):
            path, value = self.tree_entry(e, i, base_flat)
            changes[path] = value
        try:
            tree = store.apply_changes(base, changes) if base else store.write_tree(changes)
        except GitError as exc:
            raise ApiError(422, f"Invalid tree info: {exc}", documentation_url=DOC_TREES) from None
        out = self.shapes.tree(repo, tree, False, self.api.settings.tree_entry_limit)
        return json_response(out, 201, headers={"Location": out["url"]})

    def tree_entry(
        self, e: Any, index: int, base_flat: dict[str, tuple[str, str]]
    ) -> tuple[str, ChangeValue]:
        """Validate one `tree[]` item into an apply_changes value."""
        store = self.world.objects

        def bad(message: str) -> ApiError:
            return ApiError(422, message, documentation_url=DOC_TREES)

        if not isinstance(e, dict):
            raise bad(f"tree[{index}] must be an object")
        path, mode, kind = e.get("path"), e.get("mode"), e.get("type")
        if not isinstance(path, str) or not path:
            raise bad(f"tree.path is required (tree[{index}])")
        self.api.check_paths([path])
        if mode not in ALL_MODES:
            raise bad(f"tree.mode {mode!r} is not a valid mode (tree[{index}])")
        expected = "tree" if mode == MODE_TREE else "commit" if mode == MODE_COMMIT else "blob"
        if kind is not None and kind != expected:
            raise bad(f"tree.type {kind!r} does not match mode {mode} (tree[{index}])")
        has_sha = "sha" in e
        if has_sha and "content" in e:
            raise bad("Must supply either tree.sha or tree.content, not both")
        if "content" in e:
            if mode not in BLOB_MODES or not isinstance(e["content"], str):
                raise bad(f"tree.content requires a blob mode (tree[{index}])")
            return path, (mode, e["content"].encode())
        if not has_sha:
            raise bad(f"Must supply tree.sha or tree.content (tree[{index}])")
        sha = e["sha"]
        if sha is None:
            inside = path.rstrip("/") + "/"
            if path not in base_flat and not any(p.startswith(inside) for p in base_flat):
                raise bad(f"Invalid tree info: path {path!r} does not exist in base_tree")
            return path, None
        if not isinstance(sha, str):
            raise bad(f"tree.sha must be a string (tree[{index}])")
        if mode in BLOB_MODES and sha not in store.blobs:
            raise bad(f"tree.sha {sha} is not a valid blob")
        if mode == MODE_TREE and sha not in store.trees:
            raise bad(f"tree.sha {sha} is not a valid tree")
        return path, (mode, sha)

    async def create_blob(self, request: web.Request) -> web.Response:
        """`POST /git/blobs` (utf-8 or base64)."""
        repo = self.api.repo_of(request)
        body = await read_json(request)
        data = decode_content(body.get("content"), str(body.get("encoding") or "utf-8"))
        sha = self.world.objects.put_blob(data)
        url = f"{self.shapes.urls.api}/repos/{repo.full_name}/git/blobs/{sha}"
        return json_response({"url": url, "sha": sha}, 201, headers={"Location": url})

    async def get_blob(self, request: web.Request) -> web.StreamResponse:
        """`GET /git/blobs/{sha}` (base64, or raw with the raw media type)."""
        repo = self.api.repo_of(request)
        sha = request.match_info["sha"]
        if sha not in self.world.objects.blobs:
            raise not_found()
        if "raw" in request.headers.get("Accept", ""):
            return web.Response(
                body=self.world.objects.blobs[sha], content_type="application/vnd.github.raw"
            )
        return json_response(self.shapes.blob(repo, sha))

    async def create_commit(self, request: web.Request) -> web.Response:
        """`POST /git/commits`."""
        repo = self.api.repo_of(request)
        body = await read_json(request)
        store = self.world.objects
        message, tree = body.get("message"), body.get("tree")
        if not isinstance(message, str):
            raise validation_failed(
                errors=[{"resource": "Commit", "field": "message", "code": "missing_field"}]
            )
        if not isinstance(tree, str):
            raise validation_failed(
                errors=[{"resource": "Commit", "field": "tree", "code": "missing_field"}]
            )
        if tree not in store.trees:
            raise ApiError(
                422,
                "Tree SHA does not exist",
                documentation_url="https://docs.github.com/rest/git/commits#create-a-commit",
            )
        parents = body.get("parents") or []
        if not isinstance(parents, list) or any(p not in store.commits for p in parents):
            raise ApiError(
                422,
                "Parent SHA does not exist or is not a commit object",
                documentation_url="https://docs.github.com/rest/git/commits#create-a-commit",
            )
        actor = self.api.actor(request)
        author = self.api.signature_from(body.get("author"), actor, "author")
        committer = (
            self.api.signature_from(body.get("committer"), actor, "committer")
            if body.get("committer")
            else author
        )
        sha = store.put_commit(tree, parents, author, committer, message)
        identity = request[IDENTITY]
        custom = body.get("author") or body.get("committer") or body.get("signature")
        if identity.kind == "installation" and not custom:
            # "Signature verification for bots": an app's API commit without custom author,
            # committer or signature is signed by GitHub and shows as verified.
            store.signed.add(sha)
        out = self.shapes.git_commit(repo, store.commits[sha])
        return json_response(out, 201, headers={"Location": out["url"]})

    async def get_git_commit(self, request: web.Request) -> web.Response:
        """`GET /git/commits/{sha}`."""
        repo = self.api.repo_of(request)
        commit = self.world.objects.commits.get(request.match_info["sha"])
        if commit is None:
            raise not_found()
        return json_response(self.shapes.git_commit(repo, commit))

    # ---- commits API -----------------------------------------------------------------------
    async def list_commits(self, request: web.Request) -> web.Response:
        """`GET /commits?sha=&path=&since=&until=&author=`: newest first, path-filtered."""
        repo = self.api.repo_of(request)
        q = request.query
        start = q.get("sha") or repo.default_branch
        head = repo.resolve(start)
        if head is None:
            if not repo.refs:
                raise ApiError(409, "Git Repository is empty.")
            raise ApiError(404, f"No commit found for SHA: {start}")
        since = parse_time(q["since"], "since") if q.get("since") else None
        until = parse_time(q["until"], "until") if q.get("until") else None
        author = q.get("author", "").lower()
        path = q.get("path", "").strip("/") or None
        commits = []
        for c in self.world.objects.log([head], path=path):
            ts = c.committer.timestamp
            if since is not None and ts < since:
                continue
            if until is not None and ts > until:
                continue
            if author:
                user = self.state.user_by_email(c.author.email)
                if author not in (c.author.email.lower(), (user.login.lower() if user else "")):
                    continue
            commits.append(c)
        page, headers = self.api.paginate(request, commits)
        return json_response([self.shapes.commit(repo, c) for c in page], headers=headers)

    async def get_commit(self, request: web.Request) -> web.Response:
        """`GET /commits/{ref}`: the commit with `files` (patches) and `stats`."""
        repo = self.api.repo_of(request)
        ref = request.match_info["ref"]
        sha = self.api.resolve_commit(repo, ref, status=422)
        store = self.world.objects
        c = store.commits[sha]
        if "application/vnd.github.sha" in request.headers.get("Accept", ""):
            return web.Response(text=sha, content_type="application/vnd.github.sha")
        parent_tree = store.commits[c.parents[0]].tree if c.parents else None
        files = self.world.diff_entries(repo, parent_tree, c.tree, sha)
        page, headers = self.api.paginate(request, files, default=300, maximum=300)
        out = self.shapes.commit(repo, c)
        adds = sum(f["additions"] for f in files)
        dels = sum(f["deletions"] for f in files)
        out["stats"] = {"total": adds + dels, "additions": adds, "deletions": dels}
        out["files"] = page
        return json_response(out, headers=headers)

    async def compare(self, request: web.Request) -> web.Response:
        """`GET /compare/{base}...{head}`: ahead/behind counts, commits and files."""
        repo = self.api.repo_of(request)
        spec = request.match_info["basehead"]
        if "..." not in spec:
            raise not_found()
        base_ref, head_ref = spec.split("...", 1)
        base, head = repo.resolve(base_ref), repo.resolve(head_ref)
        if base is None or head is None:
            raise not_found()
        store = self.world.objects
        mb = store.merge_base(base, head)
        base_anc = store.ancestors(base)
        head_anc = store.ancestors(head)
        ahead = [c for c in store.log([head]) if c.sha not in base_anc]
        behind = [c for c in store.log([base]) if c.sha not in head_anc]
        ahead.reverse()
        if not ahead and not behind:
            status = "identical"
        elif not behind:
            status = "ahead"
        elif not ahead:
            status = "behind"
        else:
            status = "diverged"
        old_tree = store.commits[mb].tree if mb else None
        files = self.world.diff_entries(repo, old_tree, store.commits[head].tree, head)
        # GitHub: without `per_page`/`page` the list holds at most 250 commits, the last one
        # the newest of the comparison; with them, pages in chronological order (at most 100
        # per page) and the files only on the first page.
        paged = "per_page" in request.query or "page" in request.query
        if paged:
            page, headers = self.api.paginate(request, ahead, default=30, maximum=100)
            if _page_number(request) > 1:
                files = []
        else:
            page, headers = ahead[-250:], {}
        api = f"{self.shapes.urls.api}/repos/{repo.full_name}"
        web_url = f"{self.shapes.urls.web}/{repo.full_name}"
        owner = repo.owner.login
        out = {
            "url": f"{api}/compare/{spec}",
            "html_url": f"{web_url}/compare/{spec}",
            "permalink_url": f"{web_url}/compare/{owner}:{base[:7]}...{owner}:{head[:7]}",
            "diff_url": f"{web_url}/compare/{spec}.diff",
            "patch_url": f"{web_url}/compare/{spec}.patch",
            "base_commit": self.shapes.commit(repo, store.commits[base]),
            "merge_base_commit": self.shapes.commit(repo, store.commits[mb]) if mb else None,
            "status": status,
            "ahead_by": len(ahead),
            "behind_by": len(behind),
            "total_commits": len(ahead),
            "commits": [self.shapes.commit(repo, c) for c in page],
            "files": files[:300],
        }
        return json_response(out, headers=headers)


def _page_number(request: web.Request) -> int:
    try:
        return int(request.query.get("page") or 1)
    except ValueError:
        return 1


def register(api: Api) -> None:
    """Add the core routes to an Api."""
    CoreRoutes(api).register()


def register_catchalls(api: Api) -> None:
    """Routes whose patterns would shadow more specific ones; registered last."""
    CoreRoutes(api).register_catchalls()


_REF_FORBIDDEN = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")


def valid_ref_name(ref: str) -> bool:
    """``git check-ref-format``: what GitHub accepts as a ref name."""
    if not ref or ref == "@" or ref.startswith("/") or ref.endswith(("/", ".")):
        return False
    if "//" in ref or ".." in ref or "@{" in ref or _REF_FORBIDDEN.search(ref):
        return False
    return all(not p.startswith(".") and not p.endswith(".lock") for p in ref.split("/"))
