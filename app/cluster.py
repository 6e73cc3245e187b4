"""Live updates across several Stowage nodes over one PostgreSQL catalog.

Each node is one process with its own in-process Relay, and a page is subscribed on
the node that serves it. So that a page on node B repaints when node A stores,
deletes or shares a file, every publish on a node is also sent as a PostgreSQL
NOTIFY on one channel, and every node LISTENs on that channel and republishes into
its own Relay what the other nodes sent. PostgreSQL hands a notification to every
listening session, in the order sent, within a round trip: no broker of our own.

What crosses is only a hint ("this account's list changed", or a progress snapshot);
a page always repaints from the catalog. A hint lost while a node's connection is
down therefore costs a repaint, never data, and after every reconnect the node
repaints every page it serves once (`NodeRelay.resync`), so nothing stays stale.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from stario import Relay

from app.accounts.store import CREDENTIALS_CHANGED, credentials_changed_elsewhere
from app.accounts.throttle import Throttle
from app.catalog.protocol import NODES_CHANNEL
from app.ingest.progress import PROGRESS_CHANGED, Progress

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger("stowage.nodes")

CHANNEL = NODES_CHANNEL
# PostgreSQL refuses a NOTIFY payload of 8000 bytes or more.
MAX_PAYLOAD = 7900
# Hints kept for sending while PostgreSQL is unreachable.
MAX_QUEUED = 1000
# "End your append to this upload and record its bytes" (data: the upload id): a
# node asked about a resumable upload another node is still appending to
# (app/resumable/locker.py); never delivered to pages.
TAKE_OVER = "resumable.take-over"


class NodeRelay(Relay[str]):
    """A Relay whose publishes also go to the other nodes, when `outbox` is set.

    `publish` stays what Stario's is (synchronous, callable from any thread); the
    outbox must be as well. `publish_here` delivers what another node sent to this
    node's subscribers only, so a message never bounces back."""

    def __init__(self) -> None:
        super().__init__()
        self.outbox: Callable[[str, str], None] | None = None

    def publish(self, subject: str, data: str) -> None:
        super().publish(subject, data)
        if self.outbox is not None:
            self.outbox(subject, data)

    def publish_here(self, subject: str, data: str) -> None:
        super().publish(subject, data)

    def resync(self) -> None:
        """Tell every live page on this node to repaint: hints from other nodes may
        have been lost while the connection was down. Only exact subjects are
        subscribed by pages (`files.changed.<account>`, ...), so those are the ones
        to publish on."""
        with self.lock:
            subjects = [pattern for pattern in self.subs if "*" not in pattern]
        for subject in subjects:
            super().publish(subject, "resync")


def _database_error() -> type[Exception]:
    import psycopg

    return psycopg.Error


def encode(node: str, subject: str, data: str) -> str | None:
    payload = json.dumps([node, subject, data], separators=(",", ":"))
    return payload if len(payload.encode()) < MAX_PAYLOAD else None


def decode(payload: str) -> tuple[str, str, str] | None:
    try:
        node, subject, data = json.loads(payload)
    except (ValueError, TypeError):
        return None
    if not all(isinstance(part, str) for part in (node, subject, data)):
        return None
    return node, subject, data


class PostgresBus:
    """Carries a node's publishes to the other nodes through LISTEN/NOTIFY.

    Two connections of its own, apart from the catalog's: one only listens (psycopg
    holds a connection while it waits for notifications), one sends. Both reconnect
    by themselves, with a growing pause, when PostgreSQL restarts or the network
    drops; a node never needs a restart for it. Sending never blocks a publisher: a
    publish queues its payload, and the sender writes everything queued in one
    round trip."""

    def __init__(
        self,
        dsn: str,
        node: str,
        deliver: Callable[[str, str, str], None],
        *,
        on_reconnect: Callable[[], None] = lambda: None,
        retry_max: float = 5.0,
    ) -> None:
        self._dsn = dsn
        self.node = node
        self._deliver = deliver
        self._on_reconnect = on_reconnect
        self._retry_max = retry_max
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._tasks: list[asyncio.Task[None]] = []
        # Set once the listener is subscribed. Tests wait on it; start-up need not: a
        # node just started has no page open yet that could miss a message.
        self.listening = asyncio.Event()
        self.dropped = 0
        # What ends this node's append to an upload when another node asks (TAKE_OVER).
        self.on_take_over: Callable[[str], None] = lambda upload_id: None

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._listen(), name="stowage.nodes.listen"),
            asyncio.create_task(self._send(), name="stowage.nodes.send"),
        ]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def send(self, subject: str, data: str) -> None:
        """The Relay's outbox: safe from any thread, never waits."""
        payload = encode(self.node, subject, data)
        if payload is None:
            self.dropped += 1
            log.warning("a live update for %s was too large to send to other nodes", subject)
            return
        if self._queue.qsize() >= MAX_QUEUED:
            # PostgreSQL has been unreachable for a while; the other nodes repaint
            # everything when they reconnect anyway (`NodeRelay.resync`).
            self.dropped += 1
            return
        if threading.get_ident() == self._loop_thread:
            self._queue.put_nowait(payload)
        else:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, payload)

    async def _connect(self) -> psycopg.AsyncConnection[tuple[object, ...]]:
        # Imported here: a node on SQLite never loads psycopg (about 10 MB of RSS).
        import psycopg

        return await psycopg.AsyncConnection.connect(self._dsn, autocommit=True, connect_timeout=5)

    async def _pause(self, attempt: int) -> None:
        await asyncio.sleep(min(self._retry_max, 0.1 * 2**attempt))

    async def _listen(self) -> None:
        attempt = 0
        first = True
        while True:
            try:
                async with await self._connect() as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    attempt = 0
                    self.listening.set()
                    if not first:
                        self._on_reconnect()
                    first = False
                    async for note in conn.notifies():
                        message = decode(note.payload)
                        if message is not None and message[0] != self.node:
                            self._hand_over(*message)
            except (_database_error(), OSError) as exc:
                self.listening.clear()
                log.warning("listening for other nodes failed (%s); reconnecting", exc)
                await self._pause(attempt)
                attempt += 1

    def _hand_over(self, node: str, subject: str, data: str) -> None:
        try:
            self._deliver(node, subject, data)
        except Exception:
            # One bad message must not end the listening for good.
            log.exception("a live update from node %s could not be delivered", node)

    async def _send(self) -> None:
        attempt = 0
        batch: list[str] = []
        while True:
            try:
                async with await self._connect() as conn:
                    attempt = 0
                    while True:
                        if not batch:
                            batch.append(await self._queue.get())
                        while not self._queue.empty():
                            batch.append(self._queue.get_nowait())
                        # Identical hints in one batch (a burst of uploads by one
                        # account) cost the listeners one repaint, not one each.
                        unique = list(dict.fromkeys(batch))
                        await conn.execute(
                            "SELECT pg_notify(%s, payload) FROM unnest(%s::text[]) AS payload",
                            (CHANNEL, unique),
                        )
                        batch.clear()
            except (_database_error(), OSError) as exc:
                # What was queued is kept and sent after the reconnect; the pages
                # of the other nodes repaint late rather than never.
                log.warning("sending to other nodes failed (%s); reconnecting", exc)
                await self._pause(attempt)
                attempt += 1


def share_with_other_nodes(
    dsn: str,
    relay: NodeRelay,
    *,
    progress: Progress,
    throttles: Sequence[Throttle],
    node: str | None = None,
) -> PostgresBus:
    """Wire this node's relay, progress and throttles to the other nodes on the
    catalog at `dsn`; the bus is started, and `close()` ends it."""
    by_subject = {throttle.subject: throttle for throttle in throttles}
    progress_prefix = PROGRESS_CHANGED + "."

    def from_other_node(sender: str, subject: str, data: str) -> None:
        if subject == TAKE_OVER:
            bus.on_take_over(data)
            return
        if subject == CREDENTIALS_CHANGED:
            credentials_changed_elsewhere()
            return
        throttle = by_subject.get(subject)
        if throttle is not None:
            throttle.absorb(data)
            return
        if subject.startswith(progress_prefix):
            progress.absorb(sender, subject.removeprefix(progress_prefix), data)
        relay.publish_here(subject, data)

    bus = PostgresBus(dsn, node or secrets.token_hex(6), from_other_node, on_reconnect=relay.resync)
    relay.outbox = bus.send
    progress.shared = True
    for throttle in throttles:
        throttle.announce = relay.publish
    bus.start()
    return bus
