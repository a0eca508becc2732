"""Which values of a tenant input lineage traces, and what it cannot trace (pure).

Lineage traces every ``promoteKeys`` value (the values a promotion copies, ``image`` by
default) of every ResourceSetInputProvider document of an input file: a cluster applies them
all, so any of them could carry what never ran upstream. A value is traced as text: strings as
written, numbers and booleans in YAML's spelling. A mapping, a list or binary data has no
single value to look for upstream, so it is a blind spot, not a pass.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from bot.fleet.inputs import InputError, TenantInput, read_input_cached
from bot.rules.gate import BlindSpot
from bot.rules.lineage import Change

__all__ = ["Traced", "traced_value", "value_changes", "value_extractor"]

IMAGE = "image"


@dataclass(frozen=True)
class Traced:
    """One value as lineage sees it: its text, or why it has none (``problem``)."""

    text: str | None  # None: the key is absent
    problem: str | None = None


_ABSENT = object()


def _raw(values: Mapping[str, Any], key: str) -> Any:
    current: Any = values
    for part in key.split("."):
        if isinstance(current, Mapping) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return _ABSENT
    return current


def traced_value(values: Mapping[str, Any], key: str) -> Traced:
    """The value at dotted ``key`` of an input's values, as lineage traces it."""
    current = _raw(values, key)
    if current is _ABSENT:
        return Traced(None)
    if current is None:
        return Traced("null")
    if isinstance(current, bool):
        return Traced("true" if current else "false")
    if isinstance(current, (str, int, float)):
        return Traced(str(current) if not isinstance(current, float) else repr(current))
    if isinstance(current, (datetime, date)):
        return Traced(current.isoformat())
    if isinstance(current, Mapping):
        kind = "a mapping"
    else:
        kind = "a list" if isinstance(current, list) else f"{type(current).__name__} data"
    return Traced(
        None,
        f"{key} is {kind}; lineage traces single values, so it cannot say whether this ran "
        "upstream (write the value out, or keep it out of promoteKeys)",
    )


def value_changes(
    cluster: str,
    tenant: str,
    path: str,
    old: TenantInput | None,
    new: TenantInput,
    keys: Sequence[str],
    *,
    added: bool = False,
) -> tuple[list[Change], list[BlindSpot]]:
    """The traced values a change of an input file moves (one :class:`Change` per provider
    document and key whose value differs; every value when the file is new) and the values
    it cannot trace."""
    changes: list[Change] = []
    spots: list[BlindSpot] = []
    before = old.documents if old is not None else ()
    for index, values in enumerate(new.documents):
        previous = before[index] if index < len(before) else None
        for key in keys:
            now = traced_value(values, key)
            was = traced_value(previous, key) if previous is not None else Traced(None)
            if now.problem is not None:
                if previous is not None and not added and _raw(previous, key) == _raw(values, key):
                    continue  # unchanged: nothing moved that would need tracing
                line = _line(new, key, index)
                spots.append(BlindSpot("untraceable", f"`{path}`: {now.problem}", path, line))
                continue
            if now.text is None and was.text is None:
                continue
            if now.text == was.text and not added:
                continue
            line = _line(new, key, index)  # only for a change: finding it parses the file
            changes.append(Change(cluster, tenant, path, line, was.text, now.text, key=key))
    return changes, spots


def _line(tenant: TenantInput, key: str, document: int) -> int | None:
    span = tenant.span(key, document)
    return span.line if span is not None else tenant.line(key, document)


def value_extractor(key: str) -> Callable[[str, bytes], str | None]:
    """``(path, bytes) -> text of key`` (first provider document) for a file's history; the
    image keeps the name the history cache already knows it by."""

    def extract(path: str, data: bytes) -> str | None:
        parsed = read_input_cached(path, data)
        if isinstance(parsed, InputError):
            return None
        if key == IMAGE:
            return parsed.image
        return traced_value(parsed.values, key).text

    extract.__name__ = "image_of" if key == IMAGE else f"value-{key}"
    return extract
