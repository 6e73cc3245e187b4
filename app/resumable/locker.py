"""Who may append to an upload: one request at a time, and the newest wins.

A HEAD or PATCH that finds an append still reading its body (a client that lost
its network while we still hold its socket) ends that append at once (it keeps its
durable bytes) and goes on. The engine (app/resumable/uploads.py) asks a `Locker`:

- `hold(upload_id)`: the upload to this request alone, for as long as the context
  lasts; an append still reading it on this node is ended first;
- `busy(upload_id)`: whether a request on this node holds it (expiry leaves it);
- `let_go(upload_id)`: another node asks for the upload: an append still reading
  it here ends now;
- `settle_elsewhere(upload_id)`: before a HEAD or an append, an append still open
  on another node is asked to end, and waited for (a while);
- `forget_claims()`: at start, when no other process shares the catalog, what a
  process that died mid-append left claimed is stale.

Two implementations, chosen with the partial backends (app/resumable/backends.py):

- `InProcessLocker`: one asyncio.Lock per upload; on local storage one node holds
  the upload's bytes, so nothing crosses the process.
- `CatalogLeaseLocker`: the same in process, plus a lease in the catalog
  (`resumable_s3.appending_node`, `appending_until`) naming the node appending, for
  S3 storage where any node sharing the catalog and the bucket goes on with an
  upload. The S3 partials claim the lease when an append starts, renew it with every
  part number they take, and release it when the append is over
  (app/resumable/partials/s3.py); a node asked about an upload another node holds
  announces it on the cluster channel (app/cluster.py, TAKE_OVER), whose handler
  there is `let_go`. Offsets are recorded by compare-and-set, so a node that was not
  asked in time records nothing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Protocol

from app.catalog.protocol import Database

# A node's claim to be appending to an upload lasts this long unless renewed (every
# part renews it); a node asked about the upload waits for it at most this long.
LEASE_SECONDS = 60.0
TAKE_OVER_WAIT_SECONDS = 3.0


class Hold(Protocol):
    """One request's hold on an upload."""

    # True while the holder reads a request body: only then may a newer request (or
    # another node) end its append, by cancelling its task.
    reading: bool

    def taken_over(self, task: asyncio.Task[object]) -> bool:
        """Whether `task` was cancelled to let a newer request have the upload (then
        its append stops and keeps its bytes), not for any other reason."""
        ...


class Locker(Protocol):
    def hold(self, upload_id: str) -> AbstractAsyncContextManager[Hold]:
        """The upload to the calling task alone while the context lasts: an append
        still reading it on this node is ended first."""
        ...

    def busy(self, upload_id: str) -> bool:
        """Whether a request on this node holds the upload now."""
        ...

    def let_go(self, upload_id: str) -> None:
        """Another node was asked about this upload: an append to it still reading
        here ends now and records its bytes (as a newer request here would make it)."""
        ...

    async def settle_elsewhere(self, upload_id: str) -> None:
        """Before a HEAD or an append: an append to this upload still open on another
        node is asked to end and record its bytes, and waited for (a while)."""
        ...

    async def forget_claims(self) -> None:
        """At start, when no other process shares the catalog: whatever said an
        append was running (a process that died mid-append) is stale."""
        ...


@dataclass(slots=True, eq=False)
class _Slot:
    """In memory, per upload while a request holds it or waits for it: the lock, who
    holds it, and whether the holder is reading a body."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    holder: asyncio.Task[object] | None = None
    reading: bool = False
    ousted: set[asyncio.Task[object]] = field(default_factory=set)
    # Requests holding or waiting: the slot goes when the last one leaves.
    users: int = 0

    def taken_over(self, task: asyncio.Task[object]) -> bool:
        return task in self.ousted

    def end_reading(self) -> None:
        """The holder, if it is still reading a body, is cancelled (once)."""
        holder = self.holder
        if holder is not None and self.reading and not holder.done() and holder not in self.ousted:
            self.ousted.add(holder)
            holder.cancel()


class InProcessLocker:
    """Uploads held by the requests of this process (local storage: one node)."""

    def __init__(self) -> None:
        self._slots: dict[str, _Slot] = {}

    @asynccontextmanager
    async def hold(self, upload_id: str) -> AsyncIterator[_Slot]:
        slot = self._slots.setdefault(upload_id, _Slot())
        slot.end_reading()
        slot.users += 1
        try:
            async with slot.lock:
                me = asyncio.current_task()
                slot.holder = me
                try:
                    yield slot
                finally:
                    slot.holder = None
                    slot.reading = False
                    if me is not None:
                        slot.ousted.discard(me)
        finally:
            slot.users -= 1
            if slot.users == 0 and self._slots.get(upload_id) is slot:
                del self._slots[upload_id]

    def busy(self, upload_id: str) -> bool:
        slot = self._slots.get(upload_id)
        return slot is not None and slot.lock.locked()

    def let_go(self, upload_id: str) -> None:
        slot = self._slots.get(upload_id)
        if slot is not None:
            slot.end_reading()

    async def settle_elsewhere(self, upload_id: str) -> None:
        """Local files: one node, whose own requests take over in memory."""

    async def forget_claims(self) -> None:
        """Nothing outlives the process: appends are known in memory only."""


class CatalogLeaseLocker(InProcessLocker):
    """In process as `InProcessLocker`; across nodes, a lease in the catalog row of
    the upload's S3 multipart upload (`resumable_s3`) names the node appending."""

    def __init__(
        self,
        db: Database,
        *,
        node: str = "",
        announce: Callable[[str], None] = lambda upload_id: None,
    ) -> None:
        super().__init__()
        self.db = db
        # This node's name on the cluster channel, and how to ask the other nodes to
        # end their append to an upload (app/cluster.py, TAKE_OVER).
        self.node = node
        self.announce = announce

    async def settle_elsewhere(self, upload_id: str) -> None:
        """The lease (`appending_node`, `appending_until`) names another node whose
        append is still open: it is asked, on the cluster channel, to end it and
        record what it has; we wait until it has (the lease cleared), or gone
        stale, or TAKE_OVER_WAIT_SECONDS passed. Safe either way: offsets are
        recorded by compare-and-set, so a slow node's late append records nothing."""
        asked = False
        deadline = time.monotonic() + TAKE_OVER_WAIT_SECONDS
        while True:
            row = await self.db.fetch_one(
                "SELECT appending_node, appending_until FROM resumable_s3 WHERE upload_id = ?",
                (upload_id,),
            )
            if row is None or row[0] is None or row[0] == self.node:
                return
            if float(row[1] or 0) <= time.time() or time.monotonic() >= deadline:  # type: ignore[arg-type]
                return
            if not asked:
                self.announce(upload_id)
                asked = True
            await asyncio.sleep(0.05)

    async def claim(self, upload_id: str) -> None:
        """This node appends to the upload now (for LEASE_SECONDS, unless renewed)."""
        await self._lease(upload_id, self.node)

    async def release(self, upload_id: str) -> None:
        """The append is over: the lease goes, if it is still ours."""
        await self._lease(upload_id, None)

    async def _lease(self, upload_id: str, node: str | None) -> None:
        async with self.db.transaction() as conn:
            if node is None:
                await conn.execute(
                    "UPDATE resumable_s3 SET appending_node = NULL, appending_until = NULL"
                    " WHERE upload_id = ? AND appending_node = ?",
                    (upload_id, self.node),
                )
            else:
                await conn.execute(
                    "UPDATE resumable_s3 SET appending_node = ?, appending_until = ?"
                    " WHERE upload_id = ?",
                    (node, time.time() + LEASE_SECONDS, upload_id),
                )

    async def forget_claims(self) -> None:
        """Leases of a process that died mid-append (otherwise every request for its
        uploads would wait TAKE_OVER_WAIT_SECONDS until they ran out)."""
        async with self.db.transaction() as conn:
            await conn.execute(
                "UPDATE resumable_s3 SET appending_node = NULL, appending_until = NULL"
                " WHERE appending_node IS NOT NULL"
            )
