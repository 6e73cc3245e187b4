"""Free space on the data dir's filesystem: the floor uploads keep, the catalog's reserve.

Why a full disk trapped the user: SQLite in WAL mode appends every transaction's
pages to `stowage.db-wal`, and only rewinds to the start of that file after a
checkpoint (every ~1,000 pages). Until then even a DELETE makes the WAL file grow,
so on a disk at 100% the delete that would free space fails with SQLITE_FULL
("database or disk is full"). No PRAGMA fixes that: `journal_size_limit` only
truncates after a checkpoint, a rollback journal needs a fresh file per
transaction, and checkpointing to a zero-length WAL (TRUNCATE) makes every next
commit grow it again. Two measures instead:

- the floor (`--min-free-bytes`): uploads never take the last bytes, so in normal
  operation SQLite always has room for its commits and deletes;
- the reserve: a file of RESERVE_BYTES kept beside the catalog. When something
  outside Stowage fills the disk anyway, the next catalog write releases it first,
  so that write (a delete, above all) has room. It comes back once deletes have
  freed enough.
"""

from __future__ import annotations

import os
from pathlib import Path

GiB = 1024**3
MiB = 1024**2
# Default floor: this share of the filesystem, but never more than DEFAULT_FLOOR_CAP.
DEFAULT_FLOOR_SHARE = 0.05
DEFAULT_FLOOR_CAP = GiB
# A delete touches a few pages; 4 MiB also covers an autocheckpoint's WAL growth.
RESERVE_BYTES = 4 * MiB
# Below this much free space a catalog write may fail: release the reserve first.
RELEASE_BELOW_BYTES = 1 * MiB
RESERVE_NAME = "stowage.reserve"


def free_bytes(path: Path) -> int:
    """Bytes an unprivileged writer may still use on `path`'s filesystem."""
    stats = os.statvfs(path)
    return stats.f_bavail * stats.f_frsize


def _existing(path: Path) -> Path:
    while not path.exists() and path.parent != path:
        path = path.parent
    return path


def default_min_free(path: Path) -> int:
    """min(5% of the filesystem holding `path`, 1 GiB)."""
    stats = os.statvfs(_existing(path))
    return min(int(stats.f_blocks * stats.f_frsize * DEFAULT_FLOOR_SHARE), DEFAULT_FLOOR_CAP)


class CatalogReserve:
    """A file of RESERVE_BYTES beside the catalog, given up when the disk is full so
    that a catalog write (a delete) still has room (see the module doc)."""

    def __init__(self, data_dir: Path, *, min_free_bytes: int) -> None:
        self.path = data_dir / RESERVE_NAME
        self.data_dir = data_dir
        self.min_free_bytes = min_free_bytes
        self.held = False

    def keep(self) -> bool:
        """Create the reserve if it is missing and the floor stays free after it; True
        when it is in place. Disk work: call it off the event loop."""
        if self.held:
            return True
        try:
            if self.path.stat().st_size == RESERVE_BYTES:
                self.held = True
                return True
        except FileNotFoundError:
            pass
        if free_bytes(self.data_dir) < RESERVE_BYTES + self.min_free_bytes:
            return False
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                # Real blocks, not a sparse file: only then does removing it free space.
                os.posix_fallocate(fd, 0, RESERVE_BYTES)
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError:
            self.path.unlink(missing_ok=True)
            return False
        self.held = True
        return True

    def make_room(self) -> None:
        """Before a catalog write: on a (nearly) full disk, give the reserve up. One
        statvfs, microseconds, so it runs on the event loop."""
        if not self.held:
            return
        try:
            if free_bytes(self.data_dir) < RELEASE_BELOW_BYTES:
                self.path.unlink(missing_ok=True)
                self.held = False
        except OSError:
            pass  # then the write itself meets the trouble, and reports it
