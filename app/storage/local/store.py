"""The local backend of the `Store` interface: blobs as files under the data dir
(app/storage/local/writer.py writes them), sent with `pread` on worker threads."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from stario import Writer

from app.storage.ids import is_blob_id
from app.storage.local.writer import INCOMING, BlobStore
from app.storage.store import THUMBNAILS

if TYPE_CHECKING:
    from app.storage.direct import Direct

# 1 MiB reads with the next one already in flight: level with stario.Files here
# (`python -m bench downloads`, 1 GiB: 1.5-3.5 GB/s, ratio 0.88-1.09 over many runs,
# median 1.0). 512 KiB to 4 MiB reads and 0 to 3 reads in flight all measured within
# that noise, from the page cache and from disk.
READ_BYTES = 1024 * 1024
OPEN_FLAGS = os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW


def _open_blob(path: str) -> tuple[int, int] | None:
    """(fd, size) of a committed blob, or None if it is gone. Caller closes the fd."""
    try:
        fd = os.open(path, OPEN_FLAGS)
    except FileNotFoundError:
        return None
    try:
        return fd, os.fstat(fd).st_size
    except BaseException:
        os.close(fd)
        raise


def _close_unclaimed(opened: asyncio.Future[tuple[int, int] | None]) -> None:
    if not opened.cancelled() and opened.exception() is None and (result := opened.result()):
        os.close(result[0])


async def open_off_loop(path: str) -> tuple[int, int] | None:
    """`_open_blob` on a worker thread; if we are cancelled meanwhile, the fd it opens
    is closed rather than leaked."""
    opened = asyncio.get_running_loop().run_in_executor(None, _open_blob, path)
    try:
        return await asyncio.shield(opened)
    except asyncio.CancelledError:
        opened.add_done_callback(_close_unclaimed)
        raise


async def send_bytes(w: Writer, fd: int, start: int, length: int) -> bool:
    """`length` bytes from `start`, one read always in flight on a worker thread while
    the previous one goes out; `drain()` holds us to the client's pace, so a slow
    reader costs at most two chunks of memory. True when every byte went out to a
    client that was still there (what a share link counts as a download)."""
    loop = asyncio.get_running_loop()
    offset, end = start, start + length

    def read_next() -> asyncio.Future[bytes]:
        return loop.run_in_executor(None, os.pread, fd, min(READ_BYTES, end - offset), offset)

    in_flight = read_next()
    try:
        while offset < end:
            # Shielded: cancelling us must not orphan a read still running on the fd.
            data = await asyncio.shield(in_flight)
            if not data:
                # The blob is shorter than its row says: never pad or pretend.
                w.abort()
                return False
            offset += len(data)
            if offset < end:
                in_flight = read_next()
            w.write(data)
            await w.drain()
            if w.closing:
                return False
        return True
    finally:
        if not in_flight.done():  # never let the caller close the fd under a read
            await asyncio.wait([in_flight])


class LocalBlob:
    """An open local blob: its descriptor, closed off the loop."""

    def __init__(self, fd: int, size: int) -> None:
        self.fd = fd
        self.size = size

    async def send(self, w: Writer, start: int, length: int) -> bool:
        return await send_bytes(w, self.fd, start, length)

    async def close(self) -> None:
        await asyncio.to_thread(os.close, self.fd)


class LocalStore(BlobStore):
    """Blobs in the data dir behind the `Store` interface."""

    kind = "local"

    async def open(self, blob_id: str) -> LocalBlob | None:
        opened = await open_off_loop(str(self.path_of(blob_id)))
        return None if opened is None else LocalBlob(*opened)

    def use_direct(self, direct: Direct) -> None:
        """Local blobs have no URL of their own: every byte goes through the node."""

    async def download_url(
        self, blob_id: str, *, content_type: str, content_disposition: str, cache_control: str
    ) -> str | None:
        return None

    @asynccontextmanager
    async def local_copy(self, blob_id: str) -> AsyncIterator[Path | None]:
        path = self.path_of(blob_id)
        yield path if await asyncio.to_thread(path.exists) else None

    def local_path(self, blob_id: str) -> Path:
        return self.path_of(blob_id)

    async def blob_sizes(self) -> dict[str, int]:
        def survey() -> dict[str, int]:
            found: dict[str, int] = {}
            for shard in self.root.iterdir():
                if shard.name in (INCOMING, THUMBNAILS) or not shard.is_dir():
                    continue
                for entry in os.scandir(shard):
                    if is_blob_id(entry.name) and entry.is_file(follow_symlinks=False):
                        found[entry.name] = entry.stat(follow_symlinks=False).st_size
            return found

        return await asyncio.to_thread(survey)

    async def aclose(self) -> None:
        await asyncio.to_thread(self.close)
