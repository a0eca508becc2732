"""Slash commands count only as lines of a comment's visible text (bot/rules/commands.py)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bot.rules.commands import KNOWN, Command, extract_commands, is_near_miss


def names(body: str) -> list[str]:
    return [c.name for c in extract_commands(body) if not c.near_miss]


# --- plain cases ----------------------------------------------------------------------------


def test_a_command_on_its_own_line() -> None:
    (command,) = extract_commands("Looks good in dev.\n/promote staging payment-app\n")
    assert command == Command("promote", ("staging", "payment-app"), 2, "staging payment-app")
    assert command.shown == "/promote staging payment-app"


def test_names_are_case_insensitive_and_arguments_kept_as_written() -> None:
    (command,) = extract_commands("/PROMOTE PROD Payment-App")
    assert command.name == "promote" and command.args == ("PROD", "Payment-App")


def test_several_commands_in_order() -> None:
    body = "/promote staging\n\nand then\n/status payment-app\n/promote prod checkout"
    got = extract_commands(body)
    assert [(c.name, c.args, c.line) for c in got] == [
        ("promote", ("staging",), 1),
        ("status", ("payment-app",), 4),
        ("promote", ("prod", "checkout"), 5),
    ]


@pytest.mark.parametrize(
    "body",
    [
        "```\n/promote prod\n```",
        "```yaml title=x\n/promote prod\n```",
        "~~~\n/promote prod\n~~~",
        "~~~~~ sh\n/promote prod\n~~~~~",
        "````\n```\n/promote prod\n````",  # a shorter fence does not close a longer one
        "~~~\n```\n/promote prod\n~~~",  # nor does the other character
        "   ```\n/promote prod\n   ```",  # a fence indented up to three spaces
        "```\n/promote prod",  # never closed: runs to the end of the comment
        "    /promote prod",
        "text\n\n    /promote prod",
        "\t/promote prod",
        "<!-- /promote prod -->",
        "<!--\n/promote prod\n-->",
        "Hello <!--\n/promote prod\n--> world",
        "<!--\n\n/promote prod\n\n-->",
        "> /promote prod",
        ">\n> /promote prod",
        "- /promote prod",
        "1. /promote prod",
        "# /promote prod",
        "`/promote prod`",
        "~~/promote prod~~",
        "*/promote prod*",
        "[/promote prod](https://example.com)",
        "<del>\n\n/promote prod\n\n</del>",
        "<details>\n\n/promote prod\n\n</details>",
        "text <del>\n/promote prod</del>",
        "| a |\n|---|\n| /promote prod |",
        "please /promote prod",
        "/ promote prod",
        "//promote prod",
    ],
)
def test_hidden_or_not_a_line_of_its_own(body: str) -> None:
    assert extract_commands(body) == []


@pytest.mark.parametrize(
    ("body", "line"),
    [
        ("text\n    /promote prod", 2),  # a paragraph's continuation, not a code block
        ("```\ncode\n```\n/promote prod", 4),
        ("<!-- note -->\n\n/promote prod", 3),
        ("a <!-- x\ny --> b\n/promote prod", 3),
        ("`a\nb`\n/promote prod", 3),
        ("- ```\n/promote prod", 2),  # the list item and its fence end at the unindented line
        ("> quoted\n\n/promote prod", 3),
        ("/promote prod <!-- the tenant comes later -->", 1),
        ("\\/promote prod", 1),  # an escaped slash is a slash on the screen
        ("/promote prod\r\n/status", 1),
    ],
)
def test_visible_lines_count(body: str, line: int) -> None:
    first = extract_commands(body)[0]
    assert (first.name, first.args[:1], first.line) == ("promote", ("prod",), line)


def test_invisible_text_is_not_an_argument() -> None:
    (command,) = extract_commands("/promote prod <!-- payment-app -->")
    assert command.args == ("prod",)


def test_ordinary_words_are_not_commands() -> None:
    body = "/promoted yesterday\n/statuses are fine\n/promotion soon\n/lgtm\n/remote"
    assert extract_commands(body) == []


def test_near_misses_carry_a_suggestion() -> None:
    got = extract_commands("/promte staging\n/Promtoe prod\n/statsu")
    assert [(c.name, c.suggestion, c.near_miss) for c in got] == [
        ("promte", "promote", True),
        ("promtoe", "promote", True),
        ("statsu", "status", True),
    ]


def test_known_names_are_data() -> None:
    (command,) = extract_commands("/rollout prod incident 42", known={"rollout", *KNOWN})
    assert command.name == "rollout" and command.text == "prod incident 42"
    assert extract_commands("/rollout prod") == []
    assert {"freeze", "unfreeze", "override"} <= KNOWN  # the change calendar's commands


def test_a_huge_body_is_cut_where_github_cuts_it() -> None:
    body = "x\n" * 40_000 + "/promote prod"
    assert extract_commands(body) == []


# --- near misses ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("promte", True),
        ("pormote", True),
        ("promot", True),
        ("prromote", True),
        ("promoet", True),
        ("promoted", False),
        ("promotes", False),
        ("promote", False),
        ("remote", False),
        ("promise", False),
        ("pr", False),
    ],
)
def test_is_near_miss(word: str, expected: bool) -> None:
    assert is_near_miss(word, "promote") is expected


# --- properties -----------------------------------------------------------------------------

command_names = st.sampled_from(sorted(KNOWN))
words = st.from_regex(r"[a-z][a-z0-9-]{0,12}", fullmatch=True)
prose = st.lists(
    st.from_regex(r"[A-Za-z][A-Za-z ,.]{0,30}", fullmatch=True), min_size=0, max_size=3
).map(lambda lines: [line.strip() for line in lines if line.strip()])


def random_case(text: str, data: st.DataObject) -> str:
    flips = data.draw(st.lists(st.booleans(), min_size=len(text), max_size=len(text)))
    return "".join(c.upper() if f else c for c, f in zip(text, flips, strict=True))


@given(
    name=command_names,
    args=st.lists(words, max_size=3),
    before=prose,
    after=prose,
    data=st.data(),
)
def test_a_command_paragraph_is_always_found(
    name: str, args: list[str], before: list[str], after: list[str], data: st.DataObject
) -> None:
    line = " ".join([f"/{random_case(name, data)}", *args])
    parts = ["\n".join(before)] if before else []
    parts.append(line)
    if after:
        parts.append("\n".join(after))
    body = "\n\n".join(parts)
    (command,) = extract_commands(body)
    assert command.name == name and command.args == tuple(args)
    assert body.split("\n")[command.line - 1] == line


fences = st.tuples(st.sampled_from("`~"), st.integers(3, 8), st.sampled_from(["", "sh", " yaml x"]))


@given(
    fence=fences,
    indent=st.integers(0, 3),
    name=command_names,
    inside_before=prose,
    closed=st.booleans(),
    before=prose,
)
@example(fence=("`", 3, ""), indent=0, name="promote", inside_before=[], closed=False, before=[])
def test_nothing_inside_a_fenced_block_counts(
    fence: tuple[str, int, str],
    indent: int,
    name: str,
    inside_before: list[str],
    closed: bool,
    before: list[str],
) -> None:
    char, length, info = fence
    if char == "`" and "`" in info:
        return
    opening = " " * indent + char * length + info
    # fences that do not close it: shorter, or of the other character
    decoys = [char * (length - 1)] if length > 3 else []
    decoys.append(("~" if char == "`" else "`") * length)
    lines = [*before, opening, *inside_before, *decoys, f"/{name} prod"]
    if closed:
        lines.append(char * (length + 1))
    assert extract_commands("\n".join(lines)) == []


@given(name=command_names, before=prose, hidden=prose, after=prose)
def test_nothing_inside_an_html_comment_counts(
    name: str, before: list[str], hidden: list[str], after: list[str]
) -> None:
    body = "\n".join([*before, "<!--", *hidden, f"/{name} prod", *hidden, "-->", *after])
    assert [c for c in extract_commands(body) if c.name == name] == []


@given(name=command_names, indent=st.sampled_from(["    ", "\t", "      "]), before=prose)
def test_nothing_in_an_indented_code_block_counts(
    name: str, indent: str, before: list[str]
) -> None:
    body = "\n".join(before) + "\n\n" + indent + f"/{name} prod"
    assert extract_commands(body) == []


@given(name=command_names, suffix=st.from_regex(r"[a-z]{1,6}", fullmatch=True))
def test_the_name_with_letters_added_is_nothing(name: str, suffix: str) -> None:
    assert extract_commands(f"/{name}{suffix} prod") == []


@given(name=command_names, data=st.data())
def test_one_typo_is_a_near_miss(name: str, data: st.DataObject) -> None:
    i = data.draw(st.integers(0, len(name) - 1))
    kind = data.draw(st.sampled_from(["delete", "replace", "swap", "insert"]))
    letter = data.draw(st.sampled_from("abcdefghijklmnopqrstuvwxyz"))
    if kind == "delete":
        typo = name[:i] + name[i + 1 :]
    elif kind == "replace":
        typo = name[:i] + letter + name[i + 1 :]
    elif kind == "swap" and i + 1 < len(name):
        typo = name[:i] + name[i + 1] + name[i] + name[i + 2 :]
    else:
        typo = name[:i] + letter + name[i:]
    got = extract_commands(f"/{typo} x")
    if typo in KNOWN:
        assert [c.name for c in got] == [typo]
    elif typo.startswith(name):
        assert got == []  # the command with letters added: an ordinary word
    else:
        # "nfreeze" is one typo from "freeze" and from "unfreeze": the first such name is named
        candidates = sorted(k for k in KNOWN if is_near_miss(typo, k))
        assert name in candidates
        assert [(c.name, c.suggestion) for c in got] == [(typo, candidates[0])]


@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=200)
@given(
    body=st.text(
        alphabet=st.sampled_from(list("/promte statusx`~<!->\n\t *_[]()#|\\")), max_size=200
    )
)
def test_any_text_is_parsed_without_error_and_commands_start_their_line(body: str) -> None:
    got = extract_commands(body)
    lines = body.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    assert [c.line for c in got] == sorted(c.line for c in got)
    for command in got:
        assert 1 <= command.line <= len(lines)
        assert command.name in KNOWN or command.suggestion in KNOWN


def test_a_comment_read_late_runs_only_as_written() -> None:
    """S6: a comment taken up from GitHub's delivery log runs its commands only when it was
    neither deleted nor edited since it was written."""
    from bot.rules.commands import still_as_written

    sent = {"id": 7, "body": "/unfreeze prod", "updated_at": "2026-12-01T10:00:00Z"}
    assert still_as_written(sent, dict(sent))
    assert not still_as_written(sent, None)  # deleted
    assert not still_as_written(sent, {**sent, "body": "~~/unfreeze prod~~"})
    assert not still_as_written(sent, {**sent, "updated_at": "2026-12-01T10:05:00Z"})
    assert not still_as_written(sent, {**sent, "id": 8})
