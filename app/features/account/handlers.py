"""The Account screen (`/account`): password, sessions and API tokens, live."""

from stario import App, Context, Relay, Writer, h
from stario.datastar import at, data

from app.access.gate import Gate, principal
from app.accounts.store import list_tokens
from app.catalog.protocol import Database
from app.common.livescreen import ScreenFeeds, screen_feeds, serve_screen
from app.common.shell import PageAssets, content_security_policy, new_nonce
from app.config import Config
from app.features.account.urls import ACCOUNT, ACCOUNT_LIVE
from app.features.nav.panel import screen_page
from app.features.tokens.data import tokens_changed
from app.features.tokens.panel import LABEL_SIGNAL, tokens_panel, tokens_part

MAIN_ID = "account"


def _subjects(owner: str) -> tuple[str, ...]:
    return (tokens_changed(owner),)


def register_account(
    app: App, gate: Gate, config: Config, db: Database, assets: PageAssets, relay: Relay[str]
) -> None:
    async def paint(owner: str, changed: frozenset[str] | None):
        return [tokens_part(await list_tokens(db, owner))]

    feeds: ScreenFeeds = screen_feeds(
        relay, _subjects, paint, cap=config.max_live_pages_per_account
    )

    async def show(c: Context, w: Writer) -> None:
        who = principal(c)
        nonce = new_nonce()
        w.headers.set("content-security-policy", content_security_policy(nonce))
        main = h.Main(
            {"id": MAIN_ID},
            data.signals({"_offline": False, "_ended": False, LABEL_SIGNAL: ""}, if_missing=True),
            data.init(at.get(ACCOUNT_LIVE.href(), retry="always")),
            h.H1("Account"),
            tokens_panel(await list_tokens(db, who.account_id)),
        )
        w.html(screen_page(assets, "Account", who.account, "account", main, nonce=nonce))

    async def live(c: Context, w: Writer) -> None:
        await serve_screen(
            c, w, owner=principal(c).account_id, feeds=feeds, paint=paint,
            still_signed_in=gate.still_signed_in, here=ACCOUNT.href(), main_id=MAIN_ID,
        )  # fmt: skip

    gate.pages(ACCOUNT)
    app.add(ACCOUNT, show)
    app.add(ACCOUNT_LIVE, live)
