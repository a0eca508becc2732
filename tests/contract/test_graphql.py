"""The bot's GraphQL held to GitHub's GraphQL schema: its documents validate against the
vendored slice of GitHub's schema, that slice is exactly what they use, and a request to the
fake with a field GitHub does not have, or a variable of the wrong type, is named."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest
from graphql import build_schema, parse, validate

from bot.fake import contract
from bot.fake.contract import GRAPHQL_FILE, Contract
from bot.github.gateway import ENQUEUE, GRAPHQL_DOCUMENTS, QUEUE_ENTRIES

HERE = Path(__file__).parent
VENDORED = (HERE / GRAPHQL_FILE).read_text(encoding="utf-8")


def script() -> ModuleType:
    path = HERE.parent.parent / "scripts" / "graphql_subset.py"
    spec = importlib.util.spec_from_file_location("graphql_subset", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def checker() -> Contract:
    contract.drain()
    return Contract.load(HERE)


def body(query: str, **variables: object) -> bytes:
    return json.dumps({"query": query, "variables": variables}).encode()


def test_every_document_of_the_bot_validates_against_githubs_schema() -> None:
    schema = build_schema(VENDORED)
    assert set(GRAPHQL_DOCUMENTS) == {"QUEUE_ENTRIES", "ENQUEUE"}
    for name, document in GRAPHQL_DOCUMENTS.items():
        assert validate(schema, parse(document)) == [], name


def test_the_vendored_slice_is_exactly_what_the_documents_use() -> None:
    """Cut again from itself with the same documents, the slice is unchanged: it holds no
    field the bot stopped using, and the script's cut is deterministic."""
    module = script()
    again = module.subset(module.github_schema(VENDORED), GRAPHQL_DOCUMENTS)
    assert module.header(module.PACKAGE) + again == VENDORED


def test_the_bots_requests_pass(checker: Contract) -> None:
    checker.check_graphql(body(QUEUE_ENTRIES, owner="acme", name="fleet", branch="main"))
    checker.check_graphql(body(ENQUEUE, pullRequestId="PR_kw", expectedHeadOid="a" * 40))
    assert contract.drain() == []


def test_a_field_github_does_not_have_is_named(checker: Contract) -> None:
    wrong = QUEUE_ENTRIES.replace("mergeQueue(", "mergeQueues(")
    checker.check_graphql(body(wrong, owner="acme", name="fleet", branch="main"))
    assert contract.drain() == [
        "POST /graphql: Cannot query field 'mergeQueues' on type 'Repository'. "
        "Did you mean 'mergeQueue'?"
    ]


def test_variables_are_checked_against_their_declared_types(checker: Contract) -> None:
    checker.check_graphql(body(ENQUEUE, expectedHeadOid="a" * 40))
    checker.check_graphql(body(QUEUE_ENTRIES, owner="acme", name=7, branch="main"))
    found = contract.drain()
    assert len(found) == 2, found
    # (graphql-core's wording differs between versions: the variable and the type are named)
    assert found[0].startswith("POST /graphql variables: Variable '$pullRequestId'"), found
    assert "ID!" in found[0]
    assert found[1].startswith("POST /graphql variables: Variable '$name'"), found
    assert "String" in found[1] and "7" in found[1]
