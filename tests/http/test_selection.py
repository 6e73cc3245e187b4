"""Bulk delete (`POST /api/files/delete`), "select all N matching", the archive's answer
to the page, the list's thumbnails and type icons, and the grid view's cookie."""

import asyncio
import io
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from PIL import Image
from tests.support.fixtures import add_account, bearer

from app.config import Config
from app.features.home.urls import HOME, HOME_LIVE

IDENTITY = {"accept-encoding": "identity"}
DATASTAR = {"datastar-request": "true"}


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (90, 60), (20, 120, 200)).save(out, "PNG")
    return out.getvalue()


async def upload(client, name: str, body: bytes, headers: dict[str, str] | None = None) -> str:
    r = await client.post("/uploads", params={"name": name}, content=body, headers=headers)
    assert r.status_code == 201, r.text
    file_id: str = r.json()["files"][0]["id"]
    return file_id


async def names(client) -> list[str]:
    return sorted(f["name"] for f in (await client.get("/api/files")).json()["files"])


async def next_data(events: AsyncIterator[dict[str, str]], *, containing: str) -> str:
    async with asyncio.timeout(20):
        while True:
            event = await anext(events)
            if containing in event["data"]:
                return event["data"]


async def wait_for_thumbnail(client, file_id: str) -> None:
    deadline = time.monotonic() + 20
    while (await client.get(f"/files/{file_id}/thumbnail")).status_code != 200:
        assert time.monotonic() < deadline, "no thumbnail within 20 s"
        await asyncio.sleep(0.1)


# --- bulk delete ----------------------------------------------------------------------


async def test_bulk_delete_removes_own_files_and_skips_missing_and_others(client, config: Config):
    mine = [await upload(client, f"mine-{n}.txt", b"mine %d" % n) for n in range(3)]
    keep = await upload(client, "keep.txt", b"keep")
    _, token = await add_account(config, "other")
    theirs = await upload(client, "theirs.txt", b"theirs", headers=bearer(token))
    gone = await upload(client, "gone.txt", b"gone")
    assert (await client.delete(f"/files/{gone}")).status_code == 204
    blob = config.uploads_dir / mine[0][:2] / mine[0]
    assert blob.exists()

    asked = [mine[0], theirs, gone, mine[1], "not-an-id", mine[2], mine[0]]
    r = await client.post("/api/files/delete", json={"ids": asked})
    assert r.status_code == 200, r.text
    # In the order asked, each once; everything not this account's own is skipped.
    assert r.json() == {"deleted": mine, "skipped": [theirs, gone, "not-an-id"]}
    assert await names(client) == ["keep.txt"]
    assert not blob.exists()
    # The other account's file is untouched, and still theirs.
    r = await client.get("/api/files", headers=bearer(token))
    assert [f["name"] for f in r.json()["files"]] == ["theirs.txt"]
    assert (await client.get(f"/files/{theirs}", headers=bearer(token))).content == b"theirs"

    # Nothing left to delete is not an error: everything is skipped.
    r = await client.post("/api/files/delete", json={"ids": mine})
    assert r.json() == {"deleted": [], "skipped": mine}
    assert await names(client) == ["keep.txt"] and keep


@pytest.mark.parametrize(
    "body",
    [{}, {"ids": []}, {"ids": "one"}, {"ids": [1, 2]}, {"ids": ["a"], "all": True}, [1]],
)
async def test_bulk_delete_refuses_bad_bodies_in_words(client, body: Any):
    keep = await upload(client, "keep.txt", b"keep")
    r = await client.post("/api/files/delete", json=body)
    assert r.status_code == 400
    assert r.json()["error"]
    r = await client.post("/api/files/delete", content=b"not json")
    assert r.status_code == 400 and r.json()["error"]
    assert await names(client) == ["keep.txt"] and keep


async def test_bulk_delete_needs_credentials(client, config: Config):
    keep = await upload(client, "keep.txt", b"keep")
    r = await client.post(
        "/api/files/delete", json={"ids": [keep]}, headers={"authorization": "Bearer nope"}
    )
    assert r.status_code == 401
    assert await names(client) == ["keep.txt"]


async def test_bulk_delete_repaints_every_live_page_once(client):
    ids = [await upload(client, f"doomed-{n}.txt", b"x") for n in range(3)]
    async with client.stream("GET", HOME_LIVE.href(), headers=IDENTITY) as live:
        events = live.iter_events()
        await next_data(events, containing="doomed-2.txt")
        r = await client.post("/api/files/delete", json={"ids": ids[:2]}, headers=DATASTAR)
        # The page is told in signals: the selection is cleared, nothing went wrong.
        assert r.status_code == 200 and r.headers.get("content-type") == "text/event-stream"
        assert '"_matching":[]' in r.text and '"_notice":""' in r.text
        painted = await next_data(events, containing='id="files"')
        assert "doomed-2.txt" in painted
        assert "doomed-0.txt" not in painted and "doomed-1.txt" not in painted


async def test_the_page_hears_which_of_its_selection_had_gone(client):
    file_id = await upload(client, "one.txt", b"x")
    r = await client.post("/api/files/delete", json={"ids": [file_id, "A" * 22]}, headers=DATASTAR)
    assert r.status_code == 200
    assert "1 file of the selection had gone already." in r.text


# --- select all matching, and the ZIP from the page -----------------------------------


async def test_select_all_matching_gives_every_id_of_the_tabs_search(client, config: Config):
    scans = [await upload(client, f"scan-{n:02d}.txt", b"x") for n in range(55)]
    await upload(client, "other.txt", b"x")
    _, token = await add_account(config, "someone")
    await upload(client, "scan-theirs.txt", b"x", headers=bearer(token))
    signals = json.dumps({"listQ": "scan", "listType": "", "listSort": "name-asc", "listPage": 1})
    r = await client.get("/selection", params={"datastar": signals}, headers=DATASTAR)
    assert r.status_code == 200
    line = next(x for x in r.text.splitlines() if "_matching" in x)
    matching = json.loads(line.removeprefix("data: signals "))["_matching"]
    assert matching == scans  # named scan-00 to scan-54: name order is upload order


async def test_the_page_gets_its_zip_as_a_signal_and_refusals_in_words(client, config: Config):
    first = await upload(client, "a.txt", b"aaa")
    second = await upload(client, "b.txt", b"bbb")
    r = await client.post("/api/archives", json={"ids": [first, second]}, headers=DATASTAR)
    assert r.status_code == 200
    line = next(x for x in r.text.splitlines() if "_download" in x)
    url = json.loads(line.removeprefix("data: signals "))["_download"]
    assert url.startswith("/api/archives/")
    got = await client.get(url)
    assert got.status_code == 200 and got.headers.get("content-type") == "application/zip"
    _, token = await add_account(config, "someone")
    theirs = await upload(client, "theirs.txt", b"x", headers=bearer(token))
    r = await client.post("/api/archives", json={"ids": [first, theirs]}, headers=DATASTAR)
    assert r.status_code == 200
    assert f"Could not make the ZIP: no such file: {theirs}." in r.text
    assert "_download" not in r.text


# --- thumbnails and type icons in the list --------------------------------------------


async def test_rows_show_a_lazy_thumbnail_or_their_types_icon(client):
    photo = await upload(client, "photo.png", png())
    notes = await upload(client, "notes.txt", b"words")
    blob = await upload(client, "blob.bin", bytes(range(256)) * 4)
    await wait_for_thumbnail(client, photo)
    page = (await client.get(HOME.href())).text
    assert (
        f'<img class="preview" src="/files/{photo}/thumbnail" loading="lazy"'
        ' width="48" height="48" alt=""/>'
    ) in page
    row = page[page.index(f'id="file-{notes}"') :]
    assert row.index('<use href="#icon-documents"/>') < row.index("</li>")
    row = page[page.index(f'id="file-{blob}"') :]
    assert row.index('<use href="#icon-other"/>') < row.index("</li>")
    # Each icon is drawn once in the page, as a symbol the rows use.
    for kind in ("images", "video", "audio", "documents", "other"):
        assert page.count(f'<symbol id="icon-{kind}"') == 1


async def test_a_thumbnail_made_while_the_page_is_open_replaces_the_icon_live(
    client, config: Config
):
    photo = await upload(client, "photo.png", png())
    await wait_for_thumbnail(client, photo)
    # As if stored before thumbnails were made: the list asks for one.
    (config.uploads_dir / ".thumbs" / photo[:2] / f"{photo}.webp").unlink()
    async with client.stream("GET", HOME_LIVE.href(), headers=IDENTITY) as live:
        events = live.iter_events()
        painted = await next_data(events, containing='id="files"')
        assert '<use href="#icon-images"/>' in painted and "<img" not in painted
        patch = await next_data(events, containing=f"selector #file-{photo} .preview")
    assert "mode outer" in patch
    assert f'<img class="preview" src="/files/{photo}/thumbnail" loading="lazy"' in patch


# --- the grid view ----------------------------------------------------------------------


async def test_the_grid_view_is_a_cookie_the_server_paints_from(client):
    await upload(client, "a.txt", b"x")
    page = (await client.get(HOME.href())).text
    assert '<section id="library" aria-labelledby' in page
    assert '"_view":"list"' in page.replace("&quot;", '"')
    # Nonsense in the cookie is the list view.
    page = (await client.get(HOME.href(), headers={"cookie": "stowage_view=table"})).text
    assert '<section id="library" aria-labelledby' in page

    # Without scripts the switch is a form: it sets the cookie and comes back.
    r = await client.post(
        "/view",
        content=b"view=grid&next=%2F%3Fq%3Da",
        headers={"content-type": "application/x-www-form-urlencoded"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers.get("location") == "/?q=a"
    cookie = r.headers.get("set-cookie")
    assert cookie.startswith("stowage_view=grid;") and "httponly" not in cookie.lower()

    page = (await client.get(HOME.href(), headers={"cookie": "stowage_view=grid"})).text
    assert '<section id="library" class="grid"' in page
    assert '"_view":"grid"' in page.replace("&quot;", '"')
    assert 'value="grid" class="button on" aria-pressed="true"' in page


async def test_the_view_form_refuses_nonsense_and_never_leaves_the_site(client):
    form = {"content-type": "application/x-www-form-urlencoded"}
    r = await client.post("/view", content=b"view=table", headers=form, follow_redirects=False)
    assert r.status_code == 400 and "view must be one of list, grid" in r.text
    for elsewhere in (b"https%3A%2F%2Fevil.example%2F", b"%2F%2Fevil.example", b""):
        r = await client.post(
            "/view", content=b"view=list&next=" + elsewhere, headers=form, follow_redirects=False
        )
        assert r.status_code == 303 and r.headers.get("location") == "/"
