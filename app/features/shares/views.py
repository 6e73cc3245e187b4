"""The public pages of a share link: plain HTML forms that work without JavaScript."""

from dataclasses import dataclass
from datetime import UTC, datetime

from stario import h
from stario.datastar import data
from stario.markup import HtmlElement
from stario.markup.types import Attrs

from app.common.shell import PageAssets, page
from app.common.units import human_bytes
from app.config import Config
from app.features.previews.panel import preview_region
from app.features.resumable.urls import SHARE_CREATE
from app.features.shares.urls import (
    SHARE_FILE,
    SHARE_MEMBER,
    SHARE_MEMBER_THUMBNAIL,
    SHARE_PAGE,
    SHARE_UPLOADS,
    SHARE_ZIP,
)
from app.features.uploads.panel import (
    UPLOAD_SIGNALS,
    Resumable,
    drop_anywhere,
    limits_words,
    upload_section,
)
from app.files.store import FileRow
from app.previews.renditions import preview_kind
from app.requests.store import FileRequest
from app.shares.store import Share


def can_preview(row: FileRow, share: Share) -> bool:
    """A preview on the link's page (an image, a player, a PDF or a text's start), of a
    file previews show (app/previews/renditions.py), and only on a link without a
    download limit (a preview is the whole file's worth, so on a limited link it
    would hand the bytes out uncounted)."""
    return share.max_downloads is None and preview_kind(row) != "other"


def _when(moment: float | None) -> str:
    if moment is None:
        return "never"
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _public_page(
    assets: PageAssets,
    title: str,
    *body: HtmlElement | Attrs | None,
    nonce: str | None = None,
    modules: tuple[str, ...] = (),
) -> HtmlElement:
    return page(
        assets,
        f"{title} · Stowage",
        h.Main({"id": "share", "class": "auth"}, *body),
        nonce,
        modules,
    )


@dataclass(frozen=True, slots=True)
class UploadsHere:
    """A folder link's upload form on its landing page: the link's request (its
    limits, what has arrived) and whether the visitor is in the link's own folder
    (where uploads land; a subfolder's page says so instead)."""

    config: Config
    request: FileRequest
    at_top: bool
    nonce: str


def uploads_text(config: Config, request: FileRequest) -> str:
    """What the link still takes, in words."""
    parts = []
    if request.max_files is not None:
        left = max(0, request.max_files - request.files)
        parts.append(f"{left:,} more file{'' if left == 1 else 's'} (of {request.max_files:,})")
    else:
        parts.append("any number of files")
    if request.max_file_bytes is not None and request.max_file_bytes < config.max_file_bytes:
        parts.append(f"up to {human_bytes(request.max_file_bytes)} each")
    else:
        parts.append(limits_words(config))
    return f"You may add files here: {', '.join(parts)}. Dropping a folder keeps its folders."


def _upload_part(token: str, share: Share, here: UploadsHere) -> HtmlElement:
    if not here.at_top:
        return h.P(
            {"class": "note", "id": "uploads-elsewhere"},
            "Files you add go into the link's own folder: ",
            h.A({"href": SHARE_PAGE.href(token)}, "go back to it"),
            " to add some.",
        )
    cap = here.request.max_file_bytes
    per_file = None if cap is None or cap >= here.config.max_file_bytes else cap
    return upload_section(
        here.config,
        SHARE_UPLOADS.href(token),
        h.P({"id": "limits", "class": "hint"}, uploads_text(here.config, here.request)),
        per_file_cap=per_file,
        # Remembered per link (its id, never its token) in the uploader's browser.
        resumable=Resumable(SHARE_CREATE.href(token), f"share-{share.id}", links=False),
        folders=True,
    )


def landing_page(
    assets: PageAssets,
    token: str,
    share: Share,
    row: FileRow,
    now: float,
    *,
    bytes_left: int | None = None,
    preview: HtmlElement | None = None,
) -> HtmlElement:
    """`bytes_left`: what a limited link may still send (see app/shares/store.py).
    `preview`: the file as its preview shows it (`can_preview`)."""
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
        preview,
        h.P(
            h.A(
                {
                    "class": "button primary",
                    "id": "share-download",
                    # No `download` attribute: the answer's attachment disposition saves
                    # the file, and a refusal (the link revoked since) shows its page
                    # instead of a browser's silent "failed download".
                    "href": SHARE_FILE.href(token, query={"download": "1"}),
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


def member_preview_href(token: str, crumbs: list[tuple[str, str]], file_id: str | None) -> str:
    """The collection's page where `crumbs` end, with `file_id`'s preview open (None:
    closed)."""
    query: dict[str, str] = {}
    if len(crumbs) > 1:
        query["folder"] = crumbs[-1][0]
    if file_id is not None:
        query["preview"] = file_id
    return SHARE_PAGE.href(token, query=query or None)


@dataclass(frozen=True, slots=True)
class FolderItem:
    id: str
    name: str
    size: int
    files: int


def collection_page(
    assets: PageAssets,
    token: str,
    share: Share,
    *,
    title: str,
    crumbs: list[tuple[str, str]],
    folders: list[FolderItem],
    files: list[FileRow],
    thumbnails: frozenset[str],
    total_size: int,
    more: int = 0,
    bytes_left: int | None = None,
    uploads: UploadsHere | None = None,
    preview: HtmlElement | None = None,
) -> HtmlElement:
    """A collection link's landing page: where in it the visitor is (`crumbs`, each
    (folder id, name), the link's own folder first), its folders (browsable), its
    files (a thumbnail where one is ready, each downloadable), and the whole as one
    ZIP. `total_size` is the ZIP's; `bytes_left` what a limited link may still send.
    `uploads`: the link takes files (a plain form that works without scripts; with
    them, drops and folders as on a file request's page)."""
    left = ""
    if share.max_downloads is not None:
        remaining = share.max_downloads - share.downloads
        left = f"{remaining} download{'' if remaining == 1 else 's'} of the whole left. "
        if bytes_left is not None and bytes_left < total_size:
            left = (
                f"Less than a whole download is left ({human_bytes(bytes_left)}): a download"
                " already begun can be resumed. "
            )
    expires = (
        "This link does not expire."
        if share.expires_at is None
        else f"This link works until {_when(share.expires_at)}."
    )
    trail: list[HtmlElement | str] = []
    for index, (folder_id, name) in enumerate(crumbs):
        if index:
            trail.append(" / ")
        if index == len(crumbs) - 1:
            trail.append(h.Span({"aria-current": "page"}, name))
        else:
            query = {"folder": folder_id} if index else None
            trail.append(h.A({"href": SHARE_PAGE.href(token, query=query)}, name))
    items: list[HtmlElement] = []
    for folder in folders:
        items.append(
            h.Li(
                {"class": "collection-folder"},
                h.Span({"class": "preview icon", "aria-hidden": "true"}, "📁"),
                h.A(
                    {
                        "class": "entry-name",
                        "href": SHARE_PAGE.href(token, query={"folder": folder.id}),
                    },
                    folder.name + "/",
                ),
                h.Span(
                    {"class": "file-meta"},
                    f"{folder.files:,} file{'' if folder.files == 1 else 's'}, "
                    + human_bytes(folder.size),
                ),
            )
        )
    for row in files:
        thumb = (
            h.Img(
                {
                    "class": "thumb",
                    "src": SHARE_MEMBER_THUMBNAIL.href(token, row.id),
                    "alt": "",
                    "loading": "lazy",
                }
            )
            if row.id in thumbnails
            else h.Span({"class": "preview icon", "aria-hidden": "true"}, "📄")
        )
        download = SHARE_MEMBER.href(token, row.id, query={"download": "1"})
        # The name opens the file's preview on this page where there is one.
        opens = member_preview_href(token, crumbs, row.id) if can_preview(row, share) else None
        items.append(
            h.Li(
                {"class": "collection-file", "id": f"member-{row.id}"},
                thumb,
                h.A({"class": "entry-name", "href": opens}, row.name)
                if opens is not None
                else h.A({"class": "entry-name", "href": download, "download": row.name}, row.name),
                h.Span({"class": "file-meta"}, human_bytes(row.size)),
                h.A(
                    {
                        "class": "button",
                        "href": download,
                        "download": row.name,
                        "aria-label": f"Download {row.name}",
                    },
                    "Download",
                )  # fmt: skip
                if opens is not None
                else None,
            )
        )
    # Attributes of <main> come before its children.
    upload_attrs: tuple[Attrs, ...] = ()
    if uploads is not None:
        upload_attrs = (
            data.signals(UPLOAD_SIGNALS, if_missing=True),
            *(drop_anywhere() if uploads.at_top else ()),
        )
    return _public_page(
        assets,
        title,
        *upload_attrs,
        h.H1({"class": "share-name"}, title),
        h.Nav({"class": "breadcrumb", "aria-label": "Folders"}, *trail)
        if len(crumbs) > 1
        else None,
        h.P(
            h.A(
                {"class": "button primary", "id": "share-zip", "href": SHARE_ZIP.href(token)},
                f"Download all as ZIP ({human_bytes(total_size)})",
            )
        ),
        h.Ul({"class": "collection-list", "id": "collection"}, *items)
        if items
        else h.P({"class": "note"}, "Nothing is here yet."),
        h.P({"class": "note"}, f"And {more:,} more files: the ZIP holds them all.")
        if more
        else None,
        h.P({"class": "note"}, left + expires),
        None if uploads is None else _upload_part(token, share, uploads),
        preview_region(preview, scripted=False) if preview is not None else None,
        nonce=None if uploads is None else uploads.nonce,
        modules=() if uploads is None else (assets.resumable_js,),
    )
