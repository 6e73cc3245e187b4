"""Interim (1xx) responses, which Stario 5.1.1's Writer cannot send: `write_headers`
refuses any status under 200 (`StarioError('Invalid response status')`, probed).

Every byte Stario writes goes through the transport the connection hands it
(app/server/early_answers.py `AnswersInJson`), so an interim response is written
there, before the handler's own answer starts. Used by the IETF resumable-upload
draft's `104 Upload Resumption Supported` (app/features/resumable/ietf.py).
"""

from __future__ import annotations

from stario import Context, Writer

from app.server.early_answers import AnswersInJson
from app.server.peers import _connection

REASONS = {103: b"Early Hints", 104: b"Upload Resumption Supported"}


def interim_bytes(status: int, headers: list[tuple[str, str]]) -> bytes:
    """The response as it goes on the wire (HTTP/1.1; names in lower case, as Stario
    writes its own)."""
    lines = [b"HTTP/1.1 %d %s\r\n" % (status, REASONS.get(status, b"Informational"))]
    for name, value in headers:
        lines.append(b"%s: %s\r\n" % (name.lower().encode("ascii"), value.encode("latin-1")))
    return b"".join(lines) + b"\r\n"


def send_interim(c: Context, w: Writer, status: int, headers: list[tuple[str, str]]) -> bool:
    """Write an interim response on the request's connection, before its final answer;
    False when none can go: the answer has started, the client is gone, the request is
    not HTTP/1.1 (HTTP/1.0 has no 1xx; h2c frames are nghttp2's), or there is no
    connection (Stario's TestClient)."""
    if not 100 <= status < 200 or status == 101:
        raise ValueError(f"{status} is not an interim status")
    if w.started or w.closing or c.req.protocol_version != "1.1":
        return False
    protocol = _connection(c)
    if protocol is None:
        return False
    transport = protocol.transport
    if not isinstance(transport, AnswersInJson) or transport.is_closing():
        return False
    transport.interim(interim_bytes(status, headers))
    return True
