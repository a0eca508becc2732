"""input.yaml: reading both forms, and edits that keep every byte but the changed characters."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.fleet.inputs import (
    MAX_INPUT_BYTES,
    InputError,
    TenantInput,
    edit_scalars,
    read_input,
    set_image,
    set_values,
)

PATH = "clusters/dev-use1-01/tenants/payment-app/input.yaml"
OLD = "registry.acme.com/payment:v2.1.0"
NEW = "registry.acme.com/payment:v2.2.0"

SEED_FORM = b"""\
apiVersion: fluxcd.controlplane.io/v1
kind: ResourceSetInputProvider
metadata:
  name: payment-app-inputs
  namespace: payment-dev
spec:
  # Non-sensitive configuration specific to this cluster
  values:
    appName: "payment-processor"
    image: "registry.acme.com/payment:v2.1.0-rc1"
    replicas: 2
    logLevel: "DEBUG"
    environment: "dev"
"""

REAL_FORM = b"""\
apiVersion: fluxcd.controlplane.io/v1
kind: ResourceSetInputProvider
metadata:
  name: payment-app
  namespace: apps
spec:
  type: Static
  defaultValues:
    image: registry.acme.com/payment:v2.1.0
    app:
      version: "6.7.x"
      replicas: 2
    hosts: [a.example.com, b.example.com]
"""


def _rsip(values: str, *, form: str = "defaultValues", before: str = "", after: str = "") -> bytes:
    return (
        f"{before}kind: ResourceSetInputProvider\nspec:\n  type: Static\n  {form}:\n{values}{after}"
    ).encode()


# --- reading -------------------------------------------------------------------------------------


def test_reads_the_real_form() -> None:
    tenant = read_input(PATH, REAL_FORM)
    assert tenant.form == "defaultValues"
    assert (tenant.name, tenant.namespace) == ("payment-app", "apps")
    assert tenant.image == OLD
    assert tenant.values["app"] == {"version": "6.7.x", "replicas": 2}
    assert tenant.get("app.version") == "6.7.x"
    assert tenant.get("app.replicas") == 2
    assert tenant.get("hosts.1") == "b.example.com"
    assert tenant.get("app.missing") is None
    assert tenant.get("hosts.7") is None
    assert tenant.get("image.deeper") is None
    assert tenant.warnings == ()
    assert tenant.values_line == 8


def test_reads_the_seed_form_with_a_warning_that_shows_the_real_form() -> None:
    tenant = read_input(PATH, SEED_FORM)
    assert tenant.form == "values"
    assert tenant.image == "registry.acme.com/payment:v2.1.0-rc1"
    assert tenant.values["replicas"] == 2
    (warning,) = tenant.warnings
    assert "has no spec.values" in warning
    assert "prunes" in warning
    assert "type: Static" in warning
    assert "defaultValues:" in warning
    assert "image: registry.acme.com/payment:v2.1.0-rc1" in warning


def test_both_forms_prefer_default_values_and_warn() -> None:
    data = (
        b"kind: ResourceSetInputProvider\nspec:\n  type: Static\n"
        b"  values: {image: a:1}\n  defaultValues: {image: b:2}\n"
    )
    tenant = read_input(PATH, data)
    assert tenant.form == "defaultValues"
    assert tenant.image == "b:2"
    assert any("both defaultValues and values" in w for w in tenant.warnings)
    assert set_image(PATH, data, "b:3") == data.replace(b"b:2", b"b:3")


def test_type_warnings() -> None:
    missing = read_input(
        PATH, b"kind: ResourceSetInputProvider\nspec:\n  defaultValues: {image: a:1}\n"
    )
    assert any("spec.type is missing" in w for w in missing.warnings)
    other = read_input(
        PATH,
        b"kind: ResourceSetInputProvider\nspec:\n  type: OCIArtifactTag\n  defaultValues: {}\n",
    )
    assert any("'OCIArtifactTag'" in w for w in other.warnings)


def test_values_without_image() -> None:
    tenant = read_input(PATH, _rsip("    replicas: 2\n"))
    assert tenant.image is None
    assert tenant.values == {"replicas": 2}


@pytest.mark.parametrize(
    "data",
    [
        b"kind: ResourceSetInputProvider\nspec:\n  type: Static\n",
        b"kind: ResourceSetInputProvider\nspec:\n  type: Static\n  defaultValues:\n",
    ],
)
def test_no_or_empty_values_read_as_empty_with_a_warning_only_when_absent(data: bytes) -> None:
    tenant = read_input(PATH, data)
    assert tenant.values == {}
    assert tenant.image is None
    assert tenant.form == "defaultValues"
    with pytest.raises(InputError, match="never adds keys"):
        set_image(PATH, data, NEW)


def test_several_rsip_documents_use_the_first_and_warn() -> None:
    data = _rsip(
        "    image: a:1\n",
        after="---\nkind: ResourceSetInputProvider\nspec:\n  defaultValues: {image: b:1}\n",
    )
    tenant = read_input(PATH, data)
    assert tenant.image == "a:1"
    assert any("2 ResourceSetInputProvider documents (lines 1, 7)" in w for w in tenant.warnings)
    assert set_image(PATH, data, "a:2") == data.replace(b"a:1", b"a:2")


def test_span_points_at_the_scalar_bytes() -> None:
    data = "# ü\n".encode() + REAL_FORM
    tenant = read_input(PATH, data)
    span = tenant.span("image")
    assert span is not None
    assert data[span.start : span.end] == OLD.encode()
    assert (span.line, span.column, span.style, span.key) == (10, 12, "plain", "image")
    version = tenant.span("app.version")
    assert version is not None and version.style == "double-quoted"
    assert data[version.start : version.end] == b'"6.7.x"'
    assert tenant.span("app") is None
    assert tenant.span("nope") is None


def test_span_skips_anchor_and_tag() -> None:
    data = _rsip("    image: !!str &img 'a:1' # c\n    other: *img\n")
    span = read_input(PATH, data).span("image")
    assert span is not None and data[span.start : span.end] == b"'a:1'"
    assert span.style == "single-quoted"


def test_a_hand_built_tenant_input_has_no_spans() -> None:
    tenant = TenantInput(PATH, "defaultValues", None, None, {"image": "a:1"}, ())
    assert tenant.image == "a:1"
    assert tenant.span("image") is None


@pytest.mark.parametrize(
    ("data", "line", "fragment"),
    [
        (b"kind: ResourceSetInputProvider\nspec: [\n", 3, "YAML syntax error"),
        (b"kind: ResourceSetInputProvider\nspec:\n  a: b\n c: d\n", 4, "YAML syntax error"),
        (b"kind: Kustomization\n---\nkind: ResourceSet\n", None, "kind: ResourceSetInputProvider"),
        (b"", None, "kind: ResourceSetInputProvider"),
        (
            b"apiVersion: v1\nkind: ResourceSetInputProvider\nmetadata: {name: x}\n",
            1,
            "has no spec",
        ),
        (b"kind: ResourceSetInputProvider\nspec: 3\n", 2, "spec must be a mapping"),
        (b"kind: ResourceSetInputProvider\nspec:\n  values: [a]\n", 3, "must be a mapping"),
        (b"kind: ResourceSetInputProvider\nspec:\n  defaultValues:\n    image: 5\n", 4, "(int)"),
        (
            b"kind: ResourceSetInputProvider\nspec:\n  values:\n    image:\n      repo: x\n",
            5,
            "string",
        ),
        (
            b"kind: ResourceSetInputProvider\nspec:\n  values:\n    image: ~\n",
            4,
            "must be a string",
        ),
        (b"kind: ResourceSetInputProvider\nspec:\n  values: {a: 1, a: 2}\n", 3, "duplicate key"),
        (b"kind: ResourceSetInputProvider\nspec:\n  values: {a: \xff}\n", 3, "UTF-8"),
        (b"kind: ResourceSetInputProvider\nspec: &s {x: *s}\n", 2, "recursive"),
        (b"kind: ResourceSetInputProvider\nspec: {x: *nope}\n", 2, "has no anchor"),
    ],
)
def test_read_errors_name_file_and_line(data: bytes, line: int | None, fragment: str) -> None:
    with pytest.raises(InputError) as info:
        read_input(PATH, data)
    assert info.value.path == PATH
    assert info.value.line == line
    assert fragment in info.value.message
    prefix = f"{PATH}:{line}" if line is not None else PATH
    assert str(info.value) == f"{prefix}: {info.value.message}"


def test_too_large_too_deep_and_alias_bombs_are_refused() -> None:
    with pytest.raises(InputError, match="limit is 1048576 bytes"):
        read_input(PATH, b" " * (MAX_INPUT_BYTES + 1))
    deep = "kind: ResourceSetInputProvider\nspec:\n" + "".join(
        "  " * i + f"k{i}:\n" for i in range(1, 40)
    )
    with pytest.raises(InputError, match="nested more than 32 levels"):
        read_input(PATH, deep.encode())
    bomb = ["kind: ResourceSetInputProvider", "a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        prev, cur = chr(ord("a") + i - 1), chr(ord("a") + i)
        bomb.append(f"{cur}: &{cur} [" + ", ".join([f"*{prev}"] * 10) + "]")
    with pytest.raises(InputError, match="alias bomb"):
        read_input(PATH, "\n".join(bomb).encode())


# --- the odd-but-valid suite: every byte but the tag is kept ------------------------------------

ODD_FILES: dict[str, bytes] = {
    "comment on the image line": _rsip(f"    image: {OLD}  # bumped by the bot\n    replicas: 2\n"),
    "double-quoted with comment": _rsip(f'    image: "{OLD}" # "quoted" # twice\n'),
    "single-quoted": _rsip(f"    image: '{OLD}'\n    note: 'it''s fine'\n"),
    "quoted key": _rsip(f'    "image": {OLD}\n'),
    "crlf line endings": _rsip(f"    image: {OLD} # c\r\n    replicas: 2\r\n")
    .replace(b"\n", b"\r\n")
    .replace(b"\r\r", b"\r"),
    "utf-8 bom": b"\xef\xbb\xbf" + _rsip(f"    image: {OLD}\n"),
    "bom and crlf": b"\xef\xbb\xbf" + _rsip(f"    image: '{OLD}'\n").replace(b"\n", b"\r\n"),
    "flow mapping": _rsip("")[:-1] + f" {{image: {OLD}, replicas: 2}}\n".encode(),
    "nested flow document": (
        "{kind: ResourceSetInputProvider, spec: {type: Static, "
        f"defaultValues: {{replicas: 2, image: '{OLD}'}}}}}}"
    ).encode(),
    "documents before and after": _rsip(
        f"    image: {OLD}\n",
        before="# first\napiVersion: v1\nkind: Namespace\nmetadata: {name: apps}\n---\n",
        after=(
            "---\napiVersion: fluxcd.controlplane.io/v1\nkind: ResourceSet\n"
            "spec:\n  inputsFrom: [{name: x}]\n...\n"
        ),
    ),
    "seed form": SEED_FORM.replace(b"registry.acme.com/payment:v2.1.0-rc1", OLD.encode()),
    "real form": REAL_FORM,
    "no trailing newline": _rsip(f"    image: {OLD}")[:],
    "no trailing newline, comment last": _rsip(f"    image: {OLD} # end"),
    "tabs in comments": _rsip(
        f"    image: {OLD} #\ttab\tcomment\n    #\tan indented\tcomment line\n    replicas: 2\n"
    ),
    "trailing whitespace": _rsip(f"    image: {OLD}   \n    replicas: 2 \t\n"),
    "blank lines and wide indentation": (
        "kind: ResourceSetInputProvider\n\n\nspec:\n\n      type: Static\n\n      defaultValues:\n"
        f"\n\n          hosts:\n          - a\n          -   b\n\n          image: {OLD}\n\n\n"
    ).encode(),
    "anchors and aliases elsewhere": _rsip(
        f"    base: &b {{replicas: 2}}\n    copy: *b\n    image: {OLD}\n"
    ),
    "tagged value": _rsip(f"    image: !!str {OLD}\n"),
    "unicode around": _rsip(
        f"    owner: 'Zoë Ünal'  # ✓\n    image: {OLD} # →\n    emoji: \"🚀\"\n"
    ),
    "hash inside quoted values": _rsip(f'    note: "#not-a-comment"\n    image: "{OLD}"\n'),
    "yaml directive and explicit document": (
        "%YAML 1.2\n---\nkind: ResourceSetInputProvider\nspec:\n"
        f"  defaultValues:\n    image: {OLD}\n...\n"
    ).encode(),
    "multi-line value elsewhere": _rsip(
        f"    script: |\n      echo {OLD}-not-this\n    image: {OLD}\n"
    ).replace(f"echo {OLD}-not-this".encode(), b"echo something"),
    "sequence of values": _rsip(
        f"    extra:\n      - {{a: 1}}\n      - [b, c]\n    image: {OLD}\n"
    ),
    "windows-style and flow in seed form": _rsip(
        f'    {{image: "{OLD}", replicas: 3}}\n', form="values"
    ).replace(b"\n", b"\r\n"),
}


@pytest.mark.parametrize("name", sorted(ODD_FILES))
def test_odd_but_valid_files_keep_every_byte_but_the_tag(name: str) -> None:
    data = ODD_FILES[name]
    assert data.count(b"v2.1.0") == 1, "the fixture must hold the tag exactly once"
    before = read_input(PATH, data)
    assert before.image == OLD
    result = set_image(PATH, data, NEW)
    assert result == data.replace(b"v2.1.0", b"v2.2.0")
    after = read_input(PATH, result)
    assert after.image == NEW
    assert {**after.values, "image": OLD} == dict(before.values)
    assert after.form == before.form


@pytest.mark.parametrize("name", sorted(ODD_FILES))
def test_odd_files_take_a_digest_without_other_changes(name: str) -> None:
    data = ODD_FILES[name]
    digest = "@sha256:" + "ab" * 32
    result = set_image(PATH, data, NEW + digest)
    assert result == data.replace(b"v2.1.0", b"v2.2.0" + digest.encode())


def test_setting_the_same_value_returns_the_same_bytes() -> None:
    for data in ODD_FILES.values():
        assert set_image(PATH, data, OLD) == data
    quoted = _rsip("    replicas: '2'\n")
    assert set_values(PATH, quoted, {"replicas": "2"}) == quoted


# --- quoting and rendering -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "value", "expected"),
    [
        ("    tag: v1\n", "v2", "    tag: v2\n"),
        ("    tag: v1\n", "yes", '    tag: "yes"\n'),
        ("    tag: v1\n", "on", '    tag: "on"\n'),
        ("    tag: v1\n", "1.10", '    tag: "1.10"\n'),
        ("    tag: v1\n", "1:20", '    tag: "1:20"\n'),
        ("    tag: v1\n", "null", '    tag: "null"\n'),
        ("    tag: v1\n", "2024-01-01", '    tag: "2024-01-01"\n'),
        ("    tag: v1\n", "a: b", '    tag: "a: b"\n'),
        ("    tag: v1\n", "a #b", '    tag: "a #b"\n'),
        ("    tag: v1\n", "-x", '    tag: "-x"\n'),
        ("    tag: v1\n", "", '    tag: ""\n'),
        ("    tag: v1\n", "two words", "    tag: two words\n"),
        ("    tag: v1\n", "x:", '    tag: "x:"\n'),
        ("    tag: v1\n", "{x}", '    tag: "{x}"\n'),
        ("    tag: 'v1'\n", "it's", "    tag: 'it''s'\n"),
        ("    tag: 'v1'\n", "yes", "    tag: 'yes'\n"),
        ("    tag: 'v1'\n", "line\nbreak", '    tag: "line\\nbreak"\n'),
        ('    tag: "v1"\n', 'say "hi" \\o/', '    tag: "say \\"hi\\" \\\\o/"\n'),
        ('    tag: "v1"\n', "tab\there\x07", '    tag: "tab\\there\\a"\n'),
        ('    tag: "v1"\n', "ünï 🚀", '    tag: "ünï 🚀"\n'),
        ("    replicas: 2\n", 3, "    replicas: 3\n"),
        ("    replicas: '2'\n", 3, "    replicas: 3\n"),
        ("    replicas: 2\n", "3", '    replicas: "3"\n'),
        ("    on: false\n", True, "    on: true\n"),
        ("    ratio: 0.5\n", 0.25, "    ratio: 0.25\n"),
        ("    ratio: 0.5\n", 1e20, "    ratio: 1.0e+20\n"),
        ("    ratio: 0.5\n", float("inf"), "    ratio: .inf\n"),
    ],
)
def test_quoting_style_is_kept_when_it_reads_back_the_same(
    line: str, value: Any, expected: str
) -> None:
    data = _rsip(line + "    image: a:1\n")
    key = line.split(":")[0].strip()
    result = set_values(PATH, data, {key: value})
    assert result == data.replace(line.encode(), expected.encode())
    assert read_input(PATH, result).get(key) == value


def test_several_values_at_once_including_nested_and_list_items() -> None:
    result = set_values(
        PATH, REAL_FORM, {"image": NEW, "app.version": "6.8.x", "app.replicas": 3, "hosts.0": "c"}
    )
    assert result == (
        REAL_FORM.replace(b"v2.1.0", b"v2.2.0")
        .replace(b'"6.7.x"', b'"6.8.x"')
        .replace(b"replicas: 2", b"replicas: 3")
        .replace(b"[a.example.com", b"[c")
    )


# --- refusing edits -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "changes", "line", "fragment"),
    [
        ("    image: a:1\n", {"tag": "x"}, 4, "never adds keys"),
        ("    app: {version: 1}\n", {"app.name": "x"}, 5, "spec.defaultValues.app.name is not in"),
        ("    app: {version: 1}\n", {"app": "x"}, 5, "is a mapping; only scalars"),
        ("    hosts: [a]\n", {"hosts": "x"}, 5, "is a list; only scalars"),
        ("    hosts: [a]\n", {"hosts.3": "x"}, 5, "is not in the file"),
        ("    note: |\n      text\n", {"note": "x"}, 5, "block scalar"),
        ("    note: >\n      text\n", {"note": "x"}, 5, "block scalar"),
        ("    image:\n    other: 1\n", {"image": "x"}, 5, "no value to replace"),
        (
            "    a: &x v1\n    image: *x\n",
            {"image": "v2"},
            None,
            "also change spec.defaultValues.a",
        ),
        ("    a: &x v1\n    b: *x\n", {"a": "v2", "b": "v2"}, None, "same value"),
        ("    image: a:1\n", {"image": None}, None, "only strings, numbers and booleans"),
    ],
)
def test_edits_that_cannot_be_made_safely_are_refused(
    values: str, changes: dict[str, Any], line: int | None, fragment: str
) -> None:
    data = _rsip(values)
    with pytest.raises(InputError) as info:
        set_values(PATH, data, changes)
    assert fragment in info.value.message
    assert info.value.line == line
    assert info.value.path == PATH


def test_set_image_refuses_an_invalid_reference() -> None:
    with pytest.raises(InputError, match="invalid tag"):
        set_image(PATH, REAL_FORM, "registry.acme.com/payment:")


def test_set_values_refuses_broken_files_like_read_input() -> None:
    with pytest.raises(InputError, match="YAML syntax error"):
        set_image(PATH, b"kind: ResourceSetInputProvider\nspec: [\n", NEW)


def test_edit_scalars_addresses_any_document() -> None:
    data = b"a: 1\n---\nb: {c: 'x'}\n"
    assert edit_scalars(PATH, data, 1, {("b", "c"): "y"}) == b"a: 1\n---\nb: {c: 'y'}\n"
    with pytest.raises(InputError, match="no YAML document number 3"):
        edit_scalars(PATH, data, 2, {("a",): 2})


# --- properties -----------------------------------------------------------------------------------

_tags = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,15}", fullmatch=True)
_digests = st.none() | st.from_regex(r"sha256:[0-9a-f]{64}", fullmatch=True)
_repos = st.sampled_from(
    ["nginx", "registry.acme.com/payment", "localhost:5000/team/app", "ghcr.io/Acme/app"]
)
_comments = st.sampled_from(["", "  # pinned", "\t#\ttabbed", " # ü → ✓", "   "])


@st.composite
def input_files(draw: st.DrawFn) -> tuple[bytes, str, str, int]:
    """(file, old image, new image, offset of the old version within the image)."""
    repo = draw(_repos)
    old_version = ":" + draw(_tags) + (("@" + d) if (d := draw(_digests)) else "")
    new_version = ":" + draw(_tags) + (("@" + d) if (d := draw(_digests)) else "")
    old, new = repo + old_version, repo + new_version
    quote = draw(st.sampled_from(["", "'", '"']))
    indent = " " * draw(st.sampled_from([2, 4]))
    form = draw(st.sampled_from(["defaultValues", "values"]))
    extra_before = draw(st.sampled_from(["", "replicas: 2", "app: {name: x}", "note: 'a: b'"]))
    extra_after = draw(st.sampled_from(["", "logLevel: DEBUG", "hosts: [a, b]"]))
    flow = draw(st.booleans())
    image_text = f"{quote}{old}{quote}"
    entries = [e for e in (extra_before, f"image: {image_text}", extra_after) if e]
    if flow:
        values = f"  {form}: {{{', '.join(entries)}}}{draw(_comments)}\n"
    else:
        values = f"  {form}:\n" + "".join(
            f"{indent * 2 if len(indent) == 2 else indent}{entry}"
            f"{draw(_comments) if 'image' in entry else ''}\n"
            for entry in entries
        )
    head = draw(
        st.sampled_from(["", "# top comment\n", "kind: Namespace\nmetadata: {name: x}\n---\n"])
    )
    tail = draw(
        st.sampled_from(["", "---\nkind: ResourceSet\nspec: {inputs: []}\n", "\n\n# end\n"])
    )
    text = (
        f"{head}apiVersion: fluxcd.controlplane.io/v1\nkind: ResourceSetInputProvider\n"
        f"spec:\n  type: Static\n{values}{tail}"
    )
    if not draw(st.booleans()):
        text = text.rstrip("\n")
    if draw(st.booleans()):
        text = text.replace("\n", "\r\n")
    data = (b"\xef\xbb\xbf" if draw(st.booleans()) else b"") + text.encode()
    return data, old, new, len(repo) + len(quote)


@settings(max_examples=250, deadline=None)
@given(input_files())
def test_setting_the_image_changes_exactly_the_version_span(
    case: tuple[bytes, str, str, int],
) -> None:
    data, _old, new, version_offset = case
    span = read_input(PATH, data).span("image")
    assert span is not None
    start = span.start + version_offset
    end = span.end - (0 if span.style == "plain" else 1)
    result = set_image(PATH, data, new)
    new_version = new[version_offset - (0 if span.style == "plain" else 1) :].encode()
    assert result[:start] == data[:start]
    assert result[len(result) - (len(data) - end) :] == data[end:]
    assert result == data[:start] + new_version + data[end:]
    assert read_input(PATH, result).image == new


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(
        ["    note: plain\n", "    note: 'single'\n", '    note: "double"\n', "    {note: x}\n"]
    ),
    st.text(st.characters(blacklist_categories=["Cs"]), max_size=20),
)
def test_any_string_value_reads_back_exactly(line: str, value: str) -> None:
    data = _rsip(line + ("    image: a:1\n" if not line.startswith("    {") else ""))
    result = set_values(PATH, data, {"note": value})
    tenant = read_input(PATH, result)
    assert tenant.get("note") == value
    before = read_input(PATH, data)
    assert {**tenant.values, "note": None} == {**before.values, "note": None}
    span = tenant.span("note")
    assert span is not None
    assert result[: span.start] == data[: span.start]


# --- hidden values (issue 16, item 4) -----------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "line", "fragment"),
    [
        (  # a second defaultValues: the reader would take one, a cluster maybe the other
            b"kind: ResourceSetInputProvider\nspec:\n  type: Static\n  defaultValues:\n"
            b"    image: reg.io/app:v1\n  defaultValues:\n    image: reg.io/app:evil\n",
            6,
            "duplicate key 'defaultValues'",
        ),
        (
            b"kind: ResourceSetInputProvider\nspec:\n  defaultValues: {image: a:v1}\n"
            b"spec:\n  defaultValues: {image: a:evil}\n",
            4,
            "duplicate key 'spec'",
        ),
        (
            b"kind: ResourceSetInputProvider\nkind: ConfigMap\nspec: {defaultValues: {}}\n",
            2,
            "duplicate key 'kind'",
        ),
        (  # keys spelled differently but equal
            b"kind: ResourceSetInputProvider\nspec:\n  defaultValues:\n    image: a:v1\n"
            b'    "image": a:evil\n',
            5,
            "appears twice",
        ),
        (  # a merge key hides the values from a reader that walks the keys
            b"x: &s {type: Static, defaultValues: {image: a:evil}}\n"
            b"kind: ResourceSetInputProvider\nspec:\n  <<: *s\n",
            4,
            "merge key",
        ),
    ],
)
def test_duplicate_keys_and_merge_keys_are_located_errors(
    data: bytes, line: int, fragment: str
) -> None:
    with pytest.raises(InputError) as info:
        read_input(PATH, data)
    assert info.value.line == line
    assert fragment in info.value.message


def test_every_provider_document_of_a_file_is_read() -> None:
    data = (
        b"kind: ResourceSetInputProvider\nspec:\n  type: Static\n  defaultValues:\n"
        b"    image: reg.io/app:v1\n---\nkind: ConfigMap\n---\n"
        b"kind: ResourceSetInputProvider\nspec:\n  type: Static\n  defaultValues:\n"
        b"    image: reg.io/app:evil\n"
    )
    tenant = read_input(PATH, data)
    assert tenant.image == "reg.io/app:v1"
    assert [d.get("image") for d in tenant.documents] == ["reg.io/app:v1", "reg.io/app:evil"]
    span = tenant.span("image", 1)
    assert span is not None and span.line == 13
    with pytest.raises(InputError, match="has no spec"):
        read_input(PATH, data + b"---\nkind: ResourceSetInputProvider\n")
