"""Typed access to webhook payloads: a missing or mistyped field is a clear PayloadError.

A signed payload of the wrong shape (GitHub changes, a hand-made redelivery, a fuzzer) must give
"malformed payload: pull_request.head.sha is missing" in the log, never a 500 or a KeyError.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, overload

T = TypeVar("T")
D = TypeVar("D")


class PayloadError(ValueError):
    """The payload lacks a field the handler needs, or has it with the wrong type."""


_MISSING = object()


def _walk(data: Any, path: str) -> Any:
    node = data
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return _MISSING
        node = node[part]
    return node


@overload
def field(data: Any, path: str, kind: type[T]) -> T: ...
@overload
def field(data: Any, path: str, kind: type[T], default: D) -> T | D: ...


def field(data: Any, path: str, kind: type[T], default: Any = _MISSING) -> Any:
    """``data[a][b][c]`` for path "a.b.c", checked to be ``kind`` (bool is not an int here)."""
    value = _walk(data, path)
    if value is _MISSING or value is None:
        if default is not _MISSING:
            return default
        raise PayloadError(f"{path} is missing")
    if kind is int and isinstance(value, bool):
        raise PayloadError(f"{path} should be a number, not {type(value).__name__}")
    if not isinstance(value, kind):
        raise PayloadError(f"{path} should be {kind.__name__}, not {type(value).__name__}")
    return value


def repo_full_name(data: Any) -> str | None:
    """The delivery's repository as ``owner/name``, when it has one of the right shape."""
    value = _walk(data, "repository.full_name")
    if isinstance(value, str) and value.count("/") == 1:
        return value
    return None


def installation_id(data: Any) -> int | None:
    value = _walk(data, "installation.id")
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**63:
        return value
    return None
