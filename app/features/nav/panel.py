"""The masthead of every signed-in screen: one navigation (the current screen marked
`aria-current`), who is signed in, and Sign out (a plain form: it works without
scripts). Each screen is its own page with its own URL, so the browser's back and
forward work as they do anywhere."""

from stario import Context, Handler, Writer, h
from stario.markup import HtmlElement

from app.access.gate import opens_a_page, principal, principal_or_none
from app.accounts.store import Account
from app.common.http import json_error
from app.common.shell import PageAssets, content_security_policy, new_nonce, page
from app.features.account.urls import ACCOUNT
from app.features.admin.urls import ADMIN
from app.features.auth.urls import LOGIN, LOGOUT
from app.features.home.urls import HOME
from app.features.requests.urls import REQUESTS_SCREEN
from app.features.shares.urls import SHARED

# (key, label, href) of every screen, in the navigation's order; Admin for admins.
SCREENS = (
    ("files", "Files", HOME.href()),
    ("shared", "Shared", SHARED.href()),
    ("requests", "Requests", REQUESTS_SCREEN.href()),
    ("account", "Account", ACCOUNT.href()),
)
ADMIN_SCREEN = ("admin", "Admin", ADMIN.href())


def navigation(account: Account, current: str) -> HtmlElement:
    screens = (*SCREENS, ADMIN_SCREEN) if account.is_admin else SCREENS
    return h.Nav(
        {"class": "screens", "aria-label": "Screens"},
        h.Ul(
            *[
                h.Li(
                    h.A(
                        {"href": href, "aria-current": "page" if key == current else None},
                        label,
                    )
                )
                for key, label, href in screens
            ]
        ),
    )


def masthead(account: Account, current: str) -> HtmlElement:
    return h.Header(
        {"class": "masthead"},
        h.A({"class": "brand", "href": HOME.href()}, "Stowage"),
        navigation(account, current),
        h.Form(
            {"method": "post", "action": LOGOUT.href(), "class": "account"},
            h.Span(
                {"class": "account-name"},
                h.Strong(account.name),
                " (admin)" if account.is_admin else "",
            ),
            h.Button({"type": "submit", "class": "button"}, "Sign out"),
        ),
    )


def screen_page(
    assets: PageAssets,
    title: str,
    account: Account,
    current: str,
    main: HtmlElement,
    *,
    nonce: str | None,
    modules: tuple[str, ...] = (),
) -> HtmlElement:
    """A signed-in screen: its masthead, then its `<main>`."""
    return page(
        assets,
        f"{title} · Stowage",
        h.Div({"class": "app"}, masthead(account, current), main),
        nonce=nonce,
        modules=modules,
    )


def action_page(
    assets: PageAssets, account: Account, title: str, *content: HtmlElement, nonce: str | None
) -> HtmlElement:
    """A screen of one form (rename, move, share, delete: what a row's action opens
    without scripts), under the Files screen's navigation, with a way back."""
    return screen_page(
        assets,
        title,
        account,
        "files",
        h.Main({"id": "action", "class": "action-page"}, h.H1(title), *content),
        nonce=nonce,
    )


def not_found_page(assets: PageAssets, account: Account, message: str) -> HtmlElement:
    """The HTML 404 a person's browser gets for a file link that is gone or not theirs
    (API clients keep their JSON 404). It runs no expression, so it has no nonce: the
    same for an unknown id as for another account's, byte for byte."""
    return action_page(
        assets,
        account,
        "Not found",
        h.P({"class": "empty", "role": "alert"}, message),
        h.P(h.A({"class": "button", "href": HOME.href()}, "Back to your files")),
        nonce=None,
    )


MISSING_FILE = "This file does not exist or is not yours."
NO_PAGE = "There is no page at this address. Check that the link was copied whole."


def _send_404(w: Writer, element: HtmlElement) -> None:
    # The page runs no expression: the nonce is only the CSP's (masked by the tests
    # that compare an unknown id's answer with another account's).
    w.headers.set("content-security-policy", content_security_policy(new_nonce()))
    w.html(element, 404)


def missing_file(assets: PageAssets, c: Context, w: Writer) -> None:
    """A file link that is gone or another account's (one answer for both): the HTML
    404 for a person's browser, the JSON one for everything else."""
    if opens_a_page(c):
        _send_404(w, not_found_page(assets, principal(c).account, MISSING_FILE))
    else:
        json_error(w, 404, "no such file")


def nothing_here(assets: PageAssets) -> Handler:
    """Stario's `not_found` hook for every path outside the JSON prefixes: a page in
    words for a browser (with the navigation when signed in, else a way to sign in),
    Stario's own text 404 for API clients and anything not a GET."""

    async def respond(c: Context, w: Writer) -> None:
        if not opens_a_page(c):
            w.text("Not Found", 404)
            return
        who = principal_or_none(c)
        words = h.P({"class": "empty", "role": "alert"}, NO_PAGE)
        if who is not None:
            main = h.Main(
                {"id": "action", "class": "action-page"},
                h.H1("Not found"),
                words,
                h.P(h.A({"class": "button", "href": HOME.href()}, "Back to your files")),
            )
            _send_404(w, screen_page(assets, "Not found", who.account, "", main, nonce=None))
            return
        main = h.Main(
            {"id": "share", "class": "auth"},
            h.H1("Not found"),
            words,
            h.P(h.A({"class": "button", "href": LOGIN.href()}, "Sign in to Stowage")),
        )
        _send_404(w, page(assets, "Not found · Stowage", main))

    return respond
