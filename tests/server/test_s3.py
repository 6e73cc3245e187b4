"""S3 storage against a real SeaweedFS: uploads stream as multipart uploads that are
aborted on any failure (no parts left behind), downloads pass Range through, and an
object store that is down gives 503 in words, records nothing, and is recovered from
by itself. (The ordinary upload and download tests also run on S3: `both_stores`.)"""

import asyncio
import hashlib
import io
import os
import re
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.support.fixtures import (
    RunningServer,
    add_account,
    free_port,
    s3_config,
    signed_in_client,
    start_server,
    stored_objects,
    stowage_check,
    unfinished_resumable,
    write_random_file,
)
from tests.support.seaweed import Seaweed

from app.config import Config, ConfigError
from app.ops.check_s3 import repair_s3, survey_s3
from app.storage.backends import open_store
from app.storage.ids import new_blob_id
from app.storage.s3.store import PART_BYTES, SPOOL_BYTES, S3Store

pytestmark = pytest.mark.slow
MiB = 1024 * 1024
MB = 1_000_000


def form(name: str, body: bytes) -> dict[str, tuple[str, bytes, str]]:
    return {"file": (name, body, "application/octet-stream")}


async def test_a_refused_upload_aborts_its_multipart_upload(
    tmp_path: Path, seaweed: Seaweed
) -> None:
    """A form's file over --max-file-bytes is refused while it streams: by then parts
    are in S3, and the abort must take them all (no object, no unfinished upload)."""
    limit = 3 * PART_BYTES
    config = s3_config(tmp_path / "data", seaweed, max_file_bytes=str(limit))
    async with signed_in_client(config) as client:
        body = os.urandom(limit + PART_BYTES)
        r = await client.post("/uploads", files=form("big.bin", body))
        assert r.status_code == 413, r.text
        assert "big.bin is larger than the 24 MiB limit" in r.json()["error"]
        assert (await client.get("/api/files")).json() == {"files": []}
        # A file that fits goes through the same multipart path and is kept whole.
        fits = os.urandom(2 * PART_BYTES + 5)
        r = await client.post("/uploads", files=form("fits.bin", fits))
        assert r.status_code == 201, r.text
        entry = r.json()["files"][0]
        assert entry["sha256"] == hashlib.sha256(fits).hexdigest()
        assert (await client.get(entry["url"])).content == fits
    assert await stored_objects(config) == {entry["id"]: len(fits)}


def open_part_files() -> int:
    """This process's open part files (unlinked temp files under `.s3-parts`)."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            count += ".s3-parts" in os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            pass
    return count


async def test_parts_gather_in_temp_files_that_are_gone_afterwards(
    tmp_path: Path, seaweed: Seaweed
) -> None:
    """Sizes on each side of the memory/file boundary and of a part, every one kept
    byte for byte; a refused upload too. Afterwards no part file is open and none is
    left in the data dir (they are unlinked from birth)."""
    config = s3_config(tmp_path / "data", seaweed, max_file_bytes=str(PART_BYTES + 1))
    sizes = [0, 1, SPOOL_BYTES - 1, SPOOL_BYTES, SPOOL_BYTES + 1, PART_BYTES, PART_BYTES + 1]
    open_before = open_part_files()
    async with signed_in_client(config) as client:
        for size in sizes:
            body = os.urandom(size)
            r = await client.post(f"/uploads?name={size}.bin", content=body)
            assert r.status_code == 201, r.text
            entry = r.json()["files"][0]
            assert entry["sha256"] == hashlib.sha256(body).hexdigest(), size
            assert (await client.get(entry["url"])).content == body, size
        r = await client.post("/uploads", files=form("big.bin", os.urandom(PART_BYTES + 2 * MiB)))
        assert r.status_code == 413, r.text
        assert open_part_files() == open_before
    assert list((config.uploads_dir / ".s3-parts").iterdir()) == []
    assert len(await stored_objects(config)) == len(sizes)


async def test_ranges_come_straight_from_s3(tmp_path: Path, seaweed: Seaweed) -> None:
    config = s3_config(tmp_path / "data", seaweed)
    body = os.urandom(PART_BYTES + 3 * MiB + 17)
    async with signed_in_client(config) as client:
        entry = (await client.post("/uploads?name=r.bin", content=body)).json()["files"][0]
        for start, end in ((0, 0), (PART_BYTES - 2, PART_BYTES + 2), (len(body) - 9, None)):
            wanted = f"bytes={start}-{'' if end is None else end}"
            r = await client.get(entry["url"], headers={"range": wanted})
            assert r.status_code == 206
            last = len(body) - 1 if end is None else end
            assert r.headers.get("content-range") == f"bytes {start}-{last}/{len(body)}"
            assert r.content == body[start : last + 1]
            assert r.headers.get("etag") == f'"{entry["sha256"]}"'


async def test_an_unreachable_store_is_503_in_words_and_nothing_is_recorded(
    tmp_path: Path, seaweed: Seaweed
) -> None:
    dead = Config.load(
        {
            "data_dir": str(tmp_path / "data"),
            "storage": "s3://stowage/dead",
            "s3_endpoint_url": f"http://127.0.0.1:{free_port()}",
        },
        environ=seaweed.env,
    )
    async with signed_in_client(dead) as client:
        for body in (b"small", os.urandom(PART_BYTES + 1)):
            r = await client.post("/uploads?name=x.bin", content=body)
            assert r.status_code == 503, r.text
            message = r.json()["error"]
            assert "object store could not be reached" in message
            assert "nothing was kept" in message
        assert (await client.get("/api/files")).json() == {"files": []}


@pytest.fixture
def own_seaweed(tmp_path: Path) -> Iterator[Seaweed]:
    """A SeaweedFS of this test's own, to kill and start again."""
    weed = Seaweed(tmp_path / "weed")
    weed.start()
    try:
        weed.create_bucket()
        yield weed
    finally:
        weed.stop()


async def test_the_store_going_down_and_coming_back(tmp_path: Path, own_seaweed: Seaweed) -> None:
    """Killed in the middle of an upload: that upload gets 503 in words and no row, and
    so do later uploads and downloads. Started again on the same ports: the same running
    app works again, with no restart of its own. The multipart upload that could not be
    aborted while the store was down is what `stowage check --repair` aborts."""
    config = s3_config(tmp_path / "data", own_seaweed)
    before = os.urandom(100_000)
    watcher = await open_store(config)
    assert isinstance(watcher, S3Store)
    try:
        async with signed_in_client(config) as client:
            kept = (await client.post("/uploads?name=a.bin", content=before)).json()["files"][0]
            # Large enough to be still on its way when its first part is seen.
            big = client.post("/uploads?name=big.bin", content=os.urandom(8 * PART_BYTES))
            uploading = asyncio.ensure_future(big)
            deadline = time.monotonic() + 30
            while not await watcher.unfinished_uploads():
                assert not uploading.done(), "the upload ended before its parts were seen"
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
            own_seaweed.kill()
            r = await uploading
            assert r.status_code == 503, r.text
            assert "object store could not be reached" in r.json()["error"]
            r = await client.post("/uploads?name=b.bin", content=b"while down")
            assert r.status_code == 503, r.text
            r = await client.get(kept["url"])
            assert r.status_code == 503
            assert "try again" in r.json()["error"]
            listed = (await client.get("/api/files")).json()["files"]
            assert [f["name"] for f in listed] == ["a.bin"]
            await asyncio.to_thread(own_seaweed.start)
            r = await client.post("/uploads?name=c.bin", content=b"back again")
            assert r.status_code == 201, r.text
            assert (await client.get(kept["url"])).content == before
        found = await survey_s3(config.data_dir, watcher, grace_seconds=0.0)
        assert len(found.temp_files) == 1 and not found.orphans and not found.missing
        await repair_s3(watcher, found)
    finally:
        await watcher.aclose()
    names = {f for f in await stored_objects(config)}
    assert names == {kept["id"], r.json()["files"][0]["id"]}


@pytest.fixture
def s3_server(tmp_path: Path, seaweed: Seaweed) -> Iterator[tuple[RunningServer, Config]]:
    """`stowage serve` on S3 storage, and the settings to look into its bucket with."""
    config = s3_config(tmp_path / "server-data", seaweed)
    flags = ["--storage", f"s3://{config.storage.bucket}/{config.storage.prefix}"]
    flags += ["--s3-endpoint-url", seaweed.endpoint_url]
    # The node's own streaming both ways (direct downloads would answer a 302 instead:
    # tests/server/test_direct_downloads.py).
    flags += ["--s3-direct", "uploads"]
    for running in start_server(tmp_path, *flags, env=seaweed.env):
        yield running, config


def test_50_mb_round_trip_through_s3_in_little_memory(
    s3_server: tuple[RunningServer, Config], tmp_path: Path
) -> None:
    server, config = s3_server
    source = tmp_path / "fifty.bin"
    expected = write_random_file(source, 50)
    with server.http(timeout=120) as http:
        with source.open("rb") as body:
            r = http.put("/uploads/fifty.bin", content=body)
        assert r.status_code == 201, r.text
        entry = r.json()["files"][0]
        assert entry["sha256"] == expected
        digest = hashlib.sha256()
        with http.stream("GET", entry["url"]) as download:
            assert download.headers["content-length"] == str(50 * MB)
            assert download.headers["etag"] == f'"{expected}"'
            for chunk in download.iter_raw():
                digest.update(chunk)
        assert digest.hexdigest() == expected
        tail = http.get(entry["url"], headers={"range": "bytes=-1000"})
        assert tail.status_code == 206
        assert tail.content == source.read_bytes()[-1000:]
    peak_mib = server.peak_rss_kib() / 1024
    print(f"\n50 MB through S3: server peak RSS {peak_mib:.1f} MiB")
    assert peak_mib < 150
    assert asyncio.run(stored_objects(config)) == {entry["id"]: 50 * MB}


def test_a_client_that_leaves_midway_leaves_no_parts(
    s3_server: tuple[RunningServer, Config],
) -> None:
    server, config = s3_server
    host = server.base_url.removeprefix("http://")
    sent = 3 * PART_BYTES  # several parts are in S3 when the client goes
    with socket.create_connection(("127.0.0.1", int(host.rsplit(":", 1)[1]))) as s:
        s.sendall(
            f"PUT /uploads/partial.bin HTTP/1.1\r\nHost: {host}\r\n"
            f"Authorization: Bearer {server.token}\r\n"
            f"Content-Length: {sent * 2}\r\n\r\n".encode()
        )
        for _ in range(sent // MiB):
            s.sendall(b"x" * MiB)
        time.sleep(0.5)
    deadline = time.monotonic() + 10
    while True:
        try:
            # Fails while an unfinished multipart upload is still there.
            assert asyncio.run(stored_objects(config)) == {}
            break
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    files = httpx.get(server.base_url + "/api/files", headers=server.headers).json()
    assert files == {"files": []}


async def test_resumable_uploads_on_s3_with_a_sqlite_catalog(
    tmp_path: Path, seaweed: Seaweed
) -> None:
    """S3 storage with the SQLite catalog: the tail of an append waits in a SQLite
    BLOB, a part in the bucket (S3 with PostgreSQL: tests/server/test_resumable_s3.py)."""
    config = s3_config(tmp_path / "data", seaweed)
    _, token = await add_account(config, "owner")
    data = os.urandom(9 * 1024 * 1024 + 5)
    tus = {"tus-resumable": "1.0.0"}
    async with signed_in_client(config, token) as client:
        r = await client.post("/tus/", headers={**tus, "upload-length": str(len(data))})
        assert r.status_code == 201, r.text
        url = r.headers.get("location")
        for start, end in ((0, 1024 * 1024), (1024 * 1024, len(data))):
            r = await client.request("PATCH", url, content=data[start:end], headers={
                **tus, "content-type": "application/offset+octet-stream",
                "upload-offset": str(start),
            })  # fmt: skip
            assert r.status_code == 204, r.text
        file_id = r.headers.get("stowage-file-id")
        assert (await client.get(f"/files/{file_id}")).content == data
        listed = (await client.get("/api/files")).json()["files"]
        assert listed[0]["sha256"] == hashlib.sha256(data).hexdigest()
        # An upload left mid-append by a process that died: its lease names that
        # process, and goes at the next start (no other process shares SQLite).
        r = await client.post("/tus/", headers={**tus, "upload-length": "10"})
        upload_id = r.headers.get("location").rsplit("/", 1)[1]
    with sqlite3.connect(config.db_path) as db:
        db.execute(
            "UPDATE resumable_s3 SET appending_node = 'gone', appending_until = ?"
            " WHERE upload_id = ?",
            (time.time() + 60, upload_id),
        )
    async with signed_in_client(config, token):
        pass
    with sqlite3.connect(config.db_path) as db:
        leases = db.execute("SELECT appending_node FROM resumable_s3").fetchall()
    assert leases == [(None,)]
    assert await unfinished_resumable(config) == 1  # its multipart upload stays


async def test_zip_archives_of_files_on_s3(
    tmp_path: Path, seaweed: Seaweed, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Laid out from temp copies of the objects, served from S3 by range; the copies
    are gone after. They are made in a temp dir of this test's own, so that another
    test's S3 work at the same moment (the suite runs on two workers) is not counted."""
    temp_dir = tmp_path / "tmp"
    temp_dir.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp_dir))
    config = s3_config(tmp_path / "data", seaweed)
    bodies = {"one.bin": os.urandom(PART_BYTES + 99), "two.txt": b"two\n" * 1000}
    async with signed_in_client(config) as client:
        ids = [
            (await client.post(f"/uploads?name={name}", content=body)).json()["files"][0]["id"]
            for name, body in bodies.items()
        ]
        made = await client.post("/api/archives", json={"ids": ids})
        assert made.status_code == 201, made.text
        whole = await client.get(made.json()["url"])
        assert whole.status_code == 200
        with zipfile.ZipFile(io.BytesIO(whole.content)) as archive:
            assert archive.testzip() is None
            assert {n: archive.read(n) for n in archive.namelist()} == bodies
        part = await client.get(made.json()["url"], headers={"range": "bytes=100-200099"})
        assert part.status_code == 206
        assert part.content == whole.content[100:200100]
    assert not list(temp_dir.glob("stowage-s3-*"))


async def test_check_reconciles_the_bucket_with_the_catalog(
    tmp_path: Path, seaweed: Seaweed
) -> None:
    """Objects without a row (orphans), rows without an object (missing) and multipart
    uploads nobody finished are found; --repair removes the first and aborts the last."""
    config = s3_config(tmp_path / "data", seaweed)
    async with signed_in_client(config) as client:
        kept, lost = [
            (await client.post(f"/uploads?name={n}", content=n.encode())).json()["files"][0]
            for n in ("kept.txt", "lost.txt")
        ]
    store = await open_store(config)
    assert isinstance(store, S3Store)
    try:
        orphan = store.create()
        await orphan.write(b"no row names me")
        await orphan.commit()
        await store.client.delete_object(Bucket=store.bucket, Key=store.key_of(lost["id"]))
        await store.client.create_multipart_upload(
            Bucket=store.bucket, Key=store.key_of(new_blob_id())
        )
        done = await asyncio.to_thread(stowage_check, config, seaweed)
        assert done.returncode == 1, done.stdout + done.stderr
        assert f"orphan     {orphan.id}" in done.stdout
        assert f"missing    {lost['id']}  'lost.txt'" in done.stdout
        assert re.search(r"temp files\s+1 ", done.stdout)
        done = await asyncio.to_thread(stowage_check, config, seaweed, "--repair")
        assert "aborted 1 unfinished multipart upload(s) and removed 1 orphan" in done.stdout
        # A row without its object is never deleted: it is all that names the file.
        assert done.returncode == 1
        assert f"missing    {lost['id']}" in done.stdout
        assert await store.unfinished_uploads() == []
        assert set(await store.blob_sizes()) == {kept["id"]}
    finally:
        await store.aclose()


@pytest.mark.parametrize(
    ("value", "bucket", "prefix"),
    [("s3://stowage", "stowage", ""), ("s3://my.bucket-1/a/b/", "my.bucket-1", "a/b/")],
)
def test_storage_setting_names_a_bucket_and_prefix(value: str, bucket: str, prefix: str) -> None:
    env = {"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "the-secret-key"}
    config = Config.load({"storage": value}, environ=env)
    assert (config.storage.kind, config.storage.bucket, config.storage.prefix) == (
        "s3",
        bucket,
        prefix,
    )
    assert config.s3_credentials is not None
    assert config.s3_credentials.region == "us-east-1"
    assert config.s3_credentials.secret_access_key == "the-secret-key"
    assert "the-secret-key" not in repr(config)  # never in a log line or a traceback


@pytest.mark.parametrize(
    ("flags", "env", "message"),
    [
        ({"storage": "s3://No_Such"}, {}, "--storage must be local or s3://BUCKET[/PREFIX]"),
        ({"storage": "/srv/files"}, {}, "--storage must be local or s3://BUCKET[/PREFIX]"),
        ({"storage": "s3://stowage"}, {}, "needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"),
        ({"s3_endpoint_url": "127.0.0.1:8333"}, {}, "--s3-endpoint-url must be an http://"),
    ],
)
def test_bad_storage_settings_are_refused_in_words(
    flags: dict[str, str], env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        Config.load(flags, environ=env)


async def test_users_remove_delete_files_deletes_the_objects(
    tmp_path: Path, seaweed: Seaweed
) -> None:
    config = s3_config(tmp_path / "data", seaweed)
    _, token = await add_account(config, "leaver")
    async with signed_in_client(config, token) as client:
        r = await client.post("/uploads?name=gone.txt", content=b"bye")
        assert r.status_code == 201
    assert len(await stored_objects(config)) == 1
    storage = f"s3://{config.storage.bucket}/{config.storage.prefix}"
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "app.cli", "users", "remove", "leaver", "--delete-files",
         "--data-dir", str(config.data_dir), "--storage", storage,
         "--s3-endpoint-url", seaweed.endpoint_url],
        capture_output=True, text=True, env={**os.environ, **seaweed.env}, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "removed leaver and 1 file(s)" in done.stdout
    assert await stored_objects(config) == {}
