"""Connection state belongs to the server that made it (app/server/peers.py): each
`ProtocolFactory` owns its table of open connections, a request finds its connection
through that factory's middleware, and nothing about connections is kept module-wide.
The real-server tests (test_limits_server.py, test_edges_server.py, ...) show the
same wiring end to end; these show it in-process, with a stand-in connection."""

import asyncio
from types import SimpleNamespace
from typing import Any

from app.common.http import RESPONSE_DATE
from app.server import peers
from app.server.peers import (
    SLASHED_DAV_TARGET,
    UNKNOWN_ADDRESS,
    ConnectionLimits,
    ProtocolFactory,
    peer_address,
)
from app.server.rate import RateFloor


def _factory() -> ProtocolFactory:
    return ProtocolFactory(ConnectionLimits(None, RateFloor(rate=0, window=5, grace=2)))


def _request(disconnect: object) -> Any:
    return SimpleNamespace(disconnect=disconnect, state={})


async def test_a_request_finds_its_connection_through_the_factory_that_made_it():
    one, other = _factory(), _factory()
    disconnect: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    date_box = [b"date: Mon, 07 Dec 2026 21:36:57 GMT\r\n"]
    connection = SimpleNamespace(
        open=one.open, _address="192.0.2.7", request=None, date_box=date_box,
        slashed_dav_target=True,
    )  # fmt: skip
    one.open[disconnect] = connection  # as PeerAwareProtocol.connection_made files itself
    seen: list[str] = []

    async def handler(c: Any, w: Any) -> None:
        seen.append(peer_address(c))

    request = _request(disconnect)
    await one.remember_request(handler)(request, None)
    # Another server's middleware knows nothing of this connection.
    await other.remember_request(handler)(_request(disconnect), None)
    assert seen == ["192.0.2.7", UNKNOWN_ADDRESS]
    assert connection.request is request
    # ... and the Date its answer carries (Stario's box, read when the head is written).
    assert request.state[RESPONSE_DATE] is date_box
    # ... and whether its WebDAV target lost a trailing slash, told once.
    assert request.state[SLASHED_DAV_TARGET] is True
    assert connection.slashed_dav_target is False
    del one.open[disconnect]  # as connection_lost
    assert peer_address(request) == UNKNOWN_ADDRESS


def test_a_request_without_a_connection_has_an_unknown_peer():
    """Stario's TestClient runs no protocol of ours: every peer is `unknown`."""
    assert peer_address(_request(object())) == "unknown"


def test_nothing_about_connections_is_kept_module_wide():
    mutable = [
        name
        for name, value in vars(peers).items()
        if not name.startswith("__") and isinstance(value, dict | list | set)
    ]
    assert mutable == []
