"""The fake held to GitHub's own contract: every request it receives and every response and
webhook it sends, checked against GitHub's published descriptions.

Switched on per fake (``FakeGitHub(contract=...)``) or for every fake of a process by the
environment variable ``FAKE_GITHUB_CONTRACT`` naming a directory with
``github-openapi-subset.json`` (the operations the fake serves, from GitHub's OpenAPI
description) and ``webhook-schemas-subset.json`` (octokit's webhook payload schemas); both are
made by ``scripts/openapi_subset.py``. The test suite switches it on; the demo does not pay for
it. A mismatch is recorded (never raised inside the fake, which keeps answering as before) as
one line naming the operation and the field; :func:`drain` hands them to the test harness,
which fails the test that caused them.

What is checked, with ``jsonschema``:
- requests: the operation exists for the method and path; path and query parameters are
  declared and have the declared type; a JSON body matches the operation's request schema;
- responses: the status is documented (an undocumented error status must still have GitHub's
  error shape), and a JSON body matches the schema documented for that status;
- webhooks: the payload matches the schema of its event and action;
- GraphQL requests (with ``graphql-core``, when the directory holds
  ``github-graphql-subset.graphql``, made by ``scripts/graphql_subset.py``): the document
  validates against GitHub's schema, and the variables against the types it declares. The
  fake's GraphQL answers are not checked (it is no GraphQL server: see
  ``bot.fake.routes_queue``).

Not checked: responses to injected faults (a test wrote them), ``304``, the routes listed in
``NOT_IN_OPENAPI`` of the script and carried in the subset's ``info.x-not-in-openapi`` (GraphQL
as REST, two legacy listings, the root directory listing), web pages (and the favicon a browser asks
them for).

OpenAPI 3.0 schemas are not quite JSON Schema: ``nullable: true`` becomes a ``null`` type, and
``oneOf`` is checked as ``anyOf`` (GitHub's description has alternatives that overlap, such as
several nullable types, which ``oneOf`` would reject for ``null``).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from aiohttp import web

ENV = "FAKE_GITHUB_CONTRACT"
#: With this set (a file path), violations are also appended there and the suite does not
#: fail on them: one run lists every mismatch of the whole suite.
LOG_ENV = "FAKE_GITHUB_CONTRACT_LOG"
OPENAPI_FILE = "github-openapi-subset.json"
WEBHOOKS_FILE = "webhook-schemas-subset.json"
GRAPHQL_FILE = "github-graphql-subset.graphql"
BASE = "urn:github-openapi-subset"
#: Checked as GitHub's error shape when an operation does not document the status.
ERROR_SCHEMA = {
    "type": "object",
    "required": ["message"],
    "properties": {
        "message": {"type": "string"},
        "documentation_url": {"type": "string"},
        "status": {"type": "string"},
        "errors": {"type": "array"},
    },
}
#: Every violation recorded by any contract of this process, oldest first.
_RECORDED: list[str] = []

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
FAULTED = web.RequestKey("contract_faulted", bool)


def drain() -> list[str]:
    """The violations recorded since the last call (distinct, with a count when repeated)."""
    found = list(_RECORDED)
    _RECORDED.clear()
    counts: dict[str, int] = {}
    for line in found:
        counts[line] = counts.get(line, 0) + 1
    return [line if n == 1 else f"{line} ({n} times)" for line, n in counts.items()]


@dataclass(frozen=True)
class Operation:
    """One documented operation, ready to check requests and responses against."""

    method: str
    template: str
    operation_id: str
    pattern: re.Pattern[str]
    literal: int  # characters outside parameters: the more, the more specific
    path_params: Mapping[str, dict[str, Any]]
    query_params: Mapping[str, dict[str, Any]]
    body: dict[str, Any] | None
    body_required: bool
    responses: Mapping[str, dict[str, Any] | None]  # status -> JSON schema (None: no body)

    @property
    def label(self) -> str:
        return f"{self.method} {self.template} ({self.operation_id})"


def to_json_schema(node: Any) -> Any:
    """An OpenAPI 3.0 schema as a JSON Schema (draft 7) the validator understands."""
    if isinstance(node, list):
        return [to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("nullable", "discriminator", "readOnly", "writeOnly", "deprecated", "xml"):
            continue
        if key == "$ref" and isinstance(value, str) and value.startswith("#/components/"):
            out[key] = BASE + value
        elif key == "oneOf":
            out["anyOf"] = to_json_schema(value)
        elif key in ("properties", "patternProperties"):
            out[key] = {name: to_json_schema(sub) for name, sub in value.items()}
        else:
            out[key] = to_json_schema(value)
    if node.get("nullable") is True:
        kind = out.get("type")
        if isinstance(kind, str):
            out["type"] = [kind, "null"]
            if "enum" in out and None not in out["enum"]:
                out["enum"] = [*out["enum"], None]
        elif kind is None:
            out = {"anyOf": [out, {"type": "null"}]}
    return out


def _path_regex(template: str, params: Mapping[str, dict[str, Any]]) -> tuple[str, int]:
    parts: list[str] = []
    literal = 0
    for piece in re.split(r"(\{[^}]+\})", template):
        if piece.startswith("{") and piece.endswith("}"):
            name = piece[1:-1]
            multi = bool((params.get(name) or {}).get("x-multi-segment"))
            parts.append(f"(?P<{_group(name)}>{'.+' if multi else '[^/]+'})")
        else:
            parts.append(re.escape(piece))
            literal += len(piece)
    return "^" + "".join(parts) + "$", literal


def _group(name: str) -> str:
    return "p_" + re.sub(r"\W", "_", name)


def _where(path: Iterable[Any]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(the whole body)"


class Contract:
    """Compiled checks for one pair of description files (shared by every fake)."""

    def __init__(
        self, openapi: dict[str, Any], webhooks: dict[str, Any], graphql: str | None = None
    ) -> None:
        from jsonschema import Draft7Validator, FormatChecker
        from referencing import Registry, Resource
        from referencing.jsonschema import DRAFT7

        components = to_json_schema({"components": openapi.get("components", {})})
        self._registry: Any = Registry().with_resource(
            BASE, Resource.from_contents(components, default_specification=DRAFT7)
        )
        self._validator_class: Any = Draft7Validator
        self._format_checker: Any = FormatChecker()
        self._validators: dict[int, Any] = {}
        self.operations: list[Operation] = []
        for template, item in openapi.get("paths", {}).items():
            for method, op in item.items():
                self.operations.append(self._operation(method.upper(), template, op))
        self.operations.sort(key=lambda o: -o.literal)
        self.undescribed = undescribed(openapi.get("info") or {})
        self._webhooks = webhooks.get("definitions", {})
        self._webhook_validators: dict[str, Any] = {}
        self._graphql: Any = None
        if graphql is not None:
            from graphql import build_schema

            self._graphql = build_schema(graphql)

    @classmethod
    def load(cls, directory: str | Path) -> Contract:
        """The contract of a directory holding the two subset files (compiled once)."""
        return _load(str(Path(directory).resolve()))

    @classmethod
    def from_environment(cls) -> Contract | None:
        """The contract named by ``FAKE_GITHUB_CONTRACT``, or None when it is not set."""
        directory = os.environ.get(ENV)
        return cls.load(directory) if directory else None

    # ---- compiling -------------------------------------------------------------------------
    def _operation(self, method: str, template: str, op: dict[str, Any]) -> Operation:
        path_params: dict[str, dict[str, Any]] = {}
        query_params: dict[str, dict[str, Any]] = {}
        for param in op.get("parameters") or []:
            target = {"path": path_params, "query": query_params}.get(param.get("in"))
            if target is not None:
                target[param["name"]] = {**param, "schema": to_json_schema(param.get("schema"))}
        regex, literal = _path_regex(template, path_params)
        body = None
        request_body = op.get("requestBody") or {}
        media = (request_body.get("content") or {}).get("application/json")
        if media is not None:
            body = to_json_schema(media.get("schema") or {})
        responses: dict[str, dict[str, Any] | None] = {}
        for status, response in (op.get("responses") or {}).items():
            content = (response or {}).get("content") or {}
            json_media = content.get("application/json") or next(
                (m for t, m in content.items() if t.endswith("json")), None
            )
            responses[str(status)] = (
                to_json_schema(json_media.get("schema") or {}) if json_media else None
            )
        return Operation(
            method=method,
            template=template,
            operation_id=str(op.get("operationId") or ""),
            pattern=re.compile(regex),
            literal=literal,
            path_params=path_params,
            query_params=query_params,
            body=body,
            body_required=bool(request_body.get("required")),
            responses=responses,
        )

    def _errors(self, schema: dict[str, Any], value: Any) -> list[str]:
        validator = self._validators.get(id(schema))
        if validator is None:
            validator = self._validator_class(
                schema, registry=self._registry, format_checker=self._format_checker
            )
            self._validators[id(schema)] = validator
        return [_describe(error) for error in validator.iter_errors(value)]

    # ---- checks ----------------------------------------------------------------------------
    def find(self, method: str, path: str) -> tuple[Operation, dict[str, str]] | None:
        """The operation a request is for, and its path parameters."""
        for op in self.operations:
            if op.method != method:
                continue
            m = op.pattern.match(path)
            if m is not None:
                values = {name: m.group(_group(name)) for name in op.path_params}
                return op, values
        return None

    def check_request(
        self,
        method: str,
        path: str,
        query: Mapping[str, str] | Iterable[tuple[str, str]],
        body: bytes,
        content_type: str,
    ) -> Operation | None:
        """Record what is wrong with a request; returns its operation when documented."""
        found = self.find(method, path)
        if found is None:
            self.record(f"{method} {path}: no such operation in GitHub's REST API description")
            return None
        op, values = found
        for name, value in values.items():
            self._check_param(op, "path parameter", name, value, op.path_params[name])
        items = query.items() if isinstance(query, Mapping) else query
        for name, value in items:
            param = op.query_params.get(name)
            if param is None:
                self.record(f"{op.label}: query parameter {name!r} is not documented")
            else:
                self._check_param(op, "query parameter", name, value, param)
        raw = body.strip()
        if not raw:
            if op.body_required:
                self.record(f"{op.label}: the request body is required")
            return op
        if op.body is None:
            if raw not in (b"{}", b"null"):
                self.record(f"{op.label}: sends a body, but the operation takes none")
            return op
        if "json" not in content_type:
            self.record(f"{op.label}: request body is {content_type or 'untyped'}, not JSON")
            return op
        try:
            data = json.loads(raw)
        except ValueError:
            self.record(f"{op.label}: the request body is not JSON")
            return op
        for problem in self._errors(op.body, data):
            self.record(f"{op.label} request body {problem}")
        return op

    def check_graphql(self, body: bytes) -> None:
        """Record what is wrong with a GraphQL request: its document against GitHub's schema
        (fields, arguments, types), and its variables against the types it declares."""
        if self._graphql is None:
            return
        from graphql import GraphQLError, parse, validate
        from graphql.execution.values import get_variable_values
        from graphql.language import OperationDefinitionNode

        label = "POST /graphql"
        try:
            request = json.loads(body or b"null")
        except ValueError:
            self.record(f"{label}: the request body is not JSON")
            return
        if not isinstance(request, dict) or not isinstance(request.get("query"), str):
            self.record(f"{label}: the request body has no query string")
            return
        variables = request.get("variables") or {}
        if not isinstance(variables, dict):
            self.record(f"{label}: variables is not an object")
            return
        try:
            document = parse(request["query"])
        except GraphQLError as exc:
            self.record(f"{label}: {_short(exc.message)}")
            return
        errors = validate(self._graphql, document)
        for error in errors:
            self.record(f"{label}: {_short(error.message)}")
        if errors:
            return
        for node in document.definitions:
            if isinstance(node, OperationDefinitionNode):
                found = get_variable_values(
                    self._graphql, node.variable_definitions or [], variables
                )
                for error in found if isinstance(found, list) else []:
                    self.record(f"{label} variables: {_short(error.message)}")

    def _check_param(
        self, op: Operation, kind: str, name: str, raw: str, param: dict[str, Any]
    ) -> None:
        schema = param.get("schema") or {}
        value: Any = raw
        kinds = schema.get("type")
        kinds = kinds if isinstance(kinds, list) else [kinds]
        if "integer" in kinds:
            try:
                value = int(raw)
            except ValueError:
                self.record(f"{op.label}: {kind} {name}={raw!r} is not an integer")
                return
        elif "boolean" in kinds:
            if raw not in ("true", "false"):
                self.record(f"{op.label}: {kind} {name}={raw!r} is not true or false")
                return
            value = raw == "true"
        elif "array" in kinds:
            value = raw.split(",")
        for problem in self._errors(schema, value):
            self.record(f"{op.label}: {kind} {name}={raw!r}: {problem.split(': ', 1)[-1]}")

    def check_response(self, op: Operation, status: int, body: bytes, content_type: str) -> None:
        """Record what is wrong with a response to ``op``."""
        if status == 304:
            return
        documented = str(status) in op.responses
        schema = op.responses.get(str(status)) or op.responses.get("default")
        if not documented and "default" not in op.responses:
            if status < 400:
                known = ", ".join(sorted(op.responses))
                self.record(f"{op.label}: answered {status}; GitHub documents {known}")
                return
            schema = ERROR_SCHEMA
        if schema is None:
            return  # documented without a body (204, 202, a redirect)
        if "json" not in content_type:
            self.record(f"{op.label} {status}: answered {content_type or 'no body'}, not JSON")
            return
        try:
            data = json.loads(body)
        except ValueError:
            self.record(f"{op.label} {status}: the response body is not JSON")
            return
        for problem in self._errors(schema, data):
            self.record(f"{op.label} {status} response {problem}")

    def check_webhook(self, event: str, action: str | None, payload: Mapping[str, Any]) -> None:
        """Record what is wrong with a webhook payload (octokit's schema of its event)."""
        names = [f"{event}${action}"] if action else []
        names += [f"{event}$event", f"{event}_event"]
        name = next((n for n in names if n in self._webhooks), None)
        label = f"webhook {event}" + (f".{action}" if action else "")
        if name is None:
            self.record(f"{label}: octokit's webhook schemas have no such event or action")
            return
        validator = self._webhook_validators.get(name)
        if validator is None:
            schema = {"$ref": f"#/definitions/{name}", "definitions": self._webhooks}
            validator = self._validator_class(schema, format_checker=self._format_checker)
            self._webhook_validators[name] = validator
        for error in validator.iter_errors(dict(payload)):
            self.record(f"{label} payload {_describe(error)}")

    def record(self, line: str) -> None:
        _RECORDED.append(line)
        log = os.environ.get(LOG_ENV)
        if log:  # every violation of a run, for surveying a whole suite at once
            with open(log, "a", encoding="utf-8") as fh:
                fh.write(line + "\n")

    # ---- the middleware --------------------------------------------------------------------
    def middleware(self, api_path: Callable[[web.Request], str]) -> Any:
        """An aiohttp middleware checking each API request and its response."""

        @web.middleware
        async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
            if getattr(request.match_info.handler, "web_route", False):
                return await handler(request)
            path = api_path(request)
            body = await request.read() if request.can_read_body else b""
            if request.method == "POST" and GRAPHQL_PATH.match(path):
                self.check_graphql(body)
            op = None
            if not any(m == request.method and p.match(path) for m, p in self.undescribed):
                op = self.check_request(
                    request.method,
                    path,
                    list(request.query.items()),
                    body,
                    request.headers.get("Content-Type", ""),
                )
            response = await handler(request)
            if op is not None and not request.get(FAULTED, False):
                raw = response.body if isinstance(response, web.Response) else None
                if isinstance(raw, (bytes, bytearray)):
                    self.check_response(
                        op, response.status, bytes(raw), response.headers.get("Content-Type", "")
                    )
            return response

        return check


#: GitHub's GraphQL endpoint (``/api/graphql`` beside GHES's ``/api/v3``).
GRAPHQL_PATH = re.compile(r"^(/api)?/graphql/?$")

#: Requests no fake route answers but a browser on the fake's web pages makes.
BROWSER = ("GET", re.compile(r"^/favicon\.ico$"))


def undescribed(info: Mapping[str, Any]) -> list[tuple[str, re.Pattern[str]]]:
    """The fake's routes the REST description does not cover (``info.x-not-in-openapi``, from
    ``NOT_IN_OPENAPI`` in the script), as (method, path regex); GraphQL also beside GHES's
    ``/api/v3`` (at ``/api/graphql``)."""
    out = [BROWSER]
    for item in info.get("x-not-in-openapi") or []:
        regex = re.sub(
            r"\\\{([^}]+)\\\}",
            lambda m: "[^/]+" if m.group(1) in ("owner", "repo") else ".+",
            re.escape(str(item["path"])),
        )
        if item["path"] == "/graphql":
            regex = "(/api)?" + regex
        out.append((str(item["method"]), re.compile(f"^{regex}/?$")))
    return out


def _describe(error: Any) -> str:
    """Where and what: for alternatives (anyOf), the alternative that came closest."""
    leaf = error
    while leaf.context:
        # the alternative that got furthest into the value (not "is not of type 'null'")
        leaf = max(
            leaf.context, key=lambda e: (len(e.absolute_path), e.validator != "type", -len(e.path))
        )
    return f"{_where(leaf.absolute_path)}: {_short(leaf.message)}"


def _short(message: str, limit: int = 300) -> str:
    return message if len(message) <= limit else message[: limit - 3] + "..."


@lru_cache(maxsize=4)
def _load(directory: str) -> Contract:
    root = Path(directory)
    openapi = json.loads((root / OPENAPI_FILE).read_text(encoding="utf-8"))
    webhooks = json.loads((root / WEBHOOKS_FILE).read_text(encoding="utf-8"))
    graphql = root / GRAPHQL_FILE
    sdl = graphql.read_text(encoding="utf-8") if graphql.is_file() else None
    return Contract(openapi, webhooks, sdl)


__all__ = ["ENV", "FAULTED", "LOG_ENV", "Contract", "Operation", "drain"]
