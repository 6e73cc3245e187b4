"""The client's address, which Stario 5.1.1 does not hand to handlers.

Stario lets a server choose its connection protocol (`Server(make_protocol=)`).
Ours is Stario's own, plus one step when a connection opens: it creates the
connection's disconnect future itself (Stario would create the same future lazily
on first use) and files the peer address under it. A handler's `c.disconnect` is
that future, so the address is one dict lookup away, and the entry goes when the
connection closes.
"""

from __future__ import annotations

import asyncio
from typing import Any

from stario import Context
from stario.http.config import CompressionConfig, RequestPolicy
from stario_cython.protocol import Connections, HttpProtocol

# TestClient's connections have no socket.
UNKNOWN_ADDRESS = "unknown"

_addresses: dict[asyncio.Future[None], str] = {}


class PeerAwareProtocol(HttpProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        peer = transport.get_extra_info("peername")
        if peer and self.disconnect is None:
            self.disconnect = self.loop.create_future()
            self._peer_key = self.disconnect
            _addresses[self.disconnect] = str(peer[0])

    def connection_lost(self, exc: Exception | None) -> None:
        key = getattr(self, "_peer_key", None)
        if key is not None:
            _addresses.pop(key, None)
        super().connection_lost(exc)


def make_protocol(
    loop: asyncio.AbstractEventLoop,
    app: Any,
    tracer: Any,
    date_box: list[bytes],
    compression: CompressionConfig,
    connections: Connections,
    requests: RequestPolicy,
) -> asyncio.Protocol:
    """Stario's own protocol factory (stario.http.server, 5.1.1), with our subclass."""
    return PeerAwareProtocol(
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
