"""The IETF resumable-upload draft (draft-ietf-httpbis-resumable-upload) over the one
upload state, for requests that carry `Upload-Draft-Interop-Version`. Interop versions:
6 (draft-04/-05: tus-js-client's `ietf-draft-05`), 7 (-06 to -08) and 8 (-09 and
later, the current one); they differ here only in small answers, named where they
are. Only header parsing and answers live here; every rule is app/resumable/uploads.py's.

Upload resources are the tus ones (`/tus/{id}`). Creation: `POST /tus/`, and
`POST /uploads` / `PUT /uploads/{name}` with `Upload-Complete: ?0`, or `?1` with the
interop header (an optimistic upload; through `start_on_uploads`); the same under a
file request's link (`/r/{token}/...`). A creation whose body follows is told to the
client in a `104 Upload Resumption Supported` (app/server/interim.py) before the body
is read, so a cut-off upload can be resumed. `OPTIONS` on every creation URL and
upload resource carries `Upload-Limit`; `GET` on an upload answers as `HEAD`.
Two choices the draft leaves open:

- An upload whose length is known completes when its offset reaches it, even on an
  append sent with `Upload-Complete: ?0` (tusd does the same): tus-js-client's
  `ietf-draft-05` sends `?0` on the last append of a file read in chunks, then stops.
- The append that completes an upload answers as `POST /uploads` does (201, the
  stored file's JSON, `Location: /files/{id}`), whichever URL created it.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from stario import Context, JsonValue, Writer
from stario.json import dumps_bytes

from app.common.http import json_error, path_param
from app.config import MAX_FILE_BYTES
from app.features.files.urls import FILE
from app.features.resumable.tus import created_at, parse_metadata, placement
from app.features.resumable.urls import request_upload_href, share_upload_href, upload_href
from app.features.uploads.data import NAME_THE_FILE, path_asked, placed_by_name, stored_json
from app.ingest.intake import Destination
from app.ingest.names import filename_from_disposition
from app.ingest.pipeline import IngestError
from app.resumable.limits import upload_limit_field
from app.resumable.store import UploadState
from app.resumable.uploads import Appended, OffsetMismatch, ResumableUploads
from app.server.body import incoming
from app.server.interim import send_interim

INTEROP_HEADER = "upload-draft-interop-version"
INTEROP_VERSIONS = (6, 7, 8)
CURRENT_VERSION = 8
PARTIAL_UPLOAD = "application/partial-upload"
# What PATCH takes on an upload resource: the draft's appends and tus's.
ACCEPT_PATCH = f"{PARTIAL_UPLOAD}, application/offset+octet-stream"
PROBLEM_TYPES = "https://iana.org/assignments/http-problem-types#"
UPLOAD_RESUMPTION_SUPPORTED = 104
DEFAULT_NAME = "upload"


class Problem(IngestError):
    """A refusal the draft gives a problem type (RFC 9457) to."""

    def __init__(self, status: int, kind: str, title: str, message: str) -> None:
        super().__init__(status, message)
        self.kind = kind
        self.title = title


def completed(status: int = 400) -> Problem:
    return Problem(
        status, "completed-upload", "upload is already completed",
        "the upload is complete and takes no more bytes",
    )  # fmt: skip


def inconsistent(message: str) -> Problem:
    return Problem(400, "inconsistent-upload-length", "inconsistent length values", message)


# ---- reading the request ------------------------------------------------------


def interop_version(c: Context) -> int:
    """The request's interop version; the current one when it names none (a request
    to /uploads that carries only `Upload-Complete`, as the finished standard will)."""
    value = c.req.headers.get(INTEROP_HEADER)
    if value is None:
        return CURRENT_VERSION
    value = value.strip()
    if value.isascii() and value.isdigit() and len(value) <= 3 and int(value) in INTEROP_VERSIONS:
        return int(value)
    raise IngestError(
        400, f"Upload-Draft-Interop-Version {value[:20]!r} is not one this server speaks:"
        f" send {', '.join(map(str, INTEROP_VERSIONS[:-1]))} or {INTEROP_VERSIONS[-1]}"
        f" ({CURRENT_VERSION} is the current draft)",
    )  # fmt: skip


def _boolean(c: Context, header: str) -> bool | None:
    """A structured-field Boolean (`?0`, `?1`); None when absent; 400 when malformed."""
    value = c.req.headers.get(header)
    if value is None:
        return None
    value = value.strip()
    if value not in ("?0", "?1"):
        raise IngestError(400, f"{header.title()} must be ?0 or ?1, not {value[:20]!r}")
    return value == "?1"


def _integer(c: Context, header: str) -> int | None:
    """A non-negative structured-field Integer; None when absent; 400 when malformed."""
    value = c.req.headers.get(header)
    if value is None:
        return None
    value = value.strip()
    if not (value.isascii() and value.isdigit()) or len(value) > 15:
        raise IngestError(400, f"{header.title()} must be a whole number of bytes")
    number = int(value)
    if number > MAX_FILE_BYTES:
        raise IngestError(413, f"{header.title()} is larger than any file this server keeps")
    return number


def _content_length(c: Context) -> int | None:
    value = c.req.headers.get("content-length")
    return int(value) if value is not None and value.isdigit() else None


def _body_follows(c: Context) -> bool:
    return c.req.headers.get("content-length") not in (None, "0") or bool(
        c.req.headers.get("transfer-encoding")
    )


def _media_type(c: Context) -> str:
    return (c.req.headers.get("content-type") or "").split(";", 1)[0].strip().lower()


def _no_state_headers(c: Context, *headers: str) -> None:
    """HEAD and DELETE ask about an upload; they must not tell it anything."""
    for header in headers:
        if c.req.headers.get(header) is not None:
            raise IngestError(400, f"{header.title()} has no place in a {c.req.method} request")


# ---- answering ----------------------------------------------------------------


def upload_limit(
    resumable: ResumableUploads, max_size: int, state: UploadState | None = None
) -> str:
    """`Upload-Limit` (app/resumable/limits.py): the largest upload, the largest append
    (one request's body) and the seconds left before an unfinished upload expires:
    `expires` for interop 6, `max-age` for 7 and later; a client ignores the key it
    does not know. `max-size` is the destination's largest file, not what is left of
    its quota: the draft says it SHOULD NOT decrease during an upload, and the quota
    left shrinks with every other upload (a quota refusal says so in words)."""
    if state is None:
        left: int | None = math.floor(resumable.expiry)
    elif not state.finished:
        left = max(0, math.floor(state.expires_at - resumable.clock()))
    else:
        left = None
    return upload_limit_field(max_size, resumable.uploads.config.max_request_body_bytes, left)


def _state_headers(
    resumable: ResumableUploads, w: Writer, version: int, to: Destination, state: UploadState
) -> None:
    w.headers.set(INTEROP_HEADER, str(version))
    w.headers.set("upload-offset", str(state.offset))
    w.headers.set("upload-complete", "?1" if state.finished else "?0")
    if state.length is not None:
        w.headers.set("upload-length", str(state.length))
    w.headers.set("upload-limit", upload_limit(resumable, to.max_file_bytes, state))


def _refuse(
    resumable: ResumableUploads,
    c: Context,
    w: Writer,
    version: int | None,
    error: IngestError,
    to: Destination,
    state: UploadState | None = None,
) -> None:
    if version is not None:
        w.headers.set(INTEROP_HEADER, str(version))
    if state is not None and version is not None:
        _state_headers(resumable, w, version, to, state)
    elif error.status == 413:
        # So that a client learns the largest append it may send (interop 8).
        w.headers.set("upload-limit", upload_limit(resumable, to.max_file_bytes))
    if isinstance(error, OffsetMismatch):
        w.headers.set("upload-offset", str(error.expected))
    # The body may be partly unread: closing stops the client sending the rest.
    if _body_follows(c):
        w.headers.set("connection", "close")
    if isinstance(error, OffsetMismatch):
        offsets: dict[str, JsonValue] = {
            "expected-offset": error.expected,
            "provided-offset": error.provided,
        }
        title = "offset from request does not match offset of resource"
        _problem(w, error, "mismatching-upload-offset", title, offsets)
    elif isinstance(error, Problem):
        _problem(w, error, error.kind, error.title, {})
    else:
        json_error(w, error.status, error.message)


def refuse_early(c: Context, w: Writer, error: IngestError) -> None:
    """A refusal before there is a destination (a file request's link that is closed
    or unknown)."""
    version = (c.req.headers.get(INTEROP_HEADER) or "").strip()
    if version in map(str, INTEROP_VERSIONS):
        w.headers.set(INTEROP_HEADER, version)
    json_error(w, error.status, error.message, close=_body_follows(c))


def _problem(
    w: Writer, error: IngestError, kind: str, title: str, members: dict[str, JsonValue]
) -> None:
    """RFC 9457 problem details; `error` as in every other refusal of this app."""
    body: dict[str, JsonValue] = {
        "type": PROBLEM_TYPES + kind,
        "title": title,
        "detail": error.message,
        "error": error.message,
        **members,
    }
    w.respond(dumps_bytes(body), b"application/problem+json", error.status)


async def _answer_append(
    resumable: ResumableUploads,
    c: Context,
    w: Writer,
    version: int,
    to: Destination,
    done: Appended,
    *,
    created: bool,
    optimistic: bool = False,
) -> None:
    if done.file is not None:
        # Finished: the answer `POST /uploads` gives, with the upload's state. A
        # creation with `?0` keeps `Location` on the upload resource, which the draft
        # requires; an optimistic one (`?1`, its URL told in the 104) answers as the
        # single-request upload it was meant to be, `Location` on the stored file (the
        # draft exempts a final answer with `Upload-Complete: ?1` from the same URL).
        _state_headers(resumable, w, version, to, done.state)
        if not to.public:
            w.headers.set("stowage-file-id", done.file.id)
            w.headers.set("stowage-file-location", FILE.href(done.file.id))
            if not created or optimistic:
                w.headers.set("location", FILE.href(done.file.id))
        w.json(await stored_json(resumable.db, [done.file], {}, to), 201)
        return
    if done.stopped is not None:
        _refuse(resumable, c, w, version, done.stopped, to, done.state)
        return
    _state_headers(resumable, w, version, to, done.state)
    # Interop 6 (draft-05) answers an append that leaves the upload incomplete with 201.
    w.empty(201 if created or version == 6 else 204)


# ---- the verbs ----------------------------------------------------------------


async def _create(
    resumable: ResumableUploads,
    c: Context,
    w: Writer,
    to: Destination,
    version: int,
    *,
    name: str,
    declared_mime: str | None,
    metadata: str | None,
    location: Callable[[str], str],
    directory: tuple[str, ...] = (),
    optimistic: bool = False,
) -> None:
    """A new upload whose first bytes, if any, are this request's body; `location`
    gives its URL from its id; `directory`, the folders under `to.folder` its file
    goes into; `optimistic`, made by a single-request upload URL (`/uploads`)."""
    try:
        last = _boolean(c, "upload-complete")
        if last is None:
            raise IngestError(400, "send Upload-Complete: ?0 (more bytes follow in appends) or"
                              " ?1 (this body is the whole file)")  # fmt: skip
        if _integer(c, "upload-offset") not in (None, 0):
            raise IngestError(400, "a new upload starts at offset 0: leave Upload-Offset out")
        length = _integer(c, "upload-length")
        sent = _content_length(c)
        if last and sent is not None:
            if length is not None and length != sent:
                raise inconsistent(f"Upload-Length says {length} bytes, the body has {sent}")
            length = sent
        elif length is not None and sent is not None and sent > length:
            raise inconsistent(f"the body's {sent} bytes are more than Upload-Length {length}")
        state = await resumable.create(to, length=length, name=name,
                                       declared_mime=declared_mime, metadata=metadata,
                                       directory=directory)  # fmt: skip
    except IngestError as error:
        _refuse(resumable, c, w, version, error, to)
        return
    at = location(state.id)
    w.headers.set("location", at)
    if not (_body_follows(c) or last or length == 0):
        _state_headers(resumable, w, version, to, state)
        w.empty(201)
        return
    if _body_follows(c) and c.req.headers.get(INTEROP_HEADER) is not None:
        # The upload's URL before its body, so that a cut-off upload can be resumed.
        # The draft: only to a client that named the interop version (echoed here).
        send_interim(c, w, UPLOAD_RESUMPTION_SUPPORTED, [
            ("location", at),
            ("upload-limit", upload_limit(resumable, to.max_file_bytes, state)),
            (INTEROP_HEADER, str(version)),
        ])  # fmt: skip
    try:
        body = incoming(c, resumable.uploads.config)
        done = await resumable.append(body, state, to, offset=0, last=last)
    except IngestError as error:
        _refuse(resumable, c, w, version, error, to, await resumable.find(state.id, to))
        return
    await _answer_append(resumable, c, w, version, to, done, created=True,
                         optimistic=optimistic and last)  # fmt: skip


def _declared_mime(c: Context) -> str | None:
    """The file's type is the creation request's Content-Type (interop 8), unless that
    only says that the body is part of an upload."""
    media_type = _media_type(c)
    return None if media_type in ("", PARTIAL_UPLOAD) else media_type


async def create(resumable: ResumableUploads, c: Context, w: Writer, to: Destination) -> None:
    """`POST /tus/`: named by tus-style `Upload-Metadata` (tus-js-client sends it in
    draft mode too) or `Content-Disposition`."""
    try:
        version = interop_version(c)
        metadata = parse_metadata(c.req.headers.get("upload-metadata"))
        # Placed as tus places it: metadata `folder` and `relativePath`, or the query.
        to, directory, named = await placement(resumable, c, to, metadata)
    except IngestError as error:
        _refuse(resumable, c, w, None, error, to)
        return
    name = (
        metadata.get("filename")
        or metadata.get("name")
        or named
        or filename_from_disposition(c.req.headers.get("content-disposition"))
        or DEFAULT_NAME
    )
    mime = _declared_mime(c) or metadata.get("filetype") or metadata.get("type")
    await _create(resumable, c, w, to, version, name=name, declared_mime=mime,
                  metadata=c.req.headers.get("upload-metadata"),
                  location=lambda upload_id: created_at(c, upload_id),
                  directory=directory)  # fmt: skip


def _account_upload_at(c: Context, upload_id: str) -> str:
    return upload_href(upload_id)


def _request_upload_at(c: Context, upload_id: str) -> str:
    return request_upload_href(path_param(c, "token"), upload_id)


def start_on_request_uploads(resumable: ResumableUploads):
    """`start_on_uploads` for a file request's link (`/r/{token}/uploads`): the upload
    resource is under the link, `/r/{token}/tus/{id}`."""
    return start_on_uploads(resumable, location=_request_upload_at)


def _share_upload_at(c: Context, upload_id: str) -> str:
    return share_upload_href(path_param(c, "token"), upload_id)


def start_on_share_uploads(resumable: ResumableUploads):
    """`start_on_uploads` for a folder link's `/s/{token}/uploads`: the upload
    resource is under the link, `/s/{token}/tus/{id}`."""
    return start_on_uploads(resumable, location=_share_upload_at)


def start_on_uploads(
    resumable: ResumableUploads,
    location: Callable[[Context, str], str] = _account_upload_at,
):
    """`POST /uploads` and `PUT /uploads/{name}` with `Upload-Complete: ?0` start a
    resumable upload; so does `?1` with the draft's interop header (an optimistic
    upload: the body is meant to be the whole file, and the upload resource, told in a
    104 before the body is read, is there to resume it if the body is cut off). `?1`
    without the interop header, and no `Upload-Complete`, stay single-request uploads.
    `location` gives the upload resource's URL from the request and the upload's id."""

    async def start(c: Context, w: Writer, to: Destination, name: str | None) -> bool:
        if c.req.headers.get("upload-complete") is None:
            return False
        try:
            last = _boolean(c, "upload-complete")
            if last and c.req.headers.get(INTEROP_HEADER) is None:
                return False
            version = interop_version(c)
            if not name and path_asked(c) is None:
                raise IngestError(400, NAME_THE_FILE)
            # `?path=` (or a name holding "/") places it, as for a single-request upload.
            directory, name = placed_by_name(c, name or "")
        except IngestError as error:
            _refuse(resumable, c, w, None, error, to)
            return True
        await _create(resumable, c, w, to, version, name=name, declared_mime=_declared_mime(c),
                      metadata=None, location=lambda upload_id: location(c, upload_id),
                      directory=directory, optimistic=True)  # fmt: skip
        return True

    return start


async def _found(
    resumable: ResumableUploads, c: Context, w: Writer, to: Destination, version: int
) -> UploadState | None:
    state = await resumable.find(path_param(c, "upload_id"), to)
    if state is None:
        w.headers.set("cache-control", "no-store")
        _refuse(resumable, c, w, version,
                IngestError(404, "no such upload (unknown, expired or cancelled)"), to)  # fmt: skip
    return state


async def head(resumable: ResumableUploads, c: Context, w: Writer, to: Destination) -> None:
    try:
        version = interop_version(c)
        _no_state_headers(c, "upload-offset", "upload-complete", "upload-length")
    except IngestError as error:
        _refuse(resumable, c, w, None, error, to)
        return
    state = await _found(resumable, c, w, to, version)
    if state is None:
        return
    # After ending an append still reading, so the next append starts where this says.
    state = await resumable.current(state)
    w.headers.set("cache-control", "no-store")
    if state is None:
        _refuse(resumable, c, w, version, IngestError(404, "no such upload (cancelled)"), to)
        return
    _state_headers(resumable, w, version, to, state)
    # Where this upload is (the URL asked): the draft asks every answer about an
    # upload resource to agree on it.
    w.headers.set("location", c.req.path)
    if state.file_id is not None and not to.public:
        w.headers.set("stowage-file-id", state.file_id)
        w.headers.set("stowage-file-location", FILE.href(state.file_id))
    w.empty(204)


async def get(resumable: ResumableUploads, c: Context, w: Writer, to: Destination) -> None:
    """GET on an upload resource: the draft (since -12) gives its successful answer the
    same fields as HEAD's and says content "is unexpected. Its meaning is not defined
    by this protocol": so the answer is HEAD's, 204 without content."""
    await head(resumable, c, w, to)


async def patch(resumable: ResumableUploads, c: Context, w: Writer, to: Destination) -> None:
    version: int | None = None
    try:
        version = interop_version(c)
        if _media_type(c) != PARTIAL_UPLOAD:
            raise IngestError(415, f"send the bytes of an append as {PARTIAL_UPLOAD}")
        offset = _integer(c, "upload-offset")
        if offset is None:
            raise IngestError(400, "send Upload-Offset: where these bytes start (HEAD tells)")
        last = _boolean(c, "upload-complete")
        if last is None:
            raise IngestError(400, "send Upload-Complete: ?1 if these bytes end the upload,"
                              " else ?0")  # fmt: skip
        length = _integer(c, "upload-length")
    except IngestError as error:
        _refuse(resumable, c, w, version, error, to)
        return
    state = await _found(resumable, c, w, to, version)
    if state is None:
        return
    try:
        _check_append(c, state, version, offset, last, length)
        body = incoming(c, resumable.uploads.config)
        done = await resumable.append(body, state, to, offset=offset, length=length, last=last)
    except IngestError as error:
        _refuse(resumable, c, w, version, error, to, await resumable.find(state.id, to))
        return
    await _answer_append(resumable, c, w, version, to, done, created=False)


def _check_append(
    c: Context, state: UploadState, version: int, offset: int, last: bool, length: int | None
) -> None:
    """The draft's own refusals, before a byte is read (the core checks them all again
    as bytes arrive)."""
    if state.finished:
        # Interop 8: an empty append to a finished upload is 410, one with bytes 400.
        raise completed(410 if version >= 8 and not _body_follows(c) else 400)
    if offset != state.offset:
        raise OffsetMismatch(state.offset, offset)
    if length is not None and state.length is not None and length != state.length:
        raise inconsistent(f"the upload's length is {state.length} bytes, not {length}")
    known = length if length is not None else state.length
    sent = _content_length(c)
    if sent is None:
        return
    if known is not None and offset + sent > known:
        raise inconsistent(f"{offset} + {sent} bytes is more than the upload's {known}")
    if last and known is not None and offset + sent != known:
        raise inconsistent(f"these bytes end the upload at {offset + sent}, not at its {known}")


async def delete(resumable: ResumableUploads, c: Context, w: Writer, to: Destination) -> None:
    try:
        version = interop_version(c)
        _no_state_headers(c, "upload-offset", "upload-complete")
    except IngestError as error:
        _refuse(resumable, c, w, None, error, to)
        return
    state = await _found(resumable, c, w, to, version)
    if state is None:
        return
    await resumable.terminate(state)
    w.headers.set(INTEROP_HEADER, str(version))
    w.empty(204)


def creation_capabilities(
    resumable: ResumableUploads, c: Context, w: Writer, allow: str, max_file_bytes: int | None
) -> None:
    """OPTIONS on a single-request upload URL (`/uploads`, `/uploads/NAME`, and under a
    link), where `Upload-Complete` creates a draft upload: its limits, and its methods."""
    w.headers.set("allow", allow)
    largest = resumable.uploads.config.max_file_bytes if max_file_bytes is None else max_file_bytes
    w.headers.set("upload-limit", upload_limit(resumable, largest))
    version = (c.req.headers.get(INTEROP_HEADER) or "").strip()
    if version in map(str, INTEROP_VERSIONS):
        w.headers.set(INTEROP_HEADER, version)
    w.empty(204)


def capabilities(
    resumable: ResumableUploads, c: Context, w: Writer, max_file_bytes: int | None = None
) -> None:
    """What OPTIONS adds for the draft (the tus capabilities are answered beside):
    `Upload-Limit`, with `max_file_bytes` (a file request's own) or the server's.
    `Accept-Patch` is for interop 6 to 8 (draft-12 drops it from OPTIONS)."""
    w.headers.set("accept-patch", ACCEPT_PATCH)
    largest = resumable.uploads.config.max_file_bytes if max_file_bytes is None else max_file_bytes
    w.headers.set("upload-limit", upload_limit(resumable, largest))
    version = (c.req.headers.get(INTEROP_HEADER) or "").strip()
    if version in map(str, INTEROP_VERSIONS):
        w.headers.set(INTEROP_HEADER, version)
