"""The JSON API of direct uploads (docs/direct-transfers.md, "The protocol, for
scripts"): open a session, ask it again (fresh part URLs, the parts the bucket
holds), complete it, abandon it; for accounts under /api/uploads/direct and for a
file request's link under /r/TOKEN/uploads/direct. Every rule is the engine's
(app/resumable/direct.py); this module reads JSON and answers it.

Where direct uploads are off (local storage, `--s3-direct none`, a bucket that
refused the page's CORS rules) every route answers 409 with where to upload instead
(`"use"`: the tus endpoint), after the caller was told apart (a wrong link is 404)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager, nullcontext

from stario import App, Context, JsonValue, Writer

from app.access.gate import Gate, principal
from app.common.http import BodyError, json_error, only_fields, path_param, read_json_object
from app.features.direct.urls import (
    DIRECT_ABANDON,
    DIRECT_COMPLETE,
    DIRECT_OPEN,
    DIRECT_STATUS,
    REQUEST_DIRECT_ABANDON,
    REQUEST_DIRECT_COMPLETE,
    REQUEST_DIRECT_OPEN,
    REQUEST_DIRECT_STATUS,
    session_href,
)
from app.features.uploads.data import stored_json
from app.files.store import FileRow
from app.ingest.intake import Destination, Uploads
from app.ingest.pipeline import IngestError
from app.resumable.direct import MAX_PARTS, DirectUploads, Session
from app.server.body import tracked

type Destinations = Callable[[Context], AbstractContextManager[Destination]]
type Verb = Callable[[DirectUploads, Context, Writer, Destination], Awaitable[None]]

OPEN_FIELDS = ("name", "size", "folder", "content_type", "relative_path", "replace", "sha256")
OPEN_BODY_BYTES = 64 * 1024
# {"parts": [{"number": 10000, "etag": "\"<32 hex>\""}, ...]}: about 50 bytes a part.
COMPLETE_BODY_BYTES = MAX_PARTS * 128
OFF = (
    "direct uploads are off on this server (local storage, --s3-direct none, or a bucket"
    " that does not take the page's uploads): upload through tus instead"
)


class Off(Exception):
    """Direct uploads are off here."""


def _whole(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BodyError(f"{what} is a whole number, 0 or more")
    return value


def _text(parsed: dict[str, object], field: str) -> str | None:
    value = parsed.get(field)
    if value is None:
        return None
    if not isinstance(value, str):
        raise BodyError(f"{field} is text")
    return value


def session_json(session: Session, base: str) -> dict[str, JsonValue]:
    state = session.state
    parts: list[JsonValue] = []
    for part in session.parts:
        entry: dict[str, JsonValue] = {"number": part.number, "size": part.size, "url": part.url}
        if part.headers:
            entry["headers"] = dict(part.headers)
        parts.append(entry)
    held: list[JsonValue] = [
        {"number": p.number, "size": p.size, "etag": p.etag} for p in session.held
    ]
    return {
        "session": {
            "id": state.id,
            "url": session_href(base, state.id),
            "name": state.name,
            "size": state.length,
            "part_size": session.part_size,
            "parts": parts,
            "more": session.more,
            "held": held,
            "expires_at": session.expires_at,
            "checksum": session.checksum,
        }
    }


async def _answer_file(
    uploads: Uploads, w: Writer, row: FileRow, to: Destination, status: int
) -> None:
    """The JSON a single upload answers (`{"files": [FILE], "fields": {}}`), and the
    file once more as `"file"`."""
    body = await stored_json(uploads.db, [row], {}, to)
    files = body["files"]
    assert isinstance(files, list)
    body["file"] = files[0]
    if not to.public:
        w.headers.set("location", f"/files/{row.id}")
    w.json(body, status)


def _base(c: Context) -> str:
    """The URL sessions are opened at, from any of the routes' paths."""
    path = c.req.path
    return path[: path.index("/uploads/direct") + len("/uploads/direct")]


async def open_session(direct: DirectUploads, c: Context, w: Writer, to: Destination) -> None:
    parsed = await read_json_object(c, OPEN_BODY_BYTES)
    if parsed is None:
        raise BodyError('send a JSON object such as {"name": "a.bin", "size": 1048576}')
    only_fields(parsed, OPEN_FIELDS)
    name = _text(parsed, "name")
    if name is None:
        raise BodyError("name is missing: the file's name")
    if "size" not in parsed:
        raise BodyError("size is missing: the file's size in bytes")
    size = _whole(parsed["size"], "size")
    replace = parsed.get("replace", False)
    if not isinstance(replace, bool):
        raise BodyError("replace is true or false")
    folder = _text(parsed, "folder")
    # Through a file request the request decides where files go: a visitor's folder
    # or replace is not theirs to choose and is ignored (as on tus).
    if not to.public and (folder is not None or replace):
        to = await direct.resumable.uploads.into_folder(to, folder, replace=replace)
    opened = await direct.open(
        to,
        name=name,
        size=size,
        content_type=_text(parsed, "content_type"),
        relative_path_text=_text(parsed, "relative_path"),
        sha256=_text(parsed, "sha256"),
    )
    if isinstance(opened, FileRow):
        await _answer_file(direct.resumable.uploads, w, opened, to, 201)
        return
    w.headers.set("location", session_href(_base(c), opened.state.id))
    w.json(session_json(opened, _base(c)), 201)


async def session_status(direct: DirectUploads, c: Context, w: Writer, to: Destination) -> None:
    raw = c.req.query.get("from", "1")
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 6 or int(raw) < 1:
        raise BodyError("?from= is a part number, 1 or more")
    session = await direct.status(path_param(c, "upload_id"), to, int(raw))
    w.json(session_json(session, _base(c)), 200)


def _parts(parsed: dict[str, object] | None) -> list[tuple[int, str]]:
    example = '{"parts": [{"number": 1, "etag": "..."}]}'
    if parsed is None:
        raise BodyError(f"send the parts, as {example}")
    only_fields(parsed, ("parts",))
    listed = parsed.get("parts")
    if not isinstance(listed, list) or not listed:
        raise BodyError(f"parts is a list of every part's number and ETag, as {example}")
    if len(listed) > MAX_PARTS:
        raise BodyError(f"an upload has at most {MAX_PARTS} parts")
    parts: list[tuple[int, str]] = []
    for entry in listed:
        if not isinstance(entry, dict) or set(entry) != {"number", "etag"}:
            raise BodyError(f'each part is {{"number": N, "etag": "..."}}, as {example}')
        number = _whole(entry["number"], "a part's number")
        etag = entry["etag"]
        if not isinstance(etag, str) or not etag.strip() or len(etag) > 200:
            raise BodyError(f"part {number}'s etag is the ETag its PUT answered")
        parts.append((number, etag))
    return parts


async def complete_session(direct: DirectUploads, c: Context, w: Writer, to: Destination) -> None:
    parts = _parts(await read_json_object(c, COMPLETE_BODY_BYTES))
    row = await direct.complete(path_param(c, "upload_id"), to, parts)
    await _answer_file(direct.resumable.uploads, w, row, to, 201)


async def abandon_session(direct: DirectUploads, c: Context, w: Writer, to: Destination) -> None:
    await direct.abandon(path_param(c, "upload_id"), to)
    w.empty(204)


def _handler(
    direct: DirectUploads | None,
    uploads: Uploads,
    destination: Destinations,
    verb: Verb,
):
    async def handler(c: Context, w: Writer) -> None:
        try:
            with destination(c) as to:
                if direct is None:
                    raise Off
                await verb(direct, c, w, to)
        except Off:
            # Where to upload instead: the tus endpoint for the same destination.
            public = c.req.path.startswith("/r/")
            use = f"/r/{path_param(c, 'token')}/tus/" if public else "/tus/"
            w.headers.set("connection", "close")
            w.json({"error": OFF, "use": use}, 409)
        except BodyError as error:
            json_error(w, 400, str(error), close=True)
        except IngestError as error:
            if error.retry_after is not None:
                w.headers.set("retry-after", str(error.retry_after))
            json_error(w, error.status, error.message, close=True)

    return handler


def register_direct(
    app: App,
    gate: Gate,
    direct: DirectUploads | None,
    uploads: Uploads,
    through_request: Destinations,
) -> None:
    """The routes for accounts (private: an API token or a session cookie, like the
    other /api routes) and for a file request's link (its token decides, with the
    request's limits). `direct` None: direct uploads are off here (409)."""

    def of_account(c: Context) -> AbstractContextManager[Destination]:
        return nullcontext(Destination.of_account(uploads, principal(c).account))

    gate.requests(
        REQUEST_DIRECT_OPEN, REQUEST_DIRECT_STATUS, REQUEST_DIRECT_COMPLETE, REQUEST_DIRECT_ABANDON
    )
    for routes, destination in (
        ((DIRECT_OPEN, DIRECT_STATUS, DIRECT_COMPLETE, DIRECT_ABANDON), of_account),
        ((REQUEST_DIRECT_OPEN, REQUEST_DIRECT_STATUS, REQUEST_DIRECT_COMPLETE,
          REQUEST_DIRECT_ABANDON), through_request),
    ):  # fmt: skip
        opening, status, completing, abandoning = routes
        app.add(opening, _handler(direct, uploads, destination, open_session))
        app.add(status, _handler(direct, uploads, destination, session_status))
        # Tracked: a completion (a read-back of the object) finishes before shutdown.
        app.add(
            completing,
            tracked(uploads.in_flight, _handler(direct, uploads, destination, complete_session)),
        )
        app.add(abandoning, _handler(direct, uploads, destination, abandon_session))
