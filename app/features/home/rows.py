"""The rows of the Files screen: a file's row, a folder's row, the breadcrumb and the
folders above the list, the usage bar and the type icons."""

from stario import h
from stario.markup import HtmlElement, svg

from app.common.units import human_bytes
from app.features.files.urls import FILE, FILE_DELETE_PAGE, FILE_RENAME_PAGE
from app.features.folders.urls import FOLDER_DELETE_PAGE, FOLDER_RENAME_PAGE
from app.features.home.listing import Listing, Usage
from app.features.home.urls import HOME
from app.features.previews.data import preview_href
from app.features.previews.urls import THUMBNAIL
from app.features.shares.panel import share_button, share_folder_button
from app.files.query import kind_of
from app.files.store import FileRow
from app.folders.store import ROOT, ROOT_ID, FolderRow, Totals


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


def plural(count: int, word: str) -> str:
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
                h.Span(plural(total.files, "file")),
                h.Span(plural(total.folders, "folder")) if total.folders else None,
                h.Time({"datetime": folder.created_at[:19] + "Z"}, _uploaded_at(folder.created_at)),
            ),
        ),
        h.Div(
            {"class": "file-actions"},
            share_folder_button(folder.id, folder.name, f"Share folder {folder.name}"),
            # Links: without scripts each opens its form's page; with them the page's
            # listener (FOLDER_ACTIONS, which knows them by their address) opens the
            # dialog instead.
            h.A(
                {
                    "class": "button",
                    "href": FOLDER_RENAME_PAGE.href(folder.id),
                    "aria-label": f"Rename folder {folder.name}",
                },
                "Rename",
            ),
            h.A(
                {
                    "class": "button danger",
                    "href": FOLDER_DELETE_PAGE.href(folder.id),
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
            # Links: without scripts each opens its form's page (the rename page also
            # moves the file); with them the list's listener (ROW_ACTIONS, which knows
            # them by their address) opens the dialog. Lean: 50 rows go with a repaint.
            h.A(
                {
                    "class": "button",
                    "href": FILE_RENAME_PAGE.href(row.id),
                    "aria-label": f"Rename {row.name}",
                },
                "Rename",
            ),
            h.A(
                {
                    "class": "button danger",
                    "href": FILE_DELETE_PAGE.href(row.id),
                    "aria-label": f"Delete {row.name}",
                },
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


def listed_row(listing: Listing, row: FileRow) -> HtmlElement:
    path = listing.paths.get(row.folder_id, "/") if listing.paths is not None else None
    opens = preview_href(listing.query, listing.folder, row.id)
    return _file_row(row, row.id in listing.previews.ready, path, opens)
