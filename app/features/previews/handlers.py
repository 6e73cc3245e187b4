"""GET and HEAD /files/{id}/thumbnail: a stored image's WebP thumbnail (app/previews)."""

from stario import App, Context, Writer

from app.access.gate import readable_file
from app.catalog.protocol import Database
from app.common.http import json_error
from app.downloads.validators import strong_etag
from app.features.previews.urls import THUMBNAIL, THUMBNAIL_HEAD
from app.previews.thumbnails import Thumbnails

# A thumbnail never changes for a given file: its id names one set of bytes forever
# (files are immutable), and the ETag is the thumbnail's own sha256. `private`: the
# bytes are the owner's; a browser may keep them for a year without asking.
CACHE_CONTROL = "private, max-age=31536000, immutable"
# A thumbnail being made is usually ready within a second or two.
RETRY_AFTER_SECONDS = "2"
BUSY_RETRY_AFTER_SECONDS = "60"


def show_thumbnail(db: Database, thumbnails: Thumbnails):
    async def handler(c: Context, w: Writer) -> None:
        row = await readable_file(c, db)
        if row is None:
            json_error(w, 404, "no such file")
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


def register_previews(app: App, db: Database, thumbnails: Thumbnails) -> None:
    handler = show_thumbnail(db, thumbnails)
    app.add(THUMBNAIL, handler)
    app.add(THUMBNAIL_HEAD, handler)
