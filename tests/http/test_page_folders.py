"""The page as a folder browser: a folder's own address, the breadcrumb, folders
before files, a search across folders that says where each hit is, the page's folder
commands, and uploads into the folder shown."""

import re

from tests.support.fixtures import add_account, signed_in_client
from tests.support.page import DATASTAR, IDENTITY, next_data

from app.features.home.urls import HOME, HOME_LIVE


async def _folder(client, name: str, parent: str = "root") -> str:
    made = await client.post("/api/folders", json={"name": name, "parent": parent})
    assert made.status_code == 201, made.text
    return made.json()["folder"]["id"]


async def _put(client, name: str, body: bytes, folder: str | None = None) -> str:
    # Files are placed with the folders API (moving), so this test does not lean on
    # the upload transports' own `?folder=`.
    made = await client.put(f"/uploads/{name}", content=body)
    assert made.status_code == 201, made.text
    file_id = made.json()["files"][0]["id"]
    if folder is not None:
        moved = await client.post("/api/files/move", json={"ids": [file_id], "to": folder})
        assert moved.status_code == 200, moved.text
    return file_id


async def test_a_folder_has_its_own_address_with_a_breadcrumb_and_folders_first(client):
    photos = await _folder(client, "Photos")
    trip = await _folder(client, "Trip", photos)
    await _put(client, "beach.jpg", b"sand" * 100, trip)
    await _put(client, "list.txt", b"sunscreen", photos)
    await _put(client, "top.txt", b"at the root")

    root = await client.get(HOME.href())
    assert root.status_code == 200
    assert f'href="/?folder={photos}"' in root.text
    assert "top.txt" in root.text and "list.txt" not in root.text
    # Folders come before the files, with what they hold (all the way down).
    assert root.text.index(f'id="folder-{photos}"') < root.text.index("top.txt")
    row = re.search(rf'<li id="folder-{photos}".*?</li>', root.text).group(0)
    assert "2 files" in row and "1 folder" in row and "409 bytes" in row

    inside = await client.get(HOME.href(query={"folder": photos}))
    assert inside.status_code == 200
    crumbs = re.search(r'<nav class="breadcrumb".*?</nav>', inside.text).group(0)
    assert '<a href="/">Files</a>' in crumbs
    assert '<span aria-current="page">Photos</span>' in crumbs
    assert f'id="folder-{trip}"' in inside.text
    assert "list.txt" in inside.text and "top.txt" not in inside.text
    # Uploads from this page go into the folder shown; the stream follows it.
    assert f'action="/uploads?folder={photos}"' in inside.text
    assert f'data-folder="{photos}"' in inside.text
    assert f'"listFolder":"{photos}"' in inside.text.replace("&quot;", '"')

    deeper = await client.get(HOME.href(query={"folder": trip}))
    crumbs = re.search(r'<nav class="breadcrumb".*?</nav>', deeper.text).group(0)
    assert f'<a href="/?folder={photos}">Photos</a>' in crumbs
    assert '<span aria-current="page">Trip</span>' in crumbs
    assert "beach.jpg" in deeper.text


async def test_an_unknown_or_another_accounts_folder_is_404_in_words(config, client):
    _, token = await add_account(config, "other")
    mine = await _folder(client, "Mine")
    gone = await client.get(HOME.href(query={"folder": "nosuchfolder"}))
    assert gone.status_code == 404
    assert "This folder does not exist" in gone.text
    async with signed_in_client(config, token) as theirs:
        seen = await theirs.get(HOME.href(query={"folder": mine}))
        assert seen.status_code == 404 and "Mine" not in seen.text


async def test_a_search_looks_in_every_folder_and_says_where(client):
    photos = await _folder(client, "Photos")
    await _put(client, "holiday-beach.jpg", b"x" * 10, photos)
    await _put(client, "holiday-notes.txt", b"y" * 10)
    await _put(client, "taxes.pdf", b"z" * 10)

    found = await client.get(HOME.href(query={"q": "holiday"}))
    assert "holiday-beach.jpg" in found.text and "holiday-notes.txt" in found.text
    assert "taxes.pdf" not in found.text
    assert "2 files match" in found.text
    assert '<span aria-current="page">Search in every folder</span>' in found.text
    beach = re.search(r'<li id="file-[^"]+" class="file">(?:(?!</li>).)*holiday-beach', found.text)
    assert beach is not None
    where = re.search(r'<a class="file-folder" href="([^"]+)">in /Photos/</a>', found.text)
    assert where is not None and where.group(1) == f"/?folder={photos}"
    # Searching from inside a folder still looks everywhere.
    inside = await client.get(HOME.href(query={"q": "holiday", "folder": photos}))
    assert "holiday-notes.txt" in inside.text


async def test_the_stream_follows_the_folder_shown_and_repaints_on_folder_changes(client):
    photos = await _folder(client, "Photos")
    await _put(client, "inside.txt", b"in", photos)
    await _put(client, "outside.txt", b"out")
    signals = '{"listQ":"","listType":"","listSort":"created-desc","listPage":1,"listFolder":"%s"}'
    url = HOME_LIVE.href(query={"datastar": signals % photos})
    async with client.stream("GET", url, headers={**IDENTITY, **DATASTAR}) as stream:
        events = stream.iter_events()
        first = await next_data(events, containing='id="files"')
        assert "inside.txt" in first and "outside.txt" not in first
        await _folder(client, "Fresh", photos)
        patch = await next_data(events, containing="Fresh")
        assert "folder-head" in patch


async def test_making_a_folder_without_scripts_comes_back_to_the_folder(client):
    photos = await _folder(client, "Photos")
    made = await client.post(
        "/folders",
        content=f"name=Inner&parent={photos}".encode(),
        headers={"content-type": "application/x-www-form-urlencoded", "accept": "text/html"},
        follow_redirects=False,
    )
    assert made.status_code == 303
    assert made.headers.get("location") == f"/?folder={photos}"
    listed = (await client.get(f"/api/folders/{photos}")).json()
    assert [f["name"] for f in listed["folders"]] == ["Inner"]
    # A taken name (ignoring case) is refused in words, and nothing changes.
    again = await client.post(
        "/folders",
        content=f"name=inner&parent={photos}".encode(),
        headers={"content-type": "application/x-www-form-urlencoded", "accept": "text/html"},
    )
    assert again.status_code == 409 and "already here" in again.text
    empty = await client.post(
        "/folders",
        content=b"name=&parent=root",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert empty.status_code == 400 and "needs a name" in empty.text


async def test_deleting_a_selection_first_says_what_will_go(client):
    photos = await _folder(client, "Photos")
    trip = await _folder(client, "Trip", photos)
    await _folder(client, "Empty", photos)
    await _put(client, "a.txt", b"a" * 1000, photos)
    await _put(client, "b.txt", b"b" * 2000, trip)
    loose = await _put(client, "c.txt", b"c" * 48)

    asked = await client.post(
        "/folders/doomed",
        json={"ids": [loose], "folders": [photos]},
        headers=DATASTAR,
    )
    assert asked.status_code == 200
    assert "Delete 3 folders and 3 files, 3 KiB? It cannot be undone." in asked.text
    plain = await client.post("/folders/doomed", json={"folders": [photos]})
    assert plain.json() == {"folders": 3, "files": 2, "size": 3000}

    done = await client.post("/folders/delete", json={"ids": [loose], "folders": [photos]})
    assert done.status_code == 200
    assert sorted(done.json()["deleted"]) == sorted([photos, loose])
    assert (await client.get(f"/api/folders/{photos}")).status_code == 404
    assert (await client.get("/api/files")).json()["files"] == []


async def test_moving_a_folder_into_itself_is_refused_in_words_on_the_page(client):
    photos = await _folder(client, "Photos")
    trip = await _folder(client, "Trip", photos)
    refused = await client.post(
        "/api/files/move", json={"ids": [], "folders": [photos], "to": trip}, headers=DATASTAR
    )
    assert refused.status_code == 200
    assert "Could not move: the folder 'Photos' cannot go inside itself." in refused.text
    page = await client.get(HOME.href())
    options = re.search(r'<select id="move-to".*?</select>', page.text).group(0)
    assert '<option value="root">/ (Files)</option>' in options
    assert f'<option value="{trip}">/Photos/Trip/</option>' in options


async def test_the_request_forms_folder_select_follows_folder_changes_live(client):
    async with client.stream("GET", "/requests/live", headers={**IDENTITY, **DATASTAR}) as stream:
        events = stream.iter_events()
        await next_data(events, containing='id="request-folder"')
        made = await _folder(client, "Receipts")
        patch = await next_data(events, containing='id="request-folder"')
        assert f'<option value="{made}">/Receipts/</option>' in patch
        renamed = await client.patch(f"/api/folders/{made}", json={"name": "Bills"})
        assert renamed.status_code == 200, renamed.text
        patch = await next_data(events, containing='id="request-folder"')
        assert "/Bills/" in patch and "/Receipts/" not in patch
