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


async def test_one_part_with_a_declared_sha256_is_checked_by_the_store(
    tmp_path: Path, seaweed: Seaweed
) -> None:
    """A file of one part whose sha256 is declared: the part URL signs the checksum,
    the store refuses other bytes (400 BadDigest) and nothing is read back."""
    config = s3_config(tmp_path / "data", seaweed)
    body = body_of(3 * MiB)
    digest = hashlib.sha256(body).hexdigest()
    async with signed_in_client(config) as client, httpx.AsyncClient() as s3:
        session = await open_session(client, body, sha256=digest)
        assert session["checksum"] == "store"
        (part,) = session["parts"]
        assert "x-amz-checksum-sha256" in part["headers"]
        # Other bytes of the same length: the store checks the signed checksum.
        forged = body[:-1] + bytes([body[-1] ^ 1])
        r = await put_part(s3, part, forged)
        assert r.status_code == 400 and "BadDigest" in r.text, r.text
        # Without the header the signature does not match.
        r = await s3.put(part["url"], content=body)
        assert r.status_code == 403, r.text
        parts = await send_parts(s3, session, body)
        r = await client.post(
            f"/api/uploads/direct/{session['id']}/complete", json={"parts": parts}
        )
        assert r.status_code == 201, r.text
        assert r.json()["file"]["sha256"] == digest
        # A wrong declared sha256: the store refuses the true bytes, nothing is kept.
        wrong = await open_session(client, body, name="wrong.zip", sha256="0" * 64)
        r = await put_part(s3, wrong["parts"][0], body)
        assert r.status_code == 400 and "BadDigest" in r.text, r.text
        r = await client.post(
            f"/api/uploads/direct/{wrong['id']}/complete",
            json={"parts": [{"number": 1, "etag": '"x"'}]},
        )
        assert r.status_code == 400, r.text
        assert "does not hold part 1" in r.json()["error"]
        assert (await client.delete(f"/api/uploads/direct/{wrong['id']}")).status_code == 204
        assert len((await client.get("/api/files")).json()["files"]) == 1
    assert len(await stored_objects(config)) == 1


async def test_a_session_resumes_with_the_parts_the_bucket_lacks(
    tmp_path: Path, seaweed: Seaweed
) -> None:
    config = s3_config(tmp_path / "data", seaweed)
    body = body_of(17 * MiB)
    async with signed_in_client(config) as client, httpx.AsyncClient() as s3:
        session = await open_session(client, body)
        first, _, last = session["parts"]
        sent = []
        for part in (first, last):
            start = (part["number"] - 1) * PART
            r = await put_part(s3, part, body[start : start + part["size"]])
            assert r.status_code == 200
            sent.append({"number": part["number"], "etag": r.headers["etag"]})
        # A reload: the client asks what the bucket holds, and for fresh URLs.
        r = await client.get(f"/api/uploads/direct/{session['id']}")
        assert r.status_code == 200, r.text
        again = r.json()["session"]
        assert [(h["number"], h["size"]) for h in again["held"]] == [(1, PART), (3, MiB)]
        assert [h["etag"] for h in again["held"]] == [s["etag"] for s in sent]
        assert [p["number"] for p in again["parts"]] == [2]
        assert again["expires_at"] >= session["expires_at"]
        # `from` skips parts before it.
        later = (await client.get(f"/api/uploads/direct/{session['id']}?from=3")).json()
        assert later["session"]["parts"] == []
        sent += await send_parts(s3, again, body)
        r = await client.post(f"/api/uploads/direct/{session['id']}/complete", json={"parts": sent})
        assert r.status_code == 201, r.text
        assert r.json()["file"]["sha256"] == hashlib.sha256(body).hexdigest()


async def test_the_store_refuses_what_a_part_url_does_not_sign(
    tmp_path: Path, seaweed: Seaweed, monkeypatch: pytest.MonkeyPatch
) -> None:
    """More bytes than signed, fewer, the URL edited to another part number or key,
    and a URL past its lifetime: the store refuses each, and the session still
    completes with the right parts."""
    from app.storage.s3.direct import DirectBucket

    config = s3_config(tmp_path / "data", seaweed)
    body = body_of(PART + MiB)
    async with signed_in_client(config) as client, httpx.AsyncClient() as s3:
        session = await open_session(client, body)
        one, two = session["parts"]
        r = await put_part(s3, one, body[:PART] + b"more")
        assert r.status_code == 403, r.text
        r = await put_part(s3, one, body[: PART - 1])
        assert r.status_code == 403, r.text
        edited = one["url"].replace("partNumber=1", "partNumber=2")
        assert edited != one["url"]
        r = await s3.put(edited, content=body[PART:])
        assert r.status_code == 403, r.text
        # The same signature for another key (another blob's, another session's).
        path, _, query = one["url"].partition("?")
        r = await s3.put(f"{path}x?{query}", content=body[:PART])
        assert r.status_code == 403, r.text
        # Nothing the store refused is held.
        held = (await client.get(f"/api/uploads/direct/{session['id']}")).json()["session"]
        assert held["held"] == []
        # An expired URL.
        original = DirectBucket.part_url

        async def short_lived(self, *args, **kwargs):
            kwargs["seconds"] = 1
            return await original(self, *args, **kwargs)

        monkeypatch.setattr(DirectBucket, "part_url", short_lived)
        brief = (await client.get(f"/api/uploads/direct/{session['id']}")).json()["session"]
        await asyncio.sleep(2.5)
        r = await put_part(s3, brief["parts"][0], body[:PART])
        assert r.status_code == 403 and "expired" in r.text.lower(), r.text
        monkeypatch.undo()
        fresh = (await client.get(f"/api/uploads/direct/{session['id']}")).json()["session"]
        parts = await send_parts(s3, fresh, body)
        r = await client.post(
            f"/api/uploads/direct/{session['id']}/complete", json={"parts": parts}
        )
        assert r.status_code == 201, r.text
        assert r.json()["file"]["sha256"] == hashlib.sha256(body).hexdigest()


async def test_a_wrong_completion_is_refused_and_the_session_stays_open(
    tmp_path: Path, seaweed: Seaweed
) -> None:
    config = s3_config(tmp_path / "data", seaweed)
    body = body_of(2 * PART + 5)
    async with signed_in_client(config) as client, httpx.AsyncClient() as s3:
        session = await open_session(client, body)
        url = f"/api/uploads/direct/{session['id']}/complete"
        first_two = session["parts"][:2]
        parts = await send_parts(s3, {**session, "parts": first_two}, body)
        # Part 3 not sent yet, though listed.
        listed = [*parts, {"number": 3, "etag": '"0123"'}]
        r = await client.post(url, json={"parts": listed})
        assert (r.status_code, r.json()["error"]) == (
            400, "the bucket does not hold part 3 yet: send it (GET the session for its URL),"
            " then complete",
        )  # fmt: skip
        parts += await send_parts(s3, {**session, "parts": session["parts"][2:]}, body)
        refusals = {
            "missing": ([parts[0], parts[2]], "part 2 is missing"),
            "extra": ([*parts, {"number": 4, "etag": '"x"'}], "there is no part 4"),
            "twice": ([*parts, parts[0]], "part 1 is named twice"),
            "etag": ([parts[0], {"number": 2, "etag": parts[0]["etag"]}, parts[2]],
                     "part 2's ETag is not the one the bucket holds"),
        }  # fmt: skip
        for case, (listed, words) in refusals.items():
            r = await client.post(url, json={"parts": listed})
            assert r.status_code == 400, (case, r.text)
            assert words in r.json()["error"], (case, r.json())
        for bad in ({}, {"parts": []}, {"parts": [{"number": "1", "etag": "x"}]}, {"x": 1}):
            r = await client.post(url, json=bad)
            assert r.status_code == 400 and r.json()["error"], (bad, r.text)
        assert (await client.get("/api/files")).json()["files"] == []
        r = await client.post(url, json={"parts": parts})
        assert r.status_code == 201, r.text
    assert len(await stored_objects(config)) == 1


async def test_another_accounts_session_is_not_found(tmp_path: Path, seaweed: Seaweed) -> None:
    config = s3_config(tmp_path / "data", seaweed)
    _, other = await add_account(config, "other")
    body = body_of(MiB)
    async with signed_in_client(config) as client, httpx.AsyncClient() as s3:
        session = await open_session(client, body)
        parts = await send_parts(s3, session, body)
        base = f"/api/uploads/direct/{session['id']}"
        theirs = bearer(other)
        for method, url, payload in (
            ("GET", base, None),
            ("POST", f"{base}/complete", {"parts": parts}),
            ("DELETE", base, None),
        ):
            r = await client.request(method, url, json=payload, headers=theirs)
            assert r.status_code == 404, (method, r.text)
            assert "no such upload session" in r.json()["error"]
        # A tus upload's id is not a session, nor a session's a tus upload.
        tus = await client.post("/tus/", headers={"tus-resumable": "1.0.0", "upload-length": "3"})
        tus_id = (tus.headers.get("location") or "").rsplit("/", 1)[-1]
        assert (await client.get(f"/api/uploads/direct/{tus_id}")).status_code == 404
        r = await client.patch(
            f"/tus/{session['id']}", content=b"abc",
            headers={"tus-resumable": "1.0.0", "upload-offset": "0",
                     "content-type": "application/offset+octet-stream"},
        )  # fmt: skip
        assert r.status_code == 404
        r = await client.post(f"{base}/complete", json={"parts": parts})
        assert r.status_code == 201, r.text
        assert (await client.get("/api/files", headers=theirs)).json()["files"] == []


async def test_limits_are_checked_at_opening_and_nothing_is_held_after(
    tmp_path: Path, seaweed: Seaweed
) -> None:
    config = s3_config(tmp_path / "data", seaweed, max_file_bytes=str(20 * MiB))
    _, small = await add_account(config, "small", quota_kind="bytes", quota_bytes=10 * MiB)
    async with app_client(config, headers=bearer(small)) as client:
        r = await client.post("/api/uploads/direct", json={"name": "big", "size": 21 * MiB})
        assert r.status_code == 413, r.text
        assert "larger than" in r.json()["error"]
        r = await client.post("/api/uploads/direct", json={"name": "q", "size": 11 * MiB})
        assert r.status_code == 413, r.text
        assert "quota" in r.json()["error"]
        for bad, words in (
            ({"name": "", "size": 1}, "name is empty"),
            ({"size": 1}, "name is missing"),
            ({"name": "a"}, "size is missing"),
            ({"name": "a", "size": -1}, "size is a whole number"),
            ({"name": "a", "size": True}, "size is a whole number"),
            ({"name": "a", "size": 1, "sha256": "abc"}, "64 hex digits"),
            ({"name": "a", "size": 1, "folder": "nope"}, "no such folder"),
            ({"name": "a", "size": 1, "relative_path": "a/../b"}, "relative_path"),
            ({"name": "a", "size": 1, "colour": "red"}, "unknown field 'colour'"),
        ):
            r = await client.post("/api/uploads/direct", json=bad)
            assert r.status_code in (400, 404), (bad, r.text)
            assert words in r.json()["error"], (bad, r.json())
        # What fits opens, holding its size against the quota until it is abandoned.
        r = await client.post("/api/uploads/direct", json={"name": "fits", "size": 9 * MiB})
        assert r.status_code == 201, r.text
        assert await usage(config) == 9 * MiB
        r = await client.post("/api/uploads/direct", json={"name": "more", "size": 2 * MiB})
        assert r.status_code == 413, r.text
    assert await unfinished_resumable(config) == 1


async def test_an_empty_file_needs_no_session(tmp_path: Path, seaweed: Seaweed) -> None:
    config = s3_config(tmp_path / "data", seaweed)
    async with signed_in_client(config) as client:
        folder = (await client.post("/api/folders", json={"name": "docs"})).json()["folder"]
        r = await client.post(
            "/api/uploads/direct",
            json={"name": "empty.txt", "size": 0, "folder": folder["id"],
                  "relative_path": "a/b/empty.txt"},
        )  # fmt: skip
        assert r.status_code == 201, r.text
        file = r.json()["file"]
        assert (file["size"], file["sha256"]) == (0, hashlib.sha256(b"").hexdigest())
        assert file["folder"] not in ("root", folder["id"])  # in docs/a/b
    assert await unfinished_resumable(config) == 0


async def test_abandoned_and_expired_sessions_leave_nothing(
    tmp_path: Path, seaweed: Seaweed
) -> None:
    # Long enough for `left` to be opened and sent a part before the sweep may take it,
    # on a loaded machine (the suite runs on two workers).
    config = s3_config(tmp_path / "data", seaweed, upload_expiry="6")
    body = body_of(PART + 1)
    async with signed_in_client(config) as client, httpx.AsyncClient() as s3:
        dropped = await open_session(client, body, name="dropped.zip")
        await send_parts(s3, {**dropped, "parts": dropped["parts"][:1]}, body)
        r = await client.delete(f"/api/uploads/direct/{dropped['id']}")
        assert r.status_code == 204, r.text
        assert (await client.get(f"/api/uploads/direct/{dropped['id']}")).status_code == 404
        left = await open_session(client, body, name="left.zip")
        await send_parts(s3, {**left, "parts": left["parts"][:1]}, body)
        assert await unfinished_resumable(config) == 1
        assert await usage(config) == len(body)
        # Nobody asks again: after --upload-expiry the sweep aborts it.
        for _ in range(100):
            await asyncio.sleep(0.25)
            if await unfinished_resumable(config) == 0:
                break
        assert await unfinished_resumable(config) == 0
        assert await usage(config) == 0
        r = await client.get(f"/api/uploads/direct/{left['id']}")
        assert r.status_code == 404, r.text
        assert (await client.get("/api/files")).json()["files"] == []
    assert await stored_objects(config) == {}


async def test_a_file_request_link_opens_sessions_under_its_limits(
    tmp_path: Path, seaweed: Seaweed
) -> None:
    """Through /r/TOKEN/: the request's per-file cap, its bound on unfinished uploads,
    its owner's space; the uploader sees no id of the owner's, and the owner's API
    does not see the link's sessions."""
    config = s3_config(tmp_path / "data", seaweed)
    body = body_of(PART + 3)
    async with signed_in_client(config) as client, httpx.AsyncClient() as s3:
        made = await client.post(
            "/api/requests", json={"label": "photos", "max_file_bytes": 2 * PART}
        )
        assert made.status_code == 201, made.text
        link = made.json()["request"]["url"]
        base = f"{link}/uploads/direct"
        r = await client.post(base, json={"name": "big.zip", "size": 2 * PART + 1}, headers={})
        assert r.status_code == 413, r.text
        r = await client.post(base, json={"name": "a.zip", "size": len(body)})
        assert r.status_code == 201, r.text
        session = r.json()["session"]
        assert session["url"] == f"{base}/{session['id']}"
        assert (await client.get(f"/api/uploads/direct/{session['id']}")).status_code == 404
        assert (await client.get(session["url"])).status_code == 200
        # Seven more may wait unfinished beside it; the ninth is refused.
        for n in range(7):
            r = await client.post(base, json={"name": f"w{n}.zip", "size": MiB})
            assert r.status_code == 201, r.text
        r = await client.post(base, json={"name": "ninth.zip", "size": MiB})
        assert r.status_code == 409, r.text
        assert "unfinished" in r.json()["error"]
        parts = await send_parts(s3, session, body)
        r = await client.post(f"{session['url']}/complete", json={"parts": parts})
        assert r.status_code == 201, r.text
        received = r.json()["file"]
        assert "id" not in received and "url" not in received
        assert received["name"] == "a.zip" and received["size"] == len(body)
        assert r.headers.get("location") is None
        owned = (await client.get("/api/files")).json()["files"]
        assert [(f["name"], f["sha256"]) for f in owned] == [
            ("a.zip", hashlib.sha256(body).hexdigest())
        ]
        # A wrong link is no link.
        r = await client.post("/r/" + "A" * 32 + "/uploads/direct", json={"name": "x", "size": 1})
        assert r.status_code == 404, r.text


async def test_a_completed_file_shows_on_a_live_page(tmp_path: Path, seaweed: Seaweed) -> None:
    from tests.support.page import IDENTITY, next_data

    config = s3_config(tmp_path / "data", seaweed)
    body = body_of(MiB)
    async with signed_in_client(config) as client, httpx.AsyncClient() as s3:
        async with client.stream("GET", "/live", headers=IDENTITY) as live:
            events = live.iter_events()
            await next_data(events, containing='id="files"')
            session = await open_session(client, body, name="seen-live.zip")
            parts = await send_parts(s3, session, body)
            r = await client.post(
                f"/api/uploads/direct/{session['id']}/complete", json={"parts": parts}
            )
            assert r.status_code == 201, r.text
            assert "seen-live.zip" in await next_data(events, containing="seen-live.zip")


async def test_s3_direct_none_answers_409_with_tus(tmp_path: Path, seaweed: Seaweed) -> None:
    config = s3_config(tmp_path / "data", seaweed, s3_direct="none")
    async with signed_in_client(config) as client:
        r = await client.post("/api/uploads/direct", json={"name": "a.bin", "size": MiB})
        assert r.status_code == 409, r.text
        assert r.json()["use"] == "/tus/"
    assert await unfinished_resumable(config) == 0


async def test_completions_at_once_and_after_a_lost_answer_record_one_file(
    tmp_path: Path, seaweed: Seaweed
) -> None:
    """Two completions of one session at once record one file, both answered with it;
    a completion whose multipart upload was already joined (an earlier try whose
    answer was lost) records the object as it is."""
    from app.resumable.partials.s3 import S3Partials
    from app.storage.backends import open_store
    from app.storage.s3.direct import DirectBucket
    from app.storage.s3.store import S3Store

    config = s3_config(tmp_path / "data", seaweed)
    body = body_of(PART + 7)
    async with signed_in_client(config) as client, httpx.AsyncClient() as s3:
        session = await open_session(client, body)
        parts = await send_parts(s3, session, body)
        url = f"/api/uploads/direct/{session['id']}/complete"
        both = await asyncio.gather(*(client.post(url, json={"parts": parts}) for _ in range(2)))
        assert [r.status_code for r in both] == [201, 201], [r.text for r in both]
        assert both[0].json()["file"]["id"] == both[1].json()["file"]["id"]
        assert len((await client.get("/api/files")).json()["files"]) == 1

        lost = await open_session(client, body, name="lost.zip")
        parts = await send_parts(s3, lost, body)
        store = await open_store(config)
        assert isinstance(store, S3Store)
        try:
            from app.catalog.open import open_catalog

            db = await open_catalog(config)
            try:
                where = await S3Partials(store, db).multipart_of(lost["id"])
            finally:
                await db.close()
            assert where is not None
            bucket = DirectBucket(store)
            held = await bucket.held_parts(*where)
            assert held is not None
            await bucket.complete(*where, [held[n] for n in sorted(held)])
        finally:
            await store.aclose()
        r = await client.post(f"/api/uploads/direct/{lost['id']}/complete", json={"parts": parts})
        assert r.status_code == 201, r.text
        assert r.json()["file"]["sha256"] == hashlib.sha256(body).hexdigest()
    assert len(await stored_objects(config)) == 2


async def test_a_client_may_choose_a_larger_part_within_s3s_bounds(
    tmp_path: Path, seaweed: Seaweed
) -> None:
    """`part_size` lets a client that hashed the whole file send it as one part, whose
    sha256 the store checks; sizes outside S3's bounds are refused in words."""
    config = s3_config(tmp_path / "data", seaweed)
    body = body_of(12 * MiB)
    digest = hashlib.sha256(body).hexdigest()
    async with signed_in_client(config) as client, httpx.AsyncClient() as s3:
        for wrong in (MiB, 6 * 1024 * MiB, "big"):
            r = await client.post(
                "/api/uploads/direct", json={"name": "x", "size": len(body), "part_size": wrong}
            )
            assert r.status_code == 400, r.text
            assert "part_size" in r.json()["error"]
        session = await open_session(client, body, sha256=digest, part_size=16 * MiB)
        assert (session["part_size"], session["checksum"]) == (16 * MiB, "store")
        assert [p["size"] for p in session["parts"]] == [len(body)]
        parts = await send_parts(s3, session, body)
        r = await client.post(
            f"/api/uploads/direct/{session['id']}/complete", json={"parts": parts}
        )
        assert r.status_code == 201, r.text
        assert r.json()["file"]["sha256"] == digest


async def test_on_a_store_that_does_not_check_signed_digests_the_node_reads_back(
    tmp_path: Path, moto_s3
) -> None:
    """moto accepts a body whose SHA-256 is not the signed one (docs/direct-transfers.md):
    the start-up probe finds that, so a declared sha256 is never taken on trust there,
    and a forged part is caught by the node's own read-back."""
    config = s3_config(tmp_path / "data", moto_s3)
    body = body_of(3 * MiB)
    forged = body_of(3 * MiB)
    async with signed_in_client(config) as client, httpx.AsyncClient() as s3:
        session = await open_session(client, body, sha256=hashlib.sha256(body).hexdigest())
        assert session["checksum"] == "read-back"
        (part,) = session["parts"]
        sent = await put_part(s3, part, forged)
        assert sent.status_code == 200  # moto takes it
        r = await client.post(
            f"/api/uploads/direct/{session['id']}/complete",
            json={"parts": [{"number": 1, "etag": sent.headers["etag"]}]},
        )
        assert r.status_code == 400, r.text
        assert "sha256" in r.json()["error"]
        assert (await client.get("/api/files")).json()["files"] == []


async def test_a_session_of_many_parts_hands_out_urls_a_hundred_at_a_time(
    tmp_path: Path, seaweed: Seaweed
) -> None:
    """101 parts: the first answer lists 100 and says `more`; `?from=` lists the rest.
    Nothing is sent: only URLs are signed."""
    config = s3_config(tmp_path / "data", seaweed)
    size = 100 * PART + 5
    async with signed_in_client(config) as client:
        r = await client.post("/api/uploads/direct", json={"name": "big.bin", "size": size})
        assert r.status_code == 201, r.text
        session = r.json()["session"]
        assert session["more"] is True
        assert [p["number"] for p in session["parts"]] == list(range(1, 101))
        rest = (await client.get(f"/api/uploads/direct/{session['id']}?from=101")).json()
        assert rest["session"]["more"] is False
        assert [(p["number"], p["size"]) for p in rest["session"]["parts"]] == [(101, 5)]
        assert (await client.delete(f"/api/uploads/direct/{session['id']}")).status_code == 204


async def test_on_a_store_that_takes_any_length_the_node_refuses_a_wrong_part(
    tmp_path: Path, moto_s3
) -> None:
    """moto does not enforce a signed Content-Length: a part of the wrong size lands in
    the bucket, and the node's own check at completion refuses it in words; the session
    stays open, and the right part then completes it."""
    config = s3_config(tmp_path / "data", moto_s3)
    body = body_of(PART + MiB)
    async with signed_in_client(config) as client, httpx.AsyncClient() as s3:
        session = await open_session(client, body)
        first, last = session["parts"]
        short = await put_part(s3, first, body[: PART - MiB])
        assert short.status_code == 200  # moto takes it
        good = await put_part(s3, last, body[PART:])
        parts = [
            {"number": 1, "etag": short.headers["etag"]},
            {"number": 2, "etag": good.headers["etag"]},
        ]
        r = await client.post(
            f"/api/uploads/direct/{session['id']}/complete", json={"parts": parts}
        )
        assert r.status_code == 400, r.text
        assert "part 1 holds" in r.json()["error"]
        assert (await client.get("/api/files")).json()["files"] == []
        fixed = await put_part(s3, first, body[:PART])
        parts[0]["etag"] = fixed.headers["etag"]
        r = await client.post(
            f"/api/uploads/direct/{session['id']}/complete", json={"parts": parts}
        )
        assert r.status_code == 201, r.text
        assert r.json()["file"]["sha256"] == hashlib.sha256(body).hexdigest()


async def test_urls_name_the_store_as_clients_reach_it(tmp_path: Path, seaweed: Seaweed) -> None:
    """`--s3-public-endpoint-url`: the node talks to the store at one address and signs
    the URLs it gives clients for another (here the same SeaweedFS as `localhost`);
    parts sent there are the session's, and a download's 302 names it too."""
    public = seaweed.endpoint_url.replace("127.0.0.1", "localhost")
    config = s3_config(tmp_path / "data", seaweed, s3_public_endpoint_url=public, s3_direct="all")
    body = body_of(PART + 5)
    async with signed_in_client(config) as client, httpx.AsyncClient() as s3:
        session = await open_session(client, body)
        assert all(p["url"].startswith(public + "/") for p in session["parts"])
        parts = await send_parts(s3, session, body)
        r = await client.post(
            f"/api/uploads/direct/{session['id']}/complete", json={"parts": parts}
        )
        assert r.status_code == 201, r.text
        file = r.json()["file"]
        answer = await client.get(file["url"], follow_redirects=False)
        assert answer.status_code == 302
        location = answer.headers.get("location")
        assert location.startswith(public + "/")
        fetched = await s3.get(location)
        assert fetched.status_code == 200 and fetched.content == body
