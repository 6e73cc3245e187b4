"""The HTTP API through Stario's TestClient on the production bootstrap."""

import hashlib
import os
from pathlib import Path

import pytest
from tests.support.fixtures import both_stores, signed_in_client, stored_blobs, stored_objects

from app.config import Config


async def upload(client, body: bytes, name: str = "notes.txt", **headers: str):
    return await client.put(f"/uploads/{name}", content=body, headers=headers)


@both_stores
async def test_put_upload_answers_201_with_location_and_json(client, config):
    body = b"hello, stowage\n"
    r = await upload(client, body, "hello.txt", **{"content-type": "application/pdf"})
    assert r.status_code == 201
    [entry] = r.json()["files"]
    assert r.headers.get("location") == f"/files/{entry['id']}" == entry["url"]
    assert entry["name"] == "hello.txt"
    assert entry["size"] == len(body)
    assert entry["sha256"] == hashlib.sha256(body).hexdigest()
    assert entry["mime"] == "text/plain"
    assert entry["declared_mime"] == "application/pdf"
    assert len(entry["id"]) == 22
    assert entry["id"] not in {"hello.txt", "hello"}
    if config.storage.kind == "s3":
        assert await stored_objects(config) == {entry["id"]: len(body)}
        return
    [blob] = stored_blobs(config)
    assert blob.read_bytes() == body
    assert "hello" not in str(blob)


@both_stores
async def test_post_raw_takes_the_name_from_the_query(client):
    r = await client.post("/uploads?name=report.pdf", content=b"%PDF-1.4\n")
    assert r.status_code == 201
    assert r.json()["files"][0]["name"] == "report.pdf"
    assert r.json()["files"][0]["mime"] == "application/pdf"


async def test_post_raw_takes_the_name_from_content_disposition(client):
    r = await client.post(
        "/uploads",
        content=b"x",
        headers={
            "content-type": "application/octet-stream",
            "content-disposition": 'attachment; filename="resume.pdf"; '
            "filename*=UTF-8''r%C3%A9sum%C3%A9.pdf",
        },
    )
    assert r.status_code == 201
    assert r.json()["files"][0]["name"] == "résumé.pdf"


async def test_post_raw_without_a_name_is_400(client, config):
    r = await client.post("/uploads", content=b"x", headers={"content-type": "text/plain"})
    assert r.status_code == 400
    assert "name the file" in r.json()["error"]
    assert stored_blobs(config) == []


async def test_list_is_newest_first(client):
    for name in ("one", "two", "three"):
        assert (await upload(client, name.encode(), name)).status_code == 201
    r = await client.get("/api/files")
    assert r.status_code == 200
    assert [f["name"] for f in r.json()["files"]] == ["three", "two", "one"]
    paged = await client.get("/api/files?limit=1&offset=1")
    assert [f["name"] for f in paged.json()["files"]] == ["two"]
    bad = await client.get("/api/files?limit=-1")
    assert bad.status_code == 400
    assert "limit" in bad.json()["error"]


@both_stores
async def test_download_returns_identical_bytes_with_fixed_length(client):
    body = os.urandom(3 * 1024 * 1024 + 11)
    file_id = (await upload(client, body, "blob.bin")).json()["files"][0]["id"]
    r = await client.get(f"/files/{file_id}", headers={"accept-encoding": "gzip, br, zstd"})
    assert r.status_code == 200
    assert r.content == body
    assert r.headers.get("content-length") == str(len(body))
    assert r.headers.get("content-encoding") is None
    assert r.headers.get("content-type") == "application/octet-stream"
    assert r.headers.get("x-content-type-options") == "nosniff"
    assert r.headers.get("content-disposition") == (
        "attachment; filename=\"blob.bin\"; filename*=UTF-8''blob.bin"
    )


async def test_download_names_survive_unicode(client):
    file_id = (await upload(client, b"\x89PNG\r\n\x1a\n", "日本語.png")).json()["files"][0]["id"]
    r = await client.get(f"/files/{file_id}")
    disposition = r.headers.get("content-disposition")
    assert "filename*=UTF-8''%E6%97%A5%E6%9C%AC%E8%AA%9E.png" in disposition
    assert 'filename="RiBenYu.png"' in disposition


@both_stores
async def test_head_has_the_headers_and_no_body(client):
    body = b"%PDF-1.4\n" + b"x" * 1000
    file_id = (await upload(client, body, "doc.pdf")).json()["files"][0]["id"]
    r = await client.head(f"/files/{file_id}")
    assert r.status_code == 200
    assert r.content == b""
    assert r.headers.get("content-length") == str(len(body))
    assert r.headers.get("content-type") == "application/pdf"


@pytest.mark.parametrize("file_id", ["AAAAAAAAAAAAAAAAAAAAAA", "nope", "..%2F..%2Fstowage.db"])
async def test_unknown_file_is_404(client, file_id):
    for method in ("GET", "HEAD"):
        r = await client.request(method, f"/files/{file_id}")
        assert r.status_code == 404
    assert (await client.get(f"/files/{file_id}")).json() == {"error": "no such file"}


async def test_file_over_the_cap_is_413_and_nothing_is_kept(tmp_path: Path):
    config = Config.load({"data_dir": str(tmp_path), "max_file_bytes": "1000"}, environ={})
    async with signed_in_client(config) as client:
        r = await upload(client, b"x" * 1001, "big.bin")
        assert r.status_code == 413
        assert r.json() == {"error": "big.bin is larger than the 1000 bytes limit"}
        assert r.headers.get("connection") == "close"
        assert stored_blobs(config) == []
        assert (await client.get("/api/files")).json() == {"files": []}
        assert (await upload(client, b"x" * 1000, "fits.bin")).status_code == 201


async def test_body_over_the_server_cap_is_refused_by_stario(tmp_path: Path):
    config = Config.load({"data_dir": str(tmp_path), "max_request_body_bytes": "2000"}, environ={})
    async with signed_in_client(config) as client:
        r = await upload(client, b"x" * 2001, "big.bin")
        assert r.status_code == 413
        assert stored_blobs(config) == []


async def test_page_lists_files_and_loads_self_hosted_datastar(client):
    await client.post("/uploads?name=%3Cb%3Ebold%3C%2Fb%3E.txt", content=b"hi")
    r = await client.get("/")
    assert r.status_code == 200
    assert "&lt;b&gt;bold&lt;_b&gt;.txt" in r.text
    assert "<b>bold" not in r.text
    assert '<script type="module" src="/static/vendor/datastar.' in r.text
    script = r.text.split('<script type="module" src="', 1)[1].split('"', 1)[0]
    bundle = await client.get(script)
    assert bundle.status_code == 200
    assert hashlib.sha256(bundle.content).hexdigest() == (
        "727844adfc825ee651fb93c544a2a739986f9a21820a94524b35f0cac470cf91"
    )
    notice_url = r.text.split('<footer><a href="', 1)[1].split('"', 1)[0]
    notice = await client.get(notice_url)
    assert notice.status_code == 200
    assert "Copyright (c) Star Federation" in notice.text
