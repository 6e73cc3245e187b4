"""Each connection, as it opens and while it sends: the client's address (which Stario
5.1.1 does not hand to handlers), how many connections that address holds, and the
rate at which a request arrives before its handler starts.

Stario lets a server choose its connection protocol (`Server(make_protocol=)`).
Ours is Stario's own plus five steps:

- When a connection opens it creates the connection's disconnect future itself
  (Stario would create the same future lazily on first use) and files the peer
  address under it, so a handler's address is one dict lookup away
  (`client_address`).
- An address holding `per_address` connections already has the next one refused
  at once: a fixed 429 written and the socket closed, before a byte is parsed.
  (The total cap is Stario's own `ServerConfig.max_connections`, a fixed 503.)
- A request head, and a body small enough for Stario to buffer before the handler
  runs (up to 256 KiB), must arrive at the minimum upload rate like any upload
  body: Stario's own timeouts only notice silence, so a client sending one byte
  every few seconds would hold the connection forever. Such a connection gets a
  fixed 408 and is closed. Once a handler runs, the body is the handler's to
  judge (app/ingest/rate.py).
- A request line for `/tus/` or `/uploads/` (nothing after the slash; also
  through a file request's `/r/TOKEN/`) reaches its route: Stario would answer it
  with its own 308 to the path without the slash, and tus clients under Node
  (tus-js-client) do not follow a redirect from tus's creation URL, nor does
  `curl -T -` without `-L`. See `_unslash`.
- Stario is handed a transport that turns the plain-text answers it writes itself,
  before any route runs (413 over the body cap, 400 for a path it will not route,
  308 for a trailing slash, ...), into JSON in words (app/common/early_answers.py).
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from typing import Any, cast

from stario import Context, Writer
from stario.http.config import CompressionConfig, RequestPolicy
from stario.json import dumps
from stario_cython.protocol import Connections, HttpProtocol

from app.common.early_answers import AnswersInJson, EarlyAnswers
from app.common.lingering import LingerSlots
from app.ingest.rate import RateFloor, RateWindow

# TestClient's connections have no socket.
UNKNOWN_ADDRESS = "unknown"

_addresses: dict[asyncio.Future[None], str] = {}
_protocols: dict[asyncio.Future[None], PeerAwareProtocol] = {}
# Set in a request's state once its body has been read to the end.
BODY_READ = "stowage.body_read"
# Connections refused with 429 that may linger at once (app/common/lingering.py).
LINGER_SLOTS = 32


def _fixed_response(status: str, message: str, *extra: str) -> bytes:
    body = dumps({"error": message}).encode()
    head = [f"HTTP/1.1 {status}", "connection: close", "content-type: application/json",
            *extra, f"content-length: {len(body)}"]  # fmt: skip
    return ("\r\n".join(head) + "\r\n\r\n").encode("ascii") + body


@dataclass(slots=True)
class ConnectionLimits:
    """What every connection is held to; `per_address=None` means no such limit, and a
    floor with rate 0 no rate check. `open_by_address` counts live connections."""

    per_address: int | None
    floor: RateFloor
    open_by_address: dict[str, int] = field(default_factory=dict)
    # Refused connections (429) left to linger at once at most (app/common/lingering.py).
    refusals_linger: LingerSlots = field(default_factory=lambda: LingerSlots(LINGER_SLOTS))
    too_many: bytes = field(init=False)
    too_slow: bytes = field(init=False)

    def __post_init__(self) -> None:
        self.too_many = _fixed_response(
            "429 Too Many Requests",
            f"too many connections from your address (at most {self.per_address});"
            " close some and try again",
            "retry-after: 1",
        )
        self.too_slow = _fixed_response(
            "408 Request Timeout", f"the request was too slow: {self.floor.describe()}"
        )


# Request lines whose target Stario 5.1.1 would redirect (its path canonicalisation
# strips a trailing slash with a 308, before routing): tus's creation URLs and the
# unnamed PUT, for an account and through a file request's link.
_SLASHED = re.compile(rb"[A-Z]{3,7} (?:/r/[A-Za-z0-9_-]{32})?/(?:tus|uploads)/ ")
_LONGEST_SLASHED = len("OPTIONS /r/") + 32 + len("/uploads/ ")


def _unslash(view: memoryview, nbytes: int) -> None:
    """Turn `METHOD /tus/ HTTP/1.1` at the start of `view` into `METHOD /tus? HTTP/1.1`:
    the same path with an empty query, the same length, so nothing else moves.
    Called only on bytes that start a request (see `PeerAwareProtocol.get_buffer`)."""
    found = _SLASHED.match(bytes(view[: min(nbytes, _LONGEST_SLASHED)]))
    if found is not None:
        view[found.end() - 2] = ord("?")


class PeerAwareProtocol(HttpProtocol):
    limits: ConnectionLimits
    answers: EarlyAnswers
    # Set once the connection is let in: only then does a closing answer linger
    # (Stario's 503 beyond its cap is written before, and must close at once).
    lingers_on_close = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Stario keeps (and writes to) what it is handed here; our own checks below
        # read the real transport.
        super().connection_made(
            cast(asyncio.BaseTransport, AnswersInJson(transport, self, self.answers))
        )
        # True while the next bytes to arrive must start a request: at the start, and
        # after a handler ended with its whole request read (`request_ended`). A
        # read that comes before that is known is left alone: the worst is Stario's 308.
        self._at_request_start = True
        self._fresh: memoryview | None = None
        self._address: str | None = None
        self._task_seen: asyncio.Task[Any] | None = None
        self._arriving: RateWindow | None = None
        self._arriving_from = 0
        peer = transport.get_extra_info("peername")
        if not peer or transport.is_closing():  # Stario's own cap refused it
            return
        address = str(peer[0])
        limits = self.limits
        held = limits.open_by_address.get(address, 0)
        if limits.per_address is not None and held >= limits.per_address:
            # uvloop's transports are not registered as asyncio.WriteTransport.
            writable = cast(asyncio.WriteTransport, transport)
            writable.write(limits.too_many)
            limits.refusals_linger.linger_then_close(transport, self)  # it reads the 429
            return
        limits.open_by_address[address] = held + 1
        self._address = address
        self.lingers_on_close = True
        if self.disconnect is None:
            self.disconnect = self.loop.create_future()
            self._peer_key = self.disconnect
            _addresses[self.disconnect] = address
            _protocols[self.disconnect] = self

    def get_buffer(self, sizehint: int) -> memoryview:
        view = super().get_buffer(sizehint)
        self._fresh = view if self._at_request_start else None
        return view

    def buffer_updated(self, nbytes: int) -> None:
        fresh = self._fresh
        if fresh is not None:
            self._fresh = None
            _unslash(fresh, nbytes)
        self._at_request_start = False
        super().buffer_updated(nbytes)

    def connection_lost(self, exc: Exception | None) -> None:
        key = getattr(self, "_peer_key", None)
        if key is not None:
            _addresses.pop(key, None)
            _protocols.pop(key, None)
        address = getattr(self, "_address", None)
        if address is not None:
            self._address = None
            counts = self.limits.open_by_address
            left = counts.get(address, 1) - 1
            if left > 0:
                counts[address] = left
            else:
                counts.pop(address, None)
        super().connection_lost(exc)


class RateFloorProtocol(PeerAwareProtocol):
    """PeerAwareProtocol that also judges the bytes arriving while no handler runs.

    Per read it only counts bytes and notices a new handler; the judging happens in
    Stario's once-a-second sweep. `_settled` is the byte count when the last handler
    started or ended: bytes beyond it belong to a request no handler has yet (or to
    a body Stario drains after its handler answered)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._arrived = self._settled = 0
        super().connection_made(transport)

    def buffer_updated(self, nbytes: int) -> None:
        self._arrived += nbytes
        super().buffer_updated(nbytes)
        task = self.last_task
        if task is not self._task_seen and task is not None:
            self._task_seen, self._settled = task, self._arrived
            task.add_done_callback(self._handler_done)

    def _handler_done(self, _task: asyncio.Task[Any]) -> None:
        self._settled = self._arrived  # what the handler read was its own to judge

    def check_timeouts(self, now: float) -> None:
        task = self.last_task
        if (task is not None and not task.done()) or self._arrived == self._settled:
            self._arriving = None
        else:
            if self._arriving is None:
                self._arriving = RateWindow(self.limits.floor, now)
                self._arriving_from = self._settled
            if self._arriving.too_slow(now, self._arrived - self._arriving_from):
                self._arriving = None
                transport = self.transport
                if transport is not None and not transport.is_closing():
                    transport.write(self.limits.too_slow)
                    transport.close()
                return
        super().check_timeouts(now)


def protocol_maker(limits: ConnectionLimits):
    """Stario's own protocol factory (stario.http.server, 5.1.1), with our subclass."""
    base = RateFloorProtocol if limits.floor.rate > 0 else PeerAwareProtocol
    # Made on the first connection (the request policy arrives with it), then reused.
    made: dict[EarlyAnswers, type[PeerAwareProtocol]] = {}

    def make_protocol(
        loop: asyncio.AbstractEventLoop,
        app: Any,
        tracer: Any,
        date_box: list[bytes],
        compression: CompressionConfig,
        connections: Connections,
        requests: RequestPolicy,
    ) -> asyncio.Protocol:
        answers = EarlyAnswers(
            requests.max_body_bytes, requests.max_header_bytes, requests.body_timeout
        )
        protocol_class = made.get(answers)
        if protocol_class is None:
            protocol_class = type(base.__name__, (base,), {"limits": limits, "answers": answers})
            made[answers] = protocol_class
        return protocol_class(
            loop,
            app,
            tracer,
            date_box,
            compression,
            connections,
            max_header_bytes=requests.max_header_bytes,
            max_body_bytes=requests.max_body_bytes,
            header_timeout=requests.header_timeout,
            keep_alive_timeout=requests.keep_alive_timeout,
            body_timeout=requests.body_timeout,
            max_pipelined_requests=requests.max_pipelined_requests,
            write_timeout=requests.write_timeout,
        )

    return make_protocol


def _carries_body(c: Context) -> bool:
    headers = c.req.headers
    return headers.get("content-length") not in (None, "0") or "transfer-encoding" in headers


def request_ended(c: Context, w: Writer) -> None:
    """Called by the upload and resumable-upload routes as their handler ends: once a
    request is answered and nothing of it is left unread (it had no body, or its
    handler read the body to the end and said so in `BODY_READ`), the connection's
    next bytes start a request, so a slashed target can be routed (`_unslash`). Only
    these routes mark it (no middleware for every request): a client that speaks tus
    or uploads in a row keeps its connection; any other order meets Stario's 308."""
    if c.state.get(BODY_READ) or not _carries_body(c):
        protocol = _protocols.get(c.disconnect)
        if protocol is not None and not w.closing:
            protocol._at_request_start = True


def peer_address(c: Context) -> str:
    """The TCP peer of the request's connection."""
    return _addresses.get(c.disconnect, UNKNOWN_ADDRESS)


class ClientAddresses:
    """Who the client is, for counting failures per address. Behind a reverse proxy
    every peer is the proxy, so for peers listed in `trusted_proxies` the client is
    the right-most `X-Forwarded-For` entry that is not itself a trusted proxy (the
    entries left of it were written by the client and prove nothing)."""

    def __init__(self, trusted_proxies: frozenset[str] = frozenset()) -> None:
        self._trusted = trusted_proxies

    def of(self, c: Context) -> str:
        peer = peer_address(c)
        if peer not in self._trusted:
            return peer
        hops = [
            hop.strip() for hop in ",".join(c.req.headers.getlist("x-forwarded-for")).split(",")
        ]
        for hop in reversed(hops):
            if hop and hop not in self._trusted:
                return hop
        return peer
