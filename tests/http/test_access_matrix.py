"""Every route, as every kind of caller: the status of each cell is asserted.

Callers: nobody, the file's owner (by API token and by session cookie), another
account, an admin, a revoked token, a wrong password (HTTP Basic), and for share
and file-request links anyone holding the link (and a wrong link).

The routes come from the app itself (its route tree, as tests/http/test_fuzz.py reads
it): each one must have a declaration in DECLARED (what kind of route it is, what
its owner or a link holder gets, the request that exercises it), and a route
without one, or a declaration whose route is gone, fails by name. Each route is then
called by every caller with real ids (the owner's file, share, request, token,
unfinished uploads, archive), made fresh for each call.

The first test keeps a hand-written matrix of what the generated one does not vary:
each upload transport (raw, multipart, Datastar signals), Range, and the list's
contents per caller.
"""

import asyncio
import base64
import hashlib
import io
import json
import re
import secrets
from dataclasses import dataclass, field

import pytest
from stario import Route
from stario.testing import TestClient
from tests.support.fixtures import PASSWORD, SETUP_TOKEN, add_account, bearer, request_policy
from tests.support.routes import app_routes as fuzz_routes

from app.catalog.open import open_catalog
from app.config import Config
from app.main import make_bootstrap

CALLERS = ["anonymous", "owner", "owner-session", "other", "admin", "revoked", "wrong-password"]
BOUNDARY = "matrixboundary"
MULTIPART = (
    f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="m.txt"\r\n'
    f"Content-Type: text/plain\r\n\r\nmultipart body\r\n--{BOUNDARY}--\r\n"
).encode()


def _png() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


PNG = _png()
SIGNALS = json.dumps(
    {"files": [{"name": "s.txt", "contents": base64.b64encode(b"signals").decode(), "mime": None}]}
).encode()

# What each caller gets from each route. "mine" callers see and touch their own things;
# the others' file is answered exactly like an unknown id.
SIGNED_IN = {
    "page": 200,
    "live": 200,
    "list": 200,
    "upload-raw-put": 201,
    "upload-raw-post": 201,
    "upload-multipart": 201,
    "upload-signals": 201,
    "tokens": 200,
}
OWNS = {"get": 200, "head": 200, "range": 206, "delete": 204}
NOT_THEIRS = {"get": 404, "head": 404, "range": 404, "delete": 404}
REFUSED = {route: 401 for route in [*SIGNED_IN, *OWNS]} | {"page": 303}
EXPECTED = {
    "anonymous": REFUSED,
    "owner": SIGNED_IN | OWNS,
    "owner-session": SIGNED_IN | OWNS,
    "other": SIGNED_IN | NOT_THEIRS,
    "admin": SIGNED_IN | NOT_THEIRS,
    "revoked": REFUSED,
    "wrong-password": REFUSED,
}


async def _request(client: TestClient, route: str, file_url: str, headers: dict[str, str]):
    if route == "page":
        return await client.get("/", headers=headers)
    if route == "live":
        async with client.stream("GET", "/live", headers=headers) as response:
            return response
    if route == "list":
        return await client.get("/api/files", headers=headers)
    if route == "tokens":
        return await client.get("/api/tokens", headers=headers)
    if route == "upload-raw-put":
        return await client.put("/uploads/p.txt", content=b"put body", headers=headers)
    if route == "upload-raw-post":
        return await client.post("/uploads?name=r.txt", content=b"raw body", headers=headers)
    if route == "upload-multipart":
        content_type = f"multipart/form-data; boundary={BOUNDARY}"
        return await client.post(
            "/uploads", content=MULTIPART, headers={**headers, "content-type": content_type}
        )
    if route == "upload-signals":
        return await client.post(
            "/uploads", content=SIGNALS, headers={**headers, "content-type": "application/json"}
        )
    if route == "get":
        return await client.get(file_url, headers=headers)
    if route == "head":
        return await client.request("HEAD", file_url, headers=headers)
    if route == "range":
        return await client.get(file_url, headers={**headers, "range": "bytes=0-3"})
    if route == "delete":
        return await client.delete(file_url, headers=headers)
    raise AssertionError(route)


@pytest.fixture
async def world(tmp_path):
    config = Config.load({"data_dir": str(tmp_path / "data")}, environ={})
    owner, owner_token = await add_account(config, "owner")
    _, other_token = await add_account(config, "other")
    _, admin_token = await add_account(config, "admin", admin=True)
    db = await open_catalog(config)
    from app.accounts.store import create_token, revoke_token

    info, revoked_token = await create_token(db, owner.id, "to revoke")
    await revoke_token(db, info.id)
    await db.close()
    async with TestClient(
        make_bootstrap(config, setup_token=SETUP_TOKEN),
        requests=request_policy(config),
        follow_redirects=False,
        base_url=config.public_url,
    ) as client:
        signed_in = await client.post(
            "/login",
            content=f"name=owner&password={PASSWORD.replace(' ', '+')}".encode(),
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert signed_in.status_code == 303
        session = client.cookies.pop("stowage_session")
        wrong = base64.b64encode(b":not-the-token").decode()
        yield (
            client,
            {
                "anonymous": {},
                "owner": bearer(owner_token),
                "owner-session": {"cookie": f"stowage_session={session}"},
                "other": bearer(other_token),
                "admin": bearer(admin_token),
                "revoked": bearer(revoked_token),
                "wrong-password": {"authorization": f"Basic {wrong}"},
            },
            owner_token,
        )


@pytest.mark.parametrize("caller", CALLERS)
async def test_every_route_as_every_caller(world, caller):
    client, headers_of, owner_token = world
    made = await client.put(
        "/uploads/owned.txt", content=b"the owner's words", headers=bearer(owner_token)
    )
    assert made.status_code == 201
    file_url = made.json()["files"][0]["url"]
    headers = headers_of[caller]
    got = {}
    for route in EXPECTED[caller]:
        response = await _request(client, route, file_url, headers)
        got[route] = response.status_code
        if response.status_code == 401 and route not in ("live", "head"):
            assert "error" in response.json()
            assert "Bearer" in (response.headers.get("www-authenticate") or "")
        if response.status_code == 303:
            assert (response.headers.get("location") or "").startswith("/login?next=")
        if route == "list" and response.status_code == 200:
            listed = [f["url"] for f in response.json()["files"]]
            assert (file_url in listed) == caller.startswith("owner")
        if route == "get" and response.status_code == 404:
            # No existence oracle: exactly what an unknown id gets.
            unknown = await client.get("/files/AAAAAAAAAAAAAAAAAAAAAA", headers=headers)
            assert (unknown.status_code, unknown.json()) == (404, response.json())
    assert got == EXPECTED[caller]


async def test_signed_in_answers_are_private_and_not_stored(world):
    client, headers_of, _ = world
    for url in ("/", "/api/files", "/api/tokens"):
        response = await client.get(url, headers=headers_of["owner"])
        assert response.headers.get("cache-control") == "private, no-store", url


async def test_the_owner_file_stays_after_every_refused_caller(world):
    client, headers_of, owner_token = world
    made = await client.put("/uploads/keep.txt", content=b"keep me", headers=bearer(owner_token))
    file_url = made.json()["files"][0]["url"]
    for caller in ("anonymous", "other", "admin", "revoked", "wrong-password"):
        assert (await client.delete(file_url, headers=headers_of[caller])).status_code in (
            401,
            404,
        )
    kept = await client.get(file_url, headers=bearer(owner_token))
    assert (kept.status_code, kept.content) == (200, b"keep me")


# --- every registered route, from the app itself ----------------------------------------
#
# Each route the app serves (read from its route tree, as tests/http/test_fuzz.py does) has
# one declaration here: what kind of route it is, what its owner (or a link holder)
# gets, and the request that exercises it. A route without a declaration, or a
# declaration without a route, fails `test_every_route_has_a_declaration`.

PAGE = "private page"  # signed in: its status; else 303 to sign in
PRIVATE = "private"  # signed in: its status; else 401 JSON
OWNED = "private, owner only"  # the owner: its status; other accounts: 404; else 401
PUBLIC = "public"  # anyone: its status, credentials or not
SHARE_LINK = "share link"  # anyone holding the token: its status; a wrong token: 404
REQUEST_LINK = "file-request link"  # the same, for a file request's token
SETUP = "setup token"  # anyone; closed once an account exists
STATIC = "static asset"  # anyone, no lookup
ADMIN_PAGE = "admin page"  # an admin: its status; other accounts 403; else 303 to sign in
ADMIN_ONLY = "admin only"  # an admin: its status; other accounts 403; else 401 JSON
OWNED_PAGE = "private page, owner only"  # the owner: its status; others 404; else 303


@dataclass(frozen=True)
class Declared:
    kind: str
    status: int  # what the owner (or, for links, anyone holding the link) gets
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    query: str = ""
    # Another account's answer, when it is not the kind's (e.g. its own empty list).
    others: int | None = None
    # A different answer on a public route for those signed in.
    signed_in: int | None = None


TUS = {"tus-resumable": "1.0.0"}
TUS_CREATE = {**TUS, "upload-length": "10"}
TUS_PATCH = {**TUS, "upload-offset": "0", "content-type": "application/offset+octet-stream"}
JSON = {"content-type": "application/json"}
FORM = {"content-type": "application/x-www-form-urlencoded"}
SIGN_IN = f"name=owner&password={PASSWORD.replace(' ', '+')}".encode()
# Every account of the matrix has PASSWORD: "changed" to itself, later calls still sign in.
SAME_PASSWORD = "&".join(f"{k}={PASSWORD.replace(' ', '+')}" for k in ("current", "new", "again"))
SAME_PASSWORD_BODY = SAME_PASSWORD.encode()

DAV_PROPPATCH = (
    b'<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:"><D:set><D:prop>'
    b'<x:m xmlns:x="urn:matrix">1</x:m></D:prop></D:set></D:propertyupdate>'
)

DECLARED: dict[tuple[str, str], Declared] = {
    # Pages and the live stream.
    ("GET", "/"): Declared(PAGE, 200),
    ("GET", "/live"): Declared(PRIVATE, 200),
    ("GET", "/selection"): Declared(PRIVATE, 200),
    ("POST", "/view"): Declared(PRIVATE, 303, b"view=grid&next=/", FORM),
    # The other screens, each a page and its live stream.
    ("GET", "/shared"): Declared(PAGE, 200),
    ("GET", "/shared/live"): Declared(PRIVATE, 200),
    # Lane C: a link's download log (pages, CSV, JSON) and the screen's Revoke form.
    ("GET", "/shared/{share_id}/downloads"): Declared(OWNED_PAGE, 200),
    ("GET", "/shared/{share_id}/downloads.csv"): Declared(OWNED_PAGE, 200),
    ("POST", "/shared/{share_id}/revoke"): Declared(OWNED, 303, b"", FORM),
    ("GET", "/api/shares/{share_id}/downloads"): Declared(OWNED, 200),
    ("GET", "/requests"): Declared(PAGE, 200),
    ("GET", "/requests/live"): Declared(PRIVATE, 200),
    ("GET", "/account"): Declared(PAGE, 200),
    ("GET", "/account/live"): Declared(PRIVATE, 200),
    # Admins only: the admin's status; any other account 403.
    ("GET", "/admin"): Declared(ADMIN_PAGE, 200),
    ("GET", "/admin/live"): Declared(ADMIN_ONLY, 200),
    # Lane B: the Admin screen's panel and commands (plain form posts: 303 back, a new
    # link shown once in a 200 page, an unknown account 404), and the public pages of
    # its one-time links (an unknown link: a 404 page).
    ("GET", "/admin/server"): Declared(ADMIN_ONLY, 200),
    ("POST", "/admin/accounts"): Declared(
        ADMIN_ONLY, 303, b"name=mUNIQUE&password=" + PASSWORD.replace(" ", "+").encode(), FORM
    ),
    ("POST", "/admin/invitations"): Declared(ADMIN_ONLY, 200, b"valid=3600", FORM),
    ("POST", "/admin/quota"): Declared(ADMIN_ONLY, 303, b"account=other&quota=none", FORM),
    ("POST", "/admin/resets"): Declared(ADMIN_ONLY, 200, b"account=other&valid=3600", FORM),
    ("POST", "/admin/remove"): Declared(ADMIN_ONLY, 404, b"account=nobody", FORM),
    ("GET", "/invite"): Declared(PUBLIC, 404, query="token=" + "A" * 43),
    ("POST", "/invite"): Declared(PUBLIC, 404, b"token=" + b"A" * 43, FORM),
    ("GET", "/reset"): Declared(PUBLIC, 404, query="token=" + "A" * 43),
    ("POST", "/reset"): Declared(PUBLIC, 404, b"token=" + b"A" * 43, FORM),
    # Signing in and setup.
    ("GET", "/login"): Declared(PUBLIC, 200, signed_in=303),  # signed in: back home
    ("POST", "/login"): Declared(PUBLIC, 303, SIGN_IN, FORM),
    ("POST", "/logout"): Declared(PUBLIC, 303),
    ("GET", "/setup"): Declared(SETUP, 404, query=f"token={SETUP_TOKEN}"),
    ("POST", "/setup"): Declared(SETUP, 404, SIGN_IN + f"&token={SETUP_TOKEN}".encode(), FORM),
    ("GET", "/static/{path...}"): Declared(STATIC, 200),
    # Today HEAD of an asset is gated like a private route (the gate lets through
    # "GET /static/" alone): declared as it is, so that a change is seen here.
    ("HEAD", "/static/{path...}"): Declared(PRIVATE, 200),
    # Files.
    ("GET", "/api/files"): Declared(PRIVATE, 200),
    ("GET", "/files/{file_id}"): Declared(OWNED, 200),
    ("HEAD", "/files/{file_id}"): Declared(OWNED, 200),
    ("DELETE", "/files/{file_id}"): Declared(OWNED, 204),
    ("PATCH", "/files/{file_id}"): Declared(OWNED, 200, b'{"name": "renamed.txt"}', JSON),
    ("GET", "/files/{file_id}/thumbnail"): Declared(OWNED, 200),
    ("HEAD", "/files/{file_id}/thumbnail"): Declared(OWNED, 200),
    # Lane D: previews. Without Datastar, the preview's GET sends a browser to the
    # Files screen with it open (303); the image is the thumbnailed PNG's.
    ("GET", "/files/{file_id}/preview"): Declared(OWNED, 303),
    ("GET", "/files/{file_id}/preview-image"): Declared(OWNED, 200),
    ("HEAD", "/files/{file_id}/preview-image"): Declared(OWNED, 200),
    ("GET", "/files/{file_id}/preview-file"): Declared(OWNED, 200),
    ("HEAD", "/files/{file_id}/preview-file"): Declared(OWNED, 200),
    # Another account's ids are skipped: 200 with nothing deleted (checked below).
    ("POST", "/api/files/delete"): Declared(OWNED, 200, b'{"ids": ["FILE_ID"]}', JSON, others=200),
    # Folders: the page's commands (another account's ids are "no such folder", or
    # skipped where a selection is); the API is declared below.
    ("POST", "/folders"): Declared(PRIVATE, 303, b"name=UNIQUE&parent=root", FORM),
    # Lane E: a file's and a folder's actions as pages and plain forms (no scripts).
    ("GET", "/files/{file_id}/rename"): Declared(OWNED, 200),
    ("POST", "/files/{file_id}/rename"): Declared(OWNED, 303, b"name=NEW_NAME", FORM),
    ("GET", "/files/{file_id}/move"): Declared(OWNED, 200),
    ("POST", "/files/{file_id}/move"): Declared(OWNED, 303, b"to=root", FORM),
    ("GET", "/files/{file_id}/delete"): Declared(OWNED, 200),
    ("POST", "/files/{file_id}/delete"): Declared(OWNED, 303, b"", FORM),
    ("GET", "/files/{file_id}/share"): Declared(OWNED, 200),
    ("POST", "/files/{file_id}/share"): Declared(OWNED, 200, b"shareExpiry=3600", FORM),
    ("GET", "/folders/{folder_id}/rename"): Declared(OWNED, 200),
    ("POST", "/folders/{folder_id}/rename"): Declared(OWNED, 303, b"name=NEW_NAME", FORM),
    # Lane F1: a folder moved without scripts (into the root: always allowed).
    ("GET", "/folders/{folder_id}/move"): Declared(OWNED, 200),
    ("POST", "/folders/{folder_id}/move"): Declared(OWNED, 303, b"to=root", FORM),
    ("GET", "/folders/{folder_id}/delete"): Declared(OWNED, 200),
    ("POST", "/folders/{folder_id}/delete"): Declared(OWNED, 303, b"", FORM),
    ("GET", "/folders/{folder_id}/share"): Declared(OWNED, 200),
    ("POST", "/folders/{folder_id}/share"): Declared(OWNED, 200, b"shareExpiry=3600", FORM),
    ("POST", "/folders/doomed"): Declared(
        OWNED, 200, b'{"folders": ["FOLDER_ID"]}', JSON, others=200
    ),
    ("POST", "/folders/delete"): Declared(
        OWNED, 200, b'{"folders": ["FOLDER_ID"]}', JSON, others=200
    ),
    # Uploads.
    ("PUT", "/uploads"): Declared(PRIVATE, 201, b"put body", query="name=p.txt"),
    ("PUT", "/uploads/{name}"): Declared(PRIVATE, 201, b"put body"),
    ("POST", "/uploads"): Declared(PRIVATE, 201, b"raw body", query="name=r.txt"),
    ("OPTIONS", "/tus"): Declared(PUBLIC, 204),
    ("POST", "/tus"): Declared(PRIVATE, 201, headers=TUS_CREATE),
    ("OPTIONS", "/tus/{upload_id}"): Declared(PUBLIC, 204, headers=TUS),
    ("HEAD", "/tus/{upload_id}"): Declared(OWNED, 200, headers=TUS),
    ("PATCH", "/tus/{upload_id}"): Declared(OWNED, 204, b"0123", TUS_PATCH),
    ("POST", "/tus/{upload_id}"): Declared(
        OWNED, 204, b"0123", {**TUS_PATCH, "x-http-method-override": "PATCH"}
    ),
    ("DELETE", "/tus/{upload_id}"): Declared(OWNED, 204, headers=TUS),
    # Issue 26 lane A: direct upload sessions (S3 only: on this local store, 409 with
    # where to upload instead; tests/server/test_direct_uploads.py has the S3 answers).
    ("POST", "/api/uploads/direct"): Declared(PRIVATE, 409, b'{"name": "d", "size": 1}', JSON),
    ("GET", "/api/uploads/direct/{upload_id}"): Declared(PRIVATE, 409),
    ("POST", "/api/uploads/direct/{upload_id}/complete"): Declared(
        PRIVATE, 409, b'{"parts": [{"number": 1, "etag": "e"}]}', JSON
    ),
    ("DELETE", "/api/uploads/direct/{upload_id}"): Declared(PRIVATE, 409),
    ("POST", "/r/{token}/uploads/direct"): Declared(
        REQUEST_LINK, 409, b'{"name": "d", "size": 1}', JSON
    ),
    ("GET", "/r/{token}/uploads/direct/{upload_id}"): Declared(REQUEST_LINK, 409),
    ("POST", "/r/{token}/uploads/direct/{upload_id}/complete"): Declared(
        REQUEST_LINK, 409, b'{"parts": [{"number": 1, "etag": "e"}]}', JSON
    ),
    ("DELETE", "/r/{token}/uploads/direct/{upload_id}"): Declared(REQUEST_LINK, 409),
    # Archives.
    ("POST", "/api/archives"): Declared(OWNED, 201, b'{"ids": ["FILE_ID"]}', JSON),
    ("GET", "/api/archives/{token}"): Declared(OWNED, 200),
    ("HEAD", "/api/archives/{token}"): Declared(OWNED, 200),
    # Share links.
    ("GET", "/api/shares"): Declared(PRIVATE, 200),
    ("POST", "/api/files/{file_id}/shares"): Declared(OWNED, 201, b"{}", JSON),
    ("DELETE", "/api/shares/{share_id}"): Declared(OWNED, 204),
    ("GET", "/s/{token}"): Declared(SHARE_LINK, 200),
    ("POST", "/s/{token}"): Declared(SHARE_LINK, 303, b"password=", FORM),
    ("GET", "/s/{token}/file"): Declared(SHARE_LINK, 200),
    ("HEAD", "/s/{token}/file"): Declared(SHARE_LINK, 200),
    # Collections: a folder's link, a set of files' link, and what such a link gives.
    ("POST", "/api/folders/{folder_id}/shares"): Declared(OWNED, 201, b"{}", JSON),
    ("POST", "/api/shares"): Declared(OWNED, 201, b'{"ids": ["FILE_ID"]}', JSON),
    ("GET", "/s/{token}/files/{file_id}"): Declared(SHARE_LINK, 200),
    ("HEAD", "/s/{token}/files/{file_id}"): Declared(SHARE_LINK, 200),
    ("GET", "/s/{token}/files/{file_id}/thumbnail"): Declared(SHARE_LINK, 200),
    ("GET", "/s/{token}/zip"): Declared(SHARE_LINK, 200),
    ("HEAD", "/s/{token}/zip"): Declared(SHARE_LINK, 200),
    # A folder link that takes uploads (its token, and password if any, decide).
    ("POST", "/s/{token}/uploads"): Declared(SHARE_LINK, 201, b"given", query="name=g.txt"),
    ("PUT", "/s/{token}/uploads"): Declared(SHARE_LINK, 201, b"given", query="name=g.txt"),
    ("PUT", "/s/{token}/uploads/{name}"): Declared(SHARE_LINK, 201, b"given"),
    ("OPTIONS", "/s/{token}/tus"): Declared(PUBLIC, 204),
    ("POST", "/s/{token}/tus"): Declared(SHARE_LINK, 201, headers=TUS_CREATE),
    ("OPTIONS", "/s/{token}/tus/{upload_id}"): Declared(PUBLIC, 204, headers=TUS),
    ("HEAD", "/s/{token}/tus/{upload_id}"): Declared(SHARE_LINK, 200, headers=TUS),
    ("PATCH", "/s/{token}/tus/{upload_id}"): Declared(SHARE_LINK, 204, b"0123", TUS_PATCH),
    ("POST", "/s/{token}/tus/{upload_id}"): Declared(
        SHARE_LINK, 204, b"0123", {**TUS_PATCH, "x-http-method-override": "PATCH"}
    ),
    ("DELETE", "/s/{token}/tus/{upload_id}"): Declared(SHARE_LINK, 204, headers=TUS),
    # Folders (NEW_NAME: a name no other call used).
    ("POST", "/api/folders"): Declared(PRIVATE, 201, b'{"name": "NEW_NAME"}', JSON),
    ("GET", "/api/folders/{folder_id}"): Declared(OWNED, 200),
    ("PATCH", "/api/folders/{folder_id}"): Declared(OWNED, 200, b'{"name": "NEW_NAME"}', JSON),
    ("DELETE", "/api/folders/{folder_id}"): Declared(OWNED, 200),
    ("POST", "/api/files/move"): Declared(
        OWNED, 200, b'{"ids": ["FILE_ID"], "to": "FOLDER_ID"}', JSON
    ),
    # File requests.
    ("GET", "/api/requests"): Declared(PRIVATE, 200),
    ("POST", "/api/requests"): Declared(PRIVATE, 201, b'{"label": "matrix"}', JSON),
    ("DELETE", "/api/requests/{request_id}"): Declared(OWNED, 204),
    ("DELETE", "/api/requests/{request_id}/uploads/{upload_id}"): Declared(OWNED, 204),
    ("GET", "/r/{token}"): Declared(REQUEST_LINK, 200),
    ("POST", "/r/{token}/uploads"): Declared(REQUEST_LINK, 201, b"given", query="name=g.txt"),
    ("PUT", "/r/{token}/uploads"): Declared(REQUEST_LINK, 201, b"given", query="name=g.txt"),
    ("PUT", "/r/{token}/uploads/{name}"): Declared(REQUEST_LINK, 201, b"given"),
    ("OPTIONS", "/r/{token}/tus"): Declared(PUBLIC, 204),
    ("POST", "/r/{token}/tus"): Declared(REQUEST_LINK, 201, headers=TUS_CREATE),
    ("OPTIONS", "/r/{token}/tus/{upload_id}"): Declared(PUBLIC, 204, headers=TUS),
    ("HEAD", "/r/{token}/tus/{upload_id}"): Declared(REQUEST_LINK, 200, headers=TUS),
    ("PATCH", "/r/{token}/tus/{upload_id}"): Declared(REQUEST_LINK, 204, b"0123", TUS_PATCH),
    ("POST", "/r/{token}/tus/{upload_id}"): Declared(
        REQUEST_LINK, 204, b"0123", {**TUS_PATCH, "x-http-method-override": "PATCH"}
    ),
    ("DELETE", "/r/{token}/tus/{upload_id}"): Declared(REQUEST_LINK, 204, headers=TUS),
    # Lane A: the Account and Requests screens' plain forms (Datastar sends the same).
    ("POST", "/account/password"): Declared(PRIVATE, 303, SAME_PASSWORD_BODY, FORM),
    ("POST", "/account/sessions/end-others"): Declared(PRIVATE, 303),
    ("POST", "/account/sessions/{session_id}/end"): Declared(OWNED, 303),
    ("POST", "/account/tokens"): Declared(PRIVATE, 200, b"label=matrix", FORM),
    ("POST", "/account/tokens/{token_id}/revoke"): Declared(OWNED, 303),
    ("POST", "/requests"): Declared(PRIVATE, 200, b"label=matrix", FORM),
    ("POST", "/requests/{request_id}/close"): Declared(OWNED, 303),
    ("POST", "/requests/{request_id}/uploads/{upload_id}/cancel"): Declared(OWNED, 303),
    # API tokens.
    ("GET", "/api/tokens"): Declared(PRIVATE, 200),
    ("POST", "/api/tokens"): Declared(PRIVATE, 201, b'{"label": "matrix"}', JSON),
    ("DELETE", "/api/tokens/{token_id}"): Declared(OWNED, 204),
    # Lane A (issue 27): WebDAV. Each account sees only its own tree, so another
    # account's call answers about its own (empty) tree; {path...} is "matrix.txt",
    # which no account has until its PUT, the last call that makes anything.
    **{
        (method, pattern): declared
        for pattern, routes in (
            (
                "/dav",
                {
                    "COPY": Declared(PRIVATE, 403, headers={"destination": "/dav/copy.txt"}),
                    "DELETE": Declared(PRIVATE, 403),
                    "GET": Declared(PRIVATE, 200),
                    "HEAD": Declared(PRIVATE, 200),
                    "LOCK": Declared(PRIVATE, 400),
                    "MKCOL": Declared(PRIVATE, 415, b"a body"),
                    "MOVE": Declared(PRIVATE, 403, headers={"destination": "/dav/moved.txt"}),
                    "OPTIONS": Declared(PRIVATE, 200),
                    "PROPFIND": Declared(PRIVATE, 207, headers={"depth": "0"}),
                    "PROPPATCH": Declared(PRIVATE, 207, DAV_PROPPATCH),
                    "PUT": Declared(PRIVATE, 405, b"put body"),
                    "UNLOCK": Declared(PRIVATE, 400),
                },
            ),
            (
                "/dav/{path...}",
                {
                    "COPY": Declared(PRIVATE, 404, headers={"destination": "/dav/copy.txt"}),
                    "DELETE": Declared(PRIVATE, 404),
                    "GET": Declared(PRIVATE, 404),
                    "HEAD": Declared(PRIVATE, 404),
                    "LOCK": Declared(PRIVATE, 400),
                    "MKCOL": Declared(PRIVATE, 415, b"a body"),
                    "MOVE": Declared(PRIVATE, 404, headers={"destination": "/dav/moved.txt"}),
                    "OPTIONS": Declared(PRIVATE, 200),
                    "PROPFIND": Declared(PRIVATE, 404, headers={"depth": "0"}),
                    "PROPPATCH": Declared(PRIVATE, 404, DAV_PROPPATCH),
                    "PUT": Declared(PRIVATE, 201, b"put body"),
                    "UNLOCK": Declared(PRIVATE, 400),
                },
            ),
        )
        for method, declared in routes.items()
    },
}

LINK_CALLERS = ["anonymous", "revoked", "wrong-password", "other", "owner"]
REFUSED_CALLERS = ("anonymous", "revoked", "wrong-password")
OTHER_ACCOUNTS = ("other", "admin")
SAFE = ("GET", "HEAD", "OPTIONS")
STREAMS = {
    ("GET", path)
    for path in ("/live", "/shared/live", "/requests/live", "/account/live", "/admin/live")
}
UNKNOWN_LINK = "A" * 32


def app_routes(app) -> set[tuple[str, str]]:
    """(method, pattern) of every route the app serves, from its route tree."""
    return set(fuzz_routes(app))


def callers_of(method: str, declared: Declared) -> list[str]:
    """Who tries the route: every kind of caller (the owner last, since the owner's
    call may delete what the path names); the session cookie on reads only."""
    if declared.kind in (SHARE_LINK, REQUEST_LINK):
        return LINK_CALLERS
    callers = ["anonymous", "revoked", "wrong-password", "other", "admin"]
    if method in SAFE:
        callers.append("owner-session")
    return [*callers, "owner"]


def expected_status(declared: Declared, caller: str) -> int:
    refused = caller in REFUSED_CALLERS
    if declared.kind in (ADMIN_PAGE, ADMIN_ONLY):
        if refused:
            return 303 if declared.kind == ADMIN_PAGE else 401
        return declared.status if caller == "admin" else 403
    if declared.kind == PAGE:
        return 303 if refused else declared.status
    if declared.kind == OWNED_PAGE:
        return 303 if refused else 404 if caller in OTHER_ACCOUNTS else declared.status
    if declared.kind == PRIVATE:
        if refused:
            return 401
        if caller in OTHER_ACCOUNTS and declared.others is not None:
            return declared.others
        return declared.status
    if declared.kind == OWNED:
        if refused:
            return 401
        if caller in OTHER_ACCOUNTS:
            return 404 if declared.others is None else declared.others
        return declared.status
    if not refused and declared.signed_in is not None:
        return declared.signed_in
    return declared.status  # PUBLIC, SETUP, STATIC, and both kinds of link


class Things:
    """Fresh things of the owner's for one call, made through the API: only those the
    route's path names."""

    def __init__(self, client: TestClient, owner: dict[str, str], thumbnailed: str) -> None:
        self.client, self.owner, self.thumbnailed = client, owner, thumbnailed
        self.values: dict[str, str] = {}
        self.filled: dict[str, str] = {}

    async def file_id(self) -> str:
        if "file_id" not in self.values:
            made = await self.client.put("/uploads/owned.png", content=PNG, headers=self.owner)
            assert made.status_code == 201, made.text
            self.values["file_id"] = made.json()["files"][0]["id"]
        return self.values["file_id"]

    async def folder_id(self) -> str:
        if "folder_id" not in self.values:
            made = await self.client.post(
                "/api/folders", json={"name": secrets.token_hex(6)}, headers=self.owner
            )
            assert made.status_code == 201, made.text
            self.values["folder_id"] = made.json()["folder"]["id"]
        return self.values["folder_id"]

    async def share_token(self) -> str:
        file_id = await self.file_id()
        made = await self.client.post(f"/api/files/{file_id}/shares", json={}, headers=self.owner)
        assert made.status_code == 201, made.text
        self.values["share_id"] = str(made.json()["share"]["id"])
        return made.json()["share"]["url"].rsplit("/", 1)[-1]

    async def collection_token(self, file_id: str) -> str:
        """A link to a set of files holding `file_id`."""
        made = await self.client.post("/api/shares", json={"ids": [file_id]}, headers=self.owner)
        assert made.status_code == 201, made.text
        self.values["share_id"] = str(made.json()["share"]["id"])
        return made.json()["share"]["url"].rsplit("/", 1)[-1]

    async def upload_share_token(self) -> str:
        """A link to a folder that takes uploads."""
        if "upload_share" not in self.values:
            folder_id = await self.folder_id()
            made = await self.client.post(
                f"/api/folders/{folder_id}/shares", json={"uploads": True}, headers=self.owner
            )
            assert made.status_code == 201, made.text
            self.values["upload_share"] = made.json()["share"]["url"].rsplit("/", 1)[-1]
        return self.values["upload_share"]

    async def request_link(self) -> str:
        if "request_link" not in self.values:
            made = await self.client.post(
                "/api/requests", json={"label": "matrix"}, headers=self.owner
            )
            assert made.status_code == 201, made.text
            self.values["request_id"] = str(made.json()["request"]["id"])
            self.values["request_link"] = made.json()["request"]["url"]
        return self.values["request_link"]

    async def fill(self, pattern: str) -> str:
        names = re.findall(r"\{(\w+)(?:\.\.\.)?\}", pattern)
        values: dict[str, str] = {}
        for name in names:
            if name == "file_id" and pattern.endswith(("/thumbnail", "/preview-image")):
                values[name] = self.thumbnailed  # reads only: one made once
            elif name == "file_id":
                values[name] = await self.file_id()
            elif name == "folder_id":
                values[name] = await self.folder_id()
            elif name == "share_id":
                await self.share_token()
                values[name] = self.values["share_id"]
            elif name == "folder_id":
                values[name] = await self.folder_id()
            elif name == "request_id":
                await self.request_link()
                values[name] = self.values["request_id"]
            elif name == "token_id":
                made = await self.client.post(
                    "/api/tokens", json={"label": "matrix"}, headers=self.owner
                )
                assert made.status_code == 201, made.text
                values[name] = str(made.json()["token"]["id"])
            elif name == "folder_id":
                values[name] = await self.folder_id()
            elif name == "token" and pattern.startswith("/s/{token}/files/"):
                # A collection's file: the one the path names is in the link.
                member = (
                    self.thumbnailed if pattern.endswith("/thumbnail") else await self.file_id()
                )
                values[name] = await self.collection_token(member)
            elif name == "token" and pattern.startswith("/s/{token}/zip"):
                values[name] = await self.collection_token(await self.file_id())
            elif name == "token" and pattern.startswith(("/s/{token}/uploads", "/s/{token}/tus")):
                values[name] = await self.upload_share_token()
            elif name == "token" and pattern.startswith("/s/"):
                values[name] = await self.share_token()
            elif name == "token" and pattern.startswith("/r/"):
                values[name] = (await self.request_link()).rsplit("/", 1)[-1]
            elif name == "token" and pattern.startswith("/api/archives/"):
                made = await self.client.post(
                    "/api/archives", json={"ids": [await self.file_id()]}, headers=self.owner
                )
                assert made.status_code == 201, made.text
                values[name] = made.json()["url"].rsplit("/", 1)[-1]
            elif name == "session_id":
                # A session of the owner's (lane A): its handle, as the Account screen has it.
                signed = await self.client.post("/login", content=SIGN_IN, headers=FORM)
                assert signed.status_code == 303, signed.text
                secret = self.client.cookies.pop("stowage_session")
                values[name] = hashlib.sha256(secret.encode()).hexdigest()[:16]
            elif name == "upload_id" and (
                "/r/" in pattern or pattern.startswith(("/api/requests/", "/requests/"))
            ):
                made = await self.client.post(
                    f"{await self.request_link()}/tus", headers=TUS_CREATE
                )
                assert made.status_code == 201, made.text
                values[name] = (made.headers.get("location") or "").rsplit("/", 1)[-1]
            elif name == "upload_id" and pattern.startswith("/s/"):
                made = await self.client.post(
                    f"/s/{await self.upload_share_token()}/tus", headers=TUS_CREATE
                )
                assert made.status_code == 201, made.text
                values[name] = (made.headers.get("location") or "").rsplit("/", 1)[-1]
            elif name == "upload_id":
                made = await self.client.post("/tus", headers={**TUS_CREATE, **self.owner})
                assert made.status_code == 201, made.text
                values[name] = (made.headers.get("location") or "").rsplit("/", 1)[-1]
            elif name == "name":
                values[name] = "named.txt"
            elif name == "path" and pattern.startswith("/dav/"):
                values[name] = "matrix.txt"
            elif name == "path":
                page = await self.client.get("/", headers=self.owner)
                found = re.search(r'href="/static/([^"]+\.css)"', page.text)
                assert found, "no stylesheet on the page"
                values[name] = found.group(1)
            else:
                raise AssertionError(f"{pattern}: no value for {{{name}}}; add one to Things")
        self.filled = values
        return re.sub(r"\{(\w+)(?:\.\.\.)?\}", lambda m: values[m.group(1)], pattern)


async def _call(client, method, pattern, path, declared, headers):
    body = declared.body
    url = f"{path}?{declared.query}" if declared.query else path
    if (method, pattern) in STREAMS:
        async with client.stream(method, url, headers=headers) as response:
            return response
    return await client.request(method, url, content=body, headers=headers)


async def _thumbnailed_file(client: TestClient, owner: dict[str, str]) -> str:
    """The owner's image, once its thumbnail is made (in the background)."""
    made = await client.put("/uploads/thumbnailed.png", content=PNG, headers=owner)
    file_id = made.json()["files"][0]["id"]
    for _ in range(200):
        if (await client.head(f"/files/{file_id}/thumbnail", headers=owner)).status_code == 200:
            return file_id
        await asyncio.sleep(0.05)
    raise AssertionError("no thumbnail made within 10 s")


def declaration_gaps(app) -> list[str]:
    """What is wrong with DECLARED for this app: each route it serves without a
    declaration, and each declaration of a route it no longer serves."""
    registered = app_routes(app)
    missing = sorted(registered - DECLARED.keys())
    gone = sorted(DECLARED.keys() - registered)
    return [f"{m} {p}: no declared expectation in DECLARED" for m, p in missing] + [
        f"{m} {p}: declared, but the app no longer serves it" for m, p in gone
    ]


def _unknown(value: str) -> str:
    return "999999999" if value.isdigit() else "A" * len(value)


def _without_nonces(text: str) -> str:
    """A page's answer with its script nonce (new for every answer) left out."""
    return re.sub(r'(data-nonce=")[A-Za-z0-9_-]+', r"\1", text)


async def _same_as_unknown(client, method, pattern, path, declared, headers, things, answered):
    """`answered` (another account's call on the owner's thing) is what the same call
    on an id nobody has gets, that id aside."""
    real = [
        v
        for v in [*things.filled.values(), *things.values.values()]
        if v in path or v.encode() in declared.body
    ]
    unknown_path, body, seen = path, declared.body, _without_nonces(answered.text)
    for value in real:
        unknown_path = unknown_path.replace(value, _unknown(value))
        body = body.replace(value.encode(), _unknown(value).encode())
        seen = seen.replace(value, _unknown(value))
    other = await _call(
        client,
        method,
        pattern,
        unknown_path,
        Declared(**{**declared.__dict__, "body": body}),
        headers,
    )
    assert (other.status_code, _without_nonces(other.text)) == (answered.status_code, seen), (
        method,
        pattern,
    )


async def test_every_route_has_a_declaration(world):
    gaps = declaration_gaps(world[0].app)
    assert not gaps, "\n".join(gaps)


async def test_a_route_added_without_a_declaration_is_named(tmp_path):
    """The check above sees a new route: one registered here, as a feature would."""
    config = Config.load({"data_dir": str(tmp_path / "dummy")}, environ={})

    async def dummy(c, w) -> None:
        w.text("hi", 200)

    async def bootstrap(app, span):
        app.add(Route("GET /dummy/{thing_id}"), dummy)
        async for _ in make_bootstrap(config, setup_token=SETUP_TOKEN)(app, span):
            yield

    async with TestClient(bootstrap, base_url=config.public_url) as client:
        assert declaration_gaps(client.app) == [
            "GET /dummy/{thing_id}: no declared expectation in DECLARED"
        ]


async def test_every_registered_route_as_every_caller(world):
    client, headers_of, owner_token = world
    owner = bearer(owner_token)
    thumbnailed = await _thumbnailed_file(client, owner)
    got: dict[tuple[str, str, str], int] = {}
    wanted: dict[tuple[str, str, str], int] = {}
    for method, pattern in sorted(app_routes(client.app)):
        declared = DECLARED.get((method, pattern))
        if declared is None:
            continue  # named by test_every_route_has_a_declaration
        callers = callers_of(method, declared)
        if declared.kind in (SHARE_LINK, REQUEST_LINK):
            callers = [*callers, "wrong-link"]
        for caller in callers:
            things = Things(client, owner, thumbnailed)
            path = await things.fill(pattern)
            if caller == "wrong-link":
                path = re.sub(r"^/([sr])/[^/]+", rf"/\1/{UNKNOWN_LINK}", path)
            body = declared.body
            if b"FILE_ID" in body:
                body = body.replace(b"FILE_ID", (await things.file_id()).encode())
            if b"FOLDER_ID" in body:
                body = body.replace(b"FOLDER_ID", (await things.folder_id()).encode())
            if b"NEW_NAME" in body:
                body = body.replace(b"NEW_NAME", f"matrix {secrets.token_hex(6)}".encode())
            # A name nothing of the account has yet (folder names are unique).
            body = body.replace(b"UNIQUE", secrets.token_hex(6).encode())
            declared_call = Declared(**{**declared.__dict__, "body": body})
            caller_headers = headers_of.get(caller, {})
            response = await _call(
                client, method, pattern, path, declared_call,
                {**declared.headers, **caller_headers},
            )  # fmt: skip
            cell = (method, pattern, caller)
            got[cell] = response.status_code
            wanted[cell] = 404 if caller == "wrong-link" else expected_status(declared, caller)
            if caller in OTHER_ACCOUNTS and declared.kind == OWNED:
                # No cross-account leak: another account's thing is never answered...
                if declared.others is None:
                    assert response.status_code not in (200, 201, 204, 206), cell
                elif pattern == "/folders/doomed":
                    answer = response.json()
                    assert (answer["folders"], answer["files"]) == (0, 0), cell
                else:
                    assert response.json()["deleted"] == [], cell
            if caller in OTHER_ACCOUNTS and declared.kind == OWNED and method != "HEAD":
                # No existence oracle: exactly what an unknown id gets.
                sent = {**declared.headers, **caller_headers}
                await _same_as_unknown(
                    client, method, pattern, path, declared_call, sent, things, response
                )
            if caller != "owner" and "file_id" in things.values:
                # ... nor touched: the owner's file is still there, as it was.
                kept = await client.get(f"/files/{things.values['file_id']}", headers=owner)
                assert (kept.status_code, kept.content) == (200, PNG), cell
            if response.status_code == 401 and pattern.startswith("/dav"):
                # WebDAV clients read the first challenge, and know Basic only.
                assert (response.headers.get("www-authenticate") or "").startswith("Basic "), cell
                assert method == "HEAD" or "API token" in response.text, cell
            elif response.status_code == 401 and method != "HEAD" and cell[:2] not in STREAMS:
                assert "error" in response.json(), cell
                assert "Bearer" in (response.headers.get("www-authenticate") or ""), cell
            if response.status_code == 303 and declared.kind == PAGE:
                assert (response.headers.get("location") or "").startswith("/login?next="), cell
    mismatched = {cell: (got[cell], wanted[cell]) for cell in got if got[cell] != wanted[cell]}
    assert not mismatched, "route, caller: (got, declared)\n" + "\n".join(
        f"{cell}: {pair}" for cell, pair in sorted(mismatched.items())
    )
