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
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field

from stario import App, Context, Relay, Writer
from stario.datastar import SSE
from stario.markup import HtmlElement

from app.access.gate import Gate, RequestGone, may_upload_via, principal, request_access
from app.accounts.store import account_by_id
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
from app.db import Database
from app.features.requests.data import request_json, requests_changed
from app.features.requests.urls import (
    API_REQUEST_CLOSE,
    API_REQUEST_CREATE,
    API_REQUESTS,
    REQUEST_PAGE,
    REQUEST_UPLOAD_NAMED,
    REQUEST_UPLOAD_UNNAMED,
    REQUEST_UPLOADS,
)
from app.features.requests.views import (
    gone_page,
    new_request_error,
    new_request_part,
    request_page,
    unknown_page,
)
from app.features.uploads.handlers import (
    Destination,
    StartResumable,
    Uploads,
    named_in_request,
    receive_post,
    receive_put,
    refuse_upload,
)
from app.ingest.pipeline import IngestError
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
    list_requests,
    request_by_id,
)

MAX_BODY_BYTES = 16 * 1024
FIELDS = ("label", "expires_in", "max_files", "max_file_bytes")
MIB = 1024 * 1024


@dataclass
class Requests:
    config: Config
    db: Database
    gate: Gate
    relay: Relay[str]
    assets: PageAssets
    uploads: Uploads
    # `Upload-Complete: ?0` on the link's /uploads starts a resumable upload (the IETF
    # draft), as on the account's own /uploads; without it, such a body would be kept
    # as a whole file, cut short.
    start_resumable: StartResumable | None = None
    # Files claimed by uploads in flight, per request id (see the module doc).
    claimed: Counter[str] = field(default_factory=Counter)

    def now(self) -> float:
        return self.gate.clock()

    def destination(self, c: Context) -> AbstractContextManager[Destination]:
        """Where an upload through the link on `c` goes (`destination_through`)."""
        return destination_through(self, c)


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
            made, token = await create_request(
                requests.db,
                owner=owner,
                label=label,
                now=requests.now(),
                expires_in=expires_in,
                max_files=max_files,
                max_file_bytes=max_file_bytes,
            )
        except RequestError as exc:
            message = str(exc)
            if datastar:
                SSE(w).patch_elements(new_request_error(message[:1].upper() + message[1:] + "."))
                w.end()
            else:
                json_error(w, 400, message)
            return
        requests.relay.publish(requests_changed(owner), "created")
        url = REQUEST_PAGE.href(token)
        if datastar:
            sse = SSE(w)
            sse.patch_elements(new_request_part(label, requests.config.public_url + url))
            sse.patch_signals({"requestLabel": "", "requestMaxFiles": "", "requestMaxMib": ""})
            w.end()
            return
        w.headers.set("location", url)
        w.json({"request": request_json(made, url)}, 201)

    return handler


def show_requests(requests: Requests):
    async def handler(c: Context, w: Writer) -> None:
        found = await list_requests(requests.db, principal(c).account_id)
        w.json({"requests": [request_json(request, None) for request in found]})

    return handler


def close(requests: Requests):
    async def handler(c: Context, w: Writer) -> None:
        owner = principal(c).account_id
        request_id = path_param(c, "request_id")
        known = REQUEST_ID_PATTERN.fullmatch(request_id) is not None
        if not known or not await close_request(requests.db, request_id, owner, requests.now()):
            json_error(w, 404, "no such request")
            return
        w.empty()
        requests.relay.publish(requests_changed(owner), "closed")

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
        w.headers.set("content-security-policy", content_security_policy(nonce))
        if isinstance(access, RequestGone):
            w.html(gone_page(requests.assets, access.reason.value), 410)
            return
        owner = may_upload_via(access) if access is not None else None
        account = account_by_id(requests.db, owner) if owner is not None else None
        if access is None or account is None:
            w.html(unknown_page(requests.assets), 404)
            return
        page: HtmlElement = request_page(
            requests.config,
            requests.assets,
            _token(c),
            access.request,
            account.name,
            nonce=nonce,
        )
        w.html(page)

    return handler


@contextmanager
def _claims(requests: Requests, request: FileRequest) -> Iterator[Callable[[int], None]]:
    """`claim(n)` for one upload through `request`; everything it claimed is given back
    when the upload ends (its rows, if kept, are counted by the catalog by then)."""
    held = 0

    def claim(count: int) -> None:
        nonlocal held
        current = request_by_id(requests.db, request.id) or request
        reason = current.gone(requests.now())
        if reason is not None:
            raise IngestError(410, _gone_words(reason))
        if current.max_files is not None:
            others = requests.claimed[request.id] - held
            room = current.max_files - current.files - others  # for this whole upload
            if held + count > room:
                if room <= 0 and others:
                    raise IngestError(
                        409,
                        "this request's last files are being uploaded now;"
                        " if they do not arrive, try again",
                    )
                if room <= 0:
                    raise IngestError(410, _gone_words(Gone.FULL))
                raise IngestError(
                    413,
                    f"this request takes {room} more file{'' if room == 1 else 's'};"
                    " this upload has more",
                )
        requests.claimed[request.id] += count
        held += count

    try:
        yield claim
    finally:
        if held:
            requests.claimed[request.id] -= held
            if requests.claimed[request.id] <= 0:
                del requests.claimed[request.id]


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
    cap = requests.config.max_file_bytes
    if request.max_file_bytes is not None:
        cap = min(cap, request.max_file_bytes)
    with _claims(requests, request) as claim:
        yield Destination(
            owner, cap, request_id=request.id, claim_files=claim, whose="the recipient's"
        )


def upload_through(requests: Requests, *, method: str, named_in_path: bool = False):
    """POST /r/{token}/uploads, PUT /r/{token}/uploads/{name} and PUT /r/{token}/uploads
    (named by ?name= or Content-Disposition): the code of /uploads, into the request's
    owner's space, under the request's limits."""

    async def handler(c: Context, w: Writer) -> None:
        try:
            with destination_through(requests, c) as to:
                uploads = requests.uploads
                name = (
                    path_param(c, "name")
                    if method == "PUT" and named_in_path
                    else named_in_request(c)
                )
                start = requests.start_resumable
                if start is not None and await start(c, w, to, name):
                    return
                if method == "PUT":
                    where = REQUEST_UPLOAD_NAMED.href(_token(c), "NAME")
                    await receive_put(uploads, c, w, to, name, where)
                else:
                    await receive_post(uploads, c, w, to)
        except IngestError as error:
            refuse_upload(c, w, error)

    return handler


def register_requests(app: App, requests: Requests) -> None:
    requests.gate.requests(
        REQUEST_PAGE, REQUEST_UPLOADS, REQUEST_UPLOAD_NAMED, REQUEST_UPLOAD_UNNAMED
    )
    app.add(API_REQUEST_CREATE, create(requests))
    app.add(API_REQUESTS, show_requests(requests))
    app.add(API_REQUEST_CLOSE, close(requests))
    app.add(REQUEST_PAGE, show_link(requests))
    tracked = requests.uploads.tracked
    app.add(REQUEST_UPLOADS, tracked(upload_through(requests, method="POST")))
    app.add(
        REQUEST_UPLOAD_NAMED, tracked(upload_through(requests, method="PUT", named_in_path=True))
    )
    app.add(REQUEST_UPLOAD_UNNAMED, tracked(upload_through(requests, method="PUT")))
