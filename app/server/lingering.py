"""Closing a connection whose request body may still be arriving, so the answer arrives.

A refusal written before the body is read (401, 413, 429, ...) is followed by a
close. Closing a socket while the client's bytes are still coming, or already
sit unread in the kernel, makes the kernel send a reset instead of a normal
end; the reset discards whatever of the answer the client has not read yet, and
a client still sending sees "connection reset" instead of the answer (as
tests/server/test_lingering_server.py shows without this module).

So such a close lingers instead, as web servers do: the sending side ends
after the answer (`write_eof`, shutdown(SHUT_WR): the client reads the answer
and then its end), and what still arrives is read and thrown away, at most
LINGER_BYTES and LINGER_SECONDS, until the client closes its side; then the
connection closes. A client that goes on sending past the bound is reset then,
with the answer long delivered.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

# What a lingering connection still reads (and discards) at most, and for how long.
LINGER_BYTES = 1024 * 1024
LINGER_SECONDS = 2.0
_DISCARD_BYTES = 64 * 1024


class _Discarding(asyncio.BufferedProtocol):
    """The connection's protocol while it lingers: reads into a scratch buffer and
    counts; the end of the linger, however it comes, closes the transport, and the
    connection's own protocol hears `connection_lost` as always."""

    # One for every lingering connection: what is read into it is never looked at.
    _scratch = memoryview(bytearray(_DISCARD_BYTES))

    def __init__(self, transport: Any, owner: Any, ended: Callable[[], None] | None) -> None:
        self._transport = transport
        self._owner = owner
        self._ended = ended
        self._read = 0
        self._timer = asyncio.get_running_loop().call_later(LINGER_SECONDS, transport.close)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._scratch

    def buffer_updated(self, nbytes: int) -> None:
        self._read += nbytes
        if self._read >= LINGER_BYTES:
            self._transport.close()

    def eof_received(self) -> bool:
        return False  # the client has ended its side: close

    def connection_lost(self, exc: Exception | None) -> None:
        self._timer.cancel()
        if self._ended is not None:
            self._ended()
        self._owner.connection_lost(exc)


def linger_then_close(
    transport: Any, protocol: Any, *, ended: Callable[[], None] | None = None
) -> bool:
    """Close `transport` (of `protocol`) after its answer, reading what still comes for
    a bounded while (see the module doc); True if it lingers (then `ended` runs when
    it has closed). A transport that cannot end only its sending side (TLS) closes
    at once."""
    if transport.is_closing():
        return False
    if not transport.can_write_eof():
        transport.close()
        return False
    transport.set_protocol(_Discarding(transport, protocol, ended))
    transport.write_eof()
    return True


class LingerSlots:
    """For connections refused before they count anywhere (one too many from an
    address): at most `most` of them linger at once, so a flood of refused
    connections cannot hold more than that many sockets for LINGER_SECONDS; beyond
    it a refused connection closes at once, as before."""

    def __init__(self, most: int) -> None:
        self.most = most
        self.taken = 0

    def linger_then_close(self, transport: Any, protocol: Any) -> None:
        if self.taken >= self.most:
            transport.close()
            return
        if linger_then_close(transport, protocol, ended=self._release):
            self.taken += 1

    def _release(self) -> None:
        self.taken -= 1
