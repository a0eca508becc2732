"""The shape of every payload the handlers read, checked before any handler runs.

A signed payload can still be malformed (a fuzzer, a hand-made redelivery, a change at GitHub).
Checking the fields the handlers rely on up front turns every such payload into one clear
"malformed payload: pull_request.head.sha should be str, not int" and keeps the handlers free of
defensive code. Only the fields the bot reads are listed; GitHub sends many more.

Paths: ``a.b`` is a key of a mapping; ``a[]`` means every element of the list ``a``; a leading
``?`` makes the field optional (absent or null is fine, any other type is not).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from bot.handlers.payload import PayloadError

NoneType = type(None)
Kind = type | tuple[type, ...]


class Sha(str):
    """The kind of a field that names a commit: 40 hex digits. The bot puts these in URLs
    (``/git/trees/{sha}``); an empty or odd string there would ask GitHub for something else."""


_SHA = re.compile(r"[0-9a-f]{40}")

_REPO = {"repository": dict, "repository.full_name": str, "?repository.default_branch": str}
_USER = {"login": str, "?type": str}


def _prefixed(prefix: str, fields: Mapping[str, Kind]) -> dict[str, Kind]:
    """``fields`` below ``prefix``; optional when either the field or the prefix is."""
    out: dict[str, Kind] = {}
    parent_optional = prefix.startswith("?")
    base = prefix.removeprefix("?")
    for path, kind in fields.items():
        optional = parent_optional or path.startswith("?")
        name = path.removeprefix("?")
        full = f"{base}.{name}" if name else base
        out[("?" if optional else "") + full] = kind
    return out


_PULL = {
    "pull_request": dict,
    "pull_request.number": int,
    "?pull_request.state": str,
    "?pull_request.title": str,
    "?pull_request.body": str,
    "?pull_request.draft": bool,
    "?pull_request.html_url": str,
    "pull_request.head": dict,
    "pull_request.head.sha": Sha,
    "pull_request.head.ref": str,
    "?pull_request.head.repo": dict,
    "?pull_request.head.repo.full_name": str,
    "pull_request.base": dict,
    "pull_request.base.ref": str,
    "?pull_request.base.sha": Sha,
    "?pull_request.user": dict,
    **_prefixed("?pull_request.user", _USER),
    "?pull_request.labels": list,
    "?pull_request.labels[]": dict,
    "?pull_request.labels[].name": str,
    "?pull_request.requested_reviewers": list,
    "?pull_request.requested_reviewers[]": dict,
    "?pull_request.requested_reviewers[].login": str,
    "?pull_request.requested_teams": list,
    "?pull_request.requested_teams[]": dict,
    "?pull_request.requested_teams[].slug": str,
}
_RUN = {
    "head_sha": Sha,
    "?name": str,
    "?app": dict,
    "?app.id": int,
    "?pull_requests": list,
    "?pull_requests[]": dict,
    "?pull_requests[].number": int,
}

_PACKAGE = {
    "": dict,
    "?package_type": str,
    "?ecosystem": str,
    "?name": str,
    "?html_url": str,
    "?owner": dict,
    "?owner.login": str,
    "?package_version": dict,
    "?package_version.html_url": str,
    "?package_version.container_metadata": dict,
    "?package_version.container_metadata.tag": dict,
    "?package_version.container_metadata.tag.name": str,
    "?package_version.container_metadata.tag.digest": str,
    "?package_version.container_metadata.manifest": dict,
    "?package_version.container_metadata.manifest.digest": str,
    "?package_version.target_oid": str,
    "?package_version.container_metadata.labels": dict,
    "?package_version.container_metadata.labels.source": str,
    "?package_version.container_metadata.labels.revision": str,
    "?package_version.container_metadata.labels.all_labels": dict,
}
_PACKAGE_REPO = {"?repository": dict, "?repository.full_name": str, "?repository.html_url": str}

SCHEMAS: dict[str, dict[str, Kind]] = {
    "pull_request": {
        **_REPO,
        "action": str,
        **_PULL,
        "?changes": dict,
        "?label": dict,
        "?label.name": str,
    },
    "pull_request_review": {
        **_REPO,
        "action": str,
        **_PULL,
        "?review": dict,
        "?review.state": str,
    },
    "issue_comment": {
        **_REPO,
        "action": str,
        "comment": dict,
        "comment.id": int,
        "?comment.body": str,
        "?comment.html_url": str,
        "comment.user": dict,
        **_prefixed("comment.user", _USER),
        "issue": dict,
        "issue.number": int,
        "?issue.pull_request": dict,
        "?sender": dict,
        **_prefixed("?sender", _USER),
    },
    "issues": {
        **_REPO,
        "action": str,
        "issue": dict,
        "issue.number": int,
        "?issue.title": str,
        "?issue.body": str,
        "?issue.pull_request": dict,
        "issue.user": dict,
        **_prefixed("issue.user", _USER),
        "?changes": dict,
        "?changes.title": dict,
        "?changes.title.from": str,
        "?changes.body": dict,
        "?changes.body.from": str,
        "?sender": dict,
        **_prefixed("?sender", _USER),
    },
    "push": {
        **_REPO,
        "ref": str,
        "?after": Sha,
        "?deleted": bool,
        "?commits": list,
        "?commits[]": dict,
        "?commits[].added": list,
        "?commits[].added[]": str,
        "?commits[].modified": list,
        "?commits[].modified[]": str,
        "?commits[].removed": list,
        "?commits[].removed[]": str,
    },
    "check_run": {**_REPO, "action": str, "check_run": dict, **_prefixed("check_run", _RUN)},
    "check_suite": {**_REPO, "action": str, "check_suite": dict, **_prefixed("check_suite", _RUN)},
    "status": {**_REPO, "sha": Sha, "state": str},
    "repository_dispatch": {
        **_REPO,
        "action": str,
        "?client_payload": dict,
        "?sender": dict,
        **_prefixed("?sender", _USER),
    },
    "registry_package": {
        "action": str,
        "?sender": dict,
        **_PACKAGE_REPO,
        **_prefixed("registry_package", _PACKAGE),
    },
    "package": {"action": str, "?sender": dict, **_PACKAGE_REPO, **_prefixed("package", _PACKAGE)},
    "membership": {"action": str, "?organization": dict, "?organization.login": str},
    "team": {"action": str, "?organization": dict, "?organization.login": str},
    "installation": {"action": str},
    "installation_repositories": {"action": str},
    "merge_group": {
        **_REPO,
        "action": str,
        "merge_group": dict,
        "merge_group.head_sha": Sha,
        "merge_group.head_ref": str,
        "merge_group.base_sha": Sha,
        "merge_group.base_ref": str,
        "?reason": str,
    },
    "release": {
        **_REPO,
        "action": str,
        "release": dict,
        "release.tag_name": str,
        "?release.draft": bool,
        "?release.prerelease": bool,
        "?release.html_url": str,
        "?release.body": str,
        "?release.name": str,
    },
}

_MISSING = object()
_NULL = object()  # a null element of a list: never acceptable


def _name(kind: Kind) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    names = {
        Sha: "a commit SHA (40 hex digits)",
        dict: "an object",
        list: "a list",
        str: "a string",
        int: "a number",
        bool: "true/false",
    }
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def _type_ok(value: Any, kind: Kind) -> bool:
    if kind is Sha:
        return isinstance(value, str) and _SHA.fullmatch(value) is not None
    if type(value) is kind:
        return True
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) and bool not in kinds:
        return False  # JSON true is not a number here
    return isinstance(value, kinds)


def _values(data: Any, parts: list[str]) -> list[tuple[str, Any]]:
    """Every value at ``parts`` below ``data`` (lists expand), with its display path.

    A parent that is present but not an object (or not a list, for ``[]``) is an error: a
    handler would trip over it. An absent parent yields nothing; its own entry decides.
    """
    nodes: list[tuple[str, Any]] = [("", data)]
    for part in parts:
        expand = part.endswith("[]")
        key = part.removesuffix("[]")
        nxt: list[tuple[str, Any]] = []
        for where, node in nodes:
            here = f"{where}.{key}" if where else key
            if node is _MISSING or node is None:
                continue
            if type(node) is not dict and not isinstance(node, Mapping):
                raise PayloadError(f"{where} should be an object, not {type(node).__name__}")
            value = node.get(key, _MISSING)
            if expand:
                if value is _MISSING or value is None:
                    continue
                if not isinstance(value, list):
                    raise PayloadError(f"{here} should be a list, not {type(value).__name__}")
                nxt.extend(
                    (f"{here}[{i}]", item if item is not None else _NULL)
                    for i, item in enumerate(value)
                )
            else:
                nxt.append((here, value))
        nodes = nxt
    return nodes


def _compile(schema: Mapping[str, Kind]) -> tuple[tuple[bool, list[str], Kind], ...]:
    return tuple(
        (path.startswith("?"), path.removeprefix("?").split("."), kind)
        for path, kind in schema.items()
    )


#: The schemas with their paths split once (checking is on every delivery's path).
_COMPILED = {event: _compile(schema) for event, schema in SCHEMAS.items()}


def check(event: str, data: Any) -> None:
    """Raise PayloadError for the first field of ``event`` that is missing or mistyped."""
    if not isinstance(data, Mapping):
        raise PayloadError("the payload must be a JSON object")
    action = data.get("action")
    if action is not None and not isinstance(action, str):
        raise PayloadError(f"action should be a string, not {type(action).__name__}")
    schema = _COMPILED.get(event)
    if schema is None:
        return
    for optional, parts, kind in schema:
        for where, value in _values(data, parts):
            if value is _NULL:
                raise PayloadError(f"{where} should be {_name(kind)}, not null")
            if value is _MISSING or value is None:
                if not optional:
                    raise PayloadError(f"{where} is missing")
                continue
            if not _type_ok(value, kind):
                got = repr(value)[:50] if isinstance(value, str) else type(value).__name__
                raise PayloadError(f"{where} should be {_name(kind)}, not {got}")
