"""The Admin screen (`/admin`): admins only."""

from collections.abc import Sequence

from stario import App, Context, Relay, Writer, h
from stario.datastar import at, data
from stario.markup import HtmlElement

from app.access.gate import Gate, principal
from app.accounts.store import Account, list_accounts
from app.catalog.protocol import Database
from app.common.livescreen import ScreenFeeds, screen_feeds, serve_screen
from app.common.shell import PageAssets, content_security_policy, new_nonce
from app.common.units import human_bytes
from app.config import Config
from app.features.admin.data import ACCOUNTS_CHANGED
from app.features.admin.urls import ADMIN, ADMIN_LIVE
from app.features.nav.panel import screen_page

MAIN_ID = "admin"
ACCOUNTS_ID = "admin-accounts"


def accounts_part(accounts: Sequence[Account], default_quota: int | None) -> HtmlElement:
    def quota(a: Account) -> str:
        limit = a.quota(default_quota)
        return "no limit" if limit is None else human_bytes(limit)

    return h.Div(
        {"id": ACCOUNTS_ID, "class": "table-wrap"},
        h.Table(
            {"class": "accounts"},
            h.Caption("Accounts"),
            h.Thead(
                h.Tr(
                    h.Th({"scope": "col"}, "Name"),
                    h.Th({"scope": "col"}, "Used"),
                    h.Th({"scope": "col"}, "Quota"),
                    h.Th({"scope": "col"}, "Files"),
                )
            ),
            h.Tbody(
                *[
                    h.Tr(
                        {"id": f"account-{a.id}"},
                        h.Th({"scope": "row"}, a.name, " (admin)" if a.is_admin else ""),
                        h.Td(human_bytes(a.used_bytes)),
                        h.Td(quota(a)),
                        h.Td(f"{a.file_count:,}"),
                    )
                    for a in accounts
                ]
            ),
        ),
    )


def _subjects(owner: str) -> tuple[str, ...]:
    return (ACCOUNTS_CHANGED,)


def register_admin(
    app: App, gate: Gate, config: Config, db: Database, assets: PageAssets, relay: Relay[str]
) -> None:
    async def paint(owner: str, changed: frozenset[str] | None):
        return [accounts_part(await list_accounts(db), config.default_quota)]

    feeds: ScreenFeeds = screen_feeds(
        relay, _subjects, paint, cap=config.max_live_pages_per_account
    )

    def refused(w: Writer) -> None:
        w.html(h.P("403 Forbidden: the Admin screen is for admins."), 403)

    async def show(c: Context, w: Writer) -> None:
        who = principal(c)
        if not who.account.is_admin:
            refused(w)
            return
        nonce = new_nonce()
        w.headers.set("content-security-policy", content_security_policy(nonce))
        main = h.Main(
            {"id": MAIN_ID},
            data.signals({"_offline": False, "_ended": False}, if_missing=True),
            data.init(at.get(ADMIN_LIVE.href(), retry="always")),
            h.H1("Admin"),
            accounts_part(await list_accounts(db), config.default_quota),
        )
        w.html(screen_page(assets, "Admin", who.account, "admin", main, nonce=nonce))

    async def live(c: Context, w: Writer) -> None:
        who = principal(c)
        if not who.account.is_admin:
            refused(w)
            return
        await serve_screen(
            c, w, owner=who.account_id, feeds=feeds, paint=paint,
            still_signed_in=gate.still_signed_in, here=ADMIN.href(), main_id=MAIN_ID,
        )  # fmt: skip

    gate.pages(ADMIN)
    app.add(ADMIN, show)
    app.add(ADMIN_LIVE, live)
