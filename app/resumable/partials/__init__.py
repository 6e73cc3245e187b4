"""Where an unfinished resumable upload's bytes wait, behind one interface, so the
rules in app/resumable/uploads.py never ask which store is behind them:

- `LocalPartials` (local.py): one file per upload beside the local blob store
  (app/storage/local/partials.py), renamed into the store when complete.
- `S3Partials` (s3.py): one S3 multipart upload per upload at the blob's own key,
  its parts and its last, short piece recorded in the catalog, so any node sharing
  the catalog and the bucket can go on with it.

Which of them a server uses is chosen with its locker (app/resumable/backends.py).

An append is an `Appender`: `write` the bytes, `checkpoint` (what could be recorded
so far) mid-way, `flush` at the end, `discard` back to what was last recorded when
the append is refused, then `record` the new offset. `record` is the only step that
changes the catalog, and it changes it in one transaction.
"""

from __future__ import annotations

import hashlib
from typing import Protocol

from app.resumable.store import UploadState
from app.storage.store import Digest


class Appender(Protocol):
    async def write(self, chunk: bytes | memoryview) -> None: ...

    async def checkpoint(self) -> int:
        """Bytes from the append's start that `record` may now say are stored (all
        fed to the digest)."""
        ...

    async def flush(self) -> int:
        """Every byte written, ready to record; returns how many (all fed to the digest)."""
        ...

    async def discard(self, kept: int) -> None:
        """The append is refused: back to `kept` bytes from its start (what the last
        checkpoint recorded)."""
        ...

    async def record(self, *, offset: int, length: int | None, expires_at: float) -> None:
        """The new durable offset, in one catalog transaction with whatever else makes
        it true. Raises `Superseded` when another request moved the upload meanwhile
        (then nothing of this append is recorded)."""
        ...

    async def close(self) -> None:
        """The append is over (recorded or not)."""
        ...


class Partials(Protocol):
    # The longest upload these partials can hold (S3: 10,000 parts), None: no limit.
    max_length: int | None

    def prepare(self) -> None: ...

    async def create(self, state: UploadState) -> None:
        """Room for a new upload's bytes, before its row is inserted."""
        ...

    async def appender(self, state: UploadState, digest: Digest | None) -> Appender:
        """An append at the upload's recorded offset; `digest` sees only new bytes."""
        ...

    async def holds(self, state: UploadState) -> bool:
        """Whether the unfinished upload's bytes are still here."""
        ...

    async def adopt(self, state: UploadState) -> None:
        """The complete upload's bytes become the blob `state.blob_id`. Safe to call
        again after it succeeded (a retried completion)."""
        ...

    async def sha256(self, state: UploadState) -> hashlib._Hash:
        """The adopted blob's sha256, read back (when no node saw every byte)."""
        ...

    async def read_head(self, state: UploadState, count: int) -> bytes:
        """The adopted blob's first bytes (for the type sniff)."""
        ...

    async def finished(self, state: UploadState) -> None:
        """The upload's file row exists: whatever was kept to finish it goes."""
        ...

    async def concatenate(self, state: UploadState, parts: list[UploadState]) -> hashlib._Hash:
        """tus final upload: the complete `parts`' bytes, in order, as `state`'s (ready
        for `adopt`); returns their sha256. The parts stay as they are (`consumed`
        removes them once the final's row exists); on failure nothing joined stays."""
        ...

    async def discard_joined(self, state: UploadState) -> None:
        """The final upload `concatenate` made has no row after all (its catalog
        step failed): its bytes go."""
        ...

    async def consumed(self, parts: list[UploadState]) -> None:
        """The parts were joined into a final whose row now exists: their bytes go."""
        ...

    async def remove(self, upload_ids: list[str]) -> None:
        """Unfinished uploads' bytes go (cancelled, expired, failed)."""
        ...

    async def remove_strays(self, known: set[str]) -> None:
        """Bytes of uploads that have no row (a crash between create and insert)."""
        ...
