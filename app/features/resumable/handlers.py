"""The resumable-upload URLs. One upload state (app/resumable) speaks two protocols:
a request that carries `Upload-Draft-Interop-Version` is the IETF draft (ietf.py),
any other is tus 1.0 (tus.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from stario import App, Context, Writer

from app.access.gate import Gate
from app.features.resumable import tus
from app.features.resumable.urls import (
    CAPABILITIES,
    CREATE,
    UPLOAD_DELETE,
    UPLOAD_HEAD,
    UPLOAD_OPTIONS,
    UPLOAD_OVERRIDE,
    UPLOAD_PATCH,
)
from app.features.uploads.handlers import Destination
from app.resumable.uploads import ResumableUploads

type Verb = Callable[[ResumableUploads, Context, Writer, Destination], Awaitable[None]]

INTEROP_HEADER = "upload-draft-interop-version"


def is_ietf(c: Context) -> bool:
    return c.req.headers.get(INTEROP_HEADER) is not None


def _handler(resumable: ResumableUploads, tus_verb: Verb, ietf_verb: Verb | None = None):
    async def handler(c: Context, w: Writer) -> None:
        to = Destination.of_account(resumable.uploads, c)
        verb = ietf_verb if ietf_verb is not None and is_ietf(c) else tus_verb
        await verb(resumable, c, w, to)

    return handler


def _override(resumable: ResumableUploads):
    """POST with `X-HTTP-Method-Override: PATCH|HEAD|DELETE` is that method."""
    verbs: dict[str, Verb] = {"PATCH": tus.patch, "HEAD": tus.head, "DELETE": tus.delete}

    async def handler(c: Context, w: Writer) -> None:
        method = (c.req.headers.get("x-http-method-override") or "").strip().upper()
        verb = verbs.get(method)
        if verb is None:
            w.headers.set("allow", "HEAD, PATCH, DELETE, OPTIONS")
            w.headers.set("tus-resumable", tus.VERSION)
            w.json({"error": "POST here needs X-HTTP-Method-Override: PATCH, HEAD or DELETE"},
                   405)  # fmt: skip
            return
        await verb(resumable, c, w, Destination.of_account(resumable.uploads, c))

    return handler


def register_resumable(app: App, gate: Gate, resumable: ResumableUploads) -> None:
    async def options(c: Context, w: Writer) -> None:
        tus.capabilities(resumable, w)

    # What the server can do is no secret; everything else is the account's.
    gate.public(CAPABILITIES, UPLOAD_OPTIONS)
    app.add(CAPABILITIES, options)
    app.add(UPLOAD_OPTIONS, options)
    tracked = resumable.uploads.tracked
    app.add(CREATE, tracked(_handler(resumable, tus.create)))
    app.add(UPLOAD_HEAD, _handler(resumable, tus.head))
    app.add(UPLOAD_PATCH, tracked(_handler(resumable, tus.patch)))
    app.add(UPLOAD_DELETE, _handler(resumable, tus.delete))
    app.add(UPLOAD_OVERRIDE, tracked(_override(resumable)))
