"""POST /api/archives makes a ZIP of the account's own files; GET (and HEAD)
/api/archives/{token} streams it, any byte range of it, under the same access rule."""

import asyncio
from collections.abc import Sequence
from contextlib import AsyncExitStack

from stario import App, Context, Writer
from stario.datastar import SSE

from app.access.gate import may_read_file, principal
from app.catalog.protocol import Database
from app.common.http import (
    BodyError,
    is_datastar,
    json_error,
    path_param,
    read_json_object,
    wanted_ids,
)
from app.downloads.ranges import UNSATISFIABLE, ByteRange, parse_range, unsatisfied_range
from app.downloads.validators import (
    Precondition,
    evaluate_preconditions,
    http_date,
    if_range_holds,
    modified_at,
)
from app.features.archives.data import (
    DEFAULT_MEMORY_BYTES,
    MAX_ARCHIVE_FILES,
    Archive,
    ArchiveMemoryFull,
    Archives,
    archive_names,
)
from app.features.archives.layout import (
    ChangedOnDisk,
    FileBytes,
    Layout,
    Literal,
    Member,
    build_layout,
)
from app.features.archives.urls import API_ARCHIVES, ARCHIVE, ARCHIVE_HEAD
from app.files.store import FileRow
from app.storage.errors import StoreUnavailable
from app.storage.ids import is_blob_id
from app.storage.store import Store

# 10,000 ids of ~30 characters in JSON, with room to spare.
MAX_BODY_BYTES = 1024 * 1024
# SQLite's default limit on bound parameters is 32,766; stay well inside it.
IDS_PER_QUERY = 500
_COLUMNS = "id, name, size, sha256, mime, declared_mime, created_at, owner"
CACHE_CONTROL = "private, no-cache"
# Laying out an archive reads its files on a worker thread of the default pool, the one
# downloads read through; a few at a time leave that pool to the downloads.
LAYOUTS_AT_ONCE = 2


async def _rows(db: Database, ids: Sequence[str]) -> dict[str, FileRow]:
    found: dict[str, FileRow] = {}
    for at in range(0, len(ids), IDS_PER_QUERY):
        batch = ids[at : at + IDS_PER_QUERY]
        marks = ", ".join("?" * len(batch))
        records = await db.fetch_all(
            f"SELECT {_COLUMNS} FROM files WHERE id IN ({marks})", tuple(batch)
        )
        for record in records:
            row = FileRow(*record)  # type: ignore[arg-type]
            found[row.id] = row
    return found


def create_archive(db: Database, store: Store, archives: Archives, laying_out: asyncio.Semaphore):
    async def handler(c: Context, w: Writer) -> None:
        datastar = is_datastar(c)

        def refuse(status: int, message: str, retry_after: int | None = None) -> None:
            if retry_after is not None:
                w.headers.set("retry-after", str(retry_after))
            if datastar:
                # Datastar applies only 200 answers: the refusal travels as a signal.
                SSE(w).patch_signals({"_notice": f"Could not make the ZIP: {message}."})
                w.end()
            else:
                json_error(w, status, message)

        try:
            ids = wanted_ids(await read_json_object(c, MAX_BODY_BYTES), most=MAX_ARCHIVE_FILES)
        except BodyError as exc:
            refuse(400, str(exc))
            return
        who = principal(c)
        rows = await _rows(db, [i for i in ids if is_blob_id(i)])
        for file_id in ids:
            row = rows.get(file_id)
            if row is None or not may_read_file(who, file_id, row.owner):
                # The same answer for an unknown id and another account's file.
                refuse(404, f"no such file: {file_id}")
                return
        chosen = [rows[i] for i in ids]
        names = archive_names([row.name for row in chosen])
        try:
            # The layout reads each member from a local file: the blob itself on a
            # local store, a temp copy of the object on S3 (gone once laid out).
            async with laying_out, AsyncExitStack() as copies:
                members = []
                for name, row in zip(names, chosen, strict=True):
                    # A local blob is read where it lies (a missing one fails the
                    # layout's read): no thread hop per member just to see it exists.
                    path = store.local_path(row.id) or await copies.enter_async_context(
                        store.local_copy(row.id)
                    )
                    if path is None:
                        raise ChangedOnDisk(row.id)
                    members.append(
                        Member(
                            name,
                            str(path),
                            row.size,
                            modified_at(row.created_at),
                            row.sha256,
                            row.id,
                        )
                    )
                layout = await asyncio.to_thread(build_layout, members)
        except ChangedOnDisk:
            refuse(500, "the contents of a file in the selection are missing or damaged")
            return
        except StoreUnavailable as exc:
            w.headers.set("retry-after", "5")
            json_error(w, 503, f"{exc}; try again in a moment")
            return
        try:
            token = archives.add(
                Archive(
                    who.account_id,
                    layout,
                    max(row.created_at for row in chosen),
                    archives.lifetime_end(),
                )
            )
        except ArchiveMemoryFull as exc:
            refuse(503, str(exc), exc.retry_after)
            return
        url = ARCHIVE.href(token=token)
        if datastar:
            # The page's selection: the tab fetches the URL as a download (`_download`).
            SSE(w).patch_signals({"_download": url, "_notice": ""})
            w.end()
            return
        w.headers.set("location", url)
        w.json({"url": url, "size": layout.size, "files": len(ids)}, 201)

    return handler


def download_archive(db: Database, archives: Archives, store: Store, laying_out: asyncio.Semaphore):
    async def handler(c: Context, w: Writer) -> None:
        token = path_param(c, "token")
        who = principal(c)
        # Held while it is sent: an archive being downloaded is not dropped for room.
        with archives.download(token) as archive:
            if archive is None or archive.owner != who.account_id:
                message = (
                    "this archive was dropped to make room for newer ones; ask for it"
                    " again (the same files make the same bytes)"
                    if archive is None and archives.dropped_for_room(token, who.account_id)
                    else "no such archive (it may have expired: ask for it again)"
                )
                json_error(w, 404, message)
                return
            file_ids = archive.file_ids
            rows = await _rows(db, file_ids)
            if any(
                (row := rows.get(i)) is None or not may_read_file(who, i, row.owner)
                for i in file_ids
            ):
                json_error(w, 404, "a file in this archive was deleted; ask for a new archive")
                return
            layout = archive.layout
            if layout is None:
                async with laying_out:
                    layout = await _lay_out_again(archive, [rows[i] for i in file_ids])
                if layout is None:
                    json_error(
                        w, 404, "a file in this archive was renamed since; ask for a new archive"
                    )
                    return
                if not archives.keep_layout(token, layout):
                    # Sent unkept, it would hold memory outside the budget.
                    w.headers.set("retry-after", str(ArchiveMemoryFull.retry_after))
                    json_error(
                        w,
                        503,
                        "the server's archive memory is full of archives being downloaded;"
                        " try again in a moment",
                    )
                    return
            await _serve(c, w, archive, layout, store)

    return handler


async def _lay_out_again(archive: Archive, chosen: list[FileRow]) -> Layout | None:
    """The layout of an archive whose layout was dropped for room, from its recipe and
    the rows, reading no file; None if it would not be the same bytes (a rename)."""
    names = archive_names([row.name for row in chosen])
    members = [
        Member(name, "", row.size, modified_at(row.created_at), row.sha256, row.id)
        for name, row in zip(names, chosen, strict=True)
    ]
    recipe = archive.recipe
    layout = await asyncio.to_thread(Layout, members, recipe.crc_list())
    return layout if layout.digest == recipe.digest else None


async def _serve(c: Context, w: Writer, archive: Archive, layout: Layout, store: Store) -> None:
    etag = f'"{layout.digest}"'
    modified = modified_at(archive.modified_at)
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
        headers.set("content-range", wanted.content_range)
    else:
        start, length, status = 0, layout.size, 200
    headers.set("content-type", "application/zip")
    headers.set("content-disposition", f'attachment; filename="stowage-{len(layout)}-files.zip"')
    # A fixed Content-Length also keeps Stario from compressing the body.
    headers.set("content-length", str(length))
    w.write_headers(status)
    if c.req.method == "HEAD" or length == 0:
        w.end()
        return
    if await send_range(w, store, layout, start, start + length):
        w.end()


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


def register_archives(
    app: App, db: Database, store: Store, memory_bytes: int = DEFAULT_MEMORY_BYTES
) -> Archives:
    archives = Archives(memory_bytes)
    # Laying out again reads no file: a download resuming does not wait behind POSTs
    # reading big selections, only behind other layouts being made again.
    app.add(API_ARCHIVES, create_archive(db, store, archives, asyncio.Semaphore(LAYOUTS_AT_ONCE)))
    download = download_archive(db, archives, store, asyncio.Semaphore(LAYOUTS_AT_ONCE))
    app.add(ARCHIVE, download)
    app.add(ARCHIVE_HEAD, download)
    return archives
