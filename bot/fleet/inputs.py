"""Tenant ``input.yaml`` files: read them, and change values without touching any other byte.

An ``input.yaml`` is a Flux Operator ResourceSetInputProvider. Its values live either at
``spec.defaultValues`` (the real ``fluxcd.controlplane.io/v1`` API, ``spec.type: Static``) or at
``spec.values`` (the form of the seed document). Both are read and written as they are; one is never
converted into the other, but the seed form gets a warning because the real CRD has no such field.

Edits follow design.md's "Minimal diffs": a reviewer must see one changed line, so a ruamel dump is
not good enough (it re-indents, re-wraps, drops a BOM, rewrites CRLF). The parser only *locates* the
scalar; the new characters are spliced into the original bytes; the result is parsed again and must
differ from the original in exactly the requested values, or the edit is refused.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

from ruamel.yaml.resolver import VersionedResolver

from bot.fleet.images import ImageRefError, parse_image
from bot.fleet.yamlsafe import (
    FileProblem,
    MappingNode,
    Node,
    ScalarNode,
    SequenceNode,
    YamlProblem,
    compose_documents,
    construct,
    decode_utf8,
    line_of,
    mapping_get,
)

__all__ = [
    "MAX_INPUT_BYTES",
    "RSIP_KIND",
    "InputError",
    "Scalar",
    "TenantInput",
    "ValueSpan",
    "edit_scalars",
    "provider_lines",
    "read_input",
    "read_input_cached",
    "set_image",
    "set_values",
]

MAX_INPUT_BYTES = 1 * 1024 * 1024
RSIP_KIND = "ResourceSetInputProvider"

Scalar = str | int | float | bool
KeyPath = tuple[str, ...]

_STYLE_NAMES = {"'": "single-quoted", '"': "double-quoted", "|": "literal", ">": "folded"}
_STR_TAG = "tag:yaml.org,2002:str"
# Both YAML versions must read a plain value as a string: Kubernetes' YAML library follows 1.1
# (``on``, ``1:20`` are not strings there), ruamel follows 1.2.
_RESOLVERS = (VersionedResolver(version=(1, 1)), VersionedResolver(version=(1, 2)))
# Conservative: the characters of image references, versions and names; no indicators, no
# flow punctuation, no comment or mapping markers, so the value reads the same in any context.
_PLAIN_RE = re.compile(r"[A-Za-z0-9_./][A-Za-z0-9_./:@+ -]*")
_DOUBLE_ESCAPES = {
    "\\": "\\\\",
    '"': '\\"',
    "\0": "\\0",
    "\a": "\\a",
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\v": "\\v",
    "\f": "\\f",
    "\r": "\\r",
    "\x1b": "\\e",
    "\x85": "\\N",
    "\u2028": "\\L",
    "\u2029": "\\P",
}


class InputError(FileProblem):
    """An input file the bot cannot read or safely edit; ``str()`` is ``path:line: message``."""


@dataclass(frozen=True)
class ValueSpan:
    """Where a scalar sits: byte offsets of the whole token (quotes included), 1-based line/column.

    ``style`` is ``plain``, ``single-quoted``, ``double-quoted``, ``literal`` or ``folded``.
    """

    key: str
    start: int
    end: int
    line: int
    column: int
    style: str


@dataclass(frozen=True)
class _Text:
    """The decoded file, with what is needed to map character indexes back to byte offsets."""

    data: bytes
    text: str
    bom: int
    ascii: bool

    def byte(self, index: int) -> int:
        if self.ascii:
            return self.bom + index
        return self.bom + len(self.text[:index].encode("utf-8"))


@dataclass(frozen=True)
class TenantInput:
    """What a tenant's input.yaml says, in plain Python, plus where each value sits."""

    path: str
    form: Literal["defaultValues", "values"]
    name: str | None
    namespace: str | None
    values: Mapping[str, Any]
    warnings: tuple[str, ...]
    values_line: int | None = None  # line of the ``defaultValues:``/``values:`` key
    #: The values of every further ResourceSetInputProvider document of the file, in file
    #: order: a cluster applies them all, so the gate judges them all (edits change only the
    #: first).
    others: tuple[Mapping[str, Any], ...] = ()
    #: The file as read. Spans are found by parsing it again when asked (rarely: annotations),
    #: so that a remembered input is a few hundred bytes, not its YAML node graph (8 KB).
    _data: bytes | None = field(default=None, repr=False, compare=False)

    @property
    def image(self) -> str | None:
        """``values["image"]`` when it is a string (read_input refuses any other type)."""
        image = self.values.get("image")
        return image if isinstance(image, str) else None

    def get(self, dotted_key: str) -> Any:
        """The value at ``app.version`` (digits index lists), or None when it is absent."""
        current: Any = self.values
        for part in dotted_key.split("."):
            if isinstance(current, Mapping) and part in current:
                current = current[part]
            elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
                current = current[int(part)]
            else:
                return None
        return current

    @property
    def documents(self) -> tuple[Mapping[str, Any], ...]:
        """The values of each provider document of the file: ``values`` first."""
        return (self.values, *self.others)

    def span(self, dotted_key: str, document: int = 0) -> ValueSpan | None:
        """Where the scalar at ``dotted_key`` sits (in provider document number ``document``,
        0 for the first); None when absent or not a scalar."""
        if self._data is None:
            return None
        text, documents = _load(self.path, self._data)
        indexes = _rsip_documents(self.path, documents)
        if not 0 <= document < len(indexes):
            return None
        _, values_node, _, _ = _values_node(self.path, documents[indexes[document]])
        if values_node is None:
            return None
        node = _find(values_node, tuple(dotted_key.split(".")))
        if not isinstance(node, ScalarNode):
            return None
        return _span(text, dotted_key, node)

    def line(self, dotted_key: str, document: int = 0) -> int | None:
        """The line of the key ``dotted_key`` (any value: a scalar, a mapping, a list) in
        provider document number ``document``; None when absent."""
        if self._data is None:
            return None
        _, documents = _load(self.path, self._data)
        indexes = _rsip_documents(self.path, documents)
        if not 0 <= document < len(indexes):
            return None
        _, values_node, _, _ = _values_node(self.path, documents[indexes[document]])
        parts = tuple(dotted_key.split("."))
        steps = _walk(values_node, parts) if values_node is not None else []
        return line_of(steps[-1][0]) if steps and len(steps) == len(parts) else None


def read_input(path: str, data: bytes) -> TenantInput:
    """Read a tenant input file; raises :class:`InputError` naming the file and line."""
    _, documents = _load(path, data)
    index, warnings = _rsip_document(path, documents)
    root = documents[index]
    form, values_node, values_line, form_warnings = _values_node(path, root)
    values: dict[str, Any] = {}
    if values_node is not None:
        values = _construct(path, values_node)
    others = []
    for extra in _rsip_documents(path, documents)[1:]:
        _, other_node, _, _ = _values_node(path, documents[extra])
        others.append(_construct(path, other_node) if other_node is not None else {})
    image = values.get("image")
    if "image" in values and not isinstance(image, str):
        found = mapping_get(values_node, "image") if values_node is not None else None
        raise InputError(
            path,
            line_of(found[1]) if found else values_line,
            f"spec.{form}.image is {image!r} ({type(image).__name__}); "
            "it must be a string such as registry.example.com/app:v1.2.3",
        )
    if form == "values":
        form_warnings.append(_seed_form_warning(image if isinstance(image, str) else None))
    metadata = mapping_get(root, "metadata")
    return TenantInput(
        path=path,
        form=form,
        name=_string_at(path, metadata[1] if metadata else None, "name"),
        namespace=_string_at(path, metadata[1] if metadata else None, "namespace"),
        values=values,
        warnings=(*warnings, *form_warnings),
        values_line=values_line,
        others=tuple(others),
        _data=data,
    )


def provider_lines(path: str, data: bytes) -> tuple[int, ...]:
    """The lines where a ResourceSetInputProvider document starts in any YAML file (a tenant's
    input.yaml or not); raises :class:`InputError` when the file cannot be read."""
    _, documents = _load(path, data)
    return tuple(line_of(documents[i]) for i in _rsip_documents(path, documents))


@lru_cache(maxsize=2048)
def read_input_cached(path: str, data: bytes) -> TenantInput | InputError:
    """:func:`read_input`, remembered by (path, content): the same file is judged again and
    again (each bump, each check), and parsing is most of the bot's CPU. Never raises."""
    try:
        return read_input(path, data)
    except InputError as exc:
        return exc


def set_values(path: str, data: bytes, changes: Mapping[str, Scalar]) -> bytes:
    """``data`` with the given values (dotted keys under the values mapping) set; nothing else.

    Keys must exist and hold scalars: the bot never adds keys. Raises :class:`InputError` rather
    than return bytes that would change anything else.
    """
    text, documents = _load(path, data)
    index, _ = _rsip_document(path, documents)
    form, values_node, values_line, _ = _values_node(path, documents[index])
    if values_node is None:
        raise InputError(
            path, values_line, f"there is no spec.{form} mapping to change; the bot never adds keys"
        )
    base: KeyPath = ("spec", form)
    paths = {(*base, *key.split(".")): value for key, value in changes.items()}
    return _edit(path, text, documents, index, paths)


def set_image(path: str, data: bytes, image: str) -> bytes:
    """``data`` with ``image`` set to ``image``; only the characters that differ change."""
    try:
        parse_image(image)
    except ImageRefError as exc:
        raise InputError(path, None, str(exc)) from None
    return set_values(path, data, {"image": image})


def edit_scalars(path: str, data: bytes, document: int, changes: Mapping[KeyPath, Scalar]) -> bytes:
    """Set existing scalars of YAML document number ``document`` (key paths from its root).

    The splice-and-verify engine behind :func:`set_values` (and the Flux source edits): locate each
    scalar, render the new value in the scalar's own quoting style where that is safe, splice it
    into the original bytes, then re-parse and check that exactly these values changed.
    """
    text, documents = _load(path, data)
    if not 0 <= document < len(documents):
        raise InputError(path, None, f"the file has no YAML document number {document + 1}")
    return _edit(path, text, documents, document, changes)


def _edit(
    path: str,
    text: _Text,
    documents: list[Node],
    document: int,
    changes: Mapping[KeyPath, Scalar],
) -> bytes:
    root = documents[document]
    splices: list[tuple[int, int, str]] = []
    for key_path, value in changes.items():
        splice = _plan_splice(path, text, root, key_path, value)
        if splice is not None:
            splices.append(splice)
    if not splices:
        return text.data
    result = _apply(path, text, sorted(splices))
    _verify(path, documents, document, changes, result)
    return result


def _load(path: str, data: bytes) -> tuple[_Text, list[Node]]:
    try:
        text, bom = decode_utf8(data, MAX_INPUT_BYTES)
        documents = compose_documents(text, merge_keys=False)
    except YamlProblem as exc:
        raise InputError(path, exc.line, exc.message) from None
    return _Text(data, text, bom, text.isascii()), documents


def _construct(path: str, node: Node) -> Any:
    try:
        return construct(node)
    except YamlProblem as exc:
        raise InputError(path, exc.line, exc.message) from None


def _rsip_documents(path: str, documents: list[Node]) -> list[int]:
    """The indexes of the ResourceSetInputProvider documents, in file order."""
    return [
        i
        for i, doc in enumerate(documents)
        if (kind := mapping_get(doc, "kind")) is not None and kind[1].value == RSIP_KIND
    ]


def _rsip_document(path: str, documents: list[Node]) -> tuple[int, list[str]]:
    """The index of the first ResourceSetInputProvider document, and a warning if there are
    several."""
    found = _rsip_documents(path, documents)
    if not found:
        raise InputError(
            path,
            None,
            f"no YAML document in the file has `kind: {RSIP_KIND}`, so there are no tenant "
            "values to read",
        )
    warnings = []
    if len(found) > 1:
        lines = ", ".join(str(line_of(documents[i])) for i in found)
        warnings.append(
            f"the file holds {len(found)} {RSIP_KIND} documents (lines {lines}); "
            "lineage judges them all, but the bot changes only the first"
        )
    return found[0], warnings


def _values_node(
    path: str, root: Node
) -> tuple[Literal["defaultValues", "values"], Node | None, int | None, list[str]]:
    """Which form the file uses, its values mapping node (None if empty), its line, warnings."""
    spec = mapping_get(root, "spec")
    if spec is None:
        raise InputError(
            path,
            line_of(root),
            f"the {RSIP_KIND} has no spec; add `spec: {{type: Static, defaultValues: {{...}}}}`",
        )
    if not isinstance(spec[1], MappingNode):
        raise InputError(path, line_of(spec[1]), "spec must be a mapping")
    default_values = mapping_get(spec[1], "defaultValues")
    seed_values = mapping_get(spec[1], "values")
    warnings: list[str] = []
    form: Literal["defaultValues", "values"]
    if default_values is not None:
        form, (key_node, node) = "defaultValues", default_values
        if seed_values is not None:
            warnings.append(
                "spec has both defaultValues and values; the cluster never sees spec.values "
                "(the CRD has no such field), so the bot reads and changes only defaultValues"
            )
        warnings.extend(_type_warnings(spec[1]))
    elif seed_values is not None:
        form, (key_node, node) = "values", seed_values
    else:
        warnings.append("spec has no defaultValues, so there is nothing for the bot to promote")
        return "defaultValues", None, line_of(spec[0]), warnings
    if isinstance(node, ScalarNode) and node.tag == "tag:yaml.org,2002:null":
        return form, None, line_of(key_node), warnings
    if not isinstance(node, MappingNode):
        raise InputError(path, line_of(node), f"spec.{form} must be a mapping of names to values")
    return form, node, line_of(key_node), warnings


def _type_warnings(spec: Node) -> list[str]:
    found = mapping_get(spec, "type")
    if found is None:
        return [
            "spec.type is missing; the CRD requires it, and for values kept in Git it is Static"
        ]
    if found[1].value != "Static":
        return [
            f"spec.type is {found[1].value!r}; for any type but Static, defaultValues only fill "
            "inputs the provider does not export, so a change here may not reach the cluster"
        ]
    return []


def _seed_form_warning(image: str | None) -> str:
    return (
        "spec.values is the seed document's form, but the ResourceSetInputProvider CRD "
        "(fluxcd.controlplane.io/v1) has no spec.values: the API server prunes unknown fields, so "
        "these values never reach the cluster. The real form is:\n"
        "spec:\n"
        "  type: Static\n"
        "  defaultValues:\n"
        f"    image: {image or 'registry.example.com/app:v1.2.3'}"
    )


def _string_at(path: str, node: Node | None, key: str) -> str | None:
    found = mapping_get(node, key) if node is not None else None
    if found is None or not isinstance(found[1], ScalarNode):
        return None
    value = _construct(path, found[1])
    return value if isinstance(value, str) else None


def _walk(root: Node, parts: KeyPath) -> list[tuple[Node, Node]]:
    """(key node, value node) for each part of the path that exists, stopping at the first miss.

    Digit parts index sequences; a list item is its own "key" (it is where its line is).
    """
    steps: list[tuple[Node, Node]] = []
    node = root
    for part in parts:
        if isinstance(node, MappingNode):
            found = mapping_get(node, part)
            if found is None:
                break
            steps.append(found)
        elif isinstance(node, SequenceNode) and part.isdigit() and int(part) < len(node.value):
            steps.append((node.value[int(part)], node.value[int(part)]))
        else:
            break
        node = steps[-1][1]
    return steps


def _find(root: Node, parts: KeyPath) -> Node | None:
    """The node at ``parts`` below ``root``, or None."""
    steps = _walk(root, parts)
    if len(steps) < len(parts):
        return None
    return steps[-1][1] if steps else root


def _content_start(text: str, node: Node) -> int:
    """Index of the scalar's first character, after any ``&anchor`` or ``!tag`` properties."""
    index = int(node.start_mark.index)
    while index < len(text) and text[index] in "&!":
        while index < len(text) and not text[index].isspace():
            index += 1
        while index < len(text) and (text[index].isspace() or text[index] == "#"):
            if text[index] == "#":
                while index < len(text) and text[index] not in "\r\n":
                    index += 1
            else:
                index += 1
    return index


def _span(text: _Text, key: str, node: ScalarNode) -> ValueSpan:
    start = _content_start(text.text, node)
    mark_index = int(node.start_mark.index)
    line = int(node.start_mark.line) + 1 + text.text.count("\n", mark_index, start)
    line_start = text.text.rfind("\n", 0, start) + 1
    return ValueSpan(
        key=key,
        start=text.byte(start),
        end=text.byte(int(node.end_mark.index)),
        line=line,
        column=start - line_start + 1,
        style=_STYLE_NAMES.get(node.style or "", "plain"),
    )


def _plan_splice(
    path: str, text: _Text, root: Node, key_path: KeyPath, value: Scalar
) -> tuple[int, int, str] | None:
    """(start, end, new characters) for one change, or None when the value is already set."""
    dotted = ".".join(key_path)
    if not isinstance(value, (str, int, float)):
        raise InputError(path, None, f"{dotted}: only strings, numbers and booleans can be set")
    steps = _walk(root, key_path)
    line = line_of(steps[-1][0]) if steps else line_of(root)
    if len(steps) < len(key_path):
        raise InputError(
            path,
            line,
            f"{dotted} is not in the file; the bot changes existing values and never adds keys",
        )
    node = steps[-1][1] if steps else root
    if not isinstance(node, ScalarNode):
        kind = "list" if isinstance(node, SequenceNode) else "mapping"
        raise InputError(path, line, f"{dotted} is a {kind}; only scalars can be set")
    if _strictly_equal(_construct(path, node), value):
        return None
    if node.style in ("|", ">"):
        raise InputError(
            path,
            line,
            f"{dotted} is a block scalar ({node.style}); write it as a plain or quoted value",
        )
    start, end = _content_start(text.text, node), int(node.end_mark.index)
    if start >= end:
        raise InputError(path, line, f"{dotted} has no value to replace; write a placeholder value")
    return start, end, _render(value, node.style or "")


def _apply(path: str, text: _Text, splices: list[tuple[int, int, str]]) -> bytes:
    """Splice the new characters into the original bytes (never into a re-encoded copy)."""
    pieces: list[bytes] = []
    position = 0
    for start, end, new in splices:
        byte_start, byte_end = text.byte(start), text.byte(end)
        if byte_start < position:
            raise InputError(path, None, "two of the requested changes point at the same value")
        pieces += [text.data[position:byte_start], new.encode("utf-8")]
        position = byte_end
    pieces.append(text.data[position:])
    return b"".join(pieces)


def _verify(
    path: str, before: list[Node], document: int, changes: Mapping[KeyPath, Scalar], after: bytes
) -> None:
    """Re-parse ``after``; it must equal ``before`` with exactly ``changes`` applied."""
    try:
        _, new_documents = _load(path, after)
    except InputError as exc:
        raise InputError(path, exc.line, f"the edit would break the file ({exc.message})") from None
    expected = [_tree_copy(_construct(path, doc)) for doc in before]
    for key_path, value in changes.items():
        _assign(expected[document], key_path, value)
    actual = [_construct(path, doc) for doc in new_documents]
    if len(actual) != len(expected):
        raise InputError(path, None, "the edit would change the number of YAML documents")
    for number, (want, got) in enumerate(zip(expected, actual, strict=True), start=1):
        difference = _first_difference(want, got, ())
        if difference is not None:
            where = ".".join(difference) or "the document root"
            raise InputError(
                path,
                None,
                f"the edit would also change {where} in document {number} (an alias or anchor "
                "shares that value?); nothing was changed",
            )


def _render(value: Scalar, style: str) -> str:
    """YAML text for ``value``, in ``style`` when that reads back as the same value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _float_text(value)
    if style == "" and _plain_is_safe(value):
        return value
    if style == "'" and all(_printable_inline(ch) for ch in value):
        return "'" + value.replace("'", "''") + "'"
    return _double_quoted(value)


def _plain_is_safe(value: str) -> bool:
    """True when ``value`` written plain reads back as this very string, in block or flow context,
    under YAML 1.1 and 1.2 (the character set has no flow punctuation, ``#`` or indicators)."""
    if not _PLAIN_RE.fullmatch(value) or value.endswith((":", " ")) or ": " in value:
        return False
    return all(str(r.resolve(ScalarNode, value, (True, False))) == _STR_TAG for r in _RESOLVERS)


def _printable_inline(ch: str) -> bool:
    """YAML's printable set, minus line breaks (which quoted scalars would fold)."""
    return (
        ch == "\t"
        or " " <= ch <= "~"
        or "\xa0" <= ch <= "\ud7ff"
        or ("\ue000" <= ch <= "\ufffd" and ch != "\ufeff")
        or ch >= "\U00010000"
    )


def _double_quoted(value: str) -> str:
    out = []
    for ch in value:
        if ch in _DOUBLE_ESCAPES:
            out.append(_DOUBLE_ESCAPES[ch])
        elif _printable_inline(ch):
            out.append(ch)
        elif ord(ch) <= 0xFF:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) <= 0xFFFF:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    return '"' + "".join(out) + '"'


def _float_text(value: float) -> str:
    if math.isnan(value):
        return ".nan"
    if math.isinf(value):
        return ".inf" if value > 0 else "-.inf"
    text = repr(value)
    mantissa, e, exponent = text.partition("e")
    if e and "." not in mantissa:
        text = f"{mantissa}.0e{exponent}"  # YAML 1.1 needs the dot to read it as a float
    return text


def _strictly_equal(a: Any, b: Any) -> bool:
    """Equality that also compares types (``1 == True`` in Python, not in YAML)."""
    return _first_difference(a, b, ()) is None


def _first_difference(a: Any, b: Any, where: KeyPath) -> KeyPath | None:
    if type(a) is not type(b):
        return where
    if isinstance(a, dict):
        if list(a) != list(b):
            return where
        for key in a:
            found = _first_difference(a[key], b[key], (*where, str(key)))
            if found is not None:
                return found
        return None
    if isinstance(a, list):
        if len(a) != len(b):
            return where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            found = _first_difference(x, y, (*where, str(i)))
            if found is not None:
                return found
        return None
    if isinstance(a, float) and math.isnan(a) and math.isnan(b):
        return None
    return None if a == b else where


def _tree_copy(value: Any) -> Any:
    """A copy in which no two places share an object (aliases become independent copies)."""
    if isinstance(value, dict):
        return {key: _tree_copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_tree_copy(item) for item in value]
    return value


def _assign(container: Any, key_path: KeyPath, value: Scalar) -> None:
    for part in key_path[:-1]:
        container = container[int(part)] if isinstance(container, list) else container[part]
    last = key_path[-1]
    if isinstance(container, list):
        container[int(last)] = value
    else:
        container[last] = value
