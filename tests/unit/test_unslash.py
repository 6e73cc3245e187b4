"""`_unslash`: the request lines whose trailing slash Stario 5.1.1 would answer with a
308 before routing are handed to their routes with an empty query instead."""

import pytest

from app.server.peers import _unslash


def unslashed(line: bytes) -> bytes:
    view = memoryview(bytearray(line))
    _unslash(view, len(line))
    return bytes(view)


@pytest.mark.parametrize(
    ("sent", "routed"),
    [
        (b"POST /tus/ HTTP/1.1\r\n", b"POST /tus? HTTP/1.1\r\n"),
        (b"PUT /uploads/ HTTP/1.1\r\n", b"PUT /uploads? HTTP/1.1\r\n"),
        (b"PROPFIND /dav/ HTTP/1.1\r\n", b"PROPFIND /dav? HTTP/1.1\r\n"),
        (b"PROPPATCH /dav/a/b%20c/ HTTP/1.1\r\n", b"PROPPATCH /dav/a/b%20c? HTTP/1.1\r\n"),
        (b"MKCOL /dav/litmus/ HTTP/1.1\r\n", b"MKCOL /dav/litmus? HTTP/1.1\r\n"),
        # litmus's delete_fragment: the fragment becomes part of the empty query.
        (b"DELETE /dav/l/frag/#ment HTTP/1.1\r\n", b"DELETE /dav/l/frag?&&&&& HTTP/1.1\r\n"),
    ],
)
def test_a_slashed_target_reaches_its_route(sent: bytes, routed: bytes) -> None:
    assert unslashed(sent) == routed


@pytest.mark.parametrize(
    "sent",
    [
        b"GET /files/ HTTP/1.1\r\n",  # not ours to hand over: Stario's 308 stands
        b"PROPFIND /dav/a HTTP/1.1\r\n",  # no slash
        b"PROPFIND /dav/a/?x=1 HTTP/1.1\r\n",  # a query already: left as sent
        b"PROPFIND /davx/ HTTP/1.1\r\n",
    ],
)
def test_other_targets_are_left_alone(sent: bytes) -> None:
    assert unslashed(sent) == sent


@pytest.mark.parametrize(
    ("sent", "slashed"),
    [
        (b"DELETE /dav/a.txt/ HTTP/1.1\r\n", True),
        (b"DELETE /dav/l/frag/#ment HTTP/1.1\r\n", True),
        (b"POST /tus/ HTTP/1.1\r\n", False),  # not WebDAV: nothing to tell its handler
        (b"DELETE /dav/a.txt HTTP/1.1\r\n", False),
    ],
)
def test_the_handler_is_told_a_webdav_slash_was_taken_off(sent: bytes, slashed: bool) -> None:
    assert _unslash(memoryview(bytearray(sent)), len(sent)) is slashed
