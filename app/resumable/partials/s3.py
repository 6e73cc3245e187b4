"""Unfinished resumable uploads on S3 storage, resumable on any node.

An upload is one S3 multipart upload, begun at creation at the blob's own key (so
completing it is the whole of finishing: no copy). An append's bytes are gathered
into parts of the store's part size (8 MiB; S3 refuses parts under 5 MiB but the
last), one part on the wire while the next gathers, as a single-request upload's
are. What is left at the end of an append, less than a part (the tail), is not
lost and not sent as a part: it is stored in the catalog, in the same transaction
as the parts sent and the upload's new offset, so

    offset = sum(recorded parts' sizes) + len(tail)

holds at every commit, and the next append, on this node or another, starts with
the tail. Completion sends the tail as the last part and completes the multipart
upload with the recorded parts.

Two nodes appending at once (a request that lost its client still reading on A
while the client goes on through B): part numbers come from a catalog counter, so
they never collide, and the offset is recorded by compare-and-set, so the later
of the two finds it moved and records nothing (`Superseded`); its parts are never
listed, and S3 drops unlisted parts when the upload completes.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time
from typing import Any

from botocore.exceptions import ClientError

from app.catalog.protocol import Database
from app.ingest.pipeline import IngestError
from app.resumable.locker import LEASE_SECONDS, CatalogLeaseLocker
from app.resumable.store import Superseded, UploadState, record_offset_if
from app.storage.errors import translate_os_error
from app.storage.s3.parts import PartFile, PartFiles, PartReader
from app.storage.s3.store import (
    READ_BYTES,
    SPOOL_BYTES,
    TRANSPORT_ERRORS,
    S3NewBlob,
    S3Store,
    _unavailable,
    no_such_upload,
)
from app.storage.store import Digest

# S3's own limit on the parts of one multipart upload.
MAX_PARTS = 10_000
# A catalog row of an upload's multipart upload without the upload's row is a
# leftover (a crash between the two inserts) once older than this.
STRAY_GRACE_SECONDS = 3600.0
HASH_BYTES = 8 * 1024 * 1024


def _checksum_declared(state: UploadState) -> dict[str, str]:
    """A direct session whose one part carries a signed SHA-256 (app/resumable/direct.py)
    declares the algorithm when its multipart upload begins: AWS refuses a part checksum
    the upload did not declare ("Checksum Type mismatch")."""
    if state.kind != "direct" or not state.metadata:
        return {}
    return (
        {"ChecksumAlgorithm": "SHA256"} if json.loads(state.metadata).get("part_checksum") else {}
    )


class S3Partials:
    def __init__(
        self,
        store: S3Store,
        db: Database,
        *,
        lease: CatalogLeaseLocker | None = None,
    ) -> None:
        self.store = store
        self.db = db
        # Which node appends to an upload: claimed with each append, renewed with
        # each part number, released when the append is over (app/resumable/locker.py).
        self.lease = lease if lease is not None else CatalogLeaseLocker(db)
        self.part_bytes = store.part_bytes
        # Every part but the last is exactly one part size (the tail carries the
        # rest), so this much fits whatever other nodes wasted of the numbers.
        self.max_length: int | None = (MAX_PARTS - 100) * self.part_bytes

    def prepare(self) -> None:
        """Nothing local."""

    # ---- the catalog's side ------------------------------------------------------

    async def _row(self, upload_id: str) -> tuple[str, str] | None:
        row = await self.db.fetch_one(
            "SELECT blob_id, multipart_id FROM resumable_s3 WHERE upload_id = ?", (upload_id,)
        )
        return None if row is None else (str(row[0]), str(row[1]))

    async def multipart_of(self, upload_id: str) -> tuple[str, str] | None:
        """(blob id, multipart upload id) of the upload, None once it is gone (a
        direct upload session's bytes go straight to that multipart upload)."""
        return await self._row(upload_id)

    async def _tail(self, upload_id: str) -> tuple[bytes, int]:
        """The tail's bytes, and the number its next piece takes."""
        rows = await self.db.fetch_all(
            "SELECT piece, data FROM resumable_tails WHERE upload_id = ? ORDER BY piece",
            (upload_id,),
        )
        tail = b"".join(bytes(data) for _, data in rows)  # type: ignore[call-overload]
        return tail, (int(rows[-1][0]) + 1 if rows else 0)  # type: ignore[call-overload]

    async def take_part_number(self, upload_id: str) -> int:
        """The next part number (the lease of this node's append renewed with it)."""
        async with self.db.transaction() as conn:
            await conn.execute(
                "UPDATE resumable_s3 SET next_part = next_part + 1, appending_until ="
                " CASE WHEN appending_node = ? THEN ? ELSE appending_until END"
                " WHERE upload_id = ?",
                (self.lease.node, time.time() + LEASE_SECONDS, upload_id),
            )
            cursor = await conn.execute(
                "SELECT next_part FROM resumable_s3 WHERE upload_id = ?", (upload_id,)
            )
            row = await cursor.fetchone()
        if row is None:
            raise IngestError(404, "no such upload (it expired or was cancelled)")
        number = int(row[0]) - 1
        if number > MAX_PARTS:
            raise IngestError(
                413, f"the upload needs more than S3's {MAX_PARTS} parts: upload it in one request"
            )
        return number

    # ---- Partials ----------------------------------------------------------------

    async def create(self, state: UploadState) -> None:
        client, bucket = self.store.client, self.store.bucket
        key = self.store.key_of(state.blob_id)
        try:
            started = await client.create_multipart_upload(
                Bucket=bucket, Key=key, **_checksum_declared(state)
            )
        except TRANSPORT_ERRORS as exc:
            raise _unavailable(exc, "start storing an upload") from exc
        try:
            async with self.db.transaction() as conn:
                await conn.execute(
                    "INSERT INTO resumable_s3 (upload_id, blob_id, multipart_id, next_part,"
                    " created_at) VALUES (?, ?, ?, 1, ?)",
                    (state.id, state.blob_id, started["UploadId"], time.time()),
                )
        except BaseException:
            await self.store.abort_upload(key, started["UploadId"])
            raise

    async def appender(self, state: UploadState, digest: Digest | None) -> S3Appender:
        row = await self._row(state.id)
        if row is None:
            raise IngestError(404, "no such upload (it expired or was cancelled)")
        await self.lease.claim(state.id)
        blob_id, multipart_id = row
        tail, piece = await self._tail(state.id)
        return S3Appender(
            self, state, self.store.key_of(blob_id), multipart_id, tail, piece, digest
        )

    async def holds(self, state: UploadState) -> bool:
        return await self._row(state.id) is not None

    async def adopt(self, state: UploadState) -> None:
        assert state.length is not None
        row = await self._row(state.id)
        if row is None:
            return  # finished already (or made whole by `concatenate`)
        blob_id, multipart_id = row
        tail, _ = await self._tail(state.id)
        key = self.store.key_of(blob_id)
        recorded = await self.db.fetch_all(
            "SELECT part_number, etag, size FROM resumable_parts WHERE upload_id = ?"
            " ORDER BY part_number",
            (state.id,),
        )
        parts = [{"PartNumber": int(n), "ETag": str(etag)} for n, etag, _ in recorded]  # type: ignore[call-overload]
        stored = sum(int(size) for _, _, size in recorded) + len(tail)  # type: ignore[call-overload]
        if stored != state.length:
            raise IngestError(
                500, f"the upload's parts hold {stored} bytes, not its {state.length}"
            )
        client, bucket = self.store.client, self.store.bucket
        try:
            if state.length == 0:
                # No part at all: a multipart upload needs one; an empty PUT is simpler.
                await client.put_object(Bucket=bucket, Key=key, Body=b"", ContentLength=0)
                await self.store.abort_upload(key, multipart_id)
                return
            if tail:
                number = await self.take_part_number(state.id)
                answer = await client.upload_part(
                    Bucket=bucket, Key=key, UploadId=multipart_id, PartNumber=number,
                    Body=PartReader(bytearray(tail)), ContentLength=len(tail),
                )  # fmt: skip
                parts.append({"PartNumber": number, "ETag": answer["ETag"]})
            await client.complete_multipart_upload(
                Bucket=bucket, Key=key, UploadId=multipart_id, MultipartUpload={"Parts": parts}
            )
        except ClientError as exc:
            if no_such_upload(exc) and await self.store.object_size(key) == state.length:
                return  # completed by an earlier try whose answer was lost
            raise _unavailable(exc, "finish storing an upload") from exc
        except TRANSPORT_ERRORS as exc:
            raise _unavailable(exc, "finish storing an upload") from exc

    async def _read(self, state: UploadState, count: int | None) -> Any:
        key = self.store.key_of(state.blob_id)
        asked = {} if count is None else {"Range": f"bytes=0-{count - 1}"}
        try:
            answer = await self.store.client.get_object(Bucket=self.store.bucket, Key=key, **asked)
        except TRANSPORT_ERRORS as exc:
            raise _unavailable(exc, "read a file") from exc
        return answer["Body"]

    async def sha256(self, state: UploadState) -> hashlib._Hash:
        """Streamed from the object: gathered into 8 MiB pieces, hashed on a thread."""
        digest = hashlib.sha256()
        if not state.length:
            return digest
        body = await self._read(state, None)
        gathered = bytearray()
        try:
            async with body:
                while data := await body.read(READ_BYTES):
                    gathered += data
                    if len(gathered) >= HASH_BYTES:
                        await asyncio.to_thread(digest.update, gathered)
                        gathered = bytearray()
        except TRANSPORT_ERRORS as exc:
            raise _unavailable(exc, "read a file") from exc
        digest.update(gathered)
        return digest

    async def read_head(self, state: UploadState, count: int) -> bytes:
        if not state.length:
            return b""
        body = await self._read(state, min(count, state.length))
        try:
            async with body:
                return bytes(await body.read())
        except TRANSPORT_ERRORS as exc:
            raise _unavailable(exc, "read a file") from exc

    async def finished(self, state: UploadState) -> None:
        await self._forget([state.id])

    async def _forget(self, upload_ids: list[str]) -> None:
        async with self.db.transaction() as conn:
            rows = [(upload_id,) for upload_id in upload_ids]
            await conn.executemany("DELETE FROM resumable_parts WHERE upload_id = ?", rows)
            await conn.executemany("DELETE FROM resumable_tails WHERE upload_id = ?", rows)
            await conn.executemany("DELETE FROM resumable_s3 WHERE upload_id = ?", rows)

    async def concatenate(self, state: UploadState, parts: list[UploadState]) -> hashlib._Hash:
        """Each part is completed as an object of its own, then all are streamed, in
        order, into the new blob (S3 cannot join objects in place: a part copy
        needs 5 MiB, and partial uploads may be smaller). The parts' objects stay
        until `consumed` (a completed part is read again by a later final)."""
        digest = hashlib.sha256()
        joined = S3NewBlob(self.store, state.blob_id, digest)
        try:
            for part in parts:
                await self.adopt(part)
                if not part.length:
                    continue
                body = await self._read(part, None)
                async with body:
                    while data := await body.read(READ_BYTES):
                        await joined.write(data)
            await joined.commit()
        except TRANSPORT_ERRORS as exc:
            await joined.discard()
            raise _unavailable(exc, "join the partial uploads") from exc
        except BaseException:
            await joined.discard()
            raise
        return digest

    async def discard_joined(self, state: UploadState) -> None:
        await self.store.remove([state.blob_id])

    async def consumed(self, parts: list[UploadState]) -> None:
        await self.store.remove([part.blob_id for part in parts])
        await self._forget([part.id for part in parts])

    async def remove(self, upload_ids: list[str]) -> None:
        for upload_id in upload_ids:
            row = await self._row(upload_id)
            if row is not None:
                blob_id, multipart_id = row
                await self.store.abort_upload(self.store.key_of(blob_id), multipart_id)
        await self._forget(upload_ids)

    async def remove_strays(self, known: set[str]) -> None:
        rows = await self.db.fetch_all(
            "SELECT upload_id FROM resumable_s3 WHERE created_at < ? AND upload_id NOT IN"
            " (SELECT id FROM resumable_uploads WHERE file_id IS NULL)",
            (time.time() - STRAY_GRACE_SECONDS,),
        )
        strays = [str(row[0]) for row in rows if row[0] not in known]
        if strays:
            await self.remove(strays)


class S3Appender:
    """One append's bytes as parts of the upload's multipart upload (see the module's
    docstring). The first part starts with the recorded tail. As in a single-request
    upload (S3NewBlob), bytes gather in a part file with about SPOOL_BYTES held in
    memory at a time, fed to the digest in order as they reach the file; a full part
    goes up from its file, each after the one before, while the next gathers in a
    second file."""

    def __init__(
        self,
        partials: S3Partials,
        state: UploadState,
        key: str,
        multipart_id: str,
        tail: bytes,
        next_piece: int,
        digest: Digest | None,
    ) -> None:
        self.partials = partials
        self.upload_id = state.id
        self.key = key
        self.multipart_id = multipart_id
        self.start = state.offset
        self._recorded_offset = state.offset
        # The recorded tail, until it goes first into the first part file (unhashed:
        # the append that stored it fed the digest).
        self._tail = tail
        self._old_tail = len(tail)
        self._next_piece = next_piece
        # Whether a part took the recorded tail (then the tail is written anew).
        self._tail_sent = False
        self._digest = digest
        # Bytes of the part gathering (the tail's first), held and in its file together.
        self._fill = len(tail)
        self._held: list[bytes] = []
        self._held_bytes = 0
        self._file: PartFile | None = None
        self._part_files = PartFiles(partials.store.parts_dir)
        # Where the parts sent so far end, in the upload's bytes.
        self._parts_end = state.offset - len(tail)
        self._sent: list[tuple[int, str, int]] = []  # (number, etag, size), not recorded
        self._chain: asyncio.Task[None] | None = None
        self.received = 0

    async def write(self, chunk: bytes | memoryview) -> None:
        self.received += len(chunk)
        view = memoryview(chunk).cast("B")
        size = self.partials.part_bytes
        if self._fill >= size:
            await self._cut()
        while view:
            piece = view[: size - self._fill]
            if isinstance(chunk, bytes) and len(piece) == len(chunk):
                self._held.append(chunk)  # immutable: kept as it is
            else:
                self._held.append(bytes(piece))  # a slice, or a view of a reused buffer
            self._held_bytes += len(piece)
            self._fill += len(piece)
            view = view[len(piece) :]
            if self._fill >= size:
                await self._cut()
            elif self._held_bytes >= SPOOL_BYTES:
                await self._spool()

    async def _spool(self) -> None:
        """What is held goes to the end of the part's file (and to the digest)."""
        tail, held = self._tail, self._held
        if not tail and not held:
            return
        if self._file is None:
            self._file = await self._part_files.take()
        file, digest = self._file, self._digest
        self._tail, self._held, self._held_bytes = b"", [], 0

        def spool() -> None:
            if tail:
                file.append([tail], None)
            file.append(held, digest)

        try:
            await asyncio.to_thread(spool)
        except OSError as exc:
            raise translate_os_error(exc) from exc

    async def _cut(self) -> None:
        """The part gathered goes up, after the one before it."""
        await self._spool()
        file, length = self._file, self._fill
        assert file is not None
        self._file, self._fill = None, 0
        previous = self._chain
        # Started before waiting, so a request ended meanwhile (taken over) never
        # loses the part it had gathered.
        self._chain = asyncio.create_task(self._send(previous, file, length))
        if previous is not None:
            await asyncio.shield(previous)

    async def _send(self, previous: asyncio.Task[None] | None, file: PartFile, length: int):
        if previous is not None:
            await previous
        number = await self.partials.take_part_number(self.upload_id)
        store = self.partials.store
        try:
            answer = await store.client.upload_part(
                Bucket=store.bucket, Key=self.key, UploadId=self.multipart_id,
                PartNumber=number, Body=file.reader(length), ContentLength=length,
            )  # fmt: skip
        except TRANSPORT_ERRORS as exc:
            raise _unavailable(exc, "store part of an upload") from exc
        self._sent.append((number, str(answer["ETag"]), length))
        self._tail_sent = True
        self._parts_end += length
        self._part_files.release(file)

    async def _settle(self) -> None:
        if self._chain is not None:
            await asyncio.shield(self._chain)

    async def checkpoint(self) -> int:
        await self._settle()
        return max(0, self._parts_end - self.start)

    async def flush(self) -> int:
        await self._settle()
        await self._spool()
        return self.received

    async def discard(self, kept: int) -> None:
        if self._chain is not None:
            await asyncio.gather(self._chain, return_exceptions=True)
        # Sent but unrecorded parts stay unlisted: S3 drops them at completion.
        self._sent.clear()
        self._held, self._held_bytes = [], 0

    async def _gathered(self, start: int) -> bytes:
        """Bytes `start` to the end of the part gathering (all in its file by now)."""
        assert not self._held
        count = self._fill - start
        if count <= 0 or self._file is None:
            return b""
        fd = self._file.fd
        return await asyncio.to_thread(os.pread, fd, count, start)

    async def record(self, *, offset: int, length: int | None, expires_at: float) -> None:
        # What the tail becomes: None unchanged, else (whether it is written anew,
        # the bytes to add).
        tail: tuple[bool, bytes] | None
        if offset == self._recorded_offset and not self._sent:
            tail = None  # nothing new (a refused append): the tail stays as it is
        elif offset == self._parts_end:
            tail = (True, b"")  # a checkpoint: the parts so far; the rest is not durable yet
        elif offset == self._parts_end + self._fill:
            # All of the part gathering when a part took the old tail; else only the
            # bytes after the old tail, added as a piece of its own.
            anew = self._tail_sent
            tail = (anew, await self._gathered(0 if anew else self._old_tail))
        else:
            raise AssertionError(f"offset {offset} is not where the parts end")
        async with self.partials.db.transaction() as conn:
            moved = await record_offset_if(
                conn, self.upload_id, was=self._recorded_offset, offset=offset, length=length,
                expires_at=expires_at,
            )  # fmt: skip
            if not moved:
                raise Superseded
            if self._sent:
                await conn.executemany(
                    "INSERT INTO resumable_parts (upload_id, part_number, etag, size)"
                    " VALUES (?, ?, ?, ?)",
                    [(self.upload_id, *part) for part in self._sent],
                )
            if tail is not None:
                anew, data = tail
                if anew:
                    await conn.execute(
                        "DELETE FROM resumable_tails WHERE upload_id = ?", (self.upload_id,)
                    )
                if data:
                    await conn.execute(
                        "INSERT INTO resumable_tails (upload_id, piece, data) VALUES (?, ?, ?)",
                        (self.upload_id, self._next_piece, data),
                    )
        self._recorded_offset = offset
        self._sent.clear()
        if tail is not None:
            anew, data = tail
            self._next_piece += 1
            self._old_tail = len(data) if anew else self._old_tail + len(data)
            self._tail_sent = False

    async def close(self) -> None:
        """The lease goes (if it is still ours): another node need not wait. A
        catalog that fails here leaves it to run out by itself. The part files go once
        no part is on the wire from them."""
        if self._chain is not None and not self._chain.done():
            self._chain.cancel()  # an append ended by an error: its parts are unrecorded
            await asyncio.gather(self._chain, return_exceptions=True)
        self._file = None
        self._part_files.close()
        try:
            await self.partials.lease.release(self.upload_id)
        except Exception:
            pass
