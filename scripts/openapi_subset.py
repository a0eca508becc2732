"""Regenerate the vendored slices of GitHub's own API description that the test suite checks
the fake GitHub (and so the bot) against.

    python scripts/openapi_subset.py            # npm pack the pinned packages, write the files
    python scripts/openapi_subset.py --openapi api.github.com.json --webhooks schema.json

Sources (npm registry, versions pinned below):
- ``@octokit/openapi`` ``generated/api.github.com.json``: GitHub's OpenAPI description
  (github/rest-api-description). Kept: the operations the fake serves (its route table, so every
  call the bot can make to it), their parameters, request bodies and responses, and the closure
  of the component schemas they use. Dropped: descriptions, examples and vendor extensions
  other than ``x-multi-segment`` (a path parameter that may contain ``/``).
- ``@octokit/webhooks-schemas`` ``schema.json``: JSON schemas of every webhook payload. Kept:
  every action of the events the fake sends, and the definitions they use, without
  descriptions. The three event schemas in ``../shared/reference/webhook-examples/schemas``
  (package and registry_package ``published``, repository_dispatch) and their ``common/``
  schemas are the same as these definitions (compared when this subset was made: equal once
  ``$ref`` paths, titles and descriptions are set aside), so one source serves all events.

Written: ``tests/contract/github-openapi-subset.json`` and
``tests/contract/webhook-schemas-subset.json``.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "contract"
OPENAPI_PACKAGE = "@octokit/openapi@23.0.2"
WEBHOOKS_PACKAGE = "@octokit/webhooks-schemas@7.6.1"

#: Routes of the fake that GitHub's REST description does not describe, and why (written into
#: the subset as ``info.x-not-in-openapi``). Requests to them are not checked; everything else
#: the fake serves must map to a documented operation.
NOT_IN_OPENAPI: dict[tuple[str, str], str] = {
    ("POST", "/graphql"): "GraphQL, not REST: the OpenAPI description does not cover it",
    ("GET", "/repos/{owner}/{repo}/git/refs"): "legacy list of all refs (undocumented)",
    ("GET", "/repos/{owner}/{repo}/git/refs/{ref}"): "legacy prefix listing (undocumented)",
    ("GET", "/repos/{owner}/{repo}/contents"): "the root directory: documented as {path} empty",
}

#: Keys whose value maps names to schemas (a property called "description" is kept).
NAME_MAPS = frozenset(
    {"properties", "patternProperties", "definitions", "responses", "content", "headers"}
)
#: Errors in GitHub's OpenAPI description itself, corrected in the subset: (method, path,
#: where in the operation, the schema it should be, why).
OPENAPI_CORRECTIONS: list[tuple[str, str, str, dict[str, Any], str]] = [
    (
        "get",
        "/app/installations",
        "responses/200/content/application~1json/schema/items/properties/account",
        {
            "nullable": True,
            "anyOf": [
                {"$ref": "#/components/schemas/simple-user"},
                {"$ref": "#/components/schemas/enterprise"},
            ],
        },
        "an inline copy of the installation schema says allOf [Simple User, Enterprise] (an "
        "account that is both); the installation schema itself, as every other installation "
        "answer, says anyOf",
    ),
]

#: Where octokit's webhook schemas lag GitHub's own description of the same payloads (the
#: ``x-webhooks`` section of api.github.com.json declares the field, octokit's schema forbids
#: it), the subset follows GitHub: (definition, path to a schema, change, where GitHub says so).
#: A change is ``("set", schema)`` or ``("enum+", value)``. Everything else octokit's schemas
#: reject is a bug of the fake, fixed there.
WEBHOOK_AMENDMENTS: list[tuple[str, str, tuple[str, Any], str]] = [
    (
        "user",
        "properties/user_view_type",
        ("set", {"type": "string"}),
        "simple-user and webhooks_user declare user_view_type",
    ),
    (
        "installation",
        "properties/client_id",
        ("set", {"type": ["string", "null"]}),
        "installation declares client_id",
    ),
    (
        "installation",
        "properties/events/items",
        ("set", {"type": "string"}),
        "installation.events is a list of strings, no enum",
    ),
    (
        "app",
        "properties/client_id",
        ("set", {"type": ["string", "null"]}),
        "integration declares client_id",
    ),
    (
        "app",
        "properties/events/items/enum",
        ("enum+", "package"),
        "the package event is available to GitHub Apps (webhook events and payloads)",
    ),
    (
        "team",
        "properties/type",
        ("set", {"type": "string", "enum": ["enterprise", "organization"]}),
        "the team of membership events declares type",
    ),
    (
        "release",
        "properties/immutable",
        ("set", {"type": "boolean"}),
        "release (webhooks) declares immutable, required",
    ),
    (
        "release",
        "properties/body",
        ("set", {"type": ["string", "null"]}),
        "release (webhooks) body is nullable",
    ),
    (
        "status$event",
        "properties/commit/properties/commit/properties/verification/properties/verified_at",
        ("set", {"type": ["string", "null"]}),
        "status commit verification declares verified_at",
    ),
    (
        "check_suite$completed",
        "properties/check_suite/properties/rerequestable",
        ("set", {"type": "boolean"}),
        "check-suite-completed declares rerequestable",
    ),
    (
        "check_suite$completed",
        "properties/check_suite/properties/runs_rerequestable",
        ("set", {"type": "boolean"}),
        "check-suite-completed declares runs_rerequestable",
    ),
    (
        "check_suite$requested",
        "properties/check_suite/properties/rerequestable",
        ("set", {"type": "boolean"}),
        "check-suite-requested declares rerequestable",
    ),
    (
        "check_suite$requested",
        "properties/check_suite/properties/runs_rerequestable",
        ("set", {"type": "boolean"}),
        "check-suite-requested declares runs_rerequestable",
    ),
    (
        "check_suite$rerequested",
        "properties/check_suite/properties/rerequestable",
        ("set", {"type": "boolean"}),
        "check-suite-rerequested declares rerequestable",
    ),
    (
        "check_suite$rerequested",
        "properties/check_suite/properties/runs_rerequestable",
        ("set", {"type": "boolean"}),
        "check-suite-rerequested declares runs_rerequestable",
    ),
    (
        "check_run$rerequested",
        "properties/check_run/properties/check_suite/properties/status",
        ("set", {"type": "string", "enum": ["queued", "in_progress", "completed", "pending"]}),
        "check-run-rerequested: a run is re-run while its suite still has runs in progress",
    ),
    (
        "check_run$rerequested",
        "properties/check_run/properties/check_suite/properties/conclusion",
        (
            "set",
            {
                "type": ["string", "null"],
                "enum": [
                    "success",
                    "failure",
                    "neutral",
                    "cancelled",
                    "skipped",
                    "timed_out",
                    "action_required",
                    "stale",
                    "startup_failure",
                    None,
                ],
            },
        ),
        "check-run-rerequested: the suite's conclusion is null while it is in progress",
    ),
] + [
    (
        f"installation{kind}",
        "properties/organization",
        ("set", {"$ref": "#/definitions/organization"}),
        f"webhook-installation{kind.replace('$', '-')} declares organization",
    )
    for kind in (
        "$created",
        "$deleted",
        "$new_permissions_accepted",
        "$suspend",
        "$unsuspend",
        "_repositories$added",
        "_repositories$removed",
    )
]

DROP_KEYS = frozenset(
    {"description", "examples", "example", "externalDocs", "tags", "title", "summary"}
)


def dropped(key: str) -> bool:
    """Annotations and vendor extensions, which no check reads."""
    return key in DROP_KEYS or (key.startswith("x-") and key != "x-multi-segment")


def npm_pack(spec: str, into: Path) -> Path:
    """Download one npm package tarball (no install, no scripts) and unpack it."""
    out = subprocess.run(
        ["npm", "pack", spec, "--silent", "--pack-destination", str(into)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    tarball = into / out.splitlines()[-1]
    target = into / tarball.stem
    with tarfile.open(tarball) as tar:
        tar.extractall(target, filter="data")
    return target / "package"


def fake_routes() -> list[tuple[str, str]]:
    """(method, aiohttp path) of every API route of the in-package fake."""
    from bot.fake.queue import MergeQueues
    from bot.fake.routes import build_app
    from bot.fake.server import Api, Settings
    from bot.fake.shapes import Urls
    from bot.fake.world import World

    world = World(Urls())
    api = Api(world, Settings())
    build_app(api, MergeQueues(world))
    return [(method, path) for method, path, _route in api.routes]


def _segments(path: str) -> list[str]:
    return [s for s in path.split("/") if s]


def _param(segment: str) -> str | None:
    m = re.fullmatch(r"\{([^}:]+)(?::.*)?\}", segment)
    return m.group(1) if m else None


def match_route(path: str, spec_paths: dict[str, Any]) -> str | None:
    """The OpenAPI path template a fake route serves (parameter names may differ)."""
    mine = _segments(path)
    for template in spec_paths:
        theirs = _segments(template)
        if len(theirs) != len(mine):
            continue
        if all(
            (_param(a) is not None and _param(b) is not None) or a == b
            for a, b in zip(mine, theirs, strict=True)
        ):
            return template
    return None


def resolve(spec: dict[str, Any], node: Any, *, names: bool = False) -> Any:
    """Inline references to parameters, responses, headers and request bodies (schemas stay
    references, collected separately), without annotations. ``names``: ``node`` maps names
    (properties, status codes, media types) to values, so none of its keys is dropped."""
    if isinstance(node, list):
        return [resolve(spec, item) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if not names and isinstance(ref, str) and not ref.startswith("#/components/schemas/"):
        parts = ref.removeprefix("#/").split("/")
        target: Any = spec
        for part in parts:
            target = target[part]
        return resolve(spec, target)
    return {
        k: resolve(spec, v, names=not names and k in NAME_MAPS)
        for k, v in node.items()
        if names or not dropped(k)
    }


def schema_refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            yield ref.rsplit("/", 1)[1]
        for value in node.values():
            yield from schema_refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from schema_refs(item)


def openapi_subset(spec: dict[str, Any], routes: list[tuple[str, str]]) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    unmapped = []
    for method, path in routes:
        normal = re.sub(r"\{([^}:]+):[^}]*\}", r"{\1}", path)
        if (method, normal) in NOT_IN_OPENAPI:
            continue
        template = match_route(path, spec["paths"])
        operation = (spec["paths"].get(template) or {}).get(method.lower()) if template else None
        if template is None or operation is None:
            unmapped.append(f"{method} {normal}")
            continue
        item = spec["paths"][template]
        op = resolve(spec, operation)
        shared = resolve(spec, item.get("parameters") or [])
        if shared:
            op["parameters"] = shared + list(op.get("parameters") or [])
        paths.setdefault(template, {})[method.lower()] = op
    if unmapped:
        raise SystemExit(
            "fake routes GitHub's OpenAPI description does not have (fix the route, or list it "
            "in NOT_IN_OPENAPI with a reason):\n  " + "\n  ".join(unmapped)
        )
    for method, path, where, schema, _why in OPENAPI_CORRECTIONS:
        node = paths[path][method]
        *parents, last = [part.replace("~1", "/") for part in where.split("/")]
        for part in parents:
            node = node[part]
        node[last] = schema
    schemas = spec["components"]["schemas"]
    wanted: dict[str, Any] = {}
    todo = list(schema_refs(paths))
    while todo:
        name = todo.pop()
        if name in wanted:
            continue
        wanted[name] = resolve(spec, schemas[name])
        todo.extend(schema_refs(wanted[name]))
    return {
        "openapi": spec["openapi"],
        "info": {
            "title": spec["info"]["title"],
            "version": spec["info"]["version"],
            "x-source": f"{OPENAPI_PACKAGE} generated/api.github.com.json",
            "x-generated-by": "scripts/openapi_subset.py",
            "x-not-in-openapi": [
                {"method": m, "path": p, "why": why} for (m, p), why in NOT_IN_OPENAPI.items()
            ],
            "x-corrections": [
                f"{m.upper()} {p} {w}: {why}" for m, p, w, _s, why in OPENAPI_CORRECTIONS
            ],
        },
        "paths": dict(sorted(paths.items())),
        "components": {"schemas": dict(sorted(wanted.items()))},
    }


def sent_events() -> list[str]:
    """Every event the fake sends: its default apps' events, those GitHub sends to every app,
    and those the bot's manifest (app.yml) subscribes to."""
    from bot.fake import DEFAULT_EVENTS
    from bot.fake.webhooks import ALWAYS_SENT

    text = (ROOT / "app.yml").read_text(encoding="utf-8")
    block = text.split("default_events:", 1)[1].split("default_permissions:", 1)[0]
    events = re.findall(r"^\s+-\s+([a-z_]+)\s*$", block, re.M)
    return sorted(set(events) | set(DEFAULT_EVENTS) | ALWAYS_SENT)


def webhooks_subset(schema: dict[str, Any], events: list[str]) -> dict[str, Any]:
    defs = schema["definitions"]
    wanted: dict[str, Any] = {}
    todo = [n for n in defs if n.split("$", 1)[0] in events or n.removesuffix("_event") in events]
    missing = [e for e in events if f"{e}_event" not in defs and f"{e}$event" not in defs]
    if missing:
        raise SystemExit(f"no webhook schema for {missing}")
    while todo:
        name = todo.pop()
        if name in wanted:
            continue
        wanted[name] = strip(defs[name])
        todo.extend(re.findall(r'"#/definitions/([^"]+)"', json.dumps(defs[name])))
    for name, path, (op, value), _why in WEBHOOK_AMENDMENTS:
        node = wanted[name]
        *parents, last = path.split("/")
        for part in parents:
            node = node[part]
        if op == "set":
            node[last] = value
        elif op == "enum+" and value not in node[last]:
            node[last].append(value)
    return {
        "$schema": schema.get("$schema", "http://json-schema.org/draft-07/schema#"),
        "x-source": f"{WEBHOOKS_PACKAGE} schema.json",
        "x-generated-by": "scripts/openapi_subset.py",
        "x-events": events,
        "x-amendments": [f"{n} {p}: GitHub's {why}" for n, p, _c, why in WEBHOOK_AMENDMENTS],
        "definitions": dict(sorted(wanted.items())),
    }


def strip(node: Any, *, names: bool = False) -> Any:
    """A JSON schema without annotations (descriptions, examples, titles)."""
    if isinstance(node, list):
        return [strip(item) for item in node]
    if not isinstance(node, dict):
        return node
    return {
        k: strip(v, names=not names and k in NAME_MAPS)
        for k, v in node.items()
        if names or not dropped(k)
    }


def write(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    print(f"{path.relative_to(ROOT)}: {path.stat().st_size:,} bytes")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--openapi", type=Path, help="api.github.com.json (default: npm pack)")
    parser.add_argument("--webhooks", type=Path, help="schema.json (default: npm pack)")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))  # the fake's route table and events, from this checkout
    with tempfile.TemporaryDirectory() as tmp:
        openapi = args.openapi or npm_pack(OPENAPI_PACKAGE, Path(tmp)) / "generated" / (
            "api.github.com.json"
        )
        webhooks = args.webhooks or npm_pack(WEBHOOKS_PACKAGE, Path(tmp)) / "schema.json"
        spec = json.loads(openapi.read_text(encoding="utf-8"))
        hooks = json.loads(webhooks.read_text(encoding="utf-8"))
    OUT.mkdir(parents=True, exist_ok=True)
    write(OUT / "github-openapi-subset.json", openapi_subset(spec, fake_routes()))
    write(OUT / "webhook-schemas-subset.json", webhooks_subset(hooks, sent_events()))


if __name__ == "__main__":
    main()
