"""Stario's own answers (written before any route runs) reach clients as JSON in words:
413 over the body cap (with the way to send a larger file), 400 for a path Stario
will not route, 308 for a trailing slash, and the rest of app/server/early_answers.py.

The first tests feed `AnswersInJson` the exact bytes Stario 5.1.1 writes (captured
from it), so a Stario that changes them fails here rather than silently answering
in plain text again. The real-server tests then show it end to end with curl and
raw sockets (the TestClient drives Stario's bare protocol, without ours)."""

import asyncio
import json
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from tests.conftest import RunningServer, start_server, stored_blobs, write_random_file

from app.config import Config
from app.server.early_answers import AnswersInJson, EarlyAnswers

CURL = shutil.which("curl") or "/usr/bin/curl"
MiB = 1024 * 1024
DATE = b"date: Sun, 29 Nov 2026 22:19:29 GMT\r\n"
PLAIN = b"text/plain; charset=utf-8"


def keeping(status_line: bytes, body: bytes | None) -> tuple[bytes, ...]:
    """How Stario writes an answer that keeps the connection (body None: for HEAD)."""
    pieces = (status_line, DATE, b"content-type: ", PLAIN, b"\r\ncontent-length: ")
    pieces += (b"%d" % len(body or b"x" * 20), b"\r\n\r\n")
    return pieces if body is None else (*pieces, body)


def closing(status_line: bytes, body: bytes) -> bytes:
    """How Stario writes an answer it then closes the connection on."""
    return (
        status_line + DATE + b"content-type: " + PLAIN + b"\r\n"
        b"content-length: %d\r\nconnection: close\r\n\r\n" % len(body) + body
    )


REDIRECT = (
    b"HTTP/1.1 308 Permanent Redirect\r\n" + DATE + b"location: /uploads\r\n"
    b"content-type: text/plain; charset=utf-8\r\ncontent-length: 0\r\n\r\n"
)


class Sink:
    def __init__(self) -> None:
        self.sent = b""
        self.pieces: list[Any] = []
        self.eof = False
        self.closed = False

    def write(self, data: bytes) -> None:
        self.sent += bytes(data)

    def writelines(self, pieces: Any) -> None:
        self.pieces.append(pieces)
        self.sent += b"".join(pieces)

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        self.eof = True

    def get_extra_info(self, name: str) -> str:
        return f"extra {name}"


class Connection:
    last_task: Any = None
    writes = 0


def answers_in_json() -> tuple[AnswersInJson, Sink, Connection]:
    sink, connection = Sink(), Connection()
    return AnswersInJson(sink, connection, EarlyAnswers(MiB, 65536, 30.0)), sink, connection


def parsed(sent: bytes) -> tuple[str, dict[str, str], bytes]:
    head, _, body = sent.partition(b"\r\n\r\n")
    status_line, *lines = head.decode().split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines)
    assert int(headers["content-length"]) == len(body)
    return status_line, headers, body


@pytest.mark.parametrize(
    ("write", "status", "closes", "words"),
    [
        (keeping(b"HTTP/1.1 413 Content Too Large\r\n", b"Request body too large"),
         "413", False, "larger than the 1 MiB this server takes in one request"),
        (closing(b"HTTP/1.1 413 Content Too Large\r\n", b"Request body too large"),
         "413", True, "resumable upload"),
        (keeping(b"HTTP/1.1 400 Bad Request\r\n", b"Invalid HTTP request"),
         "400", False, "percent-encoded control character"),
        (closing(b"HTTP/1.1 400 Bad Request\r\n", b"Invalid HTTP request"),
         "400", True, "not valid HTTP/1.1"),
        (closing(b"HTTP/1.1 408 Request Timeout\r\n", b"Request timeout"),
         "408", True, "no bytes arrived for 30 seconds (--body-timeout)"),
        (keeping(b"HTTP/1.1 431 Request Header Fields Too Large\r\n",
                 b"Request header fields too large"),
         "431", False, "larger than 64 KiB (--max-request-header-bytes)"),
    ],
)  # fmt: skip
def test_each_of_starios_plain_answers_becomes_json(write, status, closes, words) -> None:
    transport, sink, _ = answers_in_json()
    if isinstance(write, bytes):
        transport.write(write)
    else:
        transport.writelines(write)
    status_line, headers, body = parsed(sink.sent)
    assert status_line.split()[1] == status
    assert headers["content-type"] == "application/json; charset=utf-8"
    assert headers["date"] == DATE.decode()[6:-2]
    assert ("connection" in headers) == closes
    assert words in json.loads(body)["error"]


def test_the_413_says_how_to_send_a_larger_file() -> None:
    transport, sink, _ = answers_in_json()
    transport.writelines(keeping(b"HTTP/1.1 413 Content Too Large\r\n", b"Request body too large"))
    error = json.loads(parsed(sink.sent)[2])["error"]
    assert "tus 1.0 at /tus/" in error
    assert "Upload-Complete: ?0 on POST /uploads or PUT /uploads/NAME" in error


def test_the_trailing_slash_redirect_gets_words_and_ends_the_connection() -> None:
    transport, sink, _ = answers_in_json()
    transport.write(REDIRECT)
    status_line, headers, body = parsed(sink.sent)
    assert status_line == "HTTP/1.1 308 Permanent Redirect"
    assert headers["location"] == "/uploads" and headers["connection"] == "close"
    assert "PUT /uploads/NAME, or add ?name=..." in json.loads(body)["error"]
    # A HEAD's answer may not carry a body on a connection that goes on; this one
    # does not go on: the sending side is closed, and later answers go nowhere.
    assert sink.eof
    transport.writelines(keeping(b"HTTP/1.1 200 OK\r\n", b"late"))
    transport.write(b"more")
    assert sink.sent.endswith(body)


def test_anything_else_passes_untouched() -> None:
    transport, sink, connection = answers_in_json()
    head_answer = keeping(b"HTTP/1.1 400 Bad Request\r\n", None)  # HEAD: no body to replace
    unknown = keeping(b"HTTP/1.1 413 Content Too Large\r\n", b"Some other words")
    handler_like = keeping(b"HTTP/1.1 200 OK\r\n", b"Request body too large")
    for pieces in (head_answer, unknown, handler_like):
        transport.writelines(pieces)
        assert sink.pieces[-1] is pieces
    # While a handler runs, its bytes are its own, even if they look like Stario's.
    connection.last_task = asyncio.Future(loop=asyncio.new_event_loop())
    transport.write(REDIRECT)
    transport.writelines(keeping(b"HTTP/1.1 413 Content Too Large\r\n", b"Request body too large"))
    assert sink.sent.endswith(b"Request body too large") and REDIRECT in sink.sent
    assert not sink.eof
    assert transport.get_extra_info("peername") == "extra peername"


# --- the real server ------------------------------------------------------------------


def curl(*args: str, stdin: bytes = b"") -> tuple[str, str]:
    """(body, the --write-out line) of a curl run."""
    done = subprocess.run(
        [CURL, "--silent", "--show-error", *args],
        capture_output=True, input=stdin, timeout=30, check=True,
    )  # fmt: skip
    body, _, written = done.stdout.decode().rpartition("\n")
    return body, written


def exchange(server: RunningServer, raw: bytes, *, until_close: bool = False) -> bytes:
    """Send `raw` on one connection; what comes back (until closed, or a pause)."""
    port = urlsplit(server.base_url).port
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(raw)
        sock.settimeout(10 if until_close else 1.0)
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except TimeoutError:
            assert not until_close, f"the connection stayed open: {answer[:300]!r}"
    return answer


def request(server: RunningServer, head: str, body: bytes = b"") -> bytes:
    port = urlsplit(server.base_url).port
    lines = [head, f"Host: 127.0.0.1:{port}", f"Authorization: Bearer {server.token}"]
    return ("\r\n".join(lines) + "\r\n").encode() + body


def answer_json(answer: bytes) -> tuple[bytes, dict]:
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b"content-type: application/json" in head
    return head, json.loads(body)


@pytest.fixture
def capped_server(tmp_path: Path):
    yield from start_server(tmp_path, "--max-request-body-bytes", str(MiB))


@pytest.mark.slow
def test_an_upload_over_the_body_cap_is_told_to_go_resumable(
    capped_server: RunningServer, tmp_path: Path
) -> None:
    server = capped_server
    source = tmp_path / "three.bin"
    write_random_file(source, 3)
    body, written = curl(
        *server.curl_auth, "-T", str(source), "-w", "\n%{http_code} %{size_upload}",
        server.base_url + "/uploads/three.bin",
    )  # fmt: skip
    status, sent = written.split()
    error = json.loads(body)["error"]
    assert status == "413"
    assert "larger than the 1 MiB this server takes in one request" in error
    assert "tus 1.0 at /tus/" in error and "Upload-Complete: ?0" in error
    # curl asked `Expect: 100-continue`; the refusal came first, so no body went out.
    assert int(sent) == 0

    # Declared at 2^31 and beyond (Stario's hard limit): the same answer, at once.
    for length in (2**31, 2**40):
        answer = exchange(
            server,
            request(server, "PUT /uploads/huge.bin HTTP/1.1")
            + f"Content-Length: {length}\r\nExpect: 100-continue\r\n\r\n".encode(),
            until_close=True,
        )
        assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]  # never a 100 Continue
        head, parsed = answer_json(answer)
        assert b"connection: close" in head
        assert "resumable upload, in parts under 1 MiB" in parsed["error"]

    # Without a length: Stario stops the body at the cap, and the upload says why.
    body, written = curl(
        *server.curl_auth, "-H", "Transfer-Encoding: chunked", "-T", str(source),
        "-w", "\n%{http_code}", server.base_url + "/uploads/chunked.bin",
    )  # fmt: skip
    assert written == "413"
    assert "larger than the 1 MiB this server takes in one request" in json.loads(body)["error"]

    # Under the cap, uploads stream and store as before.
    body, written = curl(
        *server.curl_auth, "-T", "-", "-w", "\n%{http_code}",
        server.base_url + "/uploads/fits.bin", stdin=b"f" * (MiB - 1000),
    )  # fmt: skip
    assert written == "201", body
    config = Config.load({"data_dir": str(server.data_dir)}, environ={})
    assert len(stored_blobs(config)) == 1


@pytest.mark.slow
def test_a_trailing_slash_and_a_control_character_get_words(server: RunningServer) -> None:
    url = server.base_url + "/uploads/"
    # `curl -T -` has no file name to append: the connection hands `/uploads/` to its
    # route (app/server/peers.py), which answers the JSON 400 at once.
    body, written = curl(*server.curl_auth, "-T", "-", "-w", "\n%{http_code}", url,
                         stdin=b"data")  # fmt: skip
    assert written == "400" and json.loads(body)["error"].startswith("name the file")
    # Any other slashed path meets Stario's 308, which now says where it leads.
    body, written = curl(*server.curl_auth, "-w", "\n%{http_code} %{redirect_url}",
                         server.base_url + "/api/files/")  # fmt: skip
    assert written == f"308 {server.base_url}/api/files"
    assert "the same request goes to /api/files" in json.loads(body)["error"]
    # A HEAD gets the same answer and the connection ends, so its body cannot be
    # mistaken for the next answer.
    answer = exchange(server, request(server, "HEAD /api/files/ HTTP/1.1") + b"\r\n",
                      until_close=True)  # fmt: skip
    assert answer.startswith(b"HTTP/1.1 308 ") and b"connection: close" in answer

    # A percent-encoded control character in the path: JSON 400, and the connection
    # goes on to the next request.
    answer = exchange(
        server,
        request(server, "PUT /uploads/a%0Db.txt HTTP/1.1") + b"Content-Length: 1\r\n\r\nx"
        + request(server, "GET /api/files HTTP/1.1") + b"\r\n",
    )  # fmt: skip
    first, _, rest = answer.partition(b"\r\n\r\n")
    assert first.startswith(b"HTTP/1.1 400 ") and b"application/json" in first
    error_body, _, second = rest.partition(b"HTTP/1.1 ")
    error = json.loads(error_body)["error"]
    assert "percent-encoded control character" in error and "?name=" in error
    assert second.startswith(b"200 ") and b'{"files":[]}' in second
    config = Config.load({"data_dir": str(server.data_dir)}, environ={})
    assert stored_blobs(config) == []
