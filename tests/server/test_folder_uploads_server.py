"""A folder link that takes uploads, against the real `stowage serve` process: a
visitor with plain curl (no account, the link's password by HTTP Basic) sends files
into the shared folder and, by a relative path, into folders under it; a revoked
link takes no more."""

import hashlib
import subprocess
from pathlib import Path

import pytest
from tests.support.curl import CURL
from tests.support.fixtures import RunningServer

pytestmark = pytest.mark.slow

MiB = 1024 * 1024


def visitor(*args: str) -> subprocess.CompletedProcess[bytes]:
    """curl as a stranger holding only the link (no account credentials)."""
    return subprocess.run(
        [CURL, "--silent", "--show-error", "-o", "/dev/null", "-w", "%{http_code}", *args],
        capture_output=True,
        timeout=60,
    )


def test_a_visitor_uploads_into_the_shared_folder_with_curl(
    server: RunningServer, tmp_path: Path
) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(hashlib.sha256(b"x").digest() * (3 * MiB // 32))  # 3 MiB, one body
    small = tmp_path / "small.txt"
    small.write_bytes(b"small\n")
    with server.http(timeout=30) as http:
        inbox = http.post("/api/folders", json={"name": "Inbox"}).json()["folder"]["id"]
        made = http.post(
            f"/api/folders/{inbox}/shares",
            json={"uploads": True, "max_files": 3, "password": "a long passphrase"},
        )
        assert made.status_code == 201, made.text
        share = made.json()["share"]
    link = server.base_url + share["url"]
    auth = ["-u", ":a long passphrase"]
    assert visitor("-T", str(small), f"{link}/uploads/").stdout == b"401"
    assert visitor(*auth, "-T", str(big), f"{link}/uploads/").stdout == b"201"
    placed = visitor(*auth, "-T", str(small), f"{link}/uploads/?path=trip/day1/small.txt")
    assert placed.stdout == b"201", placed.stderr
    form = visitor(*auth, "-F", f"file=@{small};filename=docs/form.txt", f"{link}/uploads")
    assert form.stdout == b"201", form.stderr
    assert visitor(*auth, "-T", str(small), f"{link}/uploads/").stdout == b"410"  # full
    with server.http(timeout=30) as http:
        top = http.get(f"/api/folders/{inbox}").json()
        assert [f["name"] for f in top["files"]] == ["big.bin"]
        assert top["files"][0]["sha256"] == hashlib.sha256(big.read_bytes()).hexdigest()
        assert sorted(f["name"] for f in top["folders"]) == ["docs", "trip"]
        trip = next(f["id"] for f in top["folders"] if f["name"] == "trip")
        day1 = http.get(f"/api/folders/{trip}").json()["folders"][0]
        assert http.get(f"/api/folders/{day1['id']}").json()["files"][0]["name"] == "small.txt"
        assert http.get("/api/folders/root").json()["files"] == []
        listed = http.get("/api/shares").json()["shares"]
        assert [s["received"] for s in listed if s["id"] == share["id"]] == [3]
        assert http.delete(f"/api/shares/{share['id']}").status_code == 204
    assert visitor(*auth, "-T", str(small), f"{link}/uploads/").stdout == b"410"
