"""The folders API end to end on both catalogs: one walk through every route, so a
statement one dialect does not take fails here first."""

import pytest
from tests.support.fixtures import signed_in_client

from app.config import Config


@pytest.mark.parametrize("config", ["sqlite", "postgres"], indirect=True)
async def test_a_walk_through_the_folders_api(config: Config, owner):
    async with signed_in_client(config, owner[1]) as client:
        made = await client.post("/api/folders", json={"name": "Photos"})
        assert made.status_code == 201, made.text
        photos = made.json()["folder"]
        assert (photos["name"], photos["parent"], photos["path"]) == ("Photos", "root", "/Photos/")
        inner = await client.post("/api/folders", json={"name": "2024", "parent": photos["id"]})
        assert inner.status_code == 201, inner.text
        inner_id = inner.json()["folder"]["id"]
        put = await client.put("/uploads/a.txt", content=b"abc")
        file_id = put.json()["files"][0]["id"]
        again = await client.put("/uploads/A.TXT", content=b"abcd")
        assert again.json()["files"][0]["name"] == "A (2).TXT"
        moved = await client.post(
            "/api/files/move",
            json={"ids": [file_id, again.json()["files"][0]["id"]], "to": inner_id},
        )
        assert moved.status_code == 200, moved.text
        shown = (await client.get(f"/api/folders/{inner_id}")).json()
        assert shown["folder"]["path"] == "/Photos/2024/"
        assert {f["path"] for f in shown["files"]} == {
            "/Photos/2024/a.txt",
            "/Photos/2024/A (2).TXT",
        }
        top = (await client.get("/api/folders/root")).json()
        assert [(f["name"], f["size"], f["files"], f["folders"]) for f in top["folders"]] == [
            ("Photos", 7, 2, 1)
        ]
        into_itself = await client.patch(f"/api/folders/{photos['id']}", json={"parent": inner_id})
        assert into_itself.status_code == 409, into_itself.text
        renamed = await client.patch(f"/api/folders/{inner_id}", json={"name": "Summer"})
        assert renamed.json()["folder"]["path"] == "/Photos/Summer/"
        listed = (await client.get("/api/files")).json()["files"]
        assert {f["path"] for f in listed} == {"/Photos/Summer/a.txt", "/Photos/Summer/A (2).TXT"}
        gone = await client.delete(f"/api/folders/{photos['id']}")
        assert gone.json() == {"deleted": {"folders": 2, "files": 2, "size": 7}}
        assert (await client.get("/api/files")).json()["files"] == []
        assert (await client.get(f"/api/folders/{inner_id}")).status_code == 404
        me = (await client.get("/api/folders/root")).json()["folder"]
        assert (me["size"], me["files"]) == (0, 0)
