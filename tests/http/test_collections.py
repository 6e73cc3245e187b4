"""Collections through Stario's TestClient: a folder's link and a set of files' link
(the owner's API, the landing page, each file, the whole as one ZIP), what they never
reach, membership decided when asked (moved in joins, moved out leaves), password,
expiry and revocation on every sub-URL, and honest counting; and the owner's ZIP of
folders (`POST /api/archives` with "folders")."""

import asyncio
import base64
import io
import re
import time
import zipfile

import pytest
from stario.testing import TestClient
from tests.support.fixtures import SETUP_TOKEN, add_account, bearer, request_policy

from app.config import Config
from app.main import make_bootstrap

LINK = re.compile(r"/s/[A-Za-z0-9_-]{32}")


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def tokens(config: Config) -> tuple[str, str]:
    return (await add_account(config, "owner"))[1], (await add_account(config, "other"))[1]


@pytest.fixture
async def app(config: Config, clock: Clock, tokens):
    async with TestClient(
        make_bootstrap(config, setup_token=SETUP_TOKEN, clock=clock),
        requests=request_policy(config),
        follow_redirects=False,
        base_url=config.public_url,
    ) as c:
        yield c


async def upload(app: TestClient, token: str, name: str, body: bytes) -> str:
    r = await app.put(f"/uploads/{name}", content=body, headers=bearer(token))
    assert r.status_code == 201, r.text
    return str(r.json()["files"][0]["id"])


async def folder(app: TestClient, token: str, name: str, parent: str = "root") -> str:
    r = await app.post("/api/folders", json={"name": name, "parent": parent}, headers=bearer(token))
    assert r.status_code == 201, r.text
    return str(r.json()["folder"]["id"])


async def move(app: TestClient, token: str, ids: list[str], to: str) -> None:
    r = await app.post("/api/files/move", json={"ids": ids, "to": to}, headers=bearer(token))
    assert r.status_code == 200, r.text


async def tree(app: TestClient, token: str) -> dict[str, str]:
    """Photos/{2024/a.jpg, 2024/b.txt, empty/, top.txt}, and outside.txt at the root."""
    photos = await folder(app, token, "Photos")
    year = await folder(app, token, "2024", photos)
    empty = await folder(app, token, "empty", photos)
    a = await upload(app, token, "a.jpg", b"A" * 1000)
    b = await upload(app, token, "b.txt", b"B" * 300)
    top = await upload(app, token, "top.txt", b"top")
    outside = await upload(app, token, "outside.txt", b"outside")
    await move(app, token, [a, b], year)
    await move(app, token, [top], photos)
    return {
        "photos": photos, "year": year, "empty": empty, "a": a, "b": b, "top": top,
        "outside": outside,
    }  # fmt: skip


async def link_of(app: TestClient, token: str, url: str, **fields: object) -> dict:
    r = await app.post(url, json=fields, headers=bearer(token))
    assert r.status_code == 201, r.text
    made: dict = r.json()["share"]
    assert LINK.fullmatch(made["url"]) and r.headers.get("location") == made["url"]
    return made


def names_in(body: bytes) -> list[str]:
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        assert archive.testzip() is None
        return archive.namelist()


def basic(password: str) -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(f":{password}".encode()).decode()}


# The owner's ZIP of folders ---------------------------------------------------------------


async def test_an_archive_of_a_folder_keeps_its_paths_and_empty_folders(app, tokens):
    owner, other = tokens
    t = await tree(app, owner)
    r = await app.post(
        "/api/archives",
        json={"folders": [t["photos"]], "ids": [t["outside"]]},
        headers=bearer(owner),
    )
    assert r.status_code == 201, r.text
    assert (r.json()["files"], r.json()["folders"]) == (4, 3)
    body = (await app.get(r.json()["url"], headers=bearer(owner))).content
    assert names_in(body) == [
        "outside.txt",
        "Photos/",
        "Photos/top.txt",
        "Photos/2024/",
        "Photos/2024/a.jpg",
        "Photos/2024/b.txt",
        "Photos/empty/",
    ]
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        assert archive.read("Photos/2024/a.jpg") == b"A" * 1000
        assert archive.getinfo("Photos/empty/").is_dir()
    # The same selection gives the same bytes; a file inside a chosen folder comes once.
    again = await app.post(
        "/api/archives",
        json={"folders": [t["photos"], t["year"]], "ids": [t["outside"], t["a"]]},
        headers=bearer(owner),
    )
    assert again.status_code == 201
    assert (await app.get(again.json()["url"], headers=bearer(owner))).content == body
    # Only folders: the folder's name is the top.
    only = await app.post("/api/archives", json={"folders": [t["year"]]}, headers=bearer(owner))
    listed = names_in((await app.get(only.json()["url"], headers=bearer(owner))).content)
    assert listed == ["2024/", "2024/a.jpg", "2024/b.txt"]
    # Another account's folder is an unknown one.
    for who in (other, owner):
        refused = await app.post(
            "/api/archives",
            json={"folders": [t["photos"] if who == other else "nosuchfolder0000"]},
            headers=bearer(who),
        )
        assert refused.status_code == 404, refused.text
    empty = await app.post("/api/archives", json={"folders": []}, headers=bearer(owner))
    assert empty.status_code == 400


# A folder's link ----------------------------------------------------------------------------


async def test_a_folder_link_shows_and_gives_only_what_is_under_it(app, tokens):
    owner, other = tokens
    t = await tree(app, owner)
    made = await link_of(app, owner, f"/api/folders/{t['photos']}/shares")
    assert (made["kind"], made["folder"], made["file_id"]) == ("folder", t["photos"], None)
    url = made["url"]
    page = await app.get(url)
    assert page.status_code == 200
    assert "Photos" in page.text and "top.txt" in page.text and "2024/" in page.text
    assert "outside.txt" not in page.text and "a.jpg" not in page.text
    inner = await app.get(url, params={"folder": t["year"]})
    assert inner.status_code == 200 and "a.jpg" in inner.text and "top.txt" not in inner.text
    # A folder outside the shared one is not browsable.
    elsewhere = await folder(app, owner, "Elsewhere")
    assert (await app.get(url, params={"folder": elsewhere})).status_code == 404
    # Each file under it downloads; anything else is not there.
    got = await app.get(f"{url}/files/{t['a']}")
    assert (got.status_code, got.content) == (200, b"A" * 1000)
    assert (await app.head(f"{url}/files/{t['a']}")).status_code == 200
    assert (await app.get(f"{url}/files/{t['outside']}")).status_code == 404
    theirs = await upload(app, other, "theirs.txt", b"theirs")
    assert (await app.get(f"{url}/files/{theirs}")).status_code == 404
    assert (await app.get(f"{url}/files/../file")).status_code == 404
    assert (await app.get(f"{url}/file")).status_code == 404
    # Moved out leaves, moved in joins: decided when asked.
    await move(app, owner, [t["a"]], "root")
    assert (await app.get(f"{url}/files/{t['a']}")).status_code == 404
    await move(app, owner, [t["outside"]], t["empty"])
    assert (await app.get(f"{url}/files/{t['outside']}")).status_code == 200
    # The whole as one ZIP, paths inside the shared folder.
    whole = await app.get(f"{url}/zip")
    assert whole.status_code == 200 and whole.headers.get("content-type") == "application/zip"
    assert 'filename="Photos.zip"' in (whole.headers.get("content-disposition") or "")
    assert names_in(whole.content) == [
        "top.txt", "2024/", "2024/b.txt", "empty/", "empty/outside.txt",
    ]  # fmt: skip
    # Resumable: a range is the same bytes, and If-Range holds while nothing changed.
    etag = whole.headers.get("etag") or ""
    part = await app.get(f"{url}/zip", headers={"range": "bytes=100-", "if-range": etag})
    assert part.status_code == 206 and part.content == whole.content[100:]
    # The owner's list says what each link gives.
    listed = (await app.get("/api/shares", headers=bearer(owner))).json()["shares"]
    assert [(s["kind"], s["name"], s["folder"]) for s in listed] == [
        ("folder", "Photos", t["photos"])
    ]


async def test_a_folder_link_is_only_made_of_the_owners_folder(app, tokens):
    owner, other = tokens
    photos = await folder(app, owner, "Photos")
    for who, folder_id in ((other, photos), (owner, "nosuchfolder0000")):
        r = await app.post(f"/api/folders/{folder_id}/shares", json={}, headers=bearer(who))
        assert (r.status_code, r.json()) == (404, {"error": "no such folder"})
    bad = await app.post(
        f"/api/folders/{photos}/shares", json={"expires_in": 1}, headers=bearer(owner)
    )
    assert bad.status_code == 400
    # The root: everything of the account.
    root = await link_of(app, owner, "/api/folders/root/shares")
    assert root["folder"] == "root"
    a = await upload(app, owner, "a.txt", b"a")
    assert (await app.get(f"{root['url']}/files/{a}")).status_code == 200
    # A deleted folder ends its link.
    made = await link_of(app, owner, f"/api/folders/{photos}/shares")
    r = await app.delete(f"/api/folders/{photos}", headers=bearer(owner))
    assert r.status_code == 200
    assert (await app.get(made["url"])).status_code == 404


# A set of files' link -------------------------------------------------------------------------


async def test_a_files_link_gives_its_files_and_nothing_else(app, tokens):
    owner, other = tokens
    a = await upload(app, owner, "a.txt", b"alpha")
    b = await upload(app, owner, "b.txt", b"beta")
    c = await upload(app, owner, "c.txt", b"gamma")
    made = await link_of(app, owner, "/api/shares", ids=[a, b], max_downloads=None)
    assert (made["kind"], made["files"], made["folder"]) == ("files", 2, None)
    url = made["url"]
    page = await app.get(url)
    assert "a.txt" in page.text and "b.txt" in page.text and "c.txt" not in page.text
    assert (await app.get(f"{url}/files/{a}")).content == b"alpha"
    assert (await app.get(f"{url}/files/{c}")).status_code == 404
    assert names_in((await app.get(f"{url}/zip")).content) == ["a.txt", "b.txt"]
    # Another account's file, or an unknown one, makes no link.
    theirs = await upload(app, other, "theirs.txt", b"theirs")
    for ids in ([a, theirs], ["nosuchfile"]):
        r = await app.post("/api/shares", json={"ids": ids}, headers=bearer(owner))
        assert (r.status_code, r.json()) == (404, {"error": "no such file"})
    for body in ({}, {"ids": []}, {"ids": [a], "extra": 1}):
        r = await app.post("/api/shares", json=body, headers=bearer(owner))
        assert r.status_code == 400, body
    # A deleted file leaves the link.
    assert (await app.delete(f"/files/{b}", headers=bearer(owner))).status_code == 204
    assert names_in((await app.get(f"{url}/zip")).content) == ["a.txt"]
    listed = (await app.get("/api/shares", headers=bearer(owner))).json()["shares"]
    assert [(s["kind"], s["files"]) for s in listed] == [("files", 1)]


async def test_password_expiry_and_revocation_hold_for_every_sub_url(app, tokens, clock):
    owner, _ = tokens
    a = await upload(app, owner, "a.txt", b"alpha")
    made = await link_of(
        app, owner, "/api/shares", ids=[a], password="open sesame", expires_in=3600
    )
    url = made["url"]
    for sub in ("/zip", f"/files/{a}", f"/files/{a}/thumbnail"):
        assert (await app.get(url + sub)).status_code == 401, sub
        assert (await app.get(url + sub, headers=basic("wrong password"))).status_code == 401
    assert (await app.get(url + "/zip", headers=basic("open sesame"))).status_code == 200
    assert "a.txt" not in (await app.get(url)).text  # the password form
    clock.now += 3601
    for sub in ("", "/zip", f"/files/{a}"):
        r = await app.get(url + sub, headers=basic("open sesame"))
        assert r.status_code == 410, sub
    clock.now -= 3601
    r = await app.delete(f"/api/shares/{made['id']}", headers=bearer(owner))
    assert r.status_code == 204
    for sub in ("", "/zip", f"/files/{a}"):
        assert (await app.get(url + sub, headers=basic("open sesame"))).status_code == 410


async def test_a_limited_collection_counts_the_bytes_that_leave(app, tokens):
    owner, _ = tokens
    a = await upload(app, owner, "a.txt", b"a" * 5000)
    b = await upload(app, owner, "b.txt", b"b" * 5000)
    made = await link_of(app, owner, "/api/shares", ids=[a, b], max_downloads=1)
    url = made["url"]
    # A HEAD and the landing page send no file bytes.
    assert (await app.head(f"{url}/zip")).status_code == 200
    assert (await app.get(url)).status_code == 200
    # One whole ZIP is the one copy allowed.
    whole = await app.get(f"{url}/zip")
    assert whole.status_code == 200

    async def count() -> int:
        for _ in range(100):
            listed = (await app.get("/api/shares", headers=bearer(owner))).json()["shares"]
            if listed[0]["downloads"] >= 1:
                return int(listed[0]["downloads"])
            await asyncio.sleep(0.02)
        return 0

    assert await count() == 1
    for sub in ("/zip", f"/files/{a}"):
        assert (await app.get(url + sub)).status_code == 410, sub
    # On another link, single files count by their bytes against one copy's worth
    # (the ZIP's length) and the spare a file link has (less than a copy): at least a
    # whole copy's worth goes, never two.
    other = await link_of(app, owner, "/api/shares", ids=[a, b], max_downloads=1)
    sent, statuses = 0, []
    for _ in range(10):
        got = await app.get(f"{other['url']}/files/{a}")
        statuses.append(got.status_code)
        sent += len(got.content) if got.status_code == 200 else 0
    assert 410 in statuses and statuses.index(410) == statuses.count(200)
    assert len(whole.content) <= sent < 2 * len(whole.content)


async def test_the_landing_page_shows_thumbnails_of_its_images(app, tokens):
    from PIL import Image

    owner, _ = tokens
    out = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 30, 30)).save(out, "PNG")
    image = await upload(app, owner, "red.png", out.getvalue())
    other = await upload(app, owner, "plain.txt", b"plain")
    url = (await link_of(app, owner, "/api/shares", ids=[image]))["url"]
    await app.get(url)  # asks for the thumbnail to be made
    for _ in range(200):
        made = await app.get(f"{url}/files/{image}/thumbnail")
        if made.status_code == 200:
            break
        await asyncio.sleep(0.05)
    assert made.status_code == 200 and made.headers.get("content-type") == "image/webp"
    assert f"{url}/files/{image}/thumbnail" in (await app.get(url)).text
    # Only of the link's own files.
    assert (await app.get(f"{url}/files/{other}/thumbnail")).status_code == 404
