"""Regenerate the vendored slice of GitHub's GraphQL schema that the test suite checks the bot's
GraphQL requests against (the REST calls are checked by ``scripts/openapi_subset.py``).

    python scripts/graphql_subset.py                       # npm pack the pinned package
    python scripts/graphql_subset.py --schema schema.graphql

Source (npm registry, version pinned below): ``@octokit/graphql-schema`` ``schema.graphql``,
GitHub's public GraphQL schema (about 1.2 MB). Kept: the fields the bot's documents select
(``bot.github.gateway.GRAPHQL_DOCUMENTS``), on every object or interface type they select
from, with all of each field's arguments; every input object, enum and scalar those fields and
arguments use, whole. Everything is checked against the whole schema first: a document that
does not validate there is an error here, before anything is written.

Written: ``tests/contract/github-graphql-subset.graphql``. A document that selects a field not
in the slice fails the contract check until this script is run again.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    TypeInfo,
    TypeInfoVisitor,
    Visitor,
    build_schema,
    get_named_type,
    parse,
    print_type,
    specified_scalar_types,
    validate,
    visit,
)
from graphql.language import FieldNode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.github.gateway import GRAPHQL_DOCUMENTS  # noqa: E402

OUT = ROOT / "tests" / "contract" / "github-graphql-subset.graphql"
PACKAGE = "@octokit/graphql-schema@15.26.1"


def github_schema(sdl: str) -> GraphQLSchema:
    """GitHub's schema as graphql-core reads it. GitHub's own does not pass graphql-core's
    checks of a schema (15.26.1: two fields of ``EnterpriseOwnerInfo`` defined twice, deprecated
    fields implementing interface fields that are not): none of that is in the part the bot
    uses, so the schema is taken as it is and the documents are validated against it."""
    schema = build_schema(sdl, assume_valid_sdl=True)
    schema._validation_errors = []  # graphql-core's mark of a schema it has validated
    return schema


class Collect(Visitor):
    """Notes each field a document selects, on the type it is selected from."""

    def __init__(self, info: TypeInfo, selected: dict[str, set[str]]) -> None:
        super().__init__()
        self.info = info
        self.selected = selected

    def enter_field(self, node: FieldNode, *_: object) -> None:
        parent = self.info.get_parent_type()
        if parent is not None:
            self.selected.setdefault(parent.name, set()).add(node.name.value)


def subset(schema: GraphQLSchema, documents: dict[str, str]) -> str:
    """The SDL of the part of ``schema`` the documents use (see the module's docstring)."""
    selected: dict[str, set[str]] = {}  # composite type -> the fields selected on it
    for name, text in documents.items():
        document = parse(text)
        errors = validate(schema, document)
        if errors:
            raise SystemExit(f"{name} does not validate against GitHub's schema: {errors[0]}")
        info = TypeInfo(schema)
        visit(document, TypeInfoVisitor(info, Collect(info, selected)))
    wanted: dict[str, GraphQLNamedType] = {}

    def use(named: GraphQLNamedType) -> None:
        if named.name in wanted or named.name in specified_scalar_types:
            return
        if isinstance(named, (GraphQLObjectType, GraphQLInterfaceType)):
            return  # only those selected from, and only their selected fields (below)
        wanted[named.name] = named
        if isinstance(named, GraphQLInputObjectType):
            for field in named.fields.values():
                use(get_named_type(field.type))

    for type_name in sorted(selected):
        whole = schema.get_type(type_name)
        assert isinstance(whole, (GraphQLObjectType, GraphQLInterfaceType))
        fields = {f: whole.fields[f] for f in sorted(selected[type_name])}
        for field in fields.values():
            for argument in field.args.values():
                use(get_named_type(argument.type))
            named = get_named_type(field.type)
            if not isinstance(named, (GraphQLObjectType, GraphQLInterfaceType)):
                use(named)
        kind = GraphQLObjectType if isinstance(whole, GraphQLObjectType) else GraphQLInterfaceType
        wanted[type_name] = kind(type_name, fields=fields, description=whole.description)
    order = sorted(wanted.values(), key=lambda t: (_rank(t), t.name))
    return "\n\n".join(print_type(t) for t in order) + "\n"


def _rank(named: GraphQLNamedType) -> int:
    roots = {"Query": 0, "Mutation": 1}
    if named.name in roots:
        return roots[named.name]
    kinds = (GraphQLObjectType, GraphQLInterfaceType, GraphQLInputObjectType, GraphQLEnumType)
    for rank, kind in enumerate(kinds, 2):
        if isinstance(named, kind):
            return rank
    return 6 if isinstance(named, GraphQLScalarType) else 7


def header(source: str) -> str:
    names = ", ".join(sorted(GRAPHQL_DOCUMENTS))
    return (
        f"# The part of GitHub's GraphQL schema the bot's documents use ({names}).\n"
        f"# Source: npm {source}, schema.graphql.\n"
        "# Made by scripts/graphql_subset.py; do not edit.\n\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--schema", type=Path, help="a schema.graphql (default: npm pack)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    if args.schema is not None:  # the package's schema.graphql, fetched already
        sdl = args.schema.read_text(encoding="utf-8")
    else:
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(["npm", "pack", PACKAGE, "--silent"], cwd=tmp, check=True)
            (archive,) = Path(tmp).glob("*.tgz")
            with tarfile.open(archive) as tar:
                member = tar.extractfile("package/schema.graphql")
                assert member is not None
                sdl = member.read().decode("utf-8")
    text = subset(github_schema(sdl), GRAPHQL_DOCUMENTS)
    args.out.write_text(header(PACKAGE) + text, encoding="utf-8")
    print(f"{args.out}: {len(text.encode())} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
