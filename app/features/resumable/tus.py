"""tus 1.0.0 (https://tus.io/protocols/resumable-upload) over the one upload state:
core, creation, creation-with-upload, creation-defer-length, expiration, checksum,
termination and concatenation. Only header parsing and answers live here; every
rule is app/resumable/uploads.py's."""

from __future__ import annotations

import base64
import binascii
from email.utils import formatdate

from stario import Context, Writer

from app.common.http import TUS_RESUMABLE, json_error, path_param
from app.config import MAX_FILE_BYTES
from app.features.files.urls import FILE
from app.features.uploads.data import NO, YES, placed_at, replace_asked
from app.ingest.intake import Destination
from app.ingest.pipeline import IngestError
from app.resumable.store import UploadState
from app.resumable.uploads import (
    CHECKSUM_ALGORITHMS,
    Appended,
    Checksum,
    ChecksumMismatch,
    OffsetMismatch,
    ResumableUploads,
)
from app.server.body import incoming

VERSION = TUS_RESUMABLE
EXTENSIONS = (
    "creation,creation-with-upload,creation-defer-length,expiration,checksum,"
    "termination,concatenation"
)
OFFSET_OCTET_STREAM = "application/offset+octet-stream"
DEFAULT_NAME = "upload"


def _number(value: str | None, header: str) -> int | None:
    """A non-negative header number, None when absent; 400 when malformed."""
    if value is None:
        return None
    value = value.strip()
    if not (value.isascii() and value.isdigit()) or len(value) > 16:
        raise IngestError(400, f"{header} must be a whole number of bytes")
    number = int(value)
    if number > MAX_FILE_BYTES:
        raise IngestError(413, f"{header} is larger than any file this server keeps")
    return number


def parse_metadata(value: str | None) -> dict[str, str]:
    """`Upload-Metadata`: comma-separated `key base64value` pairs (the value may be
    absent). Values that are not UTF-8 text are kept out (names must be text)."""
    found: dict[str, str] = {}
    if not value:
        return found
    for pair in value.split(","):
        key, _, encoded = pair.strip().partition(" ")
        if not key:
            continue
        if not key.isascii() or any(ch in key for ch in " ,"):
            raise IngestError(400, "Upload-Metadata keys must be ASCII without spaces or commas")
        try:
            found[key] = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            raise IngestError(400, f"Upload-Metadata {key!r} is not base64 UTF-8 text") from None
    return found


# What clients send for "no relative path": Uppy sends `relativePath` as the text
# "null" for a file that was not in a dropped or chosen folder.
NO_PATH = frozenset({"", "null", "undefined"})


async def placement(
    resumable: ResumableUploads, c: Context, to: Destination, metadata: dict[str, str]
) -> tuple[Destination, tuple[str, ...], str | None]:
    """Where a new upload's file goes, from its `Upload-Metadata` (`folder`,
    `relativePath` as Uppy sends it, `replace`) or else the query (`?folder=`,
    `?path=`, `?replace=`): the destination in that folder, the folders to make under
    it, and the name the path gives (None: none). An unknown folder is a 404 now,
    before the upload exists. Through a file request the request decides the folder:
    a `folder` or `replace` there is not the visitor's to choose and is ignored."""
    query = c.req.query
    if not to.public:
        folder = metadata.get("folder") or query.get("folder")
        if "replace" in metadata:
            word = metadata["replace"].strip().lower()
            if word not in YES | NO:
                raise IngestError(400, f"metadata replace is 1 or 0, not {metadata['replace']!r}")
            replace = word in YES
        else:
            replace = replace_asked(c)
        if folder is not None or replace:
            to = await resumable.uploads.into_folder(to, folder, replace=replace)
    raw = metadata.get("relativePath")
    if raw is None or raw.strip() in NO_PATH:
        raw = query.get("path")
    if raw is None or raw.strip() in NO_PATH:
        return to, (), None
    directory, name = placed_at(raw)
    return to, directory, name


def created_at(c: Context, upload_id: str) -> str:
    """The new upload's URL beside the creation URL it was made at (`/tus/ID`, or
    `/r/TOKEN/tus/ID` through a file request); relative, so https behind a proxy
    never turns into http."""
    return f"{c.req.path.rstrip('/')}/{upload_id}"


def _expires(moment: float) -> str:
    return formatdate(moment, usegmt=True)


def refuse(c: Context, w: Writer, error: IngestError, state: UploadState | None = None) -> None:
    w.headers.set("tus-resumable", VERSION)
    if error.retry_after is not None:
        w.headers.set("retry-after", str(error.retry_after))
    if isinstance(error, OffsetMismatch):
        w.headers.set("upload-offset", str(error.expected))
    elif state is not None:
        w.headers.set("upload-offset", str(state.offset))
    # The body may be partly unread: closing stops the client sending the rest.
    unread = c.req.headers.get("content-length") not in (None, "0") or c.req.headers.get(
        "transfer-encoding"
    )
    json_error(w, error.status, error.message, close=bool(unread))


def _version_ok(c: Context, w: Writer) -> bool:
    if c.req.headers.get("tus-resumable") == VERSION:
        return True
    w.headers.set("tus-version", VERSION)
    w.headers.set("tus-resumable", VERSION)
    json_error(w, 412, f"this server speaks tus {VERSION}: send Tus-Resumable: {VERSION}",
               close=True)  # fmt: skip
    return False


def _body_follows(c: Context) -> bool:
    return c.req.headers.get("content-length") not in (None, "0") or bool(
        c.req.headers.get("transfer-encoding")
    )


def _state_headers(w: Writer, state: UploadState) -> None:
    w.headers.set("tus-resumable", VERSION)
    w.headers.set("upload-offset", str(state.offset))
    if state.length is not None:
        w.headers.set("upload-length", str(state.length))
    if not state.finished:
        w.headers.set("upload-expires", _expires(state.expires_at))
    if state.file_id is not None:
        w.headers.set("stowage-file-id", state.file_id)
        w.headers.set("stowage-file-location", FILE.href(state.file_id))


def capabilities(resumable: ResumableUploads, w: Writer) -> None:
    w.headers.set("tus-version", VERSION)
    w.headers.set("tus-extension", EXTENSIONS)
    w.headers.set("tus-max-size", str(resumable.uploads.config.max_file_bytes))
    w.headers.set("tus-checksum-algorithm", ",".join(CHECKSUM_ALGORITHMS))
    w.empty(204)


async def create(resumable: ResumableUploads, c: Context, w: Writer, to: Destination) -> None:
    if not _version_ok(c, w):
        return
    headers = c.req.headers
    try:
        metadata = parse_metadata(headers.get("upload-metadata"))
        concat = (headers.get("upload-concat") or "").strip()
        directory: tuple[str, ...] = ()
        named: str | None = None
        if concat != "partial":
            # A partial's bytes join a final, whose own metadata places the file.
            to, directory, named = await placement(resumable, c, to, metadata)
        name = metadata.get("filename") or metadata.get("name") or named or DEFAULT_NAME
        mime = metadata.get("filetype") or metadata.get("type")
        if concat.startswith("final"):
            await _concatenate(resumable, c, w, to, concat, name, mime, directory)
            return
        if concat not in ("", "partial"):
            raise IngestError(400, "Upload-Concat must be 'partial' or 'final;URL URL ...'")
        length = _number(headers.get("upload-length"), "Upload-Length")
        deferred = headers.get("upload-defer-length")
        if deferred is not None and deferred.strip() != "1":
            raise IngestError(400, "Upload-Defer-Length must be 1")
        if (length is None) == (deferred is None):
            raise IngestError(400, "send Upload-Length, or Upload-Defer-Length: 1 (not both)")
        with_body = _body_follows(c)
        if with_body and _media_type(c) != OFFSET_OCTET_STREAM:
            raise IngestError(415, f"an upload's bytes are sent as {OFFSET_OCTET_STREAM}")
        checksum = _checksum(c)
        state = await resumable.create(
            to,
            length=length,
            name=name,
            declared_mime=mime,
            metadata=headers.get("upload-metadata"),
            partial=concat == "partial",
            directory=directory,
        )
    except IngestError as error:
        refuse(c, w, error)
        return
    w.headers.set("location", created_at(c, state.id))
    if not with_body:
        _state_headers(w, state)
        w.empty(201)
        return
    # creation-with-upload: the first bytes ride along.
    try:
        body = incoming(c, resumable.uploads.config)
        done = await resumable.append(body, state, to, offset=0, checksum=checksum)
    except IngestError as error:
        refuse(c, w, error, state)
        return
    _answer_append(c, w, done, 201)


def _checksum(c: Context) -> Checksum | None:
    value = c.req.headers.get("upload-checksum")
    return None if value is None else Checksum.parse(value)


def _media_type(c: Context) -> str:
    return (c.req.headers.get("content-type") or "").split(";", 1)[0].strip().lower()


async def _concatenate(
    resumable: ResumableUploads,
    c: Context,
    w: Writer,
    to: Destination,
    concat: str,
    name: str,
    mime: str | None,
    directory: tuple[str, ...],
) -> None:
    _, _, urls = concat.partition(";")
    parts: list[UploadState] = []
    for url in urls.split():
        upload_id = url.rstrip("/").rsplit("/", 1)[-1]
        part = await resumable.find(upload_id, to)
        if part is None:
            raise IngestError(404, f"no such partial upload: {url}")
        parts.append(part)
    if not parts:
        raise IngestError(400, "Upload-Concat: final names no partial uploads")
    if _body_follows(c):
        raise IngestError(400, "a final upload carries no bytes of its own")
    state, _ = await resumable.concatenate(
        to,
        parts,
        name=name,
        declared_mime=mime,
        metadata=c.req.headers.get("upload-metadata"),
        directory=directory,
    )
    w.headers.set("location", created_at(c, state.id))
    _state_headers(w, state)
    w.headers.set("upload-concat", concat)
    w.empty(201)


def _answer_append(c: Context, w: Writer, done: Appended, status: int) -> None:
    if done.stopped is not None:
        refuse(c, w, done.stopped, done.state)
        return
    _state_headers(w, done.state)
    w.empty(status)


async def _found(
    resumable: ResumableUploads, c: Context, w: Writer, to: Destination
) -> UploadState | None:
    state = await resumable.find(path_param(c, "upload_id"), to)
    if state is None:
        w.headers.set("cache-control", "no-store")
        refuse(c, w, IngestError(404, "no such upload (unknown, expired or cancelled)"))
    return state


async def head(resumable: ResumableUploads, c: Context, w: Writer, to: Destination) -> None:
    if not _version_ok(c, w):
        return
    state = await _found(resumable, c, w, to)
    if state is None:
        return
    state = await resumable.current(state)
    w.headers.set("cache-control", "no-store")
    if state is None:
        refuse(c, w, IngestError(404, "no such upload (unknown, expired or cancelled)"))
        return
    _state_headers(w, state)
    if state.length is None:
        w.headers.set("upload-defer-length", "1")
    if state.metadata:
        w.headers.set("upload-metadata", state.metadata)
    if state.partial:
        w.headers.set("upload-concat", "partial")
    w.empty(200)


async def patch(resumable: ResumableUploads, c: Context, w: Writer, to: Destination) -> None:
    if not _version_ok(c, w):
        return
    try:
        if _media_type(c) != OFFSET_OCTET_STREAM:
            raise IngestError(415, f"PATCH bodies are {OFFSET_OCTET_STREAM}")
        offset = _number(c.req.headers.get("upload-offset"), "Upload-Offset")
        if offset is None:
            raise IngestError(400, "send Upload-Offset: the offset these bytes start at")
        length = _number(c.req.headers.get("upload-length"), "Upload-Length")
        checksum = _checksum(c)
    except IngestError as error:
        refuse(c, w, error)
        return
    state = await _found(resumable, c, w, to)
    if state is None:
        return
    try:
        body = incoming(c, resumable.uploads.config)
        done = await resumable.append(
            body, state, to, offset=offset, checksum=checksum, length=length
        )
    except (OffsetMismatch, ChecksumMismatch, IngestError) as error:
        refuse(c, w, error)
        return
    _answer_append(c, w, done, 204)


async def delete(resumable: ResumableUploads, c: Context, w: Writer, to: Destination) -> None:
    if not _version_ok(c, w):
        return
    state = await _found(resumable, c, w, to)
    if state is None:
        return
    await resumable.terminate(state)
    w.headers.set("tus-resumable", VERSION)
    w.empty(204)
