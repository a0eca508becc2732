"""``may_hold``: the cheap text search that lets the bot skip parsing a file must never skip one
that holds the value in another spelling."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bot.fleet.yamlsafe import compose_documents, construct, may_hold

GROUP = b"source.toolkit.fluxcd.io"


def test_written_as_is_or_not_at_all() -> None:
    assert may_hold(b"apiVersion: source.toolkit.fluxcd.io/v1\n", GROUP)
    assert not may_hold(b"apiVersion: v1\nkind: ConfigMap\n", GROUP)


def test_escapes_and_other_encodings_may_spell_it() -> None:
    escaped = b'apiVersion: "source.toolkit.fluxcd\\x2eio/v1"\n'
    assert GROUP not in escaped and may_hold(escaped, GROUP)
    (doc,) = compose_documents(escaped.decode())
    assert construct(doc)["apiVersion"] == "source.toolkit.fluxcd.io/v1"  # what YAML reads
    utf16 = "apiVersion: source.toolkit.fluxcd.io/v1\n".encode("utf-16")
    assert GROUP not in utf16 and may_hold(utf16, GROUP)


@given(st.sets(st.integers(0, len(GROUP) - 1)))
def test_a_double_quoted_scalar_that_reads_as_the_group_is_never_skipped(
    escaped: set[int],
) -> None:
    """Any of the group's characters written as a ``\\u`` escape: YAML reads the group, and the
    file is not skipped."""
    text = GROUP.decode()
    value = "".join(f"\\u{ord(c):04x}" if i in escaped else c for i, c in enumerate(text))
    data = f'apiVersion: "{value}/v1"\n'.encode()
    (doc,) = compose_documents(data.decode())
    assert construct(doc)["apiVersion"] == f"{text}/v1"
    assert may_hold(data, GROUP)
