"""A browser opening a link that leads nowhere (a missing or another account's file's
preview or thumbnail, a revoked or unknown share link's download, another's download
log, any unknown path) gets an HTML page in words; API clients (asking for JSON, or
anything but HTML, or sending a token) keep the JSON or text answer they had."""

import re

import pytest
from tests.support.fixtures import PASSWORD, add_account, app_client, bearer

BROWSER = {"accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
# A navigation that does not say what it accepts, as some agents send it.
NAVIGATING = {"sec-fetch-mode": "navigate", "sec-fetch-dest": "document", "accept": "*/*"}
JSON = {"accept": "application/json"}
UNKNOWN_FILE = "A" * 22
UNKNOWN_LINK = "/s/" + "A" * 32
PREVIEW_ROUTES = ("thumbnail", "preview", "preview-file", "preview-image")


async def _sign_in(client, name: str = "owner") -> None:
    done = await client.post(
        "/login",
        content=f"name={name}&password={PASSWORD.replace(' ', '+')}".encode(),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert done.status_code == 303


async def _upload(client, token: str, name: str = "a.txt") -> str:
    made = await client.put(f"/uploads/{name}", content=b"hello\n", headers=bearer(token))
    assert made.status_code == 201, made.text
    return made.json()["files"][0]["id"]


def _is_page(answer, status: int, *words: str) -> None:
    assert answer.status_code == status, answer.text
    assert answer.headers.get("content-type").startswith("text/html")
    for word in words:
        assert word in answer.text


def _masked(text: str) -> str:
    return re.sub(r'nonce-[^\'"]+|nonce="[^"]*"', "NONCE", text)


@pytest.mark.parametrize("route", PREVIEW_ROUTES)
async def test_a_browser_gets_a_page_for_a_missing_or_foreign_files_preview(
    route, config, owner, anonymous
):
    _, other_token = await add_account(config, "other")
    theirs = await _upload(anonymous, other_token)
    await _sign_in(anonymous)
    unknown = await anonymous.get(f"/files/{UNKNOWN_FILE}/{route}", headers=BROWSER)
    _is_page(unknown, 404, "This file does not exist or is not yours", 'aria-label="Screens"')
    assert unknown.headers.get("cache-control") == "private, no-store"
    foreign = await anonymous.get(f"/files/{theirs}/{route}", headers=BROWSER)
    assert foreign.status_code == 404
    assert _masked(foreign.text) == _masked(unknown.text)  # no existence oracle
    assert theirs not in foreign.text
    navigating = await anonymous.get(f"/files/{theirs}/{route}", headers=NAVIGATING)
    _is_page(navigating, 404, "This file does not exist or is not yours")
    for headers in (JSON, {}):
        api = await anonymous.get(f"/files/{theirs}/{route}", headers=headers)
        assert (api.status_code, api.json()) == (404, {"error": "no such file"})
    token = await anonymous.get(f"/files/{theirs}/{route}", headers={**BROWSER, **bearer(owner[1])})
    assert (token.status_code, token.json()) == (404, {"error": "no such file"})


async def test_a_browser_gets_a_page_where_a_share_links_downloads_end(config, owner, anonymous):
    token = owner[1]
    file_id = await _upload(anonymous, token)
    made = await anonymous.post(f"/api/files/{file_id}/shares", json={}, headers=bearer(token))
    link = made.json()["share"]
    folder = await anonymous.post("/api/folders/root/shares", json={}, headers=bearer(token))
    collection = folder.json()["share"]
    for share in (link, collection):
        gone = await anonymous.delete(f"/api/shares/{share['id']}", headers=bearer(token))
        assert gone.status_code == 204
    revoked = (
        link["url"] + "/file",
        collection["url"] + "/zip",
        collection["url"] + f"/files/{file_id}",
    )
    for path in revoked:
        page = await anonymous.get(path, headers=BROWSER)
        _is_page(page, 410, "This link no longer works", "revoked")
        assert 'aria-label="Screens"' not in page.text  # a visitor's plain page
        assert page.headers.get("cache-control") == "private, no-store"
        assert _is_page(await anonymous.get(path, headers=NAVIGATING), 410) is None
        text = await anonymous.get(path)
        assert text.status_code == 410
        assert text.headers.get("content-type").startswith("text/plain")
    for path in (f"{UNKNOWN_LINK}/file", f"{UNKNOWN_LINK}/zip", f"{UNKNOWN_LINK}/files/{file_id}"):
        page = await anonymous.get(path, headers=BROWSER)
        _is_page(page, 404, "No such link", "does not exist")
        text = await anonymous.get(path, headers=JSON)
        assert (text.status_code, text.text) == (404, "No such link.\n")


async def test_a_browser_gets_a_page_when_a_share_links_file_is_gone(config, owner, anonymous):
    token = owner[1]
    file_id = await _upload(anonymous, token)
    collection = (
        await anonymous.post("/api/folders/root/shares", json={}, headers=bearer(token))
    ).json()["share"]
    deleted = await anonymous.delete(f"/files/{file_id}", headers=bearer(token))
    assert deleted.status_code in (200, 204), deleted.text
    page = await anonymous.get(collection["url"] + f"/files/{file_id}", headers=BROWSER)
    _is_page(page, 404, "No such link")
    text = await anonymous.get(collection["url"] + f"/files/{file_id}")
    assert (text.status_code, text.text) == (404, "No such file in this link.\n")


async def test_a_browser_gets_a_page_for_a_download_log_not_its_own(config, owner, anonymous):
    _, other_token = await add_account(config, "other")
    theirs = await _upload(anonymous, other_token)
    made = await anonymous.post(f"/api/files/{theirs}/shares", json={}, headers=bearer(other_token))
    share_id = made.json()["share"]["id"]
    await _sign_in(anonymous)
    for shared in (share_id, "nonsense"):
        path = f"/shared/{shared}/downloads.csv"
        page = await anonymous.get(path, headers=BROWSER)
        _is_page(page, 404, "None of your links has this log", 'aria-label="Screens"')
        assert page.headers.get("cache-control") == "private, no-store"
        api = await anonymous.get(path, headers=JSON)
        assert (api.status_code, api.json()) == (404, {"error": "no such link"})
        token = await anonymous.get(path, headers={**BROWSER, **bearer(owner[1])})
        assert (token.status_code, token.json()) == (404, {"error": "no such link"})


async def test_an_unknown_path_is_a_page_for_a_browser_and_text_for_the_rest(config, owner):
    async with app_client(config, follow_redirects=False) as visitor:
        page = await visitor.get("/no/such/page", headers=BROWSER)
        _is_page(page, 404, "There is no page at this address", 'href="/login"')
        assert 'aria-label="Screens"' not in page.text
        _is_page(await visitor.get("/nope", headers=NAVIGATING), 404, "no page at this address")
        for headers in (JSON, {}):
            text = await visitor.get("/nope", headers=headers)
            assert (text.status_code, text.text) == (404, "Not Found")
        api = await visitor.get("/api/nope", headers=BROWSER)
        assert api.status_code == 404 and api.json() == {"error": "nothing here: /api/nope"}
        token = await visitor.get("/nope", headers={**BROWSER, **bearer(owner[1])})
        assert (token.status_code, token.text) == (404, "Not Found")
        posted = await visitor.post("/nope", content=b"", headers=BROWSER)
        assert posted.status_code == 404 and "<html" not in posted.text
        await _sign_in(visitor)
        signed_in = await visitor.get("/no/such/page", headers=BROWSER)
        _is_page(signed_in, 404, "There is no page at this address", 'aria-label="Screens"')
        assert signed_in.headers.get("cache-control") == "private, no-store"
