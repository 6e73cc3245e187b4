"""A full disk never traps the user: a real server with its data dir on a 64 MiB tmpfs."""

import errno
import hashlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.support.fixtures import RunningServer, start_server

pytestmark = pytest.mark.slow
MiB = 1024 * 1024


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 MiB tmpfs, unmounted at the end whatever happens."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount = tmp_path / "small-disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.fixture
def server_on_small_disk(small_disk: Path) -> Iterator[RunningServer]:
    yield from start_server(small_disk)


def free_bytes(path: Path) -> int:
    stats = os.statvfs(path)
    return stats.f_bavail * stats.f_frsize


def fill(path: Path, *, leave: int = 0) -> None:
    """Write `path` until the filesystem has at most `leave` bytes free (a file that
    Stowage knows nothing about, as another program or a log would)."""
    with path.open("wb") as out:
        for block in (MiB, 4096, 512):
            while free_bytes(path.parent) - block >= leave:
                try:
                    out.write(b"\0" * block)
                    out.flush()
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC
                    break


def upload(server: RunningServer, name: str, size: int) -> str:
    r = server.http().put(f"/uploads/{name}", content=os.urandom(size))
    assert r.status_code == 201, r.text
    return r.json()["files"][0]["id"]


def blob_of(server: RunningServer, file_id: str) -> Path:
    return server.data_dir / "uploads" / file_id[:2] / file_id


def test_delete_frees_space_on_a_disk_filled_to_the_last_byte(server_on_small_disk, small_disk):
    server = server_on_small_disk
    first, second = upload(server, "first.bin", 8 * MiB), upload(server, "second.bin", 8 * MiB)
    fill(small_disk / "filler")
    assert free_bytes(small_disk) == 0
    with server.http() as http:
        deleted = http.delete(f"/files/{first}")
        assert deleted.status_code == 204, deleted.text
        assert not blob_of(server, first).exists()
        assert http.get(f"/files/{first}").status_code == 404
        assert [f["id"] for f in http.get("/api/files").json()["files"]] == [second]
        # The space it freed is usable again: another delete, then an upload.
        (small_disk / "filler").unlink()
        assert http.delete(f"/files/{second}").status_code == 204
        assert http.get("/api/files").json()["files"] == []
        assert http.put("/uploads/after.bin", content=b"after").status_code == 201


def test_uploads_stop_at_the_floor_while_writing_and_leave_nothing(
    server_on_small_disk, small_disk
):
    """A body without Content-Length is checked while it is written: 507 in words, no
    temp file, no blob; the floor stays free for the catalog."""
    server = server_on_small_disk
    fill(small_disk / "filler", leave=20 * MiB)

    def chunks() -> Iterator[bytes]:
        for _ in range(40):
            yield os.urandom(MiB)

    with server.http(timeout=60) as http:
        r = http.put("/uploads/too-big.bin", content=chunks())
        assert r.status_code == 507, r.text
        assert "almost out of space" in r.json()["error"]
        assert http.get("/api/files").json()["files"] == []
    uploads = server.data_dir / "uploads"
    assert [p for p in uploads.rglob("*") if p.is_file()] == []
    assert free_bytes(small_disk) >= 2 * MiB


# ---- tus concatenation on a small disk ----------------------------------------------

TUS = {"tus-resumable": "1.0.0"}


def partial_upload(http: httpx.Client, body: bytes) -> str:
    made = http.post(
        "/tus/", headers={**TUS, "upload-length": str(len(body)), "upload-concat": "partial"}
    )
    assert made.status_code == 201, made.text
    url = made.headers["location"]
    sent = http.patch(url, content=body, headers={**TUS, "upload-offset": "0",
                      "content-type": "application/offset+octet-stream"})  # fmt: skip
    assert sent.status_code == 204, sent.text
    return url


def final(http: httpx.Client, urls: list[str]) -> httpx.Response:
    return http.post("/tus/", headers={**TUS, "upload-concat": "final;" + " ".join(urls)})


def resumable_files(server: RunningServer) -> list[str]:
    return sorted(p.name for p in (server.data_dir / "uploads" / ".resumable").iterdir())


def concatenated_where_it_fits(
    server: RunningServer, http: httpx.Client, urls: list[str], parts: list[bytes]
) -> None:
    """The partials are as they were: once there is room, they join."""
    for url, part in zip(urls, parts, strict=True):
        head = http.head(url, headers=TUS)
        assert head.status_code == 200 and head.headers["upload-offset"] == str(len(part))
    joined = final(http, urls)
    assert joined.status_code == 201, joined.text
    [stored] = http.get("/api/files").json()["files"]
    assert stored["sha256"] == hashlib.sha256(b"".join(parts)).hexdigest()
    assert resumable_files(server) == []


def test_a_final_below_the_floor_is_refused_before_copying(server_on_small_disk, small_disk):
    """The copy needs the whole total again while the partials still hold theirs: it is
    held to the free-space floor (about 3 MiB here) before a byte is written."""
    server = server_on_small_disk
    parts = [os.urandom(8 * MiB), os.urandom(8 * MiB)]
    with server.http(timeout=60) as http:
        urls = [partial_upload(http, part) for part in parts]
        fill(small_disk / "filler", leave=16 * MiB)
        held = resumable_files(server)
        free = free_bytes(small_disk)
        refused = final(http, urls)
        assert refused.status_code == 507, refused.text
        assert "almost out of space" in refused.json()["error"]
        assert resumable_files(server) == held
        assert free_bytes(small_disk) >= free - MiB  # nothing copied (the catalog may grow)
        (small_disk / "filler").unlink()
        concatenated_where_it_fits(server, http, urls, parts)


@pytest.fixture
def server_without_floor(small_disk: Path) -> Iterator[RunningServer]:
    yield from start_server(small_disk, "--min-free-bytes", "0")


def test_a_final_that_fills_the_disk_leaves_nothing(server_without_floor, small_disk):
    """With no floor to refuse it early, the copy runs into ENOSPC: 507, and its half
    of a file goes (left behind, it once kept the disk full, and every account's
    uploads refused, until a restart)."""
    server = server_without_floor
    parts = [os.urandom(8 * MiB), os.urandom(8 * MiB)]
    with server.http(timeout=60) as http:
        urls = [partial_upload(http, part) for part in parts]
        fill(small_disk / "filler", leave=12 * MiB)
        held = resumable_files(server)
        free = free_bytes(small_disk)
        failed = final(http, urls)
        assert failed.status_code == 507, failed.text
        assert "no space left" in failed.json()["error"]
        assert resumable_files(server) == held
        assert free_bytes(small_disk) >= free - MiB
        # Another upload has the room the failed copy had.
        after = http.put("/uploads/after.bin", content=os.urandom(4 * MiB))
        assert after.status_code == 201, after.text
        assert http.delete(f"/files/{after.json()['files'][0]['id']}").status_code == 204
        (small_disk / "filler").unlink()
        concatenated_where_it_fits(server, http, urls, parts)


@pytest.fixture
def server_with_4_mib_floor(small_disk: Path) -> Iterator[RunningServer]:
    yield from start_server(small_disk, "--min-free-bytes", str(4 * MiB))


def test_an_upload_right_after_a_delete_on_a_full_disk_uses_the_space_freed(
    server_with_4_mib_floor, small_disk
):
    """The free-space figure that refused an upload is not reused once a delete freed
    space: the very next upload fits."""
    server = server_with_4_mib_floor
    big = upload(server, "big.bin", 8 * MiB)
    fill(small_disk / "filler", leave=5 * MiB)
    with server.http(timeout=30) as http:
        refused = http.put("/uploads/early.bin", content=os.urandom(2 * MiB))
        assert refused.status_code == 507, refused.text
        assert http.delete(f"/files/{big}").status_code == 204
        after = http.put("/uploads/after.bin", content=os.urandom(2 * MiB))
        assert after.status_code == 201, after.text
        assert [f["name"] for f in http.get("/api/files").json()["files"]] == ["after.bin"]


def test_an_upload_right_after_one_refused_while_written_uses_the_space_it_left(
    server_with_4_mib_floor, small_disk
):
    """A body without Content-Length refused at the floor after 4 MiB were written:
    its temp file goes, and the next upload is measured against that space."""
    server = server_with_4_mib_floor
    fill(small_disk / "filler", leave=10 * MiB)

    def chunks() -> Iterator[bytes]:
        for _ in range(12):
            yield os.urandom(MiB)

    with server.http(timeout=30) as http:
        refused = http.put("/uploads/too-big.bin", content=chunks())
        assert refused.status_code == 507, refused.text
        after = http.put("/uploads/after.bin", content=os.urandom(3 * MiB))
        assert after.status_code == 201, after.text
