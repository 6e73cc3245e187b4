import secrets

from stario import App, Context, Relay, Writer
from stario.datastar import SSE

from app.common.shell import PageAssets
from app.config import Config
from app.db import Database
from app.features.files.data import FILES_CHANGED, count_files, list_files
from app.features.home.urls import HOME, HOME_LIVE
from app.features.home.views import PAGE_SIZE, Listing, files_part, progress_part, render
from app.ingest.progress import PROGRESS_CHANGED, Progress


def content_security_policy(nonce: str) -> str:
    """Our own origin only. Datastar runs each expression as a script carrying
    `nonce` (its CSP mode, `<html data-nonce>`), so no 'unsafe-eval' is needed;
    without the nonce it would compile them with `Function` and need it."""
    return "; ".join(
        (
            "default-src 'self'",
            f"script-src 'self' 'nonce-{nonce}'",
            "style-src 'self'",
            "img-src 'self'",
            "connect-src 'self'",
            "form-action 'self'",
            "base-uri 'none'",
            "object-src 'none'",
            "frame-ancestors 'none'",
        )
    )


def _page_number(c: Context) -> int:
    text = c.req.query.get("page") or "1"
    if not (text.isascii() and text.isdigit()) or len(text) > 9:
        return 1
    return max(1, int(text))


async def load_listing(db: Database, page: int) -> Listing:
    """The page asked for, or the last one when the list has become shorter."""
    total = await count_files(db)
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(page, pages)
    rows = await list_files(db, PAGE_SIZE, (page - 1) * PAGE_SIZE)
    return Listing(rows, total, page, pages)


def show_home(config: Config, db: Database, assets: PageAssets, progress: Progress):
    async def handler(c: Context, w: Writer) -> None:
        listing = await load_listing(db, _page_number(c))
        nonce = secrets.token_urlsafe(18)
        origin = "http://" + (c.req.headers.get("host") or f"{config.host}:{config.port}")
        w.headers.set("content-security-policy", content_security_policy(nonce))
        w.headers.set("cache-control", "no-store")
        w.html(
            render(config, assets, listing, progress.list_transfers(), nonce=nonce, origin=origin)
        )

    return handler


def home_live(db: Database, relay: Relay[str], progress: Progress):
    """Paints the shared parts at once, then again on every change: the list on
    `files.changed`, the progress bars on `uploads.progress` (at most 4 a second)."""

    async def handler(c: Context, w: Writer) -> None:
        page = _page_number(c)
        async with relay.subscribe(FILES_CHANGED, PROGRESS_CHANGED, latest=True) as events:
            sse = SSE(w)
            sse.patch_signals({"_offline": False})
            sse.patch_elements(progress_part(progress.list_transfers()))
            sse.patch_elements(files_part(await load_listing(db, page)))
            async with c.alive():
                await w.drain()
                async for subject, _ in events:
                    if subject == FILES_CHANGED:
                        sse.patch_elements(files_part(await load_listing(db, page)))
                    else:
                        sse.patch_elements(progress_part(progress.list_transfers()))
                    await w.drain()

    return handler


def register_home(
    app: App,
    config: Config,
    db: Database,
    assets: PageAssets,
    relay: Relay[str],
    progress: Progress,
) -> None:
    app.add(HOME, show_home(config, db, assets, progress))
    app.add(HOME_LIVE, home_live(db, relay, progress))
