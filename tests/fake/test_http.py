"""Cross-cutting HTTP behaviour: pagination, ETags, rate-limit headers, errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from gidgethub import BadRequest
from gidgethub.aiohttp import GitHubAPI

from bot.fake import FakeGitHub, contract
from bot.fake.contract import Contract
from tests.fake.conftest import Seeded, seed


async def test_getiter_follows_link_headers_to_the_end(gh: Seeded) -> None:
    shas = [gh.fake.commit("acme/fleet", "main", {f"f{i}": b"x"}, author="alice") for i in range(7)]
    bot = await gh.bot()
    got = [c["sha"] async for c in bot.getiter("/repos/acme/fleet/commits?per_page=3")]
    assert got[:7] == list(reversed(shas)) and len(got) == 8
    pages = [r.query for r in gh.fake.requests if r.path == "/repos/acme/fleet/commits"]
    assert pages == ["per_page=3", "per_page=3&page=2", "per_page=3&page=3"]


async def test_link_header_relations(gh: Seeded) -> None:
    for i in range(4):
        gh.fake.commit("acme/fleet", "main", {f"g{i}": b"x"}, author="alice")
    token = await gh.token()
    url = f"{gh.fake.api_url}/repos/acme/fleet/commits?per_page=2&page=2"
    async with gh.session.get(url, headers={"Authorization": f"token {token}"}) as resp:
        link = resp.headers["Link"]
        assert len(await resp.json()) == 2
    rels: dict[str, str] = {}
    for part in link.split(", "):
        url, rel = part.split("; ")
        rels[rel] = url
    assert rels['rel="prev"'].endswith("page=1>") and rels['rel="first"'].endswith("page=1>")
    assert rels['rel="next"'].endswith("page=3>") and rels['rel="last"'].endswith("page=3>")


async def test_etag_and_304_do_not_cost_rate_limit(gh: Seeded) -> None:
    token = await gh.token()
    headers = {"Authorization": f"token {token}"}
    url = f"{gh.fake.api_url}/repos/acme/fleet/git/ref/heads/main"
    async with gh.session.get(url, headers=headers) as resp:
        etag = resp.headers["ETag"]
        remaining = int(resp.headers["x-ratelimit-remaining"])
        assert resp.headers["x-ratelimit-limit"] == "5000"
        assert resp.headers["x-ratelimit-resource"] == "core"
    async with gh.session.get(url, headers={**headers, "If-None-Match": etag}) as resp:
        assert resp.status == 304
        assert await resp.read() == b""
        assert int(resp.headers["x-ratelimit-remaining"]) == remaining
    gh.fake.commit("acme/fleet", "main", {"n": b"1"}, author="alice")
    async with gh.session.get(url, headers={**headers, "If-None-Match": etag}) as resp:
        assert resp.status == 200
        assert resp.headers["ETag"] != etag
        assert int(resp.headers["x-ratelimit-remaining"]) == remaining - 1


async def test_gidgethub_cache_uses_conditional_requests(gh: Seeded) -> None:
    cache: dict[str, Any] = {}
    bot = GitHubAPI(
        gh.session, "t", oauth_token=await gh.token(), base_url=gh.fake.api_url, cache=cache
    )
    first = await bot.getitem("/repos/acme/fleet/git/ref/heads/main")
    second = await bot.getitem("/repos/acme/fleet/git/ref/heads/main")
    assert first == second
    statuses = [r.status for r in gh.fake.requests if r.path.endswith("/git/ref/heads/main")]
    assert statuses == [200, 304]


@pytest.mark.contract_breach(
    r"^GET /nope/nope: no such operation",
    r"\(git/create-blob\): request body is application/octet-stream",
)
async def test_unknown_route_and_bad_json(gh: Seeded) -> None:
    token = await gh.token()
    headers = {"Authorization": f"token {token}"}
    async with gh.session.get(f"{gh.fake.api_url}/nope/nope", headers=headers) as resp:
        assert resp.status == 404
        assert (await resp.json())["message"] == "Not Found"
    async with gh.session.post(
        f"{gh.fake.api_url}/repos/acme/fleet/git/blobs", headers=headers, data=b"{"
    ) as resp:
        assert resp.status == 400
        assert (await resp.json())["message"] == "Problems parsing JSON"


@pytest.mark.contract_breach(r"\(checks/create\) request body status: 'done'")
async def test_the_suite_fails_a_test_whose_requests_break_the_contract(
    session: aiohttp.ClientSession,
) -> None:
    """Over HTTP, through the fake's middleware: the breach is recorded (and this test, which
    names it, is the only kind allowed to cause one)."""
    checked = FakeGitHub(contract=Contract.load(Path(__file__).parent.parent / "contract"))
    async for gh in seed(checked, session):
        await _breach(gh)


async def _breach(gh: Seeded) -> None:
    bot = await gh.bot()
    sha = gh.fake.repo("acme/fleet").branch_sha("main")
    with pytest.raises(BadRequest):
        await bot.post(
            "/repos/acme/fleet/check-runs", data={"name": "x", "head_sha": sha, "status": "done"}
        )
    assert any("status: 'done'" in line for line in contract._RECORDED)


@pytest.mark.contract_breach(r"^POST /graphql: Cannot query field 'nope' on type 'Query'")
async def test_a_bad_query_over_http_is_recorded(session: aiohttp.ClientSession) -> None:
    """Through the fake's middleware, as every GraphQL request of the suite is checked."""
    checked = FakeGitHub(contract=Contract.load(Path(__file__).parent.parent / "contract"))
    async for gh in seed(checked, session):
        token = await gh.token()
        async with gh.session.post(
            f"{gh.fake.api_url}/graphql",
            headers={"Authorization": f"bearer {token}"},
            data=json.dumps({"query": "query { nope }"}).encode(),
        ) as resp:
            assert resp.status == 200
        assert contract.drain() == ["POST /graphql: Cannot query field 'nope' on type 'Query'."]
