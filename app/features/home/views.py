"""The page at `/`: an upload panel this tab owns, and the shared list the stream repaints.

The stream (`GET /live`) patches only `#files` and `#progress`. The upload panel
holds what this tab alone is doing (picked files, its own result lines from the
upload's reply, its error text), so a repaint must never touch it.
"""

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from stario import h
from stario.datastar import at, data
from stario.markup import HtmlElement, svg
from stario.markup.render import render as render_markup

from app.accounts.store import Account
from app.common.shell import PageAssets
from app.common.units import human_bytes
from app.config import Config
from app.features.archives.urls import API_ARCHIVES
from app.features.files.panel import RENAME_SIGNALS
from app.features.files.urls import API_FILES_DELETE, FILE
from app.features.folders.panel import FOLDER_SIGNALS
from app.features.folders.urls import (
    API_FILES_MOVE,
    FOLDER_CREATE,
    FOLDERS_DELETE,
    FOLDERS_DOOMED,
)
from app.features.home.urls import HOME, HOME_LIVE, SELECT_MATCHING, VIEW
from app.features.nav.panel import screen_page
from app.features.previews.data import preview_href
from app.features.previews.panel import preview_region
from app.features.previews.urls import THUMBNAIL
from app.features.resumable.urls import CREATE as TUS_CREATE
from app.features.shares.panel import OPEN_FORM as OPEN_SHARE_FORM
from app.features.shares.panel import RESET_FORM as RESET_SHARE_FORM
from app.features.shares.panel import SIGNALS as SHARE_SIGNALS
from app.features.shares.panel import share_button, share_dialog, share_folder_button
from app.features.uploads.panel import (
    UPLOAD_SIGNALS,
    Resumable,
    drop_anywhere,
    upload_section,
)
from app.features.uploads.urls import UPLOADS
from app.files.query import EVERY_FILE, TYPES, FileQuery, kind_of
from app.files.store import FileRow
from app.folders.store import ROOT, ROOT_ID, FolderRow, Totals, api_id
from app.ingest.progress import Paused, RemoteTransfer, Transfer
from app.previews.thumbnails import NO_PREVIEWS, Previews

PAGE_SIZE = 50


@dataclass(frozen=True, slots=True)
class Listing:
    """One page of the list as `query` asks for it (by default all, newest first)."""

    rows: list[FileRow]
    total: int
    page: int
    pages: int
    query: FileQuery = EVERY_FILE
    # Which rows show a thumbnail (the others a type icon).
    previews: Previews = NO_PREVIEWS
    # The folder shown ('' the root), the folders from the top down to it, and the
    # folders directly in it with what each holds (none while searching by name).
    folder: str = ROOT
    trail: tuple[FolderRow, ...] = ()
    folders: tuple[tuple[FolderRow, Totals], ...] = ()
    # A search by name runs across every folder; each row's folder path is shown.
    paths: dict[str, str] | None = None
    # The folder asked for does not exist (deleted meanwhile, or never this account's).
    gone: bool = False

    @property
    def across(self) -> bool:
        """The rows come from every folder (a search by name), not the one shown."""
        return self.paths is not None


@dataclass(frozen=True, slots=True)
class Usage:
    """What the account stores, against its quota (None: no quota)."""

    used: int
    quota: int | None


def usage_part(usage: Usage) -> HtmlElement:
    """`#usage`: the account's storage, a bar when it has a quota."""
    if usage.quota is None:
        return h.P(
            {"id": "usage", "class": "usage"}, f"{human_bytes(usage.used)} stored (no quota)."
        )
    percent = min(100, usage.used * 100 // max(1, usage.quota))
    return h.Div(
        {"id": "usage", "class": "usage" + (" full" if percent >= 90 else "")},
        h.Label(
            {"for": "usage-bar"},
            f"{human_bytes(usage.used)} of {human_bytes(usage.quota)} used ({percent}%)",
        ),
        h.Progress(
            {"id": "usage-bar", "max": usage.quota, "value": min(usage.used, usage.quota)},
            f"{percent}%",
        ),
    )


def _uploaded_at(created_at: str) -> str:
    """`2026-11-21T20:01:02.123456Z` -> `2026-11-21 20:01 UTC`."""
    return created_at[:10] + " " + created_at[11:16] + " UTC"


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}" + ("" if count == 1 else "s")


def folder_href(folder_id: str) -> str:
    """The page showing a folder (the root is `/`)."""
    return HOME.href(query={"folder": folder_id}) if folder_id != ROOT else HOME.href()


def breadcrumb(listing: Listing) -> HtmlElement:
    """Files > a > b: every step but the last is a link."""
    steps: list[tuple[str, str]] = [(ROOT, "Files")]
    steps += [(f.id, f.name) for f in listing.trail]
    if listing.across:
        steps.append(("", "Search in every folder"))
    items = []
    for number, (folder_id, name) in enumerate(steps):
        last = number == len(steps) - 1
        items.append(
            h.Li(
                h.Span({"aria-current": "page"}, name)
                if last
                else h.A({"href": folder_href(folder_id)}, name)
            )
        )
    return h.Nav({"class": "breadcrumb", "aria-label": "Folder"}, h.Ol(*items))


def _folder_row(folder: FolderRow, total: Totals) -> HtmlElement:
    # As lean as a file's row: the buttons carry no expression (FOLDER_ACTIONS).
    return h.Li(
        {"id": f"folder-{folder.id}", "class": "folder"},
        h.Input(
            {"type": "checkbox", "class": "pick", "aria-label": f"Select folder {folder.name}"}
        ),
        svg.Svg(
            {"class": "preview icon", "aria-hidden": "true"}, svg.Use({"href": "#icon-folder"})
        ),
        h.Div(
            {"class": "file-main"},
            h.A({"class": "folder-name", "href": folder_href(folder.id)}, folder.name),
            h.Span(
                {"class": "file-meta"},
                h.Span(human_bytes(total.size)),
                h.Span(_plural(total.files, "file")),
                h.Span(_plural(total.folders, "folder")) if total.folders else None,
                h.Time({"datetime": folder.created_at[:19] + "Z"}, _uploaded_at(folder.created_at)),
            ),
        ),
        h.Div(
            {"class": "file-actions"},
            share_folder_button(folder.id, folder.name, f"Share folder {folder.name}"),
            h.Button({"class": "button", "data-folder-rename": True}, "Rename"),
            h.Button(
                {
                    "class": "button danger",
                    "data-folder-delete": True,
                    "aria-label": f"Delete folder {folder.name}",
                },
                "Delete",
            ),
        ),
    )


def folder_head(listing: Listing) -> HtmlElement:
    """`#files > .folder-head`: the breadcrumb and the folders of the folder shown."""
    here = "/" + "".join(f.name + "/" for f in listing.trail)
    return h.Div(
        {"class": "folder-head"},
        h.Div(
            {"class": "folder-here"},
            breadcrumb(listing),
            None
            if listing.across
            else share_folder_button(
                ROOT_ID if listing.folder == ROOT else listing.folder,
                here,
                f"Share this folder, {here}, as one link",
            ),
        ),
        h.Ul(
            {"class": "folder-list", "aria-label": "Folders"},
            *[_folder_row(folder, total) for folder, total in listing.folders],
        )
        if listing.folders
        else None,
    )


# The list's two views; the choice is a cookie, so the first paint is already right.
VIEW_COOKIE = "stowage_view"
VIEWS = ("list", "grid")
# Thumbnails are at most 320 px on the long side; the list shows them in a square
# (CSS sizes it per view). The size is in the markup so a row never jumps as it loads.
PREVIEW_PIXELS = 48


def preview(row: FileRow, ready: bool) -> HtmlElement:
    """The row's thumbnail when there is one, else its type's icon (`icons()`). The live
    stream swaps the icon for the thumbnail when it is made (`.preview` in the row)."""
    if ready:
        return h.Img(
            {
                "class": "preview",
                "src": THUMBNAIL.href(file_id=row.id),
                "loading": "lazy",
                "width": PREVIEW_PIXELS,
                "height": PREVIEW_PIXELS,
                "alt": "",
            }
        )
    kind = kind_of(row.mime)
    return svg.Svg(
        {"class": "preview icon", "aria-hidden": "true"},
        svg.Use({"href": f"#icon-{kind}"}),
    )


def _file_row(
    row: FileRow, ready: bool, path: str | None = None, opens: str | None = None
) -> HtmlElement:
    # Lean on purpose: 50 rows go out with every repaint. The Rename and Delete
    # buttons carry no expression (ROW_ACTIONS, on the list's section, reads the row),
    # and the checkbox none either (PICK, the same).
    return h.Li(
        {"id": f"file-{row.id}", "class": "file"},
        h.Input(
            {
                "type": "checkbox",
                "class": "pick",
                "aria-label": f"Select {row.name}",
            }
        ),
        preview(row, ready),
        h.Div(
            {"class": "file-main"},
            # The name opens the file's preview (`opens`, the page with `?preview=`;
            # app/features/previews/panel.py opens it in place with scripts).
            h.A(
                {"class": "file-name opens-preview", "href": opens}
                if opens is not None
                else {"class": "file-name", "href": FILE.href(row.id), "target": "_blank"},
                row.name,
            ),
            h.Span(
                {"class": "file-meta"},
                h.Span(human_bytes(row.size)),
                h.Span(row.mime),
                # To the second: the microseconds are not shown, and 50 rows repaint.
                h.Time({"datetime": row.created_at[:19] + "Z"}, _uploaded_at(row.created_at)),
                h.A(
                    {"class": "file-folder", "href": folder_href(row.folder_id)},
                    "in ",
                    path,
                )
                if path is not None
                else None,
                h.Span(
                    {"class": "tag request-tag", "title": "Sent through a file request"},
                    "via ",
                    row.request_label,
                )
                if row.request_label is not None
                else None,
            ),
        ),
        h.Div(
            {"class": "file-actions"},
            h.A(
                {
                    "class": "button",
                    "href": FILE.href(row.id, query={"download": "1"}),
                    # The name comes with the download's Content-Disposition.
                    "download": True,
                    "aria-label": f"Download {row.name}",
                },
                "Download",
            ),
            share_button(row),
            # No form around the rows: a button's default type submits nothing.
            h.Button({"class": "button", "data-rename": True}, "Rename"),
            h.Button(
                {"class": "button danger", "data-delete": True, "aria-label": f"Delete {row.name}"},
                "Delete",
            ),
        ),
    )


def _icon(kind: str, *shapes: HtmlElement) -> HtmlElement:
    return svg.Symbol({"id": f"icon-{kind}", "viewBox": "0 0 24 24"}, *shapes)


def icons() -> HtmlElement:
    """The type icons, drawn here once and used by every row (`<use href="#icon-…">`)."""
    # Stroke and colour come from the stylesheet (`.preview.icon`), per use.
    return svg.Svg(
        {"class": "icons", "aria-hidden": "true"},
        _icon(
            "images",
            svg.Rect({"x": 3, "y": 4, "width": 18, "height": 16, "rx": 2}),
            svg.Circle({"cx": 8.5, "cy": 9.5, "r": 1.8}),
            svg.Path({"d": "M4 18l5-5 3.5 3.5L15 14l5 5"}),
        ),
        _icon(
            "video",
            svg.Rect({"x": 3, "y": 5, "width": 18, "height": 14, "rx": 2}),
            svg.Path({"d": "M10 9v6l5-3z"}),
        ),
        _icon(
            "audio",
            svg.Path({"d": "M9 18V6l10-2v12"}),
            svg.Circle({"cx": 6.5, "cy": 18, "r": 2.5}),
            svg.Circle({"cx": 16.5, "cy": 16, "r": 2.5}),
        ),
        _icon(
            "documents",
            svg.Path({"d": "M6 3h8l4 4v14H6z"}),
            svg.Path({"d": "M14 3v4h4M9 12h6M9 15h6M9 18h4"}),
        ),
        _icon(
            "folder",
            svg.Path(
                {"d": "M3 6a1 1 0 0 1 1-1h5l2 2h9a1 1 0 0 1 1 1v10a1 1 0 0 1-1 1H4a1 1 0 0 1-1-1z"}
            ),
        ),
        _icon(
            "other",
            svg.Path({"d": "M6 3h8l4 4v14H6z"}),
            svg.Path({"d": "M14 3v4h4"}),
        ),
    )


def rename_form() -> HtmlElement:
    """One form for every row, outside `#files` so a live repaint keeps what is typed
    (a form in each of 50 rows would double the size of every repaint). A row's Rename
    button (ROW_ACTIONS, on the list's section) fills `$renameFile` and `$renameName`."""
    return h.Form(
        {"id": "rename-form", "class": "token-form rename-form", "data-action": "rename"},
        data.show("$renameFile !== ''"),
        data.on("submit", RENAME, prevent=True),
        h.Label(
            {"class": "field"},
            h.Span("Rename ", h.Strong(data.text("$_renaming")), " to"),
            h.Input(
                {"id": "rename-name", "type": "text", "name": "name", "maxlength": 1020},
                data.bind("renameName"),
            ),
        ),
        h.Button({"type": "submit", "class": "button primary"}, "Save"),
        h.Button(
            {"type": "button", "class": "button"}, data.on("click", "$renameFile = ''"), "Cancel"
        ),
    )


@dataclass(frozen=True, slots=True)
class ListPieces:
    """`#files` of a list that has rows, as the pieces a repaint may send alone: its
    summary, each row by file id, in order, and its pager ("" when it has none)."""

    summary: str
    rows: tuple[tuple[str, str], ...]
    pager: str
    # The breadcrumb and the folders (`folder_head`).
    head: str = ""

    def html(self) -> str:
        # What `render_markup(files_part(listing))` gives (a test holds them equal).
        rows = "".join(html for _, html in self.rows)
        return (
            f'<div id="files">{self.head}{self.summary}<ul class="file-list">{rows}</ul>'
            f"{self.pager}</div>"
        )


def list_pieces(listing: Listing) -> ListPieces | None:
    """The pieces of `files_part(listing)`; None for the lists without rows."""
    if not listing.rows or not listing.total:
        return None
    return ListPieces(
        render_markup(_summary(listing)),
        tuple((row.id, render_markup(_listed_row(listing, row))) for row in listing.rows),
        render_markup(_pager(listing)) if listing.pages > 1 else "",
        render_markup(folder_head(listing)),
    )


def _listed_row(listing: Listing, row: FileRow) -> HtmlElement:
    path = listing.paths.get(row.folder_id, "/") if listing.paths is not None else None
    opens = preview_href(listing.query, listing.folder, row.id)
    return _file_row(row, row.id in listing.previews.ready, path, opens)


# A patch of part of `#files`: HTML, the selector it goes to, and how (None: remove
# what the selector matches).
type ListChange = tuple[str, str, Literal["outer", "prepend", "after"] | None]


def list_changes(old: ListPieces, new: ListPieces) -> list[ListChange] | None:
    """What turns `old` into `new` in a page that shows `old`, as patches, or None when
    the whole list is simpler: the rows both have must keep their order, and the pager
    its presence.

    An upload, a delete or a rename changes a row or two of fifty: a repaint that sends
    those instead of the whole list is ~2 kB a page instead of ~47 kB (`python -m bench
    live`)."""
    old_rows, new_rows = dict(old.rows), dict(new.rows)
    if bool(old.pager) != bool(new.pager):
        return None
    kept_old = [file_id for file_id, _ in old.rows if file_id in new_rows]
    kept_new = [file_id for file_id, _ in new.rows if file_id in old_rows]
    if kept_old != kept_new:
        return None
    changes: list[ListChange] = []
    if old.head != new.head:
        changes.append((new.head, "#files > .folder-head", "outer"))
    if old.summary != new.summary:
        changes.append((new.summary, "#files > .summary", "outer"))
    for file_id, _ in old.rows:
        if file_id not in new_rows:
            changes.append(("", f"#file-{file_id}", None))
    previous: str | None = None
    for file_id, html in new.rows:
        if file_id not in old_rows:
            if previous is None:
                changes.append((html, "#files > .file-list", "prepend"))
            else:
                changes.append((html, f"#file-{previous}", "after"))
        elif old_rows[file_id] != html:
            changes.append((html, f"#file-{file_id}", "outer"))
        previous = file_id
    if old.pager != new.pager:
        changes.append((new.pager, "#files > .pager", "outer"))
    # Most rows changed (a new sort, page or search): the whole list says it as well.
    if sum(len(html) for html, _, _ in changes) * 2 > len(new.html()):
        return None
    return changes


@dataclass(frozen=True, slots=True)
class PaintedList:
    """`#files` and `#usage` as HTML, and a digest of both (`version`).

    The page hands the version to `/live` (`?seen=`) and every repaint carries it as
    its SSE id, which Datastar sends back as `Last-Event-ID` when it reconnects: an
    equal version means the browser already shows exactly this, so the stream skips
    the repaint."""

    files: str
    usage: str
    version: str
    # The list's pieces (None: no rows), for a later repaint to send only what changed.
    pieces: ListPieces | None = None


def paint_list(listing: Listing, usage: Usage) -> PaintedList:
    pieces = list_pieces(listing)
    files = pieces.html() if pieces else render_markup(files_part(listing))
    used = render_markup(usage_part(usage))
    version = hashlib.blake2b((files + used).encode(), digest_size=12).hexdigest()
    return PaintedList(files, used, version, pieces)


def files_part(listing: Listing) -> HtmlElement:
    """`#files`: the breadcrumb and folders, then the page of rows, its count and its
    page links."""
    searching = listing.query.q or listing.query.type
    if listing.gone:
        return h.Div(
            {"id": "files"},
            h.P(
                {"class": "empty", "role": "alert"},
                "This folder does not exist (any more): it was deleted, or never was"
                " one of yours. ",
                h.A({"href": HOME.href()}, "Back to your files"),
            ),
        )
    if not listing.total and searching:
        return h.Div(
            {"id": "files"}, folder_head(listing), h.P({"class": "empty"}, "No files match.")
        )
    if not listing.total:
        return h.Div(
            {"id": "files"},
            folder_head(listing),
            h.P(
                {"class": "empty"},
                "No files in this folder yet. Files you upload here appear, in every"
                " open tab, as soon as they are stored."
                if listing.folder != ROOT or listing.folders
                else "No files yet. Files you upload appear here, in every open tab, "
                "as soon as they are stored.",
            ),
        )
    return h.Div(
        {"id": "files"},
        folder_head(listing),
        _summary(listing),
        h.Ul({"class": "file-list"}, *[_listed_row(listing, row) for row in listing.rows]),
        _pager(listing) if listing.pages > 1 else None,
    )


def _summary(listing: Listing) -> HtmlElement:
    searching = listing.query.q or listing.query.type
    first = (listing.page - 1) * PAGE_SIZE + 1
    last = first + len(listing.rows) - 1
    summary = _plural(listing.total, "file") + (" match" if searching else "")
    if listing.pages > 1:
        summary += f", showing {first:,}–{last:,}"
    return h.P(
        {"class": "summary"},
        summary,
        _select_matching(listing.total) if listing.pages > 1 else None,
    )


def _select_matching(total: int) -> HtmlElement:
    """Offered once the whole page is picked: every file of the list, on every page."""
    return h.Button(
        {"type": "button", "class": "link-button", "data-url": SELECT_MATCHING.href()},
        data.show("$_pageAll && !$_matching.length"),
        data.on("click", SELECT_MATCHING_ALL),
        f"Select all {total:,} matching",
    )


def _pager(listing: Listing) -> HtmlElement:
    def link(label: str, number: int, rel: str) -> HtmlElement:
        if number < 1 or number > listing.pages or number == listing.page:
            return h.Span({"class": "button", "aria-disabled": "true"}, label)
        wanted: dict[str, str | int] = {**listing.query.params(), "page": number}
        if listing.folder != ROOT:
            wanted["folder"] = listing.folder
        return h.A({"class": "button", "href": HOME.href(query=wanted), "rel": rel}, label)

    return h.Nav(
        {"class": "pager", "aria-label": "Pages"},
        link("Newest", 1, "first"),
        link("‹ Newer", listing.page - 1, "prev"),
        h.Span({"class": "page-of"}, f"Page {listing.page:,} of {listing.pages:,}"),
        link("Older ›", listing.page + 1, "next"),
    )


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
                {"type": "search", "name": "q", "value": query.q, "maxlength": 200},
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


# One listener (on the list's section) for every row's Rename and Delete buttons, like
# OPEN_SHARE_FORM: the id and name are read from the row (`<li id="file-ID">`), never
# pasted into an expression, and no row carries an expression of its own.
# Folder rows (`<li id="folder-ID">`) the same way: Rename fills the folder rename
# form; Delete asks the server what would go, and the page asks the person.
FOLDER_ACTIONS = (
    "{ const f = evt.target.closest('button[data-folder-rename], button[data-folder-delete]');"
    " if (f) { const row = f.closest('li'), id = row.id.slice(7),"
    " name = row.querySelector('.folder-name').textContent;"
    " if ('folderRename' in f.dataset) { $folderRenameId = id;"
    " $folderRenameName = $_folderRenaming = name; $_notice = '';"
    " setTimeout(() => document.getElementById('folder-rename-name').select()); return }"
    f" el.dataset.url = '{FOLDERS_DOOMED.href()}'; el.dataset.name = name;"
    " el.dataset.action = 'delete';"
    " @post(el.dataset.url, {payload: {ids: [], folders: [id]}, retryMaxCount: 0}); return } }"
)
ROW_ACTIONS = FOLDER_ACTIONS + (
    " const b = evt.target.closest('button[data-rename], button[data-delete]');"
    " if (!b) return;"
    " const row = b.closest('li'), name = row.querySelector('.file-name').textContent;"
    " if ('rename' in b.dataset) { $renameFile = row.id.slice(5);"
    " $renameName = $_renaming = name; $_notice = '';"
    " setTimeout(() => document.getElementById('rename-name').select()); return }"
    " if (!confirm('Delete ' + name + '? It cannot be undone.')) return;"
    " el.dataset.url = '/files/' + row.id.slice(5); el.dataset.name = name;"
    " el.dataset.action = 'delete';"
    " @delete(el.dataset.url, {filterSignals: {include: '^$'}, retryMaxCount: 0})"
)
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
CONFIRM_DELETE = (
    "@post(el.dataset.url, {payload: {ids: $_doomedIds, folders: $_doomedFolders},"
    " retryMaxCount: 0})"
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


def delete_confirmation() -> HtmlElement:
    """The question before folders go: the server's words of what would be removed
    (`$_doomed`, set by FOLDERS_DOOMED), Delete and Cancel."""
    return h.Div(
        {"id": "delete-confirm", "class": "notice confirm", "role": "alertdialog",
         "aria-labelledby": "delete-question", "hidden": True},
        data.show("$_doomed !== ''"),
        data.attr("hidden", "$_doomed === ''"),
        h.P({"id": "delete-question"}, data.text("$_doomed")),
        h.Button(
            {
                "type": "button",
                "class": "button danger",
                "data-url": FOLDERS_DELETE.href(),
                "data-name": "the selection",
            },
            data.on("click", CONFIRM_DELETE),
            "Delete",
        ),
        h.Button(
            {"type": "button", "class": "button"},
            data.on("click", "$_doomed = ''; $_doomedIds = []; $_doomedFolders = []"),
            "Cancel",
        ),
    )  # fmt: skip


def new_folder_form(folder: str) -> HtmlElement:
    """A folder in the folder shown. A plain form post without scripts (answered 303
    back here); with them, Datastar posts the same form and the list repaints."""
    return h.Form(
        {
            "id": "new-folder",
            "class": "token-form new-folder",
            "method": "post",
            "action": FOLDER_CREATE.href(),
            "data-name": "the folder",
            "data-action": "make",
            "data-url": FOLDER_CREATE.href(),
        },
        data.on(
            "submit",
            at.post(FOLDER_CREATE.href(), content_type="form", retry_max_count=0),
            prevent=True,
        ),
        h.Input({"type": "hidden", "name": "parent", "value": api_id(folder) or ROOT_ID}),
        h.Label(
            {"class": "field"},
            h.Span("New folder"),
            h.Input(
                {
                    "id": "new-folder-name",
                    "type": "text",
                    "name": "name",
                    "maxlength": 255,
                    "required": True,
                    "placeholder": "Folder name",
                },
                data.bind("newFolder"),
            ),
        ),
        h.Button({"type": "submit", "class": "button"}, "Make folder"),
    )


FOLDER_RENAME = (
    "el.dataset.url = '/api/folders/' + $folderRenameId;"
    " el.dataset.name = $_folderRenaming;"
    " @patch(el.dataset.url, {payload: {name: $folderRenameName}, retryMaxCount: 0})"
)


def folder_rename_form() -> HtmlElement:
    """One form for every folder row, as `rename_form` is for the files."""
    return h.Form(
        {"id": "folder-rename-form", "class": "token-form rename-form", "data-action": "rename"},
        data.show("$folderRenameId !== ''"),
        data.on("submit", FOLDER_RENAME, prevent=True),
        h.Label(
            {"class": "field"},
            h.Span("Rename folder ", h.Strong(data.text("$_folderRenaming")), " to"),
            h.Input(
                {"id": "folder-rename-name", "type": "text", "name": "name", "maxlength": 255},
                data.bind("folderRenameName"),
            ),
        ),
        h.Button({"type": "submit", "class": "button primary"}, "Save"),
        h.Button(
            {"type": "button", "class": "button"},
            data.on("click", "$folderRenameId = ''"),
            "Cancel",
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


RENAME = (
    "el.dataset.url = '/files/' + $renameFile; el.dataset.name = $_renaming;"
    " @patch(el.dataset.url, {filterSignals: {include: '^rename'}, retryMaxCount: 0})"
)
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
) -> HtmlElement:
    version = paint_list(listing, usage).version
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
                h.P(
                    {"id": "limits", "class": "hint"},
                    f"Up to {human_bytes(config.max_file_bytes)} a file. Large files go up"
                    " in pieces and resume after a lost connection or a reload: choose"
                    " the same file again. From a terminal, with an API token (see below): ",
                    h.Code(f"curl -u :TOKEN -T FILE {config.public_url}{UPLOADS.href()}/"),
                ),
                resumable=Resumable(
                    TUS_CREATE.href(), account.id, folder=api_id(listing.folder) or ""
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
                usage_part(usage),
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
                files_part(listing),
            ),
            share_dialog(),
            preview_region(preview),
        ),
        nonce=nonce,
        modules=(assets.resumable_js,),
    )
