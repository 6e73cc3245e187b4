"""A full disk never traps the user: a real server with its data dir on a 64 MiB tmpfs."""

import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.conftest import RunningServer, start_server

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
