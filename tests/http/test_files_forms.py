"""The Files screen's actions as plain forms (no scripts): each row's Rename, Move,
Delete and Share is a link to a page with a real form, whose post answers 303 back
where the person was, or the page again with the refusal beside the field; another
account's ids are 404 (an HTML page, nothing touched). A person's browser opening a
missing file link gets an HTML 404; API clients keep the JSON one."""

import re

from tests.support.fixtures import PASSWORD, add_account, app_client, bearer

BROWSER = {"accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
FORM = {"content-type": "application/x-www-form-urlencoded", **BROWSER}


async def _upload(client, name: str, folder: str | None = None) -> str:
    query = f"?folder={folder}" if folder else ""
    made = await client.put(f"/uploads/{name}{query}", content=b"hello\n")
    assert made.status_code == 201, made.text
    return made.json()["files"][0]["id"]


async def _folder(client, name: str) -> str:
    made = await client.post("/api/folders", json={"name": name, "parent": "root"})
    assert made.status_code == 201, made.text
    return made.json()["folder"]["id"]


async def _names(client) -> list[str]:
    return [f["name"] for f in (await client.get("/api/files")).json()["files"]]


async def test_each_row_links_its_actions_named_with_the_file(client):
    file_id = await _upload(client, "holiday.jpg")
    page = (await client.get("/")).text
    for verb, path in (("Share", "share"), ("Rename", "rename"), ("Delete", "delete")):
        assert re.search(
            rf'<a class="button[^"]*" href="/files/{file_id}/{path}"[^>]*'
            rf'aria-label="{verb} holiday.jpg"',
            page,
        ), verb
    assert 'aria-label="Download holiday.jpg"' in page


async def test_rename_by_form_is_303_back_and_renames(client):
    file_id = await _upload(client, "old.txt")
    page = await client.get(f"/files/{file_id}/rename", headers=BROWSER)
    assert page.status_code == 200
    assert 'action="/files/' + file_id + '/rename"' in page.text
    assert f'href="/files/{file_id}/move"' in page.text  # moving is one link away
    done = await client.post(
        f"/files/{file_id}/rename",
        content=b"name=new.txt&back=%2F%3Fq%3Dold",
        headers=FORM,
        follow_redirects=False,
    )
    assert done.status_code == 303
    assert done.headers.get("location") == "/?q=old"
    assert await _names(client) == ["new.txt"]


async def test_a_refused_rename_shows_the_page_again_with_the_error_by_the_field(client):
    file_id = await _upload(client, "a.txt")
    await _upload(client, "b.txt")
    taken = await client.post(
        f"/files/{file_id}/rename", content=b"name=b.txt", headers=FORM, follow_redirects=False
    )
    assert taken.status_code == 409
    assert 'aria-invalid="true"' in taken.text
    assert 'aria-describedby="rename-name-error"' in taken.text
    assert re.search(r'id="rename-name-error"[^>]*>[^<]*already', taken.text)
    assert 'value="b.txt"' in taken.text  # what was typed stays
    empty = await client.post(
        f"/files/{file_id}/rename", content=b"name=+", headers=FORM, follow_redirects=False
    )
    assert empty.status_code == 400
    assert "must not be empty" in empty.text
    assert sorted(await _names(client)) == ["a.txt", "b.txt"]


async def test_a_datastar_rename_refusal_is_a_signal_for_the_field(client):
    file_id = await _upload(client, "a.txt")
    await _upload(client, "b.txt")
    answer = await client.post(
        f"/files/{file_id}/rename",
        json={"renameFile": file_id, "renameName": "b.txt"},
        headers={"datastar-request": "true"},
    )
    assert answer.status_code == 200
    assert "_renameError" in answer.text and "already" in answer.text
    ok = await client.post(
        f"/files/{file_id}/rename",
        json={"renameFile": file_id, "renameName": "c.txt"},
        headers={"datastar-request": "true"},
    )
    assert '"_renameError":""' in ok.text.replace(" ", "")
    assert sorted(await _names(client)) == ["b.txt", "c.txt"]


async def test_move_and_delete_by_form(client):
    file_id = await _upload(client, "m.txt")
    folder = await _folder(client, "Taxes")
    page = await client.get(f"/files/{file_id}/move", headers=BROWSER)
    assert "Taxes" in page.text
    moved = await client.post(
        f"/files/{file_id}/move", content=f"to={folder}".encode(), headers=FORM,
        follow_redirects=False,
    )  # fmt: skip
    assert moved.status_code == 303
    listed = (await client.get(f"/api/folders/{folder}")).json()
    assert [f["name"] for f in listed["files"]] == ["m.txt"]
    nowhere = await client.post(
        f"/files/{file_id}/move", content=b"to=nosuchfolder", headers=FORM,
        follow_redirects=False,
    )  # fmt: skip
    assert nowhere.status_code == 404
    assert 'id="move-to-folder-error"' in nowhere.text
    confirm = await client.get(f"/files/{file_id}/delete", headers=BROWSER)
    assert "It cannot be undone" in confirm.text
    gone = await client.post(
        f"/files/{file_id}/delete", content=b"", headers=FORM, follow_redirects=False
    )
    assert gone.status_code == 303
    assert gone.headers.get("location") == f"/?folder={folder}"
    assert await _names(client) == []


async def test_share_by_form_shows_the_link_once_in_the_answer(client):
    file_id = await _upload(client, "s.txt")
    made = await client.post(
        f"/files/{file_id}/share", content=b"shareExpiry=3600&shareLimit=2", headers=FORM
    )
    assert made.status_code == 200
    assert re.search(r'id="new-share-url">[^<]*/s/', made.text)
    assert len((await client.get("/api/shares")).json()["shares"]) == 1
    bad = await client.post(
        f"/files/{file_id}/share", content=b"shareExpiry=3600&shareLimit=0", headers=FORM
    )
    assert bad.status_code == 400
    assert 'id="share-limit-error"' in bad.text and 'aria-invalid="true"' in bad.text
    # In the form's words, not the API's field names, beside the field at fault.
    assert re.search(r'id="share-limit-error"[^>]*>The download limit must be between 1', bad.text)
    assert "max_downloads" not in bad.text.lower()
    word = await client.post(
        f"/files/{file_id}/share", content=b"shareExpiry=3600&shareLimit=lots", headers=FORM
    )
    assert word.status_code == 400
    assert re.search(r'id="share-limit-error"[^>]*>The download limit must be a whole', word.text)
    soon = await client.post(f"/files/{file_id}/share", content=b"shareExpiry=5", headers=FORM)
    assert soon.status_code == 400
    assert 'aria-describedby="share-expiry-error"' in soon.text
    assert re.search(r'id="share-expiry-error"[^>]*>Expiry must be between 1 minute', soon.text)
    assert "expires_in" not in soon.text.lower()
    folder = await _folder(client, "Photos")
    whole = await client.post(
        f"/folders/{folder}/share", content=b"shareExpiry=never", headers=FORM
    )
    assert whole.status_code == 200 and "/s/" in whole.text
    assert len((await client.get("/api/shares")).json()["shares"]) == 2


async def test_folder_rename_and_delete_by_form(client):
    folder = await _folder(client, "Old")
    await _upload(client, "in.txt", folder)
    other = await _folder(client, "Other")
    taken = await client.post(
        f"/folders/{folder}/rename", content=b"name=Other", headers=FORM, follow_redirects=False
    )
    assert taken.status_code == 409 and 'id="folder-new-name-error"' in taken.text
    renamed = await client.post(
        f"/folders/{folder}/rename", content=b"name=New", headers=FORM, follow_redirects=False
    )
    assert renamed.status_code == 303
    ask = await client.get(f"/folders/{folder}/delete", headers=BROWSER)
    assert "1 file" in ask.text
    gone = await client.post(
        f"/folders/{folder}/delete", content=b"", headers=FORM, follow_redirects=False
    )
    assert gone.status_code == 303 and gone.headers.get("location") == "/"
    assert (await client.get(f"/api/folders/{folder}")).status_code == 404
    assert (await client.get(f"/api/folders/{other}")).status_code == 200


async def test_another_accounts_ids_are_404_and_untouched(client, config):
    file_id = await _upload(client, "mine.txt")
    folder = await _folder(client, "Mine")
    _, token = await add_account(config, "someone", admin=False)
    async with app_client(config, headers=bearer(token), follow_redirects=False) as other:
        for method, path, body in (
            ("GET", f"/files/{file_id}/rename", b""),
            ("POST", f"/files/{file_id}/rename", b"name=x.txt"),
            ("POST", f"/files/{file_id}/move", b"to=root"),
            ("POST", f"/files/{file_id}/delete", b""),
            ("POST", f"/files/{file_id}/share", b"shareExpiry=3600"),
            ("POST", f"/folders/{folder}/rename", b"name=x"),
            ("POST", f"/folders/{folder}/delete", b""),
            ("POST", f"/folders/{folder}/share", b"shareExpiry=3600"),
        ):
            answer = await other.request(method, path, content=body, headers=FORM)
            assert answer.status_code == 404, path
            assert "does not exist or is not yours" in answer.text, path
    assert await _names(client) == ["mine.txt"]
    assert (await client.get(f"/api/folders/{folder}")).json()["folder"]["name"] == "Mine"
    assert (await client.get("/api/shares")).json()["shares"] == []


async def test_a_browser_gets_an_html_404_for_a_missing_file_link(config, anonymous):
    signed_in = await anonymous.post(
        "/login",
        content=f"name=owner&password={PASSWORD.replace(' ', '+')}".encode(),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert signed_in.status_code == 303
    missing = "/files/" + "A" * 22
    page = await anonymous.get(missing, headers=BROWSER)
    assert page.status_code == 404
    assert page.headers.get("content-type").startswith("text/html")
    assert "This file does not exist or is not yours" in page.text
    assert 'aria-label="Screens"' in page.text  # with the navigation
    api = await anonymous.get(missing, headers={"accept": "application/json"})
    assert api.status_code == 404 and api.json() == {"error": "no such file"}


async def test_an_api_token_keeps_the_json_404(client):
    answer = await client.get("/files/" + "A" * 22, headers=BROWSER)
    assert answer.status_code == 404 and answer.json() == {"error": "no such file"}


async def test_a_refused_new_folder_shows_its_form_again_with_the_error_by_the_field(client):
    trip = await _folder(client, "Trip")
    taken = await client.post(
        "/folders", content=b"name=trip&parent=root", headers=FORM, follow_redirects=False
    )
    assert taken.status_code == 409
    assert taken.headers.get("content-type").startswith("text/html")
    assert 'aria-invalid="true"' in taken.text
    assert 'aria-describedby="new-folder-name-error"' in taken.text
    assert re.search(r'id="new-folder-name-error"[^>]*>[^<]*already here', taken.text)
    assert 'value="trip"' in taken.text  # what was typed stays
    assert 'action="/folders"' in taken.text and f'value="{trip}"' in taken.text
    empty = await client.post(
        "/folders", content=b"name=+&parent=root", headers=FORM, follow_redirects=False
    )
    assert empty.status_code == 400
    assert re.search(r'id="new-folder-name-error"[^>]*>[^<]*name', empty.text)
    nowhere = await client.post(
        "/folders", content=b"name=Kept&parent=nosuchfolder", headers=FORM,
        follow_redirects=False,
    )  # fmt: skip
    assert nowhere.status_code == 404
    assert 'aria-describedby="new-folder-in-error"' in nowhere.text
    assert 'id="new-folder-in-error"' in nowhere.text and 'value="Kept"' in nowhere.text
    # Datastar keeps its notice; API clients keep JSON.
    ds = await client.post(
        "/folders", content=b"name=Trip&parent=root",
        headers={**FORM, "datastar-request": "true"},
    )  # fmt: skip
    assert ds.status_code == 200 and "already here" in ds.text and "_notice" in ds.text
    api = await client.post(
        "/folders", content=b"name=Trip&parent=root",
        headers={"content-type": "application/x-www-form-urlencoded", "accept": "*/*"},
    )  # fmt: skip
    assert api.status_code == 409 and "already here" in api.json()["error"]
    listed = (await client.get("/api/folders/root")).json()
    assert [f["name"] for f in listed["folders"]] == ["Trip"]


async def test_folder_move_by_form(client):
    outer = await _folder(client, "Outer")
    inner = await _folder(client, "Inner")
    rename = await client.get(f"/folders/{inner}/rename", headers=BROWSER)
    assert f'href="/folders/{inner}/move"' in rename.text  # moving is one link away
    page = await client.get(f"/folders/{inner}/move", headers=BROWSER)
    assert page.status_code == 200
    assert f'action="/folders/{inner}/move"' in page.text and "/Outer/" in page.text
    moved = await client.post(
        f"/folders/{inner}/move", content=f"to={outer}".encode(), headers=FORM,
        follow_redirects=False,
    )  # fmt: skip
    assert moved.status_code == 303 and moved.headers.get("location") == "/"
    listed = (await client.get(f"/api/folders/{outer}")).json()
    assert [f["name"] for f in listed["folders"]] == ["Inner"]
    # Into itself, or below itself: refused beside the field, nothing moved.
    for into in (outer, inner):
        refused = await client.post(
            f"/folders/{outer}/move", content=f"to={into}".encode(), headers=FORM,
            follow_redirects=False,
        )  # fmt: skip
        assert refused.status_code == 409, into
        assert 'aria-describedby="folder-move-to-error"' in refused.text
        assert re.search(r'id="folder-move-to-error"[^>]*>[^<]*\w', refused.text)
    assert (await client.get(f"/api/folders/{outer}")).json()["folder"]["path"] == "/Outer/"
    nowhere = await client.post(
        f"/folders/{inner}/move", content=b"to=nosuchfolder", headers=FORM,
        follow_redirects=False,
    )  # fmt: skip
    assert nowhere.status_code == 404 and 'id="folder-move-to-error"' in nowhere.text
