"""The upload endpoints. Each transport is a thin adapter onto the ingest pipeline;
this module only picks the transport, records what was stored, and answers. The
same code serves an account's own uploads and uploads through a file request
(app/features/requests): a `Destination` says whose space and which limits."""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Protocol

from stario import App, Context, JsonValue, Relay, Writer
from stario.datastar import SSE
from stario.exceptions import ClientDisconnected, RequestBodyError

from app.access.gate import principal
from app.accounts.quotas import QuotaLedger, Reservation
from app.catalog.protocol import Database, is_disk_full, is_owner_gone
from app.common.http import is_datastar, is_plain_form, json_error, path_param
from app.common.units import human_bytes
from app.config import Config
from app.features.requests.data import requests_changed
from app.features.uploads.urls import UPLOAD_NAMED, UPLOAD_UNNAMED, UPLOADS
from app.features.uploads.views import render_refusal, render_results
from app.files.store import (
    FileRow,
    add_files,
    file_json,
    files_changed,
    uploaded_file_json,
)
from app.ingest.budget import RETRY_AFTER_SECONDS, MemoryBudget, OverBudget
from app.ingest.multipart import boundary_of, ingest_multipart
from app.ingest.names import display_name, filename_from_disposition
from app.ingest.pipeline import (
    Ingest,
    IngestedFile,
    IngestError,
    almost_out_of_space,
    body_error,
    ingest_stream,
)
from app.ingest.progress import Progress
from app.ingest.signals import ingest_file_signals, parse_file_signals
from app.server.early_answers import one_request_too_large
from app.server.peers import BODY_READ, request_ended
from app.server.rate import RateFloor, at_least
from app.storage.errors import LowOnSpace
from app.storage.store import Store

type Spawn = Callable[[Coroutine[Any, Any, list[FileRow]]], asyncio.Task[list[FileRow]]]


@dataclass(frozen=True, slots=True)
class Uploads:
    """What every upload transport needs."""

    config: Config
    db: Database
    store: Store
    relay: Relay[str]
    progress: Progress
    quotas: QuotaLedger
    # Bodies held whole in memory (JSON file signals), all requests together.
    signals_memory: MemoryBudget
    # Starts the catalog write; the app passes Stario's `app.create_task`, so
    # shutdown waits for a recording in flight.
    spawn: Spawn = field(default=asyncio.create_task)
    # Upload handlers running now, so a stop can wait for their clean-up (wind_down).
    in_flight: set[asyncio.Task[None]] = field(default_factory=set)
    # Told of every file once its row has committed (the app queues thumbnails).
    stored: Callable[[list[FileRow]], None] | None = None

    async def body(self, c: Context) -> AsyncIterator[bytes]:
        """The request body's chunks, under the minimum upload rate (app/server/rate.py);
        a body without a length that passes the per-request cap ends in a 413 that says
        how to send a larger file. A body read to its end is marked so (`BODY_READ`,
        app/server/peers.py)."""
        if arrived_whole(c):
            # Already in memory and already held to the rate by the connection: one
            # piece, without the meter and the generators a streamed body needs.
            whole = await c.req.body()
            if whole:
                yield whole
            if not c.disconnected:
                c.state[BODY_READ] = True
            return
        chunks = within_request_cap(c.req.stream(), self.config.max_request_body_bytes)
        async for chunk in at_least(RateFloor.of(self.config), chunks):
            yield chunk
        if not c.disconnected:
            c.state[BODY_READ] = True

    async def wind_down(self, seconds: float = 5.0) -> None:
        """At shutdown, after Stario has waited `--shutdown-timeout` and closed every
        connection: uploads still running are ending because their bodies were cut off.
        Wait for each to remove what it wrote before the catalog and the store close;
        one that does not end in `seconds` is cancelled."""
        running = [task for task in self.in_flight if not task.done()]
        if not running:
            return
        _, late = await asyncio.wait(running, timeout=seconds)
        for task in late:
            task.cancel()
        if late:
            await asyncio.wait(late, timeout=seconds)

    def tracked(
        self, handler: Callable[[Context, Writer], Awaitable[None]]
    ) -> Callable[[Context, Writer], Awaitable[None]]:
        async def tracked_handler(c: Context, w: Writer) -> None:
            task = asyncio.current_task()
            if task is not None:
                self.in_flight.add(task)
            try:
                await handler(c, w)
            finally:
                if task is not None:
                    self.in_flight.discard(task)
            request_ended(c, w)

        return tracked_handler

    async def keep(
        self, files: list[IngestedFile], owner: str, request_id: str | None = None
    ) -> list[FileRow]:
        """Record committed blobs for `owner`, all or none; on failure the blobs go too.

        Shielded: if this request is cancelled meanwhile, the recording still runs
        to its end, so a row never outlives its blob nor a blob its failed row.
        A catalog that cannot grow (SQLITE_FULL) is a 507, like a full blob store; an
        owner removed while the upload ran is a 410 (the catalog refuses the row)."""
        try:
            return await asyncio.shield(self.spawn(self._record(files, owner, request_id)))
        except Exception as exc:
            if is_disk_full(exc):
                raise IngestError(
                    507, "the server is out of space: the upload could not be recorded"
                ) from exc
            if is_owner_gone(exc):
                raise IngestError(
                    410, "the account this upload was for has been removed: nothing was kept"
                ) from exc
            raise

    async def _record(
        self, files: list[IngestedFile], owner: str, request_id: str | None
    ) -> list[FileRow]:
        try:
            rows = await add_files(self.db, files, owner, request_id)
        except BaseException:
            await self.store.remove([f.id for f in files])
            raise
        self.relay.publish(files_changed(owner), "added")
        if request_id is not None:
            self.relay.publish(requests_changed(owner), "received")
        if self.stored is not None:
            self.stored(rows)
        return rows

    def check_room(self, c: Context) -> None:
        """Refuse (507) before reading a byte when the declared body would take the
        disk below the free-space floor."""
        try:
            self.store.check_room(_content_length(c) or 0, reuse_for=0.25)
        except LowOnSpace as exc:
            raise almost_out_of_space(exc) from None


# Stario 5.1.1 reads an HTTP/1 body with a Content-Length up to this size whole
# before the handler starts (measured: the handler starts as the last byte arrives,
# and `stream()` yields one chunk). Meanwhile the connection holds those bytes to the
# minimum upload rate itself (app/server/peers.py, `RateFloorProtocol`).
BUFFERED_BODY_BYTES = 256 * 1024


def arrived_whole(c: Context) -> bool:
    """Whether the request's body was read whole before its handler started."""
    if c.req.protocol_version not in ("1.1", "1.0"):
        return False  # HTTP/2 streams a body as it comes, whatever its length
    headers = c.req.headers
    if "expect" in headers:
        # `Expect: 100-continue`: Stario answers 100 and starts the handler before a
        # byte of the body has come (measured), so the handler must judge its rate.
        return False
    length = _content_length(c)
    return (
        length is not None and length <= BUFFERED_BODY_BYTES and "transfer-encoding" not in headers
    )


async def within_request_cap(chunks: AsyncIterator[bytes], cap: int) -> AsyncIterator[bytes]:
    """`chunks`, with Stario's 413 for a body past `cap` (one without Content-Length:
    Stario refuses a declared length itself, see app/server/early_answers.py) told
    in words, with the way to send a larger file."""
    try:
        async for chunk in chunks:
            yield chunk
    except RequestBodyError as exc:
        if exc.status_code == 413:
            raise IngestError(413, one_request_too_large(cap)) from exc
        raise


# Bodies that look like uploads but cannot hold a file; refused rather than stored raw.
FORMS_WITHOUT_FILES = frozenset({"application/x-www-form-urlencoded"})

# What a transfer is called until the first file's name is known.
UNNAMED_TRANSFER = "an upload"


class Busy(IngestError):
    """The server is out of room for this kind of request right now; try again."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(503, message)
        self.retry_after = retry_after


# Each signals body costs about this many times its length while it is handled: the
# bytes, then the text and the parsed signals beside each other.
SIGNALS_MEMORY_FACTOR = 2


def _content_length(c: Context) -> int | None:
    value = c.req.headers.get("content-length")
    return int(value) if value is not None and value.isdigit() else None


class UnfinishedUploads(Protocol):
    """A file request's hold on the resumable uploads made through its link
    (app/features/requests): how many may wait unfinished, and the files they become."""

    def start(self, counts_as_file: bool) -> Callable[[], None]:
        """Before a new upload's row is written: IngestError when the link holds as
        many unfinished uploads as it may (or, `counts_as_file`, when the request has
        no room for one more file). Returns what to call once the row is written (or
        was not): from then on the catalog counts it."""
        ...

    def confirm(self) -> None:
        """After a new upload's row is written: IngestError when the request stopped
        taking files meanwhile (a close that listed its uploads before the row was
        there would leave it behind)."""
        ...

    def finish(self, upload_id: str) -> None:
        """Before a complete upload becomes a file: IngestError when the request takes
        no more files."""
        ...


@dataclass(frozen=True, slots=True)
class Destination:
    """Whose space an upload goes into and what limits it. An account's own upload is
    `Destination.of_account`; a file request (app/features/requests) passes its
    owner, its per-file cap, its id and `claim_files`."""

    owner: str
    max_file_bytes: int
    # The file request the files arrive through; its uploader sees no id or link.
    request_id: str | None = None
    # Called with how many files are about to arrive, before their bytes; may refuse
    # (IngestError). Raw bodies claim 1, file signals all of theirs, forms each part.
    claim_files: Callable[[int], None] | None = None
    # Whose quota a refusal names ("your" for the account itself).
    whose: str = "your"
    # The account is known to have no quota: its uploads read no usage.
    unlimited: bool = False
    # Through a file request: its bound on unfinished resumable uploads.
    unfinished: UnfinishedUploads | None = None

    @classmethod
    def of_account(cls, uploads: "Uploads", c: Context) -> "Destination":
        account = principal(c).account
        unlimited = account.quota(uploads.config.default_quota) is None
        return cls(account.id, uploads.config.max_file_bytes, unlimited=unlimited)

    @property
    def public(self) -> bool:
        return self.request_id is not None


async def _receive_raw(
    uploads: Uploads,
    c: Context,
    name: str,
    on_progress: Callable[[str, int], None],
    quota: Reservation,
    to: Destination,
) -> list[IngestedFile]:
    if to.claim_files is not None:
        to.claim_files(1)
    ingest = Ingest(
        uploads.store,
        name=name,
        declared_mime=c.req.headers.get("content-type"),
        max_bytes=to.max_file_bytes,
        expected_bytes=_content_length(c),
        on_progress=on_progress,
        quota=quota,
    )
    return [await ingest_stream(ingest, uploads.body(c), cut_off=lambda: c.disconnected)]


async def _receive_signals(
    uploads: Uploads,
    c: Context,
    on_progress: Callable[[str, int], None],
    quota: Reservation,
    to: Destination,
) -> list[IngestedFile]:
    cap = uploads.config.max_signals_bytes
    refusal = f"file signals are larger than the {human_bytes(cap)} limit"
    length = _content_length(c)
    if length is not None and length > cap:
        raise IngestError(413, refusal)
    try:
        async with uploads.signals_memory.hold(SIGNALS_MEMORY_FACTOR * (length or cap)):
            return await _receive_signals_within_budget(uploads, c, on_progress, quota, length, to)
    except OverBudget:
        raise Busy(
            "the server is handling too many file-signal uploads at once; "
            f"try again in {RETRY_AFTER_SECONDS} seconds, or send multipart/form-data",
            RETRY_AFTER_SECONDS,
        ) from None


async def _receive_signals_within_budget(
    uploads: Uploads,
    c: Context,
    on_progress: Callable[[str, int], None],
    quota: Reservation,
    length: int | None,
    to: Destination,
) -> list[IngestedFile]:
    cap = uploads.config.max_signals_bytes
    refusal = f"file signals are larger than the {human_bytes(cap)} limit"
    # One growing buffer, then text, then parsed signals, each dropped as soon as the
    # next exists: at most two copies of the body are alive at once.
    body = bytearray()
    try:
        async for chunk in uploads.body(c):
            body += chunk
            on_progress(UNNAMED_TRANSFER, len(chunk))
            if len(body) > cap:
                raise IngestError(413, refusal)
    except (RequestBodyError, ClientDisconnected) as exc:
        raise body_error(exc) from exc
    if c.disconnected or (length is not None and len(body) != length):
        raise IngestError(400, "the file signals were cut off: the client went away")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise IngestError(400, "the body is not UTF-8 JSON") from None
    del body
    files = parse_file_signals(text)
    del text
    if to.claim_files is not None:
        to.claim_files(len(files))
    return await ingest_file_signals(
        uploads.store, files, max_file_bytes=to.max_file_bytes, quota=quota
    )


def _answer(
    c: Context,
    w: Writer,
    rows: list[FileRow],
    fields: dict[str, str | list[str]],
    to: Destination,
) -> None:
    if is_datastar(c):
        sse = SSE(w)
        sse.patch_elements(render_results(rows, links=not to.public))
        sse.patch_signals({"files": []})
        w.end()
        return
    if is_plain_form(c):
        # A form posted without scripts: back to the page it came from, which lists
        # what was stored (303: the browser GETs it, and a reload posts nothing).
        w.redirect(_page_of(c), 303)
        return
    if not to.public:
        # FILE's URL, as file_json spells it: a blob id needs no escaping, and
        # Route.href's quoting was 1% of the event loop under small uploads.
        w.headers.set("location", f"/files/{rows[0].id}")
    w.json(stored_json(rows, fields, to), 201)


def _page_of(c: Context) -> str:
    """The page whose form posts here: `/` for /uploads, `/r/TOKEN` for its uploads."""
    path = c.req.path
    return path.removesuffix("/uploads") if path.startswith("/r/") else "/"


def stored_json(
    rows: list[FileRow], fields: dict[str, str | list[str]], to: Destination
) -> dict[str, JsonValue]:
    """The body of an upload's 201, also the IETF draft's answer to the append that
    completes a resumable upload."""
    fields_json: dict[str, JsonValue] = {
        key: value if isinstance(value, str) else list(value) for key, value in fields.items()
    }
    if to.public:
        # Through a file request: what was received, and no id or link to anything.
        received: list[JsonValue] = [uploaded_file_json(row) for row in rows]
        return {"files": received, "fields": fields_json}
    files: list[JsonValue] = [file_json(row) for row in rows]
    return {"files": files, "fields": fields_json}


def refuse_upload(c: Context, w: Writer, error: IngestError) -> None:
    if isinstance(error, Busy):
        # Not a byte was read: Stario drains the body (no memory held) and the client,
        # which may not read an answer before it has sent everything, gets the 503.
        w.headers.set("retry-after", str(error.retry_after))
    else:
        # The body may be partly unread: closing stops the client sending the rest.
        w.headers.set("connection", "close")
    if is_datastar(c):
        # Datastar applies only 200 responses, so the refusal travels as a 200 patch.
        SSE(w).patch_elements(render_refusal(error.status, error.message))
        w.end()
        return
    if is_plain_form(c):
        # A person whose browser posted the form without scripts: the refusal in
        # words, as pages answer refusals, and the way back.
        w.text(f"{error.message}\n\nGo back to try again.\n", error.status)
        return
    json_error(w, error.status, error.message)


def named_in_request(c: Context) -> str | None:
    return c.req.query.get("name") or filename_from_disposition(
        c.req.headers.get("content-disposition")
    )


async def receive_post(uploads: Uploads, c: Context, w: Writer, to: Destination) -> None:
    """POST: a named raw body, JSON file signals or a multipart form, into `to`."""
    owner = to.owner
    content_type = c.req.headers.get("content-type") or ""
    media_type = content_type.split(";", 1)[0].strip().lower()
    # A body that names its file is that file, whatever its Content-Type says
    # (curl --data-binary sends application/x-www-form-urlencoded by default).
    name = named_in_request(c)
    fields: dict[str, str | list[str]] = {}
    with (
        uploads.quotas.reserve(owner, whose=to.whose, unlimited=to.unlimited) as quota,
        uploads.progress.track(
            display_name(name) if name else UNNAMED_TRANSFER, _content_length(c), owner
        ) as transfer,
    ):
        try:
            uploads.check_room(c)
            if name:
                files = await _receive_raw(uploads, c, name, transfer.add, quota, to)
            elif media_type == "application/json":
                files = await _receive_signals(uploads, c, transfer.add, quota, to)
            elif media_type == "multipart/form-data":
                form = await ingest_multipart(
                    uploads.store,
                    uploads.body(c),
                    boundary=boundary_of(content_type),
                    max_file_bytes=to.max_file_bytes,
                    expected_bytes=_content_length(c),
                    cut_off=lambda: c.disconnected,
                    on_progress=transfer.add,
                    quota=quota,
                    claim_files=to.claim_files,
                )
                files, fields = form.files, form.fields
            elif media_type in FORMS_WITHOUT_FILES or media_type.startswith("multipart/"):
                raise IngestError(
                    415,
                    f"{media_type} cannot carry files: send multipart/form-data, "
                    "JSON file signals, or the file itself as the body named by "
                    "?name=... or a Content-Disposition header",
                )
            else:
                raise IngestError(400, NAME_THE_FILE)
            rows = await uploads.keep(files, owner, to.request_id)
        except IngestError as error:
            refuse_upload(c, w, error)
            return
    _answer(c, w, rows, fields, to)


async def receive_put(
    uploads: Uploads, c: Context, w: Writer, to: Destination, name: str | None, where: str
) -> None:
    """PUT: the body is the file `name`; `where` is the URL to PUT it to by name."""
    if not name:
        w.headers.set("connection", "close")
        json_error(w, 400, f"{NAME_THE_FILE}, or PUT it to {where}")
        return
    with (
        uploads.quotas.reserve(to.owner, whose=to.whose, unlimited=to.unlimited) as quota,
        uploads.progress.track(display_name(name), _content_length(c), to.owner) as transfer,
    ):
        try:
            uploads.check_room(c)
            files = await _receive_raw(uploads, c, name, transfer.add, quota, to)
            rows = await uploads.keep(files, to.owner, to.request_id)
        except IngestError as error:
            refuse_upload(c, w, error)
            return
    _answer(c, w, rows, {}, to)


# Starts a resumable upload instead of a single-request one when the request asks for
# it (the IETF draft's `Upload-Complete: ?0`, app/features/resumable/ietf.py), and
# says whether it did; it gets the name the request gives, if any.
type StartResumable = Callable[[Context, Writer, Destination, str | None], Awaitable[bool]]


def post_upload(uploads: Uploads, start_resumable: StartResumable | None = None):
    async def handler(c: Context, w: Writer) -> None:
        to = Destination.of_account(uploads, c)
        if start_resumable is not None and await start_resumable(c, w, to, named_in_request(c)):
            return
        await receive_post(uploads, c, w, to)

    return handler


NAME_THE_FILE = "name the file: add ?name=... or a Content-Disposition header with a filename"


def put_upload(
    uploads: Uploads,
    *,
    named_in_path: bool = True,
    start_resumable: StartResumable | None = None,
):
    """PUT /uploads/{name}; and PUT /uploads, where the name may come as for POST."""

    async def handler(c: Context, w: Writer) -> None:
        name = path_param(c, "name") if named_in_path else named_in_request(c)
        to = Destination.of_account(uploads, c)
        if start_resumable is not None and await start_resumable(c, w, to, name):
            return
        await receive_put(uploads, c, w, to, name, "/uploads/NAME")

    return handler


def register_uploads(
    app: App, uploads: Uploads, start_resumable: StartResumable | None = None
) -> None:
    start = start_resumable
    app.add(UPLOADS, uploads.tracked(post_upload(uploads, start)))
    app.add(UPLOAD_NAMED, uploads.tracked(put_upload(uploads, start_resumable=start)))
    app.add(
        UPLOAD_UNNAMED,
        uploads.tracked(put_upload(uploads, named_in_path=False, start_resumable=start)),
    )
