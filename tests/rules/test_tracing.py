"""Which values lineage traces (issue 16, items 4 and 5): every promoteKeys entry of every
provider document, as text; what it cannot trace is a blind spot."""

from __future__ import annotations

from datetime import date

import pytest

from bot.fleet.inputs import read_input
from bot.rules.tracing import traced_value, value_changes, value_extractor

PATH = "clusters/prod-use1-01/tenants/app/input.yaml"


def rsip(values: str, extra: str = "") -> bytes:
    text = f"kind: ResourceSetInputProvider\nspec:\n  type: Static\n  defaultValues:\n{values}"
    return (text + extra).encode()


@pytest.mark.parametrize(
    ("value", "text"),
    [("a:v1", "a:v1"), (3, "3"), (True, "true"), (1.5, "1.5"), (None, "null")],
)
def test_single_values_are_traced_as_text(value: object, text: str) -> None:
    assert traced_value({"k": value}, "k").text == text


def test_nested_keys_list_items_and_dates() -> None:
    values = {"app": {"version": "1.2", "ports": [80, 443]}, "day": date(2026, 1, 2)}
    assert traced_value(values, "app.version").text == "1.2"
    assert traced_value(values, "app.ports.1").text == "443"
    assert traced_value(values, "day").text == "2026-01-02"
    assert traced_value(values, "app.missing").text is None


def test_mappings_and_lists_cannot_be_traced() -> None:
    assert "a mapping" in str(traced_value({"k": {"a": 1}}, "k").problem)
    assert "a list" in str(traced_value({"k": [1]}, "k").problem)


def test_every_key_of_every_document_that_changed() -> None:
    old = read_input(PATH, rsip("    image: a:v1\n    appName: x\n"))
    new = read_input(
        PATH,
        rsip(
            "    image: a:v1\n    appName: y\n",
            "---\nkind: ResourceSetInputProvider\nspec:\n  defaultValues:\n    image: a:evil\n",
        ),
    )
    changes, spots = value_changes("c", "app", PATH, old, new, ("image", "appName"))
    assert spots == []
    got = [(c.key, c.old, c.new, c.line) for c in changes]
    assert got == [("appName", "x", "y", 6), ("image", None, "a:evil", 11)]


def test_a_new_file_traces_every_value_and_an_untraceable_one_is_a_blind_spot() -> None:
    new = read_input(PATH, rsip("    image: a:v1\n    appName: {n: 1}\n"))
    changes, spots = value_changes("c", "app", PATH, None, new, ("image", "appName"), added=True)
    assert [(c.key, c.new) for c in changes] == [("image", "a:v1")]
    assert len(spots) == 1 and spots[0].kind == "untraceable" and spots[0].line == 6


def test_history_extractors() -> None:
    data = rsip("    image: a:v1\n    appName: x\n")
    assert value_extractor("image")(PATH, data) == "a:v1"
    assert value_extractor("image").__name__ == "image_of"
    assert value_extractor("appName")(PATH, data) == "x"
    assert value_extractor("appName")(PATH, b"not: [valid") is None


def test_an_unchanged_untraceable_value_is_no_blind_spot() -> None:
    old = read_input(PATH, rsip("    image: a:v1\n    appName: {n: 1}\n"))
    new = read_input(PATH, rsip("    image: a:v2\n    appName: {n: 1}\n"))
    changes, spots = value_changes("c", "app", PATH, old, new, ("image", "appName"))
    assert [(c.key, c.new) for c in changes] == [("image", "a:v2")] and spots == []
    moved = read_input(PATH, rsip("    image: a:v2\n    appName: {n: 2}\n"))
    _, spots = value_changes("c", "app", PATH, old, moved, ("image", "appName"))
    assert len(spots) == 1
