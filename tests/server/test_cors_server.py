"""`--cors-origins` on a real server: a preflight to tus's slashed creation URL, then
the POST on the same connection (as a browser sends them), reaches the route rather
than Stario's 308 (the preflight's answer marks the request's end for the
connection's slash rewrite, app/server/peers.py)."""

import socket
from pathlib import Path

from tests.support.fixtures import start_server

APP = "http://127.0.0.2:5173"


def _answer(sock: socket.socket) -> bytes:
    """One answer's head and body (the body's length from Content-Length)."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        (int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
         if line.lower().startswith(b"content-length:")),
        0,
    )  # fmt: skip
    while len(body) < length:
        body += sock.recv(65536)
    return head


def test_a_preflight_then_a_slashed_tus_post_on_one_connection(tmp_path: Path):
    for server in start_server(tmp_path, "--cors-origins", APP):
        host = server.base_url.removeprefix("http://")
        name, port = host.rsplit(":", 1)
        with socket.create_connection((name, int(port))) as sock:
            sock.sendall(
                f"OPTIONS /tus/ HTTP/1.1\r\nHost: {host}\r\nOrigin: {APP}\r\n"
                "Access-Control-Request-Method: POST\r\n\r\n".encode()
            )
            preflight = _answer(sock).lower()
            assert preflight.startswith(b"http/1.1 204"), preflight
            assert f"access-control-allow-origin: {APP}".encode() in preflight
            sock.sendall(
                f"POST /tus/ HTTP/1.1\r\nHost: {host}\r\nOrigin: {APP}\r\n"
                f"Sec-Fetch-Site: cross-site\r\nAuthorization: Bearer {server.token}\r\n"
                "Tus-Resumable: 1.0.0\r\nUpload-Length: 3\r\nContent-Length: 0\r\n\r\n".encode()
            )
            made = _answer(sock).lower()
            assert made.startswith(b"http/1.1 201"), made  # not Stario's 308
            assert f"access-control-allow-origin: {APP}".encode() in made
            assert b"location" in made
