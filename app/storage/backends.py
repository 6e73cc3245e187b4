"""The store `--storage` names: the data dir's own (local) or an S3 bucket."""

from __future__ import annotations

import asyncio

from app.config import Config
from app.storage.direct import PROXIED, Direct
from app.storage.local.store import LocalStore
from app.storage.store import Store


async def open_store(config: Config, *, min_free_bytes: int = 0) -> Store:
    """Ready to use (an S3 store has its client); `aclose()` when done."""
    if config.storage.kind == "s3":
        # Imported here: botocore and its S3 model cost ~30 MB of RSS that a server
        # on local storage never needs.
        from app.storage.s3.store import S3Store

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


def describe(config: Config) -> str:
    if config.storage.kind == "s3":
        where = config.s3_endpoint_url or "AWS"
        return f"s3://{config.storage.bucket}/{config.storage.prefix} at {where}"
    return f"{config.uploads_dir}"


async def open_direct(config: Config, store: Store) -> Direct:
    """What this node sends by pre-signed URL, given `--s3-direct` and the bucket.

    Start-up checks of the bucket's side (app/storage/s3/bucket_setup.py: its CORS
    rules for the page's origins, set if they fall short and the store lets us; and
    whether GET URLs' response overrides are honoured) narrow what the setting asks
    for; each decision is said in `notes`. A store that does not answer within
    START_CHECK_SECONDS leaves every byte going through the node until the next start."""
    if store.kind != "s3" or config.s3_direct == "none":
        return PROXIED
    # Imported here, like the store: botocore only on S3 nodes.
    from app.storage.s3.bucket_setup import START_CHECK_SECONDS, BucketSetup, page_origins
    from app.storage.s3.direct import DirectBucket
    from app.storage.s3.store import S3Store

    assert isinstance(store, S3Store)
    # URLs for clients name the store as they reach it (--s3-public-endpoint-url).
    public = config.s3_public_endpoint_url
    signer = None if public is None else await store.signing_client(public)
    bucket = DirectBucket(store, signer=signer)
    setup = BucketSetup(store)
    want_uploads = config.s3_direct in ("uploads", "all")
    want_downloads = config.s3_direct == "all"

    async def check() -> Direct:
        notes: list[str] = []
        uploads = downloads = False
        if want_uploads:
            found = await setup.check_cors(page_origins(config.public_url, config.allowed_hosts))
            uploads = found.ok
            notes.append(found.note)
            if uploads:
                checked = await setup.check_signed_checksums()
                bucket.verifies_checksums = checked.ok
                notes.append(checked.note)
        if want_downloads:
            found = await setup.check_overrides()
            downloads = found.ok
            notes.append(found.note)
        return Direct(bucket, uploads=uploads, downloads=downloads, notes=tuple(notes))

    try:
        return await asyncio.wait_for(check(), START_CHECK_SECONDS)
    except TimeoutError:
        return Direct(
            bucket,
            uploads=False,
            downloads=False,
            notes=(
                f"direct transfers off: the object store did not answer the start-up"
                f" checks within {START_CHECK_SECONDS:.0f} s; every byte goes through this"
                f" node until it is restarted with the store up",
            ),
        )
