"""Share links through Stario's TestClient on the production bootstrap: the owner's
API, the public link (landing page, password, downloads), honest counting, expiry
on a clock the test moves, and that a link reaches its one file and nothing else."""

import asyncio
import base64
import hashlib
import re
import sqlite3
import time
from datetime import datetime
from urllib.parse import urlencode

import psycopg
import pytest
from stario.testing import TestClient
from tests.support.fixtures import (
    SETUP_TOKEN,
    add_account,
    bearer,
    both_stores,
    catalog_dump,
    request_policy,
)

from app.catalog.migrations import MIGRATIONS
from app.config import Config
from app.main import make_bootstrap
from app.shares.store import HOLD_SECONDS

FORM = {"content-type": "application/x-www-form-urlencoded"}
BODY = bytes(range(256)) * 40  # 10,240 bytes
LINK = re.compile(r"/s/[A-Za-z0-9_-]{32}")


class Clock:
    """The wall clock the app sees; tests move it."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def owner_token(config: Config) -> str:
    return (await add_account(config, "owner"))[1]


@pytest.fixture
async def app(config: Config, clock: Clock, owner_token: str):
    """A client with no credentials of its own: owner calls pass `bearer(owner_token)`."""
    async with TestClient(
        make_bootstrap(config, setup_token=SETUP_TOKEN, clock=clock),
        requests=request_policy(config),
        follow_redirects=False,
        base_url=config.public_url,
    ) as c:
        yield c


async def upload(app: TestClient, token: str, body: bytes = BODY, name: str = "data.bin") -> str:
    r = await app.put(f"/uploads/{name}", content=body, headers=bearer(token))
    assert r.status_code == 201, r.text
    return str(r.json()["files"][0]["id"])


async def share(app: TestClient, token: str, file_id: str, **fields: object) -> dict:
    r = await app.post(f"/api/files/{file_id}/shares", json=fields, headers=bearer(token))
    assert r.status_code == 201, r.text
    made: dict = r.json()["share"]
    return made


async def listed(app: TestClient, token: str) -> dict[str, dict]:
    r = await app.get("/api/shares", headers=bearer(token))
    assert r.status_code == 200
    return {s["id"]: s for s in r.json()["shares"]}


async def downloads(app: TestClient, token: str, share_id: str, expected: int) -> int:
    """The link's count once it reaches `expected` (a download is counted just after its
    last byte goes out), then again a moment later, so an extra count would show."""
    deadline = time.monotonic() + 5
    while (await listed(app, token))[share_id]["downloads"] < expected:
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.1)
    count: int = (await listed(app, token))[share_id]["downloads"]
    return count


def basic(password: str) -> dict[str, str]:
    """HTTP Basic with no user name, as `curl -u :PASSWORD` sends it."""
    return {"authorization": "Basic " + base64.b64encode(f":{password}".encode()).decode()}


def iso_seconds(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


# The owner's API ---------------------------------------------------------------------------


async def test_a_link_is_made_with_defaults_and_only_its_hash_is_stored(app, owner_token, config):
    file_id = await upload(app, owner_token)
    r = await app.post(f"/api/files/{file_id}/shares", json={}, headers=bearer(owner_token))
    assert r.status_code == 201
    made = r.json()["share"]
    assert set(made) == {
        "id", "kind", "file_id", "folder", "url", "expires_at", "max_downloads", "downloads",
        "has_password", "created_at",
    }  # fmt: skip
    assert (made["kind"], made["folder"]) == ("file", None)
    assert LINK.fullmatch(made["url"]) and r.headers.get("location") == made["url"]
    token = made["url"].removeprefix("/s/")
    assert len(token) * 6 >= 128  # at least 128 random bits
    assert made["file_id"] == file_id
    assert (made["max_downloads"], made["downloads"], made["has_password"]) == (None, 0, False)
    week = iso_seconds(made["expires_at"]) - iso_seconds(made["created_at"])
    assert abs(week - 7 * 24 * 3600) <= 1
    # An empty body means the same defaults.
    bare = await app.post(f"/api/files/{file_id}/shares", headers=bearer(owner_token))
    assert bare.status_code == 201 and bare.json()["share"]["url"] != made["url"]
    dump = catalog_dump(config)
    assert token not in dump
    assert hashlib.sha256(token.encode()).hexdigest() in dump


async def test_every_field_is_taken(app, owner_token):
    file_id = await upload(app, owner_token)
    made = await share(
        app, owner_token, file_id, expires_in=3600, password="open sesame", max_downloads=3
    )
    assert abs(iso_seconds(made["expires_at"]) - iso_seconds(made["created_at"]) - 3600) <= 1
    assert (made["max_downloads"], made["has_password"]) == (3, True)
    never = await share(app, owner_token, file_id, expires_in=None, password=None)
    assert (never["expires_at"], never["has_password"]) == (None, False)


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"expires_in": "3600"}, "expires_in must be a whole number"),
        ({"expires_in": 1.5}, "expires_in must be a whole number"),
        ({"expires_in": True}, "expires_in must be a whole number"),
        ({"expires_in": 0}, "expires_in must be between 60"),
        ({"expires_in": 10**12}, "expires_in must be between 60"),
        ({"password": 12345678}, "password must be text"),
        ({"password": "short"}, "at least 8 characters"),
        ({"password": "x" * 1025}, "at most 1024 characters"),
        ({"max_downloads": 0}, "max_downloads must be between 1"),
        ({"max_downloads": -1}, "max_downloads must be between 1"),
        ({"max_downloads": "3"}, "max_downloads must be a whole number"),
        ({"max_downloads": 2.5}, "max_downloads must be a whole number"),
        ({"max_downloads": False}, "max_downloads must be a whole number"),
        ({"expire_in": 60}, "unknown field 'expire_in'"),
        ([1, 2], "must be a JSON object"),
    ],
)
async def test_bad_fields_are_400_in_words(app, owner_token, body, words):
    file_id = await upload(app, owner_token)
    r = await app.post(f"/api/files/{file_id}/shares", json=body, headers=bearer(owner_token))
    assert r.status_code == 400
    assert words in r.json()["error"]
    assert await listed(app, owner_token) == {}


async def test_not_json_and_unknown_files_are_refused(app, owner_token, config):
    file_id = await upload(app, owner_token)
    r = await app.post(
        f"/api/files/{file_id}/shares", content=b"{nope", headers=bearer(owner_token)
    )
    assert (r.status_code, r.json()["error"]) == (400, "the body is not valid JSON")
    _, other_token = await add_account(config, "other")
    theirs = await upload(app, other_token)
    for target in (theirs, "A" * 22, "not-an-id"):
        r = await app.post(f"/api/files/{target}/shares", json={}, headers=bearer(owner_token))
        assert (r.status_code, r.json()) == (404, {"error": "no such file"})
    # The API is for accounts only.
    assert (await app.post(f"/api/files/{file_id}/shares", json={})).status_code == 401


async def test_each_account_lists_and_revokes_only_its_own(app, owner_token, config):
    _, other_token = await add_account(config, "other")
    mine = await share(app, owner_token, await upload(app, owner_token))
    theirs = await share(app, other_token, await upload(app, other_token))
    own = await listed(app, owner_token)
    assert list(own) == [mine["id"]]
    # The token is shown only when the link is made.
    assert own[mine["id"]] == {**mine, "url": None, "name": "data.bin"}
    assert list(await listed(app, other_token)) == [theirs["id"]]

    r = await app.delete(f"/api/shares/{theirs['id']}", headers=bearer(owner_token))
    assert (r.status_code, r.json()) == (404, {"error": "no such link"})
    assert (await app.get(theirs["url"])).status_code == 200
    nonsense = await app.delete("/api/shares/nonsense", headers=bearer(owner_token))
    assert nonsense.status_code == 404

    r = await app.delete(f"/api/shares/{mine['id']}", headers=bearer(owner_token))
    assert r.status_code == 204
    assert await listed(app, owner_token) == {}
    again = await app.delete(f"/api/shares/{mine['id']}", headers=bearer(owner_token))
    assert again.status_code == 404
    page = await app.get(mine["url"])
    assert page.status_code == 410 and "revoked" in page.text
    file = await app.get(mine["url"] + "/file")
    assert file.status_code == 410 and "revoked" in file.text


@both_stores
async def test_deleting_the_file_ends_its_links(app, owner_token):
    file_id = await upload(app, owner_token)
    made = [await share(app, owner_token, file_id) for _ in range(2)]
    assert (await app.delete(f"/files/{file_id}", headers=bearer(owner_token))).status_code == 204
    assert await listed(app, owner_token) == {}
    for link in made:
        assert (await app.get(link["url"])).status_code == 404
        assert (await app.get(link["url"] + "/file")).status_code == 404


# The public link ---------------------------------------------------------------------------


async def test_the_landing_page_tells_what_the_link_gives_and_never_counts(app, owner_token):
    file_id = await upload(app, owner_token, name="report.bin")
    made = await share(app, owner_token, file_id, max_downloads=5)
    for _ in range(3):
        page = await app.get(made["url"])
        assert page.status_code == 200
        assert page.headers.get("cache-control") == "private, no-store"
        assert page.headers.get("referrer-policy") == "no-referrer"
        assert "report.bin" in page.text and "10 KiB" in page.text
        assert f'href="{made["url"]}/file?download=1"' in page.text
        assert "5 downloads left" in page.text
    assert (await app.get("/s/" + "A" * 32)).status_code == 404
    assert (await app.get("/s/short")).status_code == 404
    assert await downloads(app, owner_token, made["id"], 0) == 0


async def test_an_inline_image_gets_a_preview_that_never_counts(app, owner_token):
    png = bytes.fromhex("89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489")
    png += bytes.fromhex("0000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082")
    file_id = await upload(app, owner_token, png, "dot.png")
    made = await share(app, owner_token, file_id)
    page = await app.get(made["url"])
    assert f'src="{made["url"]}/file?preview=1"' in page.text
    preview = await app.get(made["url"] + "/file?preview=1")
    assert preview.status_code == 200 and preview.content == png
    assert preview.headers.get("content-type") == "image/png"
    assert await downloads(app, owner_token, made["id"], 0) == 0
    # No preview where the page shows none: a limited link, or a file that is no image.
    limited = await share(app, owner_token, file_id, max_downloads=1)
    assert "preview=1" not in (await app.get(limited["url"])).text
    assert (await app.get(limited["url"] + "/file?preview=1")).status_code == 404
    other = await share(app, owner_token, await upload(app, owner_token))
    assert (await app.get(other["url"] + "/file?preview=1")).status_code == 404


@both_stores
async def test_downloads_count_once_their_last_byte_is_sent(app, owner_token):
    file_id = await upload(app, owner_token)
    made = await share(app, owner_token, file_id)
    url = made["url"] + "/file"
    etag = f'"{hashlib.sha256(BODY).hexdigest()}"'

    # Nothing that stops short of the last byte counts.
    head = await app.head(url)
    assert head.status_code == 200 and head.headers.get("content-length") == str(len(BODY))
    assert (await app.get(url, headers={"if-none-match": etag})).status_code == 304
    first = await app.get(url, headers={"range": "bytes=0-4999"})
    assert first.status_code == 206 and first.content == BODY[:5000]
    assert (await app.head(url, headers={"range": "bytes=5000-"})).status_code == 206
    await app.get(made["url"])
    assert await downloads(app, owner_token, made["id"], 0) == 0

    # A resumed download, in two ranges, counts once: when the second one ends.
    second = await app.get(url, headers={"range": "bytes=5000-", "if-range": etag})
    assert second.status_code == 206 and first.content + second.content == BODY
    assert await downloads(app, owner_token, made["id"], 1) == 1

    # A whole download counts once, with everything a download carries.
    full = await app.get(url + "?download=1")
    assert full.status_code == 200 and full.content == BODY
    assert full.headers.get("etag") == etag
    assert full.headers.get("x-content-type-options") == "nosniff"
    assert full.headers.get("content-security-policy").startswith("sandbox")
    assert full.headers.get("content-disposition").startswith('attachment; filename="data.bin"')
    assert full.headers.get("referrer-policy") == "no-referrer"
    assert await downloads(app, owner_token, made["id"], 2) == 2


async def test_a_download_limit_ends_the_link(app, owner_token):
    made = await share(app, owner_token, await upload(app, owner_token), max_downloads=2)
    url = made["url"] + "/file"
    for n in (1, 2):
        assert (await app.get(url)).content == BODY
        assert await downloads(app, owner_token, made["id"], n) == n
    used_up = await app.get(url)
    assert used_up.status_code == 410
    assert "downloaded as many times as its owner allowed" in used_up.text
    assert (await app.head(url)).status_code == 410
    page = await app.get(made["url"])
    assert page.status_code == 410 and "downloaded as many times" in page.text
    assert await downloads(app, owner_token, made["id"], 2) == 2


async def test_links_expire_by_the_clock(app, owner_token, clock):
    file_id = await upload(app, owner_token)
    hour = await share(app, owner_token, file_id, expires_in=3600)
    week = await share(app, owner_token, file_id)
    never = await share(app, owner_token, file_id, expires_in=None)
    clock.now += 3599
    assert (await app.get(hour["url"] + "/file")).status_code == 200
    clock.now += 1
    for route in ("", "/file"):
        gone = await app.get(hour["url"] + route)
        assert gone.status_code == 410 and "expired" in gone.text
    assert (await app.get(week["url"])).status_code == 200
    clock.now += 7 * 24 * 3600
    assert (await app.get(week["url"])).status_code == 410
    clock.now += 50 * 366 * 24 * 3600
    assert (await app.get(never["url"] + "/file")).content == BODY
    # The owner still sees expired links, so they can tell why one stopped working.
    assert set(await listed(app, owner_token)) == {hour["id"], week["id"], never["id"]}


async def test_a_password_is_asked_by_a_form_or_taken_as_http_basic(app, owner_token):
    made = await share(
        app, owner_token, await upload(app, owner_token, name="secret.bin"), password="open sesame"
    )
    page = await app.get(made["url"])
    assert page.status_code == 200
    assert 'name="password"' in page.text and f'action="{made["url"]}"' in page.text
    assert "secret.bin" not in page.text  # nothing about the file before the password
    url = made["url"] + "/file"
    locked = await app.get(url)
    assert locked.status_code == 401 and locked.headers.get("www-authenticate").startswith("Basic")
    assert BODY not in locked.content
    # A person opening the file link is sent to the form.
    navigate = await app.get(url, headers={"sec-fetch-mode": "navigate"})
    assert (navigate.status_code, navigate.headers.get("location")) == (303, made["url"])

    # Scripts: `curl -u :PASSWORD`.
    assert (await app.get(url, headers=basic("open sesame"))).content == BODY
    assert (await app.get(url, headers=basic("wrong password"))).status_code == 401

    # People: the form, then a cookie for this link's path only.
    wrong = await app.post(made["url"], content=urlencode({"password": "nope"}), headers=FORM)
    assert wrong.status_code == 401 and "Wrong password." in wrong.text
    right = await app.post(
        made["url"], content=urlencode({"password": "open sesame"}), headers=FORM
    )
    assert (right.status_code, right.headers.get("location")) == (303, made["url"])
    cookie = right.headers.get("set-cookie")
    assert f"Path={made['url']}" in cookie and "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie or "samesite=lax" in cookie.lower()
    value = cookie.split(";")[0]
    app.cookies.clear()  # each request below says which cookie it carries
    unlocked = await app.get(url, headers={"cookie": value})
    assert unlocked.status_code == 200 and unlocked.content == BODY
    assert "secret.bin" in (await app.get(made["url"], headers={"cookie": value})).text
    # The cookie opens this link only.
    other = await share(app, owner_token, await upload(app, owner_token), password="open sesame")
    assert (await app.get(other["url"] + "/file", headers={"cookie": value})).status_code == 401
    assert (await app.get(url, headers={"cookie": "stowage_share=" + "0" * 64})).status_code == 401


async def test_wrong_passwords_are_throttled_per_link_and_client(app, owner_token):
    made = await share(app, owner_token, await upload(app, owner_token), password="open sesame")
    for _ in range(5):
        r = await app.post(made["url"], content=urlencode({"password": "guess"}), headers=FORM)
        assert r.status_code == 401
    r = await app.post(made["url"], content=urlencode({"password": "open sesame"}), headers=FORM)
    assert r.status_code == 429 and "Too many wrong passwords" in r.text
    assert int(r.headers.get("retry-after")) > 0
    scripted = await app.get(made["url"] + "/file", headers=basic("open sesame"))
    assert scripted.status_code == 429


# A share reaches its one file and nothing else (copyparty CVE-2025-58753) --------------


async def test_a_link_never_reaches_a_sibling_file_or_the_account(app, owner_token):
    shared = await upload(app, owner_token, b"shared bytes\n", "shared.txt")
    sibling = await upload(app, owner_token, b"SIBLING SECRET\n", "sibling.txt")
    made = await share(app, owner_token, shared, password="open sesame")
    link = made["url"]
    token = link.removeprefix("/s/")
    unlocked = await app.post(link, content=urlencode({"password": "open sesame"}), headers=FORM)
    cookie = {"cookie": unlocked.headers.get("set-cookie").split(";")[0]}
    app.cookies.clear()
    assert (await app.get(link + "/file", headers=cookie)).content == b"shared bytes\n"

    attempts = [
        f"{link}/file?id={sibling}",
        f"{link}/file?file_id={sibling}",
        f"{link}/{sibling}",
        f"{link}/file/{sibling}",
        f"{link}/files/{sibling}",
        f"{link}/file/../{sibling}",
        f"{link}/%2e%2e/files/{sibling}",
        f"{link}%2Ffile%2F..%2F{sibling}",
        f"/s/{sibling}/file",
        f"/s/{sibling}",
        f"/files/{sibling}",
        f"/files/{shared}",
        "/api/files",
        "/api/shares",
        "/live",
        "/",
    ]
    for credentials in (
        cookie,
        {"authorization": f"Bearer {token}"},
        basic("open sesame"),
    ):
        for path in attempts:
            r = await app.get(path, headers=credentials)
            assert b"SIBLING SECRET" not in r.content, path
            if path.startswith(link + "/file?") and r.status_code == 200:
                assert r.content == b"shared bytes\n", path  # a query picks no other file
                continue
            if r.status_code == 308:  # Stario's answer to a path with dot segments
                r = await app.get(r.headers.get("location"), headers=credentials)
                assert b"SIBLING SECRET" not in r.content, path
            assert r.status_code in (303, 401, 404), (path, r.status_code)
            assert b"shared bytes" not in r.content, path
        assert (await app.delete(f"/files/{shared}", headers=credentials)).status_code == 401
        assert (
            await app.post(f"/api/files/{sibling}/shares", json={}, headers=credentials)
        ).status_code == 401
    assert set(await listed(app, owner_token)) == {made["id"]}


# The owner's page ---------------------------------------------------------------------------

IDENTITY = {"accept-encoding": "identity"}
DATASTAR = {"datastar-request": "true"}


async def next_data(events, *, containing: str) -> str:
    async with asyncio.timeout(5):
        while True:
            event = await anext(events)
            if containing in event["data"]:
                return str(event["data"])


async def test_the_page_makes_links_and_repaints_their_counts_live(app, owner_token, config):
    file_id = await upload(app, owner_token, name="holiday.bin")
    page = await app.get("/", headers=bearer(owner_token))
    assert f'href="/files/{file_id}/share" data-share' in page.text
    assert 'id="share-form"' in page.text
    shared = await app.get("/shared", headers=bearer(owner_token))
    assert 'id="shared-links"' in shared.text and "No shared links." in shared.text

    owner = {**bearer(owner_token), **IDENTITY}
    async with app.stream("GET", "/shared/live", headers=owner) as live:
        events = live.iter_events()
        await next_data(events, containing="No shared links.")
        signals = {
            "shareFile": file_id,
            "shareName": "holiday.bin",
            "shareExpiry": "never",
            "sharePassword": "",
            "shareLimit": "2",
        }
        made = await app.post(
            f"/api/files/{file_id}/shares", json=signals, headers={**owner, **DATASTAR}
        )
        assert made.status_code == 200 and "Copy it now" in made.text
        [link] = set(re.findall(r"http://127\.0\.0\.1:8000(/s/[A-Za-z0-9_-]{32})", made.text))
        assert config.public_url == "http://127.0.0.1:8000"
        painted = await next_data(events, containing='id="shares"')
        assert "holiday.bin" in painted and "0 of 2 downloads" in painted
        assert "expires never" in painted

        assert (await app.get(link + "/file")).content == BODY
        painted = await next_data(events, containing="1 of 2 downloads")
        assert "holiday.bin" in painted

        [share_id] = await listed(app, owner_token)
        assert (await app.delete(f"/api/shares/{share_id}", headers=owner)).status_code == 204
        await next_data(events, containing="No shared links.")

    bad = {**signals, "shareLimit": "0"}
    refused = await app.post(
        f"/api/files/{file_id}/shares", json=bad, headers={**owner, **DATASTAR}
    )
    assert refused.status_code == 200
    assert "The download limit must be between 1" in refused.text
    # Beside the field at fault (its words a signal), not in the link's slot.
    assert '"_shareErrorFor":"limit"' in refused.text.replace(" ", "")
    assert '<div id="new-share"></div>' in refused.text


async def test_removing_an_account_with_its_files_ends_its_links(app, owner_token, config):
    from app.accounts.store import account_by_name, remove_account
    from app.catalog.open import open_catalog

    made = await share(app, owner_token, await upload(app, owner_token))
    db = await open_catalog(config)
    try:
        account = await account_by_name(db, "owner")
        assert account is not None
        await remove_account(db, account.id, delete_files=True)
        assert await db.fetch_all("SELECT id FROM shares") == []
    finally:
        await db.close()
    assert (await app.get(made["url"])).status_code == 404


async def test_the_password_form_refuses_other_sites(app, owner_token):
    made = await share(app, owner_token, await upload(app, owner_token), password="open sesame")
    body = urlencode({"password": "open sesame"})
    for header in ({"sec-fetch-site": "cross-site"}, {"origin": "https://evil.example"}):
        r = await app.post(made["url"], content=body, headers={**FORM, **header})
        assert r.status_code == 403 and "set-cookie" not in dict(r.headers.items())
    same = await app.post(
        made["url"], content=body, headers={**FORM, "sec-fetch-site": "same-origin"}
    )
    assert same.status_code == 303


def test_the_rules_give_a_link_its_one_file_to_read_and_nothing_else() -> None:
    from app.access.gate import may_read_file, may_touch_file
    from app.access.principal import SharePrincipal
    from app.shares.store import Share

    link = SharePrincipal(Share("0" * 12, "F" * 22, "alice", None, None, None, 0, None, 0.0))
    assert may_read_file(link, "F" * 22, "alice")
    assert not may_read_file(link, "G" * 22, "alice")  # a sibling of the same owner
    assert not may_read_file(link, "F" * 22, "bob")
    assert not may_read_file(link, "F" * 22, None)
    assert not may_touch_file(link, "alice")  # delete, share again, list: accounts only


async def test_a_catalog_made_before_byte_counting_keeps_its_counts(config, clock, owner_token):
    def started() -> TestClient:
        return TestClient(
            make_bootstrap(config, setup_token=SETUP_TOKEN, clock=clock),
            requests=request_policy(config),
            base_url=config.public_url,
        )

    async with started() as app:
        made = await share(app, owner_token, await upload(app, owner_token), max_downloads=3)
        for n in (1, 2):
            assert (await app.get(made["url"] + "/file")).content == BODY
            assert await downloads(app, owner_token, made["id"], n) == n
    # Back to a catalog of before: links counted whole downloads and had no byte columns
    # (and nothing of the migrations after that one).
    undo_migrations_after(config, next(m for m in MIGRATIONS if m.name == "share_metering"))
    drop = "ALTER TABLE shares DROP COLUMN sent_bytes, DROP COLUMN reserved_bytes"
    drop += ", DROP COLUMN held_until"
    if config.database is None:
        with sqlite3.connect(config.db_path) as conn:
            for column in ("sent_bytes", "reserved_bytes", "held_until"):
                conn.execute(f"ALTER TABLE shares DROP COLUMN {column}")
    else:
        with psycopg.connect(config.database, autocommit=True) as conn:
            conn.execute(drop)
    # ...and its schema version from before the migration that added them.
    metering = next(m.number for m in MIGRATIONS if m.name == "share_metering")
    catalog_write(config, "DELETE FROM schema_version WHERE version >= ?", (metering,))
    # The columns come back, and the two copies already sent count against the limit.
    async with started() as app:
        assert (await listed(app, owner_token))[made["id"]]["downloads"] == 2
        assert (await app.get(made["url"] + "/file")).content == BODY
        assert await downloads(app, owner_token, made["id"], 3) == 3
        assert (await app.get(made["url"] + "/file")).status_code == 410


_MADE_BY = re.compile(
    r"CREATE (?:UNIQUE |OR REPLACE )?(TABLE|INDEX|TRIGGER)(?: IF NOT EXISTS)? (\w+)"
    r"|ALTER TABLE (\w+) ADD COLUMN (\w+)"
)


def undo_migrations_after(config: Config, migration) -> None:
    """Drop what the migrations after `migration` made (triggers, indexes, tables, then
    columns), as if the catalog had never had them."""
    later = [m for m in MIGRATIONS if m.number > migration.number]
    dialect = "sqlite" if config.database is None else "postgres"
    made = [
        found
        for m in later
        for step in m.statements(dialect)
        if isinstance(step, str)
        for found in _MADE_BY.findall(step)
    ]
    order = {"TRIGGER": 0, "INDEX": 1, "TABLE": 2}
    drops = []
    for kind, name, _, _ in sorted((f for f in made if f[0]), key=lambda f: order[f[0]]):
        on = " ON files" if kind == "TRIGGER" and dialect == "postgres" else ""
        drops.append(f"DROP {kind} IF EXISTS {name}{on}")
    drops += [f"ALTER TABLE {t} DROP COLUMN {c}" for _, _, t, c in made if t]
    if dialect == "sqlite":
        with sqlite3.connect(config.db_path) as conn:
            for sql in drops:
                conn.execute(sql)
    else:
        with psycopg.connect(config.database, autocommit=True) as conn:
            for sql in drops:
                if sql.startswith("ALTER"):
                    conn.execute(sql + " CASCADE")  # with the triggers on the column
                else:
                    conn.execute(sql.replace(" ON files", " ON " + _trigger_table(conn, sql)))


def _trigger_table(conn, sql: str) -> str:
    name = sql.split()[4]
    found = conn.execute(
        "SELECT tgrelid::regclass::text FROM pg_trigger WHERE tgname = %s", (name,)
    ).fetchone()
    return found[0] if found else "files"


def catalog_write(config: Config, sql: str, params: tuple[object, ...]) -> None:
    """One statement on the test's catalog, from outside the app (as another node)."""
    if config.database is None:
        with sqlite3.connect(config.db_path) as conn:
            conn.execute(sql, params)
    else:
        with psycopg.connect(config.database, autocommit=True) as conn:
            conn.execute(sql.replace("?", "%s"), params)


async def test_a_hold_nobody_renews_lapses(app, owner_token, config, clock):
    made = await share(app, owner_token, await upload(app, owner_token), max_downloads=1)
    url = made["url"] + "/file"
    # What a node killed mid-download leaves behind: its hold on the whole copy, last
    # renewed just now, never given back.
    catalog_write(
        config,
        "UPDATE shares SET reserved_bytes = ?, held_until = ? WHERE id = ?",
        (len(BODY), clock.now + HOLD_SECONDS, made["id"]),
    )
    held = await app.get(url)
    assert held.status_code == 409 and held.headers.get("retry-after") == "10"
    assert "under way" in held.text
    # Nobody renews it: once it has lapsed, the link gives its one copy again.
    clock.now += HOLD_SECONDS + 1
    whole = await app.get(url)
    assert whole.status_code == 200 and whole.content == BODY
    assert await downloads(app, owner_token, made["id"], 1) == 1
    assert (await app.get(url)).status_code == 410
