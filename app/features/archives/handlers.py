"""POST /api/archives makes a ZIP of the account's own files and folders (`"ids"`,
`"folders"`: each folder with its paths, empty folders as folder entries); GET (and HEAD)
/api/archives/{token} streams it, any byte range of it, under the same access rule."""

import asyncio
from collections.abc import Sequence

from stario import App, Context, JsonValue, Writer
from stario.datastar import SSE

from app.access.gate import may_read_file, principal
from app.catalog.protocol import Database
from app.common.http import (
    BodyError,
    is_datastar,
    json_error,
    path_param,
    read_json_object,
    wanted_selection,
)
from app.downloads.validators import modified_at
from app.downloads.zip_layout import ChangedOnDisk, Layout
from app.downloads.zip_serve import lay_out, lay_out_again, serve_zip
from app.features.archives.data import (
    DEFAULT_MEMORY_BYTES,
    MAX_ARCHIVE_FILES,
    Archive,
    ArchiveMemoryFull,
    Archives,
    archive_names,
)
from app.features.archives.urls import API_ARCHIVES, ARCHIVE, ARCHIVE_HEAD
from app.files.store import FileRow
from app.folders.contents import Entry, selection_entries
from app.folders.store import FolderError, catalog_id
from app.storage.errors import StoreUnavailable
from app.storage.ids import is_blob_id
from app.storage.store import Store

# 10,000 ids of ~30 characters in JSON, with room to spare.
MAX_BODY_BYTES = 1024 * 1024
# SQLite's default limit on bound parameters is 32,766; stay well inside it.
IDS_PER_QUERY = 500
_COLUMNS = "id, name, size, sha256, mime, declared_mime, created_at, owner, NULL, folder_id"
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


async def _entries(
    db: Database, owner: str, loose: Sequence[FileRow], folders: Sequence[str]
) -> list[Entry]:
    """The paths of the selection: files chosen alone at the top, each chosen folder
    with everything under it (`selection_entries`)."""
    if not folders:
        names = archive_names([row.name for row in loose])
        return [Entry(name, row) for name, row in zip(names, loose, strict=True)]
    return await selection_entries(
        db, owner, loose, [catalog_id(f) for f in folders], most=MAX_ARCHIVE_FILES
    )


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
            ids, folders = wanted_selection(
                await read_json_object(c, MAX_BODY_BYTES), most=MAX_ARCHIVE_FILES
            )
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
        try:
            entries = await _entries(db, who.account_id, [rows[i] for i in ids], folders)
        except FolderError as exc:
            refuse(exc.status, exc.message)
            return
        try:
            async with laying_out:
                layout = await lay_out(store, entries)
        except ChangedOnDisk:
            refuse(500, "the contents of a file in the selection are missing or damaged")
            return
        except StoreUnavailable as exc:
            w.headers.set("retry-after", "5")
            json_error(w, 503, f"{exc}; try again in a moment")
            return
        files = [e.row for e in entries if e.row is not None]
        times = [row.created_at for row in files] or [e.created_at for e in entries]
        try:
            token = archives.add(
                Archive(
                    who.account_id,
                    layout,
                    max(times),
                    archives.lifetime_end(),
                    folders=tuple(folders),
                    loose=tuple(ids) if folders else (),
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
        body: dict[str, JsonValue] = {"url": url, "size": layout.size, "files": len(files)}
        if folders:
            body["folders"] = len(entries) - len(files)
        w.json(body, 201)

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
                    layout = await _lay_out_again(db, who.account_id, archive, rows)
                if layout is None:
                    json_error(
                        w,
                        404,
                        "a file or folder in this archive was renamed or moved since;"
                        " ask for a new archive",
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
            await serve_zip(
                c,
                w,
                store,
                layout,
                modified_at(archive.modified_at),
                f"stowage-{len(layout)}-files.zip",
            )

    return handler


async def _lay_out_again(
    db: Database, owner: str, archive: Archive, rows: dict[str, FileRow]
) -> Layout | None:
    """The layout of an archive whose layout was dropped for room, from its recipe and
    the rows (and, for folders, the tree as it is now), reading no file; None if it
    would not be the same bytes (a rename, a move, a file added or removed)."""
    recipe = archive.recipe
    if archive.folders:
        loose = [rows[i] for i in archive.loose if i in rows]
        try:
            entries = await _entries(db, owner, loose, archive.folders)
        except FolderError:
            return None
        ids = [e.row.id if e.row is not None else "" for e in entries]
        if ids != recipe.file_ids():
            return None
    else:
        entries = await _entries(db, owner, [rows[i] for i in archive.file_ids], ())
    layout = await asyncio.to_thread(lay_out_again, entries, recipe.crc_list())
    return layout if layout.digest == recipe.digest else None


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
