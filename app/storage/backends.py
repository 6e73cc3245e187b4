"""The store `--storage` names: the data dir's own (local) or an S3 bucket."""

from __future__ import annotations

from collections.abc import Callable

from app.catalog.protocol import Database
from app.config import Config
from app.resumable.partials import LocalPartials, Partials
from app.storage.local import LocalStore
from app.storage.partials import PartialFiles
from app.storage.store import Store


async def open_store(config: Config, *, min_free_bytes: int = 0) -> Store:
    """Ready to use (an S3 store has its client); `aclose()` when done."""
    if config.storage.kind == "s3":
        # Imported here: botocore and its S3 model cost ~30 MB of RSS that a server
        # on local storage never needs.
        from app.storage.s3 import S3Store

        assert config.s3_credentials is not None  # Config.load insists on them
        store = S3Store(
            config.storage,
            config.s3_credentials,
            endpoint_url=config.s3_endpoint_url,
            local_root=config.uploads_dir,
        )
        await store.start()
        return store
    return LocalStore(config.uploads_dir, min_free_bytes=min_free_bytes)


def open_partials(
    store: Store, db: Database, *, node: str = "", announce: Callable[[str], None] | None = None
) -> Partials:
    """Where unfinished resumable uploads keep their bytes: beside the blobs (local
    files), or as S3 multipart uploads recorded in the catalog (any node goes on;
    `node` names this one in leases, `announce` asks the others to end an append)."""
    if isinstance(store, LocalStore):
        return LocalPartials(PartialFiles(store), db)
    from app.resumable.s3_partials import S3Partials
    from app.storage.s3 import S3Store

    assert isinstance(store, S3Store)
    if announce is None:
        return S3Partials(store, db, node=node)
    return S3Partials(store, db, node=node, announce=announce)


def describe(config: Config) -> str:
    if config.storage.kind == "s3":
        where = config.s3_endpoint_url or "AWS"
        return f"s3://{config.storage.bucket}/{config.storage.prefix} at {where}"
    return f"{config.uploads_dir}"
