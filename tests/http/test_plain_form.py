"""The upload form without JavaScript: a browser's own multipart post gets a page
saying what was stored (or why nothing was), with the way back to the page it came
from; API clients (curl -F) keep their 201 JSON."""

import re

from tests.support.fixtures import stored_blobs

# What a browser sends with a form it posts by itself.
BROWSER = {"accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


async def test_the_page_form_posts_to_uploads_without_scripts(client):
    page = (await client.get("/")).text
    form = page[page.index('<form id="upload-form"') :]
    form = form[: form.index(">")]
    assert 'method="post"' in form and 'action="/uploads"' in form
    assert 'enctype="multipart/form-data"' in form
    assert '<input id="picker" type="file" name="file" multiple' in page
    assert "<noscript><button" in page


def main_of(page: str) -> str:
    return page[page.index("<main") : page.index("</main>")]


async def test_a_plain_form_post_shows_what_was_stored_and_the_way_back(client, config):
    r = await client.post(
        "/uploads",
        files={
            "file": ("from-a-form.txt", b"no javascript here\n", "text/plain"),
            "more": ("second.txt", b"2", "text/plain"),
        },
        headers=BROWSER,
        follow_redirects=False,
    )
    assert r.status_code == 200, r.text
    assert r.headers.get("content-type", "").startswith("text/html")
    main = main_of(r.text)
    assert "Stored 2 files." in main
    assert "from-a-form.txt" in main and "19 bytes" in main and "second.txt" in main
    [stored_id] = re.findall(r'href="/files/([^"]+)">from-a-form.txt<', main)
    assert '<a class="button primary" href="/">Back to your files</a>' in main
    assert len(stored_blobs(config)) == 2
    assert (await client.get(f"/files/{stored_id}")).content == b"no javascript here\n"
    page = (await client.get("/")).text
    assert "from-a-form.txt" in page[page.index('id="files"') :]


async def test_curl_dash_f_still_gets_201_json(client):
    # Each upload of the same name beside the last takes the next free number.
    names = ("curl.txt", "curl (2).txt", "curl (3).txt")
    for name, headers in zip(
        names, ({}, {"accept": "*/*"}, {"accept": "application/json"}), strict=True
    ):
        r = await client.post(
            "/uploads", files={"file": ("curl.txt", b"from curl\n")}, headers=headers
        )
        assert r.status_code == 201, headers
        assert r.json()["files"][0]["name"] == name
        assert r.headers.get("location") == r.json()["files"][0]["url"]


async def test_datastar_form_posts_still_get_the_event_stream(client):
    r = await client.post(
        "/uploads",
        files={"file": ("ds.txt", b"datastar\n")},
        headers={**BROWSER, "datastar-request": "true"},
    )
    assert r.status_code == 200
    assert "upload-results" in r.text


async def test_a_plain_form_post_into_a_folder_goes_back_to_that_folder(client):
    made = await client.post("/api/folders", json={"path": "Inbox", "parent": "root"})
    assert made.status_code == 201, made.text
    folder = made.json()["folder"]["id"]
    r = await client.post(
        f"/uploads?folder={folder}", files={"file": ("in.txt", b"in")}, headers=BROWSER
    )
    assert r.status_code == 200, r.text
    assert f'href="/?folder={folder}">Back to your files' in r.text


async def test_a_refused_plain_form_post_says_why_in_words(client, config):
    r = await client.post(
        "/uploads",
        files={"file": ("", b"")},  # the picker was empty
        headers=BROWSER,
    )
    assert r.status_code == 400
    assert r.headers.get("content-type", "").startswith("text/html")
    main = main_of(r.text)
    assert "Upload refused" in main and "Nothing from this upload was kept." in main
    assert "(HTTP 400)" in main and 'href="/">Back to your files' in main
    assert "{" not in main
    assert stored_blobs(config) == []


async def test_a_file_requests_plain_form_goes_back_to_the_request_page(client):
    made = await client.post("/api/requests", json={"label": "Scans"})
    assert made.status_code == 201
    link = made.headers.get("location")
    assert link and link.startswith("/r/")
    page = (await client.get(link)).text
    assert f'action="{link}/uploads"' in page
    r = await client.post(
        f"{link}/uploads",
        files={"file": ("scan.pdf", b"%PDF-1.4\n")},
        headers={**BROWSER, "authorization": ""},
        follow_redirects=False,
    )
    assert r.status_code == 200, r.text
    main = main_of(r.text)
    assert "Stored 1 file." in main and "scan.pdf" in main
    # Names only: the uploader may not open what it sent; the way back is the link's.
    assert "/files/" not in main
    assert f'href="{link}">Back to the upload page' in main
    assert [f["name"] for f in (await client.get("/api/files")).json()["files"]] == ["scan.pdf"]


async def test_a_full_requests_plain_form_is_refused_in_words(client, anonymous):
    made = await client.post("/api/requests", json={"label": "One", "max_files": 1})
    link = made.headers.get("location")
    first = await anonymous.post(
        f"{link}/uploads", files={"file": ("a.txt", b"a")}, headers=BROWSER
    )
    assert first.status_code == 200
    again = await anonymous.post(
        f"{link}/uploads", files={"file": ("b.txt", b"b")}, headers=BROWSER
    )
    assert again.status_code == 410
    main = main_of(again.text)
    assert "Not stored: this request takes no more files" in main
    assert f'href="{link}">Back to the upload page' in main


async def test_a_browser_put_by_name_through_a_link_goes_back_to_the_links_page(client, anonymous):
    """Not to the upload's own URL: a name holding a backslash made that a Location
    the server refused (500, found by tests/http/test_fuzz.py)."""
    link = (await client.post("/api/requests", json={"label": "back"})).json()["request"]["url"]
    token_page = "/" + "/".join(link.split("/")[-2:])
    for name in ("%5C", "notes.txt"):
        r = await anonymous.put(
            f"{link}/uploads/{name}",
            content=b"x",
            headers={"accept": "text/html"},
            follow_redirects=False,
        )
        assert (r.status_code, r.headers.get("location")) == (303, token_page), name
