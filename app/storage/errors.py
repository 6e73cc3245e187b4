"""What storing or reading bytes can fail with, whatever the backend: the store is
unreachable (503, try later), or there is no room (the disk, the quota, or the
free-space floor that keeps room for the catalog)."""

from __future__ import annotations

import errno


class StoreUnavailable(OSError):
    """The object store could not be reached or refused a request (not the client's
    fault, and not a full disk): the caller answers 503 and may try again later."""


class StorageFull(OSError):
    """The disk or quota is full: the upload could not be kept."""


class LowOnSpace(StorageFull):
    """Storing these bytes would leave less free than the floor (`--min-free-bytes`)
    that keeps room for the catalog's commits and deletes."""

    def __init__(self, free: int, floor: int) -> None:
        super().__init__(errno.ENOSPC, "below the free-space floor")
        self.free = free
        self.floor = floor


def translate_os_error(exc: OSError) -> OSError:
    """A full disk or quota (ENOSPC, EDQUOT) as StorageFull; any other error as it is."""
    if isinstance(exc, StorageFull):
        return exc
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return StorageFull(exc.errno, "no space left for uploads")
    return exc
