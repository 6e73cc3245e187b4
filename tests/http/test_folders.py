"""The folders foundation through its API, on both catalogs: create, rename, move and
delete; a folder never goes inside itself; names unique in a folder ignoring case
(Unicode too) across files and folders; counters exact under concurrent uploads and
deletes; a deleted folder's quota freed at once and its blobs reclaimed (in the
background, or by the start-up sweep after a crash); another account's folder is 404."""

import asyncio
import unicodedata

import pytest
from stario.testing import TestClient
from tests.support.fixtures import add_account, app_client, bearer, stored_blobs

from app.catalog.open import open_catalog
from app.config import Config
from app.folders.store import delete_folders


@pytest.fixture
async def tokens(config: Config) -> tuple[str, str]:
    _, mine = await add_account(config, "owner")
    _, theirs = await add_account(config, "other")
    return mine, theirs


@pytest.fixture
async def api(config: Config, tokens: tuple[str, str]):
    async with app_client(config, headers=bearer(tokens[0])) as c:
        yield c


async def mkdir(api: TestClient, name: str, parent: str | None = None, **headers: str) -> dict:
    body = {"name": name} if parent is None else {"name": name, "parent": parent}
    r = await api.post("/api/folders", json=body, headers=headers)
    assert r.status_code == 201, r.text
    folder: dict = r.json()["folder"]
    return folder


async def show(api: TestClient, folder: str, **headers: str) -> dict:
    r = await api.get(f"/api/folders/{folder}", headers=headers)
    assert r.status_code == 200, r.text
    shown: dict = r.json()
    return shown


async def into(api: TestClient, folder: str, files: dict[str, bytes]) -> list[dict]:
    """Upload `files` into `folder` through a file request targeting it (the account's
    own uploads name a folder with ?folder=, which lands separately)."""
    made = await api.post("/api/requests", json={"label": "in", "folder": folder})
    assert made.status_code == 201, made.text
    url = made.json()["request"]["url"]
    kept: list[dict] = []
    for name, content in files.items():
        r = await api.put(f"{url}/uploads/{name}", content=content)
        assert r.status_code == 201, r.text
        kept.extend(r.json()["files"])
    return kept


async def usage(config: Config, owner_name: str = "owner") -> dict[str, object]:
    """What the catalog keeps of the account's usage, and what its rows add up to."""
    db = await open_catalog(config)
    try:
        user = await db.fetch_one(
            "SELECT id, used_bytes, file_count FROM users WHERE name = ?", (owner_name,)
        )
        assert user is not None
        owner, used, count = user
        sums = await db.fetch_one(
            "SELECT coalesce(sum(size), 0), count(*) FROM files WHERE owner = ?", (owner,)
        )
        folders = await db.fetch_all(
            "SELECT d.id, d.size, d.files, coalesce(sum(f.size), 0), count(f.id)"
            " FROM folders d LEFT JOIN files f ON f.folder_id = d.id"
            " WHERE d.owner = ? GROUP BY d.id, d.size, d.files",
            (owner,),
        )
    finally:
        await db.close()
    assert sums is not None
    return {
        "kept": (int(used), int(count)),  # type: ignore[call-overload]
        "summed": (int(sums[0]), int(sums[1])),  # type: ignore[call-overload]
        "folders": {str(r[0]): ((int(r[1]), int(r[2])), (int(r[3]), int(r[4]))) for r in folders},  # type: ignore[call-overload]
    }


def assert_exact(found: dict[str, object]) -> None:
    assert found["kept"] == found["summed"]
    for folder, (kept, summed) in found["folders"].items():  # type: ignore[attr-defined]
        assert kept == summed, folder


# --- create, rename, move, delete ---------------------------------------------------------


async def test_create_show_rename_move_and_delete(api):
    photos = await mkdir(api, "Photos")
    assert set(photos) == {"id", "name", "parent", "path", "size", "files", "folders", "created_at"}
    assert (photos["name"], photos["parent"], photos["path"]) == ("Photos", "root", "/Photos/")
    assert (photos["size"], photos["files"]) == (0, 0)
    trip = await mkdir(api, "  Trip   2026 ", photos["id"])
    assert (trip["name"], trip["path"]) == ("Trip 2026", "/Photos/Trip 2026/")
    await into(api, trip["id"], {"a.jpg": b"aaaa", "b.jpg": b"bb"})

    root = await show(api, "root")
    assert root["folder"]["id"] == "root" and root["folder"]["path"] == "/"
    assert [f["name"] for f in root["folders"]] == ["Photos"]
    assert (root["folders"][0]["size"], root["folders"][0]["files"]) == (6, 2)
    assert root["folders"][0]["folders"] == 1
    shown = await show(api, trip["id"])
    assert [f["path"] for f in shown["files"]] == [
        "/Photos/Trip 2026/b.jpg",
        "/Photos/Trip 2026/a.jpg",
    ]
    assert shown["total_files"] == 2

    renamed = await api.patch(f"/api/folders/{trip['id']}", json={"name": "Summer"})
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["folder"]["path"] == "/Photos/Summer/"
    moved = await api.patch(f"/api/folders/{trip['id']}", json={"parent": "root"})
    assert moved.json()["folder"]["path"] == "/Summer/"
    assert (moved.json()["folder"]["size"], moved.json()["folder"]["files"]) == (6, 2)
    assert (await show(api, photos["id"]))["folder"]["files"] == 0

    deleted = await api.delete(f"/api/folders/{trip['id']}")
    assert deleted.status_code == 200, deleted.text
    assert deleted.json() == {"deleted": {"folders": 1, "files": 2, "size": 6}}
    assert (await api.get(f"/api/folders/{trip['id']}")).status_code == 404
    assert (await api.get("/api/files")).json()["files"] == []


async def test_moving_files_and_folders_together(api):
    a, b = await mkdir(api, "A"), await mkdir(api, "B")
    inner = await mkdir(api, "Inner", a["id"])
    await into(api, "root", {"x.txt": b"x"})
    listed = (await api.get("/api/files")).json()["files"]
    file_id = listed[0]["id"]
    r = await api.post(
        "/api/files/move", json={"ids": [file_id], "folders": [inner["id"]], "to": b["id"]}
    )
    assert r.status_code == 200, r.text
    assert r.json()["moved"] == {"files": 1, "folders": 1}
    shown = await show(api, b["id"])
    assert [f["path"] for f in shown["folders"]] == ["/B/Inner/"]
    assert [f["path"] for f in shown["files"]] == ["/B/x.txt"]
    assert (await api.get(f"/files/{file_id}")).content == b"x"


async def test_a_folder_never_goes_into_itself_or_below_itself(api):
    top = await mkdir(api, "Top")
    mid = await mkdir(api, "Mid", top["id"])
    low = await mkdir(api, "Low", mid["id"])
    for to in (top["id"], mid["id"], low["id"]):
        r = await api.patch(f"/api/folders/{top['id']}", json={"parent": to})
        assert r.status_code == 409, (to, r.text)
        assert "inside itself" in r.json()["error"]
        r = await api.post("/api/files/move", json={"folders": [top["id"]], "to": to})
        assert r.status_code == 409, (to, r.text)
    r = await api.post("/api/files/move", json={"folders": [low["id"], mid["id"]], "to": low["id"]})
    assert r.status_code == 409
    # Nothing moved, not even the part of the selection that could.
    assert (await show(api, mid["id"]))["folder"]["path"] == "/Top/Mid/"
    assert (await show(api, low["id"]))["folder"]["path"] == "/Top/Mid/Low/"
    assert (await api.patch("/api/folders/root", json={"parent": top["id"]})).status_code == 400


# --- names ----------------------------------------------------------------------------------


async def test_names_are_unique_in_a_folder_ignoring_case_across_files_and_folders(api):
    await mkdir(api, "Reports")
    for clash in ("reports", "REPORTS", " Reports "):
        r = await api.post("/api/folders", json={"name": clash})
        assert r.status_code == 409, (clash, r.text)
    # Unicode: "É" and "é", composed or not, are one name.
    accented = await mkdir(api, "É.txt")
    decomposed = unicodedata.normalize("NFD", "é.txt")
    for clash in ("é.txt", decomposed):
        assert (await api.post("/api/folders", json={"name": clash})).status_code == 409
    # A file uploaded onto a folder's name takes the next free copy.
    kept = await into(api, "root", {"é.txt": b"1"})
    assert kept[0]["name"] == "é (2).txt"
    kept = await into(api, "root", {"É (2).txt": b"2", "notes.txt": b"3", "NOTES.txt": b"4"})
    assert [k["name"] for k in kept] == ["É (2) (2).txt", "notes.txt", "NOTES (2).txt"]
    # A folder is refused a file's name, and a rename onto a taken name is 409.
    assert (await api.post("/api/folders", json={"name": "Notes.TXT"})).status_code == 409
    files = {f["name"]: f["id"] for f in (await api.get("/api/files")).json()["files"]}
    r = await api.patch(f"/files/{files['NOTES (2).txt']}", json={"name": "notes.txt"})
    assert r.status_code == 409, r.text
    r = await api.patch(f"/api/folders/{accented['id']}", json={"name": "reports"})
    assert r.status_code == 409, r.text
    # The same name in another folder is fine.
    other = await mkdir(api, "Other")
    assert (await mkdir(api, "reports", other["id"]))["path"] == "/Other/reports/"


async def test_an_upload_onto_a_taken_name_gets_the_next_free_copy(api):
    first = await api.put("/uploads/photo.jpg", content=b"one")
    second = await api.put("/uploads/PHOTO.jpg", content=b"two")
    third = await api.put("/uploads/photo.jpg", content=b"three")
    names = [r.json()["files"][0]["name"] for r in (first, second, third)]
    assert names == ["photo.jpg", "PHOTO (2).jpg", "photo (3).jpg"]
    assert [r.json()["files"][0]["path"] for r in (first, third)] == [
        "/photo.jpg",
        "/photo (3).jpg",
    ]


async def test_a_move_onto_a_taken_name_numbers_or_replaces(api, config):
    box = await mkdir(api, "Box")
    await into(api, box["id"], {"a.txt": b"in box"})
    loose = (await api.put("/uploads/a.txt", content=b"loose")).json()["files"][0]
    r = await api.post("/api/files/move", json={"ids": [loose["id"]], "to": box["id"]})
    assert r.json()["renamed"] == [{"from": "a.txt", "to": "a (2).txt"}]
    again = (await api.put("/uploads/A.TXT", content=b"newer")).json()["files"][0]
    r = await api.post(
        "/api/files/move", json={"ids": [again["id"]], "to": box["id"], "replace": True}
    )
    assert (r.status_code, r.json()["replaced"], r.json()["renamed"]) == (200, 1, [])
    names = {f["name"]: f["size"] for f in (await show(api, box["id"]))["files"]}
    assert names == {"A.TXT": 5, "a (2).txt": 5}
    assert_exact(await usage(config))


# --- counters under concurrency --------------------------------------------------------------


async def test_counters_stay_exact_under_concurrent_uploads_and_deletes(api, config):
    folders = [await mkdir(api, f"F{n}") for n in range(3)]
    links = []
    for folder in folders:
        made = await api.post("/api/requests", json={"label": "c", "folder": folder["id"]})
        links.append(made.json()["request"]["url"])
    early = await asyncio.gather(
        *[
            api.put(f"{links[n % 3]}/uploads/early{n}.bin", content=b"e" * (100 + n))
            for n in range(20)
        ]
    )
    early_ids = [f["id"] for f in (await api.get("/api/files")).json()["files"]]
    assert len(early_ids) == 20 and all(r.status_code == 201 for r in early)

    async def upload(n: int):
        return await api.put(f"{links[n % 3]}/uploads/same.bin", content=b"u" * (1000 + n))

    answers = await asyncio.gather(
        *[upload(n) for n in range(50)], *[api.delete(f"/files/{i}") for i in early_ids]
    )
    assert all(r.status_code in (201, 204) for r in answers), [r.text for r in answers]
    found = await usage(config)
    assert_exact(found)
    assert found["kept"] == (sum(1000 + n for n in range(50)), 50)
    for folder in folders:
        shown = await show(api, folder["id"])
        names = {f["name"] for f in shown["files"]}
        count = len(names)
        assert shown["folder"]["files"] == count == shown["total_files"]
        assert names == {"same.bin", *(f"same ({k}).bin" for k in range(2, count + 1))}
    assert sum([(await show(api, f["id"]))["folder"]["files"] for f in folders]) == 50


# --- delete: quota at once, blobs later -------------------------------------------------------


async def test_deleting_a_folder_frees_quota_at_once_and_its_blobs_in_the_background(api, config):
    top = await mkdir(api, "Top")
    low = await mkdir(api, "Low", top["id"])
    await into(api, top["id"], {"a.bin": b"a" * 1000})
    await into(api, low["id"], {"b.bin": b"b" * 2000, "c.bin": b"c" * 3000})
    await api.put("/uploads/keep.bin", content=b"k" * 10)
    assert len(stored_blobs(config)) == 4
    assert (await show(api, "root"))["folder"]["size"] == 6010
    r = await api.delete(f"/api/folders/{top['id']}")
    assert r.json() == {"deleted": {"folders": 2, "files": 3, "size": 6000}}
    # Quota: freed by the same transaction that removed the rows.
    assert (await show(api, "root"))["folder"]["size"] == 10
    assert (await usage(config))["kept"] == (10, 1)
    for _ in range(100):
        if len(stored_blobs(config)) == 1:
            break
        await asyncio.sleep(0.05)
    assert len(stored_blobs(config)) == 1
    assert (await api.get(f"/api/folders/{low['id']}")).status_code == 404


async def test_after_a_crash_mid_delete_the_start_up_sweep_reclaims_the_blobs(config, tokens):
    async with app_client(config, headers=bearer(tokens[0])) as api:
        top = await mkdir(api, "Doomed")
        await into(api, top["id"], {"a.bin": b"a" * 100, "b.bin": b"b" * 200})
        await api.put("/uploads/keep.bin", content=b"k")
    assert len(stored_blobs(config)) == 3
    # The rows go in their transaction, then the process dies before the blobs go.
    db = await open_catalog(config)
    try:
        owner = await db.fetch_one("SELECT id FROM users WHERE name = 'owner'", ())
        assert owner is not None
        assert len(await delete_folders(db, str(owner[0]), [top["id"]])) == 2
    finally:
        await db.close()
    assert len(stored_blobs(config)) == 3
    async with app_client(config, headers=bearer(tokens[0])) as api:
        assert [f["name"] for f in (await api.get("/api/files")).json()["files"]] == ["keep.bin"]
    assert len(stored_blobs(config)) == 1
    assert_exact(await usage(config))


# --- the access rule ---------------------------------------------------------------------------


async def test_another_accounts_folder_is_404_on_every_route(api, tokens):
    mine = await mkdir(api, "Mine")
    await into(api, mine["id"], {"secret.txt": b"secret"})
    file_id = (await api.get("/api/files")).json()["files"][0]["id"]
    them = bearer(tokens[1])
    theirs = await mkdir(api, "Theirs", **them)
    unknown = "A" * len(mine["id"])
    move = "/api/files/move"
    for folder in (mine["id"], unknown):
        calls = [
            api.get(f"/api/folders/{folder}", headers=them),
            api.patch(f"/api/folders/{folder}", json={"name": "x"}, headers=them),
            api.patch(f"/api/folders/{folder}", json={"parent": "root"}, headers=them),
            api.delete(f"/api/folders/{folder}", headers=them),
            api.post("/api/folders", json={"name": "x", "parent": folder}, headers=them),
            api.post(move, json={"folders": [folder], "to": "root"}, headers=them),
            api.post(move, json={"ids": [file_id], "to": theirs["id"]}, headers=them),
            api.post(move, json={"folders": [theirs["id"]], "to": folder}, headers=them),
        ]  # fmt: skip
        for r in await asyncio.gather(*calls):
            assert r.status_code == 404, r.text
            assert "mine" not in r.text.lower() and "secret" not in r.text
    # Nothing of the owner's changed.
    shown = await show(api, mine["id"])
    assert (shown["folder"]["name"], shown["folder"]["parent"]) == ("Mine", "root")
    assert [f["name"] for f in shown["files"]] == ["secret.txt"]
    # Each account's root is its own.
    assert (await show(api, "root", **them))["folders"][0]["name"] == "Theirs"


async def test_a_renamed_file_in_a_folder_answers_its_path(api):
    box = await mkdir(api, "Box")
    await into(api, box["id"], {"a.txt": b"a"})
    file_id = (await show(api, box["id"]))["files"][0]["id"]
    r = await api.patch(f"/files/{file_id}", json={"name": "b.txt"})
    assert (r.status_code, r.json()["file"]["path"]) == (200, "/Box/b.txt")


async def test_a_path_makes_what_is_missing_and_answers_the_deepest(api):
    """`{"path": "a/b/c"}`: the page re-creates a dropped folder's tree this way, empty
    folders too; 201 when the deepest was made now, 200 when it was there."""
    photos = await mkdir(api, "Photos")
    made = await api.post(
        "/api/folders", json={"path": "2026/Empty/Deeper", "parent": photos["id"]}
    )
    assert made.status_code == 201, made.text
    assert made.json()["folder"]["path"] == "/Photos/2026/Empty/Deeper/"
    again = await api.post("/api/folders", json={"path": "/2026/empty", "parent": photos["id"]})
    assert again.status_code == 200, again.text
    assert again.json()["folder"]["path"] == "/Photos/2026/Empty/"
    top = await api.post("/api/folders", json={"path": "Photos"})
    assert top.status_code == 200 and top.json()["folder"]["id"] == photos["id"]

    for body, words in (
        ({"path": "a/../b"}, "paths go down"),
        ({"path": "a//b"}, "empty part"),
        ({"path": ""}, "relative folder path"),
        ({"path": 7}, "relative folder path"),
        ({"path": "a", "name": "b"}, "not both"),
    ):
        refused = await api.post("/api/folders", json=body)
        assert refused.status_code == 400, body
        assert words in refused.json()["error"], refused.text
    await into(api, photos["id"], {"taken.txt": b"x"})
    clash = await api.post("/api/folders", json={"path": "taken.txt/x", "parent": photos["id"]})
    assert clash.status_code == 409, clash.text
    gone = await api.post("/api/folders", json={"path": "x", "parent": "nope"})
    assert gone.status_code == 404
