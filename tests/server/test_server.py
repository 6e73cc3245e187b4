"""`stowage serve` as a person runs it: a real process on 127.0.0.1, real clients."""

import hashlib
import json
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from tests.support.fixtures import RunningServer, start_server, write_random_file

pytestmark = pytest.mark.slow
MB = 1_000_000


def files_on_disk(server: RunningServer) -> list[Path]:
    return sorted(p for p in (server.data_dir / "uploads").rglob("*") if p.is_file())


def listed(server: RunningServer) -> list[dict]:
    """The owner's files, as the API lists them."""
    return httpx.get(server.base_url + "/api/files", headers=server.headers).json()["files"]


def authorization_line(server: RunningServer) -> bytes:
    """The owner's credentials as a raw request header line."""
    return f"Authorization: Bearer {server.token}\r\n".encode()


def test_50_mb_round_trip_is_byte_identical_in_little_memory(server, tmp_path):
    source = tmp_path / "fifty.bin"
    expected = write_random_file(source, 50)

    with server.http(timeout=60) as http:
        started = time.perf_counter()
        with source.open("rb") as body:
            r = http.put("/uploads/fifty.bin", content=body)
        upload_seconds = time.perf_counter() - started
        assert r.status_code == 201, r.text
        entry = r.json()["files"][0]
        assert entry["sha256"] == expected

        digest = hashlib.sha256()
        started = time.perf_counter()
        with http.stream("GET", entry["url"]) as download:
            assert download.headers["content-length"] == str(50 * MB)
            for chunk in download.iter_raw():
                digest.update(chunk)
        download_seconds = time.perf_counter() - started
    assert digest.hexdigest() == expected

    peak_mib = server.peak_rss_kib() / 1024
    print(
        f"\n50 MB round trip: upload {50 / upload_seconds:.0f} MB/s, "
        f"download {50 / download_seconds:.0f} MB/s, server peak RSS {peak_mib:.1f} MiB"
    )
    assert peak_mib < 100


def test_curl_upload_file(server, tmp_path):
    source = tmp_path / "curl me.txt"
    source.write_text("sent by curl\n")
    done = subprocess.run(
        ["curl", "-sS", *server.curl_auth, "-T", str(source), server.base_url + "/uploads/"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert '"name":"curl me.txt"' in done.stdout


def test_client_that_leaves_midway_leaves_nothing(server):
    """9 MiB of a 20 MB body: more than two 4 MiB write batches, so the temp file
    exists on disk when the client leaves, and must be gone afterwards."""
    host = server.base_url.removeprefix("http://")
    with socket.create_connection(("127.0.0.1", int(host.rsplit(":", 1)[1]))) as s:
        s.sendall(
            f"PUT /uploads/partial.bin HTTP/1.1\r\nHost: {host}\r\n"
            f"Authorization: Bearer {server.token}\r\n"
            "Content-Length: 20000000\r\n\r\n".encode()
            + b"x" * (9 * 1024 * 1024)
        )
        incoming = server.data_dir / "uploads" / ".incoming"
        deadline = time.monotonic() + 10
        while not list(incoming.glob("*.part")) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert list(incoming.glob("*.part")), "the upload never reached the disk"
    deadline = time.monotonic() + 5
    while files_on_disk(server) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert files_on_disk(server) == []
    assert httpx.get(server.base_url + "/api/files", headers=server.headers).json() == {"files": []}


def test_stalled_upload_gets_408_and_leaves_nothing(tmp_path):
    for server in start_server(tmp_path, "--body-timeout", "1"):
        port = int(server.base_url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(
                f"PUT /uploads/stall.bin HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n".encode()
                + authorization_line(server)
                + b"Content-Length: 5000000\r\n\r\n"
                + b"x" * 1_000_000
            )
            answer = b""
            while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
                piece = s.recv(65536)
                if not piece:
                    break
                answer += piece
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
        assert b'"error":"the upload stalled' in answer
        assert files_on_disk(server) == []
        assert listed(server) == []


def test_oversize_upload_is_refused_before_the_body_is_sent(tmp_path):
    for server in start_server(tmp_path, "--max-file-bytes", "1000000"):
        source = tmp_path / "three.bin"
        write_random_file(source, 3)
        done = subprocess.run(
            ["curl", "-sS", *server.curl_auth, "-T", str(source),
             "-w", "\n%{http_code} %{size_upload}",
             server.base_url + "/uploads/"],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        body, _, status_and_sent = done.stdout.rpartition("\n")
        status, sent = status_and_sent.split()
        assert status == "413"
        assert json.loads(body) == {"error": "three.bin is larger than the 976.6 KiB limit"}
        # curl asked `Expect: 100-continue`; the refusal came first, so no body went out.
        assert int(sent) < 100_000
        assert files_on_disk(server) == []
