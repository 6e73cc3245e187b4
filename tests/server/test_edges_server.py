"""The small edges against the real `stowage serve` and real curl: DNS rebinding,
`curl -OJ` on a name with a quote, and `curl -T -` with no name."""

import json
import shutil
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from tests.support.fixtures import (
    CHROMIUM,
    CHROMIUM_ARGS,
    RunningServer,
    free_port,
    require_chromium,
    stored_blobs,
)

from app.config import Config

pytestmark = pytest.mark.slow

CURL = shutil.which("curl") or "/usr/bin/curl"


def curl(*args: str, cwd: Path | None = None, stdin: bytes = b"") -> str:
    done = subprocess.run(
        [CURL, "--silent", "--show-error", *args],
        capture_output=True,
        input=stdin,
        cwd=cwd,
        timeout=30,
        check=True,
    )
    return done.stdout.decode()


def test_a_rebound_name_gets_421_from_the_real_server(server: RunningServer) -> None:
    port = urlsplit(server.base_url).port
    # evil.example resolves to 127.0.0.1, as a rebinding DNS server would make it.
    out = curl(
        *server.curl_auth,
        "--resolve", f"evil.example:{port}:127.0.0.1",
        "-w", "\n%{http_code}",
        f"http://evil.example:{port}/api/files",
    )  # fmt: skip
    body, status = out.rsplit("\n", 1)
    assert status == "421" and "host" in json.loads(body)["error"]
    out = curl(*server.curl_auth, "-w", "\n%{http_code}", f"http://localhost:{port}/api/files")
    assert out.rsplit("\n", 1)[1] == "200"


def test_curl_saves_a_quoted_name_under_a_sane_name(server: RunningServer, tmp_path) -> None:
    with server.http() as http:
        stored = http.put('/uploads/a"b.txt', content=b"quoted").json()["files"][0]
    assert stored["name"] == 'a"b.txt'
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    # curl -OJ takes the ASCII filename= and does not unescape quoted-strings.
    curl(*server.curl_auth, "--fail", "-OJ", server.base_url + stored["url"], cwd=downloads)
    assert [p.name for p in downloads.iterdir()] == ["a_b.txt"]
    assert (downloads / "a_b.txt").read_bytes() == b"quoted"


def test_curl_put_without_a_name_is_told_to_name_the_file(server: RunningServer) -> None:
    url = server.base_url + "/uploads/"
    # Stario would redirect the trailing slash (308) before any route runs; the
    # connection (app/server/peers.py) hands `/uploads/` to its route instead, so curl
    # hears the JSON 400 at once, with or without -L.
    for follow in ([], ["-L"]):
        out = curl(*server.curl_auth, *follow, "-T", "-", "-w", "\n%{http_code}", url,
                   stdin=b"data")  # fmt: skip
        body, status = out.rsplit("\n", 1)
        assert status == "400" and json.loads(body)["error"].startswith("name the file")
    config = Config.load({"data_dir": str(server.data_dir)}, environ={})
    assert stored_blobs(config) == []


def test_tus_creation_url_with_its_slash_on_a_kept_alive_connection(server: RunningServer):
    """tus-js-client under Node follows no redirect; its requests share kept-alive
    connections, so `/tus/` must reach its route on any request of a connection."""
    host = server.base_url.removeprefix("http://")
    create = (
        f"POST /tus/ HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {server.token}\r\n"
        "Tus-Resumable: 1.0.0\r\nUpload-Length: 3\r\nContent-Length: 0\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", int(host.split(":")[1]))) as sock:
        sock.settimeout(5)
        for _ in range(3):
            sock.sendall(create)
            answer = b""
            while b"\r\n\r\n" not in answer:
                answer += sock.recv(65536)
            assert answer.startswith(b"HTTP/1.1 201"), answer
            assert b"\r\nlocation: /tus/" in answer.lower()
        # A body that happens to look like that request line is never touched.
        body = b"POST /tus/ HTTP/1.1\r\n"
        sock.sendall(
            f"PUT /uploads/look.txt HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer"
            f" {server.token}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        )
        time.sleep(0.3)
        sock.sendall(body)
        answer = b""
        while b"}" not in answer:
            answer += sock.recv(65536)
        assert answer.startswith(b"HTTP/1.1 201"), answer
    with server.http() as http:
        stored = http.get("/api/files").json()["files"][0]
        assert http.get(stored["url"]).content == body


@pytest.mark.browser
def test_behind_a_proxy_that_cuts_idle_streams_a_reconnect_repaints_nothing(
    server: RunningServer, tmp_path
) -> None:
    """Real Chromium through a real nginx whose read timeout (2 s) is shorter than the
    keep-alive: nginx cuts the idle stream, Datastar reconnects with Last-Event-ID,
    and the server sends no list the page already shows."""
    require_chromium()
    nginx_binary = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx_binary).exists():
        pytest.skip("no nginx")
    from playwright.sync_api import expect, sync_playwright

    with server.http() as http:
        for n in range(30):
            http.put(f"/uploads/file-{n:02}.txt", content=b"x")
    upstream = server.base_url.removeprefix("http://")
    port = free_port()
    prefix = tmp_path / "nginx"
    (prefix / "logs").mkdir(parents=True)
    conf = prefix / "nginx.conf"
    conf.write_text(
        f"daemon off; worker_processes 1; pid {prefix}/nginx.pid;\n"
        f"error_log {prefix}/logs/error.log;\nevents {{}}\nhttp {{\n"
        "  log_format live '$request_uri $http_last_event_id $bytes_sent';\n"
        f"  access_log {prefix}/logs/access.log live;\n"
        f"  server {{ listen 127.0.0.1:{port}; location / {{\n"
        f"    proxy_pass http://{upstream}; proxy_set_header Host {upstream};\n"
        "    proxy_http_version 1.1; proxy_buffering off; proxy_read_timeout 2s; } }\n}\n"
    )
    nginx = subprocess.Popen([nginx_binary, "-p", str(prefix), "-c", str(conf)])
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_context(extra_http_headers=server.headers).new_page()
            page.goto(f"http://127.0.0.1:{port}/")
            expect(page.locator("#files")).to_contain_text("file-29.txt")

            def streams() -> list[tuple[str, int]]:
                lines = (prefix / "logs" / "access.log").read_text().splitlines()
                return [
                    (line.split()[1], int(line.split()[2]))
                    for line in lines
                    if line.startswith("/live")
                ]

            deadline = time.monotonic() + 15
            while len(streams()) < 3 and time.monotonic() < deadline:
                time.sleep(0.2)
            cut = streams()
            # Each ended stream was cut by nginx; the browser came back with the id.
            assert len(cut) >= 3, cut
            version = cut[1][0]
            assert version != "-" and all(seen == version for seen, _ in cut[1:])
            list_bytes = len(page.locator("#files").inner_html())
            assert list_bytes > 5_000
            assert all(sent < 1_500 for _, sent in cut), (cut, list_bytes)

            # A change still reaches the page through the proxy.
            with server.http() as http:
                http.put("/uploads/new.txt", content=b"new")
            expect(page.locator("#files")).to_contain_text("new.txt")
            browser.close()
    finally:
        nginx.terminate()
        nginx.wait(10)


def test_the_progress_bar_shows_the_safe_name_before_the_first_byte(server: RunningServer):
    import socket
    from urllib.parse import quote

    from app.ingest.names import display_name

    raw = "invoice\u202etxt.exe"  # a bidi override makes it read "invoiceexe.txt"
    host = server.base_url.removeprefix("http://")
    with socket.create_connection(("127.0.0.1", int(host.rsplit(":", 1)[1]))) as s:
        s.sendall(
            f"PUT /uploads/{quote(raw)} HTTP/1.1\r\nHost: {host}\r\n"
            f"Authorization: Bearer {server.token}\r\nContent-Length: 10000000\r\n\r\n".encode()
        )  # ... and not one byte of the body (over 256 KiB, so the handler runs at once)
        with server.http() as http:
            deadline = time.monotonic() + 5
            page = ""
            while "Receiving" not in page and time.monotonic() < deadline:
                page = http.get("/").text
    assert f"Receiving <strong>{display_name(raw)}</strong>" in page
    assert "\u202e" not in page
