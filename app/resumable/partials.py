"""Where an unfinished resumable upload's bytes wait, behind one interface, so the
rules in app/resumable/uploads.py never ask which store is behind them:

- `LocalPartials`: one file per upload beside the local blob store
  (app/storage/partials.py), renamed into the store when complete.
- `S3Partials` (app/resumable/s3_partials.py): one S3 multipart upload per upload at
  the blob's own key, its parts and its last, short piece recorded in the catalog,
  so any node sharing the catalog and the bucket can go on with it.

An append is an `Appender`: `write` the bytes, `checkpoint` (what could be recorded
so far) mid-way, `flush` at the end, `discard` back to what was last recorded when
the append is refused, then `record` the new offset. `record` is the only step that
changes the catalog, and it changes it in one transaction.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from typing import Protocol

from app.catalog.protocol import Database
from app.resumable.store import UploadState, record_offset
from app.storage.blobs import Digest
from app.storage.partials import UPLOAD_ID, AppendWriter, PartialFiles


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

    async def settle_elsewhere(self, upload_id: str) -> None:
        """Before a HEAD or an append: an append to this upload still open on another
        node is asked to end and record its bytes, and waited for (a while)."""
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

    async def forget_appends(self) -> None:
        """At start, when no other process shares the catalog: whatever said an
        append was running (a process that died mid-append) is stale."""
        ...


class LocalPartials:
    """Unfinished uploads as local files (app/storage/partials.py)."""

    max_length: int | None = None

    def __init__(self, files: PartialFiles, db: Database) -> None:
        self.files = files
        self.db = db

    def prepare(self) -> None:
        self.files.prepare()

    async def create(self, state: UploadState) -> None:
        await self.files.create(state.id)

    async def appender(self, state: UploadState, digest: Digest | None) -> Appender:
        return _LocalAppender(self, state.id, self.files.appender(state.id, state.offset, digest))

    async def holds(self, state: UploadState) -> bool:
        return self.files.exists(state.id)

    async def settle_elsewhere(self, upload_id: str) -> None:
        """Local files: one node, whose own requests take over in memory."""

    async def adopt(self, state: UploadState) -> None:
        final = self.files.store.path_of(state.blob_id)
        if not self.files.exists(state.id) and await asyncio.to_thread(final.exists):
            return  # adopted already
        await self.files.adopt(state.id, state.blob_id)

    async def sha256(self, state: UploadState) -> hashlib._Hash:
        path = self.files.store.path_of(state.blob_id)

        def digest() -> hashlib._Hash:
            with open(path, "rb") as f:
                return hashlib.file_digest(f, "sha256")

        return await asyncio.to_thread(digest)

    async def read_head(self, state: UploadState, count: int) -> bytes:
        path = self.files.store.path_of(state.blob_id)

        def head() -> bytes:
            with open(path, "rb") as f:
                return f.read(count)

        return await asyncio.to_thread(head)

    async def finished(self, state: UploadState) -> None:
        """Nothing is kept beside the blob once the file was renamed."""

    async def concatenate(self, state: UploadState, parts: list[UploadState]) -> hashlib._Hash:
        return await self.files.concatenate(state.id, [(p.id, p.length or 0) for p in parts])

    async def discard_joined(self, state: UploadState) -> None:
        await self.files.remove([state.id])

    async def consumed(self, parts: list[UploadState]) -> None:
        await self.files.remove([part.id for part in parts])

    async def remove(self, upload_ids: list[str]) -> None:
        await self.files.remove(upload_ids)

    async def forget_appends(self) -> None:
        """Nothing outlives the process: appends are known in memory only."""

    async def remove_strays(self, known: set[str]) -> None:
        root = self.files.root
        strays = [
            name
            for name in await asyncio.to_thread(os.listdir, root)
            if name not in known and UPLOAD_ID.fullmatch(name)
        ]
        await self.files.remove(strays)


class _LocalAppender:
    def __init__(self, partials: LocalPartials, upload_id: str, writer: AppendWriter) -> None:
        self.partials = partials
        self.upload_id = upload_id
        self.writer = writer

    async def write(self, chunk: bytes | memoryview) -> None:
        await self.writer.write(chunk)

    async def checkpoint(self) -> int:
        return await self.writer.checkpoint()

    async def flush(self) -> int:
        return await self.writer.flush()

    async def discard(self, kept: int) -> None:
        await self.partials.files.truncate(self.upload_id, self.writer.start + kept)

    async def record(self, *, offset: int, length: int | None, expires_at: float) -> None:
        # One node holds these files, and it appends one request at a time (the
        # uploads' `_hold`): nothing else can have moved the offset.
        await record_offset(
            self.partials.db, self.upload_id, offset=offset, length=length, expires_at=expires_at
        )

    async def close(self) -> None:
        """Nothing held beyond the file, which `flush` closed."""
