"""File requests: the owner's API (make, list, close) and the public link itself.

Who a link's request is, and that it may only upload, is decided by the gate
(`gate.requests`, `request_access`, `may_upload_via`); uploads go through the very
code of `/uploads` (`receive_post`, `receive_put`) with the request's owner, its
per-file cap and its file count as the destination.

Counting files: each upload claims its files before their bytes are read (a raw
body 1, file signals all of theirs, a form each file part as it begins) against
what the request has received (fresh from the catalog) plus what uploads in flight
hold, so concurrent uploads never pass `max_files`. A claim is given back once its
rows are committed (the trigger then counts them) or the upload fails: for that
moment the files count twice, which can refuse early but never lets one through.

Resumable uploads (tus, the IETF draft) through a link wait between their requests:
an unfinished one counts as one of the request's files from its creation (its row
in the catalog holds the place), a link holds at most `MAX_UNFINISHED_PER_REQUEST`
of them, closing the request ends them at once, and its owner sees each (name,
bytes so far) and may cancel it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Protocol

from stario import App, Context, Relay, Writer
from stario.datastar import SSE
from stario.markup import HtmlElement

from app.access.gate import (
    Gate,
    RequestGone,
    ShareGone,
    ShareLocked,
    may_upload_via,
    principal,
    request_access,
    share_access,
)
from app.accounts.store import account_by_id
from app.catalog.protocol import Database
from app.common.forms import as_sentence
from app.common.http import (
    BodyError,
    is_datastar,
    json_error,
    only_fields,
    path_param,
    read_json_object,
)
from app.common.shell import PageAssets, content_security_policy, new_nonce
from app.config import Config
from app.features.requests.data import open_requests, request_json
from app.features.requests.panel import new_request_error, new_request_part
from app.features.requests.urls import (
    API_REQUEST_CLOSE,
    API_REQUEST_CREATE,
    API_REQUEST_UPLOAD_CANCEL,
    API_REQUESTS,
    REQUEST_PAGE,
    REQUEST_UPLOAD_NAMED,
    REQUEST_UPLOAD_UNNAMED,
    REQUEST_UPLOADS,
)
from app.features.requests.views import gone_page, request_page, unknown_page
from app.features.shares.urls import SHARE_UPLOAD_NAMED, SHARE_UPLOAD_UNNAMED, SHARE_UPLOADS
from app.features.uploads.data import StartResumable
from app.folders.store import ROOT, FolderError, catalog_id, folder_paths, get_folder
from app.ingest.intake import Destination, Uploads
from app.ingest.pipeline import IngestError
from app.requests.events import requests_changed
from app.requests.store import (
    DEFAULT_EXPIRES_IN,
    REQUEST_ID_PATTERN,
    FileRequest,
    Gone,
    RequestError,
    check_expires_in,
    check_label,
    check_max_file_bytes,
    check_max_files,
    close_request,
    create_request,
    request_by_id,
)
from app.resumable.store import (
    count_unfinished_files_through,
    count_unfinished_through,
    load_upload,
)
from app.resumable.uploads import ResumableUploads, is_upload_id
from app.server.body import tracked

MAX_BODY_BYTES = 16 * 1024
# How many resumable uploads one request's link may hold unfinished at once (partial
# uploads of a tus concatenation included). Each holds up to the request's per-file
# cap of its owner's quota for up to --upload-expiry, so this bounds what a stranger
# with the link can hold to 8 such files. The request page sends one file at a time;
# tus-js-client's `parallelUploads` sends one file as that many partials (4 in the
# tests), so 8 leaves room for a parallel upload beside paused ones.
MAX_UNFINISHED_PER_REQUEST = 8
FIELDS = ("label", "expires_in", "max_files", "max_file_bytes", "folder")
# A refusal that is about now (the link's places are held by uploads under way) says
# when to try again: the page then offers Retry (assets/resumable.js, mayRetry).
TRY_AGAIN_SECONDS = 30
MIB = 1024 * 1024


class SingleRequestUploads(Protocol):
    """The code of /uploads (app/features/uploads/handlers.py), which app/main.py
    hands over: a link's uploads go through it, into the request's destination."""

    async def post(self, c: Context, w: Writer, to: Destination) -> None: ...

    async def put(
        self, c: Context, w: Writer, to: Destination, name: str | None, where: str
    ) -> None: ...

    def named_in_request(self, c: Context) -> str | None: ...

    def refuse(self, c: Context, w: Writer, error: IngestError) -> None: ...


@dataclass
class Requests:
    config: Config
    db: Database
    gate: Gate
    relay: Relay[str]
    assets: PageAssets
    uploads: Uploads
    resumable: ResumableUploads
    # How /uploads receives a body, for the link's own /uploads.
    single_request: SingleRequestUploads
    # `Upload-Complete: ?0` on the link's /uploads starts a resumable upload (the IETF
    # draft), as on the account's own /uploads; without it, such a body would be kept
    # as a whole file, cut short.
    start_resumable: StartResumable | None = None
    # The same for a folder link's /uploads (its resource under /s/{token}/tus/).
    start_resumable_on_share: StartResumable | None = None
    # Files claimed by uploads in flight, per request id (see the module doc).
    claimed: Counter[str] = field(default_factory=Counter)
    # Resumable uploads being created through a link, until their rows are written.
    starting: Counter[str] = field(default_factory=Counter)
    # Where the link's page sends file bytes when direct uploads are on (the
    # bucket's origin, which its CSP allows), "" when they are off.
    bucket_origin: str = ""

    def now(self) -> float:
        return self.gate.clock()

    def destination(self, c: Context) -> AbstractContextManager[Destination]:
        """Where an upload through the link on `c` goes (`destination_through`)."""
        return destination_through(self, c)

    def share_destination(self, c: Context) -> AbstractContextManager[Destination]:
        """Where an upload through the folder link on `c` goes (`destination_through_share`)."""
        return destination_through_share(self, c)


# The owner's API -------------------------------------------------------------------------


async def _read_request(c: Context, *, signals: bool) -> dict[str, object]:
    """The JSON object of `POST /api/requests`; with `signals`, the page's form."""
    try:
        parsed = await read_json_object(c, MAX_BODY_BYTES)
        if parsed is None:
            raise RequestError('send a JSON object such as {"label": "Photos from the trip"}')
        if signals:
            return _from_signals(parsed)
        only_fields(parsed, FIELDS)
    except BodyError as exc:
        raise RequestError(str(exc)) from None
    if "label" not in parsed:
        raise RequestError("label is missing: it tells uploaders what to send")
    return parsed


def _number(text: str) -> object:
    return int(text) if text.isascii() and text.isdigit() else text


def _from_signals(signals: dict[str, object]) -> dict[str, object]:
    """The page's form (Datastar signals, all text) as the API's fields; the largest
    file is asked in MiB there."""
    expiry = str(signals.get("requestExpiry", "") or "")
    max_files = str(signals.get("requestMaxFiles", "") or "").strip()
    max_mib = str(signals.get("requestMaxMib", "") or "").strip()
    fields: dict[str, object] = {"label": str(signals.get("requestLabel", "") or "")}
    if expiry == "never":
        fields["expires_in"] = None
    elif expiry:
        fields["expires_in"] = _number(expiry)
    fields["max_files"] = _number(max_files) if max_files else None
    folder = str(signals.get("requestFolder", "") or "")
    if folder:
        fields["folder"] = folder
    if max_mib:
        mib = _number(max_mib)
        fields["max_file_bytes"] = mib * MIB if isinstance(mib, int) else mib
    return fields


def create(requests: Requests):
    async def handler(c: Context, w: Writer) -> None:
        owner = principal(c).account_id
        datastar = is_datastar(c)
        try:
            fields = await _read_request(c, signals=datastar)
            label = check_label(fields.get("label"))
            expires_in = check_expires_in(fields.get("expires_in", DEFAULT_EXPIRES_IN))
            max_files = check_max_files(fields.get("max_files"))
            max_file_bytes = check_max_file_bytes(
                fields.get("max_file_bytes"), requests.config.max_file_bytes
            )
            folder = await _request_folder(requests.db, owner, fields.get("folder"))
            made, token = await create_request(
                requests.db,
                owner=owner,
                label=label,
                now=requests.now(),
                expires_in=expires_in,
                max_files=max_files,
                max_file_bytes=max_file_bytes,
                folder=folder,
            )
        except FolderError as exc:
            # Another account's folder is "no such folder", as an unknown one.
            if datastar:
                SSE(w).patch_elements(new_request_error("That folder is gone: choose another one."))
                w.end()
            else:
                json_error(w, exc.status, exc.message)
            return
        except RequestError as exc:
            message = str(exc)
            if datastar:
                SSE(w).patch_elements(new_request_error(as_sentence(message)))
                w.end()
            else:
                json_error(w, 400, message)
            return
        requests.relay.publish(requests_changed(owner), "created")
        url = REQUEST_PAGE.href(token)
        if datastar:
            sse = SSE(w)
            sse.patch_elements(new_request_part(label, requests.config.public_url + url))
            sse.patch_signals(
                {
                    "requestLabel": "",
                    "requestMaxFiles": "",
                    "requestMaxMib": "",
                    "requestFolder": "root",
                }
            )
            w.end()
            return
        w.headers.set("location", url)
        paths = await folder_paths(requests.db, owner, [made.folder_id])
        w.json({"request": request_json(made, url, folder_path=paths.get(made.folder_id))}, 201)

    return handler


async def _request_folder(db: Database, owner: str, value: object) -> str:
    """The catalog id of the folder a new request's files land in (absent, null or
    "root": the root); FolderError 404 when the account has no such folder."""
    if value is None:
        return ROOT
    if not isinstance(value, str) or not value:
        raise RequestError('folder must be a folder id (a string; "root" for the root)')
    folder = catalog_id(value)
    if await get_folder(db, owner, folder) is None:
        raise FolderError(404, "no such folder")
    return folder


def show_requests(requests: Requests):
    async def handler(c: Context, w: Writer) -> None:
        owner = principal(c).account_id
        found = await open_requests(requests.db, owner)
        w.json(
            {
                "requests": [
                    request_json(o.request, None, o.unfinished, folder_path=o.folder_path)
                    for o in found
                ]
            }
        )

    return handler


def close(requests: Requests):
    async def handler(c: Context, w: Writer) -> None:
        owner = principal(c).account_id
        request_id = path_param(c, "request_id")
        known = REQUEST_ID_PATTERN.fullmatch(request_id) is not None
        if not known or not await close_request(requests.db, request_id, owner, requests.now()):
            json_error(w, 404, "no such request")
            return
        # Its unfinished uploads can never become files: their space goes back now.
        await requests.resumable.end_request(request_id)
        w.empty()
        requests.relay.publish(requests_changed(owner), "closed")

    return handler


def cancel_upload(requests: Requests):
    """DELETE /api/requests/{request_id}/uploads/{upload_id}: the owner ends one
    unfinished upload made through one of their requests."""

    async def handler(c: Context, w: Writer) -> None:
        owner = principal(c).account_id
        request_id = path_param(c, "request_id")
        upload_id = path_param(c, "upload_id")
        state = None
        if REQUEST_ID_PATTERN.fullmatch(request_id) and is_upload_id(upload_id):
            state = await load_upload(requests.db, upload_id)
        if (
            state is None
            or state.owner != owner
            or state.request_id != request_id
            or state.finished
        ):
            json_error(w, 404, "no such unfinished upload")
            return
        await requests.resumable.terminate(state)
        w.empty()

    return handler


# The link ------------------------------------------------------------------------------


def _token(c: Context) -> str:
    return path_param(c, "token")


def _gone_words(reason: Gone) -> str:
    return f"this request takes no more files: {reason.value}"


def show_link(requests: Requests):
    """GET /r/{token}: the upload page, or why there is none."""

    async def handler(c: Context, w: Writer) -> None:
        access = request_access(c)
        nonce = new_nonce()
        w.headers.set(
            "content-security-policy",
            content_security_policy(nonce, connect=requests.bucket_origin),
        )
        if isinstance(access, RequestGone):
            w.html(gone_page(requests.assets, access.reason.value), 410)
            return
        owner = may_upload_via(access) if access is not None else None
        account = account_by_id(requests.db, owner) if owner is not None else None
        if access is None or account is None:
            w.html(unknown_page(requests.assets), 404)
            return
        # The page's upload queue reads these counts again after each stored file.
        request = access.request
        page: HtmlElement = request_page(
            requests.config,
            requests.assets,
            _token(c),
            request,
            account.name,
            nonce=nonce,
            unfinished=count_unfinished_files_through(requests.db, request.id),
            direct_uploads=bool(requests.bucket_origin),
        )
        w.html(page)

    return handler


class _Through:
    """What one HTTP request through a link holds (see the module doc): files claimed
    in memory, given back when it ends, and unfinished resumable uploads it is
    starting, given back as soon as their rows are written."""

    def __init__(self, requests: Requests, request: FileRequest) -> None:
        self.requests = requests
        self.request = request
        self.held = 0

    def _current(self) -> FileRequest:
        """The request afresh; IngestError 410 once it takes no more files."""
        current = request_by_id(self.requests.db, self.request.id) or self.request
        reason = current.gone(self.requests.now())
        if reason is not None:
            raise IngestError(410, _gone_words(reason))
        return current

    def claim(self, count: int) -> None:
        """`count` more files for this upload, against the files received, those
        other uploads are receiving and the unfinished resumable uploads that will be
        files; IngestError (409, 410, 413) when they do not fit."""
        request_id = self.request.id
        current = self._current()
        if current.max_files is not None:
            others = self.requests.claimed[request_id] - self.held
            others += count_unfinished_files_through(self.requests.db, request_id)
            room = current.max_files - current.files - others  # for this whole upload
            if self.held + count > room:
                if room <= 0 and others:
                    raise IngestError(
                        409,
                        "this request's last files are being uploaded now;"
                        " if they do not arrive, try again",
                        TRY_AGAIN_SECONDS,
                    )
                if room <= 0:
                    raise IngestError(410, _gone_words(Gone.FULL))
                raise IngestError(
                    413,
                    f"this request takes {room} more file{'' if room == 1 else 's'};"
                    " this upload has more",
                )
        self.requests.claimed[request_id] += count
        self.held += count

    def give_back(self, count: int) -> None:
        count = min(count, self.held)
        if count:
            self.held -= count
            self.requests.claimed[self.request.id] -= count
            if self.requests.claimed[self.request.id] <= 0:
                del self.requests.claimed[self.request.id]

    def start(self, counts_as_file: bool) -> Callable[[], None]:
        """A new resumable upload through the link (`UnfinishedUploads.start`)."""
        request_id = self.request.id
        self._current()
        starting = self.requests.starting
        waiting = count_unfinished_through(self.requests.db, request_id) + starting[request_id]
        if waiting >= MAX_UNFINISHED_PER_REQUEST:
            raise IngestError(
                409,
                f"this request already holds {MAX_UNFINISHED_PER_REQUEST} unfinished"
                " uploads, the most one link may: finish one of them first, or wait"
                " until one is cancelled or expires",
                TRY_AGAIN_SECONDS,
            )
        if counts_as_file:
            self.claim(1)
        starting[request_id] += 1
        done = False

        def recorded() -> None:
            nonlocal done
            if done:
                return
            done = True
            starting[request_id] -= 1
            if starting[request_id] <= 0:
                del starting[request_id]
            if counts_as_file:
                self.give_back(1)  # the row counts it now

        return recorded

    def confirm(self) -> None:
        """The new upload's row is written (`UnfinishedUploads.confirm`): a close
        either lists it, or committed before this read and is seen here."""
        self._current()

    def finish(self, upload_id: str) -> None:
        """A complete upload becomes one of the request's files: the request must
        still be open, and have room for it beside its other unfinished uploads (its
        own place was held by its row since its creation, so what uploads in flight
        claim is not counted against it)."""
        current = self._current()
        if current.max_files is not None:
            others = count_unfinished_files_through(
                self.requests.db, self.request.id, excluding=upload_id
            )
            if current.files + others >= current.max_files:
                raise IngestError(410, _gone_words(Gone.FULL))


@contextmanager
def _claims(requests: Requests, request: FileRequest) -> Iterator[_Through]:
    """What one HTTP request through `request` holds; everything it claimed is given
    back when it ends (its rows, if kept, are counted by the catalog by then)."""
    through = _Through(requests, request)
    try:
        yield through
    finally:
        through.give_back(through.held)


@contextmanager
def destination_through(requests: Requests, c: Context) -> Iterator[Destination]:
    """Where an upload through the request on `c` goes: its owner's space, under its
    limits; IngestError (404, 410) when the link leads nowhere. Files claimed through
    the Destination are held until the block ends."""
    access = request_access(c)
    if access is None:
        raise IngestError(404, "no such request")
    if isinstance(access, RequestGone):
        raise IngestError(410, _gone_words(access.reason))
    request = access.request
    owner = may_upload_via(access)
    if owner is None or account_by_id(requests.db, owner) is None:
        raise IngestError(404, "no such request")
    with _into(requests, request) as to:
        yield to


@contextmanager
def destination_through_share(requests: Requests, c: Context) -> Iterator[Destination]:
    """Where an upload through a folder link that takes uploads goes: the shared
    folder (subfolders by the upload's relative path), under the limits of the link's
    own request. The link decides first: unknown 404, revoked/expired/used up 410,
    its password not given 401 (429 while throttled), no uploads 403."""
    access = share_access(c)
    if access is None:
        raise IngestError(404, "no such link")
    if isinstance(access, ShareGone):
        raise IngestError(410, f"this link no longer works: {access.reason.value}")
    if isinstance(access, ShareLocked):
        if access.retry_after is not None:
            raise IngestError(429, "too many wrong passwords for this link; wait and try again")
        raise IngestError(
            401,
            "this link has a password: open the link and give it, or send it as HTTP"
            " Basic (curl -u :PASSWORD)",
        )
    share = access.share
    request = request_by_id(requests.db, share.request_id) if share.request_id else None
    if request is None or request.owner != share.owner:
        raise IngestError(403, "this link does not take uploads")
    reason = request.gone(requests.now())
    if reason is not None:
        raise IngestError(410, _gone_words(reason))
    if account_by_id(requests.db, share.owner) is None:
        raise IngestError(404, "no such link")
    with _into(requests, request) as to:
        yield to


@contextmanager
def _into(requests: Requests, request: FileRequest) -> Iterator[Destination]:
    """The request's owner's space, in its folder, under its limits."""
    owner = request.owner
    cap = requests.config.max_file_bytes
    if request.max_file_bytes is not None:
        cap = min(cap, request.max_file_bytes)
    with _claims(requests, request) as through:
        yield Destination(
            owner,
            cap,
            request_id=request.id,
            claim_files=through.claim,
            whose="the recipient's",
            unfinished=through,
            folder=request.folder_id,
        )


def upload_through(
    requests: Requests, *, method: str, named_in_path: bool = False, share: bool = False
):
    """POST /r/{token}/uploads, PUT /r/{token}/uploads/{name} and PUT /r/{token}/uploads
    (named by ?name= or Content-Disposition): the code of /uploads, into the request's
    owner's space, under the request's limits. With `share`, the same at
    /s/{token}/uploads of a folder link that takes uploads."""
    destination = destination_through_share if share else destination_through
    named_route = SHARE_UPLOAD_NAMED if share else REQUEST_UPLOAD_NAMED

    async def handler(c: Context, w: Writer) -> None:
        try:
            with destination(requests, c) as to:
                receive = requests.single_request
                name = (
                    path_param(c, "name")
                    if method == "PUT" and named_in_path
                    else receive.named_in_request(c)
                )
                start = requests.start_resumable_on_share if share else requests.start_resumable
                if start is not None and await start(c, w, to, name):
                    return
                if method == "PUT":
                    where = named_route.href(_token(c), "NAME")
                    await receive.put(c, w, to, name, where)
                else:
                    await receive.post(c, w, to)
        except IngestError as error:
            requests.single_request.refuse(c, w, error)

    return handler


def register_requests(app: App, requests: Requests) -> None:
    requests.gate.requests(
        REQUEST_PAGE, REQUEST_UPLOADS, REQUEST_UPLOAD_NAMED, REQUEST_UPLOAD_UNNAMED
    )
    app.add(API_REQUEST_CREATE, create(requests))
    app.add(API_REQUESTS, show_requests(requests))
    app.add(API_REQUEST_CLOSE, close(requests))
    app.add(API_REQUEST_UPLOAD_CANCEL, cancel_upload(requests))
    app.add(REQUEST_PAGE, show_link(requests))
    in_flight = requests.uploads.in_flight
    app.add(REQUEST_UPLOADS, tracked(in_flight, upload_through(requests, method="POST")))
    app.add(
        REQUEST_UPLOAD_NAMED,
        tracked(in_flight, upload_through(requests, method="PUT", named_in_path=True)),
    )
    app.add(REQUEST_UPLOAD_UNNAMED, tracked(in_flight, upload_through(requests, method="PUT")))
    # A folder link's uploads: the link's token (and password) decide, as on its pages.
    requests.gate.shares(SHARE_UPLOADS, SHARE_UPLOAD_NAMED, SHARE_UPLOAD_UNNAMED)
    app.add(SHARE_UPLOADS, tracked(in_flight, upload_through(requests, method="POST", share=True)))
    app.add(
        SHARE_UPLOAD_NAMED,
        tracked(in_flight, upload_through(requests, method="PUT", named_in_path=True, share=True)),
    )
    app.add(
        SHARE_UPLOAD_UNNAMED,
        tracked(in_flight, upload_through(requests, method="PUT", share=True)),
    )
