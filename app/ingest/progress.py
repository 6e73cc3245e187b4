"""Uploads in flight, so every open page can show how far each one has got.

The registry is built once in bootstrap. A transport opens a `Transfer` per
request (`with progress.track(label, content_length, owner) as transfer:`) and hands
`transfer.add` to each `Ingest` it feeds as `on_progress`. Every change asks for
one notification on `PROGRESS_CHANGED`; notifications go out at most once per
`interval` (4 a second by default) per account, trailing, so a burst of chunks
or of small uploads costs one repaint, and an upload that starts and ends inside
one interval is never shown. Each account hears only of its own uploads, on its
own subject.
Everything runs on the event loop; nothing here is thread-safe or persistent.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from stario import Relay

PROGRESS_CHANGED = "uploads.progress"


def progress_changed(owner: str) -> str:
    return f"{PROGRESS_CHANGED}.{owner}"


@dataclass(slots=True)
class Transfer:
    """One upload request on its way in: bytes accepted so far of `expected`."""

    id: int
    label: str
    expected: int | None
    owner: str
    received: int = 0
    started: float = field(default_factory=time.monotonic)
    # Bytes already there when this request began (a resumable upload's offset).
    resumed_from: int = 0
    _registry: Progress | None = field(default=None, repr=False)

    def add(self, name: str, count: int) -> None:
        """`Ingest`'s `on_progress`: `count` more bytes of the file called `name`."""
        self.label = name
        self.received += count
        if self._registry is not None:
            self._registry.changed(self.owner)

    def bytes_per_second(self) -> float:
        elapsed = time.monotonic() - self.started
        return (self.received - self.resumed_from) / elapsed if elapsed > 0 else 0.0


@dataclass(frozen=True, slots=True)
class Paused:
    """A resumable upload waiting for its client to send more (app/resumable)."""

    key: str
    label: str
    received: int
    expected: int | None
    owner: str


class Progress:
    def __init__(self, relay: Relay[str], *, interval: float = 0.25) -> None:
        self._relay = relay
        self._interval = interval
        self._transfers: dict[int, Transfer] = {}
        self._ids = itertools.count(1)
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._paused: dict[str, Paused] = {}

    def pause(self, key: str, label: str, received: int, expected: int | None, owner: str) -> None:
        """Show an unfinished resumable upload as paused until `resume(key)`."""
        self._paused[key] = Paused(key, label, received, expected, owner)
        self.changed(owner)

    def resume(self, key: str) -> None:
        """The upload receives bytes again, or is finished or gone: not paused."""
        paused = self._paused.pop(key, None)
        if paused is not None:
            self.changed(paused.owner)

    def list_paused(self, owner: str) -> list[Paused]:
        return [p for p in self._paused.values() if p.owner == owner]

    @contextmanager
    def track(self, label: str, expected: int | None, owner: str) -> Iterator[Transfer]:
        transfer = Transfer(next(self._ids), label, expected, owner, _registry=self)
        self._transfers[transfer.id] = transfer
        self.changed(owner)
        try:
            yield transfer
        finally:
            transfer._registry = None
            del self._transfers[transfer.id]
            self.changed(owner)

    def list_transfers(self, owner: str) -> list[Transfer]:
        """The account's uploads in flight, from any of its clients, oldest first."""
        return [t for t in self._transfers.values() if t.owner == owner]

    def changed(self, owner: str) -> None:
        if owner not in self._timers:
            loop = asyncio.get_running_loop()
            self._timers[owner] = loop.call_later(self._interval, self._notify, owner)

    def _notify(self, owner: str) -> None:
        del self._timers[owner]
        self._relay.publish(progress_changed(owner), "tick")

    def close(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
