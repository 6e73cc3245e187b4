"""Optimistic uploads of the IETF resumable-upload draft on a real server: `POST
/uploads` with `Upload-Complete: ?1` and the interop header gets a `104 Upload
Resumption Supported` with the upload's URL before its body is read (curl prints it),
an upload cut off midway is resumed from the offset the server holds (HEAD, then a
PATCH by curl) and ends stored with the right sha256; tus-js-client's draft mode
uploads through `/uploads` and resumes; `OPTIONS *` carries the server's
`Upload-Limit` (Stario's own answer, rewritten on its way out)."""

import hashlib
import os
import re
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from tests.support.clients import TusJs
from tests.support.fixtures import RunningServer

pytestmark = pytest.mark.slow

DRAFT = {"Upload-Draft-Interop-Version": "8"}
# The server's defaults (--max-file-bytes 64 GiB, --max-request-body-bytes 1 GiB,
# --upload-expiry 24 h), as `OPTIONS *` and `OPTIONS /uploads` tell them.
SERVER_LIMIT = (
    "max-size=68719476736, min-size=0, max-append-size=1073741824, expires=86400, max-age=86400"
)


def stored(server: RunningServer) -> list[tuple[str, int, str]]:
    with server.http() as http:
        files = http.get("/api/files").json()["files"]
    return [(f["name"], f["size"], f["sha256"]) for f in files]


def curl(server: RunningServer, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """curl -v over HTTP/1.1, signed in as the owner (what it read is in stderr)."""
    return subprocess.run(
        ["curl", "-v", "--http1.1", "-sS", *server.curl_auth, *args],
        capture_output=True, text=True, timeout=60, cwd=cwd,
    )  # fmt: skip


def received_heads(verbose: str) -> list[str]:
    """The status lines curl -v printed as it read them, in order."""
    return [line[2:].strip() for line in verbose.splitlines() if line.startswith("< HTTP/")]


def test_curl_sees_the_104_with_the_upload_url_before_the_final_answer(
    server: RunningServer, tmp_path: Path
):
    data = os.urandom(3_000_000)  # over 1 MiB: curl sends Expect: 100-continue
    (tmp_path / "whole.bin").write_bytes(data)
    done = curl(
        server, tmp_path, "-H", "Upload-Complete: ?1", "-H", "Upload-Draft-Interop-Version: 8",
        "-H", "Content-Type: application/octet-stream", "--data-binary", "@whole.bin",
        f"{server.base_url}/uploads?name=whole.bin",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    # The 104 first (before the body), then Stario's own 100 as the body is read
    # (the draft: a 104 never stands in for the 100), then the final answer.
    assert received_heads(done.stderr) == [
        "HTTP/1.1 104 Upload Resumption Supported",
        "HTTP/1.1 100 Continue",
        "HTTP/1.1 201 Created",
    ]
    interim = done.stderr.split("< HTTP/1.1 100")[0]
    location = re.search(r"^< location: (/tus/\S+)", interim, re.M)
    assert location, interim
    assert "< upload-draft-interop-version: 8" in interim
    assert re.search(r"^< upload-limit: max-size=\d+, min-size=0, max-append-size=\d+", interim,
                     re.M)  # fmt: skip
    # The final answer is a single-request upload's: the stored file.
    final = done.stderr.split("< HTTP/1.1 201 Created")[1]
    assert re.search(r"^< location: /files/\S+", final, re.M), final
    assert "< upload-complete: ?1" in final
    assert stored(server) == [("whole.bin", len(data), hashlib.sha256(data).hexdigest())]
    # The upload resource says it is finished, where the 104 said it was.
    with server.http() as http:
        head = http.head(location[1], headers=DRAFT)
    assert head.status_code == 204
    assert head.headers["upload-complete"] == "?1"
    assert head.headers["upload-offset"] == str(len(data))


def request_head(server: RunningServer, line: str, headers: dict[str, str]) -> bytes:
    """A request's head as a raw socket client sends it, signed in as the owner."""
    host = server.base_url.removeprefix("http://")
    fields = {"Host": host, "Authorization": f"Bearer {server.token}", **headers}
    lines = [f"{line} HTTP/1.1", *(f"{name}: {value}" for name, value in fields.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def read_interim(sock: socket.socket) -> dict[str, str]:
    """Read up to the end of the first response head; its status and headers."""
    got = b""
    while b"\r\n\r\n" not in got:
        chunk = sock.recv(4096)
        assert chunk, got
        got += chunk
    head = got.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    fields = {"status": head[0]}
    for line in head[1:]:
        name, _, value = line.partition(":")
        fields[name.strip().lower()] = value.strip()
    return fields


def test_an_optimistic_upload_cut_off_midway_resumes_from_the_servers_offset(
    server: RunningServer, tmp_path: Path
):
    data = os.urandom(4_000_000)
    half = len(data) // 2
    port = int(server.base_url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(request_head(server, "POST /uploads?name=cut.bin", {
            "Upload-Complete": "?1", **DRAFT, "Content-Type": "application/octet-stream",
            "Content-Length": str(len(data)),
        }))  # fmt: skip
        sock.sendall(data[:half])
        interim = read_interim(sock)
        # The client is cut off here: half the body sent, no final answer read.
    assert interim["status"] == "HTTP/1.1 104 Upload Resumption Supported", interim
    assert interim["upload-draft-interop-version"] == "8"
    location = interim["location"]
    assert location.startswith("/tus/")
    with server.http() as http:
        deadline = time.monotonic() + 10
        while True:
            head = http.head(location, headers=DRAFT)
            assert head.status_code == 204, head.text
            if head.headers["upload-offset"] != "0" or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    # The server keeps what arrived: the upload is unfinished, its length known.
    assert head.headers["upload-complete"] == "?0"
    assert head.headers["upload-length"] == str(len(data))
    assert head.headers["location"] == location
    assert head.headers["cache-control"] == "no-store"
    offset = int(head.headers["upload-offset"])
    assert 0 < offset <= half
    assert stored(server) == []
    (tmp_path / "rest.bin").write_bytes(data[offset:])
    done = subprocess.run(
        ["curl", "--fail-with-body", "-sS", "--http1.1", *server.curl_auth, "-X", "PATCH",
         "-H", "Upload-Draft-Interop-Version: 8", "-H", f"Upload-Offset: {offset}",
         "-H", "Upload-Complete: ?1", "-H", "Content-Type: application/partial-upload",
         "--data-binary", "@rest.bin", server.base_url + location],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert stored(server) == [("cut.bin", len(data), hashlib.sha256(data).hexdigest())]


def test_a_plain_upload_gets_no_upload_resource_and_no_104(server: RunningServer):
    port = int(server.base_url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(
            request_head(server, "PUT /uploads/plain.txt",
                         {"Upload-Complete": "?1", "Content-Length": "5"}) + b"hello"
        )  # fmt: skip
        answer = read_interim(sock)
    assert answer["status"] == "HTTP/1.1 201 Created"
    assert "upload-offset" not in answer


def test_options_star_carries_the_servers_upload_limit(server: RunningServer):
    done = subprocess.run(
        ["curl", "-sS", "-i", "-X", "OPTIONS", "--request-target", "*", server.base_url],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    lines = done.stdout.splitlines()
    assert lines[0].strip() == "HTTP/1.1 204 No Content"
    assert f"upload-limit: {SERVER_LIMIT}" in (line.strip() for line in lines)
    # The same limits on the creation URLs.
    answer = httpx.options(server.base_url + "/uploads")
    assert answer.status_code == 204
    assert answer.headers["upload-limit"] == SERVER_LIMIT


def test_tus_js_draft_mode_uploads_optimistically_through_uploads(
    tus_js: TusJs, server: RunningServer, tmp_path: Path
):
    # `ietf-draft-05` (interop 6) with the data in the creation request and no chunk
    # size: one POST with Upload-Complete: ?1, the optimistic upload.
    data = os.urandom(600_000)
    (tmp_path / "one.bin").write_bytes(data)
    result = tus_js.upload(
        tmp_path / "one.bin", endpoint=f"{server.base_url}/uploads?name=one.bin",
        protocol="ietf-draft-05", token=server.token, data_during_creation=True,
    )  # fmt: skip
    assert result.ok, result
    assert result.methods() == ["POST"]
    assert result.requests[0]["headers"]["Upload-Complete"] == "?1"
    assert stored(server) == [("one.bin", len(data), hashlib.sha256(data).hexdigest())]


def test_tus_js_draft_mode_resumes_an_upload_made_at_uploads(
    tus_js: TusJs, server: RunningServer, tmp_path: Path
):
    chunk = 100_000
    data = os.urandom(5 * chunk)
    (tmp_path / "big.bin").write_bytes(data)
    first = tus_js.upload(
        tmp_path / "big.bin", endpoint=f"{server.base_url}/uploads?name=big.bin",
        protocol="ietf-draft-05", chunk_size=chunk, token=server.token,
        stop_after=2 * chunk,
    )  # fmt: skip
    assert first.stopped and first.url and "/tus/" in first.url, first
    second = tus_js.upload(
        tmp_path / "big.bin", upload_url=first.url, protocol="ietf-draft-05",
        chunk_size=chunk, token=server.token,
    )  # fmt: skip
    assert second.ok, second
    assert second.methods()[0] == "HEAD"
    assert second.requests[1]["headers"]["Upload-Offset"] == str(2 * chunk)
    assert stored(server) == [("big.bin", len(data), hashlib.sha256(data).hexdigest())]
