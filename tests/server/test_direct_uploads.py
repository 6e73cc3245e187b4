"""Direct uploads against a real SeaweedFS: the JSON API of app/features/direct (through
the app's TestClient) hands out part URLs, and the parts go straight to the S3 port
with httpx, as a browser's or a script's would; the node checks what arrived and
records the file. Hostile clients (wrong lengths, edited URLs, expired URLs, missing
or foreign parts, another account's session) get nothing extra."""

import asyncio
import hashlib
import os
from pathlib import Path

import httpx
import pytest
from tests.support.fixtures import (
    add_account,
    app_client,
    bearer,
    s3_config,
    signed_in_client,
    stored_objects,
    unfinished_resumable,
)
from tests.support.seaweed import Seaweed

from app.config import Config

pytestmark = pytest.mark.slow
MiB = 1024 * 1024
PART = 8 * MiB
ZIP_HEAD = b"PK\x03\x04"


def body_of(size: int) -> bytes:
    """Random bytes that sniff as a ZIP."""
    return ZIP_HEAD + os.urandom(size - len(ZIP_HEAD))


async def put_part(s3: httpx.AsyncClient, part: dict, data: bytes) -> httpx.Response:
    return await s3.put(part["url"], content=data, headers=part.get("headers", {}))


async def send_parts(s3: httpx.AsyncClient, session: dict, body: bytes) -> list[dict]:
    """Every part the session lists, in parallel; their numbers and ETags."""
    size = session["part_size"]

    async def one(part: dict) -> dict:
        start = (part["number"] - 1) * size
        r = await put_part(s3, part, body[start : start + part["size"]])
        assert r.status_code == 200, r.text
        return {"number": part["number"], "etag": r.headers["etag"]}

    return list(await asyncio.gather(*(one(p) for p in session["parts"])))


async def open_session(client, body: bytes, name: str = "d.zip", **fields) -> dict:
    r = await client.post("/api/uploads/direct", json={"name": name, "size": len(body), **fields})
    assert r.status_code == 201, r.text
    return r.json()["session"]


async def usage(config: Config) -> int:
    """Bytes the catalog holds reserved by unfinished uploads."""
    from app.catalog.open import open_catalog

    db = await open_catalog(config)
    try:
        row = await db.fetch_one("SELECT COALESCE(SUM(reserved), 0) FROM resumable_uploads")
        return int(row[0])
    finally:
        await db.close()


async def test_a_three_part_upload_becomes_a_file(tmp_path: Path, seaweed: Seaweed) -> None:
    config = s3_config(tmp_path / "data", seaweed)
    body = body_of(17 * MiB)
    async with signed_in_client(config) as client, httpx.AsyncClient() as s3:
        session = await open_session(client, body, content_type="application/zip")
        assert session["part_size"] == PART
        assert [(p["number"], p["size"]) for p in session["parts"]] == [
            (1, PART), (2, PART), (3, MiB),
        ]  # fmt: skip
        assert session["more"] is False and session["checksum"] == "read-back"
        assert session["expires_at"].endswith("Z")
        parts = await send_parts(s3, session, body)
        r = await client.post(
            f"/api/uploads/direct/{session['id']}/complete", json={"parts": parts}
        )
        assert r.status_code == 201, r.text
        file = r.json()["file"]
        assert r.json()["files"] == [file]
        assert file["sha256"] == hashlib.sha256(body).hexdigest()
        assert (file["size"], file["mime"], file["name"]) == (len(body), "application/zip", "d.zip")
        listed = (await client.get("/api/files")).json()["files"]
        assert [f["id"] for f in listed] == [file["id"]]
        assert (await client.get(file["url"])).content == body
        # Completing again answers the same file; the session is not a tus upload.
        again = await client.post(
            f"/api/uploads/direct/{session['id']}/complete", json={"parts": parts}
        )
        assert (again.status_code, again.json()["file"]["id"]) == (201, file["id"])
        tus = await client.head(f"/tus/{session['id']}", headers={"tus-resumable": "1.0.0"})
        assert tus.status_code == 404
    assert await stored_objects(config) == {file["id"]: len(body)}
    assert await usage(config) == 0
