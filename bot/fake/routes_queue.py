"""Routes of the merge queue: the branch's rules (REST), and over GraphQL the
``enqueuePullRequest`` mutation and a repository's ``mergeQueue`` entries.

The GraphQL endpoint is no GraphQL server: it recognises the two operations the bot sends
(arguments given inline or as variables) and answers in GitHub's shapes (the fields it knows,
whatever the selection): ``data``, or ``errors`` (``type`` ``NOT_FOUND``, ``UNPROCESSABLE``,
``FORBIDDEN``) with ``data`` null, at HTTP 200 as GitHub does. Anything else gets an error that
says what the fake does not answer.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

from aiohttp import web

from bot.fake.queue import MergeQueues, QueueError
from bot.fake.server import IDENTITY, Api, json_response
from bot.fake.state import LEVELS, ApiError, PullRequest, Repo

GRAPHQL_DOCS = "https://docs.github.com/graphql"
NOT_ACCESSIBLE = "Resource not accessible by integration"
_FIELD = re.compile(r'(\w+)\s*:\s*(\$\w+|"(?:[^"\\]|\\.)*"|true|false|null)')


class QueueRoutes:
    def __init__(self, api: Api, queues: MergeQueues) -> None:
        self.api = api
        self.world = api.world
        self.state = api.state
        self.queues = queues

    def register(self) -> None:
        add = self.api.add
        add(
            "GET",
            "/repos/{owner}/{repo}/rules/branches/{branch:.+}",
            self.branch_rules,
            perm=("metadata", "read"),
        )
        add("POST", "/graphql", self.graphql)

    async def branch_rules(self, request: web.Request) -> web.Response:
        """`GET /rules/branches/{branch}`: the active rules of a branch (paginated list)."""
        repo = self.api.repo_of(request)
        rules = self.queues.rules_json(repo, request.match_info["branch"])
        page, headers = self.api.paginate(request, rules)
        return json_response(page, headers=headers)

    # ---- GraphQL ---------------------------------------------------------------------------
    async def graphql(self, request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            body = json.loads(raw or b"null")
        except ValueError:
            raise ApiError(400, "Problems parsing JSON", documentation_url=GRAPHQL_DOCS) from None
        query = body.get("query") if isinstance(body, dict) else None
        if not isinstance(query, str):
            return _errors("A query attribute must be specified and must be a string.")
        variables = body.get("variables") or {}
        if not isinstance(variables, dict):
            return _errors("Variables are invalid JSON.")
        if re.search(r"\bmergeQueue\s*\(", query) and not query.lstrip().startswith("mutation"):
            return self.merge_queue(request, query, variables)
        m = re.search(r"\benqueuePullRequest\s*\(\s*input\s*:\s*(\$\w+|\{[^}]*\})", query)
        if not query.lstrip().startswith("mutation") or m is None:
            return _errors(
                "The fake GitHub answers only the enqueuePullRequest mutation and the "
                "repository's mergeQueue entries over GraphQL."
            )
        given = m.group(1)
        if given.startswith("$"):
            value = variables.get(given[1:])
            fields: dict[str, Any] = value if isinstance(value, dict) else {}
        else:
            fields = {k: _literal(v, variables) for k, v in _FIELD.findall(given)}
        return self.enqueue(request, fields)

    def enqueue(self, request: web.Request, fields: dict[str, Any]) -> web.Response:
        node = fields.get("pullRequestId")
        expected = fields.get("expectedHeadOid")
        found = self.pull_by_node(request, node)
        if found is None:
            return _errors(
                f"Could not resolve to a node with the global id of '{node}'",
                kind="NOT_FOUND",
                path=["enqueuePullRequest"],
            )
        repo, pr = found
        identity = request[IDENTITY]
        actor = identity.actor
        if actor is None:
            raise ApiError(401, "Requires authentication")
        if identity.token is not None:
            granted = identity.token.permissions.get("merge_queues", "none")
            if LEVELS.get(granted, 0) < LEVELS["write"]:
                return _errors(NOT_ACCESSIBLE, kind="FORBIDDEN", path=["enqueuePullRequest"])
        elif identity.user is not None and not self.state.can_write(repo, identity.user):
            return _errors(
                f"{identity.user.login} does not have permission to enqueue this pull request",
                kind="FORBIDDEN",
                path=["enqueuePullRequest"],
            )
        try:
            entry = self.queues.enqueue(
                repo, pr, actor, expected_head=str(expected) if expected else None
            )
        except QueueError as exc:
            return _errors(str(exc), kind="UNPROCESSABLE", path=["enqueuePullRequest"])
        payload = {"clientMutationId": None, "mergeQueueEntry": self.queues.entry_json(repo, entry)}
        return json_response({"data": {"enqueuePullRequest": payload}})

    def merge_queue(
        self, request: web.Request, query: str, variables: dict[str, Any]
    ) -> web.Response:
        """``repository(owner:, name:) { mergeQueue(branch:) { entries { nodes {...} } } }``:
        the queue's entries, front first (``mergeQueue`` null where the branch has none)."""
        args = dict(_FIELD.findall(query))
        owner = _literal(args.get("owner", "null"), variables)
        name = _literal(args.get("name", "null"), variables)
        branch = _literal(args.get("branch", "null"), variables)
        repo = self.state.repo(f"{owner}/{name}") if owner and name else None
        identity = request[IDENTITY]
        visible = repo is not None and (
            (identity.token is not None and repo in self.api.token_repos(identity.token))
            or (identity.user is not None and self.state.can_read(repo, identity.user))
        )
        if repo is None or not visible:
            return _errors(
                f"Could not resolve to a Repository with the name '{owner}/{name}'.",
                kind="NOT_FOUND",
                path=["repository"],
            )
        if not isinstance(branch, str) or branch not in repo.merge_queues:
            return json_response({"data": {"repository": {"mergeQueue": None}}})
        nodes = []
        for entry in repo.queue.get(branch, []):
            shown = self.queues.entry_json(repo, entry)
            shown["pullRequest"] = {"number": entry.number}
            nodes.append(shown)
        queue = {"entries": {"totalCount": len(nodes), "nodes": nodes}}
        return json_response({"data": {"repository": {"mergeQueue": queue}}})

    def pull_by_node(self, request: web.Request, node: Any) -> tuple[Repo, PullRequest] | None:
        """The pull request a global node id names, if the caller may see its repository."""
        if not isinstance(node, str):
            return None
        try:
            decoded = base64.b64decode(node, validate=True).decode()
        except (binascii.Error, ValueError):
            return None
        m = re.fullmatch(r"0\d+:PullRequest(\d+)", decoded)
        if m is None:
            return None
        pr_id = int(m.group(1))
        identity = request[IDENTITY]
        for repo in self.state.repos.values():
            for pr in repo.prs.values():
                if pr.pr_id != pr_id:
                    continue
                if identity.token is not None and repo not in self.api.token_repos(identity.token):
                    return None
                if identity.user is not None and not self.state.can_read(repo, identity.user):
                    return None
                return repo, pr
        return None


def _literal(text: str, variables: dict[str, Any]) -> Any:
    if text.startswith("$"):
        return variables.get(text[1:])
    if text.startswith('"'):
        return json.loads(text)
    return {"true": True, "false": False, "null": None}[text]


def _errors(message: str, kind: str | None = None, path: list[str] | None = None) -> web.Response:
    """GraphQL errors are answered with HTTP 200."""
    error: dict[str, Any] = {"message": message, "locations": [{"line": 2, "column": 3}]}
    if kind is not None:
        error["type"] = kind
    if path is not None:
        error["path"] = path
    body: dict[str, Any] = {"errors": [error]}
    if path is not None:
        body["data"] = {path[0]: None}
    return json_response(body)


def register(api: Api, queues: MergeQueues) -> None:
    QueueRoutes(api, queues).register()
