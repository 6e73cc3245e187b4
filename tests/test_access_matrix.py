"""Every route, as every kind of caller: the status of each cell is asserted.

Callers: nobody, the file's owner (by API token and by session cookie), another
account, an admin, a revoked token, and a wrong password (HTTP Basic). Routes: the
page, the live stream, the list, each upload transport, and GET/HEAD/Range/DELETE of
the owner's file.
"""

import base64
import json

import pytest
from stario.testing import TestClient
from tests.conftest import PASSWORD, SETUP_TOKEN, add_account, bearer, request_policy

from app.config import Config
from app.main import make_bootstrap, open_catalog

CALLERS = ["anonymous", "owner", "owner-session", "other", "admin", "revoked", "wrong-password"]
BOUNDARY = "matrixboundary"
MULTIPART = (
    f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="m.txt"\r\n'
    f"Content-Type: text/plain\r\n\r\nmultipart body\r\n--{BOUNDARY}--\r\n"
).encode()
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
