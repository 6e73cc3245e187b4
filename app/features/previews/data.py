"""Previews as other screens use them: the owner's preview dialog for the Files
screen (`owner_preview`), a share page's (`shared_preview`), and the full-size image
answer shared by `/files/{id}/preview-image` and a share link's `?preview=1`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from stario import Context, Writer
from stario.markup import HtmlElement

from app.catalog.protocol import Database
from app.common.http import json_error
from app.downloads.serve import serve_file
from app.downloads.validators import strong_etag
from app.features.files.urls import FILE
from app.features.home.urls import HOME
from app.features.previews.panel import PreviewLinks, body_part, preview_dialog
from app.features.previews.urls import PREVIEW_FILE, PREVIEW_IMAGE
from app.files.query import EVERY_FILE, FileQuery, QueryError, parse_file_query
from app.files.store import FileRow, get_file, list_file_ids
from app.folders.store import ROOT, catalog_id
from app.previews.renditions import Renditions, TextHead, preview_kind, read_text_head
from app.storage.store import Store

# Previous/next look this far into the list's order (its ids only, from the index):
# past it, a preview has no neighbours.
NEIGHBOUR_SCAN = 20_000
# A rendition never changes for a file (files are immutable): cached as the
# thumbnail is, and revalidated by its ETag.
RENDITION_CACHE_CONTROL = "private, max-age=31536000, immutable"


@dataclass(frozen=True, slots=True)
class Previewer:
    """What making a preview needs: the catalog, the bytes and the renditions."""

    db: Database
    store: Store
    renditions: Renditions


def list_query(params: Mapping[str, str | None]) -> tuple[FileQuery, str]:
    """The list's search and folder from the page's query (`q`, `type`, `sort` (which
    may carry its order: `name-asc`), `order`, `folder`), as the Files screen reads
    them: what cannot be used is left out, not an error."""
    sort, order = params.get("sort") or None, params.get("order") or None
    if sort and "-" in sort:
        sort, _, order = sort.partition("-")
    query = EVERY_FILE
    for attempt in (
        (params.get("q"), params.get("type"), sort, order),
        (params.get("q"), params.get("type"), None, None),
        (params.get("q"), None, None, None),
    ):
        try:
            query = parse_file_query(*attempt)
            break
        except QueryError:
            continue
    folder_text = params.get("folder")
    folder = catalog_id(folder_text) if folder_text and len(folder_text) <= 64 else ROOT
    return query, folder


def preview_params(c: Context) -> dict[str, str | None]:
    """The page's list query, as `owner_preview` takes it."""
    return {name: c.req.query.get(name) for name in ("q", "type", "sort", "order", "folder")}


def _page_href(query: FileQuery, folder: str, preview: str | None) -> str:
    wanted: dict[str, str] = dict(query.params())
    if folder != ROOT:
        wanted["folder"] = folder
    if preview is not None:
        wanted["preview"] = preview
    return HOME.href(query=wanted) if wanted else HOME.href()


def preview_href(query: FileQuery, folder: str, file_id: str) -> str:
    """The Files screen with `file_id`'s preview open over the list as it is."""
    return _page_href(query, folder, file_id)


def neighbours(ids: Sequence[str], file_id: str) -> tuple[str | None, str | None, str]:
    """The ids before and after `file_id` in `ids`, and "n of N" (empty when it is
    not among them)."""
    try:
        at = ids.index(file_id)
    except ValueError:
        return None, None, ""
    before = ids[at - 1] if at > 0 else None
    after = ids[at + 1] if at + 1 < len(ids) else None
    return before, after, f"{at + 1:,} of {len(ids):,}"


async def _text_of(store: Store, row: FileRow) -> TextHead | None:
    return await read_text_head(store, row) if preview_kind(row) == "text" else None


async def owner_preview(
    previewer: Previewer, owner: str, file_id: str, params: Mapping[str, str | None]
) -> HtmlElement | None:
    """The Files screen's dialog for the account's own file `file_id`, its neighbours
    in the list as `params` (the page's query) shows it; None if it is not theirs."""
    row = await get_file(previewer.db, file_id) if len(file_id) <= 64 else None
    if row is None or row.owner != owner:
        return None
    kind = preview_kind(row)
    query, folder = list_query(params)
    only = None if query.q else folder
    ids = await list_file_ids(previewer.db, owner, NEIGHBOUR_SCAN, query, folder=only)
    before, after, position = neighbours(ids, row.id)
    links = PreviewLinks(
        inline=PREVIEW_FILE.href(file_id=row.id) if kind == "pdf" else FILE.href(row.id),
        image=PREVIEW_IMAGE.href(file_id=row.id),
        download=FILE.href(row.id, query={"download": "1"}),
        close=_page_href(query, folder, None),
        previous=None if before is None else _page_href(query, folder, before),
        next=None if after is None else _page_href(query, folder, after),
        position=position,
    )
    return preview_dialog(row, kind, links, await _text_of(previewer.store, row))


async def shared_preview(
    previewer: Previewer,
    row: FileRow,
    *,
    inline: str,
    download: str,
    close: str,
    previous: str | None = None,
    next: str | None = None,
    position: str = "",
) -> HtmlElement:
    """A share page's dialog (plain links: share pages run no expressions). `inline`
    is the link's `?preview=1` address of the file, which is never counted."""
    links = PreviewLinks(inline, inline, download, close, previous, next, position)
    text = await _text_of(previewer.store, row)
    return preview_dialog(row, preview_kind(row), links, text, scripted=False)


async def shared_body(
    previewer: Previewer, row: FileRow, *, inline: str, download: str
) -> HtmlElement:
    """A file link's landing page shows the file itself, without a dialog around it."""
    links = PreviewLinks(inline, inline, download, close=inline)
    text = await _text_of(previewer.store, row)
    return body_part(row, preview_kind(row), links, text, scripted=False)


async def serve_framed(c: Context, w: Writer, previewer: Previewer, row: FileRow) -> None:
    """The file for a frame of our own pages (a PDF preview): `serve_file` as ever
    (inline only when safe, sandboxed by its CSP: an opaque origin that runs no
    script), with framing allowed to our own origin instead of denied."""
    w.headers.set("x-frame-options", "SAMEORIGIN")
    await serve_file(c, w, previewer.store, row, direct=False)


async def serve_preview_image(c: Context, w: Writer, previewer: Previewer, row: FileRow) -> None:
    """An image at full size: its rendition when it needs one, else the original
    through `serve_file` (ranges, validators, the sandboxing CSP). Never counted."""
    if preview_kind(row) != "image":
        json_error(w, 404, f"no image preview: files of type {row.mime} have none")
        return
    source = await previewer.renditions.source(row)
    if source == "original":
        await serve_file(c, w, previewer.store, row, direct=False)
        return
    body = await previewer.renditions.read(row.id) if source == "rendition" else None
    if body is None:
        json_error(w, 404, "no image preview: this image could not be read")
        return
    etag = strong_etag(row.sha256 + "-view")
    w.headers.set("etag", etag)
    w.headers.set("cache-control", RENDITION_CACHE_CONTROL)
    w.headers.set("x-content-type-options", "nosniff")
    w.headers.set("content-security-policy", "sandbox; default-src 'none'")
    if etag in [t.strip() for v in c.req.headers.getlist("if-none-match") for t in v.split(",")]:
        w.write_headers(304).end()
        return
    w.headers.set("content-type", "image/jpeg")
    w.headers.set("content-length", str(len(body)))
    w.write_headers(200)
    if c.req.method == "HEAD":
        w.end()
    else:
        w.end(body)
