"""Bounded YAML loading for files that arrive from repositories we do not control.

Every YAML file the bot reads comes from a pull request or a push, so it may be hostile: a "billion
laughs" alias bomb, a structure nested ten thousand levels deep (ruamel's composer recurses), or
simply a few megabytes of junk. This module parses with ruamel.yaml's event parser (a state machine,
no recursion) and builds the node graph itself, counting as it goes, so every limit is enforced
before anything recursive or expensive runs. The nodes keep their marks (line, column, character
index, quoting style): callers need them to report lines and to edit bytes in place.

Values follow YAML 1.2 (ruamel's default): ``yes`` is a string, ``0o17`` is octal. Tabs between
tokens follow libyaml (whose rules Kubernetes' go-yaml shares), not ruamel: ``image: x\t# c`` is
valid, a tab that indents is not.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.constructor import SafeConstructor
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import (
    AliasEvent,
    DocumentStartEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
)
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from ruamel.yaml.resolver import VersionedResolver
from ruamel.yaml.scanner import Scanner

__all__ = [
    "ALIAS_BUDGET",
    "MAX_DEPTH",
    "MappingNode",
    "Node",
    "ScalarNode",
    "SequenceNode",
    "YamlProblem",
    "compose_documents",
    "construct",
    "decode_utf8",
    "line_of",
    "mapping_get",
]

MAX_DEPTH = 32
# How many nodes aliases may add by expansion, over the whole stream. Real manifests use a handful
# of anchors; a bomb needs millions. Anything in between is refused rather than walked.
ALIAS_BUDGET = 10_000

_BOM = b"\xef\xbb\xbf"
#: What a Git LFS pointer file starts with (git-lfs docs/spec.md): such a file is a pointer to
#: content kept elsewhere, and reads as a one-line string, not as the manifest it stands for.
LFS_POINTER = b"version https://git-lfs.github.com/spec/"
_LINE_END = "\0\r\n\x85\u2028\u2029"
_resolver = VersionedResolver()


class _YAML(YAML):
    """ruamel's YAML without plug-in discovery: ``YAML()`` globs its package directory for
    plug-ins on every construction, which was most of the CPU of a parse (the bot makes a
    fresh, stateless loader per file and uses no plug-ins)."""

    def official_plug_ins(self) -> list[str]:
        return []


@dataclass(frozen=True)
class YamlProblem(Exception):
    """Why a YAML text was refused; ``line`` is 1-based, or None when no line applies."""

    message: str
    line: int | None = None

    def __str__(self) -> str:
        return self.message


def decode_utf8(data: bytes, limit: int) -> tuple[str, int]:
    """The text of ``data`` without its UTF-8 BOM, and the BOM's length in bytes (0 or 3).

    The size limit is checked first, before any decoding work.
    """
    if len(data) > limit:
        raise YamlProblem(
            f"the file is {len(data)} bytes; the limit is {limit} bytes, so it was not read"
        )
    if data.startswith(LFS_POINTER):
        raise YamlProblem(
            "Git LFS pointer, not YAML: the file's content is stored in Git LFS, and the bot "
            "reads files from git itself; keep fleet YAML out of Git LFS (git lfs untrack)",
            1,
        )
    bom = len(_BOM) if data.startswith(_BOM) else 0
    try:
        return data[bom:].decode("utf-8"), bom
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise YamlProblem("the file is not valid UTF-8; save it as UTF-8", line) from None


def may_hold(data: bytes, *marks: bytes) -> bool:
    """Whether YAML ``data`` may hold one of ``marks`` (an API group, a kind) as a value: it
    is written there as is, or the file could spell it with other bytes (a backslash escape
    in a double-quoted scalar, ``"fluxcd\\x2eio"``; an encoding other than UTF-8, which YAML
    tools read and this module refuses). Only a False answer lets a caller skip parsing:
    what the cluster would read cannot hide behind a cheap text search."""
    if any(mark in data for mark in marks) or b"\\" in data:
        return True
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def line_of(node: Node) -> int:
    """The 1-based line where ``node`` starts."""
    return int(node.start_mark.line) + 1


def compose_documents(text: str, *, merge_keys: bool = True) -> list[Node]:
    """Parse ``text`` into one root node per document, within the depth and alias limits.

    A key written twice in one mapping is an error wherever it is: which of the two a cluster
    sees depends on the tool that reads the file, so the bot could judge the one that does not
    apply. With ``merge_keys=False`` a ``<<`` merge key is refused too (readers that walk the
    nodes by key would not see what a merge brings in).
    """
    yaml = _YAML(typ="safe", pure=True)
    yaml.Scanner = _Scanner
    try:
        return _Composer(merge_keys=merge_keys).run(yaml.parse(text))
    except MarkedYAMLError as exc:
        raise _syntax_problem(exc) from None
    except YAMLError as exc:
        raise YamlProblem(f"YAML error: {exc}") from None


def construct(node: Node) -> Any:
    """Plain Python for ``node`` (dict, list, str, int, float, bool, None, dates).

    Duplicate mapping keys are an error: which of the two a cluster would see depends on the
    tool, and an edit could not know which one to change.
    """
    try:
        # A fresh loader per call: a constructor left half-way by an error keeps stale state.
        constructor: SafeConstructor = _YAML(typ="safe", pure=True).constructor
        return constructor.construct_document(node)
    except MarkedYAMLError as exc:
        problem = _syntax_problem(exc)
        message = problem.message.replace("YAML syntax error: ", "", 1)
        raise YamlProblem(f"invalid value: {message}", problem.line) from None
    except (YAMLError, ValueError, TypeError) as exc:
        raise YamlProblem(f"invalid value: {exc}", line_of(node)) from None


def mapping_get(node: Node, key: str) -> tuple[ScalarNode, Node] | None:
    """The (key node, value node) of ``key`` in a mapping node, or None (also for non-mappings)."""
    if not isinstance(node, MappingNode):
        return None
    for key_node, value_node in node.value:
        if isinstance(key_node, ScalarNode) and key_node.value == key:
            return key_node, value_node
    return None


def _syntax_problem(exc: MarkedYAMLError) -> YamlProblem:
    mark = exc.problem_mark or exc.context_mark
    line = int(mark.line) + 1 if mark is not None else None
    parts = [p for p in (exc.context, exc.problem) if p]
    detail = " ".join(str(p) for p in parts) or "unreadable YAML"
    return YamlProblem(f"YAML syntax error: {detail}", line)


class _Scanner(Scanner):
    """ruamel's scanner with libyaml's tab rule.

    ruamel skips only spaces between tokens in block context, so it refuses ``image: x\t# note``
    and trailing tabs, which Kubernetes accepts. libyaml also skips tabs where no simple key may
    start (after a value, and in flow context); tabs where indentation counts stay an error.
    """

    def scan_to_next_token(self) -> None:
        peek, forward = self.reader.peek, self.reader.forward
        if self.reader.index == 0 and peek() == "\ufeff":
            forward()
        while True:
            blanks = " \t" if self.flow_level or not self.allow_simple_key else " "
            while peek() in blanks:
                forward()
            if peek() == "#":
                while peek() not in _LINE_END:
                    forward()
            if not self.scan_line_break():
                return
            if not self.flow_level:
                self.allow_simple_key = True


class _Composer:
    """Events -> nodes without recursion, counting depth and alias expansion as it goes."""

    def __init__(self, *, merge_keys: bool = True) -> None:
        self.merge_keys = merge_keys
        self.documents: list[Node] = []
        # [collection node, pending mapping key or None, {key: line} of a mapping's keys]
        self.stack: list[list[Any]] = []
        self.anchors: dict[str, Node] = {}
        self.sizes: dict[str, int] = {}  # anchor -> expanded size of its node
        self.open_anchors: dict[str, int] = {}  # anchor -> expanded count when it opened
        self.expanded = 0  # nodes counted with every alias expanded
        self.real = 0  # nodes as written

    def run(self, events: Iterator[Any]) -> list[Node]:
        for event in events:
            if isinstance(event, DocumentStartEvent):
                self.anchors, self.sizes, self.open_anchors = {}, {}, {}
            elif isinstance(event, ScalarEvent):
                self._scalar(event)
            elif isinstance(event, (SequenceStartEvent, MappingStartEvent)):
                self._start(event)
            elif isinstance(event, (SequenceEndEvent, MappingEndEvent)):
                self._end(event)
            elif isinstance(event, AliasEvent):
                self._alias(event)
        return self.documents

    def _count(self, amount: int, line: int) -> None:
        self.expanded += amount
        if self.expanded - self.real > ALIAS_BUDGET:
            raise YamlProblem(
                f"aliases expand to more than {ALIAS_BUDGET} extra nodes; "
                "this looks like an alias bomb, so the file was not read",
                line,
            )

    def _scalar(self, event: ScalarEvent) -> None:
        tag = event.ctag
        if tag is None or str(tag) == "!":
            tag = _resolver.resolve(ScalarNode, event.value, event.implicit)
        node = ScalarNode(
            tag,
            event.value,
            event.start_mark,
            event.end_mark,
            style=event.style,
            anchor=event.anchor,
        )
        self.real += 1
        self._count(1, int(event.start_mark.line) + 1)
        if event.anchor is not None:
            self.anchors[event.anchor] = node
            self.sizes[event.anchor] = 1
        self._attach(node)

    def _start(self, event: SequenceStartEvent | MappingStartEvent) -> None:
        line = int(event.start_mark.line) + 1
        if len(self.stack) >= MAX_DEPTH:
            raise YamlProblem(
                f"the YAML is nested more than {MAX_DEPTH} levels deep, so it was not read", line
            )
        cls = SequenceNode if isinstance(event, SequenceStartEvent) else MappingNode
        tag = event.ctag
        if tag is None or str(tag) == "!":
            tag = _resolver.resolve(cls, None, event.implicit)
        node = cls(
            tag, [], event.start_mark, None, flow_style=event.flow_style, anchor=event.anchor
        )
        self.real += 1
        self._count(1, line)
        if event.anchor is not None:
            self.anchors[event.anchor] = node
            self.open_anchors[event.anchor] = self.expanded - 1
        self.stack.append([node, None, {}])

    def _end(self, event: SequenceEndEvent | MappingEndEvent) -> None:
        node = self.stack.pop()[0]
        node.end_mark = event.end_mark
        anchor = node.anchor
        if anchor is not None and anchor in self.open_anchors:
            self.sizes[anchor] = self.expanded - self.open_anchors.pop(anchor)
        self._attach(node)

    def _alias(self, event: AliasEvent) -> None:
        line = int(event.start_mark.line) + 1
        anchor = event.anchor
        if anchor not in self.anchors:
            raise YamlProblem(
                f"YAML syntax error: the alias *{anchor} has no anchor &{anchor}", line
            )
        if anchor in self.open_anchors:
            raise YamlProblem(
                f"the alias *{anchor} refers to a node that contains it; "
                "recursive YAML is not supported",
                line,
            )
        self._count(self.sizes[anchor], line)
        self._attach(self.anchors[anchor])

    def _attach(self, node: Node) -> None:
        if not self.stack:
            self.documents.append(node)
            return
        top = self.stack[-1]
        parent = top[0]
        if isinstance(parent, SequenceNode):
            parent.value.append(node)
        elif top[1] is None:
            self._key(node, top[2])
            top[1] = node
        else:
            parent.value.append((top[1], node))
            top[1] = None

    def _key(self, key: Node, seen: dict[tuple[str, str], int]) -> None:
        """Refuse a scalar key the mapping already has (and ``<<`` when merges are off)."""
        if not isinstance(key, ScalarNode):
            return
        line = int(key.start_mark.line) + 1
        if key.value == "<<" and not self.merge_keys and not key.style:
            raise YamlProblem(
                "a merge key (<<) is not supported in this file: write the values out, so "
                "that what the bot reads is what the cluster gets",
                line,
            )
        identity = (str(key.tag), key.value)
        first = seen.get(identity)
        if first is not None:
            raise YamlProblem(
                f"duplicate key {key.value!r}: it appears twice in one mapping (lines {first} "
                f"and {line}); which one a cluster sees depends on the tool, so keep one",
                line,
            )
        seen[identity] = line


class FileProblem(ValueError):
    """A fleet file the bot cannot act on, located: ``str()`` is ``path:line: message``."""

    def __init__(self, path: str, line: int | None, message: str) -> None:
        self.path = path
        self.line = line
        self.message = message
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else self.path
        return f"{where}: {self.message}"
