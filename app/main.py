"""Composition root: every shared object is built here and handed to the features."""

import asyncio
from collections.abc import AsyncIterator

from stario import App, Assets, Relay, Span
from stario.http import same_origin, security_headers

from app.bundle import ASSETS_DIR
from app.common.http import json_errors
from app.common.shell import PageAssets
from app.config import Config
from app.db import Database
from app.features.files.commands import register_file_commands
from app.features.files.data import SCHEMA
from app.features.files.handlers import register_files
from app.features.home.handlers import register_home
from app.features.uploads.handlers import Uploads, register_uploads
from app.ingest.progress import Progress
from app.storage.blobs import BlobStore


def make_bootstrap(config: Config):
    async def bootstrap(app: App, span: Span) -> AsyncIterator[None]:
        store = BlobStore(config.uploads_dir)
        span.attr("stowage.stale_incoming_removed", await asyncio.to_thread(store.prepare))
        db = await Database.open(config.db_path, SCHEMA)
        relay: Relay[str] = Relay()
        progress = Progress(relay)
        assets = Assets(ASSETS_DIR, url_prefix="/static")
        app.use("/", same_origin(), security_headers())
        for prefix in ("/api", "/files", "/uploads"):
            app.use(prefix, json_errors)
        # Brotli's encoder peaked ~28 MB at start-up for a 35 KB tree; zstd and gzip
        # serve every current browser for a fraction of that.
        span.attrs(await assets.attach(app, precompress=("zstd", "gzip")))
        register_home(app, config, db, PageAssets.from_assets(assets), relay, progress)
        register_files(app, db, store)
        register_file_commands(app, db, store, relay)
        register_uploads(app, Uploads(config, db, store, relay, progress))
        try:
            yield
        finally:
            progress.close()
            await db.close()
            await asyncio.to_thread(store.close)

    return bootstrap
