"""Stario's own answers, in JSON and in words.

Stario 5.1.1 answers some requests itself, before any route or middleware runs,
as plain text: 413 `Request body too large` when Content-Length is over the body
cap (or at 2^31 and beyond, its hard limit), 400 `Invalid HTTP request` for a
target it will not route (a path with a percent-encoded control character or a
broken %-escape, a query with `%00`) or for bytes that are not HTTP/1.1, 408
`Request timeout` when a small body stalls, 431 for a head over the header cap,
an empty 308 to the same path without its trailing slash, and a bare 204 to
`OPTIONS *` (no route can answer that target). Its protocol has
no hook for them: they are written from compiled code, with nothing of the
request left for Python to see.

Every byte Stario sends goes through the transport it is handed, though. So each
connection hands it `AnswersInJson`, which passes everything through except those
fixed answers: it recognises them by their exact bytes (Stario 5.1.1's layout,
pinned by tests/unit/test_early_answers.py) and writes the same status as JSON
`{"error": ...}` that says what was wrong and what to do instead; the 204 to
`OPTIONS *` gets the server-wide `Upload-Limit` of the IETF resumable-upload draft,
which says a server SHOULD send it there. Anything it does
not recognise, and anything written while a handler runs on the connection (a
download could hold any bytes), goes out untouched.

What this cannot do, because the answer carries nothing of the request: tell
`PUT /uploads/` from `HEAD /uploads/` or `POST /uploads/` (so a trailing slash
that reaches Stario's redirect stays a 308, with a body that says where it leads
and how to name an upload; app/server/peers.py hands the usual `/uploads/` and
`/tus/` requests to their routes before that), or speak HTTP/2 (h2c answers are
framed by nghttp2 and pass untouched).

It also sees every answer's head, so when Stario closes the connection after an
answer that said `connection: close` (its own refusals, and a handler's refusal
before reading the body), the close lingers (app/server/lingering.py) and the
client reads the answer instead of a connection reset.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import Any

from stario.json import dumps

from app.common.units import human_bytes
from app.server.lingering import linger_then_close

PLAIN_TEXT = b"text/plain; charset=utf-8"
JSON_TYPE = b"application/json; charset=utf-8"

# An answer the protocol writes and then closes the connection on (one write).
_CLOSING = re.compile(
    rb"HTTP/1\.1 (\d{3}) [^\r\n]*\r\n(date: [^\r\n]*\r\n)"
    rb"content-type: text/plain; charset=utf-8\r\ncontent-length: (\d+)\r\n"
    rb"connection: close\r\n\r\n(.*)",
    re.DOTALL,
)
# The trailing-slash redirect (one write, keeps the connection, never a body).
_REDIRECT = re.compile(
    rb"HTTP/1\.1 308 Permanent Redirect\r\n(date: [^\r\n]*\r\n)location: ([^\r\n]*)\r\n"
    rb"content-type: text/plain; charset=utf-8\r\ncontent-length: 0\r\n\r\n"
)
# Stario's whole answer to `OPTIONS *` (written as three pieces: this, its date, CRLF).
_OPTIONS_STAR_STATUS = b"HTTP/1.1 204 No Content\r\n"
# In an answer's head: the connection ends after it (Stario writes names in lower case).
_CLOSE_HEADER = b"\r\nconnection: close\r\n"
# An answer that keeps the connection is written like a handler's `w.text()`:
# status line, date line, then these pieces, then the body (none for HEAD).
_KEEPING_PIECES = (b"content-type: ", PLAIN_TEXT, b"\r\ncontent-length: ")


def one_request_too_large(limit: int) -> str:
    """Why a body over the per-request cap was refused, and how to send the file."""
    cap = human_bytes(limit)
    return (
        f"the request body is larger than the {cap} this server takes in one request"
        f" (--max-request-body-bytes); send a larger file as a resumable upload, in"
        f" parts under {cap}: tus 1.0 at /tus/, or the IETF resumable-upload draft"
        " (Upload-Complete: ?0 on POST /uploads or PUT /uploads/NAME)"
    )


TARGET_REFUSED = (
    "the URL cannot be used: its path has a percent-encoded control character"
    " (%00-%1F or %7F, such as %0D or %09) or a broken %-escape, or its query has %00;"
    " a file name with such characters can come in the query (PUT /uploads?name=a%0Db.txt)"
    " or in a Content-Disposition header (filename*=UTF-8''...) instead of in the path"
)
NOT_HTTP = (
    "the request is not valid HTTP/1.1 (such as a raw space or non-ASCII byte in the"
    " path, a malformed header, or a bad Content-Length or chunk size)"
)


def redirect_message(location: str) -> str:
    path = location.split("?", 1)[0]
    message = (
        f"this URL ends in a slash: the same request goes to {location}"
        " (308 Permanent Redirect; curl -L follows it)"
    )
    if path == "/uploads":
        message += (
            "; an upload there needs a file name: PUT /uploads/NAME, or add ?name=..."
            " or a Content-Disposition header with a filename"
        )
    return message


@dataclass(frozen=True, slots=True)
class EarlyAnswers:
    """The words for each of Stario's own answers, with this server's limits."""

    max_body_bytes: int
    max_header_bytes: int
    body_timeout: float
    # `Upload-Limit` for `OPTIONS *` (the IETF resumable-upload draft's server-wide
    # limits, app/features/resumable/ietf.py); empty: none added.
    upload_limit: bytes = b""

    def message(self, status: int, text: bytes, *, closing: bool) -> str | None:
        """Ours for Stario's (status, plain text); None for one we do not know."""
        if status == 413 and text == b"Request body too large":
            return one_request_too_large(self.max_body_bytes)
        if status == 400 and text == b"Invalid HTTP request":
            # Refused targets keep the connection; unparsable requests close it.
            return NOT_HTTP if closing else TARGET_REFUSED
        if status == 408 and text == b"Request timeout":
            return (
                f"the request body stalled: no bytes arrived for {self.body_timeout:g}"
                " seconds (--body-timeout)"
            )
        if status == 431 and text == b"Request header fields too large":
            return (
                "the request head (request line and headers) is larger than"
                f" {human_bytes(self.max_header_bytes)} (--max-request-header-bytes)"
            )
        return None


def _json_body(message: str) -> bytes:
    return dumps({"error": message}).encode()


def _head(status_line: bytes, date: bytes, body: bytes, *extra: bytes) -> bytes:
    return b"".join((
        status_line, date, b"content-type: ", JSON_TYPE, b"\r\n",
        *extra,
        b"content-length: %d\r\n" % len(body),
    ))  # fmt: skip


class AnswersInJson:
    """The transport Stario writes to: the real one, with Stario's fixed plain-text
    answers rewritten as JSON (see the module's docstring). `protocol` is the
    connection's (its `last_task` says whether a handler is running; its `writes`
    counts what goes out untouched, app/server/peers.py)."""

    __slots__ = ("_answers", "_closes_after", "_ended", "_protocol", "_transport")

    def __init__(self, transport: Any, protocol: Any, answers: EarlyAnswers) -> None:
        self._transport = transport
        self._protocol = protocol
        self._answers = answers
        # Set once a rewritten redirect has closed the sending side.
        self._ended = False
        # The last answer's head said `connection: close`: Stario's close lingers.
        self._closes_after = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)

    def _handler_running(self) -> bool:
        task: asyncio.Task[Any] | None = self._protocol.last_task
        return task is not None and not task.done()

    def close(self) -> None:
        if self._closes_after and getattr(self._protocol, "lingers_on_close", False):
            # Stario writes no more here once it has closed: the linger owns the socket.
            self._closes_after = False
            self._ended = True
            linger_then_close(self._transport, self._protocol)
        else:
            self._transport.close()

    def write(self, data: Any) -> None:
        if self._ended:
            return
        if type(data) is bytes and data.startswith(b"HTTP/1.1 "):
            # Every answer's head starts a write of its own (a handler's too).
            head_end = data.find(b"\r\n\r\n")
            self._closes_after = data.find(_CLOSE_HEADER, 0, head_end + 2) > 0
        if type(data) is bytes and data.startswith(b"HTTP/1.1 ") and not self._handler_running():
            rewritten = self._rewrite_single(data)
            if rewritten is not None:
                self._transport.write(rewritten)
                if rewritten.startswith(b"HTTP/1.1 308 "):
                    self._end_after_redirect()
                return
        self._protocol.writes += 1
        self._transport.write(data)

    def interim(self, data: bytes) -> None:
        """An interim (1xx) response a handler sends before its answer
        (app/server/interim.py): straight to the socket, neither counted as the
        handler's answer (`writes`, which the reaping reads) nor taken for a head."""
        if not self._ended:
            self._transport.write(data)

    def writelines(self, pieces: Any) -> None:
        if self._ended:
            return
        if (
            type(pieces) in (tuple, list)
            and len(pieces) == 3
            and pieces[0] == _OPTIONS_STAR_STATUS
            and pieces[2] == b"\r\n"
            and self._answers.upload_limit
            and not self._handler_running()
        ):
            # `OPTIONS *`, answered before any route: the server-wide upload limits.
            self._protocol.writes += 1
            self._transport.writelines(
                (pieces[0], pieces[1], b"upload-limit: %s\r\n\r\n" % self._answers.upload_limit)
            )
            return
        if (
            type(pieces) in (tuple, list)
            and len(pieces) == 8
            and tuple(pieces[2:5]) == _KEEPING_PIECES
            and not self._handler_running()
        ):
            rewritten = self._rewrite_keeping(pieces)
            if rewritten is not None:
                self._transport.write(rewritten)
                return
        self._protocol.writes += 1
        self._transport.writelines(pieces)

    def _rewrite_keeping(self, pieces: tuple[bytes, ...] | list[bytes]) -> bytes | None:
        status_line, date = pieces[0], pieces[1]
        try:
            status = int(status_line[9:12])
        except ValueError:
            return None
        message = self._answers.message(status, pieces[7], closing=False)
        if message is None:
            return None
        body = _json_body(message)
        return _head(status_line, date, body, *self._limits(status)) + b"\r\n" + body

    def _rewrite_single(self, data: bytes) -> bytes | None:
        closing = _CLOSING.fullmatch(data)
        if closing is not None:
            status_line = data[: data.index(b"\r\n") + 2]
            status = int(closing[1])
            message = self._answers.message(status, closing[4], closing=True)
            if message is None:
                return None
            body = _json_body(message)
            extra = (*self._limits(status), b"connection: close\r\n")
            return _head(status_line, closing[2], body, *extra) + b"\r\n" + body
        redirect = _REDIRECT.fullmatch(data)
        if redirect is not None:
            location = redirect[2]
            body = _json_body(redirect_message(location.decode("latin-1")))
            # Nothing here says whether the request was HEAD, whose answer must not
            # carry a body on a connection that goes on; so this one does not go on.
            return (
                _head(
                    b"HTTP/1.1 308 Permanent Redirect\r\n",
                    redirect[1],
                    body,
                    b"location: " + location + b"\r\n",
                    b"connection: close\r\n",
                )
                + b"\r\n"
                + body
            )
        return None

    def _limits(self, status: int) -> tuple[bytes, ...]:
        """A 413 tells the largest body in `Upload-Limit`, as the IETF resumable-upload
        draft wants (app/features/resumable/ietf.py); other clients ignore it."""
        if status != 413:
            return ()
        return (b"upload-limit: max-append-size=%d\r\n" % self._answers.max_body_bytes,)

    def _end_after_redirect(self) -> None:
        """Close the sending side after the redirect (a full close with a request body
        still unread could reset the connection before the client reads the answer).
        Stario goes on reading and draining; whatever it would still send goes nowhere,
        and the connection ends when the client closes it or Stario's idle timeout does."""
        self._ended = True
        transport = self._transport
        if transport.can_write_eof():
            transport.write_eof()
        else:
            transport.close()
