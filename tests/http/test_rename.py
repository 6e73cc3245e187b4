"""Rename: `PATCH /files/{id}` with JSON `{"name": ...}`, and the page's rename form."""

import asyncio

import pytest
from tests.support.fixtures import add_account, signed_in_client


async def stored(client, name: str = "old.txt", body: bytes = b"hello\n") -> dict:
    r = await client.put(f"/uploads/{name}", content=body)
    assert r.status_code == 201, r.text
    return r.json()["files"][0]


async def test_patch_renames_and_answers_the_file(client):
    entry = await stored(client)
    r = await client.patch(entry["url"], json={"name": "new name.txt"})
    assert r.status_code == 200, r.text
    renamed = r.json()["file"]
    assert (renamed["name"], renamed["path"]) == ("new name.txt", "/new name.txt")
    # Everything else is as it was (the path is the folder's path and the new name).
    assert {k: v for k, v in renamed.items() if k not in ("name", "path")} == {
        k: v for k, v in entry.items() if k not in ("name", "path")
    }
    [listed] = (await client.get("/api/files")).json()["files"]
    assert listed["name"] == "new name.txt"
    download = await client.get(entry["url"], params={"download": "1"})
    assert download.content == b"hello\n"
    assert "new%20name.txt" in download.headers.get("content-disposition")
    assert (await client.get("/api/files?q=new")).json()["files"][0]["id"] == entry["id"]


async def test_new_name_is_made_safe_like_an_uploads(client):
    entry = await stored(client)
    r = await client.patch(entry["url"], json={"name": " ../etc/pass\u202ewd\n.txt "})
    assert r.status_code == 200
    assert r.json()["file"]["name"] == ".._etc_passwd .txt"  # leading dots stay
    long = "x" * 300 + ".jpeg"
    r = await client.patch(entry["url"], json={"name": long})
    assert r.json()["file"]["name"] == "x" * 250 + ".jpeg"


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"name": ""}, "name must not be empty"),
        ({"name": "   "}, "name must not be empty"),
        ({"name": 7}, "name must be a string"),
        ({"name": "\u202e\u0007"}, "name has nothing that can be shown"),
        ({"name": "..."}, "name has nothing that can be shown"),
        ({}, 'send JSON {"name": "the new name"}'),
        ({"name": "a", "size": 1}, "unknown field 'size'"),
    ],
)
async def test_an_empty_or_unusable_name_is_400_and_changes_nothing(client, body, words):
    entry = await stored(client)
    r = await client.patch(entry["url"], json=body)
    assert r.status_code == 400
    assert r.json()["error"].startswith(words)
    assert (await client.get("/api/files")).json()["files"][0]["name"] == "old.txt"


async def test_a_body_that_is_not_json_is_400(client):
    entry = await stored(client)
    r = await client.patch(entry["url"], content=b"new.txt")
    assert r.status_code == 400
    assert r.json() == {"error": "the body is not valid JSON"}


async def test_another_accounts_file_is_404_and_keeps_its_name(client, config):
    entry = await stored(client)
    _, token = await add_account(config, "other")
    async with signed_in_client(config, token) as other:
        r = await other.patch(entry["url"], json={"name": "mine.txt"})
        assert r.status_code == 404
        assert r.json() == {"error": "no such file"}
        r = await other.patch("/files/AAAAAAAAAAAAAAAAAAAAAA", json={"name": "x"})
        assert r.status_code == 404
    assert (await client.get("/api/files")).json()["files"][0]["name"] == "old.txt"


async def test_rename_repaints_every_live_page(client):
    entry = await stored(client)
    async with client.stream("GET", "/live", headers={"accept-encoding": "identity"}) as live:
        events = live.iter_events()

        async def next_files_patch() -> str:
            async for event in events:
                if 'id="files"' in event["data"]:
                    return event["data"]
            raise AssertionError("the stream ended")

        assert "old.txt" in await asyncio.wait_for(next_files_patch(), 5)
        r = await client.patch(entry["url"], json={"name": "renamed.txt"})
        assert r.status_code == 200
        painted = await asyncio.wait_for(next_files_patch(), 5)
        assert "renamed.txt" in painted and "old.txt" not in painted


async def test_the_page_renames_through_its_signals(client):
    entry = await stored(client)
    page = (await client.get("/")).text
    row = page[page.index(f'id="file-{entry["id"]}"') :]
    assert f'aria-label="Rename {entry["name"]}">Rename</a>' in row[: row.index("</li>")]
    assert 'id="rename-form"' in page and 'data-bind="renameName"' in page
    r = await client.patch(
        entry["url"],
        json={"renameFile": entry["id"], "renameName": "from the page.txt"},
        headers={"datastar-request": "true"},
    )
    assert r.status_code == 200
    assert "datastar-patch-signals" in r.text and '"renameFile":""' in r.text
    assert (await client.get("/api/files")).json()["files"][0]["name"] == "from the page.txt"
    r = await client.patch(
        entry["url"],
        json={"renameFile": entry["id"], "renameName": ""},
        headers={"datastar-request": "true"},
    )
    assert r.status_code == 200
    assert "Could not rename: name must not be empty." in r.text
