"""The contract check itself: it must catch what GitHub would refuse or never send, name the
operation and the field, and accept GitHub's own example payloads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bot.fake import contract
from bot.fake.contract import Contract

HERE = Path(__file__).parent
#: GitHub's example payloads (octokit/webhooks), copied from the project's reference material
#: with their provenance in SOURCE.md, so the check runs on every machine.
REFERENCE = HERE / "webhook-examples"


@pytest.fixture
def checker() -> Contract:
    contract.drain()
    return Contract.load(HERE)


def test_request_body_field_of_the_wrong_type_is_named(checker: Contract) -> None:
    body = json.dumps({"name": "x", "head_sha": "a" * 40, "status": "done"}).encode()
    checker.check_request(
        "POST", "/repos/acme/fleet/check-runs", [], body, "application/json; charset=utf-8"
    )
    assert contract.drain() == [
        "POST /repos/{owner}/{repo}/check-runs (checks/create) request body status: "
        "'done' is not one of ['queued', 'in_progress', 'completed']"
    ]


def test_query_parameters_are_declared_and_typed(checker: Contract) -> None:
    checker.check_request(
        "GET", "/repos/acme/fleet/pulls/7/files", [("per_page", "lots"), ("sort", "x")], b"", ""
    )
    assert contract.drain() == [
        "GET /repos/{owner}/{repo}/pulls/{pull_number}/files (pulls/list-files): "
        "query parameter per_page='lots' is not an integer",
        "GET /repos/{owner}/{repo}/pulls/{pull_number}/files (pulls/list-files): "
        "query parameter 'sort' is not documented",
    ]


def test_path_parameters_and_unknown_operations(checker: Contract) -> None:
    checker.check_request("GET", "/repos/acme/fleet/pulls/seven", [], b"", "")
    checker.check_request("DELETE", "/repos/acme/fleet/pulls/7", [], b"", "")
    found = contract.drain()
    assert found == [
        "GET /repos/{owner}/{repo}/pulls/{pull_number} (pulls/get): "
        "path parameter pull_number='seven' is not an integer",
        "DELETE /repos/acme/fleet/pulls/7: no such operation in GitHub's REST API description",
    ]


def test_multi_segment_parameters_match_branch_names_with_slashes(checker: Contract) -> None:
    op = checker.check_request(
        "GET", "/repos/acme/fleet/git/ref/heads/fleet-bot/bump/app", [], b"", ""
    )
    assert op is not None and op.operation_id == "git/get-ref"
    assert contract.drain() == []


def test_responses_are_checked_by_status(checker: Contract) -> None:
    op = checker.check_request("PUT", "/repos/acme/fleet/pulls/7/merge", [], b"{}", "json")
    assert op is not None
    checker.check_response(op, 200, b'{"sha": 1, "merged": true}', "application/json")
    checker.check_response(op, 201, b"{}", "application/json")
    checker.check_response(op, 405, b'{"message": "Pull Request is not mergeable"}', "json")
    checker.check_response(op, 502, b'{"nope": 1}', "application/json")
    assert contract.drain() == [
        "PUT /repos/{owner}/{repo}/pulls/{pull_number}/merge (pulls/merge) 200 response "
        "sha: 1 is not of type 'string'",
        "PUT /repos/{owner}/{repo}/pulls/{pull_number}/merge (pulls/merge) 200 response "
        "(the whole body): 'message' is a required property",
        "PUT /repos/{owner}/{repo}/pulls/{pull_number}/merge (pulls/merge): answered 201; "
        "GitHub documents 200, 403, 404, 405, 409, 422",
        "PUT /repos/{owner}/{repo}/pulls/{pull_number}/merge (pulls/merge) 502 response "
        "(the whole body): 'message' is a required property",
    ]


def test_webhook_payloads_follow_octokits_schemas(checker: Contract) -> None:
    checker.check_webhook("pull_request_review", "submitted", {"action": "submitted"})
    checker.check_webhook("push", None, {"ref": 1})
    checker.check_webhook("deployment", "created", {})
    found = contract.drain()
    assert "webhook pull_request_review.submitted payload (the whole body): " in found[0]
    assert "is a required property" in found[0]
    assert "webhook push payload ref: 1 is not of type 'string'" in found
    assert found[-1] == (
        "webhook deployment.created: octokit's webhook schemas have no such event or action"
    )


def test_githubs_example_payloads_pass(checker: Contract) -> None:
    """Every octokit example in the reference passes; the two captured in 2019 predate
    fields GitHub has added since (they are the only ones allowed to fail)."""
    failing = set()
    examples = sorted(REFERENCE.glob("*.json"))
    assert len(examples) >= 30
    for path in examples:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        event = path.name.split(".")[0]
        action = None if event in ("push", "status", "repository_dispatch") else data["action"]
        checker.check_webhook(event, action, data)
        if contract.drain():
            failing.add(path.name)
    assert failing == {"pull_request.closed.merged.json", "push.merge-to-master.json"}
