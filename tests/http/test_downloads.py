"""Downloads done right (issue #4): streaming, validators, ranges, names, safe rendering.

The first part drives GET/HEAD /files/{id} through the TestClient on the production
bootstrap, uploading real files first; the second part unit-tests the pure rules in
app/downloads/{ranges,validators,policy}.py and the Content-Disposition builder.
"""

import hashlib
import os
import re
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
from stario.testing import TestClient
from tests.support.fixtures import both_stores

from app.common.http import content_disposition
from app.downloads.policy import (
    IMAGE,
    MEDIA,
    SANDBOX,
    content_security_policy,
    disposition,
    served_type,
)
from app.downloads.ranges import UNSATISFIABLE, ByteRange, parse_range
from app.downloads.validators import (
    Precondition,
    evaluate_preconditions,
    if_range_holds,
    matches_strongly,
    matches_weakly,
    modified_at,
    parse_http_date,
)
from app.ingest.names import filename_from_disposition
from app.storage.local.store import READ_BYTES, send_bytes

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8
PDF = b"%PDF-1.4\n" + b"1 0 obj << >> endobj\n" * 40 + b"%%EOF\n"
WEBM = b"\x1a\x45\xdf\xa3" + bytes(range(256)) * 40
HTML = b"<!doctype html><html><body><script>document.cookie</script></body></html>"
SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
XML = b'<?xml version="1.0"?><root><item>1</item></root>'
# Compressible, and long enough for Stario's compressor to want it.
TEXT = b"All work and no play makes Jack a dull boy.\n" * 400
BINARY = bytes((i * 7919) % 251 for i in range(200_000))
ALL_ENCODINGS = {"accept-encoding": "gzip, br, zstd"}


async def upload(
    client: TestClient, name: str, body: bytes, content_type: str | None = None
) -> dict[str, Any]:
    headers = {"content-type": content_type} if content_type else None
    response = await client.post("/uploads", params={"name": name}, content=body, headers=headers)
    assert response.status_code == 201, response.text
    file: dict[str, Any] = response.json()["files"][0]
    return file


def header_dict(response: Any) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k != "date"}


# --- streaming, HEAD, never compressed ------------------------------------------------


@both_stores
@pytest.mark.parametrize(
    ("name", "body", "mime"),
    [
        ("book.txt", TEXT, "text/plain; charset=utf-8"),
        ("blob.bin", BINARY, "application/octet-stream"),
    ],
)
async def test_full_download_has_fixed_length_and_is_never_compressed(
    client: TestClient, name: str, body: bytes, mime: str
) -> None:
    file = await upload(client, name, body)
    response = await client.get(file["url"], headers=ALL_ENCODINGS)
    assert response.status_code == 200
    assert response.content == body
    assert response.headers.get("content-length") == str(len(body))
    assert response.headers.get("content-encoding") is None
    assert response.headers.get("transfer-encoding") is None
    assert response.headers.get("content-type") == mime
    assert response.headers.get("accept-ranges") == "bytes"


@both_stores
async def test_head_answers_the_same_headers_without_a_body(client: TestClient) -> None:
    file = await upload(client, "book.txt", TEXT)
    got = await client.get(file["url"], headers=ALL_ENCODINGS)
    head = await client.head(file["url"], headers=ALL_ENCODINGS)
    assert head.status_code == 200
    assert head.content == b""
    assert header_dict(head) == header_dict(got)
    assert head.headers.get("content-length") == str(len(TEXT))


@both_stores
async def test_empty_file_downloads_as_zero_bytes(client: TestClient) -> None:
    file = await upload(client, "empty.txt", b"")
    response = await client.get(file["url"])
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers.get("content-length") == "0"


@pytest.mark.parametrize(
    "path", ["/files/AAAAAAAAAAAAAAAAAAAAAA", "/files/not-an-id", "/files/a.b"]
)
async def test_unknown_file_is_a_json_404(client: TestClient, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 404
    assert set(response.json()) == {"error"}
    head = await client.head(path)
    assert head.status_code == 404
    assert head.content == b""


async def test_missing_blob_is_a_json_404(client: TestClient, config: Any) -> None:
    file = await upload(client, "gone.bin", BINARY)
    for blob in config.uploads_dir.rglob(file["id"]):
        blob.unlink()
    response = await client.get(file["url"])
    assert response.status_code == 404
    assert "error" in response.json()


# --- validators and conditional requests -----------------------------------------------


@both_stores
async def test_validators_and_cache_headers(client: TestClient) -> None:
    file = await upload(client, "book.txt", TEXT)
    response = await client.get(file["url"])
    sha = hashlib.sha256(TEXT).hexdigest()
    assert response.headers.get("etag") == f'"{sha}"'
    created = datetime.fromisoformat(file["created_at"].replace("Z", "+00:00"))
    expected = format_datetime(created.replace(microsecond=0), usegmt=True)
    assert response.headers.get("last-modified") == expected
    cache = response.headers.get("cache-control") or ""
    assert cache == "private, no-cache"


async def _not_modified(client: TestClient, url: str, headers: dict[str, str]) -> None:
    for method in ("GET", "HEAD"):
        response = await client.request(method, url, headers=headers)
        assert response.status_code == 304, (method, headers)
        assert response.content == b""
        assert response.headers.get("etag")
        assert response.headers.get("content-length") in (None, "0")
        assert response.headers.get("x-content-type-options") == "nosniff"
        assert "sandbox" in (response.headers.get("content-security-policy") or "")


@both_stores
async def test_if_none_match_gives_304_with_strong_weak_list_and_star(client: TestClient) -> None:
    file = await upload(client, "book.txt", TEXT)
    etag = f'"{file["sha256"]}"'
    for value in (etag, f"W/{etag}", f'"other", {etag}', f'"x",W/{etag} , "y"', "*"):
        await _not_modified(client, file["url"], {"if-none-match": value})
    for value in ('"other"', file["sha256"], f'"{file["sha256"][:-1]}"', 'W/"nope", "x"'):
        response = await client.get(file["url"], headers={"if-none-match": value})
        assert response.status_code == 200, value
        assert response.content == TEXT


async def test_if_modified_since(client: TestClient) -> None:
    file = await upload(client, "book.txt", TEXT)
    last_modified = (await client.get(file["url"])).headers.get("last-modified") or ""
    later = format_datetime(datetime.now(UTC) + timedelta(days=1), usegmt=True)
    await _not_modified(client, file["url"], {"if-modified-since": last_modified})
    await _not_modified(client, file["url"], {"if-modified-since": later})
    earlier = format_datetime(datetime(2000, 1, 1, tzinfo=UTC), usegmt=True)
    for value in (earlier, "yesterday", ""):
        response = await client.get(file["url"], headers={"if-modified-since": value})
        assert response.status_code == 200, value


async def test_if_none_match_takes_precedence_over_if_modified_since(client: TestClient) -> None:
    file = await upload(client, "book.txt", TEXT)
    last_modified = (await client.get(file["url"])).headers.get("last-modified") or ""
    response = await client.get(
        file["url"], headers={"if-none-match": '"stale"', "if-modified-since": last_modified}
    )
    assert response.status_code == 200
    assert response.content == TEXT
    etag = f'"{file["sha256"]}"'
    old = format_datetime(datetime(2000, 1, 1, tzinfo=UTC), usegmt=True)
    await _not_modified(client, file["url"], {"if-none-match": etag, "if-modified-since": old})


@both_stores
async def test_if_match_and_if_unmodified_since_give_412(client: TestClient) -> None:
    file = await upload(client, "book.txt", TEXT)
    etag = f'"{file["sha256"]}"'
    ok = await client.get(file["url"], headers={"if-match": etag})
    assert ok.status_code == 200
    for headers in (
        {"if-match": '"other"'},
        {"if-match": f"W/{etag}"},  # If-Match compares strongly
        {"if-unmodified-since": "Sat, 01 Jan 2000 00:00:00 GMT"},
    ):
        response = await client.get(file["url"], headers=headers)
        assert response.status_code == 412, headers
        assert "error" in response.json()


@both_stores
async def test_304_wins_over_range(client: TestClient) -> None:
    file = await upload(client, "book.txt", TEXT)
    etag = f'"{file["sha256"]}"'
    await _not_modified(client, file["url"], {"if-none-match": etag, "range": "bytes=0-9"})


# --- ranges --------------------------------------------------------------------------


async def _partial(client: TestClient, url: str, range_header: str, body: bytes) -> Any:
    response = await client.get(url, headers={"range": range_header, **ALL_ENCODINGS})
    assert response.status_code == 206, range_header
    match = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+)", response.headers.get("content-range") or "")
    assert match, response.headers.get("content-range")
    start, end, total = map(int, match.groups())
    assert total == len(body)
    assert response.content == body[start : end + 1]
    assert response.headers.get("content-length") == str(end - start + 1)
    assert response.headers.get("content-encoding") is None
    return start, end


@both_stores
async def test_single_ranges_give_206(client: TestClient) -> None:
    file = await upload(client, "blob.bin", BINARY)
    url, size = file["url"], len(BINARY)
    assert await _partial(client, url, "bytes=0-9", BINARY) == (0, 9)
    assert await _partial(client, url, "bytes=0-0", BINARY) == (0, 0)
    assert await _partial(client, url, "bytes=1000-", BINARY) == (1000, size - 1)
    assert await _partial(client, url, "bytes=-500", BINARY) == (size - 500, size - 1)
    assert await _partial(client, url, f"bytes={size - 1}-", BINARY) == (size - 1, size - 1)
    assert await _partial(client, url, "bytes=100-99999999999", BINARY) == (100, size - 1)
    assert await _partial(client, url, f"bytes=-{size * 2}", BINARY) == (0, size - 1)
    assert await _partial(client, url, "Bytes = 5-6", BINARY) == (5, 6)


@both_stores
async def test_seeking_in_a_video_is_206(client: TestClient) -> None:
    file = await upload(client, "clip.webm", WEBM)
    assert file["mime"] == "video/webm"
    start, end = await _partial(client, file["url"], f"bytes={len(WEBM) // 2}-", WEBM)
    assert (start, end) == (len(WEBM) // 2, len(WEBM) - 1)


@both_stores
async def test_head_with_range_mirrors_get(client: TestClient) -> None:
    file = await upload(client, "blob.bin", BINARY)
    head = await client.head(file["url"], headers={"range": "bytes=10-19"})
    assert head.status_code == 206
    assert head.content == b""
    assert head.headers.get("content-range") == f"bytes 10-19/{len(BINARY)}"
    assert head.headers.get("content-length") == "10"


@both_stores
@pytest.mark.parametrize("value", ["bytes=200000-", "bytes=999999-1000000", "bytes=-0"])
async def test_unsatisfiable_range_is_416_without_body(client: TestClient, value: str) -> None:
    file = await upload(client, "blob.bin", BINARY)
    for method in ("GET", "HEAD"):
        response = await client.request(method, file["url"], headers={"range": value})
        assert response.status_code == 416
        assert response.content == b""
        assert response.headers.get("content-range") == f"bytes */{len(BINARY)}"
        assert response.headers.get("content-length") == "0"
        assert response.headers.get("content-disposition") is None


@both_stores
async def test_any_range_of_an_empty_file_is_416(client: TestClient) -> None:
    file = await upload(client, "empty.txt", b"")
    response = await client.get(file["url"], headers={"range": "bytes=0-"})
    assert response.status_code == 416
    assert response.headers.get("content-range") == "bytes */0"


@pytest.mark.parametrize(
    "value",
    [
        "bytes=abc",
        "bytes=5-2",  # last-pos before first-pos: invalid, so the field is ignored
        "bytes=",
        "bytes=-",
        "bytes=--1",
        "bytes=1-2-3",
        "bytes=+1-2",
        "bytes=0x10-",
        "bytes=\xb9-2",  # a Latin-1 superscript one: Python's isdigit() says yes
        "items=0-9",
        "0-9",
        "bytes 0-9",
    ],
)
async def test_malformed_range_is_ignored(client: TestClient, value: str) -> None:
    file = await upload(client, "blob.bin", BINARY)
    response = await client.get(file["url"], headers={"range": value})
    assert response.status_code == 200
    assert response.content == BINARY
    assert response.headers.get("content-range") is None


@pytest.mark.parametrize("value", ["bytes=0-9,20-29", "bytes=0-0,-1", "bytes=0-9, 5-15, 100-"])
async def test_multiple_ranges_get_the_whole_file(client: TestClient, value: str) -> None:
    # Our choice (app/downloads/ranges.py): no multipart/byteranges, a plain 200.
    file = await upload(client, "blob.bin", BINARY)
    response = await client.get(file["url"], headers={"range": value})
    assert response.status_code == 200
    assert response.content == BINARY
    assert response.headers.get("content-range") is None
    assert response.headers.get("content-length") == str(len(BINARY))


@both_stores
async def test_if_range(client: TestClient) -> None:
    file = await upload(client, "blob.bin", BINARY)
    url, etag = file["url"], f'"{file["sha256"]}"'
    last_modified = (await client.get(url)).headers.get("last-modified") or ""
    for fresh in (etag, last_modified):
        response = await client.get(url, headers={"range": "bytes=5-9", "if-range": fresh})
        assert response.status_code == 206, fresh
        assert response.content == BINARY[5:10]
    stale_date = format_datetime(datetime(2000, 1, 1, tzinfo=UTC), usegmt=True)
    for stale in ('"old-etag"', f"W/{etag}", stale_date, "not a date"):
        response = await client.get(url, headers={"range": "bytes=5-9", "if-range": stale})
        assert response.status_code == 200, stale
        assert response.content == BINARY
    # A stale If-Range also turns an unsatisfiable range into the whole file.
    response = await client.get(url, headers={"range": "bytes=999999-", "if-range": '"old"'})
    assert response.status_code == 200


# --- names (RFC 6266 / RFC 8187) -----------------------------------------------------

NAMES = [
    ("résumé.pdf", PDF, "résumé.pdf", "resume.pdf"),
    ('"quoted".txt', TEXT, '"quoted".txt', "_quoted_.txt"),
    ("evil\r\nSet-Cookie: owned=1.txt", TEXT, "evil Set-Cookie: owned=1.txt", None),
    ("日本語.png", PNG, "日本語.png", "RiBenYu.png"),
    ("a" * 296 + ".txt", TEXT, "a" * 251 + ".txt", "a" * 251 + ".txt"),
    # A leading dot stays in the name, not in the ASCII fallback (a hidden file there).
    ("..\\..\\x", TEXT, ".._.._x", "_.._x"),
    (" . ", TEXT, "unnamed", "unnamed"),
]


@pytest.mark.parametrize(("name", "body", "stored", "fallback"), NAMES)
async def test_names_round_trip_safely(
    client: TestClient, name: str, body: bytes, stored: str, fallback: str | None
) -> None:
    file = await upload(client, name, body)
    assert file["name"] == stored
    for method in ("GET", "HEAD"):
        response = await client.request(method, file["url"])
        assert response.status_code == 200
        assert response.headers.get("set-cookie") is None
        assert not response.cookies
        for key, value in response.headers.items():
            assert re.fullmatch(r"[\x20-\x7e]*", value), (key, value)
        value = response.headers.get("content-disposition") or ""
        # The exact name comes back through RFC 8187 `filename*` ...
        assert filename_from_disposition(value) == stored
        # ... and an ASCII quoted-string `filename` stands in for older agents.
        match = re.search(r'filename="((?:[^"\\]|\\.)*)"', value)
        assert match, value
        if fallback is not None:
            assert match.group(1) == fallback
        assert re.search(r"filename\*=UTF-8''[A-Za-z0-9!#$&+\-.^_`|~%]+$", value), value


async def test_an_empty_name_is_refused_at_upload(client: TestClient) -> None:
    response = await client.post("/uploads", params={"name": ""}, content=b"x")
    assert response.status_code == 400


# --- safe inline policy ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "body", "claimed", "mime", "kind", "csp"),
    [
        ("photo.png", PNG, "text/html", "image/png", "inline", IMAGE),
        ("clip.webm", WEBM, None, "video/webm", "inline", MEDIA),
        ("paper.pdf", PDF, None, "application/pdf", "inline", SANDBOX),
        ("notes.txt", TEXT, None, "text/plain; charset=utf-8", "inline", SANDBOX),
        ("page.png", HTML, "image/png", "text/html", "attachment", SANDBOX),
        ("logo.svg", SVG, "image/svg+xml", "image/svg+xml", "attachment", SANDBOX),
        ("data.xml", XML, None, "application/xml", "attachment", SANDBOX),
        (
            "app.js",
            b"fetch('/api/files').then(r => r.text())",
            None,
            "text/plain; charset=utf-8",
            "attachment",
            SANDBOX,
        ),  # fmt: skip
        (
            "notes.txt",
            b"alert(1)",
            "text/javascript",
            "text/plain; charset=utf-8",
            "attachment",
            SANDBOX,
        ),  # fmt: skip
        ("blob.bin", BINARY, "image/png", "application/octet-stream", "attachment", SANDBOX),
    ],
)
async def test_sniffed_type_and_inline_policy(
    client: TestClient,
    name: str,
    body: bytes,
    claimed: str | None,
    mime: str,
    kind: str,
    csp: str,
) -> None:
    file = await upload(client, name, body, claimed)
    response = await client.get(file["url"])
    assert response.status_code == 200
    assert response.headers.get("content-type") == mime
    assert (response.headers.get("content-disposition") or "").split(";")[0] == kind
    assert response.headers.get("content-security-policy") == csp
    assert response.headers.get("x-content-type-options") == "nosniff"
    forced = await client.get(file["url"], params={"download": "1"})
    assert (forced.headers.get("content-disposition") or "").startswith("attachment;")
    assert forced.headers.get("content-security-policy") == SANDBOX
    assert forced.content == body


async def test_every_answer_carries_nosniff_and_the_sandbox(client: TestClient) -> None:
    file = await upload(client, "photo.png", PNG)
    url, etag = file["url"], f'"{file["sha256"]}"'
    for headers in ({}, {"range": "bytes=0-3"}, {"range": "bytes=99999-"}, {"if-none-match": etag}):
        for method in ("GET", "HEAD"):
            response = await client.request(method, url, headers=headers)
            assert response.headers.get("x-content-type-options") == "nosniff"
            csp = response.headers.get("content-security-policy") or ""
            assert csp.startswith("sandbox") and "default-src 'none'" in csp
            assert "allow-scripts" not in csp


# --- pure rules: Range ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "size", "expected"),
    [
        (None, 10, None),
        ("bytes=0-4", 10, ByteRange(0, 4, 10)),
        ("bytes=4-", 10, ByteRange(4, 9, 10)),
        ("bytes=-3", 10, ByteRange(7, 9, 10)),
        ("bytes=-30", 10, ByteRange(0, 9, 10)),
        ("bytes=3-3", 10, ByteRange(3, 3, 10)),
        ("bytes=9-100", 10, ByteRange(9, 9, 10)),
        ("bytes=0-" + "9" * 5000, 10, ByteRange(0, 9, 10)),
        ("BYTES=1-2", 10, ByteRange(1, 2, 10)),
        ("bytes= 1-2 ,", 10, ByteRange(1, 2, 10)),
        ("bytes=10-", 10, UNSATISFIABLE),
        ("bytes=" + "9" * 5000 + "-", 10, UNSATISFIABLE),
        ("bytes=-0", 10, UNSATISFIABLE),
        ("bytes=0-", 0, UNSATISFIABLE),
        ("bytes=-1", 0, UNSATISFIABLE),
        ("bytes=4-3", 10, None),
        ("bytes=0-1,3-4", 10, None),
        ("bytes=0-1,x", 10, None),
        ("bytes=", 10, None),
        ("bytes=,", 10, None),
        ("bytes=-", 10, None),
        ("bytes=1 - 2", 10, None),
        ("bytes=٣-4", 10, None),
        ("pages=1-2", 10, None),
    ],
)
def test_parse_range(value: str | None, size: int, expected: object) -> None:
    assert parse_range(value, size) == expected


def test_byte_range_headers() -> None:
    byte_range = ByteRange(5, 9, 100)
    assert byte_range.length == 5
    assert byte_range.content_range == "bytes 5-9/100"


# --- pure rules: validators ----------------------------------------------------------

ETAG = '"abc"'
MODIFIED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
SAME = "Fri, 02 Jan 2026 03:04:05 GMT"
BEFORE = "Fri, 02 Jan 2026 03:04:04 GMT"
AFTER = "Fri, 02 Jan 2026 03:04:06 GMT"


@pytest.mark.parametrize(
    ("value", "weak", "strong"),
    [
        ('"abc"', True, True),
        ('W/"abc"', True, False),
        ('"x", "abc"', True, True),
        (' "x" ,, W/"abc" ', True, False),
        ("*", True, True),
        ('"ab"', False, False),
        ("abc", False, False),
        ('"abc" "x"', False, False),  # no comma: malformed, matches nothing
        ('"a,b", "abc"', True, True),  # a comma may stand inside a tag
        ("", False, False),
    ],
)
def test_entity_tag_comparison(value: str, weak: bool, strong: bool) -> None:
    assert matches_weakly(value, ETAG) is weak
    assert matches_strongly(value, ETAG) is strong


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, Precondition.PROCEED),
        ({"if_none_match": ETAG}, Precondition.NOT_MODIFIED),
        ({"if_none_match": '"zzz"'}, Precondition.PROCEED),
        ({"if_modified_since": SAME}, Precondition.NOT_MODIFIED),
        ({"if_modified_since": AFTER}, Precondition.NOT_MODIFIED),
        ({"if_modified_since": BEFORE}, Precondition.PROCEED),
        ({"if_modified_since": "garbage"}, Precondition.PROCEED),
        ({"if_none_match": '"zzz"', "if_modified_since": AFTER}, Precondition.PROCEED),
        ({"if_none_match": ETAG, "if_modified_since": BEFORE}, Precondition.NOT_MODIFIED),
        ({"if_match": ETAG}, Precondition.PROCEED),
        ({"if_match": '"zzz"'}, Precondition.FAILED),
        ({"if_match": "*", "if_none_match": ETAG}, Precondition.NOT_MODIFIED),
        ({"if_unmodified_since": BEFORE}, Precondition.FAILED),
        ({"if_unmodified_since": SAME}, Precondition.PROCEED),
        ({"if_match": ETAG, "if_unmodified_since": BEFORE}, Precondition.PROCEED),
    ],
)
def test_evaluate_preconditions(headers: dict[str, str], expected: Precondition) -> None:
    assert evaluate_preconditions(ETAG, MODIFIED, **headers) is expected


@pytest.mark.parametrize(
    ("value", "holds"),
    [
        (ETAG, True),
        (SAME, True),
        ("Friday, 02-Jan-26 03:04:05 GMT", True),
        ("Fri Jan  2 03:04:05 2026", True),
        ('W/"abc"', False),
        ('"zzz"', False),
        (BEFORE, False),
        (AFTER, False),  # a date must match exactly, not merely be later
        ("soon", False),
        ('"abc", "zzz"', False),
    ],
)
def test_if_range_holds(value: str, holds: bool) -> None:
    assert if_range_holds(value, ETAG, MODIFIED) is holds


def test_dates() -> None:
    assert modified_at("2026-01-02T03:04:05.987654Z") == MODIFIED
    assert parse_http_date(SAME) == MODIFIED
    assert parse_http_date("Fri Jan  2 03:04:05 2026") == MODIFIED
    assert parse_http_date("nonsense") is None
    assert parse_http_date(None) is None


# --- pure rules: names and policy ----------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("plain.txt", "attachment; filename=\"plain.txt\"; filename*=UTF-8''plain.txt"),
        (
            "résumé.pdf",
            "attachment; filename=\"resume.pdf\"; filename*=UTF-8''r%C3%A9sum%C3%A9.pdf",
        ),
        # RFC 6266 App. D: no backslash or quote in the fallback, so none to escape.
        ('a"b\\c.txt', "attachment; filename=\"a_b_c.txt\"; filename*=UTF-8''a%22b%5Cc.txt"),
        ("100%.txt", "attachment; filename=\"100_.txt\"; filename*=UTF-8''100%25.txt"),
        ("a\r\nb\x00c", "attachment; filename=\"a_b_c\"; filename*=UTF-8''a%0D%0Ab%00c"),
        # Other scripts are transliterated (anyascii), never a name of underscores.
        (
            "日本語.txt",
            'attachment; filename="RiBenYu.txt";'
            " filename*=UTF-8''%E6%97%A5%E6%9C%AC%E8%AA%9E.txt",
        ),
        (
            "Привет.pdf",
            'attachment; filename="Privet.pdf";'
            " filename*=UTF-8''%D0%9F%D1%80%D0%B8%D0%B2%D0%B5%D1%82.pdf",
        ),
        # No path separator; nothing left of the stem: `download` and the extension.
        ("a/b:c.txt", "attachment; filename=\"a_b_c.txt\"; filename*=UTF-8''a%2Fb%3Ac.txt"),
        (
            "\u2605\u2606.zip",
            "attachment; filename=\"download.zip\"; filename*=UTF-8''%E2%98%85%E2%98%86.zip",
        ),
        ("", "attachment; filename=\"download\"; filename*=UTF-8''download"),
    ],
)
def test_content_disposition(name: str, expected: str) -> None:
    value = content_disposition("attachment", name)
    assert value == expected
    assert re.fullmatch(r"[\x20-\x7e]+", value)


def test_served_type_never_lets_a_bad_type_through() -> None:
    assert served_type("image/png") == "image/png"
    assert served_type("text/plain") == "text/plain; charset=utf-8"
    assert served_type("text/html\r\nSet-Cookie: x=1") == "application/octet-stream"
    assert served_type("") == "application/octet-stream"


def test_policy_rules() -> None:
    assert disposition("image/png") == "inline"
    assert disposition("image/png", force_download=True) == "attachment"
    assert disposition("image/svg+xml") == "attachment"
    assert disposition("text/plain", name="x.html") == "attachment"
    assert disposition("text/plain", name="x.txt", declared_mime="text/html; charset=x") == (
        "attachment"
    )
    assert disposition("text/plain", name="readme") == "inline"
    assert disposition("application/x-unknown") == "attachment"
    assert content_security_policy("video/mp4", "inline") == MEDIA
    assert content_security_policy("video/mp4", "attachment") == SANDBOX
    assert content_security_policy("image/webp", "inline") == IMAGE
    assert content_security_policy("application/pdf", "inline") == SANDBOX
    for csp in (SANDBOX, IMAGE, MEDIA):
        assert "allow-scripts" not in csp and "default-src 'none'" in csp


# --- the send loop -------------------------------------------------------------------


class FakeWriter:
    """Just what `send_bytes` uses of a Writer; `hang_up_after` bytes, then `closing`."""

    def __init__(self, hang_up_after: int | None = None) -> None:
        self.sent = bytearray()
        self.hang_up_after = hang_up_after
        self.ended = self.aborted = False
        self.drains = 0

    @property
    def closing(self) -> bool:
        return self.hang_up_after is not None and len(self.sent) >= self.hang_up_after

    def write(self, data: bytes) -> None:
        self.sent += data

    async def drain(self) -> None:
        self.drains += 1

    def end(self) -> None:
        self.ended = True

    def abort(self) -> None:
        self.aborted = True


@pytest.fixture
def blob_fd(tmp_path: Any):
    path = tmp_path / "blob"
    path.write_bytes(BINARY * 20)  # ~4 MB: several 1 MiB reads
    fd = os.open(path, os.O_RDONLY)
    yield fd
    os.close(fd)


async def test_send_streams_exactly_the_range(blob_fd: int) -> None:
    body = BINARY * 20
    for start, length in ((0, len(body)), (12345, 3 * 1024 * 1024 + 7), (len(body) - 1, 1)):
        w = FakeWriter()
        complete = await send_bytes(w, blob_fd, start, length)  # type: ignore[arg-type]
        assert bytes(w.sent) == body[start : start + length]
        # Every byte went out; ending the answer is the caller's (an archive sends many).
        assert complete and not w.ended and not w.aborted
        assert w.drains == -(-length // READ_BYTES)  # a drain after every chunk


async def test_send_stops_when_the_client_hangs_up(blob_fd: int) -> None:
    w = FakeWriter(hang_up_after=1)
    complete = await send_bytes(w, blob_fd, 0, len(BINARY) * 20)  # type: ignore[arg-type]
    assert len(w.sent) == READ_BYTES and not w.ended and not complete


async def test_send_aborts_when_the_blob_is_short(blob_fd: int) -> None:
    w = FakeWriter()
    await send_bytes(w, blob_fd, 0, len(BINARY) * 20 + 1)  # type: ignore[arg-type]
    assert w.aborted and not w.ended
