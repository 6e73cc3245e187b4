"""`serve_file`: the bytes of a stored file, for every route that sends one."""

import asyncio
from datetime import datetime
from typing import cast

from stario import Context, Writer

from app.common.http import (
    content_disposition,
    json_error,
    never_compressed,
    response_date,
)
from app.downloads.counting import Counting, MeteredWriter
from app.downloads.policy import (
    content_security_policy,
    disposition,
    redirected_disposition,
    served_type,
)
from app.downloads.ranges import (
    UNSATISFIABLE,
    ByteRange,
    Unsatisfiable,
    parse_range,
    unsatisfied_range,
)
from app.downloads.validators import (
    Precondition,
    evaluate_preconditions,
    http_date,
    if_range_holds,
    modified_at,
    sent_modified,
    strong_etag,
)
from app.files.store import FileRow
from app.storage.errors import StoreUnavailable
from app.storage.store import Store

# `private` keeps shared caches out; `no-cache` lets a browser keep the bytes but ask
# first every time, so a signed-out browser is answered by the gate (401) instead of
# showing a private file from its cache. Asking again is a cheap 304.
CACHE_CONTROL = "private, no-cache"


# A page's own subresources: the node keeps sending these, since our pages' CSP lets
# them load from our origin only (an <img>, <video> or frame redirected to the store
# would be blocked). A navigation ("document"), a script's fetch ("empty") and a
# client that sends no Sec-Fetch-Dest (curl, scripts) may be redirected.
_MAY_REDIRECT_DESTINATIONS = frozenset({"document", "empty"})
REDIRECT_TEXT = "The file is sent by its store: follow Location (curl -L).\n"


def _may_redirect(c: Context) -> bool:
    destination = c.req.headers.get("sec-fetch-dest")
    return destination is None or destination.strip().lower() in _MAY_REDIRECT_DESTINATIONS


def _redirect(w: Writer, url: str) -> None:
    """302 to the store's URL. The validators stay off it: they describe the file,
    and this answer is only where to fetch it (never to be cached: the URL expires)."""
    for name in ("etag", "last-modified", "accept-ranges"):
        w.headers.remove(name)
    w.headers.set("cache-control", "no-store")
    w.headers.set("location", url)
    w.text(REDIRECT_TEXT, 302)


def header_list(c: Context, name: str) -> str | None:
    """A list-valued request header; repeated fields are one comma-joined list."""
    values = c.req.headers.getlist(name)
    return ", ".join(values) if values else None


def _wants_download(c: Context) -> bool:
    value = c.req.query.get("download")
    return value is not None and value not in ("0", "false")


def _wanted_range(
    c: Context, size: int, etag: str, modified: datetime
) -> ByteRange | Unsatisfiable | None:
    """The one range to send, UNSATISFIABLE, or None for the whole file."""
    if_range = c.req.headers.get("if-range")
    if if_range is not None and not if_range_holds(if_range, etag, modified):
        return None  # the client's partial copy is stale: send it all
    return parse_range(header_list(c, "range"), size)


async def serve_file(
    c: Context,
    w: Writer,
    store: Store,
    row: FileRow,
    counting: Counting | None = None,
    *,
    direct: bool = True,
) -> None:
    """The bytes of a stored file the caller has let this request read: validators,
    304/412, one byte range, safe rendering; the one serving code for every route.

    HEAD answers exactly what GET would (206 and 416 included), without a body; so
    do 304 and 416 on GET.

    A GET that would send bytes answers 302 to the store's own short-lived URL when
    the store gives one (S3 with `--s3-direct all`), unless `direct` is False (a
    preview our pages embed), the request is a page's subresource, or `counting`
    must see every byte leave (a link with a download limit). The client re-sends
    its Range to the store."""
    etag = strong_etag(row.sha256)
    modified = sent_modified(modified_at(row.created_at), response_date(c))
    precondition = evaluate_preconditions(
        etag,
        modified,
        if_match=header_list(c, "if-match"),
        if_none_match=header_list(c, "if-none-match"),
        if_modified_since=c.req.headers.get("if-modified-since"),
        if_unmodified_since=c.req.headers.get("if-unmodified-since"),
    )
    if precondition is Precondition.FAILED:
        json_error(w, 412, "the file does not match If-Match or If-Unmodified-Since")
        return
    try:
        blob = await store.open(row.id)
    except StoreUnavailable as exc:
        w.headers.set("retry-after", "5")
        json_error(w, 503, f"{exc}; try again in a moment")
        return
    if blob is None:
        json_error(w, 404, "the file's contents are missing")
        return
    size = blob.size
    try:
        if size != row.size:
            json_error(w, 500, "the file's contents are damaged")
            return
        kind = disposition(
            row.mime,
            name=row.name,
            declared_mime=row.declared_mime,
            force_download=_wants_download(c),
        )
        headers = w.headers
        # The bytes go out with their own Content-Length, never compressed.
        never_compressed(w)
        # On every answer about a stored file, 304 and 416 included.
        headers.set("etag", etag)
        headers.set("last-modified", http_date(modified))
        headers.set("cache-control", CACHE_CONTROL)
        headers.set("x-content-type-options", "nosniff")
        headers.set("content-security-policy", content_security_policy(row.mime, kind))
        if precondition is Precondition.NOT_MODIFIED:
            w.write_headers(304).end()
            return
        headers.set("accept-ranges", "bytes")
        wanted = _wanted_range(c, size, etag, modified)
        if wanted is UNSATISFIABLE:
            headers.set("content-range", unsatisfied_range(size))
            headers.set("content-length", "0")
            w.write_headers(416).end()
            return
        if isinstance(wanted, ByteRange):
            start, length, status = wanted.start, wanted.length, 206
        else:
            start, length, status = 0, size, 200
        if (
            direct
            and c.req.method == "GET"
            and (counting is None or not counting.limited)
            and _may_redirect(c)
        ):
            redirected = redirected_disposition(row.mime, kind)
            url = await store.download_url(
                row.id,
                content_type=served_type(row.mime),
                content_disposition=content_disposition(redirected, row.name),
                cache_control=CACHE_CONTROL,
            )
            if url is not None:
                _redirect(w, url)
                if counting is not None:
                    # The node cannot see what leaves the store: what it handed out
                    # is logged as sent (a link without a limit only logs).
                    await counting.settle(length, length)
                return
        # Every GET that sends bytes is metered; HEAD, 304 and 416 send none.
        counts = counting is not None and c.req.method == "GET"
        if counting is not None and counts and not await counting.reserve(length):
            for name in ("etag", "last-modified", "content-security-policy", "accept-ranges"):
                headers.remove(name)
            counting.refusal(w, length)
            return
        metered = MeteredWriter(w) if counts else None
        try:
            headers.set("content-type", served_type(row.mime))
            headers.set("content-disposition", content_disposition(kind, row.name))
            if isinstance(wanted, ByteRange):
                headers.set("content-range", wanted.content_range)
            # A fixed Content-Length also keeps Stario from compressing the body.
            headers.set("content-length", str(length))
            w.write_headers(status)
            if c.req.method == "HEAD" or length == 0:
                w.end()
            elif metered is not None:
                if await blob.send(cast(Writer, metered), start, length):
                    w.end()
            elif await blob.send(w, start, length):
                w.end()
        finally:
            if counting is not None and metered is not None:
                # Shielded: a cancelled handler still gives its hold back.
                await asyncio.shield(counting.settle(length, metered.sent))
    finally:
        await blob.close()
