"""The bytes of resumable uploads while they are unfinished, one file per upload.

Layout: `uploads/.resumable/<upload id>`. An append writes at the upload's durable
offset (whatever a crash left beyond it is cut off first), in the blob store's
batches and threads, and is fsynced before its new offset is reported. A finished
upload's file is renamed into the blob store under a blob id, exactly where a
single-request upload's temp file would go.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Callable
from pathlib import Path

from app.storage.errors import translate_os_error
from app.storage.ids import UPLOAD_ID
from app.storage.local.writer import BlobStore, BlobWriter, _start_writeback, fsync_dir
from app.storage.store import Digest

RESUMABLE = ".resumable"
READ_BYTES = 1024 * 1024
# An append waits for an fsync at its end and at every checkpoint (64 MiB) within
# it. Write-back started every 8 MiB, not the blob store's 32 MiB, leaves that fsync
# little to do: per 256 MiB the appends' fsyncs waited 0.17 s (16 MiB appends, which
# never reached 32 MiB) and 0.14 s (128 MiB appends) before, 0.10 s and 0.03 s after.
APPEND_WRITEBACK_BYTES = 8 * 1024 * 1024


class AppendWriter(BlobWriter):
    """Bytes appended to an upload's file from `start`. `flush` makes them durable;
    the file stays where it is for the next append."""

    def __init__(self, store: BlobStore, path: Path, start: int, digest: Digest | None):
        super().__init__(store, "", path, digest)
        self.start = start
        # Write-back ranges are file offsets and this append's bytes begin at `start`
        # (counted from 0, an append at offset N asked for write-back of bytes already
        # durable, which did nothing).
        self._written = self._writeback_from = start

    def _write_batch(self, batch: list[bytes | memoryview]) -> None:
        super()._write_batch(batch)
        if (
            _start_writeback is not None
            and self._written - self._writeback_from >= APPEND_WRITEBACK_BYTES
        ):
            pending = self._written - self._writeback_from
            _start_writeback(self._open(), self._writeback_from, pending)
            self._writeback_from = self._written

    def _open(self) -> int:
        if self._fd is None:
            fd = os.open(self.temp_path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                # Bytes past the durable offset were never acknowledged (a crash, a
                # discarded append): they go before anything new is written.
                os.ftruncate(fd, self.start)
                os.lseek(fd, self.start, os.SEEK_SET)
            except BaseException:
                os.close(fd)
                raise
            self._fd = fd
        return self._fd

    async def checkpoint(self) -> int:
        """Make what has arrived so far durable mid-append (the file stays open);
        returns the bytes now durable from `start`."""
        return await self._sync(close=False)

    async def flush(self) -> int:
        """Write what is buffered, fsync, close; returns the bytes now durable from
        `start`. Runs to its end even when the caller is cancelled."""
        try:
            return await self._sync(close=True)
        except OSError:
            await self.close_quietly()
            raise

    async def _sync(self, *, close: bool) -> int:
        tail, self._batch, self._batch_bytes = self._batch, [], 0
        previous, self._work = self._work, []

        def sync() -> None:
            for pending in previous:
                pending.result()
            if self._digest is not None and tail:
                for chunk in tail:
                    self._digest.update(chunk)
            self._write_batch(tail)
            fd = self._open()
            os.fdatasync(fd)
            if close:
                self._closed = True
                os.close(fd)

        syncing = asyncio.wrap_future(self.store.executor.submit(sync))
        try:
            await asyncio.shield(syncing)
        except asyncio.CancelledError:
            await asyncio.wait({syncing})
            raise
        except OSError as exc:
            raise translate_os_error(exc) from exc
        return self.size

    async def close_quietly(self) -> None:
        """Close without keeping anything new (the caller truncates back)."""
        self._batch = []
        work, self._work = self._work, []

        def drop() -> None:
            for pending in work:
                try:
                    pending.result()
                except Exception:
                    pass
            if self._fd is not None and not self._closed:
                self._closed = True
                os.close(self._fd)

        await asyncio.shield(asyncio.to_thread(drop))


class PartialFiles:
    """Unfinished uploads' files beside the blob store, on its threads."""

    def __init__(self, store: BlobStore) -> None:
        self.store = store
        self.root = store.root / RESUMABLE

    def prepare(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)

    def path_of(self, upload_id: str) -> Path:
        if UPLOAD_ID.fullmatch(upload_id) is None:
            raise ValueError("not an upload id")
        return self.root / upload_id

    def appender(self, upload_id: str, start: int, digest: Digest | None) -> AppendWriter:
        return AppendWriter(self.store, self.path_of(upload_id), start, digest)

    async def _run[T](self, work: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.store.executor, work)

    async def create(self, upload_id: str) -> None:
        """An empty file, durably named, so an upload's state never names no file."""
        path = self.path_of(upload_id)

        def make() -> None:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            os.close(fd)
            fsync_dir(self.root)

        await self._run(make)

    async def truncate(self, upload_id: str, size: int) -> None:
        path = self.path_of(upload_id)

        def cut() -> None:
            fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
            try:
                os.ftruncate(fd, size)
                os.fdatasync(fd)
            finally:
                os.close(fd)

        await self._run(cut)

    async def remove(self, upload_ids: list[str]) -> None:
        def unlink_all() -> None:
            for upload_id in upload_ids:
                self.path_of(upload_id).unlink(missing_ok=True)

        await self._run(unlink_all)

    async def concatenate(self, upload_id: str, parts: list[tuple[str, int]]) -> hashlib._Hash:
        """Fill `upload_id`'s file with the first `size` bytes of each part, in order,
        in the kernel (copy_file_range), then fsync; returns the joined bytes' sha256,
        computed from the parts on a second thread while the kernel copies (both
        release the GIL, so the two passes take about as long as one)."""
        target = self.path_of(upload_id)
        sources = [(self.path_of(part), size) for part, size in parts]

        def digest_parts() -> hashlib._Hash:
            digest = hashlib.sha256()
            for source, size in sources:
                with open(source, "rb") as part:
                    left = size
                    while left:
                        block = part.read(min(left, READ_BYTES))
                        if not block:
                            raise OSError(f"{source.name} is shorter than its offset")
                        digest.update(block)
                        left -= len(block)
            return digest

        def join() -> None:
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
            try:
                for source, size in sources:
                    with open(source, "rb") as part:
                        left = size
                        while left:
                            done = os.copy_file_range(part.fileno(), fd, min(left, 1 << 30))
                            if done == 0:
                                raise OSError(f"{source.name} is shorter than its offset")
                            left -= done
                os.fsync(fd)
            finally:
                os.close(fd)
            fsync_dir(self.root)

        digesting = asyncio.ensure_future(self._run(digest_parts))
        joining = asyncio.ensure_future(self._run(join))
        # Both run to their end whatever happens (cancelled, a part short, the disk
        # full): only then is the output closed, and on failure it goes, for a disk
        # left full by half a copy refuses every account's uploads.
        both = asyncio.ensure_future(asyncio.wait({digesting, joining}))
        try:
            await asyncio.shield(both)
            joining.result()
            return digesting.result()
        except BaseException as exc:
            await asyncio.wait({both})
            for task in (digesting, joining):
                if not task.cancelled():
                    task.exception()  # seen: the first failure is the one raised
            await asyncio.shield(self._run(lambda: self._drop(target)))
            if isinstance(exc, OSError):
                raise translate_os_error(exc) from exc
            raise

    def _drop(self, path: Path) -> None:
        path.unlink(missing_ok=True)
        fsync_dir(self.root)

    async def adopt(self, upload_id: str, blob_id: str) -> None:
        """Move a finished upload's file into the blob store as `blob_id`, durably."""
        source = self.path_of(upload_id)
        final = self.store.path_of(blob_id)

        def move() -> None:
            shard_is_new = not final.parent.exists()
            final.parent.mkdir(exist_ok=True)
            os.rename(source, final)
            fsync_dir(final.parent)
            if shard_is_new:
                fsync_dir(self.store.root)
            fsync_dir(self.root)

        await self._run(move)

    def exists(self, upload_id: str) -> bool:
        return self.path_of(upload_id).exists()
