"""Blobs on the local filesystem, named by opaque ids, written durably off the event loop.

Layout under the root: `.incoming/<id>.part` while a blob is being written,
`<id[:2]>/<id>` once committed. Client filenames never reach the filesystem.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import errno
import os
import re
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

# Each write call stays at 512 KiB: on these machines page-cache writes of 1 MiB
# or more ran several times slower than 256-512 KiB ones.
WRITE_PIECE_BYTES = 512 * 1024
# Bytes gathered before one hop to the writer thread: a hop per 256 KiB chunk
# halved upload throughput, so several chunks travel together.
HOP_BYTES = 4 * 1024 * 1024
# Start write-back every so often while bytes still arrive, so the fsync at the
# end has little left to do.
WRITEBACK_EVERY_BYTES = 32 * 1024 * 1024
STALE_INCOMING_SECONDS = 3600

BLOB_ID = re.compile(r"[A-Za-z0-9_-]{22}")
INCOMING = ".incoming"


class Digest(Protocol):
    def update(self, data: bytes, /) -> None: ...


def new_blob_id() -> str:
    """128 random bits, URL-safe, 22 characters."""
    return secrets.token_urlsafe(16)


def is_blob_id(text: str) -> bool:
    return BLOB_ID.fullmatch(text) is not None


def _load_sync_file_range() -> Callable[[int, int, int], None] | None:
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return None
    try:
        call = ctypes.CDLL(libc_name, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    call.argtypes = (ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint)
    sync_file_range_write = 2

    def start_writeback(fd: int, offset: int, length: int) -> None:
        call(fd, offset, length, sync_file_range_write)

    return start_writeback


_start_writeback = _load_sync_file_range()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _feed_digest(digest: Digest, batch: list[bytes]) -> None:
    for chunk in batch:
        digest.update(chunk)


def _write_all(fd: int, pieces: list[bytes | memoryview], total: int) -> None:
    """One writev of `pieces`; a short write (rare on files) finishes piece by piece."""
    done = os.writev(fd, pieces) if len(pieces) > 1 else os.write(fd, pieces[0])
    if done == total:
        return
    for piece in pieces:
        view = memoryview(piece)
        if done >= len(view):
            done -= len(view)
            continue
        view, done = view[done:], 0
        while view:
            view = view[os.write(fd, view) :]


class StorageFull(OSError):
    """The disk or quota is full: the upload could not be kept."""


def _translate(exc: OSError) -> OSError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return StorageFull(exc.errno, "no space left for uploads")
    return exc


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.incoming = root / INCOMING

    def prepare(self) -> int:
        """Create the layout and remove temp files a crash left behind; returns how many."""
        self.incoming.mkdir(parents=True, exist_ok=True)
        removed = 0
        cutoff = time.time() - STALE_INCOMING_SECONDS
        for leftover in self.incoming.glob("*.part"):
            try:
                if leftover.stat().st_mtime < cutoff:
                    leftover.unlink()
                    removed += 1
            except FileNotFoundError:
                pass
        return removed

    def path_of(self, blob_id: str) -> Path:
        if not is_blob_id(blob_id):
            raise ValueError("not a blob id")
        return self.root / blob_id[:2] / blob_id

    def incoming_files(self) -> list[Path]:
        return sorted(self.incoming.glob("*.part"))

    def stored_ids(self) -> list[str]:
        return sorted(p.name for p in self.root.glob("??/*") if p.is_file() and is_blob_id(p.name))

    async def create(self, digest: Digest | None = None) -> BlobWriter:
        blob_id = new_blob_id()
        temp_path = self.incoming / f"{blob_id}.part"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = await asyncio.to_thread(os.open, temp_path, flags, 0o600)
        except OSError as exc:
            raise _translate(exc) from exc
        return BlobWriter(self, blob_id, temp_path, fd, digest)

    async def remove(self, blob_ids: list[str]) -> None:
        def unlink_all() -> None:
            for blob_id in blob_ids:
                self.path_of(blob_id).unlink(missing_ok=True)

        await asyncio.to_thread(unlink_all)


class BlobWriter:
    """One blob being written. `write` buffers; worker threads do the disk I/O and hashing.

    At most one batch is on its way to disk while the next one gathers, so the
    network and the disk work at the same time and memory stays near 2 x HOP_BYTES.
    The digest, when given, is fed in a second worker thread, batch by batch in
    byte order, while the same batch is being written: sha256 costs about as much
    CPU as the write itself, so doing both in one thread halved the throughput.
    """

    def __init__(
        self,
        store: BlobStore,
        blob_id: str,
        temp_path: Path,
        fd: int,
        digest: Digest | None,
    ) -> None:
        self.store = store
        self.id = blob_id
        self.temp_path = temp_path
        self.size = 0
        self._fd = fd
        self._digest = digest
        self._batch: list[bytes] = []
        self._batch_bytes = 0
        self._in_flight: asyncio.Future[None] | None = None
        self._hashing: asyncio.Future[None] | None = None
        self._written = 0
        self._writeback_from = 0
        self._done = False

    async def write(self, chunk: bytes) -> None:
        if not chunk:
            return
        self._batch.append(chunk)
        self._batch_bytes += len(chunk)
        self.size += len(chunk)
        if self._batch_bytes >= HOP_BYTES:
            await self._hand_over()

    async def _hand_over(self) -> None:
        await self._settle()
        if not self._batch:
            return
        batch, self._batch, self._batch_bytes = self._batch, [], 0
        loop = asyncio.get_running_loop()
        self._in_flight = loop.run_in_executor(None, self._write_batch, batch)
        if self._digest is not None:
            self._hashing = loop.run_in_executor(None, _feed_digest, self._digest, batch)

    async def _settle(self) -> None:
        if self._hashing is not None:
            hashing, self._hashing = self._hashing, None
            try:
                await hashing
            except BaseException:
                if self._in_flight is not None:
                    in_flight, self._in_flight = self._in_flight, None
                    await asyncio.gather(in_flight, return_exceptions=True)
                raise
        if self._in_flight is not None:
            in_flight, self._in_flight = self._in_flight, None
            try:
                await in_flight
            except OSError as exc:
                raise _translate(exc) from exc

    def _write_batch(self, batch: list[bytes]) -> None:
        # No join: the chunks go out as they came, gathered by writev into calls of
        # at most WRITE_PIECE_BYTES (a chunk larger than that is sliced).
        pieces: list[bytes | memoryview] = []
        gathered = 0
        for chunk in batch:
            view = memoryview(chunk)
            while view:
                take = view[: WRITE_PIECE_BYTES - gathered]
                pieces.append(take)
                gathered += len(take)
                view = view[len(take) :]
                if gathered == WRITE_PIECE_BYTES:
                    _write_all(self._fd, pieces, gathered)
                    pieces, gathered = [], 0
        if pieces:
            _write_all(self._fd, pieces, gathered)
        self._written += sum(len(chunk) for chunk in batch)
        if (
            _start_writeback is not None
            and self._written - self._writeback_from >= WRITEBACK_EVERY_BYTES
        ):
            _start_writeback(self._fd, self._writeback_from, self._written - self._writeback_from)
            self._writeback_from = self._written

    async def flush(self) -> None:
        """Write out everything buffered so far (digest included)."""
        await self._hand_over()
        await self._settle()

    async def commit(self) -> Path:
        """Make the blob durable under its final name; only then does it exist."""
        await self._settle()
        # The last batch is hashed and written in the same hop as the fsync: a small
        # upload then costs two thread hops (open, seal) instead of three.
        tail, self._batch, self._batch_bytes = self._batch, [], 0
        final = self.store.path_of(self.id)

        def seal() -> None:
            if tail:
                if self._digest is not None:
                    _feed_digest(self._digest, tail)
                self._write_batch(tail)
            os.fsync(self._fd)
            os.close(self._fd)
            self._done = True
            shard_is_new = not final.parent.exists()
            final.parent.mkdir(exist_ok=True)
            os.rename(self.temp_path, final)
            _fsync_dir(final.parent)
            if shard_is_new:
                _fsync_dir(self.store.root)

        try:
            await asyncio.to_thread(seal)
        except OSError as exc:
            await self.discard()
            raise _translate(exc) from exc
        return final

    async def discard(self) -> None:
        """Forget the blob: close and remove the temp file. Safe to call twice."""
        self._batch = []
        if self._in_flight is not None or self._hashing is not None:
            try:
                await self._settle()
            except OSError:
                pass

        def drop() -> None:
            if not self._done:
                self._done = True
                os.close(self._fd)
            self.temp_path.unlink(missing_ok=True)

        await asyncio.shield(asyncio.to_thread(drop))
