"""A file larger than any single request (2.2 GB, above Stario's 2 GiB body cap and the
server's default 1 GiB one) goes up through tus in appends below the cap and comes back
byte-identical; the same size in one request is refused with 413 before its body.

The bytes are made on the fly (nothing of 2.2 GB is held in memory or written on the
client's side); the server's copy lives in the test's tmp dir and goes with it."""

import hashlib
import json
import os
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.support.fixtures import RunningServer, start_server

pytestmark = pytest.mark.slow

MiB = 1024 * 1024
MB = 1_000_000
SIZE = 2_200_000_000
# Below the server's default --max-request-body-bytes (1 GiB), as a proxy-friendly
# client would send; 5 appends for 2.2 GB.
APPEND = 512 * MiB
BLOCK = MiB
TUS = {"tus-resumable": "1.0.0"}


class PseudoRandomFile:
    """SIZE bytes that exist only while they are read: block i is its index (8 bytes)
    then a window of a 64 MiB random pool at an offset that depends on i, so no two
    blocks are alike and a block sent twice, dropped or out of order changes the hash."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.pool = os.urandom(64 * MiB)

    def block(self, index: int) -> bytes:
        at = (index * 1_000_003) % (len(self.pool) - BLOCK)
        data = index.to_bytes(8, "big") + self.pool[at : at + BLOCK - 8]
        return data[: max(0, min(BLOCK, self.size - index * BLOCK))]

    def read(self, start: int, end: int, digest: "hashlib._Hash") -> Iterator[bytes]:
        """Bytes [start, end) in pieces, fed to `digest` as they go out. `start` is a
        multiple of BLOCK (every append but the last is a whole number of blocks)."""
        assert start % BLOCK == 0
        for index in range(start // BLOCK, (end + BLOCK - 1) // BLOCK):
            data = self.block(index)[: end - index * BLOCK]
            digest.update(data)
            yield data


def test_a_file_over_2_gib_goes_up_through_tus_and_comes_back_identical(tmp_path: Path):
    source = PseudoRandomFile(SIZE)
    sent = hashlib.sha256()
    servers = start_server(tmp_path)
    server = next(servers)
    try:
        with server.http(timeout=120) as http:
            created = http.post(
                "/tus/", headers={**TUS, "upload-length": str(SIZE),
                                  "upload-metadata": "filename YmlnLmJpbg=="},
            )  # fmt: skip
            assert created.status_code == 201, created.text
            url = created.headers["location"]

            server.reset_peak_rss()
            began = time.perf_counter()
            offset = 0
            answer = None
            appends: list[float] = []
            while offset < SIZE:
                end = min(offset + APPEND, SIZE)
                sent_at = time.perf_counter()
                answer = http.patch(
                    url,
                    content=source.read(offset, end, sent),
                    headers={**TUS, "content-type": "application/offset+octet-stream",
                             "upload-offset": str(offset), "content-length": str(end - offset)},
                )  # fmt: skip
                assert answer.status_code == 204, answer.text
                offset = int(answer.headers["upload-offset"])
                assert offset == end
                appends.append(time.perf_counter() - sent_at)
            up_seconds = time.perf_counter() - began
            up_peak = server.peak_rss_kib()
            assert answer is not None
            file_id = answer.headers["stowage-file-id"]

            server.reset_peak_rss()
            got = hashlib.sha256()
            size = 0
            began = time.perf_counter()
            with http.stream("GET", f"/files/{file_id}") as download:
                assert download.status_code == 200
                for piece in download.iter_raw(BLOCK):
                    got.update(piece)
                    size += len(piece)
            down_seconds = time.perf_counter() - began
            down_peak = server.peak_rss_kib()

            listed = {f["id"]: f for f in http.get("/api/files").json()["files"]}

        assert size == SIZE
        assert got.hexdigest() == sent.hexdigest()
        assert listed[file_id]["size"] == SIZE
        assert listed[file_id]["sha256"] == sent.hexdigest()
        print(
            f"\n2.2 GB through tus in {APPEND // MiB} MiB appends: up {SIZE / up_seconds / MB:.0f}"
            f" MB/s (peak RSS {up_peak / 1024:.0f} MiB), down {SIZE / down_seconds / MB:.0f} MB/s"
            f" (peak RSS {down_peak / 1024:.0f} MiB); seconds per append:"
            f" {', '.join(f'{t:.1f}' for t in appends)} (the last one also completes the file)"
        )

        status, content_type, body = put_head_only(server, "/uploads/big.bin", SIZE)
        assert status == 413
        if content_type.startswith("application/json"):
            assert "resumable" in json.loads(body)["error"]
        else:
            # Stario's own early refusal (plain text), before the app sees the request.
            print(f"single PUT of 2.2 GB: 413 {content_type} {body[:60]!r}")
    finally:
        servers.close()
        # pytest keeps the last runs' tmp dirs: 2.2 GB each would pile up.
        shutil.rmtree(tmp_path / "server-data", ignore_errors=True)


def put_head_only(server: RunningServer, path: str, length: int) -> tuple[int, str, bytes]:
    """A PUT announcing `length` bytes, of which none are sent: a server that reads the
    Content-Length refuses before the body (curl without `Expect` does the same)."""
    host, port = server.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            (
                f"PUT {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                f"Authorization: Bearer {server.token}\r\n"
                f"Content-Type: application/octet-stream\r\nContent-Length: {length}\r\n\r\n"
            ).encode()
        )
        reply = b""
        while b"\r\n\r\n" not in reply:
            chunk = sock.recv(65536)
            assert chunk, f"the server closed without an answer: {reply!r}"
            reply += chunk
        head, _, body = reply.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = dict(line.lower().split(": ", 1) for line in lines[1:])
        want = int(headers.get("content-length", "0"))
        while len(body) < want:
            chunk = sock.recv(65536)
            if not chunk:
                break
            body += chunk
    return int(lines[0].split()[1]), headers.get("content-type", ""), body
