"""File requests through Stario's TestClient on the production bootstrap: the owner's
API, the public page, uploads through every transport under the request's limits
and the owner's quota, expiry on a clock the test moves, closing, and that a request
link gives upload only."""

import asyncio
import base64
import hashlib
import re
import sqlite3
import time
from datetime import datetime

import pytest
from stario.testing import TestClient
from tests.support.fixtures import (
    SETUP_TOKEN,
    add_account,
    bearer,
    catalog_dump,
    request_policy,
    stored_blobs,
    unfinished_resumable,
)

from app.config import Config
from app.main import make_bootstrap

LINK = re.compile(r"/r/[A-Za-z0-9_-]{32}")
DATASTAR = {"datastar-request": "true"}
IDENTITY = {"accept-encoding": "identity"}
UPLOADED_KEYS = {"name", "size", "sha256", "mime", "created_at"}


class Clock:
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


async def make(app: TestClient, token: str, **fields: object) -> dict:
    fields.setdefault("label", "Photos from the trip")
    r = await app.post("/api/requests", json=fields, headers=bearer(token))
    assert r.status_code == 201, r.text
    made: dict = r.json()["request"]
    return made


async def listed(app: TestClient, token: str) -> dict[str, dict]:
    r = await app.get("/api/requests", headers=bearer(token))
    assert r.status_code == 200
    return {q["id"]: q for q in r.json()["requests"]}


async def owner_files(app: TestClient, token: str) -> list[dict]:
    r = await app.get("/api/files", headers=bearer(token))
    assert r.status_code == 200
    files: list[dict] = r.json()["files"]
    return files


def iso_seconds(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def multipart(*files: tuple[str, bytes]) -> tuple[bytes, str]:
    boundary = "requestboundary1234"
    body = b""
    for name, content in files:
        body += (
            (
                f"--{boundary}\r\n"
                f'Content-Disposition: form-data; name="file"; filename="{name}"\r\n'
                "Content-Type: application/octet-stream\r\n\r\n"
            ).encode()
            + content
            + b"\r\n"
        )
    body += f"--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def signals(*files: tuple[str, bytes]) -> dict:
    return {
        "files": [
            {"name": name, "contents": base64.b64encode(content).decode(), "mime": "text/plain"}
            for name, content in files
        ]
    }


# The owner's API ---------------------------------------------------------------------------


async def test_a_request_is_made_with_defaults_and_only_its_hash_is_stored(
    app, owner_token, config
):
    r = await app.post(
        "/api/requests", json={"label": "  Tax  papers "}, headers=bearer(owner_token)
    )
    assert r.status_code == 201, r.text
    made = r.json()["request"]
    assert set(made) == {
        "id", "url", "label", "expires_at", "max_files", "max_file_bytes", "files", "created_at",
        "uploads", "folder", "folder_path",
    }  # fmt: skip
    assert made["uploads"] == []
    assert (made["folder"], made["folder_path"]) == ("root", "/")
    assert LINK.fullmatch(made["url"]) and r.headers.get("location") == made["url"]
    token = made["url"].removeprefix("/r/")
    assert len(token) * 6 >= 128  # at least 128 random bits
    assert made["label"] == "Tax papers"
    assert (made["max_files"], made["max_file_bytes"], made["files"]) == (None, None, 0)
    week = iso_seconds(made["expires_at"]) - iso_seconds(made["created_at"])
    assert abs(week - 7 * 24 * 3600) <= 1
    dump = catalog_dump(config)
    assert token not in dump
    assert hashlib.sha256(token.encode()).hexdigest() in dump
    # The list never shows a URL: the catalog has no token.
    assert (await listed(app, owner_token))[made["id"]]["url"] is None


async def test_every_field_is_taken(app, owner_token, clock):
    made = await make(app, owner_token, expires_in=3600, max_files=3, max_file_bytes=1000)
    assert (made["max_files"], made["max_file_bytes"]) == (3, 1000)
    assert abs(iso_seconds(made["expires_at"]) - (clock.now + 3600)) <= 1
    never = await make(app, owner_token, expires_in=None)
    assert never["expires_at"] is None
    assert set(await listed(app, owner_token)) == {made["id"], never["id"]}


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({}, "label is missing"),
        ({"label": ""}, "label must not be empty"),
        ({"label": "   "}, "label must not be empty"),
        ({"label": 5}, "label must be text"),
        ({"label": "x" * 201}, "at most 200 characters"),
        ({"label": "a\u0000b"}, "control characters"),
        ({"label": "a", "expires_in": 59}, "expires_in must be between 60"),
        ({"label": "a", "expires_in": "1h"}, "expires_in must be a whole number"),
        ({"label": "a", "expires_in": True}, "expires_in must be a whole number"),
        ({"label": "a", "expires_in": 10**12}, "expires_in must be between 60"),
        ({"label": "a", "max_files": 0}, "max_files must be between 1"),
        ({"label": "a", "max_files": 1.5}, "max_files must be a whole number"),
        ({"label": "a", "max_files": "3"}, "max_files must be a whole number"),
        ({"label": "a", "max_file_bytes": 0}, "max_file_bytes must be between 1"),
        ({"label": "a", "max_file_bytes": 2**62}, "the most this server takes"),
        ({"label": "a", "max_file_bytes": False}, "max_file_bytes must be a whole number"),
        ({"label": "a", "files": 3}, "unknown field 'files'"),
        ([1, 2], "must be a JSON object"),
    ],
)
async def test_bad_fields_are_400_in_words(app, owner_token, body, words):
    r = await app.post("/api/requests", json=body, headers=bearer(owner_token))
    assert r.status_code == 400
    assert words in r.json()["error"], r.json()
    assert await listed(app, owner_token) == {}


async def test_not_json_and_empty_bodies_are_refused(app, owner_token):
    for content in (b"", b"{not json"):
        r = await app.post("/api/requests", content=content, headers=bearer(owner_token))
        assert r.status_code == 400 and r.json()["error"]


async def test_each_account_lists_and_closes_only_its_own(app, owner_token, config):
    _, other = await add_account(config, "other")
    mine = await make(app, owner_token)
    theirs = await make(app, other, label="Theirs")
    assert set(await listed(app, owner_token)) == {mine["id"]}
    assert set(await listed(app, other)) == {theirs["id"]}
    refused = await app.delete(f"/api/requests/{theirs['id']}", headers=bearer(owner_token))
    assert refused.status_code == 404 and refused.json() == {"error": "no such request"}
    assert (
        await app.delete("/api/requests/nonsense", headers=bearer(owner_token))
    ).status_code == 404
    assert (
        await app.delete(f"/api/requests/{mine['id']}", headers=bearer(owner_token))
    ).status_code == 204
    again = await app.delete(f"/api/requests/{mine['id']}", headers=bearer(owner_token))
    assert again.status_code == 404
    assert await listed(app, owner_token) == {}
    # The API needs an account.
    assert (await app.get("/api/requests")).status_code == 401
    assert (await app.post("/api/requests", json={"label": "x"})).status_code == 401


# The link -------------------------------------------------------------------------------------


async def test_the_page_shows_the_label_limits_and_owner_and_nothing_else(app, owner_token):
    secret = await app.put("/uploads/owners-secret.txt", content=b"x", headers=bearer(owner_token))
    assert secret.status_code == 201
    made = await make(app, owner_token, label="Scans <for> the form", max_files=5,
                      max_file_bytes=2 * 1024 * 1024)  # fmt: skip
    page = await app.get(made["url"], headers=bearer(owner_token))  # credentials are ignored
    assert page.status_code == 200
    text = page.text
    assert "Scans &lt;for&gt; the form" in text and "<for>" not in text
    assert "owner" in text and "5 more files (of 5)" in text and "up to 2 MiB each" in text
    assert f"{made['url']}/uploads" in text  # the form posts to the request's URL
    assert 'id="picker"' in text and "drop them here" in text
    assert "owners-secret" not in text and "/live" not in text and "/files/" not in text
    assert "nonce-" in page.headers.get("content-security-policy")
    assert page.headers.get("referrer-policy") == "no-referrer"
    assert page.headers.get("cache-control") == "private, no-store"
    assert page.headers.get("set-cookie") is None
    unknown = await app.get("/r/" + "A" * 32)
    assert unknown.status_code == 404 and "No such request" in unknown.text


async def test_uploads_through_every_transport_land_with_the_owner(app, owner_token):
    made = await make(app, owner_token)
    url = made["url"]
    put = await app.put(f"{url}/uploads/notes.txt", content=b"hello\n")
    raw = await app.post(f"{url}/uploads?name=raw.bin", content=b"raw bytes")
    body, ctype = multipart(("a.txt", b"first"), ("b.txt", b"second"))
    form = await app.post(f"{url}/uploads", content=body, headers={"content-type": ctype})
    sig = await app.post(f"{url}/uploads", json=signals(("s.txt", b"signalled")))
    unnamed = await app.put(f"{url}/uploads?name=q.txt", content=b"by query")
    nameless = await app.put(f"{url}/uploads", content=b"no name")
    assert nameless.status_code == 400
    assert nameless.json()["error"].endswith(f"or PUT it to {url}/uploads/NAME")
    for r in (put, raw, form, sig, unnamed):
        assert r.status_code == 201, r.text
        assert r.headers.get("location") is None
        for entry in r.json()["files"]:
            assert set(entry) == UPLOADED_KEYS  # no id, no url
    assert put.json()["files"][0] == {
        **put.json()["files"][0],
        "name": "notes.txt", "size": 6, "sha256": hashlib.sha256(b"hello\n").hexdigest(),
    }  # fmt: skip
    assert [f["name"] for f in form.json()["files"]] == ["a.txt", "b.txt"]
    names = {f["name"] for f in await owner_files(app, owner_token)}
    assert names == {"notes.txt", "raw.bin", "a.txt", "b.txt", "s.txt", "q.txt"}
    assert (await listed(app, owner_token))[made["id"]]["files"] == 6
    # Datastar: the uploader's own results, as a patch without links.
    patched = await app.post(
        f"{url}/uploads", json=signals(("d.txt", b"datastar")), headers=DATASTAR
    )
    assert patched.status_code == 200 and "d.txt" in patched.text
    assert "/files/" not in patched.text and "href" not in patched.text


async def test_the_uploader_never_gets_an_id(app, owner_token):
    made = await make(app, owner_token)
    r = await app.put(f"{made['url']}/uploads/x.bin", content=b"x" * 100)
    [stored] = await owner_files(app, owner_token)
    assert stored["id"] not in r.text and "/files/" not in r.text
    assert set(r.json()) == {"files", "fields"}


async def test_max_files_counts_across_uploads_and_transports(app, owner_token):
    made = await make(app, owner_token, max_files=3)
    url = made["url"]
    assert (await app.put(f"{url}/uploads/1.txt", content=b"1")).status_code == 201
    body, ctype = multipart(("2.txt", b"2"), ("3.txt", b"3"), ("4.txt", b"4"))
    over = await app.post(f"{url}/uploads", content=body, headers={"content-type": ctype})
    assert over.status_code == 413 and "takes 2 more files" in over.json()["error"]
    too_many = await app.post(f"{url}/uploads", json=signals(("a", b"a"), ("b", b"b"), ("c", b"c")))
    assert too_many.status_code == 413 and "takes 2 more files" in too_many.json()["error"]
    body, ctype = multipart(("2.txt", b"2"), ("3.txt", b"3"))
    assert (
        await app.post(f"{url}/uploads", content=body, headers={"content-type": ctype})
    ).status_code == 201
    full = await app.put(f"{url}/uploads/5.txt", content=b"5")
    assert full.status_code == 410
    assert full.json()["error"] == (
        "this request takes no more files: it has received as many files as its owner asked for"
    )
    assert len(await owner_files(app, owner_token)) == 3
    page = await app.get(url)
    assert page.status_code == 410 and "as many files as its owner asked for" in page.text
    # Deleting a received file does not reopen it: the count is of files received.
    first = (await owner_files(app, owner_token))[0]["id"]
    assert (await app.delete(f"/files/{first}", headers=bearer(owner_token))).status_code == 204
    assert (await app.put(f"{url}/uploads/6.txt", content=b"6")).status_code == 410


async def test_concurrent_uploads_never_pass_max_files(app, owner_token):
    made = await make(app, owner_token, max_files=2)
    url = made["url"]
    answers = await asyncio.gather(
        *[app.put(f"{url}/uploads/{n}.bin", content=b"z" * 300_000) for n in range(6)]
    )
    statuses = sorted(r.status_code for r in answers)
    assert statuses.count(201) <= 2
    assert len(await owner_files(app, owner_token)) == statuses.count(201)
    assert all(s in (201, 409, 410) for s in statuses), statuses


async def test_the_per_file_cap_refuses_before_reading_a_declared_body(app, owner_token):
    made = await make(app, owner_token, max_file_bytes=1000)
    url = made["url"]
    ok = await app.put(f"{url}/uploads/small.bin", content=b"s" * 1000)
    assert ok.status_code == 201
    big = await app.put(f"{url}/uploads/big.bin", content=b"b" * 1001)
    assert big.status_code == 413
    assert big.json()["error"] == "big.bin is larger than the 1000 bytes limit"
    assert big.headers.get("connection") == "close"
    body, ctype = multipart(("ok.bin", b"o" * 10), ("big.bin", b"b" * 5000))
    form = await app.post(f"{url}/uploads", content=body, headers={"content-type": ctype})
    assert form.status_code == 413 and "big.bin is larger" in form.json()["error"]
    sig = await app.post(f"{url}/uploads", json=signals(("sig.bin", b"b" * 1001)))
    assert sig.status_code == 413
    assert [f["name"] for f in await owner_files(app, owner_token)] == ["small.bin"]
    assert (await listed(app, owner_token))[made["id"]]["files"] == 1


async def test_uploads_count_against_the_owner_quota(app, config):
    _, token = await add_account(config, "tight", quota_kind="bytes", quota_bytes=1500)
    made = await make(app, token)
    url = made["url"]
    assert (await app.put(f"{url}/uploads/a.bin", content=b"a" * 1000)).status_code == 201
    over = await app.put(f"{url}/uploads/b.bin", content=b"b" * 1000)
    assert over.status_code == 413
    assert over.json()["error"].startswith("over the recipient's quota: 1000 bytes of 1.5 KiB")
    body, ctype = multipart(("c.bin", b"c" * 1000))
    assert (
        await app.post(f"{url}/uploads", content=body, headers={"content-type": ctype})
    ).status_code == 413
    assert [f["name"] for f in await owner_files(app, token)] == ["a.bin"]


async def test_requests_expire_by_the_clock(app, owner_token, clock):
    made = await make(app, owner_token, expires_in=3600)
    url = made["url"]
    assert (await app.put(f"{url}/uploads/early.txt", content=b"x")).status_code == 201
    clock.now += 3601
    late = await app.put(f"{url}/uploads/late.txt", content=b"x")
    assert late.status_code == 410
    assert late.json()["error"] == "this request takes no more files: it expired"
    page = await app.get(url)
    assert page.status_code == 410 and "it expired" in page.text
    never = await make(app, owner_token, expires_in=None)
    clock.now += 20 * 366 * 24 * 3600
    assert (await app.put(f"{never['url']}/uploads/x.txt", content=b"x")).status_code == 201


async def test_a_closed_request_is_410_in_words(app, owner_token):
    made = await make(app, owner_token)
    url = made["url"]
    assert (
        await app.delete(f"/api/requests/{made['id']}", headers=bearer(owner_token))
    ).status_code == 204
    for r in (
        await app.put(f"{url}/uploads/x.txt", content=b"x"),
        await app.post(f"{url}/uploads", json=signals(("x", b"x"))),
    ):
        assert r.status_code == 410
        assert r.json()["error"] == "this request takes no more files: its owner closed it"
    page = await app.get(url)
    assert page.status_code == 410 and "its owner closed it" in page.text
    patched = await app.post(f"{url}/uploads", json=signals(("x", b"x")), headers=DATASTAR)
    assert patched.status_code == 200 and "its owner closed it" in patched.text
    assert await owner_files(app, owner_token) == []
    unknown = await app.put("/r/" + "B" * 32 + "/uploads/x.txt", content=b"x")
    assert unknown.status_code == 404 and unknown.json() == {"error": "no such request"}


# Security ---------------------------------------------------------------------------------------


def basic(secret: str) -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(f":{secret}".encode()).decode()}


async def test_a_request_link_gives_upload_only(app, owner_token):
    secret = await app.put(
        "/uploads/secret.txt", content=b"OWNER SECRET\n", headers=bearer(owner_token)
    )
    secret_id = secret.json()["files"][0]["id"]
    made = await make(app, owner_token)
    url = made["url"]
    token = url.removeprefix("/r/")
    sent = await app.put(f"{url}/uploads/sent.txt", content=b"sent bytes\n")
    assert sent.status_code == 201
    sent_id = next(f["id"] for f in await owner_files(app, owner_token) if f["name"] == "sent.txt")
    attempts = [
        f"{url}/uploads",
        f"{url}/uploads/sent.txt",
        f"{url}/files",
        f"{url}/files/{secret_id}",
        f"{url}/{secret_id}",
        f"{url}/../files/{secret_id}",
        f"{url}/%2e%2e/files/{secret_id}",
        f"/files/{secret_id}",
        f"/files/{sent_id}",
        "/api/files",
        "/api/requests",
        "/api/shares",
        "/live",
        "/shared",
        "/requests",
        "/account",
        "/admin",
        f"/s/{token}",
        f"/s/{token}/file",
        "/",
    ]
    for credentials in ({}, {"authorization": f"Bearer {token}"}, basic(token)):
        for path in attempts:
            r = await app.get(path, headers=credentials)
            if r.status_code == 308:  # Stario's answer to a path with dot segments
                r = await app.get(r.headers.get("location"), headers=credentials)
            assert b"OWNER SECRET" not in r.content and b"sent bytes" not in r.content, path
            assert secret_id not in r.text and sent_id not in r.text, path
            assert r.status_code in (303, 401, 404, 405), (path, r.status_code)
        for method, path in (
            ("DELETE", f"/files/{sent_id}"),
            ("DELETE", f"/api/requests/{made['id']}"),
            ("POST", "/api/requests"),
            ("PUT", "/uploads/x.txt"),
            ("POST", f"/api/files/{sent_id}/shares"),
        ):
            r = await app.request(method, path, headers=credentials, json={"label": "x"})
            assert r.status_code == 401, (method, path, r.status_code)
    # The owner's own credentials on a request route act for the request, not the owner.
    with_owner = await app.put(
        f"{url}/uploads/again.txt", content=b"x", headers=bearer(owner_token)
    )
    assert with_owner.status_code == 201 and set(with_owner.json()["files"][0]) == UPLOADED_KEYS
    assert len(await owner_files(app, owner_token)) == 3


async def test_the_public_posts_refuse_other_sites(app, owner_token):
    made = await make(app, owner_token)
    url = made["url"]
    for header in ({"sec-fetch-site": "cross-site"}, {"origin": "https://evil.example"}):
        assert (
            await app.put(f"{url}/uploads/x.txt", content=b"x", headers=header)
        ).status_code == 403
        r = await app.post(f"{url}/uploads", json=signals(("x", b"x")), headers=header)
        assert r.status_code == 403
    assert await owner_files(app, owner_token) == []
    same = await app.put(
        f"{url}/uploads/x.txt", content=b"x", headers={"sec-fetch-site": "same-origin"}
    )
    assert same.status_code == 201


def test_tokens_are_compared_in_constant_time(monkeypatch) -> None:
    import hmac

    from app.requests import store

    calls = []
    real = hmac.compare_digest
    monkeypatch.setattr(store.hmac, "compare_digest", lambda a, b: calls.append(1) or real(a, b))

    class OneRow:
        def read_one(self, sql, params):
            return (params[0], "0" * 12, "alice", "label", None, None, None, 0, 0.0, None, "")

    found = store.resolve_request(OneRow(), "C" * 32)  # type: ignore[arg-type]
    assert found is not None and found.owner == "alice" and calls == [1]
    assert store.resolve_request(OneRow(), "short") is None  # type: ignore[arg-type]


def test_the_rules_give_a_request_upload_and_nothing_else() -> None:
    from app.access.gate import may_read_file, may_touch_file, may_upload_via
    from app.access.principal import AccountPrincipal, RequestPrincipal
    from app.requests.store import FileRequest

    link = RequestPrincipal(FileRequest("0" * 12, "alice", "x", None, None, None, 0, 0.0, None))
    assert may_upload_via(link) == "alice"
    assert not may_touch_file(link, "alice")
    assert not may_read_file(link, "F" * 22, "alice")
    account = AccountPrincipal.__new__(AccountPrincipal)
    assert may_upload_via(account) is None


# The owner's page ---------------------------------------------------------------------------


async def next_data(events, *, containing: str) -> str:
    async with asyncio.timeout(5):
        while True:
            event = await anext(events)
            if containing in event["data"]:
                return str(event["data"])


async def test_the_page_makes_requests_and_shows_arrivals_live(app, owner_token, config):
    page = await app.get("/requests", headers=bearer(owner_token))
    assert 'id="file-requests"' in page.text and "No file requests." in page.text
    owner = {**bearer(owner_token), **IDENTITY}
    async with app.stream("GET", "/requests/live", headers=owner) as live:
        events = live.iter_events()
        await next_data(events, containing="No file requests.")
        form = {
            "requestLabel": "Receipts",
            "requestExpiry": "never",
            "requestMaxFiles": "4",
            "requestMaxMib": "2",
        }
        made = await app.post("/api/requests", json=form, headers={**owner, **DATASTAR})
        assert made.status_code == 200 and "Copy its link now" in made.text
        [link] = set(re.findall(r"http://127\.0\.0\.1:8000(/r/[A-Za-z0-9_-]{32})", made.text))
        painted = await next_data(events, containing='id="requests"')
        assert "Receipts" in painted and "0 of 4 files received" in painted
        assert "up to 2 MiB each" in painted

        assert (
            await app.put(f"{link}/uploads/receipt.pdf", content=b"%PDF-1.4")
        ).status_code == 201
        await next_data(events, containing="1 of 4 files received")

        [request_id] = await listed(app, owner_token)
        assert (await app.delete(f"/api/requests/{request_id}", headers=owner)).status_code == 204
        await next_data(events, containing="No file requests.")

    bad = {**form, "requestMaxFiles": "0"}
    refused = await app.post("/api/requests", json=bad, headers={**owner, **DATASTAR})
    assert refused.status_code == 200 and "Max_files must be between 1" in refused.text
    home = await app.get("/", headers=bearer(owner_token))
    assert "via Receipts" in home.text


async def test_removing_the_account_removes_its_requests(app, owner_token, config):
    from app.accounts.store import account_by_name, remove_account
    from app.catalog.open import open_catalog

    made = await make(app, owner_token)
    db = await open_catalog(config)
    try:
        account = await account_by_name(db, "owner")
        assert account is not None
        await remove_account(db, account.id, delete_files=True)
        assert await db.fetch_all("SELECT id FROM requests") == []
    finally:
        await db.close()
    assert (await app.put(f"{made['url']}/uploads/x.txt", content=b"x")).status_code == 404


@pytest.mark.parametrize("config", ["sqlite"], indirect=True)
async def test_a_catalog_from_before_requests_gains_the_column(config):
    """An existing files table gets `request_id` at open (CREATE TABLE IF NOT EXISTS
    alone would never add it), and keeps its rows."""
    from app.catalog.open import open_catalog

    config.db_path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(config.db_path) as old:
        old.execute(
            "CREATE TABLE files (id TEXT PRIMARY KEY, name TEXT NOT NULL, size INTEGER NOT NULL,"
            " sha256 TEXT NOT NULL, mime TEXT NOT NULL, declared_mime TEXT,"
            " created_at TEXT NOT NULL, owner TEXT)"
        )
        old.execute(
            "INSERT INTO files VALUES ('f1', 'old.txt', 1, 'x', 'text/plain', NULL, 't', NULL)"
        )
    for _ in range(2):  # and opening again changes nothing
        db = await open_catalog(config)
        try:
            columns = [row[1] for row in await db.fetch_all("PRAGMA table_info(files)")]
            assert columns.count("request_id") == 1
            assert await db.fetch_all("SELECT name, request_id FROM files") == [("old.txt", None)]
        finally:
            await db.close()


# Unfinished (resumable) uploads through a link -----------------------------------------

TUS = {"tus-resumable": "1.0.0"}
TUS_OCTETS = {**TUS, "content-type": "application/offset+octet-stream"}


def tus_metadata(name: str) -> str:
    return "filename " + base64.b64encode(name.encode()).decode()


async def tus_create(app: TestClient, link: str, length: int, name: str = "big.bin", **headers):
    """A header-only tus creation through the link (the answer, whatever it is)."""
    sent = {**TUS, "upload-length": str(length), "upload-metadata": tus_metadata(name), **headers}
    # Without the slash: the TestClient does not follow the 308 that the real server
    # never sends to a first request (app/server/early_answers.py).
    return await app.post(f"{link}/tus", headers=sent)


async def draft_create(app: TestClient, link: str, length: int, name: str = "draft.bin"):
    """A header-only IETF-draft creation through the link."""
    return await app.post(
        f"{link}/tus",
        headers={
            "upload-draft-interop-version": "8",
            "upload-complete": "?0",
            "upload-length": str(length),
            "content-disposition": f'attachment; filename="{name}"',
        },
    )


async def tus_patch(app: TestClient, url: str, offset: int, body: bytes):
    return await app.request(
        "PATCH", url, content=body, headers={**TUS_OCTETS, "upload-offset": str(offset)}
    )


async def held_rows(config: Config) -> list[tuple]:
    """The catalog's unfinished resumable uploads: (name, reserved)."""
    from app.catalog.open import open_catalog

    db = await open_catalog(config)
    try:
        rows = await db.fetch_all(
            "SELECT name, reserved FROM resumable_uploads WHERE file_id IS NULL ORDER BY name"
        )
        return [tuple(row) for row in rows]
    finally:
        await db.close()


async def test_unfinished_uploads_count_toward_max_files(app, owner_token):
    """Finished files plus unfinished uploads never pass max_files, whatever the
    transport: a header-only creation holds its place until it finishes or ends."""
    made = await make(app, owner_token, max_files=2)
    url = made["url"]
    first = await tus_create(app, url, 6, "first.bin")
    assert first.status_code == 201, first.text
    assert (await app.put(f"{url}/uploads/one.txt", content=b"1")).status_code == 201
    # One file received, one on its way: the last place is taken, for every transport.
    for refused in (
        await tus_create(app, url, 6, "second.bin"),
        await draft_create(app, url, 6),
        await app.put(f"{url}/uploads/two.txt", content=b"2"),
    ):
        assert refused.status_code == 409, refused.text
        assert "last files are being uploaded now" in refused.json()["error"]
    upload = first.headers.get("location")
    assert (await tus_patch(app, upload, 0, b"abcdef")).status_code == 204
    assert sorted(f["name"] for f in await owner_files(app, owner_token)) == [
        "first.bin", "one.txt",
    ]  # fmt: skip
    full = await tus_create(app, url, 6, "third.bin")
    assert full.status_code == 410 and "as many files as" in full.json()["error"]


async def test_the_last_place_goes_to_one_of_concurrent_creations(app, owner_token):
    """A creation holds its place in memory until its row is written, then the row
    holds it: concurrent creations never pass max_files between the two."""
    made = await make(app, owner_token, max_files=1)
    answers = await asyncio.gather(
        *[tus_create(app, made["url"], 10, f"{n}.bin") for n in range(4)],
        *[draft_create(app, made["url"], 10, f"d{n}.bin") for n in range(4)],
    )
    statuses = sorted(r.status_code for r in answers)
    assert statuses == [201] + [409] * 7, statuses


async def test_a_link_holds_only_a_few_unfinished_uploads(app, owner_token, config):
    MAX_UNFINISHED_PER_REQUEST = 8
    made = await make(app, owner_token)
    url = made["url"]
    created = []
    for n in range(MAX_UNFINISHED_PER_REQUEST):
        # tus and the draft, whole uploads and the partials of a concatenation alike.
        if n % 3 == 0:
            answer = await draft_create(app, url, 1000, f"{n}.bin")
        elif n % 3 == 1:
            answer = await tus_create(app, url, 1000, f"{n}.bin", **{"upload-concat": "partial"})
        else:
            answer = await tus_create(app, url, 1000, f"{n}.bin")
        assert answer.status_code == 201, answer.text
        created.append(answer.headers.get("location"))
    tus_refused = await tus_create(app, url, 1000)
    # It is about now, not about the file: it says when to try again (the page then
    # offers Retry).
    assert tus_refused.headers.get("retry-after") == "30"
    for refused in (tus_refused, await draft_create(app, url, 1000)):
        assert refused.status_code == 409, refused.text
        assert refused.json()["error"] == (
            f"this request already holds {MAX_UNFINISHED_PER_REQUEST} unfinished uploads,"
            " the most one link may: finish one of them first, or wait until one is"
            " cancelled or expires"
        )
    assert len(await held_rows(config)) == MAX_UNFINISHED_PER_REQUEST
    # Single-request uploads still go through, and a finished upload frees its place.
    assert (await app.put(f"{url}/uploads/small.txt", content=b"s")).status_code == 201
    assert (await tus_patch(app, created[2], 0, b"x" * 1000)).status_code == 204
    assert (await tus_create(app, url, 1000, "next.bin")).status_code == 201
    assert (await tus_create(app, url, 1000, "again.bin")).status_code == 409
    # Another request's link has places of its own.
    other = await make(app, owner_token, label="Other")
    assert (await tus_create(app, other["url"], 1000)).status_code == 201
    from app.features.requests import handlers

    assert handlers.MAX_UNFINISHED_PER_REQUEST == MAX_UNFINISHED_PER_REQUEST


async def test_closing_a_request_ends_its_unfinished_uploads_and_frees_the_quota(app, config):
    """One header-only creation holds the owner's whole quota; closing the request gives
    it back at once, and the upload's URL answers no more."""
    _, token = await add_account(config, "tight", quota_kind="bytes", quota_bytes=1000)
    made = await make(app, token)
    url = made["url"]
    held = await tus_create(app, url, 1000)
    assert held.status_code == 201, held.text
    upload = held.headers.get("location")
    assert (await tus_patch(app, upload, 0, b"x" * 400)).status_code == 204
    own = await app.put("/uploads/mine.txt", content=b"m" * 10, headers=bearer(token))
    assert own.status_code == 413 and "unfinished" in own.json()["error"]
    closed = await app.delete(f"/api/requests/{made['id']}", headers=bearer(token))
    assert closed.status_code == 204
    assert await held_rows(config) == []
    assert await unfinished_resumable(config) == 0
    own = await app.put("/uploads/mine.txt", content=b"m" * 10, headers=bearer(token))
    assert own.status_code == 201, own.text
    answer = await app.request("HEAD", upload, headers=TUS)
    assert answer.status_code == 410


async def test_a_restart_ends_uploads_of_requests_that_take_no_more_files(
    config, clock, owner_token
):
    """A close that did not end its uploads (the process stopped in between) and an
    expired request's uploads hold nothing once the server starts again."""
    from app.catalog.open import open_catalog

    def client() -> TestClient:
        return TestClient(
            make_bootstrap(config, setup_token=SETUP_TOKEN, clock=clock),
            requests=request_policy(config),
            base_url=config.public_url,
        )

    async with client() as app:
        closed = await make(app, owner_token, label="Closed")
        expiring = await make(app, owner_token, label="Expiring", expires_in=3600)
        lasting = await make(app, owner_token, label="Open")
        for request in (closed, expiring, lasting):
            answer = await tus_create(app, request["url"], 100, f"{request['label']}.bin")
            assert answer.status_code == 201, answer.text
    db = await open_catalog(config)
    try:
        async with db.transaction() as conn:
            await conn.execute(
                "UPDATE requests SET closed_at = ? WHERE id = ?", (clock.now, closed["id"])
            )
    finally:
        await db.close()
    clock.now += 7200
    async with client() as app:
        # The open request's upload is resumable across restarts, as any other.
        assert await held_rows(config) == [("Open.bin", 100)]
        assert await unfinished_resumable(config) == 1
        shown = await listed(app, owner_token)
        assert [u["name"] for u in shown[lasting["id"]]["uploads"]] == ["Open.bin"]


async def test_the_owner_sees_and_cancels_unfinished_uploads(app, owner_token, config):
    made = await make(app, owner_token, label="Footage", max_files=1)
    url = made["url"]
    created = await tus_create(app, url, 6, "clip.mov")
    upload = created.headers.get("location")
    assert (await tus_patch(app, upload, 0, b"abc")).status_code == 204
    [shown] = (await listed(app, owner_token))[made["id"]]["uploads"]
    upload_id = upload.rsplit("/", 1)[1]
    assert (shown["id"], shown["name"], shown["offset"], shown["length"]) == (
        upload_id, "clip.mov", 3, 6,
    )  # fmt: skip
    assert set(shown) == {"id", "name", "offset", "length", "created_at", "expires_at"}
    page = (await app.get("/requests", headers=bearer(owner_token))).text
    cancel = f"/api/requests/{made['id']}/uploads/{upload_id}"
    assert "clip.mov" in page and "3 bytes of 6 bytes so far" in page
    # The screen's Cancel is a plain form (lane A); the API's DELETE is what scripts use.
    assert f'action="/requests/{made["id"]}/uploads/{upload_id}/cancel"' in page

    # Nobody else cancels it: not another account, not the link.
    _, stranger = await add_account(config, "stranger")
    assert (await app.delete(cancel, headers=bearer(stranger))).status_code == 404
    assert (await app.delete(f"{url}/uploads/{upload_id}")).status_code in (401, 404, 405)
    wrong = f"/api/requests/{made['id']}/uploads/{'A' * 32}"
    refused = await app.delete(wrong, headers=bearer(owner_token))
    assert refused.status_code == 404 and refused.json() == {"error": "no such unfinished upload"}

    owner = {**bearer(owner_token), **IDENTITY}
    async with app.stream("GET", "/requests/live", headers=owner) as live:
        events = live.iter_events()
        await next_data(events, containing="3 bytes of 6 bytes so far")
        assert (await app.delete(cancel, headers=owner)).status_code == 204
        painted = await next_data(events, containing='id="requests"')
        assert "clip.mov" not in painted
    assert (await app.delete(cancel, headers=owner)).status_code == 404
    assert (await listed(app, owner_token))[made["id"]]["uploads"] == []
    assert (await app.request("HEAD", upload, headers=TUS)).status_code == 404
    assert await held_rows(config) == [] and await unfinished_resumable(config) == 0
    # Its place is free again.
    assert (await app.put(f"{url}/uploads/instead.txt", content=b"i")).status_code == 201


async def test_the_live_list_shows_an_upload_through_a_link_as_it_moves(app, owner_token):
    made = await make(app, owner_token, label="Scans")
    owner = {**bearer(owner_token), **IDENTITY}
    async with app.stream("GET", "/requests/live", headers=owner) as live:
        events = live.iter_events()
        await next_data(events, containing="Scans")
        upload = (await tus_create(app, made["url"], 2000, "scan.tif")).headers.get("location")
        await next_data(events, containing="0 bytes of 2 KiB so far")
        assert (await tus_patch(app, upload, 0, b"s" * 1000)).status_code == 204
        await next_data(events, containing="1000 bytes of 2 KiB so far")


async def test_a_close_while_an_upload_is_being_created_leaves_nothing(
    app, owner_token, config, monkeypatch
):
    """The close lists the request's uploads before the new one's row is written: the
    creation sees the close after writing it, and ends the upload itself."""
    import app.resumable.uploads as resumable_uploads

    made = await make(app, owner_token)
    written = resumable_uploads.insert_upload

    async def close_first(db, state):
        closed = await app.delete(f"/api/requests/{made['id']}", headers=bearer(owner_token))
        assert closed.status_code == 204
        await written(db, state)

    monkeypatch.setattr(resumable_uploads, "insert_upload", close_first)
    refused = await tus_create(app, made["url"], 1000)
    assert refused.status_code == 410, refused.text
    assert refused.json() == {"error": "this request takes no more files: its owner closed it"}
    assert await held_rows(config) == [] and await unfinished_resumable(config) == 0


async def test_an_upload_that_completes_in_its_creation_takes_one_place(app, owner_token):
    """A link with room for one file: a tus creation-with-upload, or a draft upload
    whose first request carries every byte, holds one place, not two (its creation
    claims the place, and its finish in the same request must not claim another)."""
    body = b"all of it at once"
    for transport in ("tus", "draft"):
        made = await make(app, owner_token, max_files=1)
        if transport == "tus":
            headers = {**TUS, "upload-length": str(len(body)),
                       "upload-metadata": tus_metadata(f"{transport}.bin"),
                       "content-type": "application/offset+octet-stream"}  # fmt: skip
        else:
            named = f'attachment; filename="{transport}.bin"'
            headers = {"upload-draft-interop-version": "8", "upload-complete": "?1",
                       "upload-length": str(len(body)), "content-disposition": named}  # fmt: skip
        stored = await app.post(f"{made['url']}/tus", headers=headers, content=body)
        assert stored.status_code in (200, 201, 204), (transport, stored.text)
    names = sorted(f["name"] for f in await owner_files(app, owner_token))
    assert names == ["draft.bin", "tus.bin"], names


# Requests into a folder ----------------------------------------------------------------------


async def new_folder(app: TestClient, token: str, name: str, parent: str = "root") -> str:
    r = await app.post("/api/folders", json={"name": name, "parent": parent}, headers=bearer(token))
    assert r.status_code == 201, r.text
    return str(r.json()["folder"]["id"])


async def folder_files(app: TestClient, token: str, folder: str) -> list[dict]:
    r = await app.get(f"/api/folders/{folder}", headers=bearer(token))
    assert r.status_code == 200, r.text
    files: list[dict] = r.json()["files"]
    return files


async def test_a_request_without_a_folder_fills_the_root(app, owner_token):
    made = await make(app, owner_token)
    assert (made["folder"], made["folder_path"]) == ("root", "/")
    assert (await listed(app, owner_token))[made["id"]]["folder"] == "root"
    assert (await make(app, owner_token, folder="root"))["folder"] == "root"


async def test_files_through_a_request_land_in_its_folder(app, owner_token):
    photos = await new_folder(app, owner_token, "Photos")
    inbox = await new_folder(app, owner_token, "Inbox", photos)
    made = await make(app, owner_token, folder=inbox)
    assert (made["folder"], made["folder_path"]) == (inbox, "/Photos/Inbox/")
    shown = (await listed(app, owner_token))[made["id"]]
    assert (shown["folder"], shown["folder_path"]) == (inbox, "/Photos/Inbox/")
    url = made["url"]
    put = await app.put(f"{url}/uploads/notes.txt", content=b"hello\n")
    body, ctype = multipart(("a.txt", b"first"), ("notes.txt", b"again"))
    form = await app.post(f"{url}/uploads", content=body, headers={"content-type": ctype})
    sig = await app.post(f"{url}/uploads", json=signals(("s.txt", b"signalled")))
    for r in (put, form, sig):
        assert r.status_code == 201, r.text
        for entry in r.json()["files"]:
            assert set(entry) == UPLOADED_KEYS  # still no id, no url, no folder
    # A taken name in the folder (ignoring case) takes the next free copy.
    assert [f["name"] for f in form.json()["files"]] == ["a.txt", "notes (2).txt"]
    inside = await folder_files(app, owner_token, inbox)
    assert sorted(f["path"] for f in inside) == [
        "/Photos/Inbox/a.txt", "/Photos/Inbox/notes (2).txt", "/Photos/Inbox/notes.txt",
        "/Photos/Inbox/s.txt",
    ]  # fmt: skip
    assert {f["folder"] for f in inside} == {inbox}
    assert await folder_files(app, owner_token, "root") == []
    folder = (await app.get(f"/api/folders/{inbox}", headers=bearer(owner_token))).json()
    assert (folder["folder"]["files"], folder["folder"]["size"]) == (4, 6 + 5 + 5 + 9)
    assert (await listed(app, owner_token))[made["id"]]["files"] == 4


async def test_a_request_into_another_accounts_folder_is_404(app, owner_token, config):
    _, other_token = await add_account(config, "other")
    theirs = await new_folder(app, other_token, "Theirs")
    for folder in (theirs, "A" * 16):
        r = await app.post(
            "/api/requests", json={"label": "x", "folder": folder}, headers=bearer(owner_token)
        )
        assert (r.status_code, r.json()) == (404, {"error": "no such folder"})
    for folder in (7, "", ["root"]):
        r = await app.post(
            "/api/requests", json={"label": "x", "folder": folder}, headers=bearer(owner_token)
        )
        assert r.status_code == 400 and "folder" in r.json()["error"], r.text
    assert await listed(app, owner_token) == {}


async def test_an_upload_into_a_removed_folder_fails_and_keeps_nothing(app, owner_token, config):
    folder = await new_folder(app, owner_token, "Short-lived")
    made = await make(app, owner_token, folder=folder)
    gone = await app.delete(f"/api/folders/{folder}", headers=bearer(owner_token))
    assert gone.status_code == 200, gone.text
    # Deleting the folder closed the request into it (app/folders/store.py).
    assert made["id"] not in await listed(app, owner_token)
    r = await app.put(f"{made['url']}/uploads/late.txt", content=b"too late")
    assert r.status_code == 410, r.text
    assert "closed" in r.json()["error"]
    assert await owner_files(app, owner_token) == []
    assert stored_blobs(config) == []


async def test_the_page_counts_what_was_received_and_what_is_unfinished(app, owner_token):
    """After 2 of 3 files the page says 1 more (it once said 3 more: the page is read
    afresh by its upload queue after each file); an unfinished resumable upload holds
    its place, so the page does not offer it twice. `data-files-left` is what the
    page's queue refuses past, before sending."""
    made = await make(app, owner_token, label="Three", max_files=3)
    link = made["url"]
    page = (await app.get(link)).text
    assert "3 more files (of 3)" in page and 'data-files-left="3"' in page
    assert 'data-refresh-limits="true"' in page
    for name in ("one.txt", "two.txt"):
        assert (await app.put(f"{link}/uploads/{name}", content=b"x")).status_code == 201
    page = (await app.get(link)).text
    assert "1 more file (of 3)" in page and 'data-files-left="1"' in page
    assert (await tus_create(app, link, 10)).status_code == 201
    page = (await app.get(link)).text
    assert "0 more files (of 3)" in page and 'data-files-left="0"' in page
    # Without a limit on files the page says so, and its queue counts nothing.
    open_ended = (await app.get((await make(app, owner_token, label="Any"))["url"])).text
    assert "any number of files" in open_ended and "data-files-left" not in open_ended
