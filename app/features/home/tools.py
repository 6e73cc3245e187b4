"""The list's tools: search, type and sort, the list or grid switch, the selection bar
and what it acts on, and the upload progress the stream repaints."""

from collections.abc import Sequence

from stario import h
from stario.datastar import data
from stario.markup import HtmlElement

from app.common.units import human_bytes
from app.features.archives.urls import API_ARCHIVES
from app.features.files.urls import API_FILES_DELETE
from app.features.folders.urls import (
    API_FILES_MOVE,
    FOLDERS_DOOMED,
)
from app.features.home.listing import Listing
from app.features.home.urls import VIEW
from app.features.shares.panel import RESET_FORM as RESET_SHARE_FORM
from app.files.query import TYPES, FileQuery
from app.folders.store import ROOT, ROOT_ID, api_id
from app.ingest.progress import Paused, RemoteTransfer, Transfer

# The list's two views; the choice is a cookie, so the first paint is already right.
VIEW_COOKIE = "stowage_view"
VIEWS = ("list", "grid")


TYPE_LABELS = {
    "": "All types",
    "images": "Images",
    "video": "Video",
    "audio": "Audio",
    "documents": "Documents",
    "other": "Other",
}
SORT_LABELS = {
    "created-desc": "Newest first",
    "created-asc": "Oldest first",
    "name-asc": "Name, A to Z",
    "name-desc": "Name, Z to A",
    "size-desc": "Largest first",
    "size-asc": "Smallest first",
}
assert set(TYPE_LABELS) == {"", *TYPES}
# A search, a type or a sort changed: page 1 of the new list, which the stream
# paints (`listSeen` cleared: the tab no longer shows what it was opened with). The
# address bar follows, so a reload or a shared link shows the same list.
SEARCH = (
    "$listPage = 1; $listSeen = ''; $_matching = [];"
    " const p = new URLSearchParams();"
    " if ($listQ.trim()) p.set('q', $listQ.trim()); if ($listType) p.set('type', $listType);"
    " if ($listSort !== 'created-desc') p.set('sort', $listSort);"
    " if ($listFolder) p.set('folder', $listFolder);"
    " history.replaceState(null, '', '/' + (p.size ? '?' + p : ''));"
    " document.getElementById('home').dispatchEvent(new CustomEvent('stowage-search'))"
)


def search_form(query: FileQuery, folder: str = ROOT) -> HtmlElement:
    """Search, type and sort. With scripts, typing filters the list (300 ms after the
    last key) through the stream; without, it is a plain GET form to `/`."""
    sort = f"{query.sort}-{query.order}"

    def options(labels: dict[str, str], chosen: str) -> list[HtmlElement]:
        return [
            h.Option({"value": value, "selected": value == chosen}, label)
            for value, label in labels.items()
        ]

    return h.Form(
        {"id": "search", "class": "search", "role": "search", "method": "get", "action": "/"},
        data.on("submit", SEARCH, prevent=True),
        h.Input({"type": "hidden", "name": "folder", "value": api_id(folder)})
        if folder != ROOT
        else None,
        h.Label(
            {"class": "field"},
            h.Span("Search names (every folder)"),
            h.Input(
                {
                    "type": "search",
                    "name": "q",
                    "value": query.q,
                    "maxlength": 200,
                    "placeholder": "Search names",
                },
                data.bind("listQ"),
                data.on("input", SEARCH, debounce="300ms"),
            ),
        ),
        h.Label(
            {"class": "field"},
            h.Span("Type"),
            h.Select(
                {"name": "type"},
                data.bind("listType"),
                data.on("change", SEARCH),
                *options(TYPE_LABELS, query.type or ""),
            ),
        ),
        h.Label(
            {"class": "field"},
            h.Span("Sort"),
            h.Select(
                {"name": "sort"},
                data.bind("listSort"),
                data.on("change", SEARCH),
                *options(SORT_LABELS, sort),
            ),
        ),
        h.Noscript(h.Button({"type": "submit", "class": "button"}, "Search")),
    )


def list_signals(listing: Listing, version: str) -> dict[str, str | int]:
    """What the stream's GET sends (`^list`): the tab's search, page and version."""
    query = listing.query
    return {
        "listQ": query.q,
        "listType": query.type or "",
        "listSort": f"{query.sort}-{query.order}",
        "listPage": listing.page,
        # The folder shown (its id; "" the root).
        "listFolder": (api_id(listing.folder) or "") if listing.folder != ROOT else "",
        "listSeen": version,
        # Set by the stream when the server ends it for good (too many open pages).
        "listEnded": False,
    }


def progress_part(
    transfers: Sequence[Transfer | RemoteTransfer], paused: Sequence[Paused] = ()
) -> HtmlElement:
    """`#progress`: every upload the server is receiving, from any tab or client, and
    the resumable ones waiting for their client to go on."""
    items = []
    for t in transfers:
        rate = f"{human_bytes(int(t.bytes_per_second()))}/s"
        if t.expected:
            percent = min(100, t.received * 100 // t.expected)
            amount = f"{human_bytes(t.received)} of {human_bytes(t.expected)} ({percent}%)"
            bar = h.Progress(
                {"id": f"transfer-{t.id}", "max": t.expected, "value": min(t.received, t.expected)},
                f"{percent}%",
            )
        else:
            amount = f"{human_bytes(t.received)} so far"
            bar = h.Progress({"id": f"transfer-{t.id}"})
        items.append(
            h.Li(
                {"class": "transfer"},
                h.Label({"for": f"transfer-{t.id}"}, "Receiving ", h.Strong(t.label)),
                bar,
                h.Span({"class": "transfer-meta"}, f"{amount} · {rate}"),
            )
        )
    for p in paused:
        bar_id = f"paused-{p.key}"
        if p.expected:
            percent = min(100, p.received * 100 // p.expected)
            amount = f"{human_bytes(p.received)} of {human_bytes(p.expected)} ({percent}%)"
            bar = h.Progress({"id": bar_id, "max": p.expected, "value": p.received}, f"{percent}%")
        else:
            amount = f"{human_bytes(p.received)} so far"
            bar = h.Progress({"id": bar_id, "max": 1, "value": 0})
        items.append(
            h.Li(
                {"class": "transfer paused"},
                h.Label({"for": bar_id}, "Paused ", h.Strong(p.label)),
                bar,
                h.Span({"class": "transfer-meta"}, f"{amount} · paused: resumes when its"
                       " client sends again"),
            )
        )  # fmt: skip
    return h.Ul({"id": "progress", "aria-label": "Uploads being received"}, *items)


# The selection is the ticked boxes themselves: a live repaint keeps a row's box as
# it was (rows are matched by id), and a row that vanished takes its tick with it.
# `$_picked` counts them (files and folders) for the bar; `$_pageAll`: every row of
# this page is ticked. `$_matching`: all file ids of the list on every page ("Select
# all N matching").
COUNT_PICKED = (
    "{ const boxes = [...document.querySelectorAll('#files .pick')];"
    " $_picked = boxes.filter(b => b.checked).length;"
    " $_pageAll = boxes.length > 0 && $_picked === boxes.length;"
    " const all = document.getElementById('pick-page');"
    " if (all) { all.checked = $_pageAll; all.indeterminate = $_picked > 0 && !$_pageAll } }"
)
PICK = "if (!evt.target.classList.contains('pick')) return; $_matching = [];" + COUNT_PICKED
PICK_PAGE = (
    "document.querySelectorAll('#files .pick').forEach(b => b.checked = el.checked);"
    " $_matching = [];" + COUNT_PICKED
)
SELECT_MATCHING_ALL = "@get(el.dataset.url, {filterSignals: {include: '^list'}, retryMaxCount: 0})"
# What a bulk action acts on: every matching file, or the ticked file rows; and the
# ticked folder rows.
PICKED_IDS = (
    "($_matching.length ? $_matching"
    " : [...document.querySelectorAll('#files .file .pick:checked')]"
    ".map(b => b.closest('li').id.slice(5)))"
)
PICKED_FOLDERS = (
    "[...document.querySelectorAll('#files .folder .pick:checked')]"
    ".map(b => b.closest('li').id.slice(7))"
)
# Files alone: the browser asks (the count says it all). With folders: the server
# says what would go ("Delete 3 folders and 1,204 files, 6.1 GiB?", `#delete-confirm`).
DELETE_PICKED = (
    f"const ids = {PICKED_IDS}, folders = {PICKED_FOLDERS};"
    " if (!ids.length && !folders.length) return;"
    " if (folders.length) {"
    f" @post('{FOLDERS_DOOMED.href()}', {{payload: {{ids, folders}}, retryMaxCount: 0}}); return }}"
    " if (!confirm('Delete ' + ids.length.toLocaleString()"
    " + (ids.length === 1 ? ' file' : ' files') + '? It cannot be undone.')) return;"
    " @post(el.dataset.url, {payload: {ids}, retryMaxCount: 0})"
)


# The archive's answer sets `$_download`; DOWNLOAD fetches it as a file. Folders go
# in as a whole, with their paths.
ZIP_PICKED = (
    f"const ids = {PICKED_IDS}, folders = {PICKED_FOLDERS};"
    " if (!ids.length && !folders.length) return;"
    " @post(el.dataset.url, {payload: folders.length ? {ids, folders} : {ids},"
    " retryMaxCount: 0})"
)
MOVE_PICKED = (
    f"const ids = {PICKED_IDS}, folders = {PICKED_FOLDERS};"
    " if (!ids.length && !folders.length) return;"
    " @post(el.dataset.url, {payload: {ids, folders, to: $_moveTo || 'root'},"
    " retryMaxCount: 0})"
)
# One folder alone shares that folder; files alone share that set; anything else is
# a notice (a link is a folder or a set of files, never a mix).
SHARE_PICKED = (
    f"const ids = {PICKED_IDS}, folders = {PICKED_FOLDERS};"
    " if (!ids.length && !folders.length) return;"
    " if (folders.length > 1 || (folders.length && ids.length)) {"
    " $_notice = 'A link shares one folder or a set of files: select one folder alone,"
    " or files without folders.'; return }"
    " $_notice = ''; $shareFile = ''; $shareIds = folders.length ? [] : ids;"
    " $shareFolder = folders.length ? folders[0] : '';"
    " $shareName = folders.length ? document.getElementById('folder-' + folders[0])"
    ".querySelector('.folder-name').textContent"
    " : ids.length.toLocaleString() + (ids.length === 1 ? ' file' : ' files');" + RESET_SHARE_FORM
)
DOWNLOAD = (
    "if (!$_download) return; const a = document.createElement('a');"
    " a.href = $_download; a.download = ''; document.body.append(a); a.click(); a.remove();"
    " $_download = ''"
)
PICKED_TEXT = (
    "$_matching.length ? 'All ' + $_matching.length.toLocaleString() + ' matching selected'"
    " : $_picked ? $_picked + ' selected' : 'Select files to act on several at once'"
)
SET_VIEW = (
    "$_view = evt.submitter.value;"
    " document.cookie = 'stowage_view=' + $_view + '; path=/; max-age=31536000; samesite=lax'"
)


def move_targets(places: Sequence[tuple[str, str]]) -> HtmlElement:
    """`#move-to`: where a selection can be moved, every folder of the account by its
    path (`places`: api id and path). The stream repaints it when folders change."""
    return h.Select(
        {"id": "move-to", "name": "to"},
        data.bind("_moveTo"),
        h.Option({"value": ROOT_ID}, "/ (Files)"),
        *[h.Option({"value": folder_id}, path) for folder_id, path in places],
    )


def selection_bar(places: Sequence[tuple[str, str]] = ()) -> HtmlElement:
    """Select this page, and act on what is picked (files and folders alike). It needs
    scripts (hidden until Datastar shows it); outside `#files`, so repaints leave it
    alone."""
    return h.Div(
        {"id": "selection", "class": "selection", "hidden": True},
        data.attr("hidden", "false"),
        data.effect(DOWNLOAD),
        h.Label(
            {"class": "pick-page"},
            h.Input({"type": "checkbox", "id": "pick-page"}, data.on("change", PICK_PAGE)),
            " Select all on this page",
        ),
        h.Span({"class": "picked", "role": "status"}, data.text(PICKED_TEXT)),
        h.Button(
            {
                "type": "button",
                "class": "button",
                "data-url": API_ARCHIVES.href(),
                "data-name": "the selection as a ZIP",
                "data-action": "download",
            },
            data.attr("disabled", "!$_picked && !$_matching.length"),
            data.on("click", ZIP_PICKED),
            "Download selected as ZIP",
        ),
        h.Button(
            {
                "type": "button",
                "class": "button danger",
                "data-url": API_FILES_DELETE.href(),
                "data-name": "the selection",
            },
            data.attr("disabled", "!$_picked && !$_matching.length"),
            data.on("click", DELETE_PICKED),
            "Delete selected",
        ),
        h.Button(
            {"type": "button", "class": "button"},
            data.attr("disabled", "!$_picked && !$_matching.length"),
            data.on("click", SHARE_PICKED),
            "Share selected",
        ),
        h.Span(
            {"class": "move"},
            h.Label({"for": "move-to"}, "Move to"),
            move_targets(places),
            h.Button(
                {
                    "type": "button",
                    "class": "button",
                    "data-url": API_FILES_MOVE.href(),
                    "data-name": "the selection",
                    "data-action": "move",
                },
                data.attr("disabled", "!$_picked && !$_matching.length"),
                data.on("click", MOVE_PICKED),
                "Move selected",
            ),
        ),
    )


def view_switch(view: str, back: str) -> HtmlElement:
    """List or grid. With scripts the choice is a cookie set in the page; without, the
    form posts it (VIEW) and comes back to `back`."""
    return h.Form(
        {"class": "view-switch", "method": "post", "action": VIEW.href(), "aria-label": "View"},
        data.on("submit", SET_VIEW, prevent=True),
        h.Input({"type": "hidden", "name": "next", "value": back}),
        *[
            h.Button(
                {
                    "type": "submit",
                    "name": "view",
                    "value": choice,
                    "class": "button" + (" on" if choice == view else ""),
                    "aria-pressed": "true" if choice == view else "false",
                },
                data.class_("on", f"$_view === '{choice}'"),
                data.attr("aria-pressed", f"$_view === '{choice}' ? 'true' : 'false'"),
                choice.capitalize(),
            )
            for choice in VIEWS
        ],
    )
