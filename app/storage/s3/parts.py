"""The part files and request bodies of S3 multipart uploads (app/storage/s3/store.py
and the resumable engine's S3 partials).

A part gathers in a temp file under `<data dir>/uploads/.s3-parts/`, unlinked from
birth (O_TMPFILE, or a named file unlinked at once where that is missing), so the
directory stays empty and nothing of a part outlives the process. A part goes to S3
as a seekable body read from its file (`FileSlice`) or from memory (`PartReader`).
"""

from __future__ import annotations

import asyncio
import io
import os
import tempfile
from pathlib import Path
from typing import Any

from app.storage.errors import translate_os_error
from app.storage.store import Digest

# Where part files live under the data dir (unlinked from birth, so always empty).
PARTS = ".s3-parts"
IOV_MAX = 1024


class _Body(io.RawIOBase):
    """A part as a seekable request body of known length (botocore's payload hash and
    its retries seek back to 0; aiohttp streams a file-like body in 64 KiB reads)."""

    def __init__(self, length: int) -> None:
        super().__init__()
        self._length = length
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._length}
        self._position = max(0, base[whence] + offset)
        return self._position

    def __len__(self) -> int:
        return self._length


class PartReader(_Body):
    """A part held in memory (a resumable append's, app/resumable/partials/s3.py), read
    in pieces without copying it whole: given bytes-like bodies, aiohttp copies an
    8 MiB part twice more (a slice of the bytearray, then joined with the request
    headers)."""

    def __init__(self, data: bytearray) -> None:
        super().__init__(len(data))
        self._view = memoryview(data)

    def readinto(self, target: Any) -> int:
        piece = self._view[self._position : self._position + len(target)]
        target[: len(piece)] = piece
        self._position += len(piece)
        return len(piece)

    def read(self, size: int | None = -1) -> bytes:
        end = self._length if size is None or size < 0 else self._position + size
        piece = bytes(self._view[self._position : end])
        self._position += len(piece)
        return piece


class PartFile:
    """A temp file one part gathers in, unlinked from birth (nothing of it outlives
    the process, whatever way it ends). Written and read with pwritev/preadv at
    offsets, so a file is reused for the part after next without truncating it."""

    def __init__(self, directory: Path) -> None:
        if not directory.is_dir():  # `prepare` makes it; made here too if it went
            directory.mkdir(parents=True, exist_ok=True)
        try:
            self.fd = os.open(directory, os.O_TMPFILE | os.O_RDWR | os.O_CLOEXEC, 0o600)
        except OSError:
            # A filesystem without O_TMPFILE: a named file, unlinked at once.
            fd, name = tempfile.mkstemp(dir=directory, prefix="part-")
            os.unlink(name)
            self.fd = fd
        self.size = 0

    def append(self, pieces: list[bytes], digest: Digest | None) -> None:
        """Blocking (on a thread): the pieces after what the file holds, fed to the
        digest in the same pass."""
        offset = self.size
        views = [memoryview(piece) for piece in pieces]
        while views:
            batch = views[:IOV_MAX]
            written = os.pwritev(self.fd, batch, offset)
            offset += written
            while written:
                if written >= len(views[0]):
                    written -= len(views.pop(0))
                else:
                    views[0], written = views[0][written:], 0
        if digest is not None:
            for piece in pieces:
                digest.update(piece)
        self.size = offset

    def reader(self, length: int) -> FileSlice:
        return FileSlice(self.fd, length)

    def close(self) -> None:
        if self.fd >= 0:
            fd, self.fd = self.fd, -1
            os.close(fd)


class PartFiles:
    """The part files of one upload: a sent part's file is taken again for the part
    after next, so an upload has two at most; `close` ends them all."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._spare: PartFile | None = None
        self._all: list[PartFile] = []

    async def take(self) -> PartFile:
        if self._spare is not None:
            file, self._spare = self._spare, None
        else:
            try:
                file = await asyncio.to_thread(PartFile, self._directory)
            except OSError as exc:
                raise translate_os_error(exc) from exc
            self._all.append(file)
        file.size = 0
        return file

    def release(self, file: PartFile) -> None:
        """Its part is in S3: the file may gather another."""
        self._spare = file

    def close(self) -> None:
        self._spare = None
        files, self._all = self._all, []
        for file in files:
            file.close()


class FileSlice(_Body):
    """The first `length` bytes of a part file, read with pread at the body's position."""

    def __init__(self, fd: int, length: int) -> None:
        super().__init__(length)
        self._fd = fd

    def readinto(self, target: Any) -> int:
        want = min(len(target), self._length - self._position)
        if want <= 0:
            return 0
        got = os.preadv(self._fd, [memoryview(target)[:want]], self._position)
        self._position += got
        return got

    def read(self, size: int | None = -1) -> bytes:
        left = self._length - self._position
        want = left if size is None or size < 0 else min(size, left)
        if want <= 0:
            return b""
        piece = os.pread(self._fd, want, self._position)
        self._position += len(piece)
        return piece
