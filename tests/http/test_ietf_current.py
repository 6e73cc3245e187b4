"""The current editor's copy of the IETF resumable-upload draft (interop version 8),
through the production bootstrap (TestClient): `Upload-Limit` on `OPTIONS` of every
URL that creates an upload, in its exact structured-field form; `Location` on `HEAD`
(and `GET`) of an upload resource; optimistic uploads (`Upload-Complete: ?1` with the
interop header) on `/uploads`. The 104 itself needs a connection: see
tests/server/test_ietf_optimistic.py."""

import math
import re

from tests.support.fixtures import app_client

from app.config import Config

DRAFT = {"upload-draft-interop-version": "8"}
# A structured-field Dictionary whose members are all non-negative Integers (RFC 9651
# 3.2 and 3.3.1: a key is lcalpha or "*" then lcalpha, digit, "_", "-", ".", "*").
SF_INTEGER_DICTIONARY = re.compile(r"[a-z*][a-z0-9_.*-]*=\d{1,15}(, [a-z*][a-z0-9_.*-]*=\d{1,15})*")


def server_limit(config: Config, max_size: int | None = None) -> str:
    expiry = math.floor(config.upload_expiry)
    return (
        f"max-size={config.max_file_bytes if max_size is None else max_size}, min-size=0,"
        f" max-append-size={config.max_request_body_bytes},"
        f" expires={expiry}, max-age={expiry}"
    )


async def test_options_on_every_upload_url_tells_the_limits(client, config: Config):
    for path, allow in (
        ("/uploads", "POST, PUT, OPTIONS"),
        ("/uploads/notes.txt", "PUT, OPTIONS"),
        ("/tus/", None),
        ("/tus/" + "a" * 32, None),
    ):
        answer = await client.request("OPTIONS", path)
        assert answer.status_code == 204, path
        limit = answer.headers.get("upload-limit")
        assert SF_INTEGER_DICTIONARY.fullmatch(limit), limit
        assert limit == server_limit(config), path
        if allow is not None:
            assert answer.headers.get("allow") == allow
        # Plain OPTIONS (no preflight): no CORS headers come from here.
        assert "access-control-allow-origin" not in answer.headers
    # tus's capabilities stay on the tus URLs.
    tus = await client.request("OPTIONS", "/tus/")
    assert tus.headers.get("tus-version") == "1.0.0"


async def test_options_of_a_file_requests_urls_tells_its_own_largest_file(client, config: Config):
    made = await client.post(
        "/api/requests", json={"label": "Send me", "max_files": 2, "max_file_bytes": 5000}
    )
    assert made.status_code == 201, made.text
    link = "/r/" + made.json()["request"]["url"].rstrip("/").rsplit("/r/", 1)[1]
    async with app_client(config) as stranger:
        for path in (f"{link}/uploads", f"{link}/uploads/a.txt", f"{link}/tus/"):
            answer = await stranger.request("OPTIONS", path, headers=DRAFT)
            assert answer.status_code == 204, path
            assert answer.headers.get("upload-limit") == server_limit(config, 5000), path
            assert answer.headers.get("upload-draft-interop-version") == "8"


async def test_head_and_get_of_an_upload_tell_its_state_and_location(client):
    created = await client.put(
        "/uploads/half.txt", content=b"abc", headers={**DRAFT, "upload-complete": "?0"}
    )
    assert created.status_code == 201, created.text
    url = created.headers.get("location")
    assert url.startswith("/tus/")
    for method in ("HEAD", "GET"):
        answer = await client.request(method, url, headers=DRAFT)
        assert answer.status_code == 204, (method, answer.text)
        assert answer.content == b""
        assert answer.headers.get("location") == url
        assert answer.headers.get("upload-offset") == "3"
        assert answer.headers.get("upload-complete") == "?0"
        assert answer.headers.get("cache-control") == "no-store"
        limit = answer.headers.get("upload-limit")
        assert SF_INTEGER_DICTIONARY.fullmatch(limit) and "max-age=" in limit, limit
    # GET of an upload that is not there: the draft's 404, as HEAD's.
    missing = await client.get("/tus/" + "b" * 32, headers=DRAFT)
    assert missing.status_code == 404


async def test_an_optimistic_upload_answers_as_a_single_request_upload(client):
    answer = await client.put(
        "/uploads/whole.txt", content=b"all of it", headers={**DRAFT, "upload-complete": "?1"}
    )
    assert answer.status_code == 201, answer.text
    # It went through an upload resource (the draft's state headers), and its final
    # answer is the stored file's, as for any single-request upload.
    assert answer.headers.get("upload-complete") == "?1"
    assert answer.headers.get("upload-offset") == "9"
    assert answer.headers.get("location").startswith("/files/")
    assert answer.json()["files"][0]["name"] == "whole.txt"


async def test_an_upload_without_the_interop_header_stays_plain(client):
    answer = await client.put(
        "/uploads/plain.txt", content=b"plain", headers={"upload-complete": "?1"}
    )
    assert answer.status_code == 201, answer.text
    for header in ("upload-offset", "upload-complete", "upload-draft-interop-version"):
        assert header not in answer.headers


def test_a_limit_beyond_a_structured_field_integer_is_sent_as_the_largest_one():
    """`--max-file-bytes` takes up to 2^63; a structured-field Integer has 15 digits."""
    from app.resumable.limits import LARGEST_SF_INTEGER, upload_limit_field

    field = upload_limit_field(2**53, 2**40, 60)
    assert SF_INTEGER_DICTIONARY.fullmatch(field), field
    assert f"max-size={LARGEST_SF_INTEGER}" in field and f"max-append-size={2**40}" in field
