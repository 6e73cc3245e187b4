"""The page at `/`: an upload panel this tab owns, and the shared list the stream repaints.

The stream (`GET /live`) patches only `#files` and `#progress`. The upload panel
holds what this tab alone is doing (picked files, its own result lines from the
upload's reply, its error text), so a repaint must never touch it.
"""

from collections.abc import Sequence

from stario import h
from stario.datastar import at, data
from stario.markup import HtmlElement, SafeString

from app.accounts.store import Account
from app.common.shell import PageAssets
from app.common.units import human_bytes
from app.config import Config
from app.features.direct.urls import DIRECT_OPEN
from app.features.files.panel import RENAME_SIGNALS
from app.features.folders.panel import FOLDER_SIGNALS
from app.features.home.dialogs import (
    ROW_ACTIONS,
    delete_confirmation,
    folder_rename_form,
    new_folder_form,
    rename_form,
)
from app.features.home.filelist import paint_list
from app.features.home.listing import Listing, Usage
from app.features.home.rows import icons
from app.features.home.tools import (
    COUNT_PICKED,
    PICK,
    list_signals,
    progress_part,
    search_form,
    selection_bar,
    view_switch,
)
from app.features.home.urls import HOME, HOME_LIVE
from app.features.nav.panel import screen_page
from app.features.previews.panel import preview_region
from app.features.resumable.urls import CREATE as TUS_CREATE
from app.features.shares.panel import OPEN_FORM as OPEN_SHARE_FORM
from app.features.shares.panel import SIGNALS as SHARE_SIGNALS
from app.features.shares.panel import share_dialog
from app.features.uploads.panel import (
    UPLOAD_SIGNALS,
    Resumable,
    drop_anywhere,
    upload_section,
)
from app.features.uploads.urls import UPLOADS
from app.folders.store import ROOT, api_id
from app.ingest.progress import Paused, RemoteTransfer, Transfer

PAGE_FEEDBACK = (
    "const d = evt.detail;"
    " if (d.el === el) {"
    " if (d.type === 'datastar-patch-elements') setTimeout(() => " + COUNT_PICKED + ");"
    " else if (d.type === 'error' && d.argsRaw.status === '401')"
    " window.location.assign('/login?next=' + encodeURIComponent(location.pathname"
    " + location.search));"
    " else if (d.type === 'retrying' || d.type === 'retries-failed') $_offline = true;"
    " return }"
    " if (!d.el.dataset || !d.el.dataset.url) return;"
    " const verb = d.el.dataset.action || 'delete';"
    " if (d.type === 'started') $_notice = '';"
    " else if (d.type === 'error') $_notice = d.argsRaw.status === '404'"
    " ? d.el.dataset.name + ' was already gone.'"
    " : d.argsRaw.status === '401' ? 'You are signed out; reload the page and sign in.'"
    " : 'Could not ' + verb + ' ' + d.el.dataset.name + ' (HTTP ' + d.argsRaw.status + ').';"
    " else if (d.type === 'retries-failed')"
    " $_notice = 'Could not reach the server to ' + verb + ' ' + d.el.dataset.name + '.'"
)


def _here(listing: Listing) -> str:
    """This page's address: its folder and its search."""
    wanted = listing.query.params()
    if listing.folder != ROOT:
        wanted["folder"] = listing.folder
    return HOME.href(query=wanted)


def render(
    config: Config,
    assets: PageAssets,
    account: Account,
    listing: Listing,
    transfers: Sequence[Transfer | RemoteTransfer],
    usage: Usage,
    *,
    nonce: str,
    paused: Sequence[Paused] = (),
    view: str = "list",
    places: Sequence[tuple[str, str]] = (),
    preview: HtmlElement | None = None,
    direct_uploads: bool = False,
) -> HtmlElement:
    # The list and usage are rendered once: the HTML the stream would send, and its
    # version (`python -m bench screens`: rendering the 50 rows twice cost about a
    # third of the page's answer).
    painted = paint_list(listing, usage)
    version = painted.version
    live = at.get(
        HOME_LIVE.href(query={"page": listing.page, "seen": version}),
        retry="always",
        include="^list",
    )
    return screen_page(
        assets,
        "Files",
        account,
        "files",
        h.Main(
            {"id": "home"},
            data.signals(
                {
                    **UPLOAD_SIGNALS,
                    "_notice": "",
                    "_offline": False,
                    **SHARE_SIGNALS,
                    **RENAME_SIGNALS,
                    **FOLDER_SIGNALS,
                    "_renaming": "",
                    "_renameError": "",
                    "_folderRenameError": "",
                    "_picked": 0,
                    "_pageAll": False,
                    "_matching": [],
                    "_download": "",
                    "_view": view,
                    **list_signals(listing, version),
                },
                if_missing=True,
            ),
            data.init(live),
            # A search asks for the stream again with the new `list*` signals. Datastar
            # cancels a request when the same method and URL are asked for again, so
            # the URL stays the one the page opened the stream with (the signals win).
            data.on("stowage-search", live),
            data.on("datastar-fetch", PAGE_FEEDBACK),
            data.on("click", OPEN_SHARE_FORM),
            *drop_anywhere(),
            upload_section(
                config,
                UPLOADS.href(query={"folder": listing.folder})
                if listing.folder
                else UPLOADS.href(),
                # Short on purpose: on a phone the list starts on the first screen.
                h.Div(
                    {"class": "hint limits"},
                    h.Span({"id": "limits"}, f"Up to {human_bytes(config.max_file_bytes)} a file."),
                    h.Details(
                        h.Summary("Large files and terminal uploads"),
                        h.P(
                            "Large files go up in pieces and resume after a lost connection"
                            " or a reload: choose the same file again. From a terminal, with"
                            " an API token (Account screen): ",
                            h.Code(f"curl -u :TOKEN -T FILE {config.public_url}{UPLOADS.href()}/"),
                        ),
                    ),
                ),
                resumable=Resumable(
                    TUS_CREATE.href(),
                    account.id,
                    folder=api_id(listing.folder) or "",
                    direct=DIRECT_OPEN.href() if direct_uploads else "",
                ),
                folders=True,
            ),
            h.Section(
                {
                    "id": "library",
                    "class": "grid" if view == "grid" else None,
                    "aria-labelledby": "files-title",
                },
                data.class_("grid", "$_view === 'grid'"),
                data.on("click", ROW_ACTIONS),
                data.on("change", PICK),
                icons(),
                h.H1({"id": "files-title"}, "Files"),
                SafeString(painted.usage),
                h.P(
                    {"class": "offline", "role": "status"},
                    data.text(
                        "$_offline && !$listEnded ? 'Connection lost; reconnecting. "
                        "The list may be out of date.' : ''"
                    ),
                ),
                h.P({"id": "notice", "class": "error", "role": "alert"}, data.text("$_notice")),
                progress_part(transfers, paused),
                h.Div(
                    {"class": "list-tools"},
                    search_form(listing.query, listing.folder),
                    view_switch(view, _here(listing)),
                ),
                new_folder_form(listing.folder),
                selection_bar(places),
                delete_confirmation(),
                rename_form(),
                folder_rename_form(),
                SafeString(painted.files),
            ),
            share_dialog(),
            preview_region(preview),
        ),
        nonce=nonce,
        modules=(assets.resumable_js,),
    )
