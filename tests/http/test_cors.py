"""`--cors-origins`: web apps on other sites call the API, uploads, tus and downloads
with a token, never with a cookie; preflights answer exactly what the route tree has."""

import dataclasses
import re
from collections import defaultdict

import pytest
from tests.support.fixtures import PASSWORD, add_account, app_client, bearer
from tests.support.routes import app_routes
from tests.support.tus import TUS

from app.config import Config, ConfigError
from app.server.cors import (
    DOWNLOAD_HEADERS,
    EXPOSED_HEADERS,
    JSON_HEADERS,
    TUS_HEADERS,
    UPLOAD_HEADERS,
    family_of,
)

APP = "http://127.0.0.2:5173"
OTHER = "http://evil.example"
FROM_APP = {"origin": APP, "sec-fetch-site": "cross-site", "sec-fetch-mode": "cors"}
FROM_OTHER = {"origin": OTHER, "sec-fetch-site": "cross-site", "sec-fetch-mode": "cors"}


def _names(answer) -> set[str]:
    return {name.lower() for name, _ in answer.headers.items()}


def _vary(answer) -> set[str]:
    return {v.strip().lower() for value in answer.headers.getlist("vary") for v in value.split(",")}


@pytest.fixture
async def world(config: Config):
    config = dataclasses.replace(config, cors_origins=(APP,))
    _, token = await add_account(config, "owner")
    async with app_client(config, follow_redirects=False) as client:
        signed_in = await client.post(
            "/login",
            content=f"name=owner&password={PASSWORD.replace(' ', '+')}".encode(),
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert signed_in.status_code == 303
        session = client.cookies.pop("stowage_session")
        yield client, token, {"cookie": f"stowage_session={session}"}


def test_origins_are_checked_at_start():
    load = Config.load
    assert load({"cors_origins": "https://App.Example.org:443/"}, environ={}).cors_origins == (
        "https://app.example.org",
    )
    assert load({}, environ={"STOWAGE_CORS_ORIGINS": f"{APP}, {APP}"}).cors_origins == (APP,)
    assert load({}, environ={}).cors_origins == ()
    for wrong in ("*", "null", "app.example.org", "http://x/path", "ftp://x", "http://x:99999"):
        with pytest.raises(ConfigError, match="--cors-origins must list origins"):
            load({"cors_origins": wrong}, environ={})


async def test_a_listed_origin_with_a_token_is_served_and_may_read(world):
    client, token, _ = world
    listed = await client.get("/api/files", headers={**FROM_APP, **bearer(token)})
    assert listed.status_code == 200
    assert listed.headers.get("access-control-allow-origin") == APP
    assert "origin" in _vary(listed)
    assert "access-control-allow-credentials" not in _names(listed)
    exposed = {
        h.strip().lower() for h in listed.headers.get("access-control-expose-headers").split(",")
    }
    assert {h.lower() for h in EXPOSED_HEADERS} == exposed
    assert {"location", "upload-offset", "upload-length", "tus-resumable", "upload-expires"} <= (
        exposed
    )
    # A command (tus creation) too: same_origin lets it through for a token.
    made = await client.post(
        "/tus", headers={**FROM_APP, **bearer(token), **TUS, "upload-length": "3"}
    )
    assert made.status_code == 201, made.text
    assert made.headers.get("access-control-allow-origin") == APP
    patched = await client.patch(
        made.headers.get("location"),
        content=b"abc",
        headers={**FROM_APP, **bearer(token), **TUS, "upload-offset": "0",
                 "content-type": "application/offset+octet-stream"},
    )  # fmt: skip
    assert patched.status_code == 204
    assert patched.headers.get("access-control-allow-origin") == APP
    put = await client.put("/uploads/x.txt", content=b"raw", headers={**FROM_APP, **bearer(token)})
    assert put.status_code == 201
    assert put.headers.get("access-control-allow-origin") == APP
    file_url = put.json()["files"][0]["url"]
    got = await client.get(file_url, headers={**FROM_APP, **bearer(token), "range": "bytes=0-1"})
    assert (got.status_code, got.content) == (206, b"ra")
    assert got.headers.get("access-control-allow-origin") == APP
    # A refusal is readable by the app too (it can tell a bad token from a network error).
    wrong = await client.get("/api/files", headers={**FROM_APP, **bearer("not-a-token")})
    assert wrong.status_code == 401
    assert wrong.headers.get("access-control-allow-origin") == APP


async def test_cookies_are_never_honoured_cross_origin(world):
    client, _, cookie = world
    assert (await client.get("/api/files", headers=cookie)).status_code == 200  # same site
    for method, url in (("GET", "/api/files"), ("POST", "/tus"), ("PUT", "/uploads/c.txt")):
        answer = await client.request(
            method, url, content=b"x" if method == "PUT" else None,
            headers={**FROM_APP, **cookie, **(TUS if url == "/tus" else {})},
        )  # fmt: skip
        assert answer.status_code == 403, (method, url)
        assert "cookies are not honoured" in answer.json()["error"]
        assert "access-control-allow-origin" not in _names(answer)
    # Without Sec-Fetch-Site (an older browser): Origin against Host decides the same.
    answer = await client.get("/api/files", headers={"origin": APP, **cookie})
    assert answer.status_code == 403
    listed = await client.get("/api/files", headers=cookie)
    assert listed.json()["files"] == []  # nothing was stored by the refused requests


async def test_an_unlisted_origin_gets_what_it_got_before(world):
    client, token, _ = world
    read = await client.get("/api/files", headers={**FROM_OTHER, **bearer(token)})
    assert read.status_code == 200
    assert "access-control-allow-origin" not in _names(read)
    command = await client.put(
        "/uploads/u.txt", content=b"u", headers={**FROM_OTHER, **bearer(token)}
    )
    assert command.status_code == 403
    assert "cross-origin request refused" in command.json()["error"]
    assert "access-control-allow-origin" not in _names(command)


def _concrete(pattern: str) -> str:
    return re.sub(r"\{[^}]+\}", "abc", pattern)


async def test_preflights_name_exactly_the_route_tree(world):
    client, _, _ = world
    tree: dict[str, set[str]] = defaultdict(set)
    for method, pattern in app_routes(client._app):
        tree[pattern].add(method)
    expected_headers = {
        "/api/files": JSON_HEADERS,
        "/api/archives/{token}": DOWNLOAD_HEADERS,
        "/files/{file_id}": DOWNLOAD_HEADERS,
        "/uploads": UPLOAD_HEADERS,
        "/uploads/{name}": UPLOAD_HEADERS,
        "/tus": TUS_HEADERS,
        "/tus/{upload_id}": TUS_HEADERS,
    }
    covered = [pattern for pattern in tree if family_of(pattern) is not None]
    assert set(expected_headers) <= set(covered)
    assert not any(p.startswith(("/s/", "/r/", "/dav", "/shared")) for p in covered)
    for pattern in covered:
        methods = tree[pattern]
        for method in methods:
            answer = await client.request(
                "OPTIONS",
                _concrete(pattern),
                headers={**FROM_APP, "access-control-request-method": method,
                         "access-control-request-headers": "authorization"},
            )  # fmt: skip
            assert answer.status_code == 204, (pattern, method, answer.text)
            assert answer.headers.get("access-control-allow-origin") == APP
            allowed = set(answer.headers.get("access-control-allow-methods").split(", "))
            assert allowed == methods, pattern
            assert int(answer.headers.get("access-control-max-age")) > 0
            assert "access-control-allow-credentials" not in _names(answer)
            named = answer.headers.get("access-control-allow-headers").split(", ")
            assert named == list(family_of(pattern).headers)
            if pattern in expected_headers:
                assert named == list(expected_headers[pattern])
        not_taken = next(
            m for m in ("PUT", "DELETE", "GET", "PATCH", "PROPFIND") if m not in methods
        )
        refused = await client.request(
            "OPTIONS", _concrete(pattern),
            headers={**FROM_APP, "access-control-request-method": not_taken},
        )  # fmt: skip
        assert refused.status_code == 403, (pattern, not_taken)
        assert not any(h.startswith("access-control-") for h in _names(refused))
    unlisted = await client.request(
        "OPTIONS", "/tus", headers={**FROM_OTHER, "access-control-request-method": "POST"}
    )
    assert unlisted.status_code == 403
    assert not any(h.startswith("access-control-") for h in _names(unlisted))


async def test_tus_capabilities_stay_as_they_are(world):
    client, _, _ = world
    answer = await client.request("OPTIONS", "/tus", headers={"origin": APP})
    assert answer.status_code == 204
    assert answer.headers.get("tus-version") == "1.0.0"


async def test_pages_and_links_never_get_cors(world):
    client, token, _ = world
    page = await client.get("/", headers={**FROM_APP, **bearer(token)})
    assert "access-control-allow-origin" not in _names(page)
    preflight = await client.request(
        "OPTIONS", "/", headers={**FROM_APP, "access-control-request-method": "GET"}
    )
    assert not any(h.startswith("access-control-") for h in _names(preflight))


async def test_no_origins_listed_no_cors_anywhere(config: Config):
    _, token = await add_account(config, "owner")
    async with app_client(config) as client:
        listed = await client.get("/api/files", headers={**FROM_APP, **bearer(token)})
        assert listed.status_code == 200
        assert "access-control-allow-origin" not in _names(listed)
        assert "origin" not in _vary(listed)
        for url in ("/api/files", "/tus", "/uploads", "/files/abc"):
            answer = await client.request(
                "OPTIONS", url, headers={**FROM_APP, "access-control-request-method": "POST"}
            )
            assert not any(h.startswith("access-control-") for h in _names(answer)), url
        command = await client.post("/tus", headers={**FROM_APP, **bearer(token), **TUS,
                                                     "upload-length": "1"})  # fmt: skip
        assert command.status_code == 403
