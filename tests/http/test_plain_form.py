"""The upload form without JavaScript: a browser's own multipart post gets 303 back to
the page; API clients (curl -F) keep their 201 JSON."""

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


async def test_a_plain_form_post_is_303_to_the_page_which_lists_the_files(client, config):
    r = await client.post(
        "/uploads",
        files={"file": ("from-a-form.txt", b"no javascript here\n", "text/plain")},
        headers=BROWSER,
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert r.headers.get("location") == "/"
    assert len(stored_blobs(config)) == 1
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


async def test_a_refused_plain_form_post_says_why_in_words(client, config):
    r = await client.post(
        "/uploads",
        files={"file": ("", b"")},  # the picker was empty
        headers=BROWSER,
    )
    assert r.status_code == 400
    assert r.headers.get("content-type", "").startswith("text/plain")
    assert "Go back to try again." in r.text
    assert "{" not in r.text
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
    assert r.status_code == 303
    assert r.headers.get("location") == link
    assert [f["name"] for f in (await client.get("/api/files")).json()["files"]] == ["scan.pdf"]


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
