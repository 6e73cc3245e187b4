"""The resumable-upload URLs. One upload state (app/resumable) speaks two protocols:
a request that carries `Upload-Draft-Interop-Version` is the IETF draft (ietf.py),
any other is tus 1.0 (tus.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager, nullcontext

from stario import App, Context, Writer

from app.access.gate import Gate, principal
from app.features.resumable import ietf, tus
from app.features.resumable.urls import (
    CAPABILITIES,
    CREATE,
    REQUEST_CAPABILITIES,
    REQUEST_CREATE,
    REQUEST_UPLOAD_DELETE,
    REQUEST_UPLOAD_GET,
    REQUEST_UPLOAD_HEAD,
    REQUEST_UPLOAD_NAMED_OPTIONS,
    REQUEST_UPLOAD_OPTIONS,
    REQUEST_UPLOAD_OVERRIDE,
    REQUEST_UPLOAD_PATCH,
    REQUEST_UPLOADS_OPTIONS,
    SHARE_CAPABILITIES,
    SHARE_CREATE,
    SHARE_UPLOAD_DELETE,
    SHARE_UPLOAD_GET,
    SHARE_UPLOAD_HEAD,
    SHARE_UPLOAD_NAMED_OPTIONS,
    SHARE_UPLOAD_OPTIONS,
    SHARE_UPLOAD_OVERRIDE,
    SHARE_UPLOAD_PATCH,
    SHARE_UPLOADS_OPTIONS,
    UPLOAD_DELETE,
    UPLOAD_GET,
    UPLOAD_HEAD,
    UPLOAD_NAMED_OPTIONS,
    UPLOAD_OPTIONS,
    UPLOAD_OVERRIDE,
    UPLOAD_PATCH,
    UPLOADS_OPTIONS,
)
from app.ingest.intake import Destination
from app.ingest.pipeline import IngestError
from app.resumable.uploads import ResumableUploads
from app.server.body import tracked

type Verb = Callable[[ResumableUploads, Context, Writer, Destination], Awaitable[None]]
# Where a request's upload goes (an account's own space, or a file request's owner's),
# held for the request's length.
type Destinations = Callable[[Context], AbstractContextManager[Destination]]

INTEROP_HEADER = ietf.INTEROP_HEADER


def is_ietf(c: Context) -> bool:
    return c.req.headers.get(INTEROP_HEADER) is not None


def account_destination(resumable: ResumableUploads) -> Destinations:
    def of(c: Context) -> AbstractContextManager[Destination]:
        return nullcontext(Destination.of_account(resumable.uploads, principal(c).account))

    return of


def _handler(
    resumable: ResumableUploads,
    destination: Destinations,
    tus_verb: Verb,
    ietf_verb: Verb | None = None,
):
    async def handler(c: Context, w: Writer) -> None:
        verb = ietf_verb if ietf_verb is not None and is_ietf(c) else tus_verb
        try:
            with destination(c) as to:
                await verb(resumable, c, w, to)
        except IngestError as error:
            # The destination itself refused (a file request closed or unknown).
            if w.started:
                raise
            if is_ietf(c):
                ietf.refuse_early(c, w, error)
            else:
                tus.refuse(c, w, error)

    return handler


def _override(resumable: ResumableUploads, destination: Destinations):
    """POST with `X-HTTP-Method-Override: PATCH|HEAD|DELETE` is that method."""
    verbs: dict[str, Verb] = {"PATCH": tus.patch, "HEAD": tus.head, "DELETE": tus.delete}
    draft: dict[str, Verb] = {"PATCH": ietf.patch, "HEAD": ietf.head, "DELETE": ietf.delete}
    handlers = {
        method: _handler(resumable, destination, verb, draft[method])
        for method, verb in verbs.items()
    }

    async def handler(c: Context, w: Writer) -> None:
        method = (c.req.headers.get("x-http-method-override") or "").strip().upper()
        chosen = handlers.get(method)
        if chosen is None:
            w.headers.set("allow", "HEAD, PATCH, DELETE, OPTIONS")
            w.headers.set("tus-resumable", tus.VERSION)
            w.json({"error": "POST here needs X-HTTP-Method-Override: PATCH, HEAD or DELETE"},
                   405)  # fmt: skip
            return
        await chosen(c, w)

    return handler


def _largest_file(destination: Destinations | None, c: Context) -> int | None:
    """The largest file a link's uploads take (its own limit), for its `Upload-Limit`;
    None for an account's URLs (answered to anyone: the server's limit)."""
    if destination is None:
        return None
    try:
        with destination(c) as to:
            return to.max_file_bytes
    except IngestError:
        return None  # the gate let it through; the server's limit still holds


def register_resumable(
    app: App,
    gate: Gate,
    resumable: ResumableUploads,
    through_request: Destinations,
    through_share: Destinations | None = None,
) -> None:
    """tus (and the IETF draft) at /tus/ for accounts, at /r/TOKEN/tus/ into a file
    request's owner's space under its limits (`through_request`), and at /s/TOKEN/tus/
    into a folder link's folder under its request's limits (`through_share`)."""

    def options(destination: Destinations | None):
        async def answer(c: Context, w: Writer) -> None:
            ietf.capabilities(resumable, c, w, _largest_file(destination, c))
            tus.capabilities(resumable, w)

        return answer

    def creation_options(destination: Destinations | None, allow: str):
        async def answer(c: Context, w: Writer) -> None:
            ietf.creation_capabilities(resumable, c, w, allow, _largest_file(destination, c))

        return answer

    # What the server can do is no secret; everything else is the account's.
    gate.public(CAPABILITIES, UPLOAD_OPTIONS, UPLOADS_OPTIONS, UPLOAD_NAMED_OPTIONS)
    gate.requests(
        REQUEST_UPLOADS_OPTIONS,
        REQUEST_UPLOAD_NAMED_OPTIONS,
        REQUEST_UPLOAD_GET,
        REQUEST_CAPABILITIES,
        REQUEST_CREATE,
        REQUEST_UPLOAD_HEAD,
        REQUEST_UPLOAD_PATCH,
        REQUEST_UPLOAD_DELETE,
        REQUEST_UPLOAD_OPTIONS,
        REQUEST_UPLOAD_OVERRIDE,
    )
    share_routes = (
        SHARE_CAPABILITIES, SHARE_CREATE, SHARE_UPLOAD_HEAD, SHARE_UPLOAD_PATCH,
        SHARE_UPLOAD_DELETE, SHARE_UPLOAD_OPTIONS, SHARE_UPLOAD_OVERRIDE, SHARE_UPLOAD_GET,
        SHARE_UPLOADS_OPTIONS, SHARE_UPLOAD_NAMED_OPTIONS,
    )  # fmt: skip
    if through_share is not None:
        # The link's token (and password) decide, as on the link's other URLs.
        gate.shares(*share_routes)
    in_flight = resumable.uploads.in_flight
    for routes, destination, link in (
        ((CAPABILITIES, CREATE, UPLOAD_HEAD, UPLOAD_PATCH, UPLOAD_DELETE, UPLOAD_OPTIONS,
          UPLOAD_OVERRIDE, UPLOAD_GET, UPLOADS_OPTIONS, UPLOAD_NAMED_OPTIONS),
         account_destination(resumable), None),
        ((REQUEST_CAPABILITIES, REQUEST_CREATE, REQUEST_UPLOAD_HEAD, REQUEST_UPLOAD_PATCH,
          REQUEST_UPLOAD_DELETE, REQUEST_UPLOAD_OPTIONS, REQUEST_UPLOAD_OVERRIDE,
          REQUEST_UPLOAD_GET, REQUEST_UPLOADS_OPTIONS, REQUEST_UPLOAD_NAMED_OPTIONS),
         through_request, through_request),
        *(() if through_share is None else ((share_routes, through_share, through_share),)),
    ):  # fmt: skip
        (capabilities, create, head, patch, delete, upload_options, override, get,
         uploads_options, named_options) = routes  # fmt: skip
        app.add(capabilities, options(link))
        app.add(upload_options, options(link))
        # POST (and PUT without a name) at /uploads; PUT at /uploads/NAME.
        app.add(uploads_options, creation_options(link, "POST, PUT, OPTIONS"))
        app.add(named_options, creation_options(link, "PUT, OPTIONS"))
        app.add(get, tracked(in_flight, _handler(resumable, destination, ietf.get, ietf.get)))
        app.add(
            create, tracked(in_flight, _handler(resumable, destination, tus.create, ietf.create))
        )
        app.add(head, tracked(in_flight, _handler(resumable, destination, tus.head, ietf.head)))
        app.add(patch, tracked(in_flight, _handler(resumable, destination, tus.patch, ietf.patch)))
        app.add(
            delete, tracked(in_flight, _handler(resumable, destination, tus.delete, ietf.delete))
        )
        app.add(override, tracked(in_flight, _override(resumable, destination)))
