"""Two-way folders through Stario's TestClient: a folder link that takes uploads
(`POST /api/folders/{id}/shares` with "uploads"). Its answer and listing, its limits
(max_files, max_file_bytes, the owner's quota, the link's expiry), revocation and
password, uploads landing in the folder and its subfolders and never outside, and
the landing page's upload form."""

import base64
import re
import time

import pytest
from stario.testing import TestClient
from tests.support.fixtures import SETUP_TOKEN, add_account, bearer, request_policy

from app.catalog.open import open_catalog
from app.config import Config
from app.main import make_bootstrap

TUS = {"tus-resumable": "1.0.0"}
TUS_OCTETS = {**TUS, "content-type": "application/offset+octet-stream"}


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


async def folder(app: TestClient, token: str, name: str, parent: str = "root") -> str:
    r = await app.post("/api/folders", json={"name": name, "parent": parent}, headers=bearer(token))
    assert r.status_code == 201, r.text
    return str(r.json()["folder"]["id"])


async def share(app: TestClient, token: str, folder_id: str, **fields) -> dict:
    r = await app.post(f"/api/folders/{folder_id}/shares", json=fields, headers=bearer(token))
    assert r.status_code == 201, r.text
    return r.json()["share"]


async def listing(app: TestClient, token: str, folder_id: str) -> dict:
    r = await app.get(f"/api/folders/{folder_id}", headers=bearer(token))
    assert r.status_code == 200, r.text
    return r.json()


def names(found: dict) -> list[str]:
    return sorted(f["name"] for f in found["files"])


def tus_metadata(**values: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in values.items())


async def test_a_folder_link_that_takes_uploads_says_so_with_its_limits(app, tokens):
    owner, _ = tokens
    inbox = await folder(app, owner, "Inbox")
    made = await share(app, owner, inbox, uploads=True, max_files=3, max_file_bytes=1000)
    assert made["kind"] == "folder" and made["folder"] == inbox
    assert made["uploads"] is True
    assert (made["max_files"], made["max_file_bytes"], made["received"]) == (3, 1000, 0)
    plain = await share(app, owner, inbox)
    assert plain["uploads"] is False and "max_files" not in plain
    listed = (await app.get("/api/shares", headers=bearer(owner))).json()["shares"]
    by_id = {s["id"]: s for s in listed}
    assert by_id[made["id"]]["uploads"] is True
    assert (by_id[made["id"]]["max_files"], by_id[made["id"]]["max_file_bytes"]) == (3, 1000)
    assert by_id[plain["id"]]["uploads"] is False
    # The link's own request is the link's, not one of the Requests list.
    assert (await app.get("/api/requests", headers=bearer(owner))).json()["requests"] == []


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"uploads": "yes"}, "uploads must be true or false"),
        ({"max_files": 2}, 'send "uploads": true'),
        ({"uploads": True, "max_files": 0}, "max_files must be between"),
        ({"uploads": True, "max_file_bytes": -1}, "max_file_bytes must be between"),
    ],
)
async def test_bad_upload_options_are_refused_in_words(app, tokens, fields, words):
    owner, _ = tokens
    inbox = await folder(app, owner, "Inbox")
    r = await app.post(f"/api/folders/{inbox}/shares", json=fields, headers=bearer(owner))
    assert r.status_code == 400 and words in r.json()["error"], r.text


async def test_a_set_of_files_takes_no_uploads_and_another_accounts_folder_is_404(app, tokens):
    owner, other = tokens
    put = await app.put("/uploads/a.txt", content=b"a", headers=bearer(owner))
    file_id = put.json()["files"][0]["id"]
    r = await app.post(
        "/api/shares", json={"ids": [file_id], "uploads": True}, headers=bearer(owner)
    )
    assert r.status_code == 400, r.text
    inbox = await folder(app, owner, "Inbox")
    r = await app.post(
        f"/api/folders/{inbox}/shares", json={"uploads": True}, headers=bearer(other)
    )
    assert r.status_code == 404 and r.json()["error"] == "no such folder"


async def test_uploads_land_in_the_folder_and_its_subfolders_never_outside(app, tokens):
    owner, other = tokens
    inbox = await folder(app, owner, "Inbox")
    elsewhere = await folder(app, owner, "Elsewhere")
    theirs = await folder(app, other, "Theirs")
    link = (await share(app, owner, inbox, uploads=True))["url"]
    assert (await app.put(f"{link}/uploads/a.txt", content=b"a")).status_code == 201
    # A relative path makes subfolders of the shared folder.
    r = await app.put(f"{link}/uploads/b.txt?path=2024/june/b.txt", content=b"b")
    assert r.status_code == 201, r.text
    # A multipart form, its part named with a path.
    r = await app.post(f"{link}/uploads", files={"file": ("docs/c.txt", b"c")})
    assert r.status_code == 201, r.text
    # A folder the visitor names is not theirs to choose: ignored, whoever's it is.
    for asked in (elsewhere, theirs, "root"):
        r = await app.put(f"{link}/uploads/d-{asked}.txt?folder={asked}", content=b"d")
        assert r.status_code == 201, r.text
    # Out of the folder by "..": refused in words, nothing stored.
    for path in ("../x.txt", "a/../../x.txt", "../../Elsewhere/x.txt"):
        r = await app.put(f"{link}/uploads/x.txt?path={path}", content=b"x")
        assert r.status_code == 400, (path, r.text)
    top = await listing(app, owner, inbox)
    assert names(top) == sorted(["a.txt", "d-root.txt", f"d-{elsewhere}.txt", f"d-{theirs}.txt"])
    assert sorted(f["name"] for f in top["folders"]) == ["2024", "docs"]
    year = next(f["id"] for f in top["folders"] if f["name"] == "2024")
    june = (await listing(app, owner, year))["folders"]
    assert [f["name"] for f in june] == ["june"]
    assert names(await listing(app, owner, june[0]["id"])) == ["b.txt"]
    assert (await listing(app, owner, elsewhere))["files"] == []
    assert (await listing(app, other, theirs))["files"] == []
    assert (await listing(app, owner, "root"))["files"] == []


async def test_tus_through_the_link_places_by_relative_path(app, tokens):
    owner, _ = tokens
    inbox = await folder(app, owner, "Inbox")
    elsewhere = await folder(app, owner, "Elsewhere")
    link = (await share(app, owner, inbox, uploads=True))["url"]
    meta = tus_metadata(filename="e.txt", relativePath="shoot/e.txt", folder=elsewhere)
    made = await app.post(
        f"{link}/tus", headers={**TUS, "upload-length": "5", "upload-metadata": meta}
    )
    assert made.status_code == 201, made.text
    upload = made.headers.get("location")
    assert upload.startswith(f"{link}/tus/")
    done = await app.patch(upload, content=b"hello", headers={**TUS_OCTETS, "upload-offset": "0"})
    assert done.status_code == 204, done.text
    shoot = (await listing(app, owner, inbox))["folders"]
    assert [f["name"] for f in shoot] == ["shoot"]
    assert names(await listing(app, owner, shoot[0]["id"])) == ["e.txt"]
    assert (await listing(app, owner, elsewhere))["files"] == []


async def test_max_files_and_max_file_bytes_apply(app, tokens):
    owner, _ = tokens
    inbox = await folder(app, owner, "Inbox")
    made = await share(app, owner, inbox, uploads=True, max_files=2, max_file_bytes=10)
    link = made["url"]
    big = await app.put(f"{link}/uploads/big.txt", content=b"x" * 11)
    assert big.status_code == 413, big.text
    for name in ("1.txt", "2.txt"):
        assert (await app.put(f"{link}/uploads/{name}", content=b"ok")).status_code == 201
    full = await app.put(f"{link}/uploads/3.txt", content=b"ok")
    assert full.status_code == 410 and "as many files" in full.json()["error"], full.text
    listed = (await app.get("/api/shares", headers=bearer(owner))).json()["shares"]
    assert [s["received"] for s in listed if s["id"] == made["id"]] == [2]
    # A full link still gives what it holds.
    assert (await app.get(f"{link}/zip")).status_code == 200


async def test_uploads_count_against_the_owner_quota(app, config):
    _, token = await add_account(config, "tight", quota_kind="bytes", quota_bytes=100)
    inbox = await folder(app, token, "Inbox")
    link = (await share(app, token, inbox, uploads=True))["url"]
    assert (await app.put(f"{link}/uploads/a.txt", content=b"a" * 80)).status_code == 201
    over = await app.put(f"{link}/uploads/b.txt", content=b"b" * 80)
    assert over.status_code == 413 and "quota" in over.json()["error"], over.text


async def test_expiry_stops_uploads(app, tokens, clock):
    owner, _ = tokens
    inbox = await folder(app, owner, "Inbox")
    link = (await share(app, owner, inbox, uploads=True, expires_in=3600))["url"]
    assert (await app.put(f"{link}/uploads/a.txt", content=b"a")).status_code == 201
    clock.now += 3601
    r = await app.put(f"{link}/uploads/b.txt", content=b"b")
    assert r.status_code == 410 and "expired" in r.json()["error"], r.text


async def test_revoking_stops_uploads_at_once_and_ends_unfinished_ones(app, tokens):
    owner, _ = tokens
    inbox = await folder(app, owner, "Inbox")
    made = await share(app, owner, inbox, uploads=True)
    link = made["url"]
    started = await app.post(
        f"{link}/tus",
        headers={**TUS, "upload-length": "10", "upload-metadata": tus_metadata(filename="t")},
    )
    assert started.status_code == 201, started.text
    upload = started.headers.get("location")
    part = await app.patch(upload, content=b"12345", headers={**TUS_OCTETS, "upload-offset": "0"})
    assert part.status_code == 204
    assert (await app.delete(f"/api/shares/{made['id']}", headers=bearer(owner))).status_code == 204
    r = await app.put(f"{link}/uploads/a.txt", content=b"a")
    assert r.status_code == 410 and "revoked" in r.json()["error"], r.text
    rest = await app.patch(upload, content=b"67890", headers={**TUS_OCTETS, "upload-offset": "5"})
    assert rest.status_code in (404, 410), rest.text
    assert (await listing(app, owner, inbox))["files"] == []


async def test_a_password_guards_uploads_too(app, tokens):
    owner, _ = tokens
    inbox = await folder(app, owner, "Inbox")
    link = (await share(app, owner, inbox, uploads=True, password="correct horse"))["url"]
    locked = await app.put(f"{link}/uploads/a.txt", content=b"a")
    assert locked.status_code == 401 and "password" in locked.json()["error"], locked.text
    basic = {"authorization": "Basic " + base64.b64encode(b":correct horse").decode()}
    wrong = {"authorization": "Basic " + base64.b64encode(b":wrong horse").decode()}
    assert (await app.put(f"{link}/uploads/a.txt", content=b"a", headers=wrong)).status_code == 401
    assert (await app.put(f"{link}/uploads/a.txt", content=b"a", headers=basic)).status_code == 201
    # The unlock cookie of the landing page's form works for the upload form too.
    unlocked = await app.post(link, data={"password": "correct horse"})
    assert unlocked.status_code == 303
    cookie = unlocked.headers.get("set-cookie").split(";", 1)[0]
    r = await app.put(f"{link}/uploads/b.txt", content=b"b", headers={"cookie": cookie})
    assert r.status_code == 201, r.text
    assert names(await listing(app, owner, inbox)) == ["a.txt", "b.txt"]


async def test_a_link_without_uploads_takes_none(app, tokens):
    owner, _ = tokens
    inbox = await folder(app, owner, "Inbox")
    link = (await share(app, owner, inbox))["url"]
    r = await app.put(f"{link}/uploads/a.txt", content=b"a")
    assert r.status_code == 403 and "does not take uploads" in r.json()["error"]
    page = await app.get(link)
    assert 'id="upload-form"' not in page.text
    put = await app.put("/uploads/f.txt", content=b"f", headers=bearer(owner))
    file_link = await app.post(
        f"/api/files/{put.json()['files'][0]['id']}/shares", json={}, headers=bearer(owner)
    )
    r = await app.put(f"{file_link.json()['share']['url']}/uploads/a.txt", content=b"a")
    assert r.status_code == 403


async def test_the_landing_page_has_an_upload_form_that_works_without_scripts(app, tokens):
    owner, _ = tokens
    inbox = await folder(app, owner, "Inbox")
    sub = await folder(app, owner, "sub", inbox)
    link = (await share(app, owner, inbox, uploads=True, max_files=5))["url"]
    page = await app.get(link)
    assert page.status_code == 200
    assert 'id="upload-form"' in page.text and f'action="{link}/uploads"' in page.text
    assert "5 more files (of 5)" in page.text
    assert "Choose a folder" in page.text
    # A plain form post: a page saying what was stored, with the way back to the
    # link's page, which lists the new file.
    r = await app.post(
        f"{link}/uploads", files={"file": ("plain.txt", b"plain")}, headers={"accept": "text/html"}
    )
    assert r.status_code == 200, r.text
    assert "Stored 1 file." in r.text and f'href="{link}"' in r.text
    assert "plain.txt" in (await app.get(link)).text
    # Inside a subfolder, the page says where uploads go instead.
    inside = await app.get(f"{link}?folder={sub}")
    assert 'id="upload-form"' not in inside.text and 'id="uploads-elsewhere"' in inside.text
    # Once the link takes no more, the form is gone (the files stay listed).
    full = (await share(app, owner, inbox, uploads=True, max_files=1))["url"]
    assert (await app.put(f"{full}/uploads/last.txt", content=b"l")).status_code == 201
    done = await app.get(full)
    assert 'id="upload-form"' not in done.text and "last.txt" in done.text


async def test_the_pages_request_form_chooses_a_folder_and_the_list_shows_it(app, tokens):
    owner, other = tokens
    inbox = await folder(app, owner, "Inbox")
    receipts = await folder(app, owner, "Receipts", inbox)
    theirs = await folder(app, other, "Theirs")
    page = await app.get("/requests", headers=bearer(owner))
    assert 'id="request-folder"' in page.text
    assert f'<option value="{receipts}">/Inbox/Receipts/</option>' in page.text
    datastar = {**bearer(owner), "datastar-request": "true"}
    form = {"requestLabel": "Receipts", "requestExpiry": "never", "requestFolder": receipts}
    made = await app.post("/api/requests", json=form, headers=datastar)
    assert made.status_code == 200 and "Copy its link now" in made.text, made.text
    [link] = set(re.findall(r"(/r/[A-Za-z0-9_-]{32})", made.text))
    assert (await app.put(f"{link}/uploads/r.pdf", content=b"%PDF-1.4")).status_code == 201
    assert names(await listing(app, owner, receipts)) == ["r.pdf"]
    listed = (await app.get("/api/requests", headers=bearer(owner))).json()["requests"]
    assert [r["folder_path"] for r in listed] == ["/Inbox/Receipts/"]
    assert "into /Inbox/Receipts/" in (await app.get("/requests", headers=bearer(owner))).text
    # Another account's folder, like a removed one, is refused in words on the page.
    refused = await app.post(
        "/api/requests", json={**form, "requestFolder": theirs}, headers=datastar
    )
    assert refused.status_code == 200 and "That folder is gone" in refused.text


async def test_the_shared_links_list_marks_collections(app, tokens):
    owner, _ = tokens
    inbox = await folder(app, owner, "Inbox")
    sub = await folder(app, owner, "Receipts", inbox)
    made = await share(app, owner, sub, uploads=True, max_files=3)
    await share(app, owner, "root")
    put = await app.put("/uploads/a.txt", content=b"a", headers=bearer(owner))
    r = await app.post(
        "/api/shares", json={"ids": [put.json()["files"][0]["id"]]}, headers=bearer(owner)
    )
    assert r.status_code == 201
    page = (await app.get("/shared", headers=bearer(owner))).text
    assert "folder /Inbox/Receipts/" in page and "takes uploads: 0 of 3 received" in page
    assert "folder /<" in page  # the root's link: all files
    assert "set of files" in page and "1 file<" in page
    assert (await app.delete(f"/api/shares/{made['id']}", headers=bearer(owner))).status_code == 204
    assert "folder /Inbox/Receipts/" not in (await app.get("/shared", headers=bearer(owner))).text


async def open_requests(app: TestClient, token: str) -> set[str]:
    r = await app.get("/api/requests", headers=bearer(token))
    assert r.status_code == 200, r.text
    return {q["id"] for q in r.json()["requests"]}


async def request_into(app: TestClient, token: str, folder_id: str) -> dict:
    r = await app.post(
        "/api/requests", json={"label": "In", "folder": folder_id}, headers=bearer(token)
    )
    assert r.status_code == 201, r.text
    return r.json()["request"]


@pytest.mark.parametrize("how", ["api", "selection"])
async def test_deleting_a_folder_closes_the_requests_into_it_and_ends_their_uploads(
    app, tokens, config, how
):
    owner, _ = tokens
    inbox = await folder(app, owner, "Inbox")
    below = await folder(app, owner, "Receipts", inbox)
    kept = await folder(app, owner, "Kept")
    into_inbox = await request_into(app, owner, inbox)
    into_below = await request_into(app, owner, below)
    into_kept = await request_into(app, owner, kept)
    into_root = await request_into(app, owner, "root")
    link = await share(app, owner, below, uploads=True)
    # Unfinished resumable uploads through a request and through the folder link.
    unfinished = []
    for url in (into_below["url"], link["url"]):
        started = await app.post(
            f"{url}/tus",
            headers={**TUS, "upload-length": "10", "upload-metadata": tus_metadata(filename="t")},
        )
        assert started.status_code == 201, started.text
        upload = started.headers.get("location")
        part = await app.patch(
            upload, content=b"12345", headers={**TUS_OCTETS, "upload-offset": "0"}
        )
        assert part.status_code == 204, part.text
        unfinished.append(upload)
    before = await open_requests(app, owner)
    assert {into_inbox["id"], into_below["id"], into_kept["id"], into_root["id"]} <= before
    if how == "api":
        gone = await app.delete(f"/api/folders/{inbox}", headers=bearer(owner))
    else:
        gone = await app.post(
            "/folders/delete", json={"ids": [], "folders": [inbox]}, headers=bearer(owner)
        )
    assert gone.status_code == 200, gone.text
    after = await open_requests(app, owner)
    assert into_kept["id"] in after and into_root["id"] in after
    assert into_inbox["id"] not in after and into_below["id"] not in after
    # Closed, not forgotten: the request's link says so; the folder link is gone.
    for url in (into_inbox["url"], into_below["url"]):
        r = await app.put(f"{url}/uploads/late.txt", content=b"late")
        assert r.status_code == 410 and "closed" in r.json()["error"], r.text
    assert (await app.put(f"{link['url']}/uploads/late.txt", content=b"late")).status_code in (
        404,
        410,
    )
    # Their unfinished uploads ended at once (their space back), not at expiry.
    for upload in unfinished:
        head = await app.head(upload, headers=TUS)
        assert head.status_code in (404, 410), (upload, head.status_code)
    db = await open_catalog(config)
    try:
        left = await db.fetch_all("SELECT id FROM resumable_uploads WHERE file_id IS NULL", ())
    finally:
        await db.close()
    assert left == []
    # The others still take files.
    assert (await app.put(f"{into_kept['url']}/uploads/k.txt", content=b"k")).status_code == 201
    assert names(await listing(app, owner, kept)) == ["k.txt"]


async def test_the_page_shares_a_folder_with_uploads_and_a_set_of_files(app, tokens):
    owner, _ = tokens
    inbox = await folder(app, owner, "Inbox")
    page = await app.get("/", headers=bearer(owner))
    assert f'data-share-folder="{inbox}"' in page.text
    assert 'data-share-folder="root"' in page.text and "Share selected" in page.text
    inside = await app.get(f"/?folder={inbox}", headers=bearer(owner))
    assert f'data-share-folder="{inbox}" data-share-name="/Inbox/"' in inside.text
    datastar = {**bearer(owner), "datastar-request": "true"}
    form = {
        "shareFile": "",
        "shareFolder": inbox,
        "shareIds": [],
        "shareExpiry": "never",
        "sharePassword": "",
        "shareLimit": "",
        "shareUploads": True,
        "shareMaxFiles": "2",
        "shareMaxMib": "1",
    }
    made = await app.post(f"/api/folders/{inbox}/shares", json=form, headers=datastar)
    assert made.status_code == 200 and "New link to <strong>Inbox" in made.text, made.text
    [link] = set(re.findall(r"(/s/[A-Za-z0-9_-]{20,})", made.text))
    listed = (await app.get("/api/shares", headers=bearer(owner))).json()["shares"]
    [shared] = listed
    assert shared["kind"] == "folder" and shared["max_files"] == 2
    assert shared["max_file_bytes"] == 1024 * 1024 and shared["expires_at"] is None
    assert (await app.put(f"{link}/uploads/a.txt", content=b"a")).status_code == 201
    # A set of files.
    ids = []
    for name in ("x.txt", "y.txt"):
        r = await app.put(f"/uploads/{name}", content=b"x", headers=bearer(owner))
        ids.append(r.json()["files"][0]["id"])
    files_form = {**form, "shareFolder": "", "shareIds": ids, "shareUploads": False}
    made = await app.post("/api/shares", json=files_form, headers=datastar)
    assert made.status_code == 200 and "New link to <strong>2 shared files" in made.text, made.text
    # Refusals are words in the form's slot.
    bad = await app.post(
        f"/api/folders/{inbox}/shares", json={**form, "shareMaxFiles": "many"}, headers=datastar
    )
    assert bad.status_code == 200 and 'id="new-share"' in bad.text and "whole number" in bad.text
    gone = await app.post("/api/shares", json={**files_form, "shareIds": []}, headers=datastar)
    assert gone.status_code == 200 and 'id="new-share"' in gone.text
