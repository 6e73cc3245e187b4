"""GET and HEAD /files/{id}/thumbnail: a stored image's WebP thumbnail (app/previews);
GET /files/{id}/preview: the Files screen's preview dialog, as a Datastar patch;
GET and HEAD /files/{id}/preview-image: an image at full size."""

from stario import App, Context, Writer
from stario.datastar import SSE

from app.access.gate import principal, readable_file
from app.catalog.protocol import Database
from app.common.http import is_datastar, json_error
from app.common.shell import PageAssets
from app.downloads.validators import strong_etag
from app.features.nav.panel import missing_file
from app.features.previews.data import (
    Previewer,
    list_query,
    owner_preview,
    preview_href,
    preview_params,
    serve_framed,
    serve_preview_image,
)
from app.features.previews.urls import (
    PREVIEW,
    PREVIEW_FILE,
    PREVIEW_FILE_HEAD,
    PREVIEW_IMAGE,
    PREVIEW_IMAGE_HEAD,
    THUMBNAIL,
    THUMBNAIL_HEAD,
)
from app.previews.thumbnails import Thumbnails

# A thumbnail never changes for a given file: its id names one set of bytes forever
# (files are immutable), and the ETag is the thumbnail's own sha256. `private`: the
# bytes are the owner's; a browser may keep them for a year without asking.
CACHE_CONTROL = "private, max-age=31536000, immutable"
# A thumbnail being made is usually ready within a second or two.
RETRY_AFTER_SECONDS = "2"
BUSY_RETRY_AFTER_SECONDS = "60"


def show_thumbnail(db: Database, thumbnails: Thumbnails, assets: PageAssets):
    async def handler(c: Context, w: Writer) -> None:
        row = await readable_file(c, db)
        if row is None:
            missing_file(assets, c, w)
            return
        file_id = row.id
        if not thumbnails.may_have(row):
            json_error(w, 404, f"no thumbnail: files of type {row.mime} have none")
            return
        found = await thumbnails.read(file_id)
        if found is None:
            if await thumbnails.refused_before(file_id):
                json_error(w, 404, "no thumbnail: this image could not be read")
                return
            w.headers.set("cache-control", "no-store")
            if thumbnails.ensure(row):
                w.headers.set("retry-after", RETRY_AFTER_SECONDS)
                json_error(w, 404, "no thumbnail yet: it is being made, ask again shortly")
            else:
                w.headers.set("retry-after", BUSY_RETRY_AFTER_SECONDS)
                json_error(w, 404, "no thumbnail yet: too many images are waiting, ask later")
            return
        body, digest = found
        etag = strong_etag(digest)
        w.headers.set("etag", etag)
        w.headers.set("cache-control", CACHE_CONTROL)
        w.headers.set("x-content-type-options", "nosniff")
        if _matches(c.req.headers.getlist("if-none-match"), etag):
            w.write_headers(304).end()
            return
        w.headers.set("content-length", str(len(body)))
        w.headers.set("content-type", "image/webp")
        w.write_headers(200)
        if c.req.method == "HEAD":
            w.end()
        else:
            w.write(body)
            w.end()

    return handler


def _matches(values: list[str], etag: str) -> bool:
    """If-None-Match holds `etag` or `*` (weak comparison, as RFC 9110 says for it)."""
    for value in values:
        for item in value.split(","):
            tag = item.strip().removeprefix("W/")
            if tag == etag or tag == "*":
                return True
    return False


def show_preview(previewer: Previewer, assets: PageAssets):
    """GET /files/{id}/preview?folder=&q=&type=&sort=: the dialog, patched into
    `#preview` (Datastar's GET from the Files screen). A browser asking without
    Datastar is sent to the screen with the preview open (the no-script page)."""

    async def handler(c: Context, w: Writer) -> None:
        row = await readable_file(c, previewer.db)
        if row is None:
            missing_file(assets, c, w)
            return
        params = preview_params(c)
        if not is_datastar(c):
            query, folder = list_query(params)
            w.redirect(preview_href(query, folder, row.id), 303)
            return
        dialog = await owner_preview(previewer, principal(c).account_id, row.id, params)
        if dialog is None:
            json_error(w, 404, "no such file")
            return
        SSE(w).patch_elements(dialog, selector="#preview", mode="inner")
        w.end()

    return handler


def show_preview_image(previewer: Previewer, assets: PageAssets):
    async def handler(c: Context, w: Writer) -> None:
        row = await readable_file(c, previewer.db)
        if row is None:
            missing_file(assets, c, w)
            return
        await serve_preview_image(c, w, previewer, row)

    return handler


def show_preview_file(previewer: Previewer, assets: PageAssets):
    async def handler(c: Context, w: Writer) -> None:
        row = await readable_file(c, previewer.db)
        if row is None:
            missing_file(assets, c, w)
            return
        await serve_framed(c, w, previewer, row)

    return handler


def register_previews(
    app: App, db: Database, thumbnails: Thumbnails, previewer: Previewer, assets: PageAssets
) -> None:
    handler = show_thumbnail(db, thumbnails, assets)
    app.add(THUMBNAIL, handler)
    app.add(THUMBNAIL_HEAD, handler)
    app.add(PREVIEW, show_preview(previewer, assets))
    image = show_preview_image(previewer, assets)
    app.add(PREVIEW_IMAGE, image)
    app.add(PREVIEW_IMAGE_HEAD, image)
    framed = show_preview_file(previewer, assets)
    app.add(PREVIEW_FILE, framed)
    app.add(PREVIEW_FILE_HEAD, framed)
