"""Uploads into folders, through every transport (TestClient): `?folder=`, `?path=`, a
path in a form's filename or a raw PUT's name, file signals' paths, tus and IETF-draft
metadata, `?replace=1`; an unknown folder is a 404 before a byte is stored, a bad path
a 400 in words."""

import base64
from urllib.parse import unquote

import pytest
from tests.support.fixtures import add_account, signed_in_client, stored_blobs
from tests.support.tus import OCTETS, TUS, metadata

from app.config import Config
from app.ingest.names import BadPath, relative_path


async def new_folder(client, name: str, parent: str = "root") -> str:
    answer = await client.post("/api/folders", json={"name": name, "parent": parent})
    assert answer.status_code == 201, answer.text
    return answer.json()["folder"]["id"]


async def all_files(client) -> dict[str, dict]:
    """Every file of the account by its path (its folder's path, from the folders API,
    and its name)."""
    answer = await client.get("/api/files?limit=1000")
    assert answer.status_code == 200, answer.text
    paths: dict[str, str] = {}
    found = {}
    for f in answer.json()["files"]:
        if f["folder"] not in paths:
            folder = await client.get(f"/api/folders/{f['folder']}")
            paths[f["folder"]] = folder.json()["folder"]["path"]
        found[paths[f["folder"]] + f["name"]] = f
    return found


async def folder_at(client, *names: str) -> dict:
    """The folder `names` leads to from the root (its JSON, with its contents)."""
    at = (await client.get("/api/folders/root")).json()
    for name in names:
        found = [f for f in at["folders"] if f["name"] == name]
        assert found, f"no folder {name!r} in {at['folder']['path']}"
        at = (await client.get(f"/api/folders/{found[0]['id']}")).json()
    return at


# --- the path parser ---------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, placed",
    [
        ("c.txt", ((), "c.txt")),
        ("a/b/c.txt", (("a", "b"), "c.txt")),
        ("a\\b\\c.txt", (("a", "b"), "c.txt")),
        ("/photos/2024/a.jpg", (("photos", "2024"), "a.jpg")),
        ("  spaced   out /x.txt", (("spaced out",), "x.txt")),
    ],
)
def test_relative_paths_give_folders_and_a_name(raw, placed):
    assert relative_path(raw) == placed


@pytest.mark.parametrize(
    "raw, words",
    [
        ("a//c.txt", "empty part"),
        ("a/b/", "empty part"),
        ("//a.txt", "empty part"),
        ("a/ /c.txt", "empty part"),
        ("../c.txt", "never up"),
        ("a/./c.txt", "never up"),
        ("a\\..\\c.txt", "never up"),
        ("a\x00b/c.txt", "control character"),
        ("a/\nb/c.txt", "control character"),
        ("x" * 256 + "/c.txt", "longer than 255"),
        ("a/" * 65 + "c.txt", "more than 64 folders"),
    ],
)
def test_bad_relative_paths_are_refused_in_words(raw, words):
    with pytest.raises(BadPath, match=words):
        relative_path(raw)


def test_sixty_four_folders_are_allowed():
    folders, name = relative_path("a/" * 64 + "c.txt")
    assert len(folders) == 64 and name == "c.txt"


# --- single-request transports ----------------------------------------------------------


async def test_put_into_a_folder_with_a_path(client):
    photos = await new_folder(client, "photos")
    answer = await client.put(f"/uploads/ignored.txt?folder={photos}&path=2024/june/a.txt",
                              content=b"one")  # fmt: skip
    assert answer.status_code == 201, answer.text
    stored = answer.json()["files"][0]
    assert stored["name"] == "a.txt"
    assert stored["path"] == "/photos/2024/june/a.txt"
    assert stored["folder"] not in ("root", photos)
    june = await folder_at(client, "photos", "2024", "june")
    assert june["folder"]["id"] == stored["folder"]
    assert [f["name"] for f in june["files"]] == ["a.txt"]
    assert (await client.get(stored["url"])).content == b"one"


async def test_put_name_holding_a_slash_is_a_path(client):
    answer = await client.put("/uploads/docs%2Fnotes.txt", content=b"n")
    assert answer.status_code == 201, answer.text
    assert answer.json()["files"][0]["path"] == "/docs/notes.txt"
    # A name with a backslash but no slash stays one name, as before.
    answer = await client.put("/uploads/a%5Cb.txt", content=b"n")
    assert answer.status_code == 201, answer.text
    assert answer.json()["files"][0]["path"] == "/a_b.txt"


async def test_post_raw_with_a_path_names_and_places_it(client):
    answer = await client.post("/uploads?path=reports/q1.csv", content=b"a,b\n")
    assert answer.status_code == 201, answer.text
    assert answer.json()["files"][0]["path"] == "/reports/q1.csv"
    # ?name= stays a plain name: its slash is not a path.
    answer = await client.post("/uploads?name=x%2Fy.txt", content=b"xy")
    assert answer.status_code == 201, answer.text
    assert answer.json()["files"][0]["path"] == "/x_y.txt"


async def test_multipart_filenames_with_paths_make_their_folders(client):
    folder = await new_folder(client, "drop")
    answer = await client.post(
        f"/uploads?folder={folder}",
        files=[
            ("f", ("shoot/raw/1.jpg", b"one")),
            ("f", ("shoot/raw/2.jpg", b"two")),
            ("f", ("shoot/notes.txt", b"notes")),
            ("f", ("top.txt", b"top")),
        ],
    )
    assert answer.status_code == 201, answer.text
    paths = sorted(f["path"] for f in answer.json()["files"])
    assert paths == [
        "/drop/shoot/notes.txt",
        "/drop/shoot/raw/1.jpg",
        "/drop/shoot/raw/2.jpg",
        "/drop/top.txt",
    ]
    shoot = await folder_at(client, "drop", "shoot")
    assert [f["name"] for f in shoot["folders"]] == ["raw"]
    assert shoot["folder"]["files"] == 3  # everything below it


async def test_multipart_one_file_with_a_path(client):
    answer = await client.post("/uploads?path=a/b/c.txt", files={"f": ("whatever.bin", b"c")})
    assert answer.status_code == 201, answer.text
    assert answer.json()["files"][0]["path"] == "/a/b/c.txt"


async def test_multipart_path_with_two_files_is_refused(client, config: Config):
    answer = await client.post(
        "/uploads?path=a/c.txt", files=[("f", ("1.txt", b"1")), ("f", ("2.txt", b"2"))]
    )
    assert answer.status_code == 400
    assert "names one file" in answer.json()["error"]
    assert stored_blobs(config) == []
    assert await all_files(client) == {}


async def test_file_signals_carry_paths(client):
    def signal(name: str, body: bytes, **extra) -> dict:
        return {"name": name, "contents": base64.b64encode(body).decode(), "mime": None, **extra}

    answer = await client.post(
        "/uploads",
        json={"files": [signal("a.txt", b"a", path="x/y/a.txt"), signal("b.txt", b"b")]},
        headers={"datastar-request": "true"},
    )
    assert answer.status_code == 200, answer.text
    answer = await client.post(
        "/uploads",
        json={"files": [signal("c.txt", b"c"), signal("d.txt", b"d")], "paths": ["p/c.txt", None]},
    )
    assert answer.status_code == 201, answer.text
    assert set(await all_files(client)) == {"/x/y/a.txt", "/b.txt", "/p/c.txt", "/d.txt"}


async def test_file_signals_bad_paths_store_nothing(client, config: Config):
    body = base64.b64encode(b"x").decode()
    for payload, words in [
        ({"files": [{"name": "a", "contents": body, "path": "../a"}]}, "never up"),
        ({"files": [{"name": "a", "contents": body}], "paths": ["a", "b"]}, "one relative path"),
        ({"files": [{"name": "a", "contents": body, "path": 3}]}, "path must be a string"),
    ]:
        answer = await client.post("/uploads", json=payload)
        assert answer.status_code == 400 and words in answer.json()["error"], answer.text
    assert stored_blobs(config) == []


async def test_a_taken_name_gets_the_next_free_number(client):
    for _ in range(3):
        answer = await client.put("/uploads/x.txt?path=dir/x.txt", content=b"x")
        assert answer.status_code == 201, answer.text
    assert sorted(await all_files(client)) == ["/dir/x (2).txt", "/dir/x (3).txt", "/dir/x.txt"]
    # Ignoring case: X.TXT is taken by x.txt.
    answer = await client.put("/uploads/X.TXT?path=dir/X.TXT", content=b"x")
    assert answer.json()["files"][0]["name"] == "X (4).TXT"


@pytest.mark.parametrize("flag", ["1", "true", "TRUE", "yes"])
async def test_replace_takes_the_old_files_place_and_frees_its_blob(client, config, flag):
    folder = await new_folder(client, "keep")
    first = await client.put(f"/uploads/r.txt?folder={folder}", content=b"old bytes")
    assert first.status_code == 201
    old = first.json()["files"][0]
    second = await client.put(f"/uploads/R.txt?folder={folder}&replace={flag}", content=b"new")
    assert second.status_code == 201, second.text
    new = second.json()["files"][0]
    assert new["id"] != old["id"] and new["path"] == "/keep/R.txt"
    assert (await client.get(old["url"])).status_code == 404
    assert (await client.get(new["url"])).content == b"new"
    assert list(await all_files(client)) == ["/keep/R.txt"]
    assert len(stored_blobs(config)) == 1
    usage = (await client.get("/api/folders/root")).json()["folder"]
    assert usage["size"] == 3 and usage["files"] == 1


async def test_replace_zero_numbers_as_usual(client):
    await client.put("/uploads/z.txt", content=b"1")
    answer = await client.put("/uploads/z.txt?replace=0", content=b"2")
    assert answer.json()["files"][0]["name"] == "z (2).txt"
    answer = await client.put("/uploads/z.txt?replace=maybe", content=b"3")
    assert answer.status_code == 400 and "?replace=" in answer.json()["error"]


async def test_unknown_or_anothers_folder_is_404_and_stores_nothing(client, config: Config):
    _, token = await add_account(config, "other")
    async with signed_in_client(config, token) as other:
        theirs = await new_folder(other, "private")
    for query in ("folder=nosuchfolder00", f"folder={theirs}"):
        for send in (
            lambda q: client.put(f"/uploads/a.txt?{q}", content=b"a"),
            lambda q: client.post(f"/uploads?{q}", files={"f": ("a.txt", b"a")}),
            lambda q: client.post(f"/uploads?{q}&name=a.txt", content=b"a"),
        ):
            answer = await send(query)
            assert answer.status_code == 404, answer.text
            assert "no such folder" in answer.json()["error"]
    assert stored_blobs(config) == []
    assert await all_files(client) == {}


async def test_root_by_name_and_absent_is_the_root(client):
    for url in ("/uploads/a.txt?folder=root", "/uploads/b.txt"):
        answer = await client.put(url, content=b"x")
        assert answer.status_code == 201
        assert answer.json()["files"][0]["folder"] == "root"


@pytest.mark.parametrize(
    "path, words",
    [("a//b.txt", "empty part"), ("../b.txt", "never up"), ("a/b/", "empty part"),
     ("a/%01/b.txt", "control character")],
)  # fmt: skip
async def test_bad_paths_are_400_and_store_nothing(client, config: Config, path, words):
    for answer in (
        await client.put(f"/uploads/x.txt?path={path}", content=b"x"),
        await client.post(f"/uploads?path={path}", content=b"x"),
        await client.post("/uploads", files={"f": (unquote(path), b"x")}),
    ):
        assert answer.status_code == 400, answer.text
        assert words in answer.json()["error"]
    assert stored_blobs(config) == []


async def test_a_path_through_a_file_taken_name_is_refused(client, config: Config):
    await client.put("/uploads/taken", content=b"a file")
    answer = await client.put("/uploads/x.txt?path=taken/x.txt", content=b"x")
    assert answer.status_code == 409, answer.text
    assert "nothing was kept" in answer.json()["error"]
    assert len(stored_blobs(config)) == 1


# --- resumable ----------------------------------------------------------------------


async def tus_upload(client, data: bytes, url: str = "/tus/", **fields: str):
    created = await client.post(
        url,
        headers={**TUS, "upload-length": str(len(data)), "upload-metadata": metadata(**fields)},
    )
    if created.status_code != 201:
        return created
    location = created.headers.get("location")
    return await client.request(
        "PATCH", location, content=data, headers={**OCTETS, "upload-offset": "0"}
    )


async def test_tus_metadata_places_the_file(client):
    photos = await new_folder(client, "photos")
    answer = await tus_upload(client, b"jpeg bytes", filename="a.jpg", folder=photos,
                              relativePath="/holiday/day 1/a.jpg")  # fmt: skip
    assert answer.status_code == 204, answer.text
    assert "/photos/holiday/day 1/a.jpg" in await all_files(client)


async def test_tus_relative_path_null_is_no_path(client):
    answer = await tus_upload(client, b"x", filename="plain.txt", relativePath="null")
    assert answer.status_code == 204, answer.text
    assert list(await all_files(client)) == ["/plain.txt"]


async def test_tus_unknown_folder_and_bad_path_are_refused_at_creation(client, config: Config):
    answer = await tus_upload(client, b"x", filename="a", folder="nosuchfolder00")
    assert answer.status_code == 404 and "no such folder" in answer.json()["error"]
    answer = await tus_upload(client, b"x", filename="a", relativePath="../a")
    assert answer.status_code == 400 and "never up" in answer.json()["error"]
    assert stored_blobs(config) == []
    answer = await client.get("/api/files")
    assert answer.json()["files"] == []


async def test_tus_replace_and_numbering(client, config: Config):
    for _ in range(2):
        answer = await tus_upload(client, b"v1", filename="doc.txt", relativePath="d/doc.txt")
        assert answer.status_code == 204
    assert sorted(await all_files(client)) == ["/d/doc (2).txt", "/d/doc.txt"]
    answer = await tus_upload(client, b"v3", filename="doc.txt", relativePath="d/doc.txt",
                              replace="1")  # fmt: skip
    assert answer.status_code == 204
    files = await all_files(client)
    assert sorted(files) == ["/d/doc (2).txt", "/d/doc.txt"]
    assert (await client.get(files["/d/doc.txt"]["url"])).content == b"v3"
    assert len(stored_blobs(config)) == 2


async def test_tus_concatenation_final_metadata_decides(client):
    parts = []
    for piece in (b"hello ", b"world"):
        created = await client.post(
            "/tus/",
            headers={**TUS, "upload-length": str(len(piece)), "upload-concat": "partial",
                     "upload-metadata": metadata(relativePath="ignored/p.txt")},
        )  # fmt: skip
        assert created.status_code == 201, created.text
        location = created.headers.get("location")
        patched = await client.request(
            "PATCH", location, content=piece, headers={**OCTETS, "upload-offset": "0"}
        )
        assert patched.status_code == 204
        parts.append(location)
    final = await client.post(
        "/tus/",
        headers={**TUS, "upload-concat": "final;" + " ".join(parts),
                 "upload-metadata": metadata(filename="joined.txt", relativePath="j/joined.txt")},
    )  # fmt: skip
    assert final.status_code == 201, final.text
    files = await all_files(client)
    assert list(files) == ["/j/joined.txt"]
    assert (await client.get(files["/j/joined.txt"]["url"])).content == b"hello world"


async def test_ietf_draft_with_path_and_folder(client):
    folder = await new_folder(client, "inbox")
    headers = {"upload-draft-interop-version": "8", "upload-complete": "?0"}
    created = await client.post(
        f"/uploads?folder={folder}&path=deep/er/file.bin", content=b"abc", headers=headers
    )
    assert created.status_code == 201, created.text
    location = created.headers.get("location")
    done = await client.request(
        "PATCH",
        location,
        content=b"def",
        headers={"upload-draft-interop-version": "8", "upload-complete": "?1",
                 "upload-offset": "3", "content-type": "application/partial-upload"},
    )  # fmt: skip
    assert done.status_code == 201, done.text
    stored = done.json()["files"][0]
    assert stored["path"] == "/inbox/deep/er/file.bin"
    assert (await client.get(stored["url"])).content == b"abcdef"


async def test_ietf_draft_creation_at_tus_takes_query(client):
    headers = {"upload-draft-interop-version": "8", "upload-complete": "?1"}
    done = await client.post("/tus/?path=q/whole.txt", content=b"whole", headers=headers)
    assert done.status_code == 201, done.text
    assert done.json()["files"][0]["path"] == "/q/whole.txt"
