"""One account's live pages share their work: one subscription, one repaint per change.

A live page's stream used to subscribe on its own and render everything again for
every event, so one account with 50 pages open rendered each change 50 times, and its
uploads cost every other account's requests their latency. Here each account with an
open stream has one `Feed`: it alone subscribes to the account's subjects, gathers
what changed over `window` seconds (a burst of uploads is one repaint, not one per
file), and calls the page's painter once. The painter renders each part once per
*view* (`ViewGroup`: the streams that show the same thing, e.g. the same search and
page) or once for the account, and hands the result to the streams; a stream only
writes what it was given, newest per part (`LiveStream`), so a slow reader skips
stale repaints instead of queueing them.

An account may hold at most `cap` streams: the next one opens, and the oldest is
ended (`LiveStream.ended`), for its handler to say why.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Self, cast

from stario import Relay, Writer
from stario.datastar import SSE
from stario.relay import RelaySubscription

log = logging.getLogger("stowage.live")

# Changes gathered before a repaint: short enough that a person sees no lag, long
# enough that a burst of small uploads is one repaint (`python -m bench live`).
COALESCE_SECONDS = 0.05


@dataclass(frozen=True, slots=True)
class Framed:
    """SSE events as bytes, framed once and written as they are to every stream they go
    to (`Writer.write`, after the stream's first event set its headers); `version`,
    when they repaint a part the stream may already show (see `framed`)."""

    data: bytes
    version: str | None = None
    # `diff` does what `data` does for a stream that shows version `base`.
    base: str | None = None
    diff: bytes | None = None

    def for_stream(self, shown: str | None) -> bytes | None:
        """What a stream that shows version `shown` is sent: nothing when it already
        shows this, the difference when it shows `base`, else all of it."""
        if self.version is not None and self.version == shown:
            return None
        if self.diff is not None and self.base is not None and self.base == shown:
            return self.diff
        return self.data


class _Capture:
    """Stands in for a started SSE response: keeps what `SSE` writes to it."""

    completed = False
    started = True

    def __init__(self) -> None:
        self.headers = self
        self.data = b""

    def unsafe_get(self, name: bytes) -> bytes:
        return b"text/event-stream"

    def write(self, data: bytes) -> Self:
        self.data += data
        return self


def framed(emit: Callable[[SSE], object], version: str | None = None) -> Framed:
    """What `emit` writes through Stario's `SSE`, as bytes. Framing copies the whole
    part several times (encode, split into `data:` lines, join); a 50-row list is tens
    of kB, so it is done once per repaint, not once per stream."""
    capture = _Capture()
    emit(SSE(cast(Writer, capture)))
    return Framed(capture.data, version)


@dataclass(eq=False)
class LiveStream[V: Hashable, P]:
    """One open stream: its view, and the parts it has yet to write (newest each)."""

    view: V
    pending: dict[str, P] = field(default_factory=dict)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    # Why the server ended this stream (None: it has not).
    ended: str | None = None

    def put(self, part: str, payload: P) -> None:
        # A part given again replaces what was not yet written, and goes last.
        self.pending.pop(part, None)
        self.pending[part] = payload
        self.wake.set()

    def take(self) -> list[P]:
        taken = list(self.pending.values())
        self.pending.clear()
        self.wake.clear()
        return taken

    async def wait(self, timeout: float) -> bool:
        """True when there is something to write (or the stream was ended), False
        after `timeout` seconds of nothing."""
        try:
            await asyncio.wait_for(self.wake.wait(), timeout)
        except TimeoutError:
            return False
        return True


@dataclass(eq=False)
class ViewGroup[V: Hashable, P]:
    """The streams of one account that show the same view, and what the painter
    keeps about that view between repaints (`memo`)."""

    view: V
    streams: list[LiveStream[V, P]] = field(default_factory=list)
    memo: dict[str, object] = field(default_factory=dict)

    def send(self, part: str, payload: P) -> None:
        for stream in self.streams:
            stream.put(part, payload)


# owner, the subjects that changed, the account's views -> repaints them.
type Painter[V: Hashable, P] = Callable[
    [str, frozenset[str], Sequence[ViewGroup[V, P]]], Awaitable[None]
]


@dataclass(eq=False)
class Feed[V: Hashable, P]:
    owner: str
    events: RelaySubscription[str]
    streams: list[LiveStream[V, P]] = field(default_factory=list)
    groups: dict[V, ViewGroup[V, P]] = field(default_factory=dict)
    changed: set[str] = field(default_factory=set)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None


class LiveFeeds[V: Hashable, P]:
    """The feeds of one kind of live page: `subjects(owner)` are what it listens to,
    `painter` repaints, at most `cap` streams per account."""

    def __init__(
        self,
        relay: Relay[str],
        subjects: Callable[[str], Sequence[str]],
        painter: Painter[V, P],
        *,
        cap: int,
        window: float | None = None,
    ) -> None:
        self._relay = relay
        self._subjects = subjects
        self._painter = painter
        self.cap = cap
        self.window = COALESCE_SECONDS if window is None else window
        self._feeds: dict[str, Feed[V, P]] = {}

    def streams_of(self, owner: str) -> int:
        feed = self._feeds.get(owner)
        return len(feed.streams) if feed else 0

    @asynccontextmanager
    async def join(
        self, owner: str, view: V
    ) -> AsyncIterator[tuple[LiveStream[V, P], ViewGroup[V, P]]]:
        """A stream of `owner`'s showing `view`, subscribed before this returns (so
        nothing published after it is missed), and its view's group."""
        feed = self._feeds.get(owner)
        if feed is None:
            events = self._relay.subscribe(*self._subjects(owner), latest=True)
            feed = self._feeds[owner] = Feed[V, P](owner, events)
            await events.__aenter__()
            feed.task = asyncio.create_task(self._run(feed))
        while len(feed.streams) >= self.cap:
            self._leave(feed, feed.streams[0], f"more than {self.cap:,} live pages open")
        stream = LiveStream[V, P](view)
        group = feed.groups.get(view)
        if group is None:
            group = feed.groups[view] = ViewGroup[V, P](view)
        feed.streams.append(stream)
        group.streams.append(stream)
        try:
            yield stream, group
        finally:
            self._leave(feed, stream, None)

    def _leave(self, feed: Feed[V, P], stream: LiveStream[V, P], why: str | None) -> None:
        if stream not in feed.streams:
            return
        if why is not None:
            stream.ended = why
            stream.wake.set()
        feed.streams.remove(stream)
        group = feed.groups[stream.view]
        group.streams.remove(stream)
        if not group.streams:
            del feed.groups[stream.view]
        if not feed.streams and self._feeds.get(feed.owner) is feed:
            del self._feeds[feed.owner]
            if feed.task is not None:
                feed.task.cancel()
            self._relay.drop_subscription(feed.events)

    async def _run(self, feed: Feed[V, P]) -> None:
        gathering = asyncio.create_task(self._gather(feed))
        try:
            while True:
                await feed.ready.wait()
                # Let the rest of a burst arrive: one repaint for all of it.
                await asyncio.sleep(self.window)
                feed.ready.clear()
                changed = frozenset(feed.changed)
                feed.changed.clear()
                try:
                    await self._painter(feed.owner, changed, list(feed.groups.values()))
                except Exception:
                    log.exception("repainting the live pages of %s failed", feed.owner)
        finally:
            gathering.cancel()

    async def _gather(self, feed: Feed[V, P]) -> None:
        while True:
            subject, _ = await feed.events.receive()
            feed.changed.add(subject)
            feed.ready.set()
