"""Authentication and authorisation: JWTs, installation tokens, PATs, scoping, permissions."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
from gidgethub import BadRequest
from gidgethub.aiohttp import GitHubAPI

from bot.fake.gitobjects import hash_object
from bot.fake.state import App
from tests.fake.conftest import Seeded


def app_jwt(
    seeded: Seeded,
    *,
    iat: float | None = None,
    exp: float | None = None,
    iss: str | None = None,
    key: str | None = None,
) -> str:
    now = time.time()
    payload = {
        "iat": int(iat if iat is not None else now - 60),
        "exp": int(exp if exp is not None else now + 540),
        "iss": iss if iss is not None else str(seeded.app.id),
    }
    return jwt.encode(payload, key or seeded.app.private_key_pem, algorithm="RS256")


async def raw(
    seeded: Seeded, method: str, path: str, auth: str | None
) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": auth} if auth else {}
    async with seeded.session.request(method, seeded.fake.api_url + path, headers=headers) as resp:
        return resp.status, await resp.json()


async def test_app_endpoints_take_a_valid_jwt(gh: Seeded) -> None:
    client = GitHubAPI(gh.session, "t", base_url=gh.fake.api_url)
    token = app_jwt(gh)
    app = await client.getitem("/app", jwt=token)
    assert (app["id"], app["slug"]) == (gh.app.id, "fleet-bot")
    insts = [i async for i in client.getiter("/app/installations", jwt=token)]
    assert [i["id"] for i in insts] == [gh.inst.id]
    found = await client.getitem("/repos/acme/fleet/installation", jwt=token)
    assert found["id"] == gh.inst.id and found["account"]["login"] == "acme"
    org = await client.getitem("/orgs/acme/installation", jwt=token)
    assert org["id"] == gh.inst.id
    status, _ = await raw(gh, "GET", "/repos/acme/other/installation", f"Bearer {token}")
    assert status == 404  # the installation selects only acme/fleet


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"exp": time.time() - 10, "iat": time.time() - 600},
            "'Expiration time' claim ('exp') must be",
        ),
        ({"exp": time.time() + 3600}, "'Expiration time' claim ('exp') is too far in the future"),
        ({"iss": "999999999"}, "A JSON web token could not be decoded"),
    ],
)
async def test_jwt_verification_failures(gh: Seeded, kwargs: dict[str, Any], message: str) -> None:
    status, body = await raw(gh, "GET", "/app", f"Bearer {app_jwt(gh, **kwargs)}")
    assert status == 401
    assert body["message"].startswith(message)


async def test_jwt_signed_with_another_key_is_rejected(gh: Seeded) -> None:
    other = gh.fake.create_app("other-app")
    forged = app_jwt(gh, key=other.private_key_pem)  # iss says fleet-bot, key is other's
    status, body = await raw(
        gh, "POST", f"/app/installations/{gh.inst.id}/access_tokens", f"Bearer {forged}"
    )
    assert (status, body["message"]) == (401, "A JSON web token could not be decoded")


async def test_missing_bad_and_expired_tokens(gh: Seeded) -> None:
    assert await raw(gh, "GET", "/installation/repositories", None) == (
        401,
        {"message": "Requires authentication", "documentation_url": "https://docs.github.com/rest"},
    )
    status, body = await raw(gh, "GET", "/repos/acme/fleet", "token ghs_nope")
    assert (status, body["message"]) == (401, "Bad credentials")
    token = await gh.token()
    assert (await raw(gh, "GET", "/repos/acme/fleet", f"token {token}"))[0] == 200
    gh.fake.expire_tokens()
    status, body = await raw(gh, "GET", "/repos/acme/fleet", f"token {token}")
    assert (status, body["message"]) == (401, "Bad credentials")
    gh.fake.token_ttl = 0
    short = await gh.token()
    assert (await raw(gh, "GET", "/repos/acme/fleet", f"token {short}"))[0] == 401


async def test_token_reaches_only_its_installation(gh: Seeded) -> None:
    bot = await gh.bot()
    with pytest.raises(BadRequest) as exc:
        await bot.getitem("/repos/acme/other")  # same org, not selected
    assert exc.value.status_code == 404
    gh.fake.create_org("globex")
    gh.fake.create_repo("globex", "fleet", author="alice")
    other_inst = gh.fake.install(gh.app, "globex")
    other_bot = await gh.bot(other_inst)
    assert (await other_bot.getitem("/repos/globex/fleet"))["full_name"] == "globex/fleet"
    with pytest.raises(BadRequest) as exc:
        await other_bot.getitem("/repos/acme/fleet")
    assert exc.value.status_code == 404
    repos = await bot.getitem("/installation/repositories")
    assert [r["full_name"] for r in repos["repositories"]] == ["acme/fleet"]


async def test_permissions_and_narrowed_tokens(gh: Seeded) -> None:
    reader = gh.fake.create_app("reader", permissions={"contents": "read"})
    inst = gh.fake.install(reader, "acme", repositories="all")
    client = GitHubAPI(gh.session, "t", base_url=gh.fake.api_url)
    token = (
        await client.post(
            f"/app/installations/{inst.id}/access_tokens", data={}, jwt=app_jwt_for(reader)
        )
    )["token"]
    bot = GitHubAPI(gh.session, "t", oauth_token=token, base_url=gh.fake.api_url)
    assert (await bot.getitem("/repos/acme/other/git/ref/heads/main"))["ref"] == "refs/heads/main"
    with pytest.raises(BadRequest) as exc:
        await bot.post("/repos/acme/other/git/blobs", data={"content": "x"})
    assert (exc.value.status_code, str(exc.value)) == (
        403,
        "Resource not accessible by integration",
    )
    with pytest.raises(BadRequest) as exc:
        await client.post(
            f"/app/installations/{inst.id}/access_tokens",
            data={"permissions": {"contents": "write"}},
            jwt=app_jwt_for(reader),
        )
    assert exc.value.status_code == 422
    narrowed = await client.post(
        f"/app/installations/{inst.id}/access_tokens",
        data={"repositories": ["other"]},
        jwt=app_jwt_for(reader),
    )
    assert narrowed["repository_selection"] == "selected"
    nb = GitHubAPI(gh.session, "t", oauth_token=narrowed["token"], base_url=gh.fake.api_url)
    with pytest.raises(BadRequest) as exc:
        await nb.getitem("/repos/acme/fleet")
    assert exc.value.status_code == 404


def app_jwt_for(app: App) -> str:
    now = int(time.time())
    return jwt.encode(
        {"iat": now - 60, "exp": now + 540, "iss": str(app.id)},
        app.private_key_pem,
        algorithm="RS256",
    )


async def test_jwt_is_not_accepted_on_repository_endpoints(gh: Seeded) -> None:
    status, body = await raw(gh, "GET", "/repos/acme/fleet", f"Bearer {app_jwt(gh)}")
    assert (status, body["message"]) == (403, "Resource not accessible by integration")
    token = await gh.token()
    status, body = await raw(gh, "GET", "/app", f"token {token}")
    assert (status, body["message"]) == (401, "A JSON web token could not be decoded")


async def test_personal_tokens_follow_roles(gh: Seeded) -> None:
    carol = gh.fake.create_user("carol")
    with pytest.raises(BadRequest) as exc:
        await gh.person(carol).getitem("/repos/acme/fleet")  # private, no role
    assert exc.value.status_code == 404
    gh.fake.set_collaborator("acme/fleet", "carol", "read")
    assert (await gh.person(carol).getitem("/repos/acme/fleet"))["permissions"]["push"] is False
    with pytest.raises(BadRequest) as exc:
        await gh.person(carol).post("/repos/acme/fleet/git/blobs", data={"content": "x"})
    assert exc.value.status_code == 403
    blob = await gh.person(gh.bob).post("/repos/acme/fleet/git/blobs", data={"content": "x"})
    assert blob["sha"] == hash_object("blob", b"x")
    assert gh.fake.requests[-1].identity == "user:bob"
