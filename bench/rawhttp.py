"""A minimal HTTP/1.1 client on a plain socket: the request head with `sendall`, the
body straight from a file with `sendfile` (no copy through Python), keep-alive.

The resumable suite uses it for every variant (a single PUT, tus PATCHes, parallel
partials), so the client costs the same everywhere and as little as curl's: the
figures compare the server's paths, not HTTP libraries."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

RECV_BYTES = 256 * 1024


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes


class Connection:
    """One keep-alive connection to `base` (http://127.0.0.1:PORT); reopened when the
    server closed the last one."""

    def __init__(self, base: str, headers: dict[str, str] | None = None) -> None:
        host, _, port = base.removeprefix("http://").rstrip("/").partition(":")
        self.address = (host, int(port or 80))
        self.host = f"{host}:{port}" if port else host
        self.headers = dict(headers or {})
        self._sock: socket.socket | None = None
        self._buffer = b""

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        self._buffer = b""

    def _socket(self) -> socket.socket:
        if self._sock is None:
            self._sock = socket.create_connection(self.address, timeout=300)
            self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return self._sock

    def request(
        self,
        method: str,
        path: str,
        headers: dict[str, str] | None = None,
        *,
        body: bytes = b"",
        file: BinaryIO | Path | None = None,
        offset: int = 0,
        count: int | None = None,
    ) -> Response:
        """`method path` with `body`, or `count` bytes of `file` from `offset` (sent by
        sendfile). Returns the whole response."""
        sock = self._socket()
        length = len(body)
        opened: BinaryIO | None = None
        if file is not None:
            opened = open(file, "rb") if isinstance(file, Path) else file
            if count is None:
                count = opened.seek(0, 2) - offset
            length = count
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}"]
        lines += [f"{k}: {v}" for k, v in {**self.headers, **(headers or {})}.items()]
        if length or method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {length}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        try:
            sock.sendall(head + body)
            if opened is not None and count:
                sent = sock.sendfile(opened, offset, count)
                if sent != count:
                    raise ConnectionError(f"sent {sent} of {count} bytes")
        except OSError as exc:
            # The server may have answered early (a refusal) and closed: read that.
            try:
                return self._response(method)
            except OSError:
                raise exc from None
        finally:
            if opened is not None and isinstance(file, Path):
                opened.close()
        return self._response(method)

    def _recv(self) -> bytes:
        assert self._sock is not None
        data = self._sock.recv(RECV_BYTES)
        if not data:
            raise ConnectionError("the server closed the connection")
        return data

    def _response(self, method: str) -> Response:
        while True:
            while b"\r\n\r\n" not in self._buffer:
                self._buffer += self._recv()
            head, _, self._buffer = self._buffer.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split()[1])
            headers: dict[str, str] = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            if 100 <= status < 200:
                continue  # interim (100 Continue, 104): the final answer follows
            break
        if "chunked" in headers.get("transfer-encoding", ""):
            raise ConnectionError("chunked responses are not read by this client")
        bodiless = method == "HEAD" or status in (204, 304)
        want = 0 if bodiless else int(headers.get("content-length", "0"))
        while len(self._buffer) < want:
            self._buffer += self._recv()
        body, self._buffer = self._buffer[:want], self._buffer[want:]
        if headers.get("connection", "").lower() == "close":
            self.close()
        return Response(status, headers, body)
