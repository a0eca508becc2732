"""The fake serves repository archives as GitHub does: the API answers 302 to a short-lived URL
on another origin (codeload), which serves what ``git archive`` writes; checked here with the
standard library's ``tarfile``, an independent reader."""

from __future__ import annotations

import io
import tarfile
from urllib.parse import urlsplit

import aiohttp
from gidgethub import BadRequest

from tests.fake.conftest import SEED, Seeded


async def location(gh: Seeded, ref: str, repo: str = "acme/fleet") -> str:
    """Where the tarball endpoint redirects (read without following: gidgethub's aiohttp
    client would follow it, with the token, and try to decode the gzip as JSON)."""
    async with gh.session.get(
        f"{gh.fake.api_url}/repos/{repo}/tarball/{ref}",
        headers={"Authorization": f"token {await gh.token()}"},
        allow_redirects=False,
    ) as resp:
        assert resp.status == 302
        return str(resp.headers["Location"])


async def test_the_archive_is_a_redirect_to_another_origin_serving_git_archive(
    gh: Seeded,
) -> None:
    # aiohttp would follow the redirect by itself: the bot must not, so neither do we here.
    sha = gh.fake.repo("acme/fleet").resolve("main")
    assert sha is not None
    async with gh.session.get(
        f"{gh.fake.api_url}/repos/acme/fleet/tarball/{sha}",
        headers={"Authorization": f"token {await gh.token()}"},
        allow_redirects=False,
    ) as resp:
        assert resp.status == 302
        url = resp.headers["Location"]
    api, there = urlsplit(gh.fake.api_url), urlsplit(url)
    assert (there.hostname, there.port) != (api.hostname, api.port)  # another origin
    assert there.path == f"/acme/fleet/legacy.tar.gz/{sha}" and "token=" in there.query

    async with gh.session.get(url) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "application/x-gzip"
        body = await resp.read()
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as archive:
        assert archive.pax_headers.get("comment") == sha  # git writes the commit here
        members = archive.getmembers()
        top = f"acme-fleet-{sha[:7]}"
        assert members[0].name == top and members[0].isdir()
        files = {m.name.removeprefix(top + "/"): m for m in members if m.isfile()}
        assert set(files) == set(SEED)
        for path, data in SEED.items():
            extracted = archive.extractfile(files[path])
            assert extracted is not None and extracted.read() == data
            assert files[path].mode == 0o664
    assert gh.fake.archive_auth_leaks == 0


async def test_the_archive_host_refuses_the_installation_token(gh: Seeded) -> None:
    url = await location(gh, "main")
    headers = {"Authorization": f"token {await gh.token()}"}
    async with gh.session.get(url, headers=headers) as resp:
        assert resp.status == 403
    assert gh.fake.archive_auth_leaks == 1  # a test that leaked would see this
    gh.fake.settings.archive_auth_leaks = 0


async def test_an_unknown_commit_has_no_archive(gh: Seeded) -> None:
    bot = await gh.bot()
    try:
        await bot.getitem("/repos/acme/fleet/tarball/" + "e" * 40)
    except BadRequest as exc:
        assert int(exc.status_code) == 404
    else:
        raise AssertionError("an archive of an unknown commit")


async def test_an_empty_repository_redirects_then_the_download_is_404(gh: Seeded) -> None:
    gh.fake.create_repo("acme", "empty", empty=True)
    gh.fake.install(gh.app, "acme", repositories=["fleet", "empty"])
    url = await location(gh, "main", "acme/empty")
    async with gh.session.get(url) as resp:
        assert resp.status == 404


async def test_the_url_works_only_for_its_repository_and_commit(gh: Seeded) -> None:
    url = await location(gh, "main")
    other = gh.fake.commit("acme/fleet", "main", {"x.yaml": b"x: 1\n"}, "x", author="alice")
    parts = urlsplit(url)
    forged = f"{parts.scheme}://{parts.netloc}/acme/fleet/legacy.tar.gz/{other}?{parts.query}"
    async with aiohttp.ClientSession() as session:
        async with session.get(forged) as resp:
            assert resp.status == 404
        async with session.get(url.split("?")[0] + "?token=guessed") as resp:
            assert resp.status == 404
        async with session.get(url) as resp:
            assert resp.status == 200


async def test_the_api_call_counts_against_the_rate_limit_the_download_does_not(
    gh: Seeded,
) -> None:
    bot = await gh.bot()
    await bot.getitem("/repos/acme/fleet/git/ref/heads/main")
    before = bot.rate_limit.remaining if bot.rate_limit else None
    url = await location(gh, "main")  # with another token of the same installation
    async with gh.session.get(url) as resp:
        await resp.read()
    await bot.getitem("/repos/acme/fleet/git/ref/heads/main")
    after = bot.rate_limit.remaining if bot.rate_limit else None
    assert before is not None and after is not None
    # the installation's budget: the tarball call and the second ref read; not the download
    assert before - after == 2
    kinds = [r.identity for r in gh.fake.requests if "legacy.tar.gz" in r.path]
    assert kinds == ["codeload"]
