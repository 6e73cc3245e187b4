from dataclasses import dataclass

from stario import App, Context, Relay, Writer

from app.common.http import json_error, path_param
from app.config import Config
from app.db import Database
from app.features.files.data import FILES_CHANGED, FileRow, add_files, file_json
from app.features.files.urls import FILE
from app.features.uploads.urls import UPLOAD_NAMED, UPLOADS
from app.ingest.names import filename_from_disposition
from app.ingest.pipeline import Ingest, IngestedFile, IngestError, ingest_stream
from app.ingest.progress import Progress
from app.storage.blobs import BlobStore


@dataclass(frozen=True, slots=True)
class Uploads:
    """What every upload transport needs."""

    config: Config
    db: Database
    store: BlobStore
    relay: Relay[str]
    progress: Progress

    async def keep(self, files: list[IngestedFile]) -> list[FileRow]:
        """Record committed blobs, all or none; on failure the blobs go too."""
        try:
            rows = await add_files(self.db, files)
        except BaseException:
            await self.store.remove([f.id for f in files])
            raise
        self.relay.publish(FILES_CHANGED, "added")
        return rows


def _content_length(c: Context) -> int | None:
    value = c.req.headers.get("content-length")
    return int(value) if value is not None and value.isdigit() else None


def _media_type(c: Context) -> str:
    return (c.req.headers.get("content-type") or "").split(";", 1)[0].strip().lower()


async def _receive_raw(uploads: Uploads, c: Context, w: Writer, name: str) -> None:
    with uploads.progress.track(name, _content_length(c)) as transfer:
        try:
            ingest = Ingest(
                uploads.store,
                name=name,
                declared_mime=c.req.headers.get("content-type"),
                max_bytes=uploads.config.max_file_bytes,
                expected_bytes=_content_length(c),
                on_progress=transfer.add,
            )
            stored = await ingest_stream(ingest, c.req.stream(), cut_off=lambda: c.disconnected)
        except IngestError as exc:
            json_error(w, exc.status, exc.message, close=True)
            return
    rows = await uploads.keep([stored])
    w.headers.set("location", FILE.href(rows[0].id))
    w.json({"files": [file_json(row) for row in rows]}, 201)


def post_upload(uploads: Uploads):
    async def handler(c: Context, w: Writer) -> None:
        media_type = _media_type(c)
        if media_type == "application/json" or media_type.startswith("multipart/"):
            json_error(w, 415, f"{media_type} uploads are not supported yet", close=True)
            return
        name = c.req.query.get("name") or filename_from_disposition(
            c.req.headers.get("content-disposition")
        )
        if not name:
            json_error(
                w,
                400,
                "name the file: add ?name=... or a Content-Disposition header with a filename",
                close=True,
            )
            return
        await _receive_raw(uploads, c, w, name)

    return handler


def put_upload(uploads: Uploads):
    async def handler(c: Context, w: Writer) -> None:
        await _receive_raw(uploads, c, w, path_param(c, "name"))

    return handler


def register_uploads(app: App, uploads: Uploads) -> None:
    app.add(UPLOADS, post_upload(uploads))
    app.add(UPLOAD_NAMED, put_upload(uploads))
