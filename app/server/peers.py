"""Each connection, as it opens and while it sends: the client's address (which Stario
5.1.1 does not hand to handlers), how many connections that address holds, and the
rate at which a request arrives before its handler starts.

Stario lets a server choose its connection protocol (`Server(make_protocol=)`).
Ours is Stario's own plus six steps:

- When a connection opens it creates the connection's disconnect future itself
  (Stario would create the same future lazily on first use) and files itself under
  it in its factory's table of open connections (`ProtocolFactory.open`); the
  factory's outermost middleware (`ProtocolFactory.remember_request`) hands each
  request its connection (`CONNECTION` in the request's state), so a handler's peer
  address is one lookup away (`peer_address`). No table is module-wide: each server
  the composition root builds owns its own.
- An address holding `per_address` connections already has the next one refused
  at once: a fixed 429 written and the socket closed, before a byte is parsed.
  (The total cap is Stario's own `ServerConfig.max_connections`, a fixed 503.)
- A connection that finds the table full makes room first (`reap`): the connections
  furthest behind the minimum upload rate in what they are sending (a request head or
  body crawling in, an idle keep-alive, a socket that never spoke) are closed, a few
  at a time, so many addresses together cannot hold every slot. A connection whose
  handler is answering (a download, a live SSE stream) is never chosen, nor one that
  sends at the rate; when nothing else is left, the newcomer gets Stario's 503.
- A request head, and a body small enough for Stario to buffer before the handler
  runs (up to 256 KiB), must arrive at the minimum upload rate like any upload
  body: Stario's own timeouts only notice silence, so a client sending one byte
  every few seconds would hold the connection forever. Such a connection gets a
  fixed 408 and is closed. Once a handler runs, the body is the handler's to
  judge (app/server/rate.py).
- A request line for `/tus/` or `/uploads/` (nothing after the slash; also
  through a file request's `/r/TOKEN/`) reaches its route: Stario would answer it
  with its own 308 to the path without the slash, and tus clients under Node
  (tus-js-client) do not follow a redirect from tus's creation URL, nor does
  `curl -T -` without `-L`. See `_unslash`.
- Stario is handed a transport that turns the plain-text answers it writes itself,
  before any route runs (413 over the body cap, 400 for a path it will not route,
  308 for a trailing slash, ...), into JSON in words (app/server/early_answers.py).
"""

from __future__ import annotations

import asyncio
import heapq
import re
from dataclasses import dataclass, field
from typing import Any, cast

from stario import Context, Handler, Writer
from stario.http.config import CompressionConfig, RequestPolicy
from stario.json import dumps
from stario_cython.protocol import Connections, HttpProtocol

from app.common.http import RESPONSE_DATE
from app.common.units import human_bytes
from app.server.early_answers import AnswersInJson, EarlyAnswers
from app.server.lingering import LingerSlots
from app.server.rate import RateFloor, RateWindow

# TestClient's connections have no socket.
UNKNOWN_ADDRESS = "unknown"

# Set in a request's state once its body has been read to the end.
BODY_READ = "stowage.body_read"
# In a request's state: its connection (`PeerAwareProtocol`), from `remember_request`.
CONNECTION = "stowage.connection"
# In a request's state: True when its target was a WebDAV path with a trailing slash
# that `_unslash` turned into an empty query (`/dav/a/` reached its route as `/dav/a?`),
# so a handler can tell `/dav/file.txt/` (no such resource) from `/dav/file.txt`.
SLASHED_DAV_TARGET = "stowage.slashed_dav_target"
# Connections refused with 429 that may linger at once (app/server/lingering.py).
LINGER_SLOTS = 32
# The rate a connection is measured against when the table is full and the minimum
# upload rate is off (--min-upload-rate 0): that setting's default.
REAP_RATE_WHEN_NO_FLOOR = 10 * 1024
# A full table frees this share of itself at once (at least one slot): one scan of
# the table pays for that many newcomers, not one.
REAP_SHARE = 16


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
    # The server-wide `Upload-Limit` its `OPTIONS *` answer carries (early_answers.py).
    upload_limit: bytes = b""
    # Refused connections (429) left to linger at once at most (app/server/lingering.py).
    refusals_linger: LingerSlots = field(default_factory=lambda: LingerSlots(LINGER_SLOTS))
    too_many: bytes = field(init=False)
    too_slow: bytes = field(init=False)
    reaped: bytes = field(init=False)

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
        self.reaped = _fixed_response(
            "408 Request Timeout",
            "the server is at its connection limit (--max-connections) and this request"
            f" was among the slowest to arrive (under {human_bytes(self.reap_rate)}/s);"
            " send it faster, or try again later",
            "retry-after: 1",
        )

    @property
    def reap_rate(self) -> int:
        """Bytes per second a connection must send to stay out of a full table's reaping."""
        return self.floor.rate if self.floor.rate > 0 else REAP_RATE_WHEN_NO_FLOOR


# Request lines whose target Stario 5.1.1 would redirect (its path canonicalisation
# strips a trailing slash with a 308, before routing): tus's creation URLs and the
# unnamed PUT, for an account and through a file request's link; and WebDAV, whose
# clients name every collection with a trailing slash and follow no redirect for
# PROPFIND, MKCOL, COPY or MOVE (litmus, rclone, davfs2: observed with the 308).
_SLASHED = re.compile(rb"[A-Z]{3,7} (?:/r/[A-Za-z0-9_-]{32})?/(?:tus|uploads)/ ")
_LONGEST_SLASHED = len("OPTIONS /r/") + 32 + len("/uploads/ ")
# `METHOD /dav/any/path/ `: a WebDAV target without a query, its last byte a slash
# (or its last before a `#fragment`, which litmus sends and Stario refuses with a 400:
# the fragment's bytes become `&`s of the empty query, which names the same resource).
_DAV_SLASHED = re.compile(rb"[A-Z]{3,9} /dav(?:/[^ ?#\r\n]*)?(/)(#[^ ?\r\n]*)? ")
# A request line longer than this is left to Stario (its 308): 8 KiB of path.
_LONGEST_DAV_SLASHED = 8192


def _unslash(view: memoryview, nbytes: int) -> bool:
    """Turn `METHOD /tus/ HTTP/1.1` at the start of `view` into `METHOD /tus? HTTP/1.1`:
    the same path with an empty query, the same length, so nothing else moves. A
    WebDAV target (`/dav/...`) loses its trailing slash the same way; its handlers
    tell a collection by what the catalog holds, and are told that the slash was there
    (True, kept as `SLASHED_DAV_TARGET`) to refuse a file's path with one. Called only
    on bytes that start a request (see `PeerAwareProtocol.get_buffer`)."""
    head = bytes(view[: min(nbytes, _LONGEST_SLASHED)])
    found = _SLASHED.match(head)
    if found is None and b" /dav" in head[:16]:
        found = _DAV_SLASHED.match(bytes(view[: min(nbytes, _LONGEST_DAV_SLASHED)]))
    if found is None:
        return False
    if found.re is not _DAV_SLASHED:
        view[found.end() - 2] = ord("?")
        return False
    view[found.start(1)] = ord("?")
    for at in range(*found.span(2)) if found.group(2) else ():
        view[at] = ord("&")
    return True


class PeerAwareProtocol(HttpProtocol):
    """Stario's protocol with the steps in the module's docstring.

    It counts what arrives and notices each handler start and end: `_settled` is the
    byte count and `_since` the time when the connection opened or the last handler
    started or ended, so the bytes beyond `_settled` are the ones a request sent since
    (a head, a body, or nothing while idle). `writes` counts what the server wrote
    (app/server/early_answers.py); more than `_writes_settled`, the count when the
    handler started, means the handler is answering, not waiting for its request."""

    limits: ConnectionLimits
    answers: EarlyAnswers
    # The factory's open connections, by disconnect future (`ProtocolFactory.open`).
    open: dict[asyncio.Future[None], PeerAwareProtocol]
    # Set once the connection is let in: only then does a closing answer linger
    # (Stario's 503 beyond its cap is written before, and must close at once).
    lingers_on_close = False
    # This event loop's table of connections (Stario's, with its cap).
    connections: Connections
    # Writes of the server's own bytes, counted by `AnswersInJson`.
    writes: int
    # The request its handler serves, once past the first middleware (`remember_request`).
    request: Context | None
    # Stario's one-slot box with the `date: ...` line its writer sends (RESPONSE_DATE).
    date_box: list[bytes]

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._arrived = self._settled = 0
        self.writes = self._writes_settled = 0
        self.request = None
        self._since = self.loop.time()
        self._task_seen: asyncio.Task[Any] | None = None
        # True while the next bytes to arrive must start a request: at the start, and
        # after a handler ended with its whole request read (`request_ended`). A
        # read that comes before that is known is left alone: the worst is Stario's 308.
        self._at_request_start = True
        self._fresh: memoryview | None = None
        # Whether the request that started in `_fresh` had its WebDAV slash taken off;
        # handed to that request's state (and cleared) as its handler starts.
        self.slashed_dav_target = False
        self._address: str | None = None
        self._arriving: RateWindow | None = None
        self._arriving_from = 0
        peer = transport.get_extra_info("peername")
        limits = self.limits
        address = str(peer[0]) if peer else None
        held = limits.open_by_address.get(address, 0) if address is not None else 0
        over_per_address = limits.per_address is not None and held >= limits.per_address
        connections = self.connections
        if (
            address is not None
            and not over_per_address
            and 0 < connections.max_connections <= len(connections)
        ):
            reap(connections, self.loop.time(), limits)
        # Stario keeps (and writes to) what it is handed here; our own checks below
        # read the real transport.
        super().connection_made(
            cast(asyncio.BaseTransport, AnswersInJson(transport, self, self.answers))
        )
        if address is None or transport.is_closing():  # Stario's own cap refused it
            return
        if over_per_address:
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
            self.open[self.disconnect] = self

    def get_buffer(self, sizehint: int) -> memoryview:
        view = super().get_buffer(sizehint)
        self._fresh = view if self._at_request_start else None
        return view

    def buffer_updated(self, nbytes: int) -> None:
        self._arrived += nbytes
        fresh = self._fresh
        if fresh is not None:
            self._fresh = None
            self.slashed_dav_target = _unslash(fresh, nbytes)
        self._at_request_start = False
        super().buffer_updated(nbytes)
        task = self.last_task
        if task is not self._task_seen and task is not None:
            self._handler_started(task)

    def _handler_started(self, task: asyncio.Task[Any]) -> None:
        self._task_seen, self._settled = task, self._arrived
        self._writes_settled, self._since = self.writes, self.loop.time()
        task.add_done_callback(self._handler_done)

    def _handler_done(self, _task: asyncio.Task[Any]) -> None:
        # What the handler read was its own to judge; what comes next is a new request.
        self._settled, self._since = self._arrived, self.loop.time()
        self.request = None

    def seconds_behind(self, now: float, rate: int) -> float | None:
        """How far what this connection sent since it opened or its handler last started
        or ended falls behind `rate` bytes a second, in seconds; None while a handler
        answers (it is sending, not waiting for the client) or the connection closes.
        An HTTP/2 connection (h2c; browsers never speak it) carries many requests and
        is judged by its latest: a stream of its may be closed with an idle sibling."""
        transport = self.transport
        if transport is None or transport.is_closing():
            return None
        task = self.last_task
        if task is not None and not task.done():
            if task is not self._task_seen:  # a pipelined request's handler
                self._handler_started(task)
            if self.writes > self._writes_settled or not self._awaits_body():
                return None
        return (now - self._since) - (self._arrived - self._settled) / rate

    def _awaits_body(self) -> bool:
        """Whether the running handler may still be waiting for its request's body: one
        that has it whole (none, or one Stario read before it started) or has read it
        to the end is working, and its time is the server's, not the client's."""
        c = self.request
        if c is None:  # not yet through the first middleware
            return False
        return body_streams(c) and not c.state.get(BODY_READ)

    def reap(self) -> None:
        """Close this connection to make room: a request partly sent (or its handler
        waiting for the rest of its body) is told why; an idle one just closes, as
        Stario's keep-alive timeout would."""
        transport = self.transport
        if transport is None:
            return
        task = self.last_task
        if self._arrived > self._settled or (task is not None and not task.done()):
            transport.write(self.limits.reaped)
        transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        key = getattr(self, "_peer_key", None)
        if key is not None:
            self.open.pop(key, None)
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


def reap(connections: Connections, now: float, limits: ConnectionLimits) -> None:
    """Free a share of a full table (`REAP_SHARE`): the connections furthest behind
    the reap rate (`PeerAwareProtocol.seconds_behind`), and only those behind it.
    They leave the table at once, so the connection that asked is let in; Stario
    forgets them again (harmlessly) when they are lost."""
    rate = limits.reap_rate
    behind: list[tuple[float, PeerAwareProtocol]] = []
    for protocol in connections:
        if isinstance(protocol, PeerAwareProtocol):
            seconds = protocol.seconds_behind(now, rate)
            if seconds is not None and seconds > 0:
                behind.append((seconds, protocol))
    share = max(1, connections.max_connections // REAP_SHARE)
    for _, protocol in heapq.nlargest(share, behind, key=lambda pair: pair[0]):
        protocol.reap()
        connections.discard(protocol)


class RateFloorProtocol(PeerAwareProtocol):
    """PeerAwareProtocol that also judges the bytes arriving while no handler runs.

    Per read it only counts bytes and notices a new handler (PeerAwareProtocol); the
    judging happens in Stario's once-a-second sweep, on the bytes beyond `_settled`:
    those of a request no handler has yet (or of a body Stario drains after its
    handler answered)."""

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


class ProtocolFactory:
    """Stario's own protocol factory (stario.http.server, 5.1.1), with our subclass
    (`Server(make_protocol=ProtocolFactory(limits))`). It owns the state its
    connections share: `open`, the connections let in and not yet lost, by their
    disconnect future (the one each of their requests carries, `Context.disconnect`);
    its middleware `remember_request` is how a request finds its connection."""

    def __init__(self, limits: ConnectionLimits) -> None:
        self.limits = limits
        self.open: dict[asyncio.Future[None], PeerAwareProtocol] = {}
        self._base = RateFloorProtocol if limits.floor.rate > 0 else PeerAwareProtocol
        # Made on the first connection (the request policy arrives with it), then reused.
        self._made: dict[EarlyAnswers, type[PeerAwareProtocol]] = {}

    def __call__(
        self,
        loop: asyncio.AbstractEventLoop,
        app: Any,
        tracer: Any,
        date_box: list[bytes],
        compression: CompressionConfig,
        connections: Connections,
        requests: RequestPolicy,
    ) -> asyncio.Protocol:
        answers = EarlyAnswers(
            requests.max_body_bytes,
            requests.max_header_bytes,
            requests.body_timeout,
            self.limits.upload_limit,
        )
        protocol_class = self._made.get(answers)
        if protocol_class is None:
            base = self._base
            protocol_class = type(
                base.__name__,
                (base,),
                {"limits": self.limits, "answers": answers, "open": self.open},
            )
            self._made[answers] = protocol_class
        protocol = protocol_class(
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
        protocol.connections = connections
        protocol.date_box = date_box
        return protocol

    def remember_request(self, inner: Handler) -> Handler:
        """Middleware, outermost: lets the connection see the request its handler
        serves, so that a full table tells a handler waiting for a body from one at
        work, and the request its connection (`CONNECTION`: `peer_address`,
        `request_ended`) and the Date its answer will carry (`RESPONSE_DATE`)."""
        open_connections = self.open

        async def handler(c: Context, w: Writer) -> None:
            protocol = open_connections.get(c.disconnect)
            if protocol is not None:
                protocol.request = c
                c.state[CONNECTION] = protocol
                c.state[RESPONSE_DATE] = protocol.date_box
                c.state[SLASHED_DAV_TARGET] = protocol.slashed_dav_target
                protocol.slashed_dav_target = False
            await inner(c, w)

        return handler


# The largest body Stario 5.1.1 reads whole before it starts the handler.
BUFFERED_BODY_BYTES = 256 * 1024


def body_streams(c: Context) -> bool:
    """Whether the request's body comes while its handler runs: any body over HTTP/2,
    or with `Expect: 100-continue`, or chunked, or over 256 KiB (measured; the same
    rule as app/server/body.py `arrived_whole`)."""
    headers = c.req.headers
    if not _carries_body(c):
        return False
    if c.req.protocol_version not in ("1.1", "1.0") or "expect" in headers:
        return True
    length = headers.get("content-length")
    return (
        "transfer-encoding" in headers
        or length is None
        or not length.isdigit()
        or int(length) > BUFFERED_BODY_BYTES
    )


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
        protocol = _connection(c)
        if protocol is not None and not w.closing:
            protocol._at_request_start = True


def _connection(c: Context) -> PeerAwareProtocol | None:
    """The request's connection while it is open (None once lost, and under Stario's
    TestClient, whose requests come without a connection)."""
    protocol: PeerAwareProtocol | None = c.state.get(CONNECTION)
    if protocol is None or protocol.open.get(c.disconnect) is not protocol:
        return None
    return protocol


def peer_address(c: Context) -> str:
    """The TCP peer of the request's connection."""
    protocol = _connection(c)
    if protocol is None or protocol._address is None:
        return UNKNOWN_ADDRESS
    return protocol._address


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
