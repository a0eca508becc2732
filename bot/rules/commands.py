"""Slash commands in a comment: only what a person sees as a line of text counts (pure).

A comment is Markdown, and GitHub shows only part of what is written: HTML comments are
invisible, code blocks and code spans show text as code, quotes show someone else's words. A
command hidden in any of those must not run, and one a reader sees must not be missed. So the
body is parsed the CommonMark way (markdown-it-py, the CommonMark reference algorithm with
GitHub's tables and strikethrough), and a command is a line of a top-level paragraph whose
visible text starts with ``/<name>``:

- not in a fenced (```` ``` ```` or ``~~~``, any length, with or without an info string) or
  indented code block, not in a code span;
- not in an HTML comment (one line or many) or any other HTML block; on a line with an HTML
  element still open around it (``<del>``, ``<details>``...) it does not count either;
- not in a blockquote, a list item, a heading or a table;
- not struck through, emphasised or linked (``~~/promote prod~~`` is a command taken back).

Names are case-insensitive (``/PROMOTE PROD`` is ``/promote prod``) and compared after Unicode
NFKC normalisation. The set of known names is data (:data:`KNOWN`); a word that is one typo
away from a known name (``/promte``) is returned as a near miss with a ``suggestion``, while
ordinary words that merely start with one (``/promoted``, ``/statuses``) are not commands at all.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from markdown_it import MarkdownIt

__all__ = [
    "KNOWN",
    "MAX_BODY",
    "Command",
    "extract_commands",
    "is_near_miss",
    "still_as_written",
]

#: The commands the bot answers to, lower-case, without the slash.
KNOWN: frozenset[str] = frozenset({"promote", "status", "freeze", "unfreeze", "override"})

#: GitHub stores at most 65,536 characters of a comment; anything longer is not parsed.
MAX_BODY = 65_536


@dataclass(frozen=True)
class Command:
    """One command line of a comment.

    ``name`` is lower-case without the slash. For a near miss (``suggestion`` is set), ``name``
    is the word that was written and ``suggestion`` the known command it is one typo away from.
    ``args`` are the whitespace-separated words after the name, as written (case kept); ``text``
    is the same rest of the line as one string (for free-text arguments such as a reason).
    ``line`` is the 1-based line of the body the command starts on.
    """

    name: str
    args: tuple[str, ...]
    line: int
    text: str = ""
    suggestion: str | None = None

    @property
    def near_miss(self) -> bool:
        return self.suggestion is not None

    @property
    def shown(self) -> str:
        """The command as a person would type it: ``/promote prod payment-app``."""
        return " ".join((f"/{self.name}", *self.args))


def extract_commands(body: str, known: Iterable[str] = KNOWN) -> list[Command]:
    """Every command and near miss written as a line of the visible text of ``body``, in order."""
    names = frozenset(_fold(n) for n in known)
    out: list[Command] = []
    for number, text in visible_lines(body[:MAX_BODY]):
        command = _command_of(text, number, names)
        if command is not None:
            out.append(command)
    return out


def visible_lines(body: str) -> list[tuple[int, str]]:
    """``(line number, visible text)`` of each line of a top-level paragraph that starts with
    plain text (no code, markup or open HTML element around its beginning)."""
    tokens = _parser().parse(body.replace("\r\n", "\n").replace("\r", "\n"))
    source = body.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    html_open = 0  # HTML elements opened at the top level and not closed yet
    lines: list[tuple[int, str]] = []
    for i, token in enumerate(tokens):
        if token.type == "html_block" and token.level == 0:
            html_open = max(0, html_open + _html_balance(token.content))
            continue
        if token.type != "inline" or token.level != 1 or token.map is None:
            continue
        parent = tokens[i - 1] if i else None
        if parent is None or parent.type != "paragraph_open" or parent.level != 0:
            continue  # headings, table cells; paragraphs in quotes and lists have level > 0
        html_open = _paragraph_lines(token, source, html_open, lines)
    return lines


def _paragraph_lines(
    token: Any, source: Sequence[str], html_open: int, out: list[tuple[int, str]]
) -> int:
    """Append the paragraph's plain-start lines to ``out``; returns the HTML depth after it."""
    assert token.map is not None
    first, end = token.map
    line = first  # the source line the current visible line starts on
    hidden_breaks = 0  # line breaks inside HTML on the current line (they shift the next one)
    wrapped = 0  # emphasis, strikethrough, links open around the current position
    text: list[str] = []
    plain: bool | None = None  # does the line start with plain text? None: nothing seen yet

    for child in token.children or []:
        kind = child.type
        if kind in ("softbreak", "hardbreak"):
            _finish(out, source, first, end, line, text, plain)
            line, hidden_breaks, text, plain = line + 1 + hidden_breaks, 0, [], None
            continue
        if kind == "html_inline":
            html_open = max(0, html_open + _html_balance(child.content))
            hidden_breaks += child.content.count("\n")
            if plain is None and re.fullmatch(r"<br\s*/?>", child.content.strip(), re.I):
                plain = False  # "<br>/promote": a line of its own only on the screen
            continue
        if kind.endswith("_open"):
            wrapped += 1
            continue
        if kind.endswith("_close"):
            wrapped = max(0, wrapped - 1)
            continue
        if kind == "image":
            plain = False if plain is None else plain
            continue
        content = child.content if kind in ("text", "code_inline") else ""
        if plain is None and content.strip():
            plain = kind == "text" and wrapped == 0 and html_open == 0
        text.append(content)
    _finish(out, source, first, end, line, text, plain)
    return html_open


def _finish(
    out: list[tuple[int, str]],
    source: Sequence[str],
    first: int,
    end: int,
    line: int,
    text: list[str],
    plain: bool | None,
) -> None:
    visible = " ".join("".join(text).split())
    if plain and visible:
        out.append((_locate(source, first, end, line, visible), visible))


def _locate(source: Sequence[str], first: int, end: int, counted: int, visible: str) -> int:
    """The 1-based source line of a visible line: where it was counted, or (when a code span
    or an entity hid line breaks from the count) the next source line that starts with it."""
    word = visible.split()[0] if visible.split() else visible
    for number in range(min(counted, end - 1), end):
        if source[number].strip().startswith(word):
            return number + 1
    return min(counted, end - 1) + 1


_TAG_RE = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9-]*)\b[^>]*?(/?)>", re.S)
_VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param"}
    | {"source", "track", "wbr"}
)


def _html_balance(html: str) -> int:
    """Opened minus closed elements in a piece of raw HTML (comments and void tags count 0)."""
    html = re.sub(r"<!--.*?-->", "", html, flags=re.S)
    balance = 0
    for closing, name, self_closing in _TAG_RE.findall(html):
        if name.lower() in _VOID or self_closing:
            continue
        balance += -1 if closing else 1
    if "<!--" in html:  # a comment that does not end here hides what follows
        balance += 1
    return balance


def _command_of(text: str, line: int, names: frozenset[str]) -> Command | None:
    if not text.startswith("/"):
        return None
    words = text[1:].split()
    if not words or text[1:2].isspace():
        return None
    head = words[0]
    rest = text[1 + len(head) :].strip()
    name = _fold(head)
    args = tuple(words[1:])
    if name in names:
        return Command(name=name, args=args, line=line, text=rest)
    suggestion = next((known for known in sorted(names) if is_near_miss(name, known)), None)
    if suggestion is not None:
        return Command(name=name, args=args, line=line, text=rest, suggestion=suggestion)
    return None


def is_near_miss(word: str, command: str) -> bool:
    """A likely typo of ``command``: one edit away (a letter missing, extra, wrong or two
    swapped), but not the command with letters added at the end (``promoted``, ``statuses``:
    ordinary words), and at least three letters long."""
    word, command = _fold(word), _fold(command)
    if word == command or len(word) < 3 or word.startswith(command):
        return False
    if not all(c.isalnum() or c in "-_" for c in word):
        return False
    return _distance_at_most_one(word, command)


def _distance_at_most_one(a: str, b: str) -> bool:
    """Damerau-Levenshtein distance (optimal string alignment) of at most 1."""
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diffs = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
        if len(diffs) <= 1:
            return True
        i, j = diffs[0], diffs[-1]
        return len(diffs) == 2 and j == i + 1 and a[i] == b[j] and a[j] == b[i]
    short, long = (a, b) if len(a) < len(b) else (b, a)
    i = 0
    while i < len(short) and short[i] == long[i]:
        i += 1
    return short[i:] == long[i + 1 :]


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    # GitHub Flavored Markdown is CommonMark plus tables and strikethrough (and autolinks and
    # task lists, which change nothing here). Raw HTML is on, as on GitHub, so it is recognised.
    return MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])


def still_as_written(sent: Mapping[str, Any], now: Mapping[str, Any] | None) -> bool:
    """Whether a comment read late (``issue_comment.created`` taken up from GitHub's delivery
    log) is still what its author wrote: not deleted (``now`` None), not edited since. Its
    commands run only then: an edited comment runs nothing (C5), and neither does one its
    author took back before the bot could read it."""
    if now is None:
        return False
    return (
        now.get("id") == sent.get("id")
        and now.get("body") == sent.get("body")
        and now.get("updated_at") == sent.get("updated_at")
    )
