"""File requests against the real `stowage serve` process, with curl: every way curl
sends a file works through a request link, and the per-file cap stops a body that
declares no length while its bytes arrive, leaving nothing behind."""

import json
import shutil
import socket
import subprocess
from pathlib import Path

import httpx
import pytest
from tests.support.fixtures import RunningServer

pytestmark = pytest.mark.slow

CURL = shutil.which("curl") or "/usr/bin/curl"


def curl(*args: str, stdin: bytes | None = None) -> tuple[int, dict]:
    done = subprocess.run(
        [CURL, "--silent", "--show-error", "--write-out", "\n%{http_code}", *args],
        input=stdin, capture_output=True, timeout=60, check=False,
    )  # fmt: skip
    body, _, status = done.stdout.rpartition(b"\n")
    return int(status or 0), json.loads(body) if body.strip() else {}


def make_request(server: RunningServer, **fields: object) -> str:
    with server.http() as http:
        r = http.post("/api/requests", json={"label": "Drop box", **fields})
    assert r.status_code == 201, r.text
    return server.base_url + r.json()["request"]["url"]


def owner_names(server: RunningServer) -> list[str]:
    with server.http() as http:
        return sorted(f["name"] for f in http.get("/api/files").json()["files"])


def test_curl_uploads_through_a_request_link(server: RunningServer, tmp_path: Path) -> None:
    link = make_request(server)
    notes = tmp_path / "notes.txt"
    notes.write_text("hello\n")
    assert curl("-T", str(notes), f"{link}/uploads/")[0] == 201
    status, answer = curl("-F", f"file=@{notes};filename=form.txt", f"{link}/uploads")
    assert status == 201 and set(answer["files"][0]) == {
        "name", "size", "sha256", "mime", "created_at",
    }  # fmt: skip
    assert curl("-T", "-", f"{link}/uploads/piped.txt", stdin=b"piped\n")[0] == 201
    assert owner_names(server) == ["form.txt", "notes.txt", "piped.txt"]


def chunked_put(server: RunningServer, path: str, body: bytes) -> bytes:
    """PUT `body` as 16 KiB chunks of a chunked body (no Content-Length) and never end it:
    the server must refuse while the bytes arrive. Stario hands a chunked body over
    in 64 KiB pieces, so a body of whole pieces is read entirely before the answer:
    the close is clean and the answer arrives whole (curl -T -, which keeps
    sending, may meet a reset instead)."""
    port = int(server.base_url.rsplit(":", 1)[1])
    head = (
        f"PUT {path} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\ntransfer-encoding: chunked\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head)
        for start in range(0, len(body), 16 * 1024):
            piece = body[start : start + 16 * 1024]
            sock.sendall(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    return answer


def test_the_per_file_cap_stops_a_body_without_a_length(
    server: RunningServer, tmp_path: Path
) -> None:
    link = make_request(server, max_file_bytes=64 * 1024)
    path = link.removeprefix(server.base_url)
    answer = chunked_put(server, f"{path}/uploads/big.bin", b"x" * (128 * 1024))
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413")
    assert json.loads(body) == {"error": "big.bin is larger than the 64 KiB limit"}
    status, _ = curl("-T", "-", f"{link}/uploads/fits.bin", stdin=b"x" * (64 * 1024))
    assert status == 201
    assert owner_names(server) == ["fits.bin"]
    leftovers = [p for p in (server.data_dir / "uploads").rglob("*") if p.is_file()]
    assert len(leftovers) == 1  # the one stored blob; no temp file of the refused one


def test_unfinished_uploads_through_a_link_are_bounded_and_end_with_the_request(
    tmp_path: Path,
) -> None:
    """The issue's case against the real server: a request limited to 1 file took
    every header-only tus creation sent to it, each holding its length of the owner's
    quota, past closing the request and a restart. Now one is taken (the rest are
    refused in words), and closing the request gives the quota back at once, for
    good."""
    import sqlite3

    from tests.support.fixtures import start_server

    gib = 1024**3
    quota = ["--default-quota", str(4 * gib)]
    servers = start_server(tmp_path, *quota)
    server = next(servers)
    try:
        with server.http() as http:
            made = http.post("/api/requests", json={"label": "One file", "max_files": 1})
            assert made.status_code == 201, made.text
            request = made.json()["request"]
        link = request["url"]
        header_only = {"tus-resumable": "1.0.0", "upload-length": str(gib)}
        with httpx.Client(base_url=server.base_url) as stranger:
            answers = [stranger.post(f"{link}/tus/", headers=header_only) for _ in range(40)]
            draft = stranger.post(
                f"{link}/tus/",
                headers={"upload-draft-interop-version": "8", "upload-complete": "?0",
                         "upload-length": str(gib)},
            )  # fmt: skip
        statuses = [answer.status_code for answer in answers]
        assert statuses.count(201) == 1 and statuses.count(409) == 39, statuses
        assert draft.status_code == 409
        assert "last files are being uploaded now" in answers[-1].json()["error"]
        with server.http() as http:
            # 1 GiB of the owner's 4 is held: 3.5 GiB does not fit, until the close.
            mine = {"tus-resumable": "1.0.0", "upload-length": str(3 * gib + gib // 2)}
            over = http.post("/tus/", headers=mine)
            assert over.status_code == 413 and "over your quota" in over.json()["error"]
            [waiting] = http.get("/api/requests").json()["requests"][0]["uploads"]
            assert (waiting["offset"], waiting["length"]) == (0, gib)
            assert http.delete(f"/api/requests/{request['id']}").status_code == 204
        with server.http() as http:  # `/tus/` is routed as a connection's first request
            held = http.post("/tus/", headers=mine)
            assert held.status_code == 201, held.text
            assert http.delete(held.headers["location"], headers=mine).status_code == 204
    finally:
        servers.close()
    catalog = tmp_path / "server-data" / "stowage.db"
    with sqlite3.connect(catalog) as db:
        assert db.execute("SELECT COUNT(*) FROM resumable_uploads").fetchone() == (0,)
    restarted = start_server(tmp_path, *quota, account=False)
    server = next(restarted)
    try:
        with httpx.Client(base_url=server.base_url) as stranger:
            gone = stranger.post(f"{link}/tus/", headers=header_only)
            assert gone.status_code == 410 and "closed" in gone.json()["error"]
    finally:
        restarted.close()
