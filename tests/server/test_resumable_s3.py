"""Resumable uploads on S3 storage (app/resumable/partials/s3.py), against a real
SeaweedFS and PostgreSQL: appends smaller than S3's 5 MiB part minimum are held in
the catalog until a part is full, large ones go up as parts, and whatever the
catalog says is all another process needs to go on."""

import base64
import hashlib
import os

import pytest
from tests.support.fixtures import add_account, signed_in_client, unfinished_resumable
from tests.support.tus import OCTETS, TUS, create, listed, offset_of, patch

from app.catalog.open import open_catalog
from app.config import Config

pytestmark = pytest.mark.slow
MiB = 1024 * 1024


@pytest.fixture
def storage() -> str:
    return "s3"


async def catalog_state(config: Config, url: str) -> tuple[int, int, int]:
    """(recorded parts, their bytes, tail bytes) of the upload at `url`."""
    upload_id = url.rsplit("/", 1)[1]
    db = await open_catalog(config)
    try:
        parts = await db.fetch_one(
            "SELECT count(*), COALESCE(sum(size), 0) FROM resumable_parts WHERE upload_id = ?",
            (upload_id,),
        )
        tail = await db.fetch_one(
            "SELECT COALESCE(sum(length(data)), 0) FROM resumable_tails WHERE upload_id = ?",
            (upload_id,),
        )
    finally:
        await db.close()
    assert parts is not None and tail is not None
    return int(parts[0]), int(parts[1]), int(tail[0])  # type: ignore[call-overload]


async def tail_pieces(config: Config, url: str) -> int:
    db = await open_catalog(config)
    try:
        row = await db.fetch_one(
            "SELECT count(*) FROM resumable_tails WHERE upload_id = ?", (url.rsplit("/", 1)[1],)
        )
    finally:
        await db.close()
    assert row is not None
    return int(row[0])  # type: ignore[call-overload]


async def test_small_and_large_appends_make_one_file(config: Config) -> None:
    """1 MiB appends are held as the tail until a part (8 MiB) is full; a 13 MiB
    append sends a part and keeps its remainder; the offset is parts + tail."""
    data = os.urandom(22 * MiB + 12345)
    _, token = await add_account(config, "owner", admin=True)
    async with signed_in_client(config, token) as client:
        url = await create(client, len(data), name="big.bin")
        at = 0
        for size in [MiB] * 3 + [13 * MiB]:
            answer = await patch(client, url, at, data[at : at + size])
            assert answer.status_code == 204, answer.text
            at += size
            parts, part_bytes, tail = await catalog_state(config, url)
            assert part_bytes + tail == at and tail < 8 * MiB
            if at == 3 * MiB:
                # Each small append added its own bytes to the tail, none rewrote it.
                assert await tail_pieces(config, url) == 3
        assert await catalog_state(config, url) == (2, 16 * MiB, at - 16 * MiB)
        assert await offset_of(client, url) == at
        answer = await patch(client, url, at, data[at:])
        assert answer.status_code == 204, answer.text
        file_id = answer.headers.get("stowage-file-id")
        download = await client.get(f"/files/{file_id}")
        assert download.content == data
        assert (await listed(client))[0]["sha256"] == hashlib.sha256(data).hexdigest()
    assert await unfinished_resumable(config) == 0


async def test_a_refused_append_keeps_the_catalog_as_it_was(config: Config) -> None:
    """A checksum mismatch on an append that filled parts: none of them is listed,
    the offset and the tail stay; the same bytes sent again complete the file."""
    data = os.urandom(18 * MiB)
    _, token = await add_account(config, "owner", admin=True)
    async with signed_in_client(config, token) as client:
        url = await create(client, len(data), name="checked.bin")
        assert (await patch(client, url, 0, data[:MiB])).status_code == 204
        before = await catalog_state(config, url)
        wrong = base64.b64encode(hashlib.sha1(b"other bytes").digest()).decode()
        answer = await patch(client, url, MiB, data[MiB:], **{"upload-checksum": f"sha1 {wrong}"})
        assert answer.status_code == 460
        assert await offset_of(client, url) == MiB
        assert await catalog_state(config, url) == before
        right = base64.b64encode(hashlib.sha1(data[MiB:]).digest()).decode()
        answer = await patch(client, url, MiB, data[MiB:], **{"upload-checksum": f"sha1 {right}"})
        assert answer.status_code == 204, answer.text
        file_id = answer.headers.get("stowage-file-id")
        assert (await client.get(f"/files/{file_id}")).content == data
        # The unlisted parts of the refused append went with the completion.
    assert await unfinished_resumable(config) == 0


async def test_another_process_goes_on_from_the_catalog(config: Config) -> None:
    """A server stopped after appends (a part sent, a tail held) and started again
    (as another node would) finishes the upload: the sha256 is read back from S3."""
    data = os.urandom(9 * MiB + 777)
    _, token = await add_account(config, "owner", admin=True)
    async with signed_in_client(config, token) as client:
        url = await create(client, len(data), name="moved.bin")
        assert (await patch(client, url, 0, data[: 8 * MiB + 5])).status_code == 204
    async with signed_in_client(config, token) as client:
        assert await offset_of(client, url) == 8 * MiB + 5
        answer = await patch(client, url, 8 * MiB + 5, data[8 * MiB + 5 :])
        assert answer.status_code == 204, answer.text
        files = await listed(client)
        assert files[0]["sha256"] == hashlib.sha256(data).hexdigest()
        assert (await client.get(files[0]["url"])).content == data


async def test_termination_and_a_one_request_tus_upload(config: Config) -> None:
    _, token = await add_account(config, "owner", admin=True)
    async with signed_in_client(config, token) as client:
        url = await create(client, 20 * MiB)
        assert (await patch(client, url, 0, os.urandom(9 * MiB))).status_code == 204
        assert await unfinished_resumable(config) == 1
        assert (await client.request("DELETE", url, headers=TUS)).status_code == 204
        assert await unfinished_resumable(config) == 0
        # Creation with upload, smaller than a part: the file is the tail alone.
        small = b"tail only"
        answer = await client.post(
            "/tus/", content=small, headers={**OCTETS, "upload-length": str(len(small))}
        )
        assert answer.status_code == 201, answer.text
        file_id = answer.headers.get("stowage-file-id")
        assert (await client.get(f"/files/{file_id}")).content == small


async def test_check_leaves_a_live_upload_alone(config: Config) -> None:
    """`stowage check --repair` aborts leftover multipart uploads, never one a
    resumable upload still holds."""
    from app.ops.check_s3 import repair_s3, survey_s3
    from app.storage.backends import open_store
    from app.storage.s3.store import S3Store

    _, token = await add_account(config, "owner", admin=True)
    async with signed_in_client(config, token) as client:
        url = await create(client, 10)
        assert (await patch(client, url, 0, b"abc")).status_code == 204
    store = await open_store(config)
    assert isinstance(store, S3Store)
    try:
        found = await survey_s3(config.data_dir, store, grace_seconds=0, database=config.database)
        assert found.temp_files == []
        await repair_s3(store, found)
    finally:
        await store.aclose()
    async with signed_in_client(config, token) as client:
        answer = await patch(client, url, 3, b"defghij")
        assert answer.status_code == 204, answer.text


async def test_two_nodes_appending_at_once_never_mix(config: Config) -> None:
    """Two appends from the same recorded state, as a stale request on one node and
    its successor on another: their parts get distinct numbers, the first to record
    wins, the other records nothing (Superseded), and the file is the winner's."""
    from app.resumable.partials.s3 import S3Partials
    from app.resumable.store import Superseded, UploadState, insert_upload
    from app.storage.backends import open_store
    from app.storage.ids import new_blob_id
    from app.storage.s3.store import S3Store

    owner, _ = await add_account(config, "owner", admin=True)
    db = await open_catalog(config)
    store = await open_store(config)
    assert isinstance(store, S3Store)
    try:
        partials = S3Partials(store, db)
        length = 9 * MiB
        state = UploadState(
            id="r" * 32, owner=owner.id, request_id=None, name="raced.bin", declared_mime=None,
            metadata=None, length=length, offset=0, reserved=length, kind="whole",
            created_at=0.0, expires_at=4e9, blob_id=new_blob_id(), file_id=None,
        )  # fmt: skip
        await partials.create(state)
        await insert_upload(db, state)
        stale, fresh = os.urandom(length), os.urandom(length)
        a = await partials.appender(state, None)
        b = await partials.appender(state, None)
        await a.write(stale)  # a part on the wire from "node a"
        await b.write(fresh)
        assert await b.flush() == length
        await b.record(offset=length, length=length, expires_at=4e9)
        assert await a.flush() == length
        with pytest.raises(Superseded):
            await a.record(offset=length, length=length, expires_at=4e9)
        await a.close()
        await b.close()
        await partials.adopt(state)
        blob = await store.open(state.blob_id)
        assert blob is not None and blob.size == length
        body = await store.client.get_object(Bucket=store.bucket, Key=store.key_of(state.blob_id))
        async with body["Body"] as stream:
            assert await stream.read() == fresh
    finally:
        await store.aclose()
        await db.close()


async def test_check_leaves_a_partial_completed_by_a_failed_final_alone(config: Config) -> None:
    """A final on S3 completes each partial's multipart upload into an object before it
    streams them; one that fails midway leaves those objects to the partials, which
    the next final reads. They are no orphans while their partial lives."""
    from app.ops.check_s3 import repair_s3, survey_s3
    from app.resumable.partials.s3 import S3Partials
    from app.resumable.store import load_upload
    from app.storage.backends import open_store
    from app.storage.s3.store import S3Store

    _, token = await add_account(config, "owner", admin=True)
    part = os.urandom(MiB)
    async with signed_in_client(config, token) as client:
        url = await create(client, len(part), **{"upload-concat": "partial"})
        assert (await patch(client, url, 0, part)).status_code == 204
    db = await open_catalog(config)
    store = await open_store(config)
    assert isinstance(store, S3Store)
    try:
        state = await load_upload(db, url.rsplit("/", 1)[1])
        assert state is not None
        await S3Partials(store, db).adopt(state)  # as a final that failed after it
        found = await survey_s3(config.data_dir, store, grace_seconds=0, database=config.database)
        assert found.orphans == [] and found.problems == 0
        await repair_s3(store, found)
    finally:
        await store.aclose()
        await db.close()
    async with signed_in_client(config, token) as client:
        joined = await client.post("/tus/", headers={**TUS, "upload-concat": f"final;{url}"})
        assert joined.status_code == 201, joined.text
        [stored] = await listed(client)
        assert (await client.get(stored["url"])).content == part
