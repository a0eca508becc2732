"""The package shows its architecture, and its imports lean one way.

Layers, from the bottom: the pure core (``fleet``, ``rules``), the texts the bot writes
(``texts``), the GitHub side (``github``), the event handlers (``handlers``), the running service
(``service``) and the command-line tools (``cli``). ``settings`` and ``concurrency`` are shared
by everything; the fake GitHub (``fake``) stands apart and imports nothing of the product. Every
import counts: module level, inside functions, and under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "bot"

#: What each part of ``bot`` may import (besides itself).
ALLOWED: dict[str, frozenset[str]] = {
    "settings": frozenset(),
    "concurrency": frozenset(),
    "fleet": frozenset(),
    "rules": frozenset({"fleet"}),
    "texts": frozenset({"fleet", "rules"}),
    "github": frozenset({"fleet", "rules", "texts", "settings", "concurrency"}),
    "handlers": frozenset({"fleet", "rules", "texts", "github", "settings", "concurrency"}),
    "service": frozenset(
        {"fleet", "rules", "texts", "github", "handlers", "settings", "concurrency"}
    ),
    "cli": frozenset(
        {"fleet", "rules", "texts", "github", "handlers", "service", "settings", "concurrency"}
        | {"fake"}
    ),
    "fake": frozenset(),
    "__main__": frozenset(
        {"settings", "service", "cli", "handlers", "github", "fleet", "rules", "texts"}
    ),
}
#: The only modules at the top of ``bot/`` (everything else lives in a package named for
#: what it is for).
TOP_LEVEL = {"__init__", "__main__", "settings"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def imports_of(name: str, path: Path, known: Iterable[str]) -> set[str]:
    """Every ``bot`` module ``name`` imports, wherever the import statement stands."""
    known = set(known)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "bot")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "bot":
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in known else target)
    found.discard(name)
    return found


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {name: imports_of(name, path, mods) for name, path in mods.items()}


def find_cycle(edges: Mapping[str, Iterable[str]]) -> list[str] | None:
    """One import circle as a path (first == last), or None (iterative depth-first search)."""
    colour: dict[str, int] = {}  # 1: on the current path, 2: done
    for start in sorted(edges):
        if colour.get(start):
            continue
        path = [start]
        stack = [iter(sorted(edges.get(start, ())))]
        colour[start] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                colour[path.pop()] = 2
                stack.pop()
                continue
            if colour.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if not colour.get(nxt):
                colour[nxt] = 1
                path.append(nxt)
                stack.append(iter(sorted(edges.get(nxt, ()))))
    return None


def part_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def layer_violations(edges: Mapping[str, Iterable[str]]) -> list[str]:
    out = []
    for source, targets in sorted(edges.items()):
        src = part_of(source)
        if src == "__init__":
            continue
        allowed = ALLOWED.get(src)
        assert allowed is not None, f"{source}: bot.{src} is not in the architecture's layers"
        for target in sorted(targets):
            dst = part_of(target)
            if dst != src and dst not in allowed:
                out.append(f"{source} imports {target} (bot.{src} may not import bot.{dst})")
    return out


# --- the checker can fail ---------------------------------------------------------------------


def test_the_cycle_finder_finds_a_circle_and_only_a_circle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set(), "d": {"a", "c"}}) is None


def test_the_layer_rule_names_an_upward_import() -> None:
    assert layer_violations({"bot.rules.gate": {"bot.github.facts"}}) == [
        "bot.rules.gate imports bot.github.facts (bot.rules may not import bot.github)"
    ]
    assert layer_violations({"bot.handlers.checks": {"bot.rules.gate"}}) == []


def test_function_local_and_type_checking_imports_are_seen(tmp_path: Path) -> None:
    source = tmp_path / "mod.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from bot.service.app import BotState\n"
        "def f():\n    from bot.handlers import checks\n",
        encoding="utf-8",
    )
    found = imports_of("bot.github.x", source, {"bot.handlers.checks"})
    assert found == {"bot.service.app", "bot.handlers.checks"}


# --- the package ------------------------------------------------------------------------------


def test_no_import_circles() -> None:
    cycle = find_cycle(graph())
    assert cycle is None, "import circle: " + " -> ".join(cycle or [])


def test_dependencies_point_one_way() -> None:
    assert layer_violations(graph()) == []


def test_the_core_imports_nothing_of_the_shell() -> None:
    shell = ("bot.github", "bot.handlers", "bot.service", "bot.cli", "bot.texts")
    edges = graph()
    wrong = [
        f"{source} -> {target}"
        for source, targets in edges.items()
        if source.startswith(("bot.fleet", "bot.rules"))
        for target in targets
        if target.startswith(shell)
    ]
    assert wrong == []


def test_only_a_handful_of_modules_stay_at_the_top() -> None:
    top = {p.stem for p in ROOT.glob("*.py")}
    assert top == TOP_LEVEL
    packages = {p.name for p in ROOT.iterdir() if (p / "__init__.py").is_file()}
    assert packages == set(ALLOWED) - TOP_LEVEL
