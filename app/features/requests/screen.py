"""The Requests screen (`/requests`): the account's file requests, live."""

from stario import App, Context, Relay, Writer, h
from stario.datastar import at, data

from app.access.gate import Gate, principal
from app.catalog.protocol import Database
from app.common.livescreen import ScreenFeeds, screen_feeds, serve_screen
from app.common.shell import PageAssets, content_security_policy, new_nonce
from app.config import Config
from app.features.nav.panel import screen_page
from app.features.requests.data import open_requests
from app.features.requests.panel import (
    SIGNALS,
    request_folder_select,
    requests_panel,
    requests_part,
)
from app.features.requests.urls import REQUESTS_LIVE, REQUESTS_SCREEN
from app.files.store import files_changed
from app.folders.store import folder_choices
from app.requests.events import requests_changed

MAIN_ID = "requests-screen"


def _subjects(owner: str) -> tuple[str, ...]:
    # Files changing may be new folders to choose from.
    return requests_changed(owner), files_changed(owner)


def register_requests_screen(
    app: App, gate: Gate, config: Config, db: Database, assets: PageAssets, relay: Relay[str]
) -> None:
    async def paint(owner: str, changed: frozenset[str] | None):
        parts = []
        if changed is None or requests_changed(owner) in changed:
            parts.append(requests_part(await open_requests(db, owner), gate.clock()))
        if changed is None or files_changed(owner) in changed:
            parts.append(request_folder_select(await folder_choices(db, owner)))
        return parts

    feeds: ScreenFeeds = screen_feeds(
        relay, _subjects, paint, cap=config.max_live_pages_per_account
    )

    async def show(c: Context, w: Writer) -> None:
        who = principal(c)
        owner = who.account_id
        nonce = new_nonce()
        w.headers.set("content-security-policy", content_security_policy(nonce))
        main = h.Main(
            {"id": MAIN_ID},
            data.signals({"_offline": False, "_ended": False, **SIGNALS}, if_missing=True),
            data.init(at.get(REQUESTS_LIVE.href(), retry="always")),
            requests_panel(
                await open_requests(db, owner), gate.clock(), await folder_choices(db, owner)
            ),
        )
        w.html(screen_page(assets, "Requests", who.account, "requests", main, nonce=nonce))

    async def live(c: Context, w: Writer) -> None:
        await serve_screen(
            c, w, owner=principal(c).account_id, feeds=feeds, paint=paint,
            still_signed_in=gate.still_signed_in, here=REQUESTS_SCREEN.href(), main_id=MAIN_ID,
        )  # fmt: skip

    gate.pages(REQUESTS_SCREEN)
    app.add(REQUESTS_SCREEN, show)
    app.add(REQUESTS_LIVE, live)
