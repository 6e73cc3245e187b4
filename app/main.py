"""Composition root: every shared object is built here and handed to the features.

A request meets `same_origin` and the security headers, then the access gate
(app/access/gate.py), which decides who it is and turns away the anonymous from
every route not declared public; the feature's handler then scopes what it reads
and writes to that principal.
"""

import asyncio
import secrets
import sys
from collections.abc import AsyncIterator

from stario import App, Assets, Relay, Span
from stario.http import same_origin, security_headers

from app.access.gate import Gate
from app.accounts.passwords import Passwords
from app.accounts.quotas import QuotaLedger
from app.accounts.store import ACCOUNTS_SCHEMA, count_accounts
from app.accounts.throttle import Throttle
from app.bundle import ASSETS_DIR
from app.common.http import json_errors
from app.common.shell import PageAssets
from app.config import Config
from app.db import Database
from app.features.auth.handlers import Auth, register_auth
from app.features.auth.urls import LOGIN, SETUP
from app.features.files.commands import register_file_commands
from app.features.files.data import SCHEMA as FILES_SCHEMA
from app.features.files.handlers import register_files
from app.features.home.handlers import register_home
from app.features.tokens.handlers import register_tokens
from app.features.uploads.handlers import Uploads, register_uploads
from app.ingest.progress import Progress
from app.ops.lock import DataDirLock
from app.ops.sweep import SWEEP_EVERY_SECONDS, reclaim_at_start, sweep_periodically
from app.storage.blobs import BlobStore

CATALOG_SCHEMA = FILES_SCHEMA + ACCOUNTS_SCHEMA


async def open_catalog(config: Config) -> Database:
    return await Database.open(config.db_path, CATALOG_SCHEMA)


def setup_link(config: Config, token: str) -> str:
    return f"{config.public_url}{SETUP.href(query={'token': token})}"


def make_bootstrap(
    config: Config, *, setup_token: str | None = None, sweep_every: float = SWEEP_EVERY_SECONDS
):
    """`setup_token` is the secret of this run's one-time setup link (a fresh one when
    not given); the link is printed when no account exists yet. `sweep_every` is how
    often the running server reclaims blobs left without a row (app/ops/sweep.py)."""
    setup_secret = setup_token or secrets.token_urlsafe(32)

    async def bootstrap(app: App, span: Span) -> AsyncIterator[None]:
        # Owning the data dir is what makes the start-up reclaim safe: no other
        # process can have an upload between its blob's rename and its row's commit.
        data_dir_lock = DataDirLock.acquire(config.data_dir)
        store = BlobStore(config.uploads_dir)
        await asyncio.to_thread(store.prepare)
        db = await open_catalog(config)
        await reclaim_at_start(config.data_dir, span)
        if await count_accounts(db) == 0:
            print(
                "stowage: no account exists yet. Open this link to create the first "
                f"(admin) account:\n  {setup_link(config, setup_secret)}",
                file=sys.stderr,
                flush=True,
            )
        relay: Relay[str] = Relay()
        progress = Progress(relay)
        quotas = QuotaLedger(db, config.default_quota)
        passwords = Passwords()
        gate = Gate(db, config, sign_in_path=LOGIN.href())
        static = Assets(ASSETS_DIR, url_prefix="/static")
        app.use("/", same_origin(), security_headers(), gate.middleware)
        for prefix in ("/api", "/files", "/uploads"):
            app.use(prefix, json_errors)
        # Brotli's encoder peaked ~28 MB at start-up for a 35 KB tree; zstd and gzip
        # serve every current browser for a fraction of that.
        span.attrs(await static.attach(app, precompress=("zstd", "gzip")))
        assets = PageAssets.from_assets(static)
        register_auth(app, Auth(db, gate, passwords, Throttle(), assets, setup_token=setup_secret))
        register_home(app, gate, config, db, assets, relay, progress, quotas)
        register_files(app, db, store)
        register_file_commands(app, db, store, relay)
        register_uploads(app, Uploads(config, db, store, relay, progress, quotas))
        register_tokens(app, db, relay)
        # Owned by the bootstrap rather than app.tasks: it never ends on its own (the
        # TestClient drains app.tasks without signalling shutdown), so the teardown
        # below cancels it, and the server's shutdown ends it through app.shutdown.
        sweeper = asyncio.create_task(
            sweep_periodically(
                config.data_dir, span.tracer.create, lambda: app.shutdown, every=sweep_every
            ),
            name="stowage.sweep",
        )
        try:
            yield
        finally:
            sweeper.cancel()
            await asyncio.gather(sweeper, return_exceptions=True)
            progress.close()
            passwords.close()
            await db.close()
            await asyncio.to_thread(store.close)
            data_dir_lock.release()

    return bootstrap
