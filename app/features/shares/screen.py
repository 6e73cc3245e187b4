"""The Shared screen (`/shared`): the account's links and collections, live."""

from stario import App, Context, Relay, Writer, h
from stario.datastar import at, data

from app.access.gate import Gate, principal
from app.catalog.protocol import Database
from app.common.livescreen import ScreenFeeds, screen_feeds, serve_screen
from app.common.shell import PageAssets, content_security_policy, new_nonce
from app.config import Config
from app.features.nav.panel import screen_page
from app.features.shares.data import shares_changed
from app.features.shares.panel import links_panel, shares_part
from app.features.shares.urls import SHARED, SHARED_LIVE
from app.files.store import files_changed
from app.shares.store import list_shares

MAIN_ID = "shared"


def _subjects(owner: str) -> tuple[str, ...]:
    # A deleted file ends its links.
    return shares_changed(owner), files_changed(owner)


def register_shared_screen(
    app: App, gate: Gate, config: Config, db: Database, assets: PageAssets, relay: Relay[str]
) -> None:
    async def paint(owner: str, changed: frozenset[str] | None):
        return [shares_part(await list_shares(db, owner), gate.clock())]

    feeds: ScreenFeeds = screen_feeds(
        relay, _subjects, paint, cap=config.max_live_pages_per_account
    )

    async def show(c: Context, w: Writer) -> None:
        who = principal(c)
        nonce = new_nonce()
        w.headers.set("content-security-policy", content_security_policy(nonce))
        listings = await list_shares(db, who.account_id)
        main = h.Main(
            {"id": MAIN_ID},
            data.signals({"_offline": False, "_ended": False}, if_missing=True),
            data.init(at.get(SHARED_LIVE.href(), retry="always")),
            links_panel(listings, gate.clock()),
        )
        w.html(screen_page(assets, "Shared", who.account, "shared", main, nonce=nonce))

    async def live(c: Context, w: Writer) -> None:
        await serve_screen(
            c, w, owner=principal(c).account_id, feeds=feeds, paint=paint,
            still_signed_in=gate.still_signed_in, here=SHARED.href(), main_id=MAIN_ID,
        )  # fmt: skip

    gate.pages(SHARED)
    app.add(SHARED, show)
    app.add(SHARED_LIVE, live)
