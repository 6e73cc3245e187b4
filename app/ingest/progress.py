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

With several nodes (app/cluster.py) each node announces, instead of a bare
"tick", a snapshot of what it is receiving for that account; the other nodes keep
the latest snapshot per node (`absorb`) and list those uploads beside their own. A
node repeats a non-empty snapshot every `HEARTBEAT` seconds, and a snapshot not
repeated within `FORGET_AFTER` is dropped, so a node that died leaves no upload
showing for ever.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from stario import Relay

PROGRESS_CHANGED = "uploads.progress"
HEARTBEAT = 20.0
FORGET_AFTER = 3 * HEARTBEAT
# A snapshot travels as one PostgreSQL notification (under 8000 bytes).
SNAPSHOT_BYTES = 7000
LABEL_CHARS = 120
NOTHING_RECEIVED = '{"t":[],"p":[]}'


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


@dataclass(frozen=True, slots=True)
class RemoteTransfer:
    """An upload another node is receiving, as that node last described it."""

    id: str
    label: str
    expected: int | None
    received: int
    rate: float

    def bytes_per_second(self) -> float:
        return self.rate


@dataclass(slots=True)
class _Snapshot:
    seen: float
    transfers: list[RemoteTransfer]
    paused: list[Paused]


class Progress:
    def __init__(self, relay: Relay[str], *, interval: float = 0.25) -> None:
        self._relay = relay
        self._interval = interval
        self._transfers: dict[int, Transfer] = {}
        self._ids = itertools.count(1)
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._paused: dict[str, Paused] = {}
        # Set when other nodes listen: ticks then carry this node's snapshot.
        self.shared = False
        self._heartbeats: dict[str, asyncio.TimerHandle] = {}
        # owner -> node -> the latest snapshot that node sent.
        self._remote: dict[str, dict[str, _Snapshot]] = {}

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
        here = [p for p in self._paused.values() if p.owner == owner]
        return here + [p for snap in self._remote_of(owner) for p in snap.paused]

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

    def list_transfers(self, owner: str) -> list[Transfer | RemoteTransfer]:
        """The account's uploads in flight, from any of its clients, oldest first
        (this node's, then the other nodes')."""
        here: list[Transfer | RemoteTransfer] = [
            t for t in self._transfers.values() if t.owner == owner
        ]
        return here + [t for snap in self._remote_of(owner) for t in snap.transfers]

    def count_in_flight(self) -> int:
        """Upload requests this node is receiving now, every account's (Admin screen)."""
        return len(self._transfers)

    def _remote_of(self, owner: str) -> list[_Snapshot]:
        nodes = self._remote.get(owner)
        if not nodes:
            return []
        now = time.monotonic()
        for node in [n for n, snap in nodes.items() if now - snap.seen > FORGET_AFTER]:
            del nodes[node]
        return list(nodes.values())

    def snapshot(self, owner: str) -> str:
        """What this node is receiving for `owner`, small enough for one notification."""
        transfers = [
            [t.id, t.label[:LABEL_CHARS], t.expected, t.received, round(t.bytes_per_second())]
            for t in self._transfers.values()
            if t.owner == owner
        ]
        paused = [
            [p.key, p.label[:LABEL_CHARS], p.received, p.expected]
            for p in self._paused.values()
            if p.owner == owner
        ]
        while True:
            text = json.dumps({"t": transfers, "p": paused}, separators=(",", ":"))
            if len(text) <= SNAPSHOT_BYTES or not (transfers or paused):
                return text
            # Too many to describe: the oldest ones are shown, the rest are not.
            (transfers if len(transfers) >= len(paused) else paused).pop()

    def absorb(self, node: str, owner: str, snapshot: str) -> None:
        """Another node's snapshot for `owner` (see the module doc). Malformed ones are
        ignored: a progress bar is not worth an error."""
        try:
            found = json.loads(snapshot)
            transfers = [
                RemoteTransfer(f"{node}-{id_}", str(label), expected, int(received), float(rate))
                for id_, label, expected, received, rate in found["t"]
            ]
            paused = [
                Paused(f"{node}-{key}", str(label), int(received), expected, owner)
                for key, label, received, expected in found["p"]
            ]
        except (ValueError, TypeError, KeyError):
            return
        nodes = self._remote.setdefault(owner, {})
        if transfers or paused:
            nodes[node] = _Snapshot(time.monotonic(), transfers, paused)
        else:
            nodes.pop(node, None)

    def changed(self, owner: str) -> None:
        if owner not in self._timers:
            loop = asyncio.get_running_loop()
            self._timers[owner] = loop.call_later(self._interval, self._notify, owner)

    def _notify(self, owner: str) -> None:
        del self._timers[owner]
        if not self.shared:
            self._relay.publish(progress_changed(owner), "tick")
            return
        snapshot = self.snapshot(owner)
        self._relay.publish(progress_changed(owner), snapshot)
        heartbeat = self._heartbeats.pop(owner, None)
        if heartbeat is not None:
            heartbeat.cancel()
        if snapshot != NOTHING_RECEIVED:
            loop = asyncio.get_running_loop()
            self._heartbeats[owner] = loop.call_later(HEARTBEAT, self._beat, owner)

    def _beat(self, owner: str) -> None:
        del self._heartbeats[owner]
        self.changed(owner)

    def close(self) -> None:
        for timer in [*self._timers.values(), *self._heartbeats.values()]:
            timer.cancel()
        self._timers.clear()
        self._heartbeats.clear()
