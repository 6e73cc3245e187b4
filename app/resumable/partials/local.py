"""Unfinished resumable uploads as local files beside the blob store
(app/storage/local/partials.py), on one node."""

from __future__ import annotations

import asyncio
import hashlib
import os

from app.catalog.protocol import Database
from app.resumable.partials import Appender
from app.resumable.store import UploadState, record_offset
from app.storage.ids import UPLOAD_ID
from app.storage.local.partials import AppendWriter, PartialFiles
from app.storage.store import Digest


class LocalPartials:
    """Unfinished uploads as local files (app/storage/local/partials.py)."""

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
        # One node holds these files, and it appends one request at a time (its
        # locker's `hold`): nothing else can have moved the offset.
        await record_offset(
            self.partials.db, self.upload_id, offset=offset, length=length, expires_at=expires_at
        )

    async def close(self) -> None:
        """Nothing held beyond the file, which `flush` closed."""
