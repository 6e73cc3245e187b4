"""The bucket's side of direct transfers against real S3 implementations: SeaweedFS
(the one Stowage is tested on) and moto's server (a second one). Start-up sets CORS
for the page's origins keeping the bucket's other rules, and probes response
overrides; the signing primitives (app/storage/s3/direct.py) do what each store lets
them. Where moto differs, the test asserts what moto does and
docs/direct-transfers.md "A second S3 implementation" says it."""

import asyncio
import base64
import hashlib
import json
import os
import re
import secrets
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from tests.support.fixtures import add_account, s3_config, start_server, stowage_check
from tests.support.moto import Moto
from tests.support.presigned import SHORTEST_SECONDS, seconds_until_expired
from tests.support.seaweed import Seaweed

from app.catalog.open import open_catalog
from app.config import Config
from app.resumable.partials.s3 import S3Partials
from app.resumable.store import UploadState, insert_upload
from app.storage.backends import open_direct, open_store
from app.storage.errors import StoreUnavailable
from app.storage.ids import new_blob_id
from app.storage.s3.bucket_setup import CORS_RULE_ID, PROBE_KEY_PREFIX, page_origins
from app.storage.s3.direct import DirectBucket
from app.storage.s3.store import S3Store

pytestmark = pytest.mark.slow
MiB = 1024 * 1024
FOREIGN_RULE = {
    "AllowedMethods": ["GET"],
    "AllowedOrigins": ["https://cdn.example"],
    "AllowedHeaders": ["range"],
    "MaxAgeSeconds": 60,
}

S3 = Seaweed | Moto


@pytest.fixture(params=["seaweed", "moto"])
def s3(request: pytest.FixtureRequest) -> S3:
    return request.getfixturevalue("seaweed" if request.param == "seaweed" else "moto_s3")


def is_moto(s3: S3) -> bool:
    return isinstance(s3, Moto)


def http(
    method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """One plain request, as a browser's would be (no Content-Type unless given)."""
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    if body is not None and "content-type" not in {h.lower() for h in (headers or {})}:
        # urllib would add a form type; moto then parses the body as a form.
        request.add_header("Content-Type", "application/octet-stream")
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, {k.lower(): v for k, v in answer.headers.items()}, answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()


async def fresh_bucket(tmp_path: Path, s3: S3, **flags: str) -> Config:
    """Settings on the store's bucket under a prefix of this test's own, the bucket's
    CORS rules removed (they are the bucket's, not the prefix's). One bucket for all:
    each new bucket on SeaweedFS takes volumes of its own, which run out."""
    config = Config.load(
        {
            "data_dir": str(tmp_path / "data"),
            "storage": f"s3://{s3.bucket}/t-{secrets.token_hex(6)}",
            "s3_endpoint_url": s3.endpoint_url,
            "public_url": "http://files.example:8000",
            **flags,
        },
        environ=s3.env,
    )
    store = await started(config)
    try:
        await store.client.delete_bucket_cors(Bucket=s3.bucket)
    finally:
        await store.aclose()
    return config


async def started(config: Config) -> S3Store:
    store = await open_store(config)
    assert isinstance(store, S3Store)
    return store


@pytest.fixture
async def multipart(tmp_path: Path, s3: S3) -> AsyncIterator[tuple[S3Store, str, str]]:
    """A store on a fresh bucket and one multipart upload: (store, blob id, upload id)."""
    config = await fresh_bucket(tmp_path, s3)
    store = await started(config)
    blob_id = new_blob_id()
    made = await store.client.create_multipart_upload(
        Bucket=store.bucket, Key=store.key_of(blob_id)
    )
    try:
        yield store, blob_id, made["UploadId"]
    finally:
        await store.abort_upload(store.key_of(blob_id), made["UploadId"])
        await store.aclose()


async def test_start_adds_our_cors_rule_and_keeps_the_others(tmp_path: Path, s3: S3) -> None:
    config = await fresh_bucket(tmp_path, s3)
    page = "http://files.example:8000"
    assert page in page_origins(config.public_url, config.allowed_hosts)
    store = await started(config)
    try:
        await store.client.put_bucket_cors(
            Bucket=store.bucket, CORSConfiguration={"CORSRules": [FOREIGN_RULE]}
        )
        direct = await open_direct(config, store)
        assert direct.uploads, direct.notes
        assert f"added CORS rule {CORS_RULE_ID!r}" in direct.notes[0]
        rules = (await store.client.get_bucket_cors(Bucket=store.bucket))["CORSRules"]
        assert rules[0]["ID"] == CORS_RULE_ID
        assert rules[0]["AllowedOrigins"] == list(
            page_origins(config.public_url, config.allowed_hosts)
        )
        assert [{k: v for k, v in r.items() if k != "ID"} for r in rules[1:]] == [FOREIGN_RULE]

        # A second start finds the rules right and changes nothing.
        again = await open_direct(config, store)
        assert again.uploads
        assert "the bucket's CORS rules let" in again.notes[0]

        # The browser's view: a preflight of a part's PUT from the page, then the PUT.
        bucket = DirectBucket(store)
        blob_id = new_blob_id()
        upload = await store.client.create_multipart_upload(
            Bucket=store.bucket, Key=store.key_of(blob_id)
        )
        url = await bucket.part_url(blob_id, upload["UploadId"], 1, 5)
        preflight = {
            "Origin": page,
            "Access-Control-Request-Method": "PUT",
            "Access-Control-Request-Headers": "content-type,x-amz-checksum-sha256",
        }
        status, headers, _ = await asyncio.to_thread(http, "OPTIONS", url, None, preflight)
        if is_moto(s3):
            # moto answers a preflight only when EVERY rule allows the origin (it
            # applies all rules in turn rather than the first that matches): the
            # foreign rule for another origin makes it refuse ours.
            assert status == 403
            await store.client.put_bucket_cors(
                Bucket=store.bucket, CORSConfiguration={"CORSRules": rules[:1]}
            )
            status, headers, _ = await asyncio.to_thread(http, "OPTIONS", url, None, preflight)
        assert status == 200
        assert headers["access-control-allow-origin"] == page
        assert "PUT" in headers["access-control-allow-methods"]
        status, headers, _ = await asyncio.to_thread(http, "PUT", url, b"12345", {"Origin": page})
        assert status == 200
        assert headers["access-control-allow-origin"] == page
        assert headers["access-control-expose-headers"].lower() == "etag"
        assert headers["etag"]

        status, headers, _ = await asyncio.to_thread(
            http,
            "OPTIONS",
            url,
            None,
            {"Origin": "http://evil.example", "Access-Control-Request-Method": "PUT"},
        )
        assert status == 403
        if is_moto(s3):
            # moto refuses the preflight but still echoes the origin in ACAO; a browser
            # fails a preflight that is not 2xx, so nothing more is allowed.
            assert headers.get("access-control-allow-origin") == "http://evil.example"
        else:
            assert "access-control-allow-origin" not in headers
        await store.abort_upload(store.key_of(blob_id), upload["UploadId"])
    finally:
        await store.aclose()


async def test_the_probe_decides_direct_downloads_and_leaves_nothing(
    tmp_path: Path, s3: S3
) -> None:
    config = await fresh_bucket(tmp_path, s3)
    store = await started(config)
    try:
        direct = await open_direct(config, store)
        notes = " | ".join(direct.notes)
        assert direct.downloads, notes
        assert "direct downloads on: the store honours response overrides" in notes
        listed = await store.client.list_objects_v2(Bucket=store.bucket)
        assert not [o["Key"] for o in listed.get("Contents", []) if PROBE_KEY_PREFIX in o["Key"]]
    finally:
        await store.aclose()


async def test_the_digest_probe_tells_a_checking_store_from_one_that_takes_anything(
    tmp_path: Path, s3: S3, request: pytest.FixtureRequest
) -> None:
    """SeaweedFS refuses a part whose SHA-256 is not the signed one (BadDigest) and
    takes the right one; moto takes both. Only the first may be trusted with a declared
    sha256; the probe's multipart upload is aborted either way."""
    config = await fresh_bucket(tmp_path, s3)
    store = await started(config)
    try:
        direct = await open_direct(config, store)
        assert direct.bucket is not None
        checks = direct.bucket.verifies_checksums
        notes = " | ".join(direct.notes)
        assert checks is (request.node.callspec.params["s3"] == "seaweed"), notes
        unfinished = await store.client.list_multipart_uploads(Bucket=store.bucket)
        assert not [u for u in unfinished.get("Uploads", []) if PROBE_KEY_PREFIX in u["Key"]]
    finally:
        await store.aclose()


async def test_direct_bucket_primitives(multipart: tuple[S3Store, str, str], s3: S3) -> None:
    """What both stores do alike: a part PUT through its URL is held with its size and
    ETag, completes into the object, reads back whole and by its head; list_parts has
    no checksums; a gone upload is None."""
    store, blob_id, upload_id = multipart
    bucket = DirectBucket(store)
    first, last = os.urandom(5 * MiB), os.urandom(1234)
    for number, body in ((1, first), (2, last)):
        url = await bucket.part_url(blob_id, upload_id, number, len(body))
        status, _, _ = await asyncio.to_thread(http, "PUT", url, body)
        assert status == 200
    held = await bucket.held_parts(blob_id, upload_id)
    assert held is not None
    assert {n: p.size for n, p in held.items()} == {1: len(first), 2: len(last)}
    listed = await store.client.list_parts(
        Bucket=store.bucket, Key=store.key_of(blob_id), UploadId=upload_id
    )
    assert not any("ChecksumSHA256" in part for part in listed["Parts"])
    await bucket.complete(blob_id, upload_id, [held[1], held[2]])
    assert await bucket.read_head(blob_id, 4) == first[:4]
    whole = first + last
    assert await bucket.sha256(blob_id, len(whole)) == hashlib.sha256(whole).hexdigest()
    # An object that is not the size the session declared is never hashed short.
    with pytest.raises(StoreUnavailable):
        await bucket.sha256(blob_id, len(whole) + 1)
    assert await bucket.held_parts(blob_id, upload_id) is None


async def test_what_a_part_url_refuses(multipart: tuple[S3Store, str, str], s3: S3) -> None:
    """SeaweedFS enforces what a part URL signs; moto checks no signature of a
    pre-signed URL at all (its default), so every one of these is taken there."""
    store, blob_id, upload_id = multipart
    bucket = DirectBucket(store)
    body = os.urandom(5 * MiB)
    digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
    url = await bucket.part_url(blob_id, upload_id, 1, len(body))
    tampered = bytearray(body)
    tampered[0] ^= 1
    checked = await bucket.part_url(blob_id, upload_id, 1, len(body), sha256_base64=digest)
    short_lived = await bucket.part_url(blob_id, upload_id, 2, 3, seconds=1)
    other_key = url.replace(blob_id, new_blob_id())
    await asyncio.sleep(2.2)
    answers = {
        "shorter": (await asyncio.to_thread(http, "PUT", url, body[:-1]))[0],
        "longer": (await asyncio.to_thread(http, "PUT", url, body + b"x"))[0],
        "bad digest": (
            await asyncio.to_thread(
                http, "PUT", checked, bytes(tampered), {"x-amz-checksum-sha256": digest}
            )
        )[0],
        "expired": (await asyncio.to_thread(http, "PUT", short_lived, b"abc"))[0],
        "other key": (await asyncio.to_thread(http, "PUT", other_key, body))[0],
    }
    if is_moto(s3):
        assert answers == dict.fromkeys(answers, 200)
    else:
        assert answers == {
            "shorter": 403,
            "longer": 403,
            "bad digest": 400,
            "expired": 403,
            "other key": 403,
        }
        held = await bucket.held_parts(blob_id, upload_id)
        assert held == {}
    status, _, _ = await asyncio.to_thread(
        http, "PUT", checked, body, {"x-amz-checksum-sha256": digest}
    )
    assert status == 200


async def test_an_expired_get_url(multipart: tuple[S3Store, str, str], s3: S3) -> None:
    store, _, _ = multipart
    blob = store.create()
    await blob.write(b"expiring")
    await blob.commit()
    url = await DirectBucket(store).get_url(
        blob.id,
        content_type="text/plain",
        content_disposition='attachment; filename="e.txt"',
        cache_control="private",
        seconds=SHORTEST_SECONDS,
    )
    assert (await asyncio.to_thread(http, "GET", url))[0] == 200
    await asyncio.sleep(seconds_until_expired(url))
    status, _, body = await asyncio.to_thread(http, "GET", url)
    if is_moto(s3):
        assert (status, body) == (200, b"expiring")  # moto ignores X-Amz-Expires
    else:
        assert status == 403 and b"Request has expired" in body


async def test_check_lists_stray_multipart_uploads_never_a_sessions(
    tmp_path: Path, seaweed: Seaweed
) -> None:
    """A direct session's multipart upload is held by its row, however old; one without
    a row is listed (key, upload id, age) and aborted by --repair."""
    config = s3_config(tmp_path / "data", seaweed)
    owner, _ = await add_account(config, "owner", admin=True)
    db = await open_catalog(config)
    store = await started(config)
    try:
        session = UploadState(
            id="d" * 32, owner=owner.id, request_id=None, name="direct.bin",
            declared_mime=None, metadata=json.dumps({"part_size": 8 * MiB}), length=9 * MiB,
            offset=0, reserved=9 * MiB, kind="direct", created_at=time.time(),
            expires_at=time.time() + 3600, blob_id=new_blob_id(), file_id=None,
        )  # fmt: skip
        await S3Partials(store, db).create(session)
        await insert_upload(db, session)
        stray_key = store.key_of(new_blob_id())
        stray = await store.client.create_multipart_upload(Bucket=store.bucket, Key=stray_key)
        done = await asyncio.to_thread(stowage_check, config, seaweed)
        assert done.returncode == 1, done.stdout + done.stderr
        assert re.search(r"temp files\s+1 ", done.stdout), done.stdout
        listed = [line for line in done.stdout.splitlines() if line.startswith("unfinished")]
        assert len(listed) == 1, done.stdout
        assert stray_key in listed[0] and stray["UploadId"] in listed[0]
        assert re.search(r"started \d+ s ago", listed[0]), listed[0]
        done = await asyncio.to_thread(stowage_check, config, seaweed, "--repair")
        assert "aborted 1 unfinished multipart upload(s)" in done.stdout, done.stdout
        assert done.returncode == 0, done.stdout + done.stderr
        remaining = await store.unfinished_uploads()
        assert [key for key, _, _ in remaining] == [store.key_of(session.blob_id)]
    finally:
        await store.aclose()
        await db.close()


def test_a_server_says_what_it_set_at_start(tmp_path: Path, seaweed: Seaweed) -> None:
    """`stowage serve` on a bucket without CORS rules sets ours and says so."""
    config = asyncio.run(fresh_bucket(tmp_path, seaweed))
    serving = contextmanager(start_server)
    with serving(
        tmp_path,
        "--storage",
        f"s3://{config.storage.bucket}/{config.storage.prefix}",
        "--s3-endpoint-url",
        seaweed.endpoint_url,
        env=seaweed.env,
    ) as running:
        log = (tmp_path / "server.log").read_text()
        assert f"stowage: direct uploads on: added CORS rule {CORS_RULE_ID!r}" in log, log
        assert "stowage: direct downloads on: the store honours response overrides" in log
        origin = running.base_url
        assert asyncio.run(cors_origins(config)) == [
            [origin, origin.replace("127.0.0.1", "localhost")]
        ]


async def cors_origins(config: Config) -> list[list[str]]:
    store = await started(config)
    try:
        rules = (await store.client.get_bucket_cors(Bucket=store.bucket))["CORSRules"]
    finally:
        await store.aclose()
    return [rule["AllowedOrigins"] for rule in rules]
