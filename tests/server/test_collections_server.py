"""Folder ZIPs and a collection's ZIP against the real `stowage serve` process: curl
takes part of /s/TOKEN/zip, is cut off and resumes with `curl -C -`; `unzip -t` checks
the joined file, its paths and its empty folder; the owner's ZIP of a folder the same."""

import hashlib
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
from tests.support.curl import curl, head_of, upload
from tests.support.fixtures import RunningServer

pytestmark = pytest.mark.slow

MiB = 1024 * 1024
UNZIP = shutil.which("unzip")


def _tree(server: RunningServer, tmp_path: Path) -> dict[str, str]:
    """Photos/{2024/big.bin, 2024/small.txt, empty/}."""
    big = tmp_path / "big.bin"
    block = hashlib.sha256(b"big").digest() * (MiB // 32)
    big.write_bytes(b"".join(block[i:] + block[:i] for i in range(8)))  # 8 MiB
    small = tmp_path / "small.txt"
    small.write_bytes(b"small\n")
    ids = [upload(server, big)["id"], upload(server, small)["id"]]
    with server.http(timeout=30) as http:
        photos = http.post("/api/folders", json={"name": "Photos"}).json()["folder"]["id"]
        year = http.post("/api/folders", json={"name": "2024", "parent": photos})
        empty = http.post("/api/folders", json={"name": "empty", "parent": photos})
        assert year.status_code == empty.status_code == 201
        moved = http.post("/api/files/move", json={"ids": ids, "to": year.json()["folder"]["id"]})
        assert moved.status_code == 200, moved.text
    return {"photos": photos, "big": str(big), "small": str(small)}


def _unzip_t(path: Path) -> None:
    if UNZIP is None:
        pytest.fail("unzip is not installed (.ci/run installs it)")
    done = subprocess.run([UNZIP, "-t", str(path)], capture_output=True, timeout=60)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr


def test_a_folder_links_zip_resumes_and_unzips(server: RunningServer, tmp_path: Path) -> None:
    t = _tree(server, tmp_path)
    with server.http(timeout=30) as http:
        made = http.post(f"/api/folders/{t['photos']}/shares", json={"max_downloads": 2})
    assert made.status_code == 201, made.text
    url = server.base_url + made.json()["share"]["url"] + "/zip"
    status, headers = head_of(curl(server, "-I", url).stdout)
    assert status == 200 and headers["content-type"] == ["application/zip"]
    size = int(headers["content-length"][0])
    out = tmp_path / "photos.zip"
    # A visitor (no credentials) takes a third, then resumes where it stopped.
    done = subprocess.run(
        ["curl", "-sS", "--fail", "-r", f"0-{size // 3}", "-o", str(out), url],
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    resumed = subprocess.run(
        ["curl", "-sS", "--fail", "-D", "-", "-C", "-", "-o", str(out), url],
        capture_output=True,
        timeout=60,
    )
    assert resumed.returncode == 0, resumed.stderr
    status, headers = head_of(resumed.stdout)
    assert status == 206 and headers["content-range"][0].startswith(f"bytes {size // 3 + 1}-")
    assert out.stat().st_size == size
    _unzip_t(out)
    with zipfile.ZipFile(out) as archive:
        assert archive.namelist() == ["2024/", "2024/big.bin", "2024/small.txt", "empty/"]
        assert archive.getinfo("empty/").is_dir()
        assert archive.read("2024/big.bin") == Path(t["big"]).read_bytes()
    # The whole in one go plus the resumed parts: what left is counted by its bytes.
    with server.http(timeout=30) as http:
        listed = http.get("/api/shares").json()["shares"]
    assert listed[0]["downloads"] == 1


def test_the_owners_zip_of_a_folder_unzips_with_its_paths(
    server: RunningServer, tmp_path: Path
) -> None:
    t = _tree(server, tmp_path)
    with server.http(timeout=30) as http:
        created = http.post("/api/archives", json={"folders": [t["photos"]]})
    assert created.status_code == 201, created.text
    out = tmp_path / "owner.zip"
    curl(server, "--fail", "-o", str(out), server.base_url + created.json()["url"])
    _unzip_t(out)
    with zipfile.ZipFile(out) as archive:
        assert archive.namelist() == [
            "Photos/", "Photos/2024/", "Photos/2024/big.bin", "Photos/2024/small.txt",
            "Photos/empty/",
        ]  # fmt: skip
    listing = subprocess.run([UNZIP or "unzip", "-l", str(out)], capture_output=True, timeout=60)
    assert b"Photos/empty/" in listing.stdout
