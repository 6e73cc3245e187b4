"""The public page of a share link, and the owner's "Share" form and "Shared links" list.

The public pages are plain HTML forms: they work without JavaScript.
"""

from datetime import UTC, datetime

from stario import h
from stario.datastar import data
from stario.markup import HtmlElement

from app.common.shell import PageAssets, page, shown_once, slot_error
from app.common.units import human_bytes
from app.features.files.data import FileRow
from app.features.files.policy import RASTER_IMAGES, disposition
from app.features.shares.urls import API_SHARE_REVOKE, SHARE_FILE, SHARE_PAGE
from app.shares.store import Share, ShareListing

SHARES_ID = "shares"
NEW_SHARE_ID = "new-share"
# The page's signals for the share form (Datastar posts those matching `^share`).
SIGNALS = {
    "shareFile": "",
    "shareName": "",
    "shareExpiry": "604800",
    "sharePassword": "",
    "shareLimit": "",
}
EXPIRY_CHOICES = (
    ("3600", "1 hour"),
    ("86400", "1 day"),
    ("604800", "7 days"),
    ("2592000", "30 days"),
    ("never", "never"),
)


def can_preview(row: FileRow, share: Share) -> bool:
    """An image preview on the landing page: only an inline-safe raster image, and only
    on a link without a download limit (a preview is the whole image, so on a limited
    link it would hand the bytes out uncounted)."""
    inline = disposition(row.mime, name=row.name, declared_mime=row.declared_mime) == "inline"
    return share.max_downloads is None and inline and row.mime in RASTER_IMAGES


def _when(moment: float | None) -> str:
    if moment is None:
        return "never"
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _public_page(assets: PageAssets, title: str, *body: HtmlElement | None) -> HtmlElement:
    return page(assets, f"{title} · Stowage", h.Main({"id": "share", "class": "auth"}, *body))


def landing_page(
    assets: PageAssets,
    token: str,
    share: Share,
    row: FileRow,
    now: float,
    *,
    bytes_left: int | None = None,
) -> HtmlElement:
    """`bytes_left`: what a limited link may still send (see app/shares/store.py)."""
    left = ""
    if share.max_downloads is not None:
        remaining = share.max_downloads - share.downloads
        left = f"{remaining} download{'' if remaining == 1 else 's'} left. "
        if bytes_left is not None and bytes_left < row.size:
            left = (
                f"Less than a whole download is left ({human_bytes(bytes_left)}): a download"
                " already begun can be resumed. "
            )
    expires = (
        "This link does not expire."
        if share.expires_at is None
        else f"This link works until {_when(share.expires_at)}."
    )
    return _public_page(
        assets,
        row.name,
        h.H1({"class": "share-name"}, row.name),
        h.P(
            {"class": "file-meta"},
            h.Span(human_bytes(row.size)),
            " · ",
            h.Span(row.mime),
        ),
        h.Img(
            {
                "class": "share-preview",
                "src": SHARE_FILE.href(token, query={"preview": "1"}),
                "alt": f"Preview of {row.name}",
            }
        )
        if can_preview(row, share)
        else None,
        h.P(
            h.A(
                {
                    "class": "button primary",
                    "id": "share-download",
                    "href": SHARE_FILE.href(token, query={"download": "1"}),
                    "download": row.name,
                },
                "Download",
            )
        ),
        h.P({"class": "note"}, left + expires),
    )


def password_page(assets: PageAssets, token: str, *, error: str | None = None) -> HtmlElement:
    return _public_page(
        assets,
        "Shared file",
        h.H1("A shared file"),
        h.Form(
            {"method": "post", "action": SHARE_PAGE.href(token), "class": "auth-form"},
            h.H2("This link needs a password"),
            h.P({"id": "share-error", "class": "error", "role": "alert"}, error or ""),
            h.Label(
                {"class": "field"},
                h.Span("Password"),
                h.Input(
                    {
                        "type": "password",
                        "name": "password",
                        "required": True,
                        "autocomplete": "off",
                    }
                ),
            ),
            h.Button({"type": "submit", "class": "button primary"}, "Open"),
        ),
    )


def gone_page(assets: PageAssets, reason: str) -> HtmlElement:
    return _public_page(
        assets,
        "Link no longer works",
        h.H1("This link no longer works"),
        h.P({"class": "error", "role": "alert"}, f"The file is not available: {reason}."),
    )


def unknown_page(assets: PageAssets) -> HtmlElement:
    return _public_page(
        assets,
        "No such link",
        h.H1("No such link"),
        h.P("This link does not exist (or its file was deleted). Check that it was copied whole."),
    )


# The owner's page ----------------------------------------------------------------------

# On the page's <main>, for every row's Share button at once (one compiled expression,
# and a repainted list of 50 rows stays small).
OPEN_FORM = (
    "const b = evt.target.closest('button[data-share]'); if (!b) return;"
    " $shareFile = b.dataset.share;"
    " $shareName = b.closest('li').querySelector('.file-name').textContent;"
    " $sharePassword = ''; document.getElementById('new-share').replaceChildren();"
    " document.getElementById('share-form').scrollIntoView({block: 'nearest'})"
)
CREATE = (
    "@post('/api/files/' + $shareFile + '/shares',"
    " {filterSignals: {include: '^share'}, retryMaxCount: 0})"
)
REVOKE_ONE = (
    "confirm('Revoke the link to ' + el.dataset.name + '? It stops working at once.')"
    " && @delete(el.dataset.url, {filterSignals: {include: '^$'}, retryMaxCount: 0})"
)


def share_button(row: FileRow) -> HtmlElement:
    """Opens the share form (OPEN_FORM, on the page's <main>) for this row's file."""
    return h.Button(
        {
            "type": "button",
            "class": "button",
            "data-share": row.id,
            "aria-label": f"Share {row.name}",
        },
        "Share",
    )


def share_form() -> HtmlElement:
    """One form for every file; the row's Share button fills `$shareFile`."""
    return h.Form(
        {"id": "share-form", "class": "token-form share-form"},
        data.show("$shareFile !== ''"),
        data.on("submit", CREATE, prevent=True),
        h.P({"class": "share-what"}, "Share ", h.Strong(data.text("$shareName"))),
        h.Label(
            {"class": "field"},
            h.Span("Expires after"),
            h.Select(
                {"name": "expiry"},
                data.bind("shareExpiry"),
                *[h.Option({"value": value}, label) for value, label in EXPIRY_CHOICES],
            ),
        ),
        h.Label(
            {"class": "field"},
            h.Span("Password (optional)"),
            h.Input(
                {"type": "password", "name": "share-password", "autocomplete": "new-password"},
                data.bind("sharePassword"),
            ),
        ),
        h.Label(
            {"class": "field"},
            h.Span("Download limit (optional)"),
            h.Input(
                {"type": "number", "min": 1, "name": "limit", "inputmode": "numeric"},
                data.bind("shareLimit"),
            ),
        ),
        h.Button({"type": "submit", "class": "button primary"}, "Create link"),
        h.Button(
            {"type": "button", "class": "button"}, data.on("click", "$shareFile = ''"), "Close"
        ),
    )


def new_share_part(name: str, link: str) -> HtmlElement:
    return shown_once(
        NEW_SHARE_ID,
        "New link to ",
        name,
        ". Copy it now: it is shown only this once.",
        link,
        value_id="new-share-url",
    )


def new_share_error(message: str) -> HtmlElement:
    return slot_error(NEW_SHARE_ID, message)


def _downloads(share: Share) -> str:
    if share.max_downloads is None:
        return f"{share.downloads} download{'' if share.downloads == 1 else 's'}"
    return f"{share.downloads} of {share.max_downloads} downloads"


def shares_part(listings: list[ShareListing], now: float) -> HtmlElement:
    if not listings:
        return h.Div({"id": SHARES_ID}, h.P({"class": "empty"}, "No shared links."))
    items = []
    for listing in listings:
        share = listing.share
        gone = share.gone(now)
        items.append(
            h.Li(
                {"class": "token share", "id": f"share-{share.id}"},
                h.Div(
                    {"class": "file-main"},
                    h.Span({"class": "file-name"}, listing.file_name),
                    h.Span(
                        {"class": "file-meta"},
                        h.Span({"class": "share-downloads"}, _downloads(share)),
                        h.Span(f"expires {_when(share.expires_at)}"),
                        h.Span("password") if share.has_password else None,
                        h.Strong(f"over: {gone.value}") if gone else None,
                    ),
                ),
                h.Button(
                    {
                        "type": "button",
                        "class": "button danger",
                        "data-url": API_SHARE_REVOKE.href(share.id),
                        "data-name": listing.file_name,
                        "data-action": "revoke the link to",
                        "aria-label": f"Revoke the link to {listing.file_name}",
                    },
                    data.on("click", REVOKE_ONE),
                    "Revoke",
                ),
            )
        )
    return h.Div({"id": SHARES_ID}, h.Ul({"class": "token-list"}, *items))


def shares_panel(listings: list[ShareListing], now: float) -> HtmlElement:
    return h.Section(
        {"id": "shared-links", "aria-labelledby": "shares-title"},
        h.H2({"id": "shares-title"}, "Shared links"),
        h.P(
            {"class": "note"},
            "Anyone with a link can open its one file, without an account. "
            "Links are shown only when made; revoke one the moment it may have leaked.",
        ),
        share_form(),
        h.Div({"id": NEW_SHARE_ID}),
        shares_part(listings, now),
    )
