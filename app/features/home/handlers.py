from stario import App, Context, Relay, Writer
from stario.datastar import SSE

from app.access.gate import Gate, principal
from app.accounts.quotas import QuotaLedger
from app.accounts.store import list_tokens
from app.common.shell import PageAssets, content_security_policy, new_nonce
from app.config import Config
from app.db import Database
from app.features.files.data import count_files, files_changed, list_files
from app.features.home.urls import HOME, HOME_LIVE
from app.features.home.views import (
    PAGE_SIZE,
    Listing,
    Usage,
    files_part,
    progress_part,
    render,
    usage_part,
)
from app.features.shares.data import shares_changed
from app.features.shares.views import shares_part
from app.features.tokens.data import tokens_changed
from app.features.tokens.views import tokens_part
from app.ingest.progress import Progress, progress_changed
from app.shares.store import list_shares


def _page_number(c: Context) -> int:
    text = c.req.query.get("page") or "1"
    if not (text.isascii() and text.isdigit()) or len(text) > 9:
        return 1
    return max(1, int(text))


async def load_listing(db: Database, owner: str, page: int) -> Listing:
    """The page asked for, or the last one when the list has become shorter."""
    total = await count_files(db, owner)
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(page, pages)
    rows = await list_files(db, owner, PAGE_SIZE, (page - 1) * PAGE_SIZE)
    return Listing(rows, total, page, pages)


def load_usage(quotas: QuotaLedger, owner: str) -> Usage:
    used, quota = quotas.usage(owner)
    return Usage(used, quota)


def show_home(
    config: Config,
    gate: Gate,
    db: Database,
    assets: PageAssets,
    progress: Progress,
    quotas: QuotaLedger,
):
    async def handler(c: Context, w: Writer) -> None:
        who = principal(c)
        owner = who.account_id
        listing = await load_listing(db, owner, _page_number(c))
        nonce = new_nonce()
        w.headers.set("content-security-policy", content_security_policy(nonce))
        w.html(
            render(
                config,
                assets,
                who.account,
                listing,
                progress.list_transfers(owner),
                load_usage(quotas, owner),
                await list_tokens(db, owner),
                await list_shares(db, owner),
                now=gate.clock(),
                nonce=nonce,
            )
        )

    return handler


def home_live(gate: Gate, db: Database, relay: Relay[str], progress: Progress, quotas: QuotaLedger):
    """Paints the account's parts at once, then again on every change of its own:
    the list and usage on `files.changed.<account>`, the progress bars on
    `uploads.progress.<account>` (at most 4 a second), the tokens on
    `tokens.changed.<account>`, the shared links (and their download counts) on
    `shares.changed.<account>` and on file changes (a deleted file ends its links).
    No other account's event ever reaches this stream."""

    async def handler(c: Context, w: Writer) -> None:
        owner = principal(c).account_id
        page = _page_number(c)
        files_subject, tokens_subject = files_changed(owner), tokens_changed(owner)
        shares_subject = shares_changed(owner)
        async with relay.subscribe(
            files_subject, progress_changed(owner), tokens_subject, shares_subject, latest=True
        ) as events:
            sse = SSE(w)
            sse.patch_signals({"_offline": False})
            sse.patch_elements(progress_part(progress.list_transfers(owner)))
            sse.patch_elements(files_part(await load_listing(db, owner, page)))
            sse.patch_elements(usage_part(load_usage(quotas, owner)))
            sse.patch_elements(shares_part(await list_shares(db, owner), gate.clock()))
            async with c.alive():
                await w.drain()
                async for subject, _ in events:
                    if subject == files_subject:
                        sse.patch_elements(files_part(await load_listing(db, owner, page)))
                        sse.patch_elements(usage_part(load_usage(quotas, owner)))
                        sse.patch_elements(shares_part(await list_shares(db, owner), gate.clock()))
                    elif subject == shares_subject:
                        sse.patch_elements(shares_part(await list_shares(db, owner), gate.clock()))
                    elif subject == tokens_subject:
                        sse.patch_elements(tokens_part(await list_tokens(db, owner)))
                    else:
                        sse.patch_elements(progress_part(progress.list_transfers(owner)))
                    await w.drain()

    return handler


def register_home(
    app: App,
    gate: Gate,
    config: Config,
    db: Database,
    assets: PageAssets,
    relay: Relay[str],
    progress: Progress,
    quotas: QuotaLedger,
) -> None:
    gate.pages(HOME)
    app.add(HOME, show_home(config, gate, db, assets, progress, quotas))
    app.add(HOME_LIVE, home_live(gate, db, relay, progress, quotas))
