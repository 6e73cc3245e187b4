"""The upload endpoints. Each transport is a thin adapter onto the ingest pipeline;
this module only picks the transport, hands what was stored to the intake
(app/ingest/intake.py), which records it, and answers. The same code serves an
account's own uploads and uploads through a file request (app/features/requests):
a `Destination` says whose space and which limits."""

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote

from stario import App, Context, Writer
from stario.datastar import SSE
from stario.exceptions import ClientDisconnected, RequestBodyError

from app.access.gate import principal
from app.accounts.quotas import Reservation
from app.common.http import is_datastar, is_plain_form, json_error, path_param
from app.common.shell import PageAssets, content_security_policy, new_nonce
from app.common.units import human_bytes
from app.features.uploads.data import (
    NAME_THE_FILE,
    StartResumable,
    into_asked_folder,
    path_asked,
    placed_by_name,
    stored_json,
)
from app.features.uploads.urls import UPLOAD_NAMED, UPLOAD_UNNAMED, UPLOADS
from app.features.uploads.views import refused_page, render_refusal, render_results, stored_page
from app.files.store import FileRow
from app.ingest.budget import RETRY_AFTER_SECONDS, OverBudget
from app.ingest.intake import Destination, OnProgress, Uploads
from app.ingest.multipart import boundary_of, ingest_multipart
from app.ingest.names import Placed, display_name, filename_from_disposition
from app.ingest.pipeline import (
    Ingest,
    IngestedFile,
    IngestError,
    body_error,
    ingest_stream,
)
from app.ingest.signals import ingest_file_signals, parse_file_signals
from app.server.body import declared_length, read_body, tracked

# Bodies that look like uploads but cannot hold a file; refused rather than stored raw.
FORMS_WITHOUT_FILES = frozenset({"application/x-www-form-urlencoded"})

# What a transfer is called until the first file's name is known.
UNNAMED_TRANSFER = "an upload"


class Busy(IngestError):
    """The server is out of room for this kind of request right now; try again."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(503, message, retry_after)


# Each signals body costs about this many times its length while it is handled: the
# bytes, then the text and the parsed signals beside each other.
SIGNALS_MEMORY_FACTOR = 2


async def _receive_raw(
    uploads: Uploads,
    c: Context,
    placed: Placed,
    on_progress: Callable[[str, int], None],
    quota: Reservation,
    to: Destination,
) -> list[IngestedFile]:
    if to.claim_files is not None:
        to.claim_files(1)
    directory, name = placed
    ingest = Ingest(
        uploads.store,
        name=name,
        directory=directory,
        declared_mime=c.req.headers.get("content-type"),
        max_bytes=to.max_file_bytes,
        expected_bytes=declared_length(c),
        on_progress=on_progress,
        quota=quota,
    )
    return [
        await ingest_stream(ingest, read_body(c, uploads.config), cut_off=lambda: c.disconnected)
    ]


async def _receive_signals(
    uploads: Uploads,
    c: Context,
    on_progress: Callable[[str, int], None],
    quota: Reservation,
    to: Destination,
) -> list[IngestedFile]:
    cap = uploads.config.max_signals_bytes
    refusal = f"file signals are larger than the {human_bytes(cap)} limit"
    length = declared_length(c)
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
        async for chunk in read_body(c, uploads.config):
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


async def _answer(
    uploads: Uploads,
    c: Context,
    w: Writer,
    rows: list[FileRow],
    fields: dict[str, str | list[str]],
    to: Destination,
    assets: PageAssets | None,
) -> None:
    if is_datastar(c):
        sse = SSE(w)
        sse.patch_elements(render_results(rows, links=not to.public))
        sse.patch_signals({"files": []})
        w.end()
        return
    if is_plain_form(c):
        if assets is None or c.req.method != "POST":
            # No page to answer with, or not a form (a browser's form only POSTs):
            # back to the page (303: the browser GETs it, and a reload posts nothing).
            w.redirect(_page_of(c), 303)
            return
        # A form posted without scripts: what was stored, in words, and the way back
        # to the page it came from (which lists it, or counts it for a request).
        nonce = new_nonce()
        w.headers.set("content-security-policy", content_security_policy(nonce))
        w.html(stored_page(assets, rows, _page_of(c), public=to.public, nonce=nonce))
        return
    if not to.public:
        # FILE's URL, as file_json spells it: a blob id needs no escaping, and
        # Route.href's quoting was 1% of the event loop under small uploads.
        w.headers.set("location", f"/files/{rows[0].id}")
    w.json(await stored_json(uploads.db, rows, fields, to), 201)


def _page_of(c: Context) -> str:
    """The page whose form posts here: `/` for /uploads, `/r/TOKEN` (or a folder
    link's `/s/TOKEN`) for its uploads, whatever follows (a PUT's name: one holding
    a backslash made a Location the server refused, a 500 after the file was kept)."""
    path = c.req.path
    if path.startswith(("/r/", "/s/")):
        return "/".join(path.split("/")[:3])
    folder = c.req.query.get("folder")
    # The folder the form was posted from (an id the upload already accepted, or
    # was refused for: quoted, as it goes back into a URL).
    return f"/?folder={quote(folder, safe='')}" if folder and folder != "root" else "/"


def refuse_upload(
    c: Context, w: Writer, error: IngestError, assets: PageAssets | None = None
) -> None:
    if error.retry_after is not None:
        # The page offers Retry for this refusal (assets/resumable.js, mayRetry).
        w.headers.set("retry-after", str(error.retry_after))
    # A Busy refusal read not a byte: Stario drains the body (no memory held) and
    # the client, which may not read an answer before it has sent everything, gets
    # the 503. Otherwise the body may be partly unread: closing stops the client
    # sending the rest.
    if not isinstance(error, Busy):
        w.headers.set("connection", "close")
    if is_datastar(c):
        # Datastar applies only 200 responses, so the refusal travels as a 200 patch.
        SSE(w).patch_elements(render_refusal(error.status, error.message))
        w.end()
        return
    if is_plain_form(c):
        # A person whose browser posted the form without scripts: the refusal in
        # words, as pages answer refusals, and the way back.
        if assets is None:
            w.text(f"{error.message}\n\nGo back to try again.\n", error.status)
            return
        nonce = new_nonce()
        w.headers.set("content-security-policy", content_security_policy(nonce))
        public = c.req.path.startswith(("/r/", "/s/"))
        page = refused_page(
            assets, error.status, error.message, _page_of(c), public=public, nonce=nonce
        )
        w.html(page, error.status)
        return
    json_error(w, error.status, error.message)


def named_in_request(c: Context) -> str | None:
    return c.req.query.get("name") or filename_from_disposition(
        c.req.headers.get("content-disposition")
    )


async def receive_post(
    uploads: Uploads, c: Context, w: Writer, to: Destination, assets: PageAssets | None = None
) -> None:
    """POST: a named raw body, JSON file signals or a multipart form, into `to`. A
    `?path=a/b/c.txt` places a raw body or a form's one file (and names it); a form's
    filenames and file signals' paths place each of theirs."""
    content_type = c.req.headers.get("content-type") or ""
    media_type = content_type.split(";", 1)[0].strip().lower()
    # A body that names its file is that file, whatever its Content-Type says
    # (curl --data-binary sends application/x-www-form-urlencoded by default).
    name = named_in_request(c)
    fields: dict[str, str | list[str]] = {}
    try:
        path = path_asked(c)
        if path is not None and not name and media_type == "application/json":
            raise IngestError(
                400, "?path= places a raw body or a form's one file; file signals carry a"
                " path per file (\"path\" in each, or a \"paths\" signal)",
            )  # fmt: skip
    except IngestError as error:
        refuse_upload(c, w, error, assets)
        return
    # ?path= names a raw body as well as placing it.
    raw = name is not None or (path is not None and media_type != "multipart/form-data")

    async def files(quota: Reservation, on_progress: OnProgress) -> list[IngestedFile]:
        nonlocal fields
        if raw:
            placed = path if path is not None else ((), name or "")
            return await _receive_raw(uploads, c, placed, on_progress, quota, to)
        if media_type == "application/json":
            return await _receive_signals(uploads, c, on_progress, quota, to)
        if media_type == "multipart/form-data":
            form = await ingest_multipart(
                uploads.store,
                read_body(c, uploads.config),
                boundary=boundary_of(content_type),
                max_file_bytes=to.max_file_bytes,
                expected_bytes=declared_length(c),
                cut_off=lambda: c.disconnected,
                on_progress=on_progress,
                quota=quota,
                claim_files=to.claim_files,
                placed=path,
            )
            fields = form.fields
            return form.files
        if media_type in FORMS_WITHOUT_FILES or media_type.startswith("multipart/"):
            raise IngestError(
                415,
                f"{media_type} cannot carry files: send multipart/form-data, "
                "JSON file signals, or the file itself as the body named by "
                "?name=... or a Content-Disposition header",
            )
        raise IngestError(400, NAME_THE_FILE)

    shown = path[1] if raw and path is not None else name
    shown = display_name(shown) if shown else UNNAMED_TRANSFER
    try:
        rows = await uploads.receive(to, shown, declared_length(c), files)
    except IngestError as error:
        refuse_upload(c, w, error, assets)
        return
    await _answer(uploads, c, w, rows, fields, to, assets)


async def receive_put(
    uploads: Uploads,
    c: Context,
    w: Writer,
    to: Destination,
    name: str | None,
    where: str,
    assets: PageAssets | None = None,
) -> None:
    """PUT: the body is the file `name`; `where` is the URL to PUT it to by name."""
    if not name:
        w.headers.set("connection", "close")
        json_error(w, 400, f"{NAME_THE_FILE}, or PUT it to {where}")
        return

    try:
        placed = placed_by_name(c, name)
    except IngestError as error:
        refuse_upload(c, w, error, assets)
        return

    async def files(quota: Reservation, on_progress: OnProgress) -> list[IngestedFile]:
        return await _receive_raw(uploads, c, placed, on_progress, quota, to)

    try:
        rows = await uploads.receive(to, display_name(placed[1]), declared_length(c), files)
    except IngestError as error:
        refuse_upload(c, w, error, assets)
        return
    await _answer(uploads, c, w, rows, {}, to, assets)


@dataclass(frozen=True, slots=True)
class SingleRequestUploads:
    """The code of /uploads for another route's destination: a file request's link
    (app/features/requests) gets it from app/main.py, so that no feature imports
    another's handlers."""

    uploads: Uploads
    # For the pages a browser without scripts is answered with.
    assets: PageAssets | None = None

    async def post(self, c: Context, w: Writer, to: Destination) -> None:
        await receive_post(self.uploads, c, w, to, self.assets)

    async def put(
        self, c: Context, w: Writer, to: Destination, name: str | None, where: str
    ) -> None:
        await receive_put(self.uploads, c, w, to, name, where, self.assets)

    def named_in_request(self, c: Context) -> str | None:
        return named_in_request(c)

    def refuse(self, c: Context, w: Writer, error: IngestError) -> None:
        refuse_upload(c, w, error, self.assets)


async def _account_destination(
    uploads: Uploads, c: Context, w: Writer, assets: PageAssets | None
) -> Destination | None:
    """The signed-in account's space, in the folder the request asks for (`?folder=`,
    `?replace=`); None once a refusal is sent (an unknown folder, before any byte)."""
    to = Destination.of_account(uploads, principal(c).account)
    try:
        return await into_asked_folder(uploads, c, to)
    except IngestError as error:
        refuse_upload(c, w, error, assets)
        return None


def post_upload(
    uploads: Uploads,
    start_resumable: StartResumable | None = None,
    assets: PageAssets | None = None,
):
    async def handler(c: Context, w: Writer) -> None:
        to = await _account_destination(uploads, c, w, assets)
        if to is None:
            return
        if start_resumable is not None and await start_resumable(c, w, to, named_in_request(c)):
            return
        await receive_post(uploads, c, w, to, assets)

    return handler


def put_upload(
    uploads: Uploads,
    *,
    named_in_path: bool = True,
    start_resumable: StartResumable | None = None,
    assets: PageAssets | None = None,
):
    """PUT /uploads/{name}; and PUT /uploads, where the name may come as for POST."""

    async def handler(c: Context, w: Writer) -> None:
        name = path_param(c, "name") if named_in_path else named_in_request(c)
        to = await _account_destination(uploads, c, w, assets)
        if to is None:
            return
        if start_resumable is not None and await start_resumable(c, w, to, name):
            return
        await receive_put(uploads, c, w, to, name, "/uploads/NAME", assets)

    return handler


def register_uploads(
    app: App,
    uploads: Uploads,
    start_resumable: StartResumable | None = None,
    assets: PageAssets | None = None,
) -> None:
    """`assets`: the page shell, for what a browser posting the form without scripts
    is answered with (without them, a 303 back and plain-text refusals)."""
    start = start_resumable
    app.add(UPLOADS, tracked(uploads.in_flight, post_upload(uploads, start, assets)))
    app.add(
        UPLOAD_NAMED,
        tracked(uploads.in_flight, put_upload(uploads, start_resumable=start, assets=assets)),
    )
    app.add(
        UPLOAD_UNNAMED,
        tracked(
            uploads.in_flight,
            put_upload(uploads, named_in_path=False, start_resumable=start, assets=assets),
        ),
    )
