"""Where a server's unfinished resumable uploads keep their bytes, and how their
appends are held, chosen together from the blob store in use."""

from __future__ import annotations

from collections.abc import Callable

from app.catalog.protocol import Database
from app.resumable.locker import CatalogLeaseLocker, InProcessLocker, Locker
from app.resumable.partials import Partials
from app.resumable.partials.local import LocalPartials
from app.storage.local.partials import PartialFiles
from app.storage.local.store import LocalStore
from app.storage.store import Store


def open_backends(
    store: Store, db: Database, *, node: str = "", announce: Callable[[str], None] | None = None
) -> tuple[Partials, Locker]:
    """Beside the blobs (local files, held in this process), or as S3 multipart
    uploads recorded in the catalog (any node goes on; a lease in the catalog names
    the node appending: `node` names this one, `announce` asks the others to end an
    append)."""
    if isinstance(store, LocalStore):
        return LocalPartials(PartialFiles(store), db), InProcessLocker()
    # Imported here: botocore is loaded only when S3 is configured.
    from app.resumable.partials.s3 import S3Partials
    from app.storage.s3.store import S3Store

    assert isinstance(store, S3Store)
    if announce is None:
        lease = CatalogLeaseLocker(db, node=node)
    else:
        lease = CatalogLeaseLocker(db, node=node, announce=announce)
    return S3Partials(store, db, lease=lease), lease
