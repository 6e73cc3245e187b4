"""Serving a ZIP laid out by `zip_layout`: the members of a selection, the validators
(a strong ETag from the layout's digest), 304/412, one byte range (so a download
resumes), and, for a share link, the same metering as a single file's download. The
owner's archives and a collection link's ZIP both go through here."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from contextlib import AsyncExitStack
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
from app.downloads.ranges import UNSATISFIABLE, ByteRange, parse_range, unsatisfied_range
from app.downloads.validators import (
    Precondition,
    evaluate_preconditions,
    http_date,
    if_range_holds,
    modified_at,
    sent_modified,
)
from app.downloads.zip_layout import (
    ChangedOnDisk,
    FileBytes,
    Layout,
    Literal,
    Member,
    build_layout,
)
from app.folders.contents import Entry
from app.storage.errors import StoreUnavailable
from app.storage.store import Store

CACHE_CONTROL = "private, no-cache"


def _member(entry: Entry, path: str) -> Member:
    row = entry.row
    if row is None:
        return Member(entry.path, "", 0, modified_at(entry.created_at), "", "")
    return Member(entry.path, path, row.size, modified_at(row.created_at), row.sha256, row.id)


async def lay_out(store: Store, entries: Sequence[Entry]) -> Layout:
    """The layout of `entries`, reading every file once for its CRC-32 (on a worker
    thread). ChangedOnDisk if a file's bytes are missing or not its size;
    StoreUnavailable if the store cannot be reached."""
    async with AsyncExitStack() as copies:
        members = []
        for entry in entries:
            path = ""
            if entry.row is not None:
                # A local blob is read where it lies; an S3 object from a temp copy
                # (gone once laid out).
                found = store.local_path(entry.row.id) or await copies.enter_async_context(
                    store.local_copy(entry.row.id)
                )
                if found is None:
                    raise ChangedOnDisk(entry.row.id)
                path = str(found)
            members.append(_member(entry, path))
        return await asyncio.to_thread(build_layout, members)


def lay_out_again(entries: Sequence[Entry], crcs: list[int]) -> Layout:
    """The layout of `entries` whose CRC-32s are known: no file is read."""
    return Layout([_member(entry, "") for entry in entries], crcs)


async def serve_zip(
    c: Context,
    w: Writer,
    store: Store,
    layout: Layout,
    modified: datetime,
    filename: str,
    counting: Counting | None = None,
) -> None:
    """GET or HEAD of a laid-out ZIP, saved as `filename` (any Unicode name)."""
    etag = f'"{layout.digest}"'
    modified = sent_modified(modified, response_date(c))
    precondition = evaluate_preconditions(
        etag,
        modified,
        if_match=c.req.headers.get("if-match"),
        if_none_match=c.req.headers.get("if-none-match"),
        if_modified_since=c.req.headers.get("if-modified-since"),
        if_unmodified_since=c.req.headers.get("if-unmodified-since"),
    )
    if precondition is Precondition.FAILED:
        json_error(w, 412, "the archive does not match If-Match or If-Unmodified-Since")
        return
    headers = w.headers
    never_compressed(w)  # sent with its own Content-Length
    headers.set("etag", etag)
    headers.set("last-modified", http_date(modified))
    headers.set("cache-control", CACHE_CONTROL)
    headers.set("x-content-type-options", "nosniff")
    if precondition is Precondition.NOT_MODIFIED:
        w.write_headers(304).end()
        return
    headers.set("accept-ranges", "bytes")
    if_range = c.req.headers.get("if-range")
    wanted = (
        None
        if if_range is not None and not if_range_holds(if_range, etag, modified)
        else parse_range(", ".join(c.req.headers.getlist("range")) or None, layout.size)
    )
    if wanted is UNSATISFIABLE:
        headers.set("content-range", unsatisfied_range(layout.size))
        headers.set("content-length", "0")
        w.write_headers(416).end()
        return
    if isinstance(wanted, ByteRange):
        start, length, status = wanted.start, wanted.length, 206
    else:
        start, length, status = 0, layout.size, 200
    counts = counting is not None and c.req.method == "GET"
    if counting is not None and counts and not await counting.reserve(length):
        for name in ("etag", "last-modified", "accept-ranges"):
            headers.remove(name)
        counting.refusal(w, length)
        return
    metered = MeteredWriter(w) if counts else None
    try:
        if isinstance(wanted, ByteRange):
            headers.set("content-range", wanted.content_range)
        headers.set("content-type", "application/zip")
        headers.set("content-disposition", content_disposition("attachment", filename))
        # A fixed Content-Length also keeps Stario from compressing the body.
        headers.set("content-length", str(length))
        w.write_headers(status)
        if c.req.method == "HEAD" or length == 0:
            w.end()
            return
        out = cast(Writer, metered) if metered is not None else w
        if await send_range(out, store, layout, start, start + length):
            w.end()
    finally:
        if counting is not None and metered is not None:
            # Shielded: a cancelled handler still gives its hold back.
            await asyncio.shield(counting.settle(length, metered.sent))


async def send_range(w: Writer, store: Store, layout: Layout, start: int, end: int) -> bool:
    """Bytes [start, end) of the archive: literal pieces from memory, member bytes read
    from their blobs. False if the client left or a blob came up short (then aborted)."""
    for piece in layout.pieces_from(start):
        if piece.start >= end:
            break
        piece_end = piece.start + (len(piece.data) if isinstance(piece, Literal) else piece.size)
        if piece_end <= start:
            continue
        low, high = max(start, piece.start) - piece.start, min(end, piece_end) - piece.start
        if isinstance(piece, Literal):
            w.write(piece.data[low:high])
            await w.drain()
        elif not piece.blob_id:
            continue  # a folder: no bytes of its own
        elif not await _send_file(w, store, piece, low, high):
            return False
        if w.closing:
            return False
    return True


async def _send_file(w: Writer, store: Store, piece: FileBytes, low: int, high: int) -> bool:
    """One member's bytes [low, high), streamed as a single file's download is."""
    try:
        blob = await store.open(piece.blob_id)
    except StoreUnavailable:
        blob = None
    if blob is None:
        w.abort()  # the blob went away after its row was checked, or the store is down
        return False
    try:
        return await blob.send(w, low, high - low)
    finally:
        await blob.close()
