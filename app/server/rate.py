"""A floor under the upload rate, for every transport that reads a request body.

Stario's body timeout only notices a body that stops altogether: one byte every few
seconds keeps a connection (and a file descriptor) forever. `at_least(floor, chunks)`
wraps a body's chunks; once a second it compares the bytes that arrived over the last
`window` seconds with `rate x window`, and a body that falls short is ended with a
408 `IngestError`, raised where the transport reads its next chunk, so every
transport's own clean-up runs as for any other refusal.

A crawling client is usually waiting between chunks when it is judged; then the
read is cancelled (only that await, never disk work or a commit) and turned into
the 408. Otherwise the 408 comes at the next read.

Bytes that arrive before any handler runs (a request head, a small body Stario
buffers) are judged by the same `RateWindow` in the connection (app/server/peers.py).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass

from app.common.units import human_bytes
from app.config import Config
from app.ingest.pipeline import IngestError

CHECK_EVERY_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class RateFloor:
    """`rate` bytes per second over `window` seconds, judged after `grace` seconds;
    a rate of 0 turns the floor off."""

    rate: int
    window: float
    grace: float

    @classmethod
    def of(cls, config: Config) -> RateFloor:
        return cls(
            config.min_upload_rate, config.min_upload_rate_window, config.min_upload_rate_grace
        )

    def describe(self) -> str:
        return f"under {human_bytes(self.rate)}/s over {self.window:g} seconds"

    def refusal(self) -> IngestError:
        return IngestError(408, f"the upload was too slow: {self.describe()}")


class RateWindow:
    """Judges a flow of bytes against a floor: `too_slow(now, received)`, called about
    once a second with the bytes received so far, says whether the last `window`
    seconds (or all of it, while younger than that) fell below the rate. Nothing is
    judged during the first `grace` seconds."""

    def __init__(self, floor: RateFloor, now: float) -> None:
        self.floor = floor
        self.started = now
        # (time, bytes received by then), oldest first; the last one at or before
        # the window's start is kept, so the window is always fully covered.
        self.samples: deque[tuple[float, int]] = deque([(now, 0)])

    def too_slow(self, now: float, received: int) -> bool:
        self.samples.append((now, received))
        if now - self.started < self.floor.grace:
            return False
        window_start = now - self.floor.window
        while len(self.samples) > 1 and self.samples[1][0] <= window_start:
            self.samples.popleft()
        since, then = self.samples[0]
        return received - then < self.floor.rate * (now - since)


class _Meter:
    """One body being read by a handler, judged once a second off a loop timer."""

    def __init__(self, floor: RateFloor) -> None:
        self.loop = asyncio.get_running_loop()
        self.task = asyncio.current_task()
        self.window = RateWindow(floor, self.loop.time())
        self.received = 0
        self.waiting = False
        self.too_slow = False
        self.cancelled_read = False
        self.timer: asyncio.TimerHandle | None = self.loop.call_later(
            CHECK_EVERY_SECONDS, self.check
        )

    def check(self) -> None:
        self.timer = None
        if self.task is None or self.task.done():
            return
        if self.window.too_slow(self.loop.time(), self.received):
            self.too_slow = True
            if self.waiting:
                self.cancelled_read = True
                self.task.cancel()
            return
        self.timer = self.loop.call_later(CHECK_EVERY_SECONDS, self.check)

    def stop(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


async def at_least(floor: RateFloor, chunks: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
    """`chunks` as they come, ended with a 408 `IngestError` once they come too slowly."""
    if floor.rate <= 0:
        async for chunk in chunks:
            yield chunk
        return
    meter = _Meter(floor)
    source = aiter(chunks)
    try:
        while True:
            if meter.too_slow:
                raise floor.refusal()
            meter.waiting = True
            try:
                chunk = await anext(source)
            except StopAsyncIteration:
                return
            except asyncio.CancelledError:
                # Ours alone (no one else's cancel pending): the body was too slow.
                if meter.cancelled_read and meter.task is not None:
                    meter.cancelled_read = False
                    if meter.task.uncancel() == 0:
                        raise floor.refusal() from None
                raise
            finally:
                meter.waiting = False
            meter.received += len(chunk)
            yield chunk
    finally:
        meter.stop()
