"""Git data, contents and commits over HTTP, with gidgethub as the client."""

from __future__ import annotations

import base64

import pytest
from gidgethub import BadRequest, InvalidField

from bot.fake.gitobjects import hash_object
from tests.fake.conftest import Seeded

INPUT = "clusters/dev-use1-01/tenants/payment/input.yaml"


async def test_commit_many_files_through_git_data_api(gh: Seeded) -> None:
    bot = await gh.bot()
    ref = await bot.getitem("/repos/acme/fleet/git/ref/heads/main")
    head = ref["object"]["sha"]
    commit = await bot.getitem(f"/repos/acme/fleet/git/commits/{head}")
    blob = await bot.post(
        "/repos/acme/fleet/git/blobs",
        data={"content": base64.b64encode(b"bin\x00ary").decode(), "encoding": "base64"},
    )
    assert blob["sha"] == hash_object("blob", b"bin\x00ary")
    tree = await bot.post(
        "/repos/acme/fleet/git/trees",
        data={
            "base_tree": commit["tree"]["sha"],
            "tree": [
                {
                    "path": INPUT,
                    "mode": "100644",
                    "type": "blob",
                    "content": "image: payment:v1.1.0\n",
                },
                {"path": "bin/data", "mode": "100644", "type": "blob", "sha": blob["sha"]},
                {"path": "README.md", "mode": "100644", "type": "blob", "sha": None},
            ],
        },
    )
    new = await bot.post(
        "/repos/acme/fleet/git/commits",
        data={"message": "Bump payment", "tree": tree["sha"], "parents": [head]},
    )
    assert new["author"]["name"] == "Fleet Bot" and new["parents"][0]["sha"] == head
    updated = await bot.patch("/repos/acme/fleet/git/refs/heads/main", data={"sha": new["sha"]})
    assert updated["object"]["sha"] == new["sha"]
    assert gh.fake.file("acme/fleet", "main", INPUT) == b"image: payment:v1.1.0\n"
    assert gh.fake.file("acme/fleet", "main", "README.md") is None
    assert gh.fake.file("acme/fleet", "main", "bin/data") == b"bin\x00ary"
    got = await bot.getitem(f"/repos/acme/fleet/git/blobs/{blob['sha']}")
    assert base64.b64decode(got["content"]) == b"bin\x00ary"
    await gh.fake.idle()
    push = [d for d in gh.fake.deliveries if d.event == "push"][-1]
    assert push.payload["after"] == new["sha"] and push.payload["before"] == head
    assert push.payload["head_commit"]["modified"] == [INPUT]
    assert push.payload["head_commit"]["removed"] == ["README.md"]
    assert push.payload["pusher"]["name"] == "fleet-bot[bot]"
    assert push.payload["sender"]["type"] == "Bot"


async def test_ref_rules(gh: Seeded) -> None:
    bot = await gh.bot()
    head = gh.fake.repo("acme/fleet").branch_sha("main")
    created = await bot.post(
        "/repos/acme/fleet/git/refs", data={"ref": "refs/heads/promo", "sha": head}
    )
    assert created["ref"] == "refs/heads/promo"
    with pytest.raises(BadRequest) as exc:
        await bot.post("/repos/acme/fleet/git/refs", data={"ref": "refs/heads/promo", "sha": head})
    assert (exc.value.status_code, str(exc.value)) == (422, "Reference already exists")
    with pytest.raises(BadRequest) as exc:
        await bot.post("/repos/acme/fleet/git/refs", data={"ref": "refs/heads/x", "sha": "1" * 40})
    assert str(exc.value) == "Object does not exist"
    # a commit that is not a descendant: rewrite history on promo
    other = gh.fake.commit("acme/fleet", "promo", {"a": b"1"}, author="alice")
    side = gh.fake.commit("acme/fleet", "main", {"b": b"2"}, author="alice")
    with pytest.raises(BadRequest) as exc:
        await bot.patch("/repos/acme/fleet/git/refs/heads/promo", data={"sha": side})
    assert (exc.value.status_code, str(exc.value)) == (422, "Update is not a fast forward")
    forced = await bot.patch(
        "/repos/acme/fleet/git/refs/heads/promo", data={"sha": side, "force": True}
    )
    assert forced["object"]["sha"] == side != other
    matching = await bot.getitem("/repos/acme/fleet/git/matching-refs/heads/pro")
    assert [r["ref"] for r in matching] == ["refs/heads/promo"]
    await bot.delete("/repos/acme/fleet/git/refs/heads/promo")
    with pytest.raises(BadRequest) as exc:
        await bot.delete("/repos/acme/fleet/git/refs/heads/promo")
    assert (exc.value.status_code, str(exc.value)) == (422, "Reference does not exist")
    with pytest.raises(BadRequest) as exc:
        await bot.getitem("/repos/acme/fleet/git/ref/heads/promo")
    assert exc.value.status_code == 404


@pytest.mark.contract_breach(
    r"\(git/create-tree\) request body tree\[0\]\.mode: '644'",
    r"^GET /repos/acme/fleet/git/trees/: no such operation",
)
async def test_trees_recursive_truncated_and_bad_input(gh: Seeded) -> None:
    bot = await gh.bot()
    tree = await bot.getitem("/repos/acme/fleet/git/trees/main?recursive=1")
    paths = [e["path"] for e in tree["tree"] if e["type"] == "blob"]
    assert sorted(paths) == sorted(
        ["README.md", INPUT, INPUT.replace("dev-use1-01", "prod-use1-01")]
    )
    assert tree["truncated"] is False
    top = await bot.getitem(f"/repos/acme/fleet/git/trees/{tree['sha']}")
    assert [e["path"] for e in top["tree"]] == ["README.md", "clusters"]
    gh.fake.tree_entry_limit = 3
    cut = await bot.getitem("/repos/acme/fleet/git/trees/main?recursive=1")
    assert (len(cut["tree"]), cut["truncated"]) == (3, True)
    with pytest.raises(BadRequest) as exc:
        await bot.post(
            "/repos/acme/fleet/git/trees",
            data={"tree": [{"path": "x", "mode": "100644", "type": "blob", "sha": "f" * 40}]},
        )
    assert exc.value.status_code == 422
    with pytest.raises(BadRequest) as exc:
        await bot.post(
            "/repos/acme/fleet/git/trees",
            data={
                "base_tree": tree["sha"],
                "tree": [{"path": "nope", "mode": "100644", "type": "blob", "sha": None}],
            },
        )
    assert exc.value.status_code == 422
    with pytest.raises(BadRequest):
        await bot.post(
            "/repos/acme/fleet/git/trees",
            data={"tree": [{"path": "x", "mode": "644", "content": "x"}]},
        )


async def test_contents_read_and_sha_rules(gh: Seeded) -> None:
    bot = await gh.bot()
    f = await bot.getitem(f"/repos/acme/fleet/contents/{INPUT}")
    assert base64.b64decode(f["content"]) == b"image: registry.acme.com/payment:v1.0.0\n"
    listing = await bot.getitem("/repos/acme/fleet/contents/clusters")
    assert [e["name"] for e in listing] == ["dev-use1-01", "prod-use1-01"]
    assert listing[0]["type"] == "dir"
    new = base64.b64encode(b"image: v2\n").decode()
    with pytest.raises(InvalidField) as missing_sha:
        await bot.put(f"/repos/acme/fleet/contents/{INPUT}", data={"message": "m", "content": new})
    assert missing_sha.value.status_code == 422 and "sha" in str(missing_sha.value)
    with pytest.raises(BadRequest) as exc:
        await bot.put(
            f"/repos/acme/fleet/contents/{INPUT}",
            data={"message": "m", "content": new, "sha": "0" * 40},
        )
    assert exc.value.status_code == 409
    ok = await bot.put(
        f"/repos/acme/fleet/contents/{INPUT}",
        data={"message": "m", "content": new, "sha": f["sha"]},
    )
    assert ok["content"]["sha"] == hash_object("blob", b"image: v2\n")
    created = await bot.put(
        "/repos/acme/fleet/contents/new.txt", data={"message": "m", "content": new, "sha": "junk"}
    )
    assert created["commit"]["parents"][0]["sha"] == ok["commit"]["sha"]
    with pytest.raises(BadRequest) as exc:
        await bot.put(
            "/repos/acme/fleet/contents/x.txt",
            data={"message": "m", "content": new, "branch": "nope"},
        )
    assert exc.value.status_code == 404
    with pytest.raises(BadRequest) as exc:
        await bot.getitem("/repos/acme/fleet/contents/missing.yaml")
    assert exc.value.status_code == 404


async def test_commit_history_filters_and_commit_files(gh: Seeded) -> None:
    bot = await gh.bot()
    first = gh.fake.commit(
        "acme/fleet", "main", {INPUT: b"image: v1.1\n"}, message="bump dev", author="alice"
    )
    gh.fake.commit("acme/fleet", "main", {"docs/x.md": b"x"}, message="docs", author="bob")
    history = [c async for c in bot.getiter(f"/repos/acme/fleet/commits?path={INPUT}")]
    assert [c["commit"]["message"] for c in history] == ["bump dev", "Initial commit"]
    assert history[0]["author"]["login"] == "alice"
    by_bob = [c async for c in bot.getiter("/repos/acme/fleet/commits?author=bob")]
    assert [c["commit"]["message"] for c in by_bob] == ["docs"]
    detail = await bot.getitem(f"/repos/acme/fleet/commits/{first}")
    assert [f["filename"] for f in detail["files"]] == [INPUT]
    assert detail["files"][0]["patch"].endswith("+image: v1.1")
    assert detail["stats"] == {"total": 2, "additions": 1, "deletions": 1}
    with pytest.raises(InvalidField) as exc:
        await bot.getitem("/repos/acme/fleet/commits/doesnotexist")
    assert exc.value.status_code == 422
    cmp = await bot.getitem(f"/repos/acme/fleet/compare/{first}...main")
    assert (cmp["status"], cmp["ahead_by"], cmp["behind_by"]) == ("ahead", 1, 0)
    assert [f["filename"] for f in cmp["files"]] == ["docs/x.md"]


async def test_ghes_base_path(ghes: Seeded) -> None:
    assert ghes.fake.api_url.endswith("/api/v3")
    assert not ghes.fake.web_url.endswith("/api/v3")
    bot = await ghes.bot()
    repo = await bot.getitem("/repos/acme/fleet")
    assert repo["url"] == f"{ghes.fake.api_url}/repos/acme/fleet"
    assert repo["html_url"] == f"{ghes.fake.web_url}/acme/fleet"
    for i in range(5):
        ghes.fake.commit("acme/fleet", "main", {f"f{i}": b"x"}, author="alice")
    pages = [c async for c in bot.getiter("/repos/acme/fleet/commits?per_page=2")]
    assert len(pages) == 6
    recorded = [r for r in ghes.fake.requests if r.path == "/repos/acme/fleet/commits"]
    assert [r.status for r in recorded] == [200, 200, 200]
    token = await ghes.token()
    async with ghes.session.get(
        f"{ghes.fake.api_url}/repos/acme/fleet/commits?per_page=2",
        headers={"Authorization": f"token {token}"},
    ) as resp:
        link = resp.headers["Link"]
    assert f'<{ghes.fake.api_url}/repos/acme/fleet/commits?per_page=2&page=2>; rel="next"' in link
    assert 'rel="last"' in link


async def test_contents_of_a_symlink_to_a_file_answer_the_file_as_github_does(
    gh: Seeded,
) -> None:
    """GitHub follows a symlink whose target is a normal file of the repository; a link to a
    directory, outside the repository, or to nothing is answered as the link itself."""
    base = "clusters/prod-use1-01/tenants/payment"
    gh.fake.commit(
        "acme/fleet",
        "main",
        {
            f"{base}/input.yaml": ("120000", b"../../../dev-use1-01/tenants/payment/input.yaml"),
            f"{base}/chain.yaml": ("120000", b"input.yaml"),
            f"{base}/dir": ("120000", b"../../../dev-use1-01"),
            f"{base}/outside": ("120000", b"../../../../../etc/passwd"),
            f"{base}/absolute": ("120000", b"/etc/passwd"),
            f"{base}/dangling": ("120000", b"nothing-here.yaml"),
        },
        author="alice",
    )
    bot = await gh.bot()
    target = gh.fake.file("acme/fleet", "main", INPUT)
    assert target is not None
    for name in ("input.yaml", "chain.yaml"):
        got = await bot.getitem(f"/repos/acme/fleet/contents/{base}/{name}")
        assert got["type"] == "file" and got["path"] == INPUT
        assert base64.b64decode(got["content"]) == target
    for name in ("dir", "outside", "absolute", "dangling"):
        got = await bot.getitem(f"/repos/acme/fleet/contents/{base}/{name}")
        assert got["type"] == "symlink" and got["path"] == f"{base}/{name}", name
        assert "content" not in got
