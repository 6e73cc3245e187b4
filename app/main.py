"""Composition root: every shared object is built here and handed to the features.

A request meets the Host check (app/access/hosts.py), `same_origin`
(app/server/origin.py) and the security headers, then the access gate
(app/access/gate.py), which decides who it is and turns away the anonymous from
every route not declared public; the feature's handler then scopes what it reads
and writes to that principal.
"""

import asyncio
import secrets
import sys
import time
from collections.abc import AsyncIterator, Callable

from stario import App, Assets, Span
from stario.http import security_headers

from app.access.gate import Gate
from app.access.hosts import AllowedHosts
from app.accounts.events import sessions_changed
from app.accounts.passwords import Passwords
from app.accounts.quotas import QuotaLedger
from app.accounts.store import count_accounts
from app.accounts.throttle import Throttle
from app.bundle import ASSETS_DIR
from app.catalog.open import open_catalog
from app.catalog.protocol import CatalogUnavailable
from app.cluster import TAKE_OVER, NodeRelay, share_with_other_nodes
from app.common.http import (
    JSON_PREFIXES,
    json_errors,
    json_method_not_allowed,
    json_not_found,
    unavailable_answers,
)
from app.common.shell import PageAssets
from app.common.units import human_bytes
from app.config import Config
from app.features.account.handlers import register_account
from app.features.admin.handlers import Admin, register_admin
from app.features.archives.handlers import register_archives
from app.features.auth.handlers import Auth, register_auth
from app.features.auth.urls import LOGIN, SETUP
from app.features.dav.handlers import Dav, register_dav
from app.features.direct.handlers import register_direct
from app.features.files.commands import register_file_commands
from app.features.files.forms import register_file_forms
from app.features.files.handlers import register_files
from app.features.folders.commands import register_folder_commands
from app.features.folders.forms import register_folder_forms
from app.features.folders.handlers import ClosedRequests, register_folders
from app.features.home.handlers import register_home
from app.features.invitations.handlers import Links, register_invitations
from app.features.nav.panel import nothing_here
from app.features.previews.data import Previewer
from app.features.previews.handlers import register_previews
from app.features.requests.handlers import Requests, register_requests
from app.features.requests.screen import register_requests_screen
from app.features.resumable import ietf
from app.features.resumable.handlers import register_resumable
from app.features.shares.forms import register_share_forms
from app.features.shares.handlers import Shares, register_shares
from app.features.shares.screen import register_shared_screen
from app.features.tokens.handlers import register_tokens
from app.features.uploads.handlers import SingleRequestUploads, register_uploads
from app.features.uploads.panel import bucket_origin
from app.files.store import FileRow
from app.ingest.budget import MemoryBudget
from app.ingest.intake import Uploads
from app.ingest.progress import Progress
from app.ops.lock import DataDirLock
from app.ops.sweep import SWEEP_EVERY_SECONDS, reclaim_at_start, sweep_periodically
from app.previews.pool import WARM_AFTER_SECONDS, WorkerPool
from app.previews.renditions import Renditions
from app.previews.thumbnails import Thumbnails, ffmpeg_found
from app.resumable.backends import open_backends
from app.resumable.direct import DirectUploads
from app.resumable.uploads import ResumableUploads
from app.server.origin import same_origin
from app.server.peers import ClientAddresses, ProtocolFactory
from app.storage.backends import describe, open_direct, open_store
from app.storage.space import CatalogReserve, default_min_free, free_bytes
from app.webdav.locks import DavLocks


def min_free_bytes(config: Config) -> int:
    """The free-space floor: as configured, else a share of the data dir's filesystem."""
    if config.min_free_bytes is not None:
        return config.min_free_bytes
    return default_min_free(config.uploads_dir)


def setup_link(config: Config, token: str) -> str:
    return f"{config.public_url}{SETUP.href(query={'token': token})}"


def make_bootstrap(
    config: Config,
    *,
    setup_token: str | None = None,
    clock: Callable[[], float] = time.time,
    sweep_every: float = SWEEP_EVERY_SECONDS,
    protocols: ProtocolFactory | None = None,
):
    """`setup_token` is the secret of this run's one-time setup link (a fresh one when
    not given); the link is printed when no account exists yet. `clock` is the wall
    clock sessions and share links expire by (tests move it). `sweep_every` is how
    often the running server reclaims blobs left without a row (app/ops/sweep.py).
    `protocols` makes the server's connections (app/server/peers.py), when a real
    server runs the app (`stowage serve`); its middleware lets a request find its
    connection. Without it (Stario's TestClient) every peer is `unknown`."""
    setup_secret = setup_token or secrets.token_urlsafe(32)

    async def bootstrap(app: App, span: Span) -> AsyncIterator[None]:
        # Owning the data dir is what makes the start-up reclaim safe: no other
        # process can have an upload between its blob's rename and its row's commit.
        data_dir_lock = DataDirLock.acquire(config.data_dir)
        floor = min_free_bytes(config)
        store = await open_store(config, min_free_bytes=floor)
        await asyncio.to_thread(store.prepare)
        # On S3: which bytes go straight between clients and the bucket (--s3-direct).
        direct = await open_direct(config, store)
        store.use_direct(direct)  # downloads answer 302 to a pre-signed GET when on
        for note in direct.notes:
            print(f"stowage: {note}", file=sys.stderr, flush=True)
        span.attrs({"stowage.s3_direct_uploads": direct.uploads,
                    "stowage.s3_direct_downloads": direct.downloads})  # fmt: skip
        reserve = CatalogReserve(config.data_dir, min_free_bytes=floor)
        reserved = await asyncio.to_thread(reserve.keep)
        print(
            f"stowage: uploads leave {human_bytes(floor)} free on the data dir's filesystem"
            f" (--min-free-bytes); {human_bytes(free_bytes(config.uploads_dir))} free now"
            + ("" if reserved else "; no room for the catalog's reserve yet"),
            file=sys.stderr,
            flush=True,
        )
        span.attrs({"stowage.min_free_bytes": floor, "stowage.catalog_reserve": reserved})
        span.attrs({"stowage.storage": describe(config)})
        db = await open_catalog(config, spawn=app.create_task, make_room=reserve.make_room)
        if await count_accounts(db) == 0:
            print(
                "stowage: no account exists yet. Open this link to create the first "
                f"(admin) account:\n  {setup_link(config, setup_secret)}",
                file=sys.stderr,
                flush=True,
            )
        relay = NodeRelay()
        # This process's name among the nodes (the cluster channel, upload leases).
        node = secrets.token_hex(6)
        progress = Progress(relay)
        quotas = QuotaLedger(db, config.default_quota)
        passwords = Passwords()
        addresses = ClientAddresses(config.trusted_proxies)
        gate = Gate(
            db,
            config,
            sign_in_path=LOGIN.href(),
            clock=clock,
            passwords=passwords,
            addresses=addresses,
        )
        # Sessions starting, used or ended repaint the Account screen, on every node.
        gate.sessions_changed = lambda account_id: relay.publish(
            sessions_changed(account_id), "changed"
        )
        static = Assets(ASSETS_DIR, url_prefix="/static")
        hosts = AllowedHosts(config.allowed_hosts)
        if protocols is not None:
            app.use("/", protocols.remember_request)
        app.use(
            "/",
            unavailable_answers(CatalogUnavailable),
            hosts.middleware,
            same_origin,
            security_headers(),
            gate.middleware,
        )
        for prefix in JSON_PREFIXES:
            app.use(prefix, json_errors(CatalogUnavailable))
            app.not_found(prefix, json_not_found)
            app.method_not_allowed(prefix, json_method_not_allowed)
        # Brotli's encoder peaked ~28 MB at start-up for a 35 KB tree; zstd and gzip
        # serve every current browser for a fraction of that.
        span.attrs(await static.attach(app, precompress=("zstd", "gzip")))
        assets = PageAssets.from_assets(static)
        # Any other unknown path: a page in words for a browser, Stario's text for the rest.
        app.not_found("/", nothing_here(assets))
        sign_in_throttle = Throttle()
        auth = Auth(
            db, gate, passwords, sign_in_throttle, addresses, assets, setup_token=setup_secret
        )
        # Nodes sharing one PostgreSQL catalog act as one: each hears what the others
        # publish (live pages, upload progress, failed sign-ins); app/cluster.py.
        other_nodes = (
            None
            if config.database is None
            else share_with_other_nodes(
                config.database,
                relay,
                progress=progress,
                throttles=(sign_in_throttle, gate.share_throttle),
                node=node,
            )
        )
        register_auth(app, auth)
        thumbnails = Thumbnails(
            db,
            store,
            relay,
            # Workers start in the background, so no first image waits for Pillow.
            WorkerPool(
                workers=config.thumbnail_workers,
                seconds=config.thumbnail_seconds,
                warm_after=WARM_AFTER_SECONDS,
            ),
            posters=ffmpeg_found(),
        )
        span.attrs({"stowage.video_posters": thumbnails.posters})
        # Full-size previews share the thumbnails' worker processes.
        renditions = Renditions(store, thumbnails.pool, db)
        previewer = Previewer(db, store, renditions)

        def thumbnails_then_renditions(rows: list[FileRow]) -> None:
            thumbnails.stored(rows)
            renditions.stored(rows)  # behind the thumbnails, in the workers' later lane

        # Pages that upload straight to the bucket may connect to its origin.
        upload_origin = await bucket_origin(direct)
        register_home(
            app, gate, config, db, assets, relay, progress, quotas, thumbnails, previewer,
            bucket_origin=upload_origin,
        )  # fmt: skip
        shares_feature = Shares(
            config, db, store, gate, passwords, relay, assets, thumbnails=thumbnails,
            spawn=app.create_task, previewer=previewer,
        )  # fmt: skip
        register_shares(app, shares_feature)
        register_share_forms(app, shares_feature)
        register_files(app, db, store, assets)
        register_archives(app, db, store, config.archive_memory_bytes)
        register_file_commands(app, db, store, relay, reserve)
        register_file_forms(app, db, store, relay, assets, reserve)
        # Deleting a folder closes the file requests into it; their uploads end too.
        folder_requests = ClosedRequests(relay)
        register_folders(app, db, store, relay, folder_requests)
        register_folder_commands(app, db, store, relay, folder_requests)
        register_folder_forms(app, db, store, relay, assets, folder_requests)
        register_previews(app, db, thumbnails, previewer, assets)
        signals_memory = MemoryBudget(config.signals_memory_bytes)
        uploads = Uploads(
            config,
            db,
            store,
            relay,
            progress,
            quotas,
            signals_memory,
            spawn=app.create_task,
            stored=thumbnails_then_renditions,
        )
        partials, locker = open_backends(
            store, db, node=node, announce=lambda upload_id: relay.publish(TAKE_OVER, upload_id)
        )
        resumable = ResumableUploads(uploads, partials, locker, clock=clock)
        if other_nodes is not None:
            # Another node asked about an upload this one is appending to.
            other_nodes.on_take_over = locker.let_go
        # `Upload-Complete: ?0` on /uploads starts a resumable upload (the IETF draft).
        register_uploads(
            app, uploads, start_resumable=ietf.start_on_uploads(resumable), assets=assets
        )
        # Before blobs without rows are reclaimed: an upload moved into the blob store
        # just before a crash is finished, not reclaimed.
        span.attrs({"stowage.resumable_recovered": await resumable.recover()})
        await resumable.expire()
        await reclaim_at_start(
            config.data_dir, span, config.database, local_blobs=store.kind == "local"
        )
        # `Upload-Complete: ?0` on a file request's /uploads starts a resumable upload too.
        start_on_link = ietf.start_on_request_uploads(resumable)
        requests_feature = Requests(
            config,
            db,
            gate,
            relay,
            assets,
            uploads,
            resumable,
            SingleRequestUploads(uploads, assets),
            start_on_link,
            ietf.start_on_share_uploads(resumable),
            bucket_origin=upload_origin,
        )
        # A revoked folder link's unfinished uploads end with it.
        shares_feature.end_uploads = resumable.end_request
        folder_requests.end_uploads = resumable.end_request
        register_resumable(
            app, gate, resumable, requests_feature.destination, requests_feature.share_destination
        )
        # Direct uploads (S3): sessions whose bytes go from the client to the bucket.
        direct_uploads = (
            DirectUploads.over(resumable, direct.bucket)
            if direct.uploads and direct.bucket is not None
            else None
        )
        register_direct(app, gate, direct_uploads, uploads, requests_feature.destination)
        register_requests(app, requests_feature)
        register_tokens(app, db, relay)
        # WebDAV at /dav/: the account's tree for file managers and sync tools.
        register_dav(
            app, Dav(uploads, DavLocks(db, clock), app.create_task, folder_requests.closed)
        )
        register_shared_screen(app, gate, config, db, assets, relay, shares_feature)
        register_requests_screen(app, requests_feature)
        register_account(app, gate, config, db, assets, relay, passwords, sign_in_throttle)
        register_admin(
            app,
            Admin(
                config,
                db,
                store,
                gate,
                assets,
                relay,
                passwords,
                progress,
                floor,
                protocols,
                direct=direct,
            ),
        )
        register_invitations(app, Links(db, gate, passwords, assets, relay))
        # Owned by the bootstrap rather than app.tasks: it never ends on its own (the
        # TestClient drains app.tasks without signalling shutdown), so the teardown
        # below cancels it, and the server's shutdown ends it through app.shutdown.
        sweeper = asyncio.create_task(
            sweep_periodically(
                config.data_dir,
                span.tracer.create,
                lambda: app.shutdown,
                every=sweep_every,
                database=config.database,
                local_blobs=store.kind == "local",
            ),
            name="stowage.sweep",
        )
        expirer = asyncio.create_task(
            resumable.expire_periodically(min(60.0, config.upload_expiry / 4)),
            name="stowage.expire-uploads",
        )
        try:
            yield
        finally:
            await uploads.wind_down()
            await renditions.close()
            await thumbnails.close()
            sweeper.cancel()
            expirer.cancel()
            await asyncio.gather(sweeper, expirer, return_exceptions=True)
            progress.close()
            passwords.close()
            if other_nodes is not None:
                await other_nodes.close()
            await db.close()
            await store.aclose()
            data_dir_lock.release()

    return bootstrap
