"""POST /uploads: Datastar file signals, streamed multipart and raw, one pipeline."""

import base64
import hashlib
import os
from pathlib import Path

import pytest
from datastar_py import ServerSentEventGenerator
from tests.support.fixtures import signed_in_client, stored_blobs

from app.config import Config
from app.features.uploads.views import render_refusal, render_results

DATASTAR = {"datastar-request": "true", "accept": "text/event-stream, text/html, application/json"}
BOUNDARY = "----WebKitFormBoundary7MA4YWxkTrZu0gW"


def signal(name: str, body: bytes, mime: str | None = "application/octet-stream") -> dict:
    return {"name": name, "contents": base64.b64encode(body).decode(), "mime": mime}


def form(*parts: tuple[str, str | None, bytes, str | None], boundary: str = BOUNDARY) -> bytes:
    """A body the way Chromium's FormData writes it: (field, filename, bytes, type)."""
    out = b""
    for field, filename, body, content_type in parts:
        out += f"--{boundary}\r\n".encode()
        disposition = f'Content-Disposition: form-data; name="{field}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        out += disposition.encode() + b"\r\n"
        if content_type is not None:
            out += f"Content-Type: {content_type}\r\n".encode()
        out += b"\r\n" + body + b"\r\n"
    return out + f"--{boundary}--\r\n".encode()


def multipart_headers(boundary: str = BOUNDARY, **extra: str) -> dict[str, str]:
    return {"content-type": f"multipart/form-data; boundary={boundary}", **extra}


def sse_events(text: str) -> list[tuple[str, list[str]]]:
    """(event type, data lines) per event, as an EventSource would split them."""
    events = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        kind, data = "", []
        for line in block.split("\n"):
            field, _, value = line.partition(": ")
            if field == "event":
                kind = value
            elif field == "data":
                data.append(value)
        events.append((kind, data))
    return events


async def rows(client) -> list[dict]:
    return (await client.get("/api/files")).json()["files"]


@pytest.fixture
async def small_client(tmp_path: Path):
    config = Config.load(
        {"data_dir": str(tmp_path), "max_file_bytes": "1000", "max_signals_bytes": "4000"},
        environ={},
    )
    async with signed_in_client(config) as client:
        client.config = config  # type: ignore[attr-defined]
        yield client


# --- Datastar file signals -------------------------------------------------------------


async def test_signals_from_datastar_answer_with_sse_patches(client):
    body = b"\x89PNG\r\n\x1a\n" + os.urandom(2000)
    payload = {"files": [signal("cat.png", body, "image/png")], "note": "ignored"}
    r = await client.post("/uploads", json=payload, headers=DATASTAR)
    assert r.status_code == 200
    assert r.headers.get("content-type").startswith("text/event-stream")
    [stored] = await rows(client)
    assert stored["sha256"] == hashlib.sha256(body).hexdigest()
    assert stored["mime"] == "image/png"

    events = sse_events(r.text)
    assert [kind for kind, _ in events] == ["datastar-patch-elements", "datastar-patch-signals"]
    assert "cat.png" in "".join(events[0][1])
    assert f"/files/{stored['id']}" in "".join(events[0][1])
    # datastar-py, an independent implementation, frames the same events identically.
    oracle = str(ServerSentEventGenerator.patch_signals({"files": []}))
    assert sse_events(oracle)[0] == events[1]
    assert events[0][1][0].startswith("elements ")


async def test_sse_wire_format_matches_datastar_py(client):
    from stario.markup import render

    r = await client.post("/uploads", json={"files": []}, headers=DATASTAR)
    refusal = render(render_refusal(400, 'the "files" signal is empty: pick a file first'))
    assert r.text == str(ServerSentEventGenerator.patch_elements(refusal))
    assert render(render_results([])).startswith('<div id="upload-results"')


async def test_signals_from_scripts_answer_json(client):
    payload = {"files": [signal("a.txt", b"alpha", "text/plain"), signal("b.bin", b"\x00\x01")]}
    r = await client.post("/uploads", json=payload)
    assert r.status_code == 201
    data = r.json()
    assert [f["name"] for f in data["files"]] == ["a.txt", "b.bin"]
    assert data["fields"] == {}
    assert r.headers.get("location") == data["files"][0]["url"]


async def test_signals_tolerate_a_data_url_prefix(client):
    entry = signal("a.txt", b"hello")
    entry["contents"] = "data:text/plain;base64," + entry["contents"]
    r = await client.post("/uploads", json={"files": [entry]})
    assert r.status_code == 201
    file_id = r.json()["files"][0]["id"]
    assert (await client.get(f"/files/{file_id}")).content == b"hello"


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"other": 1}', 'no "files" signal'),
        (b'{"files": {"name": "x"}}', 'no "files" signal'),
        (b'{"files": []}', "is empty"),
        (b'{"files": [3]}', "file 1 is not an object"),
        (b'{"files": [{"contents": "aGk="}]}', "file 1 has no name"),
        (b'{"files": [{"name": "x", "contents": "aGk="}, {"name": "", "contents": ""}]}',
         "file 2 has no name"),
        (b'{"files": [{"name": "x.txt"}]}', "x.txt: contents are missing"),
        (b'{"files": [{"name": "x.txt", "contents": "**notbase64**"}]}', "not valid base64"),
        (b'{"files": [{"name": "x.txt", "contents": "data:text/plain,hi"}]}', "not base64"),
    ],
)  # fmt: skip
async def test_bad_signals_are_400_naming_the_problem(client, config, body, words):
    r = await client.post("/uploads", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert words in r.json()["error"]
    assert stored_blobs(config) == []
    assert await rows(client) == []


async def test_signals_are_all_or_nothing(client, config):
    payload = {"files": [signal("good.txt", b"fine"), {"name": "bad.txt", "contents": "!!"}]}
    r = await client.post("/uploads", json=payload)
    assert r.status_code == 400
    assert stored_blobs(config) == []
    assert await rows(client) == []


async def test_signals_body_over_its_cap_is_413(small_client):
    payload = {"files": [signal("a.bin", b"x" * 900)], "pad": "y" * 4000}
    r = await small_client.post("/uploads", json=payload)
    assert r.status_code == 413
    assert r.json()["error"] == "file signals are larger than the 3.9 KiB limit"
    assert stored_blobs(small_client.config) == []


async def test_signals_file_over_the_file_cap_is_413_in_the_page(small_client):
    payload = {"files": [signal("ok.bin", b"x" * 10), signal("huge.bin", b"x" * 1001)]}
    r = await small_client.post("/uploads", json=payload, headers=DATASTAR)
    assert r.status_code == 200
    [(kind, data)] = sse_events(r.text)
    assert kind == "datastar-patch-elements"
    assert "huge.bin is larger than the 1000 bytes limit" in "".join(data)
    assert 'role="alert"' in "".join(data)
    assert stored_blobs(small_client.config) == []
    assert await rows(small_client) == []


# --- multipart ----------------------------------------------------------------------------


async def test_browser_multipart_stores_every_file_and_returns_fields(client):
    photo = b"\xff\xd8\xff\xe0" + os.urandom(300_000)
    body = form(
        ("title", None, "Holiday ☀".encode(), None),
        ("files", "beach.jpg", photo, "image/jpeg"),
        ("files", "notes.txt", b"sand\n", "text/plain"),
        ("attachment", "日本語.png", b"\x89PNG\r\n\x1a\n", "image/png"),
        ("tag", None, b"a", None),
        ("tag", None, b"b", None),
    )
    r = await client.post("/uploads", content=body, headers=multipart_headers())
    assert r.status_code == 201, r.text
    data = r.json()
    assert [f["name"] for f in data["files"]] == ["beach.jpg", "notes.txt", "日本語.png"]
    assert data["files"][0]["sha256"] == hashlib.sha256(photo).hexdigest()
    assert [f["mime"] for f in data["files"]] == ["image/jpeg", "text/plain", "image/png"]
    assert data["fields"] == {"title": "Holiday ☀", "tag": ["a", "b"]}
    downloaded = await client.get(data["files"][0]["url"])
    assert downloaded.content == photo


async def test_multipart_from_datastar_answers_sse(client):
    body = form(("files", "a.txt", b"hello", "text/plain"))
    r = await client.post("/uploads", content=body, headers=multipart_headers(**DATASTAR))
    assert r.status_code == 200
    kinds = [kind for kind, _ in sse_events(r.text)]
    assert kinds == ["datastar-patch-elements", "datastar-patch-signals"]


async def test_browser_escapes_in_filenames_are_undone(client):
    body = form(("f", "%22quoted%22.txt", b"q", "text/plain"))
    r = await client.post("/uploads", content=body, headers=multipart_headers())
    assert r.json()["files"][0]["name"] == '"quoted".txt'


async def test_empty_file_input_is_not_a_file(client, config):
    body = form(("files", "", b"", "application/octet-stream"), ("title", None, b"t", None))
    r = await client.post("/uploads", content=body, headers=multipart_headers())
    assert r.status_code == 400
    assert r.json()["error"] == "the form has no file in it"


@pytest.mark.parametrize(
    ("body", "content_type", "words"),
    [
        (form(("title", None, b"no file", None)), None, "no file in it"),
        (form(("f", "a.txt", b"x", None)), "multipart/form-data", "no boundary"),
        (form(("f", "a.txt", b"x", None)), "multipart/form-data; boundary=", "no boundary"),
        (form(("f", "a.txt", b"x", None)), "multipart/form-data; boundary=" + "b" * 71,
         "boundary is malformed"),
        (form(("f", "a.txt", b"x", None), boundary="other"), None, "malformed"),
        (form(("f", "a.txt", b"x" * 5000, None))[:-30], None, "ended before its closing"),
        (f"--{BOUNDARY}\r\nContent-Type: text/plain\r\n\r\nx\r\n--{BOUNDARY}--\r\n".encode(),
         None, "no Content-Disposition"),
        (f"--{BOUNDARY}\r\nContent-Disposition: form-data\r\n\r\nx\r\n--{BOUNDARY}--\r\n"
         .encode(), None, "has no name"),
        (b"garbage without any boundary", None, "malformed"),
        (b"", None, "ended before its closing"),
    ],
)  # fmt: skip
async def test_malformed_multipart_is_400(client, config, body, content_type, words):
    headers = multipart_headers()
    if content_type is not None:
        headers["content-type"] = content_type
    r = await client.post("/uploads", content=body, headers=headers)
    assert r.status_code == 400, r.text
    assert words in r.json()["error"]
    assert stored_blobs(config) == []
    assert await rows(client) == []


async def test_multipart_file_over_the_cap_is_413_and_the_request_is_atomic(small_client):
    body = form(
        ("files", "first.txt", b"kept? no", "text/plain"),
        ("files", "second.bin", b"x" * 1001, "application/octet-stream"),
    )
    r = await small_client.post("/uploads", content=body, headers=multipart_headers())
    assert r.status_code == 413
    assert r.json()["error"] == "second.bin is larger than the 1000 bytes limit"
    assert r.headers.get("connection") == "close"
    assert stored_blobs(small_client.config) == []
    assert await rows(small_client) == []


async def test_multipart_limits(client, config):
    many = form(*[("f", f"{n}.txt", b"x", None) for n in range(101)])
    r = await client.post("/uploads", content=many, headers=multipart_headers())
    assert r.status_code == 413
    assert "more than 100 parts" in r.json()["error"]

    big_header = form(("f", "a.txt", b"x", "text/plain; x=" + "y" * 8200))
    r = await client.post("/uploads", content=big_header, headers=multipart_headers())
    assert r.status_code in (400, 413)
    assert "header" in r.json()["error"]

    fields = form(("f", "a.txt", b"x", None), *[("t", None, b"z" * 9000, None)] * 8)
    r = await client.post("/uploads", content=fields, headers=multipart_headers())
    assert r.status_code == 413
    assert "text fields are larger than 64 KiB" in r.json()["error"]
    assert stored_blobs(config) == []
    assert await rows(client) == []

    hundred = form(*[("f", f"{n}.txt", b"x", None) for n in range(100)])
    r = await client.post("/uploads", content=hundred, headers=multipart_headers())
    assert r.status_code == 201
    assert len(r.json()["files"]) == 100


async def test_other_content_types_are_raw(client):
    r = await client.post(
        "/uploads?name=page.html",
        content=b"<!doctype html><script>alert(1)</script>",
        headers={"content-type": "image/png"},
    )
    assert r.status_code == 201
    entry = r.json()["files"][0]
    assert (entry["mime"], entry["declared_mime"]) == ("text/html", "image/png")


@pytest.mark.parametrize(
    "content_type",
    ["application/x-www-form-urlencoded", "multipart/mixed; boundary=x", "multipart/related"],
)
async def test_forms_that_cannot_carry_files_are_415(client, config, content_type):
    r = await client.post("/uploads", content=b"a=1&b=2", headers={"content-type": content_type})
    assert r.status_code == 415
    assert "cannot carry files" in r.json()["error"]
    assert stored_blobs(config) == []


@pytest.mark.parametrize(
    "content_type",
    ["application/x-www-form-urlencoded", "multipart/mixed; boundary=x", "application/json"],
)
async def test_a_body_that_names_its_file_is_raw_whatever_its_type(client, content_type):
    """`curl --data-binary @notes.txt '.../uploads?name=notes.txt'` sends
    application/x-www-form-urlencoded: the name makes it a raw upload."""
    r = await client.post(
        "/uploads?name=notes.txt", content=b"a=1&b=2", headers={"content-type": content_type}
    )
    assert r.status_code == 201
    [entry] = r.json()["files"]
    assert (entry["name"], entry["size"]) == ("notes.txt", 7)
    assert (await client.get(entry["url"])).content == b"a=1&b=2"
