"""The transports against a real `stowage serve`: big multipart with curl, memory."""

import base64
import json
import os
import subprocess
import time

import httpx
import pytest
from tests.support.fixtures import RunningServer, write_random_file

pytestmark = pytest.mark.slow
MB = 1_000_000


def curl_json(server: RunningServer, *args: str) -> tuple[dict, float]:
    """curl as the owner; its JSON answer and how long it took."""
    started = time.perf_counter()
    done = subprocess.run(
        ["curl", "-sS", *server.curl_auth, *args], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout), time.perf_counter() - started


def test_200_mb_multipart_with_curl_keeps_memory_low(server, tmp_path):
    source = tmp_path / "two-hundred.bin"
    expected = write_random_file(source, 200)

    form, form_seconds = curl_json(
        server, "-F", f"files=@{source};type=application/octet-stream", "-F", "title=big",
        server.base_url + "/uploads",
    )  # fmt: skip
    [stored] = form["files"]
    assert stored["sha256"] == expected
    assert form["fields"] == {"title": "big"}
    peak_mib = server.peak_rss_kib() / 1024

    raw, raw_seconds = curl_json(server, "-T", str(source), server.base_url + "/uploads/")
    assert raw["files"][0]["sha256"] == expected
    print(
        f"\n200 MB: multipart {200 / form_seconds:.0f} MB/s, raw {200 / raw_seconds:.0f} MB/s "
        f"(multipart/raw {raw_seconds / form_seconds:.2f}x); "
        f"server peak RSS {peak_mib:.1f} MiB"
    )
    assert peak_mib < 100


def test_10_mib_signals_upload_stays_under_three_bodies_of_memory(server):
    body = json.dumps(
        {"files": [{"name": "ten.bin", "contents": base64.b64encode(os.urandom(10 * 1024 * 1024))
                    .decode(), "mime": "application/octet-stream"}]}
    ).encode()  # fmt: skip
    with server.http(timeout=60) as http:
        warm = http.post("/uploads?name=warm", content=b"warm")
        assert warm.status_code == 201
        server.reset_peak_rss()
        before = server.rss_kib()
        r = http.post(
            "/uploads",
            content=body,
            headers={"content-type": "application/json"},
        )
    assert r.status_code == 201, r.text
    extra_mib = (server.peak_rss_kib() - before) / 1024
    body_mib = len(body) / 1024 / 1024
    print(f"\n10 MiB file as signals: body {body_mib:.1f} MiB, extra peak RSS {extra_mib:.1f} MiB")
    assert extra_mib < 3 * body_mib


@pytest.mark.parametrize("kind", ["multipart", "signals"])
def test_cut_off_form_or_signals_leave_nothing(server, kind):
    """9 MiB of a 15 MB body, more than two 4 MiB write batches; the client leaves
    once the server holds them: a form's file is then a temp file on disk; signals
    are held in memory until the body is complete (the page's progress bar shows the
    bytes). Afterwards nothing may remain."""
    import re
    import socket

    boundary = "----WebKitFormBoundaryCutOff"
    sent = 9 * 1024 * 1024
    if kind == "multipart":
        content_type = f"multipart/form-data; boundary={boundary}"
        first = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="f"; filename="a.bin"\r\n\r\n'
        ).encode() + b"x" * sent
    else:
        content_type = "application/json"
        first = b'{"files": [{"name": "a.bin", "contents": "' + b"QUFB" * (sent // 4)
    host = server.base_url.removeprefix("http://")
    incoming = server.data_dir / "uploads" / ".incoming"

    def server_holds_the_bytes() -> bool:
        if kind == "multipart":
            return bool(list(incoming.glob("*.part")))
        page = httpx.get(server.base_url + "/", headers=server.headers).text
        return any(int(v) >= sent for v in re.findall(r'<progress[^>]* value="(\d+)"', page))

    with socket.create_connection(("127.0.0.1", int(host.rsplit(":", 1)[1]))) as s:
        s.sendall(
            f"POST /uploads HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\n"
            f"Authorization: Bearer {server.token}\r\n"
            # Under the 16 MiB signals cap, so neither transport refuses it up front.
            f"Content-Length: 15000000\r\n\r\n".encode()
            + first
        )
        deadline = time.monotonic() + 10
        while not server_holds_the_bytes() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server_holds_the_bytes(), "the server never got the bytes"
    deadline = time.monotonic() + 5
    uploads = server.data_dir / "uploads"
    while any(p.is_file() for p in uploads.rglob("*")) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [p for p in uploads.rglob("*") if p.is_file()] == []
    assert httpx.get(server.base_url + "/api/files", headers=server.headers).json() == {"files": []}
