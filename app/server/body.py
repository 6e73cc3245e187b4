"""An upload request's body under Stario 5.1.1: read whole when the server already
holds it, else streamed under the minimum upload rate and the per-request cap, told
read to its end (`BODY_READ`) so the connection may carry the next request, and the
upload handlers tracked so a stop can wait for their clean-up. The engines never see
a request: they get the chunks (`read_body`), the declared length and whether the
client went away (`incoming`)."""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

from stario import Context, Writer
from stario.exceptions import RequestBodyError

from app.config import Config
from app.ingest.intake import Incoming
from app.ingest.pipeline import IngestError
from app.server.early_answers import one_request_too_large
from app.server.peers import BODY_READ, request_ended
from app.server.rate import RateFloor, at_least


async def read_body(c: Context, config: Config) -> AsyncIterator[bytes]:
    """The request body's chunks, under the minimum upload rate (app/server/rate.py);
    a body without a length that passes the per-request cap ends in a 413 that says
    how to send a larger file. A body read to its end is marked so (`BODY_READ`,
    app/server/peers.py)."""
    if arrived_whole(c):
        # Already in memory and already held to the rate by the connection: one
        # piece, without the meter and the generators a streamed body needs.
        whole = await c.req.body()
        if whole:
            yield whole
        if not c.disconnected:
            c.state[BODY_READ] = True
        return
    chunks = within_request_cap(c.req.stream(), config.max_request_body_bytes)
    async for chunk in at_least(RateFloor.of(config), chunks):
        yield chunk
    if not c.disconnected:
        c.state[BODY_READ] = True


def incoming(c: Context, config: Config) -> Incoming:
    """The request's body as an engine takes it (`read_body`, its declared length,
    whether it carries bytes at all, whether its client went away)."""
    declared = declared_length(c)
    return Incoming(
        read_body(c, config),
        declared_bytes=declared,
        cut_off=lambda: c.disconnected,
        carries_bytes=bool(declared or c.req.headers.get("transfer-encoding")),
    )


def tracked(
    in_flight: set[asyncio.Task[None]], handler: Callable[[Context, Writer], Awaitable[None]]
) -> Callable[[Context, Writer], Awaitable[None]]:
    """An upload route's handler, counted in `in_flight` while it runs (so a stop
    waits for its clean-up: `Uploads.wind_down`), and told to the connection as it
    ends (`request_ended`, app/server/peers.py)."""

    async def tracked_handler(c: Context, w: Writer) -> None:
        task = asyncio.current_task()
        if task is not None:
            in_flight.add(task)
        try:
            await handler(c, w)
        finally:
            if task is not None:
                in_flight.discard(task)
        request_ended(c, w)

    return tracked_handler


# Stario 5.1.1 reads an HTTP/1 body with a Content-Length up to this size whole
# before the handler starts (measured: the handler starts as the last byte arrives,
# and `stream()` yields one chunk). Meanwhile the connection holds those bytes to the
# minimum upload rate itself (app/server/peers.py, `RateFloorProtocol`).
BUFFERED_BODY_BYTES = 256 * 1024


def arrived_whole(c: Context) -> bool:
    """Whether the request's body was read whole before its handler started."""
    if c.req.protocol_version not in ("1.1", "1.0"):
        return False  # HTTP/2 streams a body as it comes, whatever its length
    headers = c.req.headers
    if "expect" in headers:
        # `Expect: 100-continue`: Stario answers 100 and starts the handler before a
        # byte of the body has come (measured), so the handler must judge its rate.
        return False
    length = declared_length(c)
    return (
        length is not None and length <= BUFFERED_BODY_BYTES and "transfer-encoding" not in headers
    )


async def within_request_cap(chunks: AsyncIterator[bytes], cap: int) -> AsyncIterator[bytes]:
    """`chunks`, with Stario's 413 for a body past `cap` (one without Content-Length:
    Stario refuses a declared length itself, see app/server/early_answers.py) told
    in words, with the way to send a larger file."""
    try:
        async for chunk in chunks:
            yield chunk
    except RequestBodyError as exc:
        if exc.status_code == 413:
            raise IngestError(413, one_request_too_large(cap)) from exc
        raise


def declared_length(c: Context) -> int | None:
    """The body's Content-Length; None when it has none (or not a number)."""
    value = c.req.headers.get("content-length")
    return int(value) if value is not None and value.isdigit() else None
