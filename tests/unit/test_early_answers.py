"""Stario's own answers (written before any route runs) reach clients as JSON in words:
413 over the body cap (with the way to send a larger file), 400 for a path Stario
will not route, 308 for a trailing slash, and the rest of app/server/early_answers.py.

The first tests feed `AnswersInJson` the exact bytes Stario 5.1.1 writes (captured
from it), so a Stario that changes them fails here rather than silently answering
in plain text again. The real-server tests then show it end to end with curl and
raw sockets (the TestClient drives Stario's bare protocol, without ours)."""

import asyncio
import json
from typing import Any

import pytest

from app.server.early_answers import AnswersInJson, EarlyAnswers

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


def test_options_star_gets_the_servers_upload_limit() -> None:
    sink, connection = Sink(), Connection()
    limit = b"max-size=10, min-size=0, max-append-size=5, expires=60, max-age=60"
    transport = AnswersInJson(sink, connection, EarlyAnswers(MiB, 65536, 30.0, limit))
    # Stario 5.1.1 writes its answer to `OPTIONS *` in three pieces (measured).
    transport.writelines((b"HTTP/1.1 204 No Content\r\n", DATE, b"\r\n"))
    assert sink.sent == b"HTTP/1.1 204 No Content\r\n" + DATE + b"upload-limit: " + limit + (
        b"\r\n\r\n"
    )
    # Without a limit to tell (EarlyAnswers' default), the answer goes untouched.
    plain, plain_sink, _ = answers_in_json()
    pieces = (b"HTTP/1.1 204 No Content\r\n", DATE, b"\r\n")
    plain.writelines(pieces)
    assert plain_sink.pieces[-1] is pieces


def test_an_interim_response_is_neither_counted_nor_taken_for_an_answer() -> None:
    transport, sink, connection = answers_in_json()
    transport.interim(b"HTTP/1.1 104 Upload Resumption Supported\r\nlocation: /tus/x\r\n\r\n")
    assert connection.writes == 0
    assert sink.sent.startswith(b"HTTP/1.1 104 ")
    # The answer after it is judged on its own head.
    transport.write(b"HTTP/1.1 201 Created\r\nconnection: close\r\n\r\n")
    assert connection.writes == 1


# --- the real server ------------------------------------------------------------------
