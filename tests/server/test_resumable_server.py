"""Resumable uploads against the real server: a kill -9 in the middle of an append,
and a new request taking over from an append whose client went silent."""

import hashlib
import os
import signal
import socket
import time
from pathlib import Path

import httpx
import pytest
from tests.support.fixtures import RunningServer, start_server

pytestmark = pytest.mark.slow

TUS = {"tus-resumable": "1.0.0"}
MiB = 1024 * 1024


def create(server: RunningServer, length: int) -> str:
    with server.http() as http:
        headers = {**TUS, "upload-length": str(length), "upload-metadata": "filename YmlnLmJpbg=="}
        answer = http.post("/tus/", headers=headers)
    assert answer.status_code == 201, answer.text
    return answer.headers["location"]


def head_offset(server: RunningServer, url: str, token: str | None = None) -> int:
    headers = {**TUS, "authorization": f"Bearer {token or server.token}"}
    answer = httpx.head(server.base_url + url, headers=headers, timeout=10)
    assert answer.status_code == 200, answer.status_code
    return int(answer.headers["upload-offset"])


def patch_rest(
    server: RunningServer, url: str, data: bytes, offset: int, token: str
) -> httpx.Response:
    return httpx.patch(
        server.base_url + url,
        content=data[offset:],
        headers={**TUS, "authorization": f"Bearer {token}",
                 "content-type": "application/offset+octet-stream",
                 "upload-offset": str(offset)},
        timeout=60,
    )  # fmt: skip


class StalledPatch:
    """A PATCH on a raw socket that sends `first` bytes of its Content-Length and then
    goes silent, holding the connection open, like a client whose network died."""

    def __init__(self, server: RunningServer, url: str, data: bytes, first: int) -> None:
        host, port = server.base_url.removeprefix("http://").split(":")
        self.sock = socket.create_connection((host, int(port)))
        head = (
            f"PATCH {url} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Authorization: Bearer {server.token}\r\nTus-Resumable: 1.0.0\r\n"
            "Content-Type: application/offset+octet-stream\r\nUpload-Offset: 0\r\n"
            f"Content-Length: {len(data)}\r\n\r\n"
        )
        self.sock.sendall(head.encode() + data[:first])

    def close(self) -> None:
        self.sock.close()


def test_kill_9_mid_append_then_resume(tmp_path: Path):
    """An append cut by kill -9 keeps what its last checkpoint made durable; after a
    restart HEAD reports it and the upload completes byte-identical."""
    data = os.urandom(100 * MiB)
    servers = start_server(tmp_path)
    server = next(servers)
    token = server.token
    url = create(server, len(data))
    stalled = StalledPatch(server, url, data, 80 * MiB)
    # The server records a durable offset every 64 MiB of an append.
    time.sleep(2)
    os.kill(server.process.pid, signal.SIGKILL)
    server.process.wait()
    stalled.close()
    servers.close()

    restarted = start_server(tmp_path, account=False)
    server = next(restarted)
    try:
        offset = head_offset(server, url, token)
        assert 64 * MiB <= offset <= 80 * MiB
        answer = patch_rest(server, url, data, offset, token)
        assert answer.status_code == 204, answer.text
        file_id = answer.headers["stowage-file-id"]
        stored = httpx.get(f"{server.base_url}/files/{file_id}",
                           headers={"authorization": f"Bearer {token}"}, timeout=60)  # fmt: skip
        assert hashlib.sha256(stored.content).digest() == hashlib.sha256(data).digest()
        sent = 80 * MiB + (len(data) - offset)
        print(f"kill -9 resume: the server received {sent / len(data):.2f}x the file's bytes")
        assert sent < 1.5 * len(data)
    finally:
        restarted.close()


def test_a_new_request_takes_over_a_silent_append(server: RunningServer):
    """tusd answers 423 here and clients wait for a timeout; Stowage ends the old
    append at once, keeps its durable bytes, and the new request goes on."""
    data = os.urandom(24 * MiB)
    url = create(server, len(data))
    stalled = StalledPatch(server, url, data, 16 * MiB)
    try:
        time.sleep(1)  # the server has read what was sent
        # Far below the 30 s body timeout: the HEAD ends the silent append.
        offset = head_offset(server, url)
        assert offset == 16 * MiB
        answer = patch_rest(server, url, data, offset, server.token)
        assert answer.status_code == 204, answer.text
        # The old request was ended: its connection is closed by the server.
        stalled.sock.settimeout(5)
        reply = b""
        try:
            while chunk := stalled.sock.recv(65536):
                reply += chunk
        except ConnectionResetError:
            pass
        assert reply == b"" or reply.startswith(b"HTTP/1.1 409")
    finally:
        stalled.close()
    with server.http() as http:
        files = http.get("/api/files").json()["files"]
        assert files[0]["sha256"] == hashlib.sha256(data).hexdigest()


def test_a_new_patch_takes_over_too(server: RunningServer):
    data = os.urandom(12 * MiB)
    url = create(server, len(data))
    stalled = StalledPatch(server, url, data, 4 * MiB)
    try:
        time.sleep(1)
        # The client guesses the offset it had sent; the takeover makes it durable first.
        answer = patch_rest(server, url, data, 4 * MiB, server.token)
        assert answer.status_code == 204, answer.text
        assert answer.headers["upload-offset"] == str(len(data))
    finally:
        stalled.close()
