"""One process owns a data dir: it holds an exclusive `flock` on DATA_DIR/stowage.lock
for as long as it serves.

Only the owner may assume that nothing is in flight (no upload between its blob's
rename and its row's commit), which is what lets start-up reclaim every blob without a
row and `stowage check --repair` do the same. The kernel drops the lock when the process
dies, `kill -9` included, so a crash never leaves the dir locked.
"""

from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path

LOCK_NAME = "stowage.lock"


class DataDirBusy(Exception):
    """Another process holds the data dir's lock; the message names the dir."""


class DataDirLock:
    """The lock on one data dir. Re-entrant within a process: `stowage serve` takes it
    before the server starts (so a second server stops with a clear line before it
    binds a port) and the app's bootstrap takes it again (tests start the bootstrap
    alone); the file is unlocked when the last holder releases it."""

    _held: dict[Path, tuple[int, int]] = {}  # lock path -> (fd, holders)
    _guard = threading.Lock()

    def __init__(self, path: Path) -> None:
        self.path = path
        self._released = False

    @classmethod
    def acquire(cls, data_dir: Path) -> DataDirLock:
        data_dir.mkdir(parents=True, exist_ok=True)
        path = (data_dir / LOCK_NAME).resolve()
        with cls._guard:
            if path in cls._held:
                fd, holders = cls._held[path]
                cls._held[path] = (fd, holders + 1)
                return cls(path)
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise DataDirBusy(
                    f"another stowage process is using the data dir {path.parent} (it holds {path})"
                ) from None
            # Who holds it, for a person looking at the file; the flock is the lock.
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            cls._held[path] = (fd, 1)
            return cls(path)

    @classmethod
    def is_held_elsewhere(cls, data_dir: Path) -> bool:
        """Whether another process owns `data_dir` now (a running server)."""
        path = (data_dir / LOCK_NAME).resolve()
        with cls._guard:
            if path in cls._held:
                return False
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)  # closing drops the probe's own shared lock
        return False

    def release(self) -> None:
        if self._released:
            return
        self._released = True
        with self._guard:
            fd, holders = self._held[self.path]
            if holders > 1:
                self._held[self.path] = (fd, holders - 1)
                return
            del self._held[self.path]
        os.close(fd)

    def __enter__(self) -> DataDirLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
